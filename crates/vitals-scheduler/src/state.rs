//! The live picture: every asset with the latest observation of each of its checks.
//!
//! Read by the API, the UI and `/metrics` on every request, so reads take a shared lock and
//! copy out only what they need. Written only by the pipeline, after the store committed.

use crate::history::History;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use vitals_core::health::{AssetHealth, SmallMap};
use vitals_core::{Observation, Status};
use vitals_store::AssetRecord;

#[derive(Debug, Clone)]
pub struct CheckState {
    /// `http`, `tcp`, … for configured probes; `push` for checks only ever reported to us.
    pub kind: String,
    /// Whether the check is in the current configuration (kept after removal for history).
    pub configured: bool,
    /// Whether pushed results are taken for it (pushed kinds, or a polled check that says
    /// `accept_pushes = true`); results for unconfigured checks are always taken.
    pub accepts_pushes: bool,
    /// Boxed for the same reason as `history` (an `Observation` is ~150 bytes inline).
    pub latest: Option<Box<Observation>>,
    /// The last 50 results and OK counts per hour and day (uptime), kept as observations are
    /// committed. Boxed: a `BTreeMap` leaf holds room for 11 values, and most assets have one
    /// check, so an inline history (~700 bytes) would cost ~8 KB per asset.
    pub history: Box<History>,
}

impl CheckState {
    fn new(kind: &str, configured: bool, accepts_pushes: bool) -> Self {
        CheckState {
            kind: kind.to_string(),
            configured,
            accepts_pushes,
            latest: None,
            history: Box::default(),
        }
    }
}

/// A check of the running configuration, as the live state records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredCheck {
    pub asset: String,
    pub name: String,
    /// `http`, `tcp`, …, `push`, `heartbeat`.
    pub kind: String,
    pub accepts_pushes: bool,
}

impl ConfiguredCheck {
    /// A check of `kind`; pushed kinds accept pushes, polled ones do not.
    pub fn new(asset: impl Into<String>, name: impl Into<String>, kind: impl Into<String>) -> Self {
        let kind = kind.into();
        ConfiguredCheck {
            asset: asset.into(),
            name: name.into(),
            accepts_pushes: kind == "push" || kind == "heartbeat",
            kind,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AssetState {
    pub record: AssetRecord,
    /// Small (most assets have one or a few checks): one exact allocation, not a B-tree node.
    pub checks: SmallMap<String, CheckState>,
    /// Scores per group and test, severity per group, recent score history.
    pub health: AssetHealth,
}

impl AssetState {
    pub fn new(record: AssetRecord) -> Self {
        AssetState {
            record,
            checks: SmallMap::new(),
            health: AssetHealth::default(),
        }
    }
}

impl AssetState {
    /// The name people know it by: its name, or its id when it has none.
    pub fn display_name(&self) -> &str {
        if self.record.name.is_empty() {
            &self.record.id
        } else {
            &self.record.name
        }
    }

    /// Worst status of the configured checks that have run; `None` when nothing has run yet.
    pub fn status(&self) -> Option<Status> {
        self.checks
            .values()
            .filter_map(|c| c.latest.as_ref().map(|o| o.status))
            .reduce(Status::worst)
    }
}

/// One check as [`LiveState::peek`] found it.
pub struct Peek<G> {
    pub asset_known: bool,
    pub check_known: bool,
    /// Time of the check's latest observation.
    pub latest: Option<vitals_core::Timestamp>,
    pub groups: G,
}

/// Records a committed observation in its asset's check, which becomes the latest if it is
/// not older (taken, not copied: the pipeline has no use for it after the commit).
fn apply_one(asset: &mut AssetState, o: Observation) {
    if !asset.checks.contains_key(&o.check) {
        asset
            .checks
            .insert(o.check.clone(), CheckState::new("push", false, true));
    }
    let Some(check) = asset.checks.get_mut(&o.check) else {
        return;
    };
    check.history.record(o.time, o.status);
    match &mut check.latest {
        // In the box the previous one had.
        Some(l) if l.time <= o.time => **l = o,
        Some(_) => {}
        None => check.latest = Some(Box::new(o)),
    }
}

#[derive(Debug, Default)]
pub struct LiveState {
    inner: RwLock<BTreeMap<String, AssetState>>,
    /// Bumped by every write, under the write lock: pages and answers computed from the state
    /// can be reused while it stays the same (see [`LiveState::read_at`]).
    generation: AtomicU64,
}

impl LiveState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, AssetState>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A read guard and the generation of what it shows: equal generations mean equal state.
    pub fn read_at(&self) -> (RwLockReadGuard<'_, BTreeMap<String, AssetState>>, u64) {
        let guard = self.read();
        // Writers bump it while holding the write lock, so under a read lock it is stable.
        let generation = self.generation.load(Ordering::Acquire);
        (guard, generation)
    }

    /// The current generation (changes with every write).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, AssetState>> {
        let guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        guard
    }

    /// Replaces asset records and the set of configured checks; keeps every latest observation.
    pub fn sync_config(&self, assets: &[AssetRecord], checks: &[ConfiguredCheck]) {
        let mut map = self.write();
        for a in assets {
            map.entry(a.id.clone())
                .and_modify(|s| s.record = a.clone())
                .or_insert_with(|| AssetState::new(a.clone()));
        }
        for s in map.values_mut() {
            for (_, c) in s.checks.iter_mut() {
                c.configured = false;
                c.accepts_pushes = true;
            }
        }
        for cc in checks {
            let entry = map
                .entry(cc.asset.clone())
                .or_insert_with(|| AssetState::new(AssetRecord::named(&cc.asset)));
            if entry.checks.is_empty() {
                // A Vec's first push makes room for four; most assets have one check.
                entry.checks = SmallMap::with_capacity(1);
            }
            let c = entry
                .checks
                .entry(cc.name.clone())
                .or_insert_with(|| CheckState::new(&cc.kind, true, cc.accepts_pushes));
            c.configured = true;
            c.kind = cc.kind.clone();
            c.accepts_pushes = cc.accepts_pushes;
        }
    }

    /// Replaces the records of these assets (adding unknown ones); checks stay as they are.
    pub fn update_records(&self, assets: &[AssetRecord]) {
        let mut map = self.write();
        for a in assets {
            map.entry(a.id.clone())
                .and_modify(|s| s.record = a.clone())
                .or_insert_with(|| AssetState::new(a.clone()));
        }
    }

    /// Why a pushed result for `asset`/`check` is refused, if it is: the check is polled by
    /// Vitals and does not accept pushes.
    pub fn push_refused(&self, asset: &str, check: &str) -> Option<String> {
        let map = self.read();
        let c = map.get(asset)?.checks.get(check)?;
        (c.configured && !c.accepts_pushes).then(|| {
            format!(
                "{asset}/{check} is polled by Vitals ({} check); a pushed result would hide what the probe sees. Set accept_pushes = true on the check to take both",
                c.kind
            )
        })
    }

    /// Number of checks `asset` has (configured or pushed).
    pub fn check_count(&self, asset: &str) -> usize {
        self.read().get(asset).map_or(0, |a| a.checks.len())
    }

    /// Whether `asset` is known, and whether it has a check called `check` (one look-up).
    pub fn known(&self, asset: &str, check: &str) -> (bool, bool) {
        match self.read().get(asset) {
            Some(a) => (true, a.checks.contains_key(check)),
            None => (false, false),
        }
    }

    /// Applies committed observations (older ones than the current latest are ignored).
    pub fn apply(&self, observations: Vec<Observation>) {
        // Nothing new keeps the generation (and every answer made from it).
        if observations.is_empty() {
            return;
        }
        let mut map = self.write();
        for o in observations {
            // One look-up for a known asset; `entry` would copy the name every time.
            match map.get_mut(&o.asset) {
                Some(asset) => apply_one(asset, o),
                None => {
                    let mut asset = AssetState::new(AssetRecord::named(&o.asset));
                    let id = o.asset.clone();
                    apply_one(&mut asset, o);
                    map.insert(id, asset);
                }
            }
        }
    }

    /// Replaces every check's history with what the store has (a warm start, before the
    /// pipeline runs): counts per hour and per day, and the newest results. Checks the state
    /// does not know are skipped (the warm start applied every check's latest observation
    /// before).
    pub fn load_history(
        &self,
        counts: &[(i64, vitals_store::PeriodCount)],
        recent: Vec<vitals_store::RecentResults>,
    ) {
        let mut map = self.write();
        for a in map.values_mut() {
            for (_, c) in a.checks.iter_mut() {
                *c.history = History::default();
            }
        }
        for (period, p) in counts {
            if let Some(c) = map
                .get_mut(&p.asset)
                .and_then(|a| a.checks.get_mut(&p.check))
            {
                c.history.load_counts(*period, p.start, p.count, p.failures);
            }
        }
        for r in recent {
            if let Some(c) = map
                .get_mut(&r.asset)
                .and_then(|a| a.checks.get_mut(&r.check))
            {
                c.history.load_recent(r.results);
            }
        }
    }

    /// Replaces the health of these assets (after the store committed the changes).
    pub fn set_health(&self, healths: impl IntoIterator<Item = (String, AssetHealth)>) {
        self.swap_health(healths, |_| {});
    }

    /// [`set_health`](Self::set_health), handing each replaced health to `old` (the pipeline
    /// copies the next round's health into them: dropping and allocating every touched asset's
    /// maps again was ~9 % of P3a's CPU).
    pub fn swap_health(
        &self,
        healths: impl IntoIterator<Item = (String, AssetHealth)>,
        mut old: impl FnMut(AssetHealth),
    ) {
        let mut healths = healths.into_iter().peekable();
        if healths.peek().is_none() {
            return;
        }
        let mut map = self.write();
        for (id, h) in healths {
            match map.get_mut(&id) {
                Some(a) => old(std::mem::replace(&mut a.health, h)),
                None => {
                    let mut a = AssetState::new(AssetRecord::named(&id));
                    a.health = h;
                    map.insert(id, a);
                }
            }
        }
    }

    /// Adds assets that are not known yet (pushed results for new assets).
    pub fn ensure_assets(&self, records: &[AssetRecord]) {
        if records.is_empty() {
            return;
        }
        let mut map = self.write();
        for r in records {
            map.entry(r.id.clone())
                .or_insert_with(|| AssetState::new(r.clone()));
        }
    }

    /// Time of the latest observation of one check.
    pub fn latest_time(&self, asset: &str, check: &str) -> Option<vitals_core::Timestamp> {
        self.read()
            .get(asset)?
            .checks
            .get(check)?
            .latest
            .as_ref()
            .map(|l| l.time)
    }

    /// What the pipeline needs of one check before it adds an observation, from one lookup
    /// under one read lock (it used to take five, and they were a tenth of P2's CPU).
    /// `groups` runs on the asset's groups (none for an unknown asset); the asset's health is
    /// copied into `health` if given (the default for an unknown asset), in its allocations.
    pub fn peek<G>(
        &self,
        asset: &str,
        check: &str,
        health: Option<&mut AssetHealth>,
        groups: impl FnOnce(&[String]) -> G,
    ) -> Peek<G> {
        let map = self.read();
        let a = map.get(asset);
        let c = a.and_then(|a| a.checks.get(check));
        if let Some(h) = health {
            match a {
                Some(a) => h.clone_from(&a.health),
                None => *h = AssetHealth::default(),
            }
        }
        Peek {
            asset_known: a.is_some(),
            check_known: c.is_some(),
            latest: c.and_then(|c| c.latest.as_ref()).map(|l| l.time),
            groups: groups(a.map(|a| a.record.groups.as_slice()).unwrap_or(&[])),
        }
    }

    pub fn health(&self, asset: &str) -> Option<AssetHealth> {
        self.read().get(asset).map(|a| a.health.clone())
    }

    /// What the alert engine needs of an asset.
    pub fn asset_info(&self, id: &str) -> Option<vitals_alert::AssetInfo> {
        let map = self.read();
        let a = map.get(id)?;
        let list = |key: &str| -> Vec<String> {
            match a.record.metadata.get(key) {
                Some(serde_json::Value::String(s)) => s
                    .split([',', ';'])
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
                Some(serde_json::Value::Array(v)) => v
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let unsubscribed = list("unsubscribed");
        Some(vitals_alert::AssetInfo {
            name: a.record.name.clone(),
            groups: a.record.groups.clone(),
            labels: a.record.labels.clone(),
            parents: a.record.parents.clone(),
            contacts: list("contacts")
                .into_iter()
                .filter(|c| !unsubscribed.iter().any(|u| u.eq_ignore_ascii_case(c)))
                .collect(),
            reminder: a
                .record
                .metadata
                .get("reminder")
                .and_then(|v| v.as_str())
                .and_then(|s| vitals_core::spec::duration::parse(s).ok()),
        })
    }

    /// The asset's metadata values that are text, numbers or booleans, as text (for
    /// notification templates).
    pub fn asset_details(&self, id: &str) -> std::collections::BTreeMap<String, String> {
        let map = self.read();
        let Some(a) = map.get(id) else {
            return Default::default();
        };
        a.record
            .metadata
            .iter()
            .filter_map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.clone(), text))
            })
            .collect()
    }

    /// `(asset, check, value)` of component `component` in the latest observation of every
    /// check the selector selects (for `consistent` rules).
    pub fn component_values(
        &self,
        selector: &vitals_core::rules::Selector,
        component: &str,
    ) -> Vec<(String, String, String)> {
        let map = self.read();
        let mut out = Vec::new();
        let mut visit = |id: &str, a: &AssetState| {
            for (name, c) in &a.checks {
                if !selector.matches(id, &a.record.groups, &a.record.labels, name) {
                    continue;
                }
                let value = c.latest.as_ref().and_then(|o| {
                    o.components
                        .iter()
                        .find(|x| x.name == component)
                        .and_then(|x| x.value.clone())
                });
                if let Some(v) = value {
                    out.push((id.to_string(), name.clone(), v));
                }
            }
        };
        if selector.assets.is_empty() {
            for (id, a) in map.iter() {
                visit(id, a);
            }
        } else {
            // Named assets: look them up instead of walking every asset.
            for id in &selector.assets {
                if let Some(a) = map.get(id) {
                    visit(id, a);
                }
            }
        }
        out
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().contains_key(id)
    }

    pub fn asset(&self, id: &str) -> Option<AssetState> {
        self.read().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_core::Timestamp;

    #[test]
    fn every_write_moves_the_generation_and_reads_do_not() {
        let s = LiveState::new();
        let (guard, g0) = s.read_at();
        drop(guard);
        drop(s.read());
        assert_eq!(s.generation(), g0);
        s.apply(vec![Observation::new(
            "a",
            "http",
            Timestamp(1),
            Status::Ok,
            "",
        )]);
        let g1 = s.generation();
        assert!(g1 > g0);
        // Writes of nothing keep it.
        s.ensure_assets(&[]);
        s.apply(Vec::new());
        s.set_health(Vec::new());
        assert_eq!(s.generation(), g1);
        s.ensure_assets(&[AssetRecord::named("b")]);
        assert!(s.generation() > g1);
    }

    #[test]
    fn newer_wins_and_config_sync_keeps_history() {
        let s = LiveState::new();
        s.sync_config(&[], &[ConfiguredCheck::new("a", "http", "http")]);
        let mut o = Observation::new("a", "http", Timestamp(2000), Status::Ok, "");
        s.apply(vec![o.clone()]);
        o.time = Timestamp(1000);
        o.status = Status::Crit;
        s.apply(vec![o]);
        let a = s.asset("a").unwrap();
        assert_eq!(a.status(), Some(Status::Ok));
        // Removing the check from the config keeps its latest observation, marked unconfigured.
        s.sync_config(&[], &[]);
        let a = s.asset("a").unwrap();
        assert!(!a.checks.get("http").unwrap().configured);
        assert!(a.checks.get("http").unwrap().latest.is_some());
    }
}
