//! Jobs with real processes: history, never twice at once, timeout kills the whole group,
//! output tail, a clean environment, and overrides that differ from the file until removed.

use std::sync::Arc;
use std::time::Duration;
use vitals_engine::jobs::{self, JobError, Jobs};
use vitals_engine::store::{EngineStore, SqliteEngineStore};
use vitals_engine::Publisher;
use vitals_scheduler::{LiveState, Metrics, Pipeline};
use vitals_store::Store;

fn job(text: &str) -> vitals_config::engine::JobConfig {
    vitals_config::Config::parse(text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .engine
        .jobs
        .remove(0)
}

async fn setup(dir: &tempfile::TempDir, text: &str) -> (Arc<Jobs>, Arc<dyn EngineStore>, Pipeline) {
    let store: Arc<dyn Store> =
        Arc::new(vitals_store_sqlite::SqliteStore::open(&dir.path().join("vitals.db")).unwrap());
    let (p, _task) = Pipeline::start(
        store.clone(),
        Arc::new(LiveState::new()),
        Arc::new(Metrics::default()),
        Arc::new(vitals_scheduler::ModelHandle::default()),
        vitals_alert::Engine::new(vec![], vec![], None, vec![], vec![], (0, 0)),
    );
    let es: Arc<dyn EngineStore> =
        Arc::new(SqliteEngineStore::open(&dir.path().join("engine.db")).unwrap());
    let publisher = Arc::new(Publisher::new(store, p.clone()));
    let jobs = Arc::new(Jobs::new(&[job(text)], es.clone(), publisher.clone(), None));
    publisher.assets(jobs.assets()).await;
    (jobs, es, p)
}

async fn wait_runs(es: &dyn EngineStore, id: &str, n: usize) -> Vec<vitals_engine::store::JobRun> {
    for _ in 0..400 {
        let runs = es.job_runs(id, 10).unwrap();
        if runs.len() >= n {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} did not finish {n} run(s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_never_runs_twice_at_once_and_its_run_is_recorded_and_observed() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, es, p) = setup(
        &dir,
        r#"
[[job]]
id = "rebuild"
command = ["sh", "-c", "echo start; echo \"home=[$HOME]\" >&2; sleep 0.5; echo end; exit 3"]
schedule = "0 0 1 1 *"
timeout = "30s"
"#,
    )
    .await;
    jobs.run_now("rebuild", "alice").unwrap();
    assert_eq!(
        jobs.run_now("rebuild", "bob"),
        Err(JobError::Running("rebuild".into()))
    );
    assert!(jobs.view("rebuild", 5).unwrap().running_since.is_some());
    let runs = wait_runs(&*es, "rebuild", 1).await;
    let r = &runs[0];
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.outcome, "failed");
    assert_eq!(r.trigger, "alice");
    assert!(
        r.output.contains("start") && r.output.contains("end"),
        "{:?}",
        r.output
    );
    // The environment is clean: no HOME from the server.
    assert!(r.output.contains("home=[]"), "{:?}", r.output);
    assert!(r.ended >= r.started);
    // The run is an observation of the job's asset.
    let mut latest = None;
    for _ in 0..200 {
        latest = p
            .state()
            .asset("rebuild")
            .and_then(|a| a.checks.get(jobs::CHECK_RUN).and_then(|c| c.latest.clone()));
        if latest.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let o = latest.expect("an observation of the run");
    assert_eq!(o.status, vitals_core::Status::Crit);
    assert_eq!(o.reason, "exited 3");
    // Free again once finished.
    for _ in 0..200 {
        if jobs.view("rebuild", 1).unwrap().running_since.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    jobs.run_now("rebuild", "carol").unwrap();
    let runs = wait_runs(&*es, "rebuild", 2).await;
    assert_eq!(runs[0].trigger, "carol");
    assert_eq!(
        jobs.run_now("nope", "x"),
        Err(JobError::NotFound("nope".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survivor");
    let (jobs, es, _p) = setup(
        &dir,
        &format!(
            r#"
[[job]]
id = "hang"
command = ["sh", "-c", "(sleep 3; touch {m}) & echo waiting; sleep 60"]
schedule = "0 0 1 1 *"
timeout = "1s"
"#,
            m = marker.display()
        ),
    )
    .await;
    jobs.run_now("hang", "admin").unwrap();
    let runs = wait_runs(&*es, "hang", 1).await;
    assert_eq!(runs[0].outcome, "timeout");
    assert_eq!(runs[0].exit_code, None);
    assert!(runs[0].output.contains("waiting"));
    // The background child was in the group and died with it (checked after it would have
    // written its marker).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!marker.exists(), "a child of the job survived the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_differ_from_the_file_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, es, _p) = setup(
        &dir,
        r#"
[[job]]
id = "nightly"
command = ["true"]
schedule = "0 2 * * *"
"#,
    )
    .await;
    let v = jobs.view("nightly", 1).unwrap();
    assert_eq!(v.effective_schedule, "0 2 * * *");
    assert!(v.r#override.is_none());
    assert!(v.next_run.is_some());

    jobs.set_schedule("nightly", "*/10 * * * *", "alice")
        .unwrap();
    jobs.pause("nightly", "alice").unwrap();
    let v = jobs.view("nightly", 1).unwrap();
    assert_eq!(v.schedule, "0 2 * * *");
    assert_eq!(v.effective_schedule, "*/10 * * * *");
    assert!(v.paused);
    assert!(v.next_run.is_none(), "a paused job has no next run");
    let o = v.r#override.unwrap();
    assert_eq!(o.set_by, "alice");
    // Stored: a new Jobs over the same store sees it.
    assert!(es.overrides().unwrap().contains_key("nightly"));

    assert!(matches!(
        jobs.set_schedule("nightly", "every tuesday", "alice"),
        Err(JobError::Invalid(_))
    ));
    jobs.resume("nightly", "bob").unwrap();
    assert!(!jobs.view("nightly", 1).unwrap().paused);
    assert!(jobs.clear_override("nightly").unwrap());
    let v = jobs.view("nightly", 1).unwrap();
    assert_eq!(v.effective_schedule, "0 2 * * *");
    assert!(v.r#override.is_none());
    assert!(!jobs.clear_override("nightly").unwrap());
}

#[tokio::test]
async fn a_program_that_does_not_exist_is_a_failed_run_not_an_error() {
    let j = job(r#"
[[job]]
id = "missing"
command = ["/nonexistent/vitals-job"]
schedule = "0 2 * * *"
"#);
    let r = jobs::execute(&j, "test", &vitals_core::SystemClock).await;
    assert_eq!(r.outcome, "not started");
    let o = jobs::observation(&r);
    assert_eq!(o.status, vitals_core::Status::Crit);
    assert!(
        o.reason
            .starts_with("could not start: /nonexistent/vitals-job"),
        "{}",
        o.reason
    );
}
