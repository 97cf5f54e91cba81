//! Rules → alerts → outbox → notifiers.
//!
//! - [`engine`]: evaluates rules on observations and time, runs the alert lifecycle, applies
//!   silences, maintenance windows and dependencies, and turns what must be said into outbox
//!   items. Pure decisions, committed by the pipeline together with the observations.
//! - [`outbox`]: the delivery worker that takes due outbox items, groups them, sends them
//!   through the notifiers, and records every outcome (retrying transient failures with backoff).

pub mod engine;

pub use engine::{AckError, AssetInfo, Assets, Engine, EngineOp, OpAnswer, Output, SilenceDraft};
pub mod outbox;

pub use outbox::{Deliver, DeliverError, Delivered};
