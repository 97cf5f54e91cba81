//! Housekeeping: the audit log, rollups, retention deletes, job state, backups.
//!
//! Writes run in the single writer (as [`crate::writer::Command::Exec`] closures); reads and the
//! rollup scan run on read connections. Retention deletes only the merged `observations` table
//! in bounded batches: the staging table holds just the newest rows and is merged soon.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use vitals_core::Timestamp;
use vitals_store::{AuditEntry, Rollup, StoreError};

use crate::backend;

fn corrupt(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub fn audit_append(conn: &Connection, e: &AuditEntry) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit (ts, actor, action, target, params, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .and_then(|mut s| s.execute(params![e.time.0, e.actor, e.action, e.target, e.params.to_string(), e.outcome]))
        .map_err(backend)?;
    Ok(())
}

pub fn audit(
    conn: &Connection,
    since: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, ts, actor, action, target, params, outcome FROM audit WHERE ts >= ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![
            since.map_or(i64::MIN, |t| t.0),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let params: String = r.get(5).map_err(corrupt)?;
        out.push(AuditEntry {
            id: r.get(0).map_err(corrupt)?,
            time: Timestamp(r.get(1).map_err(corrupt)?),
            actor: r.get(2).map_err(corrupt)?,
            action: r.get(3).map_err(corrupt)?,
            target: r.get(4).map_err(corrupt)?,
            params: serde_json::from_str(&params)
                .map_err(|e| StoreError::Corrupt(format!("audit params: {e}")))?,
            outcome: r.get(6).map_err(corrupt)?,
        });
    }
    Ok(out)
}

/// Deletes up to `batch` alerts resolved before `before`, with their transitions.
pub fn delete_resolved_alerts(
    conn: &Connection,
    before: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM alerts WHERE state = 'resolved' \
                 AND coalesce(json_extract(doc, '$.resolved'), started) < ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![before, i64::try_from(batch).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(corrupt)?
    };
    for id in &ids {
        conn.prepare_cached("DELETE FROM alert_events WHERE alert_id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(backend)?;
        conn.prepare_cached("DELETE FROM alerts WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(backend)?;
    }
    Ok(ids.len())
}

/// Deletes up to `batch` delivered or failed notifications created before `before` (pending
/// ones are never deleted).
pub fn delete_done_notifications(
    conn: &Connection,
    before: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state <> 'pending' \
         AND state <> 'claimed' AND created < ?1 ORDER BY created LIMIT ?2)",
        params![before, i64::try_from(batch).unwrap_or(i64::MAX)],
    )
    .map_err(backend)
}

/// Moves up to `batch` audit rows older than `before` into a compressed file in `dir`
/// (`audit-<first id>-<last id>.jsonl.gz`, one JSON entry per line; written, synced and
/// renamed into place before the rows go), then deletes them. The file name is the id range,
/// so a run that failed after writing it writes the same file again.
pub fn archive_audit(
    conn: &Connection,
    before: i64,
    batch: usize,
    dir: &std::path::Path,
) -> Result<Option<(usize, std::path::PathBuf)>, StoreError> {
    use std::io::Write;
    let done: i64 = conn
        .query_row("SELECT upto FROM audit_archived", [], |r| r.get(0))
        .map_err(backend)?;
    let rows = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, ts, actor, action, target, params, outcome FROM audit \
                 WHERE id > ?1 AND ts < ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(backend)?;
        let mut rows = stmt
            .query(params![
                done,
                before,
                i64::try_from(batch).unwrap_or(i64::MAX)
            ])
            .map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            let params: String = r.get(5).map_err(corrupt)?;
            out.push(AuditEntry {
                id: r.get(0).map_err(corrupt)?,
                time: Timestamp(r.get(1).map_err(corrupt)?),
                actor: r.get(2).map_err(corrupt)?,
                action: r.get(3).map_err(corrupt)?,
                target: r.get(4).map_err(corrupt)?,
                params: serde_json::from_str(&params)
                    .map_err(|e| StoreError::Corrupt(format!("audit params: {e}")))?,
                outcome: r.get(6).map_err(corrupt)?,
            });
        }
        out
    };
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(None);
    };
    let io =
        |e: std::io::Error| StoreError::Backend(format!("audit archive in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = format!("audit-{:012}-{:012}.jsonl.gz", first.id, last.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        for e in &rows {
            let line = serde_json::to_string(e)
                .map_err(|e| StoreError::Backend(format!("audit archive: {e}")))?;
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
    conn.execute("UPDATE audit_archived SET upto = ?1", [last.id])
        .map_err(backend)?;
    conn.execute("DELETE FROM audit WHERE id <= ?1", [last.id])
        .map_err(backend)?;
    Ok(Some((rows.len(), path)))
}

/// One computed rollup row, keyed by check id.
pub struct Row {
    pub check_id: i64,
    pub period: i64,
    pub start: i64,
    pub count: i64,
    pub failures: i64,
    pub min: i64,
    pub mean: i64,
    pub max: i64,
    pub p95: i64,
}

/// Nearest rank: the smallest value that at least p % of the values do not exceed.
fn nearest_rank(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn aggregate(check_id: i64, period: i64, start: i64, durations: &mut [i64], failures: i64) -> Row {
    durations.sort_unstable();
    let n = durations.len() as i64;
    let sum: i128 = durations.iter().map(|d| i128::from(*d)).sum();
    Row {
        check_id,
        period,
        start,
        count: n,
        failures,
        min: durations.first().copied().unwrap_or(0),
        mean: if n > 0 {
            (sum / i128::from(n)) as i64
        } else {
            0
        },
        max: durations.last().copied().unwrap_or(0),
        p95: nearest_rank(durations, 95.0),
    }
}

/// Scans the raw observations of `[from, to)` check by check (one range scan each, both
/// tables) and aggregates them per `period`.
pub fn scan_rollups(
    conn: &Connection,
    period: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Row>, StoreError> {
    if period <= 0 {
        return Err(StoreError::Backend(format!("rollup period {period} ms")));
    }
    let ids: Vec<i64> = {
        let mut stmt = conn
            .prepare_cached("SELECT id FROM checks ORDER BY id")
            .map_err(backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(corrupt)?
    };
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT ts, status, duration_us FROM observations WHERE check_id = ?1 AND ts >= ?2 AND ts < ?3 \
             UNION ALL SELECT ts, status, duration_us FROM observations_recent WHERE check_id = ?1 AND ts >= ?2 AND ts < ?3",
        )
        .map_err(backend)?;
    for id in ids {
        let mut periods: HashMap<i64, (Vec<i64>, i64)> = HashMap::new();
        let mut rows = stmt.query(params![id, from, to]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let ts: i64 = r.get(0).map_err(corrupt)?;
            let status: i64 = r.get(1).map_err(corrupt)?;
            let d: i64 = r.get(2).map_err(corrupt)?;
            let p = periods.entry(ts.div_euclid(period) * period).or_default();
            p.0.push(d);
            p.1 += i64::from(status != 0);
        }
        for (start, (mut v, f)) in periods {
            out.push(aggregate(id, period, start, &mut v, f));
        }
    }
    Ok(out)
}

pub fn write_rollups(conn: &Connection, rows: &[Row]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO rollups (check_id, period, start, count, failures, min_us, mean_us, max_us, p95_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (check_id, period, start) DO UPDATE SET \
             count = excluded.count, failures = excluded.failures, min_us = excluded.min_us, \
             mean_us = excluded.mean_us, max_us = excluded.max_us, p95_us = excluded.p95_us",
        )
        .map_err(backend)?;
    for r in rows {
        stmt.execute(params![
            r.check_id, r.period, r.start, r.count, r.failures, r.min, r.mean, r.max, r.p95
        ])
        .map_err(backend)?;
    }
    Ok(())
}

pub fn rollups(
    conn: &Connection,
    asset: &str,
    check: &str,
    period: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Rollup>, StoreError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM checks WHERE asset = ?1 AND name = ?2")
        .and_then(|mut s| s.query_row([asset, check], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(id) = id else { return Ok(Vec::new()) };
    let mut stmt = conn
        .prepare_cached(
            "SELECT start, count, failures, min_us, mean_us, max_us, p95_us FROM rollups \
             WHERE check_id = ?1 AND period = ?2 AND start >= ?3 AND start < ?4 ORDER BY start",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![id, period, from, to]).map_err(backend)?;
    let mut out = Vec::new();
    let u = |v: i64| v.max(0) as u64;
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(Rollup {
            asset: asset.to_string(),
            check: check.to_string(),
            period_ms: period,
            start: Timestamp(r.get(0).map_err(corrupt)?),
            count: u(r.get(1).map_err(corrupt)?),
            failures: u(r.get(2).map_err(corrupt)?),
            min_us: u(r.get(3).map_err(corrupt)?),
            mean_us: u(r.get(4).map_err(corrupt)?),
            max_us: u(r.get(5).map_err(corrupt)?),
            p95_us: u(r.get(6).map_err(corrupt)?),
        });
    }
    Ok(out)
}

/// Deletes at most `batch` merged observations older than `before`, a check at a time.
pub fn delete_raw_before(
    conn: &Connection,
    before: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = {
        let mut stmt = conn
            .prepare_cached("SELECT id FROM checks ORDER BY id")
            .map_err(backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(corrupt)?
    };
    let mut left = batch;
    let mut deleted = 0;
    let mut stmt = conn
        .prepare_cached(
            "DELETE FROM observations WHERE check_id = ?1 AND ts IN \
             (SELECT ts FROM observations WHERE check_id = ?1 AND ts < ?2 ORDER BY ts LIMIT ?3)",
        )
        .map_err(backend)?;
    for id in ids {
        if left == 0 {
            break;
        }
        let n = stmt
            .execute(params![id, before, i64::try_from(left).unwrap_or(i64::MAX)])
            .map_err(backend)?;
        deleted += n;
        left -= n.min(left);
    }
    Ok(deleted)
}

pub fn prune(
    conn: &Connection,
    period: i64,
    before: i64,
    ids_before: i64,
) -> Result<usize, StoreError> {
    let a = conn
        .execute(
            "DELETE FROM rollups WHERE period = ?1 AND start < ?2",
            params![period, before],
        )
        .map_err(backend)?;
    let b = conn
        .execute("DELETE FROM result_ids WHERE ts < ?1", params![ids_before])
        .map_err(backend)?;
    Ok(a + b)
}

pub fn job_value(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT value FROM job_state WHERE name = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(backend)
}

pub fn set_job_value(conn: &Connection, key: &str, value: i64) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO job_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        .and_then(|mut s| s.execute(params![key, value]))
        .map_err(backend)?;
    Ok(())
}

pub fn job_run(conn: &Connection, job: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM jobs WHERE name = ?1")
        .and_then(|mut s| s.query_row([job], |r| r.get(0)).optional())
        .map_err(backend)?;
    doc.map(|d| {
        serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(format!("job {job}: {e}")))
    })
    .transpose()
}

pub fn set_job_run(
    conn: &Connection,
    job: &str,
    run: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO jobs (name, doc) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc")
        .and_then(|mut s| s.execute(params![job, run.to_string()]))
        .map_err(backend)?;
    Ok(())
}

/// `VACUUM INTO`: a consistent, compact copy from one read snapshot, while writers go on.
pub fn backup(conn: &Connection, dest: &std::path::Path) -> Result<(), StoreError> {
    if dest.exists() {
        return Err(StoreError::Backend(format!(
            "{} exists; a backup never overwrites",
            dest.display()
        )));
    }
    let dest = dest
        .to_str()
        .ok_or_else(|| StoreError::Backend(format!("{} is not a UTF-8 path", dest.display())))?;
    conn.execute("VACUUM INTO ?1", [dest])
        .map_err(|e| StoreError::Backend(format!("backup to {dest}: {e}")))?;
    Ok(())
}

/// A backup of the database file at `db` into `dest`, from a separate read-only connection, so
/// it works while a server has the database open (`vitals backup`).
pub fn backup_file(db: &std::path::Path, dest: &std::path::Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", db.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    backup(&conn, dest)
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 95.0), 95);
        assert_eq!(nearest_rank(&v, 50.0), 50);
        assert_eq!(nearest_rank(&[7], 95.0), 7);
        assert_eq!(nearest_rank(&[1, 2, 3], 95.0), 3);
    }
}
