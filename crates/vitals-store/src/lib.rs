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

pub mod cluster;
pub mod codec;
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

impl StoreError {
    /// The same error again (for answering several callers of one failed commit).
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::Backend(s) => StoreError::Backend(s.clone()),
            StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
            StoreError::Closed => StoreError::Closed,
            StoreError::BadUrl(s) => StoreError::BadUrl(s.clone()),
        }
    }
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

/// Where an outbox item is in its life: `Pending` (waiting to be due) → `Claimed` (a delivery
/// worker holds it until its claim expires) → `Sent`, `Failed` (given up), or `Pending` again
/// (a retry later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Pending,
    Claimed,
    Sent,
    Failed,
}

impl OutboxState {
    pub const ALL: [OutboxState; 4] = [
        OutboxState::Pending,
        OutboxState::Claimed,
        OutboxState::Sent,
        OutboxState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Claimed => "claimed",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
        }
    }

    /// The state stored as [`as_str`](Self::as_str); `None` for anything else.
    pub fn parse(s: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still to be delivered (pending or claimed).
    pub fn is_open(self) -> bool {
        matches!(self, OutboxState::Pending | OutboxState::Claimed)
    }
}

impl std::fmt::Display for OutboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    pub state: OutboxState,
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
    /// `Pending` (a retry, or a release of an untried claim), `Sent` or `Failed`.
    pub state: OutboxState,
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

/// What a commit did beyond storing the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Indices into `CommitBatch::observations` that were not stored: duplicates.
    pub duplicates: Vec<usize>,
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
    /// Replicas: inbox messages this commit consumed, with each one's answer (JSON; empty:
    /// nobody waits for one).
    pub inbox_done: Vec<(i64, String)>,
    /// Replicas: the health of the assets this commit touched, for the feed (written only
    /// while the store has a feed writer, see [`cluster::Cluster::set_feed`]).
    pub feed_health: Option<serde_json::Value>,
}

// --- housekeeping ---

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the store; ignored on append.
    pub id: i64,
    pub time: Timestamp,
    /// Who: the token's name, or `local` without tokens.
    pub actor: String,
    /// What: e.g. `POST /api/v1/silences`.
    pub action: String,
    /// What it was about: e.g. `alert 42`.
    pub target: String,
    /// Parameters with secrets masked.
    pub params: serde_json::Value,
    /// `200`, or the status and error.
    pub outcome: String,
}

/// Aggregates of one check over one hour or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub asset: String,
    pub check: String,
    pub period_ms: i64,
    pub start: Timestamp,
    pub count: u64,
    /// Observations that were not `ok`.
    pub failures: u64,
    pub min_us: u64,
    pub mean_us: u64,
    pub max_us: u64,
    /// Nearest-rank 95th percentile of the durations.
    pub p95_us: u64,
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Observations of one check in one period (for uptime figures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodCount {
    pub asset: String,
    pub check: String,
    pub start: Timestamp,
    pub count: u64,
    /// Not `ok`.
    pub failures: u64,
}

/// The newest results of one check, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentResults {
    pub asset: String,
    pub check: String,
    pub results: Vec<(Timestamp, vitals_core::Status)>,
}

// --- status pages ---

/// A notice an admin posted on a status page (`[[status_page]]`): maintenance, an incident,
/// information for the page's users. Ended, never deleted, by people; the store keeps a bounded
/// number per page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Assigned by the store; ignored when adding.
    pub id: i64,
    /// The status page's slug.
    pub page: String,
    /// `info`, `maintenance` or `incident`.
    pub kind: String,
    pub title: String,
    /// Plain text; blank lines separate paragraphs.
    pub body: String,
    /// Who posted it (the token's name, or `local`).
    pub author: String,
    pub created: Timestamp,
    /// When it was ended; `None` while it is shown as current.
    pub ended: Option<Timestamp>,
}

// --- fleet ---

/// One broker node's daily sample (AKTIN fleet monitoring): the node's cumulative import
/// counters as polled, and the daily deltas when they are computable. One per node and UTC day;
/// a later poll on the same day replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSample {
    /// Broker node id.
    pub node: String,
    /// UTC day: days since 1970-01-01.
    pub day: i64,
    /// When the poll that made this sample ran.
    pub polled: Timestamp,
    pub last_contact: Option<Timestamp>,
    /// When the node's data warehouse started (counters are cumulative since then).
    pub last_start: Timestamp,
    pub last_write: Option<Timestamp>,
    pub last_reject: Option<Timestamp>,
    pub imported: i64,
    pub updated: i64,
    pub invalid: i64,
    pub failed: i64,
    /// Today's counters minus yesterday's; `None` without a sample of yesterday with the same
    /// start (a restart resets the counters).
    pub daily: Option<FleetCounts>,
}

/// Import counters: successes are imported + updated, failures invalid + failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FleetCounts {
    pub imported: i64,
    pub updated: i64,
    pub invalid: i64,
    pub failed: i64,
}

/// One import error of a node, identified by its text within a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetError {
    pub node: String,
    /// The (UTC) year of `time`; errors are kept per year.
    pub year: i32,
    pub time: Timestamp,
    pub repeats: i64,
    pub content: String,
}

/// The last fetched content of one node resource (`versions`, `rscript`, `python`,
/// `import-scripts`): key → value (an empty value means "no value").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetResource {
    pub node: String,
    pub name: String,
    pub fetched: Timestamp,
    pub entries: BTreeMap<String, String>,
}

/// One added, changed or removed key of a node resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub node: String,
    pub time: Timestamp,
    pub resource: String,
    pub key: String,
    /// `None`: the key is new.
    pub old: Option<String>,
    /// `None`: the key was removed.
    pub new: Option<String>,
}

/// What one fleet collection writes, committed as one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetWrite {
    /// Inserted, or replacing the sample of the same node and day.
    pub samples: Vec<FleetSample>,
    /// Inserted, or replacing the error of the same node, year and content.
    pub errors: Vec<FleetError>,
    /// Replacing the resource of the same node and name.
    pub resources: Vec<FleetResource>,
    /// Appended.
    pub changes: Vec<ResourceChange>,
}

impl FleetWrite {
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
            && self.errors.is_empty()
            && self.resources.is_empty()
            && self.changes.is_empty()
    }
}

/// Observations and assets: the one write path (`commit`), appends, and every read of
/// observations, health and idempotency keys.
#[async_trait]
pub trait Observations: Send + Sync + 'static {
    /// Inserts or replaces these assets (matched by id). Assets not named are left alone.
    async fn upsert_assets(&self, assets: &[AssetRecord]) -> Result<()>;

    /// Every stored asset, ordered by id.
    async fn assets(&self) -> Result<Vec<AssetRecord>>;

    /// Appends observations; returns after they are committed. The asset and check of each
    /// observation need not be known beforehand (the backend interns them). Duplicates (same
    /// asset, check and time as a stored one) are not stored.
    async fn append(&self, observations: Vec<Observation>) -> Result<()>;

    /// The newest observation of every (asset, check) pair, for a warm start after a restart.
    async fn latest(&self) -> Result<Vec<Observation>>;

    /// Observations of one asset (optionally one check) in a time range, newest first, at most
    /// `limit` (which the caller bounds).
    async fn observations(&self, query: &ObservationQuery) -> Result<Vec<Observation>>;

    /// Number of raw observations stored (for metrics and tests).
    async fn count_observations(&self) -> Result<u64>;

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

    /// The newest `limit` scores of one check of one asset, newest first.
    async fn recent_scores(&self, asset: &str, check: &str, limit: usize) -> Result<Vec<i64>>;

    /// Every persisted health row (for a warm start).
    async fn health_rows(&self) -> Result<Vec<HealthRow>>;

    /// Which of these idempotency keys were committed before.
    async fn seen_result_ids(&self, ids: &[String]) -> Result<HashSet<String>>;

    /// For every check, its observations and failures per `period_ms` ([`HOUR_MS`] or
    /// [`DAY_MS`]) for the periods starting in `[from, to)`: from the check's rollups of that
    /// period where they exist, and from its raw observations after its last such rollup.
    /// Periods without observations are left out.
    async fn period_counts(
        &self,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<PeriodCount>>;

    /// The newest `limit` results (time and status) of every check that has observations.
    async fn recent_results(&self, limit: usize) -> Result<Vec<RecentResults>>;

    /// Commits a whole batch atomically: all of it, or (on error) none of it. An observation
    /// whose (asset, check, time) is already stored — or appears earlier in the batch — is a
    /// duplicate: not stored, its index in `batch.observations` reported.
    ///
    /// Shared, not moved: the caller keeps the batch to apply it to the live state once it is
    /// committed, and a store drops its reference before it answers, so the caller gets it back
    /// without a copy (`Arc::try_unwrap`).
    async fn commit(&self, batch: std::sync::Arc<CommitBatch>) -> Result<CommitReport>;
}

/// Alerts, silences and the notification outbox.
#[async_trait]
pub trait Alerts: Send + Sync + 'static {
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

    /// Claims up to `limit` items due at `now` for `owner` until `until`, oldest first: pending
    /// items whose next attempt and grouping window have passed (and the other pending items
    /// of their notifier and group key), and claimed items whose claim expired or is `owner`'s
    /// own (a restarted process taking back what it held). A claimed item is not handed to
    /// anyone else while the claim lasts; backends with several processes take the rows with
    /// `FOR UPDATE SKIP LOCKED` or an equivalent, so two claimers never get the same item.
    async fn outbox_claim(
        &self,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxItem>>;

    /// The earliest time a pending item becomes due or a claim expires, if any.
    async fn outbox_next_due(&self) -> Result<Option<Timestamp>>;

    /// Undelivered (pending or claimed) notifications per notifier id.
    async fn outbox_pending(&self) -> Result<Vec<(String, usize)>>;

    /// Records delivery outcomes of items `owner` claimed (sent, failed, or pending again for
    /// a retry or a release). An update of an item `owner` no longer holds — its claim expired
    /// and someone else took it — is not applied (fencing); returns how many were applied.
    async fn outbox_update(&self, owner: &str, updates: Vec<OutboxUpdate>) -> Result<usize>;

    /// The notification log, newest first (optionally of one alert).
    async fn notifications(&self, alert: Option<i64>, limit: usize) -> Result<Vec<OutboxItem>>;
}

/// Housekeeping and audit: rollups, retention, job state, backups, liveness and shutdown.
#[async_trait]
pub trait Housekeeping: Send + Sync + 'static {
    /// Appends to the audit log (append-only: the backend refuses updates and deletes).
    async fn audit_append(&self, entry: AuditEntry) -> Result<()>;

    /// Audit entries, newest first, optionally since a time.
    async fn audit(&self, since: Option<Timestamp>, limit: usize) -> Result<Vec<AuditEntry>>;

    /// Computes (or recomputes) the rollups of `period_ms` ([`HOUR_MS`] or [`DAY_MS`]) of every
    /// check for the whole periods in `[from, to)` (both aligned to the period) from the raw
    /// observations; returns the number of rollup rows written. Idempotent.
    async fn compute_rollups(
        &self,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<usize>;

    /// Rollups of one check, oldest first.
    async fn rollups(
        &self,
        asset: &str,
        check: &str,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Rollup>>;

    /// Deletes at most `batch` raw observations older than `before` (one transaction);
    /// returns how many were deleted (0: nothing is left to delete).
    async fn delete_raw_before(&self, before: Timestamp, batch: usize) -> Result<usize>;

    /// Deletes rollups of `period_ms` older than `before`, and idempotency keys older than
    /// `ids_before`; returns the rows deleted.
    async fn prune(
        &self,
        period_ms: i64,
        before: Timestamp,
        ids_before: Timestamp,
    ) -> Result<usize>;

    /// Deletes up to `batch` interned texts and value names no observation kept from
    /// `before` on uses (the raw retention cutoff); returns how many.
    async fn forget_unused(&self, before: Timestamp, batch: usize) -> Result<usize>;

    /// Deletes up to `batch` alerts resolved before `before`, with their transitions.
    async fn delete_resolved_alerts(&self, before: Timestamp, batch: usize) -> Result<usize>;

    /// Deletes up to `batch` sent or failed notifications created before `before`.
    async fn delete_done_notifications(&self, before: Timestamp, batch: usize) -> Result<usize>;

    /// Archives up to `batch` audit entries older than `before` to a compressed file in `dir`,
    /// then deletes them from the live log; returns how many and the file.
    async fn archive_audit(
        &self,
        before: Timestamp,
        batch: usize,
        dir: &std::path::Path,
    ) -> Result<Option<(usize, std::path::PathBuf)>>;

    /// A small persistent value of a job (e.g. "rollups done up to").
    async fn job_value(&self, key: &str) -> Result<Option<i64>>;

    async fn set_job_value(&self, key: &str, value: i64) -> Result<()>;

    /// The last run of a job, as the job recorded it.
    async fn job_run(&self, job: &str) -> Result<Option<serde_json::Value>>;

    async fn set_job_run(&self, job: &str, run: serde_json::Value) -> Result<()>;

    /// A consistent copy of the whole database at `dest`, taken while the store keeps running.
    async fn backup(&self, dest: &std::path::Path) -> Result<()>;

    /// Cheap liveness check for `/monitor`: the backend can read and write.
    async fn ping(&self) -> Result<()>;

    /// Bytes the backend holds in this process (an embedded database's caches), for
    /// `/metrics` and `/api/v1/status`; `None` when its memory lives elsewhere.
    fn memory_in_use(&self) -> Option<u64> {
        None
    }

    /// Flushes queued writes and stops the writer. Later calls fail with [`StoreError::Closed`].
    async fn close(&self) -> Result<()>;
}

/// Fleet monitoring (AKTIN broker nodes). Kept here rather than in `vitals-fleet` so that
/// backends need not depend on the fleet crate.
#[async_trait]
pub trait Fleet: Send + Sync + 'static {
    /// Writes what one fleet collection produced, as one transaction.
    async fn fleet_write(&self, write: FleetWrite) -> Result<()>;

    /// Daily samples with `from_day <= day <= to_day`, of one node or all, ordered by node
    /// then day (oldest first).
    async fn fleet_samples(
        &self,
        node: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<FleetSample>>;

    /// Errors of one node or all (optionally of one year), newest first, at most `limit`.
    async fn fleet_errors(
        &self,
        node: Option<&str>,
        year: Option<i32>,
        limit: usize,
    ) -> Result<Vec<FleetError>>;

    /// The last fetched resources of one node or all, ordered by node and name.
    async fn fleet_resources(&self, node: Option<&str>) -> Result<Vec<FleetResource>>;

    /// Resource changes of one node, newest first, at most `limit`.
    async fn fleet_changes(&self, node: &str, limit: usize) -> Result<Vec<ResourceChange>>;

    /// Every (node, year) that has samples or errors, ordered (for the yearly CSV export).
    async fn fleet_years(&self) -> Result<Vec<(String, i32)>>;
}

/// Notices of status pages.
#[async_trait]
pub trait Notices: Send + Sync + 'static {
    /// Adds a notice (its `id` is assigned and returned with it) and keeps at most `keep`
    /// notices of its page, dropping the oldest ended ones.
    async fn notice_add(&self, notice: Notice, keep: usize) -> Result<Notice>;

    /// Ends an open notice of `page` at `at`; an ended one keeps its end. `None`: no such
    /// notice on that page.
    async fn notice_end(&self, page: &str, id: i64, at: Timestamp) -> Result<Option<Notice>>;

    /// The notices of one page, newest first, at most `limit`.
    async fn notices(&self, page: &str, limit: usize) -> Result<Vec<Notice>>;
}

/// Everything a backend provides, by concern. Implemented for every type that implements the
/// parts, so callers keep writing `Arc<dyn Store>`; bring the parts into scope with
/// `use vitals_store::prelude::*` to call their methods.
pub trait Store: Observations + Alerts + Housekeeping + Fleet + Notices {}

impl<T: Observations + Alerts + Housekeeping + Fleet + Notices + ?Sized> Store for T {}

/// The store traits, for `use vitals_store::prelude::*`.
pub mod prelude {
    pub use crate::{Alerts, Fleet, Housekeeping, Notices, Observations, Store};
}
