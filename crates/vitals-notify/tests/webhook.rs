//! The webhook channel against a loopback receiver that checks signatures as a real receiver
//! would, and the classification of every kind of failure.

mod support;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{alert, notification, recorder, refused_url, serve, Recorded};
use vitals_core::notify::{Notification, NotificationKind, NotifierSpec, WebhookSpec};
use vitals_notify::webhook::verify_signature;
use vitals_notify::NotifyError;

const SECRET: &str = "s3cret-key";

fn spec(url: String, secret: Option<&str>) -> NotifierSpec {
    NotifierSpec::Webhook(WebhookSpec {
        url,
        secret: secret.map(str::to_string),
        headers: BTreeMap::from([("Authorization".to_string(), "Bearer t0ken".to_string())]),
        timeout: Duration::from_secs(5),
    })
}

/// A receiver that accepts only requests signed with [`SECRET`] (401 otherwise).
async fn verifying_receiver() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let router = Router::new().route(
        "/hook/{token}",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let l = l.clone();
            async move {
                let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                let ts: Option<i64> = get("x-vitals-timestamp").and_then(|t| t.parse().ok());
                let ok = match (ts, get("x-vitals-signature")) {
                    (Some(ts), Some(sig)) => verify_signature(SECRET.as_bytes(), ts, &body, sig),
                    _ => false,
                };
                if !ok {
                    return (StatusCode::UNAUTHORIZED, "bad signature");
                }
                l.lock().unwrap().push(Recorded {
                    path: String::new(),
                    headers: headers.clone(),
                    body,
                });
                (StatusCode::NO_CONTENT, "")
            }
        }),
    );
    let addr = serve(router).await;
    (format!("http://{addr}/hook/SECRET-TOKEN"), log)
}

#[tokio::test]
async fn signed_delivery_carries_id_timestamp_signature_and_the_notification() {
    let (url, log) = verifying_receiver().await;
    let notifier = vitals_notify::build("hook", &spec(url.clone(), Some(SECRET))).unwrap();
    assert_eq!(notifier.id(), "hook");
    let n = notification(
        "7-hook-firing",
        NotificationKind::Firing,
        vec![alert(7), alert(8)],
    );
    let d = notifier.send(&n).await.unwrap();
    assert_eq!(d.detail, "HTTP 204");
    // Only scheme and host are shown: the path holds the token.
    assert_eq!(d.recipients, [url.trim_end_matches("/hook/SECRET-TOKEN")]);

    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(
        r.header("x-vitals-notification").as_deref(),
        Some("7-hook-firing")
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.header("authorization").as_deref(), Some("Bearer t0ken"));
    let ts: i64 = r.header("x-vitals-timestamp").unwrap().parse().unwrap();
    assert!(ts > 1_600_000_000, "unix seconds, got {ts}");
    // The body is the documented format: the notification itself.
    let back: Notification = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(back, n);
    assert_eq!(r.json()["kind"], "firing");
    assert_eq!(r.json()["alerts"][1]["alert_id"], 8);
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_and_permanent() {
    let (url, log) = verifying_receiver().await;
    let notifier = vitals_notify::build("hook", &spec(url.clone(), Some("wrong"))).unwrap();
    let n = notification("1", NotificationKind::Firing, vec![alert(1)]);
    let e = notifier.send(&n).await.unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(e.to_string().contains("bad signature"), "{e}");
    // Neither the path token nor the secret shows up in the message.
    assert!(!e.to_string().contains("SECRET-TOKEN"), "{e}");
    assert!(!e.to_string().contains("wrong"), "{e}");
    // Unsigned is rejected as well.
    let unsigned = vitals_notify::build("hook", &spec(url, None)).unwrap();
    assert!(matches!(
        unsigned.send(&n).await,
        Err(NotifyError::Permanent(_))
    ));
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn answers_are_classified_for_retrying() {
    let (addr, _log) = recorder(StatusCode::OK, "ok").await;
    let n = notification("1", NotificationKind::Firing, vec![alert(1)]);
    for (code, transient) in [
        (500, true),
        (503, true),
        (429, true),
        (408, true),
        (400, false),
        (404, false),
        (410, false),
        // Redirects are not followed: a moved webhook is a configuration error.
        (302, false),
    ] {
        let url = format!("http://{addr}/status/{code}");
        let notifier = vitals_notify::build("hook", &spec(url, Some(SECRET))).unwrap();
        let e = notifier.send(&n).await.unwrap_err();
        assert_eq!(e.is_transient(), transient, "{code}: {e:?}");
        assert!(e.to_string().contains(&format!("HTTP {code}")), "{e}");
        assert!(e.to_string().contains("status body"), "{e}");
    }
}

#[tokio::test]
async fn refused_connections_and_slow_servers_are_transient() {
    let n = notification("1", NotificationKind::Firing, vec![alert(1)]);
    let notifier = vitals_notify::build("hook", &spec(refused_url(), None)).unwrap();
    let e = notifier.send(&n).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert!(!e.to_string().contains("/hook"), "{e}");

    let (addr, _log) = recorder(StatusCode::OK, "ok").await;
    let slow = NotifierSpec::Webhook(WebhookSpec {
        url: format!("http://{addr}/slow"),
        secret: None,
        headers: BTreeMap::new(),
        timeout: Duration::from_millis(300),
    });
    let notifier = vitals_notify::build("hook", &slow).unwrap();
    let e = notifier.send(&n).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[test]
fn invalid_specs_are_refused_at_build_time_naming_the_key() {
    let e = vitals_notify::build("hook", &spec("ftp://x/y".into(), None))
        .err()
        .unwrap();
    assert!(e.starts_with("notifier \"hook\" (webhook): url:"), "{e}");
    let mut s = WebhookSpec {
        url: "http://127.0.0.1:1/x".into(),
        secret: None,
        headers: BTreeMap::new(),
        timeout: Duration::from_secs(1),
    };
    s.headers.insert("X-Bad".into(), "line\nbreak".into());
    let e = vitals_notify::build("hook", &NotifierSpec::Webhook(s))
        .err()
        .unwrap();
    assert!(e.contains("headers.X-Bad"), "{e}");
}
