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
use std::collections::BTreeMap;
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
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
