//! `vitals notify test NOTIFIER`: sends a clearly marked test message through one configured
//! notifier, directly (not through the outbox or a running server), and reports what the
//! receiver answered. Exit 0 when delivered, 1 when not, 2 when the configuration is wrong.

use std::path::PathBuf;
use vitals_config::Config;
use vitals_core::notify::Notification;

/// What happened, as printed and as the exit code.
pub fn test(config: Option<PathBuf>, notifier: &str) -> (u8, String) {
    let cfg = match crate::ops::config(config) {
        Ok(c) => c,
        Err(e) => return (2, format!("vitals notify test: {e:#}")),
    };
    test_with(&cfg, notifier)
}

fn test_with(cfg: &Config, notifier: &str) -> (u8, String) {
    let Some(nc) = cfg.notifiers.iter().find(|n| n.id == notifier) else {
        let known: Vec<&str> = cfg.notifiers.iter().map(|n| n.id.as_str()).collect();
        return (
            2,
            if known.is_empty() {
                format!("vitals notify test: no notifier {notifier:?}: the configuration has no [[notifier]]")
            } else {
                format!(
                    "vitals notify test: no notifier {notifier:?} (configured: {})",
                    known.join(", ")
                )
            },
        );
    };
    let n = match vitals_notify::build(&nc.id, &nc.spec) {
        Ok(n) => n,
        Err(e) => return (2, format!("vitals notify test: {e}")),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return (
                1,
                format!("vitals notify test: cannot start the runtime: {e}"),
            )
        }
    };
    let by = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(
            || "vitals notify test".to_string(),
            |u| format!("{u} (vitals notify test)"),
        );
    let url = cfg.server.public_url.clone();
    let message = Notification::test(&nc.id, &by, vitals_core::SystemClock::now(), url);
    match rt.block_on(n.send(&message)) {
        Ok(d) => (
            0,
            format!(
                "test message {} delivered through {} ({}): {}{}",
                message.id,
                nc.id,
                nc.spec.type_name(),
                d.detail,
                if d.recipients.is_empty() {
                    String::new()
                } else {
                    format!("; to {}", d.recipients.join(", "))
                }
            ),
        ),
        Err(e) => (
            1,
            format!(
                "test message through {} ({}) NOT delivered ({}): {}",
                nc.id,
                nc.spec.type_name(),
                if e.is_transient() {
                    "transient: the receiver was unreachable or busy"
                } else {
                    "permanent: the receiver refused it"
                },
                e.message()
            ),
        ),
    }
}
