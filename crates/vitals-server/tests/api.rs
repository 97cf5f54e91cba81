//! The HTTP API of a real app (`vitals_app::testing`), through its router without a socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;
use vitals_core::{Component, Observation, Status, Timestamp, Value as V};
use vitals_server::{router, AppState};
use vitals_store::Store;

struct TestApp {
    _t: vitals_app::testing::TestApp,
    app: AppState,
    store: Arc<dyn Store>,
}

/// Configured but never probed (`enabled = false`): the tests ingest their observations.
const CONFIG: &str = r#"
[[asset]]
id = "minlog2"
name = "MinLog2"
groups = ["platform"]

[[asset]]
id = "clinic-1"
name = 'Clinic "One"'
groups = ["clinics"]

[[asset]]
id = "idle"
name = "Never ran"

[[check]]
asset = "minlog2"
name = "monitor"
type = "http"
url = "http://127.0.0.1:9/"
enabled = false

[[check]]
asset = "clinic-1"
name = "import"
type = "http"
url = "http://127.0.0.1:9/"
enabled = false

[[check]]
asset = "idle"
name = "ping"
type = "tcp"
address = "127.0.0.1:9"
enabled = false
"#;

impl TestApp {
    async fn new() -> TestApp {
        let t = vitals_app::testing::spawn_app(CONFIG).await;
        let app = t.state().clone();
        let store = t.store().clone();
        TestApp { _t: t, app, store }
    }

    async fn ingest(&self, obs: Vec<Observation>) {
        self.app.pipeline.ingest(obs).await.unwrap();
    }

    async fn get(&self, uri: &str) -> (StatusCode, String) {
        let resp = router(self.app.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn get_json(&self, uri: &str) -> (StatusCode, Value) {
        let (s, body) = self.get(uri).await;
        let v =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body}"));
        (s, v)
    }
}

fn obs(asset: &str, check: &str, t: i64, status: Status) -> Observation {
    let mut o = Observation::new(
        asset,
        check,
        Timestamp(t),
        status,
        if status == Status::Ok { "" } else { "HTTP 503" },
    );
    o.duration_us = 1500;
    o.values.push(V::new("total_ms", 1.5));
    o
}

#[tokio::test]
async fn monitor_is_ok_then_fails_when_the_store_is_closed() {
    let t = TestApp::new().await;
    assert_eq!(t.get("/monitor").await, (StatusCode::OK, "OK\n".into()));
    let (s, body) = t.get("/monitor?details").await;
    assert_eq!(s, StatusCode::OK);
    // The store, then every worker of the running app.
    assert_eq!(
        body,
        "store : OK\npipeline : OK\noutbox : OK\nwatch : OK\nscheduler : OK\n"
    );
    t.store.close().await.unwrap();
    let (s, body) = t.get("/monitor?details").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.starts_with("store : FAIL "), "{body}");
    assert_eq!(
        t.get("/monitor").await,
        (StatusCode::SERVICE_UNAVAILABLE, "FAIL\n".into())
    );
}

#[tokio::test]
async fn version_reports_build() {
    let t = TestApp::new().await;
    let (s, v) = t.get_json("/version").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["version"], vitals_app::testing::TEST_BUILD.version);
    assert_eq!(v["name"], "vitals");
}

#[tokio::test]
async fn assets_worst_first_with_counts_and_filters() {
    let t = TestApp::new().await;
    t.ingest(vec![
        obs("minlog2", "monitor", 1000, Status::Ok),
        obs("clinic-1", "import", 1000, Status::Crit),
    ])
    .await;
    let (s, v) = t.get_json("/api/v1/assets").await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = v["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["clinic-1", "idle", "minlog2"]);
    assert_eq!(v["counts"]["crit"], 1);
    assert_eq!(v["counts"]["ok"], 1);
    assert_eq!(v["counts"]["pending"], 1);

    let (_, v) = t.get_json("/api/v1/assets?group=platform").await;
    assert_eq!(v["assets"].as_array().unwrap().len(), 1);
    let (_, v) = t.get_json("/api/v1/assets?status=crit").await;
    assert_eq!(v["assets"][0]["id"], "clinic-1");
    let (_, v) = t.get_json("/api/v1/assets?q=MINLOG").await;
    assert_eq!(v["assets"][0]["id"], "minlog2");
    let (s, v) = t.get_json("/api/v1/assets?status=purple").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "status");
}

#[tokio::test]
async fn asset_detail_has_components_and_404_is_json() {
    let t = TestApp::new().await;
    let mut o = obs("minlog2", "monitor", 1000, Status::Crit);
    o.components = vec![
        Component {
            name: "MinLog2 database".into(),
            status: Status::Ok,
            value: None,
            output: String::new(),
        },
        Component {
            name: "Stamdata database".into(),
            status: Status::Crit,
            value: None,
            output: "connection refused".into(),
        },
    ];
    t.ingest(vec![o]).await;
    let (s, v) = t.get_json("/api/v1/assets/minlog2").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "crit");
    let check = &v["checks"][0];
    assert_eq!(check["name"], "monitor");
    assert_eq!(check["components"][1]["name"], "Stamdata database");
    assert_eq!(check["components"][1]["status"], "crit");
    assert_eq!(check["values"]["total_ms"], 1.5);

    let (s, v) = t.get_json("/api/v1/assets/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "unknown asset \"nope\"");
    let (s, v) = t.get_json("/api/v2/whatever").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("no route"));
}

#[tokio::test]
async fn observations_range_limit_and_errors() {
    let t = TestApp::new().await;
    t.ingest(
        (0..10)
            .map(|i| obs("minlog2", "monitor", 1000 * i, Status::Ok))
            .collect(),
    )
    .await;
    let (s, v) = t
        .get_json("/api/v1/assets/minlog2/observations?check=monitor&from=2000&to=5000&limit=3")
        .await;
    assert_eq!(s, StatusCode::OK);
    let times: Vec<&str> = v["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["time"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "1970-01-01T00:00:05.000Z",
            "1970-01-01T00:00:04.000Z",
            "1970-01-01T00:00:03.000Z"
        ]
    );
    let (_, v) = t
        .get_json("/api/v1/assets/minlog2/observations?from=1970-01-01T00:00:08Z")
        .await;
    assert_eq!(v["observations"].as_array().unwrap().len(), 2);

    for (uri, field, status) in [
        (
            "/api/v1/assets/minlog2/observations?from=yesterday",
            "from",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/assets/minlog2/observations?to=x",
            "to",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/assets/minlog2/observations?limit=0",
            "limit",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/assets/minlog2/observations?limit=99999999999999999999",
            "limit",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/assets/minlog2/observations?from=5000&to=1000",
            "from",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/assets/minlog2/observations?check=nope",
            "check",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, v) = t.get_json(uri).await;
        assert_eq!(s, status, "{uri}");
        assert_eq!(v["field"], field, "{uri}");
    }
    let (s, _) = t.get_json("/api/v1/assets/ghost/observations").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_expose_check_status_with_escaped_labels() {
    let t = TestApp::new().await;
    t.ingest(vec![obs("clinic-1", "import", 1000, Status::Crit)])
        .await;
    let (s, body) = t.get("/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("vitals_check_status{asset=\"clinic-1\",check=\"import\",type=\"http\"} 2"),
        "{body}"
    );
    assert!(body.contains("vitals_check_up{asset=\"clinic-1\",check=\"import\"} 0"));
    assert!(body.contains("# TYPE vitals_schedule_lateness_seconds histogram"));
    assert!(body.contains("vitals_schedule_lateness_seconds_bucket{le=\"+Inf\"} 0"));
    // Memory: the process's and the embedded database's, both real numbers.
    let gauge = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {body}"))
            .parse()
            .unwrap()
    };
    let rss = gauge("process_resident_memory_bytes");
    let sqlite = gauge("vitals_store_memory_bytes");
    assert!(
        rss > 1e6 && sqlite > 0.0 && sqlite < rss,
        "rss {rss}, sqlite {sqlite}"
    );
}

#[tokio::test]
async fn a_large_exposition_arrives_whole_with_each_family_once() {
    // ~2,000 checks: about 1 MB of exposition, sent in several chunks.
    let t = TestApp::new().await;
    let n = 2_000;
    t.ingest(
        (0..n)
            .map(|i| obs(&format!("site-{i:04}"), "import", 1000 + i, Status::Ok))
            .collect(),
    )
    .await;
    let (s, body) = t.get("/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.len() > 512 * 1024, "{}", body.len());
    assert!(body.ends_with('\n'));
    for i in 0..n {
        let line = format!("vitals_check_up{{asset=\"site-{i:04}\",check=\"import\"}} 1\n");
        assert_eq!(body.matches(&line).count(), 1, "{line}");
    }
    for family in [
        "vitals_check_status",
        "vitals_check_value",
        "vitals_build_info",
    ] {
        assert_eq!(
            body.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{family}"
        );
    }
    // Every line is a comment or `name{labels} value`: nothing split or lost between chunks.
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let value = l.rsplit_once(' ').map(|(_, v)| v).unwrap_or("");
        assert!(
            value.parse::<f64>().is_ok() || value.ends_with("Inf") || value == "NaN",
            "{l}"
        );
    }
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let t = TestApp::new().await;
    let resp = router(t.app.clone())
        .oneshot(Request::post("/api/v1/assets").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["error"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn status_reports_counts_and_lateness() {
    let t = TestApp::new().await;
    t.app.metrics().record_lateness(3_000);
    let (s, v) = t.get_json("/api/v1/status").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["assets"], 3);
    assert_eq!(v["checks"], 3);
    assert_eq!(v["scheduler"]["lateness"]["p99_ms"], 3.0);
    let rss = v["memory"]["resident_bytes"].as_u64().unwrap();
    let sqlite = v["memory"]["store_bytes"].as_u64().unwrap();
    assert!(rss > 1 << 20 && sqlite > 0 && sqlite < rss, "{v}");
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_json_4xx() {
    let t = TestApp::new().await;
    // 3 MB to a route with the default 2 MB limit; 17 MB to the result API (16 MB).
    for (uri, size) in [("/api/v1/silences", 3 << 20), ("/api/v1/results", 17 << 20)] {
        let resp = router(t.app.clone())
            .oneshot(
                Request::post(uri)
                    .header("content-type", "application/json")
                    .body(Body::from(vec![b' '; size]))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{uri}: not JSON: {bytes:?}"));
        assert!(v["error"].is_string(), "{uri}: {v}");
    }
    // A path segment that is not UTF-8.
    let (s, body) = t.get("/api/v1/assets/%FF%FE").await;
    assert!(s.is_client_error(), "{s}");
    assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
}

#[tokio::test]
async fn the_openapi_document_is_served_and_names_every_api_route() {
    let t = TestApp::new().await;
    let (s, v) = t.get_json("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    let paths = v["paths"].as_object().unwrap();
    for (method, template, _) in vitals_server::auth::ROUTES {
        if template.starts_with("/api/v1/") && *template != "/api/v1/openapi.json" {
            let entry = paths
                .get(*template)
                .unwrap_or_else(|| panic!("{template} is not in the OpenAPI document"));
            assert!(
                entry.get(method.to_lowercase()).is_some(),
                "{method} {template} is not in the OpenAPI document"
            );
        }
    }
}

#[tokio::test]
async fn extreme_times_are_4xx_not_a_dropped_connection() {
    // Found by schemathesis: a `to` near i64::MIN made the default `from` overflow.
    let t = TestApp::new().await;
    t.ingest(vec![obs("minlog2", "monitor", 1000, Status::Ok)])
        .await;
    let (s, _) = t
        .get("/api/v1/assets/minlog2/rollups?check=monitor&period=hour&to=-9223372036854775807")
        .await;
    assert!(s.is_success() || s.is_client_error(), "{s}");
    let (s, _) = t
        .get("/api/v1/assets/minlog2/observations?from=-9223372036854775808&to=9223372036854775807")
        .await;
    assert!(s.is_success(), "{s}");
}
