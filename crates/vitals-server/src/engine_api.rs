//! `/api/v1/engine/…`: the integration engine (`docs/integration-engines.md`) — sources with
//! availability, latency, correctness and probe patients; pipelines with their stages; jobs with
//! their runs, and the admin actions on jobs (pause, resume, run now, schedule override, remove
//! the override); and checks' schedules (`/api/v1/schedules`, an admin's interval or cron for
//! one check, stored beside the job overrides). Every action is admin-only and audited by the
//! audit layer like every write.

use crate::auth::Caller;
use crate::{AppError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Value as J};
use std::sync::Arc;
use vitals_engine::jobs::JobError;
use vitals_engine::schedules::{CheckSchedules, ScheduleError};
use vitals_engine::Engine;

/// Runs shown per job.
pub const RUNS_SHOWN: usize = 20;

pub(crate) fn engine(app: &AppState) -> Result<Arc<Engine>, AppError> {
    app.site.engine().ok_or_else(|| {
        AppError::not_found(
            "no integration engine is configured (add [[source_set]], [[pipeline]] or [[job]])",
        )
    })
}

pub(crate) fn job_error(e: JobError) -> AppError {
    match e {
        JobError::NotFound(_) => AppError::not_found(e.to_string()),
        JobError::Running(_) => AppError {
            status: StatusCode::CONFLICT,
            error: e.to_string(),
            field: None,
        },
        JobError::Invalid(m) => AppError::bad_request("schedule", m),
        JobError::Store(m) => AppError::unavailable(m),
    }
}

fn actor(c: &Option<Extension<Caller>>) -> String {
    c.as_ref()
        .map_or_else(|| "local".to_string(), |Extension(c)| c.name.clone())
}

/// `GET /api/v1/engine/sources`.
pub async fn sources(State(app): State<AppState>) -> Result<Json<J>, AppError> {
    let e = engine(&app)?;
    let sets = e
        .source_sets_view(app.now())
        .map_err(AppError::unavailable)?;
    Ok(Json(json!({ "source_sets": sets })))
}

/// `GET /api/v1/engine/pipelines`.
pub async fn pipelines(State(app): State<AppState>) -> Result<Json<J>, AppError> {
    let e = engine(&app)?;
    let p = e
        .pipelines_view(app.now(), app.state())
        .map_err(AppError::unavailable)?;
    Ok(Json(json!({ "pipelines": p })))
}

/// `GET /api/v1/engine/jobs`.
pub async fn jobs(State(app): State<AppState>) -> Result<Json<J>, AppError> {
    let e = engine(&app)?;
    Ok(Json(json!({ "jobs": e.jobs.views(RUNS_SHOWN) })))
}

/// `GET /api/v1/engine/jobs/{id}`.
pub async fn job(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<J>, AppError> {
    let e = engine(&app)?;
    let v = e.jobs.view(&id, RUNS_SHOWN).map_err(job_error)?;
    Ok(Json(json!({ "job": v })))
}

/// `POST /api/v1/engine/jobs/{id}/pause`.
pub async fn pause(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<J>), AppError> {
    action(app, who, id, "pause").await
}

/// `POST /api/v1/engine/jobs/{id}/resume`.
pub async fn resume(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<J>), AppError> {
    action(app, who, id, "resume").await
}

/// `POST /api/v1/engine/jobs/{id}/run`: 202 once started; 409 while it runs.
pub async fn run(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<J>), AppError> {
    action(app, who, id, "run").await
}

async fn action(
    app: AppState,
    who: Option<Extension<Caller>>,
    id: String,
    action: &str,
) -> Result<(StatusCode, Json<J>), AppError> {
    let e = engine(&app)?;
    let by = actor(&who);
    let status = match action {
        "pause" => e.jobs.pause(&id, &by).map(|_| StatusCode::OK),
        "resume" => e.jobs.resume(&id, &by).map(|_| StatusCode::OK),
        "run" => e.jobs.run_now(&id, &by).map(|_| StatusCode::ACCEPTED),
        _ => {
            return Err(AppError::not_found(format!(
                "no action {action:?}; use pause, resume or run"
            )))
        }
    }
    .map_err(job_error)?;
    let v = e.jobs.view(&id, RUNS_SHOWN).map_err(job_error)?;
    Ok((status, Json(json!({ "job": v }))))
}

/// `PUT /api/v1/engine/jobs/{id}/schedule` with `{"schedule": "*/5 * * * *"}`.
pub async fn set_schedule(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<J>, AppError> {
    let e = engine(&app)?;
    let v: J = serde_json::from_slice(&body)
        .map_err(|err| AppError::bad_request("body", format!("not JSON: {err}")))?;
    let Some(expr) = v.get("schedule").and_then(J::as_str) else {
        return Err(AppError::bad_request(
            "schedule",
            "give {\"schedule\": \"<cron expression>\"}",
        ));
    };
    e.jobs
        .set_schedule(&id, expr, &actor(&who))
        .map_err(job_error)?;
    let v = e.jobs.view(&id, RUNS_SHOWN).map_err(job_error)?;
    Ok(Json(json!({ "job": v })))
}

/// `DELETE /api/v1/engine/jobs/{id}/override`: back to what the file says.
pub async fn clear_override(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<J>, AppError> {
    let e = engine(&app)?;
    let removed = e.jobs.clear_override(&id).map_err(job_error)?;
    let v = e.jobs.view(&id, RUNS_SHOWN).map_err(job_error)?;
    Ok(Json(json!({ "removed": removed, "job": v })))
}

// --- check schedules (an admin's interval or cron for one check, over the file's) ---

pub(crate) fn schedules(app: &AppState) -> Result<Arc<CheckSchedules>, AppError> {
    app.site
        .schedules()
        .ok_or_else(|| AppError::not_found("check schedules are not available on this server"))
}

pub(crate) fn schedule_error(e: ScheduleError) -> AppError {
    match e {
        ScheduleError::NotFound(m) => AppError::not_found(m),
        ScheduleError::Invalid(field, m) => AppError::bad_request(field, m),
        ScheduleError::Store(m) => AppError::unavailable(m),
    }
}

/// `GET /api/v1/schedules`: every polled check and heartbeat with the file's schedule, the one
/// in effect and the override, if any.
pub async fn check_schedules(State(app): State<AppState>) -> Result<Json<J>, AppError> {
    let v = schedules(&app)?.views(None).await.map_err(schedule_error)?;
    Ok(Json(json!({ "schedules": v })))
}

/// `PUT /api/v1/assets/{id}/checks/{check}/schedule` with `{"interval": "30s"}` or
/// `{"cron": "*/5 * * * *"}`: applied at once, kept across reloads and restarts.
pub async fn set_check_schedule(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path((asset, check)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<J>, AppError> {
    let s = schedules(&app)?;
    let v: J = serde_json::from_slice(&body)
        .map_err(|err| AppError::bad_request("body", format!("not JSON: {err}")))?;
    let Some(obj) = v.as_object() else {
        return Err(AppError::bad_request(
            "body",
            "give {\"interval\": \"30s\"} or {\"cron\": \"*/5 * * * *\"}",
        ));
    };
    if let Some(k) = obj.keys().find(|k| *k != "interval" && *k != "cron") {
        return Err(AppError::bad_request(
            k,
            format!("unknown field {k:?}; give interval or cron"),
        ));
    }
    let text = |k: &str| -> Result<Option<&str>, AppError> {
        match obj.get(k) {
            None | Some(J::Null) => Ok(None),
            Some(J::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(AppError::bad_request(k, "must be a string")),
        }
    };
    let spec = vitals_engine::schedules::parse(text("interval")?, text("cron")?)
        .map_err(schedule_error)?;
    let view = s
        .set(&asset, &check, spec, &actor(&who))
        .await
        .map_err(schedule_error)?;
    Ok(Json(json!({ "schedule": view })))
}

/// `DELETE /api/v1/assets/{id}/checks/{check}/schedule`: back to the file's schedule.
pub async fn clear_check_schedule(
    State(app): State<AppState>,
    Path((asset, check)): Path<(String, String)>,
) -> Result<Json<J>, AppError> {
    let (removed, view) = schedules(&app)?
        .remove(&asset, &check)
        .await
        .map_err(schedule_error)?;
    Ok(Json(json!({ "removed": removed, "schedule": view })))
}
