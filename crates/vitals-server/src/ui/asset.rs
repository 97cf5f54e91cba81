//! `/assets/{id}`: the checks with current status and components, history charts over a time
//! range (`range=1h|24h|7d|30d|custom` with `from`/`to`), recent observations, the asset's
//! alerts and notifications.
//!
//! Ranges up to 24 h chart the raw observations; longer ones the hourly rollups (mean and
//! p95 latency, a bucket is red when any observation in it failed). Every other numeric value
//! of a check (RF-ID tags per day, an SLA p95, a queue depth, a certificate's days left) gets a
//! chart of its own over the same range: raw points up to 24 h, hourly means beyond (from the
//! raw observations, which `[retention] raw` keeps). Uptime over 24 h / 7 d / 30 d and the last
//! 50 results come from the live state's in-memory history.

use super::bars;
use super::charts::{self, Series};
use super::{badge, caller, error_page, layout, query, w, Ctx, MaybeCaller, E, U};
use crate::{AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::TimeZone;
use std::collections::HashMap;
use vitals_core::{Observation, Status, Timestamp};
use vitals_store::{AlertQuery, ObservationQuery, Rollup, HOUR_MS};

/// Most raw observations aggregated in the page for hours not rolled up yet.
const RAW_FOR_ROLLUPS: usize = 200_000;

/// Hourly aggregates of raw observations (any order), oldest hour first.
fn hourly(asset: &str, check: &str, raw: &[vitals_core::Observation]) -> Vec<Rollup> {
    let mut by_hour: std::collections::BTreeMap<i64, (Vec<u64>, u64)> = Default::default();
    for o in raw {
        let e = by_hour
            .entry(o.time.0.div_euclid(HOUR_MS) * HOUR_MS)
            .or_default();
        e.0.push(o.duration_us);
        e.1 += u64::from(o.status != Status::Ok);
    }
    by_hour
        .into_iter()
        .map(|(start, (mut d, failures))| {
            d.sort_unstable();
            let n = d.len();
            let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n) - 1;
            Rollup {
                asset: asset.to_string(),
                check: check.to_string(),
                period_ms: HOUR_MS,
                start: Timestamp(start),
                count: n as u64,
                failures,
                min_us: d[0],
                mean_us: d.iter().sum::<u64>() / n as u64,
                max_us: d[n - 1],
                p95_us: d[rank],
            }
        })
        .collect()
}

const RANGES: &[(&str, &str, i64)] = &[
    ("1h", "1 hour", HOUR_MS),
    ("24h", "24 hours", 24 * HOUR_MS),
    ("7d", "7 days", 7 * 24 * HOUR_MS),
    ("30d", "30 days", 30 * 24 * HOUR_MS),
];
/// Raw observations charted per check at most.
const MAX_POINTS: usize = 5000;
/// Raw observations read per check for the value charts of ranges longer than 24 h.
const RAW_FOR_VALUES: usize = 50_000;
/// Values charted per check at most (a plugin may report many).
const MAX_VALUE_CHARTS: usize = 12;
/// Values already in the latency chart.
const LATENCY_VALUES: &[&str] = &["total_ms", "connect_ms", "ttfb_ms"];

/// One chart per numeric value of `rows` (oldest first), except the latency chart's; with
/// `hourly`, each value's hourly mean.
fn value_charts(
    mut b: &mut String,
    check: &str,
    rows: &[Observation],
    from: i64,
    to: i64,
    hourly: bool,
) {
    let mut by_name: std::collections::BTreeMap<&str, Vec<(i64, f64)>> = Default::default();
    for o in rows {
        for v in &o.values {
            if LATENCY_VALUES.contains(&v.name.as_str()) || !v.value.is_finite() {
                continue;
            }
            if by_name.len() >= MAX_VALUE_CHARTS && !by_name.contains_key(v.name.as_str()) {
                continue;
            }
            by_name
                .entry(v.name.as_str())
                .or_default()
                .push((o.time.0, v.value));
        }
    }
    if by_name.is_empty() {
        return;
    }
    w!(
        b,
        "<h4 class=\"values\">Values{}</h4>",
        if hourly { " (hourly means)" } else { "" }
    );
    for (name, mut points) in by_name {
        if hourly {
            let mut hours: std::collections::BTreeMap<i64, (f64, u32)> = Default::default();
            for (t, v) in &points {
                let e = hours.entry(t.div_euclid(HOUR_MS) * HOUR_MS).or_default();
                e.0 += v;
                e.1 += 1;
            }
            points = hours
                .into_iter()
                .map(|(h, (sum, n))| (h, sum / f64::from(n)))
                .collect();
        }
        let unit = name
            .rsplit_once('_')
            .map(|(_, u)| u)
            .filter(|u| matches!(*u, "ms" | "s" | "bytes" | "days" | "percent" | "pct"))
            .unwrap_or("");
        w!(b, "<div class=\"value-chart\" data-value=\"{}\">", E(name));
        b.push_str(&charts::lines_in(
            from,
            to,
            &[Series {
                name,
                class: "val",
                points,
            }],
            &format!("{check}: {name}"),
            unit,
        ));
        b.push_str("</div>");
    }
}
const RECENT: usize = 25;
const ALERTS: usize = 50;

/// A time from a form or link: RFC 3339, or `YYYY-MM-DDTHH:MM` in the configured zone (what
/// `<input type="datetime-local">` sends).
fn parse_local(field: &str, v: &str, tz: chrono_tz::Tz) -> Result<Timestamp, AppError> {
    // A time without an offset is local (checked first: the RFC 3339 parser may take it as UTC).
    let naive = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"));
    let Ok(naive) = naive else {
        return Timestamp::parse(v).ok_or_else(|| {
            AppError::bad_request(
                field,
                format!("{v:?} is not a time (YYYY-MM-DDTHH:MM in {tz}, or RFC 3339)"),
            )
        });
    };
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| Timestamp(d.timestamp_millis()))
        .ok_or_else(|| AppError::bad_request(field, format!("{v:?} does not exist in {tz}")))
}

/// The range asked for: `(key, from, to)`.
fn range(
    q: &HashMap<String, String>,
    now: Timestamp,
    tz: chrono_tz::Tz,
) -> Result<(String, Timestamp, Timestamp), AppError> {
    let key = q
        .get("range")
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("24h");
    if key == "custom" {
        let get = |k: &str| {
            q.get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| AppError::bad_request(k, "a custom range needs from and to"))
                .and_then(|v| parse_local(k, v, tz))
        };
        let (from, to) = (get("from")?, get("to")?);
        if from >= to {
            return Err(AppError::bad_request("from", "from must be before to"));
        }
        if to.0 - from.0 > 366 * 24 * HOUR_MS {
            return Err(AppError::bad_request("to", "a range is at most a year"));
        }
        return Ok((key.to_string(), from, to));
    }
    let (_, _, len) = RANGES.iter().find(|(k, _, _)| *k == key).ok_or_else(|| {
        AppError::bad_request(
            "range",
            format!("{key:?} is not 1h, 24h, 7d, 30d or custom"),
        )
    })?;
    Ok((key.to_string(), Timestamp(now.0 - len), now))
}

fn value(o: &Observation, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

fn components(o: &Observation) -> String {
    if o.components.is_empty() {
        return String::new();
    }
    let mut s = String::from("<ul class=\"components\">");
    for c in &o.components {
        w!(s, "<li>{} {}", badge(Some(c.status)), E(&c.name));
        if let Some(v) = &c.value {
            w!(s, " <span class=\"value\">{}</span>", E(v));
        }
        if !c.output.is_empty() {
            w!(s, " — {}", E(&c.output));
        }
        s.push_str("</li>");
    }
    s.push_str("</ul>");
    s
}

/// `GET /assets/{id}`.
pub async fn page(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    match render(&app, &ctx, &id, &q).await {
        Ok(body) => {
            let title = app
                .state()
                .asset(&id)
                .map(|a| {
                    if a.record.name.is_empty() {
                        a.record.id
                    } else {
                        a.record.name
                    }
                })
                .unwrap_or(id);
            layout(&ctx, StatusCode::OK, &title, "/", &body)
        }
        Err(e) => error_page(&ctx, &e),
    }
}

async fn render(
    app: &AppState,
    ctx: &Ctx,
    id: &str,
    q: &HashMap<String, String>,
) -> Result<String, AppError> {
    let a = app
        .state()
        .asset(id)
        .ok_or_else(|| AppError::not_found(format!("unknown asset {id:?}")))?;
    let now = app.now();
    let (key, from, to) = range(q, now, ctx.tz)?;
    let mut b = String::with_capacity(32 * 1024);

    // Facts.
    w!(
        b,
        "<p>Status: <span id=\"asset-status\" data-asset=\"{}\">{}</span> · id <code>{}</code>",
        E(&a.record.id),
        badge(a.status()),
        E(&a.record.id)
    );
    if !a.record.groups.is_empty() {
        b.push_str(" · groups ");
        for (i, g) in a.record.groups.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            w!(
                b,
                "{sep}<a href=\"/?{}\">{}</a>",
                query(&[("group", g)]),
                E(g)
            );
        }
    }
    for (k, v) in &a.record.labels {
        let kv = format!("{k}={v}");
        w!(
            b,
            " · <a class=\"label\" href=\"/?{}\">{}</a>",
            query(&[("label", &kv)]),
            E(&kv)
        );
    }
    if !a.record.parents.is_empty() {
        b.push_str(" · depends on ");
        for (i, p) in a.record.parents.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            w!(b, "{sep}<a href=\"/assets/{}\">{}</a>", U(p), E(p));
        }
    }
    b.push_str("</p>");
    let mut total = vitals_scheduler::history::Uptime::default();
    for c in a.checks.values() {
        total.add(&c.history.uptime(now));
    }
    w!(
        b,
        "<p id=\"asset-uptime\">Uptime (share of OK observations, all checks): 24 h <strong>{}</strong> · 7 d <strong>{}</strong> · 30 d <strong>{}</strong></p>",
        bars::percent(total.h24),
        bars::percent(total.d7),
        bars::percent(total.d30)
    );

    // Checks now.
    b.push_str(
        "<h2 id=\"checks-now\">Checks</h2><table id=\"checks\"><thead><tr><th scope=\"col\">Check</th>\
<th scope=\"col\">Type</th><th scope=\"col\">Status</th><th scope=\"col\">Last 50 results</th>\
<th scope=\"col\" class=\"num\">24 h</th><th scope=\"col\" class=\"num\">7 d</th><th scope=\"col\" class=\"num\">30 d</th>\
<th scope=\"col\">Last run</th><th scope=\"col\">Duration</th><th scope=\"col\">Reason and components</th></tr></thead><tbody>",
    );
    for (name, c) in &a.checks {
        let recent: Vec<_> = c.history.recent().collect();
        let extra = format!(
            "<td>{}</td>{}",
            bars::bar(&recent, Some(ctx)),
            bars::uptime_cells(&c.history.uptime(now))
        );
        // A site agent's view of a check (`api@site-a`) sits right under the check's verdict.
        let from = name
            .split_once('@')
            .filter(|(check, _)| a.checks.contains_key(*check))
            .map(|(_, l)| format!(" <span class=\"hint location\">from {}</span>", E(l)))
            .unwrap_or_default();
        w!(
            b,
            "<tr data-check=\"{}\"><th scope=\"row\"><a href=\"#check-{}\">{}</a>{from}</th><td>{}</td>",
            E(name),
            U(name),
            E(name),
            E(&c.kind)
        );
        match &c.latest {
            Some(o) => w!(
                b,
                "<td>{}</td>{extra}<td>{}</td><td>{:.1} ms</td><td>{}{}</td></tr>",
                badge(Some(o.status)),
                ctx.time(o.time),
                o.duration_us as f64 / 1000.0,
                E(&o.reason),
                components(o)
            ),
            None => w!(
                b,
                "<td>{}</td>{extra}<td>—</td><td>—</td><td>not run yet</td></tr>",
                badge(None)
            ),
        }
    }
    b.push_str("</tbody></table>");
    b.push_str(&super::engine::schedules_section(app, ctx, id).await);

    // Range selector: links (stable, shareable) and a custom form.
    b.push_str(
        "<h2 id=\"history\">History</h2><nav aria-label=\"Time range\" class=\"ranges\"><ul>",
    );
    for (k, label, _) in RANGES {
        let cur = if *k == key {
            " aria-current=\"true\""
        } else {
            ""
        };
        w!(
            b,
            "<li><a id=\"range-{k}\" href=\"/assets/{}?range={k}#history\"{cur}>{label}</a></li>",
            U(id)
        );
    }
    let local = |t: Timestamp| {
        chrono::DateTime::from_timestamp_millis(t.0)
            .map(|d| {
                d.with_timezone(&ctx.tz)
                    .format("%Y-%m-%dT%H:%M")
                    .to_string()
            })
            .unwrap_or_default()
    };
    w!(
        b,
        "</ul></nav><form id=\"range-custom\" method=\"get\" action=\"/assets/{}\">\
<input type=\"hidden\" name=\"range\" value=\"custom\">\
<label for=\"range-from\">From</label> <input id=\"range-from\" name=\"from\" type=\"datetime-local\" value=\"{}\"> \
<label for=\"range-to\">To</label> <input id=\"range-to\" name=\"to\" type=\"datetime-local\" value=\"{}\"> \
<button type=\"submit\">Show</button> <span class=\"hint\">({})</span></form>\
<p>From {} to {}.</p>",
        U(id),
        local(from),
        local(to),
        E(ctx.tz.name()),
        ctx.time(from),
        ctx.time(to)
    );

    let rollups = to.0 - from.0 > 24 * HOUR_MS;
    let store = app.store();
    for name in a.checks.keys() {
        w!(
            b,
            "<section class=\"check\" id=\"check-{}\"><h3>{}</h3>",
            U(name),
            E(name)
        );
        if rollups {
            let start = Timestamp(from.0 - from.0.rem_euclid(HOUR_MS));
            let mut rows = store
                .rollups(id, name, HOUR_MS, start, to)
                .await
                .map_err(AppError::unavailable)?;
            // Hours not rolled up yet (the current one; all of them before the first cleanup
            // run) are aggregated here from the raw observations.
            let covered = rows.last().map_or(start.0, |r| r.start.0 + HOUR_MS);
            if covered < to.0 {
                let raw = store
                    .observations(&ObservationQuery {
                        asset: id.to_string(),
                        check: Some(name.clone()),
                        from: Some(Timestamp(covered)),
                        to: Some(to),
                        limit: RAW_FOR_ROLLUPS,
                    })
                    .await
                    .map_err(AppError::unavailable)?;
                rows.extend(hourly(id, name, &raw));
            }
            let spans: Vec<(i64, &str)> = rows
                .iter()
                .map(|r| (r.start.0, if r.failures > 0 { "crit" } else { "ok" }))
                .collect();
            let failures: u64 = rows.iter().map(|r| r.failures).sum();
            let count: u64 = rows.iter().map(|r| r.count).sum();
            b.push_str(&charts::band(
                from.0,
                to.0,
                &spans,
                &format!("{name}: hourly status"),
            ));
            w!(
                b,
                "<p class=\"summary\">{count} observations in {} hourly buckets, {failures} not OK.</p>",
                rows.len()
            );
            let ms = |us: u64| us as f64 / 1000.0;
            b.push_str(&charts::lines(
                from.0,
                to.0,
                &[
                    Series {
                        name: "mean",
                        class: "lat-mean",
                        points: rows.iter().map(|r| (r.start.0, ms(r.mean_us))).collect(),
                    },
                    Series {
                        name: "p95",
                        class: "lat-p95",
                        points: rows.iter().map(|r| (r.start.0, ms(r.p95_us))).collect(),
                    },
                ],
                &format!("{name}: hourly latency"),
            ));
            let mut raw = store
                .observations(&ObservationQuery {
                    asset: id.to_string(),
                    check: Some(name.clone()),
                    from: Some(from),
                    to: Some(to),
                    limit: RAW_FOR_VALUES,
                })
                .await
                .map_err(AppError::unavailable)?;
            let capped = raw.len() == RAW_FOR_VALUES;
            raw.reverse();
            value_charts(&mut b, name, &raw, from.0, to.0, true);
            if capped {
                w!(
                    b,
                    "<p class=\"hint\">Values: only the newest {RAW_FOR_VALUES} observations of this range are charted.</p>"
                );
            }
        } else {
            let mut rows = store
                .observations(&ObservationQuery {
                    asset: id.to_string(),
                    check: Some(name.clone()),
                    from: Some(from),
                    to: Some(to),
                    limit: MAX_POINTS,
                })
                .await
                .map_err(AppError::unavailable)?;
            rows.reverse(); // oldest first
            let spans: Vec<(i64, &str)> = rows
                .iter()
                .map(|o| (o.time.0, super::status_parts(Some(o.status)).0))
                .collect();
            let bad = rows.iter().filter(|o| o.status != Status::Ok).count();
            b.push_str(&charts::band(
                from.0,
                to.0,
                &spans,
                &format!("{name}: status"),
            ));
            w!(
                b,
                "<p class=\"summary\">{} observations, {bad} not OK.</p>",
                rows.len()
            );
            // Total from the probe's own phases when it has them, else the check's duration.
            let pts = |n: &str| -> Vec<(i64, f64)> {
                rows.iter()
                    .filter_map(|o| value(o, n).map(|v| (o.time.0, v)))
                    .collect()
            };
            let mut total = pts("total_ms");
            if total.is_empty() {
                total = rows
                    .iter()
                    .map(|o| (o.time.0, o.duration_us as f64 / 1000.0))
                    .collect();
            }
            b.push_str(&charts::lines(
                from.0,
                to.0,
                &[
                    Series {
                        name: "total",
                        class: "lat-total",
                        points: total,
                    },
                    Series {
                        name: "connect",
                        class: "lat-connect",
                        points: pts("connect_ms"),
                    },
                    Series {
                        name: "time to first byte",
                        class: "lat-ttfb",
                        points: pts("ttfb_ms"),
                    },
                ],
                &format!("{name}: latency"),
            ));
            value_charts(&mut b, name, &rows, from.0, to.0, false);
        }
        b.push_str("</section>");
    }

    // Recent observations.
    let recent = store
        .observations(&ObservationQuery {
            asset: id.to_string(),
            check: None,
            from: None,
            to: None,
            limit: RECENT,
        })
        .await
        .map_err(AppError::unavailable)?;
    b.push_str(
        "<h2 id=\"recent\">Recent observations</h2><table id=\"observations\"><thead><tr>\
<th scope=\"col\">Time</th><th scope=\"col\">Check</th><th scope=\"col\">Status</th>\
<th scope=\"col\">Duration</th><th scope=\"col\">Reason</th></tr></thead><tbody>",
    );
    for o in &recent {
        w!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} ms</td><td>{}{}</td></tr>",
            ctx.time(o.time),
            E(&o.check),
            badge(Some(o.status)),
            o.duration_us as f64 / 1000.0,
            E(&o.reason),
            components(o)
        );
    }
    b.push_str("</tbody></table>");

    // Alerts and their notifications.
    let alerts = store
        .alerts(&AlertQuery {
            states: None,
            asset: Some(id.to_string()),
            limit: ALERTS,
        })
        .await
        .map_err(AppError::unavailable)?;
    b.push_str("<h2 id=\"alerts\">Alerts</h2>");
    let names = super::alerts::asset_names(app, &alerts);
    b.push_str(&super::alerts::alerts_table(
        ctx,
        "asset-alerts",
        &alerts,
        &names,
    ));
    let ids: Vec<i64> = alerts.iter().map(|a| a.id).collect();
    let notes = store
        .notifications(None, 1000)
        .await
        .map_err(AppError::unavailable)?;
    let notes: Vec<_> = notes
        .into_iter()
        .filter(|n| {
            n.notification
                .alerts
                .iter()
                .any(|x| ids.contains(&x.alert_id))
        })
        .take(ALERTS)
        .collect();
    b.push_str("<h2 id=\"notifications\">Notifications</h2>");
    b.push_str(&super::alerts::notifications_table(
        ctx,
        "asset-notifications",
        &notes,
    ));
    Ok(b)
}
