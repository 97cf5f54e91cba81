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
    probes: [[AtomicU64; 4]; ProbeSpec::TYPES.len()],
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
    /// Pushes refused per limit (see [`IngestLimit`]).
    ingest_refused: [AtomicU64; IngestLimit::ALL.len()],
    /// Probe observations waiting for the store to take them again.
    pub observations_buffered: AtomicU64,
    /// Probe observations dropped because the wait buffer was full.
    pub observations_dropped: AtomicU64,
    /// While the store refuses writes: since when (epoch ms) and why.
    store_failure: Mutex<Option<(i64, String)>>,
}

/// A limit on what pushes may create or carry (`[ingest]`, a token's quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IngestLimit {
    /// `[ingest] max_assets`: assets created by pushes, in all.
    Assets,
    /// `[[token]] max_assets`: assets created by one token's pushes.
    TokenAssets,
    /// `[ingest] max_checks_per_asset`.
    ChecksPerAsset,
    /// `[ingest] max_values` per result.
    Values,
    /// `[ingest] max_duration` of a result.
    Duration,
    /// A result for a check Vitals polls, which does not accept pushes.
    PolledCheck,
    /// `[ingest] max_batch` results per request.
    Batch,
}

impl IngestLimit {
    pub const ALL: [IngestLimit; 7] = [
        IngestLimit::Assets,
        IngestLimit::TokenAssets,
        IngestLimit::ChecksPerAsset,
        IngestLimit::Values,
        IngestLimit::Duration,
        IngestLimit::PolledCheck,
        IngestLimit::Batch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IngestLimit::Assets => "ingest.max_assets",
            IngestLimit::TokenAssets => "token.max_assets",
            IngestLimit::ChecksPerAsset => "ingest.max_checks_per_asset",
            IngestLimit::Values => "ingest.max_values",
            IngestLimit::Duration => "ingest.max_duration",
            IngestLimit::PolledCheck => "polled_check",
            IngestLimit::Batch => "ingest.max_batch",
        }
    }
}

impl Metrics {
    pub fn refused(&self, limit: IngestLimit) {
        self.ingest_refused[limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused_count(&self, limit: IngestLimit) -> u64 {
        self.ingest_refused[limit as usize].load(Ordering::Relaxed)
    }

    /// The store refused a write: remembered (with the time of the first refusal in a row)
    /// until a write succeeds again.
    pub fn store_failed(&self, now_ms: i64, why: String) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        self.last_store_error_ms.store(now_ms, Ordering::Relaxed);
        let mut f = self.store_failure.lock().unwrap_or_else(|e| e.into_inner());
        let since = f.as_ref().map_or(now_ms, |(s, _)| *s);
        *f = Some((since, why));
    }

    /// A write succeeded; returns how long the store had been failing (ms), if it was.
    pub fn store_ok(&self, now_ms: i64) -> Option<i64> {
        let mut f = self.store_failure.lock().unwrap_or_else(|e| e.into_inner());
        f.take().map(|(since, _)| now_ms - since)
    }

    /// Since when (epoch ms) and why the store refuses writes, while it does.
    pub fn store_failure(&self) -> Option<(i64, String)> {
        self.store_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn record_probe(&self, spec: &ProbeSpec, status: Status) {
        if let Some(row) = self.probes.get(spec.type_index()) {
            row[status.code() as usize].fetch_add(1, Ordering::Relaxed);
        }
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

    /// Every registered probe type has its row in `/metrics`, counted under its own name: one
    /// probe of each type (the example configuration has one of each) lands in its row only.
    #[test]
    fn every_registered_type_has_a_metrics_row() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/vitals.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let env = |name: &str| {
            Some(if name.ends_with("_URL") {
                "https://hooks.example.org/secret-path".to_string()
            } else {
                format!("example-secret-of-{name}")
            })
        };
        let config = vitals_config::Config::parse(&text, &env).unwrap();
        let m = Metrics::default();
        for t in ProbeSpec::TYPES {
            let spec = config
                .checks
                .iter()
                .filter_map(|c| c.kind.probe())
                .find(|p| p.type_name() == t)
                .unwrap_or_else(|| panic!("examples/vitals.toml has no {t} check"));
            let before = m.probe_counts();
            m.record_probe(spec, Status::Warn);
            let changed: Vec<_> = m
                .probe_counts()
                .into_iter()
                .zip(before)
                .filter(|(after, before)| after != before)
                .map(|(after, _)| after)
                .collect();
            assert_eq!(changed, vec![(t, Status::Warn, 1)], "the row of {t}");
        }
        assert_eq!(m.total_probes(), ProbeSpec::TYPES.len() as u64);
    }
}
