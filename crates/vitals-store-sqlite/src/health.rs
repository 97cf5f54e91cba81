//! Health state, severity and idempotency keys: written by the writer inside the same
//! transaction as the observations that caused them, read back for a warm start.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use vitals_core::{Status, Timestamp};
use vitals_store::{HealthChange, HealthRow, HealthUpdate, Scored, StoreError};

use crate::backend;

/// Applies health changes in order (inside the writer's open transaction).
pub fn apply(conn: &Connection, updates: &[HealthUpdate]) -> Result<(), StoreError> {
    for u in updates {
        let a = u.asset.as_str();
        match &u.change {
            HealthChange::State { group, test, value } => conn
                .prepare_cached(
                    "INSERT INTO health_state (asset, grp, test, score, updated) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (asset, grp, test) DO UPDATE SET score = excluded.score, updated = excluded.updated",
                )
                .and_then(|mut s| s.execute(params![a, group, test, value.score, value.updated.0])),
            HealthChange::Severity { group, value } => conn
                .prepare_cached(
                    "INSERT INTO health_severity (asset, grp, score, updated) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (asset, grp) DO UPDATE SET score = excluded.score, updated = excluded.updated",
                )
                .and_then(|mut s| s.execute(params![a, group, value.score, value.updated.0])),
            HealthChange::DeleteState { group, test: Some(t) } => conn
                .prepare_cached("DELETE FROM health_state WHERE asset = ?1 AND grp = ?2 AND test = ?3")
                .and_then(|mut s| s.execute(params![a, group, t])),
            HealthChange::DeleteState { group, test: None } => conn
                .prepare_cached("DELETE FROM health_state WHERE asset = ?1 AND grp = ?2")
                .and_then(|mut s| s.execute(params![a, group])),
            HealthChange::DeleteSeverity { group } => conn
                .prepare_cached("DELETE FROM health_severity WHERE asset = ?1 AND grp = ?2")
                .and_then(|mut s| s.execute(params![a, group])),
            HealthChange::DeleteAll => conn
                .prepare_cached("DELETE FROM health_state WHERE asset = ?1")
                .and_then(|mut s| s.execute([a]))
                .and_then(|_| {
                    conn.prepare_cached("DELETE FROM health_severity WHERE asset = ?1")
                        .and_then(|mut s| s.execute([a]))
                }),
        }
        .map_err(backend)?;
    }
    Ok(())
}

/// Remembers idempotency keys (a key already there keeps its first time).
pub fn remember_ids(conn: &Connection, ids: &[String]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO result_ids (id, ts) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )
        .map_err(backend)?;
    for id in ids {
        stmt.execute(params![id, now]).map_err(backend)?;
    }
    Ok(())
}

pub fn seen_ids(conn: &Connection, ids: &[String]) -> Result<HashSet<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM result_ids WHERE id = ?1")
        .map_err(backend)?;
    let mut out = HashSet::new();
    for id in ids {
        let hit: Option<i64> = stmt
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if hit.is_some() {
            out.insert(id.clone());
        }
    }
    Ok(out)
}

pub fn rows(conn: &Connection) -> Result<Vec<HealthRow>, StoreError> {
    let mut out = Vec::new();
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(format!("health row: {e}"));
    let mut stmt = conn
        .prepare_cached(
            "SELECT asset, grp, test, score, updated FROM health_state ORDER BY asset, grp, test",
        )
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(HealthRow {
            asset: r.get(0).map_err(corrupt)?,
            group: r.get(1).map_err(corrupt)?,
            test: Some(r.get(2).map_err(corrupt)?),
            value: Scored {
                score: r.get(3).map_err(corrupt)?,
                updated: Timestamp(r.get(4).map_err(corrupt)?),
            },
        });
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT asset, grp, score, updated FROM health_severity ORDER BY asset, grp",
        )
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(HealthRow {
            asset: r.get(0).map_err(corrupt)?,
            group: r.get(1).map_err(corrupt)?,
            test: None,
            value: Scored {
                score: r.get(2).map_err(corrupt)?,
                updated: Timestamp(r.get(3).map_err(corrupt)?),
            },
        });
    }
    Ok(out)
}

/// Newest scores first; a NULL score is the status' default score. Reads the main and the
/// staging observation table (inside the read pool's snapshot).
pub fn recent_scores(
    conn: &Connection,
    asset: &str,
    check: &str,
    limit: usize,
) -> Result<Vec<i64>, StoreError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM checks WHERE asset = ?1 AND name = ?2")
        .and_then(|mut s| s.query_row([asset, check], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(id) = id else { return Ok(Vec::new()) };
    let mut scored: Vec<(i64, i64)> = Vec::new();
    for table in ["observations", "observations_recent"] {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT ts, status, score FROM {table} WHERE check_id = ?1 ORDER BY ts DESC LIMIT ?2"
            ))
            .map_err(backend)?;
        let mut rows = stmt
            .query(params![id, i64::try_from(limit).unwrap_or(i64::MAX)])
            .map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let ts: i64 = r
                .get(0)
                .map_err(|e| StoreError::Corrupt(format!("ts: {e}")))?;
            let code: i64 = r
                .get(1)
                .map_err(|e| StoreError::Corrupt(format!("status: {e}")))?;
            let score: Option<i64> = r
                .get(2)
                .map_err(|e| StoreError::Corrupt(format!("score: {e}")))?;
            let status = match u8::try_from(code) {
                Ok(c) if c <= 3 => Status::from_code(c),
                _ => return Err(StoreError::Corrupt(format!("unknown status code {code}"))),
            };
            scored.push((ts, score.unwrap_or_else(|| status.default_score())));
        }
    }
    scored.sort_by_key(|(ts, _)| std::cmp::Reverse(*ts));
    scored.truncate(limit);
    Ok(scored.into_iter().map(|(_, score)| score).collect())
}
