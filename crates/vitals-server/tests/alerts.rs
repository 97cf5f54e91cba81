//! Alerting end to end inside one process: pushed results → rules → alerts → durable outbox →
//! a real webhook notifier → a loopback receiver that checks the HMAC signature. Plus
//! acknowledgement, silences, dependencies, population rules and the notification log.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use vitals_server::{router, AppState};

/// What the receiver got: (headers, body).
type Inbox = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A webhook receiver on loopback that rejects a wrong signature with 401.
async fn receiver(secret: &'static str) -> (String, Inbox) {
    use hmac::{Hmac, Mac};
    let inbox: Inbox = Arc::default();
    let got = inbox.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                let ts = headers
                    .get("x-vitals-timestamp")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let sig = headers
                    .get("x-vitals-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(ts.as_bytes());
                mac.update(b".");
                mac.update(&body);
                let want = format!("sha256={}", hex(&mac.finalize().into_bytes()));
                if sig != want {
                    return StatusCode::UNAUTHORIZED;
                }
                got.lock()
                    .unwrap()
                    .push((headers, serde_json::from_slice(&body).unwrap()));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}/hook"), inbox)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct T {
    _t: vitals_app::testing::TestApp,
    app: AppState,
    inbox: Inbox,
}

impl T {
    async fn new(rules: &str) -> T {
        let (url, inbox) = receiver("s3cret").await;
        let config = format!(
            r#"
[[asset]]
id = "db"
[[asset]]
id = "app"
parents = ["db"]
metadata = {{ contacts = ["ops@example.org", "gone@example.org"], unsubscribed = ["gone@example.org"] }}
[[asset]]
id = "c1"
groups = ["clinics"]
[[asset]]
id = "c2"
groups = ["clinics"]

[server]
public_url = "http://vitals.test"

[[notifier]]
id = "hook"
type = "webhook"
url = "{url}"
secret = "s3cret"

{rules}
"#
        );
        let t = vitals_app::testing::spawn_app(&config).await;
        let app = t.state().clone();
        T { _t: t, app, inbox }
    }

    async fn call(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(if body.is_null() {
                Body::empty()
            } else {
                Body::from(body.to_string())
            })
            .unwrap();
        let resp = router(self.app.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn push(&self, asset: &str, check: &str, status: &str) {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/results",
                json!({"results": [{"asset": asset, "check": check, "status": status}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // Distinct milliseconds for distinct observations.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    async fn tick(&self) {
        self.app
            .pipeline
            .with_engine(|e, a, now, out| e.tick(a, now, out))
            .await
            .unwrap();
    }

    /// Waits (bounded) until the receiver has `n` notifications.
    async fn received(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            if self.inbox.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.inbox
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    async fn alerts(&self, q: &str) -> Vec<Value> {
        let (s, v) = self
            .call(Method::GET, &format!("/api/v1/alerts?{q}"), Value::Null)
            .await;
        assert_eq!(s, StatusCode::OK);
        v["alerts"].as_array().unwrap().clone()
    }
}

const THREE_STRIKES: &str = r#"
[[rule]]
id = "down"
status = "crit"
count = 3
recover = 2
notifiers = ["hook"]
"#;

#[tokio::test]
async fn fires_after_n_resolves_after_k_one_notification_each() {
    let t = T::new(THREE_STRIKES).await;
    t.push("db", "port", "crit").await;
    t.push("db", "port", "crit").await;
    let pending = t.alerts("state=pending").await;
    assert_eq!(pending.len(), 1);
    assert!(t.received(1).await.is_empty() || t.inbox.lock().unwrap().is_empty());
    t.push("db", "port", "crit").await;
    let got = t.received(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kind"], "firing");
    assert_eq!(got[0]["alerts"][0]["asset"], "db");
    assert_eq!(
        got[0]["alerts"][0]["url"],
        format!(
            "http://vitals.test/alerts/{}",
            got[0]["alerts"][0]["alert_id"]
        )
    );
    // More bad observations: no more notifications.
    t.push("db", "port", "crit").await;
    t.push("db", "port", "ok").await;
    assert_eq!(t.received(2).await.len(), 1);
    t.push("db", "port", "ok").await;
    let got = t.received(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["kind"], "resolved");
    // Transitions were recorded with reasons.
    let id = got[0]["alerts"][0]["alert_id"].as_i64().unwrap();
    let (_, v) = t
        .call(Method::GET, &format!("/api/v1/alerts/{id}"), Value::Null)
        .await;
    let states: Vec<&str> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["to"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "firing", "resolved"]);
    // The notification log says what went where.
    let (_, v) = t
        .call(Method::GET, "/api/v1/notifications", Value::Null)
        .await;
    let log = v["notifications"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|n| n["state"] == "sent" && n["detail"].as_str().unwrap().contains("200")),
        "{log:?}"
    );
}

#[tokio::test]
async fn acknowledge_then_conflicts_and_404s() {
    let t = T::new(THREE_STRIKES.replace("count = 3", "count = 1").as_str()).await;
    t.push("db", "port", "crit").await;
    t.received(1).await;
    let id = t.alerts("state=firing").await[0]["id"].as_i64().unwrap();
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            json!({"by": "alice", "comment": "on it", "expires": "2h"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alert"]["state"], "acknowledged");
    assert_eq!(v["alert"]["acked_by"], "alice");
    let got = t.received(2).await;
    assert_eq!(got[1]["kind"], "acknowledged");
    assert_eq!(
        t.call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Value::Null
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        t.call(Method::POST, "/api/v1/alerts/9999/ack", Value::Null)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            json!({"expires": "yesterday-ish"}),
        )
        .await;
    assert_eq!(
        (s, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("expires"))
    );
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            json!({"who": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("who"))
    );
}

#[tokio::test]
async fn silences_hold_notifications_until_they_end() {
    let t = T::new(THREE_STRIKES.replace("count = 3", "count = 1").as_str()).await;
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/silences",
            json!({"matchers": {"assets": ["db"]}, "duration": "1h", "author": "bob", "comment": "planned upgrade"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let sid = v["silence"]["id"].as_i64().unwrap();
    t.push("db", "port", "crit").await;
    let firing = t.alerts("state=firing").await;
    assert_eq!(firing.len(), 1);
    assert!(firing[0]["suppressed"]
        .as_str()
        .unwrap()
        .starts_with(&format!("silenced by silence {sid} (bob: planned upgrade)")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(t.inbox.lock().unwrap().is_empty());
    let (_, v) = t.call(Method::GET, "/api/v1/silences", Value::Null).await;
    assert_eq!(v["silences"][0]["active"], true);
    // Ending the silence lets the firing notification out on the next tick.
    assert_eq!(
        t.call(
            Method::DELETE,
            &format!("/api/v1/silences/{sid}"),
            Value::Null
        )
        .await
        .0,
        StatusCode::OK
    );
    t.tick().await;
    let got = t.received(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kind"], "firing");
    // Bad silences are refused with the field named.
    for (body, field) in [
        (
            json!({"duration": "1h", "author": "a", "comment": "c"}),
            "matchers",
        ),
        (
            json!({"matchers": {"assets": ["db"]}, "author": "a", "comment": "c"}),
            "ends",
        ),
        (
            json!({"matchers": {"assets": ["db"]}, "duration": "1h", "comment": "c"}),
            "author",
        ),
        (
            json!({"matchers": {"hosts": ["db"]}, "duration": "1h", "author": "a", "comment": "c"}),
            "matchers.hosts",
        ),
        (
            json!({"matchers": {"assets": ["db"]}, "duration": "soon", "author": "a", "comment": "c"}),
            "duration",
        ),
    ] {
        let (s, v) = t.call(Method::POST, "/api/v1/silences", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
}

#[tokio::test]
async fn a_down_parent_suppresses_its_children_and_says_so() {
    let t = T::new(THREE_STRIKES.replace("count = 3", "count = 1").as_str()).await;
    t.push("db", "port", "crit").await;
    t.push("app", "http", "crit").await;
    let got = t.received(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_all = t.received(2).await;
    assert_eq!(got_all.len(), 1, "only the parent notifies: {got_all:?}");
    assert_eq!(got[0]["alerts"][0]["asset"], "db");
    let child = t.alerts("asset=app").await;
    assert_eq!(child[0]["suppressed"], "suppressed: parent db is down");
    // Parent recovers → the child, still down, is told now, with its contacts.
    t.push("db", "port", "ok").await;
    t.push("db", "port", "ok").await;
    t.tick().await;
    let got = t.received(3).await;
    let child_note = got
        .iter()
        .find(|n| n["alerts"][0]["asset"] == "app")
        .expect("child notified");
    assert_eq!(child_note["kind"], "firing");
    assert_eq!(
        child_note["alerts"][0]["contacts"],
        json!(["ops@example.org"])
    );
}

#[tokio::test]
async fn population_rule_lists_failing_assets_and_resolves_when_empty() {
    let t = T::new(
        r#"
[[rule]]
id = "clinics-import"
kind = "population"
group = "clinics"
test = "import"
score = 3
aggregate_percent = 50
notifiers = ["hook"]
"#,
    )
    .await;
    t.push("c1", "import", "ok").await;
    t.push("c2", "import", "ok").await;
    assert!(t.alerts("").await.is_empty());
    t.push("c1", "import", "crit").await;
    let got = t.received(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["alerts"][0]["assets"], json!(["c1"]));
    assert_eq!(got[0]["alerts"][0]["group"], "clinics");
    t.push("c2", "import", "crit").await;
    assert_eq!(t.alerts("").await[0]["assets"], json!(["c1", "c2"]));
    t.push("c1", "import", "ok").await;
    t.push("c2", "import", "ok").await;
    let got = t.received(2).await;
    assert_eq!(got[1]["kind"], "resolved");
    assert!(t.alerts("").await.is_empty());
}

#[tokio::test]
async fn threshold_rule_on_a_value() {
    let t = T::new(
        r#"
[[rule]]
id = "cert"
kind = "threshold"
value = "cert_days_left"
below = 14
severity = "warn"
notifiers = ["hook"]
"#,
    )
    .await;
    let (s, _) = t
        .call(Method::POST, "/api/v1/results", json!({"results": [{"asset": "db", "check": "tls", "status": "ok", "values": {"cert_days_left": 9.5}}]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = t.received(1).await;
    assert_eq!(got[0]["alerts"][0]["value"], 9.5);
    assert_eq!(got[0]["alerts"][0]["status"], "warn");
}

#[tokio::test]
async fn a_storm_within_group_wait_goes_out_as_one_notification() {
    let t = T::new(
        r#"
[[rule]]
id = "down"
notifiers = ["hook"]
group_wait = "1s"
"#,
    )
    .await;
    for batch in 0..3 {
        let results: Vec<Value> = (0..10)
            .map(|i| json!({"asset": format!("leaf-{batch}-{i}"), "check": "port", "status": "crit"}))
            .collect();
        let (s, _) = t
            .call(
                Method::POST,
                "/api/v1/results",
                json!({ "results": results }),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let got = t.received(1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_all = t.received(2).await;
    assert_eq!(got_all.len(), 1, "one notification, not {}", got_all.len());
    assert_eq!(got[0]["alerts"].as_array().unwrap().len(), 30);
    let (_, v) = t
        .call(Method::GET, "/api/v1/notifications", Value::Null)
        .await;
    let log = v["notifications"].as_array().unwrap();
    assert_eq!(log.len(), 30, "every alert's notification is logged");
    assert!(log.iter().all(|n| n["state"] == "sent"));
}
