//! The integration engine over the real router: jobs through the API (pause, schedule
//! override shown as differing from the file, removal, run now and 409 while running, bad
//! input as 4xx), every action in the audit log; the Sources, Pipelines and Jobs pages render.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;
use vitals_server::{router, AppState};

const CONFIG: &str = r#"
[[job]]
id = "rebuild"
name = "Rebuild the source list"
command = ["sh", "-c", "echo building; sleep 1; echo built"]
schedule = "0 3 * * *"
timeout = "30s"

[[pipeline]]
id = "catalogue-update"
[[pipeline.stage]]
name = "transform"
asset = "etl"
check = "transform"
records_in = "in"
max_silence = "40m"
"#;

struct T {
    _t: vitals_app::testing::TestApp,
    app: AppState,
}

impl T {
    /// The real app (the same composition root as `vitals serve`) with the engine sections.
    async fn new() -> T {
        let t = vitals_app::testing::spawn_app(CONFIG).await;
        let app = t.state().clone();
        T { _t: t, app }
    }

    async fn call(&self, method: Method, uri: &str, body: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = router(self.app.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn json(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        let (s, b) = self.call(method, uri, &body.to_string()).await;
        (s, serde_json::from_str(&b).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_paused_rescheduled_run_and_restored_through_the_api_and_audited() {
    let t = T::new().await;
    let (s, v) = t
        .json(Method::GET, "/api/v1/engine/jobs", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["jobs"][0]["effective_schedule"], "0 3 * * *");
    assert!(v["jobs"][0]["override"].is_null());

    let (s, v) = t
        .json(
            Method::POST,
            "/api/v1/engine/jobs/rebuild/pause",
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["job"]["paused"], true);
    let (s, v) = t
        .json(
            Method::PUT,
            "/api/v1/engine/jobs/rebuild/schedule",
            json!({"schedule": "*/5 * * * *"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["job"]["schedule"], "0 3 * * *",
        "the file's schedule stays visible"
    );
    assert_eq!(v["job"]["effective_schedule"], "*/5 * * * *");
    assert_eq!(v["job"]["override"]["set_by"], "local");

    // Bad input is a 4xx naming what is wrong.
    let (s, v) = t
        .json(
            Method::PUT,
            "/api/v1/engine/jobs/rebuild/schedule",
            json!({"schedule": "whenever"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["field"], "schedule");
    let (s, _) = t
        .call(
            Method::PUT,
            "/api/v1/engine/jobs/rebuild/schedule",
            "not json",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .json(Method::POST, "/api/v1/engine/jobs/nope/run", Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The Jobs page shows the override as differing from the file.
    let (s, html) = t.call(Method::GET, "/jobs", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("overridden") && html.contains("the file says <code>0 3 * * *</code>"),
        "{html}"
    );
    assert!(html.contains("paused"));

    let (s, v) = t
        .json(
            Method::DELETE,
            "/api/v1/engine/jobs/rebuild/override",
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"], true);
    assert_eq!(v["job"]["effective_schedule"], "0 3 * * *");
    assert_eq!(v["job"]["paused"], false);

    // Run now; a second one while it runs is refused.
    let (s, _) = t
        .json(Method::POST, "/api/v1/engine/jobs/rebuild/run", Value::Null)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = t
        .json(Method::POST, "/api/v1/engine/jobs/rebuild/run", Value::Null)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let mut runs = Value::Null;
    for _ in 0..400 {
        let (_, v) = t
            .json(Method::GET, "/api/v1/engine/jobs/rebuild", Value::Null)
            .await;
        if v["job"]["runs"].as_array().is_some_and(|r| !r.is_empty()) {
            runs = v["job"]["runs"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(runs[0]["outcome"], "ok", "{runs}");
    assert_eq!(runs[0]["exit_code"], 0);
    assert!(runs[0]["output"].as_str().unwrap().contains("built"));

    // Every action is in the audit log.
    let (s, v) = t.json(Method::GET, "/api/v1/audit", Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.to_string();
    for action in [
        "POST /api/v1/engine/jobs/rebuild/pause",
        "PUT /api/v1/engine/jobs/rebuild/schedule",
        "DELETE /api/v1/engine/jobs/rebuild/override",
        "POST /api/v1/engine/jobs/rebuild/run",
    ] {
        assert!(text.contains(action), "{action} is not audited: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_pages_render_and_without_an_engine_say_what_to_configure() {
    let t = T::new().await;
    for (page, want) in [
        ("/sources", "No <code>[[source_set]]</code>"),
        ("/pipelines", "catalogue-update"),
        ("/jobs", "Rebuild the source list"),
    ] {
        let (s, html) = t.call(Method::GET, page, "").await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(html.contains(want), "{page}: {html}");
    }
    let (s, v) = t
        .json(Method::GET, "/api/v1/engine/pipelines", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pipelines"][0]["stages"][0]["name"], "transform");

    t.app.site.set_engine(None);
    let (s, v) = t
        .json(Method::GET, "/api/v1/engine/sources", Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("no integration engine"));
    let (s, html) = t.call(Method::GET, "/pipelines", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("No integration engine is configured"));
}
