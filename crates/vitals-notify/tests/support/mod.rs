//! Shared test helpers: sample notifications, child processes that die with the test, and a
//! loopback HTTP receiver that records what it was sent.
#![allow(dead_code)] // each test binary uses a different part of this module

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Child;
use std::sync::{Arc, Mutex};
use vitals_core::notify::{AlertView, Notification, NotificationKind};
use vitals_core::{Status, Timestamp};

/// A single-alert view as the alert engine would fill it.
pub fn alert(id: i64) -> AlertView {
    AlertView {
        alert_id: id,
        rule: "minlog2-down".into(),
        title: format!("minlog2-{id}/monitor is CRIT"),
        status: Status::Crit,
        state: "firing".into(),
        asset: Some(format!("minlog2-{id}")),
        asset_name: Some(format!("MinLog2 node {id}")),
        check: Some("monitor".into()),
        group: Some("national".into()),
        assets: vec![],
        reason: "HTTP 503 <Service Unavailable> & retrying".into(),
        value: Some(503.0),
        labels: BTreeMap::from([("site".to_string(), "aarhus".to_string())]),
        started: Timestamp(now_ms() - 120_000),
        resolved: None,
        url: Some(format!("https://vitals.example/alerts/{id}")),
        contacts: vec![],
        template: None,
        details: Default::default(),
    }
}

pub fn notification(id: &str, kind: NotificationKind, alerts: Vec<AlertView>) -> Notification {
    Notification {
        id: id.to_string(),
        notifier: "test".into(),
        kind,
        alerts,
        created: Timestamp(now_ms()),
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that was free a moment ago (for servers that cannot report their own).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub type Log = Arc<Mutex<Vec<Recorded>>>;

/// Serves `router` on 127.0.0.1 with a free port; the server stops with the test's runtime.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A receiver that records every POST and answers with `status` and `reply`; `/status/{code}`
/// answers with that code instead, `/slow` never answers.
pub async fn recorder(status: StatusCode, reply: &'static str) -> (SocketAddr, Log) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let router = Router::new()
        .route(
            "/slow",
            axum::routing::post(|| async {
                std::future::pending::<()>().await;
                StatusCode::OK
            }),
        )
        .route(
            "/status/{code}",
            axum::routing::post(
                |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                    let s = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
                    let mut h = HeaderMap::new();
                    if s.is_redirection() {
                        h.insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
                    }
                    (s, h, "status body").into_response()
                },
            ),
        )
        .fallback(axum::routing::post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let l = l.clone();
                async move {
                    l.lock().unwrap().push(Recorded {
                        path: uri.path().to_string(),
                        headers,
                        body,
                    });
                    (status, reply)
                }
            },
        ));
    let addr = serve(router).await;
    (addr, log)
}

/// A URL with nothing listening behind it.
pub fn refused_url() -> String {
    format!("http://127.0.0.1:{}/hook", free_port())
}
