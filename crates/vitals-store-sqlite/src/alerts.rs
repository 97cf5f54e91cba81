//! Alerts, their transitions, the notification outbox and silences. Whole records are kept as
//! JSON next to the few columns that queries filter on; they are small and few compared to
//! observations.

use rusqlite::{params, Connection, OptionalExtension, Row};
use vitals_core::alert::{Alert, AlertState, Silence, Transition};
use vitals_core::Timestamp;
use vitals_store::{AlertQuery, CommitBatch, OutboxItem, OutboxState, OutboxUpdate, StoreError};

use crate::backend;

fn json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("{what}: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn corrupt(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The alert part of a commit batch (inside the writer's transaction).
pub fn write(conn: &Connection, b: &CommitBatch) -> Result<(), StoreError> {
    for a in &b.alerts {
        conn.prepare_cached(
            "INSERT INTO alerts (id, key, rule, asset, state, started, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, doc = excluded.doc",
        )
        .and_then(|mut s| {
            s.execute(params![
                a.id,
                a.key,
                a.rule,
                a.asset.as_deref().or(a.group.as_deref()),
                a.state.as_str(),
                a.started.0,
                json("alert", a).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map_err(backend)?;
    }
    for (id, t) in &b.alert_events {
        conn.prepare_cached(
            "INSERT INTO alert_events (alert_id, seq, doc) VALUES \
             (?1, (SELECT coalesce(max(seq), 0) + 1 FROM alert_events WHERE alert_id = ?1), ?2)",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                json("transition", t)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map_err(backend)?;
    }
    for o in &b.outbox {
        let alert_id = o.notification.alerts.first().map_or(0, |a| a.alert_id);
        conn.prepare_cached(
            "INSERT INTO outbox (id, notifier, group_key, alert_id, created, not_before, state, attempts, \
             next_attempt, last_error, recipients, detail, sent, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                o.id,
                o.notifier,
                o.group_key,
                alert_id,
                o.notification.created.0,
                o.not_before.0,
                o.state.as_str(),
                o.attempts,
                o.next_attempt.0,
                o.last_error,
                json("recipients", &o.recipients).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                o.detail,
                o.sent.map(|t| t.0),
                json("notification", &o.notification).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map_err(backend)?;
    }
    for s in &b.silences {
        conn.prepare_cached(
            "INSERT INTO silences (id, ends, doc) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET ends = excluded.ends, doc = excluded.doc",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.id,
                s.ends.0,
                json("silence", s)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map_err(backend)?;
    }
    Ok(())
}

/// Applies the outcomes of items `owner` holds; returns how many it still held.
pub fn outbox_update(
    conn: &Connection,
    owner: &str,
    updates: &[OutboxUpdate],
) -> Result<usize, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, last_error = ?5, \
             recipients = ?6, detail = ?7, sent = ?8, claimed_by = NULL, claimed_until = NULL \
             WHERE id = ?1 AND state = 'claimed' AND claimed_by = ?9",
        )
        .map_err(backend)?;
    let mut applied = 0;
    for u in updates {
        if u.state == OutboxState::Claimed {
            return Err(StoreError::Backend(format!(
                "outbox item {}: an update cannot claim (claim with outbox_claim)",
                u.id
            )));
        }
        applied += stmt
            .execute(params![
                u.id,
                u.state.as_str(),
                u.attempts,
                u.next_attempt.0,
                u.last_error,
                json("recipients", &u.recipients)?,
                u.detail,
                u.sent.map(|t| t.0),
                owner
            ])
            .map_err(backend)?;
    }
    Ok(applied)
}

fn alerts_from(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Alert>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(p).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let doc: String = r.get(0).map_err(corrupt)?;
        out.push(parse("alert", &doc)?);
    }
    Ok(out)
}

pub fn open(conn: &Connection) -> Result<Vec<Alert>, StoreError> {
    alerts_from(
        conn,
        "SELECT doc FROM alerts WHERE state <> 'resolved' ORDER BY id",
        [],
    )
}

pub fn list(conn: &Connection, q: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
    let limit = i64::try_from(q.limit.max(1)).unwrap_or(i64::MAX);
    let states: Vec<&str> = q
        .states
        .as_ref()
        .map(|s| s.iter().map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let all = states.is_empty();
    let pick = |st: AlertState| all || states.contains(&st.as_str());
    // Few states: filter in SQL by a fixed set of flags rather than building SQL text.
    let sql = "SELECT doc FROM alerts WHERE (?1 IS NULL OR asset = ?1) AND \
               ((state = 'pending' AND ?2) OR (state = 'firing' AND ?3) OR \
                (state = 'acknowledged' AND ?4) OR (state = 'resolved' AND ?5)) \
               ORDER BY id DESC LIMIT ?6";
    alerts_from(
        conn,
        sql,
        params![
            q.asset,
            pick(AlertState::Pending),
            pick(AlertState::Firing),
            pick(AlertState::Acknowledged),
            pick(AlertState::Resolved),
            limit
        ],
    )
}

pub fn one(conn: &Connection, id: i64) -> Result<Option<(Alert, Vec<Transition>)>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM alerts WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(doc) = doc else { return Ok(None) };
    let alert: Alert = parse("alert", &doc)?;
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM alert_events WHERE alert_id = ?1 ORDER BY seq")
        .map_err(backend)?;
    let mut rows = stmt.query([id]).map_err(backend)?;
    let mut events = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let d: String = r.get(0).map_err(corrupt)?;
        events.push(parse("transition", &d)?);
    }
    Ok(Some((alert, events)))
}

pub fn max_ids(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let a: i64 = conn
        .query_row("SELECT coalesce(max(id), 0) FROM alerts", [], |r| r.get(0))
        .map_err(backend)?;
    let s: i64 = conn
        .query_row("SELECT coalesce(max(id), 0) FROM silences", [], |r| {
            r.get(0)
        })
        .map_err(backend)?;
    Ok((a, s))
}

pub fn silences(conn: &Connection, since: Timestamp) -> Result<Vec<Silence>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM silences WHERE ends >= ?1 ORDER BY id")
        .map_err(backend)?;
    let mut rows = stmt.query([since.0]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let d: String = r.get(0).map_err(corrupt)?;
        out.push(parse("silence", &d)?);
    }
    Ok(out)
}

const OUTBOX_COLUMNS: &str =
    "SELECT id, notifier, group_key, not_before, state, attempts, next_attempt, last_error, recipients, detail, sent, doc FROM outbox";

fn outbox_row(r: &Row<'_>) -> Result<OutboxItem, StoreError> {
    let recipients: String = r.get(8).map_err(corrupt)?;
    let doc: String = r.get(11).map_err(corrupt)?;
    Ok(OutboxItem {
        id: r.get(0).map_err(corrupt)?,
        notifier: r.get(1).map_err(corrupt)?,
        group_key: r.get(2).map_err(corrupt)?,
        not_before: Timestamp(r.get(3).map_err(corrupt)?),
        state: {
            let s: String = r.get(4).map_err(corrupt)?;
            OutboxState::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox state {s:?}")))?
        },
        attempts: r.get(5).map_err(corrupt)?,
        next_attempt: Timestamp(r.get(6).map_err(corrupt)?),
        last_error: r.get(7).map_err(corrupt)?,
        recipients: parse("recipients", &recipients)?,
        detail: r.get(9).map_err(corrupt)?,
        sent: r.get::<_, Option<i64>>(10).map_err(corrupt)?.map(Timestamp),
        notification: parse("notification", &doc)?,
    })
}

fn outbox_from(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<OutboxItem>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(p).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(outbox_row(r)?);
    }
    Ok(out)
}

/// Claims what is due (inside the writer's transaction, so no one else claims in between).
pub fn claim(
    conn: &Connection,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    // An item is due when its retry time and its grouping window have passed; once one item of
    // a (notifier, group) is due, the group's other pending items go with it, so everything
    // created within the first item's window leaves as one notification. A claim that expired
    // (its holder died or is too slow), or is the caller's own from before a restart, is taken.
    let sql = format!(
        "{OUTBOX_COLUMNS} WHERE (state = 'pending' AND next_attempt <= ?1 AND (not_before <= ?1 OR \
         (notifier, group_key) IN (SELECT notifier, group_key FROM outbox WHERE state = 'pending' \
         AND next_attempt <= ?1 AND not_before <= ?1))) \
         OR (state = 'claimed' AND (claimed_until <= ?1 OR claimed_by = ?3)) \
         ORDER BY created, id LIMIT ?2"
    );
    let mut items = outbox_from(
        conn,
        &sql,
        params![now.0, i64::try_from(limit).unwrap_or(i64::MAX), owner],
    )?;
    let mut stmt = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'claimed', claimed_by = ?2, claimed_until = ?3 WHERE id = ?1",
        )
        .map_err(backend)?;
    for it in &mut items {
        stmt.execute(params![it.id, owner, until.0])
            .map_err(backend)?;
        it.state = OutboxState::Claimed;
    }
    Ok(items)
}

pub fn next_due(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = conn
        .prepare_cached(
            "SELECT min(t) FROM (SELECT max(next_attempt, not_before) AS t FROM outbox \
             WHERE state = 'pending' UNION ALL \
             SELECT claimed_until FROM outbox WHERE state = 'claimed')",
        )
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    Ok(t.map(Timestamp))
}

/// Undelivered (pending or claimed) outbox items per notifier.
pub fn pending_by_notifier(conn: &Connection) -> Result<Vec<(String, usize)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT notifier, count(*) FROM outbox WHERE state IN ('pending', 'claimed') \
             GROUP BY notifier ORDER BY notifier",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(backend)?;
    rows.map(|r| r.map(|(n, c)| (n, c.max(0) as usize)).map_err(backend))
        .collect()
}

pub fn log(
    conn: &Connection,
    alert: Option<i64>,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let lim = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    match alert {
        Some(a) => {
            let sql = format!(
                "{OUTBOX_COLUMNS} WHERE alert_id = ?1 ORDER BY created DESC, id DESC LIMIT ?2"
            );
            outbox_from(conn, &sql, params![a, lim])
        }
        None => {
            let sql = format!("{OUTBOX_COLUMNS} ORDER BY created DESC, id DESC LIMIT ?1");
            outbox_from(conn, &sql, params![lim])
        }
    }
}
