//! Schema, migrations and connection settings.
//!
//! The schema version is `PRAGMA user_version`: the number of entries of [`MIGRATIONS`] that
//! have been applied. A later change appends a new entry (never edits an old one); opening a
//! database applies the missing ones in order, each in its own transaction together with the
//! version bump, so a crash mid-migration leaves the previous version intact.
//!
//! Layout of the observation data (see the crate docs for the size budget):
//! - `checks`: one row per (asset, check) pair; observations refer to its integer id.
//! - `texts`: interned strings: reasons and serialized component lists, which repeat a lot.
//! - `value_names`: interned names of numeric values (`ttfb_ms`, `status_code`, …).
//! - `observations`: `WITHOUT ROWID`, keyed by `(check_id, ts)`, so a check's history is one
//!   contiguous range of the b-tree and "newest first" is a backwards range scan.

use rusqlite::Connection;
use std::time::Duration;
use vitals_store::StoreError;

use crate::{backend, SqliteOptions};

/// Ordered migrations; entry `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: assets, interned checks/texts/value names, compact observations.
    "CREATE TABLE assets (
         id   TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         doc  TEXT NOT NULL       -- the whole AssetRecord as JSON
     ) WITHOUT ROWID;
     CREATE TABLE checks (
         id    INTEGER PRIMARY KEY,
         asset TEXT NOT NULL,
         name  TEXT NOT NULL,
         UNIQUE (asset, name)
     );
     CREATE TABLE texts (
         id   INTEGER PRIMARY KEY,
         text TEXT NOT NULL UNIQUE
     );
     CREATE TABLE value_names (
         id   INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE
     );
     CREATE TABLE observations (
         check_id    INTEGER NOT NULL,
         ts          INTEGER NOT NULL,  -- ms since the epoch, UTC
         status      INTEGER NOT NULL,  -- Status::code
         score       INTEGER,           -- NULL: the status' default score
         duration_us INTEGER NOT NULL,
         reason_id   INTEGER,           -- texts.id; NULL: empty reason
         comp_id     INTEGER,           -- texts.id of the JSON component list; NULL: none
         vals        BLOB,              -- codec.rs; NULL: no values
         PRIMARY KEY (check_id, ts)
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Settings every connection gets.
fn common_pragmas(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout).map_err(backend)?;
    // Negative: KiB. 16 MiB of page cache per connection keeps hot check ranges in memory.
    conn.pragma_update(None, "cache_size", -16_384)
        .map_err(backend)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Configures the write connection and brings the schema up to date.
pub fn prepare_writer(conn: &mut Connection, opts: &SqliteOptions) -> Result<(), StoreError> {
    common_pragmas(conn, opts.busy_timeout)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "could not switch the database to WAL mode (journal_mode is {mode:?})"
        )));
    }
    // WAL + NORMAL: a commit is in the WAL (OS page cache) before `append` returns, which
    // survives a killed process; only FULL also survives power loss, at one fsync per commit.
    let sync = if opts.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(backend)?;
    // Keep the WAL from staying huge after a burst once it has been checkpointed.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(backend)?;
    migrate(conn)
}

/// Configures a read-only connection.
pub fn prepare_reader(conn: &Connection, opts: &SqliteOptions) -> Result<(), StoreError> {
    common_pragmas(conn, opts.busy_timeout)
}

/// Applies every migration the database does not have yet.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        // The version is read inside the write transaction, so two processes opening the
        // same file at once cannot both apply the same migration.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        if version > current_version() || version < 0 {
            return Err(StoreError::Backend(format!(
                "the database has schema version {version}, but this build of Vitals only \
                 knows versions up to {}; use a newer Vitals or another data directory",
                current_version()
            )));
        }
        let Some(sql) = MIGRATIONS.get(version as usize) else {
            return tx.commit().map_err(backend);
        };
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration {} failed: {e}", version + 1)))?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version = version + 1, "applied database migration");
    }
}
