//! `[[notifier]]`: the channels alerts are delivered to.

use crate::de::{array_of_tables, Keys};
use crate::{valid_id, ConfigError, ID_RULE};

/// `[[notifier]]`: a channel alerts are delivered to.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierConfig {
    pub id: String,
    pub spec: vitals_core::notify::NotifierSpec,
}

fn parse_notifier(
    v: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<NotifierConfig> {
    use vitals_core::notify::NotifierSpec;
    let toml::Value::Table(mut table) = v else {
        errors.push(ConfigError::new(path, "must be a table"));
        return None;
    };
    let id = match table.remove("id") {
        Some(toml::Value::String(s)) if valid_id(&s) => Some(s),
        Some(toml::Value::String(s)) => {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!("{s:?} {ID_RULE}"),
            ));
            None
        }
        Some(_) => {
            errors.push(ConfigError::new(format!("{path}.id"), "must be a string"));
            None
        }
        None => {
            errors.push(ConfigError::new(format!("{path}.id"), "is required"));
            None
        }
    };
    let kind = match table.remove("type") {
        Some(toml::Value::String(s)) => s,
        _ => {
            errors.push(ConfigError::new(
                format!("{path}.type"),
                format!("is required: one of {}", NotifierSpec::TYPES.join(", ")),
            ));
            return None;
        }
    };
    let keys = Keys {
        value: toml::Value::Table(table),
        path,
        errors,
    };
    let Some(spec) = NotifierSpec::deserialize_kind(&kind, keys) else {
        errors.push(ConfigError::new(
            format!("{path}.type"),
            format!(
                "unknown notifier type {kind:?} (known: {})",
                NotifierSpec::TYPES.join(", ")
            ),
        ));
        return None;
    };
    let spec = spec?;
    for (key, msg) in spec.validate() {
        errors.push(ConfigError::new(format!("{path}.{key}"), msg));
    }
    Some(NotifierConfig { id: id?, spec })
}

/// Every `[[notifier]]` that parses; ids are unique.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> Vec<NotifierConfig> {
    let mut notifiers: Vec<NotifierConfig> = Vec::new();
    for (path, v) in array_of_tables(root, "notifier", errors) {
        if let Some(n) = parse_notifier(v, &path, errors) {
            if let Some(prev) = notifiers.iter().position(|x| x.id == n.id) {
                errors.push(ConfigError::new(
                    format!("{path}.id"),
                    format!("duplicate notifier id {:?} (also notifier[{prev}])", n.id),
                ));
            }
            notifiers.push(n);
        }
    }
    notifiers
}

/// Every notifier a rule names must exist.
pub(crate) fn check_references(
    rule_refs: &[(String, Vec<String>)],
    notifiers: &[NotifierConfig],
    errors: &mut Vec<ConfigError>,
) {
    for (path, named) in rule_refs {
        for n in named {
            if !notifiers.iter().any(|x| &x.id == n) {
                errors.push(ConfigError::new(
                    format!("{path}.notifiers"),
                    format!("unknown notifier {n:?}"),
                ));
            }
        }
    }
}
