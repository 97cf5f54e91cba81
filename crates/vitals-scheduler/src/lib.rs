//! The running part between probes and storage.
//!
//! - [`scheduler`]: one timer loop over a heap of due times; each due check runs as its own task
//!   bounded by a global semaphore and its timeout. A check never runs twice at once: a tick
//!   that finds the previous run still going is skipped, logged and counted.
//! - [`pipeline`]: every observation — probed or pushed — goes through [`pipeline::Pipeline`]:
//!   committed to the store first, then applied to the [`state::LiveState`] (so the state never
//!   shows what is not stored), in batches.
//! - [`state`]: the in-memory current picture (latest observation per check) that the API,
//!   UI and `/metrics` read without touching the database.
//! - [`metrics`]: counters and the schedule-lateness histogram.

pub mod housekeeping;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod scheduler;
pub mod sla_watch;
pub mod state;
pub mod watch;

pub use metrics::Metrics;
pub use model::{Model, ModelHandle};
pub use pipeline::{HealthOp, HealthOpError, Pipeline, PushReport, Pushed};
pub use scheduler::{ScheduledCheck, Scheduler};
pub use state::LiveState;

/// Wall-clock now, in epoch milliseconds. The only clock read of the running system; the pure
/// core receives time as a value.
pub fn now() -> vitals_core::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    vitals_core::Timestamp(ms)
}

/// Wall-clock now in epoch microseconds (for lateness measurement).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
