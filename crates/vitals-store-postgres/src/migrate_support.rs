//! What `vitals store migrate` (SQLite → PostgreSQL, in the binary) needs of this crate beyond
//! the store traits: the store's own creation of observation partitions, and the advisory lock
//! that keeps two migrations out of one database.

use std::collections::BTreeSet;
use vitals_store::{Result, DAY_MS};

use crate::PgStore;

/// Advisory lock key held (per session) by a running migration into this database.
pub const LOCK_MIGRATION: i64 = 0x7669_7461_6c73_0010;

/// The day of a millisecond timestamp, as partitions count days.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(DAY_MS)
}

/// Makes sure the observation partitions of these days exist, exactly as the store's own
/// writes do (in a short transaction of its own, under the store's partition lock).
pub async fn ensure_partitions(store: &PgStore, days: &BTreeSet<i64>) -> Result<()> {
    store.ensure_partitions(days).await
}
