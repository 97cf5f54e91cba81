//! Housekeeping and the audit log against a real SQLite store: rollups, retention in batches,
//! a second cleanup refused while one runs, cleanup while ingesting, audit entries with masked
//! secrets.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use vitals_config::RetentionConfig;
use vitals_core::{Observation, Status, Timestamp};
use vitals_scheduler::housekeeping::{Cleanup, CleanupError};
use vitals_server::{router, AppState};
use vitals_store::prelude::*;
use vitals_store::{DAY_MS, HOUR_MS};
use vitals_store_sqlite::SqliteStore;

struct T {
    _t: vitals_app::testing::TestApp,
    app: AppState,
    sqlite: Arc<SqliteStore>,
    cleanup: Arc<Cleanup>,
}

fn retention(batch: usize, pause_ms: u64) -> RetentionConfig {
    RetentionConfig {
        batch,
        pause: Duration::from_millis(pause_ms),
        max_run: Duration::from_secs(60),
        ..RetentionConfig::default()
    }
}

impl T {
    async fn new(r: RetentionConfig) -> T {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = vitals_config::Config::parse("", &|_| None).unwrap();
        cfg.retention = r;
        cfg.audit.file = Some(dir.path().join("audit.log"));
        let t = vitals_app::testing::spawn_in(cfg, dir).await;
        let app = t.state().clone();
        let cleanup = app.cleanup.clone().unwrap();
        // A second handle on the same file, for what only SQLite has (merging the staging
        // table, as a long-running server does on its own).
        let sqlite = Arc::new(SqliteStore::open(&t.dir().join("vitals.db")).unwrap());
        T {
            _t: t,
            app,
            sqlite,
            cleanup,
        }
    }

    async fn call(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(if body.is_null() {
                Body::empty()
            } else {
                Body::from(body.to_string())
            })
            .unwrap();
        let resp = router(self.app.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `n` observations of web/http spread over the hour starting at `hour_start`.
    async fn seed(&self, hour_start: i64, n: i64, bad_every: i64) {
        let obs: Vec<Observation> = (0..n)
            .map(|i| {
                let status = if bad_every > 0 && i % bad_every == 0 {
                    Status::Crit
                } else {
                    Status::Ok
                };
                let mut o = Observation::new(
                    "web",
                    "http",
                    Timestamp(hour_start + i * (HOUR_MS / n)),
                    status,
                    "",
                );
                o.duration_us = (i as u64 + 1) * 1000;
                o
            })
            .collect();
        self.app.pipeline.ingest(obs).await.unwrap();
    }
}

fn hour_floor(t: i64) -> i64 {
    t.div_euclid(HOUR_MS) * HOUR_MS
}

#[tokio::test]
async fn cleanup_rolls_up_then_deletes_old_raw_rows_in_batches() {
    let t = T::new(retention(30, 1)).await;
    let now = vitals_core::SystemClock::now().0;
    let old_hour = hour_floor(now - 40 * DAY_MS);
    let recent_hour = hour_floor(now - 2 * HOUR_MS);
    t.seed(old_hour, 100, 10).await;
    t.seed(recent_hour, 20, 0).await;
    t.sqlite.checkpoint().await.unwrap(); // merge the staging table, as a long-running server would have
    assert_eq!(t.sqlite.count_observations().await.unwrap(), 120);

    // A first run starts at the retention boundary: the 40-day-old hour is out of reach, so it
    // is rolled up only by an explicit, wider first step.
    t.app
        .pipeline
        .store()
        .set_job_value("rollups.hour", old_hour)
        .await
        .unwrap();
    t.app
        .pipeline
        .store()
        .set_job_value("rollups.day", old_hour.div_euclid(DAY_MS) * DAY_MS)
        .await
        .unwrap();
    let run = t.cleanup.run("test", Timestamp(now)).await.unwrap();
    assert_eq!(run.status, "done", "{run:?}");
    assert_eq!(run.raw_deleted, 100);
    assert_eq!(run.batches, 4, "100 rows in batches of 30");
    assert_eq!(t.sqlite.count_observations().await.unwrap(), 20);

    // The old hour survives as a rollup: 100 observations, 10 failures, exact p95.
    let (s, v) = t
        .call(
            Method::GET,
            &format!(
                "/api/v1/assets/web/rollups?check=http&period=hour&from={}&to={}",
                old_hour,
                old_hour + HOUR_MS
            ),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = &v["rollups"][0];
    assert_eq!(
        (r["count"].clone(), r["failures"].clone()),
        (json!(100), json!(10))
    );
    assert_eq!(
        (
            r["min_us"].clone(),
            r["max_us"].clone(),
            r["p95_us"].clone()
        ),
        (json!(1000), json!(100_000), json!(95_000))
    );
    let (_, v) = t
        .call(
            Method::GET,
            &format!(
                "/api/v1/assets/web/rollups?check=http&period=day&from={}",
                old_hour - DAY_MS
            ),
            Value::Null,
        )
        .await;
    assert!(v["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["count"] == 100));

    // A second run has nothing left to delete; the status endpoint shows the last run.
    let run = t.cleanup.run("test", Timestamp(now)).await.unwrap();
    assert_eq!(run.raw_deleted, 0);
    let (_, v) = t
        .call(Method::GET, "/api/v1/jobs/cleanup", Value::Null)
        .await;
    assert_eq!(v["last_run"]["status"], "done");
    assert_eq!(v["running"], false);
    for (uri, field) in [
        ("/api/v1/assets/web/rollups?period=hour", "check"),
        (
            "/api/v1/assets/web/rollups?check=http&period=week",
            "period",
        ),
    ] {
        let (s, v) = t.call(Method::GET, uri, Value::Null).await;
        assert_eq!(
            (s, v["field"].clone()),
            (StatusCode::BAD_REQUEST, json!(field))
        );
    }
}

#[tokio::test]
async fn a_second_cleanup_is_refused_while_one_runs_and_ingest_goes_on() {
    let t = T::new(retention(5, 150)).await;
    let now = vitals_core::SystemClock::now().0;
    let old_hour = hour_floor(now - 40 * DAY_MS);
    t.seed(old_hour, 60, 0).await;
    t.sqlite.checkpoint().await.unwrap();
    t.app
        .pipeline
        .store()
        .set_job_value("rollups.hour", old_hour)
        .await
        .unwrap();
    t.app
        .pipeline
        .store()
        .set_job_value("rollups.day", old_hour.div_euclid(DAY_MS) * DAY_MS)
        .await
        .unwrap();
    let c = t.cleanup.clone();
    let first = tokio::spawn(async move { c.run("first", Timestamp(now)).await });
    // Wait until it is deleting (running), then try again through the job and the API.
    for _ in 0..100 {
        if t.cleanup.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(
        t.cleanup.run("second", Timestamp(now)).await,
        Err(CleanupError::AlreadyRunning)
    ));
    let (s, _) = t
        .call(Method::POST, "/api/v1/jobs/cleanup", Value::Null)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Ingest is not stalled while the job pauses between batches.
    for i in 0..20 {
        let (s, v) = t
            .call(Method::POST, "/api/v1/results", json!({"results": [{"asset": "web", "check": "live", "status": "ok", "time": now - 1000 + i}]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let run = first.await.unwrap().unwrap();
    assert_eq!(run.raw_deleted, 60);
    assert_eq!(run.status, "done");
    let live = t
        .app
        .pipeline
        .store()
        .observations(&vitals_store::ObservationQuery {
            asset: "web".into(),
            check: Some("live".into()),
            from: None,
            to: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(live.len(), 20);
}

#[tokio::test]
async fn changes_are_audited_with_secrets_masked_but_data_ingest_is_not() {
    let t = T::new(retention(10, 1)).await;
    let (s, _) = t
        .call(Method::POST, "/api/v1/silences", json!({"matchers": {"assets": ["db"]}, "duration": "1h", "author": "bob", "comment": "upgrade", "token": "hunter2"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST); // unknown field; still a recorded attempt
    let (s, _) = t
        .call(Method::POST, "/api/v1/silences", json!({"matchers": {"assets": ["db"]}, "duration": "1h", "author": "bob", "comment": "upgrade"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/results",
            json!({"results": [{"asset": "a", "check": "b", "status": "ok"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t.call(Method::GET, "/api/v1/audit", Value::Null).await;
    let entries = v["audit"].as_array().unwrap();
    // Two rows per change, newest first: `started` before it is carried out, then its outcome,
    // sharing a request id.
    assert_eq!(entries.len(), 4, "{entries:?}");
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["201", "started", "400", "started"]);
    assert_eq!(entries[0]["action"], "POST /api/v1/silences");
    assert_eq!(entries[0]["actor"], "local");
    assert_eq!(
        entries[0]["params"]["request"],
        entries[1]["params"]["request"]
    );
    assert_ne!(
        entries[0]["params"]["request"],
        entries[2]["params"]["request"]
    );
    assert_eq!(entries[2]["params"]["body"]["token"], "***");
    let file = std::fs::read_to_string(t.app.audit_file.as_ref().unwrap()).unwrap();
    assert_eq!(file.lines().count(), 4);
    assert!(
        file.lines()
            .all(|l| l.contains("Action=POST_/api/v1/silences Caller=local")),
        "{file}"
    );
    assert!(!file.contains("hunter2"));
}
