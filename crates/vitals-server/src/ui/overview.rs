//! `/`: every asset with its status, counts per status, search and filters, worst first.
//!
//! The filters live in the query (`q`, `group`, `label=key=value`, `status`, `page`) so a link
//! is the view. Rows are paged by [`PAGE_ROWS`] so that 10,000 assets stay a small page; the
//! counts always cover every asset. Each row shows the asset's uptime over 24 h, 7 d and 30 d
//! and a bar of its last 50 results (all its checks together), from the in-memory history of
//! the live state: no database read per row.

use super::bars;
use super::{caller, layout, query, w, Ctx, MaybeCaller, E, U};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::{BTreeSet, HashMap};
use vitals_core::Status;
use vitals_scheduler::history::{merge_recent, Uptime, RECENT};
use vitals_scheduler::state::AssetState;

/// Rows per page of the overview.
pub const PAGE_ROWS: usize = 1000;

const STATUSES: &[(&str, &str)] = &[
    ("crit", "Critical"),
    ("warn", "Warning"),
    ("unknown", "Unknown"),
    ("pending", "Pending"),
    ("ok", "OK"),
];

fn rank(s: Option<Status>) -> i32 {
    // Worst first; never-run assets after crit and warn but before ok (as in the JSON API).
    match s {
        Some(s) => i32::from(s.rank()) * 2,
        None => 1,
    }
}

/// `GET /`.
pub async fn page(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let get = |k: &str| q.get(k).map(|s| s.trim()).unwrap_or("");
    let text = get("q").to_lowercase();
    let group = get("group");
    let label = get("label");
    let status = get("status");
    let (label_key, label_value) = label.split_once('=').unwrap_or((label, ""));
    let page_no = get("page").parse::<usize>().unwrap_or(1).max(1);

    // The content is the same for everyone; only the frame around it is per user.
    // Uptime figures change with the hour, nothing else here with the clock.
    let now = app.now();
    let key = format!(
        "{}\0{}",
        query(&[
            ("q", get("q")),
            ("group", group),
            ("label", label),
            ("status", status),
            ("page", &page_no.to_string()),
        ]),
        now.0.div_euclid(3_600_000)
    );
    let views = &app.views.overview;
    if let Some(content) = views.get(&key, app.state().generation()) {
        return layout(&ctx, StatusCode::OK, "Overview", "/", &content);
    }
    let _turn = views.turn().await;
    if let Some(content) = views.get(&key, app.state().generation()) {
        return layout(&ctx, StatusCode::OK, "Overview", "/", &content);
    }
    let (state, generation) = app.state().read_at();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut groups: BTreeSet<&str> = BTreeSet::new();
    let mut rows = Vec::with_capacity(state.len());
    for a in state.values() {
        let s = a.status();
        let (class, _) = super::status_parts(s);
        *counts.entry(class).or_default() += 1;
        groups.extend(a.record.groups.iter().map(String::as_str));
        if !status.is_empty() && class != status {
            continue;
        }
        if !group.is_empty() && !a.record.groups.iter().any(|g| g == group) {
            continue;
        }
        if !label_key.is_empty() {
            match a.record.labels.get(label_key) {
                Some(v) if label_value.is_empty() || v == label_value => {}
                _ => continue,
            }
        }
        if !text.is_empty()
            && !a.record.id.to_lowercase().contains(&text)
            && !a.record.name.to_lowercase().contains(&text)
        {
            continue;
        }
        rows.push((rank(s), a));
    }
    let total = state.len();
    let matched = rows.len();
    let pages = matched.div_ceil(PAGE_ROWS).max(1);
    let page_no = page_no.min(pages);
    let start = (page_no - 1) * PAGE_ROWS;
    let end = (start + PAGE_ROWS).min(matched);
    // Only this page's rows need their order: partition around its end, then sort what is
    // before it (linear in the assets rather than n log n). Ids are unique, so an unstable
    // sort gives the same order as a stable one.
    let order = |x: &(i32, &AssetState), y: &(i32, &AssetState)| {
        y.0.cmp(&x.0).then(x.1.record.id.cmp(&y.1.record.id))
    };
    if end > 0 && end < matched {
        rows.select_nth_unstable_by(end - 1, order);
        rows.truncate(end);
    }
    rows.sort_unstable_by(order);

    let mut b = String::with_capacity(256 + PAGE_ROWS.min(matched) * 260);
    // Counts: each is a link to that filter.
    b.push_str("<ul id=\"counts\" class=\"counts\" aria-label=\"Assets per status\">");
    for (class, name) in STATUSES {
        let n = counts.get(class).copied().unwrap_or(0);
        w!(
            b,
            "<li><a class=\"status-{class}\" href=\"/?status={class}\">{name}: <span data-count=\"{class}\">{n}</span></a></li>"
        );
    }
    w!(
        b,
        "<li>All: <span data-count=\"all\">{total}</span></li></ul>"
    );

    // Filters: a plain GET form, so the URL carries them.
    w!(
        b,
        "<form id=\"filters\" method=\"get\" action=\"/\" role=\"search\">\
<label for=\"filter-q\">Search</label> <input id=\"filter-q\" name=\"q\" type=\"search\" value=\"{}\"> \
<label for=\"filter-group\">Group</label> <select id=\"filter-group\" name=\"group\"><option value=\"\">any</option>",
        E(get("q"))
    );
    for g in &groups {
        w!(
            b,
            "<option{}>{}</option>",
            if *g == group { " selected" } else { "" },
            E(g)
        );
    }
    w!(
        b,
        "</select> <label for=\"filter-label\">Label</label> <input id=\"filter-label\" name=\"label\" \
placeholder=\"key=value\" value=\"{}\"> <label for=\"filter-status\">Status</label> \
<select id=\"filter-status\" name=\"status\"><option value=\"\">any</option>",
        E(label)
    );
    for (class, name) in STATUSES {
        w!(
            b,
            "<option value=\"{class}\"{}>{name}</option>",
            if *class == status { " selected" } else { "" }
        );
    }
    b.push_str("</select> <button type=\"submit\">Filter</button> <a href=\"/\">Clear</a></form>");

    w!(
        b,
        "<p id=\"shown\">{} of {total} assets match{}.</p>",
        matched,
        if pages > 1 {
            format!("; rows {}–{} (page {page_no} of {pages})", start + 1, end)
        } else {
            String::new()
        }
    );
    b.push_str(
        "<table id=\"assets\"><caption class=\"sr\">Assets, worst first</caption><thead><tr>\
<th scope=\"col\">Asset</th><th scope=\"col\">Status</th><th scope=\"col\">Last 50 results</th>\
<th scope=\"col\" class=\"num\" title=\"Share of OK observations: this hour and the 24 before\">24 h</th>\
<th scope=\"col\" class=\"num\" title=\"Today (UTC) and the 7 days before\">7 d</th>\
<th scope=\"col\" class=\"num\" title=\"Today (UTC) and the 30 days before\">30 d</th>\
<th scope=\"col\">Groups</th><th scope=\"col\">Checks</th><th scope=\"col\">Reason</th></tr></thead><tbody>",
    );
    for (_, a) in rows.get(start..end).unwrap_or(&[]) {
        let s = a.status();
        // The worst check's reason says why, at a glance.
        let reason = a
            .checks
            .values()
            .filter_map(|c| c.latest.as_ref())
            .filter(|o| Some(o.status) == s && o.status != Status::Ok)
            .map(|o| o.reason.as_str())
            .next()
            .unwrap_or("");
        let (class, label) = super::status_parts(s);
        w!(
            b,
            "<tr data-asset=\"{}\" data-status=\"{class}\"><th scope=\"row\"><a href=\"/assets/{}\">{}</a></th>\
<td><span class=\"status status-{class}\">{label}</span></td><td>",
            E(&a.record.id),
            U(&a.record.id),
            E(if a.record.name.is_empty() { &a.record.id } else { &a.record.name }),
        );
        let mut uptime = Uptime::default();
        for c in a.checks.values() {
            uptime.add(&c.history.uptime(now));
        }
        // One check (the common case) needs no merge.
        let recent = if a.checks.len() == 1 {
            a.checks
                .values()
                .flat_map(|c| c.history.recent())
                .collect::<Vec<_>>()
        } else {
            merge_recent(a.checks.values().map(|c| &*c.history), RECENT)
        };
        bars::push_bar(&mut b, &recent, None);
        b.push_str("</td>");
        bars::push_uptime_cells(&mut b, &uptime, false);
        b.push_str("<td>");
        for (i, g) in a.record.groups.iter().enumerate() {
            w!(b, "{}{}", if i > 0 { ", " } else { "" }, E(g));
        }
        w!(
            b,
            "</td><td>{}</td><td>{}</td></tr>",
            a.checks.len(),
            E(reason)
        );
    }
    b.push_str("</tbody></table>");
    if pages > 1 {
        b.push_str("<nav aria-label=\"Pages\" id=\"pages\"><ul>");
        for p in 1..=pages {
            let ps = p.to_string();
            let qs = query(&[
                ("q", get("q")),
                ("group", group),
                ("label", label),
                ("status", status),
                ("page", if p == 1 { "" } else { &ps }),
            ]);
            let cur = if p == page_no {
                " aria-current=\"page\""
            } else {
                ""
            };
            w!(b, "<li><a href=\"/?{qs}\"{cur}>{p}</a></li>");
        }
        b.push_str("</ul></nav>");
    }
    drop(state);
    let b = std::sync::Arc::new(b);
    app.views.overview.put(&key, generation, b.clone());
    layout(&ctx, StatusCode::OK, "Overview", "/", &b)
}
