//! `/api/v1/fleet/…`: the AKTIN broker nodes (see `docs/fleet.md`).
//!
//! - `GET /api/v1/fleet/nodes`: one entry per node: status, last contact / write, today's
//!   counts and error rate, the 7-day mean error rate, versions.
//! - `GET /api/v1/fleet/nodes/{id}`: the same plus the mapping fields, the 20 newest errors,
//!   the resources and their change log.
//! - `GET /api/v1/fleet/nodes/{id}/stats.csv?year=` and `errors.csv?year=`: the yearly files in
//!   broker-monitor's exact format.
//! - `GET /api/v1/fleet/heatmap.svg` and `.png` (`?days=42`): nodes × days of daily error rates.
//!
//! Current status comes from the live state (the `status`, `broker` and `version` checks);
//! samples, errors and resources from the store. Nothing here computes a rule of its own: the
//! rules live in `vitals-fleet`.

use crate::{AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use vitals_core::Timestamp;
use vitals_fleet::daily::{self, day_of, ErrorRate};
use vitals_fleet::{csv, heatmap, history, CHECK_BROKER, CHECK_STATUS, CHECK_VERSION, NODE_KEY};
use vitals_scheduler::state::AssetState;
use vitals_store::{FleetResource, FleetSample};

/// Newest errors on a node's page.
const NODE_ERRORS: usize = 20;
/// Resource changes on a node's page.
const NODE_CHANGES: usize = 200;
/// Largest heatmap PNG (pixels); beyond it, ask for fewer days or the SVG.
const MAX_PNG_PIXELS: u64 = 60_000_000;
const DEFAULT_DAYS: usize = 42;
const MAX_DAYS: usize = 366;

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn rate(r: Option<ErrorRate>) -> Value {
    r.map_or(Value::Null, |r| json!(r.percent()))
}

/// Fleet nodes of the live state, by numeric id (then text).
fn fleet_nodes(app: &AppState) -> Vec<AssetState> {
    let state = app.state().read();
    let mut nodes: Vec<AssetState> = state
        .values()
        .filter(|a| a.record.metadata.contains_key(NODE_KEY))
        .cloned()
        .collect();
    nodes.sort_by(|a, b| {
        let key = |x: &AssetState| {
            (
                x.record.id.parse::<u64>().unwrap_or(u64::MAX),
                x.record.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    nodes
}

fn check_json(a: &AssetState, check: &str) -> Value {
    match a.checks.get(check).and_then(|c| c.latest.as_ref()) {
        Some(o) => json!({"status": o.status, "reason": o.reason, "time": o.time.to_rfc3339()}),
        None => Value::Null,
    }
}

/// One node's summary from its live state, samples (oldest first) and versions.
fn summary(
    a: &AssetState,
    samples: &[&FleetSample],
    versions: Option<&FleetResource>,
    today: i64,
) -> Value {
    let status = a
        .checks
        .get(CHECK_STATUS)
        .and_then(|c| c.latest.as_ref())
        .map(|o| o.reason.clone());
    let colour = status
        .as_deref()
        .and_then(vitals_fleet::status::NodeStatus::parse)
        .map(|s| s.colour());
    let newest = samples.last().copied();
    let today_sample = newest.filter(|s| s.day == today);
    let owned: Vec<FleetSample> = samples.iter().map(|s| (*s).clone()).collect();
    let today_json = today_sample.map(|s| {
        let d = s.daily;
        json!({
            "date": daily::date_string(s.day),
            "imported": d.map(|d| d.imported),
            "updated": d.map(|d| d.updated),
            "invalid": d.map(|d| d.invalid),
            "failed": d.map(|d| d.failed),
            "error_rate": rate(daily::daily_rate(s)),
        })
    });
    let dwh = versions.and_then(|v| v.entries.get("dwh-j2ee").cloned());
    json!({
        "id": a.record.id,
        "name": a.record.name,
        "status": status,
        "colour": colour,
        "poll": check_json(a, CHECK_BROKER),
        "version_check": check_json(a, CHECK_VERSION),
        "last_check": time(newest.map(|s| s.polled)),
        "last_contact": time(newest.and_then(|s| s.last_contact)),
        "last_start": time(newest.map(|s| s.last_start)),
        "last_write": time(vitals_fleet::status::last_write(&owned)),
        "last_reject": time(newest.and_then(|s| s.last_reject)),
        "today": today_json,
        "totals": newest.map(|s| json!({
            "imported": s.imported, "updated": s.updated, "invalid": s.invalid,
            "failed": s.failed, "error_rate": rate(daily::total_rate(s)),
        })),
        "error_rate_7d": rate(daily::mean_daily_rate(&owned, today - 6)),
        "dwh_version": dwh,
        "versions": versions.map(|v| v.entries.clone()).unwrap_or_default(),
    })
}

/// `GET /api/v1/fleet/nodes`
pub async fn nodes(State(app): State<AppState>) -> Result<Json<Value>, AppError> {
    let today = day_of(app.now());
    let nodes = fleet_nodes(&app);
    let store = app.store();
    let samples = store
        .fleet_samples(None, today - 6, today)
        .await
        .map_err(AppError::unavailable)?;
    let resources = store
        .fleet_resources(None)
        .await
        .map_err(AppError::unavailable)?;
    let mut by_node: HashMap<&str, Vec<&FleetSample>> = HashMap::new();
    for s in &samples {
        by_node.entry(s.node.as_str()).or_default().push(s);
    }
    let versions: HashMap<&str, &FleetResource> = resources
        .iter()
        .filter(|r| r.name == "versions")
        .map(|r| (r.node.as_str(), r))
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let list: Vec<Value> = nodes
        .iter()
        .map(|a| {
            let id = a.record.id.as_str();
            let v = summary(
                a,
                by_node.get(id).map_or(&[][..], |v| v.as_slice()),
                versions.get(id).copied(),
                today,
            );
            let key = v["status"].as_str().unwrap_or("PENDING").to_string();
            *counts.entry(key).or_default() += 1;
            v
        })
        .collect();
    Ok(Json(
        json!({"count": list.len(), "statuses": counts, "nodes": list}),
    ))
}

fn node_state(app: &AppState, id: &str) -> Result<AssetState, AppError> {
    app.state()
        .asset(id)
        .filter(|a| a.record.metadata.contains_key(NODE_KEY))
        .ok_or_else(|| AppError::not_found(format!("no fleet node {id:?}")))
}

/// `GET /api/v1/fleet/nodes/{id}`
pub async fn node(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let a = node_state(&app, &id)?;
    let today = day_of(app.now());
    let store = app.store();
    let samples = store
        .fleet_samples(Some(&id), today - 6, today)
        .await
        .map_err(AppError::unavailable)?;
    let resources = store
        .fleet_resources(Some(&id))
        .await
        .map_err(AppError::unavailable)?;
    let errors = store
        .fleet_errors(Some(&id), None, NODE_ERRORS)
        .await
        .map_err(AppError::unavailable)?;
    let changes = store
        .fleet_changes(&id, NODE_CHANGES)
        .await
        .map_err(AppError::unavailable)?;
    let refs: Vec<&FleetSample> = samples.iter().collect();
    let versions = resources.iter().find(|r| r.name == "versions");
    let mut v = summary(&a, &refs, versions, today);
    if let Value::Object(m) = &mut v {
        m.insert("metadata".into(), Value::Object(a.record.metadata.clone()));
        m.insert("labels".into(), json!(a.record.labels));
        m.insert(
            "days".into(),
            Value::Array(
                samples
                    .iter()
                    .map(|s| {
                        json!({
                            "date": daily::date_string(s.day),
                            "imported": s.daily.map(|d| d.imported),
                            "updated": s.daily.map(|d| d.updated),
                            "invalid": s.daily.map(|d| d.invalid),
                            "failed": s.daily.map(|d| d.failed),
                            "error_rate": rate(daily::daily_rate(s)),
                        })
                    })
                    .collect(),
            ),
        );
        m.insert(
            "errors".into(),
            Value::Array(
                errors
                    .iter()
                    .map(|e| json!({"timestamp": e.time.to_rfc3339(), "repeats": e.repeats, "content": e.content}))
                    .collect(),
            ),
        );
        let mut res = Map::new();
        for r in &resources {
            res.insert(
                r.name.clone(),
                json!({"fetched": r.fetched.to_rfc3339(), "entries": r.entries}),
            );
        }
        m.insert("resources".into(), Value::Object(res));
        m.insert(
            "changes".into(),
            Value::Array(
                changes
                    .iter()
                    .map(|c| {
                        json!({
                            "time": c.time.to_rfc3339(),
                            "resource": c.resource,
                            "key": c.key,
                            "old": c.old,
                            "new": c.new,
                            "text": history::describe(c),
                        })
                    })
                    .collect(),
            ),
        );
    }
    Ok(Json(v))
}

fn year_param(
    q: &HashMap<String, String>,
    now: vitals_core::Timestamp,
) -> Result<(i32, (i64, i64)), AppError> {
    let year = match q.get("year").map(String::as_str) {
        None | Some("") => daily::year_of(now),
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (1970..=9999).contains(y))
            .ok_or_else(|| {
                AppError::bad_request("year", format!("{y:?} is not a year like 2024"))
            })?,
    };
    let days = daily::year_days(year)
        .ok_or_else(|| AppError::bad_request("year", format!("{year} is out of range")))?;
    Ok((year, days))
}

fn csv_response(name: String, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Whether a node is known at all (live or with stored data), for the CSV files.
async fn known(app: &AppState, id: &str) -> Result<(), AppError> {
    if node_state(app, id).is_ok() {
        return Ok(());
    }
    let years = app
        .store()
        .fleet_years()
        .await
        .map_err(AppError::unavailable)?;
    if years.iter().any(|(n, _)| n == id) {
        Ok(())
    } else {
        Err(AppError::not_found(format!("no fleet node {id:?}")))
    }
}

/// `GET /api/v1/fleet/nodes/{id}/stats.csv?year=`
pub async fn stats_csv(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let (year, (first, last)) = year_param(&q, app.now())?;
    known(&app, &id).await?;
    let samples = app
        .store()
        .fleet_samples(Some(&id), first, last)
        .await
        .map_err(AppError::unavailable)?;
    Ok(csv_response(
        csv::stats_file(&id, year),
        csv::stats_csv(&samples),
    ))
}

/// `GET /api/v1/fleet/nodes/{id}/errors.csv?year=`
pub async fn errors_csv(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let (year, _) = year_param(&q, app.now())?;
    known(&app, &id).await?;
    let errors = app
        .store()
        .fleet_errors(Some(&id), Some(year), usize::MAX)
        .await
        .map_err(AppError::unavailable)?;
    Ok(csv_response(
        csv::errors_file(&id, year),
        csv::errors_csv(&errors),
    ))
}

async fn build_heatmap(
    app: &AppState,
    q: &HashMap<String, String>,
) -> Result<(heatmap::Heatmap, usize), AppError> {
    let days = match q.get("days").map(String::as_str) {
        None | Some("") => DEFAULT_DAYS,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                AppError::bad_request(
                    "days",
                    format!("{d:?} is not a number of days from 1 to {MAX_DAYS}"),
                )
            })?,
    };
    let today = day_of(app.now());
    let nodes: Vec<(String, String)> = fleet_nodes(app)
        .into_iter()
        .map(|a| (a.record.id, a.record.name))
        .collect();
    let samples = app
        .store()
        .fleet_samples(None, today - days as i64 + 1, today)
        .await
        .map_err(AppError::unavailable)?;
    Ok((heatmap::build(&nodes, &samples, today, days), days))
}

/// `GET /api/v1/fleet/heatmap.svg?days=42`
pub async fn heatmap_svg(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let (h, days) = build_heatmap(&app, &q).await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], h.svg(days)).into_response())
}

/// `GET /api/v1/fleet/heatmap.png?days=42`
pub async fn heatmap_png(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let (h, days) = build_heatmap(&app, &q).await?;
    // Rasterising a large fleet takes a while: off the async threads.
    let png = tokio::task::spawn_blocking(move || h.png(days, MAX_PNG_PIXELS))
        .await
        .map_err(|e| AppError::unavailable(format!("heatmap task: {e}")))?
        .map_err(|e| AppError::bad_request("days", e))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// `GET /api/v1/fleet/files`: every (node, year) with data, and where its CSV files are
/// (what `vitals export csv` downloads from a running server).
pub async fn files(State(app): State<AppState>) -> Result<Json<Value>, AppError> {
    let years = app
        .store()
        .fleet_years()
        .await
        .map_err(AppError::unavailable)?;
    let list: Vec<Value> = years
        .iter()
        .map(|(node, year)| {
            json!({
                "node": node,
                "year": year,
                "stats": format!("/api/v1/fleet/nodes/{node}/stats.csv?year={year}"),
                "errors": format!("/api/v1/fleet/nodes/{node}/errors.csv?year={year}"),
                "stats_file": csv::stats_file(node, *year),
                "errors_file": csv::errors_file(node, *year),
            })
        })
        .collect();
    Ok(Json(json!({"files": list})))
}
