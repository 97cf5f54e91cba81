//! The timer loop.
//!
//! One task owns a min-heap of `(due, slot)`. When a check is due it is spawned as its own task,
//! which waits for a permit of the global semaphore, runs the probe (bounded by its timeout) and
//! submits the observation. The next due time comes from the pure [`Schedule`] math, computed
//! from the *nominal* due time, so a late run does not shift later ticks (no drift). A tick that
//! finds the previous run of the same check still going is skipped, logged and counted.
//!
//! Reload swaps the check set in place: unchanged checks keep their next due time; changed ones
//! are rescheduled; removed ones stop (a run in progress finishes).

use crate::{Metrics, Pipeline};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::task::TaskTracker;
use vitals_config::CheckConfig;
use vitals_core::schedule::{Schedule, ScheduleError};
use vitals_core::Timestamp;
use vitals_probe::Prober;

/// A check ready to be scheduled.
#[derive(Debug, Clone)]
pub struct ScheduledCheck {
    /// Holds the probe (see [`ScheduledCheck::probe`]); not copied out, since 10,000 checks
    /// would keep every spec twice. Shared with the configuration the composition root keeps
    /// (see [`ScheduledCheck::from_shared`]).
    pub config: Arc<CheckConfig>,
    pub schedule: Schedule,
}

impl ScheduledCheck {
    /// `None` for checks that are not polled (push, heartbeat).
    pub fn from_config(config: &CheckConfig) -> Option<Result<Self, ScheduleError>> {
        config.kind.probe()?;
        Self::from_shared(&Arc::new(config.clone()))
    }

    /// Like [`ScheduledCheck::from_config`], keeping a reference to `config` instead of a copy.
    pub fn from_shared(config: &Arc<CheckConfig>) -> Option<Result<Self, ScheduleError>> {
        config.kind.probe()?;
        Some(config.build_schedule().map(|schedule| ScheduledCheck {
            schedule,
            config: config.clone(),
        }))
    }

    /// What it runs: always `Some` for a check [`ScheduledCheck::from_config`] built.
    pub fn probe(&self) -> Option<&vitals_core::spec::ProbeSpec> {
        self.config.kind.probe()
    }

    fn key(&self) -> (String, String) {
        (self.config.asset.clone(), self.config.name.clone())
    }
}

/// A new interval check runs soon after it appears, not only at its next grid tick, so a
/// 1-hour check does not stay blank for an hour after start: at a time within `spread_ms` of
/// now, fixed by its name. A check whose grid tick falls within that window anyway simply runs
/// then (the grid already spreads checks by their phase), so no check runs twice at start —
/// a second run due while the first still waits for a permit would be a skipped tick.
/// Later ticks follow the grid. Cron checks keep their times.
fn first_due(schedule: &Schedule, key: &str, now: Timestamp, spread_ms: u64) -> Option<Timestamp> {
    let next = schedule.next_after(now)?;
    match schedule {
        Schedule::Interval { .. } => {
            let spread_ms = spread_ms.max(1);
            if next.0 <= now.0.saturating_add(spread_ms as i64) {
                return Some(next);
            }
            let early = now
                .add_millis((vitals_core::schedule::fnv1a(key.as_bytes()) % spread_ms) as i64 + 1);
            Some(next.min(early))
        }
        Schedule::Cron(_) => Some(next),
    }
}

/// The window over which new checks make their first runs: at least 5 s, and 1 ms per new
/// check, so a start with 100,000 checks begins at no more than 1,000 first runs a second
/// instead of all within 5 s.
fn first_run_spread_ms(new_checks: usize) -> u64 {
    (new_checks as u64).max(FIRST_RUN_SPREAD_MS)
}

const FIRST_RUN_SPREAD_MS: u64 = 5_000;

struct Slot {
    check: Arc<ScheduledCheck>,
    running: Arc<AtomicBool>,
    /// Bumped when the slot's check changes, so stale heap entries are ignored.
    generation: u64,
}

enum Command {
    Reload(Vec<ScheduledCheck>, oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

pub struct Scheduler {
    tx: mpsc::Sender<Command>,
}

/// Where the observations of runs go: the server's pipeline, or a channel (a site agent
/// buffers them on disk and sends them to the server).
#[derive(Clone)]
pub enum Sink {
    Pipeline(Pipeline),
    Channel(mpsc::Sender<vitals_core::Observation>),
}

impl From<Pipeline> for Sink {
    fn from(p: Pipeline) -> Sink {
        Sink::Pipeline(p)
    }
}

impl Sink {
    /// The clock due times are read on: the pipeline's, or the wall clock for a bare channel.
    fn clock(&self) -> vitals_core::SharedClock {
        match self {
            Sink::Pipeline(p) => p.clock().clone(),
            Sink::Channel(_) => vitals_core::SystemClock::shared(),
        }
    }

    /// Whether this process runs the check (replicas share the checks out).
    fn owns(&self, asset: &str, check: &str) -> bool {
        match self {
            Sink::Pipeline(p) => p.role().owns(asset, check),
            Sink::Channel(_) => true,
        }
    }

    async fn submit(&self, obs: vitals_core::Observation) {
        match self {
            Sink::Pipeline(p) => p.submit(obs).await,
            Sink::Channel(tx) => {
                if tx.send(obs).await.is_err() {
                    tracing::error!("observation channel closed; observation dropped");
                }
            }
        }
    }
}

/// The loop wakes at least this often, so `/monitor` can tell it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The scheduler wakes at most once per this many milliseconds: a check may start up to this
/// late (lateness p99 target: 50 ms), and 10,000 checks cost 100 wake-ups a second, not 1,000.
const QUANTUM_MS: i64 = 10;

impl Scheduler {
    pub fn start(
        checks: Vec<ScheduledCheck>,
        prober: Arc<Prober>,
        sink: impl Into<Sink>,
        metrics: Arc<Metrics>,
        max_concurrency: usize,
    ) -> Scheduler {
        let (tx, rx) = mpsc::channel(8);
        let sink = sink.into();
        let mut lp = Loop {
            clock: sink.clock(),
            slots: HashMap::new(),
            index: HashMap::new(),
            heap: BinaryHeap::new(),
            next_slot: 0,
            prober,
            sink,
            metrics,
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            tracker: TaskTracker::new(),
        };
        let now = lp.clock.now();
        lp.apply(checks, now);
        // Alive from the start: `/monitor` may ask before the loop's first turn.
        lp.metrics
            .scheduler_heartbeat_ms
            .store(vitals_core::SystemClock::now().0, Ordering::Relaxed);
        tokio::spawn(lp.run(rx));
        Scheduler { tx }
    }

    /// Replaces the set of checks; returns once the loop has taken it.
    pub async fn reload(&self, checks: Vec<ScheduledCheck>) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Reload(checks, tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops starting new runs and waits for the runs in progress (each bounded by its timeout).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct Loop {
    clock: vitals_core::SharedClock,
    slots: HashMap<u64, Slot>,
    index: HashMap<(String, String), u64>,
    heap: BinaryHeap<Reverse<(i64, u64, u64)>>,
    next_slot: u64,
    prober: Arc<Prober>,
    sink: Sink,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
}

impl Loop {
    fn apply(&mut self, checks: Vec<ScheduledCheck>, now: Timestamp) {
        // New slots get their first due time once all are known: the spread depends on how many.
        let mut fresh = Vec::new();
        let mut keep: HashMap<(String, String), ()> = HashMap::new();
        for c in checks.into_iter().filter(|c| c.config.enabled) {
            let key = c.key();
            keep.insert(key.clone(), ());
            let existing = self
                .index
                .get(&key)
                .copied()
                .and_then(|id| self.slots.get_mut(&id).map(|s| (id, s)));
            match existing {
                Some((_, slot)) if slot.check.config == c.config => {} // unchanged: keep its due time
                Some((id, slot)) => {
                    slot.generation += 1;
                    slot.check = Arc::new(c);
                    if let Some(due) = slot.check.schedule.next_after(now) {
                        self.heap.push(Reverse((due.0, id, slot.generation)));
                    }
                }
                None => {
                    let id = self.next_slot;
                    self.next_slot += 1;
                    fresh.push(id);
                    self.slots.insert(
                        id,
                        Slot {
                            check: Arc::new(c),
                            running: Arc::new(AtomicBool::new(false)),
                            generation: 0,
                        },
                    );
                    self.index.insert(key, id);
                }
            }
        }
        let spread_ms = first_run_spread_ms(fresh.len());
        for id in fresh {
            let Some(slot) = self.slots.get(&id) else {
                continue;
            };
            let check = &slot.check;
            if let Some(due) = first_due(&check.schedule, &check.config.key(), now, spread_ms) {
                self.heap.push(Reverse((due.0, id, 0)));
            }
        }
        let removed: Vec<(String, String)> = self
            .index
            .keys()
            .filter(|k| !keep.contains_key(*k))
            .cloned()
            .collect();
        for k in removed {
            if let Some(id) = self.index.remove(&k) {
                self.slots.remove(&id);
            }
        }
        // Probe state (log followers) of checks that are gone is let go.
        let index = &self.index;
        self.prober.retain_checks(&|key: &str| {
            key.split_once('/')
                .is_some_and(|(a, n)| index.contains_key(&(a.to_string(), n.to_string())))
        });
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let now = self.clock.now();
            // Liveness is the machine's time, whatever clock the checks run on.
            self.metrics
                .scheduler_heartbeat_ms
                .store(vitals_core::SystemClock::now().0, Ordering::Relaxed);
            self.fire_due(now);
            let wait_ms = match self.heap.peek() {
                Some(Reverse((due, _, _))) => match due - self.clock.now().0 {
                    ..=0 => 0,
                    // Checks due within the quantum wait for it and start together: one
                    // wake-up per quantum instead of one per millisecond that has a check.
                    ms => ms.clamp(QUANTUM_MS, HEARTBEAT.as_millis() as i64),
                },
                None => HEARTBEAT.as_millis() as i64,
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
                cmd = rx.recv() => match cmd {
                    Some(Command::Reload(checks, done)) => {
                        let n = checks.len();
                        let now = self.clock.now();
                        self.apply(checks, now);
                        tracing::info!(checks = n, "scheduler reloaded");
                        let _ = done.send(());
                    }
                    Some(Command::Shutdown(done)) => {
                        self.tracker.close();
                        self.tracker.wait().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    fn fire_due(&mut self, now: Timestamp) {
        // Skips are counted always, but logged once per pass (an overloaded scheduler would
        // otherwise spend its time writing the same warning).
        let mut skipped = 0u64;
        let mut example: Option<String> = None;
        self.fire_due_inner(now, &mut skipped, &mut example);
        if skipped > 0 {
            tracing::warn!(
                skipped,
                example = example.as_deref().unwrap_or(""),
                "checks still running at their next tick; those ticks are skipped"
            );
        }
    }

    fn fire_due_inner(&mut self, now: Timestamp, skipped: &mut u64, example: &mut Option<String>) {
        while let Some(Reverse((due, id, generation))) = self.heap.peek().copied() {
            if due > now.0 {
                break;
            }
            self.heap.pop();
            let Some(slot) = self.slots.get(&id) else {
                continue; // removed by a reload
            };
            if slot.generation != generation {
                continue; // superseded by a reload
            }
            // Next tick from the nominal due time (no drift); if we are so late that it is
            // already past, skip ahead instead of bursting.
            let base = Timestamp(due.max(now.0 - 1));
            if let Some(next) = slot.check.schedule.next_after(base) {
                self.heap.push(Reverse((next.0, id, generation)));
            }
            // Another replica's check this period (membership decides, at every tick).
            if !self
                .sink
                .owns(&slot.check.config.asset, &slot.check.config.name)
            {
                continue;
            }
            if slot.running.swap(true, Ordering::AcqRel) {
                self.metrics.skipped_ticks.fetch_add(1, Ordering::Relaxed);
                *skipped += 1;
                if example.is_none() {
                    *example = Some(format!(
                        "{}/{}",
                        slot.check.config.asset, slot.check.config.name
                    ));
                }
                continue;
            }
            let check = slot.check.clone();
            let running = slot.running.clone();
            let prober = self.prober.clone();
            let sink = self.sink.clone();
            let metrics = self.metrics.clone();
            let permits = self.permits.clone();
            let clock = self.clock.clone();
            self.tracker.spawn(async move {
                // Always there: `from_config` builds only checks that have a probe.
                let Some(probe) = check.probe() else {
                    running.store(false, Ordering::Release);
                    return;
                };
                let _permit = permits.acquire_owned().await;
                let start = clock.now();
                metrics.record_lateness((start.0 - due).max(0) as u64 * 1000);
                metrics.in_flight.fetch_add(1, Ordering::Relaxed);
                let c = &check.config;
                let key = format!("{}/{}", c.asset, c.name);
                // Boxed: the probe's state machine (the largest of every probe kind) is then
                // allocated only once the permit is held, and a task waiting for its permit
                // stays small; spawning also moves less.
                let outcome = Box::pin(prober.run_check(Some(&key), probe, c.timeout)).await;
                metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
                metrics.record_probe(probe, outcome.status);
                let obs = outcome.into_observation(&c.asset, &c.name, start);
                sink.submit(obs).await;
                running.store(false, Ordering::Release);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: Timestamp = Timestamp(1_767_225_600_123);

    #[test]
    fn a_start_with_many_checks_runs_each_once_in_its_first_interval() {
        // 100,000 checks every 60 s: the spread (100 s) covers the interval, so every first run
        // is the grid tick itself — none runs early and again at its tick.
        let spread = first_run_spread_ms(100_000);
        assert_eq!(spread, 100_000);
        let mut per_second = vec![0u32; 61];
        for i in 0..100_000 {
            let key = format!("a{i}/http");
            let s = Schedule::interval(Duration::from_secs(60), &key, None).unwrap();
            let due = first_due(&s, &key, NOW, spread).unwrap();
            assert_eq!(Some(due), s.next_after(NOW), "{key}");
            per_second[((due.0 - NOW.0) / 1000) as usize] += 1;
        }
        // And the grid spreads them evenly: no second gets more than twice its share.
        assert!(
            per_second.iter().all(|n| *n < 2 * 100_000 / 60),
            "{per_second:?}"
        );
    }

    #[test]
    fn a_long_interval_check_runs_soon_and_a_cron_check_keeps_its_time() {
        let key = "db/backup";
        let s = Schedule::interval(Duration::from_secs(3600), key, None).unwrap();
        let next = s.next_after(NOW).unwrap();
        let due = first_due(&s, key, NOW, first_run_spread_ms(1)).unwrap();
        assert!(due.0 > NOW.0 && due.0 <= NOW.0 + 5_000, "{due:?}");
        assert!(due <= next);
        // Ten thousand new checks: up to 10 s.
        let due = first_due(&s, key, NOW, first_run_spread_ms(10_000)).unwrap();
        assert!(due.0 > NOW.0 && due.0 <= NOW.0 + 10_000 && due <= next);
        let c = Schedule::cron("0 3 * * *").unwrap();
        assert_eq!(first_due(&c, key, NOW, 5_000), c.next_after(NOW));
    }
}
