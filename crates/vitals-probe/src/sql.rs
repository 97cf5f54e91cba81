//! SQL probes (`postgres`, `mysql` for MariaDB/MySQL), with sqlx (rustls, no OpenSSL):
//! connect (TLS per `tls`, password usually from `${ENV}`), run one statement in a read-only
//! transaction with a server-side timeout as well as our own, judge the result with
//! [`RowCondition`]s, and check that the user holds the `grants` it needs — as the MinLog2
//! guide requires SELECT, INSERT, UPDATE and DELETE on its tables.
//!
//! The query runs through the simple (text) protocol, so every column of any type reads as
//! text; numeric columns of the first row become values. Only one statement is accepted
//! ([`single_statement`]), so a stray `COMMIT; DELETE …` cannot leave the read-only
//! transaction.
//!
//! Grants: PostgreSQL answers `has_table_privilege`; MariaDB/MySQL have no such function, so
//! the server's own privilege check is asked with `EXPLAIN` of each statement kind (which
//! checks privileges like the statement itself, and executes nothing).
//!
//! Values: `connect_ms`, `query_ms`, `rows`, and the numeric columns of the first row.

use crate::{fmt_duration, Outcome};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Column, Connection, Executor, Row};
use std::time::{Duration, Instant};
use tokio::time::timeout_at;
use vitals_core::expr::RowCondition;
use vitals_core::spec::{SqlSpec, SqlTls};
use vitals_core::{Status, Value};

/// Numeric columns of the first row kept as values, at most.
const MAX_COLUMN_VALUES: usize = 20;
/// A value quoted in a reason is cut to this many characters.
const QUOTE_CHARS: usize = 100;

/// Which server a SQL spec talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn default_port(self) -> u16 {
        match self {
            Dialect::Postgres => 5432,
            Dialect::Mysql => 3306,
        }
    }
}

/// Privileges a `grants` table may name.
pub const PRIVILEGES: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "DELETE"];

/// `Err` when `sql` holds more than one statement (a `;` outside quotes and comments that is
/// not trailing) or none.
pub fn single_statement(sql: &str, dialect: Dialect) -> Result<(), String> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut seen_statement_end = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                // Quoted: a doubled quote is an escaped quote. Backslashes escape in MySQL
                // strings, but in PostgreSQL only in E'…' strings.
                let backslash = match dialect {
                    Dialect::Mysql => true,
                    Dialect::Postgres => {
                        c == b'\'' && i > 0 && b[i - 1].eq_ignore_ascii_case(&b'e')
                    }
                };
                i += 1;
                while i < b.len() {
                    if backslash && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' if dialect == Dialect::Mysql => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' if dialect == Dialect::Postgres
                && !(i > 0
                    && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'$'))) =>
            {
                // PostgreSQL dollar quoting: $tag$ … $tag$.
                let rest = &sql[i + 1..];
                if let Some(end) = rest.find('$') {
                    let tag = &rest[..end];
                    if tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        let delim = format!("${tag}$");
                        let body_start = i + 1 + end + 1;
                        match sql[body_start..].find(&delim) {
                            Some(close) => i = body_start + close + delim.len() - 1,
                            None => i = b.len(),
                        }
                    }
                }
            }
            b';' => seen_statement_end = true,
            c if !c.is_ascii_whitespace() && seen_statement_end => {
                return Err("one statement only (a query may end with `;` but not go on)".into());
            }
            _ => {}
        }
        i += 1;
    }
    if sql.trim().trim_end_matches(';').trim().is_empty() {
        return Err("the query is empty".into());
    }
    Ok(())
}

/// A short, stable reason for a database error.
fn describe(e: &sqlx::Error, spec: &SqlSpec, dialect: Dialect) -> String {
    let addr = format!(
        "{}:{}",
        spec.host,
        spec.port.unwrap_or(dialect.default_port())
    );
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = db.message();
            match (dialect, code.as_str()) {
                (Dialect::Postgres, "28P01") => {
                    format!(
                        "wrong password for user {:?} (authentication failed)",
                        spec.user
                    )
                }
                (Dialect::Postgres, "28000") => format!("user {:?} not allowed: {msg}", spec.user),
                (Dialect::Postgres, "3D000") | (Dialect::Mysql, "42000")
                    if msg.contains("database") || msg.contains("Unknown database") =>
                {
                    format!("database does not exist: {msg}")
                }
                (Dialect::Postgres, "57014") => "query timed out (statement_timeout)".into(),
                (Dialect::Mysql, "28000") => format!(
                    "wrong password or unknown user {:?} (access denied)",
                    spec.user
                ),
                (Dialect::Mysql, "70100") if msg.contains("max_statement_time") => {
                    "query timed out (max_statement_time)".into()
                }
                _ => format!("{msg} (SQLSTATE {code})"),
            }
        }
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("cannot connect to {addr}: refused"),
            std::io::ErrorKind::ConnectionReset => format!("connection to {addr} reset"),
            std::io::ErrorKind::TimedOut => format!("cannot connect to {addr}: timed out"),
            // rustls reports certificate and handshake failures as invalid data.
            std::io::ErrorKind::InvalidData => format!("TLS with {addr} failed: {io}"),
            _ => format!(
                "cannot connect to {addr}: {}",
                crate::exec::strip_os_error(&io.to_string())
            ),
        },
        sqlx::Error::Tls(t) => format!("TLS with {addr} failed: {t}"),
        other => other.to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quote(v: &str) -> String {
    let cut: String = v.chars().take(QUOTE_CHARS).collect();
    format!("{cut:?}")
}

/// Text of one column of one row (`None` for NULL); every value of the simple protocol is text.
fn column_text<R: Row>(row: &R, i: usize) -> Option<String>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get_unchecked::<Option<String>, usize>(i)
        .ok()
        .flatten()
}

/// What the query answered.
struct Answer {
    rows: usize,
    first: Vec<(String, Option<String>)>,
    too_many: bool,
}

fn collect<R: Row>(rows: &[R], max: usize) -> Answer
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let first = rows
        .first()
        .map(|r| {
            r.columns()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name().to_string(), column_text(r, i)))
                .collect()
        })
        .unwrap_or_default();
    Answer {
        rows: rows.len().min(max),
        first,
        too_many: rows.len() > max,
    }
}

/// Runs one SQL probe bounded by `timeout`. (Statements go through `Executor` methods of the
/// connection: sqlx's `RawSql::execute` futures cannot be proven `Send` for the scheduler.)
pub async fn probe(dialect: Dialect, spec: &SqlSpec, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut values = Vec::new();
    let (status, reason) = match dialect {
        Dialect::Postgres => postgres(spec, timeout, deadline, &mut values).await,
        Dialect::Mysql => mysql(spec, timeout, deadline, &mut values).await,
    };
    let mut out = Outcome::new(status, reason);
    out.values = values;
    out.duration_us = started.elapsed().as_micros() as u64;
    out
}

fn conditions(spec: &SqlSpec) -> Result<Vec<(Status, RowCondition)>, String> {
    let mut out = Vec::new();
    for (status, list) in [
        (Status::Crit, &spec.conditions),
        (Status::Warn, &spec.warn_conditions),
    ] {
        for c in list {
            out.push((status, RowCondition::parse(c)?));
        }
    }
    Ok(out)
}

/// Judges the answer and the grant findings into a status and reason.
fn verdict(
    spec: &SqlSpec,
    answer: &Answer,
    missing_grants: Vec<String>,
    values: &mut Vec<Value>,
) -> (Status, String) {
    values.push(Value::new("rows", answer.rows as f64));
    for (name, v) in answer.first.iter().take(MAX_COLUMN_VALUES) {
        if let Some(n) = v.as_deref().and_then(|t| t.trim().parse::<f64>().ok()) {
            if name != "rows" && n.is_finite() {
                values.push(Value::new(name.clone(), n));
            }
        }
    }
    let mut fails: Vec<(Status, String)> = Vec::new();
    if answer.too_many {
        fails.push((
            Status::Crit,
            format!("more than {} rows (max_rows)", spec.max_rows),
        ));
    }
    match conditions(spec) {
        Err(e) => fails.push((Status::Unknown, format!("invalid condition: {e}"))),
        Ok(conds) => {
            for (status, c) in conds {
                if let Err(e) = c.eval(answer.rows, &answer.first) {
                    fails.push((status, e));
                }
            }
        }
    }
    for g in missing_grants {
        fails.push((Status::Crit, g));
    }
    if fails.is_empty() {
        let shown = answer
            .first
            .first()
            .and_then(|(_, v)| v.as_deref())
            .map(|v| format!(": {}", quote(v)))
            .unwrap_or_default();
        let s = if answer.rows == 1 { "" } else { "s" };
        return (Status::Ok, format!("{} row{s}{shown}", answer.rows));
    }
    fails.sort_by_key(|f| std::cmp::Reverse(f.0.rank()));
    let status = fails[0].0;
    (
        status,
        fails
            .into_iter()
            .map(|f| f.1)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

async fn postgres(
    spec: &SqlSpec,
    timeout: Duration,
    deadline: tokio::time::Instant,
    values: &mut Vec<Value>,
) -> (Status, String) {
    let after = fmt_duration(timeout);
    if let Err(e) = single_statement(&spec.query, Dialect::Postgres) {
        return (Status::Unknown, e);
    }
    let mut opts = PgConnectOptions::new_without_pgpass()
        .host(&spec.host)
        .port(spec.port.unwrap_or(5432))
        .username(&spec.user)
        .application_name("vitals")
        .statement_cache_capacity(0)
        .ssl_mode(match spec.tls {
            SqlTls::Disable => PgSslMode::Disable,
            SqlTls::Prefer => PgSslMode::Prefer,
            SqlTls::Require => PgSslMode::Require,
            SqlTls::VerifyCa => PgSslMode::VerifyCa,
            SqlTls::VerifyFull => PgSslMode::VerifyFull,
        });
    if let Some(p) = &spec.password {
        opts = opts.password(p);
    }
    if let Some(db) = &spec.database {
        opts = opts.database(db);
    }
    if let Some(ca) = &spec.ca_file {
        opts = opts.ssl_root_cert(ca);
    }
    let t0 = Instant::now();
    let mut conn = match timeout_at(deadline, PgConnection::connect_with(&opts)).await {
        Err(_) => return (Status::Crit, format!("timed out after {after} connecting")),
        Ok(Err(e)) => return (Status::Crit, describe(&e, spec, Dialect::Postgres)),
        Ok(Ok(c)) => c,
    };
    values.push(Value::new("connect_ms", ms(t0.elapsed())));

    let result = timeout_at(deadline, pg_session(&mut conn, spec, deadline)).await;
    let out = match result {
        Err(_) => (Status::Crit, format!("query timed out after {after}")),
        Ok(Err(e)) => (Status::Crit, describe(&e, spec, Dialect::Postgres)),
        Ok(Ok((answer, query_ms, missing))) => {
            values.push(Value::new("query_ms", query_ms));
            verdict(spec, &answer, missing, values)
        }
    };
    // Closing politely is best effort and bounded; a dropped connection is closed anyway.
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.close()).await;
    out
}

type Session = (Answer, f64, Vec<String>);

/// The query and the grant checks on an open PostgreSQL connection.
async fn pg_session(
    conn: &mut PgConnection,
    spec: &SqlSpec,
    deadline: tokio::time::Instant,
) -> Result<Session, sqlx::Error> {
    // Server-side bound too, so an abandoned query does not run on.
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .as_millis()
        .max(1);
    let begin = format!("BEGIN READ ONLY; SET LOCAL statement_timeout = {left}");
    conn.execute(sqlx::raw_sql(&begin)).await?;
    let t1 = Instant::now();
    let rows = conn.fetch_all(sqlx::raw_sql(&spec.query)).await?;
    let query_ms = ms(t1.elapsed());
    let answer = collect(&rows, spec.max_rows);
    drop(rows);
    conn.execute(sqlx::raw_sql("ROLLBACK")).await?;
    let mut missing = Vec::new();
    for (table, privileges) in &spec.grants {
        for p in privileges {
            let p = p.to_ascii_uppercase();
            let held = sqlx::query("SELECT has_table_privilege(current_user, $1, $2)")
                .bind(table)
                .bind(&p)
                .fetch_one(&mut *conn)
                .await;
            match held {
                Ok(row) => {
                    if !row.try_get::<bool, _>(0).unwrap_or(false) {
                        missing.push(format!("grant missing: {p} on {table}"));
                    }
                }
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => {
                    missing.push(format!("grant check: table {table} does not exist"));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok((answer, query_ms, missing))
}

/// `` `db`.`table` `` from `db.table` or `table`.
fn mysql_ident(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("`{}`", p.replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

/// The server's own privilege check, asked with `EXPLAIN`: `Ok(None)` held, `Ok(Some(why))`
/// missing.
async fn mysql_grant(
    conn: &mut MySqlConnection,
    table: &str,
    privilege: &str,
) -> Result<Option<String>, sqlx::Error> {
    let t = mysql_ident(table);
    let sql = match privilege {
        "SELECT" => format!("EXPLAIN SELECT 1 FROM {t} LIMIT 0"),
        "INSERT" => format!("EXPLAIN INSERT INTO {t} () VALUES ()"),
        "DELETE" => format!("EXPLAIN DELETE FROM {t} WHERE 1 = 0"),
        "UPDATE" => {
            let (schema, name) = match table.split_once('.') {
                Some((s, n)) => (Some(s), n),
                None => (None, table),
            };
            let column: Option<String> = sqlx::query_scalar(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION LIMIT 1",
            )
            .bind(schema)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
            match column {
                Some(c) => {
                    let c = format!("`{}`", c.replace('`', "``"));
                    format!("EXPLAIN UPDATE {t} SET {c} = {c} WHERE 1 = 0")
                }
                // No column visible: no privilege on the table at all (or no table).
                None => format!("EXPLAIN SELECT 1 FROM {t} LIMIT 0"),
            }
        }
        other => return Ok(Some(format!("unknown privilege {other}"))),
    };
    match conn.execute(sqlx::raw_sql(&sql)).await {
        Ok(_) if privilege == "UPDATE" && sql.starts_with("EXPLAIN SELECT") => {
            Ok(Some(format!("grant missing: UPDATE on {table}")))
        }
        Ok(_) => Ok(None),
        Err(sqlx::Error::Database(db)) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = db.message().to_string();
            // 42000 access denied (1142, 1143, 1044); 42S02 no such table (1146).
            if code == "42S02" {
                Ok(Some(format!("grant check: table {table} does not exist")))
            } else if code == "42000" && msg.contains("denied") {
                Ok(Some(format!("grant missing: {privilege} on {table}")))
            } else {
                Ok(Some(format!(
                    "grant check of {privilege} on {table} failed: {msg}"
                )))
            }
        }
        Err(e) => Err(e),
    }
}

async fn mysql(
    spec: &SqlSpec,
    timeout: Duration,
    deadline: tokio::time::Instant,
    values: &mut Vec<Value>,
) -> (Status, String) {
    let after = fmt_duration(timeout);
    if let Err(e) = single_statement(&spec.query, Dialect::Mysql) {
        return (Status::Unknown, e);
    }
    let mut opts = MySqlConnectOptions::new()
        .host(&spec.host)
        .port(spec.port.unwrap_or(3306))
        .username(&spec.user)
        .statement_cache_capacity(0)
        .ssl_mode(match spec.tls {
            SqlTls::Disable => MySqlSslMode::Disabled,
            SqlTls::Prefer => MySqlSslMode::Preferred,
            SqlTls::Require => MySqlSslMode::Required,
            SqlTls::VerifyCa => MySqlSslMode::VerifyCa,
            SqlTls::VerifyFull => MySqlSslMode::VerifyIdentity,
        });
    if let Some(p) = &spec.password {
        opts = opts.password(p);
    }
    if let Some(db) = &spec.database {
        opts = opts.database(db);
    }
    if let Some(ca) = &spec.ca_file {
        opts = opts.ssl_ca(ca);
    }
    let t0 = Instant::now();
    let mut conn = match timeout_at(deadline, MySqlConnection::connect_with(&opts)).await {
        Err(_) => return (Status::Crit, format!("timed out after {after} connecting")),
        Ok(Err(e)) => return (Status::Crit, describe(&e, spec, Dialect::Mysql)),
        Ok(Ok(c)) => c,
    };
    values.push(Value::new("connect_ms", ms(t0.elapsed())));

    let result = timeout_at(deadline, mysql_session(&mut conn, spec, deadline)).await;
    let out = match result {
        Err(_) => (Status::Crit, format!("query timed out after {after}")),
        Ok(Err(e)) => (Status::Crit, describe(&e, spec, Dialect::Mysql)),
        Ok(Ok((answer, query_ms, missing))) => {
            values.push(Value::new("query_ms", query_ms));
            verdict(spec, &answer, missing, values)
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.close()).await;
    out
}

/// The query and the grant checks on an open MariaDB/MySQL connection.
async fn mysql_session(
    conn: &mut MySqlConnection,
    spec: &SqlSpec,
    deadline: tokio::time::Instant,
) -> Result<Session, sqlx::Error> {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    // MariaDB's and MySQL's own statement limits; the one the server lacks errs, harmlessly.
    let _ = conn
        .execute(sqlx::raw_sql(&format!(
            "SET SESSION max_statement_time = {:.3}",
            left.as_secs_f64().max(0.001)
        )))
        .await;
    let _ = conn
        .execute(sqlx::raw_sql(&format!(
            "SET SESSION max_execution_time = {}",
            left.as_millis().max(1)
        )))
        .await;
    conn.execute(sqlx::raw_sql("START TRANSACTION READ ONLY"))
        .await?;
    let t1 = Instant::now();
    let rows = conn.fetch_all(sqlx::raw_sql(&spec.query)).await?;
    let query_ms = ms(t1.elapsed());
    let answer = collect(&rows, spec.max_rows);
    drop(rows);
    conn.execute(sqlx::raw_sql("ROLLBACK")).await?;
    let mut missing = Vec::new();
    for (table, privileges) in &spec.grants {
        for p in privileges {
            let p = p.to_ascii_uppercase();
            if let Some(why) = mysql_grant(&mut *conn, table, &p).await? {
                let gone = why.contains("does not exist");
                missing.push(why);
                if gone {
                    break;
                }
            }
        }
    }
    Ok((answer, query_ms, missing))
}

impl crate::Probe for SqlSpec {
    async fn run(
        &self,
        _prober: &crate::Prober,
        kind: vitals_core::spec::ProbeKind,
        _key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        // One spec type, two registered kinds.
        let dialect = match kind {
            vitals_core::spec::ProbeKind::Mysql => Dialect::Mysql,
            _ => Dialect::Postgres,
        };
        probe(dialect, self, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_only() {
        use Dialect::{Mysql, Postgres};
        for d in [Mysql, Postgres] {
            assert!(single_statement("SELECT 1", d).is_ok());
            assert!(single_statement("SELECT 1;", d).is_ok());
            assert!(single_statement("SELECT 1 ; \n ", d).is_ok());
            assert!(single_statement("SELECT 'a;b', \"c;d\" -- x; y\n", d).is_ok());
            assert!(single_statement("SELECT 'it''s; fine' /* ; */", d).is_ok());
            assert!(single_statement("SELECT 1; DELETE FROM t", d).is_err());
            assert!(single_statement("SELECT 1; COMMIT", d).is_err());
            assert!(single_statement("  ;  ", d).is_err());
            assert!(single_statement("", d).is_err());
        }
        assert!(single_statement("SELECT `e;f`", Mysql).is_ok());
        assert!(single_statement("SELECT $q$; not a statement $q$", Postgres).is_ok());
        // MySQL reads \' as an escaped quote, PostgreSQL (standard strings) does not.
        assert!(single_statement("SELECT 'x\\'; y' ; DROP TABLE t", Mysql).is_err());
        assert!(single_statement("SELECT 'x\\'; DELETE FROM t; --'", Postgres).is_err());
        assert!(single_statement("SELECT E'x\\'; y'", Postgres).is_ok());
        // `#` is an operator and `a$b$` an identifier in PostgreSQL: neither hides a `;`.
        assert!(single_statement("SELECT 1 # 2; DELETE FROM t", Postgres).is_err());
        assert!(single_statement("SELECT a$b$; DELETE FROM t; SELECT $b$", Postgres).is_err());
        assert!(single_statement("SELECT 1 # 2; DELETE FROM t\n", Mysql).is_ok());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(mysql_ident("minlog2.logentries"), "`minlog2`.`logentries`");
        assert_eq!(mysql_ident("we`ird"), "`we``ird`");
    }
}
