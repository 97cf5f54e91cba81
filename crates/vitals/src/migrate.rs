//! `vitals store migrate --from sqlite://PATH --to postgres://…`: copies everything of a Vitals
//! SQLite store into a Vitals PostgreSQL store.
//!
//! # Rows, not records
//! Both backends keep the same interned, compact rows (checks, texts, value names, the value
//! codec), so the copy works at the SQL row level and ids are copied verbatim: no row is
//! decoded, re-interned or re-encoded. What differs: SQLite's staging table of fresh
//! observations (`observations_recent`) goes into PostgreSQL's `observations` like the main
//! table; observations land in day partitions made by the PostgreSQL store's own partition code
//! (`migrate_support::ensure_partitions`); `alerts.ended` (PostgreSQL's retention column) is
//! derived from the alert as the store derives it; the audit archive mark (`audit_archived`, one
//! row on both sides) is moved forward to the source's. The audit table's triggers refuse
//! updates, deletes and `TRUNCATE`, never inserts; the copy only inserts. At the end every
//! identity sequence is moved past the copied ids, so new rows do not collide.
//!
//! # Resuming
//! Each table is copied in batches ordered by its primary key (keyset pagination:
//! `WHERE (key) > (last key copied)`). Every batch goes in with ONE PostgreSQL transaction
//! (`COPY … FROM STDIN`, the fastest way in) that also records the table's progress in
//! `vitals_migration`: the last key copied, the rows copied, the source's row count when the
//! table's copy began, done. A batch is therefore in the destination together with its progress
//! or not at all, whatever stops the process (`kill -9`, a lost connection, a crash of the
//! server); running the same command again continues after the recorded key and never copies a
//! row twice. Plain `COPY`, deliberately no `ON CONFLICT DO NOTHING`: with exact progress a
//! conflict can only be a row that is not ours, and that must stop the copy rather than be
//! skipped silently. The batches commit without waiting for their WAL flush (a crash of the
//! server loses the last batches and their progress together); the run's last write waits for
//! it, before anything is reported as verified.
//!
//! A thread reads the next batch from SQLite while the previous one is written.
//!
//! # Refusals
//! - a source that is not a Vitals SQLite store at this build's schema version;
//! - a destination with rows this migration did not copy: at start, every destination table
//!   must hold exactly the rows the progress says were copied into it (none at the first run);
//! - a destination holding (part of) a migration from another source file;
//! - a source that changed since the migration began (a table's row count differs from the one
//!   recorded when its copy began: `vitals serve` ran on it);
//! - a second migration into the same database at the same time (an advisory lock).
//!
//! # Verified
//! The source is read in one read transaction (a snapshot). At the end the row counts of every
//! table are compared, source (that snapshot) against destination, printed as a table; any
//! difference is an error.

use anyhow::{anyhow, bail, Context, Result};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vitals_app::StoreUrl;
use vitals_store_postgres::{migrate_support, redact, PgOptions, PgStore};

/// Rows per batch (and per PostgreSQL transaction) unless `--batch` says otherwise.
pub const DEFAULT_BATCH: u32 = 50_000;

/// A batch also ends once it holds this much data (tables of large JSON documents).
const BATCH_BYTES: usize = 16 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Int,
    Text,
    Blob,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Special {
    /// Copied as it is.
    None,
    /// Observations: their day partitions are made before each batch.
    Observations,
    /// Alerts: PostgreSQL's `ended` is derived from the alert's document.
    Alerts,
    /// `audit_archived`: the one row that exists on both sides; moved forward, never inserted.
    Mark,
}

/// One table of the SQLite schema and where it goes.
struct Table {
    /// In SQLite.
    src: &'static str,
    /// In PostgreSQL.
    dest: &'static str,
    /// The primary key in SQLite (the order of the copy) and its kinds.
    key: &'static [(&'static str, Kind)],
    /// Columns copied verbatim (same names on both sides).
    cols: &'static [(&'static str, Kind)],
    special: Special,
}

use Kind::{Blob, Int, Text};

const OBSERVATION_COLS: &[(&str, Kind)] = &[
    ("check_id", Int),
    ("ts", Int),
    ("status", Int),
    ("score", Int),
    ("duration_us", Int),
    ("reason_id", Int),
    ("comp_id", Int),
    ("vals", Blob),
];

/// Every table both schemas have (SQLite schema version 9; PostgreSQL migration 1). The
/// PostgreSQL-only tables (`vitals_schema`, the replicas' tables) are not the source's.
#[rustfmt::skip]
const TABLES: &[Table] = &[
    Table { src: "assets", dest: "assets", special: Special::None,
        key: &[("id", Text)],
        cols: &[("id", Text), ("name", Text), ("doc", Text)] },
    Table { src: "checks", dest: "checks", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("asset", Text), ("name", Text)] },
    Table { src: "texts", dest: "texts", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("text", Text), ("used", Int)] },
    Table { src: "value_names", dest: "value_names", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("name", Text), ("used", Int)] },
    Table { src: "observations", dest: "observations", special: Special::Observations,
        key: &[("check_id", Int), ("ts", Int)],
        cols: OBSERVATION_COLS },
    // SQLite's staging table of fresh observations: (check_id, ts) is unique across both.
    Table { src: "observations_recent", dest: "observations", special: Special::Observations,
        key: &[("seq", Int)],
        cols: OBSERVATION_COLS },
    Table { src: "rollups", dest: "rollups", special: Special::None,
        key: &[("check_id", Int), ("period", Int), ("start", Int)],
        cols: &[("check_id", Int), ("period", Int), ("start", Int), ("count", Int),
            ("failures", Int), ("min_us", Int), ("mean_us", Int), ("max_us", Int),
            ("p95_us", Int)] },
    Table { src: "health_state", dest: "health_state", special: Special::None,
        key: &[("asset", Text), ("grp", Text), ("test", Text)],
        cols: &[("asset", Text), ("grp", Text), ("test", Text), ("score", Int),
            ("updated", Int)] },
    Table { src: "health_severity", dest: "health_severity", special: Special::None,
        key: &[("asset", Text), ("grp", Text)],
        cols: &[("asset", Text), ("grp", Text), ("score", Int), ("updated", Int)] },
    Table { src: "result_ids", dest: "result_ids", special: Special::None,
        key: &[("id", Text)],
        cols: &[("id", Text), ("ts", Int)] },
    Table { src: "alerts", dest: "alerts", special: Special::Alerts,
        key: &[("id", Int)],
        cols: &[("id", Int), ("key", Text), ("rule", Text), ("asset", Text), ("state", Text),
            ("started", Int), ("doc", Text)] },
    Table { src: "alert_events", dest: "alert_events", special: Special::None,
        key: &[("alert_id", Int), ("seq", Int)],
        cols: &[("alert_id", Int), ("seq", Int), ("doc", Text)] },
    Table { src: "silences", dest: "silences", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("ends", Int), ("doc", Text)] },
    Table { src: "outbox", dest: "outbox", special: Special::None,
        key: &[("id", Text)],
        cols: &[("id", Text), ("notifier", Text), ("group_key", Text), ("alert_id", Int),
            ("created", Int), ("not_before", Int), ("state", Text), ("attempts", Int),
            ("next_attempt", Int), ("last_error", Text), ("recipients", Text),
            ("detail", Text), ("sent", Int), ("claimed_by", Text), ("claimed_until", Int),
            ("doc", Text)] },
    Table { src: "audit", dest: "audit", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("ts", Int), ("actor", Text), ("action", Text), ("target", Text),
            ("params", Text), ("outcome", Text)] },
    Table { src: "audit_archived", dest: "audit_archived", special: Special::Mark,
        key: &[("one", Int)],
        cols: &[("one", Int), ("upto", Int)] },
    Table { src: "jobs", dest: "jobs", special: Special::None,
        key: &[("name", Text)],
        cols: &[("name", Text), ("doc", Text)] },
    Table { src: "job_state", dest: "job_state", special: Special::None,
        key: &[("name", Text)],
        cols: &[("name", Text), ("value", Int)] },
    Table { src: "fleet_samples", dest: "fleet_samples", special: Special::None,
        key: &[("node", Text), ("day", Int)],
        cols: &[("node", Text), ("day", Int), ("polled", Int), ("last_contact", Int),
            ("last_start", Int), ("last_write", Int), ("last_reject", Int), ("imported", Int),
            ("updated", Int), ("invalid", Int), ("failed", Int), ("d_imported", Int),
            ("d_updated", Int), ("d_invalid", Int), ("d_failed", Int)] },
    Table { src: "fleet_errors", dest: "fleet_errors", special: Special::None,
        key: &[("node", Text), ("year", Int), ("content", Text)],
        cols: &[("node", Text), ("year", Int), ("content", Text), ("ts", Int),
            ("repeats", Int)] },
    Table { src: "fleet_resources", dest: "fleet_resources", special: Special::None,
        key: &[("node", Text), ("name", Text)],
        cols: &[("node", Text), ("name", Text), ("fetched", Int), ("doc", Text)] },
    Table { src: "fleet_changes", dest: "fleet_changes", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("node", Text), ("ts", Int), ("resource", Text), ("key", Text),
            ("old", Text), ("new", Text)] },
    Table { src: "notices", dest: "notices", special: Special::None,
        key: &[("id", Int)],
        cols: &[("id", Int), ("page", Text), ("created", Int), ("ended", Int), ("doc", Text)] },
];

/// The destination's record of the migration: one row per source table.
const PROGRESS_DDL: &str = "CREATE TABLE IF NOT EXISTS vitals_migration (
    source   TEXT NOT NULL,              -- the source file (canonical path)
    tbl      TEXT NOT NULL,              -- the SQLite table
    total    BIGINT NOT NULL,            -- its rows when its copy began
    copied   BIGINT NOT NULL,            -- rows copied so far
    last_key TEXT,                       -- JSON array: the primary key of the last row copied
    done     BOOLEAN NOT NULL,
    updated  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, tbl)
)";

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(quote).collect::<Vec<_>>().join(", ")
}

impl Table {
    /// The columns read from SQLite: the copied ones, then key columns that are not among them.
    fn select_list(&self) -> Vec<(&'static str, Kind)> {
        let mut out = self.cols.to_vec();
        for k in self.key {
            if !self.cols.iter().any(|c| c.0 == k.0) {
                out.push(*k);
            }
        }
        out
    }

    fn read_sql(&self, resume: bool) -> String {
        let select = list(self.select_list().iter().map(|c| c.0));
        let order = list(self.key.iter().map(|k| k.0));
        if resume {
            let marks: Vec<String> = (1..=self.key.len()).map(|i| format!("?{i}")).collect();
            format!(
                "SELECT {select} FROM {} WHERE ({order}) > ({}) ORDER BY {order} LIMIT ?{}",
                quote(self.src),
                marks.join(", "),
                self.key.len() + 1
            )
        } else {
            format!(
                "SELECT {select} FROM {} ORDER BY {order} LIMIT ?1",
                quote(self.src)
            )
        }
    }

    /// The `COPY` that loads a batch (PostgreSQL's text format; it converts each field to the
    /// column's type, checking ranges, and routes observations to their day partitions).
    fn copy_sql(&self) -> String {
        let mut names: Vec<&str> = self.cols.iter().map(|c| c.0).collect();
        if self.special == Special::Alerts {
            names.push("ended");
        }
        format!(
            "COPY {} ({}) FROM STDIN",
            quote(self.dest),
            list(names.into_iter())
        )
    }
}

/// A batch of rows read from SQLite, ready for `COPY`.
struct Batch {
    /// The rows in `COPY`'s text format: fields separated by tabs, `\N` for NULL.
    data: Vec<u8>,
    rows: usize,
    /// The primary key of the last row.
    last_key: Option<Vec<SqlValue>>,
    /// Observations: the days of their partitions.
    days: BTreeSet<i64>,
    /// The table has no rows after these.
    last: bool,
}

/// What the destination says was copied of one source table.
#[derive(Debug, Clone, Default)]
struct Progress {
    total: i64,
    copied: i64,
    last_key: Option<String>,
    done: bool,
}

fn key_to_json(key: &[SqlValue]) -> Result<String> {
    let vals: Vec<serde_json::Value> = key
        .iter()
        .map(|v| match v {
            SqlValue::Integer(i) => Ok(serde_json::Value::from(*i)),
            SqlValue::Text(s) => Ok(serde_json::Value::from(s.as_str())),
            other => Err(anyhow!("a primary key value of type {other:?}")),
        })
        .collect::<Result<_>>()?;
    Ok(serde_json::Value::Array(vals).to_string())
}

fn key_from_json(t: &Table, s: &str) -> Result<Vec<SqlValue>> {
    let bad = || {
        anyhow!(
            "vitals_migration: the recorded key of table {} ({s}) is not one this command wrote",
            t.src
        )
    };
    let v: Vec<serde_json::Value> = serde_json::from_str(s).map_err(|_| bad())?;
    if v.len() != t.key.len() {
        return Err(bad());
    }
    v.iter()
        .zip(t.key)
        .map(|(v, (_, kind))| match (kind, v) {
            (Kind::Int, serde_json::Value::Number(n)) => {
                n.as_i64().map(SqlValue::Integer).ok_or_else(bad)
            }
            (Kind::Text, serde_json::Value::String(s)) => Ok(SqlValue::Text(s.clone())),
            _ => Err(bad()),
        })
        .collect()
}

/// Appends a text field in `COPY`'s text format (backslash escapes).
fn put_text(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Appends a bytea field: `\x` and hex digits (the backslash escaped for the text format).
fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\\\x");
    for &x in b {
        out.push(HEX[usize::from(x >> 4)]);
        out.push(HEX[usize::from(x & 15)]);
    }
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

/// Reads up to `limit` rows of `t` after `after` (in key order).
fn read_batch(
    src: &Connection,
    t: &Table,
    after: Option<&[SqlValue]>,
    limit: u32,
) -> Result<Batch> {
    let select = t.select_list();
    let key_at: Vec<usize> = t
        .key
        .iter()
        .map(|k| select.iter().position(|c| c.0 == k.0).unwrap_or(0))
        .collect();
    let ts_at = (t.special == Special::Observations)
        .then(|| t.cols.iter().position(|c| c.0 == "ts"))
        .flatten();
    let mut stmt = src
        .prepare_cached(&t.read_sql(after.is_some()))
        .with_context(|| format!("reading table {}", t.src))?;
    let mut params: Vec<SqlValue> = after.map(<[SqlValue]>::to_vec).unwrap_or_default();
    params.push(SqlValue::Integer(i64::from(limit)));
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .with_context(|| format!("reading table {}", t.src))?;
    let mut b = Batch {
        data: Vec::with_capacity((64 * limit as usize).min(1 << 24)),
        rows: 0,
        last_key: None,
        days: BTreeSet::new(),
        last: false,
    };
    while let Some(r) = rows
        .next()
        .with_context(|| format!("reading table {}", t.src))?
    {
        let n = b.rows + 1;
        let bad =
            |col: &str, what: String| anyhow!("table {}, column {col}, row {n}: {what}", t.src);
        for (i, (name, kind)) in t.cols.iter().enumerate() {
            if i > 0 {
                b.data.push(b'\t');
            }
            let v = r.get_ref(i).map_err(|e| bad(name, e.to_string()))?;
            match (kind, v) {
                (_, ValueRef::Null) => b.data.extend_from_slice(b"\\N"),
                (Kind::Int, ValueRef::Integer(x)) => {
                    put_int(&mut b.data, x);
                    if ts_at == Some(i) {
                        b.days.insert(migrate_support::day_of(x));
                    }
                }
                (Kind::Text, ValueRef::Text(s)) => {
                    let s = std::str::from_utf8(s)
                        .map_err(|e| bad(name, format!("not UTF-8 text: {e}")))?;
                    put_text(&mut b.data, s.as_bytes());
                }
                (Kind::Blob, ValueRef::Blob(x)) => put_blob(&mut b.data, x),
                (_, other) => {
                    return Err(bad(
                        name,
                        format!("a {:?} value where {kind:?} belongs", other.data_type()),
                    ))
                }
            }
        }
        if t.special == Special::Alerts {
            // As the PostgreSQL store writes it: resolved, else started.
            let doc: String = r.get("doc").map_err(|e| bad("doc", e.to_string()))?;
            let id: i64 = r.get("id").map_err(|e| bad("id", e.to_string()))?;
            let alert: vitals_core::alert::Alert = serde_json::from_str(&doc).map_err(|e| {
                anyhow!("table alerts, alert {id}: its document is unreadable: {e}")
            })?;
            b.data.push(b'\t');
            put_int(&mut b.data, alert.resolved.unwrap_or(alert.started).0);
        }
        b.data.push(b'\n');
        let key = key_at
            .iter()
            .zip(t.key)
            .map(|(i, k)| {
                r.get::<_, SqlValue>(*i)
                    .map_err(|e| bad(k.0, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        b.last_key = Some(key);
        b.rows = n;
        if b.data.len() >= BATCH_BYTES {
            // Full by size: the next batch continues after this row.
            return Ok(b);
        }
    }
    // Fewer rows than asked for: the end of the table.
    b.last = b.rows < limit as usize;
    Ok(b)
}

/// The progress display on standard error: a line per table with rows copied / total. At a
/// terminal the line is rewritten in place as batches commit; otherwise (a log, a pipe) plain
/// lines: after a table's first batch, then at most once a second, and at its end.
struct Display {
    tty: bool,
    last: Instant,
    width: usize,
}

impl Display {
    fn new() -> Display {
        Display {
            tty: std::io::stderr().is_terminal(),
            last: Instant::now(),
            width: TABLES.iter().map(|t| t.src.len()).max().unwrap_or(10),
        }
    }

    fn print(&mut self, name: &str, copied: i64, total: i64, note: &str, end: bool) {
        let line = format!(
            "{name:<w$}  {copied:>10} / {total:<10} {note}",
            w = self.width
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(
                err,
                "\r\x1b[2K{}{}",
                line.trim_end(),
                if end { "\n" } else { "" }
            )
        } else {
            writeln!(err, "{}", line.trim_end())
        };
        let _ = err.flush();
        self.last = Instant::now();
    }

    /// A table's copy begins (at `copied` when resuming).
    fn start(&mut self, name: &str, copied: i64, total: i64) {
        if self.tty || copied > 0 {
            let note = if copied > 0 { "resuming" } else { "" };
            self.print(name, copied, total, note, false);
        }
    }

    /// A batch committed; `first`: the first of this run.
    fn batch(&mut self, name: &str, copied: i64, total: i64, first: bool) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if first || self.last.elapsed() >= every {
            self.print(name, copied, total, "", false);
        }
    }

    fn end(&mut self, name: &str, copied: i64, total: i64, note: &str) {
        self.print(name, copied, total, note, true);
    }
}

/// "done in 2.1 s (123456 rows/s)" (the rate only when it means something).
fn done_note(rows: i64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if rows > 0 && secs >= 0.5 {
        format!("done in {secs:.1} s ({:.0} rows/s)", rows as f64 / secs)
    } else {
        format!("done in {secs:.1} s")
    }
}

/// sqlx errors with a context, printed once (`{:#}` of an anyhow chain would print a database
/// error's message twice: sqlx's error displays its source's message too).
trait PgResult<T> {
    fn pg(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> PgResult<T> for std::result::Result<T, sqlx::Error> {
    fn pg(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| anyhow!("{}: {e}", what()))
    }
}

/// The SQLite source, opened read-only and checked to be a Vitals store.
fn open_source(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        bail!("no SQLite store at {} (no such file)", path.display());
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} read-only", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))
        .context("setting the busy timeout")?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| anyhow!("{} is not a SQLite database ({e})", path.display()))?;
    let want = vitals_store_sqlite::schema::current_version();
    let has_assets: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'assets'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| anyhow!("{} is not a SQLite database ({e})", path.display()))?;
    if version == 0 || !has_assets {
        bail!(
            "{} is not a Vitals store (a SQLite database without the Vitals schema)",
            path.display()
        );
    }
    if version > want {
        bail!(
            "{} has schema version {version}, newer than this build of Vitals knows ({want}); \
             migrate with the Vitals version that wrote it",
            path.display()
        );
    }
    if version < want {
        bail!(
            "{} has schema version {version}, older than this build's {want}: start this \
             version's `vitals serve` on it once (it upgrades the file), stop it, then migrate",
            path.display()
        );
    }
    for t in TABLES {
        let sql = format!(
            "SELECT {} FROM {} LIMIT 0",
            list(t.select_list().iter().map(|c| c.0)),
            quote(t.src)
        );
        conn.prepare(&sql).map_err(|e| {
            anyhow!(
                "{} is not a Vitals store of schema version {want}: table {}: {e}",
                path.display(),
                t.src
            )
        })?;
    }
    Ok(conn)
}

fn data_version(src: &Connection) -> Result<i64> {
    src.query_row("PRAGMA data_version", [], |r| r.get(0))
        .context("reading the data version of the source")
}

fn count_source(src: &Connection, table: &str) -> Result<i64> {
    src.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
        r.get(0)
    })
    .with_context(|| format!("counting the rows of {table} in the source"))
}

fn source_mark(src: &Connection) -> Result<i64> {
    Ok(src
        .query_row("SELECT upto FROM audit_archived WHERE one = 1", [], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
        .context("reading the audit archive mark of the source")?
        .unwrap_or(0))
}

async fn count_dest(conn: &mut PoolConnection<Postgres>, table: &str) -> Result<i64> {
    sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {}", quote(table)))
        .fetch_one(&mut **conn)
        .await
        .pg(|| format!("counting the rows of {table} in the destination"))
}

async fn dest_mark(conn: &mut PoolConnection<Postgres>) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT upto FROM audit_archived WHERE one = 1")
            .fetch_optional(&mut **conn)
            .await
            .pg(|| "reading the audit archive mark of the destination".into())?
            .unwrap_or(0),
    )
}

/// `vitals store migrate`: returns the summary for standard output (the verification table);
/// an error for any refusal, failure or mismatch.
pub fn run(from: &str, to: &str, batch: u32) -> Result<String> {
    let path = match StoreUrl::parse(Some(from), Path::new("."))? {
        StoreUrl::Sqlite(p) => p,
        StoreUrl::Postgres(_) => {
            bail!("--from must be the SQLite store (sqlite://PATH), --to the PostgreSQL one")
        }
    };
    let url = match StoreUrl::parse(Some(to), Path::new("."))? {
        StoreUrl::Postgres(u) => u,
        StoreUrl::Sqlite(_) => {
            bail!("--to must be a PostgreSQL store (postgres://user@host/db)")
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(migrate(&path, &url, batch.max(1)))
}

async fn migrate(path: &Path, url: &str, batch: u32) -> Result<String> {
    let shown = redact(url);
    let mut src = open_source(path)?;
    let source_id: String = std::fs::canonicalize(path)
        .unwrap_or_else(|_| PathBuf::from(path))
        .display()
        .to_string();
    // Changes when another connection commits to the file (checked at the end).
    let version_before = data_version(&src)?;
    // One read transaction for the whole run: every batch and the final counts see the same
    // snapshot, even if something writes to the file meanwhile.
    src.execute_batch("BEGIN")
        .context("starting a read transaction on the source")?;
    let mut src_counts: BTreeMap<&str, i64> = BTreeMap::new();
    for t in TABLES {
        src_counts.insert(t.src, count_source(&src, t.src)?);
    }
    let src_mark = source_mark(&src)?;

    // Connecting also creates (or upgrades) the Vitals schema in the destination.
    let store = PgStore::connect_with(
        url,
        PgOptions {
            max_connections: 3,
            acquire_timeout: Duration::from_secs(10),
        },
    )
    .await
    .map_err(|e| {
        let msg = e.to_string();
        if msg.contains(&shown) {
            anyhow!(msg)
        } else {
            anyhow!("the destination {shown}: {msg}")
        }
    })?;
    let mut conn = store
        .pool()
        .acquire()
        .await
        .pg(|| format!("cannot connect to {shown}"))?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(migrate_support::LOCK_MIGRATION)
        .fetch_one(&mut *conn)
        .await
        .pg(|| "taking the migration lock".into())?;
    if !locked {
        bail!("another `vitals store migrate` is writing to {shown} right now");
    }
    // The batches need not wait for their WAL flush: a batch and its progress commit together
    // or not at all even so, and a server crash can only lose the last batches, which the
    // next run copies again. Before it reports success, the run waits for the flush (below).
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await
        .pg(|| "setting synchronous_commit".into())?;
    sqlx::raw_sql(PROGRESS_DDL)
        .execute(&mut *conn)
        .await
        .pg(|| "creating vitals_migration in the destination".into())?;

    // What was copied before, by this source; anything else is refused.
    let mut progress: BTreeMap<String, Progress> = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT source, tbl, total, copied, last_key, done FROM vitals_migration ORDER BY source, tbl",
    )
    .fetch_all(&mut *conn)
    .await
    .pg(|| "reading vitals_migration".into())?;
    let bad = || "reading vitals_migration".to_string();
    for r in rows {
        let source: String = r.try_get(0).pg(bad)?;
        if source != source_id {
            bail!(
                "{shown} holds (part of) a migration from another source, {source}; \
                 migrate {} into an empty database",
                path.display()
            );
        }
        progress.insert(
            r.try_get(1).pg(bad)?,
            Progress {
                total: r.try_get(2).pg(bad)?,
                copied: r.try_get(3).pg(bad)?,
                last_key: r.try_get(4).pg(bad)?,
                done: r.try_get(5).pg(bad)?,
            },
        );
    }
    for t in TABLES {
        if let Some(p) = progress.get(t.src) {
            let now = src_counts.get(t.src).copied().unwrap_or(0);
            if p.total != now {
                bail!(
                    "the source changed since this migration began: table {} had {} rows then, \
                     {now} now (was `vitals serve` running on it?); migrate into a fresh, empty \
                     database",
                    t.src,
                    p.total
                );
            }
        }
    }
    // The destination tables, in the order of the copy.
    let mut dests: Vec<&str> = TABLES.iter().map(|t| t.dest).collect();
    dests.dedup();
    // Every destination table must hold exactly what this migration copied into it.
    for dest in &dests {
        let feeds: Vec<&Table> = TABLES.iter().filter(|t| t.dest == *dest).collect();
        if feeds.iter().any(|t| t.special == Special::Mark) {
            let done = feeds
                .iter()
                .all(|t| progress.get(t.src).is_some_and(|p| p.done));
            let mark = dest_mark(&mut conn).await?;
            if !done && mark != 0 {
                bail!(
                    "{shown} already has data of its own: table {dest} (audit rows archived up \
                     to {mark}); migrate into an empty database"
                );
            }
            continue;
        }
        let expected: i64 = feeds
            .iter()
            .filter_map(|t| progress.get(t.src))
            .map(|p| p.copied)
            .sum();
        let actual = count_dest(&mut conn, dest).await?;
        if actual != expected {
            if expected == 0 {
                bail!(
                    "{shown} already has data of its own: table {dest} has {actual} rows; \
                     migrate into an empty database (CREATE DATABASE …)"
                );
            }
            bail!(
                "{shown} has data this migration did not copy: table {dest} has {actual} rows, \
                 the migration copied {expected} (was `vitals serve` started on it?)"
            );
        }
    }

    let all_done = TABLES
        .iter()
        .all(|t| progress.get(t.src).is_some_and(|p| p.done));
    let resumed = progress.values().any(|p| p.copied > 0 || p.done);
    eprintln!(
        "{} {} to {shown} ({} rows in {} tables, {batch} rows per transaction)",
        if all_done {
            "already migrated, verifying:"
        } else if resumed {
            "resuming"
        } else {
            "migrating"
        },
        path.display(),
        src_counts.values().sum::<i64>(),
        TABLES.len()
    );
    let mut display = Display::new();
    let started = Instant::now();
    let mut obs_rate: Option<(i64, Duration)> = None;
    for t in TABLES {
        let total = src_counts.get(t.src).copied().unwrap_or(0);
        let p = progress.get(t.src).cloned().unwrap_or_default();
        if p.done {
            display.end(t.src, p.copied, total, "done earlier");
            continue;
        }
        let begun = Instant::now();
        let (copied_now, copied) = if t.special == Special::Mark {
            copy_mark(&mut conn, &source_id, t, total, src_mark).await?
        } else {
            let (back, now, all) = copy_table(
                src,
                &store,
                &mut conn,
                &source_id,
                t,
                total,
                &p,
                batch,
                &mut display,
            )
            .await?;
            src = back;
            (now, all)
        };
        let took = begun.elapsed();
        display.end(t.src, copied, total, &done_note(copied_now, took));
        if t.dest == "observations" {
            let (n, d) = obs_rate.unwrap_or((0, Duration::ZERO));
            obs_rate = Some((n + copied_now, d + took));
        }
    }

    raise_sequences(&mut conn).await?;
    // Durable before verified: a write committed with synchronous_commit on waits for the WAL
    // flush, which covers every batch committed before it.
    sqlx::query("SET synchronous_commit = on")
        .execute(&mut *conn)
        .await
        .pg(|| "setting synchronous_commit".into())?;
    sqlx::query("UPDATE vitals_migration SET updated = now() WHERE source = $1")
        .bind(&source_id)
        .execute(&mut *conn)
        .await
        .pg(|| "flushing the copy to disk".into())?;

    // Verification: row counts, table by table, source snapshot against destination.
    let mut report = String::new();
    let mut wrong = Vec::new();
    report.push_str(&format!(
        "{:<16} {:>12} {:>12}\n",
        "table", "sqlite", "postgresql"
    ));
    for dest in &dests {
        let feeds: Vec<&Table> = TABLES.iter().filter(|t| t.dest == *dest).collect();
        let want: i64 = feeds
            .iter()
            .map(|t| src_counts.get(t.src).copied().unwrap_or(0))
            .sum();
        let got = count_dest(&mut conn, dest).await?;
        let mut ok = want == got;
        if feeds.iter().any(|t| t.special == Special::Mark)
            && dest_mark(&mut conn).await? != src_mark
        {
            ok = false;
        }
        report.push_str(&format!(
            "{dest:<16} {want:>12} {got:>12}  {}\n",
            if ok { "ok" } else { "MISMATCH" }
        ));
        if !ok {
            wrong.push(*dest);
        }
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(migrate_support::LOCK_MIGRATION)
        .execute(&mut *conn)
        .await;
    drop(conn);
    let _ = vitals_store::Housekeeping::close(&store).await;
    let _ = src.execute_batch("COMMIT");
    if data_version(&src)? != version_before {
        eprintln!(
            "warning: {} changed while it was being copied (is `vitals serve` still running on \
             it?); the copy is of its state when the migration began",
            path.display()
        );
    }
    if !wrong.is_empty() {
        // The table goes out with the error, so the caller sees what differs.
        print!("{report}");
        bail!(
            "verification failed: the row counts of {} differ between {} and {shown}",
            wrong.join(", "),
            path.display()
        );
    }
    let total: i64 = src_counts.values().sum();
    if let Some((n, d)) = obs_rate.filter(|(n, d)| *n > 0 && d.as_secs_f64() >= 0.5) {
        report.push_str(&format!(
            "observations copied at {:.0}/s\n",
            n as f64 / d.as_secs_f64().max(1e-9)
        ));
    }
    report.push_str(&format!(
        "verified: {total} rows of {} tables from {} are in {shown} ({:.1} s). Next: point \
         `[server] store` at this database (its password as ${{NAME}}) and start `vitals serve`.",
        TABLES.len(),
        path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(report)
}

/// Copies one table batch by batch from its recorded progress; returns the source connection
/// and (rows copied by this run, rows copied in all).
///
/// A thread reads the batches from SQLite (the source connection moves there and back) while
/// the previous batch is being written to PostgreSQL; at most two wait between the two.
#[allow(clippy::too_many_arguments)]
async fn copy_table(
    src: Connection,
    store: &PgStore,
    conn: &mut PoolConnection<Postgres>,
    source_id: &str,
    t: &'static Table,
    total: i64,
    p: &Progress,
    batch: u32,
    display: &mut Display,
) -> Result<(Connection, i64, i64)> {
    let start = match &p.last_key {
        Some(k) => Some(key_from_json(t, k)?),
        None => None,
    };
    let (tx_batches, mut batches) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
    let mut after = start.clone();
    let reader = std::thread::Builder::new()
        .name("vitals-migrate-read".into())
        .spawn(move || {
            let mut after = start;
            loop {
                let b = read_batch(&src, t, after.as_deref(), batch);
                let last = match &b {
                    Ok(b) if !b.last => b.last_key.clone(),
                    _ => None, // the end, or an error
                };
                if tx_batches.blocking_send(b).is_err() || last.is_none() {
                    return src;
                }
                after = last;
            }
        })
        .context("cannot start the reading thread")?;

    let mut copied = p.copied;
    let mut copied_now = 0i64;
    let copy = t.copy_sql();
    display.start(t.src, copied, total);
    loop {
        let Some(b) = batches.recv().await else {
            bail!("reading table {}: the reading thread stopped", t.src);
        };
        let b = b?;
        let finished = b.last;
        if !b.days.is_empty() {
            // Before the batch's transaction, as the store does: partition DDL takes a strong
            // lock that a long write transaction must not hold.
            migrate_support::ensure_partitions(store, &b.days)
                .await
                .map_err(|e| anyhow!("creating observation partitions: {e}"))?;
        }
        let key_json = match &b.last_key {
            Some(k) => Some(key_to_json(k).with_context(|| format!("table {}", t.src))?),
            None => None,
        };
        let mut tx = sqlx::Connection::begin(&mut **conn)
            .await
            .pg(|| "starting a transaction in the destination".into())?;
        if b.rows > 0 {
            let what = || {
                format!(
                    "copying the rows of {} after key {} into {}",
                    t.src,
                    p_key(&after),
                    t.dest
                )
            };
            let mut sink = tx.copy_in_raw(&copy).await.pg(what)?;
            sink.send(b.data).await.pg(what)?;
            let n = sink.finish().await.pg(what)?;
            if n != b.rows as u64 {
                bail!("{}: {n} rows arrived of {}", what(), b.rows);
            }
        }
        record(
            &mut tx,
            source_id,
            t.src,
            total,
            b.rows as i64,
            key_json,
            finished,
        )
        .await?;
        tx.commit()
            .await
            .pg(|| format!("committing a batch of {}", t.src))?;
        copied += b.rows as i64;
        copied_now += b.rows as i64;
        if let Some(k) = b.last_key {
            after = Some(k);
        }
        if finished {
            break;
        }
        display.batch(t.src, copied, total, copied_now == b.rows as i64);
    }
    drop(batches);
    let src = reader
        .join()
        .map_err(|_| anyhow!("reading table {}: the reading thread failed", t.src))?;
    Ok((src, copied_now, copied))
}

fn p_key(k: &Option<Vec<SqlValue>>) -> String {
    match k {
        None => "(start)".to_string(),
        Some(k) => key_to_json(k).unwrap_or_else(|_| "?".to_string()),
    }
}

/// Records a batch's progress (inside the batch's transaction).
async fn record(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    source_id: &str,
    tbl: &str,
    total: i64,
    rows: i64,
    last_key: Option<String>,
    done: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO vitals_migration (source, tbl, total, copied, last_key, done) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (source, tbl) DO UPDATE SET copied = vitals_migration.copied + excluded.copied, \
         last_key = coalesce(excluded.last_key, vitals_migration.last_key), done = excluded.done, \
         updated = now()",
    )
    .bind(source_id)
    .bind(tbl)
    .bind(total)
    .bind(rows)
    .bind(last_key)
    .bind(done)
    .execute(&mut **tx)
    .await
    .pg(|| format!("recording the progress of {tbl}"))?;
    Ok(())
}

/// `audit_archived`: the mark exists on both sides (one row); it is moved forward to the
/// source's (its trigger refuses moving back), with the progress in the same transaction.
async fn copy_mark(
    conn: &mut PoolConnection<Postgres>,
    source_id: &str,
    t: &Table,
    total: i64,
    mark: i64,
) -> Result<(i64, i64)> {
    let mut tx = sqlx::Connection::begin(&mut **conn)
        .await
        .pg(|| "starting a transaction in the destination".into())?;
    sqlx::query("UPDATE audit_archived SET upto = $1 WHERE one = 1 AND upto < $1")
        .bind(mark)
        .execute(&mut *tx)
        .await
        .pg(|| "copying the audit archive mark".into())?;
    record(&mut tx, source_id, t.src, total, total, None, true).await?;
    tx.commit()
        .await
        .pg(|| "committing the audit archive mark".into())?;
    Ok((total, total))
}

/// Moves every identity sequence of the copied tables past the largest id copied (only ever
/// forward), so rows created later by `vitals serve` get new ids.
async fn raise_sequences(conn: &mut PoolConnection<Postgres>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for t in TABLES {
        // Only where the key is the destination's own column (not SQLite's staging `seq`).
        let [(col, Kind::Int)] = t.key else { continue };
        if !t.cols.iter().any(|c| c.0 == *col) {
            continue;
        }
        if !seen.insert(t.dest) {
            continue;
        }
        let seq: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
            .bind(t.dest)
            .bind(*col)
            .fetch_one(&mut **conn)
            .await
            .pg(|| format!("finding the sequence of {}.{col}", t.dest))?;
        let Some(seq) = seq else { continue };
        // The sequence's next value is last_value + 1 once called, else last_value.
        let sql = format!(
            "SELECT setval('{seq}', m.top + 1, false) FROM \
             (SELECT coalesce(max({c}), 0)::bigint AS top FROM {tbl}) m, \
             (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS next FROM {seq}) s \
             WHERE m.top + 1 > s.next",
            c = quote(col),
            tbl = quote(t.dest),
        );
        sqlx::query(&sql)
            .execute(&mut **conn)
            .await
            .pg(|| format!("moving the sequence {seq} past the copied ids"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table and column of the SQLite schema this build writes is copied: a migration
    /// that adds either must say here where it goes.
    #[test]
    fn the_tables_are_exactly_the_sqlite_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        vitals_store_sqlite::schema::migrate(&mut conn).unwrap();
        let tables: BTreeSet<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let ours: BTreeSet<String> = TABLES.iter().map(|t| t.src.to_string()).collect();
        assert_eq!(tables, ours);
        for t in TABLES {
            let cols: BTreeSet<String> = conn
                .prepare(&format!("PRAGMA table_info({})", quote(t.src)))
                .unwrap()
                .query_map([], |r| r.get(1))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let read: BTreeSet<String> = t.select_list().iter().map(|c| c.0.to_string()).collect();
            assert_eq!(cols, read, "columns of {}", t.src);
        }
    }

    #[test]
    fn copy_text_format_escapes_and_keys_round_trip() {
        let mut out = Vec::new();
        put_text(&mut out, "a\tb\nc\\d\re ü".as_bytes());
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re \xc3\xbc");
        let mut out = Vec::new();
        put_blob(&mut out, &[0x04, 0xab, 0xff]);
        assert_eq!(out, b"\\\\x04abff");
        let t = TABLES.iter().find(|t| t.src == "fleet_errors").unwrap();
        let key = vec![
            SqlValue::Text("node \"7\"".into()),
            SqlValue::Integer(2025),
            SqlValue::Text("x\ny".into()),
        ];
        let json = key_to_json(&key).unwrap();
        assert_eq!(key_from_json(t, &json).unwrap(), key);
        assert!(key_from_json(t, "[1]").is_err());
        assert!(key_from_json(t, "[\"a\", \"b\", \"c\"]").is_err());
    }

    #[test]
    fn the_statements_name_their_columns() {
        let obs = TABLES
            .iter()
            .find(|t| t.src == "observations_recent")
            .unwrap();
        assert_eq!(
            obs.read_sql(true),
            "SELECT \"check_id\", \"ts\", \"status\", \"score\", \"duration_us\", \"reason_id\", \
             \"comp_id\", \"vals\", \"seq\" FROM \"observations_recent\" WHERE (\"seq\") > (?1) \
             ORDER BY \"seq\" LIMIT ?2"
        );
        assert!(obs
            .copy_sql()
            .starts_with("COPY \"observations\" (\"check_id\""));
        let alerts = TABLES.iter().find(|t| t.src == "alerts").unwrap();
        assert!(alerts
            .copy_sql()
            .ends_with("\"doc\", \"ended\") FROM STDIN"));
    }
}
