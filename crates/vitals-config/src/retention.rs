//! `[retention]`: how long data is kept and when the cleanup job runs.

use crate::de::deserialize;
use crate::{ConfigError, Cron};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use vitals_core::spec;

/// `[retention]`: how long data is kept, and the cleanup job that enforces it (run like the
/// national platform's: bounded batches, a pause between them, a maximum run time).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Raw observations (deleted only once rolled up).
    #[serde(default = "d30", with = "spec::duration")]
    pub raw: Duration,
    /// Hourly rollups.
    #[serde(default = "d400", with = "spec::duration")]
    pub hourly: Duration,
    /// Daily rollups.
    #[serde(default = "d1830", with = "spec::duration")]
    pub daily: Duration,
    /// When the cleanup job runs by itself (cron, UTC); computing rollups is part of it.
    #[serde(default = "default_cleanup_cron")]
    pub cron: Cron,
    /// Rows deleted per transaction.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Pause between batches, so ingest never stalls.
    #[serde(default = "default_pause", with = "spec::duration")]
    pub pause: Duration,
    /// A run stops after this long (and goes on at the next one).
    #[serde(default = "default_max_run", with = "spec::duration")]
    pub max_run: Duration,
    /// Resolved alerts (with their transitions), after they resolved.
    #[serde(default = "d180", with = "spec::duration")]
    pub alerts: Duration,
    /// Sent and failed notifications (pending ones are always kept).
    #[serde(default = "d90", with = "spec::duration")]
    pub notifications: Duration,
    /// Audit entries stay in the live log this long, then move to compressed archive files.
    #[serde(default = "d400", with = "spec::duration")]
    pub audit: Duration,
    /// Where archived audit entries go (default: `audit-archive` in `data_dir`).
    #[serde(default)]
    pub audit_archive: Option<PathBuf>,
}

fn d90() -> Duration {
    Duration::from_secs(90 * 86_400)
}
fn d180() -> Duration {
    Duration::from_secs(180 * 86_400)
}

fn d30() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn d400() -> Duration {
    Duration::from_secs(400 * 86_400)
}
fn d1830() -> Duration {
    Duration::from_secs(1830 * 86_400)
}
fn default_cleanup_cron() -> Cron {
    // A constant expression; the tests parse the default configuration.
    Cron::parse("17 * * * *").expect("the default cleanup schedule is a valid cron expression")
}
fn default_batch() -> usize {
    10_000
}
fn default_pause() -> Duration {
    Duration::from_secs(2)
}
fn default_max_run() -> Duration {
    Duration::from_secs(25)
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw: d30(),
            hourly: d400(),
            daily: d1830(),
            cron: default_cleanup_cron(),
            batch: default_batch(),
            pause: default_pause(),
            max_run: default_max_run(),
            alerts: d180(),
            notifications: d90(),
            audit: d400(),
            audit_archive: None,
        }
    }
}

/// `[retention]`, or the defaults when it is absent, with what serde cannot say about it.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> RetentionConfig {
    let retention = match root.remove("retention") {
        None => RetentionConfig::default(),
        Some(v) => deserialize::<RetentionConfig>(v, "retention", errors).unwrap_or_default(),
    };
    if retention.batch == 0 {
        errors.push(ConfigError::new("retention.batch", "must be at least 1"));
    }
    if retention.raw < Duration::from_secs(3600) {
        errors.push(ConfigError::new("retention.raw", "must be at least 1h"));
    }
    if retention.max_run.is_zero() {
        errors.push(ConfigError::new(
            "retention.max_run",
            "must be more than 0s",
        ));
    }
    retention
}
