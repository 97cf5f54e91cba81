//! The HTTP face of Vitals. Only this crate knows about HTTP routing and status codes.
//!
//! - `/monitor`, `/monitor?details`: this server's own health, in the plain detail-line format
//!   of the national platform services (`store : OK`), 200 or 503.
//! - `/version`: version and build information.
//! - `/metrics`: Prometheus text exposition, rendered from the live state at scrape time.
//! - `/api/v1/…`: JSON API. Every error is JSON `{"error": "...", "field": "..."}` with a 4xx
//!   status, including unknown routes and methods; handlers never panic.
//!
//! Handlers read the in-memory [`LiveState`](vitals_scheduler::LiveState) for current status and
//! go to the store only for history.

mod api;
mod error;
mod metrics;
mod monitor;

use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use vitals_scheduler::{LiveState, Metrics, Pipeline};
use vitals_store::Store;

pub use error::AppError;

/// Version and build facts, filled in by the binary at compile time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub git_commit: &'static str,
    pub build_profile: &'static str,
    pub rustc: &'static str,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub build: Arc<BuildInfo>,
    pub started: vitals_core::Timestamp,
}

impl AppState {
    pub fn state(&self) -> &Arc<LiveState> {
        self.pipeline.state()
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        self.pipeline.store()
    }
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.pipeline.metrics()
    }
}

/// The whole router; tests call it with `oneshot` without opening a socket.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/monitor", get(monitor::monitor))
        .route("/version", get(monitor::version))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/status", get(monitor::status))
        .route("/api/v1/assets", get(api::list_assets))
        .route("/api/v1/assets/{id}", get(api::get_asset))
        .route("/api/v1/assets/{id}/observations", get(api::observations))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(app)
}
