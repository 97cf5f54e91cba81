//! Vitals watching itself.
//!
//! - **Dead or stalled workers.** Once a second the worker registry is read; if a worker died
//!   or stalled, that is logged, told to every notifier directly, `/monitor` says `FAIL`
//!   naming it for [`GRACE`], and the process exits with status 70 so that its supervisor
//!   (systemd `Restart=on-failure`, a container runtime) starts it again. A restart is the
//!   one repair that always works: state is in the store, pushes were answered only after
//!   commit, notifications wait in the outbox.
//! - **A store that refuses writes** (a full disk) cannot take an alert about itself through
//!   the outbox it cannot write: after [`STORE_DEBOUNCE`] of failing writes every notifier is
//!   told directly, again every [`STORE_REMIND`] while it lasts, and once more when writes
//!   succeed again.

use crate::deliver::Notifiers;
use std::sync::Arc;
use std::time::Duration;
use vitals_core::notify::{AlertView, Notification, NotificationKind};
use vitals_core::{Status, Timestamp};
use vitals_scheduler::liveness::Workers;
use vitals_scheduler::Metrics;

/// How long `/monitor` names a failed worker before the process exits.
pub const GRACE: Duration = Duration::from_secs(2);
/// Exit status after a worker failed (EX_SOFTWARE).
pub const EXIT_WORKER_FAILED: i32 = 70;
/// Store writes must fail this long before notifiers hear of it (a busy moment is not news).
pub const STORE_DEBOUNCE: Duration = Duration::from_secs(10);
pub const STORE_REMIND: Duration = Duration::from_secs(3600);

fn note(
    kind: NotificationKind,
    title: String,
    reason: String,
    check: &str,
    now: Timestamp,
) -> Notification {
    Notification {
        id: format!("vitals-{check}-{}-{}", kind.as_str(), now.0),
        notifier: String::new(),
        kind,
        alerts: vec![AlertView {
            alert_id: 0,
            rule: "vitals-self".into(),
            title,
            status: if kind == NotificationKind::Resolved {
                Status::Ok
            } else {
                Status::Crit
            },
            state: if kind == NotificationKind::Resolved {
                "resolved".into()
            } else {
                "firing".into()
            },
            asset: Some(crate::SELF_ASSET.into()),
            asset_name: Some("Vitals (this server)".into()),
            check: Some(check.into()),
            group: None,
            assets: Vec::new(),
            reason,
            value: None,
            labels: Default::default(),
            started: now,
            resolved: (kind == NotificationKind::Resolved).then_some(now),
            url: None,
            contacts: Vec::new(),
            template: None,
            details: Default::default(),
        }],
        created: now,
    }
}

/// Watches workers and the store until the process ends.
pub fn spawn(
    workers: Arc<Workers>,
    metrics: Arc<Metrics>,
    notifiers: Arc<Notifiers>,
    exit_on_failure: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut told: Option<Timestamp> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = vitals_core::SystemClock::now(); // liveness is the machine's time
            if let Some((name, why)) = workers.failed(now.0) {
                tracing::error!(worker = name, reason = %why, "a worker failed; Vitals exits so that its supervisor restarts it");
                let n = note(
                    NotificationKind::Firing,
                    format!("Vitals restarts: its {name} worker failed"),
                    format!("{name}: {why}. Vitals exits (status {EXIT_WORKER_FAILED}) so that its supervisor starts it again."),
                    name,
                    now,
                );
                let _ = tokio::time::timeout(Duration::from_secs(10), notifiers.send_all(&n)).await;
                tokio::time::sleep(GRACE).await;
                if exit_on_failure {
                    std::process::exit(EXIT_WORKER_FAILED);
                }
                // In tests the process stays: /monitor goes on naming the failed worker.
                return;
            }
            match metrics.store_failure() {
                Some((since, why)) if now.0 - since >= STORE_DEBOUNCE.as_millis() as i64 => {
                    let due = told.is_none_or(|t| now.0 - t.0 >= STORE_REMIND.as_millis() as i64);
                    if due {
                        let buffered = metrics
                            .observations_buffered
                            .load(std::sync::atomic::Ordering::Relaxed);
                        let n = note(
                            NotificationKind::Firing,
                            "Vitals cannot write to its store".into(),
                            format!(
                                "writes fail since {}: {why}. {buffered} probe observation(s) wait in memory; pushes are refused (503) until it recovers.",
                                Timestamp(since).to_rfc3339()
                            ),
                            "store",
                            now,
                        );
                        tracing::error!(reason = %why, "the store refuses writes; telling every notifier directly");
                        notifiers.send_all(&n).await;
                        told = Some(now);
                    }
                }
                Some(_) => {}
                None => {
                    if told.take().is_some() {
                        let n = note(
                            NotificationKind::Resolved,
                            "Vitals writes to its store again".into(),
                            "the store takes writes again; buffered observations were stored"
                                .into(),
                            "store",
                            now,
                        );
                        notifiers.send_all(&n).await;
                    }
                }
            }
        }
    })
}
