//! Fleet data (AKTIN broker nodes): daily samples, import errors, resources and their change
//! log, in their own tables (migration 6). Writes run in the writer's transaction; reads on
//! the read pool. Nothing here panics on data read back: a bad row is `Corrupt`, naming it.

use rusqlite::types::FromSql;
use rusqlite::{params, Connection, Row};
use std::collections::BTreeMap;
use vitals_core::Timestamp;
use vitals_store::{
    FleetCounts, FleetError, FleetResource, FleetSample, FleetWrite, ResourceChange, StoreError,
};

use crate::backend;

fn col<T: FromSql>(row: &Row<'_>, idx: usize, what: &str) -> Result<T, StoreError> {
    row.get(idx)
        .map_err(|e| StoreError::Corrupt(format!("fleet column {what}: {e}")))
}

/// Applies one collection's write inside the open transaction.
pub fn write(conn: &Connection, w: &FleetWrite) -> Result<(), StoreError> {
    if !w.samples.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO fleet_samples (node, day, polled, last_contact, \
                 last_start, last_write, last_reject, imported, updated, invalid, failed, \
                 d_imported, d_updated, d_invalid, d_failed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )
            .map_err(backend)?;
        for s in &w.samples {
            let d = s.daily;
            stmt.execute(params![
                s.node,
                s.day,
                s.polled.0,
                s.last_contact.map(|t| t.0),
                s.last_start.0,
                s.last_write.map(|t| t.0),
                s.last_reject.map(|t| t.0),
                s.imported,
                s.updated,
                s.invalid,
                s.failed,
                d.map(|d| d.imported),
                d.map(|d| d.updated),
                d.map(|d| d.invalid),
                d.map(|d| d.failed),
            ])
            .map_err(backend)?;
        }
    }
    if !w.errors.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO fleet_errors (node, year, content, ts, repeats) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend)?;
        for e in &w.errors {
            stmt.execute(params![e.node, e.year, e.content, e.time.0, e.repeats])
                .map_err(backend)?;
        }
    }
    if !w.resources.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO fleet_resources (node, name, fetched, doc) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?;
        for r in &w.resources {
            let doc = serde_json::to_string(&r.entries).map_err(|e| {
                StoreError::Backend(format!("resource {} of node {}: {e}", r.name, r.node))
            })?;
            stmt.execute(params![r.node, r.name, r.fetched.0, doc])
                .map_err(backend)?;
        }
    }
    if !w.changes.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO fleet_changes (node, ts, resource, key, old, new) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(backend)?;
        for c in &w.changes {
            stmt.execute(params![c.node, c.time.0, c.resource, c.key, c.old, c.new])
                .map_err(backend)?;
        }
    }
    Ok(())
}

fn sample(row: &Row<'_>) -> Result<FleetSample, StoreError> {
    let ts = |idx: usize, what: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(col::<Option<i64>>(row, idx, what)?.map(Timestamp))
    };
    let daily = match (
        col::<Option<i64>>(row, 11, "d_imported")?,
        col::<Option<i64>>(row, 12, "d_updated")?,
        col::<Option<i64>>(row, 13, "d_invalid")?,
        col::<Option<i64>>(row, 14, "d_failed")?,
    ) {
        (Some(imported), Some(updated), Some(invalid), Some(failed)) => Some(FleetCounts {
            imported,
            updated,
            invalid,
            failed,
        }),
        _ => None,
    };
    Ok(FleetSample {
        node: col(row, 0, "node")?,
        day: col(row, 1, "day")?,
        polled: Timestamp(col(row, 2, "polled")?),
        last_contact: ts(3, "last_contact")?,
        last_start: Timestamp(col(row, 4, "last_start")?),
        last_write: ts(5, "last_write")?,
        last_reject: ts(6, "last_reject")?,
        imported: col(row, 7, "imported")?,
        updated: col(row, 8, "updated")?,
        invalid: col(row, 9, "invalid")?,
        failed: col(row, 10, "failed")?,
        daily,
    })
}

const SAMPLE_COLUMNS: &str = "SELECT node, day, polled, last_contact, last_start, last_write, \
     last_reject, imported, updated, invalid, failed, d_imported, d_updated, d_invalid, d_failed \
     FROM fleet_samples";

pub fn samples(
    conn: &Connection,
    node: Option<&str>,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<FleetSample>, StoreError> {
    let mut out = Vec::new();
    let mut collect = |mut rows: rusqlite::Rows<'_>| -> Result<(), StoreError> {
        while let Some(row) = rows.next().map_err(backend)? {
            out.push(sample(row)?);
        }
        Ok(())
    };
    match node {
        Some(n) => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{SAMPLE_COLUMNS} WHERE node = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day"
                ))
                .map_err(backend)?;
            collect(stmt.query(params![n, from_day, to_day]).map_err(backend)?)?;
        }
        None => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{SAMPLE_COLUMNS} WHERE day BETWEEN ?1 AND ?2 ORDER BY node, day"
                ))
                .map_err(backend)?;
            collect(stmt.query(params![from_day, to_day]).map_err(backend)?)?;
        }
    }
    Ok(out)
}

pub fn errors(
    conn: &Connection,
    node: Option<&str>,
    year: Option<i32>,
    limit: usize,
) -> Result<Vec<FleetError>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT node, year, content, ts, repeats FROM fleet_errors \
             WHERE (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR year = ?2) \
             ORDER BY ts DESC, node, content LIMIT ?3",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![node, year, limit]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(FleetError {
            node: col(row, 0, "node")?,
            year: col(row, 1, "year")?,
            content: col(row, 2, "content")?,
            time: Timestamp(col(row, 3, "ts")?),
            repeats: col(row, 4, "repeats")?,
        });
    }
    Ok(out)
}

pub fn resources(conn: &Connection, node: Option<&str>) -> Result<Vec<FleetResource>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT node, name, fetched, doc FROM fleet_resources \
             WHERE (?1 IS NULL OR node = ?1) ORDER BY node, name",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![node]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let node: String = col(row, 0, "node")?;
        let name: String = col(row, 1, "name")?;
        let doc: String = col(row, 3, "doc")?;
        let entries: BTreeMap<String, String> = serde_json::from_str(&doc).map_err(|e| {
            StoreError::Corrupt(format!("resource {name} of fleet node {node}: {e}"))
        })?;
        out.push(FleetResource {
            fetched: Timestamp(col(row, 2, "fetched")?),
            node,
            name,
            entries,
        });
    }
    Ok(out)
}

pub fn changes(
    conn: &Connection,
    node: &str,
    limit: usize,
) -> Result<Vec<ResourceChange>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT node, ts, resource, key, old, new FROM fleet_changes \
             WHERE node = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![node, limit]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(ResourceChange {
            node: col(row, 0, "node")?,
            time: Timestamp(col(row, 1, "ts")?),
            resource: col(row, 2, "resource")?,
            key: col(row, 3, "key")?,
            old: col(row, 4, "old")?,
            new: col(row, 5, "new")?,
        });
    }
    Ok(out)
}

pub fn years(conn: &Connection) -> Result<Vec<(String, i32)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT node, CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) \
             FROM fleet_samples \
             UNION SELECT node, year FROM fleet_errors ORDER BY 1, 2",
        )
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push((col(row, 0, "node")?, col(row, 1, "year")?));
    }
    Ok(out)
}
