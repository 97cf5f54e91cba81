//! Status pages, their notices, notifier tests and the overview's uptime and "last 50" bars,
//! over the whole router (oneshot) with a real SQLite store and a real loopback webhook
//! receiver: the public page shows only what it may, notices are stored, audited and bounded,
//! forms need admins and CSRF tokens, and a test message reaches the real channel.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use vitals_server::{router, AppState};

const VIEWER: &str = "viewer-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789abc";
const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

/// `{hook}` and `{dead}` are replaced by a live receiver's and a refused URL.
const CONFIG: &str = r#"
[[asset]]
id = "minlog2"
name = "MinLog2 national log"
groups = ["platform"]

[[asset]]
id = "clinic-17"
name = "Klinikum Beispielstadt"
groups = ["clinics"]

[[asset]]
id = "secret-db"
name = "Internal database XYZ"
groups = ["internal"]

[[status_page]]
slug = "clinics"
title = "Clinic services"
description = "For the clinics."
assets = ["minlog2"]
groups = ["clinics"]

[[notifier]]
id = "hook"
type = "webhook"
url = "{hook}"

[[notifier]]
id = "dead"
type = "webhook"
url = "{dead}"

[[rule]]
id = "down"
status = "crit"
count = 1
recover = 1

[[token]]
name = "dashboard"
role = "viewer"
secret = "viewer-secret-0123456789"

[[token]]
name = "ops"
role = "admin"
secret = "admin-secret-0123456789abc"
"#;

/// The notifiers of the configuration, delivering for real (what `vitals serve` wires up).
type Log = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A loopback webhook receiver recording what it is sent.
async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let l = l.clone();
            async move {
                l.lock().unwrap().push((h, b));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), log)
}

fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/hook")
}

struct T {
    _t: vitals_app::testing::TestApp,
    app: AppState,
    hook: Log,
}

struct Resp {
    status: StatusCode,
    body: String,
}

impl T {
    async fn new() -> T {
        let (hook_url, hook) = receiver().await;
        let text = CONFIG
            .replace("{hook}", &hook_url)
            .replace("{dead}", &refused_url());
        let t = vitals_app::testing::spawn_app(&format!(
            "[server]\npublic_url = \"https://vitals.example\"\n{text}"
        ))
        .await;
        let app = t.state().clone();
        T { _t: t, app, hook }
    }

    async fn req(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = router(self.app.clone())
            .oneshot(b.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn as_(&self, token: &str, method: &str, uri: &str, body: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.req(
            method,
            uri,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    async fn json(&self, token: &str, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let r = self.as_(token, method, uri, &body.to_string()).await;
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    async fn push(&self, results: Value) {
        let (s, v) = self
            .json(
                ADMIN,
                "POST",
                "/api/v1/results",
                json!({ "results": results }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// A session cookie of `secret`'s token.
    async fn login(&self, secret: &str) -> String {
        let r = Request::builder()
            .method("POST")
            .uri("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={secret}&next=%2F")))
            .unwrap();
        let resp = router(self.app.clone()).oneshot(r).await.unwrap();
        let c = resp.headers()["set-cookie"].to_str().unwrap();
        c.split(';').next().unwrap().to_string()
    }

    async fn page(&self, cookie: &str, uri: &str) -> Resp {
        self.req("GET", uri, &[HTML, ("cookie", cookie)], "").await
    }

    async fn form(&self, cookie: &str, uri: &str, body: &str) -> Resp {
        self.req(
            "POST",
            uri,
            &[
                HTML,
                ("cookie", cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
        .await
    }
}

fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Every `href`, `src` and `action` of a page.
fn links(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\"", "action=\""] {
        let mut rest = page;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            out.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    out
}

#[tokio::test]
async fn the_public_status_page_shows_names_statuses_uptime_and_notices_only() {
    let t = T::new().await;
    t.push(json!([
        {"asset": "minlog2", "check": "monitor", "status": "ok"},
        {"asset": "clinic-17", "check": "export", "status": "crit", "reason": "disk full on host db-17-internal"},
        {"asset": "secret-db", "check": "port", "status": "crit", "reason": "refused"}
    ]))
    .await;
    let (s, v) = t
        .json(
            ADMIN,
            "POST",
            "/api/v1/status-pages/clinics/notices",
            json!({"kind": "maintenance", "title": "Imports paused <tonight>", "body": "22-23 h.\n\nNo data is lost."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["notice"]["author"], "ops");

    // No token, no session: the page answers.
    let r = t.req("GET", "/status/clinics", &[HTML], "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = &r.body;
    assert!(p.contains("<h1>Clinic services</h1>"));
    assert!(p.contains("MinLog2 national log") && p.contains("Klinikum Beispielstadt"));
    assert!(p.contains("Operational") && p.contains("Down"));
    assert!(p.contains("id=\"overall\" class=\"overall status-crit\""));
    assert!(p.contains("Imports paused &lt;tonight&gt;") && p.contains("<p>No data is lost.</p>"));
    assert!(
        p.contains("<td class=\"num\" title=\"1 of 1 OK\">100 %</td>"),
        "uptime: {p}"
    );
    assert!(
        p.contains("aria-label=\"Last 1 results: 1 CRIT\""),
        "bars: {p}"
    );
    // The listed asset comes first.
    assert!(p.find("MinLog2 national log") < p.find("Klinikum Beispielstadt"));
    // Nothing else of the estate: not the other asset, no ids, checks, reasons or authors …
    for secret in [
        "Internal database XYZ",
        "secret-db",
        "clinic-17",
        "minlog2",
        "export",
        "monitor",
        "disk full",
        "ops",
    ] {
        assert!(!p.contains(secret), "the public page shows {secret:?}: {p}");
    }
    // … no script, and no link anywhere but the stylesheet.
    assert!(!p.contains("<script"));
    let l = links(p);
    assert!(
        l.iter().all(|x| x.starts_with("/ui/static/ui.css")),
        "links: {l:?}"
    );
    // Unknown pages say nothing.
    let r = t.req("GET", "/status/internal", &[HTML], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.body.contains("clinics"));
}

#[tokio::test]
async fn notices_need_an_admin_are_checked_audited_ended_and_bounded() {
    let t = T::new().await;
    let uri = "/api/v1/status-pages/clinics/notices";
    // Reading needs a viewer; posting an admin.
    assert_eq!(
        t.req("GET", uri, &[], "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = t.json(VIEWER, "GET", uri, Value::Null).await;
    assert_eq!(
        (s, v["notices"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, _) = t.json(VIEWER, "POST", uri, json!({"title": "x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad input is a 400 naming the field; an unknown page a 404.
    for (body, field) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "x", "kind": "panic"}), "kind"),
        (json!({"title": "x", "colour": "red"}), "colour"),
        (json!({"title": 3}), "title"),
        (json!({"title": "x", "body": "y".repeat(4001)}), "body"),
    ] {
        let (s, v) = t.json(ADMIN, "POST", uri, body).await;
        assert_eq!(
            (s, v["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{v}"
        );
    }
    let (s, _) = t
        .json(
            ADMIN,
            "POST",
            "/api/v1/status-pages/nope/notices",
            json!({"title": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = t
        .json(ADMIN, "POST", uri, json!({"title": "Slow imports"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["notice"]["kind"], "info");
    let id = v["notice"]["id"].as_i64().unwrap();
    // Ending keeps it, marked ended.
    let (s, v) = t
        .json(ADMIN, "DELETE", &format!("{uri}/{id}"), Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["notice"]["ended"].is_number());
    let (_, v) = t.json(VIEWER, "GET", uri, Value::Null).await;
    assert_eq!(v["notices"][0]["title"], "Slow imports");
    assert!(v["notices"][0]["ended"].is_number());
    let (s, _) = t
        .json(ADMIN, "DELETE", &format!("{uri}/999"), Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Audited: who posted and who ended.
    let (_, a) = t.json(ADMIN, "GET", "/api/v1/audit", Value::Null).await;
    let actions: Vec<(String, String)> = a["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        actions.contains(&(format!("POST {uri}"), "ops".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(format!("DELETE {uri}/{id}"), "ops".into())),
        "{actions:?}"
    );
    // Bounded: at most 20 open at once.
    for i in 0..20 {
        let (s, _) = t
            .json(ADMIN, "POST", uri, json!({"title": format!("n{i}")}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, v) = t
        .json(ADMIN, "POST", uri, json!({"title": "one too many"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn notice_forms_need_admins_and_csrf() {
    let t = T::new().await;
    let viewer = t.login(VIEWER).await;
    let admin = t.login(ADMIN).await;
    let r = t.page(&viewer, "/status-pages").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("/status/clinics") && !r.body.contains("notice-new-clinics"));
    let r = t.page(&admin, "/status-pages").await;
    assert!(r.body.contains("id=\"notice-new-clinics\""), "{}", r.body);
    let token = csrf(&r.body);
    // Without the CSRF token: refused; as a viewer: refused.
    let r = t
        .form(
            &admin,
            "/status-pages/clinics/notices",
            "title=Down&kind=incident",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .form(
            &viewer,
            "/status-pages/clinics/notices",
            &format!("title=Down&csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .form(
            &admin,
            "/status-pages/clinics/notices",
            &format!("title=Portal+down&kind=incident&body=We+are+on+it.&csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = t.req("GET", "/status/clinics", &[HTML], "").await;
    assert!(r.body.contains("Incident: Portal down") && r.body.contains("We are on it."));
    // Ending through the form.
    let page = t.page(&admin, "/status-pages").await.body;
    let at = page
        .find("action=\"/status-pages/clinics/notices/")
        .unwrap();
    let action = &page[at + 8..];
    let action = &action[..action.find('"').unwrap()];
    let r = t
        .form(&admin, action, &format!("csrf={}", csrf(&page)))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = t.req("GET", "/status/clinics", &[HTML], "").await;
    assert!(r.body.contains("Recently ended"), "{}", r.body);
    assert!(!r.body.contains("id=\"notices\""), "no open notice is left");
}

#[tokio::test]
async fn a_test_message_goes_through_the_real_channel_and_reports_the_outcome() {
    let t = T::new().await;
    let (s, v) = t
        .json(VIEWER, "GET", "/api/v1/notifiers", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["notifiers"][0]["id"], "hook");
    assert_eq!(v["notifiers"][0]["type"], "webhook");
    assert!(v["notifiers"][0]["target"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    // Viewers may not send; admins may.
    let (s, _) = t
        .json(VIEWER, "POST", "/api/v1/notifiers/hook/test", Value::Null)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .json(ADMIN, "POST", "/api/v1/notifiers/hook/test", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["test"]["delivered"], true, "{v}");
    assert_eq!(v["test"]["detail"], "HTTP 200");
    let got = t.hook.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(body["kind"], "test");
    assert_eq!(body["notifier"], "hook");
    assert_eq!(body["alerts"][0]["alert_id"], 0);
    assert!(body["alerts"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("ops asked Vitals"));
    assert_eq!(body["alerts"][0]["url"], "https://vitals.example");
    assert_eq!(
        got[0].0["x-vitals-notification"].to_str().unwrap(),
        v["test"]["message_id"].as_str().unwrap()
    );
    // A channel that fails is a 200 with its outcome: the test ran.
    let (s, v) = t
        .json(ADMIN, "POST", "/api/v1/notifiers/dead/test", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["test"]["delivered"].as_bool(),
            v["test"]["transient"].as_bool()
        ),
        (Some(false), Some(true)),
        "{v}"
    );
    let (s, _) = t
        .json(ADMIN, "POST", "/api/v1/notifiers/nope/test", Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Audited.
    let (_, a) = t.json(ADMIN, "GET", "/api/v1/audit", Value::Null).await;
    assert!(a["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "POST /api/v1/notifiers/hook/test" && e["actor"] == "ops"));
}

#[tokio::test]
async fn the_notifier_page_has_a_test_button_for_admins_with_csrf() {
    let t = T::new().await;
    let viewer = t.login(VIEWER).await;
    let admin = t.login(ADMIN).await;
    let r = t.page(&viewer, "/notifiers").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<tr data-notifier=\"hook\">") && !r.body.contains("id=\"test-hook\""));
    let page = t.page(&admin, "/notifiers").await.body;
    assert!(
        page.contains("<form id=\"test-hook\" method=\"post\" action=\"/notifiers/hook/test\">")
    );
    let r = t.form(&admin, "/notifiers/hook/test", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert!(t.hook.lock().unwrap().is_empty());
    let r = t
        .form(
            &admin,
            "/notifiers/hook/test",
            &format!("csrf={}", csrf(&page)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("id=\"test-result\" class=\"test-result status-ok\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("data-delivered=\"true\""));
    assert_eq!(t.hook.lock().unwrap().len(), 1);
    let body: Value = serde_json::from_slice(&t.hook.lock().unwrap()[0].1).unwrap();
    assert!(body["alerts"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("ops (web UI) asked"));
    let r = t
        .form(
            &admin,
            "/notifiers/dead/test",
            &format!("csrf={}", csrf(&page)),
        )
        .await;
    assert!(r.body.contains("data-delivered=\"false\"") && r.body.contains("NOT delivered"));
}

#[tokio::test]
async fn overview_and_asset_page_show_uptime_bars_values_and_alert_names() {
    let t = T::new().await;
    for i in 0..4 {
        let status = if i == 2 { "crit" } else { "ok" };
        t.push(
            json!([{"asset": "minlog2", "check": "import", "status": status,
                       "values": {"rfid_tags": 10 + i, "queue_depth": 3}}]),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let cookie = t.login(VIEWER).await;
    let r = t.page(&cookie, "/?q=minlog2").await;
    assert_eq!(r.status, StatusCode::OK);
    let row = &r.body[r.body.find("<tr data-asset=\"minlog2\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("aria-label=\"Last 4 results: 3 OK, 1 CRIT\""),
        "{row}"
    );
    assert!(
        row.contains("<hr class=p46><hr class=k2><hr class=c1><hr class=k1></div>"),
        "{row}"
    );
    assert_eq!(row.matches("<td>75.00 %</td>").count(), 3, "{row}");
    // Not run: a dash, not 0 %.
    let row = &r.body;
    assert!(!row.contains("0.00 %"));
    let r = t.page(&cookie, "/?q=clinic").await;
    assert!(
        r.body.contains("</div></td><td class=\"num\">—</td>"),
        "{}",
        r.body
    );

    let r = t.page(&cookie, "/assets/minlog2?range=1h").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"asset-uptime\""));
    assert!(
        r.body
            .contains("<div class=\"value-chart\" data-value=\"queue_depth\">"),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("<div class=\"value-chart\" data-value=\"rfid_tags\">"));
    assert!(
        r.body
            .contains("rfid_tags: last 13, min 10, mean 11.5, max 13"),
        "{}",
        r.body
    );
    // Long ranges chart hourly means of the raw values.
    let r = t.page(&cookie, "/assets/minlog2?range=7d").await;
    assert!(
        r.body.contains("Values (hourly means)") && r.body.contains("data-value=\"rfid_tags\"")
    );
    // Per-result tooltips on the asset page.
    assert!(r.body.contains("<hr class=c1 title=\""), "{}", r.body);
    assert!(r.body.contains(" CRIT\">"), "{}", r.body);
    // Alerts name their assets (the id stays in the link).
    t.push(json!([{"asset": "secret-db", "check": "port", "status": "crit"}]))
        .await;
    let r = t.page(&cookie, "/alerts").await;
    assert!(
        r.body.contains(
            "<a href=\"/assets/secret-db\" title=\"secret-db\">Internal database XYZ</a>"
        ),
        "{}",
        r.body
    );
}
