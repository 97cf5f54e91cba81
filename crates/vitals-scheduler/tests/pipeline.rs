//! The pipeline's promises when the store fails, when results come out of order or twice, and
//! when pushes exceed their limits — against a real SQLite store whose writer is made to
//! refuse writes (`failpoints`), as a full disk would.

use std::sync::Arc;
use std::time::Duration;
use vitals_alert::Engine;
use vitals_config::Config;
use vitals_core::alert::AlertState;
use vitals_core::{Observation, Status, Timestamp};
use vitals_scheduler::{
    IngestLimit, LiveState, Metrics, Model, ModelHandle, Origin, Pipeline, PushError, Pushed,
};
use vitals_store::{AlertQuery, ObservationQuery, Store};
use vitals_store_sqlite::{failpoints, SqliteStore};

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
    pipeline: Pipeline,
}

fn rig(config: &str) -> Rig {
    let cfg = Config::parse(config, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("v.db")).unwrap());
    let state = Arc::new(LiveState::new());
    let metrics = Arc::new(Metrics::default());
    let (pipeline, _) = Pipeline::start(
        store.clone(),
        state.clone(),
        metrics.clone(),
        Arc::new(ModelHandle::new(Model::from_config(&cfg))),
        Engine::new(cfg.rules, vec![], None, vec![], vec![], (0, 0)),
    );
    Rig {
        _dir: dir,
        store,
        state,
        metrics,
        pipeline,
    }
}

const TWO_IN_A_ROW: &str =
    "[[notifier]]\nid = \"n\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
    [[rule]]\nid = \"r\"\ncount = 2\nnotifiers = [\"n\"]\n";

fn crit(t: i64) -> Observation {
    Observation::new(
        "db",
        "port",
        Timestamp(t),
        Status::Crit,
        format!("refused at {t}"),
    )
}

async fn stored(store: &dyn Store) -> Vec<i64> {
    let mut v: Vec<i64> = store
        .observations(&ObservationQuery {
            asset: "db".into(),
            check: Some("port".into()),
            from: None,
            to: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .iter()
        .map(|o| o.time.0)
        .collect();
    v.sort_unstable();
    v
}

async fn firing(store: &dyn Store) -> usize {
    store
        .alerts(&AlertQuery::default())
        .await
        .unwrap()
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count()
}

async fn wait_for(mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_failed_commit_changes_nothing_that_callers_were_told_failed() {
    let r = rig(TWO_IN_A_ROW);
    let base = vitals_core::SystemClock::now().0 - 60_000;
    r.pipeline.submit(crit(base)).await;
    r.pipeline.flush().await;
    assert_eq!(stored(&*r.store).await, vec![base]);

    failpoints::refuse_writes(true);
    // A push is answered with the failure …
    let pushed = r
        .pipeline
        .push(vec![Pushed {
            obs: crit(base + 1_000),
            id: None,
        }])
        .await;
    assert!(pushed.is_err(), "{pushed:?}");
    // … a probe result waits …
    r.pipeline.submit(crit(base + 2_000)).await;
    r.pipeline.flush().await;
    assert!(r.metrics.store_failure().is_some());
    assert_eq!(
        r.metrics
            .observations_buffered
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // … and nothing of either is visible: not in the live state, not as an alert.
    assert_eq!(
        r.state.latest_time("db", "port"),
        Some(Timestamp(base)),
        "the live state shows an observation that was not stored"
    );
    assert_eq!(firing(&*r.store).await, 0);

    failpoints::refuse_writes(false);
    // The waiting probe result is stored with the next successful round, and the rule's
    // window was kept: two crit in a row (the first and the buffered one) fire the alert.
    assert!(
        wait_for(async || stored(&*r.store).await == vec![base, base + 2_000]).await,
        "buffered observation not stored: {:?}",
        stored(&*r.store).await
    );
    assert!(wait_for(async || firing(&*r.store).await == 1).await);
    assert!(r.metrics.store_failure().is_none());
    assert_eq!(
        r.state.latest_time("db", "port"),
        Some(Timestamp(base + 2_000))
    );
}

#[tokio::test]
async fn history_is_stored_but_moves_no_status_and_no_alert() {
    let r = rig("[[notifier]]\nid = \"n\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n[[rule]]\nid = \"r\"\nnotifiers = [\"n\"]\n");
    let now = vitals_core::SystemClock::now().0;
    r.pipeline.ingest(vec![crit(now)]).await.unwrap();
    assert_eq!(firing(&*r.store).await, 1);
    // A result dated earlier says ok: it is history.
    let old = Observation::new(
        "db",
        "port",
        Timestamp(now - 5_000),
        Status::Ok,
        "fine, back then",
    );
    let report = r
        .pipeline
        .push(vec![Pushed { obs: old, id: None }])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(stored(&*r.store).await, vec![now - 5_000, now]);
    assert_eq!(
        firing(&*r.store).await,
        1,
        "a back-dated result resolved an alert"
    );
    let a = r.state.asset("db").unwrap();
    assert_eq!(a.status(), Some(Status::Crit));
}

#[tokio::test]
async fn one_asset_check_and_time_is_one_observation() {
    let r = rig("");
    let t = vitals_core::SystemClock::now().0 - 10_000;
    // 2,000 results with one key in one batch: one is taken, the rest are duplicates — at
    // once, not a millisecond walk per result.
    let items: Vec<Pushed> = (0..2_000)
        .map(|i| Pushed {
            obs: Observation::new("db", "port", Timestamp(t), Status::Ok, format!("{i}")),
            id: None,
        })
        .collect();
    let report = r.pipeline.push(items).await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.duplicates.len(), 1_999);
    assert_eq!(report.duplicates[0], 1);
    // Again later: duplicates of what is stored (also of older history, found by the store).
    let later = Observation::new("db", "port", Timestamp(t + 5_000), Status::Ok, "later");
    r.pipeline.ingest(vec![later]).await.unwrap();
    let report = r
        .pipeline
        .push(vec![
            Pushed {
                obs: Observation::new("db", "port", Timestamp(t), Status::Crit, "again"),
                id: None,
            },
            Pushed {
                obs: Observation::new("db", "port", Timestamp(t + 5_000), Status::Crit, "again"),
                id: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 0);
    assert_eq!(report.duplicates, vec![0, 1]);
    assert_eq!(stored(&*r.store).await, vec![t, t + 5_000]);
    let o = r
        .state
        .asset("db")
        .unwrap()
        .checks
        .get("port")
        .unwrap()
        .latest
        .clone()
        .unwrap();
    assert_eq!(o.reason, "later");
}

fn origin(token: &str, max_assets: usize) -> Origin {
    Origin {
        token: token.into(),
        max_assets,
    }
}

fn results(assets: std::ops::Range<usize>, checks: usize) -> Vec<Pushed> {
    let t = vitals_core::SystemClock::now();
    assets
        .flat_map(|a| {
            (0..checks).map(move |c| Pushed {
                obs: Observation::new(format!("clinic-{a}"), format!("c{c}"), t, Status::Ok, ""),
                id: None,
            })
        })
        .collect()
}

#[tokio::test]
async fn pushes_create_no_more_than_their_limits_allow() {
    let r = rig("[ingest]\nmax_assets = 10\nmax_checks_per_asset = 3\n");
    r.pipeline
        .push_from(results(0..6, 1), origin("a", 0))
        .await
        .unwrap();
    // Over the limit: refused whole, the limit named, nothing written.
    match r
        .pipeline
        .push_from(results(6..12, 1), origin("a", 0))
        .await
    {
        Err(PushError::Limit { limit, message }) => {
            assert_eq!(limit, IngestLimit::Assets);
            assert!(message.contains("ingest.max_assets"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!r.state.contains("clinic-6"));
    assert_eq!(r.metrics.refused_count(IngestLimit::Assets), 1);
    // A token's own quota.
    r.pipeline
        .push_from(results(6..8, 1), origin("b", 2))
        .await
        .unwrap();
    match r.pipeline.push_from(results(8..9, 1), origin("b", 2)).await {
        Err(PushError::Limit { limit, .. }) => assert_eq!(limit, IngestLimit::TokenAssets),
        other => panic!("{other:?}"),
    }
    // Checks per asset, counting those it has.
    match r.pipeline.push_from(results(0..1, 4), origin("a", 0)).await {
        Err(PushError::Limit { limit, message }) => {
            assert_eq!(limit, IngestLimit::ChecksPerAsset);
            assert!(message.contains("clinic-0"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.state.check_count("clinic-0"), 1);
    r.pipeline
        .push_from(results(0..1, 3), origin("a", 0))
        .await
        .unwrap();
    assert_eq!(r.state.check_count("clinic-0"), 3);
    // Inside Vitals (the broker collector, heartbeats) no limit applies.
    r.pipeline.push(results(20..30, 1)).await.unwrap();
    assert!(r.state.contains("clinic-29"));
    // The limit counts what pushes created, also after a restart (the records say so).
    let record = r.state.asset("clinic-0").unwrap().record;
    assert_eq!(record.metadata["created_by"], "a");
}
