//! The configured notifiers, as the outbox worker's [`Deliver`]. Replaced whole on reload.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use vitals_alert::{Deliver, DeliverError, Delivered};
use vitals_config::NotifierConfig;
use vitals_core::notify::Notification;
use vitals_notify::{Notifier, NotifyError};

#[derive(Default)]
pub struct Notifiers(RwLock<HashMap<String, Arc<dyn Notifier>>>);

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

    pub fn set(&self, map: HashMap<String, Arc<dyn Notifier>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = map;
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
            return Err(DeliverError::Permanent(format!(
                "no notifier {notifier:?} is configured"
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
