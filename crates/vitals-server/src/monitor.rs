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

pub(crate) async fn components(app: &AppState) -> Vec<(&'static str, Result<(), String>)> {
    let now = app.now().0;
    let m = app.metrics();
    // The store: it must answer, and take writes (a full disk answers reads but not writes).
    let store = match m.store_failure() {
        Some((since, why)) => Err(format!(
            "writes fail since {} ({}s): {why}; {} probe observation(s) wait in memory, {} dropped since start",
            vitals_core::Timestamp(since).to_rfc3339(),
            (now - since) / 1000,
            m.observations_buffered.load(Ordering::Relaxed),
            m.observations_dropped.load(Ordering::Relaxed)
        )),
        None => match tokio::time::timeout(Duration::from_secs(2), app.store().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2s".to_string()),
        },
    };
    let mut out = vec![("store", store)];
    // Workers beat on the machine's clock, whatever clock the domain runs on.
    let wall = vitals_core::SystemClock::now().0;
    match &app.workers {
        Some(w) => out.extend(w.report(wall)),
        None => {
            // Without a worker registry (tests of the router): the scheduler's own heartbeat.
            let beat = m.scheduler_heartbeat_ms.load(Ordering::Relaxed);
            let scheduler = if wall - beat <= SCHEDULER_STALE_MS {
                Ok(())
            } else {
                Err(format!("loop last ran {}s ago", (wall - beat) / 1000))
            };
            out.push(("scheduler", scheduler));
        }
    }
    if !out.iter().any(|(n, _)| *n == "pipeline") {
        out.push(("pipeline", Ok(())));
    }
    // Replicas: one that cannot reach the database probes and decides nothing.
    let role = app.pipeline.role();
    if role.is_replica() {
        let view = role.view();
        out.push((
            "cluster",
            match view.detached {
                Some(why) => Err(format!(
                    "replica {} probes and decides nothing: {why}",
                    view.me
                )),
                None => Ok(()),
            },
        ));
    }
    out
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
        "memory": {
            "resident_bytes": resident_bytes(),
            "store_bytes": app.store().memory_in_use(),
        },
        "cluster": cluster(&app),
    }))
}

/// The process's resident memory (Linux: `VmRSS` of `/proc/self/status`); `None` elsewhere.
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// This replica among the replicas (`null` on its own).
fn cluster(app: &AppState) -> serde_json::Value {
    let role = app.pipeline.role();
    if !role.is_replica() {
        return serde_json::Value::Null;
    }
    let v = role.view();
    serde_json::json!({
        "replica": v.me,
        "decider": v.decider,
        "epoch": v.epoch,
        "members": v.members.iter().map(|m| serde_json::json!({"name": m.name, "address": m.address})).collect::<Vec<_>>(),
        "detached": v.detached,
    })
}
