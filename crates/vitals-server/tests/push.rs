//! Push ingest, heartbeats, health scoring and the django-health-monitor compatible API,
//! against a real SQLite store, through the router.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;
use vitals_server::{router, AppState};
use vitals_store::Store;

const CONFIG: &str = r#"
[[score]]
test = "heart"
groups = ["doctor"]
field = "heartrate"
kind = "int"
rules = [{ above = 120, score = 4 }, { above = 100, score = 3 }, { above = 80, score = 2 }, { score = 1 }]

[[score]]
test = "sleep"
groups = ["doctor", "coach"]
field = "hours"
kind = "float"
rules = [{ below = 4, score = 4 }, { below = 6, score = 3 }, { below = 8, score = 2 }, { score = 1 }]

[[score]]
test = "smoke"
groups = ["doctor"]
field = "smokes"
kind = "bool"
rules = [{ equals = true, score = 3 }, { score = 1 }]

[[check]]
asset = "node-1"
name = "nightly"
type = "heartbeat"
interval = "1h"
slug = "nightly-1"
"#;

struct T {
    _t: vitals_app::testing::TestApp,
    app: AppState,
    store: Arc<dyn Store>,
}

impl T {
    async fn new() -> T {
        Self::with(CONFIG).await
    }

    async fn with(config: &str) -> T {
        let t = vitals_app::testing::spawn_app(config).await;
        let (app, store) = (t.state().clone(), t.store().clone());
        T { _t: t, app, store }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        ctype: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ctype)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = router(self.app.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, "text/plain", "").await
    }

    async fn post_form(&self, uri: &str, form: &str) -> (StatusCode, Value) {
        self.call(Method::POST, uri, "application/x-www-form-urlencoded", form)
            .await
    }

    async fn delete(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, uri, "text/plain", "").await
    }

    async fn post_json(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, "application/json", &body.to_string())
            .await
    }

    /// Posts `heartrate` results for `uid` in order.
    async fn hearts(&self, uid: &str, rates: &[i64]) {
        for r in rates {
            // Distinct milliseconds, so "newest first" has one answer.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let (s, v) = self
                .post_form(
                    &format!("/health_test/heart/{uid}/"),
                    &format!("heartrate={r}"),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
}

/// The `field` of every error of a 400 answer, in order.
fn error_fields(v: &Value) -> Vec<&str> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn post_scores_and_reports_like_the_original() {
    let t = T::new().await;
    let (s, v) = t.post_form("/health_test/heart/1/", "heartrate=90").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"score": 2, "message": "heart score changed to 2 for uid 1"})
    );
    let (s, v) = t.get("/health/1/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["uid"], 1);
    assert_eq!(v["state"]["doctor"]["heart"]["score"], 2);
    assert_eq!(v["severity"]["doctor"]["score"], 2);
    assert_eq!(t.get("/health/").await.1, json!([1]));
    let (_, v) = t.get("/health/?detail=true").await;
    assert_eq!(v[0]["uid"], 1);
    assert_eq!(v[0]["state"]["doctor"]["heart"]["score"], 2);
    // A test in two groups lands in both.
    t.post_form("/health_test/sleep/1/", "hours=5.5").await;
    let (_, v) = t.get("/health/1/").await;
    assert_eq!(v["state"]["coach"]["sleep"]["score"], 3);
    assert_eq!(v["severity"]["doctor"]["score"], 3);
    // Filters by group and test.
    let (_, v) = t.get("/health/1/doctor/heart/").await;
    assert_eq!(
        v["state"],
        json!({"doctor": {"heart": v["state"]["doctor"]["heart"]}})
    );
    assert!(v["severity"].get("coach").is_none());
}

#[tokio::test]
async fn updated_moves_only_when_the_score_changes() {
    let t = T::new().await;
    t.hearts("7", &[90]).await;
    let first = t.get("/health/7/").await.1["state"]["doctor"]["heart"]["updated"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    t.hearts("7", &[95]).await; // still score 2
    assert_eq!(
        t.get("/health/7/").await.1["state"]["doctor"]["heart"]["updated"],
        first
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    t.hearts("7", &[130]).await; // score 4
    let v = t.get("/health/7/").await.1;
    assert_ne!(v["state"]["doctor"]["heart"]["updated"], first);
    assert_eq!(v["severity"]["doctor"]["score"], 4);
}

#[tokio::test]
async fn booleans_and_bad_input() {
    let t = T::new().await;
    for (form, score) in [
        ("smokes=yes", 3),
        ("smokes=0", 1),
        ("smokes=True", 3),
        ("smokes=off", 1),
    ] {
        let (s, v) = t.post_form("/health_test/smoke/3/", form).await;
        assert_eq!(
            (s, v["score"].clone()),
            (StatusCode::OK, json!(score)),
            "{form}"
        );
    }
    for (uri, form, status, needle) in [
        (
            "/health_test/smoke/3/",
            "smokes=perhaps",
            StatusCode::BAD_REQUEST,
            "boolean",
        ),
        (
            "/health_test/heart/3/",
            "heartrate=fast",
            StatusCode::BAD_REQUEST,
            "integer",
        ),
        (
            "/health_test/heart/3/",
            "",
            StatusCode::BAD_REQUEST,
            "missing field \"heartrate\"",
        ),
        (
            "/health_test/heart/3/",
            "heartrate=80&pulse=1",
            StatusCode::BAD_REQUEST,
            "unexpected field \"pulse\"",
        ),
        (
            "/health_test/liver/3/",
            "x=1",
            StatusCode::NOT_FOUND,
            "test liver does not exist",
        ),
    ] {
        let (s, v) = t.post_form(uri, form).await;
        assert_eq!(s, status, "{uri} {form}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{v}");
    }
    assert_eq!(t.get("/health/999/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/health/3/nurse/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get("/health/3/doctor/liver/").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deletes_recompute_severity_and_answer_like_the_original() {
    let t = T::new().await;
    t.hearts("2", &[130]).await; // 4
    t.post_form("/health_test/sleep/2/", "hours=7").await; // 2
    assert_eq!(
        t.get("/health/2/").await.1["severity"]["doctor"]["score"],
        4
    );
    let (s, v) = t.delete("/health/2/doctor/heart/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["message"],
        "heart test deleted from doctor group in 2 health"
    );
    assert_eq!(
        t.get("/health/2/").await.1["severity"]["doctor"]["score"],
        2
    );
    let (_, v) = t.delete("/health/2/coach/").await;
    assert_eq!(v["message"], "coach group deleted from 2 health");
    assert!(t.get("/health/2/").await.1["state"].get("coach").is_none());
    assert_eq!(t.delete("/health/2/coach/").await.0, StatusCode::NOT_FOUND);
    let (_, v) = t.delete("/health/2/").await;
    assert_eq!(v["message"], "2 health deleted");
    assert_eq!(t.get("/health/2/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/health/").await.1, json!([]));
    // Deletions are durable: they are in the store, not only in memory.
    assert!(t
        .store
        .health_rows()
        .await
        .unwrap()
        .iter()
        .all(|r| r.asset != "2"));
}

#[tokio::test]
async fn history_newest_first_with_filters() {
    let t = T::new().await;
    t.hearts("1", &[70, 90]).await;
    t.hearts("2", &[110]).await;
    let (_, v) = t.get("/health_test/heart/").await;
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["uid"], 2);
    assert_eq!(rows[0]["heartrate"], 110);
    assert_eq!(rows[0]["score"], 3);
    assert!(rows[0]["time"].as_str().unwrap() >= rows[1]["time"].as_str().unwrap());
    let (_, v) = t.get("/health_test/heart/1/").await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["heartrate"], 90);
    let (_, v) = t.get("/health_test/heart/?uids=1&latest=yes").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["heartrate"], 90);
    let (_, v) = t
        .get("/health_test/heart/?start_time=2099-01-01T00:00:00")
        .await;
    assert_eq!(v, json!([]));
    let (s, _) = t.get("/health_test/heart/?end_time=noon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        t.get("/health_test/").await.1,
        json!({"tests": ["heart", "sleep", "smoke"]})
    );
    t.post_form("/health_test/smoke/1/", "smokes=1").await;
    assert_eq!(t.get("/health_test/smoke/1/").await.1[0]["smokes"], true);
    assert_eq!(
        t.get("/health_test/heart/42/").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_repeated_alarm_query_follows_every_new_result() {
    let t = T::new().await;
    let alarm = "/health_alarm/doctor/heart/?score=3";
    t.hearts("1", &[70]).await;
    t.hearts("2", &[70]).await;
    // Asked twice with nothing new: the same answer (the second may be reused).
    assert_eq!(t.get(alarm).await.1, json!([]));
    assert_eq!(t.get(alarm).await.1, json!([]));
    // Each new result changes the answer of the very next query.
    t.hearts("2", &[130]).await;
    assert_eq!(t.get(alarm).await.1, json!([2]));
    t.hearts("1", &[130]).await;
    assert_eq!(t.get(alarm).await.1, json!([1, 2]));
    t.hearts("2", &[70]).await;
    assert_eq!(t.get(alarm).await.1, json!([1]));
    // Another query over the same state is its own answer.
    assert_eq!(
        t.get("/health_alarm/doctor/heart/?score=3&aggregate_percent=60")
            .await
            .1,
        json!([])
    );
    assert_eq!(t.get(alarm).await.1, json!([1]));
}

#[tokio::test]
async fn population_alarm_semantics_at_their_boundaries() {
    let t = T::new().await;
    assert_eq!(
        t.get("/health_alarm/").await.1,
        json!({"groups": ["doctor", "coach"]})
    );
    assert_eq!(
        t.get("/health_alarm/coach/").await.1,
        json!({"tests": ["sleep"]})
    );
    assert_eq!(t.get("/health_alarm/nurse/").await.0, StatusCode::NOT_FOUND);
    // Empty population: [] (the original divides by zero).
    assert_eq!(
        t.get("/health_alarm/doctor/heart/?score=3").await,
        (StatusCode::OK, json!([]))
    );

    // uid 1: scores newest first [4, 1, 1] ; uid 2: [3, 4] ; uid 3: [1] ; uid 4: [2, 3, 3, 3]
    t.hearts("1", &[70, 70, 130]).await;
    t.hearts("2", &[130, 110]).await;
    t.hearts("3", &[70]).await;
    t.hearts("4", &[110, 110, 110, 90]).await;
    let alarm = |q: &str| format!("/health_alarm/doctor/heart/?{q}");
    // R = 1: the newest score.
    assert_eq!(t.get(&alarm("score=3")).await.1, json!([1, 2]));
    // R = 3, P = 100: all of the newest 3 (or fewer) fail.
    assert_eq!(t.get(&alarm("score=3&repetition=3")).await.1, json!([2]));
    // R = 3, P = 66: 2 of 3 → 66.67 % ≥ 66 → uid 4 fails; uid 1 has 1 of 3.
    assert_eq!(
        t.get(&alarm("score=3&repetition=3&repetition_percent=66"))
            .await
            .1,
        json!([2, 4])
    );
    // P = 67 excludes 2-of-3.
    assert_eq!(
        t.get(&alarm("score=3&repetition=3&repetition_percent=67"))
            .await
            .1,
        json!([2])
    );
    // A: 2 of 4 assets fail = 50 %: A = 50 answers, A = 51 does not.
    assert_eq!(
        t.get(&alarm("score=3&aggregate_percent=50")).await.1,
        json!([1, 2])
    );
    assert_eq!(
        t.get(&alarm("score=3&aggregate_percent=51")).await.1,
        json!([])
    );
    // Valid but odd criteria answer as the original does: a percentage above 100 is never
    // reached (`[]`), one at or below 0 always is; extreme values do not overflow.
    for (q, want) in [
        ("score=3&aggregate_percent=150", json!([])),
        ("score=3&repetition_percent=101", json!([])),
        ("score=3&repetition_percent=9223372036854775807", json!([])),
        ("score=3&aggregate_percent=9223372036854775807", json!([])),
        ("score=3&aggregate_percent=-5", json!([1, 2])),
        ("score=3&repetition_percent=-1", json!([1, 2, 3, 4])),
        ("score=3&repetition_percent=-9223372036854775808&aggregate_percent=-9223372036854775808", json!([1, 2, 3, 4])),
        ("score=-9223372036854775808", json!([1, 2, 3, 4])),
        ("score=9223372036854775807", json!([])),
        ("score=3&repetition=9223372036854775807", json!([2])),
    ] {
        let (s, v) = t.get(&alarm(q)).await;
        assert_eq!((s, v), (StatusCode::OK, want), "{q}");
    }
    // Malformed input is a 400 naming the parameter.
    for (q, needle) in [
        ("score=3&repetition=0", "repetition"),
        ("score=3&repetition=-2", "repetition"),
        ("repetition=2", "score is required"),
        ("score=high", "score"),
        ("score=3.5", "score"),
        (
            "score=3&aggregate_percent=9223372036854775808",
            "aggregate_percent",
        ),
        ("score=3&repetition_percent=ten", "repetition_percent"),
    ] {
        let (s, v) = t.get(&alarm(q)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{q}: {v}");
    }
}

#[tokio::test]
async fn alarm_gets_never_write() {
    let t = T::new().await;
    t.hearts("1", &[130, 130]).await;
    let before = (
        t.store.count_observations().await.unwrap(),
        t.store.health_rows().await.unwrap(),
    );
    for _ in 0..5 {
        t.get("/health_alarm/doctor/heart/?score=3&repetition=500")
            .await;
        t.get("/health/1/").await;
        t.get("/health_test/heart/").await;
    }
    let after = (
        t.store.count_observations().await.unwrap(),
        t.store.health_rows().await.unwrap(),
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn windows_longer_than_memory_are_read_from_the_store() {
    let t = T::new().await;
    // 130 results (more than the 128 kept in memory): 100 bad then 30 good (newest).
    let mut results = Vec::new();
    for i in 0..130i64 {
        results.push(json!({"asset": "9", "check": "heart", "values": {"heartrate": if i < 100 { 130 } else { 70 }}, "time": 1_000_000 + i}));
    }
    let (s, v) = t
        .post_json("/api/v1/results", json!({ "results": results }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Newest 130: 30 good + 100 bad = 76.9 % bad.
    assert_eq!(
        t.get("/health_alarm/doctor/heart/?score=3&repetition=130&repetition_percent=76")
            .await
            .1,
        json!([9])
    );
    assert_eq!(
        t.get("/health_alarm/doctor/heart/?score=3&repetition=130&repetition_percent=77")
            .await
            .1,
        json!([])
    );
}

#[tokio::test]
async fn concurrent_posts_for_one_asset_lose_no_update() {
    let t = Arc::new(T::new().await);
    let mut tasks = Vec::new();
    for i in 0..120 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let (test, form) = match i % 3 {
                0 => ("heart", "heartrate=130".to_string()),
                1 => ("sleep", "hours=3".to_string()),
                _ => ("smoke", "smokes=1".to_string()),
            };
            let (s, _) = t.post_form(&format!("/health_test/{test}/5/"), &form).await;
            assert_eq!(s, StatusCode::OK);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let v = t.get("/health/5/").await.1;
    assert_eq!(v["state"]["doctor"]["heart"]["score"], 4);
    assert_eq!(v["state"]["doctor"]["sleep"]["score"], 4);
    assert_eq!(v["state"]["doctor"]["smoke"]["score"], 3);
    assert_eq!(v["state"]["coach"]["sleep"]["score"], 4);
    assert_eq!(v["severity"]["doctor"]["score"], 4);
    assert_eq!(t.store.count_observations().await.unwrap(), 120);
    for test in ["heart", "sleep", "smoke"] {
        assert_eq!(
            t.get(&format!("/health_test/{test}/5/"))
                .await
                .1
                .as_array()
                .unwrap()
                .len(),
            40
        );
    }
}

#[tokio::test]
async fn result_api_validates_scores_and_dedupes() {
    let t = T::new().await;
    let (s, v) = t
        .post_json(
            "/api/v1/results",
            json!({"results": [
                {"asset": "node-17", "check": "import", "status": "ok", "values": {"imported": 583}, "id": "r-1"},
                {"asset": "node-17", "check": "heart", "values": {"heartrate": 101}},
                {"asset": "node-18", "check": "import", "score": 3, "reason": "rejected a third", "time": "2026-01-01T00:00:00Z"},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"accepted": 3, "duplicates": []}));
    let (_, a) = t.get("/api/v1/assets/node-17").await;
    let heart = a["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "heart")
        .unwrap()
        .clone();
    assert_eq!(heart["score"], 3);
    assert_eq!(heart["status"], "crit");
    let (_, a) = t.get("/api/v1/assets/node-18").await;
    assert_eq!(a["checks"][0]["status"], "crit");
    assert_eq!(a["checks"][0]["reason"], "rejected a third");
    // Unscored checks are filed under the asset's groups, or "default".
    assert_eq!(
        t.get("/health/node-17/").await.1["state"]["default"]["import"]["score"],
        1
    );

    // The same id again is accepted once.
    let (s, v) = t
        .post_json(
            "/api/v1/results",
            json!({"results": [
                {"asset": "node-17", "check": "import", "status": "crit", "id": "r-1"},
                {"asset": "node-17", "check": "import", "status": "ok", "id": "r-2"},
                {"asset": "node-17", "check": "import", "status": "ok", "id": "r-2"},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"accepted": 1, "duplicates": [0, 2]}));
    assert_eq!(t.store.count_observations().await.unwrap(), 4);

    // Every bad entry is named with its index and field; nothing of the batch is stored.
    let (s, v) = t
        .post_json(
            "/api/v1/results",
            json!({"results": [
                {"asset": "ok-asset", "check": "x", "status": "ok"},
                {"asset": "bad asset", "check": "x", "status": "ok"},
                {"asset": "a", "check": "x", "status": "purple"},
                {"asset": "a", "check": "x"},
                {"asset": "a", "check": "x", "status": "ok", "values": {"v": "high"}, "colour": 1},
                {"asset": "a", "check": "x", "score": -1, "time": "yesterday"},
                7
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let fields = error_fields(&v);
    for f in [
        "results[1].asset",
        "results[2].status",
        "results[3].status",
        "results[4].values.v",
        "results[4].colour",
        "results[5].score",
        "results[5].time",
        "results[6]",
    ] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    assert_eq!(v["field"], "results[1].asset");
    assert_eq!(t.store.count_observations().await.unwrap(), 4);

    for (body, field) in [
        ("{not json", "body"),
        ("{\"results\": []}", "results"),
        ("[1, 2]", "results"),
    ] {
        let (s, v) = t
            .call(Method::POST, "/api/v1/results", "application/json", body)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
}

#[tokio::test]
async fn unknown_assets_can_be_rejected() {
    let t = T::with(&format!(
        "{CONFIG}\n[ingest]\nunknown_assets = \"reject\"\nmax_batch = 2\n"
    ))
    .await;
    let (s, v) = t
        .post_json(
            "/api/v1/results",
            json!({"results": [{"asset": "ghost", "check": "x", "status": "ok"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "results[0].asset");
    let (s, v) = t.post_form("/health_test/heart/77/", "heartrate=80").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let many = json!({"results": [{"asset": "node-1", "check": "x", "status": "ok"}, {"asset": "node-1", "check": "x", "status": "ok"}, {"asset": "node-1", "check": "x", "status": "ok"}]});
    let (s, v) = t.post_json("/api/v1/results", many).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("at most 2"));
}

#[tokio::test]
async fn heartbeat_pings() {
    let t = T::new().await;
    let (s, _) = t
        .call(
            Method::POST,
            "/ping/nightly-1",
            "text/plain",
            "exported 1,204 rows",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, a) = t.get("/api/v1/assets/node-1").await;
    assert_eq!(a["checks"][0]["status"], "ok");
    assert_eq!(a["checks"][0]["reason"], "exported 1,204 rows");

    assert_eq!(t.get("/ping/nightly-1/start").await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert_eq!(t.get("/ping/nightly-1/3").await.0, StatusCode::OK);
    let (_, a) = t.get("/api/v1/assets/node-1").await;
    assert_eq!(a["checks"][0]["status"], "crit");
    assert_eq!(a["checks"][0]["reason"], "exit code 3");
    assert!(a["checks"][0]["values"]["run_ms"].as_f64().unwrap() >= 30.0);

    t.get("/ping/nightly-1/fail").await;
    assert_eq!(
        t.get("/api/v1/assets/node-1").await.1["checks"][0]["reason"],
        "failure reported"
    );
    t.get("/ping/nightly-1/0").await;
    assert_eq!(
        t.get("/api/v1/assets/node-1").await.1["checks"][0]["status"],
        "ok"
    );
    assert_eq!(t.get("/ping/nobody").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get("/ping/nightly-1/sometimes").await.0,
        StatusCode::BAD_REQUEST
    );
}

/// The batch body is read without building `serde_json::Value`s: escaped names and reasons,
/// fields given twice (the last counts, as before), numbers of every JSON kind and deep
/// nesting keep their meaning and their errors.
#[tokio::test]
async fn batch_bodies_keep_their_meaning_escapes_duplicates_and_numbers() {
    let t = T::new().await;
    let now_ms = t.app.now().0;
    let body = format!(
        r#"{{"results": [
            {{"asset": "esc\u002dnode", "check": "heart", "values": {{"heart\u0072ate": 130, "heartrate": 90}},
              "reason": "line\nbreak \"quoted\"", "duration_ms": 1.5, "time": {now_ms}}},
            {{"asset": "plain", "asset": "dup-node", "check": "x", "status": "warn", "score": 3,
              "values": {{"on": true, "big": 18446744073709551615, "neg": -2}}}}
        ], "ignored": [1, {{"a": [true, null]}}]}}"#
    );
    let (s, v) = t
        .call(Method::POST, "/api/v1/results", "application/json", &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2, "{v}");
    let state = t.app.pipeline.state();
    let esc = state.asset("esc-node").expect("escaped asset name stored");
    let heart = esc.checks.get("heart").unwrap().latest.clone().unwrap();
    assert_eq!(
        heart.score,
        1 + 1,
        "heartrate 90 (the last of the two) scores 2"
    );
    assert_eq!(heart.reason, "line\nbreak \"quoted\"");
    assert_eq!(heart.duration_us, 1500);
    assert_eq!(heart.time.0, now_ms);
    assert_eq!(heart.values.len(), 1);
    assert_eq!(heart.values[0].value, 90.0);
    assert!(
        state.asset("plain").is_none(),
        "the first of two asset fields is not used"
    );
    let dup = state
        .asset("dup-node")
        .expect("the last asset field is used");
    let x = dup.checks.get("x").unwrap().latest.clone().unwrap();
    assert_eq!((x.status, x.score), (vitals_core::Status::Warn, 3));
    // Values are kept in name order, whatever the body's order.
    let vals: Vec<(String, f64)> = x.values.iter().map(|v| (v.name.clone(), v.value)).collect();
    assert_eq!(
        vals,
        [
            ("big".to_string(), 18446744073709551615.0),
            ("neg".to_string(), -2.0),
            ("on".to_string(), 1.0)
        ],
    );

    // Numbers of the wrong kind are named.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/results",
            "application/json",
            r#"{"results": [{"asset": "a", "check": "x", "status": "ok", "score": 2.0, "time": 1.5},
                            {"asset": "a", "check": "x", "status": "ok", "score": 9223372036854775808}]}"#,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let fields = error_fields(&v);
    assert_eq!(
        fields,
        ["results[0].score", "results[0].time", "results[1].score"],
        "{v}"
    );

    // Too deep, or not JSON at all: the body is named, nothing crashes.
    let deep = format!(
        r#"{{"results": [{{"asset": "a", "check": "x", "status": "ok", "values": {}1{}}}]}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    for body in [
        deep.as_str(),
        r#"{"results": [1e400]}"#,
        "{\"results\": \"x\"}",
    ] {
        let (s, v) = t
            .call(Method::POST, "/api/v1/results", "application/json", body)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["field"] == "body" || v["field"] == "results", "{v}");
    }
}
