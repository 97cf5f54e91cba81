//! The alert engine: observations in, alert changes and notifications out.
//!
//! Owned by the pipeline worker, which calls it for every round of committed-to-be observations
//! and once a second ([`Engine::tick`]); everything it decides is returned as an [`Output`] that
//! the worker commits in the *same* transaction as the observations. So an alert never exists
//! without the observation that raised it, and a notification is in the durable outbox before
//! anyone is told the alert fired.
//!
//! The engine does no I/O; what it needs to know about assets comes through [`Assets`].

use std::borrow::Cow;
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
    /// The asset's text metadata, for notification templates (asked for only when a
    /// notification is made).
    fn details(&self, _asset: &str) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::new()
    }
    /// Whether the asset is down (its worst current status is crit).
    fn is_down(&self, asset: &str) -> bool;
    /// `(failing assets, population size)` of a population alarm, from memory.
    fn population(&self, group: &str, test: &str, q: &AlarmQuery) -> (Vec<String>, usize);
    /// `(asset, check, value)` of component `component` in the latest observation of every
    /// check the selector selects (checks whose latest observation lacks it are left out).
    fn component_values(
        &self,
        _selector: &Selector,
        _component: &str,
    ) -> Vec<(String, String, String)> {
        Vec::new()
    }
}

/// Most members a consistency rule names in its reason.
const NAMED_MEMBERS: usize = 10;

/// Who differs among `(asset, check, value)`: the members off the expected value, or off the
/// most common one (ties: the greatest value, usually the newer version). `(differing, reason)`.
pub fn disagreement(
    members: &[(String, String, String)],
    expected: Option<&str>,
) -> (Vec<(String, String, String)>, String) {
    let reference: String = match expected {
        Some(e) => e.to_string(),
        None => {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for (_, _, v) in members {
                *counts.entry(v.as_str()).or_default() += 1;
            }
            counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
                .map(|(v, _)| v.to_string())
                .unwrap_or_default()
        }
    };
    let differing: Vec<(String, String, String)> = members
        .iter()
        .filter(|(_, _, v)| *v != reference)
        .cloned()
        .collect();
    if differing.is_empty() {
        return (differing, String::new());
    }
    // Assets name members unless one asset has several selected checks.
    let by_asset = {
        let mut seen = HashSet::new();
        members.iter().all(|(a, _, _)| seen.insert(a.as_str()))
    };
    let name = |(a, c, _): &(String, String, String)| {
        if by_asset {
            a.clone()
        } else {
            format!("{a}/{c}")
        }
    };
    let mut parts: Vec<String> = differing
        .iter()
        .take(NAMED_MEMBERS)
        .map(|m| format!("{} has {:?}", name(m), m.2))
        .collect();
    if differing.len() > NAMED_MEMBERS {
        parts.push(format!("and {} more", differing.len() - NAMED_MEMBERS));
    }
    let tail = match expected {
        Some(e) => format!("expected {e:?}"),
        None => format!(
            "{} of {} have {:?}",
            members.len() - differing.len(),
            members.len(),
            reference
        ),
    };
    (differing, format!("{} ({tail})", parts.join(", ")))
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
        template: None,
    }
}

/// A map that can undo what was done to it since [`JMap::begin`]: the first change of each
/// key saves the key's value before it. Reads go through `Deref`; every way to change it is
/// a method here, so nothing can change it without the journal knowing.
#[derive(Debug)]
struct JMap<V: Clone> {
    map: HashMap<String, V>,
    saved: Option<HashMap<String, Option<V>>>,
}

impl<V: Clone> Default for JMap<V> {
    fn default() -> Self {
        JMap {
            map: HashMap::new(),
            saved: None,
        }
    }
}

impl<V: Clone> std::ops::Deref for JMap<V> {
    type Target = HashMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<V: Clone> JMap<V> {
    fn save(&mut self, k: &str) {
        if let Some(saved) = &mut self.saved {
            if !saved.contains_key(k) {
                saved.insert(k.to_string(), self.map.get(k).cloned());
            }
        }
    }

    fn get_mut(&mut self, k: &str) -> Option<&mut V> {
        // An absent key cannot change: nothing to save (every OK observation asks for one).
        if !self.map.contains_key(k) {
            return None;
        }
        self.save(k);
        self.map.get_mut(k)
    }

    fn get_or_default(&mut self, k: &str) -> &mut V
    where
        V: Default,
    {
        self.save(k);
        self.map.entry(k.to_string()).or_default()
    }

    fn insert(&mut self, k: String, v: V) -> Option<V> {
        self.save(&k);
        self.map.insert(k, v)
    }

    fn remove(&mut self, k: &str) -> Option<V> {
        if !self.map.contains_key(k) {
            return None;
        }
        self.save(k);
        self.map.remove(k)
    }

    fn retain(&mut self, mut keep: impl FnMut(&String, &V) -> bool) {
        let gone: Vec<String> = self
            .map
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.remove(&k);
        }
    }

    fn clear(&mut self) {
        let all: Vec<String> = self.map.keys().cloned().collect();
        for k in all {
            self.remove(&k);
        }
    }

    fn begin(&mut self) {
        self.saved = Some(HashMap::new());
    }

    fn commit(&mut self) {
        self.saved = None;
    }

    fn rollback(&mut self) {
        for (k, old) in self.saved.take().unwrap_or_default() {
            match old {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
    }
}

/// What [`Engine::begin`] keeps to undo a round.
#[derive(Debug)]
struct Saved {
    rules: std::sync::Arc<Vec<Rule>>,
    maintenance: std::sync::Arc<Vec<MaintenanceConfig>>,
    silences: Vec<Silence>,
    next: (i64, i64),
}

pub struct Engine {
    rules: std::sync::Arc<Vec<Rule>>,
    maintenance: std::sync::Arc<Vec<MaintenanceConfig>>,
    base_url: Option<String>,
    trackers: JMap<Tracker>,
    open: JMap<Alert>,
    silences: Vec<Silence>,
    next_alert: i64,
    next_silence: i64,
    /// Fire/resolve history per key across alert instances (flapping spans instances).
    flaps: JMap<(Vec<Timestamp>, bool)>,
    /// Set between `begin` and `commit`/`rollback`.
    saved: Option<Saved>,
}

/// An alert's key: `rule|a|b` (asset and check, or group and test, …).
fn key(rule: &str, a: &str, b: &str) -> String {
    let mut k = String::new();
    key_into(&mut k, rule, a, b);
    k
}

/// [`key`] written into `k`, so a loop over observations reuses one buffer.
fn key_into(k: &mut String, rule: &str, a: &str, b: &str) {
    k.clear();
    for (i, part) in [rule, a, b].into_iter().enumerate() {
        if i > 0 {
            k.push('|');
        }
        k.push_str(part);
    }
}

/// What keeps a notification from being merged with another (the outbox merges items of one
/// notifier and group key): a templated notification (one message per asset and rule, like
/// broker-monitor's one mail per node and status) names its asset; one that goes to the
/// asset's own contacts carries a digest of them, so alerts of different clinics are never in
/// one message — only alerts whose recipients are identical may be.
fn audience(v: &AlertView) -> String {
    if v.template.is_some() {
        return format!("|asset:{}", v.asset.as_deref().unwrap_or(""));
    }
    if v.contacts.is_empty() {
        return String::new();
    }
    let mut to: Vec<String> = v.contacts.iter().map(|c| c.trim().to_lowercase()).collect();
    to.sort();
    to.dedup();
    // FNV-1a: stable across builds, so keys of items waiting in the outbox keep matching.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in to.join("\n").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("|to:{h:016x}")
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
            rules: std::sync::Arc::new(rules),
            maintenance: std::sync::Arc::new(maintenance),
            base_url,
            trackers: JMap::default(),
            open: JMap::default(),
            silences,
            next_alert: max_alert + 1,
            next_silence: max_silence + 1,
            flaps: JMap::default(),
            saved: None,
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

    /// Starts a round whose decisions may have to be undone (its commit can fail).
    pub fn begin(&mut self) {
        self.trackers.begin();
        self.open.begin();
        self.flaps.begin();
        self.saved = Some(Saved {
            rules: self.rules.clone(),
            maintenance: self.maintenance.clone(),
            silences: self.silences.clone(),
            next: (self.next_alert, self.next_silence),
        });
    }

    /// The round was committed: keep what it decided.
    pub fn commit(&mut self) {
        self.trackers.commit();
        self.open.commit();
        self.flaps.commit();
        self.saved = None;
    }

    /// The round's commit failed: undo everything it decided, exactly — trackers keep the
    /// windows they had, alerts the states they had, as if the round had not happened.
    pub fn rollback(&mut self) {
        self.trackers.rollback();
        self.open.rollback();
        self.flaps.rollback();
        if let Some(s) = self.saved.take() {
            self.rules = s.rules;
            self.maintenance = s.maintenance;
            self.silences = s.silences;
            (self.next_alert, self.next_silence) = s.next;
        }
    }

    /// The ids of the rules in force, in order.
    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.id.clone()).collect()
    }

    /// New rules on reload. Open alerts of rules that are gone resolve.
    pub fn set_config(
        &mut self,
        rules: Vec<Rule>,
        maintenance: Vec<MaintenanceConfig>,
        now: Timestamp,
        out: &mut Output,
    ) {
        self.rules = std::sync::Arc::new(rules);
        self.maintenance = std::sync::Arc::new(maintenance);
        let rules = self.rules.clone();
        let ids: HashSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
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
        for m in self.maintenance.iter() {
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
        let template = self.rule(&a.rule).and_then(|r| r.template.clone());
        let details = match (&template, a.asset.as_deref()) {
            (Some(_), Some(x)) => assets.details(x),
            _ => Default::default(),
        };
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
            (None, Some(component), None) => {
                format!(
                    "{component} differs on {} ({})",
                    a.assets.join(", "),
                    a.rule
                )
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
            template,
            details,
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
        let audience = audience(&view);
        for s in sends {
            for n in s.notifiers {
                let id = format!("{}-{}-{}-{}", a.id, s.kind.as_str(), now.0, n);
                if out.outbox.iter().any(|o| o.id == id) {
                    continue;
                }
                out.outbox.push(OutboxItem {
                    id,
                    notifier: n.clone(),
                    group_key: format!("{}|{}{audience}", a.rule, s.kind.as_str()),
                    not_before: now.add_duration(group_wait),
                    notification: Notification {
                        id: format!("{}-{}-{}", a.id, s.kind.as_str(), now.0),
                        notifier: n,
                        kind: s.kind,
                        alerts: vec![view.clone()],
                        created: now,
                    },
                    state: vitals_store::OutboxState::Pending,
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
    pub fn observe<'o>(
        &mut self,
        observations: impl IntoIterator<Item = &'o Observation>,
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) {
        let observations: Vec<&Observation> = observations.into_iter().collect();
        let mut tests_seen: HashSet<&str> = HashSet::new();
        let mut consistent_due: HashSet<String> = HashSet::new();
        let rules = self.rules.clone();
        // Asset details cost a look-up and copies; only selectors on groups or labels need them.
        let needs_info = rules.iter().any(|r| {
            !r.selector.groups.is_empty()
                || !r.selector.labels.is_empty()
                || !r.selector.exclude_groups.is_empty()
        });
        // The (rule, asset, check) key, written into one buffer: a `format!` per observation
        // and rule was ~1 % of P3a's CPU.
        let mut k = String::new();
        for &o in &observations {
            tests_seen.insert(o.check.as_str());
            let info = if needs_info {
                assets.info(&o.asset).unwrap_or_default()
            } else {
                AssetInfo::default()
            };
            for rule in rules.iter() {
                if let RuleKind::Consistent { .. } = &rule.kind {
                    if rule
                        .selector
                        .matches(&o.asset, &info.groups, &info.labels, &o.check)
                    {
                        consistent_due.insert(rule.id.clone());
                    }
                    continue;
                }
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
                key_into(&mut k, &rule.id, &o.asset, &o.check);
                let verdict = self
                    .trackers
                    .get_or_default(&k)
                    .observe(trigger, bad, o.time);
                let value = match condition {
                    vitals_core::rules::Condition::Threshold { value, .. } => o.value(value),
                    _ => None,
                };
                self.apply_verdict(rule, &k, verdict, bad, o, value, assets, now, out);
            }
        }
        for rule in rules.iter() {
            if let RuleKind::Population { group, test, query } = &rule.kind {
                if tests_seen.contains(test.as_str()) {
                    self.evaluate_population(rule, group, test, query, assets, now, out);
                }
            }
            if consistent_due.contains(&rule.id) {
                self.evaluate_consistent(rule, &observations, assets, now, out);
            }
        }
    }

    /// A `consistent` rule after a round with observations of its checks: the latest values
    /// (this round's over the live state's) must agree.
    fn evaluate_consistent(
        &mut self,
        rule: &Rule,
        observations: &[&Observation],
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) {
        let RuleKind::Consistent {
            component,
            expected,
            trigger,
        } = &rule.kind
        else {
            return;
        };
        let mut members: std::collections::BTreeMap<(String, String), String> = assets
            .component_values(&rule.selector, component)
            .into_iter()
            .map(|(a, c, v)| ((a, c), v))
            .collect();
        let needs_info = !rule.selector.groups.is_empty()
            || !rule.selector.labels.is_empty()
            || !rule.selector.exclude_groups.is_empty();
        for o in observations {
            let info = if needs_info {
                assets.info(&o.asset).unwrap_or_default()
            } else {
                AssetInfo::default()
            };
            if !rule
                .selector
                .matches(&o.asset, &info.groups, &info.labels, &o.check)
            {
                continue;
            }
            // An observation without the component (a failed probe) says nothing about it.
            if let Some(v) = o
                .components
                .iter()
                .find(|c| &c.name == component)
                .and_then(|c| c.value.clone())
            {
                members.insert((o.asset.clone(), o.check.clone()), v);
            }
        }
        let members: Vec<(String, String, String)> =
            members.into_iter().map(|((a, c), v)| (a, c, v)).collect();
        let (differing, reason) = disagreement(&members, expected.as_deref());
        // Without an expected value one member alone cannot disagree.
        let bad = !differing.is_empty() && (expected.is_some() || members.len() > 1);
        let k = key(&rule.id, "consistent", component);
        let verdict = self.trackers.get_or_default(&k).observe(trigger, bad, now);
        let differing_assets: Vec<String> = {
            let mut v: Vec<String> = differing.iter().map(|m| m.0.clone()).collect();
            v.dedup();
            v
        };
        match verdict {
            Verdict::Same => {
                if let Some(a) = self.open.get_mut(&k) {
                    if bad && (a.reason != reason || a.assets != differing_assets) {
                        a.reason = reason;
                        a.assets = differing_assets;
                        let a = a.clone();
                        out.changed(&a);
                    }
                }
            }
            Verdict::Pending | Verdict::Fire => {
                let mut a = match self.open.remove(&k) {
                    Some(a) => a,
                    None => {
                        let mut a = self.new_alert(rule, k.clone(), now, &reason);
                        a.check = Some(component.clone());
                        out.events.push((
                            a.id,
                            Transition {
                                at: now,
                                from: None,
                                to: AlertState::Pending,
                                reason: reason.clone(),
                            },
                        ));
                        a
                    }
                };
                a.assets = differing_assets;
                a.reason = reason.clone();
                if verdict == Verdict::Fire {
                    a.severity = rule.severity;
                    a.suppressed = self.suppression(&a, assets, now);
                    let (t, s) = a.fire(&rule.policy, now, &reason);
                    out.events.extend(t.into_iter().map(|t| (a.id, t)));
                    self.emit(&a, s, now, assets, out);
                    self.remember_flaps(&a);
                }
                out.changed(&a);
                self.open.insert(k, a);
            }
            Verdict::Resolve | Verdict::Cleared => {
                if let Some(mut a) = self.open.remove(&k) {
                    let why = if verdict == Verdict::Cleared {
                        "agreed again before firing"
                    } else {
                        "all agree again"
                    };
                    a.suppressed = self.suppression(&a, assets, now);
                    let (t, s) = a.resolve(&rule.policy, now, why);
                    out.events.extend(t.into_iter().map(|t| (a.id, t)));
                    self.emit(&a, s, now, assets, out);
                    self.remember_flaps(&a);
                    out.changed(&a);
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
        bad: bool,
        o: &Observation,
        value: Option<f64>,
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) {
        // Made only when an alert needs it: most observations change no alert.
        let reason = || -> std::borrow::Cow<'_, str> {
            if o.reason.is_empty() {
                format!("{} is {}", o.check, o.status).into()
            } else {
                o.reason.as_str().into()
            }
        };
        match verdict {
            Verdict::Same => {
                let Some(open) = self.open.get(k) else {
                    return;
                };
                let reminder =
                    bad && rule.policy.reminder_at == vitals_core::alert::ReminderAt::Observed;
                let reason = reason();
                // Nothing to change: the alert is not copied into the round's undo journal.
                if !reminder && open.reason == reason && open.value == value {
                    return;
                }
                let Some(mut a) = self.open.remove(k) else {
                    return;
                };
                let mut changed = false;
                if a.reason != reason || a.value != value {
                    a.reason = reason.into_owned();
                    a.value = value;
                    changed = true;
                }
                // Reminders that wait for an observation confirming the alert.
                if reminder {
                    let mut policy = rule.policy.clone();
                    if let Some(r) = a.asset.as_deref().and_then(|x| assets.info(x)?.reminder) {
                        policy.reminder = policy.reminder.map(|_| r);
                    }
                    a.suppressed = self.suppression(&a, assets, now);
                    let sends = a.observed(&policy, o.time);
                    if !sends.is_empty() {
                        self.emit(&a, sends, now, assets, out);
                        changed = true;
                    }
                }
                if changed {
                    out.changed(&a);
                }
                self.open.insert(k.to_string(), a);
            }
            Verdict::Pending => {
                if !self.open.contains_key(k) {
                    let reason = reason();
                    let mut a = self.new_alert(rule, k.to_string(), o.time, &reason);
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
                let reason = reason();
                let mut a = match self.open.remove(k) {
                    Some(a) => a,
                    None => {
                        let mut a = self.new_alert(rule, k.to_string(), o.time, &reason);
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
                let (t, s) = a.fire(&rule.policy, o.time, &reason);
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
            let trigger = match &rule.kind {
                RuleKind::Check { trigger, .. } | RuleKind::Consistent { trigger, .. } => trigger,
                RuleKind::Population { .. } => continue,
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
        let no_policy = Policy::default();
        for k in keys {
            // Most open alerts have nothing due: they are looked at in place, and only those
            // that change are taken out (which copies them into the round's undo journal;
            // copying every open alert once a second was 3 % of P3a's CPU).
            let Some(a) = self.open.get(&k) else {
                continue;
            };
            let base = rules
                .iter()
                .find(|r| r.id == a.rule)
                .map_or(&no_policy, |r| &r.policy);
            let reminder = base
                .reminder
                .and_then(|_| a.asset.as_deref().and_then(|x| assets.info(x)))
                .and_then(|i| i.reminder);
            let policy = match reminder {
                Some(r) => Cow::Owned(Policy {
                    reminder: Some(r),
                    ..base.clone()
                }),
                None => Cow::Borrowed(base),
            };
            let suppressed = self.suppression(a, assets, now);
            if suppressed == a.suppressed && !a.tick_due(&policy, now) {
                continue;
            }
            let Some(mut a) = self.open.remove(&k) else {
                continue;
            };
            let before = (a.suppressed.clone(), a.state, a.flapping);
            a.suppressed = suppressed;
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AckError {
    NotOpen(i64),
    NotFiring(String),
}

/// What the API asks of the engine, as data: a replica that is not the decider hands it to the
/// decider through the database (`docs/high-availability.md`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum EngineOp {
    Ack {
        id: i64,
        by: String,
        comment: Option<String>,
        until: Option<Timestamp>,
    },
    AddSilence(SilenceDraft),
    ExpireSilence(i64),
}

/// The engine's answer to an [`EngineOp`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum OpAnswer {
    Ack(Result<Alert, AckError>),
    Silence(Silence),
    Expired(Option<Silence>),
}

impl Engine {
    pub fn apply_op(
        &mut self,
        op: EngineOp,
        assets: &dyn Assets,
        now: Timestamp,
        out: &mut Output,
    ) -> OpAnswer {
        match op {
            EngineOp::Ack {
                id,
                by,
                comment,
                until,
            } => OpAnswer::Ack(self.ack(id, &by, comment, until, assets, now, out)),
            EngineOp::AddSilence(d) => OpAnswer::Silence(self.add_silence(d, now, out)),
            EngineOp::ExpireSilence(id) => OpAnswer::Expired(self.expire_silence(id, now, out)),
        }
    }

    /// Forgets every decision in memory and takes up the store's (a replica that becomes the
    /// decider: another replica decided until now). The rules stay.
    pub fn resync(
        &mut self,
        open_alerts: Vec<Alert>,
        silences: Vec<Silence>,
        (max_alert, max_silence): (i64, i64),
    ) {
        self.saved = None;
        self.flaps.clear();
        self.silences = silences;
        self.next_alert = max_alert + 1;
        self.next_silence = max_silence + 1;
        self.restore(open_alerts);
    }
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
    fn alerts_of_different_recipients_never_share_a_group_key() {
        struct Clinics;
        impl Assets for Clinics {
            fn info(&self, asset: &str) -> Option<AssetInfo> {
                let contacts = match asset {
                    "a" => vec!["ed@a.example".to_string(), "it@a.example".into()],
                    // The same set as "a", other order and case.
                    "a2" => vec!["IT@a.example".to_string(), "ed@a.example".into()],
                    "b" => vec!["ed@b.example".to_string()],
                    _ => vec![],
                };
                Some(AssetInfo {
                    name: asset.to_string(),
                    contacts,
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
        let mut e = engine(&format!("{RULE}group_wait = \"1m\"\n"));
        let mut out = Output::default();
        let obs: Vec<Observation> = ["a", "a2", "b", "c", "d"]
            .iter()
            .map(|x| crit(x, 1))
            .collect();
        e.observe(&obs, &Clinics, Timestamp(1), &mut out);
        let key = |asset: &str| {
            out.outbox
                .iter()
                .find(|o| o.notification.alerts[0].asset.as_deref() == Some(asset))
                .map(|o| o.group_key.clone())
                .unwrap()
        };
        assert_eq!(
            key("a"),
            key("a2"),
            "identical recipients may share a message"
        );
        assert_ne!(key("a"), key("b"), "clinic A never reads of clinic B");
        assert_eq!(key("c"), key("d"), "without own contacts: the rule's group");
        assert_ne!(key("a"), key("c"));
        assert_eq!(key("c"), "r|firing");
        // A templated rule: one message per asset.
        let mut e = engine(&format!("{RULE}template = \"aktin_offline\"\n"));
        let mut out = Output::default();
        e.observe(&obs, &Clinics, Timestamp(1), &mut out);
        let keys: HashSet<String> = out.outbox.iter().map(|o| o.group_key.clone()).collect();
        assert_eq!(keys.len(), 5);
        assert_eq!(
            out.outbox[0].notification.alerts[0].template.as_deref(),
            Some("aktin_offline")
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

    /// Assets whose latest captured versions are remembered like the live state does.
    #[derive(Default)]
    struct Versions(std::cell::RefCell<std::collections::BTreeMap<(String, String), String>>);

    impl Versions {
        fn commit(&self, obs: &[Observation]) {
            for o in obs {
                if let Some(v) = o.components.iter().find(|c| c.name == "version") {
                    self.0.borrow_mut().insert(
                        (o.asset.clone(), o.check.clone()),
                        v.value.clone().unwrap_or_default(),
                    );
                }
            }
        }
    }

    impl Assets for Versions {
        fn info(&self, _: &str) -> Option<AssetInfo> {
            None
        }
        fn is_down(&self, _: &str) -> bool {
            false
        }
        fn population(&self, _: &str, _: &str, _: &AlarmQuery) -> (Vec<String>, usize) {
            (Vec::new(), 0)
        }
        fn component_values(&self, s: &Selector, component: &str) -> Vec<(String, String, String)> {
            assert_eq!(component, "version");
            self.0
                .borrow()
                .iter()
                .filter(|((a, c), _)| s.matches(a, &[], &Default::default(), c))
                .map(|((a, c), v)| (a.clone(), c.clone(), v.clone()))
                .collect()
        }
    }

    fn version(asset: &str, v: Option<&str>, t: i64) -> Observation {
        let mut o = Observation::new(asset, "version", Timestamp(t), Status::Ok, "HTTP 200");
        if let Some(v) = v {
            o.components.push(vitals_core::Component {
                name: "version".into(),
                status: Status::Ok,
                value: Some(v.into()),
                output: "captured".into(),
            });
        }
        o
    }

    fn round(e: &mut Engine, a: &Versions, obs: &[Observation], t: i64) -> Output {
        let mut out = Output::default();
        e.observe(obs, a, Timestamp(t), &mut out);
        a.commit(obs);
        out
    }

    const CONSISTENT: &str = "[[notifier]]\nid = \"n\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n[[rule]]\nid = \"versions\"\nkind = \"consistent\"\nasset_prefixes = [\"minlog2-\"]\nchecks = [\"version\"]\nnotifiers = [\"n\"]\n";

    #[test]
    fn disagreeing_versions_fire_naming_who_differs_and_resolve_when_they_agree() {
        let mut e = engine(CONSISTENT);
        let a = Versions::default();
        // One node alone cannot disagree.
        let out = round(&mut e, &a, &[version("minlog2-1", Some("2.5.1"), 1)], 1);
        assert!(out.alerts.is_empty());
        let out = round(
            &mut e,
            &a,
            &[
                version("minlog2-2", Some("2.5.1"), 2),
                version("minlog2-3", Some("2.5.0"), 2),
            ],
            2,
        );
        assert_eq!(out.alerts.len(), 1);
        let alert = &out.alerts[0];
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.assets, vec!["minlog2-3".to_string()]);
        assert_eq!(
            alert.reason,
            "minlog2-3 has \"2.5.0\" (2 of 3 have \"2.5.1\")"
        );
        assert_eq!(out.outbox.len(), 1);
        assert_eq!(
            out.outbox[0].notification.alerts[0].title,
            "version differs on minlog2-3 (versions)"
        );
        // A failed probe (no version) of another node changes nothing.
        let out = round(&mut e, &a, &[version("minlog2-1", None, 3)], 3);
        assert!(out.alerts.is_empty());
        // Other assets are not selected.
        let out = round(&mut e, &a, &[version("other", Some("9.9"), 4)], 4);
        assert!(out.alerts.is_empty());
        // The upgrade reaches node 3: resolved.
        let out = round(&mut e, &a, &[version("minlog2-3", Some("2.5.1"), 5)], 5);
        assert_eq!(out.alerts.len(), 1);
        assert_eq!(out.alerts[0].state, AlertState::Resolved);
    }

    #[test]
    fn an_expected_version_alerts_on_any_other_and_for_waits() {
        let mut e = engine(&format!(
            "{CONSISTENT}expected = \"2.5.1\"\nfor = \"10m\"\n"
        ));
        let a = Versions::default();
        let out = round(&mut e, &a, &[version("minlog2-1", Some("2.6.0-rc1"), 0)], 0);
        assert_eq!(out.alerts.len(), 1);
        assert_eq!(out.alerts[0].state, AlertState::Pending);
        assert_eq!(
            out.alerts[0].reason,
            "minlog2-1 has \"2.6.0-rc1\" (expected \"2.5.1\")"
        );
        let mut out = Output::default();
        e.tick(&a, Timestamp(599_999), &mut out);
        assert!(out.outbox.is_empty());
        e.tick(&a, Timestamp(600_000), &mut out);
        assert_eq!(out.alerts[0].state, AlertState::Firing);
        assert_eq!(out.outbox.len(), 1);
    }

    #[test]
    fn disagreement_picks_the_majority_and_names_at_most_ten() {
        let m = |a: &str, v: &str| (a.to_string(), "version".to_string(), v.to_string());
        let (d, r) = disagreement(&[m("a", "1"), m("b", "2")], None);
        // A tie: the greater value is the reference.
        assert_eq!(d, vec![m("a", "1")]);
        assert_eq!(r, "a has \"1\" (1 of 2 have \"2\")");
        let many: Vec<_> = (0..15)
            .map(|i| m(&format!("n{i:02}"), "old"))
            .chain((0..20).map(|i| m(&format!("x{i}"), "new")))
            .collect();
        let (d, r) = disagreement(&many, None);
        assert_eq!(d.len(), 15);
        assert!(r.contains("and 5 more (20 of 35 have \"new\")"), "{r}");
        assert!(disagreement(&[m("a", "1"), m("b", "1")], None).0.is_empty());
    }
}
