//! The one clock. The composition root makes one (`SystemClock` in production, a `ManualClock`
//! in tests) and passes it to every part that reads the time; the pure core takes time as a value
//! and never calls a clock itself.
//!
//! Only the domain's time goes through here: observation times, alert and reminder times, due
//! times of checks and jobs, retention cut-offs. How long something took (probe phases,
//! lateness) and whether a worker is alive are measured on the machine's clocks directly.

use crate::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// What every part holds.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock, in epoch milliseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemClock::now()
    }
}

impl SystemClock {
    /// The wall clock read directly: for what runs outside the composition root (command-line
    /// tools, the agent process, tests and benchmarks).
    pub fn now() -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }

    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that moves only when told to: tests set the time and step over hours at once.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(at.0)))
    }

    /// Starts at the wall clock's now.
    pub fn starting_now() -> Arc<ManualClock> {
        Self::new(SystemClock::now())
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) -> Timestamp {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.fetch_add(ms, Ordering::SeqCst).saturating_add(ms))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(1_000));
        let shared: SharedClock = c.clone();
        assert_eq!(shared.now(), Timestamp(1_000));
        assert_eq!(c.advance(Duration::from_secs(2)), Timestamp(3_000));
        assert_eq!(shared.now(), Timestamp(3_000));
        c.set(Timestamp(10));
        assert_eq!(shared.now(), Timestamp(10));
        assert!(SystemClock::now().0 > 1_600_000_000_000);
    }
}
