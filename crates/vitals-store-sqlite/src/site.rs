//! What the UI's history figures and status pages need: observation counts per period of
//! every check (rollups where they exist, raw observations after them), each check's newest
//! results, and the notices of status pages.

use rusqlite::{params, Connection, OptionalExtension};
use vitals_core::{Status, Timestamp};
use vitals_store::{Notice, PeriodCount, RecentResults, StoreError};

use crate::backend;

fn corrupt(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn checks(conn: &Connection) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, asset, name FROM checks ORDER BY id")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(corrupt)
}

/// Counts per `period` starting in `[from, to)`: the check's rollups of that period, then the
/// raw observations after the last of them (one range scan per check and table).
pub fn period_counts(
    conn: &Connection,
    period: i64,
    from: i64,
    to: i64,
) -> Result<Vec<PeriodCount>, StoreError> {
    if period <= 0 {
        return Err(StoreError::Backend(format!("period {period} ms")));
    }
    let mut out = Vec::new();
    let mut rollups = conn
        .prepare_cached(
            "SELECT start, count, failures FROM rollups \
             WHERE check_id = ?1 AND period = ?2 AND start >= ?3 AND start < ?4 ORDER BY start",
        )
        .map_err(backend)?;
    // Both tables, as every read of observations must (see schema.rs).
    let mut raw = conn
        .prepare_cached(
            "SELECT (ts / ?4) * ?4 AS p, count(*), sum(status <> 0) FROM ( \
             SELECT ts, status FROM observations WHERE check_id = ?1 AND ts >= ?2 AND ts < ?3 \
             UNION ALL SELECT ts, status FROM observations_recent WHERE check_id = ?1 AND ts >= ?2 AND ts < ?3) \
             GROUP BY p ORDER BY p",
        )
        .map_err(backend)?;
    for (id, asset, check) in checks(conn)? {
        let mut covered = from;
        let mut rows = rollups
            .query(params![id, period, from, to])
            .map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let start: i64 = r.get(0).map_err(corrupt)?;
            let count: i64 = r.get(1).map_err(corrupt)?;
            let failures: i64 = r.get(2).map_err(corrupt)?;
            covered = covered.max(start.saturating_add(period));
            out.push(PeriodCount {
                asset: asset.clone(),
                check: check.clone(),
                start: Timestamp(start),
                count: count.max(0) as u64,
                failures: failures.max(0) as u64,
            });
        }
        let mut rows = raw
            .query(params![id, covered, to, period])
            .map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let start: i64 = r.get(0).map_err(corrupt)?;
            let count: i64 = r.get(1).map_err(corrupt)?;
            let failures: i64 = r.get(2).map_err(corrupt)?;
            out.push(PeriodCount {
                asset: asset.clone(),
                check: check.clone(),
                start: Timestamp(start),
                count: count.max(0) as u64,
                failures: failures.max(0) as u64,
            });
        }
    }
    Ok(out)
}

/// The newest `limit` results of every check that has any, newest first.
pub fn recent_results(conn: &Connection, limit: usize) -> Result<Vec<RecentResults>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT ts, status FROM ( \
             SELECT ts, status FROM (SELECT ts, status FROM observations WHERE check_id = ?1 ORDER BY ts DESC LIMIT ?2) \
             UNION ALL SELECT ts, status FROM (SELECT ts, status FROM observations_recent WHERE check_id = ?1 ORDER BY ts DESC LIMIT ?2)) \
             ORDER BY ts DESC LIMIT ?2",
        )
        .map_err(backend)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for (id, asset, check) in checks(conn)? {
        let mut results = Vec::new();
        let mut rows = stmt.query(params![id, limit]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let ts: i64 = r.get(0).map_err(corrupt)?;
            let code: i64 = r.get(1).map_err(corrupt)?;
            let status = u8::try_from(code)
                .ok()
                .filter(|c| *c <= 3)
                .map(Status::from_code)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("check {id}: status code {code} at {ts}"))
                })?;
            results.push((Timestamp(ts), status));
        }
        if !results.is_empty() {
            out.push(RecentResults {
                asset,
                check,
                results,
            });
        }
    }
    Ok(out)
}

fn notice_from(doc: &str, id: i64, ended: Option<i64>) -> Result<Notice, StoreError> {
    let mut n: Notice =
        serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("notice {id}: {e}")))?;
    n.id = id;
    n.ended = ended.map(Timestamp);
    Ok(n)
}

/// Inserts a notice; keeps the newest `keep` of its page (older ended ones go). The new id is
/// put in `id_out`.
pub fn notice_add(
    conn: &Connection,
    n: &Notice,
    keep: usize,
    id_out: &std::sync::atomic::AtomicI64,
) -> Result<(), StoreError> {
    let doc = serde_json::to_string(n).map_err(backend)?;
    conn.prepare_cached(
        "INSERT INTO notices (page, created, ended, doc) VALUES (?1, ?2, NULL, ?3)",
    )
    .and_then(|mut s| s.execute(params![n.page, n.created.0, doc]))
    .map_err(backend)?;
    id_out.store(
        conn.last_insert_rowid(),
        std::sync::atomic::Ordering::Release,
    );
    conn.prepare_cached(
        "DELETE FROM notices WHERE page = ?1 AND ended IS NOT NULL AND id NOT IN \
         (SELECT id FROM notices WHERE page = ?1 ORDER BY id DESC LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![n.page, i64::try_from(keep).unwrap_or(i64::MAX)]))
    .map_err(backend)?;
    Ok(())
}

/// Marks an open notice ended at `at` (an ended one keeps its time).
pub fn notice_end(conn: &Connection, page: &str, id: i64, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE notices SET ended = ?3 WHERE id = ?1 AND page = ?2 AND ended IS NULL",
    )
    .and_then(|mut s| s.execute(params![id, page, at]))
    .map_err(backend)?;
    Ok(())
}

pub fn notice(conn: &Connection, page: &str, id: i64) -> Result<Option<Notice>, StoreError> {
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached("SELECT doc, ended FROM notices WHERE id = ?1 AND page = ?2")
        .and_then(|mut s| {
            s.query_row(params![id, page], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(backend)?;
    row.map(|(doc, ended)| notice_from(&doc, id, ended))
        .transpose()
}

/// Notices of a page, newest first.
pub fn notices(conn: &Connection, page: &str, limit: usize) -> Result<Vec<Notice>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, doc, ended FROM notices WHERE page = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![page, i64::try_from(limit).unwrap_or(i64::MAX)])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let id: i64 = r.get(0).map_err(corrupt)?;
        let doc: String = r.get(1).map_err(corrupt)?;
        let ended: Option<i64> = r.get(2).map_err(corrupt)?;
        out.push(notice_from(&doc, id, ended)?);
    }
    Ok(out)
}
