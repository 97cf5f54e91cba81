//! `type = "alertmanager"`: hands alerts to a Prometheus Alertmanager (`POST /api/v2/alerts`).
//!
//! One Alertmanager alert per [`AlertView`]:
//! - `labels`: the alert's own labels, overridden by the spec's extra `labels`, overridden by
//!   the identifying ones — `alertname` (the rule id), `vitals_alert_id`, `severity` (`warn`,
//!   `crit`, …) and, when known, `asset`, `check`, `group`. Identity labels win so that no
//!   label of an asset can merge two alerts into one. Label names that Prometheus does not
//!   accept are rewritten (`site-id` → `site_id`); empty values are left out.
//! - `annotations`: `summary` = title, `description` = reason, plus `asset_name`, `value`,
//!   `failing_assets` when present.
//! - `startsAt` = when the alert started; `endsAt` = the resolved time for a `resolved`
//!   notification, 5 minutes after sending for a `test` one, absent otherwise; `generatorURL` = the alert's Vitals URL when known.
//!
//! Alertmanager resolves an alert by itself when it has not been posted again within its
//! `resolve_timeout` (5 minutes by default), like Prometheus, which re-sends every minute:
//! the reminders of a firing alert must come at least that often for it to stay active there.

use crate::http::HttpTarget;
use crate::{Delivered, Notifier, NotifyError};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use vitals_core::notify::{AlertView, AlertmanagerSpec, Notification, NotificationKind};

/// How long a test alert stays active in Alertmanager.
pub const TEST_ALERT_MS: i64 = 5 * 60_000;

pub struct AlertmanagerNotifier {
    id: String,
    target: HttpTarget,
    endpoint: reqwest::Url,
    labels: BTreeMap<String, String>,
}

impl AlertmanagerNotifier {
    pub fn new(id: &str, spec: &AlertmanagerSpec) -> Result<AlertmanagerNotifier, String> {
        let target = HttpTarget::new(&spec.url, spec.timeout)?;
        let base = spec.url.trim_end_matches('/');
        let endpoint = reqwest::Url::parse(&format!("{base}/api/v2/alerts"))
            .map_err(|e| format!("url: cannot append /api/v2/alerts ({e})"))?;
        Ok(AlertmanagerNotifier {
            id: id.to_string(),
            target,
            endpoint,
            labels: spec.labels.clone(),
        })
    }
}

#[async_trait]
impl Notifier for AlertmanagerNotifier {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        let body = serde_json::to_vec(&payload(n, &self.labels))
            .map_err(|e| NotifyError::Permanent(format!("cannot encode alerts: {e}")))?;
        let mut d = self
            .target
            .post_json(self.endpoint.clone(), body, HeaderMap::new())
            .await?;
        d.detail = format!("{} ({} alert(s))", d.detail, n.alerts.len());
        Ok(d)
    }
}

/// `site-id` → `site_id`, `9x` → `_9x`: Prometheus label names are `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn label_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The label set of one alert (see the module documentation for precedence).
pub fn labels(a: &AlertView, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in a.labels.iter().chain(extra) {
        out.insert(label_name(k), v.clone());
    }
    out.insert("alertname".into(), a.rule.clone());
    out.insert("vitals_alert_id".into(), a.alert_id.to_string());
    out.insert("severity".into(), a.status.as_str().to_string());
    for (k, v) in [
        ("asset", &a.asset),
        ("check", &a.check),
        ("group", &a.group),
    ] {
        match v {
            Some(v) => out.insert(k.to_string(), v.clone()),
            None => out.remove(k),
        };
    }
    out.retain(|_, v| !v.is_empty());
    out
}

/// The JSON array posted to `/api/v2/alerts`.
pub fn payload(n: &Notification, extra: &BTreeMap<String, String>) -> Value {
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            let mut annotations = Map::new();
            annotations.insert("summary".into(), json!(a.title));
            if !a.reason.is_empty() {
                annotations.insert("description".into(), json!(a.reason));
            }
            if let Some(name) = &a.asset_name {
                annotations.insert("asset_name".into(), json!(name));
            }
            if let Some(v) = a.value {
                annotations.insert("value".into(), json!(v.to_string()));
            }
            if !a.assets.is_empty() {
                annotations.insert("failing_assets".into(), json!(a.assets.join(", ")));
            }
            let mut alert = Map::new();
            alert.insert("labels".into(), json!(labels(a, extra)));
            alert.insert("annotations".into(), Value::Object(annotations));
            alert.insert("startsAt".into(), json!(a.started.to_rfc3339()));
            if n.kind == NotificationKind::Resolved {
                // A resolved notification without a resolved time ends now.
                let end = a.resolved.unwrap_or(n.created);
                alert.insert("endsAt".into(), json!(end.to_rfc3339()));
            } else if n.kind == NotificationKind::Test {
                // A test alert shows up (and is routed) like any other, then ends by itself.
                let end = n.created.add_millis(TEST_ALERT_MS);
                alert.insert("endsAt".into(), json!(end.to_rfc3339()));
            }
            if let Some(url) = &a.url {
                alert.insert("generatorURL".into(), json!(url));
            }
            Value::Object(alert)
        })
        .collect();
    Value::Array(alerts)
}

impl crate::Build for vitals_core::notify::AlertmanagerSpec {
    fn build(&self, id: &str) -> Result<std::sync::Arc<dyn crate::Notifier>, String> {
        AlertmanagerNotifier::new(id, self).map(|n| std::sync::Arc::new(n) as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_core::{Status, Timestamp};

    fn view() -> AlertView {
        AlertView {
            alert_id: 9,
            rule: "node-down".into(),
            title: "n1 is CRIT".into(),
            status: Status::Crit,
            state: "firing".into(),
            asset: Some("n1".into()),
            asset_name: None,
            check: None,
            group: Some("aktin".into()),
            assets: vec![],
            reason: "no import for 3 days".into(),
            value: None,
            labels: [
                ("site-id".to_string(), "17".to_string()),
                ("alertname".to_string(), "spoof".to_string()),
                ("check".to_string(), "spoof".to_string()),
                ("blank".to_string(), String::new()),
            ]
            .into(),
            started: Timestamp(1_714_637_700_000),
            resolved: None,
            url: None,
            contacts: vec![],
            template: None,
            details: Default::default(),
        }
    }

    #[test]
    fn identity_labels_win_and_names_are_sanitized() {
        let extra = [("env".to_string(), "prod".to_string())].into();
        let l = labels(&view(), &extra);
        let expected: BTreeMap<String, String> = [
            ("alertname", "node-down"),
            ("asset", "n1"),
            ("env", "prod"),
            ("group", "aktin"),
            ("severity", "crit"),
            ("site_id", "17"),
            ("vitals_alert_id", "9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(l, expected);
        assert_eq!(label_name("9lives"), "_9lives");
    }

    #[test]
    fn ends_only_when_resolved() {
        let mut n = Notification {
            id: "x".into(),
            notifier: "am".into(),
            kind: NotificationKind::Firing,
            alerts: vec![view()],
            created: Timestamp(1_714_637_760_000),
        };
        let p = payload(&n, &BTreeMap::new());
        assert_eq!(p[0]["startsAt"], "2024-05-02T08:15:00.000Z");
        assert!(p[0].get("endsAt").is_none());
        assert_eq!(p[0]["annotations"]["summary"], "n1 is CRIT");
        assert_eq!(p[0]["annotations"]["description"], "no import for 3 days");
        n.kind = NotificationKind::Resolved;
        n.alerts[0].resolved = Some(Timestamp(1_714_637_730_000));
        let p = payload(&n, &BTreeMap::new());
        assert_eq!(p[0]["endsAt"], "2024-05-02T08:15:30.000Z");
    }
}
