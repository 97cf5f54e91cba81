//! The cleanup job, in the national platform's manner: rollups first, then raw observations
//! older than the retention deleted in bounded batches with a pause between them, stopping after
//! a maximum run time (the next run goes on). Runs on its cron schedule, on demand through the
//! API, or from `vitals cleanup`; a second start while one runs is refused, not doubled.
//!
//! Raw rows are deleted only once the hour they belong to is rolled up, so history survives as
//! hourly and daily aggregates (count, failures, min/mean/max and p95 duration).

use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use vitals_config::RetentionConfig;
use vitals_core::Timestamp;
use vitals_store::{Store, StoreError, DAY_MS, HOUR_MS};

/// Key of the job's last run and of its progress values.
pub const JOB: &str = "cleanup";
const HOURS_DONE: &str = "rollups.hour";
const DAYS_DONE: &str = "rollups.day";
/// Idempotency keys are remembered this long.
const RESULT_IDS_KEEP_MS: i64 = 7 * DAY_MS;
/// Hours rolled up per store call (bounds one read transaction).
const HOURS_PER_STEP: i64 = 6;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Run {
    pub trigger: String,
    pub started: String,
    pub finished: Option<String>,
    /// `running`, `done`, `stopped` (maximum run time reached; the next run continues) or `failed`.
    pub status: String,
    pub message: String,
    pub rollups_written: usize,
    pub raw_deleted: usize,
    pub batches: usize,
    pub pruned: usize,
    pub duration_ms: u64,
}

pub struct Cleanup {
    store: Arc<dyn Store>,
    config: std::sync::RwLock<RetentionConfig>,
    running: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("a cleanup is already running")]
    AlreadyRunning,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn floor(t: i64, period: i64) -> i64 {
    t.div_euclid(period) * period
}

impl Cleanup {
    pub fn new(store: Arc<dyn Store>, config: RetentionConfig) -> Cleanup {
        Cleanup {
            store,
            config: std::sync::RwLock::new(config),
            running: Mutex::new(()),
        }
    }

    pub fn set_config(&self, c: RetentionConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = c;
    }

    fn config(&self) -> RetentionConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_running(&self) -> bool {
        self.running.try_lock().is_err()
    }

    /// Runs once now. Refused (not queued) while another run is going.
    pub async fn run(&self, trigger: &str, now: Timestamp) -> Result<Run, CleanupError> {
        let Ok(_guard) = self.running.try_lock() else {
            return Err(CleanupError::AlreadyRunning);
        };
        let cfg = self.config();
        let began = Instant::now();
        let mut run = Run {
            trigger: trigger.to_string(),
            started: now.to_rfc3339(),
            finished: None,
            status: "running".into(),
            message: String::new(),
            rollups_written: 0,
            raw_deleted: 0,
            batches: 0,
            pruned: 0,
            duration_ms: 0,
        };
        self.store.set_job_run(JOB, serde_json::json!(run)).await?;
        let outcome = self.work(&cfg, now, began, &mut run).await;
        run.duration_ms = began.elapsed().as_millis() as u64;
        run.finished = Some(now.add_millis(run.duration_ms as i64).to_rfc3339());
        match outcome {
            Ok(true) => {
                run.status = "done".into();
            }
            Ok(false) => {
                run.status = "stopped".into();
                run.message = format!(
                    "maximum run time ({}s) reached; the next run continues",
                    cfg.max_run.as_secs()
                );
            }
            Err(e) => {
                run.status = "failed".into();
                run.message = e.to_string();
            }
        }
        tracing::info!(status = %run.status, rollups = run.rollups_written, deleted = run.raw_deleted, batches = run.batches, "cleanup run");
        self.store.set_job_run(JOB, serde_json::json!(run)).await?;
        Ok(run)
    }

    /// `Ok(true)` finished, `Ok(false)` stopped by the maximum run time.
    async fn work(
        &self,
        cfg: &RetentionConfig,
        now: Timestamp,
        began: Instant,
        run: &mut Run,
    ) -> Result<bool, StoreError> {
        let out_of_time = || began.elapsed() >= cfg.max_run;
        // 1. Hourly rollups of every complete hour since the last run (from the retention start
        //    on a first run).
        let raw_ms = cfg.raw.as_millis() as i64;
        let hour_end = floor(now.0, HOUR_MS);
        let mut hour = self
            .store
            .job_value(HOURS_DONE)
            .await?
            .unwrap_or(floor(now.0 - raw_ms, HOUR_MS));
        while hour < hour_end {
            if out_of_time() {
                return Ok(false);
            }
            let to = (hour + HOURS_PER_STEP * HOUR_MS).min(hour_end);
            run.rollups_written += self
                .store
                .compute_rollups(HOUR_MS, Timestamp(hour), Timestamp(to))
                .await?;
            self.store.set_job_value(HOURS_DONE, to).await?;
            hour = to;
        }
        // 2. Daily rollups of every complete day.
        let day_end = floor(now.0, DAY_MS);
        let mut day = self
            .store
            .job_value(DAYS_DONE)
            .await?
            .unwrap_or(floor(now.0 - raw_ms, DAY_MS));
        while day < day_end {
            if out_of_time() {
                return Ok(false);
            }
            run.rollups_written += self
                .store
                .compute_rollups(DAY_MS, Timestamp(day), Timestamp(day + DAY_MS))
                .await?;
            day += DAY_MS;
            self.store.set_job_value(DAYS_DONE, day).await?;
        }
        // 3. Raw observations past retention — but never before they are rolled up.
        let cutoff = Timestamp((now.0 - raw_ms).min(hour).min(day));
        loop {
            if out_of_time() {
                return Ok(false);
            }
            let n = self
                .store
                .delete_raw_before(cutoff, cfg.batch.max(1))
                .await?;
            if n == 0 {
                break;
            }
            run.raw_deleted += n;
            run.batches += 1;
            if n < cfg.batch {
                break;
            }
            // Let ingest have the writer between batches.
            tokio::time::sleep(cfg.pause.min(cfg.max_run.saturating_sub(began.elapsed()))).await;
        }
        // 4. Rollups past their own retention, and old idempotency keys.
        run.pruned += self
            .store
            .prune(
                HOUR_MS,
                Timestamp(now.0 - cfg.hourly.as_millis() as i64),
                Timestamp(now.0 - RESULT_IDS_KEEP_MS),
            )
            .await?;
        run.pruned += self
            .store
            .prune(
                DAY_MS,
                Timestamp(now.0 - cfg.daily.as_millis() as i64),
                Timestamp(now.0 - RESULT_IDS_KEEP_MS),
            )
            .await?;
        // 5. Everything else that grows: interned reasons, component lists and value names
        //    no kept observation uses, resolved alerts, delivered notifications, and the audit
        //    log (archived to files first) — each in batches, each with its own retention.
        let batch = cfg.batch.max(1);
        let ms = |d: std::time::Duration| Timestamp(now.0 - d.as_millis() as i64);
        let mut step = async |what: Step| -> Result<bool, StoreError> {
            loop {
                if out_of_time() {
                    return Ok(false);
                }
                let n = match what {
                    Step::Interned => self.store.forget_unused(cutoff, batch).await?,
                    Step::Alerts => {
                        self.store
                            .delete_resolved_alerts(ms(cfg.alerts), batch)
                            .await?
                    }
                    Step::Notifications => {
                        self.store
                            .delete_done_notifications(ms(cfg.notifications), batch)
                            .await?
                    }
                    Step::Audit => {
                        let dir = cfg
                            .audit_archive
                            .clone()
                            .unwrap_or_else(|| std::path::PathBuf::from("audit-archive"));
                        match self.store.archive_audit(ms(cfg.audit), batch, &dir).await? {
                            Some((n, file)) => {
                                tracing::info!(entries = n, file = %file.display(), "audit entries archived");
                                n
                            }
                            None => 0,
                        }
                    }
                };
                run.pruned += n;
                if n < batch {
                    return Ok(true);
                }
                run.batches += 1;
                tokio::time::sleep(cfg.pause.min(cfg.max_run.saturating_sub(began.elapsed())))
                    .await;
            }
        };
        for what in [
            Step::Interned,
            Step::Alerts,
            Step::Notifications,
            Step::Audit,
        ] {
            if !step(what).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The last run (or the one in progress).
    pub async fn last(&self) -> Result<Option<serde_json::Value>, StoreError> {
        self.store.job_run(JOB).await
    }
}

/// Runs the job on its cron schedule until aborted.
/// Runs the cleanup on its cron; among replicas, only on the decider.
pub fn spawn(
    cleanup: Arc<Cleanup>,
    clock: vitals_core::SharedClock,
    role: Arc<crate::cluster::Role>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let schedule = cleanup.config().cron.schedule().clone();
            let now = clock.now();
            let Some(next) = schedule.next_after(now) else {
                return;
            };
            // Re-read the schedule at least hourly (a reload may change it).
            let wait = Duration::from_millis((next.0 - now.0).clamp(0, 3_600_000) as u64);
            tokio::time::sleep(wait).await;
            if clock.now() < next || !role.is_decider() {
                continue;
            }
            match cleanup.run("cron", clock.now()).await {
                Ok(_) | Err(CleanupError::AlreadyRunning) => {}
                Err(e) => tracing::warn!(error = %e, "cleanup failed"),
            }
        }
    })
}

/// The retention steps beyond raw observations and rollups.
#[derive(Debug, Clone, Copy)]
enum Step {
    Interned,
    Alerts,
    Notifications,
    Audit,
}
