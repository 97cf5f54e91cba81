//! The storage boundary of Vitals.
//!
//! One trait, [`Store`], one crate per backend (`vitals-store-sqlite` now, PostgreSQL later),
//! chosen at start-up from the data URL. Queries are runtime strings, not macros, so a backend
//! builds without a live database. Every backend must pass the shared [`conformance`] suite
//! (enable the `conformance` feature in the backend's dev-dependencies and call
//! [`conformance::run_all`]).
//!
//! Invariants every backend keeps:
//! - `append` returns only after the observations are durable (committed).
//! - Writes go through one writer that commits whatever has queued up as one transaction, so
//!   many concurrent small appends cost one commit, not one each.
//! - Reads never block writes (SQLite: WAL and separate read connections).
//! - Nothing here panics on bad data read back; it is an [`StoreError::Corrupt`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
pub use vitals_core::health::{HealthChange, Scored};
use vitals_core::{Observation, Timestamp};

#[cfg(feature = "conformance")]
pub mod conformance;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("invalid data URL {0:?}")]
    BadUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An asset as stored: configured ones are re-synced at every start; pushed ones are created
/// on first report (when configured to) and kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AssetRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub parents: Vec<String>,
    /// Free-form metadata (e.g. the AKTIN node mapping fields).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl AssetRecord {
    /// A bare asset known only by its id (created by a pushed result).
    pub fn named(id: &str) -> AssetRecord {
        AssetRecord {
            id: id.to_string(),
            name: id.to_string(),
            ..AssetRecord::default()
        }
    }
}

/// Which observations to read. All bounds are inclusive; results are newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservationQuery {
    pub asset: String,
    /// `None`: every check of the asset.
    pub check: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: usize,
}

/// One health change of one asset, committed with the observation that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthUpdate {
    pub asset: String,
    pub change: HealthChange,
}

/// A persisted health row: `test` is `Some` for `state[group][test]`, `None` for
/// `severity[group]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRow {
    pub asset: String,
    pub group: String,
    pub test: Option<String>,
    pub value: Scored,
}

/// A notification waiting in (or gone through) the durable outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The notification's own id (unique; the store's key).
    pub id: String,
    pub notifier: String,
    /// Items with the same notifier and group key that are due together go out as one.
    pub group_key: String,
    /// Not sent before this time (grouping window).
    pub not_before: Timestamp,
    pub notification: vitals_core::notify::Notification,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    pub recipients: Vec<String>,
    pub detail: Option<String>,
    pub sent: Option<Timestamp>,
}

/// Delivery outcome of outbox items, written by the delivery worker.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxUpdate {
    pub id: String,
    pub state: String,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    pub recipients: Vec<String>,
    pub detail: Option<String>,
    pub sent: Option<Timestamp>,
}

/// Which alerts to list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertQuery {
    /// `None`: every state.
    pub states: Option<Vec<vitals_core::alert::AlertState>>,
    pub asset: Option<String>,
    pub limit: usize,
}

/// Everything one pipeline round writes, committed as one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitBatch {
    /// New assets (created by pushed results). Existing ids are replaced.
    pub assets: Vec<AssetRecord>,
    pub observations: Vec<Observation>,
    /// Applied in order.
    pub health: Vec<HealthUpdate>,
    /// Idempotency keys of pushed results, remembered so a repeat is accepted once.
    pub result_ids: Vec<String>,
    /// Alerts created or changed (whole records, by id).
    pub alerts: Vec<vitals_core::alert::Alert>,
    /// Their transitions, in order.
    pub alert_events: Vec<(i64, vitals_core::alert::Transition)>,
    /// Notifications to deliver.
    pub outbox: Vec<OutboxItem>,
    /// Silences created or changed.
    pub silences: Vec<vitals_core::alert::Silence>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits a whole batch atomically: all of it, or (on error) none of it.
    async fn commit(&self, batch: CommitBatch) -> Result<()>;

    /// Which of these idempotency keys were committed before.
    async fn seen_result_ids(&self, ids: &[String]) -> Result<HashSet<String>>;

    /// Open alerts (pending, firing, acknowledged), for a warm start.
    async fn open_alerts(&self) -> Result<Vec<vitals_core::alert::Alert>>;

    /// Alerts newest first, filtered.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<vitals_core::alert::Alert>>;

    /// One alert and its transitions (oldest first).
    async fn alert(
        &self,
        id: i64,
    ) -> Result<
        Option<(
            vitals_core::alert::Alert,
            Vec<vitals_core::alert::Transition>,
        )>,
    >;

    /// The highest alert and silence ids in use (new ids continue after them).
    async fn max_ids(&self) -> Result<(i64, i64)>;

    /// Every silence that has not ended before `since`.
    async fn silences(&self, since: Timestamp) -> Result<Vec<vitals_core::alert::Silence>>;

    /// Pending outbox items due at `now` (next attempt and grouping window passed), oldest
    /// first, at most `limit`.
    async fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>>;

    /// The earliest time a pending item becomes due, if any is pending.
    async fn outbox_next_due(&self) -> Result<Option<Timestamp>>;

    /// Records delivery outcomes.
    async fn outbox_update(&self, updates: Vec<OutboxUpdate>) -> Result<()>;

    /// The notification log, newest first (optionally of one alert).
    async fn notifications(&self, alert: Option<i64>, limit: usize) -> Result<Vec<OutboxItem>>;

    /// Every persisted health row (for a warm start).
    async fn health_rows(&self) -> Result<Vec<HealthRow>>;

    /// The newest `limit` scores of one check of one asset, newest first.
    async fn recent_scores(&self, asset: &str, check: &str, limit: usize) -> Result<Vec<i64>>;

    /// Observations of one check across assets (all, or those listed), newest first, inclusive
    /// time bounds, at most `limit`.
    async fn check_history(
        &self,
        check: &str,
        assets: Option<&[String]>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<Observation>>;

    /// Inserts or replaces these assets (matched by id). Assets not named are left alone.
    async fn upsert_assets(&self, assets: &[AssetRecord]) -> Result<()>;

    /// Every stored asset, ordered by id.
    async fn assets(&self) -> Result<Vec<AssetRecord>>;

    /// Appends observations; returns after they are committed. The asset and check of each
    /// observation need not be known beforehand (the backend interns them).
    async fn append(&self, observations: Vec<Observation>) -> Result<()>;

    /// The newest observation of every (asset, check) pair, for a warm start after a restart.
    async fn latest(&self) -> Result<Vec<Observation>>;

    /// Observations of one asset (optionally one check) in a time range, newest first, at most
    /// `limit` (which the caller bounds).
    async fn observations(&self, query: &ObservationQuery) -> Result<Vec<Observation>>;

    /// Number of raw observations stored (for metrics and tests).
    async fn count_observations(&self) -> Result<u64>;

    /// Cheap liveness check for `/monitor`: the backend can read and write.
    async fn ping(&self) -> Result<()>;

    /// Flushes queued writes and stops the writer. Later calls fail with [`StoreError::Closed`].
    async fn close(&self) -> Result<()>;
}
