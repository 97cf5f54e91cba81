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
use vitals_core::{Clock, SharedClock, SystemClock, Timestamp};
use vitals_store::prelude::*;
use vitals_store::{OutboxItem, OutboxState, OutboxUpdate};

/// Attempts before a transiently failing notification is given up.
pub const MAX_ATTEMPTS: u32 = 20;
/// Most items claimed in one pass.
const BATCH: usize = 1_000;
/// How long a claim lasts. A worker stops delivering a pass's groups after half of it and
/// gives the rest back, so a claim never expires while its holder still works on it; a
/// claim of a worker that died is taken over once it expires.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

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
    /// Not worth retrying (rejected, bad address).
    Permanent(String),
    /// The notifier is not configured (removed or renamed on reload): the notification is
    /// kept, not failed, and waits until a notifier of that name exists again.
    Unconfigured(String),
}

/// How long a notification for an unconfigured notifier waits before it is looked at again.
pub const UNCONFIGURED_WAIT: Duration = Duration::from_secs(10);

/// Sends one notification through the named notifier.
#[async_trait]
pub trait Deliver: Send + Sync {
    async fn deliver(&self, notifier: &str, n: &Notification) -> Result<Delivered, DeliverError>;
}

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(12)).min(Duration::from_secs(3600))
}

/// Merges items of one notifier and group key into one notification (their alerts together).
/// A merged notification has an id of its own, derived from its items' ids: stable across
/// retries of the same items, different from any single item's (receivers that drop repeats
/// by id must not drop a merge that carries more than a notification they saw before).
fn merge(items: &[OutboxItem]) -> Notification {
    let mut n = items[0].notification.clone();
    if items.len() > 1 {
        let mut ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        ids.sort_unstable();
        let digest = vitals_core::notify::short_digest(&ids.join("\n"));
        n.id = format!("group-{digest}");
    }
    for it in &items[1..] {
        for a in &it.notification.alerts {
            if !n.alerts.iter().any(|x| x.alert_id == a.alert_id) {
                n.alerts.push(a.clone());
            }
        }
    }
    n
}

/// One pass: claims what is due at `now` as `owner` (one name per process: a restarted process
/// with the same name takes back its claims at once), sends it, and records the outcomes;
/// returns how many items were handled.
pub async fn deliver_due(
    store: &dyn Store,
    deliver: &dyn Deliver,
    owner: &str,
    clock: &dyn Clock,
) -> Result<usize, vitals_store::StoreError> {
    let now = clock.now();
    let lease = CLAIM_LEASE.as_millis() as i64;
    let until = Timestamp(now.0 + lease);
    let due = store.outbox_claim(owner, now, until, BATCH).await?;
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
    let mut groups = groups.into_iter();
    while let Some(((notifier, _), items)) = groups.next() {
        if clock.now().0 >= now.0 + lease / 2 {
            // Give back what this pass has not tried yet, untouched, before the claim runs out.
            let release: Vec<OutboxUpdate> = std::iter::once(items)
                .chain(groups.map(|(_, v)| v))
                .flatten()
                .map(|it| OutboxUpdate {
                    id: it.id,
                    state: OutboxState::Pending,
                    attempts: it.attempts,
                    next_attempt: it.next_attempt,
                    last_error: it.last_error,
                    recipients: Vec::new(),
                    detail: None,
                    sent: None,
                })
                .collect();
            store.outbox_update(owner, release).await?;
            break;
        }
        let n = merge(&items);
        let result = deliver.deliver(&notifier, &n).await;
        let sent_at = clock.now();
        let updates: Vec<OutboxUpdate> = items
            .iter()
            .map(|it| {
                let attempts = it.attempts + 1;
                match &result {
                    Ok(d) => OutboxUpdate {
                        id: it.id.clone(),
                        state: OutboxState::Sent,
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
                        state: OutboxState::Pending,
                        attempts,
                        next_attempt: sent_at.add_duration(backoff(attempts)),
                        last_error: Some(e.clone()),
                        recipients: Vec::new(),
                        detail: None,
                        sent: None,
                    },
                    Err(DeliverError::Unconfigured(e)) => OutboxUpdate {
                        id: it.id.clone(),
                        state: OutboxState::Pending,
                        // Not an attempt: nothing was tried, nothing is given up.
                        attempts: it.attempts,
                        next_attempt: sent_at.add_duration(UNCONFIGURED_WAIT),
                        last_error: Some(e.clone()),
                        recipients: Vec::new(),
                        detail: None,
                        sent: None,
                    },
                    Err(DeliverError::Transient(e)) | Err(DeliverError::Permanent(e)) => {
                        OutboxUpdate {
                            id: it.id.clone(),
                            state: OutboxState::Failed,
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
        let count = updates.len();
        handled += count;
        let applied = store.outbox_update(owner, updates).await?;
        if applied < count {
            tracing::warn!(notifier = %notifier, "outbox claim was lost while delivering; another worker took it over");
        }
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
    spawn_with(store, deliver, wake, || {})
}

/// The claim owner of the only delivery worker of a store (an embedded store has one process).
pub const LOCAL_OWNER: &str = "local";

/// [`spawn`], calling `alive` at every turn of the loop (liveness for `/monitor`).
pub fn spawn_with(
    store: Arc<dyn Store>,
    deliver: Arc<dyn Deliver>,
    wake: Arc<tokio::sync::Notify>,
    alive: impl Fn() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    spawn_owned(
        store,
        deliver,
        wake,
        LOCAL_OWNER.to_string(),
        SystemClock::shared(),
        alive,
    )
}

/// [`spawn_with`] claiming as `owner`: each process sharing a store needs a name of its own.
pub fn spawn_owned(
    store: Arc<dyn Store>,
    deliver: Arc<dyn Deliver>,
    wake: Arc<tokio::sync::Notify>,
    owner: String,
    clock: SharedClock,
    alive: impl Fn() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            alive();
            match deliver_due(&*store, &*deliver, &owner, &*clock).await {
                Ok(n) if n > 0 => continue, // more may be due
                Ok(_) => {}
                Err(vitals_store::StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
            }
            let wait = match store.outbox_next_due().await {
                Ok(Some(t)) => Duration::from_millis((t.0 - clock.now().0).clamp(0, 5_000) as u64),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, alert: i64) -> OutboxItem {
        let mut n = Notification::test("ops", "t", Timestamp(0), None);
        n.id = id.to_string();
        n.alerts[0].alert_id = alert;
        OutboxItem {
            id: id.to_string(),
            notifier: "ops".into(),
            group_key: "g".into(),
            not_before: Timestamp(0),
            notification: n,
            state: OutboxState::Pending,
            attempts: 0,
            next_attempt: Timestamp(0),
            last_error: None,
            recipients: vec![],
            detail: None,
            sent: None,
        }
    }

    #[test]
    fn a_merged_notification_has_its_own_id_stable_across_retries() {
        let (a, b) = (item("n-1", 1), item("n-2", 2));
        assert_eq!(merge(std::slice::from_ref(&a)).id, "n-1");
        let m = merge(&[a.clone(), b.clone()]);
        assert!(m.id.starts_with("group-") && m.id != "n-1" && m.id != "n-2");
        assert_eq!(m.alerts.len(), 2);
        // A retry may claim the same items in another order: the receiver sees the same id.
        assert_eq!(merge(&[b, a.clone()]).id, m.id);
        assert_ne!(merge(&[a, item("n-3", 3)]).id, m.id);
    }
}
