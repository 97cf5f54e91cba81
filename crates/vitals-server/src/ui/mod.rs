//! The web UI: server-rendered HTML pages, readable without JavaScript.
//!
//! - `/` overview (filters in the query: `q`, `group`, `label`, `status`, `page`; uptime over
//!   24 h / 7 d / 30 d and the last 50 results per asset), `/assets/{id}` (checks, components,
//!   uptime, SVG charts of latency and of every numeric value, `range=1h|24h|7d|30d|custom`),
//!   `/fleet`, `/fleet/{id}`, `/alerts` (with the ack and silence forms), `/alerts/{id}`,
//!   `/notifications`, `/notifiers` (with a test button), `/status-pages` (notices).
//! - `/status/{slug}`: public, read-only status pages (no login; see `site`).
//! - `/login`, `/logout`: a token secret is exchanged for a signed `vitals_session` cookie.
//! - `/ui/static/{file}`: the one CSS and one JS file, embedded in the binary.
//! - `/ui/events`: server-sent events with status changes (the JS is progressive enhancement).
//!
//! Sessions and CSRF tokens are HMAC-SHA-256 signed with a random per-process key: a restart
//! ends every session, which is the price of keeping no session store.

mod alerts;
mod asset;
mod bars;
mod charts;
mod engine;
mod fleet;
mod overview;
mod site;

use crate::auth::Caller;
use crate::{AppError, AppState};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;
use vitals_config::Role;
use vitals_core::{Status, Timestamp};

/// Writes into a `String` (which cannot fail).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt(&mut $dst, ::std::format_args!($($arg)*));
    }};
}
pub(crate) use w;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vitals_session";
/// How long a login lasts.
const SESSION_MS: i64 = 12 * 3_600_000;
/// How often `/ui/events` looks at the live state for changes.
const EVENTS_EVERY: Duration = Duration::from_secs(2);
/// Beyond this many changed assets in one event, clients are told to reload instead.
const EVENTS_MAX_CHANGED: usize = 2000;
/// Live event streams open at once, from everyone.
pub const MAX_STREAMS_ALL: usize = 512;

/// How the UI shows things.
#[derive(Debug, Clone, PartialEq)]
pub struct UiSettings {
    /// Times are stored in UTC and shown in this zone.
    pub tz: chrono_tz::Tz,
    /// Mark the session cookie `Secure` (the server itself speaks TLS).
    pub secure_cookies: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            tz: chrono_tz::UTC,
            secure_cookies: false,
        }
    }
}

impl UiSettings {
    /// From `[ui]`; `tls` is whether the server serves HTTPS (`server.tls_cert`).
    pub fn from_config(c: &vitals_config::UiConfig, tls: bool) -> UiSettings {
        UiSettings {
            tz: c.timezone,
            secure_cookies: tls,
        }
    }
}

/// The UI's routes (merged into the main router, under its authentication).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/assets/{id}", get(asset::page))
        .route("/fleet", get(fleet::list))
        .route("/fleet/{id}", get(fleet::node))
        .route("/alerts", get(alerts::page))
        .route("/alerts/{id}", get(alerts::one))
        .route("/alerts/{id}/ack", axum::routing::post(alerts::ack))
        .route(
            "/alerts/silences",
            axum::routing::post(alerts::create_silence),
        )
        .route(
            "/alerts/silences/{id}/expire",
            axum::routing::post(alerts::expire_silence),
        )
        .route("/notifications", get(alerts::notifications))
        .route("/notifiers", get(site::notifiers))
        .route(
            "/notifiers/{id}/test",
            axum::routing::post(site::test_notifier),
        )
        .route("/status-pages", get(site::pages))
        .route(
            "/status-pages/{slug}/notices",
            axum::routing::post(site::post_notice),
        )
        .route(
            "/status-pages/{slug}/notices/{id}/end",
            axum::routing::post(site::end_notice),
        )
        .route("/status/{slug}", get(site::public))
        .route("/sources", get(engine::sources))
        .route("/pipelines", get(engine::pipelines))
        .route("/jobs", get(engine::jobs))
        .route(
            "/jobs/{id}/{action}",
            axum::routing::post(engine::job_action),
        )
        .route(
            "/jobs/{id}/override/remove",
            axum::routing::post(engine::remove_override),
        )
        .route(
            "/assets/{id}/checks/{check}/schedule",
            axum::routing::post(engine::check_schedule),
        )
        .route(
            "/assets/{id}/checks/{check}/schedule/remove",
            axum::routing::post(engine::remove_check_schedule),
        )
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout).post(logout))
        .route("/ui/static/{file}", get(static_file))
        .route("/ui/events", get(events))
        // The fastest level: the overview of 10,000 assets is ~200 KB of very repetitive HTML,
        // which level 1 still shrinks about 15×, at a fraction of the default level's CPU.
        .layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::compression::CompressionLevel::Fastest),
        )
}

/// Whether a route template is a UI page (unauthenticated visits go to the login form).
pub(crate) fn is_page(template: &str) -> bool {
    matches!(
        template,
        "/" | "/assets/{id}"
            | "/fleet"
            | "/fleet/{id}"
            | "/alerts"
            | "/alerts/{id}"
            | "/notifications"
            | "/notifiers"
            | "/status-pages"
            | "/sources"
            | "/pipelines"
            | "/jobs"
    )
}

/// Whether a route takes the session cookie: the web UI's pages, their forms and the event
/// stream — never the JSON API, the compatible API, pings or the machine endpoints.
pub(crate) fn takes_session(template: &str) -> bool {
    !(template.is_empty()
        || template.starts_with("/api/")
        || template.starts_with("/ping/")
        || template.starts_with("/health")
        || matches!(template, "/metrics" | "/monitor" | "/version"))
}

/// Whether the client asks for HTML (a browser), by its `Accept` header.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// `303` to the login form, coming back to `uri` afterwards.
pub(crate) fn to_login(uri: &Uri) -> Response {
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    redirect(&format!("/login?{}", query(&[("next", back)])))
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A local path to return to: a path of this server, never another site. `//host`, `/\\host`,
/// schemes, and control characters or white space (which browsers drop, turning `/\t/host`
/// into `//host`) are refused, also once percent-decoded.
pub(crate) fn safe_next(next: Option<&String>) -> String {
    fn local(p: &str) -> bool {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(char::is_control)
    }
    match next {
        Some(n)
            if n.len() <= 2048
                && local(n)
                && !n.contains(' ')
                && local(&percent_decode(n))
                && local(&percent_decode(&percent_decode(n))) =>
        {
            n.clone()
        }
        _ => "/".to_string(),
    }
}

/// `%xx` decoded (invalid escapes kept as they are; bytes that are not UTF-8 replaced).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(x) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// --- signing ---

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

fn mac(msg: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = match Hmac::<Sha256>::new_from_slice(key()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    m.update(msg.as_bytes());
    m.finalize().into_bytes().into()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        w!(s, "{x:02x}");
    }
    s
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The session id in the request's cookie (whether it is live is [`crate::session`]'s call).
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(String::from)
}

fn csrf_for(user: &str, session: Option<&str>) -> String {
    hex(&mac(&format!("csrf\n{user}\n{}", session.unwrap_or(""))))
}

// --- request context ---

/// Who is looking, and what a page needs to know about them.
pub(crate) struct Ctx {
    pub user: String,
    pub admin: bool,
    /// No tokens configured: no login, no logout link.
    pub open: bool,
    /// The CSRF token the page's forms carry.
    pub csrf: String,
    pub tz: chrono_tz::Tz,
}

impl Ctx {
    pub fn new(app: &AppState, caller: Option<&Caller>, headers: &HeaderMap) -> Ctx {
        let user = caller.map_or_else(|| "anonymous".to_string(), |c| c.name.clone());
        Ctx {
            admin: caller.is_some_and(|c| c.role == Role::Admin),
            open: app.auth.is_open(),
            csrf: csrf_for(&user, cookie(headers, SESSION_COOKIE)),
            user,
            tz: app.ui.tz,
        }
    }

    /// Whether a form's CSRF token is the one this page would have rendered.
    pub fn csrf_ok(&self, presented: Option<&String>) -> bool {
        presented.is_some_and(|p| ct_eq(p.as_bytes(), self.csrf.as_bytes()))
    }

    /// A time in the configured zone, with the UTC instant in `datetime`.
    pub fn time(&self, t: Timestamp) -> Time {
        Time(t, self.tz)
    }

    /// A time in the configured zone as plain text (for tooltips).
    pub fn plain_time(&self, t: Timestamp) -> String {
        chrono::DateTime::from_timestamp_millis(t.0)
            .map(|d| {
                d.with_timezone(&self.tz)
                    .format("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// Hidden CSRF field for a form.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            self.csrf
        )
    }
}

/// A `<time>` element: local time as text, the UTC instant in `datetime`.
pub(crate) struct Time(Timestamp, chrono_tz::Tz);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_millis(self.0 .0) {
            Some(d) => write!(
                f,
                "<time datetime=\"{}\">{}</time>",
                d.format("%Y-%m-%dT%H:%M:%SZ"),
                d.with_timezone(&self.1).format("%Y-%m-%d %H:%M:%S %Z")
            ),
            None => f.write_str("—"),
        }
    }
}

/// HTML-escapes text for element content and quoted attributes.
pub(crate) struct E<'a>(pub &'a str);

impl fmt::Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut last = 0;
        for (i, c) in s.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&s[last..i])?;
            f.write_str(rep)?;
            last = i + 1;
        }
        f.write_str(&s[last..])
    }
}

/// Percent-encodes a path segment (everything but unreserved characters).
pub(crate) struct U<'a>(pub &'a str);

impl fmt::Display for U<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Runs of unreserved bytes are written as one slice (ids usually are one run: the
        // overview writes 1,000 of them per page).
        let s = self.0;
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            if !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')) {
                f.write_str(&s[last..i])?;
                write!(f, "%{b:02X}")?;
                last = i + 1;
            }
        }
        f.write_str(&s[last..])
    }
}

/// A query string from pairs, leaving out empty values (so links stay short and stable).
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// CSS class and text of a status (`None`: never ran).
pub(crate) fn status_parts(s: Option<Status>) -> (&'static str, &'static str) {
    match s {
        Some(Status::Ok) => ("ok", "OK"),
        Some(Status::Warn) => ("warn", "WARN"),
        Some(Status::Crit) => ("crit", "CRIT"),
        Some(Status::Unknown) => ("unknown", "UNKNOWN"),
        None => ("pending", "PENDING"),
    }
}

/// A status badge: the text says it, the colour only repeats it.
pub(crate) fn badge(s: Option<Status>) -> String {
    let (c, t) = status_parts(s);
    format!("<span class=\"status status-{c}\">{t}</span>")
}

// --- pages ---

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/fleet", "Fleet"),
    ("/sources", "Sources"),
    ("/pipelines", "Pipelines"),
    ("/jobs", "Jobs"),
    ("/alerts", "Alerts"),
    ("/notifications", "Notifications"),
    ("/notifiers", "Notifiers"),
    ("/status-pages", "Status pages"),
];

/// A whole page around `body`; `active` is the nav entry's path.
pub(crate) fn layout(
    ctx: &Ctx,
    status: StatusCode,
    title: &str,
    active: &str,
    body: &str,
) -> Response {
    let mut h = String::with_capacity(body.len() + 2048);
    w!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<title>{} · Vitals</title><link rel=\"stylesheet\" href=\"/ui/static/ui.css?v={}\">\
<script src=\"/ui/static/ui.js?v={}\" defer></script></head><body>\
<a class=\"skip\" href=\"#main\">Skip to content</a><header><nav aria-label=\"Main\"><ul>",
        E(title),
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION")
    );
    for (href, name) in NAV {
        if *href == active {
            w!(
                h,
                "<li><a href=\"{href}\" aria-current=\"page\">{name}</a></li>"
            );
        } else {
            w!(h, "<li><a href=\"{href}\">{name}</a></li>");
        }
    }
    h.push_str("</ul></nav><p class=\"who\">");
    if ctx.open {
        h.push_str("local access");
    } else {
        w!(
            h,
            "<span id=\"user\">{}</span> ({}) · <a href=\"/logout\">Log out</a>",
            E(&ctx.user),
            if ctx.admin { "admin" } else { "viewer" }
        );
    }
    w!(
        h,
        " · <span id=\"live\" aria-live=\"polite\">times in {}</span></p></header><main id=\"main\" tabindex=\"-1\"><h1>{}</h1>",
        E(ctx.tz.name()),
        E(title)
    );
    h.push_str(body);
    h.push_str(
        "</main><footer><noscript>Live updates need JavaScript; reload the page to see changes. \
</noscript><a href=\"\" id=\"refresh\">Refresh</a></footer></body></html>",
    );
    html(status, h)
}

/// An HTML response with the UI's security headers.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let hs = r.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    hs.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    hs.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    hs.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// An error as a page (status and message from the API's own error).
pub(crate) fn error_page(ctx: &Ctx, e: &AppError) -> Response {
    let mut b = String::new();
    w!(b, "<p class=\"error\" role=\"alert\">{}", E(&e.error));
    if let Some(f) = &e.field {
        w!(b, " (field <code>{}</code>)", E(f));
    }
    // No `javascript:` link: the CSP forbids it; the browser's own Back works.
    b.push_str("</p><p><a href=\"/\">Overview</a> · <a href=\"/alerts\">Alerts</a></p>");
    let title = e.status.canonical_reason().unwrap_or("Error");
    layout(ctx, e.status, title, "", &b)
}

// --- static files, login, events ---

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "ui.css" => (CSS, "text/css; charset=utf-8"),
        "ui.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return AppError::not_found(format!("no static file {file:?}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            // The pages link them with ?v=<version>, so a new release is fetched anew.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

async fn login_form(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(&app, None, &headers);
    login_page(&ctx, StatusCode::OK, &safe_next(q.get("next")), None)
}

fn login_page(ctx: &Ctx, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let mut b = String::new();
    if ctx.open {
        b.push_str("<p>No tokens are configured: this server is open on loopback and needs no login. <a href=\"/\">Go to the overview</a>.</p>");
        return layout(ctx, status, "Log in", "", &b);
    }
    if let Some(e) = error {
        w!(
            b,
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
            E(e)
        );
    }
    w!(
        b,
        "<form id=\"login\" method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"next\" value=\"{}\">\
<p><label for=\"token\">Token</label> <input id=\"token\" name=\"token\" type=\"password\" \
autocomplete=\"current-password\" required autofocus></p>\
<p><button type=\"submit\">Log in</button></p></form>\
<p>A viewer token can read every page; an admin token can also acknowledge alerts and manage silences.</p>",
        E(next)
    );
    layout(ctx, status, "Log in", "", &b)
}

async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, None, &headers);
    let next = safe_next(f.get("next"));
    if ctx.open {
        return redirect(&next);
    }
    let source = peer
        .map(|Extension(c)| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    if app.protect.edge.is_throttled(source) {
        return crate::auth::throttled(&app, source);
    }
    let Some(secret) = f.get("token").map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return login_page(&ctx, StatusCode::BAD_REQUEST, &next, Some("Enter a token."));
    };
    let Some(token) = app.auth.find(secret) else {
        app.protect
            .edge
            .auth_failed(source, crate::edge::AuthFailure::Login);
        return login_page(
            &ctx,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("Unknown token."),
        );
    };
    if !matches!(token.role, Role::Viewer | Role::Admin) {
        return login_page(
            &ctx,
            StatusCode::FORBIDDEN,
            &next,
            Some("This is a reporter token: it can send results but not use the UI."),
        );
    }
    let now = app.now();
    let id = app.protect.sessions.open(
        &token.name,
        *token.digest(),
        Timestamp(now.0 + SESSION_MS),
        now,
    );
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        SESSION_MS / 1000,
        if app.ui.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut r = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.extensions_mut().insert(crate::Actor(token.name.clone()));
    r
}

/// Ends the session on the server too: the cookie is worthless afterwards, wherever a copy of
/// it is.
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        app.protect.sessions.close(&id);
    }
    let mut r = redirect("/login");
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if app.ui.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Counts per status and each asset's status, for `/ui/events`.
fn snapshot(app: &AppState) -> (BTreeMap<&'static str, usize>, HashMap<String, &'static str>) {
    let state = app.state().read();
    let mut counts: BTreeMap<&'static str, usize> = ["ok", "warn", "crit", "unknown", "pending"]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    let mut each = HashMap::with_capacity(state.len());
    for a in state.values() {
        let (c, _) = status_parts(a.status());
        *counts.entry(c).or_default() += 1;
        each.insert(a.record.id.clone(), c);
    }
    (counts, each)
}

type Snapshot = (BTreeMap<&'static str, usize>, HashMap<String, &'static str>);

/// `GET /ui/events`: an event at once with the counts, then one whenever counts or an asset's
/// status change (`{"counts": {...}, "changed": {"asset": "crit"}, "reload": false}`).
/// A client that does not ask for `text/event-stream` (short polling, scripts) gets the
/// current `{"counts": {...}, "statuses": {"asset": "crit"}}` once instead of an endless stream.
///
/// Streams are bounded: [`crate::session::MAX_STREAMS`] per session (429 beyond) and
/// [`MAX_STREAMS_ALL`] in all (503 beyond); a stream ends when its session does (logout,
/// expiry, a rotated or removed token).
async fn events(State(app): State<AppState>, c: MaybeCaller, headers: HeaderMap) -> Response {
    let sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !sse {
        let (counts, each) = snapshot(&app);
        return axum::Json(serde_json::json!({ "counts": counts, "statuses": each }))
            .into_response();
    }
    let session = caller(&c).and_then(|c| c.session.clone());
    let slot = match &session {
        Some(id) => match app.protect.sessions.stream(id) {
            Some(slot) => Some(slot),
            None => {
                return AppError {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    error: format!(
                        "this session already has {} live event streams",
                        crate::session::MAX_STREAMS
                    ),
                    field: None,
                }
                .into_response()
            }
        },
        None => None,
    };
    let Ok(permit) = app.protect.streams.clone().try_acquire_owned() else {
        return AppError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: format!("{MAX_STREAMS_ALL} live event streams are open; poll instead"),
            field: None,
        }
        .into_response();
    };
    let held = (session, slot, permit);
    let stream = futures_util::stream::unfold(
        (app, None::<Snapshot>, held),
        |(app, prev, held)| async move {
            let mut prev = prev;
            loop {
                if prev.is_some() {
                    tokio::time::sleep(EVENTS_EVERY).await;
                }
                if let Some(id) = &held.0 {
                    let live = app
                        .protect
                        .sessions
                        .get(id, app.now())
                        .is_some_and(|(name, digest)| app.auth.session_valid(&name, &digest));
                    if !live {
                        return None;
                    }
                }
                let (counts, each) = snapshot(&app);
                let mut changed: BTreeMap<&str, &str> = BTreeMap::new();
                if let Some((_, old)) = &prev {
                    for (id, s) in &each {
                        if old.get(id) != Some(s) {
                            changed.insert(id, s);
                        }
                    }
                }
                let counts_changed = prev.as_ref().is_none_or(|(c, _)| *c != counts);
                if counts_changed || !changed.is_empty() {
                    let reload = changed.len() > EVENTS_MAX_CHANGED;
                    if reload {
                        changed.clear();
                    }
                    let data = serde_json::json!({
                        "counts": counts,
                        "changed": changed,
                        "reload": reload,
                    })
                    .to_string();
                    let ev: Result<Event, std::convert::Infallible> =
                        Ok(Event::default().event("status").data(data));
                    return Some((ev, (app, Some((counts, each)), held)));
                }
                prev = Some((counts, each));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The caller set by authentication, if any.
pub(crate) type MaybeCaller = Option<Extension<Caller>>;

pub(crate) fn caller(c: &MaybeCaller) -> Option<&Caller> {
    c.as_ref().map(|Extension(c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_encoding() {
        assert_eq!(
            E("<script>alert('x')&\"</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
        assert_eq!(U("a b/c").to_string(), "a%20b%2Fc");
        assert_eq!(query(&[("q", "a b"), ("group", "")]), "q=a+b");
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some(&"/alerts?x=1".into())), "/alerts?x=1");
        assert_eq!(safe_next(Some(&"//evil.example".into())), "/");
        assert_eq!(safe_next(Some(&"https://evil.example".into())), "/");
        assert_eq!(safe_next(None), "/");
        for bad in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/%2509/evil.example",
            "/\\evil.example",
            "/%5Cevil.example",
            "/%2F/evil.example",
            "/ /evil.example",
            " //evil.example",
            "/\n/evil.example",
        ] {
            assert_eq!(safe_next(Some(&bad.to_string())), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&"/assets/a%20b".into())), "/assets/a%20b");
    }
}
