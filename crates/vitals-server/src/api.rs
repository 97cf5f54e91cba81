//! `/api/v1/assets…`: current status from the live state, history from the store.

use crate::{AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value as Json_};
use std::collections::{BTreeMap, HashMap};
use vitals_core::{Observation, Status, Timestamp};
use vitals_scheduler::state::{AssetState, CheckState};
use vitals_store::ObservationQuery;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 10_000;

#[derive(Serialize)]
struct AssetSummary<'a> {
    id: &'a str,
    name: &'a str,
    groups: &'a [String],
    labels: &'a BTreeMap<String, String>,
    parents: &'a [String],
    /// Worst status of its checks; `null` before any check ran.
    status: Option<Status>,
    checks: usize,
}

fn status_filter(q: &HashMap<String, String>) -> Result<Option<Option<Status>>, AppError> {
    match q.get("status").map(String::as_str) {
        None | Some("") => Ok(None),
        Some("pending") => Ok(Some(None)),
        Some(s) => Status::parse(s).map(|s| Some(Some(s))).ok_or_else(|| {
            AppError::bad_request(
                "status",
                format!("unknown status {s:?} (ok, warn, crit, unknown, pending)"),
            )
        }),
    }
}

/// `GET /api/v1/assets?group=&status=&q=` — every asset, worst first, with counts per status.
pub async fn list_assets(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Json_>, AppError> {
    let want_status = status_filter(&q)?;
    let group = q.get("group").filter(|g| !g.is_empty());
    let text = q
        .get("q")
        .map(|s| s.to_lowercase())
        .filter(|s| !s.is_empty());
    let state = app.state().read();
    let mut counts: BTreeMap<&str, usize> = [
        ("ok", 0),
        ("warn", 0),
        ("crit", 0),
        ("unknown", 0),
        ("pending", 0),
    ]
    .into_iter()
    .collect();
    let mut rows: Vec<AssetSummary> = Vec::new();
    for a in state.values() {
        let status = a.status();
        *counts
            .entry(status.map_or("pending", Status::as_str))
            .or_default() += 1;
        if let Some(g) = group {
            if !a.record.groups.contains(g) {
                continue;
            }
        }
        if let Some(ws) = want_status {
            if ws != status {
                continue;
            }
        }
        if let Some(t) = &text {
            if !a.record.id.to_lowercase().contains(t) && !a.record.name.to_lowercase().contains(t)
            {
                continue;
            }
        }
        rows.push(AssetSummary {
            id: &a.record.id,
            name: &a.record.name,
            groups: &a.record.groups,
            labels: &a.record.labels,
            parents: &a.record.parents,
            status,
            checks: a.checks.len(),
        });
    }
    // Worst first; pending (never run) after crit and warn but before ok; then by id.
    let rank = |s: Option<Status>| match s {
        Some(s) => i32::from(s.rank()) * 2,
        None => 1,
    };
    rows.sort_by(|x, y| rank(y.status).cmp(&rank(x.status)).then(x.id.cmp(y.id)));
    Ok(Json(json!({ "counts": counts, "assets": rows })))
}

fn check_json(name: &str, c: &CheckState) -> Json_ {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("type".into(), json!(c.kind));
    m.insert("configured".into(), json!(c.configured));
    match &c.latest {
        Some(o) => {
            m.insert("status".into(), json!(o.status));
            m.insert("score".into(), json!(o.score));
            m.insert("time".into(), json!(o.time.to_rfc3339()));
            m.insert("duration_ms".into(), json!(o.duration_us as f64 / 1000.0));
            m.insert("reason".into(), json!(o.reason));
            m.insert("values".into(), values_json(o));
            m.insert("components".into(), json!(o.components));
        }
        None => {
            m.insert("status".into(), Json_::Null);
        }
    }
    Json_::Object(m)
}

fn values_json(o: &Observation) -> Json_ {
    Json_::Object(
        o.values
            .iter()
            .map(|v| (v.name.clone(), json!(v.value)))
            .collect(),
    )
}

fn asset_json(a: &AssetState) -> Json_ {
    json!({
        "id": a.record.id,
        "name": a.record.name,
        "groups": a.record.groups,
        "labels": a.record.labels,
        "parents": a.record.parents,
        "metadata": a.record.metadata,
        "status": a.status(),
        "checks": a.checks.iter().map(|(n, c)| check_json(n, c)).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/assets/{id}` — the asset and the current status of every check, with components.
pub async fn get_asset(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Json_>, AppError> {
    let a = app
        .state()
        .asset(&id)
        .ok_or_else(|| AppError::not_found(format!("unknown asset {id:?}")))?;
    Ok(Json(asset_json(&a)))
}

fn parse_time(field: &str, v: &str) -> Result<Timestamp, AppError> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Timestamp(ms));
    }
    Timestamp::parse(v).ok_or_else(|| {
        AppError::bad_request(
            field,
            format!(
                "{v:?} is not a time (RFC 3339, e.g. 2026-01-31T12:00:00Z, or epoch milliseconds)"
            ),
        )
    })
}

/// `GET /api/v1/assets/{id}/observations?check=&from=&to=&limit=` — newest first.
pub async fn observations(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Json_>, AppError> {
    let from = q
        .get("from")
        .filter(|v| !v.is_empty())
        .map(|v| parse_time("from", v))
        .transpose()?;
    let to = q
        .get("to")
        .filter(|v| !v.is_empty())
        .map(|v| parse_time("to", v))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(AppError::bad_request("from", "from is after to"));
        }
    }
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AppError::bad_request(
                    "limit",
                    format!("{v:?} is not a number from 1 to {MAX_LIMIT}"),
                ))
            }
        },
    };
    let check = q.get("check").filter(|v| !v.is_empty()).cloned();
    let Some(asset) = app.state().asset(&id) else {
        return Err(AppError::not_found(format!("unknown asset {id:?}")));
    };
    if let Some(c) = &check {
        if !asset.checks.contains_key(c) {
            return Err(AppError {
                field: Some("check".into()),
                ..AppError::not_found(format!("asset {id:?} has no check {c:?}"))
            });
        }
    }
    let rows = app
        .store()
        .observations(&ObservationQuery {
            asset: id.clone(),
            check,
            from,
            to,
            limit,
        })
        .await
        .map_err(AppError::unavailable)?;
    let list: Vec<Json_> = rows
        .iter()
        .map(|o| {
            json!({
                "check": o.check,
                "time": o.time.to_rfc3339(),
                "status": o.status,
                "score": o.score,
                "duration_ms": o.duration_us as f64 / 1000.0,
                "reason": o.reason,
                "values": values_json(o),
                "components": o.components,
            })
        })
        .collect();
    Ok(Json(json!({ "asset": id, "observations": list })))
}
