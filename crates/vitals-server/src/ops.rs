//! Operations: the cleanup job, rollups, and the audit log (a middleware records every change
//! made through the API).

use crate::{AppError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as J};
use std::collections::HashMap;
use std::io::Write;
use vitals_core::Timestamp;
use vitals_scheduler::housekeeping::CleanupError;
use vitals_store::{AuditEntry, DAY_MS, HOUR_MS};

/// Request bodies larger than this are summarised in the audit log, not copied.
const AUDIT_BODY_MAX: usize = 64 * 1024;
/// Audited routes take bodies up to this (axum's default limit, which their handlers keep).
const AUDITED_BODY_LIMIT: usize = 2 * 1024 * 1024;

fn cleanup(
    app: &AppState,
) -> Result<&std::sync::Arc<vitals_scheduler::housekeeping::Cleanup>, AppError> {
    app.cleanup.as_ref().ok_or_else(|| AppError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error: "the cleanup job is not running in this process".into(),
        field: None,
    })
}

/// `GET /api/v1/jobs/cleanup`: the last (or current) run.
pub async fn cleanup_status(State(app): State<AppState>) -> Result<Json<J>, AppError> {
    let c = cleanup(&app)?;
    let last = c.last().await.map_err(AppError::unavailable)?;
    Ok(Json(json!({ "running": c.is_running(), "last_run": last })))
}

/// `POST /api/v1/jobs/cleanup`: starts a run now (202), or 409 while one runs.
pub async fn cleanup_start(State(app): State<AppState>) -> Result<Response, AppError> {
    let c = cleanup(&app)?.clone();
    if c.is_running() {
        return Err(AppError {
            status: StatusCode::CONFLICT,
            error: "a cleanup is already running".into(),
            field: None,
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let r = c.run("api", app.now()).await;
        let _ = tx.send(r);
    });
    // A short run finishes within the request; a long one goes on in the background.
    match tokio::time::timeout(std::time::Duration::from_secs(2), rx).await {
        Ok(Ok(Ok(run))) => Ok((StatusCode::OK, Json(json!({ "run": run }))).into_response()),
        Ok(Ok(Err(CleanupError::AlreadyRunning))) => Err(AppError {
            status: StatusCode::CONFLICT,
            error: "a cleanup is already running".into(),
            field: None,
        }),
        Ok(Ok(Err(e))) => Err(AppError::unavailable(e)),
        Ok(Err(_)) => Err(AppError::unavailable("the cleanup task stopped")),
        Err(_) => Ok((StatusCode::ACCEPTED, Json(json!({ "running": true }))).into_response()),
    }
}

fn time_param(q: &HashMap<String, String>, k: &str) -> Result<Option<Timestamp>, AppError> {
    q.get(k)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .map(Timestamp)
                .or_else(|| Timestamp::parse(v))
                .ok_or_else(|| {
                    AppError::bad_request(k, format!("{v:?} is not a time (RFC 3339 or epoch ms)"))
                })
        })
        .transpose()
}

/// `GET /api/v1/assets/{id}/rollups?check=&period=hour|day&from=&to=` — oldest first.
pub async fn rollups(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<J>, AppError> {
    let check = q
        .get("check")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AppError::bad_request("check", "is required"))?;
    let period = match q.get("period").map(String::as_str).unwrap_or("hour") {
        "hour" => HOUR_MS,
        "day" => DAY_MS,
        p => {
            return Err(AppError::bad_request(
                "period",
                format!("{p:?} is not hour or day"),
            ))
        }
    };
    let to = time_param(&q, "to")?.unwrap_or_else(|| app.now());
    let from = time_param(&q, "from")?.unwrap_or(Timestamp(to.0.saturating_sub(30 * DAY_MS)));
    if from > to {
        return Err(AppError::bad_request("from", "from is after to"));
    }
    if app.state().asset(&id).is_none() {
        return Err(AppError::not_found(format!("unknown asset {id:?}")));
    }
    let rows = app
        .store()
        .rollups(&id, check, period, from, to)
        .await
        .map_err(AppError::unavailable)?;
    Ok(Json(
        json!({ "asset": id, "check": check, "rollups": rows }),
    ))
}

/// `GET /api/v1/audit?since=&limit=` — newest first.
pub async fn audit(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<J>, AppError> {
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                AppError::bad_request("limit", format!("{v:?} is not a number from 1 to 10000"))
            })?,
    };
    let since = time_param(&q, "since")?;
    let entries = app
        .store()
        .audit(since, limit)
        .await
        .map_err(AppError::unavailable)?;
    Ok(Json(json!({ "audit": entries })))
}

/// Replaces the values of secret-looking keys, at any depth.
pub fn mask(v: &mut J) {
    match v {
        J::Object(m) => {
            for (k, x) in m.iter_mut() {
                let k = k.to_ascii_lowercase();
                if [
                    "password",
                    "secret",
                    "token",
                    "api_key",
                    "apikey",
                    "authorization",
                ]
                .iter()
                .any(|s| k.contains(s))
                {
                    *x = J::String("***".into());
                } else {
                    mask(x);
                }
            }
        }
        J::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// Data ingest is not a change to Vitals' own state: it is stored as data, not audited.
fn is_ingest(method: &Method, template: &str) -> bool {
    template == "/api/v1/results"
        || template.starts_with("/ping/")
        || (method == Method::POST && template.starts_with("/health_test/"))
}

fn params_of(query: Option<&str>, body: &[u8], too_big: bool) -> J {
    let mut p = serde_json::Map::new();
    if let Some(q) = query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        p.insert(
            "query".into(),
            json!(pairs.into_iter().collect::<HashMap<_, _>>()),
        );
    }
    if too_big {
        p.insert(
            "body".into(),
            json!(format!("({} bytes, not recorded)", body.len())),
        );
    } else if !body.is_empty() {
        let v = serde_json::from_slice::<J>(body).unwrap_or_else(|_| {
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map(|f| json!(f.into_iter().collect::<HashMap<_, _>>()))
                .unwrap_or_else(|_| {
                    json!(String::from_utf8_lossy(body)
                        .chars()
                        .take(500)
                        .collect::<String>())
                })
        });
        p.insert("body".into(), v);
    }
    let mut v = J::Object(p);
    mask(&mut v);
    v
}

/// Writes one audit entry to the store (and the audit file, if configured).
async fn record(app: &AppState, entry: AuditEntry) -> Result<(), vitals_store::StoreError> {
    if let Some(file) = &app.audit_file {
        let line = format!(
            "{} Action={} Caller={} Params={} Result={}\n",
            entry.time.to_datetime().format("%Y-%m-%d %H:%M:%S,%3f"),
            entry.action.replace(' ', "_"),
            entry.actor,
            entry.params,
            entry.outcome
        );
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::error!(file = %file.display(), error = %e, "cannot write the audit file");
        }
    }
    app.store().audit_append(entry).await
}

fn request_id() -> String {
    let b: [u8; 8] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Route middleware, after authentication: every change an authenticated caller makes (POST,
/// PUT, PATCH, DELETE, except data ingest) goes to the append-only audit log — who, what,
/// parameters (secrets masked) — **before** it is carried out (outcome `started`; if that row
/// cannot be written, the change is refused with 503), and again with its outcome (the HTTP
/// status) afterwards; both rows share a `request` id. Requests that did not authenticate are
/// not audited (they are counted instead): only what was done is recorded, never what was
/// merely tried. A login is recorded once it has succeeded.
pub async fn audit_layer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let template = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || is_ingest(&method, &template)
    {
        return next.run(req).await;
    }
    let caller = req.extensions().get::<crate::auth::Caller>().cloned();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(String::from);
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, AUDITED_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return AppError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                error: format!(
                    "request body larger than {AUDITED_BODY_LIMIT} bytes, or not sent in time"
                ),
                field: Some("body".into()),
            }
            .into_response()
        }
    };
    let mut params = params_of(query.as_deref(), &bytes, bytes.len() > AUDIT_BODY_MAX);
    let entry = |actor: &str, params: &J, outcome: String| AuditEntry {
        id: 0,
        time: app.now(),
        actor: actor.to_string(),
        action: format!("{method} {path}"),
        target: path.clone(),
        params: params.clone(),
        outcome,
    };
    let Some(caller) = caller else {
        let resp = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        if let Some(crate::Actor(name)) = resp.extensions().get::<crate::Actor>() {
            let e = entry(name, &params, resp.status().as_u16().to_string());
            if let Err(e) = record(&app, e).await {
                tracing::error!(error = %e, "cannot write the audit log");
            }
        }
        return resp;
    };
    if let J::Object(m) = &mut params {
        m.insert("request".into(), J::String(request_id()));
    }
    if let Err(e) = record(&app, entry(&caller.name, &params, "started".into())).await {
        tracing::error!(error = %e, action = %format!("{method} {path}"), "refused: the audit log cannot be written");
        return AppError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: format!("the audit log cannot be written ({e}); nothing was changed"),
            field: None,
        }
        .into_response();
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let done = entry(&caller.name, &params, resp.status().as_u16().to_string());
    if let Err(e) = record(&app, done).await {
        tracing::error!(error = %e, "cannot write the outcome of an audited change");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let mut v = json!({"by": "alice", "password": "x", "nested": [{"api_key": "k", "Authorization": "Bearer t"}]});
        mask(&mut v);
        assert_eq!(
            v,
            json!({"by": "alice", "password": "***", "nested": [{"api_key": "***", "Authorization": "***"}]})
        );
    }
}
