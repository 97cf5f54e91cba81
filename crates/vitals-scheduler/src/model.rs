//! The configured meaning of reported results: score rules per test, which groups a test
//! belongs to, staleness limits, and what to do with unknown assets.
//!
//! Swapped as a whole on reload (`ModelHandle`), read by the pipeline and the push endpoints.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use vitals_config::{Config, UnknownAssets};
use vitals_core::health::ScoreRule;
use vitals_core::Status;

/// The group of a test that has no score rule, on an asset that has no groups.
pub const DEFAULT_GROUP: &str = "default";

#[derive(Debug, Clone)]
pub struct Model {
    /// Score rules in configuration order.
    pub scores: Vec<ScoreRule>,
    index: BTreeMap<String, usize>,
    /// Test → no report for longer than this is stale.
    pub stale_after: BTreeMap<String, Duration>,
    pub unknown_assets: UnknownAssets,
    pub max_batch: usize,
    /// `[ingest]` limits on what pushes create and carry.
    pub ingest: vitals_config::IngestConfig,
}

impl Default for Model {
    /// The model of an empty configuration.
    fn default() -> Self {
        Model::from_config(&Config::default())
    }
}

impl Model {
    pub fn from_config(cfg: &Config) -> Model {
        let scores: Vec<ScoreRule> = cfg.scores.iter().map(|s| s.rule()).collect();
        let index = scores
            .iter()
            .enumerate()
            .map(|(i, s)| (s.test.clone(), i))
            .collect();
        let mut stale_after: BTreeMap<String, Duration> = cfg
            .scores
            .iter()
            .filter_map(|s| s.stale_after.map(|d| (s.test.clone(), d)))
            .collect();
        for c in &cfg.checks {
            if let vitals_core::spec::CheckKind::Push(p) = &c.kind {
                if let Some(d) = p.stale_after {
                    // Per-check limits are keyed by asset/check; see `stale_limit`.
                    stale_after.insert(format!("{}/{}", c.asset, c.name), d);
                }
            }
        }
        Model {
            scores,
            index,
            stale_after,
            unknown_assets: cfg.ingest.unknown_assets,
            max_batch: cfg.ingest.max_batch,
            ingest: cfg.ingest.clone(),
        }
    }

    pub fn score_rule(&self, test: &str) -> Option<&ScoreRule> {
        self.index.get(test).map(|i| &self.scores[*i])
    }

    /// The groups a test's score is filed under on an asset: the score rule's groups, else the
    /// asset's groups, else [`DEFAULT_GROUP`].
    pub fn groups_for(&self, test: &str, asset_groups: &[String]) -> Vec<String> {
        if let Some(r) = self.score_rule(test) {
            return r.groups.clone();
        }
        if asset_groups.is_empty() {
            vec![DEFAULT_GROUP.to_string()]
        } else {
            asset_groups.to_vec()
        }
    }

    /// Staleness limit for one asset's test: the check's own, else the test's.
    pub fn stale_limit(&self, asset: &str, test: &str) -> Option<Duration> {
        self.stale_after
            .get(&format!("{asset}/{test}"))
            .or_else(|| self.stale_after.get(test))
            .copied()
    }

    /// Tests in configuration order (`GET /health_test/`).
    pub fn tests(&self) -> Vec<String> {
        self.scores.iter().map(|s| s.test.clone()).collect()
    }

    /// Groups in configuration order, each once (`GET /health_alarm/`).
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.scores {
            for g in &s.groups {
                if !out.contains(g) {
                    out.push(g.clone());
                }
            }
        }
        out
    }

    /// Tests of a group in configuration order (`GET /health_alarm/{group}/`).
    pub fn tests_of(&self, group: &str) -> Vec<String> {
        self.scores
            .iter()
            .filter(|s| s.groups.iter().any(|g| g == group))
            .map(|s| s.test.clone())
            .collect()
    }
}

/// The status a bare score means (compatible API posts, results with only a score):
/// 0–1 ok, 2 warn, 3 and more crit.
pub fn status_of_score(score: i64) -> Status {
    match score {
        i64::MIN..=1 => Status::Ok,
        2 => Status::Warn,
        _ => Status::Crit,
    }
}

/// The current model, replaced whole on reload.
#[derive(Debug, Default)]
pub struct ModelHandle(RwLock<Arc<Model>>);

impl ModelHandle {
    pub fn new(m: Model) -> Self {
        ModelHandle(RwLock::new(Arc::new(m)))
    }
    pub fn get(&self) -> Arc<Model> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn set(&self, m: Model) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
    }
}
