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
//! - `observations_recent`: **staging**. Appends go to this append-only rowid table, so a
//!   commit writes only the last few pages instead of one page per check touched (inserting
//!   500 observations of 500 checks straight into `observations` rewrote ~500 pages, 2 MB of
//!   WAL, per commit). When it holds `SqliteOptions::merge_rows` rows, the writer moves them
//!   into `observations` in one sorted bulk insert, touching each check's page once.
//!
//! **Every read of observations must read both tables** (in one read transaction, which the
//! read pool opens for every read) — `read.rs` and `health.rs` do. A `(check_id, ts)` pair is
//! unique across the two tables (the writer enforces it). Retention must delete from both.

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
    // 2: health state and severity per asset (django-health-monitor model), idempotency keys
    //    of pushed results, and a by-name index of checks for cross-asset history.
    "CREATE TABLE health_state (
         asset   TEXT NOT NULL,
         grp     TEXT NOT NULL,
         test    TEXT NOT NULL,
         score   INTEGER NOT NULL,
         updated INTEGER NOT NULL,
         PRIMARY KEY (asset, grp, test)
     ) WITHOUT ROWID;
     CREATE TABLE health_severity (
         asset   TEXT NOT NULL,
         grp     TEXT NOT NULL,
         score   INTEGER NOT NULL,
         updated INTEGER NOT NULL,
         PRIMARY KEY (asset, grp)
     ) WITHOUT ROWID;
     CREATE TABLE result_ids (
         id TEXT PRIMARY KEY,
         ts INTEGER NOT NULL        -- when it was first committed (ms), for retention
     ) WITHOUT ROWID;
     CREATE INDEX checks_by_name ON checks (name, asset);",
    // 3: staging for fresh observations (see the module docs). Same columns as `observations`;
    //    `seq` is arrival order, so inserts always go to the last page.
    "CREATE TABLE observations_recent (
         seq         INTEGER PRIMARY KEY,
         check_id    INTEGER NOT NULL,
         ts          INTEGER NOT NULL,
         status      INTEGER NOT NULL,
         score       INTEGER,
         duration_us INTEGER NOT NULL,
         reason_id   INTEGER,
         comp_id     INTEGER,
         vals        BLOB
     );",
    // 4: alerts with their transitions, the notification outbox, silences.
    "CREATE TABLE alerts (
         id      INTEGER PRIMARY KEY,
         key     TEXT NOT NULL,
         rule    TEXT NOT NULL,
         asset   TEXT,
         state   TEXT NOT NULL,
         started INTEGER NOT NULL,
         doc     TEXT NOT NULL          -- the whole Alert as JSON
     );
     CREATE INDEX alerts_open ON alerts (state) WHERE state <> 'resolved';
     CREATE INDEX alerts_by_asset ON alerts (asset, id);
     CREATE TABLE alert_events (
         alert_id INTEGER NOT NULL,
         seq      INTEGER NOT NULL,
         doc      TEXT NOT NULL,        -- the Transition as JSON
         PRIMARY KEY (alert_id, seq)
     ) WITHOUT ROWID;
     CREATE TABLE outbox (
         id           TEXT PRIMARY KEY,
         notifier     TEXT NOT NULL,
         group_key    TEXT NOT NULL,
         alert_id     INTEGER NOT NULL, -- of the first alert, for the per-alert log
         created      INTEGER NOT NULL,
         not_before   INTEGER NOT NULL,
         state        TEXT NOT NULL,    -- pending | sent | failed
         attempts     INTEGER NOT NULL,
         next_attempt INTEGER NOT NULL,
         last_error   TEXT,
         recipients   TEXT NOT NULL,    -- JSON array
         detail       TEXT,
         sent         INTEGER,
         doc          TEXT NOT NULL     -- the Notification as JSON
     );
     CREATE INDEX outbox_pending ON outbox (next_attempt) WHERE state = 'pending';
     CREATE INDEX outbox_by_created ON outbox (created);
     CREATE INDEX outbox_by_alert ON outbox (alert_id, created);
     CREATE TABLE silences (
         id   INTEGER PRIMARY KEY,
         ends INTEGER NOT NULL,
         doc  TEXT NOT NULL
     );",
    // 5: the audit log (append-only), hourly and daily rollups, housekeeping job runs.
    "CREATE TABLE audit (
         id      INTEGER PRIMARY KEY,
         ts      INTEGER NOT NULL,
         actor   TEXT NOT NULL,
         action  TEXT NOT NULL,
         target  TEXT NOT NULL,
         params  TEXT NOT NULL,         -- JSON, secrets masked
         outcome TEXT NOT NULL          -- e.g. '200', '409 alert 3 is resolved'
     );
     CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TABLE rollups (
         check_id INTEGER NOT NULL,
         period   INTEGER NOT NULL,     -- 3600000 (hour) or 86400000 (day)
         start    INTEGER NOT NULL,     -- period start, ms
         count    INTEGER NOT NULL,
         failures INTEGER NOT NULL,     -- observations not ok
         min_us   INTEGER NOT NULL,
         mean_us  INTEGER NOT NULL,
         max_us   INTEGER NOT NULL,
         p95_us   INTEGER NOT NULL,
         PRIMARY KEY (check_id, period, start)
     ) WITHOUT ROWID;
     CREATE TABLE jobs (
         name TEXT PRIMARY KEY,
         doc  TEXT NOT NULL             -- the last run as JSON
     ) WITHOUT ROWID;
     CREATE TABLE job_state (
         name  TEXT PRIMARY KEY,
         value INTEGER NOT NULL         -- e.g. rollups done up to this time
     ) WITHOUT ROWID;",
    // 6: fleet monitoring (AKTIN broker nodes): one sample per node and UTC day, import errors
    //    per node, year and text, the last fetch of each node resource, and its change log.
    "CREATE TABLE fleet_samples (
         node         TEXT NOT NULL,
         day          INTEGER NOT NULL,  -- days since 1970-01-01 (UTC)
         polled       INTEGER NOT NULL,  -- ms
         last_contact INTEGER,
         last_start   INTEGER NOT NULL,
         last_write   INTEGER,
         last_reject  INTEGER,
         imported     INTEGER NOT NULL,
         updated      INTEGER NOT NULL,
         invalid      INTEGER NOT NULL,
         failed       INTEGER NOT NULL,
         d_imported   INTEGER,           -- daily deltas; NULL: not computable
         d_updated    INTEGER,
         d_invalid    INTEGER,
         d_failed     INTEGER,
         PRIMARY KEY (node, day)
     ) WITHOUT ROWID;
     CREATE INDEX fleet_samples_by_day ON fleet_samples (day);
     CREATE TABLE fleet_errors (
         node    TEXT NOT NULL,
         year    INTEGER NOT NULL,
         content TEXT NOT NULL,
         ts      INTEGER NOT NULL,
         repeats INTEGER NOT NULL,
         PRIMARY KEY (node, year, content)
     );
     CREATE INDEX fleet_errors_by_time ON fleet_errors (node, ts);
     CREATE TABLE fleet_resources (
         node    TEXT NOT NULL,
         name    TEXT NOT NULL,
         fetched INTEGER NOT NULL,
         doc     TEXT NOT NULL,         -- JSON object key -> value
         PRIMARY KEY (node, name)
     ) WITHOUT ROWID;
     CREATE TABLE fleet_changes (
         id       INTEGER PRIMARY KEY,
         node     TEXT NOT NULL,
         ts       INTEGER NOT NULL,
         resource TEXT NOT NULL,
         key      TEXT NOT NULL,
         old      TEXT,                 -- NULL: the key is new
         new      TEXT                  -- NULL: the key was removed
     );
     CREATE INDEX fleet_changes_by_node ON fleet_changes (node, id);",
    // 7: retention of everything that grows. Interned texts and value names remember the
    //    newest observation time that used them (lagging at most an hour), so those older than
    //    every kept observation can go; the audit log may lose rows only once they are archived
    //    to a file, up to a mark that only moves forward.
    "ALTER TABLE texts ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE value_names ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
     UPDATE texts SET used = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
     UPDATE value_names SET used = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
     CREATE INDEX texts_by_used ON texts (used);
     CREATE INDEX value_names_by_used ON value_names (used);
     CREATE TABLE audit_archived (
         one  INTEGER PRIMARY KEY CHECK (one = 1),
         upto INTEGER NOT NULL              -- audit rows with id <= upto are in archive files
     );
     INSERT INTO audit_archived (one, upto) VALUES (1, 0);
     CREATE TRIGGER audit_archived_forward BEFORE UPDATE ON audit_archived
         WHEN new.upto < old.upto
         BEGIN SELECT RAISE(ABORT, 'the audit archive mark only moves forward'); END;
     CREATE TRIGGER audit_archived_kept BEFORE DELETE ON audit_archived
         BEGIN SELECT RAISE(ABORT, 'the audit archive mark is kept'); END;
     DROP TRIGGER audit_no_delete;
     CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
         WHEN old.id > (SELECT upto FROM audit_archived)
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: only archived rows may be deleted'); END;
     CREATE INDEX alerts_resolved ON alerts (started) WHERE state = 'resolved';
     CREATE INDEX outbox_done ON outbox (created) WHERE state <> 'pending';",
    // 8: notices of status pages (posted and ended by admins; a bounded number kept per page).
    "CREATE TABLE notices (
         id      INTEGER PRIMARY KEY,
         page    TEXT NOT NULL,         -- the status page's slug
         created INTEGER NOT NULL,
         ended   INTEGER,               -- NULL: current
         doc     TEXT NOT NULL          -- the whole Notice as JSON
     );
     CREATE INDEX notices_by_page ON notices (page, id);",
    // 9: outbox claims: a delivery worker claims due items until a time, and only the holder
    //    of a claim records its outcome (state `claimed`).
    "ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
     ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
     CREATE INDEX outbox_claimed ON outbox (claimed_until) WHERE state = 'claimed';",
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// SQLite's memory for all connections together (page caches, statements), in bytes. 16 MiB
/// holds ~4,000 pages; what a merge touches beyond that (a leaf per check) comes from the OS
/// page cache at a few microseconds a page, so more buys little and costs RSS (P2).
pub const SOFT_HEAP_LIMIT: i64 = 16 * 1024 * 1024;

/// What SQLite holds now, all connections of the process together (what `SOFT_HEAP_LIMIT`
/// bounds); `None` if SQLite does not say.
pub fn memory_in_use() -> Option<u64> {
    let (mut current, mut highwater) = (0i64, 0i64);
    // SAFETY: two valid out-pointers; SQLite reads its own counters under its mutex.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_status64(
            rusqlite::ffi::SQLITE_STATUS_MEMORY_USED,
            &mut current,
            &mut highwater,
            0,
        )
    };
    (rc == rusqlite::ffi::SQLITE_OK)
        .then(|| u64::try_from(current).ok())
        .flatten()
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
    // Process-wide, advisory: past it SQLite recycles cached pages instead of growing. Without
    // it every connection fills its own 16 MiB cache over the first hour of a busy server,
    // which is most of a small server's memory growth.
    conn.pragma_update(None, "soft_heap_limit", SOFT_HEAP_LIMIT)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_full_makes_every_commit_sync() {
        let dir = tempfile::tempdir().unwrap();
        for (full, want) in [(false, 1), (true, 2)] {
            let mut conn = Connection::open(dir.path().join(format!("{full}.db"))).unwrap();
            let opts = SqliteOptions {
                synchronous_full: full,
                ..SqliteOptions::default()
            };
            prepare_writer(&mut conn, &opts).unwrap();
            // PRAGMA synchronous: 1 = NORMAL, 2 = FULL.
            let sync: i64 = conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sync, want, "synchronous_full = {full}");
        }
    }

    #[test]
    fn the_writer_bounds_sqlite_memory_for_the_whole_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("w.db")).unwrap();
        prepare_writer(&mut conn, &SqliteOptions::default()).unwrap();
        // Another connection sees it: the limit is the process', not the connection's.
        let other = Connection::open(dir.path().join("r.db")).unwrap();
        let limit: i64 = other
            .query_row("PRAGMA soft_heap_limit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(limit, SOFT_HEAP_LIMIT);
        // Two open connections hold memory, and SQLite says how much.
        assert!(memory_in_use().is_some_and(|b| b > 0));
    }
}
