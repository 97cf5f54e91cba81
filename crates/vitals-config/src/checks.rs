//! `[[check]]`: what is probed or reported, when, and how a check's table becomes a typed
//! [`CheckConfig`] (common keys, then the keys of its type) that consumers cannot fail on.

use crate::de::{array_of_tables, default_true, deserialize, Keys};
use crate::{valid_id, valid_location, ConfigError, Cron, ID_RULE};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use vitals_core::schedule::Schedule;
use vitals_core::spec::{self, CheckKind, HeartbeatSpec, ProbeSpec, PushSpec};

/// Keys every `[[check]]` has, whatever its type; the rest belong to the probe type.
const CHECK_COMMON_KEYS: &[&str] = &[
    "asset",
    "name",
    "type",
    "interval",
    "cron",
    "timeout",
    "jitter",
    "enabled",
    "description",
    "accept_pushes",
    "locations",
    "quorum",
];

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// When a check runs: an interval, or a cron expression parsed when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleSpec {
    Interval(Duration),
    Cron(Cron),
}

/// `[[check]]`: one polled check, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    pub asset: String,
    pub name: String,
    pub schedule: ScheduleSpec,
    /// Upper bound of the phase offset of an interval check; the whole interval when `None`.
    pub jitter: Option<Duration>,
    pub timeout: Duration,
    pub enabled: bool,
    pub description: Option<String>,
    pub kind: CheckKind,
    /// Whether pushed results for this polled check are accepted (they are refused by
    /// default: a push must not hide what the probe sees).
    pub accept_pushes: bool,
    /// Probed by site agents at these locations instead of by the server (`locations = [...]`).
    pub locations: Option<Located>,
}

/// A check run by site agents: one observation per location (`{name}@{location}`), one
/// verdict (`{name}`) by quorum. See `docs/agents.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub locations: Vec<String>,
    /// Locations that must see `crit` for the verdict to be `crit` (fewer: `warn`).
    pub quorum: usize,
    /// The check's table as written (before `${ENV}` expansion, without `alert`), sent to the
    /// agents: they parse and validate it themselves, with their own environment.
    pub source: String,
}

impl CheckConfig {
    /// The `/ping/{slug}` of a heartbeat check.
    pub fn heartbeat_slug(&self) -> Option<String> {
        match &self.kind {
            CheckKind::Heartbeat(h) => Some(
                h.slug
                    .clone()
                    .unwrap_or_else(|| format!("{}-{}", self.asset, self.name)),
            ),
            _ => None,
        }
    }

    /// `asset/name`, the check's unique key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.asset, self.name)
    }

    /// The schedule; cannot fail for a validated config, but a typed error is kept anyway.
    pub fn build_schedule(&self) -> Result<Schedule, vitals_core::schedule::ScheduleError> {
        match &self.schedule {
            ScheduleSpec::Interval(d) => Schedule::interval(*d, &self.key(), self.jitter),
            ScheduleSpec::Cron(c) => Ok(c.schedule().clone()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckCommon {
    asset: String,
    name: String,
    #[serde(rename = "type")]
    // Read from the table before (a bad common key must not hide the type's errors); here so
    // that it is required and known.
    #[allow(dead_code)]
    kind: String,
    #[serde(default, with = "spec::duration::option")]
    interval: Option<Duration>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default, with = "spec::duration::option")]
    timeout: Option<Duration>,
    #[serde(default, with = "spec::duration::option")]
    jitter: Option<Duration>,
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    accept_pushes: bool,
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default)]
    quorum: Option<usize>,
}

fn parse_check(
    v: toml::Value,
    path: &str,
    raw: Option<&toml::Value>,
    errors: &mut Vec<ConfigError>,
) -> Option<CheckConfig> {
    let toml::Value::Table(table) = v else {
        errors.push(ConfigError::new(path, "must be a table"));
        return None;
    };
    let (common, rest): (toml::Table, toml::Table) = table
        .into_iter()
        .partition(|(k, _)| CHECK_COMMON_KEYS.contains(&k.as_str()));
    let before = errors.len();
    // The type is read before the common keys are: a bad `interval` must not hide a bad `url`.
    let kind_name = common
        .get("type")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let common: Option<CheckCommon> = deserialize(toml::Value::Table(common), path, errors);
    let kind = kind_name.as_deref();
    let probe = match kind {
        Some("push") => {
            deserialize::<PushSpec>(toml::Value::Table(rest), path, errors).map(CheckKind::Push)
        }
        Some("heartbeat") => deserialize::<HeartbeatSpec>(toml::Value::Table(rest), path, errors)
            .map(CheckKind::Heartbeat),
        Some(other) => {
            let keys = Keys {
                value: toml::Value::Table(rest),
                path,
                errors,
            };
            match ProbeSpec::deserialize_kind(other, keys) {
                Some(spec) => spec.map(CheckKind::Probe),
                None => {
                    errors.push(ConfigError::new(
                        format!("{path}.type"),
                        format!(
                            "unknown check type {other:?} (known: {})",
                            CheckKind::TYPES.join(", ")
                        ),
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let common = common?;
    let probe = probe?;
    let located = located(&common, &probe, path, raw, errors);
    let schedule = match (common.interval, common.cron) {
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                path,
                "give either interval or cron, not both",
            ));
            return None;
        }
        (Some(d), None) => ScheduleSpec::Interval(d),
        (None, Some(c)) => match Cron::parse(&c) {
            Ok(c) => ScheduleSpec::Cron(c),
            Err(e) => {
                errors.push(ConfigError::new(format!("{path}.cron"), e.to_string()));
                // No check is built, but the rest of it is still checked: every error at once.
                validate_kind(&probe, path, errors);
                return None;
            }
        },
        (None, None) => ScheduleSpec::Interval(DEFAULT_INTERVAL),
    };
    if errors.len() > before {
        return None;
    }
    // The default never exceeds the interval: `interval = "5s"` alone is a valid check.
    let timeout = common.timeout.unwrap_or(match &schedule {
        ScheduleSpec::Interval(d) => DEFAULT_TIMEOUT.min(*d),
        ScheduleSpec::Cron(_) => DEFAULT_TIMEOUT,
    });
    Some(CheckConfig {
        locations: located,
        asset: common.asset,
        name: common.name,
        schedule,
        jitter: common.jitter,
        timeout,
        enabled: common.enabled,
        description: common.description,
        kind: probe,
        accept_pushes: common.accept_pushes,
    })
}

/// `locations` and `quorum` of a check, validated; `None` for a check the server probes.
fn located(
    c: &CheckCommon,
    kind: &CheckKind,
    path: &str,
    raw: Option<&toml::Value>,
    errors: &mut Vec<ConfigError>,
) -> Option<Located> {
    if c.locations.is_empty() {
        if c.quorum.is_some() {
            errors.push(ConfigError::new(
                format!("{path}.quorum"),
                "is for checks with locations",
            ));
        }
        return None;
    }
    if kind.probe().is_none() || c.accept_pushes {
        errors.push(ConfigError::new(
            format!("{path}.locations"),
            "only polled checks (without accept_pushes) are run by agents",
        ));
    }
    for (i, l) in c.locations.iter().enumerate() {
        if !valid_location(l) || c.locations[..i].contains(l) {
            errors.push(ConfigError::new(
                format!("{path}.locations[{i}]"),
                format!("{l:?} must be a unique name of letters, digits and - _ . :"),
            ));
        }
    }
    let quorum = c.quorum.unwrap_or(1);
    if quorum == 0 || quorum > c.locations.len() {
        errors.push(ConfigError::new(
            format!("{path}.quorum"),
            format!("must be 1–{} (the number of locations)", c.locations.len()),
        ));
    }
    let mut table = raw
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    table.remove("alert");
    Some(Located {
        locations: c.locations.clone(),
        quorum,
        source: toml::to_string(&table).unwrap_or_default(),
    })
}

/// Heartbeat slugs, ids and duplicates across checks, then each check on its own.
pub(crate) fn validate(checks: &[CheckConfig], paths: &[String], errors: &mut Vec<ConfigError>) {
    let mut slugs: HashMap<String, usize> = HashMap::new();
    for (i, c) in checks.iter().enumerate() {
        if let Some(slug) = c.heartbeat_slug() {
            if let Some(prev) = slugs.insert(slug.clone(), i) {
                errors.push(ConfigError::new(
                    format!("{}.slug", paths[i]),
                    format!("heartbeat slug {slug:?} is also used by {}", paths[prev]),
                ));
            }
        }
    }

    let mut check_index: HashMap<(String, String), usize> = HashMap::new();
    for (i, c) in checks.iter().enumerate() {
        let path = &paths[i];
        if !valid_id(&c.asset) {
            errors.push(ConfigError::new(
                format!("{path}.asset"),
                format!("{:?} {ID_RULE}", c.asset),
            ));
        }
        if !valid_id(&c.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} {ID_RULE}", c.name),
            ));
        }
        if let Some(prev) = check_index.insert((c.asset.clone(), c.name.clone()), i) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!(
                    "duplicate check {:?} on asset {:?} (also check[{prev}])",
                    c.name, c.asset
                ),
            ));
        }
        errors.extend(validate_check(c, path));
    }
}

/// Checks one check on its own (timeout, schedule, probe keys); `path` prefixes every error.
pub fn validate_check(c: &CheckConfig, path: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if c.timeout.is_zero() {
        errors.push(ConfigError::new(
            format!("{path}.timeout"),
            "must be more than 0s",
        ));
    }
    match &c.schedule {
        ScheduleSpec::Interval(d) => {
            if *d < Duration::from_secs(1) {
                errors.push(ConfigError::new(
                    format!("{path}.interval"),
                    "must be at least 1s",
                ));
            } else if c.timeout > *d && c.kind.probe().is_some() {
                errors.push(ConfigError::new(
                    format!("{path}.timeout"),
                    "must not be longer than the interval",
                ));
            }
        }
        // Parsed when the check was read.
        ScheduleSpec::Cron(_) => {}
    }
    if let CheckKind::Probe(ProbeSpec::Icmp(i)) = &c.kind {
        let sending = i.packet_interval * i.count.saturating_sub(1).min(100);
        if sending >= c.timeout {
            errors.push(ConfigError::new(
                format!("{path}.timeout"),
                format!(
                    "must be longer than (count - 1) × packet_interval = {} so every request is sent (without `timeout`, it is the interval or 10s, whichever is shorter)",
                    humantime::format_duration(sending)
                ),
            ));
        }
    }
    validate_kind(&c.kind, path, &mut errors);
    errors
}

/// The keys of the check's type.
fn validate_kind(kind: &CheckKind, path: &str, errors: &mut Vec<ConfigError>) {
    match kind {
        CheckKind::Probe(p) => validate_probe(p, path, errors),
        CheckKind::Push(_) => {}
        CheckKind::Heartbeat(h) => {
            if let Some(slug) = &h.slug {
                if !valid_id(slug) {
                    errors.push(ConfigError::new(
                        format!("{path}.slug"),
                        format!("{slug:?} {ID_RULE}"),
                    ));
                }
            }
        }
    }
}

/// The keys of a polled check's type, as its spec checks them.
fn validate_probe(probe: &ProbeSpec, path: &str, errors: &mut Vec<ConfigError>) {
    for (key, message) in probe.validate() {
        let at = if key.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{key}")
        };
        errors.push(ConfigError::new(at, message));
    }
}

/// Per-check alert shorthands (`alert = { count = 3, notifiers = [...] }`) become rules
/// selecting just that check; taken out of the tables before the checks themselves are parsed.
pub(crate) fn take_alerts(
    root: &mut toml::Table,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, toml::Value)> {
    let mut check_alerts: Vec<(String, toml::Value)> = Vec::new();
    if let Some(toml::Value::Array(items)) = root.get_mut("check") {
        for (i, item) in items.iter_mut().enumerate() {
            let toml::Value::Table(t) = item else {
                continue;
            };
            let Some(alert) = t.remove("alert") else {
                continue;
            };
            let path = format!("check[{i}].alert");
            let (Some(toml::Value::String(asset)), Some(toml::Value::String(name))) =
                (t.get("asset"), t.get("name"))
            else {
                continue; // the check's own errors say what is missing
            };
            let toml::Value::Table(mut a) = alert else {
                errors.push(ConfigError::new(
                    path,
                    "must be a table: alert = { count = 3, notifiers = [\"ops\"] }",
                ));
                continue;
            };
            for k in [
                "id",
                "assets",
                "asset_prefixes",
                "groups",
                "labels",
                "checks",
            ] {
                if a.contains_key(k) {
                    errors.push(ConfigError::new(
                        format!("{path}.{k}"),
                        "not in a check's alert: it applies to its own check (write a [[rule]] to select others)",
                    ));
                }
            }
            if a.get("kind").and_then(toml::Value::as_str) == Some("population") {
                errors.push(ConfigError::new(
                    format!("{path}.kind"),
                    "a population rule is written as [[rule]]",
                ));
                continue;
            }
            a.insert(
                "id".into(),
                toml::Value::String(format!("check:{asset}:{name}")),
            );
            a.insert(
                "assets".into(),
                toml::Value::Array(vec![toml::Value::String(asset.clone())]),
            );
            a.insert(
                "checks".into(),
                toml::Value::Array(vec![toml::Value::String(name.clone())]),
            );
            check_alerts.push((path, toml::Value::Table(a)));
        }
    }
    check_alerts
}

/// Every `[[check]]` that parses, with its path as written. `raw` is the `check` array before
/// `${ENV}` expansion: agents get located checks as written and expand them themselves.
pub(crate) fn parse(
    root: &mut toml::Table,
    raw: Option<&toml::Value>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<String>, Vec<CheckConfig>) {
    let raw_check = |path: &str| {
        let i: usize = path
            .strip_prefix("check[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        raw?.as_array()?.get(i).cloned()
    };
    array_of_tables(root, "check", errors)
        .into_iter()
        .filter_map(|(path, v)| {
            let raw = raw_check(&path);
            parse_check(v, &path, raw.as_ref(), errors).map(|c| (path, c))
        })
        .unzip()
}
