//! The whole flow over HTTP on loopback: simulated nodes behind the emulated broker →
//! collector → store and pipeline (with the documented notification rule) → the fleet API,
//! CSV files and heatmap served by the real router.

mod support;

use support::*;
use vitals_core::Timestamp;
use vitals_fleet::daily::year_of;
use vitals_scheduler::Pipeline;

const RULES: &str = r#"
[[notifier]]
id = "support-mail"
type = "webhook"
url = "http://127.0.0.1:9/never-called"

[[rule]]
id = "aktin-nodes"
groups = ["aktin"]
checks = ["status", "version"]
kind = "threshold"
value = "notify"
above = 0.5
severity = "crit"
notifiers = ["support-mail"]
reminder = "1w"
"#;

struct App {
    f: Fixture,
    pipeline: Pipeline,
    base: String,
    http: reqwest::Client,
    _t: vitals_app::testing::TestApp,
}

async fn app() -> App {
    let f = fixture(Options {
        mapping: Some(r#"{"0": {"COMMON_NAME": "[0] Universitätsklinikum Null", "JIRA_LABELS": ["uk-null"], "CONTACTS": ["it@null.example.org"]}}"#),
        expected: Some("1.5.1"),
        ..Options::default()
    })
    .await;
    let cfg = vitals_config::Config::parse(RULES, &|_| None).unwrap();
    let t =
        vitals_app::testing::spawn_store(cfg, f.store.clone(), tempfile::tempdir().unwrap()).await;
    App {
        f,
        pipeline: t.app().pipeline().clone(),
        base: t.url.clone(),
        http: reqwest::Client::new(),
        _t: t,
    }
}

impl App {
    /// Simulates and collects six days ending now (the API's "today" is the wall clock).
    async fn run_days(&self) -> Timestamp {
        let now = vitals_core::SystemClock::now();
        let mut published = Default::default();
        for d in (0..6).rev() {
            let at = now.add_millis(-d * DAY);
            if d == 5 {
                self.f.broker.populate(20, at, false);
            } else {
                self.f.broker.advance(at);
            }
            let cycle = self.f.collect(at).await;
            vitals_fleet::runner::publish(cycle, &self.f.store, &self.pipeline, &mut published)
                .await
                .unwrap();
        }
        now
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, r.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test]
async fn nodes_api_csv_and_heatmap() {
    let a = app().await;
    let now = a.run_days().await;
    let v = a.json("/api/v1/fleet/nodes").await;
    assert_eq!(v["count"], 20);
    let nodes = v["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap().clone();
    let n0 = node("0");
    assert_eq!(n0["name"], "[0] Universitätsklinikum Null");
    assert_eq!(n0["status"], "ONLINE");
    assert_eq!(n0["colour"], "green");
    assert!(n0["last_contact"].is_string() && n0["last_write"].is_string());
    assert!(n0["today"]["imported"].as_i64().unwrap() > 0);
    assert_eq!(n0["today"]["error_rate"], 0.0);
    assert_eq!(n0["error_rate_7d"], 0.0);
    assert_eq!(n0["versions"]["dwh-j2ee"], "dwh-j2ee-1.5.1");
    // The simulated behaviours show as their statuses.
    assert_eq!(node("7")["status"], "NO IMPORTS");
    assert_eq!(node("8")["status"], "OFFLINE");
    assert_eq!(
        node("9")["version_check"]["reason"],
        "OUTDATED: dwh-j2ee 1.5.1rc1 < expected 1.5.1"
    );

    // The node page: mapping fields, errors, resources, change log.
    let p = a.json("/api/v1/fleet/nodes/0").await;
    assert_eq!(p["metadata"]["contacts"][0], "it@null.example.org");
    assert_eq!(p["labels"]["uk-null"], "true");
    assert_eq!(p["resources"]["versions"]["entries"]["postgres"], "14.11");
    assert!(p["errors"].as_array().unwrap().len() <= 20);
    assert!(p["changes"].is_array());
    let p6 = a.json("/api/v1/fleet/nodes/16").await;
    assert_eq!(p6["days"].as_array().unwrap().len(), 6);

    // Alerts: the documented rule fires for OFFLINE, NO IMPORTS and OUTDATED only.
    let alerts = a.json("/api/v1/alerts").await;
    let mut firing: Vec<String> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}/{}",
                x["asset"].as_str().unwrap(),
                x["check"].as_str().unwrap_or("")
            )
        })
        .collect();
    firing.sort();
    let mut want: Vec<String> = [
        "7/status",
        "8/status",
        "9/version",
        "17/status",
        "18/status",
        "19/version",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.sort();
    assert_eq!(firing, want, "{alerts:#}");

    // CSV files in the exact format.
    let year = year_of(now);
    let (status, ct, body) = a
        .get(&format!("/api/v1/fleet/nodes/0/stats.csv?year={year}"))
        .await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"));
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some(vitals_fleet::csv::STATS_HEADER));
    let rows = lines.count();
    assert!((1..=6).contains(&rows), "{body}");
    let (status, _, body) = a
        .get(&format!("/api/v1/fleet/nodes/6/errors.csv?year={year}"))
        .await;
    assert_eq!(status, 200);
    assert!(body.starts_with("timestamp;repeats;content\n"));
    let files = a.json("/api/v1/fleet/files").await;
    assert!(files["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["node"] == "0" && f["year"] == year));

    // Heatmap.
    let (status, ct, svg) = a.get("/api/v1/fleet/heatmap.svg").await;
    assert_eq!((status, ct.as_str()), (200, "image/svg+xml"));
    assert!(svg.contains("Universitätsklinikum Null") && svg.contains("no imports"));
    assert!(svg.matches("<title>").count() >= 20 * 42);
    let r = a
        .http
        .get(format!("{}/api/v1/fleet/heatmap.png?days=14", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let png = r.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Bad input: clear 4xx naming the field.
    let (status, _, body) = a.get("/api/v1/fleet/nodes/0/stats.csv?year=soon").await;
    assert_eq!(status, 400);
    assert!(body.contains("\"field\":\"year\""), "{body}");
    let (status, _, body) = a.get("/api/v1/fleet/heatmap.svg?days=0").await;
    assert_eq!(status, 400);
    assert!(body.contains("\"field\":\"days\""), "{body}");
    assert_eq!(a.get("/api/v1/fleet/nodes/404").await.0, 404);
    assert_eq!(a.get("/api/v1/fleet/nodes/404/stats.csv").await.0, 404);
}
