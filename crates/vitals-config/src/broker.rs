//! `[broker]`: the AKTIN broker whose nodes the fleet collector polls, and the node mapping
//! file that existing broker-monitor users already have (read as is).
//!
//! The mapping is a JSON object: node id → `{ "COMMON_NAME": …, "LONG_NAME": …, … }`. Only
//! `COMMON_NAME` is required; unknown keys are ignored (the file is shared with other tools).
//! Vitals adds one optional key, `CONTACTS` (a list of e-mail addresses), and the config's own
//! `[broker.contacts]` table (node id → addresses): both become the node asset's `contacts`,
//! which the e-mail notifier mails.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vitals_core::spec::duration;

/// `[broker]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Base URL of the broker, e.g. `https://broker.example.org` (the admin API is below
    /// `/broker/`).
    pub url: String,
    /// The broker's admin API key (write `${BROKER_API_KEY}` to keep it out of the file).
    pub api_key: String,
    /// How often the broker is polled (at least 1m).
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// The node mapping JSON file (relative paths are taken from the working directory).
    #[serde(default)]
    pub mapping: Option<PathBuf>,
    /// The data-warehouse version every node should run (e.g. `"1.5.1"`); lower is OUTDATED.
    #[serde(default)]
    pub expected_dwh_version: Option<String>,
    /// Nodes polled at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timeout of one request to the broker.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Node id → e-mail addresses of the node's contacts (added to the mapping's `CONTACTS`).
    #[serde(default)]
    pub contacts: BTreeMap<String, Vec<String>>,
}

fn default_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_concurrency() -> usize {
    16
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Largest mapping file read (it is a few KB per node).
const MAX_MAPPING_BYTES: u64 = 64 * 1024 * 1024;

impl BrokerConfig {
    /// Semantic checks; every error is pushed with its path under `broker.`.
    pub fn validate(&self, errors: &mut Vec<ConfigError>) {
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => errors.push(ConfigError::new(
                "broker.url",
                format!(
                    "{:?} must be an http or https URL with a host (scheme {:?})",
                    self.url,
                    u.scheme()
                ),
            )),
            Err(e) => errors.push(ConfigError::new(
                "broker.url",
                format!("{:?} is not an absolute URL ({e})", self.url),
            )),
        }
        if self.api_key.trim().is_empty() {
            errors.push(ConfigError::new(
                "broker.api_key",
                "is empty (write api_key = \"${BROKER_API_KEY}\")",
            ));
        }
        if self.interval < Duration::from_secs(60) {
            errors.push(ConfigError::new("broker.interval", "must be at least 1m"));
        }
        if self.timeout.is_zero() {
            errors.push(ConfigError::new("broker.timeout", "must be more than 0s"));
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            errors.push(ConfigError::new("broker.concurrency", "must be 1–1024"));
        }
        if let Some(v) = &self.expected_dwh_version {
            if !v.trim().starts_with(|c: char| c.is_ascii_digit()) {
                errors.push(ConfigError::new(
                    "broker.expected_dwh_version",
                    format!("{v:?} is not a version like \"1.5.1\""),
                ));
            }
        }
        for (node, list) in &self.contacts {
            for (i, c) in list.iter().enumerate() {
                if !c.contains('@') {
                    errors.push(ConfigError::new(
                        format!("broker.contacts.{node}[{i}]"),
                        format!("{c:?} is not an e-mail address"),
                    ));
                }
            }
        }
        if let Some(p) = &self.mapping {
            if let Err(list) = load_mapping(p) {
                for e in list {
                    errors.push(ConfigError::new("broker.mapping", e));
                }
            }
        }
    }

    /// The mapping file, read now (an empty mapping without one).
    pub fn load_mapping(&self) -> Result<NodeMapping, Vec<String>> {
        match &self.mapping {
            Some(p) => load_mapping(p),
            None => Ok(NodeMapping::default()),
        }
    }
}

/// The node mapping: broker node id → static information and per-node settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NodeMapping {
    pub nodes: BTreeMap<String, NodeInfo>,
}

/// One node's entry of the mapping, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub common_name: String,
    pub long_name: Option<String>,
    pub jira_labels: Vec<String>,
    pub hospital_information_system: Option<String>,
    pub import_interface: Option<String>,
    /// Hours without contact / imports before OFFLINE / NO IMPORTS (default 24).
    pub threshold_hours_failure: u32,
    /// Weeks before a persisting OFFLINE / NO IMPORTS / OUTDATED is mailed again (default 1).
    pub weeks_notification_interval: u32,
    /// Consecutive import days that make a node "active" rather than TESTING (default 3).
    pub consecutive_import_days: u32,
    /// Root ids (`PATIENT`, `ENCOUNTER`, `BILLING`).
    pub root: BTreeMap<String, String>,
    /// Extension id formats (`PATIENT`, `ENCOUNTER`, `BILLING`).
    pub format: BTreeMap<String, String>,
    /// `CONTACTS` (a Vitals extension): e-mail addresses of the node's contacts.
    pub contacts: Vec<String>,
}

impl NodeInfo {
    /// The defaults for a node that is not in the mapping, named `name`.
    pub fn unmapped(name: &str) -> NodeInfo {
        NodeInfo {
            common_name: name.to_string(),
            long_name: None,
            jira_labels: Vec::new(),
            hospital_information_system: None,
            import_interface: None,
            threshold_hours_failure: 24,
            weeks_notification_interval: 1,
            consecutive_import_days: 3,
            root: BTreeMap::new(),
            format: BTreeMap::new(),
            contacts: Vec::new(),
        }
    }
}

/// Reads and checks a mapping file; every problem is reported (`node "99": …`).
pub fn load_mapping(path: &Path) -> Result<NodeMapping, Vec<String>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    if meta.len() > MAX_MAPPING_BYTES {
        return Err(vec![format!(
            "{} is {} bytes, more than the {MAX_MAPPING_BYTES} a mapping may have",
            path.display(),
            meta.len()
        )]);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    parse_mapping(&text).map_err(|list| {
        list.into_iter()
            .map(|e| format!("{}: {e}", path.display()))
            .collect()
    })
}

/// Parses mapping JSON text.
pub fn parse_mapping(text: &str) -> Result<NodeMapping, Vec<String>> {
    let root: serde_json::Value =
        serde_json::from_str(text).map_err(|e| vec![format!("not valid JSON: {e}")])?;
    let serde_json::Value::Object(entries) = root else {
        return Err(vec![
            "must be a JSON object of node id → {\"COMMON_NAME\": …}".to_string(),
        ]);
    };
    let mut errors = Vec::new();
    let mut nodes = BTreeMap::new();
    for (id, v) in entries {
        let at = format!("node {id:?}");
        let serde_json::Value::Object(m) = v else {
            errors.push(format!("{at}: must be an object"));
            continue;
        };
        let text = |key: &str, errors: &mut Vec<String>| -> Option<String> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    errors.push(format!("{at}.{key}: must be a string"));
                    None
                }
            }
        };
        let number = |key: &str, default: u32, errors: &mut Vec<String>| -> u32 {
            let parsed = match m.get(key) {
                None | Some(serde_json::Value::Null) => return default,
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => return default,
                Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
                Some(_) => None,
            };
            match parsed.and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => n,
                _ => {
                    errors.push(format!("{at}.{key}: must be a whole number of at least 1"));
                    default
                }
            }
        };
        let list = |key: &str, errors: &mut Vec<String>| -> Vec<String> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .enumerate()
                    .filter_map(|(i, x)| match x {
                        serde_json::Value::String(s) => Some(s.clone()),
                        _ => {
                            errors.push(format!("{at}.{key}[{i}]: must be a string"));
                            None
                        }
                    })
                    .collect(),
                Some(serde_json::Value::String(s)) => s
                    .split([',', ';'])
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
                Some(_) => {
                    errors.push(format!("{at}.{key}: must be a list of strings"));
                    Vec::new()
                }
            }
        };
        let ids = |key: &str, errors: &mut Vec<String>| -> BTreeMap<String, String> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => BTreeMap::new(),
                Some(serde_json::Value::Object(o)) => o
                    .iter()
                    // Only these three are meaningful; others are ignored, as documented.
                    .filter(|(k, _)| matches!(k.as_str(), "PATIENT" | "ENCOUNTER" | "BILLING"))
                    .filter_map(|(k, v)| match v {
                        serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                        serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                        _ => {
                            errors.push(format!("{at}.{key}.{k}: must be a string"));
                            None
                        }
                    })
                    .collect(),
                Some(_) => {
                    errors.push(format!("{at}.{key}: must be an object"));
                    BTreeMap::new()
                }
            }
        };
        let common_name = match text("COMMON_NAME", &mut errors) {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                errors.push(format!("{at}.COMMON_NAME: is required"));
                continue;
            }
        };
        let contacts = list("CONTACTS", &mut errors);
        for (i, c) in contacts.iter().enumerate() {
            if !c.contains('@') {
                errors.push(format!(
                    "{at}.CONTACTS[{i}]: {c:?} is not an e-mail address"
                ));
            }
        }
        let info = NodeInfo {
            common_name,
            long_name: text("LONG_NAME", &mut errors),
            jira_labels: list("JIRA_LABELS", &mut errors),
            hospital_information_system: text("HOSPITAL_INFORMATION_SYSTEM", &mut errors),
            import_interface: text("IMPORT_INTERFACE", &mut errors),
            threshold_hours_failure: number("THRESHOLD_HOURS_FAILURE", 24, &mut errors),
            weeks_notification_interval: number("WEEKS_NOTIFICATION_INTERVAL", 1, &mut errors),
            consecutive_import_days: number("CONSECUTIVE_IMPORT_DAYS", 3, &mut errors),
            root: ids("ROOT", &mut errors),
            format: ids("FORMAT", &mut errors),
            contacts,
        };
        nodes.insert(id, info);
    }
    if errors.is_empty() {
        Ok(NodeMapping { nodes })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_defaults_and_errors_with_paths() {
        let m = parse_mapping(
            r#"{"99": {"COMMON_NAME": "[99] Default Clinic", "THRESHOLD_HOURS_FAILURE": 48,
                       "JIRA_LABELS": ["a", "b"], "ROOT": {"PATIENT": "1.2.2", "X": "y"},
                       "UNKNOWN": 1},
                "7": {"COMMON_NAME": "[7] Seven", "CONSECUTIVE_IMPORT_DAYS": "5"}}"#,
        )
        .unwrap();
        let n = &m.nodes["99"];
        assert_eq!(n.threshold_hours_failure, 48);
        assert_eq!(n.weeks_notification_interval, 1);
        assert_eq!(n.consecutive_import_days, 3);
        assert_eq!(n.jira_labels, vec!["a", "b"]);
        assert_eq!(n.root.len(), 1);
        assert_eq!(m.nodes["7"].consecutive_import_days, 5);

        let errs = parse_mapping(
            r#"{"1": {"LONG_NAME": "x"}, "2": {"COMMON_NAME": "n", "THRESHOLD_HOURS_FAILURE": -3}, "3": 5}"#,
        )
        .unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e == "node \"1\".COMMON_NAME: is required"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("node \"2\".THRESHOLD_HOURS_FAILURE")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e == "node \"3\": must be an object"),
            "{errs:?}"
        );
        assert!(parse_mapping("[1]").is_err());
        assert!(parse_mapping("{").unwrap_err()[0].starts_with("not valid JSON"));
    }

    #[test]
    fn broker_section_errors_have_paths() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("m.json");
        std::fs::write(&bad, r#"{"1": {"LONG_NAME": "x"}}"#).unwrap();
        let text = format!(
            "[broker]\nurl = \"broker\"\napi_key = \"${{KEY}}\"\ninterval = \"30s\"\nconcurrency = 0\n\
             mapping = {:?}\nexpected_dwh_version = \"latest\"\ncolor = 1\n",
            bad.display().to_string()
        );
        let errs = crate::Config::parse(&text, &|_| Some(String::new())).unwrap_err();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"broker.color") || paths.contains(&"broker"),
            "{errs}"
        );
        let text = text.replace("color = 1\n", "");
        let errs = crate::Config::parse(&text, &|_| Some(String::new())).unwrap_err();
        let msgs: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
        for want in [
            "broker.url:",
            "broker.api_key: is empty",
            "broker.interval: must be at least 1m",
            "broker.concurrency: must be 1–1024",
            "broker.expected_dwh_version:",
        ] {
            assert!(
                msgs.iter().any(|m| m.starts_with(want)),
                "{want} in {msgs:?}"
            );
        }
        assert!(
            msgs.iter().any(|m| m.starts_with("broker.mapping:")
                && m.contains("node \"1\".COMMON_NAME: is required")),
            "{msgs:?}"
        );
        let ok = crate::Config::parse(
            "[broker]\nurl = \"https://broker.example.org\"\napi_key = \"k\"\n",
            &|_| None,
        )
        .unwrap();
        let b = ok.broker.unwrap();
        assert_eq!(b.interval, Duration::from_secs(3600));
        assert_eq!((b.concurrency, b.timeout), (16, Duration::from_secs(30)));
    }
}
