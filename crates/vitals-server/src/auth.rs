//! Access control: bearer tokens with roles, reporter scopes, per-token rate limits.
//!
//! Every route declares what it needs in [`ROUTES`] (method, route template, [`Need`]). The
//! middleware runs after routing, looks the matched route up, and refuses what the caller's
//! role does not allow. A route missing from the table needs `admin`: the table can only be
//! too strict, never too lax. Without configured tokens every caller is `local` with full
//! rights — the server then listens on loopback only (enforced at start).
//!
//! Secrets are compared as SHA-256 digests in constant time; only digests are kept.

use crate::edge::AuthFailure;
use crate::{AppError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use vitals_config::{Role, TokenConfig};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone (health checks of load balancers, the API description).
    Public,
    /// `viewer` or `admin`.
    Viewer,
    /// `reporter` or `admin` (scopes apply to reporters).
    Reporter,
    /// A reporter/admin token, or the heartbeat's own `?key=` (checked by the handler).
    Ping,
    /// `admin`.
    Admin,
}

/// The declaration of every route: `(method, route template, need)`.
pub const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/monitor", Need::Public),
    ("GET", "/version", Need::Public),
    ("GET", "/api/v1/openapi.json", Need::Public),
    ("GET", "/metrics", Need::Viewer),
    ("GET", "/api/v1/status", Need::Viewer),
    ("GET", "/api/v1/assets", Need::Viewer),
    ("GET", "/api/v1/assets/{id}", Need::Viewer),
    ("GET", "/api/v1/assets/{id}/observations", Need::Viewer),
    ("GET", "/api/v1/assets/{id}/rollups", Need::Viewer),
    ("POST", "/api/v1/results", Need::Reporter),
    ("GET", "/api/v1/agent/checks", Need::Reporter),
    ("POST", "/api/v1/agent/results", Need::Reporter),
    ("GET", "/api/v1/agents", Need::Viewer),
    ("GET", "/ping/{slug}", Need::Ping),
    ("POST", "/ping/{slug}", Need::Ping),
    ("GET", "/ping/{slug}/{event}", Need::Ping),
    ("POST", "/ping/{slug}/{event}", Need::Ping),
    ("GET", "/api/v1/alerts", Need::Viewer),
    ("GET", "/api/v1/alerts/{id}", Need::Viewer),
    ("POST", "/api/v1/alerts/{id}/ack", Need::Admin),
    ("GET", "/api/v1/silences", Need::Viewer),
    ("POST", "/api/v1/silences", Need::Admin),
    ("DELETE", "/api/v1/silences/{id}", Need::Admin),
    ("GET", "/api/v1/notifications", Need::Viewer),
    ("GET", "/api/v1/jobs/cleanup", Need::Viewer),
    ("POST", "/api/v1/jobs/cleanup", Need::Admin),
    ("GET", "/api/v1/audit", Need::Admin),
    ("GET", "/api/v1/fleet/nodes", Need::Viewer),
    ("GET", "/api/v1/fleet/nodes/{id}", Need::Viewer),
    ("GET", "/api/v1/fleet/nodes/{id}/stats.csv", Need::Viewer),
    ("GET", "/api/v1/fleet/nodes/{id}/errors.csv", Need::Viewer),
    ("GET", "/api/v1/fleet/heatmap.svg", Need::Viewer),
    ("GET", "/api/v1/fleet/heatmap.png", Need::Viewer),
    ("GET", "/api/v1/fleet/files", Need::Viewer),
    ("GET", "/api/v1/engine/sources", Need::Viewer),
    ("GET", "/api/v1/engine/pipelines", Need::Viewer),
    ("GET", "/api/v1/engine/jobs", Need::Viewer),
    ("GET", "/api/v1/engine/jobs/{id}", Need::Viewer),
    ("POST", "/api/v1/engine/jobs/{id}/pause", Need::Admin),
    ("POST", "/api/v1/engine/jobs/{id}/resume", Need::Admin),
    ("POST", "/api/v1/engine/jobs/{id}/run", Need::Admin),
    ("PUT", "/api/v1/engine/jobs/{id}/schedule", Need::Admin),
    ("DELETE", "/api/v1/engine/jobs/{id}/override", Need::Admin),
    ("GET", "/api/v1/schedules", Need::Viewer),
    (
        "PUT",
        "/api/v1/assets/{id}/checks/{check}/schedule",
        Need::Admin,
    ),
    (
        "DELETE",
        "/api/v1/assets/{id}/checks/{check}/schedule",
        Need::Admin,
    ),
    ("GET", "/api/v1/notifiers", Need::Viewer),
    ("POST", "/api/v1/notifiers/{id}/test", Need::Admin),
    ("GET", "/api/v1/status-pages", Need::Viewer),
    ("GET", "/api/v1/status-pages/{slug}/notices", Need::Viewer),
    ("POST", "/api/v1/status-pages/{slug}/notices", Need::Admin),
    (
        "DELETE",
        "/api/v1/status-pages/{slug}/notices/{id}",
        Need::Admin,
    ),
    ("GET", "/health/", Need::Viewer),
    ("GET", "/health", Need::Viewer),
    ("GET", "/health/{uid}/", Need::Viewer),
    ("GET", "/health/{uid}", Need::Viewer),
    ("GET", "/health/{uid}/{group}/", Need::Viewer),
    ("GET", "/health/{uid}/{group}", Need::Viewer),
    ("GET", "/health/{uid}/{group}/{test}/", Need::Viewer),
    ("GET", "/health/{uid}/{group}/{test}", Need::Viewer),
    ("DELETE", "/health/{uid}/", Need::Admin),
    ("DELETE", "/health/{uid}", Need::Admin),
    ("DELETE", "/health/{uid}/{group}/", Need::Admin),
    ("DELETE", "/health/{uid}/{group}", Need::Admin),
    ("DELETE", "/health/{uid}/{group}/{test}/", Need::Admin),
    ("DELETE", "/health/{uid}/{group}/{test}", Need::Admin),
    ("GET", "/health_test/", Need::Viewer),
    ("GET", "/health_test", Need::Viewer),
    ("GET", "/health_test/{test}/", Need::Viewer),
    ("GET", "/health_test/{test}", Need::Viewer),
    ("GET", "/health_test/{test}/{uid}/", Need::Viewer),
    ("GET", "/health_test/{test}/{uid}", Need::Viewer),
    ("POST", "/health_test/{test}/{uid}/", Need::Reporter),
    ("POST", "/health_test/{test}/{uid}", Need::Reporter),
    ("GET", "/health_alarm/", Need::Viewer),
    ("GET", "/health_alarm", Need::Viewer),
    ("GET", "/health_alarm/{group}/", Need::Viewer),
    ("GET", "/health_alarm/{group}", Need::Viewer),
    ("GET", "/health_alarm/{group}/{test}/", Need::Viewer),
    ("GET", "/health_alarm/{group}/{test}", Need::Viewer),
    // The web UI: pages read, forms act; login and static files are public.
    ("GET", "/", Need::Viewer),
    ("GET", "/assets/{id}", Need::Viewer),
    ("GET", "/fleet", Need::Viewer),
    ("GET", "/fleet/{id}", Need::Viewer),
    ("GET", "/alerts", Need::Viewer),
    ("GET", "/alerts/{id}", Need::Viewer),
    ("GET", "/notifications", Need::Viewer),
    ("GET", "/ui/events", Need::Viewer),
    ("GET", "/ui/static/{file}", Need::Public),
    ("GET", "/login", Need::Public),
    ("POST", "/login", Need::Public),
    ("GET", "/logout", Need::Public),
    ("POST", "/logout", Need::Public),
    ("POST", "/alerts/{id}/ack", Need::Admin),
    ("POST", "/alerts/silences", Need::Admin),
    ("POST", "/alerts/silences/{id}/expire", Need::Admin),
    ("GET", "/notifiers", Need::Viewer),
    ("POST", "/notifiers/{id}/test", Need::Admin),
    ("GET", "/status-pages", Need::Viewer),
    ("GET", "/sources", Need::Viewer),
    ("GET", "/pipelines", Need::Viewer),
    ("GET", "/jobs", Need::Viewer),
    // pause, resume, run, schedule
    ("POST", "/jobs/{id}/{action}", Need::Admin),
    ("POST", "/jobs/{id}/override/remove", Need::Admin),
    ("POST", "/assets/{id}/checks/{check}/schedule", Need::Admin),
    (
        "POST",
        "/assets/{id}/checks/{check}/schedule/remove",
        Need::Admin,
    ),
    ("POST", "/status-pages/{slug}/notices", Need::Admin),
    ("POST", "/status-pages/{slug}/notices/{id}/end", Need::Admin),
    // Public status pages: names, statuses, uptime and notices only (see ui/site.rs).
    ("GET", "/status/{slug}", Need::Public),
];

/// What a route needs; unknown routes need `admin` (fail closed).
pub fn need(method: &Method, template: &str) -> Need {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(rm, rt, _)| *rm == m && *rt == template)
        .map(|(_, _, n)| *n)
        .unwrap_or(Need::Admin)
}

/// Which assets a reporter may report for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    pub assets: Vec<String>,
    pub prefix: Option<String>,
}

impl Scope {
    pub fn unrestricted(&self) -> bool {
        self.assets.is_empty() && self.prefix.is_none()
    }

    pub fn allows(&self, asset: &str) -> bool {
        self.unrestricted()
            || self.assets.iter().any(|a| a == asset)
            || self.prefix.as_deref().is_some_and(|p| asset.starts_with(p))
    }
}

/// The authenticated caller, as a request extension.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub scope: Scope,
    /// The UI session the request came with (pages and forms only).
    pub session: Option<String>,
    /// Most assets this caller's pushes may create (0: no own quota).
    pub max_assets: usize,
    /// A site agent's token: the location whose checks it fetches and reports.
    pub location: Option<String>,
}

impl Caller {
    /// Whether this caller may report results for `asset`.
    pub fn may_report(&self, asset: &str) -> bool {
        self.role == Role::Admin || (self.role == Role::Reporter && self.scope.allows(asset))
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct Token {
    pub(crate) name: String,
    pub(crate) role: Role,
    digest: [u8; 32],
    scope: Scope,
    rate: u32,
    max_assets: usize,
    location: Option<String>,
    bucket: Mutex<Bucket>,
}

/// The configured tokens (replaced whole on reload).
#[derive(Default)]
pub struct Auth {
    tokens: RwLock<Arc<Vec<Arc<Token>>>>,
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    // Constant time: every byte is looked at whatever differs.
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Auth {
    pub fn new(configs: &[TokenConfig]) -> Auth {
        let a = Auth::default();
        a.set(configs);
        a
    }

    pub fn set(&self, configs: &[TokenConfig]) {
        let tokens = configs
            .iter()
            .filter_map(|c| {
                Some(Arc::new(Token {
                    name: c.name.clone(),
                    role: c.role,
                    digest: c.digest()?,
                    scope: Scope {
                        assets: c.assets.clone(),
                        prefix: c.asset_prefix.clone(),
                    },
                    rate: c.rate_limit,
                    max_assets: c.max_assets,
                    location: c.location.clone(),
                    bucket: Mutex::new(Bucket {
                        tokens: f64::from(c.rate_limit) * 2.0,
                        at: Instant::now(),
                    }),
                }))
            })
            .collect();
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
    }

    /// No tokens configured: everyone is `local` (loopback only).
    pub fn is_open(&self) -> bool {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The token called `name` (a UI session names its token).
    pub(crate) fn find_by_name(&self, name: &str) -> Option<Arc<Token>> {
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokens.iter().find(|t| t.name == name).cloned()
    }

    /// Whether a session opened with token `name` (secret `digest`) is still valid: the token
    /// exists and its secret has not been rotated.
    pub fn session_valid(&self, name: &str, digest: &[u8; 32]) -> bool {
        self.find_by_name(name)
            .is_some_and(|t| ct_eq(t.digest(), digest))
    }

    pub(crate) fn find(&self, secret: &str) -> Option<Arc<Token>> {
        let digest = vitals_config::sha256(secret.as_bytes());
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Compare with every token (no early exit on a match) so timing says nothing.
        let mut found = None;
        for t in tokens.iter() {
            if ct_eq(&t.digest, &digest) {
                found = Some(t.clone());
            }
        }
        found
    }
}

impl Token {
    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Token bucket: `rate` per second sustained, bursts of `2 × rate`. `Err(seconds)` to wait.
    fn admit(&self) -> Result<(), u64> {
        if self.rate == 0 {
            return Ok(());
        }
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let rate = f64::from(self.rate);
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate * 2.0);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn deny(status: StatusCode, msg: String) -> Response {
    let mut r = AppError {
        status,
        error: msg,
        field: None,
    }
    .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vitals\""),
        );
    }
    r
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer",
        Role::Reporter => "reporter",
        Role::Admin => "admin",
    }
}

fn allowed(role: Role, need: Need) -> bool {
    match need {
        Need::Public => true,
        Need::Viewer => matches!(role, Role::Viewer | Role::Admin),
        Need::Reporter | Need::Ping => matches!(role, Role::Reporter | Role::Admin),
        Need::Admin => role == Role::Admin,
    }
}

/// The middleware (a route layer: it runs after routing, so the matched route is known).
pub async fn layer(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let need = need(req.method(), &template);
    if app.auth.is_open() {
        req.extensions_mut().insert(Caller {
            name: "local".into(),
            role: Role::Admin,
            scope: Scope::default(),
            session: None,
            max_assets: 0,
            location: None,
        });
        return next.run(req).await;
    }
    let source = crate::edge::peer(&req);
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(String::from);
    // The session cookie authenticates the web UI only, never the JSON API: a page elsewhere
    // that gets the browser to send it can at most reach forms that also need a CSRF token.
    let session = if presented.is_none() && crate::ui::takes_session(&template) {
        crate::ui::session_cookie(req.headers())
    } else {
        None
    };
    if (presented.is_some() || session.is_some()) && app.protect.edge.is_throttled(source) {
        // A public route needs no credentials: it answers as to anyone (a load balancer's
        // health check behind the same address as a guessing client keeps working).
        if need == Need::Public {
            return next.run(req).await;
        }
        return throttled(&app, source);
    }
    let token = match (&presented, &session) {
        (Some(secret), _) => {
            let t = app.auth.find(secret);
            if t.is_none() {
                app.protect.edge.auth_failed(source, AuthFailure::Unknown);
            }
            t
        }
        (None, Some(id)) => app
            .protect
            .sessions
            .get(id, app.now())
            .and_then(|(name, digest)| {
                // A rotated secret or a removed token ends the session.
                app.auth
                    .find_by_name(&name)
                    .filter(|t| ct_eq(t.digest(), &digest))
            }),
        (None, None) => None,
    };
    let Some(token) = token else {
        if need == Need::Public {
            return next.run(req).await;
        }
        // Browsers (which ask for HTML) go to the login form; API clients get the 401.
        if presented.is_none()
            && req.method() == Method::GET
            && crate::ui::is_page(&template)
            && crate::ui::wants_html(req.headers())
        {
            return crate::ui::to_login(req.uri());
        }
        if need == Need::Ping
            && req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")))
        {
            return next.run(req).await; // the handler checks the heartbeat's own key
        }
        if presented.is_none() {
            app.protect.edge.auth_failed(source, AuthFailure::Missing);
        }
        return deny(
            StatusCode::UNAUTHORIZED,
            if presented.is_some() {
                "unknown token".into()
            } else {
                "this needs a token: Authorization: Bearer <token>".into()
            },
        );
    };
    if !allowed(token.role, need) {
        let needed = match need {
            Need::Admin => "admin",
            Need::Viewer => "viewer or admin",
            _ => "reporter or admin",
        };
        return deny(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} is a {} token; {} {} needs {needed}",
                token.name,
                role_name(token.role),
                req.method(),
                template
            ),
        );
    }
    // An agent token is scoped to its location's assignment and results, nothing else.
    if let Some(loc) = &token.location {
        if !crate::agents::ROUTES.contains(&template.as_str()) {
            return deny(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} is the agent token of location {loc:?}; it may only use {}",
                    token.name,
                    crate::agents::ROUTES.join(" and ")
                ),
            );
        }
    }
    if let Err(wait) = token.admit() {
        let mut r = deny(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "token {:?} is over its rate limit of {}/s",
                token.name, token.rate
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    req.extensions_mut().insert(Caller {
        name: token.name.clone(),
        role: token.role,
        scope: token.scope.clone(),
        session,
        max_assets: token.max_assets,
        location: token.location.clone(),
    });
    next.run(req).await
}

/// 429 for a source that failed to authenticate too often this minute.
pub(crate) fn throttled(app: &AppState, source: std::net::IpAddr) -> Response {
    let mut r = deny(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "too many failed authentications from {source} in the last minute; try again later"
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&app.protect.edge.retry_after(source).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_routes_need_admin_and_head_is_get() {
        assert_eq!(need(&Method::GET, "/api/v1/nothing"), Need::Admin);
        assert_eq!(need(&Method::HEAD, "/monitor"), Need::Public);
        assert_eq!(need(&Method::POST, "/api/v1/silences"), Need::Admin);
    }

    #[test]
    fn scopes() {
        let s = Scope {
            assets: vec!["node-1".into()],
            prefix: Some("clinic-17-".into()),
        };
        assert!(s.allows("node-1") && s.allows("clinic-17-ed") && !s.allows("clinic-18-ed"));
        assert!(Scope::default().allows("anything"));
    }
}
