//! `type = "teams"`: an Adaptive Card to a Microsoft Teams Workflows webhook.
//!
//! The body is the message envelope Workflows' "post to a channel when a webhook request is
//! received" expects: `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard 1.4>}]}`. The card has a
//! coloured title (Attention crit, Warning warn, Good resolved), the reason, a FactSet (asset,
//! check, status, since, group, value, rule), one line per alert when grouped, the failing
//! assets of a population alert, and an "Open in Vitals" button when the alert has a URL.
//! Times use the card's `{{DATE()}}`/`{{TIME()}}` functions, so each reader sees local time.

use crate::http::HttpTarget;
use crate::text::{
    active_for, asset_label, display_status, rfc3339_secs, status_label, summary, truncate,
};
use crate::{Delivered, Notifier, NotifyError};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use vitals_core::notify::{Notification, NotificationKind, TeamsSpec};
use vitals_core::{Status, Timestamp};

const MAX_LISTED: usize = 20;

pub struct TeamsNotifier {
    id: String,
    target: HttpTarget,
}

impl TeamsNotifier {
    pub fn new(id: &str, spec: &TeamsSpec) -> Result<TeamsNotifier, String> {
        Ok(TeamsNotifier {
            id: id.to_string(),
            target: HttpTarget::new(&spec.url, spec.timeout)?,
        })
    }
}

#[async_trait]
impl Notifier for TeamsNotifier {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        let body = serde_json::to_vec(&payload(n))
            .map_err(|e| NotifyError::Permanent(format!("cannot encode message: {e}")))?;
        self.target
            .post_json(self.target.url().clone(), body, HeaderMap::new())
            .await
    }
}

/// Adaptive Card colour names.
fn color(kind: NotificationKind, status: Status) -> &'static str {
    match (kind, status) {
        (NotificationKind::Test, _) => "Accent",
        (NotificationKind::Resolved, _) | (_, Status::Ok) => "Good",
        (NotificationKind::Acknowledged, _) => "Accent",
        (_, Status::Crit) => "Attention",
        (_, Status::Warn) => "Warning",
        (_, Status::Unknown) => "Default",
    }
}

fn when(t: Timestamp) -> String {
    let s = rfc3339_secs(t);
    format!("{{{{DATE({s}, SHORT)}}}} {{{{TIME({s})}}}}")
}

fn fact(title: &str, value: String) -> Value {
    json!({"title": title, "value": truncate(&value, 1000)})
}

/// The JSON body posted to the webhook.
pub fn payload(n: &Notification) -> Value {
    let status = display_status(n);
    let mut body = vec![json!({
        "type": "TextBlock", "text": truncate(&summary(n), 500), "weight": "Bolder",
        "size": "Medium", "color": color(n.kind, status), "wrap": true, "style": "heading"
    })];
    match n.alerts.as_slice() {
        [a] => {
            if !a.reason.is_empty() {
                body.push(
                    json!({"type": "TextBlock", "text": truncate(&a.reason, 2000), "wrap": true}),
                );
            }
            let mut facts = Vec::new();
            if let Some(asset) = asset_label(a) {
                facts.push(fact("Asset", asset));
            }
            if let Some(check) = &a.check {
                facts.push(fact("Check", check.clone()));
            }
            facts.push(fact("Status", status_label(a.status).to_string()));
            facts.push(fact(
                "Since",
                format!("{} ({})", when(a.started), active_for(a, n.created)),
            ));
            if let Some(r) = a.resolved {
                facts.push(fact("Resolved", when(r)));
            }
            if let Some(group) = &a.group {
                facts.push(fact("Group", group.clone()));
            }
            if let Some(v) = a.value {
                facts.push(fact("Value", v.to_string()));
            }
            facts.push(fact("Rule", a.rule.clone()));
            body.push(json!({"type": "FactSet", "facts": facts}));
            if !a.assets.is_empty() {
                let mut list: Vec<String> = a.assets.iter().take(MAX_LISTED).cloned().collect();
                if a.assets.len() > MAX_LISTED {
                    list.push(format!("… and {} more", a.assets.len() - MAX_LISTED));
                }
                body.push(json!({"type": "TextBlock", "wrap": true, "text": truncate(
                    &format!("Failing assets ({}): {}", a.assets.len(), list.join(", ")), 2000)}));
            }
        }
        alerts => {
            let mut items: Vec<Value> = alerts
                .iter()
                .take(MAX_LISTED)
                .map(|a| {
                    let mut text = format!(
                        "**{}** — {} since {}",
                        a.title,
                        status_label(a.status),
                        when(a.started)
                    );
                    if !a.reason.is_empty() {
                        text.push_str(&format!(" — {}", truncate(&a.reason, 200)));
                    }
                    json!({"type": "TextBlock", "wrap": true, "spacing": "Small",
                           "text": format!("- {text}")})
                })
                .collect();
            if alerts.len() > MAX_LISTED {
                items.push(json!({"type": "TextBlock", "wrap": true,
                    "text": format!("… and {} more", alerts.len() - MAX_LISTED)}));
            }
            body.extend(items);
        }
    }
    body.push(
        json!({"type": "TextBlock", "text": format!("Notification {}", n.id),
        "isSubtle": true, "size": "Small", "wrap": true}),
    );
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if let Some(url) = n.alerts.first().and_then(|a| a.url.as_ref()) {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open in Vitals", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }]
    })
}

impl crate::Build for vitals_core::notify::TeamsSpec {
    fn build(&self, id: &str) -> Result<std::sync::Arc<dyn crate::Notifier>, String> {
        TeamsNotifier::new(id, self).map(|n| std::sync::Arc::new(n) as _)
    }
}
