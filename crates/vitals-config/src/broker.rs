//! `[broker]`: the AKTIN broker whose nodes the fleet collector polls, and the node mapping
//! file that existing broker-monitor users already have (read as is).
//!
//! The mapping is a JSON object: node id → `{ "COMMON_NAME": …, "LONG_NAME": …, … }`. Only
//! `COMMON_NAME` is required; unknown keys are ignored (the file is shared with other tools).
//! Vitals adds one optional key, `CONTACTS`, and the config's own `[broker.contacts]` table
//! (node id → contacts). A contact is an address (always mailed) or an object with a role —
//! the emergency department (`ed`) or `it` — a `main` flag and an `opted_out` flag; the
//! recipients are broker-monitor's: the department's main contacts and every IT contact, minus
//! those who opted out ([`recipients`]). They become the node asset's `contacts`, which the
//! e-mail notifier mails.

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
    /// Node id → the node's contacts (added to the mapping's `CONTACTS`): addresses, or
    /// tables `{ email, name, role = "ed" | "it", main, opted_out }`.
    #[serde(default)]
    pub contacts: BTreeMap<String, Vec<ContactConfig>>,
    /// The data-warehouse i2b2 package version nodes should have (shown in OUTDATED mails as
    /// broker-monitor's `AKTIN.I2B2_VERSION`; never compared).
    #[serde(default)]
    pub expected_i2b2_version: Option<String>,
    /// Language of the built-in node mails of the default rules: `de` (broker-monitor's German
    /// texts, the default) or `en`.
    #[serde(default = "default_language")]
    pub language: String,
    /// broker-monitor's working directory, kept current after every collection: per node the
    /// yearly stats and errors CSVs, resource `.txt` files, change `.log`s, the sent-mail log,
    /// and the tracking files (`docs/fleet.md`). Off when absent.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// `[broker.confluence]`: node pages and the summary page in Confluence.
    #[serde(default)]
    pub confluence: Option<ConfluenceConfig>,
}

/// A contact as written in `[broker.contacts]`: an address, or a table with a role.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactConfig {
    Address(String),
    Full {
        email: String,
        name: Option<String>,
        role: Option<String>,
        main: bool,
        opted_out: bool,
    },
}

/// The table form, with serde's own errors (`missing field `email``, `unknown field …`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactTable {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    main: bool,
    #[serde(default)]
    opted_out: bool,
}

impl<'de> Deserialize<'de> for ContactConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ContactConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an e-mail address or a table { email, name, role, main, opted_out }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ContactConfig, E> {
                Ok(ContactConfig::Address(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ContactConfig, A::Error> {
                let t =
                    ContactTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ContactConfig::Full {
                    email: t.email,
                    name: t.name,
                    role: t.role,
                    main: t.main,
                    opted_out: t.opted_out,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Who a contact is for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactRole {
    /// A plain address without a role: always mailed (unless opted out).
    Any,
    /// The emergency department ("Notaufnahme"): mailed when a main contact.
    Ed,
    /// IT: always mailed.
    It,
}

impl ContactRole {
    /// `ed` (also `notaufnahme`, `emergency`) or `it`.
    pub fn parse(s: &str) -> Option<ContactRole> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ed" | "notaufnahme" | "emergency" | "emergency-department" => Some(ContactRole::Ed),
            "it" => Some(ContactRole::It),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContactRole::Any => "any",
            ContactRole::Ed => "ed",
            ContactRole::It => "it",
        }
    }
}

/// One contact of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub email: String,
    pub name: Option<String>,
    pub role: ContactRole,
    /// The department's main contact ("Hauptansprechpartner").
    pub main: bool,
    /// Opted out of monitoring mails ("Abgemeldet von Monitor-Benachrichtigungen").
    pub opted_out: bool,
}

impl Contact {
    /// A plain address.
    pub fn address(email: &str) -> Contact {
        Contact {
            email: email.trim().to_string(),
            name: None,
            role: ContactRole::Any,
            main: false,
            opted_out: false,
        }
    }

    /// Whether broker-monitor's rule mails this contact: emergency-department main contacts
    /// and every IT contact (and plain addresses), never one who opted out.
    pub fn mailed(&self) -> bool {
        !self.opted_out
            && match self.role {
                ContactRole::Any | ContactRole::It => true,
                ContactRole::Ed => self.main,
            }
    }
}

/// The addresses mailed about a node: [`Contact::mailed`] ones, each once (case-insensitive),
/// in order.
pub fn recipients(contacts: &[Contact]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in contacts.iter().filter(|c| c.mailed()) {
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&c.email)) {
            out.push(c.email.clone());
        }
    }
    out
}

impl ContactConfig {
    /// The contact, or why it is not one.
    pub fn to_contact(&self) -> Result<Contact, String> {
        let c = match self {
            ContactConfig::Address(a) => Contact::address(a),
            ContactConfig::Full {
                email,
                name,
                role,
                main,
                opted_out,
            } => Contact {
                email: email.trim().to_string(),
                name: name.clone().filter(|n| !n.trim().is_empty()),
                role: match role {
                    None => ContactRole::Any,
                    Some(r) => ContactRole::parse(r).ok_or_else(|| {
                        format!("role {r:?} is not \"ed\" (emergency department) or \"it\"")
                    })?,
                },
                main: *main,
                opted_out: *opted_out,
            },
        };
        if !valid_address(&c.email) {
            return Err(format!("{:?} is not an e-mail address", c.email));
        }
        Ok(c)
    }
}

/// A minimal check: one `@` with text on both sides and no spaces (the mailer parses fully).
fn valid_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((l, d)) => {
            !l.is_empty() && !d.is_empty() && !d.contains('@') && !a.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// `[broker.confluence]`: where node pages and the summary page go (REST API v1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfluenceConfig {
    /// Base URL of Confluence, e.g. `https://confluence.example.org` (REST below `/rest/api/`).
    pub url: String,
    /// The space key.
    pub space: String,
    /// A personal access token (write `${CONFLUENCE_TOKEN}`), sent as `Bearer`.
    pub token: String,
    /// Title of the page the node pages sit under; it holds the summary table and heatmap.
    #[serde(default = "default_parent")]
    pub parent: String,
    /// Title of the page a missing parent page is created under (else at the space's top).
    #[serde(default = "default_root")]
    pub root: String,
    /// Timeout of one request.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Write the pages at most this often (e.g. `"1d"` with an hourly collection, so a page's
    /// history has a version a day); default: after every collection.
    #[serde(default, with = "duration::option")]
    pub interval: Option<Duration>,
}

fn default_parent() -> String {
    "Support Log Broker-Monitor".into()
}
fn default_root() -> String {
    "Support".into()
}
fn default_language() -> String {
    "de".into()
}

impl ConfluenceConfig {
    fn validate(&self, errors: &mut Vec<ConfigError>) {
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => errors.push(ConfigError::new(
                "broker.confluence.url",
                format!("{:?} is not an http or https URL with a host", self.url),
            )),
        }
        if self.space.trim().is_empty() {
            errors.push(ConfigError::new("broker.confluence.space", "is empty"));
        }
        if self.token.trim().is_empty() {
            errors.push(ConfigError::new(
                "broker.confluence.token",
                "is empty (write token = \"${CONFLUENCE_TOKEN}\")",
            ));
        }
        if self.parent.trim().is_empty() {
            errors.push(ConfigError::new("broker.confluence.parent", "is empty"));
        }
        if self.timeout.is_zero() {
            errors.push(ConfigError::new(
                "broker.confluence.timeout",
                "must be more than 0s",
            ));
        }
        if self.interval.is_some_and(|i| i < Duration::from_secs(60)) {
            errors.push(ConfigError::new(
                "broker.confluence.interval",
                "must be at least 1m",
            ));
        }
    }
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
                if let Err(e) = c.to_contact() {
                    errors.push(ConfigError::new(format!("broker.contacts.{node}[{i}]"), e));
                }
            }
        }
        if !matches!(self.language.as_str(), "de" | "en") {
            errors.push(ConfigError::new(
                "broker.language",
                format!("{:?} is not \"de\" or \"en\"", self.language),
            ));
        }
        if let Some(v) = &self.expected_i2b2_version {
            if v.trim().is_empty() {
                errors.push(ConfigError::new("broker.expected_i2b2_version", "is empty"));
            }
        }
        if let Some(d) = &self.working_dir {
            if d.as_os_str().is_empty() {
                errors.push(ConfigError::new("broker.working_dir", "is empty"));
            } else if d.exists() && !d.is_dir() {
                errors.push(ConfigError::new(
                    "broker.working_dir",
                    format!("{} exists and is not a directory", d.display()),
                ));
            }
        }
        if let Some(c) = &self.confluence {
            c.validate(errors);
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
    /// Hours without contact / imports before OFFLINE / NO IMPORTS (default 24, as
    /// broker-monitor's README says; its code says 72).
    pub threshold_hours_failure: u32,
    /// Weeks before a persisting OFFLINE / NO IMPORTS / OUTDATED is mailed again (default 1).
    pub weeks_notification_interval: u32,
    /// Consecutive import days that make a node "active" rather than TESTING (default 3).
    pub consecutive_import_days: u32,
    /// Root ids (`PATIENT`, `ENCOUNTER`, `BILLING`).
    pub root: BTreeMap<String, String>,
    /// Extension id formats (`PATIENT`, `ENCOUNTER`, `BILLING`).
    pub format: BTreeMap<String, String>,
    /// `CONTACTS` (a Vitals extension): the node's contacts.
    pub contacts: Vec<Contact>,
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

/// `CONTACTS` of a mapping entry: a list of addresses or of objects `{"EMAIL", "NAME",
/// "ROLE", "MAIN", "OPTED_OUT"}` (keys in any case), or one string of addresses.
fn contacts_of(v: Option<&serde_json::Value>, at: &str, errors: &mut Vec<String>) -> Vec<Contact> {
    use serde_json::Value as J;
    let items: Vec<J> = match v {
        None | Some(J::Null) => return Vec::new(),
        Some(J::Array(a)) => a.clone(),
        Some(J::String(s)) => s
            .split([',', ';'])
            .map(|x| x.trim())
            .filter(|x| !x.is_empty())
            .map(|x| J::String(x.to_string()))
            .collect(),
        Some(_) => {
            errors.push(format!("{at}.CONTACTS: must be a list"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = format!("{at}.CONTACTS[{i}]");
        let config = match item {
            J::String(s) => ContactConfig::Address(s.clone()),
            J::Object(o) => {
                let get = |k: &str| {
                    o.iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v)
                };
                let text = |k: &str| get(k).and_then(|v| v.as_str()).map(str::to_string);
                let flag = |k: &str| match get(k) {
                    None | Some(J::Null) => false,
                    Some(J::Bool(b)) => *b,
                    Some(J::Number(n)) => n.as_f64() != Some(0.0),
                    // broker-monitor's table: any non-empty cell means yes.
                    Some(J::String(s)) => !s.trim().is_empty(),
                    Some(_) => true,
                };
                let Some(email) = text("EMAIL") else {
                    errors.push(format!("{here}.EMAIL: is required"));
                    continue;
                };
                ContactConfig::Full {
                    email,
                    name: text("NAME"),
                    role: text("ROLE"),
                    main: flag("MAIN"),
                    opted_out: flag("OPTED_OUT"),
                }
            }
            _ => {
                errors.push(format!("{here}: must be an address or an object"));
                continue;
            }
        };
        match config.to_contact() {
            Ok(c) => out.push(c),
            Err(e) => errors.push(format!("{here}: {e}")),
        }
    }
    out
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
        // As in broker-monitor, 0 or a missing value means the default.
        let number = |key: &str, default: u32, errors: &mut Vec<String>| -> u32 {
            let parsed = match m.get(key) {
                None | Some(serde_json::Value::Null) => return default,
                Some(serde_json::Value::Number(n)) if n.as_f64() == Some(0.0) => return default,
                Some(serde_json::Value::String(s)) if s.trim() == "0" => return default,
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => return default,
                Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
                Some(_) => None,
            };
            match parsed.and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => n,
                _ => {
                    errors.push(format!(
                        "{at}.{key}: must be a whole number of at least 1 (0: the default)"
                    ));
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
        let contacts = contacts_of(m.get("CONTACTS"), &at, &mut errors);
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

/// `[broker]`, if present, validated.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> Option<BrokerConfig> {
    let b = crate::deserialize::<BrokerConfig>(root.remove("broker")?, "broker", errors)?;
    b.validate(errors);
    Some(b)
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
        // 0 means the default, as in broker-monitor.
        let m = parse_mapping(r#"{"1": {"COMMON_NAME": "x", "THRESHOLD_HOURS_FAILURE": 0, "WEEKS_NOTIFICATION_INTERVAL": "0"}}"#).unwrap();
        assert_eq!(m.nodes["1"].threshold_hours_failure, 24);
        assert_eq!(m.nodes["1"].weeks_notification_interval, 1);
        assert!(parse_mapping("{").unwrap_err()[0].starts_with("not valid JSON"));
    }

    #[test]
    fn contacts_by_role_give_broker_monitors_recipients() {
        let m = parse_mapping(
            r#"{"3": {"COMMON_NAME": "[3] Drei", "CONTACTS": [
                "plain@clinic-3.example",
                {"EMAIL": "chief@clinic-3.example", "NAME": "Dr. Chef", "ROLE": "Notaufnahme", "MAIN": "x"},
                {"email": "nurse@clinic-3.example", "role": "ed"},
                {"EMAIL": "it@clinic-3.example", "ROLE": "IT"},
                {"EMAIL": "gone@clinic-3.example", "ROLE": "it", "OPTED_OUT": true},
                {"EMAIL": "IT@clinic-3.example", "ROLE": "it"}
            ]}}"#,
        )
        .unwrap();
        let c = &m.nodes["3"].contacts;
        assert_eq!(c.len(), 6);
        assert_eq!(c[1].role, ContactRole::Ed);
        assert_eq!(c[1].name.as_deref(), Some("Dr. Chef"));
        assert_eq!(
            recipients(c),
            [
                "plain@clinic-3.example",
                "chief@clinic-3.example",
                "it@clinic-3.example"
            ]
        );
        let errs = parse_mapping(
            r#"{"4": {"COMMON_NAME": "x", "CONTACTS": [{"ROLE": "it"}, {"EMAIL": "a@b", "ROLE": "boss"}, "nope", 5]}}"#,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs[0].ends_with("CONTACTS[0].EMAIL: is required"),
            "{errs:?}"
        );
        assert!(errs[1].contains("role \"boss\""), "{errs:?}");

        let cfg = crate::Config::parse(
            "[broker]\nurl = \"https://b.example\"\napi_key = \"k\"\n[broker.contacts]\n\
             \"3\" = [\"it@c3.example\", { email = \"ed@c3.example\", role = \"ed\", main = true }, { email = \"x@c3.example\", role = \"it\", opted_out = true }]\n",
            &|_| None,
        )
        .unwrap();
        let errs = crate::Config::parse(
            "[broker]\nurl = \"https://b.example\"\napi_key = \"k\"\n[broker.contacts]\n\"3\" = [{ role = \"it\" }, { email = \"a@b\", rolle = \"it\" }]\n",
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(errs.contains("missing field `email`"), "{errs}");
        assert!(errs.contains("broker.contacts"), "{errs}");
        let list: Vec<Contact> = cfg.broker.unwrap().contacts["3"]
            .iter()
            .map(|c| c.to_contact().unwrap())
            .collect();
        assert_eq!(recipients(&list), ["it@c3.example", "ed@c3.example"]);
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
        assert_eq!(b.language, "de");
        assert!(b.working_dir.is_none() && b.confluence.is_none());
        assert_eq!(b.interval, Duration::from_secs(3600));
        let errs = crate::Config::parse(
            "[broker]\nurl = \"https://broker.example.org\"\napi_key = \"k\"\nlanguage = \"fr\"\n\
             [broker.confluence]\nurl = \"wiki\"\nspace = \"\"\ntoken = \"\"\n",
            &|_| None,
        )
        .unwrap_err();
        let msgs: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
        for want in [
            "broker.language:",
            "broker.confluence.url:",
            "broker.confluence.space: is empty",
            "broker.confluence.token: is empty",
        ] {
            assert!(
                msgs.iter().any(|m| m.starts_with(want)),
                "{want} in {msgs:?}"
            );
        }
        assert_eq!((b.concurrency, b.timeout), (16, Duration::from_secs(30)));
    }
}
