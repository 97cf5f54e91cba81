//! The HTTP face of Vitals. Only this crate knows about HTTP routing and status codes.
//!
//! - `/monitor`, `/monitor?details`: this server's own health, in the plain detail-line format
//!   of the national platform services (`store : OK`), 200 or 503.
//! - `/version`: version and build information.
//! - `/metrics`: Prometheus text exposition, rendered from the live state at scrape time.
//! - `/`, `/assets/{id}`, `/fleet`, `/alerts`, `/notifications`, …: the web UI (see `ui`);
//!   `/status/{slug}`: public status pages.
//! - `/api/v1/notifiers` (and `…/{id}/test`), `/api/v1/status-pages` (and their notices).
//! - `/api/v1/…`: JSON API. Every error is JSON `{"error": "...", "field": "..."}` with a 4xx
//!   status, including unknown routes and methods; handlers never panic.
//!
//! Handlers read the in-memory [`LiveState`](vitals_scheduler::LiveState) for current status and
//! go to the store only for history.

pub mod agents;
mod alerts;
mod api;
pub mod auth;
mod compat;
pub mod edge;
mod engine_api;
mod error;
mod fleet;
pub mod guard;
mod ingest;
pub mod listen;
mod metrics;
mod monitor;
mod ops;
pub mod session;
pub mod site;
mod site_api;
mod ui;
pub mod views;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use vitals_scheduler::watch::HeartbeatRegistry;
use vitals_scheduler::{LiveState, Metrics, Pipeline};
use vitals_store::Store;

pub use error::AppError;
pub use site::Site;
pub use ui::UiSettings;

/// Who made a request (set by authentication; `local` without tokens). Read by the audit log.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// Version and build facts, filled in by the binary at compile time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub git_commit: &'static str,
    pub build_profile: &'static str,
    pub rustc: &'static str,
}

/// Everything the handlers share, behind one pointer: axum clones the state for every layer of
/// every request, and a struct of twenty `Arc`s made that ~15 % of a small request's CPU
/// (contended reference counts on two cores).
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl AppState {
    pub fn new(shared: AppShared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// What [`AppState`] points to.
pub struct AppShared {
    pub pipeline: Pipeline,
    /// Tokens and roles; open (no tokens) by default.
    pub auth: Arc<auth::Auth>,
    pub heartbeats: Arc<HeartbeatRegistry>,
    /// The cleanup job, when this process runs it.
    pub cleanup: Option<Arc<vitals_scheduler::housekeeping::Cleanup>>,
    /// Where audit lines are also appended (`[audit] file`).
    pub audit_file: Option<std::path::PathBuf>,
    pub build: Arc<BuildInfo>,
    pub started: vitals_core::Timestamp,
    /// How the web UI shows things (time zone, cookie flags).
    pub ui: Arc<UiSettings>,
    /// Status pages and notifiers (replaced on reload).
    pub site: Arc<Site>,
    /// The server's names, refusal counters, UI sessions and stream slots.
    pub protect: Arc<Protection>,
    /// The long-running workers, for `/monitor` (absent in router tests).
    pub workers: Option<Arc<vitals_scheduler::liveness::Workers>>,
    /// Site agents: their checks, when they were last seen (see `agents`).
    pub agents: Arc<agents::Agents>,
    /// Answers reused while the live state stays the same (see `views`).
    pub views: Arc<views::Views>,
}

/// What guards the edge of the server.
pub struct Protection {
    /// The names this server answers to (replaced on reload).
    pub hosts: std::sync::RwLock<Arc<guard::HostPolicy>>,
    pub edge: edge::Edge,
    pub sessions: Arc<session::Sessions>,
    /// Live event streams, from everyone.
    pub streams: Arc<tokio::sync::Semaphore>,
}

impl Protection {
    pub fn new(hosts: guard::HostPolicy) -> Protection {
        Protection {
            hosts: std::sync::RwLock::new(Arc::new(hosts)),
            edge: edge::Edge::default(),
            sessions: Arc::default(),
            streams: Arc::new(tokio::sync::Semaphore::new(ui::MAX_STREAMS_ALL)),
        }
    }

    pub fn set_hosts(&self, hosts: guard::HostPolicy) {
        *self.hosts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(hosts);
    }
}

impl Default for Protection {
    /// As for a server listening on loopback with no other names.
    fn default() -> Self {
        Protection::new(guard::HostPolicy::new(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
            &[],
            None,
        ))
    }
}

impl AppState {
    /// The domain's now, from the process's one clock (see `vitals_core::clock`).
    pub fn now(&self) -> vitals_core::Timestamp {
        self.pipeline.now()
    }
    pub fn state(&self) -> &Arc<LiveState> {
        self.pipeline.state()
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        self.pipeline.store()
    }
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.pipeline.metrics()
    }

    /// New tokens (on reload): sessions of removed tokens and of rotated secrets end.
    pub fn set_tokens(&self, tokens: &[vitals_config::TokenConfig]) {
        self.auth.set(tokens);
        let auth = self.auth.clone();
        self.protect
            .sessions
            .retain_tokens(|name, digest| auth.session_valid(name, digest));
    }
}

/// The OpenAPI 3 description of the whole HTTP API (checked against the server by schemathesis).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Requests handled at once; more are answered 503 with Retry-After.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Largest request body accepted by the result API (10,000 results fit easily).
pub const MAX_RESULTS_BODY: usize = 16 * 1024 * 1024;

/// The whole router; tests call it with `oneshot` without opening a socket.
pub fn router(app: AppState) -> Router {
    // django-health-monitor's paths end in '/'; both spellings are served.
    let compat = Router::new()
        .route("/health/", get(compat::health_list))
        .route("/health", get(compat::health_list))
        .route(
            "/health/{uid}/",
            get(compat::health_get).delete(compat::health_delete),
        )
        .route(
            "/health/{uid}",
            get(compat::health_get).delete(compat::health_delete),
        )
        .route(
            "/health/{uid}/{group}/",
            get(compat::health_get).delete(compat::health_delete),
        )
        .route(
            "/health/{uid}/{group}",
            get(compat::health_get).delete(compat::health_delete),
        )
        .route(
            "/health/{uid}/{group}/{test}/",
            get(compat::health_get).delete(compat::health_delete),
        )
        .route(
            "/health/{uid}/{group}/{test}",
            get(compat::health_get).delete(compat::health_delete),
        )
        .route("/health_test/", get(compat::tests_list))
        .route("/health_test", get(compat::tests_list))
        .route("/health_test/{test}/", get(compat::test_history))
        .route("/health_test/{test}", get(compat::test_history))
        .route(
            "/health_test/{test}/{uid}/",
            get(compat::test_history).post(compat::test_post),
        )
        .route(
            "/health_test/{test}/{uid}",
            get(compat::test_history).post(compat::test_post),
        )
        .route("/health_alarm/", get(compat::alarm_groups))
        .route("/health_alarm", get(compat::alarm_groups))
        .route("/health_alarm/{group}/", get(compat::alarm_tests))
        .route("/health_alarm/{group}", get(compat::alarm_tests))
        .route("/health_alarm/{group}/{test}/", get(compat::alarm))
        .route("/health_alarm/{group}/{test}", get(compat::alarm));
    Router::new()
        .merge(compat)
        .merge(ui::router())
        .route(
            "/api/v1/results",
            post(ingest::post_results).layer(DefaultBodyLimit::max(MAX_RESULTS_BODY)),
        )
        .route("/api/v1/agent/checks", get(agents::checks))
        .route(
            "/api/v1/agent/results",
            post(agents::results).layer(DefaultBodyLimit::max(MAX_RESULTS_BODY)),
        )
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}", get(alerts::get))
        .route("/api/v1/alerts/{id}/ack", post(alerts::ack))
        .route(
            "/api/v1/silences",
            get(alerts::silences).post(alerts::create_silence),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(alerts::expire_silence),
        )
        .route("/api/v1/notifications", get(alerts::notifications))
        .route(
            "/api/v1/jobs/cleanup",
            get(ops::cleanup_status).post(ops::cleanup_start),
        )
        .route("/api/v1/audit", get(ops::audit))
        .route("/api/v1/assets/{id}/rollups", get(ops::rollups))
        .route("/ping/{slug}", get(ingest::ping).post(ingest::ping))
        .route(
            "/ping/{slug}/{event}",
            get(ingest::ping_with).post(ingest::ping_with),
        )
        .route("/monitor", get(monitor::monitor))
        .route("/version", get(monitor::version))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/status", get(monitor::status))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/fleet/nodes", get(fleet::nodes))
        .route("/api/v1/fleet/nodes/{id}", get(fleet::node))
        .route("/api/v1/fleet/nodes/{id}/stats.csv", get(fleet::stats_csv))
        .route(
            "/api/v1/fleet/nodes/{id}/errors.csv",
            get(fleet::errors_csv),
        )
        .route("/api/v1/fleet/heatmap.svg", get(fleet::heatmap_svg))
        .route("/api/v1/fleet/heatmap.png", get(fleet::heatmap_png))
        .route("/api/v1/fleet/files", get(fleet::files))
        .route("/api/v1/engine/sources", get(engine_api::sources))
        .route("/api/v1/engine/pipelines", get(engine_api::pipelines))
        .route("/api/v1/engine/jobs", get(engine_api::jobs))
        .route("/api/v1/engine/jobs/{id}", get(engine_api::job))
        .route("/api/v1/engine/jobs/{id}/pause", post(engine_api::pause))
        .route("/api/v1/engine/jobs/{id}/resume", post(engine_api::resume))
        .route("/api/v1/engine/jobs/{id}/run", post(engine_api::run))
        .route(
            "/api/v1/engine/jobs/{id}/schedule",
            axum::routing::put(engine_api::set_schedule),
        )
        .route(
            "/api/v1/engine/jobs/{id}/override",
            axum::routing::delete(engine_api::clear_override),
        )
        .route("/api/v1/schedules", get(engine_api::check_schedules))
        .route(
            "/api/v1/assets/{id}/checks/{check}/schedule",
            axum::routing::put(engine_api::set_check_schedule)
                .delete(engine_api::clear_check_schedule),
        )
        .route("/api/v1/assets", get(api::list_assets))
        .route("/api/v1/assets/{id}", get(api::get_asset))
        .route("/api/v1/assets/{id}/observations", get(api::observations))
        .route("/api/v1/notifiers", get(site_api::notifiers))
        .route("/api/v1/notifiers/{id}/test", post(site_api::test_notifier))
        .route("/api/v1/status-pages", get(site_api::status_pages))
        .route(
            "/api/v1/status-pages/{slug}/notices",
            get(site_api::notices).post(site_api::create_notice),
        )
        .route(
            "/api/v1/status-pages/{slug}/notices/{id}",
            axum::routing::delete(site_api::end_notice),
        )
        // Route layers run after routing, the last added first: authenticate, then audit.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            ops::audit_layer,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::layer,
        ))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            error::shed,
        ))
        .with_state(app)
}
