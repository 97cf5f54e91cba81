//! Reads: a small pool of read-only connections, used from `spawn_blocking`.
//!
//! In WAL mode a reader sees the last committed snapshot and neither waits for the writer nor
//! makes it wait, so reads never block writes. Every read runs in one read transaction, so a
//! read that queries both observation tables (main and staging) sees one consistent snapshot
//! even if the writer merges between its statements. The pool is bounded by a semaphore: at most
//! `read_connections` reads run at once, the rest wait asynchronously (no thread is held).
//!
//! Everything read back is decoded defensively: a wrong column type, an unknown status code,
//! a dangling interned id or an undecodable value list is a [`StoreError::Corrupt`] naming the
//! row, never a panic.

use rusqlite::params;
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Semaphore;
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_store::{AssetRecord, ObservationQuery, StoreError};

use crate::{backend, codec, schema, SqliteOptions};

pub struct ReadPool {
    path: PathBuf,
    opts: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// value_names.id → name. Names are never changed once committed, so this never goes stale.
    names: RwLock<HashMap<i64, Arc<str>>>,
}

impl ReadPool {
    pub fn new(path: PathBuf, opts: SqliteOptions) -> Self {
        let n = opts.read_connections.max(1);
        ReadPool {
            path,
            opts,
            idle: Mutex::new(Vec::with_capacity(n)),
            permits: Arc::new(Semaphore::new(n)),
            names: RwLock::new(HashMap::new()),
        }
    }

    /// Stops the pool: waiting and later reads fail with `Closed`; idle connections close.
    pub fn close(&self) {
        self.permits.close();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        schema::prepare_reader(&conn, &self.opts)?;
        Ok(conn)
    }

    /// Runs `f` on a read connection on the blocking thread pool.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &ReadPool) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match idle {
                Some(c) => c,
                None => pool.open()?,
            };
            let result = in_snapshot(&conn, || f(&conn, &pool));
            if !pool.permits.is_closed() {
                pool.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    fn value_name(&self, conn: &Connection, id: i64) -> Result<Arc<str>, StoreError> {
        if let Some(n) = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Arc::clone(n));
        }
        let name: Option<String> = conn
            .prepare_cached("SELECT name FROM value_names WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(backend)?;
        let name: Arc<str> = name
            .ok_or_else(|| StoreError::Corrupt(format!("value name id {id} does not exist")))?
            .into();
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&name));
        Ok(name)
    }
}

/// Runs `f` inside one read transaction (a consistent snapshot across statements).
fn in_snapshot<T>(
    conn: &Connection,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN").map_err(backend)?;
    let result = f();
    // Nothing was written, so COMMIT and ROLLBACK are the same; COMMIT only fails if the
    // transaction is already gone, which leaves nothing to end.
    let _ = conn.execute_batch("COMMIT");
    result
}

/// The two tables observations live in: the compact main table and the staging table.
const TABLES: [&str; 2] = ["observations", "observations_recent"];

/// Newest first; equal times by check, then asset, as the SQL below orders them.
fn newest_first(a: &Observation, b: &Observation) -> std::cmp::Ordering {
    b.time
        .cmp(&a.time)
        .then_with(|| a.check.cmp(&b.check))
        .then_with(|| a.asset.cmp(&b.asset))
}

/// The columns every observation query selects, in the order [`decode`] reads them.
const COLUMNS: &str = "SELECT c.asset, c.name, o.ts, o.status, o.score, \
     o.duration_us, o.reason_id, r.text, o.comp_id, k.text, o.vals";

/// The interned texts of an observation row `o`.
const TEXT_JOINS: &str = "LEFT JOIN texts r ON r.id = o.reason_id \
     LEFT JOIN texts k ON k.id = o.comp_id";

fn col<T: FromSql>(row: &Row<'_>, idx: usize, what: &str) -> Result<T, StoreError> {
    row.get(idx)
        .map_err(|e| StoreError::Corrupt(format!("column {what}: {e}")))
}

fn decode(row: &Row<'_>, pool: &ReadPool, conn: &Connection) -> Result<Observation, StoreError> {
    let asset: String = col(row, 0, "asset")?;
    let check: String = col(row, 1, "check")?;
    let ts: i64 = col(row, 2, "ts")?;
    match decode_rest(row, pool, conn) {
        Ok((status, score, duration_us, reason, components, values)) => Ok(Observation {
            asset,
            check,
            time: Timestamp(ts),
            status,
            score,
            duration_us,
            reason,
            values,
            components,
        }),
        // Name the row, so the message leads to it.
        Err(StoreError::Corrupt(msg)) => Err(StoreError::Corrupt(format!(
            "observation of {asset}/{check} at {ts}: {msg}"
        ))),
        Err(e) => Err(e),
    }
}

type Fields = (Status, i64, u64, String, Vec<Component>, Vec<Value>);

fn decode_rest(row: &Row<'_>, pool: &ReadPool, conn: &Connection) -> Result<Fields, StoreError> {
    let code: i64 = col(row, 3, "status")?;
    let status = match u8::try_from(code) {
        Ok(c) if c <= 3 => Status::from_code(c),
        _ => return Err(StoreError::Corrupt(format!("unknown status code {code}"))),
    };
    let score: Option<i64> = col(row, 4, "score")?;
    // Bit-preserving, the inverse of the writer's cast.
    let duration_us = col::<i64>(row, 5, "duration_us")? as u64;
    let reason = interned_text(row, 6, 7, "reason")?.unwrap_or_default();
    let components: Vec<Component> = match interned_text(row, 8, 9, "components")? {
        None => Vec::new(),
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("component list: {e}")))?,
    };
    let values = match row.get_ref(10) {
        Ok(ValueRef::Null) => Vec::new(),
        Ok(ValueRef::Blob(b)) => codec::decode_values(b)?
            .into_iter()
            .map(|(id, value)| {
                let id = i64::try_from(id)
                    .map_err(|_| StoreError::Corrupt(format!("value name id {id} out of range")))?;
                Ok(Value {
                    name: pool.value_name(conn, id)?.to_string(),
                    value,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        Ok(other) => {
            return Err(StoreError::Corrupt(format!(
                "values are {:?}, not a blob",
                other.data_type()
            )))
        }
        Err(e) => return Err(StoreError::Corrupt(format!("values: {e}"))),
    };
    let score = score.unwrap_or_else(|| status.default_score());
    Ok((status, score, duration_us, reason, components, values))
}

/// An interned text: `id_idx` is the id column, `text_idx` the joined text (NULL if dangling).
fn interned_text(
    row: &Row<'_>,
    id_idx: usize,
    text_idx: usize,
    what: &str,
) -> Result<Option<String>, StoreError> {
    let id: Option<i64> = col(row, id_idx, what)?;
    let text: Option<String> = col(row, text_idx, what)?;
    match (id, text) {
        (None, _) => Ok(None),
        (Some(_), Some(t)) => Ok(Some(t)),
        (Some(id), None) => Err(StoreError::Corrupt(format!(
            "{what} refers to missing text id {id}"
        ))),
    }
}

fn collect(
    conn: &Connection,
    pool: &ReadPool,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Observation>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(decode(row, pool, conn)?);
    }
    Ok(out)
}

pub fn observations(
    conn: &Connection,
    pool: &ReadPool,
    q: &ObservationQuery,
) -> Result<Vec<Observation>, StoreError> {
    let ids: Vec<i64> = match &q.check {
        Some(check) => conn
            .prepare_cached("SELECT id FROM checks WHERE asset = ?1 AND name = ?2")
            .and_then(|mut s| {
                s.query_row([q.asset.as_str(), check.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)?
            .into_iter()
            .collect(),
        None => {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM checks WHERE asset = ?1")
                .map_err(backend)?;
            let ids = stmt
                .query_map([q.asset.as_str()], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(|e| StoreError::Corrupt(format!("check id: {e}")))?;
            ids
        }
    };
    history(conn, pool, &ids, q.from, q.to, q.limit)
}

/// Observations of the checks `ids` in `[from, to]`, newest first, at most `limit`.
///
/// Costs about `limit` decoded rows however many checks and however long their history:
/// first the time of the `limit`-th newest observation (the cutoff) is found from the keys
/// alone — per check a backwards scan of the main table that stops once it is older than
/// everything kept, plus one scan of the staging table — then only rows at or after the
/// cutoff are read and decoded.
fn history(
    conn: &Connection,
    pool: &ReadPool,
    ids: &[i64],
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<Observation>, StoreError> {
    if ids.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let from = from.map_or(i64::MIN, |t| t.0);
    let to = to.map_or(i64::MAX, |t| t.0);
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let ids_json = serde_json::to_string(ids).map_err(backend)?;
    let ts_of = |e: rusqlite::Error| StoreError::Corrupt(format!("observation time: {e}"));

    // Phase 1: the cutoff. `kept` holds the newest `limit` times seen so far (a min-heap).
    let mut kept: BinaryHeap<Reverse<i64>> = BinaryHeap::new();
    let mut keep = |ts: i64| -> bool {
        if kept.len() == limit && kept.peek().is_some_and(|Reverse(min)| ts <= *min) {
            return false;
        }
        kept.push(Reverse(ts));
        if kept.len() > limit {
            kept.pop();
        }
        true
    };
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT ts FROM observations WHERE check_id = ?1 AND ts BETWEEN ?2 AND ?3 \
                 ORDER BY ts DESC LIMIT ?4",
            )
            .map_err(backend)?;
        for id in ids {
            let mut rows = stmt.query(params![id, from, to, lim]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                // Newest first: once one is not kept, no older one of this check will be.
                if !keep(row.get(0).map_err(ts_of)?) {
                    break;
                }
            }
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT ts FROM observations_recent \
                 WHERE check_id IN (SELECT value FROM json_each(?1)) AND ts BETWEEN ?2 AND ?3",
            )
            .map_err(backend)?;
        let mut rows = stmt.query(params![ids_json, from, to]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            keep(row.get(0).map_err(ts_of)?);
        }
    }
    let cutoff = match kept.peek() {
        Some(Reverse(min)) if kept.len() == limit => *min,
        Some(_) => from,
        None => return Ok(Vec::new()),
    };

    // Phase 2: the rows at or after the cutoff (ties at the cutoff may add a few).
    let mut out = Vec::new();
    for table in TABLES {
        let sql = format!(
            "{COLUMNS} FROM {table} o JOIN checks c ON c.id = o.check_id {TEXT_JOINS} \
             WHERE o.check_id IN (SELECT value FROM json_each(?1)) AND o.ts BETWEEN ?2 AND ?3"
        );
        out.extend(collect(conn, pool, &sql, params![ids_json, cutoff, to])?);
    }
    out.sort_by(newest_first);
    out.truncate(limit);
    Ok(out)
}

/// The newest observation of every check. Main table: one index seek per check for
/// `max(ts)`, one for the row, so O(checks · log n) however long the history is. Staging:
/// one scan (it is small), using SQLite's rule that a bare column of a `max()` aggregate
/// comes from the row holding the maximum.
pub fn latest(conn: &Connection, pool: &ReadPool) -> Result<Vec<Observation>, StoreError> {
    let main = format!(
        "{COLUMNS} FROM checks c CROSS JOIN observations o ON o.check_id = c.id AND o.ts = \
         (SELECT max(m.ts) FROM observations m WHERE m.check_id = c.id) {TEXT_JOINS}"
    );
    let staged = format!(
        "{COLUMNS} FROM (SELECT seq, max(ts) FROM observations_recent GROUP BY check_id) n \
         JOIN observations_recent o ON o.seq = n.seq \
         JOIN checks c ON c.id = o.check_id {TEXT_JOINS}"
    );
    let mut newest: HashMap<(String, String), Observation> = HashMap::new();
    for o in collect(conn, pool, &main, [])?
        .into_iter()
        .chain(collect(conn, pool, &staged, [])?)
    {
        match newest.entry((o.asset.clone(), o.check.clone())) {
            Entry::Occupied(mut e) if e.get().time < o.time => {
                e.insert(o);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(e) => {
                e.insert(o);
            }
        }
    }
    let mut out: Vec<Observation> = newest.into_values().collect();
    out.sort_by(|a, b| (&a.asset, &a.check).cmp(&(&b.asset, &b.check)));
    Ok(out)
}

pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM observations) \
             + (SELECT count(*) FROM observations_recent)",
        )
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    Ok(n.max(0) as u64)
}

pub fn assets(conn: &Connection) -> Result<Vec<AssetRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, doc FROM assets ORDER BY id")
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let id: String = row
            .get(0)
            .map_err(|e| StoreError::Corrupt(format!("asset id: {e}")))?;
        let doc: String = row
            .get(1)
            .map_err(|e| StoreError::Corrupt(format!("asset {id:?}: {e}")))?;
        let mut record: AssetRecord = serde_json::from_str(&doc)
            .map_err(|e| StoreError::Corrupt(format!("asset {id:?}: {e}")))?;
        record.id = id;
        out.push(record);
    }
    Ok(out)
}

/// Touches the database file (not just the SQL engine).
pub fn ping(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT count(*) FROM checks WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map_err(backend)?;
    Ok(())
}

/// Observations of one check name across assets (all, or those listed), newest first;
/// equal times by asset. Check ids come from `checks_by_name`; the rest is [`history`].
pub fn check_history(
    conn: &Connection,
    pool: &ReadPool,
    check: &str,
    assets: Option<&[String]>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<Observation>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = Vec::new();
    {
        let mut stmt = conn
            .prepare_cached("SELECT id, asset FROM checks WHERE name = ?1")
            .map_err(backend)?;
        let mut rows = stmt.query([check]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let id: i64 = col(row, 0, "check id")?;
            let asset: String = col(row, 1, "asset")?;
            if assets.is_none_or(|list| list.contains(&asset)) {
                ids.push(id);
            }
        }
    }
    // All of one check name, so equal times come ordered by asset.
    history(conn, pool, &ids, from, to, limit)
}
