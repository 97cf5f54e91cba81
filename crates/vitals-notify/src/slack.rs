//! `type = "slack"`: a message to a Slack incoming webhook.
//!
//! The payload has a `text` fallback (shown in notifications and by old clients) and Block Kit
//! `blocks`: a header (`:red_circle: FIRING: …`), then for one alert a section with the fields
//! asset, check, status and since plus the reason, or for a group one line per alert, the
//! failing assets of a population alert, and a context line with the rule, the link to Vitals
//! and the notification id. The emoji carries the colour: red crit, orange warn, white unknown,
//! a check mark when resolved. Field lengths are cut to Slack's limits so that a long reason
//! cannot get the whole message rejected.

use crate::http::HttpTarget;
use crate::text::{active_for, asset_label, display_status, status_label, summary, truncate};
use crate::{Delivered, Notifier, NotifyError};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use vitals_core::notify::{AlertView, Notification, NotificationKind, SlackSpec};
use vitals_core::Status;

/// Alerts listed one per line in a grouped message; the rest are counted.
const MAX_LISTED: usize = 20;

pub struct SlackNotifier {
    id: String,
    target: HttpTarget,
}

impl SlackNotifier {
    pub fn new(id: &str, spec: &SlackSpec) -> Result<SlackNotifier, String> {
        Ok(SlackNotifier {
            id: id.to_string(),
            target: HttpTarget::new(&spec.url, spec.timeout)?,
        })
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
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

/// The emoji a message starts with.
pub fn emoji(kind: NotificationKind, status: Status) -> &'static str {
    match kind {
        NotificationKind::Resolved => ":white_check_mark:",
        NotificationKind::Acknowledged => ":eyes:",
        NotificationKind::Flapping => ":arrows_counterclockwise:",
        NotificationKind::Test => ":test_tube:",
        _ => status_emoji(status),
    }
}

fn status_emoji(status: Status) -> &'static str {
    match status {
        Status::Crit => ":red_circle:",
        Status::Warn => ":large_orange_circle:",
        Status::Unknown => ":white_circle:",
        Status::Ok => ":large_green_circle:",
    }
}

/// Slack's three control characters in `mrkdwn` text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn field(title: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": truncate(&format!("*{title}*\n{value}"), 2000)})
}

/// `<!date^…>` renders in each reader's own time zone; the fallback is UTC.
fn slack_date(t: vitals_core::Timestamp) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        t.millis().div_euclid(1000),
        t.to_rfc3339()
    )
}

/// The JSON body posted to the webhook.
pub fn payload(n: &Notification) -> Value {
    let status = display_status(n);
    let icon = emoji(n.kind, status);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "emoji": true,
                 "text": truncate(&format!("{icon} {}", summary(n)), 150)}
    })];
    match n.alerts.as_slice() {
        [a] => {
            let mut fields = Vec::new();
            if let Some(asset) = asset_label(a) {
                fields.push(field("Asset", &esc(&asset)));
            }
            if let Some(check) = &a.check {
                fields.push(field("Check", &esc(check)));
            }
            fields.push(field(
                "Status",
                &format!("{} {}", status_emoji(a.status), status_label(a.status)),
            ));
            fields.push(field(
                "Since",
                &format!("{} ({})", slack_date(a.started), active_for(a, n.created)),
            ));
            if let Some(group) = &a.group {
                fields.push(field("Group", &esc(group)));
            }
            if let Some(v) = a.value {
                fields.push(field("Value", &v.to_string()));
            }
            blocks.push(json!({"type": "section", "fields": fields}));
            if !a.reason.is_empty() {
                blocks.push(json!({"type": "section",
                    "text": {"type": "mrkdwn", "text": truncate(&esc(&a.reason), 3000)}}));
            }
            if !a.assets.is_empty() {
                blocks.push(assets_block(a));
            }
        }
        alerts => {
            let mut lines: Vec<String> = alerts
                .iter()
                .take(MAX_LISTED)
                .map(|a| {
                    let mut line = format!(
                        "{} *{}* — since {}",
                        status_emoji(a.status),
                        esc(&a.title),
                        slack_date(a.started)
                    );
                    if !a.reason.is_empty() {
                        line.push_str(&format!(" — {}", esc(&truncate(&a.reason, 200))));
                    }
                    line
                })
                .collect();
            if alerts.len() > MAX_LISTED {
                lines.push(format!("… and {} more", alerts.len() - MAX_LISTED));
            }
            blocks.push(json!({"type": "section",
                "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), 3000)}}));
        }
    }
    let mut context = Vec::new();
    if let Some(a) = n.alerts.first() {
        if let Some(url) = &a.url {
            context.push(format!("<{}|Open in Vitals>", esc(url)));
        }
        context.push(format!("rule `{}`", esc(&a.rule)));
    }
    context.push(format!("notification `{}`", esc(&n.id)));
    blocks.push(json!({"type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(&context.join(" · "), 3000)}]}));
    json!({
        "text": truncate(&format!("{icon} {}", summary(n)), 3000),
        "blocks": blocks,
    })
}

fn assets_block(a: &AlertView) -> Value {
    let mut list: Vec<String> = a
        .assets
        .iter()
        .take(MAX_LISTED)
        .map(|s| format!("`{}`", esc(s)))
        .collect();
    if a.assets.len() > MAX_LISTED {
        list.push(format!("… and {} more", a.assets.len() - MAX_LISTED));
    }
    json!({"type": "section", "text": {"type": "mrkdwn",
        "text": truncate(&format!("*Failing assets ({})*\n{}", a.assets.len(), list.join(", ")), 3000)}})
}

impl crate::Build for vitals_core::notify::SlackSpec {
    fn build(&self, id: &str) -> Result<std::sync::Arc<dyn crate::Notifier>, String> {
        SlackNotifier::new(id, self).map(|n| std::sync::Arc::new(n) as _)
    }
}
