//! `vitals serve` on PostgreSQL (`[server] store = "postgres://…"`), against the real server on
//! loopback (`VITALS_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`): each test
//! has a database of its own, dropped at the end.

mod common;

use common::*;
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn serve_on_postgres_keeps_acknowledged_results_across_kill_9_and_notifies_once() {
    let db = Db::new("kill");
    let port = free_port();
    let received = receiver(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
data_dir = "data"
self_check = false
store = "{}"
lease = "3s"

[[notifier]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
timeout = "2s"

[[rule]]
id = "down"
notifiers = ["hook"]
"#,
            db.url()
        ),
    )
    .unwrap();
    let mut s = Server::start(dir.path(), &config);
    let acked = kill9_while_writing(&mut s);

    let s = Server::start(dir.path(), &config);
    let obs = s.json("/api/v1/assets/node-1/observations?check=import&limit=10000");
    let stored: std::collections::HashSet<i64> = obs["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            vitals_core::Timestamp::parse(o["time"].as_str().unwrap())
                .unwrap()
                .0
        })
        .collect();
    let missing: Vec<&i64> = acked.iter().filter(|t| !stored.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged results lost on PostgreSQL",
        missing.len(),
        acked.len()
    );
    // The data went to PostgreSQL, not to a file.
    assert!(!dir.path().join("data").join("vitals.db").exists());

    // A failure notifies once, through the outbox claims.
    let (code, body) = http_post(
        &s.addr,
        "/api/v1/results",
        "application/json",
        r#"{"results": [{"asset": "db", "check": "port", "status": "crit", "reason": "connection refused"}]}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        wait_until(30, || !received.lock().unwrap().is_empty()),
        "not delivered"
    );
    assert!(wait_until(10, || {
        s.json("/api/v1/notifications")["notifications"][0]["state"] == "sent"
    }));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "delivered more than once"
    );
    s.stop();
}

#[test]
fn a_bad_store_url_is_refused_at_start_naming_it_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\nself_check = false\nstore = \"mysql://root:hunter2@127.0.0.1/x\"\n",
    )
    .unwrap();
    let (code, _out, err) = vitals(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("sqlite://PATH"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}
