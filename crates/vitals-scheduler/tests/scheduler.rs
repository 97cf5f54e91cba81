//! The scheduler against real probes (a loopback HTTP server, real processes) and a real store.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vitals_config::{CheckConfig, ScheduleSpec};
use vitals_core::spec::{ExecSpec, HttpSpec, ProbeSpec};
use vitals_core::Status;
use vitals_scheduler::{LiveState, Metrics, Pipeline, ScheduledCheck, Scheduler};
use vitals_store::{ObservationQuery, Store};
use vitals_store_sqlite::SqliteStore;

/// A minimal HTTP/1.1 server answering 200 "ok" to every request, one per connection.
async fn http_target() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}/")
}

fn check(asset: &str, name: &str, every: u64, timeout: u64, probe: ProbeSpec) -> ScheduledCheck {
    ScheduledCheck::from_config(&CheckConfig {
        asset: asset.into(),
        name: name.into(),
        schedule: ScheduleSpec::Interval(Duration::from_secs(every)),
        jitter: None,
        timeout: Duration::from_secs(timeout),
        enabled: true,
        description: None,
        kind: vitals_core::spec::CheckKind::Probe(probe),
        accept_pushes: false,
        locations: None,
    })
    .unwrap()
    .unwrap()
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
    pipeline: Pipeline,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("v.db")).unwrap());
    let state = Arc::new(LiveState::new());
    let metrics = Arc::new(Metrics::default());
    let (pipeline, _) = Pipeline::start(
        store.clone(),
        state.clone(),
        metrics.clone(),
        Arc::new(vitals_scheduler::ModelHandle::default()),
        vitals_alert::Engine::new(vec![], vec![], None, vec![], vec![], (0, 0)),
    );
    Rig {
        _dir: dir,
        store,
        state,
        metrics,
        pipeline,
    }
}

async fn count(store: &Arc<dyn Store>, asset: &str, check: &str) -> usize {
    store
        .observations(&ObservationQuery {
            asset: asset.into(),
            check: Some(check.into()),
            from: None,
            to: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

/// Polls until `cond` holds, at most `secs` seconds.
async fn eventually<F: std::future::Future<Output = bool>>(
    secs: u64,
    mut cond: impl FnMut() -> F,
) -> bool {
    for _ in 0..secs * 10 {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_checks_run_repeatedly_and_land_in_store_and_state() {
    let r = rig();
    let url = http_target().await;
    let s = Scheduler::start(
        vec![check(
            "web",
            "home",
            1,
            1,
            ProbeSpec::Http(HttpSpec::new(url)),
        )],
        Arc::new(vitals_probe::Prober::new()),
        r.pipeline.clone(),
        r.metrics.clone(),
        8,
    );
    assert!(eventually(15, || async { count(&r.store, "web", "home").await >= 3 }).await);
    let a = r.state.asset("web").unwrap();
    assert_eq!(
        a.checks
            .get("home")
            .unwrap()
            .latest
            .as_ref()
            .unwrap()
            .status,
        Status::Ok
    );
    assert!(r.metrics.total_probes() >= 3);
    assert_eq!(r.metrics.skipped_ticks.load(Ordering::Relaxed), 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_run_skips_ticks_instead_of_overlapping() {
    let r = rig();
    let sleep = ProbeSpec::Exec(ExecSpec {
        command: vec!["/bin/sleep".into(), "2.5".into()],
        env: Default::default(),
        max_output_bytes: 1024,
    });
    let s = Scheduler::start(
        vec![check("box", "slow", 1, 5, sleep)],
        Arc::new(vitals_probe::Prober::new()),
        r.pipeline.clone(),
        r.metrics.clone(),
        8,
    );
    assert!(
        eventually(20, || async {
            r.metrics.skipped_ticks.load(Ordering::Relaxed) >= 2
        })
        .await
    );
    // Never two runs of the same check at once.
    assert!(r.metrics.in_flight.load(Ordering::Relaxed) <= 1);
    s.shutdown().await;
    // Shutdown waited for the run in progress, and its observation was submitted.
    r.pipeline.flush().await;
    assert_eq!(r.metrics.in_flight.load(Ordering::Relaxed), 0);
    assert!(count(&r.store, "box", "slow").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_checks() {
    let r = rig();
    let url = http_target().await;
    let a = check(
        "web",
        "a",
        1,
        1,
        ProbeSpec::Http(HttpSpec::new(url.clone())),
    );
    let b = check("web", "b", 1, 1, ProbeSpec::Http(HttpSpec::new(url)));
    let s = Scheduler::start(
        vec![a.clone()],
        Arc::new(vitals_probe::Prober::new()),
        r.pipeline.clone(),
        r.metrics.clone(),
        8,
    );
    assert!(eventually(15, || async { count(&r.store, "web", "a").await >= 1 }).await);
    s.reload(vec![b]).await;
    assert!(eventually(15, || async { count(&r.store, "web", "b").await >= 2 }).await);
    let frozen = count(&r.store, "web", "a").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // At most one run of `a` that was already in progress may land after the reload.
    assert!(count(&r.store, "web", "a").await <= frozen + 1);
    s.shutdown().await;
}
