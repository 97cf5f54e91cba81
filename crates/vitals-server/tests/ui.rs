//! The web UI over the whole router (oneshot, no socket): every page renders real state,
//! filters come from the query, hostile names are escaped, forms need their CSRF token, and
//! with tokens configured a login sets a session cookie that viewers read and admins act with.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;
use vitals_server::{router, AppState};

const VIEWER: &str = "viewer-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789abc";
const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

const CONFIG: &str = r#"
[ui]
timezone = "Europe/Copenhagen"

[[asset]]
id = "db"
name = "<script>alert(1)</script>"
groups = ["core"]
labels = { env = "prod" }

[[asset]]
id = "web"
groups = ["edge"]
parents = ["db"]

[[rule]]
id = "down"
status = "crit"
count = 1
recover = 1
"#;

const TOKENS: &str = r#"
[[token]]
name = "dashboard"
role = "viewer"
secret = "viewer-secret-0123456789"

[[token]]
name = "ops"
role = "admin"
secret = "admin-secret-0123456789abc"
"#;

struct T {
    _t: vitals_app::testing::TestApp,
    app: AppState,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl T {
    async fn new(tokens: bool) -> T {
        let text = if tokens {
            format!("{CONFIG}{TOKENS}")
        } else {
            CONFIG.to_string()
        };
        let t = vitals_app::testing::spawn_app(&text).await;
        let app = t.state().clone();
        T { _t: t, app }
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
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.req("GET", uri, &[HTML], "").await
    }

    async fn form(&self, uri: &str, cookie: Option<&str>, body: &str) -> Resp {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded"), HTML];
        if let Some(c) = cookie {
            h.push(("cookie", c));
        }
        self.req("POST", uri, &h, body).await
    }

    async fn push(&self, asset: &str, check: &str, status: &str, extra: Value) {
        let mut r = json!({"asset": asset, "check": check, "status": status});
        if let (Some(m), Value::Object(e)) = (r.as_object_mut(), extra) {
            m.extend(e);
        }
        let token = format!("Bearer {ADMIN}");
        let mut h = vec![("content-type", "application/json")];
        if !self.app.auth.is_open() {
            h.push(("authorization", &token));
        }
        let resp = self
            .req(
                "POST",
                "/api/v1/results",
                &h,
                &json!({ "results": [r] }).to_string(),
            )
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
        // Distinct milliseconds for distinct observations.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    async fn api(&self, uri: &str) -> Value {
        let token = format!("Bearer {ADMIN}");
        let h: Vec<(&str, &str)> = if self.app.auth.is_open() {
            vec![]
        } else {
            vec![("authorization", &token)]
        };
        let r = self.req("GET", uri, &h, "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }
}

/// The CSRF token a page's forms carry.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn row_pos(page: &str, asset: &str) -> Option<usize> {
    page.find(&format!("<tr data-asset=\"{asset}\""))
}

#[tokio::test]
async fn overview_worst_first_with_counts_filters_and_escaping() {
    let t = T::new(false).await;
    t.push("web", "http", "ok", json!({})).await;
    t.push("db", "port", "crit", json!({"reason": "refused <b>"}))
        .await;
    let r = t.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let (db, web) = (
        row_pos(&r.body, "db").unwrap(),
        row_pos(&r.body, "web").unwrap(),
    );
    assert!(db < web, "crit first");
    assert!(r.body.contains("data-count=\"crit\">1<"));
    assert!(r.body.contains("data-count=\"ok\">1<"));
    assert!(r
        .body
        .contains("<span class=\"status status-crit\">CRIT</span>"));
    // Hostile text is escaped wherever it shows.
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!r.body.contains("<script>alert(1)"));
    assert!(r.body.contains("refused &lt;b&gt;"));
    // Filters from the query, and the form shows them selected.
    let r = t.get("/?status=ok").await;
    assert!(row_pos(&r.body, "web").is_some() && row_pos(&r.body, "db").is_none());
    assert!(r.body.contains("<option value=\"ok\" selected>"));
    let r = t.get("/?group=core").await;
    assert!(row_pos(&r.body, "db").is_some() && row_pos(&r.body, "web").is_none());
    let r = t.get("/?label=env%3Dprod").await;
    assert!(row_pos(&r.body, "db").is_some() && row_pos(&r.body, "web").is_none());
    let r = t.get("/?q=WE").await;
    assert!(row_pos(&r.body, "web").is_some() && row_pos(&r.body, "db").is_none());
    // Counts cover everything even when filtered.
    assert!(r.body.contains("data-count=\"crit\">1<"));
}

#[tokio::test]
async fn overview_pages_stay_worst_first_and_show_new_results_at_once() {
    let t = T::new(false).await;
    // 2,300 assets in one batch: every 7th crit, every 5th (not 7th) warn, the rest ok.
    let status = |i: usize| {
        if i.is_multiple_of(7) {
            "crit"
        } else if i.is_multiple_of(5) {
            "warn"
        } else {
            "ok"
        }
    };
    let results: Vec<Value> = (0..2300)
        .map(|i| json!({"asset": format!("n{i:04}"), "check": "http", "status": status(i)}))
        .collect();
    let r = t
        .req(
            "POST",
            "/api/v1/results",
            &[("content-type", "application/json")],
            &json!({ "results": results }).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rows = |page: &str| -> Vec<String> {
        page.match_indices("<tr data-asset=\"")
            .map(|(at, m)| {
                let rest = &page[at + m.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
            .collect()
    };
    // The expected order over all pages: crit, warn, never run (the configured db and web),
    // ok; by id within each.
    let order = |id: &str| match id.strip_prefix('n').map(|n| status(n.parse().unwrap())) {
        Some("crit") => 0,
        Some("warn") => 1,
        None => 2,
        _ => 3,
    };
    let mut want: Vec<String> = (0..2300).map(|i| format!("n{i:04}")).collect();
    want.extend(["db".to_string(), "web".to_string()]);
    want.sort_by_key(|id| (order(id), id.clone()));
    let mut seen = Vec::new();
    for page in ["/", "/?page=2", "/?page=3"] {
        let r = t.get(page).await;
        assert_eq!(r.status, StatusCode::OK);
        seen.extend(rows(&r.body));
    }
    assert_eq!(seen.len(), 2302);
    assert_eq!(
        seen, want,
        "pages together are every asset, worst first, by id"
    );
    assert_eq!(rows(&t.get("/?page=3").await.body).len(), 302);
    // A page asked for again after a new result shows it (nothing stale is served).
    let first = t.get("/").await;
    assert!(first.body.contains("data-count=\"crit\">329<"));
    t.push("n0001", "http", "crit", json!({"reason": "fresh failure"}))
        .await;
    let again = t.get("/").await;
    assert!(
        again.body.contains("data-count=\"crit\">330<"),
        "counts follow"
    );
    assert!(again.body.contains("fresh failure"));
    assert!(rows(&again.body).contains(&"n0001".to_string()));
}

#[tokio::test]
async fn asset_page_checks_components_charts_ranges() {
    let t = T::new(false).await;
    t.push(
        "db",
        "health",
        "warn",
        json!({"values": {"total_ms": 12.5, "connect_ms": 2.0, "ttfb_ms": 9.0}}),
    )
    .await;
    t.push("db", "health", "ok", json!({"values": {"total_ms": 20.0}}))
        .await;
    // Components come from probes of health endpoints (not from pushed results).
    t.app.state().apply(vec![vitals_core::Observation {
        asset: "db".into(),
        check: "health".into(),
        time: vitals_core::SystemClock::now(),
        status: vitals_core::Status::Warn,
        score: 0,
        duration_us: 1500,
        reason: "database degraded".into(),
        values: vec![],
        components: vec![vitals_core::Component {
            name: "database".into(),
            status: vitals_core::Status::Crit,
            value: None,
            output: "pool exhausted".into(),
        }],
    }]);
    let r = t.get("/assets/db").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<tr data-check=\"health\">"));
    assert!(r.body.contains("id=\"range-24h\""));
    assert!(r.body.contains("class=\"fill-warn\""), "status band");
    assert!(r.body.contains("<polyline class=\"lat-total\""));
    assert!(r.body.contains("<polyline class=\"lat-connect\""));
    assert!(r.body.contains("2 observations, 1 not OK"));
    // The checks table shows the components behind the health endpoint.
    assert!(r.body.contains("database degraded"), "{}", r.body);
    assert!(r.body.contains("pool exhausted"));
    // Times are in the configured zone; the UTC instant is in the markup.
    assert!(r.body.contains("times in Europe/Copenhagen"));
    assert!(r.body.contains(" CET</time>") || r.body.contains(" CEST</time>"));
    // Long ranges use rollups; custom ranges are local times; bad ones say what is wrong.
    let r = t.get("/assets/db?range=7d").await;
    assert_eq!(r.status, StatusCode::OK);
    // Nothing is rolled up yet: the current hour comes from the raw observations.
    assert!(
        r.body
            .contains("2 observations in 1 hourly buckets, 1 not OK"),
        "{}",
        r.body
    );
    let r = t
        .get("/assets/db?range=custom&from=2026-01-01T00%3A00&to=2026-01-02T00%3A00")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("datetime=\"2025-12-31T23:00:00Z\""),
        "midnight in Copenhagen"
    );
    let r = t.get("/assets/db?range=2w").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not 1h, 24h, 7d, 30d or custom"));
    let r = t.get("/assets/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn asset_page_shows_a_captured_version() {
    let t = T::new(false).await;
    t.app.state().apply(vec![vitals_core::Observation {
        asset: "web".into(),
        check: "version".into(),
        time: vitals_core::SystemClock::now(),
        status: vitals_core::Status::Ok,
        score: 1,
        duration_us: 900,
        reason: "HTTP 200".into(),
        values: vec![vitals_core::Value::new("total_ms", 0.9)],
        components: vec![vitals_core::Component {
            name: "version".into(),
            status: vitals_core::Status::Ok,
            value: Some("2.5.1 <b>".into()),
            output: "captured".into(),
        }],
    }]);
    let r = t.get("/assets/web").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<tr data-check=\"version\">"), "{}", r.body);
    assert!(
        r.body
            .contains("version <span class=\"value\">2.5.1 &lt;b&gt;</span> — captured"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn ack_and_silences_through_forms_need_the_csrf_token() {
    let t = T::new(false).await;
    t.push("db", "port", "crit", json!({})).await;
    let alerts = t.api("/api/v1/alerts?state=firing").await;
    let id = alerts["alerts"][0]["id"].as_i64().unwrap();
    let page = t.get("/alerts").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("<form id=\"ack-{id}\"")));
    assert!(page.body.contains("<form id=\"silence-new\""));
    let token = csrf(&page.body);
    // Without (or with a wrong) token: refused, nothing changes.
    let r = t
        .form(&format!("/alerts/{id}/ack"), None, "comment=x")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .form(&format!("/alerts/{id}/ack"), None, "comment=x&csrf=00")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.api("/api/v1/alerts?state=firing").await["alerts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = t
        .form(
            &format!("/alerts/{id}/ack"),
            None,
            &format!("comment=on+it&csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers["location"], "/alerts");
    let a = t.api(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["alert"]["state"], "acknowledged");
    assert_eq!(a["alert"]["ack_comment"], "on it");
    // The alert's own page shows its transitions.
    let r = t.get(&format!("/alerts/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"alert-transitions\""));
    assert!(r.body.contains("acknowledged"));
    // A second ack is a conflict, shown as a page.
    let r = t
        .form(&format!("/alerts/{id}/ack"), None, &format!("csrf={token}"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Create a silence, see it listed, expire it.
    let r = t
        .form(
            "/alerts/silences",
            None,
            &format!("assets=web&labels=env%3Dprod&duration=1h&comment=deploy&csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let s = t.api("/api/v1/silences").await;
    let sid = s["silences"][0]["id"].as_i64().unwrap();
    assert_eq!(s["silences"][0]["matchers"]["labels"]["env"], "prod");
    let page = t.get("/alerts").await;
    assert!(page
        .body
        .contains(&format!("<form id=\"silence-expire-{sid}\"")));
    // Bad input is the API's own error message.
    let r = t
        .form(
            "/alerts/silences",
            None,
            &format!("duration=1h&comment=x&csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("a silence must match something"));
    let r = t
        .form(
            &format!("/alerts/silences/{sid}/expire"),
            None,
            &format!("csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(t.api("/api/v1/silences").await["silences"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn login_sessions_viewers_read_admins_act() {
    let t = T::new(true).await;
    t.push("db", "port", "crit", json!({})).await;
    let id = t.api("/api/v1/alerts?state=firing").await["alerts"][0]["id"]
        .as_i64()
        .unwrap();
    // No session: browsers go to the login form, API clients get a 401.
    let r = t.get("/alerts?x=1").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/login?next=%2Falerts%3Fx%3D1");
    let r = t.req("GET", "/", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t.get("/login").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<form id=\"login\""));
    // Wrong token.
    let r = t.form("/login", None, "token=nope&next=%2Falerts").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Unknown token."));
    // Viewer: can read, cannot act (even with the page's CSRF token).
    let r = t
        .form("/login", None, &format!("token={VIEWER}&next=%2Falerts"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/alerts");
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("vitals_session="));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    assert!(!set.contains("Secure"), "not served over TLS here");
    let viewer = set.split(';').next().unwrap().to_string();
    let page = t
        .req("GET", "/alerts", &[HTML, ("cookie", &viewer)], "")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("<span id=\"user\">dashboard</span> (viewer)"));
    assert!(
        !page.body.contains("form id=\"ack-"),
        "no forms for viewers"
    );
    let r = t
        .req("GET", "/assets/db", &[HTML, ("cookie", &viewer)], "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .form(
            &format!("/alerts/{id}/ack"),
            Some(&viewer),
            "comment=x&csrf=whatever",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A forged cookie is no session.
    let forged = format!(
        "{}0",
        viewer.trim_end_matches(|c: char| c.is_ascii_hexdigit())
    );
    let r = t.req("GET", "/", &[HTML, ("cookie", &forged)], "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Admin: acts with the CSRF token of its own session only.
    let r = t.form("/login", None, &format!("token={ADMIN}")).await;
    let admin = r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = t
        .req("GET", "/alerts", &[HTML, ("cookie", &admin)], "")
        .await;
    assert!(page.body.contains(&format!("<form id=\"ack-{id}\"")));
    let token = csrf(&page.body);
    let r = t
        .form(&format!("/alerts/{id}/ack"), Some(&admin), "comment=x")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    let r = t
        .form(
            &format!("/alerts/{id}/ack"),
            Some(&admin),
            &format!("comment=mine&csrf={token}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let a = t.api(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["alert"]["acked_by"], "ops");
    // Logging out clears the cookie.
    let r = t.req("POST", "/logout", &[("cookie", &admin)], "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn notifications_fleet_static_and_events() {
    let t = T::new(false).await;
    t.push("db", "port", "crit", json!({})).await;
    let r = t.get("/notifications").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("aria-current=\"page\">Notifications<"));
    let r = t.get("/notifications?limit=0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t.get("/fleet").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No broker nodes"));
    let r = t.get("/fleet/db").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.get("/ui/static/ui.css").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("prefers-color-scheme: dark"));
    let r = t.get("/ui/static/ui.js").await;
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    // Compressed when asked.
    let r = t
        .req("GET", "/", &[HTML, ("accept-encoding", "gzip")], "")
        .await;
    assert_eq!(r.headers["content-encoding"], "gzip");
    // Short polling: the current counts and statuses.
    let r = t.req("GET", "/ui/events", &[], "").await;
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["counts"]["crit"], 1);
    assert_eq!(v["statuses"]["db"], "crit");
    // Server-sent events: the first event comes at once with the counts.
    let resp = router(t.app.clone())
        .oneshot(
            Request::builder()
                .uri("/ui/events")
                .header("accept", "text/event-stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: status\ndata: "), "{text}");
    assert!(text.contains("\"crit\":1"), "{text}");
}
