//! Are the workers alive? Every long-running task — pipeline, scheduler, outbox, fleet
//! collector, SLA follower — registers here. A worker that ends (a panic, or a return while the
//! process is not stopping) is dead; one that stops beating for longer than its stall limit is
//! stalled. `/monitor` names either as `FAIL`, and the process supervisor (`vitals serve`)
//! exits non-zero so that systemd (or whatever runs Vitals) starts it again: a monitor that
//! silently stopped watching is the one failure it must never have.
//!
//! Test builds (debug assertions) can make a worker fail on purpose through the environment
//! variable `VITALS_FAILPOINTS` (comma-separated names, see [`failpoint`]); release builds
//! contain no failpoints.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A worker's heartbeat: the epoch ms of its latest sign of life.
#[derive(Clone, Debug)]
pub struct Beat(Arc<AtomicI64>);

impl Beat {
    pub fn now(&self) {
        self.0
            .store(vitals_core::SystemClock::now().0, Ordering::Relaxed);
    }

    /// A beat nobody watches (tests, tools).
    pub fn detached() -> Beat {
        Beat(Arc::new(AtomicI64::new(0)))
    }
}

/// Reads a worker's latest sign of life (epoch ms).
type LastBeat = Box<dyn Fn() -> i64 + Send + Sync>;

struct Entry {
    name: &'static str,
    last: LastBeat,
    stall_after: Option<Duration>,
    died: Arc<Mutex<Option<String>>>,
}

/// The registry of workers.
#[derive(Default)]
pub struct Workers {
    entries: Mutex<Vec<Entry>>,
    stopping: Arc<AtomicBool>,
}

impl Workers {
    /// Registers `name` (replacing an earlier registration of the same name, e.g. a follower
    /// restarted on reload); `stall_after`: how long it may go without a beat.
    pub fn register(&self, name: &'static str, stall_after: Option<Duration>) -> Beat {
        let beat = Arc::new(AtomicI64::new(vitals_core::SystemClock::now().0));
        let read = beat.clone();
        self.register_fn(
            name,
            stall_after,
            Box::new(move || read.load(Ordering::Relaxed)),
        );
        Beat(beat)
    }

    /// Registers a worker that keeps its heartbeat elsewhere; `last` reads it (epoch ms).
    pub fn register_fn(&self, name: &'static str, stall_after: Option<Duration>, last: LastBeat) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.retain(|x| x.name != name);
        e.push(Entry {
            name,
            last,
            stall_after,
            died: Arc::new(Mutex::new(None)),
        });
    }

    /// Forgets a worker that was stopped on purpose (e.g. `[sla]` removed on reload).
    pub fn forget(&self, name: &'static str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.name != name);
    }

    /// Watches `task`: if it ends before the process is stopping, the worker is dead.
    pub fn watch(&self, name: &'static str, task: tokio::task::JoinHandle<()>) {
        let died = {
            let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match e.iter().find(|x| x.name == name) {
                Some(x) => x.died.clone(),
                None => return,
            }
        };
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let why = match task.await {
                Ok(()) => "it ended".to_string(),
                Err(e) if e.is_panic() => {
                    let p = e.into_panic();
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    format!("it panicked: {msg}")
                }
                // Aborted: only shutdown and reloads abort workers.
                Err(_) => return,
            };
            if !stopping.load(Ordering::Relaxed) {
                *died.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
        });
    }

    /// The process is stopping: workers ending now are not dead.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Every worker, `Ok` or why it failed.
    pub fn report(&self, now_ms: i64) -> Vec<(&'static str, Result<(), String>)> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.iter()
            .map(|x| {
                if let Some(why) = x.died.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    return (x.name, Err(format!("worker died: {why}")));
                }
                let last = (x.last)();
                match x.stall_after {
                    Some(limit) if now_ms - last > limit.as_millis() as i64 => (
                        x.name,
                        Err(format!(
                            "worker stalled: no sign of life for {}s",
                            (now_ms - last) / 1000
                        )),
                    ),
                    _ => (x.name, Ok(())),
                }
            })
            .collect()
    }

    /// The first failed worker, if any.
    pub fn failed(&self, now_ms: i64) -> Option<(&'static str, String)> {
        self.report(now_ms)
            .into_iter()
            .find_map(|(n, r)| r.err().map(|e| (n, e)))
    }
}

/// Whether the failpoint `name` is switched on (debug builds only, `VITALS_FAILPOINTS`).
pub fn failpoint(name: &str) -> bool {
    #[cfg(debug_assertions)]
    {
        static ON: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        ON.get_or_init(|| {
            std::env::var("VITALS_FAILPOINTS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default()
        })
        .iter()
        .any(|x| x == name)
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = name;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_worker_is_dead_and_a_quiet_one_stalled() {
        let w = Workers::default();
        let _b = w.register("pipeline", Some(Duration::from_secs(30)));
        w.watch("pipeline", tokio::spawn(async { panic!("boom") }));
        let quiet = w.register("outbox", Some(Duration::from_millis(10)));
        let fine = w.register("fleet", None);
        fine.now();
        let _ = quiet;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = w.report(vitals_core::SystemClock::now().0);
        assert!(
            matches!(&r[0], ("pipeline", Err(e)) if e.contains("panicked: boom")),
            "{r:?}"
        );
        assert!(
            matches!(&r[1], ("outbox", Err(e)) if e.contains("stalled")),
            "{r:?}"
        );
        assert_eq!(r[2], ("fleet", Ok(())));
    }

    #[tokio::test]
    async fn ending_while_stopping_is_not_dying() {
        let w = Workers::default();
        let _b = w.register("outbox", None);
        w.stopping();
        w.watch("outbox", tokio::spawn(async {}));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(w.failed(vitals_core::SystemClock::now().0).is_none());
    }
}
