//! `[[rule]]` and `[[maintenance]]`: when observations become alerts, who hears of it, and
//! when nobody should.

use crate::{ConfigError, ID_RULE};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use vitals_core::alert::Policy;
use vitals_core::health::{AlarmQuery, HISTORY_KEEP};
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
        let kind = match self.kind.as_str() {
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
                    format!("unknown rule kind {other:?} (known: status, threshold, population)"),
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
            },
            group_wait: self.group_wait.unwrap_or_default(),
        })
    }
}

/// `[[maintenance]]`: recurring windows during which matching alerts are recorded, not sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub id: String,
    /// When each window starts (cron, UTC).
    pub cron: String,
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
        if let Err(e) = vitals_core::schedule::Schedule::cron(&self.cron) {
            errors.push(ConfigError::new(format!("{path}.cron"), e.to_string()));
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
        let Ok(s) = vitals_core::schedule::Schedule::cron(&self.cron) else {
            return false;
        };
        let d = self.duration.as_millis() as i64;
        // The first start strictly after (now - duration) is at or before now ⇔ a window
        // [start, start + duration) covers now.
        s.next_after(vitals_core::Timestamp(now.0 - d))
            .is_some_and(|start| start.0 <= now.0)
    }
}
