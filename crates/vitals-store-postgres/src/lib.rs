//! The PostgreSQL backend of Vitals: [`PgStore`] implements the store traits of
//! [`vitals_store`] and passes the same conformance suite as the SQLite backend.
//!
//! # Shape
//! - **A pool** of connections (sqlx, rustls for TLS). Every write is one transaction; there is
//!   no writer thread: PostgreSQL itself serialises writers, so several processes (replicas)
//!   may share one database.
//! - **Migrations** are an ordered list of SQL scripts applied under an advisory lock
//!   ([`schema::MIGRATIONS`]).
//! - **Observations** are interned like on SQLite (checks, texts, value names; compact values)
//!   and **partitioned by day**, so retention drops whole partitions ([`schema`]). Batches are
//!   written as multi-row inserts (`UNNEST` of arrays: one statement per table and commit).
//! - **Outbox claims** take rows with `FOR UPDATE SKIP LOCKED`, so two delivery workers never
//!   get the same item; only the holder of a claim records its outcome.
//!
//! # Data URL
//! `postgres://user:${PASSWORD}@host:5432/db?sslmode=require`: `${NAME}` is replaced by the
//! environment variable `NAME` (missing: an error naming it). `sslmode=require` (or
//! `verify-ca`, `verify-full`) uses TLS through rustls.
//!
//! # Failure
//! Nothing here panics on data read back: a bad row is [`StoreError::Corrupt`] naming it.

mod cluster;
pub mod migrate_support;
pub mod schema;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use vitals_core::alert::{Alert, AlertState, Silence, Transition};
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_store::codec;
use vitals_store::{
    AlertQuery, Alerts, AssetRecord, AuditEntry, CommitBatch, CommitReport, Fleet, FleetCounts,
    FleetError, FleetResource, FleetSample, FleetWrite, HealthChange, HealthRow, Housekeeping,
    Notice, Notices, ObservationQuery, Observations, OutboxItem, OutboxState, OutboxUpdate,
    PeriodCount, RecentResults, ResourceChange, Result, Rollup, Scored, StoreError, DAY_MS,
};

/// Interned texts and value names remember the newest observation time that used them, lagging
/// at most this much (so a busy text is not rewritten at every commit).
const USED_LAG_MS: i64 = 3_600_000;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn json<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("{what}: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn lim(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn status_of(code: i16) -> Result<Status> {
    match u8::try_from(code) {
        Ok(c) if c <= 3 => Ok(Status::from_code(c)),
        _ => Err(StoreError::Corrupt(format!("unknown status code {code}"))),
    }
}

/// Replaces every `${NAME}` in `url` by the environment variable `NAME`.
pub fn expand_env(url: &str) -> Result<String> {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(StoreError::BadUrl(format!(
                "{url}: `${{` without a closing `}}`"
            )));
        };
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| {
            StoreError::BadUrl(format!(
                "the data URL names the environment variable {name}, which is not set"
            ))
        })?;
        // Inside a URL the value must be percent-encoded where it has reserved characters.
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Tuning of a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection (from the pool or the server) before failing.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A Vitals store in a PostgreSQL database. Cheap to share behind an `Arc`; several processes
/// may use the same database at once.
pub struct PgStore {
    pool: PgPool,
    closed: AtomicBool,
    /// (asset, check) → checks.id. Checks are never deleted, so this never goes stale.
    checks: RwLock<HashMap<(String, String), i32>>,
    /// value_names.id → name. Ids are never reused (a sequence), so this never goes stale.
    names: RwLock<HashMap<i32, String>>,
    /// Days whose observation partition exists.
    partitions: Mutex<HashSet<i64>>,
    /// Replicas: the decider's fence on commits, and the feed's writer (see `cluster`).
    fence: RwLock<Option<vitals_store::cluster::Fence>>,
    feed: RwLock<Option<String>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database of `url` (`${ENV}` expanded), brings its schema up to date.
    pub async fn connect(url: &str) -> Result<PgStore> {
        Self::connect_with(url, PgOptions::default()).await
    }

    pub async fn connect_with(url: &str, opts: PgOptions) -> Result<PgStore> {
        let expanded = expand_env(url)?;
        let connect = PgConnectOptions::from_str(&expanded)
            .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact(url))))?
            .application_name("vitals");
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to {}: {e}", redact(url))))?;
        schema::migrate(&pool).await?;
        Ok(PgStore {
            pool,
            closed: AtomicBool::new(false),
            checks: RwLock::new(HashMap::new()),
            names: RwLock::new(HashMap::new()),
            partitions: Mutex::new(HashSet::new()),
            fence: RwLock::new(None),
            feed: RwLock::new(None),
        })
    }

    /// The pool (for the replica coordination that lives beside the store).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.check_open()?;
        self.pool.begin().await.map_err(backend)
    }

    /// Makes sure the partitions of these days exist (in their own short transaction: DDL on
    /// a partitioned table takes a strong lock, which a long write transaction must not hold).
    async fn ensure_partitions(&self, days: &BTreeSet<i64>) -> Result<()> {
        let missing: Vec<i64> = {
            let known = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
            days.iter()
                .copied()
                .filter(|d| !known.contains(d))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(schema::LOCK_PARTITIONS)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for day in &missing {
            let (from, to) = (day.saturating_mul(DAY_MS), (day + 1).saturating_mul(DAY_MS));
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF observations FOR VALUES FROM ({from}) TO ({to})",
                schema::partition_name(*day)
            );
            sqlx::query(&sql).execute(&mut *tx).await.map_err(|e| {
                StoreError::Backend(format!("creating the partition of day {day}: {e}"))
            })?;
        }
        tx.commit().await.map_err(backend)?;
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(missing);
        Ok(())
    }

    /// Makes the partitions these observations go to. Called before the write transaction
    /// begins: inside it, waiting for a second connection could wait for ever on a full pool.
    async fn partitions_for(&self, obs: &[Observation]) -> Result<()> {
        let days: BTreeSet<i64> = obs.iter().map(|o| o.time.0.div_euclid(DAY_MS)).collect();
        self.ensure_partitions(&days).await
    }

    /// The ids of these (asset, check) pairs, creating those not yet known.
    async fn check_ids(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        pairs: &BTreeSet<(String, String)>,
    ) -> Result<HashMap<(String, String), i32>> {
        let mut out = HashMap::new();
        let mut missing: Vec<&(String, String)> = Vec::new();
        {
            let known = self.checks.read().unwrap_or_else(|e| e.into_inner());
            for p in pairs {
                match known.get(p) {
                    Some(id) => {
                        out.insert(p.clone(), *id);
                    }
                    None => missing.push(p),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let assets: Vec<&str> = missing.iter().map(|p| p.0.as_str()).collect();
        let names: Vec<&str> = missing.iter().map(|p| p.1.as_str()).collect();
        sqlx::query(
            "INSERT INTO checks (asset, name) SELECT * FROM UNNEST($1::text[], $2::text[]) \
             ON CONFLICT (asset, name) DO NOTHING",
        )
        .bind(&assets)
        .bind(&names)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        let rows = sqlx::query(
            "SELECT c.id, c.asset, c.name FROM checks c \
             JOIN UNNEST($1::text[], $2::text[]) AS p(asset, name) ON c.asset = p.asset AND c.name = p.name",
        )
        .bind(&assets)
        .bind(&names)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
        let mut known = self.checks.write().unwrap_or_else(|e| e.into_inner());
        for r in rows {
            let id: i32 = r.try_get(0).map_err(corrupt("check id"))?;
            let key = (
                r.try_get::<String, _>(1).map_err(corrupt("check asset"))?,
                r.try_get::<String, _>(2).map_err(corrupt("check name"))?,
            );
            known.insert(key.clone(), id);
            out.insert(key, id);
        }
        Ok(out)
    }

    /// Interns strings in `table` (`texts` or `value_names`, column `col`), each with the newest
    /// observation time using it; returns string → id.
    async fn intern(
        tx: &mut Transaction<'static, Postgres>,
        table: &str,
        col: &str,
        used: &BTreeMap<String, i64>,
    ) -> Result<HashMap<String, i32>> {
        if used.is_empty() {
            return Ok(HashMap::new());
        }
        // Sorted input: concurrent writers lock the same rows in the same order.
        let keys: Vec<&str> = used.keys().map(String::as_str).collect();
        let times: Vec<i64> = used.values().copied().collect();
        sqlx::query(&format!(
            "INSERT INTO {table} ({col}, used) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
             ON CONFLICT ({col}) DO UPDATE SET used = excluded.used \
             WHERE {table}.used < excluded.used - {USED_LAG_MS}"
        ))
        .bind(&keys)
        .bind(&times)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        let rows = sqlx::query(&format!(
            "SELECT id, {col} FROM {table} WHERE {col} = ANY($1::text[])"
        ))
        .bind(&keys)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                r.try_get::<String, _>(1).map_err(corrupt(table))?,
                r.try_get::<i32, _>(0).map_err(corrupt(table))?,
            );
        }
        Ok(out)
    }

    /// Stores observations inside `tx` (their partitions made with [`Self::partitions_for`]
    /// before `tx` began); returns the indices of duplicates (same check and millisecond as a
    /// stored one or an earlier one of the list).
    async fn insert_observations(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        obs: &[Observation],
    ) -> Result<Vec<usize>> {
        if obs.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: BTreeSet<(String, String)> = obs
            .iter()
            .map(|o| (o.asset.clone(), o.check.clone()))
            .collect();
        let ids = self.check_ids(tx, &pairs).await?;
        let mut texts: BTreeMap<String, i64> = BTreeMap::new();
        let mut names: BTreeMap<String, i64> = BTreeMap::new();
        let mut comps: Vec<Option<String>> = Vec::with_capacity(obs.len());
        for o in obs {
            let t = o.time.0;
            if !o.reason.is_empty() {
                let e = texts.entry(o.reason.clone()).or_insert(t);
                *e = (*e).max(t);
            }
            let c = if o.components.is_empty() {
                None
            } else {
                let j = serde_json::to_string(&o.components).map_err(|e| {
                    StoreError::Backend(format!("components of {}/{}: {e}", o.asset, o.check))
                })?;
                let e = texts.entry(j.clone()).or_insert(t);
                *e = (*e).max(t);
                Some(j)
            };
            comps.push(c);
            for v in &o.values {
                let e = names.entry(v.name.clone()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        let text_ids = Self::intern(tx, "texts", "text", &texts).await?;
        let name_ids = Self::intern(tx, "value_names", "name", &names).await?;
        let missing =
            |what: &str, s: &str| StoreError::Backend(format!("{what} {s:?} was not interned"));

        let mut dups = Vec::new();
        let mut seen: HashSet<(i32, i64)> = HashSet::new();
        let mut index: Vec<usize> = Vec::new();
        let (mut c_id, mut c_ts, mut c_status, mut c_dur) = (vec![], vec![], vec![], vec![]);
        let (mut c_score, mut c_reason, mut c_comp, mut c_vals) = (vec![], vec![], vec![], vec![]);
        for (i, o) in obs.iter().enumerate() {
            let check_id = *ids
                .get(&(o.asset.clone(), o.check.clone()))
                .ok_or_else(|| missing("check", &o.check))?;
            if !seen.insert((check_id, o.time.0)) {
                dups.push(i);
                continue;
            }
            index.push(i);
            c_id.push(check_id);
            c_ts.push(o.time.0);
            c_status.push(i16::from(o.status.code()));
            // Bit-preserving: read back with the inverse cast.
            c_dur.push(o.duration_us as i64);
            c_score.push((o.score != o.status.default_score()).then_some(o.score));
            c_reason.push(match o.reason.as_str() {
                "" => None,
                r => Some(*text_ids.get(r).ok_or_else(|| missing("reason", r))?),
            });
            c_comp.push(match &comps[i] {
                None => None,
                Some(j) => Some(*text_ids.get(j).ok_or_else(|| missing("components", j))?),
            });
            c_vals.push(if o.values.is_empty() {
                None
            } else {
                let mut buf = Vec::with_capacity(o.values.len() * 4);
                for v in &o.values {
                    let id = *name_ids
                        .get(&v.name)
                        .ok_or_else(|| missing("value name", &v.name))?;
                    codec::encode_value(&mut buf, id as u64, v.value);
                }
                Some(buf)
            });
        }
        let rows = sqlx::query(
            "INSERT INTO observations (check_id, ts, status, duration_us, score, reason_id, comp_id, vals) \
             SELECT * FROM UNNEST($1::int[], $2::bigint[], $3::smallint[], $4::bigint[], $5::bigint[], \
             $6::int[], $7::int[], $8::bytea[]) \
             ON CONFLICT (check_id, ts) DO NOTHING RETURNING check_id, ts",
        )
        .bind(&c_id)
        .bind(&c_ts)
        .bind(&c_status)
        .bind(&c_dur)
        .bind(&c_score)
        .bind(&c_reason)
        .bind(&c_comp)
        .bind(&c_vals)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
        if rows.len() < index.len() {
            let mut stored: HashSet<(i32, i64)> = HashSet::with_capacity(rows.len());
            for r in rows {
                stored.insert((
                    r.try_get(0).map_err(corrupt("check id"))?,
                    r.try_get(1).map_err(corrupt("ts"))?,
                ));
            }
            for (k, i) in index.iter().enumerate() {
                if !stored.contains(&(c_id[k], c_ts[k])) {
                    dups.push(*i);
                }
            }
            dups.sort_unstable();
        }
        Ok(dups)
    }

    async fn upsert_in(
        tx: &mut Transaction<'static, Postgres>,
        assets: &[AssetRecord],
    ) -> Result<()> {
        if assets.is_empty() {
            return Ok(());
        }
        // Last one of an id wins, as one-by-one upserts would.
        let mut by_id: BTreeMap<&str, &AssetRecord> = BTreeMap::new();
        for a in assets {
            by_id.insert(&a.id, a);
        }
        let ids: Vec<&str> = by_id.keys().copied().collect();
        let names: Vec<&str> = by_id.values().map(|a| a.name.as_str()).collect();
        let docs: Vec<String> = by_id
            .values()
            .map(|a| json("asset", a))
            .collect::<Result<_>>()?;
        sqlx::query(
            "INSERT INTO assets (id, name, doc) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&docs)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn value_name(&self, id: i32) -> Result<String> {
        if let Some(n) = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(n.clone());
        }
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM value_names WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let name =
            name.ok_or_else(|| StoreError::Corrupt(format!("value name id {id} does not exist")))?;
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, name.clone());
        Ok(name)
    }

    /// Decodes rows of [`OBS_COLUMNS`].
    async fn decode(&self, rows: Vec<PgRow>) -> Result<Vec<Observation>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let status = status_of(r.try_get(3).map_err(corrupt("status"))?)?;
            let score: Option<i64> = r.try_get(5).map_err(corrupt("score"))?;
            let reason_id: Option<i32> = r.try_get(6).map_err(corrupt("reason id"))?;
            let reason: Option<String> = r.try_get(7).map_err(corrupt("reason"))?;
            let comp_id: Option<i32> = r.try_get(8).map_err(corrupt("component id"))?;
            let comps: Option<String> = r.try_get(9).map_err(corrupt("components"))?;
            let vals: Option<Vec<u8>> = r.try_get(10).map_err(corrupt("values"))?;
            let text = |id: Option<i32>, t: Option<String>, what: &str| match (id, t) {
                (None, _) => Ok(None),
                (Some(_), Some(t)) => Ok(Some(t)),
                (Some(id), None) => Err(StoreError::Corrupt(format!(
                    "{what} refers to missing text id {id}"
                ))),
            };
            let reason = text(reason_id, reason, "reason")?.unwrap_or_default();
            let components: Vec<Component> = match text(comp_id, comps, "components")? {
                None => Vec::new(),
                Some(j) => parse("component list", &j)?,
            };
            let mut values = Vec::new();
            if let Some(buf) = vals {
                for (id, value) in codec::decode_values(&buf)? {
                    let id = i32::try_from(id).map_err(|_| {
                        StoreError::Corrupt(format!("value name id {id} out of range"))
                    })?;
                    values.push(Value {
                        name: self.value_name(id).await?,
                        value,
                    });
                }
            }
            out.push(Observation {
                asset: r.try_get(0).map_err(corrupt("asset"))?,
                check: r.try_get(1).map_err(corrupt("check"))?,
                time: Timestamp(r.try_get(2).map_err(corrupt("ts"))?),
                status,
                score: score.unwrap_or_else(|| status.default_score()),
                duration_us: r.try_get::<i64, _>(4).map_err(corrupt("duration"))? as u64,
                reason,
                values,
                components,
            });
        }
        Ok(out)
    }

    /// Observations of these checks, newest first (equal times by check, then asset).
    async fn history(
        &self,
        ids: &[i32],
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<Observation>> {
        self.check_open()?;
        if ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{OBS_COLUMNS} FROM observations o JOIN checks c ON c.id = o.check_id {TEXT_JOINS} \
             WHERE o.check_id = ANY($1::int[]) AND o.ts BETWEEN $2 AND $3 \
             ORDER BY o.ts DESC, c.name, c.asset LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(ids)
            .bind(from.map_or(i64::MIN, |t| t.0))
            .bind(to.map_or(i64::MAX, |t| t.0))
            .bind(lim(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        self.decode(rows).await
    }

    async fn check_id(&self, asset: &str, check: &str) -> Result<Option<i32>> {
        self.check_open()?;
        sqlx::query_scalar("SELECT id FROM checks WHERE asset = $1 AND name = $2")
            .bind(asset)
            .bind(check)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    /// Days whose partitions exist, oldest first.
    async fn partition_days(&self) -> Result<Vec<i64>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'observations'::regclass",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut days: Vec<i64> = names
            .iter()
            .filter_map(|n| schema::partition_day(n))
            .collect();
        days.sort_unstable();
        Ok(days)
    }
}

/// The columns every observation query selects, in the order `decode` reads them.
const OBS_COLUMNS: &str = "SELECT c.asset, c.name, o.ts, o.status, o.duration_us, o.score, \
     o.reason_id, r.text, o.comp_id, k.text, o.vals";

const TEXT_JOINS: &str =
    "LEFT JOIN texts r ON r.id = o.reason_id LEFT JOIN texts k ON k.id = o.comp_id";

const OUTBOX_COLUMNS: &str = "id, notifier, group_key, not_before, state, attempts, next_attempt, \
     last_error, recipients, detail, sent, doc";

fn outbox_row(r: &PgRow) -> Result<OutboxItem> {
    outbox_row_at(r, 0)
}

fn alerts_of(rows: Vec<PgRow>) -> Result<Vec<Alert>> {
    rows.iter()
        .map(|r| {
            parse(
                "alert",
                &r.try_get::<String, _>(0).map_err(corrupt("alert"))?,
            )
        })
        .collect()
}

fn audit_row(r: &PgRow) -> Result<AuditEntry> {
    let c = corrupt("audit");
    let params: String = r.try_get(5).map_err(&c)?;
    Ok(AuditEntry {
        id: r.try_get(0).map_err(&c)?,
        time: Timestamp(r.try_get(1).map_err(&c)?),
        actor: r.try_get(2).map_err(&c)?,
        action: r.try_get(3).map_err(&c)?,
        target: r.try_get(4).map_err(&c)?,
        params: parse("audit params", &params)?,
        outcome: r.try_get(6).map_err(&c)?,
    })
}

fn sample_row(r: &PgRow) -> Result<FleetSample> {
    let c = corrupt("fleet sample");
    let ts = |i: usize| -> Result<Option<Timestamp>> {
        Ok(r.try_get::<Option<i64>, _>(i)
            .map_err(corrupt("fleet sample"))?
            .map(Timestamp))
    };
    let d = |i: usize| {
        r.try_get::<Option<i64>, _>(i)
            .map_err(corrupt("fleet sample"))
    };
    let daily = match (d(11)?, d(12)?, d(13)?, d(14)?) {
        (Some(imported), Some(updated), Some(invalid), Some(failed)) => Some(FleetCounts {
            imported,
            updated,
            invalid,
            failed,
        }),
        _ => None,
    };
    Ok(FleetSample {
        node: r.try_get(0).map_err(&c)?,
        day: r.try_get(1).map_err(&c)?,
        polled: Timestamp(r.try_get(2).map_err(&c)?),
        last_contact: ts(3)?,
        last_start: Timestamp(r.try_get(4).map_err(&c)?),
        last_write: ts(5)?,
        last_reject: ts(6)?,
        imported: r.try_get(7).map_err(&c)?,
        updated: r.try_get(8).map_err(&c)?,
        invalid: r.try_get(9).map_err(&c)?,
        failed: r.try_get(10).map_err(&c)?,
        daily,
    })
}

fn notice_row(r: &PgRow) -> Result<Notice> {
    let c = corrupt("notice");
    let id: i64 = r.try_get(0).map_err(&c)?;
    let doc: String = r.try_get(1).map_err(&c)?;
    let mut n: Notice = parse(&format!("notice {id}"), &doc)?;
    n.id = id;
    n.ended = r.try_get::<Option<i64>, _>(2).map_err(&c)?.map(Timestamp);
    Ok(n)
}

#[async_trait]
impl Observations for PgStore {
    async fn upsert_assets(&self, assets: &[AssetRecord]) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::upsert_in(&mut tx, assets).await?;
        tx.commit().await.map_err(backend)
    }

    async fn assets(&self) -> Result<Vec<AssetRecord>> {
        self.check_open()?;
        let rows = sqlx::query("SELECT id, doc FROM assets ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(corrupt("asset id"))?;
                let doc: String = r.try_get(1).map_err(corrupt("asset"))?;
                let mut a: AssetRecord = parse(&format!("asset {id:?}"), &doc)?;
                a.id = id;
                Ok(a)
            })
            .collect()
    }

    async fn append(&self, observations: Vec<Observation>) -> Result<()> {
        self.partitions_for(&observations).await?;
        let mut tx = self.begin().await?;
        self.insert_observations(&mut tx, &observations).await?;
        tx.commit().await.map_err(backend)
    }

    async fn latest(&self) -> Result<Vec<Observation>> {
        self.check_open()?;
        let sql = format!(
            "{OBS_COLUMNS} FROM checks c CROSS JOIN LATERAL (SELECT * FROM observations m \
             WHERE m.check_id = c.id ORDER BY m.ts DESC LIMIT 1) o {TEXT_JOINS} ORDER BY c.asset, c.name"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        self.decode(rows).await
    }

    async fn observations(&self, q: &ObservationQuery) -> Result<Vec<Observation>> {
        self.check_open()?;
        let ids: Vec<i32> = match &q.check {
            Some(check) => self.check_id(&q.asset, check).await?.into_iter().collect(),
            None => sqlx::query_scalar("SELECT id FROM checks WHERE asset = $1")
                .bind(&q.asset)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?,
        };
        self.history(&ids, q.from, q.to, q.limit).await
    }

    async fn count_observations(&self) -> Result<u64> {
        self.check_open()?;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM observations")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n.max(0) as u64)
    }

    async fn check_history(
        &self,
        check: &str,
        assets: Option<&[String]>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<Observation>> {
        self.check_open()?;
        let rows = sqlx::query("SELECT id, asset FROM checks WHERE name = $1")
            .bind(check)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut ids = Vec::new();
        for r in rows {
            let asset: String = r.try_get(1).map_err(corrupt("check asset"))?;
            if assets.is_none_or(|list| list.contains(&asset)) {
                ids.push(r.try_get::<i32, _>(0).map_err(corrupt("check id"))?);
            }
        }
        self.history(&ids, from, to, limit).await
    }

    async fn recent_scores(&self, asset: &str, check: &str, limit: usize) -> Result<Vec<i64>> {
        let Some(id) = self.check_id(asset, check).await? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT status, score FROM observations WHERE check_id = $1 ORDER BY ts DESC LIMIT $2",
        )
        .bind(id)
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let status = status_of(r.try_get(0).map_err(corrupt("status"))?)?;
                let score: Option<i64> = r.try_get(1).map_err(corrupt("score"))?;
                Ok(score.unwrap_or_else(|| status.default_score()))
            })
            .collect()
    }

    async fn health_rows(&self) -> Result<Vec<HealthRow>> {
        self.check_open()?;
        let c = corrupt("health row");
        // Test rows, then the groups' severity rows (test NULL).
        let rows = sqlx::query(
            "SELECT asset, grp, test, score, updated, 0 AS k FROM health_state \
             UNION ALL SELECT asset, grp, NULL, score, updated, 1 FROM health_severity \
             ORDER BY k, asset, grp, test",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(HealthRow {
                asset: r.try_get(0).map_err(&c)?,
                group: r.try_get(1).map_err(&c)?,
                test: r.try_get(2).map_err(&c)?,
                value: Scored {
                    score: r.try_get(3).map_err(&c)?,
                    updated: Timestamp(r.try_get(4).map_err(&c)?),
                },
            });
        }
        Ok(out)
    }

    async fn seen_result_ids(&self, ids: &[String]) -> Result<HashSet<String>> {
        self.check_open()?;
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<String> =
            sqlx::query_scalar("SELECT id FROM result_ids WHERE id = ANY($1::text[])")
                .bind(ids)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(found.into_iter().collect())
    }

    async fn period_counts(
        &self,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<PeriodCount>> {
        self.check_open()?;
        if period_ms <= 0 {
            return Err(StoreError::Backend(format!("period {period_ms} ms")));
        }
        let c = corrupt("period counts");
        // Rollups where they exist; raw observations after each check's last rollup.
        let rows = sqlx::query(
            "SELECT c.asset, c.name, r.start, r.count, r.failures FROM rollups r \
             JOIN checks c ON c.id = r.check_id \
             WHERE r.period = $1 AND r.start >= $2 AND r.start < $3",
        )
        .bind(period_ms)
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = Vec::new();
        let mut covered: HashMap<(String, String), i64> = HashMap::new();
        for r in rows {
            let asset: String = r.try_get(0).map_err(&c)?;
            let check: String = r.try_get(1).map_err(&c)?;
            let start: i64 = r.try_get(2).map_err(&c)?;
            let e = covered
                .entry((asset.clone(), check.clone()))
                .or_insert(from.0);
            *e = (*e).max(start.saturating_add(period_ms));
            out.push(PeriodCount {
                asset,
                check,
                start: Timestamp(start),
                count: r.try_get::<i64, _>(3).map_err(&c)?.max(0) as u64,
                failures: r.try_get::<i64, _>(4).map_err(&c)?.max(0) as u64,
            });
        }
        let rows = sqlx::query(
            "SELECT c.asset, c.name, o.p, o.n, o.f FROM ( \
             SELECT check_id, (ts / $3) * $3 AS p, count(*) AS n, count(*) FILTER (WHERE status <> 0) AS f \
             FROM observations WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2) o \
             JOIN checks c ON c.id = o.check_id ORDER BY c.id, o.p",
        )
        .bind(from.0)
        .bind(to.0)
        .bind(period_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        for r in rows {
            let asset: String = r.try_get(0).map_err(&c)?;
            let check: String = r.try_get(1).map_err(&c)?;
            let start: i64 = r.try_get(2).map_err(&c)?;
            if covered
                .get(&(asset.clone(), check.clone()))
                .is_some_and(|cov| start < *cov)
            {
                continue;
            }
            out.push(PeriodCount {
                asset,
                check,
                start: Timestamp(start),
                count: r.try_get::<i64, _>(3).map_err(&c)?.max(0) as u64,
                failures: r.try_get::<i64, _>(4).map_err(&c)?.max(0) as u64,
            });
        }
        Ok(out)
    }

    async fn recent_results(&self, limit: usize) -> Result<Vec<RecentResults>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT c.id, c.asset, c.name, o.ts, o.status FROM checks c CROSS JOIN LATERAL \
             (SELECT ts, status FROM observations m WHERE m.check_id = c.id ORDER BY m.ts DESC LIMIT $1) o \
             ORDER BY c.id, o.ts DESC",
        )
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let c = corrupt("recent results");
        let mut out: Vec<RecentResults> = Vec::new();
        let mut last = None;
        for r in rows {
            let id: i32 = r.try_get(0).map_err(&c)?;
            let entry = (
                Timestamp(r.try_get(3).map_err(&c)?),
                status_of(r.try_get(4).map_err(&c)?)?,
            );
            if last != Some(id) {
                last = Some(id);
                out.push(RecentResults {
                    asset: r.try_get(1).map_err(&c)?,
                    check: r.try_get(2).map_err(&c)?,
                    results: Vec::new(),
                });
            }
            if let Some(cur) = out.last_mut() {
                cur.results.push(entry);
            }
        }
        Ok(out)
    }

    async fn commit(&self, batch: Arc<CommitBatch>) -> Result<CommitReport> {
        if *batch == CommitBatch::default() {
            return self.check_open().map(|()| CommitReport::default());
        }
        self.partitions_for(&batch.observations).await?;
        let mut tx = self.begin().await?;
        self.check_fence(&mut tx).await?;
        Self::upsert_in(&mut tx, &batch.assets).await?;
        let duplicates = self
            .insert_observations(&mut tx, &batch.observations)
            .await?;
        write_health(&mut tx, &batch).await?;
        write_alerts(&mut tx, &batch).await?;
        self.write_cluster(&mut tx, &batch, &duplicates).await?;
        tx.commit().await.map_err(backend)?;
        Ok(CommitReport { duplicates })
    }
}

/// Health upserts waiting to be written, last value per key (a run between two deletions).
#[derive(Default)]
struct HealthRun<'a> {
    state: BTreeMap<(&'a str, &'a str, &'a str), Scored>,
    severity: BTreeMap<(&'a str, &'a str), Scored>,
}

impl HealthRun<'_> {
    /// One `UNNEST` upsert per table: a commit of a busy round carries hundreds of changes,
    /// and one statement each would be as many round trips.
    async fn flush(&mut self, tx: &mut Transaction<'static, Postgres>) -> Result<()> {
        if !self.state.is_empty() {
            let (mut a, mut g, mut t, mut sc, mut up) = (vec![], vec![], vec![], vec![], vec![]);
            for ((asset, grp, test), v) in std::mem::take(&mut self.state) {
                a.push(asset);
                g.push(grp);
                t.push(test);
                sc.push(v.score);
                up.push(v.updated.0);
            }
            sqlx::query(
                "INSERT INTO health_state (asset, grp, test, score, updated) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
                 ON CONFLICT (asset, grp, test) DO UPDATE SET score = excluded.score, updated = excluded.updated",
            )
            .bind(&a)
            .bind(&g)
            .bind(&t)
            .bind(&sc)
            .bind(&up)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        if !self.severity.is_empty() {
            let (mut a, mut g, mut sc, mut up) = (vec![], vec![], vec![], vec![]);
            for ((asset, grp), v) in std::mem::take(&mut self.severity) {
                a.push(asset);
                g.push(grp);
                sc.push(v.score);
                up.push(v.updated.0);
            }
            sqlx::query(
                "INSERT INTO health_severity (asset, grp, score, updated) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
                 ON CONFLICT (asset, grp) DO UPDATE SET score = excluded.score, updated = excluded.updated",
            )
            .bind(&a)
            .bind(&g)
            .bind(&sc)
            .bind(&up)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }
}

async fn write_health(tx: &mut Transaction<'static, Postgres>, b: &CommitBatch) -> Result<()> {
    // Applied in order: upserts gather (the last value of a key wins, as in order) until a
    // deletion, which first writes what gathered before it.
    let mut run = HealthRun::default();
    for u in &b.health {
        let a = u.asset.as_str();
        let q = match &u.change {
            HealthChange::State { group, test, value } => {
                run.state.insert((a, group, test), *value);
                continue;
            }
            HealthChange::Severity { group, value } => {
                run.severity.insert((a, group), *value);
                continue;
            }
            HealthChange::DeleteState {
                group,
                test: Some(t),
            } => {
                sqlx::query("DELETE FROM health_state WHERE asset = $1 AND grp = $2 AND test = $3")
                    .bind(a)
                    .bind(group)
                    .bind(t)
            }
            HealthChange::DeleteState { group, test: None } => {
                sqlx::query("DELETE FROM health_state WHERE asset = $1 AND grp = $2")
                    .bind(a)
                    .bind(group)
            }
            HealthChange::DeleteSeverity { group } => {
                sqlx::query("DELETE FROM health_severity WHERE asset = $1 AND grp = $2")
                    .bind(a)
                    .bind(group)
            }
            HealthChange::DeleteAll => {
                run.flush(tx).await?;
                sqlx::query("DELETE FROM health_state WHERE asset = $1")
                    .bind(a)
                    .execute(&mut **tx)
                    .await
                    .map_err(backend)?;
                sqlx::query("DELETE FROM health_severity WHERE asset = $1").bind(a)
            }
        };
        run.flush(tx).await?;
        q.execute(&mut **tx).await.map_err(backend)?;
    }
    run.flush(tx).await?;
    if !b.result_ids.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        sqlx::query(
            "INSERT INTO result_ids (id, ts) SELECT id, $2 FROM UNNEST($1::text[]) AS u(id) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&b.result_ids)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

async fn write_alerts(tx: &mut Transaction<'static, Postgres>, b: &CommitBatch) -> Result<()> {
    for a in &b.alerts {
        sqlx::query(
            "INSERT INTO alerts (id, key, rule, asset, state, started, ended, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, ended = excluded.ended, doc = excluded.doc",
        )
        .bind(a.id)
        .bind(&a.key)
        .bind(&a.rule)
        .bind(a.asset.as_deref().or(a.group.as_deref()))
        .bind(a.state.as_str())
        .bind(a.started.0)
        .bind(a.resolved.unwrap_or(a.started).0)
        .bind(json("alert", a)?)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    for (id, t) in &b.alert_events {
        sqlx::query(
            "INSERT INTO alert_events (alert_id, seq, doc) VALUES \
             ($1, (SELECT coalesce(max(seq), 0) + 1 FROM alert_events WHERE alert_id = $1), $2)",
        )
        .bind(id)
        .bind(json("transition", t)?)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    for o in &b.outbox {
        let alert_id = o.notification.alerts.first().map_or(0, |a| a.alert_id);
        sqlx::query(
            "INSERT INTO outbox (id, notifier, group_key, alert_id, created, not_before, state, attempts, \
             next_attempt, last_error, recipients, detail, sent, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&o.id)
        .bind(&o.notifier)
        .bind(&o.group_key)
        .bind(alert_id)
        .bind(o.notification.created.0)
        .bind(o.not_before.0)
        .bind(o.state.as_str())
        .bind(i32::try_from(o.attempts).unwrap_or(i32::MAX))
        .bind(o.next_attempt.0)
        .bind(&o.last_error)
        .bind(json("recipients", &o.recipients)?)
        .bind(&o.detail)
        .bind(o.sent.map(|t| t.0))
        .bind(json("notification", &o.notification)?)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    for s in &b.silences {
        sqlx::query(
            "INSERT INTO silences (id, ends, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET ends = excluded.ends, doc = excluded.doc",
        )
        .bind(s.id)
        .bind(s.ends.0)
        .bind(json("silence", s)?)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl Alerts for PgStore {
    async fn open_alerts(&self) -> Result<Vec<Alert>> {
        self.check_open()?;
        let rows = sqlx::query("SELECT doc FROM alerts WHERE state <> 'resolved' ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        alerts_of(rows)
    }

    async fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>> {
        self.check_open()?;
        let states: Vec<&str> = match &q.states {
            Some(s) if !s.is_empty() => s.iter().map(|x| x.as_str()).collect(),
            _ => [
                AlertState::Pending,
                AlertState::Firing,
                AlertState::Acknowledged,
                AlertState::Resolved,
            ]
            .iter()
            .map(|x| x.as_str())
            .collect(),
        };
        let rows = sqlx::query(
            "SELECT doc FROM alerts WHERE ($1::text IS NULL OR asset = $1) AND state = ANY($2::text[]) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(&q.asset)
        .bind(&states)
        .bind(lim(q.limit.max(1)))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        alerts_of(rows)
    }

    async fn alert(&self, id: i64) -> Result<Option<(Alert, Vec<Transition>)>> {
        self.check_open()?;
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(doc) = doc else { return Ok(None) };
        let alert: Alert = parse("alert", &doc)?;
        let docs: Vec<String> =
            sqlx::query_scalar("SELECT doc FROM alert_events WHERE alert_id = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        let events = docs
            .iter()
            .map(|d| parse("transition", d))
            .collect::<Result<_>>()?;
        Ok(Some((alert, events)))
    }

    async fn max_ids(&self) -> Result<(i64, i64)> {
        self.check_open()?;
        let r = sqlx::query(
            "SELECT (SELECT coalesce(max(id), 0) FROM alerts)::bigint, (SELECT coalesce(max(id), 0) FROM silences)::bigint",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok((
            r.try_get(0).map_err(corrupt("max ids"))?,
            r.try_get(1).map_err(corrupt("max ids"))?,
        ))
    }

    async fn silences(&self, since: Timestamp) -> Result<Vec<Silence>> {
        self.check_open()?;
        let docs: Vec<String> =
            sqlx::query_scalar("SELECT doc FROM silences WHERE ends >= $1 ORDER BY id")
                .bind(since.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        docs.iter().map(|d| parse("silence", d)).collect()
    }

    async fn outbox_claim(
        &self,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        let mut tx = self.begin().await?;
        // SKIP LOCKED: a row another claimer is taking right now is left to it; a row it took
        // and committed meanwhile fails the re-check of the WHERE clause and is not taken.
        let sql = format!(
            "WITH due AS (SELECT id FROM outbox WHERE \
             (state = 'pending' AND next_attempt <= $1 AND (not_before <= $1 OR (notifier, group_key) IN \
              (SELECT notifier, group_key FROM outbox WHERE state = 'pending' AND next_attempt <= $1 AND not_before <= $1))) \
             OR (state = 'claimed' AND (claimed_until <= $1 OR claimed_by = $3)) \
             ORDER BY created, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox o SET state = 'claimed', claimed_by = $3, claimed_until = $4 FROM due \
             WHERE o.id = due.id RETURNING o.created, {}",
            OUTBOX_COLUMNS
                .split(", ")
                .map(|c| format!("o.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(now.0)
            .bind(lim(limit))
            .bind(owner)
            .bind(until.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let created: i64 = r.try_get(0).map_err(corrupt("outbox"))?;
            // The columns after `created`, as `outbox_row` reads them.
            items.push((created, outbox_row_at(r, 1)?));
        }
        items.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(items.into_iter().map(|(_, i)| i).collect())
    }

    async fn outbox_next_due(&self) -> Result<Option<Timestamp>> {
        self.check_open()?;
        let t: Option<i64> = sqlx::query_scalar(
            "SELECT min(CASE WHEN state = 'pending' THEN greatest(next_attempt, not_before) ELSE claimed_until END) \
             FROM outbox WHERE state IN ('pending', 'claimed')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(t.map(Timestamp))
    }

    async fn outbox_pending(&self) -> Result<Vec<(String, usize)>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT notifier, count(*) FROM outbox WHERE state IN ('pending', 'claimed') \
             GROUP BY notifier ORDER BY notifier",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(corrupt("outbox"))?,
                    r.try_get::<i64, _>(1).map_err(corrupt("outbox"))?.max(0) as usize,
                ))
            })
            .collect()
    }

    async fn outbox_update(&self, owner: &str, updates: Vec<OutboxUpdate>) -> Result<usize> {
        if let Some(u) = updates.iter().find(|u| u.state == OutboxState::Claimed) {
            return Err(StoreError::Backend(format!(
                "outbox item {}: an update cannot claim (claim with outbox_claim)",
                u.id
            )));
        }
        let mut tx = self.begin().await?;
        let mut applied = 0;
        for u in &updates {
            let r = sqlx::query(
                "UPDATE outbox SET state = $2, attempts = $3, next_attempt = $4, last_error = $5, \
                 recipients = $6, detail = $7, sent = $8, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $1 AND state = 'claimed' AND claimed_by = $9",
            )
            .bind(&u.id)
            .bind(u.state.as_str())
            .bind(i32::try_from(u.attempts).unwrap_or(i32::MAX))
            .bind(u.next_attempt.0)
            .bind(&u.last_error)
            .bind(json("recipients", &u.recipients)?)
            .bind(&u.detail)
            .bind(u.sent.map(|t| t.0))
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            applied += r.rows_affected() as usize;
        }
        tx.commit().await.map_err(backend)?;
        Ok(applied)
    }

    async fn notifications(&self, alert: Option<i64>, limit: usize) -> Result<Vec<OutboxItem>> {
        self.check_open()?;
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1::bigint IS NULL OR alert_id = $1) \
             ORDER BY created DESC, id DESC LIMIT $2"
        ))
        .bind(alert)
        .bind(lim(limit.max(1)))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(outbox_row).collect()
    }
}

/// `outbox_row` of the columns starting at `at`.
fn outbox_row_at(r: &PgRow, at: usize) -> Result<OutboxItem> {
    let c = corrupt("outbox");
    let state: String = r.try_get(at + 4).map_err(&c)?;
    let recipients: String = r.try_get(at + 8).map_err(&c)?;
    let doc: String = r.try_get(at + 11).map_err(&c)?;
    Ok(OutboxItem {
        id: r.try_get(at).map_err(&c)?,
        notifier: r.try_get(at + 1).map_err(&c)?,
        group_key: r.try_get(at + 2).map_err(&c)?,
        not_before: Timestamp(r.try_get(at + 3).map_err(&c)?),
        state: OutboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state {state:?}")))?,
        attempts: u32::try_from(r.try_get::<i32, _>(at + 5).map_err(&c)?).unwrap_or(0),
        next_attempt: Timestamp(r.try_get(at + 6).map_err(&c)?),
        last_error: r.try_get(at + 7).map_err(&c)?,
        recipients: parse("recipients", &recipients)?,
        detail: r.try_get(at + 9).map_err(&c)?,
        sent: r
            .try_get::<Option<i64>, _>(at + 10)
            .map_err(&c)?
            .map(Timestamp),
        notification: parse("notification", &doc)?,
    })
}

#[async_trait]
impl Housekeeping for PgStore {
    async fn audit_append(&self, e: AuditEntry) -> Result<()> {
        self.check_open()?;
        sqlx::query(
            "INSERT INTO audit (ts, actor, action, target, params, outcome) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.time.0)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(e.params.to_string())
        .bind(&e.outcome)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn audit(&self, since: Option<Timestamp>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT id, ts, actor, action, target, params, outcome FROM audit WHERE ts >= $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(since.map_or(i64::MIN, |t| t.0))
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(audit_row).collect()
    }

    async fn compute_rollups(
        &self,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<usize> {
        self.check_open()?;
        if period_ms <= 0 {
            return Err(StoreError::Backend(format!("rollup period {period_ms} ms")));
        }
        // percentile_disc is the nearest-rank percentile, as on SQLite; the mean truncates.
        let r = sqlx::query(
            "INSERT INTO rollups (check_id, period, start, count, failures, min_us, mean_us, max_us, p95_us) \
             SELECT check_id, $3, (ts / $3) * $3, count(*), count(*) FILTER (WHERE status <> 0), \
             min(duration_us), div(sum(duration_us), count(*))::bigint, max(duration_us), \
             percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_us) \
             FROM observations WHERE ts >= $1 AND ts < $2 GROUP BY check_id, (ts / $3) * $3 \
             ON CONFLICT (check_id, period, start) DO UPDATE SET count = excluded.count, \
             failures = excluded.failures, min_us = excluded.min_us, mean_us = excluded.mean_us, \
             max_us = excluded.max_us, p95_us = excluded.p95_us",
        )
        .bind(from.0)
        .bind(to.0)
        .bind(period_ms)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() as usize)
    }

    async fn rollups(
        &self,
        asset: &str,
        check: &str,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Rollup>> {
        let Some(id) = self.check_id(asset, check).await? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT start, count, failures, min_us, mean_us, max_us, p95_us FROM rollups \
             WHERE check_id = $1 AND period = $2 AND start >= $3 AND start < $4 ORDER BY start",
        )
        .bind(id)
        .bind(period_ms)
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let c = corrupt("rollup");
        let u = |r: &PgRow, i: usize| -> Result<u64> {
            Ok(r.try_get::<i64, _>(i).map_err(corrupt("rollup"))?.max(0) as u64)
        };
        rows.iter()
            .map(|r| {
                Ok(Rollup {
                    asset: asset.to_string(),
                    check: check.to_string(),
                    period_ms,
                    start: Timestamp(r.try_get(0).map_err(&c)?),
                    count: u(r, 1)?,
                    failures: u(r, 2)?,
                    min_us: u(r, 3)?,
                    mean_us: u(r, 4)?,
                    max_us: u(r, 5)?,
                    p95_us: u(r, 6)?,
                })
            })
            .collect()
    }

    async fn delete_raw_before(&self, before: Timestamp, batch: usize) -> Result<usize> {
        self.check_open()?;
        // Whole days before the cutoff: drop their partitions (a dropped partition's rows all
        // count, so one call may delete more than `batch`; callers loop until 0).
        let mut deleted = 0usize;
        for day in self.partition_days().await? {
            if (day + 1).saturating_mul(DAY_MS) > before.0 || deleted >= batch.max(1) {
                break;
            }
            let name = schema::partition_name(day);
            let mut tx = self.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(schema::LOCK_PARTITIONS)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let count = format!("SELECT count(*) FROM {name}");
            let counted: std::result::Result<i64, sqlx::Error> =
                sqlx::query_scalar(&count).fetch_one(&mut *tx).await;
            let n: Option<i64> = match counted {
                Ok(n) => Some(n),
                // Another replica dropped it first.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => None,
                Err(e) => return Err(backend(e)),
            };
            if let Some(n) = n {
                let drop = format!("DROP TABLE IF EXISTS {name}");
                sqlx::query(&drop)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                deleted += n.max(0) as usize;
            }
            tx.commit().await.map_err(backend)?;
            self.partitions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&day);
        }
        if deleted < batch {
            let r = sqlx::query(
                "DELETE FROM observations WHERE (check_id, ts) IN \
                 (SELECT check_id, ts FROM observations WHERE ts < $1 ORDER BY ts LIMIT $2)",
            )
            .bind(before.0)
            .bind(lim(batch - deleted))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            deleted += r.rows_affected() as usize;
        }
        Ok(deleted)
    }

    async fn prune(
        &self,
        period_ms: i64,
        before: Timestamp,
        ids_before: Timestamp,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        let a = sqlx::query("DELETE FROM rollups WHERE period = $1 AND start < $2")
            .bind(period_ms)
            .bind(before.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let b = sqlx::query("DELETE FROM result_ids WHERE ts < $1")
            .bind(ids_before.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok((a.rows_affected() + b.rows_affected()) as usize)
    }

    async fn forget_unused(&self, before: Timestamp, batch: usize) -> Result<usize> {
        let mut tx = self.begin().await?;
        let mut n = 0;
        for table in ["texts", "value_names"] {
            // A writer that still uses a text moves its `used` forward under a row lock first,
            // so the re-check of `used` here keeps it.
            let r = sqlx::query(&format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE used < $1 \
                 ORDER BY used LIMIT $2)"
            ))
            .bind(before.0 - USED_LAG_MS)
            .bind(lim(batch))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            n += r.rows_affected() as usize;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }

    async fn delete_resolved_alerts(&self, before: Timestamp, batch: usize) -> Result<usize> {
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE state = 'resolved' \
             AND ended < $1 ORDER BY id LIMIT $2) RETURNING id",
        )
        .bind(before.0)
        .bind(lim(batch))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("DELETE FROM alert_events WHERE alert_id = ANY($1::bigint[])")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(ids.len())
    }

    async fn delete_done_notifications(&self, before: Timestamp, batch: usize) -> Result<usize> {
        self.check_open()?;
        let r = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state IN ('sent', 'failed') \
             AND created < $1 ORDER BY created LIMIT $2)",
        )
        .bind(before.0)
        .bind(lim(batch))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() as usize)
    }

    async fn archive_audit(
        &self,
        before: Timestamp,
        batch: usize,
        dir: &Path,
    ) -> Result<Option<(usize, PathBuf)>> {
        use std::io::Write;
        let mut tx = self.begin().await?;
        // The mark row lock makes replicas archive one at a time.
        let done: i64 = sqlx::query_scalar("SELECT upto FROM audit_archived FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let rows = sqlx::query(
            "SELECT id, ts, actor, action, target, params, outcome FROM audit \
             WHERE id > $1 AND ts < $2 ORDER BY id LIMIT $3",
        )
        .bind(done)
        .bind(before.0)
        .bind(lim(batch))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let entries: Vec<AuditEntry> = rows.iter().map(audit_row).collect::<Result<_>>()?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(None);
        };
        let io = |e: std::io::Error| {
            StoreError::Backend(format!("audit archive in {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let name = format!("audit-{:012}-{:012}.jsonl.gz", first.id, last.id);
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            let file = std::fs::File::create(&tmp).map_err(io)?;
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            for e in &entries {
                let line = json("audit archive", e)?;
                gz.write_all(line.as_bytes()).map_err(io)?;
                gz.write_all(b"\n").map_err(io)?;
            }
            let file = gz.finish().map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        sqlx::query("UPDATE audit_archived SET upto = $1")
            .bind(last.id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM audit WHERE id <= $1")
            .bind(last.id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some((entries.len(), path)))
    }

    async fn job_value(&self, key: &str) -> Result<Option<i64>> {
        self.check_open()?;
        sqlx::query_scalar("SELECT value FROM job_state WHERE name = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn set_job_value(&self, key: &str, value: i64) -> Result<()> {
        self.check_open()?;
        sqlx::query(
            "INSERT INTO job_state (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn job_run(&self, job: &str) -> Result<Option<serde_json::Value>> {
        self.check_open()?;
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM jobs WHERE name = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        doc.map(|d| parse(&format!("job {job}"), &d)).transpose()
    }

    async fn set_job_run(&self, job: &str, run: serde_json::Value) -> Result<()> {
        self.check_open()?;
        sqlx::query(
            "INSERT INTO jobs (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
        )
        .bind(job)
        .bind(run.to_string())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn backup(&self, _dest: &Path) -> Result<()> {
        self.check_open()?;
        Err(StoreError::Backend(
            "a PostgreSQL store is backed up by the database's own tools (pg_dump, \
             pg_basebackup, or the platform's backups), not by `vitals backup`"
                .into(),
        ))
    }

    async fn ping(&self) -> Result<()> {
        self.check_open()?;
        // Reachable, and writable: a standby in recovery cannot take our writes.
        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        if standby {
            return Err(StoreError::Backend(
                "the database server is a read-only standby".into(),
            ));
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Closed);
        }
        // Waits for checked-out connections (running writes) to come back, then closes all.
        self.pool.close().await;
        Ok(())
    }
}

#[async_trait]
impl Fleet for PgStore {
    async fn fleet_write(&self, w: FleetWrite) -> Result<()> {
        let mut tx = self.begin().await?;
        for s in &w.samples {
            let d = s.daily;
            sqlx::query(
                "INSERT INTO fleet_samples (node, day, polled, last_contact, last_start, last_write, \
                 last_reject, imported, updated, invalid, failed, d_imported, d_updated, d_invalid, d_failed) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (node, day) DO UPDATE SET polled = excluded.polled, \
                 last_contact = excluded.last_contact, last_start = excluded.last_start, \
                 last_write = excluded.last_write, last_reject = excluded.last_reject, \
                 imported = excluded.imported, updated = excluded.updated, invalid = excluded.invalid, \
                 failed = excluded.failed, d_imported = excluded.d_imported, d_updated = excluded.d_updated, \
                 d_invalid = excluded.d_invalid, d_failed = excluded.d_failed",
            )
            .bind(&s.node)
            .bind(s.day)
            .bind(s.polled.0)
            .bind(s.last_contact.map(|t| t.0))
            .bind(s.last_start.0)
            .bind(s.last_write.map(|t| t.0))
            .bind(s.last_reject.map(|t| t.0))
            .bind(s.imported)
            .bind(s.updated)
            .bind(s.invalid)
            .bind(s.failed)
            .bind(d.map(|d| d.imported))
            .bind(d.map(|d| d.updated))
            .bind(d.map(|d| d.invalid))
            .bind(d.map(|d| d.failed))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        for e in &w.errors {
            sqlx::query(
                "INSERT INTO fleet_errors (node, year, content, ts, repeats) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (node, year, content) DO UPDATE SET ts = excluded.ts, repeats = excluded.repeats",
            )
            .bind(&e.node)
            .bind(e.year)
            .bind(&e.content)
            .bind(e.time.0)
            .bind(e.repeats)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        for r in &w.resources {
            let doc = json(
                &format!("resource {} of node {}", r.name, r.node),
                &r.entries,
            )?;
            sqlx::query(
                "INSERT INTO fleet_resources (node, name, fetched, doc) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (node, name) DO UPDATE SET fetched = excluded.fetched, doc = excluded.doc",
            )
            .bind(&r.node)
            .bind(&r.name)
            .bind(r.fetched.0)
            .bind(doc)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        for c in &w.changes {
            sqlx::query(
                "INSERT INTO fleet_changes (node, ts, resource, key, old, new) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&c.node)
            .bind(c.time.0)
            .bind(&c.resource)
            .bind(&c.key)
            .bind(&c.old)
            .bind(&c.new)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn fleet_samples(
        &self,
        node: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<FleetSample>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT node, day, polled, last_contact, last_start, last_write, last_reject, imported, \
             updated, invalid, failed, d_imported, d_updated, d_invalid, d_failed FROM fleet_samples \
             WHERE ($1::text IS NULL OR node = $1) AND day BETWEEN $2 AND $3 ORDER BY node, day",
        )
        .bind(node)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(sample_row).collect()
    }

    async fn fleet_errors(
        &self,
        node: Option<&str>,
        year: Option<i32>,
        limit: usize,
    ) -> Result<Vec<FleetError>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT node, year, content, ts, repeats FROM fleet_errors \
             WHERE ($1::text IS NULL OR node = $1) AND ($2::int IS NULL OR year = $2) \
             ORDER BY ts DESC, node, content LIMIT $3",
        )
        .bind(node)
        .bind(year)
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let c = corrupt("fleet error");
        rows.iter()
            .map(|r| {
                Ok(FleetError {
                    node: r.try_get(0).map_err(&c)?,
                    year: r.try_get(1).map_err(&c)?,
                    content: r.try_get(2).map_err(&c)?,
                    time: Timestamp(r.try_get(3).map_err(&c)?),
                    repeats: r.try_get(4).map_err(&c)?,
                })
            })
            .collect()
    }

    async fn fleet_resources(&self, node: Option<&str>) -> Result<Vec<FleetResource>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT node, name, fetched, doc FROM fleet_resources WHERE ($1::text IS NULL OR node = $1) \
             ORDER BY node, name",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let c = corrupt("fleet resource");
        rows.iter()
            .map(|r| {
                let node: String = r.try_get(0).map_err(&c)?;
                let name: String = r.try_get(1).map_err(&c)?;
                let doc: String = r.try_get(3).map_err(&c)?;
                Ok(FleetResource {
                    entries: parse(&format!("resource {name} of fleet node {node}"), &doc)?,
                    fetched: Timestamp(r.try_get(2).map_err(&c)?),
                    node,
                    name,
                })
            })
            .collect()
    }

    async fn fleet_changes(&self, node: &str, limit: usize) -> Result<Vec<ResourceChange>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT node, ts, resource, key, old, new FROM fleet_changes WHERE node = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(node)
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let c = corrupt("fleet change");
        rows.iter()
            .map(|r| {
                Ok(ResourceChange {
                    node: r.try_get(0).map_err(&c)?,
                    time: Timestamp(r.try_get(1).map_err(&c)?),
                    resource: r.try_get(2).map_err(&c)?,
                    key: r.try_get(3).map_err(&c)?,
                    old: r.try_get(4).map_err(&c)?,
                    new: r.try_get(5).map_err(&c)?,
                })
            })
            .collect()
    }

    async fn fleet_years(&self) -> Result<Vec<(String, i32)>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT node, extract(year FROM to_timestamp(day * 86400) AT TIME ZONE 'UTC')::int \
             FROM fleet_samples UNION SELECT node, year FROM fleet_errors ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let c = corrupt("fleet years");
        rows.iter()
            .map(|r| Ok((r.try_get(0).map_err(&c)?, r.try_get(1).map_err(&c)?)))
            .collect()
    }
}

#[async_trait]
impl Notices for PgStore {
    async fn notice_add(&self, notice: Notice, keep: usize) -> Result<Notice> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notices (page, created, ended, doc) VALUES ($1, $2, NULL, $3) RETURNING id",
        )
        .bind(&notice.page)
        .bind(notice.created.0)
        .bind(json("notice", &notice)?)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(
            "DELETE FROM notices WHERE page = $1 AND ended IS NOT NULL AND id NOT IN \
             (SELECT id FROM notices WHERE page = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(&notice.page)
        .bind(lim(keep))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Notice {
            id,
            ended: None,
            ..notice
        })
    }

    async fn notice_end(&self, page: &str, id: i64, at: Timestamp) -> Result<Option<Notice>> {
        self.check_open()?;
        sqlx::query("UPDATE notices SET ended = $3 WHERE id = $1 AND page = $2 AND ended IS NULL")
            .bind(id)
            .bind(page)
            .bind(at.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let row = sqlx::query("SELECT id, doc, ended FROM notices WHERE id = $1 AND page = $2")
            .bind(id)
            .bind(page)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(notice_row).transpose()
    }

    async fn notices(&self, page: &str, limit: usize) -> Result<Vec<Notice>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT id, doc, ended FROM notices WHERE page = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(page)
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(notice_row).collect()
    }
}
