//! What the engine keeps: sources and their appearances, probe-patient assignments,
//! re-integration runs, stage samples, job runs, job overrides and check schedule overrides. Behind its own small trait
//! ([`EngineStore`]) and in its own SQLite file (`engine.db` in the data directory), so the
//! main `Store` does not grow. Every table is bounded by [`EngineStore::prune`].
//!
//! Calls are synchronous and short (local SQLite, WAL, one connection); callers on the async
//! runtime make few of them per round.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use vitals_core::Timestamp;

pub type Result<T> = std::result::Result<T, String>;

/// Re-integration runs and stage samples are kept this long.
pub const KEEP_MS: i64 = 8 * 86_400_000;
/// Newest events kept.
pub const KEEP_EVENTS: i64 = 10_000;
/// Newest runs kept per job.
pub const KEEP_JOB_RUNS: i64 = 500;

/// A source as listed by its source set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub attrs: BTreeMap<String, String>,
}

/// A source as stored, with when it was first and last listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRow {
    pub source: Source,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// When it stopped being listed (`None`: listed).
    pub gone_at: Option<Timestamp>,
}

/// What a re-read of the list changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceDiff {
    pub appeared: Vec<String>,
    pub disappeared: Vec<String>,
}

/// A probe patient of a source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub source: String,
    pub patient: String,
    pub assigned_at: Timestamp,
}

/// One re-integration of one probe patient (no values: which fields differ, by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub time: Timestamp,
    pub source: String,
    /// Whether the source answered.
    pub available: bool,
    /// Whether the catalogue's copy could be read (runs without it count for availability only).
    pub compared: bool,
    pub fetch_ms: f64,
    pub differing: Vec<String>,
}

/// Figures of one source since some time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub runs: u64,
    pub available: u64,
    pub compared: u64,
    pub correct: u64,
    pub mean_fetch_ms: Option<f64>,
    pub max_fetch_ms: Option<f64>,
}

impl Stats {
    pub fn availability(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.available as f64 / self.runs as f64)
    }
    pub fn correctness(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.correct as f64 / self.compared as f64)
    }
}

/// Something that happened to a source set (shown on the sources page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub time: Timestamp,
    pub set: String,
    pub source: String,
    /// `appeared`, `disappeared`, `assigned`, `released: …`.
    pub what: String,
}

/// One evaluation of one stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSample {
    pub time: Timestamp,
    pub pipeline: String,
    pub stage: String,
    pub status: String,
    pub records_in: Option<f64>,
    pub records_out: Option<f64>,
    pub backlog: Option<f64>,
    pub lag: Option<f64>,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub started: Timestamp,
    pub ended: Timestamp,
    /// `None`: killed (timeout) or never started.
    pub exit_code: Option<i32>,
    /// `ok`, `failed`, `timeout`, `not started`.
    pub outcome: String,
    pub duration_ms: i64,
    /// The last bytes of stdout and stderr.
    pub output: String,
    /// `schedule` or who ran it now.
    pub trigger: String,
}

/// What an admin changed about a job, over what the file says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Override {
    pub paused: bool,
    pub schedule: Option<String>,
    pub set_by: String,
    pub set_at: Timestamp,
}

/// An admin's schedule for one check, over the file's (`interval` or `cron`, as written in
/// `vitals.toml`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOverride {
    pub asset: String,
    pub check: String,
    /// `interval` or `cron`.
    pub kind: String,
    /// A duration (`30s`) or a cron expression.
    pub value: String,
    pub set_by: String,
    pub set_at: Timestamp,
}

/// Per source: (bucket index, availability 0–1, mean fetch ms) per bucket.
pub type Series = HashMap<String, Vec<(i64, f64, Option<f64>)>>;

/// The engine's own storage.
pub trait EngineStore: Send + Sync {
    fn sources(&self, set: &str) -> Result<Vec<SourceRow>>;
    /// Records the listed sources: new ones appear, missing ones disappear (events written).
    fn sync_sources(&self, set: &str, now: Timestamp, listed: &[Source]) -> Result<SourceDiff>;
    fn assignments(&self, set: &str) -> Result<Vec<Assignment>>;
    fn assign(&self, set: &str, source: &str, patient: &str, now: Timestamp) -> Result<()>;
    fn release(
        &self,
        set: &str,
        source: &str,
        patient: &str,
        now: Timestamp,
        why: &str,
    ) -> Result<()>;
    fn record_runs(&self, set: &str, runs: &[Run]) -> Result<()>;
    fn stats(&self, set: &str, since: Timestamp) -> Result<HashMap<String, Stats>>;
    /// Per source, availability and mean fetch time per bucket of `bucket_ms` since `since`.
    fn series(&self, set: &str, since: Timestamp, bucket_ms: i64) -> Result<Series>;
    fn events(&self, set: &str, limit: usize) -> Result<Vec<Event>>;
    fn record_stage_samples(&self, samples: &[StageSample]) -> Result<()>;
    fn stage_samples(&self, pipeline: &str, since: Timestamp) -> Result<Vec<StageSample>>;
    fn stage_mark(&self, pipeline: &str, stage: &str) -> Result<Option<Timestamp>>;
    fn set_stage_mark(&self, pipeline: &str, stage: &str, last_in: Timestamp) -> Result<()>;
    fn record_job_run(&self, run: &JobRun) -> Result<i64>;
    fn job_runs(&self, job: &str, limit: usize) -> Result<Vec<JobRun>>;
    fn overrides(&self) -> Result<HashMap<String, Override>>;
    fn set_override(&self, job: &str, o: &Override) -> Result<()>;
    fn remove_override(&self, job: &str) -> Result<bool>;
    fn check_overrides(&self) -> Result<Vec<CheckOverride>>;
    fn set_check_override(&self, o: &CheckOverride) -> Result<()>;
    fn remove_check_override(&self, asset: &str, check: &str) -> Result<bool>;
    /// Deletes what is older than kept.
    fn prune(&self, now: Timestamp) -> Result<()>;
}

/// [`EngineStore`] in an SQLite file.
pub struct SqliteEngineStore {
    conn: Mutex<rusqlite::Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sources (
    set_id TEXT NOT NULL, source_id TEXT NOT NULL, name TEXT NOT NULL, attrs TEXT NOT NULL,
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, gone_at INTEGER,
    PRIMARY KEY (set_id, source_id));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time INTEGER NOT NULL, set_id TEXT NOT NULL,
    source_id TEXT NOT NULL, what TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    id INTEGER PRIMARY KEY, set_id TEXT NOT NULL, source_id TEXT NOT NULL, patient TEXT NOT NULL,
    assigned_at INTEGER NOT NULL, ended_at INTEGER, end_reason TEXT);
CREATE INDEX IF NOT EXISTS assignments_open ON assignments (set_id, ended_at);
CREATE TABLE IF NOT EXISTS runs (
    time INTEGER NOT NULL, set_id TEXT NOT NULL, source_id TEXT NOT NULL,
    available INTEGER NOT NULL, compared INTEGER NOT NULL, fetch_ms REAL NOT NULL,
    differing TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_set ON runs (set_id, time);
CREATE TABLE IF NOT EXISTS stage_samples (
    time INTEGER NOT NULL, pipeline TEXT NOT NULL, stage TEXT NOT NULL, status TEXT NOT NULL,
    records_in REAL, records_out REAL, backlog REAL, lag REAL);
CREATE INDEX IF NOT EXISTS stage_samples_by ON stage_samples (pipeline, time);
CREATE TABLE IF NOT EXISTS stage_marks (
    pipeline TEXT NOT NULL, stage TEXT NOT NULL, last_in INTEGER NOT NULL,
    PRIMARY KEY (pipeline, stage));
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY, job TEXT NOT NULL, started INTEGER NOT NULL, ended INTEGER NOT NULL,
    exit_code INTEGER, outcome TEXT NOT NULL, duration_ms INTEGER NOT NULL, output TEXT NOT NULL,
    trigger TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_runs_by ON job_runs (job, id);
CREATE TABLE IF NOT EXISTS job_overrides (
    job TEXT PRIMARY KEY, paused INTEGER NOT NULL, schedule TEXT, set_by TEXT NOT NULL,
    set_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS check_overrides (
    asset TEXT NOT NULL, check_name TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
    set_by TEXT NOT NULL, set_at INTEGER NOT NULL, PRIMARY KEY (asset, check_name));
";

fn e(err: rusqlite::Error) -> String {
    format!("engine store: {err}")
}

impl SqliteEngineStore {
    pub fn open(path: &Path) -> Result<SqliteEngineStore> {
        let conn = rusqlite::Connection::open(path)
            .map_err(|err| format!("cannot open {}: {err}", path.display()))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        conn.execute_batch(SCHEMA).map_err(e)?;
        Ok(SqliteEngineStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn event(
    tx: &rusqlite::Connection,
    now: Timestamp,
    set: &str,
    source: &str,
    what: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO events (time, set_id, source_id, what) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![now.0, set, source, what],
    )
    .map_err(e)?;
    Ok(())
}

impl EngineStore for SqliteEngineStore {
    fn sources(&self, set: &str) -> Result<Vec<SourceRow>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT source_id, name, attrs, first_seen, last_seen, gone_at FROM sources
                 WHERE set_id = ?1 ORDER BY source_id",
            )
            .map_err(e)?;
        let rows = st
            .query_map([set], |r| {
                let attrs: String = r.get(2)?;
                Ok(SourceRow {
                    source: Source {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        attrs: serde_json::from_str(&attrs).unwrap_or_default(),
                    },
                    first_seen: Timestamp(r.get(3)?),
                    last_seen: Timestamp(r.get(4)?),
                    gone_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn sync_sources(&self, set: &str, now: Timestamp, listed: &[Source]) -> Result<SourceDiff> {
        let known = self.sources(set)?;
        let mut c = self.conn();
        let tx = c.transaction().map_err(e)?;
        let mut diff = SourceDiff::default();
        for s in listed {
            let attrs = serde_json::to_string(&s.attrs).unwrap_or_else(|_| "{}".into());
            let prev = known.iter().find(|k| k.source.id == s.id);
            if prev.is_none_or(|p| p.gone_at.is_some()) {
                diff.appeared.push(s.id.clone());
                event(&tx, now, set, &s.id, "appeared")?;
            }
            tx.execute(
                "INSERT INTO sources (set_id, source_id, name, attrs, first_seen, last_seen, gone_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, NULL)
                 ON CONFLICT (set_id, source_id) DO UPDATE SET name = ?3, attrs = ?4,
                 last_seen = ?5, gone_at = NULL,
                 first_seen = CASE WHEN gone_at IS NULL THEN first_seen ELSE ?5 END",
                rusqlite::params![set, s.id, s.name, attrs, now.0],
            )
            .map_err(e)?;
        }
        for k in known.iter().filter(|k| k.gone_at.is_none()) {
            if !listed.iter().any(|s| s.id == k.source.id) {
                diff.disappeared.push(k.source.id.clone());
                event(&tx, now, set, &k.source.id, "disappeared")?;
                tx.execute(
                    "UPDATE sources SET gone_at = ?3 WHERE set_id = ?1 AND source_id = ?2",
                    rusqlite::params![set, k.source.id, now.0],
                )
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(diff)
    }

    fn assignments(&self, set: &str) -> Result<Vec<Assignment>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT source_id, patient, assigned_at FROM assignments
                 WHERE set_id = ?1 AND ended_at IS NULL ORDER BY source_id, id",
            )
            .map_err(e)?;
        let rows = st
            .query_map([set], |r| {
                Ok(Assignment {
                    source: r.get(0)?,
                    patient: r.get(1)?,
                    assigned_at: Timestamp(r.get(2)?),
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn assign(&self, set: &str, source: &str, patient: &str, now: Timestamp) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO assignments (set_id, source_id, patient, assigned_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![set, source, patient, now.0],
        )
        .map_err(e)?;
        event(&tx, now, set, source, "probe patient assigned")?;
        tx.commit().map_err(e)
    }

    fn release(
        &self,
        set: &str,
        source: &str,
        patient: &str,
        now: Timestamp,
        why: &str,
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(e)?;
        tx.execute(
            "UPDATE assignments SET ended_at = ?4, end_reason = ?5
             WHERE set_id = ?1 AND source_id = ?2 AND patient = ?3 AND ended_at IS NULL",
            rusqlite::params![set, source, patient, now.0, why],
        )
        .map_err(e)?;
        event(
            &tx,
            now,
            set,
            source,
            &format!("probe patient released: {why}"),
        )?;
        tx.commit().map_err(e)
    }

    fn record_runs(&self, set: &str, runs: &[Run]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(e)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO runs (time, set_id, source_id, available, compared, fetch_ms, differing)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(e)?;
            for r in runs {
                st.execute(rusqlite::params![
                    r.time.0,
                    set,
                    r.source,
                    r.available,
                    r.compared,
                    r.fetch_ms,
                    r.differing.join(",")
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn stats(&self, set: &str, since: Timestamp) -> Result<HashMap<String, Stats>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT source_id, COUNT(*), SUM(available), SUM(compared),
                        SUM(CASE WHEN compared = 1 AND differing = '' THEN 1 ELSE 0 END),
                        AVG(CASE WHEN available = 1 THEN fetch_ms END),
                        MAX(CASE WHEN available = 1 THEN fetch_ms END)
                 FROM runs WHERE set_id = ?1 AND time >= ?2 GROUP BY source_id",
            )
            .map_err(e)?;
        let rows = st
            .query_map(rusqlite::params![set, since.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Stats {
                        runs: r.get::<_, i64>(1)? as u64,
                        available: r.get::<_, i64>(2)? as u64,
                        compared: r.get::<_, i64>(3)? as u64,
                        correct: r.get::<_, i64>(4)? as u64,
                        mean_fetch_ms: r.get(5)?,
                        max_fetch_ms: r.get(6)?,
                    },
                ))
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<HashMap<_, _>, _>>()
            .map_err(e)
    }

    fn series(&self, set: &str, since: Timestamp, bucket_ms: i64) -> Result<Series> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT source_id, (time - ?2) / ?3 AS b, AVG(available),
                        AVG(CASE WHEN available = 1 THEN fetch_ms END)
                 FROM runs WHERE set_id = ?1 AND time >= ?2 GROUP BY source_id, b ORDER BY source_id, b",
            )
            .map_err(e)?;
        let mut out: HashMap<String, Vec<(i64, f64, Option<f64>)>> = HashMap::new();
        let rows = st
            .query_map(rusqlite::params![set, since.0, bucket_ms.max(1)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (s, b, a, ms) = row.map_err(e)?;
            out.entry(s).or_default().push((b, a, ms));
        }
        Ok(out)
    }

    fn events(&self, set: &str, limit: usize) -> Result<Vec<Event>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT time, set_id, source_id, what FROM events WHERE set_id = ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(e)?;
        let rows = st
            .query_map(rusqlite::params![set, limit as i64], |r| {
                Ok(Event {
                    time: Timestamp(r.get(0)?),
                    set: r.get(1)?,
                    source: r.get(2)?,
                    what: r.get(3)?,
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn record_stage_samples(&self, samples: &[StageSample]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(e)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO stage_samples (time, pipeline, stage, status, records_in, records_out, backlog, lag)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            for s in samples {
                st.execute(rusqlite::params![
                    s.time.0,
                    s.pipeline,
                    s.stage,
                    s.status,
                    s.records_in,
                    s.records_out,
                    s.backlog,
                    s.lag
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn stage_samples(&self, pipeline: &str, since: Timestamp) -> Result<Vec<StageSample>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT time, pipeline, stage, status, records_in, records_out, backlog, lag
                 FROM stage_samples WHERE pipeline = ?1 AND time >= ?2 ORDER BY time LIMIT 100000",
            )
            .map_err(e)?;
        let rows = st
            .query_map(rusqlite::params![pipeline, since.0], |r| {
                Ok(StageSample {
                    time: Timestamp(r.get(0)?),
                    pipeline: r.get(1)?,
                    stage: r.get(2)?,
                    status: r.get(3)?,
                    records_in: r.get(4)?,
                    records_out: r.get(5)?,
                    backlog: r.get(6)?,
                    lag: r.get(7)?,
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn stage_mark(&self, pipeline: &str, stage: &str) -> Result<Option<Timestamp>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached("SELECT last_in FROM stage_marks WHERE pipeline = ?1 AND stage = ?2")
            .map_err(e)?;
        let mut rows = st.query(rusqlite::params![pipeline, stage]).map_err(e)?;
        match rows.next().map_err(e)? {
            Some(r) => Ok(Some(Timestamp(r.get(0).map_err(e)?))),
            None => Ok(None),
        }
    }

    fn set_stage_mark(&self, pipeline: &str, stage: &str, last_in: Timestamp) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO stage_marks (pipeline, stage, last_in) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline, stage) DO UPDATE SET last_in = MAX(last_in, ?3)",
                rusqlite::params![pipeline, stage, last_in.0],
            )
            .map_err(e)?;
        Ok(())
    }

    fn record_job_run(&self, r: &JobRun) -> Result<i64> {
        let c = self.conn();
        c.execute(
            "INSERT INTO job_runs (job, started, ended, exit_code, outcome, duration_ms, output, trigger)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                r.job,
                r.started.0,
                r.ended.0,
                r.exit_code,
                r.outcome,
                r.duration_ms,
                r.output,
                r.trigger
            ],
        )
        .map_err(e)?;
        Ok(c.last_insert_rowid())
    }

    fn job_runs(&self, job: &str, limit: usize) -> Result<Vec<JobRun>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT id, job, started, ended, exit_code, outcome, duration_ms, output, trigger
                 FROM job_runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(e)?;
        let rows = st
            .query_map(rusqlite::params![job, limit as i64], |r| {
                Ok(JobRun {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    started: Timestamp(r.get(2)?),
                    ended: Timestamp(r.get(3)?),
                    exit_code: r.get(4)?,
                    outcome: r.get(5)?,
                    duration_ms: r.get(6)?,
                    output: r.get(7)?,
                    trigger: r.get(8)?,
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn overrides(&self) -> Result<HashMap<String, Override>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached("SELECT job, paused, schedule, set_by, set_at FROM job_overrides")
            .map_err(e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Override {
                        paused: r.get(1)?,
                        schedule: r.get(2)?,
                        set_by: r.get(3)?,
                        set_at: Timestamp(r.get(4)?),
                    },
                ))
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<HashMap<_, _>, _>>()
            .map_err(e)
    }

    fn set_override(&self, job: &str, o: &Override) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO job_overrides (job, paused, schedule, set_by, set_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job) DO UPDATE SET paused = ?2, schedule = ?3, set_by = ?4, set_at = ?5",
                rusqlite::params![job, o.paused, o.schedule, o.set_by, o.set_at.0],
            )
            .map_err(e)?;
        Ok(())
    }

    fn remove_override(&self, job: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM job_overrides WHERE job = ?1", [job])
            .map_err(e)?;
        Ok(n > 0)
    }

    fn check_overrides(&self) -> Result<Vec<CheckOverride>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT asset, check_name, kind, value, set_by, set_at FROM check_overrides
                 ORDER BY asset, check_name",
            )
            .map_err(e)?;
        let rows = st
            .query_map([], |r| {
                Ok(CheckOverride {
                    asset: r.get(0)?,
                    check: r.get(1)?,
                    kind: r.get(2)?,
                    value: r.get(3)?,
                    set_by: r.get(4)?,
                    set_at: Timestamp(r.get(5)?),
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn set_check_override(&self, o: &CheckOverride) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO check_overrides (asset, check_name, kind, value, set_by, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (asset, check_name) DO UPDATE SET kind = ?3, value = ?4, set_by = ?5, set_at = ?6",
                rusqlite::params![o.asset, o.check, o.kind, o.value, o.set_by, o.set_at.0],
            )
            .map_err(e)?;
        Ok(())
    }

    fn remove_check_override(&self, asset: &str, check: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM check_overrides WHERE asset = ?1 AND check_name = ?2",
                [asset, check],
            )
            .map_err(e)?;
        Ok(n > 0)
    }

    fn prune(&self, now: Timestamp) -> Result<()> {
        let cut = now.0 - KEEP_MS;
        self.conn()
            .execute_batch(&format!(
                "DELETE FROM runs WHERE time < {cut};
                 DELETE FROM stage_samples WHERE time < {cut};
                 DELETE FROM assignments WHERE ended_at IS NOT NULL AND ended_at < {old};
                 DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - {KEEP_EVENTS};
                 DELETE FROM job_runs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER()
                   OVER (PARTITION BY job ORDER BY id DESC) AS n FROM job_runs) WHERE n > {KEEP_JOB_RUNS});",
                old = now.0 - 10 * KEEP_MS,
            ))
            .map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(id: &str) -> Source {
        Source {
            id: id.into(),
            name: id.to_uppercase(),
            attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn sources_appear_disappear_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteEngineStore::open(&dir.path().join("engine.db")).unwrap();
        let d = s
            .sync_sources("rts", Timestamp(1000), &[src("a"), src("b")])
            .unwrap();
        assert_eq!(d.appeared, vec!["a", "b"]);
        let d = s.sync_sources("rts", Timestamp(2000), &[src("a")]).unwrap();
        assert_eq!(d.disappeared, vec!["b"]);
        assert!(d.appeared.is_empty());
        let rows = s.sources("rts").unwrap();
        assert_eq!(rows[1].gone_at, Some(Timestamp(2000)));
        let d = s
            .sync_sources("rts", Timestamp(3000), &[src("a"), src("b")])
            .unwrap();
        assert_eq!(d.appeared, vec!["b"]);
        let ev = s.events("rts", 10).unwrap();
        assert_eq!(ev[0].what, "appeared");
        assert_eq!(ev[1].what, "disappeared");
        assert_eq!(ev.len(), 4);
    }

    #[test]
    fn runs_give_availability_and_correctness_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteEngineStore::open(&dir.path().join("engine.db")).unwrap();
        let run = |t: i64, available: bool, differing: &[&str]| Run {
            time: Timestamp(t),
            source: "a".into(),
            available,
            compared: available,
            fetch_ms: 10.0,
            differing: differing.iter().map(|s| s.to_string()).collect(),
        };
        s.record_runs(
            "rts",
            &[
                run(10, true, &[]),
                run(20, true, &["family"]),
                run(30, false, &[]),
            ],
        )
        .unwrap();
        let st = &s.stats("rts", Timestamp(0)).unwrap()["a"];
        assert_eq!(
            (st.runs, st.available, st.compared, st.correct),
            (3, 2, 2, 1)
        );
        assert_eq!(st.correctness(), Some(0.5));
        s.prune(Timestamp(KEEP_MS + 25)).unwrap();
        assert_eq!(s.stats("rts", Timestamp(0)).unwrap()["a"].runs, 1);
    }
}
