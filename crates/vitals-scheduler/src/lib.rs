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
//! - [`history`]: each check's last 50 results and uptime counts per hour and day, in memory.
//! - [`metrics`]: counters and the schedule-lateness histogram.

pub mod cluster;
pub mod history;
pub mod housekeeping;
pub mod liveness;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod scheduler;
pub mod sla_watch;
pub mod state;
pub mod watch;

pub use metrics::{IngestLimit, Metrics};
pub use model::{Model, ModelHandle};
pub use pipeline::{HealthOp, HealthOpError, Origin, Pipeline, PushError, PushReport, Pushed};
pub use scheduler::{ScheduledCheck, Scheduler, Sink};
pub use state::{ConfiguredCheck, LiveState};
