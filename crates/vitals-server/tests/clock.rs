//! What time alone decides, on a clock the test moves: the app runs on a `ManualClock`, so hours
//! pass in a step — reminders, escalation, a missed heartbeat — with nothing else faked.

use serde_json::json;
use std::time::Duration;
use vitals_app::testing::{spawn_app_on, TestApp};
use vitals_core::notify::NotificationKind;
use vitals_core::{ManualClock, Status};

const CONFIG: &str = r#"
[[asset]]
id = "db"

[[check]]
asset = "db"
name = "backup"
type = "push"

[[check]]
asset = "db"
name = "nightly"
type = "heartbeat"
interval = "1h"
grace = "10m"

[[notifier]]
id = "ops"
type = "webhook"
url = "http://127.0.0.1:9/ops"

[[notifier]]
id = "pager"
type = "webhook"
url = "http://127.0.0.1:9/pager"

[[rule]]
id = "backup-failing"
checks = ["backup"]
notifiers = ["ops"]
reminder = "4h"
escalate = [{ after = "30m", notifiers = ["pager"] }]

[[rule]]
id = "heartbeats"
checks = ["nightly"]
notifiers = ["ops"]
"#;

/// The kinds of the notifications in the outbox for `rule`, in order of creation, once there
/// are `n` of them (the pipeline's time-driven pass runs within a second or two).
async fn kinds(t: &TestApp, rule: &str, n: usize) -> Vec<(NotificationKind, String)> {
    let mut got = Vec::new();
    for _ in 0..100 {
        let mut items = t.notifications().await;
        items.sort_by_key(|i| i.notification.created);
        got = items
            .into_iter()
            .filter(|i| i.notification.alerts.iter().any(|a| a.rule == rule))
            .map(|i| (i.notification.kind, i.notifier))
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} notifications of {rule}, got {got:?}");
}

#[tokio::test]
async fn reminders_and_escalation_come_on_time_alone() {
    let clock = ManualClock::starting_now();
    let t = spawn_app_on(CONFIG, clock.clone()).await;
    let r = t
        .push(json!([{"asset": "db", "check": "backup", "status": "crit"}]))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        kinds(&t, "backup-failing", 1).await,
        vec![(NotificationKind::Firing, "ops".to_string())]
    );
    // Half an hour, unacknowledged, no new observation: the pager is added.
    clock.advance(Duration::from_secs(31 * 60));
    let k = kinds(&t, "backup-failing", 2).await;
    assert_eq!(k[1], (NotificationKind::Escalation, "pager".to_string()));
    // Four hours since the last notification: a reminder to everyone told so far.
    clock.advance(Duration::from_secs(4 * 3600));
    let k = kinds(&t, "backup-failing", 3).await;
    assert!(
        k[2..]
            .iter()
            .all(|(kind, _)| *kind == NotificationKind::Reminder),
        "{k:?}"
    );
    // Nothing more while the clock stands still.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let before = k.len();
    assert_eq!(kinds(&t, "backup-failing", 0).await.len(), before);
}

#[tokio::test]
async fn a_heartbeat_is_missed_when_the_clock_passes_its_grace() {
    let clock = ManualClock::starting_now();
    let t = spawn_app_on(CONFIG, clock.clone()).await;
    let ping = t
        .client
        .get(format!("{}/ping/db-nightly", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    t.wait_for("db", "nightly", |o| o.status == Status::Ok)
        .await;
    // Within the interval and its grace: still fine, however long the test takes.
    clock.advance(Duration::from_secs(65 * 60));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        t.wait_for("db", "nightly", |_| true).await.status,
        Status::Ok
    );
    // Past it: missed, and the rule fires.
    clock.advance(Duration::from_secs(10 * 60));
    let o = t
        .wait_for("db", "nightly", |o| o.status == Status::Crit)
        .await;
    assert!(
        o.reason.contains("missed") || o.reason.contains("no ping"),
        "{}",
        o.reason
    );
    assert_eq!(
        kinds(&t, "heartbeats", 1).await,
        vec![(NotificationKind::Firing, "ops".to_string())]
    );
}
