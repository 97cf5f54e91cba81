//! Check schedule overrides and engine reloads with the real app (`spawn_app`): an admin's
//! interval for one check is applied by the scheduler at once, survives a restart on the same
//! data directory, is shown as differing from the file and removable; viewers may not change
//! it; every change is audited. A reload starts, changes (keeping stored overrides) and refuses
//! engine sections whole.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use vitals_app::testing::{spawn_app, TestApp};

const ADMIN: &str = "admin-secret-0123456789abcdef";
const VIEWER: &str = "viewer-secret-0123456789abcdef";

/// `slow` runs hourly as written; a closed loopback port makes each run a quick observation.
fn config(port: u16) -> String {
    format!(
        r#"
[[asset]]
id = "web"

[[check]]
asset = "web"
name = "slow"
type = "tcp"
address = "127.0.0.1:{port}"
interval = "1h"
timeout = "1s"

[[check]]
asset = "web"
name = "pushed"
type = "push"

[[check]]
asset = "web"
name = "cron-job"
type = "heartbeat"
interval = "1d"

[[token]]
name = "ops"
role = "admin"
secret = "{ADMIN}"

[[token]]
name = "watcher"
role = "viewer"
secret = "{VIEWER}"
"#
    )
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn call(
    t: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = t.client.request(method, format!("{}{path}", t.url));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn observations(t: &TestApp) -> u64 {
    t.app().pipeline().flush().await;
    t.store().count_observations().await.unwrap()
}

/// Waits (up to 20 s) until the store holds at least `n` observations.
async fn until_observations(t: &TestApp, n: u64) -> u64 {
    for _ in 0..400 {
        let c = observations(t).await;
        if c >= n {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} observations within 20 s");
}

/// The asset page of `web`, as the admin sees it.
async fn asset_page(t: &TestApp) -> String {
    t.client
        .get(format!("{}/assets/web", t.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn slow_of(v: &Value) -> Value {
    v["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["check"] == "slow")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checks_schedule_override_applies_at_once_survives_a_restart_and_is_removable() {
    let text = config(closed_port());
    let mut t = spawn_app(&text).await;
    const PUT: &str = "/api/v1/assets/web/checks/slow/schedule";

    // The first run comes soon after start; hourly, no second one follows by itself.
    let first = until_observations(&t, 1).await;
    let (s, v) = call(&t, VIEWER, Method::GET, "/api/v1/schedules", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let slow = slow_of(&v);
    assert_eq!(slow["file"], json!({"interval": "1h"}));
    assert_eq!(slow["effective"], json!({"interval": "1h"}));
    assert!(slow["override"].is_null());
    assert!(
        v["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["check"] != "pushed"),
        "push checks have no schedule: {v}"
    );

    // A viewer may not change it.
    let (s, _) = call(
        &t,
        VIEWER,
        Method::PUT,
        PUT,
        Some(json!({"interval": "1s"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&t, VIEWER, Method::DELETE, PUT, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Bad input is a 4xx naming what is wrong.
    for (path, body, status, field) in [
        (
            "/api/v1/assets/web/checks/nope/schedule",
            json!({"interval": "1s"}),
            404,
            None,
        ),
        (
            "/api/v1/assets/nope/checks/slow/schedule",
            json!({"interval": "1s"}),
            404,
            None,
        ),
        (PUT, json!({"interval": "soon"}), 400, Some("interval")),
        (PUT, json!({"interval": "500ms"}), 400, Some("interval")),
        (PUT, json!({"cron": "every full moon"}), 400, Some("cron")),
        (
            PUT,
            json!({"interval": "1s", "cron": "* * * * *"}),
            400,
            Some("interval"),
        ),
        (PUT, json!({}), 400, Some("interval")),
        (PUT, json!({"interval": 5}), 400, Some("interval")),
        (PUT, json!({"every": "5s"}), 400, Some("every")),
        (PUT, json!(["1s"]), 400, Some("body")),
        (
            "/api/v1/assets/web/checks/pushed/schedule",
            json!({"interval": "1m"}),
            400,
            Some("check"),
        ),
    ] {
        let (s, v) = call(&t, ADMIN, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(s.as_u16(), status, "{path} {body}: {v}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{path} {body}: {v}");
        }
    }
    let (_, v) = call(
        &t,
        ADMIN,
        Method::PUT,
        "/api/v1/assets/web/checks/pushed/schedule",
        Some(json!({"interval": "1m"})),
    )
    .await;
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("only polled checks and heartbeats have schedules"),
        "{v}"
    );

    // An admin sets 1s: the scheduler runs it at once, every second.
    let (s, v) = call(&t, ADMIN, Method::PUT, PUT, Some(json!({"interval": "1s"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["schedule"]["file"],
        json!({"interval": "1h"}),
        "the file's schedule stays visible"
    );
    assert_eq!(v["schedule"]["effective"], json!({"interval": "1s"}));
    assert_eq!(v["schedule"]["override"]["set_by"], "ops");
    until_observations(&t, first + 3).await;

    // A heartbeat's expected interval may be overridden too.
    let (s, v) = call(
        &t,
        ADMIN,
        Method::PUT,
        "/api/v1/assets/web/checks/cron-job/schedule",
        Some(json!({"cron": "0 3 * * *"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["schedule"]["kind"], "heartbeat");
    assert_eq!(v["schedule"]["effective"], json!({"cron": "0 3 * * *"}));

    // The asset page shows it as differing from the file, with a way to remove it.
    let page = asset_page(&t).await;
    assert!(
        page.contains("<code>every 1s</code> <strong class=\"override\">overridden</strong> (the file says <code>every 1h</code>)"),
        "{page}"
    );
    assert!(
        page.contains("action=\"/assets/web/checks/slow/schedule/remove\""),
        "{page}"
    );

    // A restart on the same data directory keeps the override and applies it.
    t.restart(&text).await;
    let (_, v) = call(&t, VIEWER, Method::GET, "/api/v1/schedules", None).await;
    let slow = slow_of(&v);
    assert_eq!(slow["effective"], json!({"interval": "1s"}), "{v}");
    assert_eq!(slow["override"]["value"], "1s");
    let before = observations(&t).await;
    until_observations(&t, before + 3).await;

    // So does a reload.
    t.reload(&text).await.unwrap();
    let (_, v) = call(&t, VIEWER, Method::GET, "/api/v1/schedules", None).await;
    assert_eq!(slow_of(&v)["effective"], json!({"interval": "1s"}), "{v}");

    // Removing it restores the file's schedule.
    let (s, v) = call(&t, ADMIN, Method::DELETE, PUT, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"], true);
    assert_eq!(v["schedule"]["effective"], json!({"interval": "1h"}));
    assert!(v["schedule"]["override"].is_null());
    let (s, v) = call(&t, ADMIN, Method::DELETE, PUT, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["removed"], false);
    // Setting the file's own schedule keeps no override either.
    let (_, v) = call(
        &t,
        ADMIN,
        Method::PUT,
        PUT,
        Some(json!({"interval": "60m"})),
    )
    .await;
    assert!(v["schedule"]["override"].is_null(), "{v}");

    // Every change is in the audit log.
    let (s, v) = call(&t, ADMIN, Method::GET, "/api/v1/audit", None).await;
    assert_eq!(s, StatusCode::OK);
    let audit = v.to_string();
    for action in [
        "PUT /api/v1/assets/web/checks/slow/schedule",
        "DELETE /api/v1/assets/web/checks/slow/schedule",
        "PUT /api/v1/assets/web/checks/cron-job/schedule",
    ] {
        assert!(audit.contains(action), "{action} is not audited: {audit}");
    }
    t.stop().await;
}

const JOB: &str = r#"
[[job]]
id = "tick"
command = ["sh", "-c", "echo tick"]
schedule = "* * * * * *"
timeout = "10s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_and_changes_engine_sections_and_refuses_a_broken_one_whole() {
    let base = "[[asset]]\nid = \"web\"\n";
    let mut t = spawn_app(base).await;
    assert!(t.state().site.engine().is_none());

    // A job added by a reload runs.
    t.reload(&format!("{base}{JOB}")).await.unwrap();
    let first = t.wait_for("tick", "run", |o| o.reason == "exited 0").await;
    let engine = t.state().site.engine().expect("an engine after the reload");
    assert_eq!(engine.jobs.views(0)[0].id, "tick");

    // A broken engine section (a catalogue that cannot be opened) is refused; the old engine
    // stays and its job keeps running.
    let broken = format!(
        r#"{base}{JOB}
[[job]]
id = "other"
command = ["true"]
schedule = "0 3 * * *"

[[source_set]]
id = "rts"
catalogue = "sqlite:{}/missing/catalogue.db"
sources_query = "SELECT id FROM sources"
assign_query = "SELECT patient_id FROM episodes WHERE source_id = :source"
catalogue_query = "SELECT family FROM patients WHERE id = :patient"
fetch = {{ type = "http", url = "http://127.0.0.1:9/{{patient}}" }}

[[source_set.field]]
name = "family"
source = "/name/0/family"
catalogue = "family"
"#,
        t.dir().display()
    );
    let err = t.reload(&broken).await.unwrap_err().to_string();
    assert!(err.contains("reload refused: integration engine"), "{err}");
    assert!(err.contains("catalogue"), "{err}");
    let still = t.state().site.engine().unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&still, &engine),
        "the running engine stays"
    );
    assert_eq!(still.jobs.views(0).len(), 1);
    t.wait_for("tick", "run", |o| o.time > first.time).await;

    // A changed engine section replaces the engine; stored overrides stay.
    let (s, v) = call(&t, "", Method::POST, "/api/v1/engine/jobs/tick/pause", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let other = "[[job]]\nid = \"other\"\ncommand = [\"true\"]\nschedule = \"0 3 * * *\"\n";
    t.reload(&format!("{base}{JOB}{other}")).await.unwrap();
    let replaced = t.state().site.engine().unwrap();
    assert!(!std::sync::Arc::ptr_eq(&replaced, &engine));
    let jobs = replaced.jobs.views(0);
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0].paused, "the pause of tick is kept: {jobs:?}");

    // Removing the sections stops the engine.
    t.reload(base).await.unwrap();
    assert!(t.state().site.engine().is_none());
    t.stop().await;
}

/// The asset page's schedule form: set an interval, then remove it; without the page's CSRF
/// token nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asset_pages_schedule_form_sets_and_removes_an_override() {
    let mut t = spawn_app(&config(closed_port())).await;
    let body = asset_page(&t).await;
    assert!(
        body.contains("action=\"/assets/web/checks/slow/schedule\""),
        "{body}"
    );
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    let csrf = &body[at..at + body[at..].find('"').unwrap()];
    let post = |path: &'static str, form: String| {
        let t = &t;
        async move {
            t.client
                .post(format!("{}{path}", t.url))
                .bearer_auth(ADMIN)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap()
        }
    };
    let effective = || async {
        let (_, v) = call(&t, ADMIN, Method::GET, "/api/v1/schedules", None).await;
        slow_of(&v)["effective"].clone()
    };
    const SET: &str = "/assets/web/checks/slow/schedule";
    const REMOVE: &str = "/assets/web/checks/slow/schedule/remove";
    // (form action, form, answer after redirects, effective schedule after it)
    let steps = [
        // Without the page's CSRF token: refused, nothing changes.
        (SET, "kind=interval&value=5s".to_string(), 403, "1h"),
        // Set: redirected back to the page.
        (
            SET,
            format!("kind=interval&value=5s&csrf={csrf}"),
            200,
            "5s",
        ),
        // A bad value: a page naming it, nothing changes.
        (
            SET,
            format!("kind=interval&value=soon&csrf={csrf}"),
            400,
            "5s",
        ),
        (REMOVE, format!("csrf={csrf}"), 200, "1h"),
    ];
    for (action, form, status, interval) in steps {
        let r = post(action, form.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{action} {form}");
        if status == 200 {
            assert_eq!(r.url().path(), "/assets/web");
        }
        assert_eq!(effective().await, json!({ "interval": interval }), "{form}");
        if interval == "5s" {
            assert!(asset_page(&t).await.contains("overridden"));
        }
    }
    t.stop().await;
}
