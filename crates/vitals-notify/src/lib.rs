//! Notification channels: the last arrow of `… → alert → outbox → notifier → log`.
//!
//! The alert engine decides *that* somebody must be told and writes a
//! [`Notification`] into the durable outbox; the outbox calls
//! [`Notifier::send`] until it gets a [`Delivered`] or a permanent [`NotifyError`]. This crate
//! only knows how to render one notification for one channel and hand it over:
//!
//! | `type` | module | what is sent |
//! |---|---|---|
//! | `email` | [`email`] | multipart text + HTML mail over SMTP (implicit TLS, STARTTLS or plain), minijinja templates |
//! | `slack` | [`slack`] | incoming-webhook JSON with `text` and Block Kit `blocks` |
//! | `teams` | [`teams`] | Workflows webhook message with an Adaptive Card 1.4 |
//! | `webhook` | [`webhook`] | the notification itself as JSON, optionally HMAC-SHA256 signed |
//! | `alertmanager` | [`alertmanager`] | `POST /api/v2/alerts` of a Prometheus Alertmanager |
//! | `logfile` | [`logfile`] | one JSON line, fsync'd, in a size-rotated file |
//!
//! Invariants:
//! - A notifier keeps no delivery state: retries, deduplication and the delivery log belong to
//!   the outbox. The notification id is passed on (`X-Vitals-Notification`) so receivers can
//!   drop a resend.
//! - Errors are classified once, here: [`NotifyError::Transient`] (connection refused, timeout,
//!   HTTP 5xx/408/429, SMTP 4xx) is retried, [`NotifyError::Permanent`] (other 4xx, SMTP 5xx,
//!   no recipients) is not.
//! - No secret ever appears in an error or in [`Delivered`]: SMTP passwords, webhook secrets
//!   and webhook URLs (Slack and Teams carry their token in the URL) are shown as scheme and
//!   host only.
//! - TLS is rustls with the ring provider, for SMTP and HTTP alike.

pub mod alertmanager;
pub mod email;
mod http;
pub mod logfile;
pub mod slack;
pub mod teams;
mod text;
pub mod webhook;

use async_trait::async_trait;
use std::sync::Arc;
use vitals_core::notify::{Notification, NotifierSpec};

/// One channel a notification can be delivered to, built from a `[[notifier]]` table.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The `[[notifier]]` id.
    fn id(&self) -> &str;

    /// Delivers one notification. Transient errors (connection refused, timeout, 5xx, 429) are
    /// retried by the outbox; permanent ones (4xx other than 408/429, bad address, auth
    /// rejected) are recorded and not retried.
    async fn send(&self, n: &Notification) -> Result<Delivered, NotifyError>;
}

/// What a successful delivery reached, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Mail addresses, or the redacted endpoint (`https://hooks.slack.com`), or the file path.
    pub recipients: Vec<String>,
    /// The receiver's answer, e.g. `"250 2.0.0 OK"` or `"HTTP 200"`.
    pub detail: String,
}

/// Why a delivery failed; the message is meant for the delivery log and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying later: the receiver was unreachable, slow, overloaded or rate-limiting.
    #[error("{0}")]
    Transient(String),
    /// Retrying the same notification cannot succeed: it was rejected as it is.
    #[error("{0}")]
    Permanent(String),
}

impl NotifyError {
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Transient(_))
    }

    pub fn message(&self) -> &str {
        match self {
            NotifyError::Transient(m) | NotifyError::Permanent(m) => m,
        }
    }
}

/// Builds the notifier for one `[[notifier]]` table. Fails, naming the problem, when the spec
/// does not validate, a template does not compile or the HTTP client cannot be set up; nothing
/// is contacted yet.
pub fn build(id: &str, spec: &NotifierSpec) -> Result<Arc<dyn Notifier>, String> {
    let errs = spec.validate();
    if !errs.is_empty() {
        let list: Vec<String> = errs.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        return Err(format!(
            "notifier {id:?} ({}): {}",
            spec.type_name(),
            list.join("; ")
        ));
    }
    build_kind(id, spec).map_err(|e| format!("notifier {id:?} ({}): {e}", spec.type_name()))
}

/// What a notifier module gives the builder: its notifier, built from its spec type.
/// Implemented next to each notifier; [`build`] dispatches over the registered kinds
/// (`vitals_core::notifier_kinds!`), so nothing here lists them.
pub(crate) trait Build {
    fn build(&self, id: &str) -> Result<Arc<dyn Notifier>, String>;
}

macro_rules! build_kind {
    ($($variant:ident($spec:ty) = $name:literal,)*) => {
        fn build_kind(id: &str, spec: &NotifierSpec) -> Result<Arc<dyn Notifier>, String> {
            match spec {
                $(NotifierSpec::$variant(s) => Build::build(s, id),)*
            }
        }
    };
}

vitals_core::notifier_kinds!(build_kind);
