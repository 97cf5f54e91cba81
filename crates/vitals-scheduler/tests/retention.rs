//! Everything that grows has retention: a soak of three simulated days against a health
//! endpoint whose every answer differs (its `observedValue` is in the reason and the
//! components), with the cleanup job running every simulated hour.

use std::sync::Arc;
use std::time::Duration;
use vitals_config::RetentionConfig;
use vitals_core::{Component, Observation, Status, Timestamp};
use vitals_scheduler::housekeeping::Cleanup;
use vitals_store::Store;
use vitals_store_sqlite::SqliteStore;

const HOUR: i64 = 3_600_000;
/// 2026-01-05T00:00:00Z
const START: i64 = 1_767_571_200_000;

fn count(db: &std::path::Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_ever_changing_answers_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let sqlite = Arc::new(SqliteStore::open(&db).unwrap());
    let store: Arc<dyn Store> = sqlite.clone();
    let cleanup = Cleanup::new(
        store.clone(),
        RetentionConfig {
            raw: Duration::from_secs(3600),
            hourly: Duration::from_secs(2 * 86_400),
            daily: Duration::from_secs(30 * 86_400),
            pause: Duration::ZERO,
            max_run: Duration::from_secs(600),
            audit_archive: Some(dir.path().join("archive")),
            ..RetentionConfig::default()
        },
    );
    let checks = 20;
    let mut n = 0u64;
    let mut texts_after = Vec::new();
    for hour in 0..72 {
        let mut batch = Vec::new();
        for minute in 0..60 {
            for c in 0..checks {
                n += 1;
                let t = START + hour * HOUR + minute * 60_000 + c;
                let mut o = Observation::new(
                    format!("svc-{c}"),
                    "health",
                    Timestamp(t),
                    Status::Ok,
                    format!("db:responseTime observedValue {n} ms"),
                );
                o.components = vec![Component {
                    name: "db:responseTime".into(),
                    status: Status::Ok,
                    value: Some(n.to_string()),
                    output: format!("{n} ms"),
                }];
                batch.push(o);
            }
        }
        store.append(batch).await.unwrap();
        let run = cleanup
            .run("soak", Timestamp(START + (hour + 1) * HOUR + 300_000))
            .await
            .unwrap();
        assert_eq!(run.status, "done", "{run:?}");
        if hour % 24 == 23 {
            sqlite.checkpoint().await.unwrap();
            texts_after.push((
                count(&db, "texts"),
                count(&db, "observations") + count(&db, "observations_recent"),
                std::fs::metadata(&db).unwrap().len(),
            ));
        }
    }
    let inserted_texts = 2 * n as i64;
    println!("{n} observations, {inserted_texts} distinct texts written; (texts, raw rows, file bytes) at the end of each day: {texts_after:?}");
    let (day2, day3) = (texts_after[1], texts_after[2]);
    // What is kept is what the raw retention (and the day not yet rolled up) needs — the same
    // on day three as on day two, and a fraction of what was written.
    assert!(
        day3.0 <= day2.0 + day2.0 / 10,
        "texts grow: {texts_after:?}"
    );
    assert!(day3.0 < inserted_texts / 2, "{texts_after:?}");
    assert!(
        day3.1 <= day2.1 + day2.1 / 10,
        "raw rows grow: {texts_after:?}"
    );
    // The file reuses freed pages: no growth from day two to day three beyond a margin.
    assert!(day3.2 <= day2.2 + day2.2 / 5, "file grows: {texts_after:?}");
}
