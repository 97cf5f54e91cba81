//! `/api/v1/alerts`, `/api/v1/silences`, `/api/v1/notifications`.

use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, HashMap};
use vitals_alert::{AckError, EngineOp, OpAnswer, SilenceDraft};
use vitals_core::alert::AlertState;
use vitals_core::rules::Selector;
use vitals_core::Timestamp;
use vitals_store::AlertQuery;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;
const MAX_SILENCE_MS: i64 = 366 * 86_400_000;

fn limit(q: &HashMap<String, String>) -> Result<usize, AppError> {
    match q.get("limit").filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(AppError::bad_request(
                "limit",
                format!("{v:?} is not a number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

/// `GET /api/v1/alerts?state=open|pending|firing|acknowledged|resolved|all&asset=&limit=`.
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<J>, AppError> {
    let states = match q.get("state").map(String::as_str).unwrap_or("open") {
        "open" => Some(vec![
            AlertState::Pending,
            AlertState::Firing,
            AlertState::Acknowledged,
        ]),
        "all" => None,
        s => {
            let mut v = Vec::new();
            for part in s.split(',') {
                v.push(AlertState::parse(part.trim()).ok_or_else(|| {
                    AppError::bad_request(
                        "state",
                        format!(
                            "{part:?} is not open, all, pending, firing, acknowledged or resolved"
                        ),
                    )
                })?);
            }
            Some(v)
        }
    };
    let query = AlertQuery {
        states,
        asset: q.get("asset").filter(|a| !a.is_empty()).cloned(),
        limit: limit(&q)?,
    };
    let alerts = app
        .store()
        .alerts(&query)
        .await
        .map_err(AppError::unavailable)?;
    Ok(Json(json!({ "alerts": alerts })))
}

fn parse_id(s: &str) -> Result<i64, AppError> {
    s.parse::<i64>()
        .map_err(|_| AppError::bad_request("id", format!("{s:?} is not an alert id")))
}

/// `GET /api/v1/alerts/{id}`: the alert, its transitions and its notifications.
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<J>, AppError> {
    let id = parse_id(&id)?;
    let Some((alert, events)) = app.store().alert(id).await.map_err(AppError::unavailable)? else {
        return Err(AppError::not_found(format!("no alert {id}")));
    };
    let notes = app
        .store()
        .notifications(Some(id), 1000)
        .await
        .map_err(AppError::unavailable)?;
    Ok(Json(
        json!({ "alert": alert, "transitions": events, "notifications": notes }),
    ))
}

/// A duration (`"2h"`) or a time (RFC 3339) in a JSON body.
fn until(v: &J, field: &str, now: Timestamp) -> Result<Timestamp, AppError> {
    let s = v.as_str().ok_or_else(|| {
        AppError::bad_request(field, "must be a duration like \"2h\" or an RFC 3339 time")
    })?;
    if let Ok(d) = vitals_core::spec::duration::parse(s) {
        return Ok(now.add_duration(d));
    }
    Timestamp::parse(s).ok_or_else(|| {
        AppError::bad_request(
            field,
            format!("{s:?} is neither a duration like \"2h\" nor an RFC 3339 time"),
        )
    })
}

fn body_object(body: &Bytes) -> Result<serde_json::Map<String, J>, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<J>(body) {
        Ok(J::Object(m)) => Ok(m),
        Ok(_) => Err(AppError::bad_request("body", "must be a JSON object")),
        Err(e) => Err(AppError::bad_request("body", format!("invalid JSON: {e}"))),
    }
}

fn opt_str(
    m: &serde_json::Map<String, J>,
    k: &str,
    max: usize,
) -> Result<Option<String>, AppError> {
    match m.get(k) {
        None | Some(J::Null) => Ok(None),
        Some(J::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(_) => Err(AppError::bad_request(
            k,
            format!("must be a string of at most {max} bytes"),
        )),
    }
}

fn known_keys(m: &serde_json::Map<String, J>, known: &[&str]) -> Result<(), AppError> {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            return Err(AppError::bad_request(
                k,
                format!("unknown field (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// `POST /api/v1/alerts/{id}/ack` with optional `{"by", "comment", "expires"}`.
pub async fn ack(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let m = body_object(&body)?;
    known_keys(&m, &["by", "comment", "expires"])?;
    let by = opt_str(&m, "by", 200)?.unwrap_or_else(|| "api".to_string());
    let comment = opt_str(&m, "comment", 2000)?;
    let now = app.now();
    let expires = m
        .get("expires")
        .filter(|v| !v.is_null())
        .map(|v| until(v, "expires", now))
        .transpose()?;
    if expires.is_some_and(|e| e <= now) {
        return Err(AppError::bad_request("expires", "is in the past"));
    }
    let answer = app
        .pipeline
        .engine_op(EngineOp::Ack {
            id,
            by,
            comment,
            until: expires,
        })
        .await
        .map_err(AppError::unavailable)?;
    let OpAnswer::Ack(result) = answer else {
        return Err(AppError::unavailable(
            "the decider answered with something else",
        ));
    };
    match result {
        Ok(alert) => Ok(Json(json!({ "alert": alert })).into_response()),
        Err(AckError::NotOpen(id)) => {
            // Distinguish "no such alert" from "already resolved".
            match app.store().alert(id).await.map_err(AppError::unavailable)? {
                None => Err(AppError::not_found(format!("no alert {id}"))),
                Some(_) => Err(AppError {
                    status: StatusCode::CONFLICT,
                    error: format!("alert {id} is resolved"),
                    field: None,
                }),
            }
        }
        Err(AckError::NotFiring(e)) => Err(AppError {
            status: StatusCode::CONFLICT,
            error: e,
            field: None,
        }),
    }
}

/// `GET /api/v1/silences` — active and recently ended silences.
pub async fn silences(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<J>, AppError> {
    let now = app.now();
    let since = if q.get("all").is_some_and(|v| v == "1" || v == "true") {
        Timestamp(0)
    } else {
        now
    };
    let list = app
        .store()
        .silences(since)
        .await
        .map_err(AppError::unavailable)?;
    let out: Vec<J> = list
        .iter()
        .rev()
        .map(|s| {
            let mut v = json!(s);
            v["active"] = json!(s.active(now));
            v
        })
        .collect();
    Ok(Json(json!({ "silences": out })))
}

fn str_list(m: &serde_json::Map<String, J>, k: &str, field: &str) -> Result<Vec<String>, AppError> {
    match m.get(k) {
        None | Some(J::Null) => Ok(Vec::new()),
        Some(J::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| AppError::bad_request(field, "must be a list of strings")),
        Some(_) => Err(AppError::bad_request(field, "must be a list of strings")),
    }
}

/// `POST /api/v1/silences` with `{"matchers": {...}, "rules": [...], "starts", "ends" | "duration",
/// "author", "comment"}`.
pub async fn create_silence(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<Response, AppError> {
    let m = body_object(&body)?;
    known_keys(
        &m,
        &[
            "matchers", "rules", "starts", "ends", "duration", "author", "comment",
        ],
    )?;
    let now = app.now();
    let matchers = match m.get("matchers") {
        None | Some(J::Null) => serde_json::Map::new(),
        Some(J::Object(o)) => o.clone(),
        Some(_) => return Err(AppError::bad_request("matchers", "must be an object")),
    };
    known_keys(
        &matchers,
        &["assets", "asset_prefixes", "groups", "labels", "checks"],
    )
    .map_err(|mut e| {
        e.field = e.field.map(|f| format!("matchers.{f}"));
        e
    })?;
    let labels: BTreeMap<String, String> = match matchers.get("labels") {
        None | Some(J::Null) => BTreeMap::new(),
        Some(J::Object(o)) => o
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| AppError::bad_request("matchers.labels", "must map names to strings"))?,
        Some(_) => {
            return Err(AppError::bad_request(
                "matchers.labels",
                "must map names to strings",
            ))
        }
    };
    let selector = Selector {
        assets: str_list(&matchers, "assets", "matchers.assets")?,
        asset_prefixes: str_list(&matchers, "asset_prefixes", "matchers.asset_prefixes")?,
        groups: str_list(&matchers, "groups", "matchers.groups")?,
        labels,
        checks: str_list(&matchers, "checks", "matchers.checks")?,
        exclude_groups: Vec::new(),
    };
    let rules = str_list(&m, "rules", "rules")?;
    if selector == Selector::default() && rules.is_empty() {
        return Err(AppError::bad_request(
            "matchers",
            "a silence must match something: give matchers or rules",
        ));
    }
    let starts = match m.get("starts").filter(|v| !v.is_null()) {
        None => now,
        Some(J::String(s)) => Timestamp::parse(s).ok_or_else(|| {
            AppError::bad_request("starts", format!("{s:?} is not an RFC 3339 time"))
        })?,
        Some(_) => return Err(AppError::bad_request("starts", "must be an RFC 3339 time")),
    };
    let ends = match (
        m.get("ends").filter(|v| !v.is_null()),
        m.get("duration").filter(|v| !v.is_null()),
    ) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_request(
                "ends",
                "give ends or duration, not both",
            ))
        }
        (Some(J::String(s)), None) => Timestamp::parse(s).ok_or_else(|| {
            AppError::bad_request("ends", format!("{s:?} is not an RFC 3339 time"))
        })?,
        (Some(_), None) => return Err(AppError::bad_request("ends", "must be an RFC 3339 time")),
        (None, Some(J::String(d))) => starts.add_duration(
            vitals_core::spec::duration::parse(d)
                .map_err(|e| AppError::bad_request("duration", e))?,
        ),
        (None, Some(_)) => {
            return Err(AppError::bad_request(
                "duration",
                "must be a duration like \"2h\"",
            ))
        }
        (None, None) => return Err(AppError::bad_request("ends", "give ends or duration")),
    };
    if ends <= starts {
        return Err(AppError::bad_request("ends", "must be after starts"));
    }
    if ends <= now {
        return Err(AppError::bad_request("ends", "is in the past"));
    }
    if ends.0 - starts.0 > MAX_SILENCE_MS {
        return Err(AppError::bad_request(
            "ends",
            "a silence lasts at most a year",
        ));
    }
    let author = opt_str(&m, "author", 200)?.filter(|s| !s.trim().is_empty());
    let comment = opt_str(&m, "comment", 2000)?.filter(|s| !s.trim().is_empty());
    let (Some(author), Some(comment)) = (author, comment) else {
        return Err(AppError::bad_request(
            if m.get("author").is_none() {
                "author"
            } else {
                "comment"
            },
            "a silence needs an author and a comment (why nobody should be told)",
        ));
    };
    let draft = SilenceDraft {
        matchers: selector,
        rules,
        starts,
        ends,
        author,
        comment,
    };
    let answer = app
        .pipeline
        .engine_op(EngineOp::AddSilence(draft))
        .await
        .map_err(AppError::unavailable)?;
    let OpAnswer::Silence(s) = answer else {
        return Err(AppError::unavailable(
            "the decider answered with something else",
        ));
    };
    Ok((StatusCode::CREATED, Json(json!({ "silence": s }))).into_response())
}

/// `DELETE /api/v1/silences/{id}`: ends the silence now.
pub async fn expire_silence(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<J>, AppError> {
    let id = id
        .parse::<i64>()
        .map_err(|_| AppError::bad_request("id", format!("{id:?} is not a silence id")))?;
    let answer = app
        .pipeline
        .engine_op(EngineOp::ExpireSilence(id))
        .await
        .map_err(AppError::unavailable)?;
    let OpAnswer::Expired(s) = answer else {
        return Err(AppError::unavailable(
            "the decider answered with something else",
        ));
    };
    match s {
        Some(s) => Ok(Json(json!({ "silence": s }))),
        None => Err(AppError::not_found(format!("no active silence {id}"))),
    }
}

/// `GET /api/v1/notifications?alert=&limit=` — what was sent, to whom, when, and the outcome.
pub async fn notifications(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<J>, AppError> {
    let alert = q
        .get("alert")
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| AppError::bad_request("alert", format!("{v:?} is not an alert id")))
        })
        .transpose()?;
    let items = app
        .store()
        .notifications(alert, limit(&q)?)
        .await
        .map_err(AppError::unavailable)?;
    let out: Vec<J> = items
        .iter()
        .map(|it| {
            json!({
                "id": it.id,
                "notifier": it.notifier,
                "kind": it.notification.kind,
                "alerts": it.notification.alerts.iter().map(|a| a.alert_id).collect::<Vec<_>>(),
                "title": it.notification.alerts.first().map(|a| a.title.clone()),
                "created": it.notification.created.to_rfc3339(),
                "state": it.state,
                "attempts": it.attempts,
                "recipients": it.recipients,
                "detail": it.detail,
                "error": it.last_error,
                "sent": it.sent.map(|t| t.to_rfc3339()),
                "next_attempt": (it.state == vitals_store::OutboxState::Pending).then(|| it.next_attempt.to_rfc3339()),
            })
        })
        .collect();
    Ok(Json(json!({ "notifications": out })))
}
