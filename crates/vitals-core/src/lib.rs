//! The pure core of Vitals: domain types and the math every other crate shares.
//!
//! Flow: `probe/push → observation → store → health → rules → alert → outbox → notifier`.
//! This crate holds the *nouns* of that flow — [`Observation`], [`Status`], [`Component`],
//! the check specifications ([`spec`]) and schedule math ([`schedule`]) — and nothing that
//! does I/O: no sockets, no files, no clock reads ([`clock`] is the handle the running parts are
//! given; nothing here calls it). Time is always passed in as a value, so every
//! function here is deterministic and testable as a pure function.

pub mod alert;
pub mod clock;
pub mod expr;
pub mod health;
pub mod notify;
pub mod observation;
pub mod rules;
pub mod schedule;
pub mod spec;
pub mod time;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use observation::{Component, Observation, Status, Value};
pub use time::Timestamp;
