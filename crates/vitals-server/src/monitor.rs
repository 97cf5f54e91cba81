//! `/monitor` and `/version`: Vitals' own health in the format it reads on others.

use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The scheduler loop wakes every second; three missed turns mean it is stuck.
const SCHEDULER_STALE_MS: i64 = 5_000;
/// A store write failure this recent fails the pipeline component.
const STORE_ERROR_WINDOW_MS: i64 = 60_000;

pub async fn monitor(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let components = components(&app).await;
    let ok = components.iter().all(|(_, r)| r.is_ok());
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let details = q.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "details" || p.starts_with("details="))
    });
    let body = if details {
        let mut s = String::new();
        for (name, r) in &components {
            match r {
                Ok(()) => s.push_str(&format!("{name} : OK\n")),
                Err(e) => s.push_str(&format!("{name} : FAIL {e}\n")),
            }
        }
        s
    } else if ok {
        "OK\n".to_string()
    } else {
        "FAIL\n".to_string()
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn components(app: &AppState) -> Vec<(&'static str, Result<(), String>)> {
    let now = vitals_scheduler::now().0;
    let store = match tokio::time::timeout(Duration::from_secs(2), app.store().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2s".to_string()),
    };
    let m = app.metrics();
    let beat = m.scheduler_heartbeat_ms.load(Ordering::Relaxed);
    let scheduler = if now - beat <= SCHEDULER_STALE_MS {
        Ok(())
    } else {
        Err(format!("loop last ran {}s ago", (now - beat) / 1000))
    };
    let last_err = m.last_store_error_ms.load(Ordering::Relaxed);
    let pipeline = if last_err != 0 && now - last_err < STORE_ERROR_WINDOW_MS {
        Err("storing observations failed within the last minute".to_string())
    } else {
        Ok(())
    };
    vec![
        ("store", store),
        ("scheduler", scheduler),
        ("pipeline", pipeline),
    ]
}

pub async fn version(State(app): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "name": app.build.name,
        "version": app.build.version,
        "git_commit": app.build.git_commit,
        "build_profile": app.build.build_profile,
        "rustc": app.build.rustc,
        "started": app.started.to_rfc3339(),
    }))
}

/// `GET /api/v1/status`: the running system in numbers (scheduler lateness, queues, counts).
pub async fn status(State(app): State<AppState>) -> impl IntoResponse {
    let m = app.metrics();
    let (samples, p50, p99, max) = m.recent_lateness();
    let (assets, checks) = {
        let s = app.state().read();
        (
            s.len(),
            s.values()
                .map(|a| a.checks.values().filter(|c| c.configured).count())
                .sum::<usize>(),
        )
    };
    Json(serde_json::json!({
        "version": app.build.version,
        "started": app.started.to_rfc3339(),
        "assets": assets,
        "checks": checks,
        "scheduler": {
            "probes_total": m.total_probes(),
            "in_flight": m.in_flight.load(Ordering::Relaxed),
            "skipped_ticks": m.skipped_ticks.load(Ordering::Relaxed),
            "lateness": {
                "samples": samples,
                "p50_ms": p50 as f64 / 1000.0,
                "p99_ms": p99 as f64 / 1000.0,
                "max_ms": max as f64 / 1000.0,
            },
        },
        "pipeline": {
            "queued": app.pipeline.queued(),
            "observations_stored": m.observations_stored.load(Ordering::Relaxed),
            "store_errors": m.store_errors.load(Ordering::Relaxed),
        },
    }))
}
