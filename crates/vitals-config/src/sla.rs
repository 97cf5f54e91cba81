//! `[sla]`: SLA logs followed continuously, with their targets parsed here.

use crate::de::deserialize;
use crate::{valid_id, ConfigError, ID_RULE};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use vitals_core::spec;

/// `[sla]`: SLA logs followed continuously; every period becomes one observation per operation
/// (check `sla:{operation}`) on `asset`, `crit` when a target is broken.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    /// Log files to follow (rotation and truncation are noticed).
    pub files: Vec<PathBuf>,
    /// The asset the observations belong to.
    pub asset: String,
    /// Evaluation period.
    #[serde(default = "default_sla_period", with = "spec::duration")]
    pub period: Duration,
    /// Targets as `vitals sla --target` writes them: `OPERATION=PCT:DURATION`, e.g.
    /// `"minlog2.*=95:2.5s"`; every applicable target must hold. Parsed here, so the follower
    /// cannot meet one it does not understand.
    #[serde(default, deserialize_with = "sla_targets")]
    pub targets: Vec<vitals_sla::Target>,
}

fn sla_targets<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<vitals_sla::Target>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|t| t.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn default_sla_period() -> Duration {
    Duration::from_secs(60)
}

/// `[sla]`, if present, with what serde cannot say about it.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> Option<SlaConfig> {
    let sla = match root.remove("sla") {
        None => None,
        Some(v) => deserialize::<SlaConfig>(v, "sla", errors),
    };
    if let Some(sla) = &sla {
        if sla.files.is_empty() {
            errors.push(ConfigError::new("sla.files", "name at least one log file"));
        }
        if !valid_id(&sla.asset) {
            errors.push(ConfigError::new(
                "sla.asset",
                format!("{:?} {ID_RULE}", sla.asset),
            ));
        }
        if sla.period < Duration::from_secs(1) {
            errors.push(ConfigError::new("sla.period", "must be at least 1s"));
        }
    }
    sla
}
