//! `[[score]]`: how a test's results become a score.

use crate::de::{array_of_tables, deserialize};
use crate::{valid_id, ConfigError, ID_RULE};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use vitals_core::spec;

/// `[[score]]`: how a test's results become a score, and which groups the test belongs to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    pub test: String,
    pub groups: Vec<String>,
    pub field: String,
    pub kind: vitals_core::health::FieldKind,
    pub rules: Vec<vitals_core::health::ScoreCase>,
    /// An asset that has reported this test but not for longer than this is stale (`crit`).
    #[serde(default, with = "spec::duration::option")]
    pub stale_after: Option<Duration>,
}

impl ScoreConfig {
    pub fn rule(&self) -> vitals_core::health::ScoreRule {
        vitals_core::health::ScoreRule {
            test: self.test.clone(),
            groups: self.groups.clone(),
            field: self.field.clone(),
            kind: self.kind,
            rules: self.rules.clone(),
        }
    }
}

/// Every `[[score]]` that deserializes, with its path as written.
pub(crate) fn parse(
    root: &mut toml::Table,
    errors: &mut Vec<ConfigError>,
) -> (Vec<String>, Vec<ScoreConfig>) {
    array_of_tables(root, "score", errors)
        .into_iter()
        .filter_map(|(path, v)| deserialize(v, &path, errors).map(|s| (path, s)))
        .unzip()
}

/// Test names, duplicates, groups and the rules themselves.
pub(crate) fn validate(scores: &[ScoreConfig], paths: &[String], errors: &mut Vec<ConfigError>) {
    let mut tests: HashMap<&str, usize> = HashMap::new();
    for (i, sc) in scores.iter().enumerate() {
        let path = &paths[i];
        if !valid_id(&sc.test) {
            errors.push(ConfigError::new(
                format!("{path}.test"),
                format!("{:?} {ID_RULE}", sc.test),
            ));
        }
        if let Some(prev) = tests.insert(&sc.test, i) {
            errors.push(ConfigError::new(
                format!("{path}.test"),
                format!(
                    "duplicate score for test {:?} (also {})",
                    sc.test, paths[prev]
                ),
            ));
        }
        for (j, g) in sc.groups.iter().enumerate() {
            if !valid_id(g) {
                errors.push(ConfigError::new(
                    format!("{path}.groups[{j}]"),
                    format!("{g:?} {ID_RULE}"),
                ));
            }
        }
        if let Err(e) = sc.rule().validate() {
            errors.push(ConfigError::new(path.clone(), e));
        }
    }
}
