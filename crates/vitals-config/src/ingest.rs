//! `[ingest]`: what pushed results may create and carry.

use crate::de::deserialize;
use crate::ConfigError;
use serde::Deserialize;
use std::time::Duration;
use vitals_core::spec;

/// What to do with a pushed result for an asset that is not configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnknownAssets {
    /// Create the asset on its first report (as django-health-monitor does).
    #[default]
    Create,
    /// Answer 404 naming the asset.
    Reject,
}

/// `[ingest]`: pushed results.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    #[serde(default)]
    pub unknown_assets: UnknownAssets,
    /// Most results in one `POST /api/v1/results`.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Most assets that pushed results may create, in all (configured assets do not count).
    #[serde(default = "default_max_assets")]
    pub max_assets: usize,
    /// Most checks one asset may have (configured and pushed together).
    #[serde(default = "default_max_checks_per_asset")]
    pub max_checks_per_asset: usize,
    /// Most values in one result.
    #[serde(default = "default_max_values")]
    pub max_values: usize,
    /// Longest `duration_ms` of a result.
    #[serde(default = "default_max_duration", with = "spec::duration")]
    pub max_duration: Duration,
    /// A site agent not heard from for this long makes its checks `unknown`.
    #[serde(default = "default_agent_stale", with = "spec::duration")]
    pub agent_stale_after: Duration,
}

fn default_agent_stale() -> Duration {
    Duration::from_secs(120)
}

fn default_max_batch() -> usize {
    10_000
}
fn default_max_assets() -> usize {
    10_000
}
fn default_max_checks_per_asset() -> usize {
    200
}
fn default_max_values() -> usize {
    64
}
fn default_max_duration() -> Duration {
    Duration::from_secs(86_400)
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            unknown_assets: UnknownAssets::Create,
            max_batch: default_max_batch(),
            max_assets: default_max_assets(),
            max_checks_per_asset: default_max_checks_per_asset(),
            max_values: default_max_values(),
            max_duration: default_max_duration(),
            agent_stale_after: default_agent_stale(),
        }
    }
}

/// `[ingest]`, or the defaults when it is absent.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> IngestConfig {
    match root.remove("ingest") {
        None => IngestConfig::default(),
        Some(v) => deserialize::<IngestConfig>(v, "ingest", errors).unwrap_or_default(),
    }
}

/// Limits of 0 would refuse everything.
pub(crate) fn validate(ingest: &IngestConfig, errors: &mut Vec<ConfigError>) {
    for (k, n) in [
        ("max_assets", ingest.max_assets),
        ("max_checks_per_asset", ingest.max_checks_per_asset),
        ("max_values", ingest.max_values),
    ] {
        if n == 0 {
            errors.push(ConfigError::new(
                format!("ingest.{k}"),
                "must be at least 1",
            ));
        }
    }
    if ingest.max_batch == 0 {
        errors.push(ConfigError::new("ingest.max_batch", "must be at least 1"));
    }
}
