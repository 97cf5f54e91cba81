//! The delivery worker: durable outbox → notifiers.
//!
//! Every notification was committed to the outbox (with the alert change that caused it)
//! before this worker sees it. The worker takes due items, merges those of one notifier and
//! group key into one notification (grouping), sends, and records the outcome of each item:
//! `sent` with recipients and the receiver's answer, `failed` with the reason for a permanent
//! error, or — for a transient one — a retry with exponential backoff (1 s, 2 s, 4 s … capped at
//! 1 h; given up after [`MAX_ATTEMPTS`]).
//!
//! Delivery is at-least-once: an item is marked `sent` right after the receiver accepted it. A
//! crash in the milliseconds between the two sends it again after the restart, with the same
//! notification id (header `X-Vitals-Notification`), so receivers can drop the repeat. Nothing
//! committed is ever lost.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use vitals_core::notify::Notification;
use vitals_core::Timestamp;
use vitals_store::{OutboxItem, OutboxUpdate, Store};

/// Attempts before a transiently failing notification is given up.
pub const MAX_ATTEMPTS: u32 = 20;
/// Most items taken in one pass.
const BATCH: usize = 10_000;

/// Receiver's acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub recipients: Vec<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeliverError {
    /// Worth retrying (connection refused, timeout, 5xx, 429).
    Transient(String),
    /// Not worth retrying (rejected, bad address, unknown notifier).
    Permanent(String),
}

/// Sends one notification through the named notifier.
#[async_trait]
pub trait Deliver: Send + Sync {
    async fn deliver(&self, notifier: &str, n: &Notification) -> Result<Delivered, DeliverError>;
}

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(12)).min(Duration::from_secs(3600))
}

/// Merges items of one notifier and group key into one notification (their alerts together).
fn merge(items: &[OutboxItem]) -> Notification {
    let mut n = items[0].notification.clone();
    for it in &items[1..] {
        for a in &it.notification.alerts {
            if !n.alerts.iter().any(|x| x.alert_id == a.alert_id) {
                n.alerts.push(a.clone());
            }
        }
    }
    n
}

/// One pass: sends everything due at `now`; returns how many items were handled.
pub async fn deliver_due(
    store: &dyn Store,
    deliver: &dyn Deliver,
    now: Timestamp,
) -> Result<usize, vitals_store::StoreError> {
    let due = store.outbox_due(now, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut groups: BTreeMap<(String, String), Vec<OutboxItem>> = BTreeMap::new();
    for it in due {
        groups
            .entry((it.notifier.clone(), it.group_key.clone()))
            .or_default()
            .push(it);
    }
    let mut handled = 0;
    for ((notifier, _), items) in groups {
        let n = merge(&items);
        let result = deliver.deliver(&notifier, &n).await;
        let sent_at = crate::engine_now();
        let updates: Vec<OutboxUpdate> = items
            .iter()
            .map(|it| {
                let attempts = it.attempts + 1;
                match &result {
                    Ok(d) => OutboxUpdate {
                        id: it.id.clone(),
                        state: "sent".into(),
                        attempts,
                        next_attempt: it.next_attempt,
                        last_error: None,
                        recipients: d.recipients.clone(),
                        detail: Some(if items.len() > 1 {
                            format!("{} (grouped: {} alerts)", d.detail, n.alerts.len())
                        } else {
                            d.detail.clone()
                        }),
                        sent: Some(sent_at),
                    },
                    Err(DeliverError::Transient(e)) if attempts < MAX_ATTEMPTS => OutboxUpdate {
                        id: it.id.clone(),
                        state: "pending".into(),
                        attempts,
                        next_attempt: sent_at.add_duration(backoff(attempts)),
                        last_error: Some(e.clone()),
                        recipients: Vec::new(),
                        detail: None,
                        sent: None,
                    },
                    Err(DeliverError::Transient(e)) | Err(DeliverError::Permanent(e)) => {
                        OutboxUpdate {
                            id: it.id.clone(),
                            state: "failed".into(),
                            attempts,
                            next_attempt: it.next_attempt,
                            last_error: Some(e.clone()),
                            recipients: Vec::new(),
                            detail: None,
                            sent: None,
                        }
                    }
                }
            })
            .collect();
        match &result {
            Ok(_) => {
                tracing::info!(notifier = %notifier, kind = n.kind.as_str(), alerts = n.alerts.len(), "notification sent")
            }
            Err(e) => {
                tracing::warn!(notifier = %notifier, error = ?e, "notification not delivered")
            }
        }
        handled += updates.len();
        store.outbox_update(updates).await?;
    }
    Ok(handled)
}

/// Runs the worker until the store closes: after every wake-up (a commit with notifications)
/// and at the earliest retry or grouping time, at least every few seconds.
pub fn spawn(
    store: Arc<dyn Store>,
    deliver: Arc<dyn Deliver>,
    wake: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match deliver_due(&*store, &*deliver, crate::engine_now()).await {
                Ok(n) if n > 0 => continue, // more may be due
                Ok(_) => {}
                Err(vitals_store::StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
            }
            let wait = match store.outbox_next_due().await {
                Ok(Some(t)) => {
                    Duration::from_millis((t.0 - crate::engine_now().0).clamp(0, 5_000) as u64)
                }
                Ok(None) => Duration::from_secs(5),
                Err(vitals_store::StoreError::Closed) => return,
                Err(_) => Duration::from_secs(5),
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}
