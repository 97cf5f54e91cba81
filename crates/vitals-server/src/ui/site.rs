//! `/status/{slug}` (public status pages), `/status-pages` (their notices, for admins to post
//! and end) and `/notifiers` (the configured channels, with a Test button for admins).
//!
//! A public status page is rendered on its own, not inside the UI's layout: no navigation, no
//! script, no ids, reasons, checks or links into the estate — only the page's assets' names,
//! statuses, uptime and last results, and the notices. It refreshes itself every minute
//! (`<meta http-equiv="refresh">`, which needs no script).

use super::bars;
use super::{caller, error_page, html, layout, redirect, w, Ctx, MaybeCaller, E, U};
use crate::{AppError, AppState};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use vitals_core::{Status, Timestamp};
use vitals_scheduler::history::{merge_recent, Uptime, RECENT};
use vitals_store::Notice;

/// Ended notices stay on the public page this long.
const ENDED_SHOWN_MS: i64 = 7 * 86_400_000;

/// One row of a status page.
struct Row {
    name: String,
    status: Option<Status>,
    uptime: Uptime,
    recent: Vec<(Timestamp, Status)>,
}

/// The page's assets, listed ones first (in their order), then the groups' by name.
fn rows(app: &AppState, page: &vitals_config::StatusPageConfig, now: Timestamp) -> Vec<Row> {
    let state = app.state().read();
    let mut picked: Vec<&vitals_scheduler::state::AssetState> =
        page.assets.iter().filter_map(|id| state.get(id)).collect();
    let mut grouped: Vec<_> = state
        .values()
        .filter(|a| {
            !page.assets.contains(&a.record.id) && page.shows(&a.record.id, &a.record.groups)
        })
        .collect();
    grouped.sort_by(|a, b| {
        a.display_name()
            .to_lowercase()
            .cmp(&b.display_name().to_lowercase())
    });
    picked.extend(grouped);
    picked
        .into_iter()
        .map(|a| {
            let mut uptime = Uptime::default();
            for c in a.checks.values() {
                uptime.add(&c.history.uptime(now));
            }
            Row {
                name: a.display_name().to_string(),
                status: a.status(),
                uptime,
                recent: merge_recent(a.checks.values().map(|c| &*c.history), RECENT),
            }
        })
        .collect()
}

fn status_word(s: Option<Status>) -> (&'static str, &'static str) {
    match s {
        Some(Status::Ok) => ("ok", "Operational"),
        Some(Status::Warn) => ("warn", "Degraded"),
        Some(Status::Crit) => ("crit", "Down"),
        Some(Status::Unknown) => ("unknown", "Unknown"),
        None => ("pending", "No data yet"),
    }
}

fn notice_html(mut b: &mut String, n: &Notice, ctx: &Ctx, admin_form: Option<&str>) {
    w!(
        b,
        "<article class=\"notice notice-{kind}{ended}\" id=\"notice-{id}\" data-kind=\"{kind}\"><h3>{label}: {title}</h3>",
        kind = E(&n.kind),
        ended = if n.ended.is_some() { " notice-ended" } else { "" },
        id = n.id,
        label = match n.kind.as_str() {
            "maintenance" => "Maintenance",
            "incident" => "Incident",
            _ => "Notice",
        },
        title = E(&n.title)
    );
    for para in n.body.split("\n\n").filter(|p| !p.trim().is_empty()) {
        w!(b, "<p>{}</p>", E(para.trim()));
    }
    w!(b, "<p class=\"hint\">Posted {}", ctx.time(n.created));
    if let Some(e) = n.ended {
        w!(b, " · ended {}", ctx.time(e));
    }
    b.push_str("</p>");
    if let Some(form) = admin_form {
        b.push_str(form);
    }
    b.push_str("</article>");
}

/// `GET /status/{slug}`: public, read-only.
pub async fn public(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    // The public page knows nobody; its times use the configured zone.
    let ctx = Ctx::new(&app, None, &headers);
    let Some(page) = app.site.status_page(&slug) else {
        return public_html(
            StatusCode::NOT_FOUND,
            "Not found",
            "<p>There is no status page here.</p>",
        );
    };
    let now = app.now();
    let notices = match app.store().notices(&slug, 50).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "status page notices");
            Vec::new()
        }
    };
    let rows = rows(&app, &page, now);
    let worst = rows.iter().filter_map(|r| r.status).reduce(Status::worst);
    let mut b = String::with_capacity(4096 + rows.len() * 600);
    if let Some(d) = &page.description {
        w!(b, "<p class=\"lead\">{}</p>", E(d));
    }
    let (class, overall) = match worst {
        _ if rows.is_empty() => ("pending", "No services are listed on this page yet."),
        Some(Status::Ok) => ("ok", "All services are operational."),
        Some(Status::Warn) => ("warn", "Some services are degraded."),
        Some(Status::Crit) => ("crit", "Some services are down."),
        Some(Status::Unknown) => ("unknown", "The state of some services is unknown."),
        None => ("pending", "No data yet."),
    };
    w!(
        b,
        "<p id=\"overall\" class=\"overall status-{class}\" data-status=\"{class}\">{overall}</p>"
    );
    let open: Vec<&Notice> = notices.iter().filter(|n| n.ended.is_none()).collect();
    let recent_ended: Vec<&Notice> = notices
        .iter()
        .filter(|n| n.ended.is_some_and(|e| now.0 - e.0 <= ENDED_SHOWN_MS))
        .collect();
    if !open.is_empty() {
        b.push_str("<section id=\"notices\" aria-label=\"Notices\">");
        for n in open {
            notice_html(&mut b, n, &ctx, None);
        }
        b.push_str("</section>");
    }
    b.push_str(
        "<table id=\"services\"><caption class=\"sr\">Services</caption><thead><tr>\
<th scope=\"col\">Service</th><th scope=\"col\">Status</th><th scope=\"col\">Last 50 results</th>\
<th scope=\"col\" class=\"num\">24 h</th><th scope=\"col\" class=\"num\">7 days</th>\
<th scope=\"col\" class=\"num\">30 days</th></tr></thead><tbody>",
    );
    for r in &rows {
        let (c, word) = status_word(r.status);
        w!(
            b,
            "<tr data-status=\"{c}\"><th scope=\"row\">{}</th><td><span class=\"status status-{c}\">{word}</span></td><td>{}</td>{}</tr>",
            E(&r.name),
            bars::bar(&r.recent, None),
            bars::uptime_cells(&r.uptime)
        );
    }
    b.push_str("</tbody></table><p class=\"hint\">Uptime is the share of checks that found the service working. Times in ");
    w!(
        b,
        "{}. This page refreshes itself every minute.</p>",
        E(ctx.tz.name())
    );
    if !recent_ended.is_empty() {
        b.push_str("<section id=\"past-notices\"><h2>Recently ended</h2>");
        for n in recent_ended {
            notice_html(&mut b, n, &ctx, None);
        }
        b.push_str("</section>");
    }
    public_html(StatusCode::OK, &page.title, &b)
}

/// A public page: the stylesheet, no script, no navigation, no user.
fn public_html(status: StatusCode, title: &str, body: &str) -> Response {
    let mut h = String::with_capacity(body.len() + 1024);
    w!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\"><meta http-equiv=\"refresh\" content=\"60\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{t}</title><link rel=\"stylesheet\" href=\"/ui/static/ui.css?v={v}\"></head>\
<body class=\"public\"><main id=\"main\"><h1>{t}</h1>{body}</main></body></html>",
        t = E(title),
        v = env!("CARGO_PKG_VERSION")
    );
    html(status, h)
}

// --- admin: status pages and their notices ---

/// `GET /status-pages`.
pub async fn pages(State(app): State<AppState>, who: MaybeCaller, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    match render_pages(&app, &ctx).await {
        Ok(b) => layout(&ctx, StatusCode::OK, "Status pages", "/status-pages", &b),
        Err(e) => error_page(&ctx, &e),
    }
}

async fn render_pages(app: &AppState, ctx: &Ctx) -> Result<String, AppError> {
    let pages = app.site.status_pages();
    let mut b = String::with_capacity(8192);
    if pages.is_empty() {
        b.push_str("<p class=\"empty\" id=\"status-pages\">No status pages are configured. Add a <code>[[status_page]]</code> with a slug, a title and the groups or assets it shows.</p>");
        return Ok(b);
    }
    b.push_str("<p>Public pages, readable without login. They show only the names, statuses and uptime of their services and the notices posted here.</p>");
    for p in pages.iter() {
        w!(
            b,
            "<section class=\"status-page\" id=\"page-{slug}\"><h2>{title}</h2><p><a href=\"/status/{uslug}\">/status/{slug}</a> · ",
            slug = E(&p.slug),
            uslug = U(&p.slug),
            title = E(&p.title)
        );
        let mut what = Vec::new();
        if !p.assets.is_empty() {
            what.push(format!("assets {}", p.assets.join(", ")));
        }
        if !p.groups.is_empty() {
            what.push(format!("groups {}", p.groups.join(", ")));
        }
        w!(b, "{}</p>", E(&what.join("; ")));
        let notices = app
            .store()
            .notices(&p.slug, 50)
            .await
            .map_err(AppError::unavailable)?;
        if notices.is_empty() {
            w!(
                b,
                "<p class=\"empty\" id=\"notices-{}\">No notices.</p>",
                E(&p.slug)
            );
        } else {
            w!(b, "<div id=\"notices-{}\">", E(&p.slug));
            for n in &notices {
                let form = (ctx.admin && n.ended.is_none()).then(|| {
                    format!(
                        "<form id=\"notice-end-{id}\" method=\"post\" action=\"/status-pages/{slug}/notices/{id}/end\">{}\
<button type=\"submit\">End this notice</button></form>",
                        ctx.csrf_field(),
                        id = n.id,
                        slug = U(&p.slug)
                    )
                });
                notice_html(&mut b, n, ctx, form.as_deref());
            }
            b.push_str("</div>");
        }
        if ctx.admin {
            w!(
                b,
                "<form id=\"notice-new-{slug}\" class=\"notice-new\" method=\"post\" action=\"/status-pages/{uslug}/notices\">{csrf}\
<h3>Post a notice on this page</h3>\
<p><label for=\"notice-kind-{slug}\">Kind</label> <select id=\"notice-kind-{slug}\" name=\"kind\">\
<option value=\"info\">Notice</option><option value=\"maintenance\">Maintenance</option><option value=\"incident\">Incident</option></select></p>\
<p><label for=\"notice-title-{slug}\">Title</label> <input id=\"notice-title-{slug}\" name=\"title\" size=\"50\" maxlength=\"200\" required></p>\
<p><label for=\"notice-body-{slug}\">Text</label><br><textarea id=\"notice-body-{slug}\" name=\"body\" rows=\"4\" cols=\"70\" maxlength=\"4000\"></textarea></p>\
<p><button type=\"submit\">Post notice</button></p></form>",
                slug = E(&p.slug),
                uslug = U(&p.slug),
                csrf = ctx.csrf_field()
            );
        }
        b.push_str("</section>");
    }
    if !ctx.admin {
        b.push_str("<p>Posting and ending notices needs an admin token.</p>");
    }
    Ok(b)
}

/// `POST /status-pages/{slug}/notices` (form: `csrf`, `kind`, `title`, `body`).
pub async fn post_notice(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = super::alerts::refused(&ctx, &f) {
        return r;
    }
    if app.site.status_page(&slug).is_none() {
        return error_page(
            &ctx,
            &AppError::not_found(format!("no status page {slug:?}")),
        );
    }
    let r = match crate::site_api::draft(
        &slug,
        f.get("title").map(String::as_str),
        f.get("body").map(String::as_str),
        f.get("kind").map(String::as_str),
        &ctx.user,
        app.now(),
    ) {
        Ok(n) => crate::site_api::post(&app, n).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(n) => redirect(&format!("/status-pages#notice-{}", n.id)),
        Err(e) => error_page(&ctx, &e),
    }
}

/// `POST /status-pages/{slug}/notices/{id}/end`.
pub async fn end_notice(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path((slug, id)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = super::alerts::refused(&ctx, &f) {
        return r;
    }
    match crate::site_api::end(&app, &slug, &id).await {
        Ok(n) => redirect(&format!("/status-pages#notice-{}", n.id)),
        Err(e) => error_page(&ctx, &e),
    }
}

// --- notifiers ---

fn notifiers_body(app: &AppState, ctx: &Ctx, result: Option<&crate::site::TestOutcome>) -> String {
    let list = app.site.notifiers();
    let mut b = String::with_capacity(4096);
    if let Some(t) = result {
        let (class, word) = if t.delivered {
            ("ok", "delivered")
        } else {
            ("crit", "NOT delivered")
        };
        w!(
            b,
            "<div id=\"test-result\" class=\"test-result status-{class}\" role=\"status\" data-delivered=\"{}\" data-notifier=\"{}\">\
<p><strong>Test message {} through {} ({}): {word}.</strong></p><p>{}</p>",
            t.delivered,
            E(&t.notifier),
            E(&t.message_id),
            E(&t.notifier),
            E(&t.kind),
            E(&t.detail)
        );
        if !t.recipients.is_empty() {
            w!(b, "<p>To: {}</p>", E(&t.recipients.join(", ")));
        }
        if !t.delivered {
            b.push_str(if t.transient {
                "<p>The receiver was unreachable, slow or busy: check the address, the network path and the receiver, then test again.</p>"
            } else {
                "<p>The receiver refused the message as it is: check the notifier's settings (address, credentials, recipients).</p>"
            });
        }
        b.push_str("</div>");
    }
    if list.is_empty() {
        b.push_str("<p class=\"empty\" id=\"notifiers\">No notifiers are configured. Add a <code>[[notifier]]</code> (email, slack, teams, webhook, alertmanager, logfile).</p>");
        return b;
    }
    b.push_str("<p>Where alerts are delivered. A test sends a message marked TEST through the real channel now, and shows what the receiver answered; it is written to the audit log.</p>\
<table id=\"notifiers\"><thead><tr><th scope=\"col\">Notifier</th><th scope=\"col\">Type</th><th scope=\"col\">Delivers to</th><th scope=\"col\">Test</th></tr></thead><tbody>");
    for n in list.iter() {
        w!(
            b,
            "<tr data-notifier=\"{id}\"><th scope=\"row\">{id}</th><td>{}</td><td>{}</td><td>",
            E(&n.kind),
            E(&n.target),
            id = E(&n.id)
        );
        if ctx.admin {
            w!(
                b,
                "<form id=\"test-{id}\" method=\"post\" action=\"/notifiers/{uid}/test\">{}\
<button type=\"submit\">Send a test message</button></form>",
                ctx.csrf_field(),
                id = E(&n.id),
                uid = U(&n.id)
            );
        } else {
            b.push_str("<span class=\"hint\">admins only</span>");
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

/// `GET /notifiers`.
pub async fn notifiers(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let b = notifiers_body(&app, &ctx, None);
    layout(&ctx, StatusCode::OK, "Notifiers", "/notifiers", &b)
}

/// `POST /notifiers/{id}/test` (form: `csrf`): sends the test and shows its outcome.
pub async fn test_notifier(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = super::alerts::refused(&ctx, &f) {
        return r;
    }
    let by = format!("{} (web UI)", ctx.user);
    match app.site.test_notifier(&id, &by, app.now()).await {
        Some(t) => {
            let b = notifiers_body(&app, &ctx, Some(&t));
            layout(&ctx, StatusCode::OK, "Notifiers", "/notifiers", &b)
        }
        None => error_page(&ctx, &AppError::not_found(format!("no notifier {id:?}"))),
    }
}
