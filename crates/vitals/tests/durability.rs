//! What Vitals acknowledged survives `kill -9`: pushed results answered 2xx, and notifications
//! in the outbox (delivered after the restart, once).

mod common;

use common::*;
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn acknowledged_results_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\nself_check = false\n",
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
            let t = o["time"].as_str().unwrap();
            chrono_ms(t)
        })
        .collect();
    let missing: Vec<&i64> = acked.iter().filter(|t| !stored.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged results lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    s.stop();
}

/// Epoch ms of `1970-…T…Z` with millisecond precision (the API's time format).
fn chrono_ms(t: &str) -> i64 {
    vitals_core::Timestamp::parse(t).expect("RFC 3339 time").0
}

#[test]
fn a_notification_pending_at_kill_9_is_delivered_once_after_restart() {
    // The receiver's port is reserved but nobody listens yet: deliveries fail (refused).
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
data_dir = "data"
self_check = false

[[notifier]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
timeout = "2s"

[[rule]]
id = "down"
notifiers = ["hook"]
"#
        ),
    )
    .unwrap();
    let mut s = Server::start(dir.path(), &config);
    let (code, body) = http_post(
        &s.addr,
        "/api/v1/results",
        "application/json",
        r#"{"results": [{"asset": "db", "check": "port", "status": "crit", "reason": "connection refused"}]}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    // The notification is in the outbox and has failed at least once.
    assert!(wait_until(20, || {
        let v = s.json("/api/v1/notifications");
        v["notifications"].as_array().is_some_and(|n| {
            n.len() == 1
                && n[0]["attempts"].as_u64().unwrap_or(0) >= 1
                && n[0]["state"] == "pending"
        })
    }));
    s.kill9();

    let received = receiver(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let s = Server::start(dir.path(), &config);
    assert!(
        wait_until(30, || !received.lock().unwrap().is_empty()),
        "not delivered after restart"
    );
    std::thread::sleep(Duration::from_secs(2));
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "delivered more than once: {got:?}");
    let n: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(n["kind"], "firing");
    assert_eq!(n["alerts"][0]["asset"], "db");
    let log = s.json("/api/v1/notifications");
    assert_eq!(log["notifications"][0]["state"], "sent");
    s.stop();
}

#[test]
fn online_backup_then_restore_gives_a_working_server_with_all_history() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\nself_check = false\n",
    )
    .unwrap();
    let s = Server::start(dir.path(), &config);
    let results: Vec<serde_json::Value> = (0..500)
        .map(|i| serde_json::json!({"asset": "node-1", "check": "import", "status": if i % 7 == 0 { "crit" } else { "ok" }, "time": 1_700_000_000_000i64 + i}))
        .collect();
    let (code, body) = http_post(
        &s.addr,
        "/api/v1/results",
        "application/json",
        &serde_json::json!({ "results": results }).to_string(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_post(
        &s.addr,
        "/api/v1/silences",
        "application/json",
        r#"{"matchers": {"assets": ["node-1"]}, "duration": "2h", "author": "ops", "comment": "restore test"}"#,
    )
    .unwrap();
    assert_eq!(code, 201, "{body}");

    // Backup while the server runs (and keeps accepting writes).
    let dest = dir.path().join("backup.db");
    let out = std::process::Command::new(BIN)
        .args([
            "backup",
            dest.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second backup to the same place is refused rather than overwriting.
    let again = std::process::Command::new(BIN)
        .args([
            "backup",
            dest.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    let before = s.json("/api/v1/assets/node-1/observations?limit=10000");
    s.stop();

    // Restore = put the file in a data directory as vitals.db and start.
    let restored = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(restored.path().join("data")).unwrap();
    std::fs::copy(&dest, restored.path().join("data/vitals.db")).unwrap();
    let config2 = restored.path().join("vitals.toml");
    std::fs::write(
        &config2,
        "[server]\ndata_dir = \"data\"\nself_check = false\n",
    )
    .unwrap();
    let s = Server::start(restored.path(), &config2);
    let after = s.json("/api/v1/assets/node-1/observations?limit=10000");
    assert_eq!(after["observations"].as_array().unwrap().len(), 500);
    assert_eq!(after, before);
    assert_eq!(
        s.json("/api/v1/silences")["silences"][0]["comment"],
        "restore test"
    );
    assert_eq!(s.json("/api/v1/assets/node-1")["status"], "ok");
    s.stop();
}
