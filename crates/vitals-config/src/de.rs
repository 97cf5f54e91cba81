//! The machinery every section shares: `${ENV}` expansion over the whole tree, `[[name]]`
//! elements with their paths, and deserialization that names every bad key of an element.

use crate::{env, ConfigError};

pub(crate) fn default_true() -> bool {
    true
}

/// Walks every string value and expands `${NAME}`; a missing variable is an error at its path.
pub(crate) fn expand_env(
    table: &mut toml::Table,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    for (k, v) in table.iter_mut() {
        let path = join(prefix, k);
        expand_value(v, &path, env, errors);
    }
}

fn expand_value(
    v: &mut toml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    match v {
        toml::Value::String(s) => match env::expand(s, env) {
            Ok(x) => *s = x,
            Err(missing) => {
                for name in missing {
                    errors.push(ConfigError::new(
                        path,
                        format!("environment variable {name} is not set"),
                    ));
                }
            }
        },
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), env, errors);
            }
        }
        toml::Value::Table(t) => expand_env(t, path, env, errors),
        _ => {}
    }
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// `[[name]]` elements with their paths (`name[0]`, …).
pub(crate) fn array_of_tables(
    root: &mut toml::Table,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, toml::Value)> {
    match root.remove(name) {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{name}[{i}]"), v))
            .collect(),
        Some(_) => {
            errors.push(ConfigError::new(
                name,
                format!("must be an array of tables, written [[{name}]]"),
            ));
            Vec::new()
        }
    }
}

/// Deserializes one value, turning a serde error into a path-named config error.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
    mut v: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    // serde stops at the first bad key. To name every bad key of an element at once, the key
    // that failed is taken out and the rest tried again (a few rounds at most); what is then
    // only missing because it was taken out is not reported twice.
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..16 {
        match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            Ok(t) => return (removed.is_empty()).then_some(t),
            Err(e) => {
                let inner = e.path().to_string();
                let message = clean_serde_message(&e.into_inner().to_string());
                if removed
                    .iter()
                    .any(|k| message.contains(&format!("`{k}`")) || inner == *k)
                {
                    return None;
                }
                let full = if inner == "." || inner.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}.{inner}")
                };
                errors.push(ConfigError::new(full, message));
                // Only a top-level key of a table can be taken out and tried without.
                let key = inner.split(['.', '[']).next().unwrap_or("").to_string();
                let taken =
                    !key.is_empty() && v.as_table_mut().is_some_and(|t| t.remove(&key).is_some());
                if !taken {
                    return None;
                }
                removed.push(key);
            }
        }
    }
    None
}

/// toml's messages may span lines and repeat context; keep the first meaningful line.
pub(crate) fn clean_serde_message(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(msg)
        .to_string()
}

/// The keys of one element, deserialized into the spec of a registered kind with
/// [`deserialize`]'s error reporting (`ProbeSpec::deserialize_kind`,
/// `NotifierSpec::deserialize_kind`).
pub(crate) struct Keys<'a> {
    pub(crate) value: toml::Value,
    pub(crate) path: &'a str,
    pub(crate) errors: &'a mut Vec<ConfigError>,
}

impl<S> vitals_core::spec::SpecVisitor<S> for Keys<'_> {
    type Out = Option<S>;

    fn visit<T: serde::de::DeserializeOwned>(self, wrap: fn(T) -> S) -> Option<S> {
        deserialize::<T>(self.value, self.path, self.errors).map(wrap)
    }
}
