//! `[[rule]]` and `[[maintenance]]`: when observations become alerts, who hears of it, and
//! when nobody should.

use crate::de::{array_of_tables, deserialize};
use crate::{ConfigError, ID_RULE};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use vitals_core::alert::{Policy, ReminderAt};
use vitals_core::health::{AlarmQuery, HISTORY_KEEP};
use vitals_core::notify::NotificationKind;
use vitals_core::rules::{Condition, Selector, Trigger};
use vitals_core::spec::duration;
use vitals_core::Status;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    #[serde(with = "duration")]
    pub after: Duration,
    pub notifiers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flapping {
    pub changes: usize,
    #[serde(with = "duration")]
    pub window: Duration,
}

/// `[[rule]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    // Which checks.
    #[serde(default)]
    pub assets: Vec<String>,
    #[serde(default)]
    pub asset_prefixes: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub checks: Vec<String>,
    /// Assets in these groups are never selected.
    #[serde(default)]
    pub exclude_groups: Vec<String>,
    // What is bad.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// `status` rules: `crit` (default) or `warn` (warn or worse).
    #[serde(default)]
    pub status: Option<String>,
    /// `threshold` rules: the value and its limits.
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub above: Option<f64>,
    #[serde(default)]
    pub below: Option<f64>,
    /// `population` rules: the four criteria of `/health_alarm/{group}/{test}/`.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub test: Option<String>,
    #[serde(default)]
    pub score: Option<i64>,
    #[serde(default)]
    pub aggregate_percent: Option<i64>,
    #[serde(default)]
    pub repetition: Option<usize>,
    #[serde(default)]
    pub repetition_percent: Option<i64>,
    /// `consistent` rules: the component compared across the selected checks (an http
    /// check's `capture`; default `version`) …
    #[serde(default)]
    pub capture: Option<String>,
    /// … and the value every one of them must have (without it: they must agree).
    #[serde(default)]
    pub expected: Option<String>,
    // How much bad.
    #[serde(default = "one")]
    pub count: usize,
    #[serde(default)]
    pub of_last: Option<usize>,
    #[serde(default, rename = "for", with = "duration::option")]
    pub for_duration: Option<Duration>,
    #[serde(default = "one")]
    pub recover: usize,
    /// Severity of the alert: `warn` or `crit` (default: crit).
    #[serde(default)]
    pub severity: Option<String>,
    // Who hears of it.
    #[serde(default)]
    pub notifiers: Vec<String>,
    #[serde(default, with = "duration::option")]
    pub reminder: Option<Duration>,
    /// `interval` (default): a reminder exactly every `reminder`; `observed`: only when an
    /// observation confirms the alert and more than `reminder` has passed, in rounded hours.
    #[serde(default)]
    pub reminder_at: Option<String>,
    /// The kinds of notification this rule sends (default: all of them).
    #[serde(default)]
    pub send: Option<Vec<String>>,
    /// The e-mail template family of this rule's firing, reminder and escalation mails (e.g.
    /// `aktin_offline`); other kinds use the generic templates.
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub escalate: Vec<EscalationStep>,
    #[serde(default)]
    pub flapping: Option<Flapping>,
    /// Notifications of this rule created within this window go out as one.
    #[serde(default, with = "duration::option")]
    pub group_wait: Option<Duration>,
}

fn default_kind() -> String {
    "status".into()
}
fn one() -> usize {
    1
}

/// What a rule evaluates.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Per check: a condition on each observation and a trigger.
    Check {
        condition: Condition,
        trigger: Trigger,
    },
    /// Over a population (`health-scoring.md`): fires when the alarm answer becomes non-empty.
    Population {
        group: String,
        test: String,
        query: AlarmQuery,
    },
    /// Over the selected checks: the value of component `component` in their latest
    /// observations must agree (or equal `expected`); the alert names who differs.
    Consistent {
        component: String,
        expected: Option<String>,
        trigger: Trigger,
    },
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    pub selector: Selector,
    pub kind: RuleKind,
    pub severity: Status,
    pub policy: Policy,
    pub group_wait: Duration,
    /// E-mail template family (`template = "…"`), if any.
    pub template: Option<String>,
}

impl RuleConfig {
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) -> Option<Rule> {
        let before = errors.len();
        let err = |errors: &mut Vec<ConfigError>, key: &str, msg: String| {
            errors.push(ConfigError::new(
                if key.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}.{key}")
                },
                msg,
            ))
        };
        if !crate::valid_id(&self.id) {
            err(errors, "id", format!("{:?} {ID_RULE}", self.id));
        }
        let severity = match self.severity.as_deref() {
            None | Some("crit") => Status::Crit,
            Some("warn") => Status::Warn,
            Some(s) => {
                err(errors, "severity", format!("{s:?} is not warn or crit"));
                Status::Crit
            }
        };
        if self.count == 0 {
            err(errors, "count", "must be at least 1".into());
        }
        if self.recover == 0 {
            err(errors, "recover", "must be at least 1".into());
        }
        let of_last = self.of_last.unwrap_or(self.count);
        if of_last < self.count {
            err(
                errors,
                "of_last",
                format!("must be at least count ({})", self.count),
            );
        }
        if self.for_duration.is_some() && (self.of_last.is_some() || self.count != 1) {
            err(
                errors,
                "for",
                "give either `for` or count/of_last, not both".into(),
            );
        }
        let trigger = Trigger {
            count: self.count.max(1),
            of_last: of_last.max(1),
            for_duration: self.for_duration,
            recover: self.recover.max(1),
        };
        let population_keys = [
            ("group", self.group.is_some()),
            ("test", self.test.is_some()),
            ("score", self.score.is_some()),
            ("aggregate_percent", self.aggregate_percent.is_some()),
            ("repetition", self.repetition.is_some()),
            ("repetition_percent", self.repetition_percent.is_some()),
        ];
        let consistent_keys = [
            ("capture", self.capture.is_some()),
            ("expected", self.expected.is_some()),
        ];
        if self.kind != "consistent" {
            for (k, set) in consistent_keys {
                if set {
                    err(errors, k, "only for kind = \"consistent\"".into());
                }
            }
        }
        let kind = match self.kind.as_str() {
            "consistent" => {
                for (k, set) in population_keys {
                    if set {
                        err(errors, k, "only for kind = \"population\"".into());
                    }
                }
                for (k, set) in [
                    ("value", self.value.is_some()),
                    ("above", self.above.is_some()),
                    ("below", self.below.is_some()),
                    ("status", self.status.is_some()),
                ] {
                    if set {
                        err(errors, k, "not for kind = \"consistent\"".into());
                    }
                }
                let component = self.capture.clone().unwrap_or_else(|| "version".into());
                if !crate::valid_id(&component) {
                    err(errors, "capture", format!("{component:?} {ID_RULE}"));
                }
                if self
                    .expected
                    .as_deref()
                    .is_some_and(|e| e.trim().is_empty())
                {
                    err(errors, "expected", "must not be empty".into());
                }
                Some(RuleKind::Consistent {
                    component,
                    expected: self.expected.clone(),
                    trigger,
                })
            }
            "status" => {
                let at_least = match self.status.as_deref() {
                    None | Some("crit") => Status::Crit,
                    Some("warn") => Status::Warn,
                    Some(s) => {
                        err(errors, "status", format!("{s:?} is not warn or crit"));
                        Status::Crit
                    }
                };
                for (k, set) in population_keys {
                    if set {
                        err(errors, k, "only for kind = \"population\"".into());
                    }
                }
                Some(RuleKind::Check {
                    condition: Condition::Status { at_least },
                    trigger,
                })
            }
            "threshold" => {
                let Some(value) = self.value.clone() else {
                    err(
                        errors,
                        "value",
                        "is required for kind = \"threshold\" (e.g. \"total_ms\")".into(),
                    );
                    return None;
                };
                if self.above.is_none() && self.below.is_none() {
                    err(
                        errors,
                        "",
                        "a threshold rule needs `above` or `below`".into(),
                    );
                }
                Some(RuleKind::Check {
                    condition: Condition::Threshold {
                        value,
                        above: self.above,
                        below: self.below,
                    },
                    trigger,
                })
            }
            "population" => {
                let (Some(group), Some(test), Some(score)) =
                    (self.group.clone(), self.test.clone(), self.score)
                else {
                    err(
                        errors,
                        "",
                        "a population rule needs group, test and score".into(),
                    );
                    return None;
                };
                let query = AlarmQuery {
                    score,
                    aggregate_percent: self.aggregate_percent.unwrap_or(0),
                    repetition: self.repetition.unwrap_or(1),
                    repetition_percent: self.repetition_percent.unwrap_or(100),
                };
                if query.repetition == 0 || query.repetition > HISTORY_KEEP {
                    err(errors, "repetition", format!("must be 1–{HISTORY_KEEP}"));
                }
                for (k, v) in [
                    ("aggregate_percent", query.aggregate_percent),
                    ("repetition_percent", query.repetition_percent),
                ] {
                    if !(0..=100).contains(&v) {
                        err(errors, k, "must be 0–100".into());
                    }
                }
                Some(RuleKind::Population { group, test, query })
            }
            other => {
                err(
                    errors,
                    "kind",
                    format!(
                        "unknown rule kind {other:?} (known: status, threshold, population, consistent)"
                    ),
                );
                None
            }
        };
        let mut escalate: Vec<(Duration, Vec<String>)> = Vec::new();
        for (i, step) in self.escalate.iter().enumerate() {
            if step.notifiers.is_empty() {
                err(
                    errors,
                    &format!("escalate[{i}].notifiers"),
                    "must name at least one notifier".into(),
                );
            }
            if escalate.last().is_some_and(|(a, _)| *a > step.after) {
                err(
                    errors,
                    &format!("escalate[{i}].after"),
                    "steps must be in increasing order of `after`".into(),
                );
            }
            escalate.push((step.after, step.notifiers.clone()));
        }
        if let Some(f) = &self.flapping {
            if f.changes < 2 {
                err(errors, "flapping.changes", "must be at least 2".into());
            }
        }
        if self.reminder.is_some_and(|r| r < Duration::from_secs(60)) {
            err(errors, "reminder", "must be at least 1m".into());
        }
        let reminder_at = match self.reminder_at.as_deref() {
            None | Some("interval") => ReminderAt::Interval,
            Some("observed") => ReminderAt::Observed,
            Some(x) => {
                err(
                    errors,
                    "reminder_at",
                    format!("{x:?} is not \"interval\" or \"observed\""),
                );
                ReminderAt::Interval
            }
        };
        let send = self.send.as_ref().map(|list| {
            let mut kinds = Vec::new();
            for (i, k) in list.iter().enumerate() {
                match NotificationKind::parse(k) {
                    Some(kind) => kinds.push(kind),
                    None => err(
                        errors,
                        &format!("send[{i}]"),
                        format!(
                            "{k:?} is not a notification kind (firing, reminder, escalation, resolved, acknowledged, flapping)"
                        ),
                    ),
                }
            }
            kinds
        });
        if let Some(t) = &self.template {
            let ok = !t.is_empty()
                && t.len() <= 64
                && t.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                err(
                    errors,
                    "template",
                    format!("{t:?} must be 1–64 of a-z, 0-9, '_' and '-' (e.g. \"aktin_offline\")"),
                );
            }
        }
        if errors.len() > before {
            return None;
        }
        Some(Rule {
            id: self.id.clone(),
            description: self.description.clone(),
            selector: Selector {
                assets: self.assets.clone(),
                asset_prefixes: self.asset_prefixes.clone(),
                groups: self.groups.clone(),
                labels: self.labels.clone(),
                checks: self.checks.clone(),
                exclude_groups: self.exclude_groups.clone(),
            },
            kind: kind?,
            severity,
            policy: Policy {
                notifiers: self.notifiers.clone(),
                reminder: self.reminder,
                escalate,
                flapping: self.flapping.as_ref().map(|f| (f.changes, f.window)),
                reminder_at,
                send,
            },
            group_wait: self.group_wait.unwrap_or_default(),
            template: self.template.clone(),
        })
    }
}

/// A cron expression, parsed when the configuration is read: consumers cannot meet a bad one.
#[derive(Debug, Clone)]
pub struct Cron {
    expr: String,
    schedule: vitals_core::schedule::Schedule,
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, vitals_core::schedule::ScheduleError> {
        Ok(Cron {
            expr: expr.to_string(),
            schedule: vitals_core::schedule::Schedule::cron(expr)?,
        })
    }

    pub fn schedule(&self) -> &vitals_core::schedule::Schedule {
        &self.schedule
    }

    pub fn as_str(&self) -> &str {
        &self.expr
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expr = String::deserialize(d)?;
        Cron::parse(&expr).map_err(serde::de::Error::custom)
    }
}

/// `[[maintenance]]`: recurring windows during which matching alerts are recorded, not sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub id: String,
    /// When each window starts (cron, UTC), parsed once when the file is read.
    pub cron: Cron,
    #[serde(with = "duration")]
    pub duration: Duration,
    #[serde(default)]
    pub assets: Vec<String>,
    #[serde(default)]
    pub asset_prefixes: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub checks: Vec<String>,
    /// Only alerts of these rules (empty: all).
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl MaintenanceConfig {
    pub fn selector(&self) -> Selector {
        Selector {
            assets: self.assets.clone(),
            asset_prefixes: self.asset_prefixes.clone(),
            groups: self.groups.clone(),
            labels: self.labels.clone(),
            checks: self.checks.clone(),
            exclude_groups: Vec::new(),
        }
    }

    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if !crate::valid_id(&self.id) {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!("{:?} {ID_RULE}", self.id),
            ));
        }
        if self.duration.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.duration"),
                "must be more than 0s",
            ));
        }
    }

    /// Whether `now` falls in a window: the latest start at or before `now` is less than
    /// `duration` ago.
    pub fn active(&self, now: vitals_core::Timestamp) -> bool {
        let s = self.cron.schedule();
        let d = self.duration.as_millis() as i64;
        // The first start strictly after (now - duration) is at or before now ⇔ a window
        // [start, start + duration) covers now.
        s.next_after(vitals_core::Timestamp(now.0 - d))
            .is_some_and(|start| start.0 <= now.0)
    }
}

/// Every `[[rule]]`, followed by the rules made elsewhere (`extra`: checks' `alert` shorthands,
/// agents' own alerts). Returns the rules and, per rule path, the notifiers it names (checked
/// against `[[notifier]]` once those are parsed).
pub(crate) fn parse(
    root: &mut toml::Table,
    extra: Vec<(String, toml::Value)>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<Rule>, Vec<(String, Vec<String>)>) {
    let mut rules_out = Vec::new();
    let mut rule_ids: HashMap<String, String> = HashMap::new();
    let mut rule_refs: Vec<(String, Vec<String>)> = Vec::new();
    let mut rule_tables = array_of_tables(root, "rule", errors);
    rule_tables.extend(extra);
    for (path, v) in rule_tables {
        if let Some(rc) = deserialize::<RuleConfig>(v, &path, errors) {
            if let Some(prev) = rule_ids.insert(rc.id.clone(), path.clone()) {
                errors.push(ConfigError::new(
                    format!("{path}.id"),
                    format!("duplicate rule id {:?} (also {prev})", rc.id),
                ));
            }
            let named = rc
                .notifiers
                .iter()
                .chain(rc.escalate.iter().flat_map(|e| e.notifiers.iter()))
                .cloned()
                .collect();
            rule_refs.push((path.clone(), named));
            if let Some(r) = rc.validate(&path, errors) {
                rules_out.push(r);
            }
        }
    }
    (rules_out, rule_refs)
}

/// Every `[[maintenance]]` that deserializes, validated.
pub(crate) fn parse_maintenance(
    root: &mut toml::Table,
    errors: &mut Vec<ConfigError>,
) -> Vec<MaintenanceConfig> {
    let mut maintenance = Vec::new();
    for (path, v) in array_of_tables(root, "maintenance", errors) {
        if let Some(m) = deserialize::<MaintenanceConfig>(v, &path, errors) {
            m.validate(&path, errors);
            maintenance.push(m);
        }
    }
    maintenance
}
