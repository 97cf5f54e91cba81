//! Databases the engine reads: the catalogue (and sources answering SQL) over PostgreSQL or
//! MariaDB/MySQL through sqlx, or an SQLite file. Queries use named parameters (`:source`,
//! `:patient`), bound as text; every answer is read as text (NULL as `None`), bounded.

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Column, Row};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rows read at most from one query; more is an error (a query that is not what it should be).
pub const MAX_ROWS: usize = 10_000;

/// An answer: column names and rows of text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The index of a column by name (case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// A connection pool to one database.
#[derive(Clone)]
pub enum Db {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
    /// SQLite is local: one connection, used in turn on the blocking pool.
    Lite(Arc<Mutex<rusqlite::Connection>>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Pg(_) => "Db::Pg",
            Db::My(_) => "Db::My",
            Db::Lite(_) => "Db::Lite",
        })
    }
}

impl Db {
    /// A lazy pool (nothing is connected until the first query, so a catalogue that is down
    /// at start is an observation later, not a start failure). Fails only on a malformed DSN.
    pub fn open(dsn: &str, max_connections: u32, timeout: Duration) -> Result<Db, String> {
        let max = max_connections.clamp(1, 64);
        match vitals_config::engine::dsn_kind(dsn) {
            Some("postgres") => {
                let opts = PgConnectOptions::from_str(dsn)
                    .map_err(|e| format!("invalid PostgreSQL DSN: {}", redact(&e.to_string())))?
                    .application_name("vitals-engine");
                Ok(Db::Pg(
                    PgPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(timeout)
                        .idle_timeout(Some(Duration::from_secs(300)))
                        .connect_lazy_with(opts),
                ))
            }
            Some("mysql") => {
                let dsn = dsn.replacen("mariadb://", "mysql://", 1);
                let opts = MySqlConnectOptions::from_str(&dsn)
                    .map_err(|e| format!("invalid MySQL DSN: {}", redact(&e.to_string())))?;
                Ok(Db::My(
                    MySqlPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(timeout)
                        .idle_timeout(Some(Duration::from_secs(300)))
                        .connect_lazy_with(opts),
                ))
            }
            Some("sqlite") => {
                let path = dsn.trim_start_matches("sqlite:").trim_start_matches("//");
                let conn = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| format!("cannot open the SQLite database {path}: {e}"))?;
                let _ = conn.busy_timeout(timeout);
                Ok(Db::Lite(Arc::new(Mutex::new(conn))))
            }
            _ => Err("the DSN must start with postgres://, mysql:// or sqlite:".into()),
        }
    }

    /// Runs one query with named parameters, bounded by `timeout`.
    pub async fn query(
        &self,
        sql: &str,
        params: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Rows, String> {
        let work = async {
            match self {
                Db::Pg(pool) => {
                    let (text, values) = bind_named(sql, params, Placeholder::Dollar);
                    let mut q = sqlx::query(&text);
                    for v in &values {
                        q = q.bind(v.as_str());
                    }
                    let rows = q.fetch_all(pool).await.map_err(|e| describe(&e))?;
                    rows_of(&rows, pg_text)
                }
                Db::My(pool) => {
                    let (text, values) = bind_named(sql, params, Placeholder::Question);
                    let mut q = sqlx::query(&text);
                    for v in &values {
                        q = q.bind(v.as_str());
                    }
                    let rows = q.fetch_all(pool).await.map_err(|e| describe(&e))?;
                    rows_of(&rows, my_text)
                }
                Db::Lite(conn) => {
                    let (text, values) = bind_named(sql, params, Placeholder::Question);
                    let conn = conn.clone();
                    tokio::task::spawn_blocking(move || lite_query(&conn, &text, &values))
                        .await
                        .map_err(|e| format!("query task failed: {e}"))?
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}", vitals_core_fmt(timeout))),
        }
    }
}

fn vitals_core_fmt(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A driver error as a short sentence, without the DSN (which may hold a password).
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => "no connection in time (database down or too slow)".into(),
        sqlx::Error::Io(io) => format!("cannot connect: {io}"),
        sqlx::Error::Database(d) => format!("the database refused the query: {}", d.message()),
        other => redact(&other.to_string()),
    }
}

/// Cuts anything that looks like `user:password@` out of a message.
fn redact(s: &str) -> String {
    match (s.find("://"), s.find('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…@{}", &s[..a], &s[b + 1..]),
        _ => s.to_string(),
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Placeholder {
    /// PostgreSQL: `$1`, `$2`, …
    Dollar,
    /// MySQL and SQLite: `?`.
    Question,
}

/// Replaces `:name` parameters by positional ones and returns the values in order. Text in
/// single quotes and PostgreSQL casts (`::int`) are left alone; unknown names too.
pub fn bind_named(sql: &str, params: &[(&str, &str)], style: Placeholder) -> (String, Vec<String>) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut values: Vec<String> = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut quoted = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
            i += 1;
            continue;
        }
        if !quoted && c == ':' {
            if chars.get(i + 1) == Some(&':') {
                out.push_str("::");
                i += 2;
                continue;
            }
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            let name: String = chars[start..end].iter().collect();
            if let Some((_, v)) = params.iter().find(|(n, _)| *n == name) {
                values.push((*v).to_string());
                match style {
                    Placeholder::Dollar => {
                        out.push('$');
                        out.push_str(&values.len().to_string());
                    }
                    Placeholder::Question => out.push('?'),
                }
                i = end;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    (out, values)
}

fn too_many(n: usize) -> Result<(), String> {
    if n > MAX_ROWS {
        Err(format!("the query answered more than {MAX_ROWS} rows"))
    } else {
        Ok(())
    }
}

/// A driver's rows as text, each cell read by `text` (the driver's own conversions).
fn rows_of<R: sqlx::Row>(
    rows: &[R],
    text: fn(&R, usize) -> Option<String>,
) -> Result<Rows, String> {
    too_many(rows.len())?;
    let mut out = Rows::default();
    if let Some(first) = rows.first() {
        out.columns = first
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
    }
    for r in rows {
        out.rows
            .push((0..out.columns.len()).map(|i| text(r, i)).collect());
    }
    Ok(out)
}

/// A PostgreSQL value as text, whatever its type (the common ones; others are `None`).
fn pg_text(r: &sqlx::postgres::PgRow, i: usize) -> Option<String> {
    macro_rules! try_as {
        ($t:ty) => {
            if let Ok(v) = r.try_get::<Option<$t>, usize>(i) {
                return v.map(|v| v.to_string());
            }
        };
    }
    try_as!(String);
    try_as!(i64);
    try_as!(i32);
    try_as!(i16);
    try_as!(f64);
    try_as!(f32);
    try_as!(bool);
    pg_date(r, i)
}

/// DATE, TIMESTAMP and TIMESTAMPTZ from their binary form (days or microseconds since
/// 2000-01-01), so that no date feature of the driver is needed.
fn pg_date(r: &sqlx::postgres::PgRow, i: usize) -> Option<String> {
    use sqlx::{TypeInfo, ValueRef};
    let raw = r.try_get_raw(i).ok()?;
    if raw.is_null() {
        return None;
    }
    let kind = raw.type_info().name().to_string();
    let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)?;
    match kind.as_str() {
        "DATE" => {
            let days = <i32 as sqlx::Decode<sqlx::Postgres>>::decode(raw).ok()?;
            let d = epoch.checked_add_signed(chrono::TimeDelta::days(days.into()))?;
            Some(d.format("%Y-%m-%d").to_string())
        }
        "TIMESTAMP" | "TIMESTAMPTZ" => {
            let us = <i64 as sqlx::Decode<sqlx::Postgres>>::decode(raw).ok()?;
            let t = epoch
                .and_hms_opt(0, 0, 0)?
                .checked_add_signed(chrono::TimeDelta::microseconds(us))?;
            Some(t.format("%Y-%m-%dT%H:%M:%S").to_string())
        }
        "NUMERIC" => pg_numeric(<&[u8] as sqlx::Decode<sqlx::Postgres>>::decode(raw).ok()?),
        _ => None,
    }
}

/// NUMERIC's binary form as its digits (`12.50`, `-0.05`): digit count, weight (of the first
/// base-10000 digit), sign, display scale, then the base-10000 digits, all big-endian.
fn pg_numeric(b: &[u8]) -> Option<String> {
    let rd = |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])) };
    let n = usize::try_from(rd(0)?).ok()?;
    let weight = i32::from(rd(2)?);
    let sign = rd(4)? as u16;
    let scale = usize::from(rd(6)? as u16);
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits = (0..n)
        .map(|k| rd(8 + 2 * k).map(i32::from))
        .collect::<Option<Vec<i32>>>()?;
    // The base-10000 digit at position `p` (0: units, -1: first four decimals).
    let at = |p: i32| -> i32 {
        usize::try_from(weight - p)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&at(weight).to_string());
        for p in (0..weight).rev() {
            out.push_str(&format!("{:04}", at(p)));
        }
    }
    if scale > 0 {
        let mut frac = String::new();
        for j in 1..=scale.div_ceil(4) {
            frac.push_str(&format!("{:04}", at(-(j as i32))));
        }
        frac.truncate(scale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

fn my_text(r: &sqlx::mysql::MySqlRow, i: usize) -> Option<String> {
    macro_rules! try_as {
        ($t:ty) => {
            if let Ok(v) = r.try_get::<Option<$t>, usize>(i) {
                return v.map(|v| v.to_string());
            }
        };
    }
    try_as!(String);
    try_as!(i64);
    try_as!(u64);
    try_as!(i32);
    try_as!(f64);
    try_as!(bool);
    if let Ok(v) = r.try_get::<Option<Vec<u8>>, usize>(i) {
        return v.map(|b| String::from_utf8_lossy(&b).into_owned());
    }
    my_date(r, i)
}

/// DECIMAL as its digits; DATE, DATETIME and TIMESTAMP as PostgreSQL's are read (`1961-04-12`,
/// `2024-03-01T08:30:00`), so a MariaDB copy of a date equals the same date from PostgreSQL
/// or an HTTP source. Read from the raw value, so that no date feature of the driver is needed.
fn my_date(r: &sqlx::mysql::MySqlRow, i: usize) -> Option<String> {
    use sqlx::{TypeInfo, ValueRef};
    let raw = r.try_get_raw(i).ok()?;
    if raw.is_null() {
        return None;
    }
    let kind = raw.type_info().name().to_string();
    if kind == "DECIMAL" {
        // Sent as its digits in both wire forms.
        let bytes = <&[u8] as sqlx::Decode<sqlx::MySql>>::decode(raw).ok()?;
        return std::str::from_utf8(bytes).ok().map(str::to_string);
    }
    if !matches!(kind.as_str(), "DATE" | "DATETIME" | "TIMESTAMP") {
        return None;
    }
    let bytes = <&[u8] as sqlx::Decode<sqlx::MySql>>::decode(raw).ok()?;
    my_date_text(kind == "DATE", bytes)
}

/// A MySQL date in either wire form: binary (prepared statements: a length byte of 0, 4, 7
/// or 11, then year (little-endian u16), month, day, hour, minute, second, microseconds) or
/// text (`2024-03-01 08:30:00.000000`). The zero date (`0000-00-00`) is no date.
fn my_date_text(date_only: bool, b: &[u8]) -> Option<String> {
    let (y, mo, d, h, mi, s) = match b.first() {
        Some(&n @ (0 | 4 | 7 | 11)) if b.len() == usize::from(n) + 1 => {
            if n == 0 {
                return None;
            }
            let y = u16::from_le_bytes([b[1], b[2]]);
            let (h, mi, s) = if n >= 7 {
                (b[5], b[6], b[7])
            } else {
                (0, 0, 0)
            };
            (y, b[3], b[4], h, mi, s)
        }
        _ => {
            let t = std::str::from_utf8(b).ok()?.trim();
            if t.starts_with("0000-00-00") {
                return None;
            }
            return if date_only {
                t.get(..10).map(str::to_string)
            } else {
                t.get(..19).map(|t| t.replacen(' ', "T", 1))
            };
        }
    };
    if (y, mo, d) == (0, 0, 0) {
        return None;
    }
    Some(if date_only {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    })
}

fn lite_query(
    conn: &Mutex<rusqlite::Connection>,
    sql: &str,
    values: &[String],
) -> Result<Rows, String> {
    let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| format!("the database refused the query: {e}"))?;
    let columns: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let n = columns.len();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values.iter()))
        .map_err(|e| format!("the database refused the query: {e}"))?;
    let mut out = Rows {
        columns,
        rows: Vec::new(),
    };
    while let Some(r) = rows.next().map_err(|e| format!("reading rows: {e}"))? {
        too_many(out.rows.len() + 1)?;
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            use rusqlite::types::ValueRef;
            row.push(match r.get_ref(i) {
                Ok(ValueRef::Null) | Err(_) => None,
                Ok(ValueRef::Integer(v)) => Some(v.to_string()),
                Ok(ValueRef::Real(v)) => Some(v.to_string()),
                Ok(ValueRef::Text(t)) | Ok(ValueRef::Blob(t)) => {
                    Some(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.rows.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn numeric_binary_form_reads_as_its_digits() {
        let num = |weight: i16, sign: u16, scale: u16, digits: &[i16]| {
            let mut b = Vec::new();
            for v in [digits.len() as i16, weight, sign as i16, scale as i16] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            for d in digits {
                b.extend_from_slice(&d.to_be_bytes());
            }
            pg_numeric(&b)
        };
        assert_eq!(num(0, 0, 2, &[12, 5000]).as_deref(), Some("12.50"));
        assert_eq!(num(-1, 0x4000, 2, &[500]).as_deref(), Some("-0.05"));
        assert_eq!(num(2, 0, 0, &[1, 2345, 6789]).as_deref(), Some("123456789"));
        assert_eq!(num(1, 0, 0, &[7]).as_deref(), Some("70000"));
        assert_eq!(num(0, 0, 0, &[]).as_deref(), Some("0"));
        assert_eq!(num(0, 0xC000, 0, &[]).as_deref(), Some("NaN"));
        assert_eq!(pg_numeric(&[0, 1]), None);
    }

    use super::*;

    #[test]
    fn named_parameters_become_positional() {
        let (s, v) = bind_named(
            "SELECT p FROM e WHERE src = :source AND p <> :patient AND x::int = 1 AND y = ':source' AND z = :source",
            &[("source", "H1"), ("patient", "P9")],
            Placeholder::Dollar,
        );
        assert_eq!(
            s,
            "SELECT p FROM e WHERE src = $1 AND p <> $2 AND x::int = 1 AND y = ':source' AND z = $3"
        );
        assert_eq!(v, vec!["H1", "P9", "H1"]);
        let (s, v) = bind_named(
            "a = :source::text",
            &[("source", "H")],
            Placeholder::Question,
        );
        assert_eq!(s, "a = ?::text");
        assert_eq!(v, vec!["H"]);
    }

    #[test]
    fn mysql_dates_in_both_wire_forms() {
        // Binary: 1961-04-12; 2024-03-01 08:30:05; with microseconds; the zero date.
        assert_eq!(
            my_date_text(true, &[4, 0xA9, 0x07, 4, 12]).as_deref(),
            Some("1961-04-12")
        );
        assert_eq!(
            my_date_text(false, &[7, 0xE8, 0x07, 3, 1, 8, 30, 5]).as_deref(),
            Some("2024-03-01T08:30:05")
        );
        assert_eq!(
            my_date_text(false, &[11, 0xE8, 0x07, 3, 1, 8, 30, 5, 1, 0, 0, 0]).as_deref(),
            Some("2024-03-01T08:30:05")
        );
        assert_eq!(
            my_date_text(false, &[4, 0xE8, 0x07, 3, 1]).as_deref(),
            Some("2024-03-01T00:00:00")
        );
        assert_eq!(my_date_text(true, &[0]), None);
        // Text.
        assert_eq!(
            my_date_text(true, b"1961-04-12").as_deref(),
            Some("1961-04-12")
        );
        assert_eq!(
            my_date_text(false, b"2024-03-01 08:30:05.000000").as_deref(),
            Some("2024-03-01T08:30:05")
        );
        assert_eq!(my_date_text(true, b"0000-00-00"), None);
    }

    #[test]
    fn passwords_are_cut_from_messages() {
        assert_eq!(
            redact("error with postgres://u:secret@host/db"),
            "error with postgres://…@host/db"
        );
    }
}
