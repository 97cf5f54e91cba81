//! The live picture: every asset with the latest observation of each of its checks.
//!
//! Read by the API, the UI and `/metrics` on every request, so reads take a shared lock and
//! copy out only what they need. Written only by the pipeline, after the store committed.

use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use vitals_core::health::AssetHealth;
use vitals_core::{Observation, Status};
use vitals_store::AssetRecord;

#[derive(Debug, Clone)]
pub struct CheckState {
    /// `http`, `tcp`, … for configured probes; `push` for checks only ever reported to us.
    pub kind: String,
    /// Whether the check is in the current configuration (kept after removal for history).
    pub configured: bool,
    pub latest: Option<Observation>,
}

#[derive(Debug, Clone)]
pub struct AssetState {
    pub record: AssetRecord,
    pub checks: BTreeMap<String, CheckState>,
    /// Scores per group and test, severity per group, recent score history.
    pub health: AssetHealth,
}

impl AssetState {
    pub fn new(record: AssetRecord) -> Self {
        AssetState {
            record,
            checks: BTreeMap::new(),
            health: AssetHealth::default(),
        }
    }
}

impl AssetState {
    /// Worst status of the configured checks that have run; `None` when nothing has run yet.
    pub fn status(&self) -> Option<Status> {
        self.checks
            .values()
            .filter_map(|c| c.latest.as_ref().map(|o| o.status))
            .reduce(Status::worst)
    }
}

#[derive(Debug, Default)]
pub struct LiveState {
    inner: RwLock<BTreeMap<String, AssetState>>,
}

impl LiveState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, AssetState>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, AssetState>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces asset records and the set of configured checks; keeps every latest observation.
    pub fn sync_config(&self, assets: &[AssetRecord], checks: &[(String, String, String)]) {
        let mut map = self.write();
        for a in assets {
            map.entry(a.id.clone())
                .and_modify(|s| s.record = a.clone())
                .or_insert_with(|| AssetState::new(a.clone()));
        }
        for s in map.values_mut() {
            for c in s.checks.values_mut() {
                c.configured = false;
            }
        }
        for (asset, name, kind) in checks {
            let entry = map
                .entry(asset.clone())
                .or_insert_with(|| AssetState::new(AssetRecord::named(asset)));
            let c = entry
                .checks
                .entry(name.clone())
                .or_insert_with(|| CheckState {
                    kind: kind.clone(),
                    configured: true,
                    latest: None,
                });
            c.configured = true;
            c.kind = kind.clone();
        }
    }

    /// Applies committed observations (older ones than the current latest are ignored).
    pub fn apply(&self, observations: &[Observation]) {
        let mut map = self.write();
        for o in observations {
            let asset = map
                .entry(o.asset.clone())
                .or_insert_with(|| AssetState::new(AssetRecord::named(&o.asset)));
            let check = asset
                .checks
                .entry(o.check.clone())
                .or_insert_with(|| CheckState {
                    kind: "push".to_string(),
                    configured: false,
                    latest: None,
                });
            if check.latest.as_ref().is_none_or(|l| l.time <= o.time) {
                check.latest = Some(o.clone());
            }
        }
    }

    /// Replaces the health of these assets (after the store committed the changes).
    pub fn set_health(&self, healths: impl IntoIterator<Item = (String, AssetHealth)>) {
        let mut map = self.write();
        for (id, h) in healths {
            map.entry(id.clone())
                .or_insert_with(|| AssetState::new(AssetRecord::named(&id)))
                .health = h;
        }
    }

    /// Adds assets that are not known yet (pushed results for new assets).
    pub fn ensure_assets(&self, records: &[AssetRecord]) {
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

    /// Runs `f` on the asset's groups (none for an unknown asset) without copying them.
    pub fn groups_for<R>(&self, asset: &str, f: impl FnOnce(&[String]) -> R) -> R {
        let map = self.read();
        f(map
            .get(asset)
            .map(|a| a.record.groups.as_slice())
            .unwrap_or(&[]))
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
    fn newer_wins_and_config_sync_keeps_history() {
        let s = LiveState::new();
        s.sync_config(&[], &[("a".into(), "http".into(), "http".into())]);
        let mut o = Observation::new("a", "http", Timestamp(2000), Status::Ok, "");
        s.apply(std::slice::from_ref(&o));
        o.time = Timestamp(1000);
        o.status = Status::Crit;
        s.apply(&[o]);
        let a = s.asset("a").unwrap();
        assert_eq!(a.status(), Some(Status::Ok));
        // Removing the check from the config keeps its latest observation, marked unconfigured.
        s.sync_config(&[], &[]);
        let a = s.asset("a").unwrap();
        assert!(!a.checks["http"].configured);
        assert!(a.checks["http"].latest.is_some());
    }
}
