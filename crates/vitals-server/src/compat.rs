//! The django-health-monitor compatible API: `/health/…`, `/health_test/…`, `/health_alarm/…`.
//!
//! Same paths, form-encoded POSTs and JSON shapes as the original, so its clients only need a
//! new base URL — with its bugs fixed (`shared/spec/health-scoring.md`): unknown uids, tests and
//! groups answer 404, bad input 400, an empty population `[]`, `repetition=0` a 400 naming the
//! parameter, valid but odd criteria (a percentage above 100) the original's answer (`[]`), and
//! no GET ever writes. Errors use the original's `{"message": "…"}` body.

// Handlers here bail out with a ready `Response` (the original's `{"message"}` body); its size
// does not matter on this path.
#![allow(clippy::result_large_err)]

use crate::ingest::valid_id;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value as J};
use std::collections::HashMap;
use vitals_config::UnknownAssets;
use vitals_core::health::{AlarmQuery, AssetHealth, Scored};
use vitals_core::{Observation, Timestamp, Value};
use vitals_scheduler::model::status_of_score;
use vitals_scheduler::{HealthOp, HealthOpError, Pushed};

/// Most history rows one `GET /health_test/…` returns.
const MAX_ROWS: usize = 100_000;

fn message(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "message": msg.into() }))).into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    message(StatusCode::BAD_REQUEST, msg)
}

fn not_found(msg: impl Into<String>) -> Response {
    message(StatusCode::NOT_FOUND, msg)
}

/// The original's uids are integers; ours are strings. Digits go out as numbers.
fn uid_json(id: &str) -> J {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => json!(n),
        _ => json!(id),
    }
}

/// Numeric ids in numeric order, then the others.
fn uid_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

fn scored_json(s: &Scored) -> J {
    json!({ "score": s.score, "updated": s.updated.to_rfc3339() })
}

fn has_health(h: &AssetHealth) -> bool {
    !h.state.is_empty() || !h.severity.is_empty()
}

fn health_json(uid: &str, h: &AssetHealth, group: Option<&str>, test: Option<&str>) -> J {
    let state: Map<String, J> = h
        .state
        .iter()
        .filter(|(g, _)| group.is_none_or(|x| x == g.as_str()))
        .map(|(g, tests)| {
            let t: Map<String, J> = tests
                .iter()
                .filter(|(n, _)| test.is_none_or(|x| x == n.as_str()))
                .map(|(n, s)| (n.clone(), scored_json(s)))
                .collect();
            (g.clone(), J::Object(t))
        })
        .collect();
    let severity: Map<String, J> = h
        .severity
        .iter()
        .filter(|(g, _)| group.is_none_or(|x| x == g.as_str()))
        .map(|(g, s)| (g.clone(), scored_json(s)))
        .collect();
    json!({ "uid": uid_json(uid), "state": state, "severity": severity })
}

fn truthy(v: &str) -> Option<bool> {
    vitals_core::health::parse_bool(v)
}

/// `GET /health/` (`?detail=1` for full records).
pub async fn health_list(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let detail = match q.get("detail") {
        None => false,
        Some(v) => match truthy(v) {
            Some(b) => b,
            None => return bad(format!("detail: {v:?} is not a boolean")),
        },
    };
    let state = app.state().read();
    let mut ids: Vec<&String> = state
        .iter()
        .filter(|(_, a)| has_health(&a.health))
        .map(|(id, _)| id)
        .collect();
    ids.sort_by(|a, b| uid_order(a, b));
    let out: Vec<J> = ids
        .into_iter()
        .map(|id| {
            if detail {
                state
                    .get(id)
                    .map(|a| health_json(id, &a.health, None, None))
                    .unwrap_or(J::Null)
            } else {
                uid_json(id)
            }
        })
        .collect();
    Json(out).into_response()
}

/// `{uid}`, `{group}`, `{test}` of a `/health/…` path.
fn path3(p: &HashMap<String, String>) -> (String, Option<String>, Option<String>) {
    (
        p.get("uid").cloned().unwrap_or_default(),
        p.get("group").cloned(),
        p.get("test").cloned(),
    )
}

fn lookup(app: &AppState, uid: &str) -> Result<AssetHealth, Response> {
    app.state()
        .health(uid)
        .filter(has_health)
        .ok_or_else(|| not_found(format!("uid {uid} has no health")))
}

/// `GET /health/{uid}/`, `/health/{uid}/{group}/`, `/health/{uid}/{group}/{test}/`.
pub async fn health_get(
    State(app): State<AppState>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    let (uid, group, test) = path3(&p);
    let h = match lookup(&app, &uid) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if let Some(g) = &group {
        let Some(tests) = h.state.get(g) else {
            return not_found(format!("group {g} not in health of uid {uid}"));
        };
        if let Some(t) = &test {
            if !tests.contains_key(t) {
                return not_found(format!("test {t} not in group {g} of uid {uid}"));
            }
        }
    }
    Json(health_json(&uid, &h, group.as_deref(), test.as_deref())).into_response()
}

/// `DELETE /health/{uid}/…`: the whole health, a group, or one test (severity recomputed).
pub async fn health_delete(
    State(app): State<AppState>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    let (uid, group, test) = path3(&p);
    if let Err(r) = lookup(&app, &uid) {
        return r;
    }
    let (op, msg) = match (&group, &test) {
        (None, _) => (
            HealthOp::DeleteAsset { asset: uid.clone() },
            format!("{uid} health deleted"),
        ),
        (Some(g), None) => (
            HealthOp::DeleteGroup {
                asset: uid.clone(),
                group: g.clone(),
            },
            format!("{g} group deleted from {uid} health"),
        ),
        (Some(g), Some(t)) => (
            HealthOp::DeleteTest {
                asset: uid.clone(),
                group: g.clone(),
                test: t.clone(),
            },
            format!("{t} test deleted from {g} group in {uid} health"),
        ),
    };
    match app.pipeline.health_op(op).await {
        Ok(Ok(())) => Json(json!({ "message": msg })).into_response(),
        Ok(Err(HealthOpError::NotFound(e))) => not_found(e),
        Err(e) => message(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {e}"),
        ),
    }
}

/// `GET /health_test/` → `{"tests": [...]}` in configuration order.
pub async fn tests_list(State(app): State<AppState>) -> Response {
    Json(json!({ "tests": app.pipeline.model().get().tests() })).into_response()
}

/// `POST /health_test/{test}/{uid}/` with the test's field, form-encoded.
pub async fn test_post(
    State(app): State<AppState>,
    Path((test, uid)): Path<(String, String)>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    body: Bytes,
) -> Response {
    if let Some(axum::Extension(c)) = &caller {
        if !c.may_report(&uid) {
            return message(
                StatusCode::FORBIDDEN,
                format!("token {:?} may not report for uid {uid}", c.name),
            );
        }
    }
    let model = app.pipeline.model().get();
    let Some(rule) = model.score_rule(&test) else {
        return not_found(format!("test {test} does not exist"));
    };
    if !valid_id(&uid) {
        return bad(format!(
            "uid {uid:?} must be 1–200 characters of letters, digits and - _ . : @"
        ));
    }
    let fields: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return bad(format!("body is not form-encoded: {e}")),
    };
    let mut raw = None;
    for (k, v) in &fields {
        if *k == rule.field {
            raw = Some(v.clone());
        } else {
            return bad(format!(
                "unexpected field {k:?} for test {test} (expects {:?})",
                rule.field
            ));
        }
    }
    let Some(raw) = raw else {
        return bad(format!("missing field {:?} for test {test}", rule.field));
    };
    let value = match rule.parse_field(&raw) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let Some(score) = rule.score(value) else {
        return bad(format!(
            "no score rule of test {test} matches {} = {raw}",
            rule.field
        ));
    };
    if model.unknown_assets == UnknownAssets::Reject && !app.state().contains(&uid) {
        return not_found(format!(
            "unknown uid {uid} (ingest.unknown_assets = \"reject\")"
        ));
    }
    let mut obs = Observation::new(&uid, &test, app.now(), status_of_score(score), "");
    obs.score = score;
    obs.values.push(Value::new(rule.field.clone(), value));
    if let Some(why) = app.state().push_refused(&uid, &test) {
        app.metrics()
            .refused(vitals_scheduler::IngestLimit::PolledCheck);
        return message(StatusCode::CONFLICT, why);
    }
    let origin = crate::ingest::origin(caller.as_ref().map(|axum::Extension(c)| c));
    match app
        .pipeline
        .push_from(vec![Pushed { obs, id: None }], origin)
        .await
    {
        Ok(_) => Json(json!({
            "score": score,
            "message": format!("{test} score changed to {score} for uid {uid}"),
        }))
        .into_response(),
        Err(vitals_scheduler::PushError::Limit { message: m, .. }) => {
            message(StatusCode::TOO_MANY_REQUESTS, m)
        }
        Err(e) => message(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {e}"),
        ),
    }
}

fn parse_time(name: &str, v: &str) -> Result<Timestamp, Response> {
    // The original accepts '+' encoded as a space in offsets.
    Timestamp::parse(&v.replace(' ', "+"))
        .ok_or_else(|| bad(format!("{name}: {v:?} is not an ISO 8601 time")))
}

/// `GET /health_test/{test}/` and `/health_test/{test}/{uid}/`: raw results, newest first.
pub async fn test_history(
    State(app): State<AppState>,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let test = p.get("test").cloned().unwrap_or_default();
    let model = app.pipeline.model().get();
    let Some(rule) = model.score_rule(&test) else {
        return not_found(format!("test {test} does not exist"));
    };
    let uids: Option<Vec<String>> = match p.get("uid") {
        Some(uid) => {
            if !app.state().contains(uid) {
                return not_found(format!("unknown uid {uid}"));
            }
            Some(vec![uid.clone()])
        }
        None => q.get("uids").map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        }),
    };
    let from = match q
        .get("start_time")
        .map(|v| parse_time("start_time", v))
        .transpose()
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let to = match q
        .get("end_time")
        .map(|v| parse_time("end_time", v))
        .transpose()
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let latest = match q.get("latest") {
        None => false,
        Some(v) => match truthy(v) {
            Some(b) => b,
            None => return bad(format!("latest: {v:?} is not a boolean")),
        },
    };
    let limit = if latest { 1 } else { MAX_ROWS };
    let rows = match app
        .store()
        .check_history(&test, uids.as_deref(), from, to, limit)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage unavailable: {e}"),
            )
        }
    };
    let out: Vec<J> = rows
        .iter()
        .map(|o| {
            let mut m = Map::new();
            m.insert("score".into(), json!(o.score));
            m.insert("uid".into(), uid_json(&o.asset));
            m.insert("time".into(), json!(o.time.to_rfc3339()));
            let v = o.value(&rule.field);
            let field = match (rule.kind, v) {
                (vitals_core::health::FieldKind::Bool, Some(x)) => json!(x != 0.0),
                (vitals_core::health::FieldKind::Int, Some(x)) => json!(x as i64),
                (_, Some(x)) => json!(x),
                (_, None) => J::Null,
            };
            m.insert(rule.field.clone(), field);
            J::Object(m)
        })
        .collect();
    Json(out).into_response()
}

/// `GET /health_alarm/` → `{"groups": [...]}`.
pub async fn alarm_groups(State(app): State<AppState>) -> Response {
    Json(json!({ "groups": app.pipeline.model().get().groups() })).into_response()
}

/// `GET /health_alarm/{group}/` → `{"tests": [...]}`.
pub async fn alarm_tests(State(app): State<AppState>, Path(group): Path<String>) -> Response {
    let model = app.pipeline.model().get();
    if !model.groups().contains(&group) {
        return not_found(format!("group {group} does not exist"));
    }
    Json(json!({ "tests": model.tests_of(&group) })).into_response()
}

fn int_param(
    q: &HashMap<String, String>,
    name: &str,
    default: Option<i64>,
) -> Result<i64, Response> {
    match q.get(name) {
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| bad(format!("{name}: {v:?} is not an integer"))),
        None => default.ok_or_else(|| bad(format!("{name} is required"))),
    }
}

/// Parses and checks the four criteria.
pub fn alarm_query(q: &HashMap<String, String>) -> Result<AlarmQuery, Response> {
    let score = int_param(q, "score", None)?;
    let aggregate_percent = int_param(q, "aggregate_percent", Some(0))?;
    let repetition = int_param(q, "repetition", Some(1))?;
    let repetition_percent = int_param(q, "repetition_percent", Some(100))?;
    if repetition < 1 {
        return Err(bad(format!(
            "repetition must be at least 1, got {repetition}"
        )));
    }
    // Any whole number is a valid percentage here, as in the original: above 100 nothing can
    // reach it (the answer is `[]`), at or below 0 everything does. Only text that is not a
    // whole number, a missing score and a window below 1 are malformed.
    Ok(AlarmQuery {
        score,
        aggregate_percent,
        repetition: repetition.min(1_000_000) as usize,
        repetition_percent,
    })
}

/// Evaluates a population alarm over the live state; windows longer than memory holds are read
/// from the store. Read-only. Also returns the live state's generation when the answer came
/// from memory alone (so it may be reused while the state stays the same).
pub async fn evaluate_alarm(
    app: &AppState,
    group: &str,
    test: &str,
    q: &AlarmQuery,
) -> Result<(Vec<String>, Option<u64>), Response> {
    let mut population = 0usize;
    let mut failing: Vec<String> = Vec::new();
    let mut from_store: Vec<String> = Vec::new();
    let generation;
    {
        let (state, g) = app.state().read_at();
        generation = g;
        for (id, a) in state.iter() {
            if !a
                .health
                .state
                .get(group)
                .is_some_and(|t| t.contains_key(test))
            {
                continue;
            }
            population += 1;
            match a.health.window_fails(test, q) {
                Some(true) => failing.push(id.clone()),
                Some(false) => {}
                None => from_store.push(id.clone()),
            }
        }
    }
    let memory_only = from_store.is_empty();
    for id in from_store {
        let w = app
            .store()
            .recent_scores(&id, test, q.repetition)
            .await
            .map_err(|e| {
                message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("storage unavailable: {e}"),
                )
            })?;
        if q.asset_fails(&w) {
            failing.push(id);
        }
    }
    let generation = memory_only.then_some(generation);
    if !q.population_alarms(failing.len(), population) {
        return Ok((Vec::new(), generation));
    }
    // Numeric uids in numeric order, then the others; each key computed once.
    failing.sort_by_cached_key(|id| match id.parse::<i64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, id.clone()),
    });
    Ok((failing, generation))
}

/// The JSON array of uids, written straight out (as [`uid_json`] would render each).
fn uid_array(ids: &[String]) -> String {
    let mut out = String::with_capacity(2 + ids.len() * 8);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match id.parse::<i64>() {
            Ok(n) if n.to_string() == *id => out.push_str(id),
            _ => out.push_str(&J::String(id.clone()).to_string()),
        }
    }
    out.push(']');
    out
}

fn json_body(body: &Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response()
}

/// `GET /health_alarm/{group}/{test}/?score=&aggregate_percent=&repetition=&repetition_percent=`.
pub async fn alarm(
    State(app): State<AppState>,
    Path((group, test)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = match alarm_query(&q) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let model = app.pipeline.model().get();
    let known_group = model.groups().contains(&group)
        || app
            .state()
            .read()
            .values()
            .any(|a| a.health.state.contains_key(&group));
    if !known_group {
        return not_found(format!("group {group} does not exist"));
    }
    let key = format!(
        "{group}\0{test}\0{}\0{}\0{}\0{}",
        query.score, query.aggregate_percent, query.repetition, query.repetition_percent
    );
    let views = &app.views.alarms;
    if let Some(body) = views.get(&key, app.state().generation()) {
        return json_body(&body);
    }
    let _turn = views.turn().await;
    if let Some(body) = views.get(&key, app.state().generation()) {
        return json_body(&body);
    }
    match evaluate_alarm(&app, &group, &test, &query).await {
        Ok((ids, generation)) => {
            let body = std::sync::Arc::new(Bytes::from(uid_array(&ids)));
            if let Some(g) = generation {
                views.put(&key, g, body.clone());
            }
            json_body(&body)
        }
        Err(r) => r,
    }
}
