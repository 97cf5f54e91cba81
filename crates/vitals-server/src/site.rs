//! What the operator configured for people rather than for probes, replaced whole on reload:
//! the status pages, and the notifiers (listed for people, and testable from the UI and API).
//!
//! Test messages go through the same [`Deliver`] the outbox uses — the real channel — but not
//! through the outbox: a test belongs to no alert and is not retried; its outcome is answered.

use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use vitals_alert::{Deliver, DeliverError};
use vitals_config::{NotifierConfig, StatusPageConfig};
use vitals_core::notify::Notification;

/// A configured notifier as people see it (no secrets).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifierInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it delivers: SMTP server and recipients, URL scheme and host, or file.
    pub target: String,
}

/// The outcome of a test message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestOutcome {
    pub notifier: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The test notification's id (receivers see it, e.g. `X-Vitals-Notification`).
    pub message_id: String,
    pub delivered: bool,
    /// Not delivered, and worth trying again later (unreachable, timeout, 5xx, 429).
    pub transient: bool,
    /// The receiver's answer (`250 2.0.0 OK`, `HTTP 200`) or why it failed.
    pub detail: String,
    pub recipients: Vec<String>,
}

/// A test that does not end within this long is reported as failed (the channels' own
/// timeouts are shorter; this bounds the request whatever happens).
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Site {
    status_pages: RwLock<Arc<Vec<StatusPageConfig>>>,
    notifiers: RwLock<Arc<Vec<NotifierInfo>>>,
    deliver: RwLock<Option<Arc<dyn Deliver>>>,
    public_url: RwLock<Option<String>>,
    /// The integration engine (`[[source_set]]`, `[[pipeline]]`, `[[job]]`), when configured.
    engine: RwLock<Option<Arc<vitals_engine::Engine>>>,
    /// Checks' schedules and the admins' overrides of them (absent: a router without an app).
    schedules: RwLock<Option<Arc<vitals_engine::schedules::CheckSchedules>>>,
}

impl Site {
    /// Sets the running integration engine (at start and when a reload changes it).
    pub fn set_engine(&self, engine: Option<Arc<vitals_engine::Engine>>) {
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }

    pub fn set_schedules(&self, s: Option<Arc<vitals_engine::schedules::CheckSchedules>>) {
        *self.schedules.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub fn schedules(&self) -> Option<Arc<vitals_engine::schedules::CheckSchedules>> {
        self.schedules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn engine(&self) -> Option<Arc<vitals_engine::Engine>> {
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the status pages (at start and on reload).
    pub fn set_status_pages(&self, pages: Vec<StatusPageConfig>) {
        *self.status_pages.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pages);
    }

    pub fn status_pages(&self) -> Arc<Vec<StatusPageConfig>> {
        self.status_pages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn status_page(&self, slug: &str) -> Option<StatusPageConfig> {
        self.status_pages().iter().find(|p| p.slug == slug).cloned()
    }

    /// Replaces the notifiers and what delivers to them (at start and on reload).
    pub fn set_notifiers(
        &self,
        configs: &[NotifierConfig],
        deliver: Option<Arc<dyn Deliver>>,
        public_url: Option<String>,
    ) {
        let list = configs
            .iter()
            .map(|c| NotifierInfo {
                id: c.id.clone(),
                kind: c.spec.type_name().to_string(),
                target: c.spec.target(),
            })
            .collect();
        *self.notifiers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
        *self.deliver.write().unwrap_or_else(|e| e.into_inner()) = deliver;
        *self.public_url.write().unwrap_or_else(|e| e.into_inner()) = public_url;
    }

    pub fn notifiers(&self) -> Arc<Vec<NotifierInfo>> {
        self.notifiers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends a test message through notifier `id` on behalf of `by`; `None` when there is no
    /// such notifier.
    pub async fn test_notifier(
        &self,
        id: &str,
        by: &str,
        now: vitals_core::Timestamp,
    ) -> Option<TestOutcome> {
        let info = self.notifiers().iter().find(|n| n.id == id).cloned()?;
        let deliver = self
            .deliver
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let url = self
            .public_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let message = Notification::test(id, by, now, url);
        let mut out = TestOutcome {
            notifier: info.id,
            kind: info.kind,
            message_id: message.id.clone(),
            delivered: false,
            transient: false,
            detail: String::new(),
            recipients: Vec::new(),
        };
        let Some(deliver) = deliver else {
            out.detail = "notifications are not delivered by this process".into();
            return Some(out);
        };
        match tokio::time::timeout(TEST_TIMEOUT, deliver.deliver(id, &message)).await {
            Ok(Ok(d)) => {
                out.delivered = true;
                out.detail = d.detail;
                out.recipients = d.recipients;
            }
            Ok(Err(DeliverError::Transient(e))) => {
                out.transient = true;
                out.detail = e;
            }
            Ok(Err(DeliverError::Permanent(e) | DeliverError::Unconfigured(e))) => out.detail = e,
            Err(_) => {
                out.transient = true;
                out.detail = format!("no answer within {}s", TEST_TIMEOUT.as_secs());
            }
        }
        Some(out)
    }
}
