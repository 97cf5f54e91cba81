//! The configured notifiers, as the outbox worker's [`Deliver`]. Replaced whole on reload.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use vitals_alert::{Deliver, DeliverError, Delivered};
use vitals_config::NotifierConfig;
use vitals_core::notify::Notification;
use vitals_notify::{Notifier, NotifyError};

#[derive(Default)]
pub struct Notifiers(
    RwLock<HashMap<String, Arc<dyn Notifier>>>,
    RwLock<Vec<String>>,
);

impl Notifiers {
    /// Builds every notifier; all problems at once.
    pub fn build(configs: &[NotifierConfig]) -> Result<HashMap<String, Arc<dyn Notifier>>, String> {
        let mut map = HashMap::new();
        let mut errors = Vec::new();
        for c in configs {
            match vitals_notify::build(&c.id, &c.spec) {
                Ok(n) => {
                    map.insert(c.id.clone(), n);
                }
                Err(e) => errors.push(format!("notifier {:?}: {e}", c.id)),
            }
        }
        if errors.is_empty() {
            Ok(map)
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Replaces the notifiers; `refresh` are those that must hear of firing alerts again
    /// periodically (Alertmanager).
    pub fn set(&self, map: HashMap<String, Arc<dyn Notifier>>, configs: &[NotifierConfig]) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = map;
        *self.1.write().unwrap_or_else(|e| e.into_inner()) = configs
            .iter()
            .filter(|c| matches!(c.spec, vitals_core::notify::NotifierSpec::Alertmanager(_)))
            .map(|c| c.id.clone())
            .collect();
    }

    /// Re-sends every firing alert to the notifiers that forget (Alertmanager), directly: this
    /// is a state refresh, not a new notification, so it is not logged in the outbox.
    pub async fn refresh(
        &self,
        views: Vec<(Vec<String>, vitals_core::notify::AlertView)>,
        now: vitals_core::Timestamp,
    ) {
        let ids = self.1.read().unwrap_or_else(|e| e.into_inner()).clone();
        for id in ids {
            let alerts: Vec<_> = views
                .iter()
                .filter(|(to, _)| to.contains(&id))
                .map(|(_, v)| v.clone())
                .collect();
            let Some(n) = self.get(&id) else { continue };
            if alerts.is_empty() {
                continue;
            }
            let note = Notification {
                id: format!("refresh-{}", now.0),
                notifier: id.clone(),
                kind: vitals_core::notify::NotificationKind::Firing,
                alerts,
                created: now,
            };
            if let Err(e) = n.send(&note).await {
                tracing::warn!(notifier = %id, error = %e, "refreshing firing alerts failed");
            }
        }
    }

    /// Sends `n` to every configured notifier directly, not through the outbox (for news
    /// about Vitals itself when the outbox cannot be written); failures are logged.
    pub async fn send_all(&self, n: &Notification) {
        let all: Vec<(String, Arc<dyn Notifier>)> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, x) in all {
            let mut n = n.clone();
            n.notifier = id.clone();
            match x.send(&n).await {
                Ok(_) => {
                    tracing::info!(notifier = %id, title = %n.alerts.first().map_or("", |a| a.title.as_str()), "told directly")
                }
                Err(e) => tracing::warn!(notifier = %id, error = %e, "could not tell directly"),
            }
        }
    }

    /// The configured notifier ids.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn get(&self, id: &str) -> Option<Arc<dyn Notifier>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

#[async_trait::async_trait]
impl Deliver for Notifiers {
    async fn deliver(&self, notifier: &str, n: &Notification) -> Result<Delivered, DeliverError> {
        let Some(x) = self.get(notifier) else {
            return Err(DeliverError::Unconfigured(format!(
                "no notifier {notifier:?} is configured (removed or renamed?); kept until it is configured again"
            )));
        };
        match x.send(n).await {
            Ok(d) => Ok(Delivered {
                recipients: d.recipients,
                detail: d.detail,
            }),
            Err(NotifyError::Transient(e)) => Err(DeliverError::Transient(e)),
            Err(NotifyError::Permanent(e)) => Err(DeliverError::Permanent(e)),
        }
    }
}
