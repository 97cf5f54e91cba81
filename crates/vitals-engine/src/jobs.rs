//! `[[job]]`: commands run on cron with a run history, never twice at once, bounded by a
//! timeout (the whole process group is killed). Admins pause, resume, run now and override the
//! schedule; overrides are stored, shown as differing from the file, and removable. Each run is
//! an observation of the job's asset (check `run`), so rules and alerts apply.

use crate::store::{EngineStore, JobRun, Override};
use crate::Publisher;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use vitals_config::engine::JobConfig;
use vitals_core::schedule::Schedule;
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_store::AssetRecord;

/// The check of a job's asset.
pub const CHECK_RUN: &str = "run";
/// Bytes of output kept per run (the end of it).
pub const OUTPUT_TAIL: usize = 4096;
/// The `PATH` of a job's otherwise empty environment.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Why an action on a job was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    NotFound(String),
    /// Already running (a job never runs twice at once).
    Running(String),
    Invalid(String),
    Store(String),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::NotFound(id) => write!(f, "no job {id:?}"),
            JobError::Running(id) => {
                write!(f, "job {id:?} is running; it never runs twice at once")
            }
            JobError::Invalid(m) | JobError::Store(m) => f.write_str(m),
        }
    }
}

struct Job {
    cfg: JobConfig,
    /// Shared with the same job of the engine a reload replaced (a run it started may still go).
    running: Arc<AtomicBool>,
    since: Arc<Mutex<Option<Timestamp>>>,
    /// Wakes the job's timer when its schedule or pause changes.
    wake: tokio::sync::Notify,
}

/// A job as shown by the API and the page.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub name: String,
    pub command: Vec<String>,
    /// The schedule in the file.
    pub schedule: String,
    /// The schedule in effect (the override's, if any).
    pub effective_schedule: String,
    pub paused: bool,
    /// What an admin changed (absent: as in the file).
    pub r#override: Option<Override>,
    pub running_since: Option<String>,
    pub next_run: Option<String>,
    pub timeout_s: u64,
    pub runs: Vec<JobRun>,
}

/// All jobs.
pub struct Jobs {
    jobs: HashMap<String, Arc<Job>>,
    order: Vec<String>,
    store: Arc<dyn EngineStore>,
    publisher: Arc<Publisher>,
}

/// The schedule in effect and its text: the override's (checked when it was set) or the
/// file's, which arrives parsed.
fn in_effect(cfg: &JobConfig, o: Option<&Override>) -> (Option<Schedule>, String) {
    match o.and_then(|o| o.schedule.clone()) {
        Some(expr) => (Schedule::cron(&expr).ok(), expr),
        None => (
            Some(cfg.schedule.schedule().clone()),
            cfg.schedule.as_str().to_string(),
        ),
    }
}

impl Jobs {
    /// `previous`: the jobs of the engine a reload replaces; a job of the same id keeps its
    /// running flag, so a run still going there is not started again here.
    pub fn new(
        cfgs: &[JobConfig],
        store: Arc<dyn EngineStore>,
        publisher: Arc<Publisher>,
        previous: Option<&Jobs>,
    ) -> Jobs {
        let mut jobs = HashMap::new();
        let mut order = Vec::new();
        for c in cfgs {
            order.push(c.id.clone());
            let before = previous.and_then(|p| p.jobs.get(&c.id));
            jobs.insert(
                c.id.clone(),
                Arc::new(Job {
                    cfg: c.clone(),
                    running: before.map_or_else(Arc::default, |j| j.running.clone()),
                    since: before.map_or_else(Arc::default, |j| j.since.clone()),
                    wake: tokio::sync::Notify::new(),
                }),
            );
        }
        Jobs {
            jobs,
            order,
            store,
            publisher,
        }
    }

    pub fn assets(&self) -> Vec<AssetRecord> {
        self.order
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .map(|j| AssetRecord {
                id: j.cfg.id.clone(),
                name: j.cfg.name.clone().unwrap_or_else(|| j.cfg.id.clone()),
                groups: vec![j.cfg.group.clone().unwrap_or_else(|| "jobs".into())],
                labels: Default::default(),
                parents: vec![],
                metadata: serde_json::Map::from_iter([(
                    "engine".to_string(),
                    serde_json::Value::String("job".into()),
                )]),
            })
            .collect()
    }

    fn overrides(&self) -> HashMap<String, Override> {
        self.store.overrides().unwrap_or_else(|e| {
            tracing::error!(error = %e, "engine: reading job overrides failed");
            HashMap::new()
        })
    }

    /// The schedule in effect and whether the job is paused.
    fn effective(&self, job: &Job) -> (Option<Schedule>, String, bool) {
        let o = self.overrides().remove(&job.cfg.id);
        let (schedule, expr) = in_effect(&job.cfg, o.as_ref());
        (schedule, expr, o.is_some_and(|o| o.paused))
    }

    /// Starts one timer task per job.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        self.order
            .iter()
            .filter_map(|id| self.jobs.get(id).cloned())
            .map(|job| {
                let me = self.clone();
                tokio::spawn(async move { me.timer(job).await })
            })
            .collect()
    }

    async fn timer(self: Arc<Self>, job: Arc<Job>) {
        loop {
            let now = self.publisher.now();
            let (schedule, _, _) = self.effective(&job);
            let Some(next) = schedule.and_then(|s| s.next_after(now)) else {
                job.wake.notified().await;
                continue;
            };
            let wait = Duration::from_millis((next.0 - now.0).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = job.wake.notified() => continue,
            }
            if !self.publisher.decides() {
                continue; // another replica runs the jobs
            }
            let (_, _, paused) = self.effective(&job);
            if paused {
                tracing::info!(job = %job.cfg.id, "engine: job paused; scheduled run skipped");
                continue;
            }
            if let Err(JobError::Running(_)) = self.start(&job, "schedule") {
                tracing::warn!(job = %job.cfg.id, "engine: job still running; scheduled run skipped");
            }
        }
    }

    /// Runs a job now (refused while it runs).
    pub fn run_now(self: &Arc<Self>, id: &str, actor: &str) -> Result<(), JobError> {
        let job = self.job(id)?;
        self.start(&job, actor)
    }

    fn job(&self, id: &str) -> Result<Arc<Job>, JobError> {
        self.jobs
            .get(id)
            .cloned()
            .ok_or_else(|| JobError::NotFound(id.to_string()))
    }

    fn start(self: &Arc<Self>, job: &Arc<Job>, trigger: &str) -> Result<(), JobError> {
        if job
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(JobError::Running(job.cfg.id.clone()));
        }
        *job.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.publisher.now());
        let (me, job, trigger) = (self.clone(), job.clone(), trigger.to_string());
        tokio::spawn(async move {
            let mut run = execute(&job.cfg, &trigger, &**me.publisher.clock()).await;
            match me.store.record_job_run(&run) {
                Ok(id) => run.id = id,
                Err(e) => {
                    tracing::error!(job = %job.cfg.id, error = %e, "engine: storing a job run failed")
                }
            }
            *job.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
            job.running.store(false, Ordering::Release);
            tracing::info!(job = %job.cfg.id, outcome = %run.outcome, exit = ?run.exit_code, ms = run.duration_ms, "engine: job ran");
            me.publisher.observations(vec![observation(&run)]).await;
        });
        Ok(())
    }

    fn change(&self, id: &str, actor: &str, f: impl FnOnce(&mut Override)) -> Result<(), JobError> {
        let job = self.job(id)?;
        let mut o = self.overrides().remove(id).unwrap_or_default();
        f(&mut o);
        o.set_by = actor.to_string();
        o.set_at = self.publisher.now();
        if o.schedule.as_deref() == Some(job.cfg.schedule.as_str()) {
            o.schedule = None;
        }
        let r = if !o.paused && o.schedule.is_none() {
            self.store.remove_override(id).map(|_| ())
        } else {
            self.store.set_override(id, &o)
        };
        r.map_err(JobError::Store)?;
        job.wake.notify_one();
        Ok(())
    }

    pub fn pause(&self, id: &str, actor: &str) -> Result<(), JobError> {
        self.change(id, actor, |o| o.paused = true)
    }

    pub fn resume(&self, id: &str, actor: &str) -> Result<(), JobError> {
        self.change(id, actor, |o| o.paused = false)
    }

    /// Overrides the schedule (a cron expression).
    pub fn set_schedule(&self, id: &str, expr: &str, actor: &str) -> Result<(), JobError> {
        let expr = expr.trim();
        if expr.len() > 200 {
            return Err(JobError::Invalid("schedule: at most 200 characters".into()));
        }
        Schedule::cron(expr).map_err(|e| JobError::Invalid(format!("schedule: {e}")))?;
        self.change(id, actor, |o| o.schedule = Some(expr.to_string()))
    }

    /// Removes every override: the job runs as the file says again.
    pub fn clear_override(&self, id: &str) -> Result<bool, JobError> {
        let job = self.job(id)?;
        let removed = self.store.remove_override(id).map_err(JobError::Store)?;
        job.wake.notify_one();
        Ok(removed)
    }

    pub fn views(&self, runs: usize) -> Vec<JobView> {
        let overrides = self.overrides();
        let now = self.publisher.now();
        self.order
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .map(|j| {
                let o = overrides.get(&j.cfg.id).cloned();
                let (schedule, expr) = in_effect(&j.cfg, o.as_ref());
                let paused = o.as_ref().is_some_and(|o| o.paused);
                let next = (!paused).then(|| schedule?.next_after(now)).flatten();
                JobView {
                    id: j.cfg.id.clone(),
                    name: j.cfg.name.clone().unwrap_or_else(|| j.cfg.id.clone()),
                    command: j.cfg.command.clone(),
                    schedule: j.cfg.schedule.as_str().to_string(),
                    effective_schedule: expr,
                    paused,
                    r#override: o,
                    running_since: j
                        .since
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .map(|t| t.to_rfc3339()),
                    next_run: next.map(|t| t.to_rfc3339()),
                    timeout_s: j.cfg.timeout.as_secs(),
                    runs: self.store.job_runs(&j.cfg.id, runs).unwrap_or_default(),
                }
            })
            .collect()
    }

    pub fn view(&self, id: &str, runs: usize) -> Result<JobView, JobError> {
        self.job(id)?;
        self.views(runs)
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| JobError::NotFound(id.to_string()))
    }
}

/// The observation of a finished run.
pub fn observation(run: &JobRun) -> Observation {
    let status = if run.outcome == "ok" {
        Status::Ok
    } else {
        Status::Crit
    };
    let reason = match (run.outcome.as_str(), run.exit_code) {
        ("ok", _) => "exited 0".to_string(),
        ("timeout", _) => "timed out; killed".to_string(),
        ("not started", _) => format!(
            "could not start: {}",
            run.output.lines().last().unwrap_or("")
        ),
        (_, Some(c)) => format!("exited {c}"),
        (_, None) => "killed by a signal".to_string(),
    };
    let mut o = Observation::new(&run.job, CHECK_RUN, run.ended, status, reason);
    o.duration_us = (run.duration_ms.max(0) as u64).saturating_mul(1000);
    o.values = vec![Value::new("duration_s", run.duration_ms as f64 / 1000.0)];
    if let Some(c) = run.exit_code {
        o.values.push(Value::new("exit_code", c as f64));
    }
    o
}

/// The end of the output, cut at a character boundary.
fn tail(buf: &[u8]) -> String {
    let start = buf.len().saturating_sub(OUTPUT_TAIL);
    let s = String::from_utf8_lossy(&buf[start..]).into_owned();
    s.trim_start_matches('\u{FFFD}').to_string()
}

/// Runs a job's command once: clean environment, own process group, output tail, timeout.
pub async fn execute(cfg: &JobConfig, trigger: &str, clock: &dyn vitals_core::Clock) -> JobRun {
    let started = clock.now();
    let t0 = Instant::now();
    let mut run = JobRun {
        id: 0,
        job: cfg.id.clone(),
        started,
        ended: started,
        exit_code: None,
        outcome: "not started".into(),
        duration_ms: 0,
        output: String::new(),
        trigger: trigger.to_string(),
    };
    let Some((program, args)) = cfg.command.split_first() else {
        run.output = "empty command".into();
        return run;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", PATH)
        .envs(&cfg.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = &cfg.working_dir {
        cmd.current_dir(d);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            run.output = format!("{program}: {e}");
            run.ended = clock.now();
            return run;
        }
    };
    let pid = child.id();
    // Both streams into one bounded tail, in the order they arrive.
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(drain(out, buf.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(drain(err, buf.clone())));
    }
    let waited = tokio::time::timeout(cfg.timeout, child.wait()).await;
    match waited {
        Ok(Ok(status)) => {
            run.exit_code = status.code();
            run.outcome = if status.success() { "ok" } else { "failed" }.into();
        }
        Ok(Err(e)) => {
            run.outcome = "failed".into();
            buf.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(format!("\nwaiting for the process failed: {e}").as_bytes());
        }
        Err(_) => {
            run.outcome = "timeout".into();
            if let Some(pid) = pid {
                // The whole group: a shell's children go too.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = child.kill().await;
        }
    }
    // Readers end when the last writer of the pipes is gone; a grandchild that keeps them
    // open is not waited for long.
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
    }
    run.output = tail(&buf.lock().unwrap_or_else(|e| e.into_inner()));
    run.ended = clock.now();
    run.duration_ms = t0.elapsed().as_millis() as i64;
    run
}

async fn drain(mut r: impl tokio::io::AsyncRead + Unpin, buf: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                b.extend_from_slice(&chunk[..n]);
                // Bounded: keep twice the tail at most.
                if b.len() > 2 * OUTPUT_TAIL {
                    let cut = b.len() - OUTPUT_TAIL;
                    b.drain(..cut);
                }
            }
        }
    }
}
