//! Process-wide counters, read by `/metrics`. Atomics only: recording never blocks a probe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use vitals_core::spec::ProbeSpec;
use vitals_core::Status;

/// Upper bounds (seconds) of the schedule-lateness histogram buckets.
pub const LATENESS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How many recent lateness samples are kept for exact percentiles.
const RECENT: usize = 65_536;

#[derive(Debug, Default)]
pub struct Metrics {
    /// [probe type][status code] → count of completed probes.
    probes: [[AtomicU64; 4]; 5],
    pub observations_stored: AtomicU64,
    pub store_errors: AtomicU64,
    pub skipped_ticks: AtomicU64,
    pub in_flight: AtomicI64,
    lateness_buckets: [AtomicU64; LATENESS_BUCKETS.len()],
    lateness_count: AtomicU64,
    lateness_sum_us: AtomicU64,
    recent_lateness_us: Mutex<VecDeque<u64>>,
    /// Epoch ms of the scheduler loop's latest turn (liveness for `/monitor`).
    pub scheduler_heartbeat_ms: AtomicI64,
    /// Epoch ms of the pipeline's latest failed store write (0: none).
    pub last_store_error_ms: AtomicI64,
}

fn type_index(spec: &ProbeSpec) -> usize {
    match spec {
        ProbeSpec::Http(_) => 0,
        ProbeSpec::Tcp(_) => 1,
        ProbeSpec::Tls(_) => 2,
        ProbeSpec::Dns(_) => 3,
        ProbeSpec::Exec(_) => 4,
    }
}

impl Metrics {
    pub fn record_probe(&self, spec: &ProbeSpec, status: Status) {
        self.probes[type_index(spec)][status.code() as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `(type, status, count)` for every combination.
    pub fn probe_counts(&self) -> Vec<(&'static str, Status, u64)> {
        let mut out = Vec::new();
        for (i, t) in ProbeSpec::TYPES.iter().enumerate() {
            for s in Status::ALL {
                out.push((
                    *t,
                    s,
                    self.probes[i][s.code() as usize].load(Ordering::Relaxed),
                ));
            }
        }
        out
    }

    pub fn total_probes(&self) -> u64 {
        self.probes
            .iter()
            .flat_map(|r| r.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn record_lateness(&self, lateness_us: u64) {
        let secs = lateness_us as f64 / 1e6;
        for (i, bound) in LATENESS_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.lateness_buckets[i].fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        self.lateness_count.fetch_add(1, Ordering::Relaxed);
        self.lateness_sum_us
            .fetch_add(lateness_us, Ordering::Relaxed);
        let mut recent = self
            .recent_lateness_us
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(lateness_us);
    }

    /// Cumulative histogram `(le, count)` (without `+Inf`), total count and sum in seconds.
    pub fn lateness_histogram(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cum = 0;
        let buckets = LATENESS_BUCKETS
            .iter()
            .zip(self.lateness_buckets.iter())
            .map(|(le, c)| {
                cum += c.load(Ordering::Relaxed);
                (*le, cum)
            })
            .collect();
        (
            buckets,
            self.lateness_count.load(Ordering::Relaxed),
            self.lateness_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }

    /// Exact nearest-rank percentiles (µs) over the most recent runs: `(count, p50, p99, max)`.
    pub fn recent_lateness(&self) -> (usize, u64, u64, u64) {
        let mut v: Vec<u64> = self
            .recent_lateness_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return (0, 0, 0, 0);
        }
        v.sort_unstable();
        let rank = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        (v.len(), rank(50.0), rank(99.0), v[v.len() - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_histogram_is_cumulative_and_percentiles_nearest_rank() {
        let m = Metrics::default();
        for us in 1..=100u64 {
            m.record_lateness(us * 1000); // 1..100 ms
        }
        let (buckets, count, sum) = m.lateness_histogram();
        assert_eq!(count, 100);
        assert!((sum - 5.05).abs() < 1e-9);
        assert_eq!(buckets[0], (0.001, 1));
        assert_eq!(buckets[6], (0.1, 100));
        let (n, p50, p99, max) = m.recent_lateness();
        assert_eq!((n, p50, p99, max), (100, 50_000, 99_000, 100_000));
    }
}
