//! The alert engine: observations in, alert changes and notifications out.
//!
//! Owned by the pipeline worker, which calls it for every round of committed-to-be observations
//! and once a second ([`Engine::tick`]); everything it decides is returned as an [`Output`] that
//! the worker commits in the *same* transaction as the observations. So an alert never exists
//! without the observation that raised it, and a notification is in the durable outbox before
//! anyone is told the alert fired.
//!
//! The engine does no I/O; what it needs to know about assets comes through [`Assets`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;
use vitals_config::{MaintenanceConfig, Rule, RuleKind};
use vitals_core::alert::{Alert, AlertState, Policy, Send, Silence, Transition};
use vitals_core::health::AlarmQuery;
use vitals_core::notify::{AlertView, Notification};
use vitals_core::rules::{Selector, Tracker, Verdict};
use vitals_core::{Observation, Status, Timestamp};
use vitals_store::OutboxItem;

/// What the engine needs to know about an asset.
#[derive(Debug, Clone, Default)]
pub struct AssetInfo {
    pub name: String,
    pub groups: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub parents: Vec<String>,
    /// E-mail contacts (metadata `contacts`, minus metadata `unsubscribed`).
    pub contacts: Vec<String>,
    /// This asset's own reminder interval (metadata `reminder`, e.g. a node's re-notify
    /// interval); replaces the rule's for rules that send reminders at all.
    pub reminder: Option<Duration>,
}

pub trait Assets {
    fn info(&self, asset: &str) -> Option<AssetInfo>;
    /// Whether the asset is down (its worst current status is crit).
    fn is_down(&self, asset: &str) -> bool;
    /// `(failing assets, population size)` of a population alarm, from memory.
    fn population(&self, group: &str, test: &str, q: &AlarmQuery) -> (Vec<String>, usize);
}

/// Everything one call decided, to be committed together.
#[derive(Debug, Default)]
pub struct Output {
    pub alerts: Vec<Alert>,
    pub events: Vec<(i64, Transition)>,
    pub outbox: Vec<OutboxItem>,
    pub silences: Vec<Silence>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.events.is_empty()
            && self.outbox.is_empty()
            && self.silences.is_empty()
    }

    fn changed(&mut self, a: &Alert) {
        if let Some(x) = self.alerts.iter_mut().find(|x| x.id == a.id) {
            *x = a.clone();
        } else {
            self.alerts.push(a.clone());
        }
    }
}

/// A silence as asked for through the API.
#[derive(Debug, Clone)]
pub struct SilenceDraft {
    pub matchers: Selector,
    pub rules: Vec<String>,
    pub starts: Timestamp,
    pub ends: Timestamp,
    pub author: String,
    pub comment: String,
}

/// The rule every configuration without `[[rule]]` gets: any check going crit alerts, to every
/// notifier.
pub fn default_rule(notifiers: Vec<String>) -> Rule {
    Rule {
        id: "default".into(),
        description: Some("any check that goes crit".into()),
        selector: Selector::default(),
        kind: RuleKind::Check {
            condition: vitals_core::rules::Condition::Status {
                at_least: Status::Crit,
            },
            trigger: vitals_core::rules::Trigger::default(),
        },
        severity: Status::Crit,
        policy: Policy {
            notifiers,
            ..Policy::default()
        },
        group_wait: Duration::ZERO,
    }
}

pub struct Engine {
    rules: Vec<Rule>,
    maintenance: Vec<MaintenanceConfig>,
    base_url: Option<String>,
    trackers: HashMap<String, Tracker>,
    open: HashMap<String, Alert>,
    silences: Vec<Silence>,
    next_alert: i64,
    next_silence: i64,
    /// Fire/resolve history per key across alert instances (flapping spans instances).
    flaps: HashMap<String, (Vec<Timestamp>, bool)>,
}

fn key(rule: &str, a: &str, b: &str) -> String {
    format!("{rule}|{a}|{b}")
}

impl Engine {
    pub fn new(
        rules: Vec<Rule>,
        maintenance: Vec<MaintenanceConfig>,
        base_url: Option<String>,
        open_alerts: Vec<Alert>,
        silences: Vec<Silence>,
        (max_alert, max_silence): (i64, i64),
    ) -> Engine {
        let mut e = Engine {
            rules,
            maintenance,
            base_url,
            trackers: HashMap::new(),
            open: HashMap::new(),
            silences,
            next_alert: max_alert + 1,
            next_silence: max_silence + 1,
            flaps: HashMap::new(),
        };
        e.restore(open_alerts);
        e
    }

    fn restore(&mut self, open_alerts: Vec<Alert>) {
        self.open.clear();
        self.trackers.clear();
        for a in open_alerts {
            if matches!(a.state, AlertState::Firing | AlertState::Acknowledged) {
                self.trackers.insert(a.key.clone(), Tracker::firing());
            }
            self.next_alert = self.next_alert.max(a.id + 1);
            self.open.insert(a.key.clone(), a);
        }
    }

    /// After a failed commit: forget what was decided and start again from what is stored.
    pub fn resync(&mut self, open_alerts: Vec<Alert>, silences: Vec<Silence>, ids: (i64, i64)) {
        self.silences = silences;
        self.next_alert = self.next_alert.max(ids.0 + 1);
        self.next_silence = self.next_silence.max(ids.1 + 1);
        self.restore(open_alerts);
    }

    /// New rules on reload. Open alerts of rules that are gone resolve.
    pub fn set_config(
        &mut self,
        rules: Vec<Rule>,
        maintenance: Vec<MaintenanceConfig>,
        now: Timestamp,
        out: &mut Output,
    ) {
        self.rules = rules;
        self.maintenance = maintenance;
        let ids: HashSet<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        let gone: Vec<String> = self
            .open
            .values()
            .filter(|a| !ids.contains(a.rule.as_str()))
            .map(|a| a.key.clone())
            .collect();
        for k in gone {
            if let Some(mut a) = self.open.remove(&k) {
                let (t, _) = a.resolve(
                    &Policy::default(),
                    now,
                    "rule removed from the configuration",
                );
                out.events.extend(t.into_iter().map(|t| (a.id, t)));
                out.changed(&a);
            }
            self.trackers.remove(&k);
        }
        self.trackers
            .retain(|k, _| ids.contains(k.split('|').next().unwrap_or("")));
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Why notifications of this alert are held back now, if they are.
    fn suppression(&self, a: &Alert, assets: &dyn Assets, now: Timestamp) -> Option<String> {
        let info = a
            .asset
            .as_deref()
            .and_then(|x| assets.info(x))
            .unwrap_or_default();
        let asset = a.asset.as_deref().unwrap_or("");
        let check = a.check.as_deref().unwrap_or("");
        for s in &self.silences {
            if s.active(now)
                && (s.rules.is_empty() || s.rules.contains(&a.rule))
                && (a.asset.is_some() || s.matchers.assets.is_empty())
                && s.matchers.matches(asset, &info.groups, &info.labels, check)
            {
                return Some(format!(
                    "silenced by silence {} ({}: {})",
                    s.id, s.author, s.comment
                ));
            }
        }
        for m in &self.maintenance {
            if (m.rules.is_empty() || m.rules.contains(&a.rule))
                && m.selector()
                    .matches(asset, &info.groups, &info.labels, check)
                && m.active(now)
            {
                return Some(format!("in maintenance window {}", m.id));
            }
        }
        // Dependencies: a down parent (or grandparent) explains the child.
        let mut seen = HashSet::new();
        let mut todo: Vec<String> = info.parents.clone();
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            if assets.is_down(&p) {
                return Some(format!("suppressed: parent {p} is down"));
            }
            if let Some(pi) = assets.info(&p) {
                todo.extend(pi.parents);
            }
        }
        None
    }

    fn view(&self, a: &Alert, assets: &dyn Assets) -> AlertView {
        let info = a.asset.as_deref().and_then(|x| assets.info(x));
        let name = info.as_ref().map(|i| i.name.clone());
        let title = match (&a.asset, &a.check, &a.group) {
            (Some(asset), Some(check), _) => format!(
                "{}/{check} is {}",
                name.clone().unwrap_or_else(|| asset.clone()),
                a.severity.as_str().to_uppercase()
            ),
            (None, Some(test), Some(group)) => {
                format!("{} assets in {group} fail {test}", a.assets.len())
            }
            _ => format!("alert {}", a.rule),
        };
        AlertView {
            alert_id: a.id,
            rule: a.rule.clone(),
            title,
            status: a.severity,
            state: a.state.as_str().to_string(),
            asset: a.asset.clone(),
            asset_name: name,
            check: a.check.clone(),
            group: a.group.clone(),
            assets: a.assets.clone(),
            reason: a.reason.clone(),
            value: a.value,
            labels: info.as_ref().map(|i| i.labels.clone()).unwrap_or_default(),
            started: a.fired.unwrap_or(a.started),
            resolved: a.resolved,
            url: self
                .base_url
                .as_ref()
                .map(|u| format!("{}/alerts/{}", u.trim_end_matches('/'), a.id)),
            contacts: info.map(|i| i.contacts).unwrap_or_default(),
        }
    }

    fn emit(
        &self,
        a: &Alert,
        sends: Vec<Send>,
        now: Timestamp,
        assets: &dyn Assets,
        out: &mut Output,
    ) {
        if sends.is_empty() {
            return;
        }
        let group_wait = self.rule(&a.rule).map(|r| r.group_wait).unwrap_or_default();
        let view = self.view(a, assets);
        for s in sends {
            for n in s.notifiers {
                let id = format!("{}-{}-{}-{}", a.id, s.kind.as_str(), now.0, n);
                if out.outbox.iter().any(|o| o.id == id) {
                    continue;
                }
                out.outbox.push(OutboxItem {
                    id,
                    notifier: n.clone(),
                    group_key: format!("{}|{}", a.rule, s.kind.as_str()),
                    not_before: now.add_duration(group_wait),
                    notification: Notification {
                        id: format!("{}-{}-{}", a.id, s.kind.as_str(), now.0),
                        notifier: n,
                        kind: s.kind,
                        alerts: vec![view.clone()],
                        created: now,
                    },
                    state: "pending".into(),
                    attempts: 0,
                    next_attempt: now,
                    last_error: None,
                    recipients: Vec::new(),
                    detail: None,
                    sent: None,
                });
            }
        }
    }

    fn new_alert(&mut self, rule: &Rule, k: String, now: Timestamp, reason: &str) -> Alert {
        let id = self.next_alert;
        self.next_alert += 1;
        let mut a = Alert::new(
            id,
            k.clone(),
            rule.id.clone(),
            rule.severity,
            reason.to_string(),
            now,
        );
        if let Some((changes, flapping)) = self.flaps.get(&k) {
            a.changes = changes.clone();
            a.flapping = *flapping;
        }
        a
    }

    fn remember_flaps(&mut self, a: &Alert) {
        if a.changes.is_empty() && !a.flapping {
            self.flaps.remove(&a.key);
        } else {
            self.flaps
                .insert(a.key.clone(), (a.changes.clone(), a.flapping));
        }
    }

    /// Evaluates every rule against a round of observations.
    pub fn observe(
        &mut self,
        observations: &[Observation],
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) {
        let mut tests_seen: HashSet<&str> = HashSet::new();
        let rules = self.rules.clone();
        // Asset details cost a look-up and copies; only selectors on groups or labels need them.
        let needs_info = rules.iter().any(|r| {
            !r.selector.groups.is_empty()
                || !r.selector.labels.is_empty()
                || !r.selector.exclude_groups.is_empty()
        });
        for o in observations {
            tests_seen.insert(o.check.as_str());
            let info = if needs_info {
                assets.info(&o.asset).unwrap_or_default()
            } else {
                AssetInfo::default()
            };
            for rule in &rules {
                let RuleKind::Check { condition, trigger } = &rule.kind else {
                    continue;
                };
                if !rule
                    .selector
                    .matches(&o.asset, &info.groups, &info.labels, &o.check)
                {
                    continue;
                }
                let Some(bad) = condition.judge(o) else {
                    continue;
                };
                let k = key(&rule.id, &o.asset, &o.check);
                let verdict = self
                    .trackers
                    .entry(k.clone())
                    .or_default()
                    .observe(trigger, bad, o.time);
                let value = match condition {
                    vitals_core::rules::Condition::Threshold { value, .. } => o.value(value),
                    _ => None,
                };
                let reason = if o.reason.is_empty() {
                    format!("{} is {}", o.check, o.status)
                } else {
                    o.reason.clone()
                };
                self.apply_verdict(rule, &k, verdict, o, value, &reason, assets, now, out);
            }
        }
        for rule in &rules {
            if let RuleKind::Population { group, test, query } = &rule.kind {
                if tests_seen.contains(test.as_str()) {
                    self.evaluate_population(rule, group, test, query, assets, now, out);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_verdict(
        &mut self,
        rule: &Rule,
        k: &str,
        verdict: Verdict,
        o: &Observation,
        value: Option<f64>,
        reason: &str,
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) {
        match verdict {
            Verdict::Same => {
                if let Some(a) = self.open.get_mut(k) {
                    if a.reason != reason || a.value != value {
                        a.reason = reason.to_string();
                        a.value = value;
                        let a = a.clone();
                        out.changed(&a);
                    }
                }
            }
            Verdict::Pending => {
                if !self.open.contains_key(k) {
                    let mut a = self.new_alert(rule, k.to_string(), o.time, reason);
                    a.asset = Some(o.asset.clone());
                    a.check = Some(o.check.clone());
                    a.value = value;
                    out.events.push((
                        a.id,
                        Transition {
                            at: o.time,
                            from: None,
                            to: AlertState::Pending,
                            reason: reason.to_string(),
                        },
                    ));
                    out.changed(&a);
                    self.open.insert(k.to_string(), a);
                }
            }
            Verdict::Fire => {
                let mut a = match self.open.remove(k) {
                    Some(a) => a,
                    None => {
                        let mut a = self.new_alert(rule, k.to_string(), o.time, reason);
                        a.asset = Some(o.asset.clone());
                        a.check = Some(o.check.clone());
                        out.events.push((
                            a.id,
                            Transition {
                                at: o.time,
                                from: None,
                                to: AlertState::Pending,
                                reason: reason.to_string(),
                            },
                        ));
                        a
                    }
                };
                a.value = value;
                a.severity = rule.severity;
                a.suppressed = self.suppression(&a, assets, now);
                let (t, s) = a.fire(&rule.policy, o.time, reason);
                out.events.extend(t.into_iter().map(|t| (a.id, t)));
                self.emit(&a, s, now, assets, out);
                self.remember_flaps(&a);
                out.changed(&a);
                self.open.insert(k.to_string(), a);
            }
            Verdict::Resolve | Verdict::Cleared => {
                if let Some(mut a) = self.open.remove(k) {
                    let why = if verdict == Verdict::Cleared {
                        "recovered before firing"
                    } else {
                        "recovered"
                    };
                    a.suppressed = self.suppression(&a, assets, now);
                    let (t, s) = a.resolve(&rule.policy, o.time, why);
                    out.events.extend(t.into_iter().map(|t| (a.id, t)));
                    self.emit(&a, s, now, assets, out);
                    self.remember_flaps(&a);
                    out.changed(&a);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_population(
        &mut self,
        rule: &Rule,
        group: &str,
        test: &str,
        query: &AlarmQuery,
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) {
        let (failing, population) = assets.population(group, test, query);
        let k = key(&rule.id, group, test);
        let reason = format!(
            "{} of {population} assets in {group} fail {test} (score ≥ {}, {} % of last {})",
            failing.len(),
            query.score,
            query.repetition_percent,
            query.repetition
        );
        match (failing.is_empty(), self.open.remove(&k)) {
            (false, None) => {
                let mut a = self.new_alert(rule, k.clone(), now, &reason);
                a.group = Some(group.to_string());
                a.check = Some(test.to_string());
                a.assets = failing;
                out.events.push((
                    a.id,
                    Transition {
                        at: now,
                        from: None,
                        to: AlertState::Pending,
                        reason: reason.clone(),
                    },
                ));
                a.suppressed = self.suppression(&a, assets, now);
                let (t, s) = a.fire(&rule.policy, now, &reason);
                out.events.extend(t.into_iter().map(|t| (a.id, t)));
                self.emit(&a, s, now, assets, out);
                self.remember_flaps(&a);
                out.changed(&a);
                self.open.insert(k, a);
            }
            (false, Some(mut a)) => {
                if a.assets != failing {
                    a.assets = failing;
                    a.reason = reason;
                    out.changed(&a);
                }
                self.open.insert(k, a);
            }
            (true, Some(mut a)) => {
                let (t, s) = a.resolve(&rule.policy, now, "no asset fails any more");
                out.events.extend(t.into_iter().map(|t| (a.id, t)));
                self.emit(&a, s, now, assets, out);
                self.remember_flaps(&a);
                out.changed(&a);
            }
            (true, None) => {}
        }
    }

    /// Time-driven changes: `for` triggers, acknowledgement expiry, suppression changes,
    /// reminders, escalation, end of flapping, expired silences.
    pub fn tick(&mut self, assets: &dyn Assets, now: Timestamp, out: &mut Output) {
        let rules = self.rules.clone();
        // `for` triggers fire on time alone.
        let keys: Vec<String> = self
            .trackers
            .iter()
            .filter(|(_, t)| t.pending && !t.firing)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let rule_id = k.split('|').next().unwrap_or("");
            let Some(rule) = rules.iter().find(|r| r.id == rule_id) else {
                continue;
            };
            let RuleKind::Check { trigger, .. } = &rule.kind else {
                continue;
            };
            if trigger.for_duration.is_none() {
                continue;
            }
            let fired =
                self.trackers.get_mut(&k).map(|t| t.tick(trigger, now)) == Some(Verdict::Fire);
            if fired {
                if let Some(mut a) = self.open.remove(&k) {
                    a.suppressed = self.suppression(&a, assets, now);
                    let reason = a.reason.clone();
                    let (t, s) = a.fire(&rule.policy, now, &reason);
                    out.events.extend(t.into_iter().map(|t| (a.id, t)));
                    self.emit(&a, s, now, assets, out);
                    out.changed(&a);
                    self.open.insert(k, a);
                }
            }
        }
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for k in keys {
            let Some(mut a) = self.open.remove(&k) else {
                continue;
            };
            let mut policy = rules
                .iter()
                .find(|r| r.id == a.rule)
                .map(|r| r.policy.clone())
                .unwrap_or_default();
            if policy.reminder.is_some() {
                if let Some(r) = a
                    .asset
                    .as_deref()
                    .and_then(|x| assets.info(x))
                    .and_then(|i| i.reminder)
                {
                    policy.reminder = Some(r);
                }
            }
            let before = (a.suppressed.clone(), a.state, a.flapping);
            a.suppressed = self.suppression(&a, assets, now);
            let (t, s) = a.tick(&policy, now);
            let changed = !t.is_empty()
                || !s.is_empty()
                || before != (a.suppressed.clone(), a.state, a.flapping);
            out.events.extend(t.into_iter().map(|t| (a.id, t)));
            self.emit(&a, s, now, assets, out);
            if changed {
                self.remember_flaps(&a);
                out.changed(&a);
            }
            self.open.insert(k, a);
        }
        // Silences that ended more than a day ago are forgotten by the engine (kept in store).
        let day = 86_400_000;
        self.silences.retain(|s| s.ends.0 + day > now.0);
    }

    /// Acknowledges an open, firing alert.
    #[allow(clippy::too_many_arguments)]
    pub fn ack(
        &mut self,
        id: i64,
        by: &str,
        comment: Option<String>,
        until: Option<Timestamp>,
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<Alert, AckError> {
        let Some(k) = self
            .open
            .values()
            .find(|a| a.id == id)
            .map(|a| a.key.clone())
        else {
            return Err(AckError::NotOpen(id));
        };
        let Some(mut a) = self.open.remove(&k) else {
            return Err(AckError::NotOpen(id));
        };
        let policy = self
            .rule(&a.rule)
            .map(|r| r.policy.clone())
            .unwrap_or_default();
        match a.acknowledge(&policy, by, comment, until, now) {
            Ok((t, s)) => {
                out.events.extend(t.into_iter().map(|t| (a.id, t)));
                self.emit(&a, s, now, assets, out);
                out.changed(&a);
                let result = a.clone();
                self.open.insert(k, a);
                Ok(result)
            }
            Err(e) => {
                self.open.insert(k, a);
                Err(AckError::NotFiring(e))
            }
        }
    }

    /// Every firing or acknowledged alert with the notifiers it has been told to, for receivers
    /// that forget alerts unless reminded (Alertmanager resolves an alert not re-sent within
    /// its `resolve_timeout`).
    pub fn firing_views(&self, assets: &dyn Assets) -> Vec<(Vec<String>, AlertView)> {
        self.open
            .values()
            .filter(|a| {
                matches!(a.state, AlertState::Firing | AlertState::Acknowledged)
                    && a.notified
                    && a.suppressed.is_none()
            })
            .filter_map(|a| {
                let r = self.rule(&a.rule)?;
                let mut to = r.policy.notifiers.clone();
                for (_, n) in r.policy.escalate.iter().take(a.escalation_level) {
                    to.extend(n.iter().cloned());
                }
                Some((to, self.view(a, assets)))
            })
            .collect()
    }

    pub fn add_silence(&mut self, d: SilenceDraft, now: Timestamp, out: &mut Output) -> Silence {
        let s = Silence {
            id: self.next_silence,
            matchers: d.matchers,
            rules: d.rules,
            starts: d.starts,
            ends: d.ends,
            author: d.author,
            comment: d.comment,
            created: now,
        };
        self.next_silence += 1;
        self.silences.push(s.clone());
        out.silences.push(s.clone());
        s
    }

    /// Ends a silence now.
    pub fn expire_silence(&mut self, id: i64, now: Timestamp, out: &mut Output) -> Option<Silence> {
        let s = self.silences.iter_mut().find(|s| s.id == id)?;
        if s.ends > now {
            s.ends = now;
        }
        out.silences.push(s.clone());
        Some(s.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckError {
    NotOpen(i64),
    NotFiring(String),
}

impl std::fmt::Display for AckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckError::NotOpen(id) => write!(f, "alert {id} is not open"),
            AckError::NotFiring(e) => f.write_str(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_config::Config;

    /// Assets from a table: (id, groups, parents), and which are down.
    struct Table(
        Vec<(&'static str, Vec<String>, Vec<String>)>,
        Vec<&'static str>,
    );

    impl Assets for Table {
        fn info(&self, asset: &str) -> Option<AssetInfo> {
            self.0.iter().find(|a| a.0 == asset).map(|a| AssetInfo {
                name: a.0.to_string(),
                groups: a.1.clone(),
                parents: a.2.clone(),
                ..AssetInfo::default()
            })
        }
        fn is_down(&self, asset: &str) -> bool {
            self.1.contains(&asset)
        }
        fn population(&self, _: &str, _: &str, _: &AlarmQuery) -> (Vec<String>, usize) {
            (Vec::new(), 0)
        }
    }

    fn engine(toml: &str) -> Engine {
        let cfg = Config::parse(toml, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        Engine::new(cfg.rules, cfg.maintenance, None, vec![], vec![], (0, 0))
    }

    fn crit(asset: &str, t: i64) -> Observation {
        Observation::new(asset, "port", Timestamp(t), Status::Crit, "refused")
    }

    const RULE: &str = "[[notifier]]\nid = \"n\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n[[rule]]\nid = \"r\"\nnotifiers = [\"n\"]\n";

    #[test]
    fn a_storm_behind_a_down_parent_gives_one_notification() {
        let mut e = engine(RULE);
        let mut assets = vec![("switch", vec![], vec![])];
        for _ in 0..1000 {
            assets.push(("leaf", vec![], vec!["switch".to_string()]));
        }
        let table = Table(assets, vec!["switch"]);
        let mut out = Output::default();
        let mut obs = vec![crit("switch", 1)];
        obs.extend((0..1000).map(|i| {
            Observation::new(
                "leaf",
                format!("port-{i}"),
                Timestamp(2),
                Status::Crit,
                "down",
            )
        }));
        e.observe(&obs, &table, Timestamp(3), &mut out);
        assert_eq!(out.outbox.len(), 1, "only the switch notifies");
        assert_eq!(
            out.outbox[0].notification.alerts[0].asset.as_deref(),
            Some("switch")
        );
        assert_eq!(
            e.open_alerts()
                .filter(|a| a.suppressed.as_deref() == Some("suppressed: parent switch is down"))
                .count(),
            1000
        );
    }

    #[test]
    fn maintenance_windows_hold_notifications() {
        let mut e = engine(&format!(
            "{RULE}\n[[maintenance]]\nid = \"nightly\"\ncron = \"0 2 * * *\"\nduration = \"1h\"\n"
        ));
        let table = Table(vec![("db", vec![], vec![])], vec![]);
        let at = |s: &str| Timestamp::parse(s).unwrap();
        let mut out = Output::default();
        e.observe(
            &[crit("db", at("2026-11-21T02:10:00Z").0)],
            &table,
            at("2026-11-21T02:10:00Z"),
            &mut out,
        );
        assert!(out.outbox.is_empty());
        assert_eq!(
            out.alerts[0].suppressed.as_deref(),
            Some("in maintenance window nightly")
        );
        // Still firing after the window: the notification goes out at the first tick after it.
        let mut out = Output::default();
        e.tick(&table, at("2026-11-21T02:59:59Z"), &mut out);
        assert!(out.outbox.is_empty());
        e.tick(&table, at("2026-11-21T03:00:00Z"), &mut out);
        assert_eq!(out.outbox.len(), 1);
    }

    #[test]
    fn an_assets_own_reminder_interval_replaces_the_rules() {
        struct WithReminder;
        impl Assets for WithReminder {
            fn info(&self, _: &str) -> Option<AssetInfo> {
                Some(AssetInfo {
                    reminder: Some(Duration::from_secs(14 * 86_400)),
                    ..AssetInfo::default()
                })
            }
            fn is_down(&self, _: &str) -> bool {
                false
            }
            fn population(&self, _: &str, _: &str, _: &AlarmQuery) -> (Vec<String>, usize) {
                (Vec::new(), 0)
            }
        }
        let mut e = engine(&format!("{RULE}reminder = \"1w\"\n"));
        let mut out = Output::default();
        e.observe(&[crit("node-3", 0)], &WithReminder, Timestamp(0), &mut out);
        assert_eq!(out.outbox.len(), 1);
        let week = 7 * 86_400_000;
        let mut out = Output::default();
        e.tick(&WithReminder, Timestamp(week), &mut out);
        assert!(
            out.outbox.is_empty(),
            "the node's 2 weeks, not the rule's 1 week"
        );
        e.tick(&WithReminder, Timestamp(2 * week), &mut out);
        assert_eq!(out.outbox.len(), 1);
        assert_eq!(
            out.outbox[0].notification.kind,
            vitals_core::notify::NotificationKind::Reminder
        );
    }

    #[test]
    fn removed_rules_resolve_their_alerts() {
        let mut e = engine(RULE);
        let table = Table(vec![("db", vec![], vec![])], vec![]);
        let mut out = Output::default();
        e.observe(&[crit("db", 1)], &table, Timestamp(1), &mut out);
        assert_eq!(e.open_alerts().count(), 1);
        let mut out = Output::default();
        e.set_config(vec![], vec![], Timestamp(2), &mut out);
        assert_eq!(e.open_alerts().count(), 0);
        assert_eq!(out.alerts[0].state, AlertState::Resolved);
        assert_eq!(
            out.events[0].1.reason,
            "rule removed from the configuration"
        );
    }
}
