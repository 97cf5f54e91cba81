//! `/fleet` and `/fleet/{id}`: the broker nodes, rendered from the fleet API's own handlers
//! (same figures as `/api/v1/fleet/…`), with the heatmap as an `<img>` of its SVG.

use super::{caller, error_page, layout, w, Ctx, MaybeCaller, E, U};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// Text of a JSON value for a cell: strings bare, null as a dash.
fn txt(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// A time from the API (RFC 3339 UTC) in the configured zone.
fn when(ctx: &Ctx, v: &Value) -> String {
    match v.as_str().and_then(vitals_core::Timestamp::parse) {
        Some(t) => ctx.time(t).to_string(),
        None => E(&txt(v)).to_string(),
    }
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "—".to_string(), |p| format!("{p:.2} %"))
}

fn status_cell(n: &Value) -> String {
    let colour = n["colour"].as_str().unwrap_or("none");
    format!(
        "<span class=\"node node-{}\">{}</span>",
        E(colour),
        E(n["status"].as_str().unwrap_or("PENDING"))
    )
}

/// `GET /fleet`.
pub async fn list(State(app): State<AppState>, who: MaybeCaller, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let v = match crate::fleet::nodes(State(app.clone())).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return error_page(&ctx, &e),
    };
    let nodes = v["nodes"].as_array().map_or(&[][..], Vec::as_slice);
    let mut b = String::with_capacity(4096 + nodes.len() * 800);
    b.push_str("<ul class=\"counts\" id=\"fleet-counts\">");
    if let Some(m) = v["statuses"].as_object() {
        for (k, n) in m {
            w!(b, "<li>{}: {}</li>", E(k), txt(n));
        }
    }
    w!(b, "<li>All: {}</li></ul>", nodes.len());
    if nodes.is_empty() {
        b.push_str("<p class=\"empty\">No broker nodes (configure <code>[broker]</code>).</p>");
        return layout(&ctx, StatusCode::OK, "Fleet", "/fleet", &b);
    }
    b.push_str(
        "<table id=\"fleet-nodes\"><thead><tr><th scope=\"col\">Node</th><th scope=\"col\">Status</th>\
<th scope=\"col\">Last contact</th><th scope=\"col\">Last write</th><th scope=\"col\">Today imported</th>\
<th scope=\"col\">Today updated</th><th scope=\"col\">Today invalid</th><th scope=\"col\">Today failed</th>\
<th scope=\"col\">Error rate today</th><th scope=\"col\">Error rate 7 days</th><th scope=\"col\">DWH version</th>\
</tr></thead><tbody>",
    );
    for n in nodes {
        let id = n["id"].as_str().unwrap_or("");
        let name = n["name"].as_str().filter(|s| !s.is_empty()).unwrap_or(id);
        let t = &n["today"];
        w!(
            b,
            "<tr data-node=\"{}\"><th scope=\"row\"><a href=\"/fleet/{}\">{}</a></th><td>{}</td><td>{}</td><td>{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            E(id),
            U(id),
            E(name),
            status_cell(n),
            when(&ctx, &n["last_contact"]),
            when(&ctx, &n["last_write"]),
            txt(&t["imported"]),
            txt(&t["updated"]),
            txt(&t["invalid"]),
            txt(&t["failed"]),
            pct(&t["error_rate"]),
            pct(&n["error_rate_7d"]),
            E(&txt(&n["dwh_version"]))
        );
    }
    b.push_str(
        "</tbody></table><h2 id=\"heatmap\">Daily error rates</h2>\
<p><img id=\"fleet-heatmap\" src=\"/api/v1/fleet/heatmap.svg\" alt=\"Heatmap of daily error rates per node over the last 42 days; the table above and each node's page have the figures.\"></p>\
<p><a href=\"/api/v1/fleet/heatmap.png\">PNG</a> · <a href=\"/api/v1/fleet/files\">yearly CSV files</a></p>",
    );
    layout(&ctx, StatusCode::OK, "Fleet", "/fleet", &b)
}

/// `GET /fleet/{id}`.
pub async fn node(
    State(app): State<AppState>,
    who: MaybeCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = Ctx::new(&app, caller(&who), &headers);
    let n = match crate::fleet::node(State(app.clone()), Path(id.clone())).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return error_page(&ctx, &e),
    };
    let name = n["name"].as_str().filter(|s| !s.is_empty()).unwrap_or(&id);
    let mut b = String::with_capacity(16 * 1024);
    w!(
        b,
        "<p>Status: {} · <a href=\"/assets/{}\">checks of this node</a></p><h2 id=\"info\">Node</h2><table id=\"node-info\"><tbody>",
        status_cell(&n),
        U(&id)
    );
    for (k, label) in [
        ("last_check", "Last poll"),
        ("last_contact", "Last contact"),
        ("last_start", "Last start"),
        ("last_write", "Last write"),
        ("last_reject", "Last reject"),
    ] {
        w!(
            b,
            "<tr><th scope=\"row\">{label}</th><td>{}</td></tr>",
            when(&ctx, &n[k])
        );
    }
    for (k, v) in n["metadata"].as_object().into_iter().flatten() {
        w!(
            b,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            E(k),
            E(&txt(v))
        );
    }
    b.push_str("</tbody></table><h2 id=\"figures\">Figures</h2><table id=\"node-days\"><thead><tr>\
<th scope=\"col\">Day</th><th scope=\"col\">Imported</th><th scope=\"col\">Updated</th>\
<th scope=\"col\">Invalid</th><th scope=\"col\">Failed</th><th scope=\"col\">Error rate</th></tr></thead><tbody>");
    for d in n["days"].as_array().into_iter().flatten().rev() {
        w!(
            b,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            E(&txt(&d["date"])),
            txt(&d["imported"]),
            txt(&d["updated"]),
            txt(&d["invalid"]),
            txt(&d["failed"]),
            pct(&d["error_rate"])
        );
    }
    let tot = &n["totals"];
    w!(
        b,
        "</tbody><tfoot><tr><th scope=\"row\">Total</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\
<tr><th scope=\"row\">7-day mean</th><td colspan=\"4\"></td><td class=\"num\">{}</td></tr></tfoot></table>",
        txt(&tot["imported"]),
        txt(&tot["updated"]),
        txt(&tot["invalid"]),
        txt(&tot["failed"]),
        pct(&tot["error_rate"]),
        pct(&n["error_rate_7d"])
    );
    b.push_str("<h2 id=\"errors\">Newest errors</h2>");
    let errors = n["errors"].as_array().map_or(&[][..], Vec::as_slice);
    if errors.is_empty() {
        b.push_str("<p class=\"empty\">None.</p>");
    } else {
        b.push_str("<table id=\"node-errors\"><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Repeats</th><th scope=\"col\">Error</th></tr></thead><tbody>");
        for e in errors {
            w!(
                b,
                "<tr><td>{}</td><td class=\"num\">{}</td><td><pre>{}</pre></td></tr>",
                when(&ctx, &e["timestamp"]),
                txt(&e["repeats"]),
                E(&txt(&e["content"]))
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<h2 id=\"versions\">Versions</h2><table id=\"node-versions\"><tbody>");
    for (k, v) in n["versions"].as_object().into_iter().flatten() {
        w!(
            b,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            E(k),
            E(&txt(v))
        );
    }
    b.push_str("</tbody></table><h2 id=\"changes\">Resource change log</h2>");
    let changes = n["changes"].as_array().map_or(&[][..], Vec::as_slice);
    if changes.is_empty() {
        b.push_str("<p class=\"empty\">No changes recorded.</p>");
    } else {
        b.push_str("<table id=\"node-changes\"><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Resource</th><th scope=\"col\">Change</th></tr></thead><tbody>");
        for c in changes {
            w!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                when(&ctx, &c["time"]),
                E(&txt(&c["resource"])),
                E(&txt(&c["text"]))
            );
        }
        b.push_str("</tbody></table>");
    }
    w!(
        b,
        "<p><a href=\"/api/v1/fleet/nodes/{0}/stats.csv\">stats.csv</a> · <a href=\"/api/v1/fleet/nodes/{0}/errors.csv\">errors.csv</a></p>",
        U(&id)
    );
    let title = format!("Node {name}");
    layout(&ctx, StatusCode::OK, &title, "/fleet", &b)
}
