//! The single writer: a dedicated thread that owns the write connection and group-commits.
//!
//! Every write (`append`, `upsert_assets`, the write half of `ping`) is a [`Command`] sent over
//! a bounded channel with a oneshot reply. The thread blocks for the first command, takes the
//! write lock, then takes whatever else is queued by then (up to a cap) and applies all of it
//! in ONE transaction, so a thousand concurrent single-observation appends cost a handful of
//! commits. Replies are sent only after `COMMIT` returned, which is what makes `append`
//! durable on return.
//!
//! If the group transaction fails, it is rolled back and each command is retried alone, so one
//! bad command cannot take the others' data down with it.
//!
//! Observations are appended to the staging table `observations_recent` and moved into
//! `observations` in bulk once `merge_rows` have accumulated (see `schema.rs` for why). The
//! writer keeps the `(check_id, ts)` keys of the staged rows in memory, and per check the
//! newest `ts` in `observations`, so that finding a free millisecond rarely touches disk.
//!
//! Interned ids (checks, texts, value names) are cached in memory; the caches are cleared on
//! any rollback, because ids handed out inside a rolled-back transaction may be reused.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use vitals_core::Observation;
use vitals_store::{AssetRecord, CommitBatch, OutboxUpdate, StoreError};

use crate::{backend, codec};

/// The answer to a command: for observations, the indices of those not stored because an
/// observation of the same (asset, check, millisecond) already exists; empty otherwise.
pub type Reply = oneshot::Sender<Result<Vec<usize>, StoreError>>;

/// A write to run inside the writer's transaction (re-runnable: a failed group is retried
/// command by command).
pub type ExecFn = std::sync::Arc<dyn Fn(&Connection) -> Result<(), StoreError> + Send + Sync>;

pub enum Command {
    Append(Vec<Observation>, Reply),
    Exec(ExecFn, Reply),
    Commit(Arc<CommitBatch>, Reply),
    /// Delivery outcomes of one claimer's items; replies the count applied in a one-element
    /// list.
    Outbox(String, Vec<OutboxUpdate>, Reply),
    UpsertAssets(Vec<AssetRecord>, Reply),
    /// Takes the write lock and commits nothing: proves the writer can write.
    Ping(Reply),
    /// Deletes up to `batch` interned texts and value names last used before `before` (ms),
    /// then forgets the interner's caches (which may name deleted ids). Replies the count in
    /// a one-element list.
    ForgetUnused {
        before: i64,
        batch: usize,
        reply: Reply,
    },
    /// Merges the staged observations, then deletes up to `batch` observations older than
    /// `before` (ms). Replies the count in a one-element list.
    DeleteRaw {
        before: i64,
        batch: usize,
        reply: Reply,
    },
    /// After the current group is committed: merge the staged observations, then
    /// `PRAGMA wal_checkpoint(TRUNCATE)`.
    Checkpoint(Reply),
    /// Commit what is queued, close the connection, stop the thread.
    Close(Reply),
}

enum Work {
    Append(Vec<Observation>),
    Exec(ExecFn),
    Commit(Arc<CommitBatch>),
    Outbox(String, Vec<OutboxUpdate>),
    Upsert(Vec<AssetRecord>),
    Ping,
}

impl Work {
    /// Rough cost, for bounding the size of one group transaction.
    fn weight(&self) -> usize {
        match self {
            Work::Append(o) => o.len().max(1),
            Work::Commit(b) => (b.observations.len() + b.health.len() + b.assets.len()).max(1),
            Work::Outbox(_, u) => u.len().max(1),
            Work::Exec(_) => 1,
            Work::Upsert(a) => a.len().max(1),
            Work::Ping => 1,
        }
    }
}

/// Caches are dropped wholesale beyond this many entries (volatile reasons would grow them).
const CACHE_CAP: usize = 200_000;

const INSERT_RECENT: &str = "INSERT INTO observations_recent \
     (check_id, ts, status, score, duration_us, reason_id, comp_id, vals) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Moves the staged observations into the main table, sorted so each check's rows land
/// together. `(check_id, ts)` is unique across both tables (`Staging::taken`), so this cannot
/// conflict and `OR IGNORE` never fires: it is there because a statement that cannot abort
/// needs no statement journal. That journal held the old content of every page a merge touches
/// — about one leaf per check, 11–17 MB with 10,000 checks (temp_store is MEMORY) — and was
/// the largest single allocation of a busy server (bench/README.md, P2 memory).
const MERGE: &str = "INSERT OR IGNORE INTO observations \
     (check_id, ts, status, score, duration_us, reason_id, comp_id, vals) \
     SELECT check_id, ts, status, score, duration_us, reason_id, comp_id, vals \
     FROM observations_recent ORDER BY check_id, ts; \
     DELETE FROM observations_recent;";

/// What the writer knows about where observations are, to keep `(check_id, ts)` unique.
struct Staging {
    /// Keys of the rows in `observations_recent`.
    keys: HashSet<(i64, i64)>,
    /// check id → newest `ts` in `observations` (`i64::MIN`: none). Only ever too high after
    /// a retention delete, which costs a lookup, never a wrong answer.
    main_max: HashMap<i64, i64>,
    merge_rows: usize,
    /// Merge when `keys` reaches this; pushed back after a failed merge.
    merge_at: usize,
}

impl Staging {
    fn load(conn: &Connection, merge_rows: usize) -> Result<Staging, StoreError> {
        let mut staging = Staging {
            keys: HashSet::new(),
            main_max: HashMap::new(),
            merge_rows: merge_rows.max(1),
            merge_at: merge_rows.max(1),
        };
        staging.reload(conn)?;
        Ok(staging)
    }

    /// Re-reads the staged keys (at start and after a rollback).
    fn reload(&mut self, conn: &Connection) -> Result<(), StoreError> {
        self.keys.clear();
        self.main_max.clear();
        let mut stmt = conn
            .prepare_cached("SELECT check_id, ts FROM observations_recent")
            .map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let key = (
                row.get(0)
                    .map_err(|e| StoreError::Corrupt(format!("staged check id: {e}")))?,
                row.get(1)
                    .map_err(|e| StoreError::Corrupt(format!("staged ts: {e}")))?,
            );
            self.keys.insert(key);
        }
        Ok(())
    }

    /// Whether `check_id` already has an observation at `ts` (staged or merged): at most one
    /// look-up on disk, and none for the usual case of a time after the newest merged one.
    fn taken(&mut self, conn: &Connection, check_id: i64, ts: i64) -> Result<bool, StoreError> {
        if self.keys.contains(&(check_id, ts)) {
            return Ok(true);
        }
        let main_max = match self.main_max.get(&check_id) {
            Some(m) => *m,
            None => {
                let m: Option<i64> = conn
                    .prepare_cached("SELECT max(ts) FROM observations WHERE check_id = ?1")
                    .and_then(|mut s| s.query_row([check_id], |r| r.get(0)))
                    .map_err(backend)?;
                let m = m.unwrap_or(i64::MIN);
                if self.main_max.len() >= CACHE_CAP {
                    self.main_max.clear();
                }
                self.main_max.insert(check_id, m);
                m
            }
        };
        if ts > main_max {
            return Ok(false);
        }
        conn.prepare_cached("SELECT 1 FROM observations WHERE check_id = ?1 AND ts = ?2")
            .and_then(|mut s| s.exists([check_id, ts]))
            .map_err(backend)
    }
}

/// How far an interned row's `used` may lag the newest observation that uses it; it is
/// written at most this often per row (retention deletes only rows older than its cutoff
/// minus this, so the lag never deletes a row still in use).
pub const USED_LAG_MS: i64 = 3_600_000;

#[derive(Default)]
struct Interner {
    /// asset → check name → checks.id (nested so lookups need no allocation).
    checks: HashMap<String, HashMap<String, i64>>,
    checks_len: usize,
    /// text → (id, `used` as written).
    texts: HashMap<String, (i64, i64)>,
    names: HashMap<String, (i64, i64)>,
}

impl Interner {
    fn clear(&mut self) {
        *self = Interner::default();
    }

    fn check_id(&mut self, conn: &Connection, asset: &str, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.checks.get(asset).and_then(|m| m.get(name)) {
            return Ok(*id);
        }
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM checks WHERE asset = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row([asset, name], |r| r.get(0)).optional())
            .map_err(backend)?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO checks (asset, name) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute([asset, name]))
                    .map_err(backend)?;
                conn.last_insert_rowid()
            }
        };
        if self.checks_len >= CACHE_CAP {
            self.checks.clear();
            self.checks_len = 0;
        }
        self.checks
            .entry(asset.to_owned())
            .or_default()
            .insert(name.to_owned(), id);
        self.checks_len += 1;
        Ok(id)
    }

    fn text_id(&mut self, conn: &Connection, text: &str, at: i64) -> Result<i64, StoreError> {
        intern(conn, &mut self.texts, "texts", "text", text, at)
    }

    fn name_id(&mut self, conn: &Connection, name: &str, at: i64) -> Result<i64, StoreError> {
        intern(conn, &mut self.names, "value_names", "name", name, at)
    }
}

/// The id of `text` in `table`, interning it if new; records that an observation at `at` uses
/// it (written when `at` is more than [`USED_LAG_MS`] past what is recorded).
fn intern(
    conn: &Connection,
    cache: &mut HashMap<String, (i64, i64)>,
    table: &str,
    column: &str,
    text: &str,
    at: i64,
) -> Result<i64, StoreError> {
    if let Some((id, used)) = cache.get_mut(text) {
        if at > *used + USED_LAG_MS {
            conn.prepare_cached(&format!("UPDATE {table} SET used = ?2 WHERE id = ?1"))
                .and_then(|mut s| s.execute(params![*id, at]))
                .map_err(backend)?;
            *used = at;
        }
        return Ok(*id);
    }
    let found: Option<(i64, i64)> = conn
        .prepare_cached(&format!("SELECT id, used FROM {table} WHERE {column} = ?1"))
        .and_then(|mut s| {
            s.query_row([text], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(backend)?;
    let (id, used) = match found {
        Some((id, used)) if at > used + USED_LAG_MS => {
            conn.prepare_cached(&format!("UPDATE {table} SET used = ?2 WHERE id = ?1"))
                .and_then(|mut s| s.execute(params![id, at]))
                .map_err(backend)?;
            (id, at)
        }
        Some(x) => x,
        None => {
            conn.prepare_cached(&format!(
                "INSERT INTO {table} ({column}, used) VALUES (?1, ?2)"
            ))
            .and_then(|mut s| s.execute(params![text, at]))
            .map_err(backend)?;
            (conn.last_insert_rowid(), at)
        }
    };
    if cache.len() >= CACHE_CAP {
        cache.clear();
    }
    cache.insert(text.to_owned(), (id, used));
    Ok(id)
}

pub struct Writer {
    conn: Connection,
    /// Successful commits so far (shared with the store for metrics and tests).
    commits: Arc<AtomicU64>,
    interner: Interner,
    staging: Staging,
    max_batch: usize,
    vals: Vec<u8>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        max_batch: usize,
        merge_rows: usize,
        commits: Arc<AtomicU64>,
    ) -> Result<Self, StoreError> {
        let staging = Staging::load(&conn, merge_rows)?;
        Ok(Writer {
            conn,
            commits,
            interner: Interner::default(),
            staging,
            max_batch: max_batch.max(1),
            vals: Vec::with_capacity(128),
        })
    }

    /// The thread body: runs until `Close` or until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let first = match first {
                Command::ForgetUnused {
                    before,
                    batch,
                    reply,
                } => {
                    let _ = reply.send(self.forget_unused(before, batch));
                    continue;
                }
                Command::DeleteRaw {
                    before,
                    batch,
                    reply,
                } => {
                    let _ = reply.send(self.delete_raw(before, batch));
                    continue;
                }
                Command::Checkpoint(r) => {
                    let _ = r.send(self.checkpoint().map(|()| Vec::new()));
                    continue;
                }
                Command::Close(r) => return self.close(r),
                write => write,
            };
            // Take the write lock before looking for more work: whatever queues up while we
            // wait for it (another process, a checkpoint) joins this same transaction.
            let began = self.begin();
            let mut group: Vec<(Work, Reply)> = Vec::new();
            let mut weight = 0;
            let mut after = None;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                let (work, reply) = match cmd {
                    Command::Append(o, r) => (Work::Append(o), r),
                    Command::Commit(b, r) => (Work::Commit(b), r),
                    Command::Outbox(o, u, r) => (Work::Outbox(o, u), r),
                    Command::Exec(f, r) => (Work::Exec(f), r),
                    Command::UpsertAssets(a, r) => (Work::Upsert(a), r),
                    Command::Ping(r) => (Work::Ping, r),
                    // Handled once this group is committed, in arrival order.
                    c @ (Command::Checkpoint(_)
                    | Command::Close(_)
                    | Command::ForgetUnused { .. }
                    | Command::DeleteRaw { .. }) => {
                        after = Some(c);
                        break;
                    }
                };
                weight += work.weight();
                group.push((work, reply));
                if weight < self.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            match began {
                Ok(()) => {
                    self.commit_group(group);
                    // After the replies: callers never wait for a merge.
                    if self.staging.keys.len() >= self.staging.merge_at {
                        if let Err(e) = self.merge() {
                            // Nothing is lost (the rows stay staged), but it should not happen.
                            tracing::error!(error = %e, "merging staged observations failed");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not start a write transaction");
                    for (_, reply) in group {
                        let _ = reply.send(Err(StoreError::Backend(e.to_string())));
                    }
                }
            }
            match after {
                Some(Command::ForgetUnused {
                    before,
                    batch,
                    reply,
                }) => {
                    let _ = reply.send(self.forget_unused(before, batch));
                }
                Some(Command::DeleteRaw {
                    before,
                    batch,
                    reply,
                }) => {
                    let _ = reply.send(self.delete_raw(before, batch));
                }
                Some(Command::Checkpoint(r)) => {
                    let _ = r.send(self.checkpoint().map(|()| Vec::new()));
                }
                Some(Command::Close(r)) => return self.close(r),
                _ => {}
            }
        }
    }

    fn close(mut self, reply: Reply) {
        // Leave the file tidy; a failed merge loses nothing (the rows stay staged).
        if let Err(e) = self.merge() {
            tracing::warn!(error = %e, "merging staged observations at close failed");
        }
        let result = self.conn.close().map_err(|(_, e)| backend(e));
        let _ = reply.send(result.map(|()| Vec::new()));
    }

    /// Moves every staged observation into `observations` in one transaction.
    fn merge(&mut self) -> Result<(), StoreError> {
        if self.staging.keys.is_empty() {
            return Ok(());
        }
        self.begin()?;
        let result = self
            .conn
            .execute_batch(MERGE)
            .and_then(|()| self.conn.execute_batch("COMMIT"))
            .map_err(backend);
        match result {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                let staging = &mut self.staging;
                for (check, ts) in staging.keys.drain() {
                    if let Some(max) = staging.main_max.get_mut(&check) {
                        *max = (*max).max(ts);
                    }
                }
                staging.merge_at = staging.merge_rows;
            }
            Err(_) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                // Try again only after as many rows again have been staged.
                self.staging.merge_at = self.staging.keys.len() + self.staging.merge_rows;
            }
        }
        result
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)
    }

    /// Applies and commits a group inside the transaction [`begin`](Self::begin) opened.
    fn commit_group(&mut self, group: Vec<(Work, Reply)>) {
        let works: Vec<&Work> = group.iter().map(|(w, _)| w).collect();
        match self.apply_and_commit(&works) {
            Ok(dups) => {
                for ((work, reply), d) in group.into_iter().zip(dups) {
                    // Before the answer: a committed batch goes back to its caller uncopied.
                    drop(work);
                    let _ = reply.send(Ok(d));
                }
            }
            Err(e) if group.len() == 1 => {
                tracing::warn!(error = %e, "write transaction failed");
                if let Some((work, reply)) = group.into_iter().next() {
                    drop(work);
                    let _ = reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, commands = group.len(),
                    "group transaction failed; retrying its commands one by one");
                for (work, reply) in group {
                    let result = self
                        .begin()
                        .and_then(|()| self.apply_and_commit(&[&work]))
                        .map(|mut d| d.pop().unwrap_or_default());
                    drop(work);
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// Applies `works` in the open transaction and commits; on any error rolls back and
    /// clears the caches. Returns each work's duplicates.
    fn apply_and_commit(&mut self, works: &[&Work]) -> Result<Vec<Vec<usize>>, StoreError> {
        let mut dups = Vec::with_capacity(works.len());
        let result = works
            .iter()
            .try_for_each(|w| {
                dups.push(self.apply(w)?);
                Ok(())
            })
            .and_then(|()| self.conn.execute_batch("COMMIT").map_err(backend));
        match result {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                Ok(dups)
            }
            Err(e) => {
                // Ignored: if COMMIT failed SQLite may already have rolled back.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.interner.clear();
                if let Err(e) = self.staging.reload(&self.conn) {
                    tracing::error!(error = %e, "re-reading staged observations failed");
                }
                Err(e)
            }
        }
    }

    fn apply(&mut self, work: &Work) -> Result<Vec<usize>, StoreError> {
        #[cfg(feature = "failpoints")]
        if crate::failpoints::REFUSE_WRITES.load(Ordering::Relaxed) {
            return Err(StoreError::Backend(
                "failpoint: the store refuses writes".into(),
            ));
        }
        match work {
            Work::Append(obs) => self.append(obs),
            Work::Commit(b) => {
                self.upsert(&b.assets)?;
                let dups = self.append(&b.observations)?;
                crate::health::apply(&self.conn, &b.health)?;
                crate::health::remember_ids(&self.conn, &b.result_ids)?;
                crate::alerts::write(&self.conn, b)?;
                Ok(dups)
            }
            Work::Outbox(owner, u) => {
                crate::alerts::outbox_update(&self.conn, owner, u).map(|n| vec![n])
            }
            Work::Exec(f) => f(&self.conn).map(|()| Vec::new()),
            Work::Upsert(assets) => self.upsert(assets).map(|()| Vec::new()),
            Work::Ping => Ok(Vec::new()),
        }
    }

    /// Stages observations; one whose (check, millisecond) is taken is a duplicate: not stored,
    /// its index returned.
    fn append(&mut self, obs: &[Observation]) -> Result<Vec<usize>, StoreError> {
        let conn = &self.conn;
        let interner = &mut self.interner;
        let staging = &mut self.staging;
        let vals = &mut self.vals;
        let mut insert = conn.prepare_cached(INSERT_RECENT).map_err(backend)?;
        let mut dups = Vec::new();
        for (i, o) in obs.iter().enumerate() {
            let check_id = interner.check_id(conn, &o.asset, &o.check)?;
            if staging.taken(conn, check_id, o.time.0)? {
                dups.push(i);
                continue;
            }
            let reason_id = match o.reason.as_str() {
                "" => None,
                r => Some(interner.text_id(conn, r, o.time.0)?),
            };
            let comp_id = if o.components.is_empty() {
                None
            } else {
                let json = serde_json::to_string(&o.components).map_err(|e| {
                    StoreError::Backend(format!("components of {}/{}: {e}", o.asset, o.check))
                })?;
                Some(interner.text_id(conn, &json, o.time.0)?)
            };
            vals.clear();
            for v in &o.values {
                let id = interner.name_id(conn, &v.name, o.time.0)?;
                codec::encode_value(vals, id as u64, v.value);
            }
            let vals_col = (!vals.is_empty()).then_some(vals.as_slice());
            let score = (o.score != o.status.default_score()).then_some(o.score);
            // Bit-preserving: durations beyond i64::MAX µs come back unchanged as u64.
            let duration = o.duration_us as i64;
            insert
                .execute(params![
                    check_id,
                    o.time.0,
                    o.status.code(),
                    score,
                    duration,
                    reason_id,
                    comp_id,
                    vals_col
                ])
                .map_err(backend)?;
            staging.keys.insert((check_id, o.time.0));
        }
        Ok(dups)
    }

    fn upsert(&mut self, assets: &[AssetRecord]) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO assets (id, name, doc) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
            )
            .map_err(backend)?;
        for a in assets {
            let doc = serde_json::to_string(a)
                .map_err(|e| StoreError::Backend(format!("asset {:?}: {e}", a.id)))?;
            stmt.execute(params![a.id, a.name, doc]).map_err(backend)?;
        }
        Ok(())
    }

    /// Retention of raw observations: staged rows are merged first, so that every row older
    /// than `before` can go, wherever it was.
    fn delete_raw(&mut self, before: i64, batch: usize) -> Result<Vec<usize>, StoreError> {
        if self.staging.keys.iter().any(|(_, ts)| *ts < before) {
            self.merge()?;
        }
        self.begin()?;
        let result =
            crate::housekeeping::delete_raw_before(&self.conn, before, batch).and_then(|n| {
                self.conn
                    .execute_batch("COMMIT")
                    .map(|()| n)
                    .map_err(backend)
            });
        match result {
            Ok(n) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                // Retention moved the newest merged row of some checks back: look it up again.
                self.staging.main_max.clear();
                Ok(vec![n])
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// `before`: the time before which no observation is kept any more (the raw retention
    /// cutoff). Staged observations (not yet merged, so not yet deleted by retention) and the
    /// lag of `used` move it back further.
    fn forget_unused(&mut self, before: i64, batch: usize) -> Result<Vec<usize>, StoreError> {
        let staged: Option<i64> = self
            .conn
            .query_row("SELECT min(ts) FROM observations_recent", [], |r| r.get(0))
            .map_err(backend)?;
        let before = staged.map_or(before, |m| m.min(before)) - USED_LAG_MS;
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        self.begin()?;
        let result = ["texts", "value_names"]
            .iter()
            .try_fold(0usize, |n, table| {
                self.conn
                    .execute(
                        &format!(
                            "DELETE FROM {table} WHERE id IN \
                             (SELECT id FROM {table} WHERE used < ?1 ORDER BY used LIMIT ?2)"
                        ),
                        params![before, limit],
                    )
                    .map(|d| n + d)
            })
            .and_then(|n| self.conn.execute_batch("COMMIT").map(|()| n))
            .map_err(backend);
        // Ids handed out before may be gone now (and reused by SQLite): forget them all.
        self.interner.clear();
        match result {
            Ok(n) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                Ok(vec![n])
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Merges the staged observations, then writes the WAL back into the database file.
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.merge()?;
        let (busy, _log, _done): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(backend)?;
        if busy != 0 {
            return Err(StoreError::Backend(
                "WAL checkpoint could not finish: readers held old snapshots".into(),
            ));
        }
        Ok(())
    }
}
