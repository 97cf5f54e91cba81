//! `/alerts` (firing, pending, acknowledged, silenced and suppressed alerts; silences) with
//! its forms, and `/notifications`.
//!
//! The forms are plain POSTs that call the JSON API's own handlers (same validation, same
//! engine calls, same audit), then redirect back with 303. Each carries the page's CSRF token.

use super::{badge, caller, error_page, layout, redirect, safe_next, w, Ctx, MaybeCaller, E, U};
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value as J};
use std::collections::{BTreeMap, HashMap};
use vitals_core::alert::{Alert, AlertState};
use vitals_store::{AlertQuery, OutboxItem};

const OPEN_ALERTS: usize = 2000;
const NOTIFICATIONS: usize = 200;
const MAX_NOTIFICATIONS: usize = 10_000;

/// Display names of the assets of these alerts (their own and, for population alerts, the
/// failing ones), from the live state; an asset it does not know keeps its id.
pub fn asset_names(app: &AppState, alerts: &[Alert]) -> HashMap<String, String> {
    let state = app.state().read();
    let mut names = HashMap::new();
    for id in alerts
        .iter()
        .flat_map(|a| a.asset.iter().chain(a.assets.iter()))
    {
        if !names.contains_key(id) {
            let name = state
                .get(id)
                .map_or_else(|| id.clone(), |s| s.display_name().to_string());
            names.insert(id.clone(), name);
        }
    }
    names
}

/// A table of alerts, naming assets by `names` (ids as links); admins get an acknowledge form
/// on firing ones.
pub fn alerts_table(
    ctx: &Ctx,
    table_id: &str,
    alerts: &[Alert],
    names: &HashMap<String, String>,
) -> String {
    let name = |id: &String| names.get(id).unwrap_or(id).clone();
    if alerts.is_empty() {
        return format!("<p id=\"{table_id}\" class=\"empty\">None.</p>");
    }
    let mut b = String::with_capacity(alerts.len() * 600);
    w!(
        b,
        "<table id=\"{table_id}\" class=\"alerts\"><thead><tr><th scope=\"col\">Alert</th>\
<th scope=\"col\">Severity</th><th scope=\"col\">Asset</th><th scope=\"col\">Check</th>\
<th scope=\"col\">State</th><th scope=\"col\">Since</th><th scope=\"col\">Reason</th>\
<th scope=\"col\">Action</th></tr></thead><tbody>"
    );
    for a in alerts {
        w!(
            b,
            "<tr id=\"alert-{id}\" data-alert=\"{id}\" data-state=\"{}\"><th scope=\"row\"><a href=\"/alerts/{id}\">#{id}</a> {}</th><td>{}</td><td>",
            a.state.as_str(),
            E(&a.rule),
            badge(Some(a.severity)),
            id = a.id
        );
        match &a.asset {
            Some(x) => w!(
                b,
                "<a href=\"/assets/{}\" title=\"{}\">{}</a>",
                U(x),
                E(x),
                E(&name(x))
            ),
            None => {
                for (i, x) in a.assets.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    w!(b, "{sep}<a href=\"/assets/{}\">{}</a>", U(x), E(&name(x)));
                }
            }
        }
        w!(
            b,
            "</td><td>{}</td><td>{}",
            E(a.check.as_deref().unwrap_or("")),
            a.state.as_str()
        );
        if a.flapping {
            b.push_str(" (flapping)");
        }
        if let Some(by) = &a.acked_by {
            w!(b, "<br>by {}", E(by));
            if let Some(c) = &a.ack_comment {
                w!(b, ": {}", E(c));
            }
            if let Some(u) = a.ack_until {
                w!(b, " until {}", ctx.time(u));
            }
        }
        w!(
            b,
            "</td><td>{}</td><td>{}",
            ctx.time(a.fired.unwrap_or(a.started)),
            E(&a.reason)
        );
        if let Some(s) = &a.suppressed {
            w!(b, "<br><em>{}</em>", E(s));
        }
        if let Some(r) = a.resolved {
            w!(b, "<br>resolved {}", ctx.time(r));
        }
        b.push_str("</td><td>");
        if ctx.admin && a.state == AlertState::Firing {
            w!(
                b,
                "<form id=\"ack-{id}\" class=\"ack\" method=\"post\" action=\"/alerts/{id}/ack\">{csrf}\
<label for=\"ack-comment-{id}\">Comment</label> <input id=\"ack-comment-{id}\" name=\"comment\" size=\"14\"> \
<button type=\"submit\">Acknowledge</button></form>",
                id = a.id,
                csrf = ctx.csrf_field()
            );
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

/// A table of notifications (the outbox), newest first.
pub fn notifications_table(ctx: &Ctx, table_id: &str, items: &[OutboxItem]) -> String {
    if items.is_empty() {
        return format!("<p id=\"{table_id}\" class=\"empty\">None.</p>");
    }
    let mut b = String::with_capacity(items.len() * 400);
    w!(
        b,
        "<table id=\"{table_id}\" class=\"notifications\"><thead><tr><th scope=\"col\">Created</th>\
<th scope=\"col\">Kind</th><th scope=\"col\">Notifier</th><th scope=\"col\">Alerts</th>\
<th scope=\"col\">State</th><th scope=\"col\">Attempts</th><th scope=\"col\">Recipients</th>\
<th scope=\"col\">Outcome</th></tr></thead><tbody>"
    );
    for it in items {
        let n = &it.notification;
        w!(
            b,
            "<tr data-notification=\"{}\" data-state=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>",
            E(&it.id),
            E(it.state.as_str()),
            ctx.time(n.created),
            n.kind.as_str(),
            E(&it.notifier)
        );
        for (i, a) in n.alerts.iter().enumerate() {
            let sep = if i > 0 { "<br>" } else { "" };
            w!(b, "{sep}#{} {}", a.alert_id, E(&a.title));
            if let Some(x) = &a.asset {
                w!(
                    b,
                    " (<a href=\"/assets/{}\">{}</a>)",
                    U(x),
                    E(a.asset_name.as_deref().unwrap_or(x))
                );
            }
        }
        w!(
            b,
            "</td><td>{}</td><td>{}</td><td>{}</td><td>",
            E(it.state.as_str()),
            it.attempts,
            E(&it.recipients.join(", "))
        );
        if let Some(s) = it.sent {
            w!(b, "sent {}", ctx.time(s));
        } else if it.state == vitals_store::OutboxState::Pending {
            w!(b, "next attempt {}", ctx.time(it.next_attempt));
        }
        if let Some(e) = &it.last_error {
            w!(b, "<br><span class=\"error\">{}</span>", E(e));
        }
        if let Some(d) = &it.detail {
            w!(b, "<br>{}", E(d));
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

/// `GET /alerts`.
pub async fn page(State(app): State<AppState>, who: MaybeCaller, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    match render(&app, &ctx).await {
        Ok(b) => layout(&ctx, StatusCode::OK, "Alerts", "/alerts", &b),
        Err(e) => error_page(&ctx, &e),
    }
}

async fn render(app: &AppState, ctx: &Ctx) -> Result<String, AppError> {
    let now = app.now();
    let open = app
        .store()
        .alerts(&AlertQuery {
            states: Some(vec![
                AlertState::Pending,
                AlertState::Firing,
                AlertState::Acknowledged,
            ]),
            asset: None,
            limit: OPEN_ALERTS,
        })
        .await
        .map_err(AppError::unavailable)?;
    // Sections: a suppressed alert shows under silenced or suppressed, whatever its state.
    let mut sections: BTreeMap<&str, Vec<Alert>> = BTreeMap::new();
    for a in open {
        let key = match (&a.suppressed, a.state) {
            (Some(s), _) if s.starts_with("silenced") => "silenced",
            (Some(_), _) => "suppressed",
            (None, AlertState::Firing) => "firing",
            (None, AlertState::Acknowledged) => "acknowledged",
            (None, _) => "pending",
        };
        sections.entry(key).or_default().push(a);
    }
    let mut b = String::with_capacity(64 * 1024);
    b.push_str("<nav aria-label=\"Sections\" class=\"ranges\"><ul>");
    let names = [
        ("firing", "Firing"),
        ("pending", "Pending"),
        ("acknowledged", "Acknowledged"),
        ("silenced", "Silenced"),
        ("suppressed", "Suppressed"),
    ];
    for (k, n) in names {
        let c = sections.get(k).map_or(0, Vec::len);
        w!(
            b,
            "<li><a href=\"#{k}\">{n}: <span data-alerts=\"{k}\">{c}</span></a></li>"
        );
    }
    b.push_str("<li><a href=\"#silences\">Silences</a></li></ul></nav>");
    let all: Vec<Alert> = sections.values().flatten().cloned().collect();
    let asset_names = asset_names(app, &all);
    for (k, n) in names {
        w!(b, "<h2 id=\"{k}\">{n}</h2>");
        let list = sections.get(k).map_or(&[][..], Vec::as_slice);
        b.push_str(&alerts_table(
            ctx,
            &format!("alerts-{k}"),
            list,
            &asset_names,
        ));
    }

    let silences = app
        .store()
        .silences(now)
        .await
        .map_err(AppError::unavailable)?;
    b.push_str("<h2 id=\"silences\">Silences</h2>");
    if silences.is_empty() {
        b.push_str("<p id=\"silences-list\" class=\"empty\">No active or upcoming silences.</p>");
    } else {
        b.push_str(
            "<table id=\"silences-list\"><thead><tr><th scope=\"col\">Silence</th>\
<th scope=\"col\">Matches</th><th scope=\"col\">From</th><th scope=\"col\">Until</th>\
<th scope=\"col\">By</th><th scope=\"col\">Action</th></tr></thead><tbody>",
        );
        for s in silences.iter().rev() {
            let m = &s.matchers;
            let mut what = Vec::new();
            for (name, list) in [
                ("assets", &m.assets),
                ("prefixes", &m.asset_prefixes),
                ("groups", &m.groups),
                ("checks", &m.checks),
                ("rules", &s.rules),
            ] {
                if !list.is_empty() {
                    what.push(format!("{name}: {}", list.join(", ")));
                }
            }
            if !m.labels.is_empty() {
                let l: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                what.push(format!("labels: {}", l.join(", ")));
            }
            w!(
                b,
                "<tr id=\"silence-{id}\" data-silence=\"{id}\" data-active=\"{}\"><th scope=\"row\">#{id}</th><td>{}</td><td>{}</td><td>{}</td><td>{}: {}</td><td>",
                s.active(now),
                E(&what.join("; ")),
                ctx.time(s.starts),
                ctx.time(s.ends),
                E(&s.author),
                E(&s.comment),
                id = s.id
            );
            if ctx.admin {
                w!(
                    b,
                    "<form id=\"silence-expire-{id}\" method=\"post\" action=\"/alerts/silences/{id}/expire\">{}\
<button type=\"submit\">Expire now</button></form>",
                    ctx.csrf_field(),
                    id = s.id
                );
            }
            b.push_str("</td></tr>");
        }
        b.push_str("</tbody></table>");
    }
    if ctx.admin {
        w!(
            b,
            "<h2 id=\"new-silence\">New silence</h2><form id=\"silence-new\" method=\"post\" action=\"/alerts/silences\">{}\
<p class=\"hint\">Lists are comma-separated; give at least one matcher or rule.</p>\
<p><label for=\"silence-assets\">Assets</label> <input id=\"silence-assets\" name=\"assets\"></p>\
<p><label for=\"silence-prefixes\">Asset id prefixes</label> <input id=\"silence-prefixes\" name=\"asset_prefixes\"></p>\
<p><label for=\"silence-groups\">Groups</label> <input id=\"silence-groups\" name=\"groups\"></p>\
<p><label for=\"silence-labels\">Labels</label> <input id=\"silence-labels\" name=\"labels\" placeholder=\"key=value, key=value\"></p>\
<p><label for=\"silence-checks\">Checks</label> <input id=\"silence-checks\" name=\"checks\"></p>\
<p><label for=\"silence-rules\">Rules</label> <input id=\"silence-rules\" name=\"rules\"></p>\
<p><label for=\"silence-duration\">Duration</label> <input id=\"silence-duration\" name=\"duration\" value=\"2h\" required></p>\
<p><label for=\"silence-comment\">Comment</label> <input id=\"silence-comment\" name=\"comment\" required></p>\
<p><button type=\"submit\">Create silence</button></p></form>",
            ctx.csrf_field()
        );
    } else {
        b.push_str("<p>Acknowledging alerts and managing silences needs an admin token.</p>");
    }
    Ok(b)
}

/// `GET /alerts/{id}`: one alert (the page notifications link to), its transitions and its
/// notifications.
pub async fn one(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let Ok(n) = id.parse::<i64>() else {
        return error_page(
            &ctx,
            &AppError::bad_request("id", format!("{id:?} is not an alert id")),
        );
    };
    let found = match app.store().alert(n).await {
        Ok(f) => f,
        Err(e) => return error_page(&ctx, &AppError::unavailable(e)),
    };
    let Some((alert, transitions)) = found else {
        return error_page(&ctx, &AppError::not_found(format!("no alert {n}")));
    };
    let notes = match app.store().notifications(Some(n), 1000).await {
        Ok(x) => x,
        Err(e) => return error_page(&ctx, &AppError::unavailable(e)),
    };
    let one = std::slice::from_ref(&alert);
    let mut b = alerts_table(&ctx, "alert", one, &asset_names(&app, one));
    b.push_str(
        "<h2 id=\"transitions\">Transitions</h2><table id=\"alert-transitions\"><thead><tr>\
<th scope=\"col\">Time</th><th scope=\"col\">From</th><th scope=\"col\">To</th>\
<th scope=\"col\">Reason</th></tr></thead><tbody>",
    );
    for t in &transitions {
        w!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ctx.time(t.at),
            t.from.map_or("—", AlertState::as_str),
            t.to.as_str(),
            E(&t.reason)
        );
    }
    b.push_str("</tbody></table><h2 id=\"notifications\">Notifications</h2>");
    b.push_str(&notifications_table(&ctx, "alert-notifications", &notes));
    layout(&ctx, StatusCode::OK, &format!("Alert #{n}"), "/alerts", &b)
}

/// Checks the form's CSRF token; `Some` is the refusal to answer with.
pub(crate) fn refused(ctx: &Ctx, f: &HashMap<String, String>) -> Option<Response> {
    if ctx.csrf_ok(f.get("csrf")) {
        return None;
    }
    Some(error_page(
        ctx,
        &AppError {
            status: StatusCode::FORBIDDEN,
            error: "this form is missing its CSRF token or it does not match your session; \
                    reload the page and try again"
                .into(),
            field: Some("csrf".into()),
        },
    ))
}

fn outcome(ctx: &Ctx, r: Result<Response, AppError>, back: &str) -> Response {
    match r {
        Ok(_) => redirect(back),
        Err(e) => error_page(ctx, &e),
    }
}

fn list(f: &HashMap<String, String>, k: &str) -> Vec<String> {
    f.get(k)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /alerts/{id}/ack` (form: `csrf`, `comment`, `next`).
pub async fn ack(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = refused(&ctx, &f) {
        return r;
    }
    let mut body = Map::new();
    body.insert("by".into(), json!(ctx.user));
    if let Some(c) = f.get("comment").filter(|c| !c.trim().is_empty()) {
        body.insert("comment".into(), json!(c));
    }
    let body = Bytes::from(J::Object(body).to_string());
    let r = crate::alerts::ack(State(app.clone()), Path(id), body).await;
    outcome(
        &ctx,
        r,
        &safe_next(f.get("next").or(Some(&"/alerts".into()))),
    )
}

/// `POST /alerts/silences` (form: lists comma-separated, `labels` as `k=v, k=v`, `duration`,
/// `comment`; the author is the logged-in token).
pub async fn create_silence(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = refused(&ctx, &f) {
        return r;
    }
    let mut labels = Map::new();
    for kv in list(&f, "labels") {
        let Some((k, v)) = kv.split_once('=') else {
            return error_page(
                &ctx,
                &AppError::bad_request("labels", format!("{kv:?} is not key=value")),
            );
        };
        labels.insert(k.trim().to_string(), json!(v.trim()));
    }
    let mut matchers = Map::new();
    for k in ["assets", "asset_prefixes", "groups", "checks"] {
        let l = list(&f, k);
        if !l.is_empty() {
            matchers.insert(k.into(), json!(l));
        }
    }
    if !labels.is_empty() {
        matchers.insert("labels".into(), J::Object(labels));
    }
    let body = json!({
        "matchers": matchers,
        "rules": list(&f, "rules"),
        "duration": f.get("duration").map(|d| d.trim()).unwrap_or(""),
        "author": ctx.user,
        "comment": f.get("comment").map(|c| c.trim()).unwrap_or(""),
    });
    let r = crate::alerts::create_silence(State(app.clone()), Bytes::from(body.to_string())).await;
    outcome(&ctx, r, "/alerts#silences")
}

/// `POST /alerts/silences/{id}/expire`.
pub async fn expire_silence(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = refused(&ctx, &f) {
        return r;
    }
    let r = crate::alerts::expire_silence(State(app.clone()), Path(id))
        .await
        .map(axum::response::IntoResponse::into_response);
    outcome(&ctx, r, "/alerts#silences")
}

/// `GET /notifications?limit=`.
pub async fn notifications(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => NOTIFICATIONS,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_NOTIFICATIONS).contains(&n) => n,
            _ => {
                return error_page(
                    &ctx,
                    &AppError::bad_request(
                        "limit",
                        format!("{v:?} is not a number from 1 to {MAX_NOTIFICATIONS}"),
                    ),
                )
            }
        },
    };
    match app.store().notifications(None, limit).await {
        Ok(items) => {
            let mut b = format!("<p>The newest {limit} notifications, newest first.</p>");
            b.push_str(&notifications_table(&ctx, "notifications", &items));
            layout(&ctx, StatusCode::OK, "Notifications", "/notifications", &b)
        }
        Err(e) => error_page(&ctx, &AppError::unavailable(e)),
    }
}
