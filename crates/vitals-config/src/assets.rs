//! `[[asset]]`: the things watched, their groups and their parents.

use crate::de::{array_of_tables, deserialize};
use crate::{valid_id, ConfigError, ID_RULE};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// `[[asset]]`: something watched.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    pub id: String,
    /// Display name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// One group (`group = "clinics"`) …
    #[serde(default)]
    pub group: Option<String>,
    /// … or several.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Assets this one depends on (alerts of a child are suppressed while a parent is down).
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl AssetConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// `group` and `groups` together, in order, without duplicates.
    pub fn all_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self.group.iter().chain(self.groups.iter()) {
            if !out.contains(g) {
                out.push(g.clone());
            }
        }
        out
    }
}

/// Every `[[asset]]` that deserializes, with its path as written (`asset[2]`).
pub(crate) fn parse(
    root: &mut toml::Table,
    errors: &mut Vec<ConfigError>,
) -> (Vec<String>, Vec<AssetConfig>) {
    // Paths keep the index as written, also when earlier elements failed to parse.
    array_of_tables(root, "asset", errors)
        .into_iter()
        .filter_map(|(path, v)| deserialize(v, &path, errors).map(|a| (path, a)))
        .unzip()
}

/// Ids, duplicates, unknown parents and parent cycles.
pub(crate) fn validate(assets: &[AssetConfig], paths: &[String], errors: &mut Vec<ConfigError>) {
    let mut asset_index: HashMap<&str, usize> = HashMap::new();
    for (i, a) in assets.iter().enumerate() {
        let path = &paths[i];
        if !valid_id(&a.id) {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!("{:?} {ID_RULE}", a.id),
            ));
        }
        if let Some(prev) = asset_index.insert(&a.id, i) {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!("duplicate asset id {:?} (also {})", a.id, paths[prev]),
            ));
        }
    }
    for (i, a) in assets.iter().enumerate() {
        for (j, p) in a.parents.iter().enumerate() {
            if !asset_index.contains_key(p.as_str()) {
                errors.push(ConfigError::new(
                    format!("{}.parents[{j}]", paths[i]),
                    format!("unknown asset {p:?}"),
                ));
            } else if p == &a.id {
                errors.push(ConfigError::new(
                    format!("{}.parents[{j}]", paths[i]),
                    "an asset cannot be its own parent",
                ));
            }
        }
    }
    if let Some(cycle) = find_parent_cycle(assets) {
        errors.push(ConfigError::new(
            "asset",
            format!("parents form a cycle: {}", cycle.join(" -> ")),
        ));
    }
}

fn find_parent_cycle(assets: &[AssetConfig]) -> Option<Vec<String>> {
    let mut parents: HashMap<&str, &Vec<String>> = HashMap::new();
    for a in assets {
        // Duplicates are reported elsewhere; the first declaration counts here.
        parents.entry(a.id.as_str()).or_insert(&a.parents);
    }
    // 0 unvisited, 1 on stack, 2 done
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        parents: &HashMap<&'a str, &'a Vec<String>>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(id) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| *s == id).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(id, 1);
        stack.push(id);
        if let Some(ps) = parents.get(id) {
            for p in ps.iter() {
                if parents.contains_key(p.as_str()) {
                    if let Some(c) = visit(p.as_str(), parents, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(id, 2);
        None
    }
    for a in assets {
        let mut stack = Vec::new();
        if let Some(c) = visit(&a.id, &parents, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}
