//! Schedule math: when does a check run next? Pure functions of a time passed in.
//!
//! Interval schedules are anchored to the epoch plus a per-check phase (a stable hash of the
//! check's key spread over the interval), so ticks never drift and 10,000 checks with the same
//! interval are spread evenly instead of firing together. Cron schedules use `croner`.

use crate::Timestamp;
use chrono::Utc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `every`, at `phase` past each multiple of `every` since the epoch.
    Interval { every_ms: i64, phase_ms: i64 },
    /// A cron expression (5 fields, or 6 with seconds), evaluated in UTC.
    Cron(Box<croner::Cron>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("interval must be at least 1s, got {0:?}")]
    IntervalTooShort(Duration),
    #[error("invalid cron expression {expr:?}: {reason}")]
    Cron { expr: String, reason: String },
}

impl Schedule {
    /// An interval schedule whose phase is derived from `key` (e.g. `asset/check`), limited to
    /// `max_jitter` (the whole interval when `None`).
    pub fn interval(
        every: Duration,
        key: &str,
        max_jitter: Option<Duration>,
    ) -> Result<Self, ScheduleError> {
        if every < Duration::from_secs(1) {
            return Err(ScheduleError::IntervalTooShort(every));
        }
        let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let spread = max_jitter
            .map(|j| {
                i64::try_from(j.as_millis())
                    .unwrap_or(i64::MAX)
                    .min(every_ms)
            })
            .unwrap_or(every_ms)
            .max(1);
        let phase_ms = (fnv1a(key.as_bytes()) % spread as u64) as i64;
        Ok(Schedule::Interval { every_ms, phase_ms })
    }

    pub fn cron(expr: &str) -> Result<Self, ScheduleError> {
        let cron = croner::Cron::new(expr)
            .with_seconds_optional()
            .parse()
            .map_err(|e| ScheduleError::Cron {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Interval { every_ms, phase_ms } => {
                let k = (t.0 - phase_ms).div_euclid(*every_ms) + 1;
                Some(Timestamp(k * every_ms + phase_ms))
            }
            Schedule::Cron(c) => c
                .find_next_occurrence(&t.to_datetime().with_timezone(&Utc), false)
                .ok()
                .map(|dt| Timestamp::from_datetime(&dt)),
        }
    }

    /// The nominal period, used to bound how late a tick may run and for staleness defaults.
    pub fn nominal_period(&self, now: Timestamp) -> Duration {
        match self {
            Schedule::Interval { every_ms, .. } => Duration::from_millis(*every_ms as u64),
            Schedule::Cron(_) => {
                let a = self.next_after(now).unwrap_or(now);
                let b = self.next_after(a).unwrap_or(a);
                Duration::from_millis((b.0 - a.0).max(1000) as u64)
            }
        }
    }
}

/// FNV-1a: stable across runs and platforms (unlike `DefaultHasher`), so phases survive restarts.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn interval_ticks_do_not_drift() {
        let s = Schedule::interval(Duration::from_secs(10), "a/b", None).unwrap();
        let Schedule::Interval { phase_ms, .. } = s else {
            unreachable!()
        };
        let mut t = Timestamp(1_700_000_000_000);
        let first = s.next_after(t).unwrap();
        for i in 0..100 {
            let n = s.next_after(t).unwrap();
            assert_eq!(n.0, first.0 + i * 10_000);
            assert_eq!((n.0 - phase_ms).rem_euclid(10_000), 0);
            // Running late (t slightly after the tick) still lands on the grid.
            t = Timestamp(n.0 + 37);
        }
    }

    #[test]
    fn cron_next_is_on_the_minute() {
        let s = Schedule::cron("*/5 * * * *").unwrap();
        let t = Timestamp::parse("2026-01-01T10:02:30Z").unwrap();
        assert_eq!(
            s.next_after(t).unwrap(),
            Timestamp::parse("2026-01-01T10:05:00Z").unwrap()
        );
        assert!(Schedule::cron("61 * * * *").is_err());
        assert_eq!(s.nominal_period(t), Duration::from_secs(300));
    }

    #[test]
    fn too_short_interval_is_an_error() {
        assert!(Schedule::interval(Duration::from_millis(500), "x", None).is_err());
    }

    proptest! {
        #[test]
        fn next_is_strictly_after_and_within_one_period(t in 0i64..4_000_000_000_000, secs in 1u64..100_000, key in ".*") {
            let s = Schedule::interval(Duration::from_secs(secs), &key, None).unwrap();
            let n = s.next_after(Timestamp(t)).unwrap();
            prop_assert!(n.0 > t);
            prop_assert!(n.0 - t <= secs as i64 * 1000);
        }
    }
}
