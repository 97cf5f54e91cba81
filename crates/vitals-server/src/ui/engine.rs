//! `/sources`, `/pipelines`, `/jobs`: the integration engine's pages, rendered from the same
//! views as `/api/v1/engine/…`. Rows carry `data-asset` and a status badge, so the live event
//! stream updates them like the overview's. Job actions are forms (admins, CSRF, audited), and
//! so are the check schedule overrides of the asset page's Schedules section.

use super::{caller, error_page, layout, redirect, w, Ctx, MaybeCaller, E, U};
use crate::engine_api::{engine, job_error, schedule_error, schedules, RUNS_SHOWN};
use crate::{AppError, AppState};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use vitals_core::{Status, Timestamp};

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |p| format!("{:.1} %", p * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |m| format!("{m:.0} ms"))
}

fn when(ctx: &Ctx, rfc: &str) -> String {
    match Timestamp::parse(rfc) {
        Some(t) => ctx.time(t).to_string(),
        None => "—".to_string(),
    }
}

/// The live status of an asset's check as a badge (`PENDING` before its first result).
fn live_badge(app: &AppState, asset: &str, check: &str) -> (String, String) {
    let latest = app
        .state()
        .asset(asset)
        .and_then(|a| a.checks.get(check).and_then(|c| c.latest.clone()));
    let s = latest.as_ref().map(|o| o.status);
    (
        super::badge(s),
        latest.map(|o| o.reason).unwrap_or_default(),
    )
}

/// A small SVG sparkline of `v` (an empty string for fewer than two points).
fn sparkline(v: &[f64], label: &str) -> String {
    if v.len() < 2 {
        return "<span class=\"empty\">—</span>".into();
    }
    let max = v.iter().cloned().fold(0.0_f64, f64::max).max(1e-9);
    let (w_, h) = (120.0, 24.0);
    let step = w_ / (v.len() - 1) as f64;
    let mut pts = String::with_capacity(v.len() * 12);
    for (i, x) in v.iter().enumerate() {
        w!(
            pts,
            "{:.1},{:.1} ",
            i as f64 * step,
            h - 1.0 - (x / max) * (h - 2.0)
        );
    }
    format!(
        "<svg class=\"spark\" width=\"120\" height=\"24\" viewBox=\"0 0 120 24\" role=\"img\" aria-label=\"{}\"><polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        E(label),
        pts.trim_end()
    )
}

/// Hourly availability as a row of cells (oldest first), with the figure in each title.
fn hours(v: &[Option<f64>]) -> String {
    let mut s = String::from("<span class=\"hours\">");
    for (i, a) in v.iter().enumerate() {
        let (class, text) = match a {
            None => ("pending", "no run".to_string()),
            Some(x) if *x >= 0.999 => ("ok", format!("{:.0} %", x * 100.0)),
            Some(x) if *x > 0.0 => ("warn", format!("{:.0} %", x * 100.0)),
            Some(_) => ("crit", "0 %".to_string()),
        };
        w!(
            s,
            "<span class=\"hour status-{class}\" title=\"{} h ago: {text}\">&#9646;</span>",
            23 - i
        );
    }
    s.push_str("</span>");
    s
}

/// `GET /sources`.
pub async fn sources(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let Some(e) = app.site.engine() else {
        let b = "<p class=\"empty\" id=\"sources-empty\">No integration engine is configured. Add a <code>[[source_set]]</code> (docs/integration-engines.md).</p>";
        return layout(&ctx, StatusCode::OK, "Sources", "/sources", b);
    };
    let sets = match e.source_sets_view(app.now()) {
        Ok(s) => s,
        Err(err) => return error_page(&ctx, &AppError::unavailable(err)),
    };
    let mut b = String::with_capacity(16 * 1024);
    if sets.is_empty() {
        b.push_str("<p class=\"empty\" id=\"sources-empty\">No <code>[[source_set]]</code> is configured.</p>");
    }
    for set in &sets {
        let (badge, reason) = live_badge(&app, &set.id, vitals_engine::sources::CHECK_SOURCES);
        w!(
            b,
            "<section class=\"source-set\" id=\"set-{id}\"><h2>{name}</h2>\
<p id=\"set-status\" data-live=\"{id}\">{badge} {reason} · up to {k} probe patient(s) per source, re-integrated every {iv} s</p>",
            id = E(&set.id),
            name = E(&set.name),
            reason = E(&reason),
            k = set.probe_patients_per_source,
            iv = set.interval_s
        );
        b.push_str(
            "<table class=\"sources\" id=\"sources-table\"><thead><tr><th scope=\"col\">Source</th><th scope=\"col\">Status</th>\
<th scope=\"col\">Availability 24 h</th><th scope=\"col\">7 d</th><th scope=\"col\">Per hour (24 h)</th><th scope=\"col\">Latency 24 h (mean / max)</th><th scope=\"col\">Latency per hour</th>\
<th scope=\"col\">Correctness 24 h</th><th scope=\"col\">7 d</th><th scope=\"col\">Probe patients</th><th scope=\"col\">Last result</th></tr></thead><tbody>",
        );
        for s in &set.sources {
            let (badge, reason) = if s.listed {
                live_badge(&app, &s.asset, vitals_engine::sources::CHECK_REINTEGRATION)
            } else {
                (
                    super::badge(Some(Status::Unknown)),
                    format!(
                        "no longer listed (since {})",
                        s.gone_at
                            .as_deref()
                            .map_or_else(|| "—".into(), |t| when(&ctx, t))
                    ),
                )
            };
            let patients = if s.probe_patients.is_empty() {
                "<span class=\"empty\">none</span>".to_string()
            } else {
                s.probe_patients
                    .iter()
                    .map(|p| {
                        format!(
                            "<span class=\"probe-patient\" title=\"assigned {}\">{}</span>",
                            E(&ctx.plain_time(
                                Timestamp::parse(&p.assigned_at).unwrap_or(Timestamp(0))
                            )),
                            E(&p.patient)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            w!(
                b,
                "<tr data-asset=\"{asset}\" data-source=\"{id}\"><th scope=\"row\"><a href=\"/assets/{uasset}\">{name}</a></th><td>{badge}</td>\
<td class=\"num\">{a24}</td><td class=\"num\">{a7}</td><td>{hours}</td><td class=\"num\">{mean} / {max}</td><td>{lat}</td>\
<td class=\"num correctness\">{c24}</td><td class=\"num\">{c7}</td><td class=\"patients\">{patients}</td><td class=\"reason\">{reason}</td></tr>",
                asset = E(&s.asset),
                id = E(&s.id),
                uasset = U(&s.asset),
                name = E(&s.name),
                a24 = pct(s.availability_24h),
                a7 = pct(s.availability_7d),
                hours = hours(&s.availability_hourly),
                mean = ms(s.mean_fetch_ms_24h),
                lat = sparkline(
                    // Hours without a run are left out rather than drawn as 0 ms.
                    &s.latency_hourly.iter().flatten().copied().collect::<Vec<_>>(),
                    &format!("mean fetch time of {} per hour over 24 h", s.name)
                ),
                max = ms(s.max_fetch_ms_24h),
                c24 = pct(s.correctness_24h),
                c7 = pct(s.correctness_7d),
                reason = E(&reason)
            );
        }
        b.push_str("</tbody></table><h3>Changes</h3><ul class=\"events\" id=\"source-events\">");
        if set.events.is_empty() {
            b.push_str("<li class=\"empty\">none yet</li>");
        }
        for ev in &set.events {
            w!(
                b,
                "<li>{} · {} · {}</li>",
                ctx.time(ev.time),
                E(&ev.source),
                E(&ev.what)
            );
        }
        b.push_str("</ul></section>");
    }
    b.push_str("<p class=\"note\">Observations and notifications name the fields that differ, never their values (patient data). Probe-patient identifiers are shown here to signed-in users only.</p>");
    layout(&ctx, StatusCode::OK, "Sources", "/sources", &b)
}

/// `GET /pipelines`.
pub async fn pipelines(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let Some(e) = app.site.engine() else {
        let b = "<p class=\"empty\" id=\"pipelines-empty\">No integration engine is configured. Add a <code>[[pipeline]]</code> (docs/integration-engines.md).</p>";
        return layout(&ctx, StatusCode::OK, "Pipelines", "/pipelines", b);
    };
    let list = match e.pipelines_view(app.now(), app.state()) {
        Ok(l) => l,
        Err(err) => return error_page(&ctx, &AppError::unavailable(err)),
    };
    let mut b = String::with_capacity(8 * 1024);
    if list.is_empty() {
        b.push_str("<p class=\"empty\" id=\"pipelines-empty\">No <code>[[pipeline]]</code> is configured.</p>");
    }
    for p in &list {
        let s = Status::parse(&p.status);
        w!(
            b,
            "<section class=\"pipeline\" id=\"pipeline-{id}\"><h2>{name}</h2>\
<p class=\"pipeline-status\" id=\"pipeline-status-{id}\" data-live=\"{id}\">{badge} <span class=\"reason\">{reason}</span></p>\
<table class=\"stages\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Stage</th><th scope=\"col\">Status</th><th scope=\"col\">What is wrong</th>\
<th scope=\"col\">Throughput (24 h)</th><th scope=\"col\">Backlog (24 h)</th><th scope=\"col\">Backlog now</th><th scope=\"col\">Lag</th><th scope=\"col\">Check</th></tr></thead><tbody>",
            id = E(&p.id),
            name = E(&p.name),
            badge = super::badge(s),
            reason = E(&p.reason)
        );
        for (i, st) in p.stages.iter().enumerate() {
            w!(
                b,
                "<tr data-stage=\"{name}\"><td>{n}</td><th scope=\"row\">{name}</th><td>{badge}</td><td class=\"problems\">{problems}</td>\
<td>{tp}</td><td>{bl}</td><td class=\"num\">{now}</td><td class=\"num\">{lag}</td><td><a href=\"/assets/{uasset}\">{asset}</a> / {check}</td></tr>",
                n = i + 1,
                name = E(&st.name),
                badge = super::badge(Status::parse(&st.status)),
                problems = E(&st.problems),
                tp = sparkline(&st.throughput, &format!("records through {} per evaluation over 24 h", st.name)),
                bl = sparkline(&st.backlog, &format!("records waiting at {} over 24 h", st.name)),
                now = st.last_backlog.map_or_else(|| "—".into(), vitals_engine::pipeline::thousands),
                lag = st.last_lag.map_or_else(|| "—".into(), |l| vitals_engine::pipeline::minutes((l * 1000.0) as i64)),
                uasset = U(&st.asset),
                asset = E(&st.asset),
                check = E(&st.check)
            );
        }
        b.push_str("</tbody></table></section>");
    }
    layout(&ctx, StatusCode::OK, "Pipelines", "/pipelines", &b)
}

/// `GET /jobs`.
pub async fn jobs(State(app): State<AppState>, who: MaybeCaller, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let Some(e) = app.site.engine() else {
        let b = "<p class=\"empty\" id=\"jobs-empty\">No integration engine is configured. Add a <code>[[job]]</code> (docs/integration-engines.md).</p>";
        return layout(&ctx, StatusCode::OK, "Jobs", "/jobs", b);
    };
    let views = e.jobs.views(RUNS_SHOWN);
    let mut b = String::with_capacity(8 * 1024);
    if views.is_empty() {
        b.push_str(
            "<p class=\"empty\" id=\"jobs-empty\">No <code>[[job]]</code> is configured.</p>",
        );
    }
    for j in &views {
        let (badge, reason) = live_badge(&app, &j.id, vitals_engine::jobs::CHECK_RUN);
        w!(
            b,
            "<section class=\"job\" id=\"job-{id}\"><h2>{name}</h2><p data-live=\"{id}\">{badge} {reason}</p><dl>\
<dt>Command</dt><dd><code>{cmd}</code></dd><dt>Schedule</dt><dd class=\"schedule\">",
            id = E(&j.id),
            name = E(&j.name),
            reason = E(&reason),
            cmd = E(&j.command.join(" "))
        );
        if j.effective_schedule != j.schedule {
            w!(
                b,
                "<code>{}</code> <strong class=\"override\">overridden</strong> (the file says <code>{}</code>)",
                E(&j.effective_schedule),
                E(&j.schedule)
            );
        } else {
            w!(b, "<code>{}</code> (as in the file)", E(&j.schedule));
        }
        b.push_str("</dd><dt>State</dt><dd class=\"state\">");
        if j.paused {
            b.push_str("<strong class=\"override\">paused</strong> (differs from the file)");
        } else {
            b.push_str("active");
        }
        if let Some(o) = &j.r#override {
            w!(
                b,
                " · changed by {} at {}",
                E(&o.set_by),
                ctx.time(o.set_at)
            );
        }
        if let Some(s) = &j.running_since {
            w!(b, " · <strong>running</strong> since {}", when(&ctx, s));
        }
        if let Some(n) = &j.next_run {
            w!(b, " · next run {}", when(&ctx, n));
        }
        w!(b, "</dd><dt>Timeout</dt><dd>{} s</dd></dl>", j.timeout_s);
        if ctx.admin || ctx.open {
            let uid = U(&j.id).to_string();
            let csrf = ctx.csrf_field();
            b.push_str("<div class=\"actions\">");
            let button = |b: &mut String, action: &str, label: &str| {
                w!(
                    *b,
                    "<form method=\"post\" action=\"/jobs/{uid}/{action}\">{csrf}<button type=\"submit\" id=\"job-{id}-{name}\">{label}</button></form>",
                    id = E(&j.id),
                    name = action.replace('/', "-")
                );
            };
            if j.paused {
                button(&mut b, "resume", "Resume");
            } else {
                button(&mut b, "pause", "Pause");
            }
            button(&mut b, "run", "Run now");
            w!(
                b,
                "<form method=\"post\" action=\"/jobs/{uid}/schedule\">{csrf}<label>Schedule (cron) <input name=\"schedule\" value=\"{v}\" maxlength=\"200\" id=\"job-{id}-schedule-input\"></label> <button type=\"submit\" id=\"job-{id}-schedule\">Override schedule</button></form>",
                v = E(&j.effective_schedule),
                id = E(&j.id)
            );
            if j.r#override.is_some() {
                button(&mut b, "override/remove", "Remove override");
            }
            b.push_str("</div>");
        }
        b.push_str("<table class=\"runs\"><thead><tr><th scope=\"col\">Started</th><th scope=\"col\">Ended</th><th scope=\"col\">Outcome</th><th scope=\"col\">Exit</th><th scope=\"col\">Duration</th><th scope=\"col\">By</th><th scope=\"col\">Output (end)</th></tr></thead><tbody>");
        if j.runs.is_empty() {
            b.push_str("<tr><td colspan=\"7\" class=\"empty\">no run yet</td></tr>");
        }
        for r in &j.runs {
            w!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1} s</td><td>{}</td><td><pre class=\"output\">{}</pre></td></tr>",
                ctx.time(r.started),
                ctx.time(r.ended),
                E(&r.outcome),
                r.exit_code.map_or_else(|| "—".into(), |c| c.to_string()),
                r.duration_ms as f64 / 1000.0,
                E(&r.trigger),
                E(&r.output)
            );
        }
        b.push_str("</tbody></table></section>");
    }
    layout(&ctx, StatusCode::OK, "Jobs", "/jobs", &b)
}

/// `POST /jobs/{id}/{pause|resume|run|schedule}` and `/jobs/{id}/override/remove`.
async fn act(
    app: AppState,
    who: MaybeCaller,
    headers: HeaderMap,
    id: String,
    action: &str,
    f: HashMap<String, String>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = super::alerts::refused(&ctx, &f) {
        return r;
    }
    let e = match engine(&app) {
        Ok(e) => e,
        Err(err) => return error_page(&ctx, &err),
    };
    let by = format!("{} (web UI)", ctx.user);
    let r = match action {
        "pause" => e.jobs.pause(&id, &by),
        "resume" => e.jobs.resume(&id, &by),
        "run" => e.jobs.run_now(&id, &by),
        "schedule" => e
            .jobs
            .set_schedule(&id, f.get("schedule").map_or("", String::as_str), &by),
        _ => e.jobs.clear_override(&id).map(|_| ()),
    };
    match r {
        Ok(()) => redirect(&format!("/jobs#job-{}", U(&id))),
        Err(err) => error_page(&ctx, &job_error(err)),
    }
}

/// `POST /jobs/{id}/{pause|resume|run|schedule}`.
pub async fn job_action(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    match action.as_str() {
        "pause" | "resume" | "run" | "schedule" => act(app, who, headers, id, &action, f).await,
        _ => error_page(
            &Ctx::new(&app, caller(&who), &headers),
            &crate::AppError::not_found(format!(
                "no job action {action:?}: pause, resume, run or schedule"
            )),
        ),
    }
}

/// `POST /jobs/{id}/override/remove`.
pub async fn remove_override(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    act(app, who, headers, id, "override", f).await
}

/// `POST /assets/{id}/checks/{check}/schedule` (`kind` = `interval` or `cron`, `value`) and
/// `…/schedule/remove`: an admin's schedule for one check, from the asset page.
async fn act_schedule(
    app: AppState,
    who: MaybeCaller,
    headers: HeaderMap,
    (asset, check): (String, String),
    remove: bool,
    f: HashMap<String, String>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    if let Some(r) = super::alerts::refused(&ctx, &f) {
        return r;
    }
    let s = match schedules(&app) {
        Ok(s) => s,
        Err(err) => return error_page(&ctx, &err),
    };
    let r = if remove {
        s.remove(&asset, &check).await.map(|_| ())
    } else {
        let value = f.get("value").map(String::as_str);
        let spec = match f.get("kind").map(String::as_str) {
            Some("cron") => vitals_engine::schedules::parse(None, value),
            _ => vitals_engine::schedules::parse(value, None),
        };
        match spec {
            Ok(spec) => s
                .set(&asset, &check, spec, &format!("{} (web UI)", ctx.user))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    };
    match r {
        Ok(()) => redirect(&format!("/assets/{}#schedules", U(&asset))),
        Err(err) => error_page(&ctx, &schedule_error(err)),
    }
}

pub async fn check_schedule(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    act_schedule(app, who, headers, key, false, f).await
}

pub async fn remove_check_schedule(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(key): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    act_schedule(app, who, headers, key, true, f).await
}

/// The asset page's Schedules section: each polled check's and heartbeat's schedule in
/// effect, an override shown as differing from the file, and (for admins) the forms to set
/// and remove one. Empty when the asset has no scheduled check.
pub(super) async fn schedules_section(app: &AppState, ctx: &Ctx, asset: &str) -> String {
    let Ok(s) = schedules(app) else {
        return String::new();
    };
    let views = match s.views(Some(asset)).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "reading check schedules failed");
            return String::new();
        }
    };
    if views.is_empty() {
        return String::new();
    }
    let mut b = String::with_capacity(2048);
    b.push_str("<h2 id=\"schedules\">Schedules</h2><table id=\"check-schedules\"><thead><tr><th scope=\"col\">Check</th><th scope=\"col\">Schedule</th><th scope=\"col\">Changed</th>");
    let admin = ctx.admin || ctx.open;
    if admin {
        b.push_str("<th scope=\"col\">Change</th>");
    }
    b.push_str("</tr></thead><tbody>");
    for v in &views {
        w!(
            b,
            "<tr data-check=\"{}\"><th scope=\"row\">{}{}</th><td class=\"schedule\">",
            E(&v.check),
            E(&v.check),
            if v.kind == "heartbeat" {
                " <span class=\"hint\">(pings expected)</span>"
            } else {
                ""
            }
        );
        if v.effective != v.file {
            w!(
                b,
                "<code>{}</code> <strong class=\"override\">overridden</strong> (the file says <code>{}</code>)",
                E(&v.effective.describe()),
                E(&v.file.describe())
            );
        } else {
            w!(b, "<code>{}</code> (as in the file)", E(&v.file.describe()));
        }
        if let Some(why) = &v.not_applied {
            w!(
                b,
                " <strong class=\"override\">override not applied</strong>: {}",
                E(why)
            );
        }
        b.push_str("</td><td>");
        match &v.r#override {
            Some(o) => w!(b, "by {} at {}", E(&o.set_by), ctx.time(o.set_at)),
            None => b.push('—'),
        }
        b.push_str("</td>");
        if admin {
            let action = format!("/assets/{}/checks/{}/schedule", U(&v.asset), U(&v.check));
            let csrf = ctx.csrf_field();
            let (kind, value) = match &v.effective {
                vitals_engine::schedules::Written::Interval(d) => ("interval", d.as_str()),
                vitals_engine::schedules::Written::Cron(c) => ("cron", c.as_str()),
            };
            let sel = |k: &str| if k == kind { " selected" } else { "" };
            w!(
                b,
                "<td><form method=\"post\" action=\"{action}\">{csrf}<select name=\"kind\" aria-label=\"Interval or cron\"><option value=\"interval\"{}>interval</option><option value=\"cron\"{}>cron</option></select> <input name=\"value\" value=\"{}\" maxlength=\"200\" aria-label=\"Schedule\"> <button type=\"submit\">Override schedule</button></form>",
                sel("interval"),
                sel("cron"),
                E(value)
            );
            if v.r#override.is_some() {
                w!(
                    b,
                    "<form method=\"post\" action=\"{action}/remove\">{csrf}<button type=\"submit\">Remove override</button></form>"
                );
            }
            b.push_str("</td>");
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    b
}
