//! `[audit]`: the optional audit file.

use crate::de::deserialize;
use crate::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// `[audit]`: the audit log is always kept in the database; optionally also appended to a file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// One line per change, in the platform's style: `2026-11-21 08:22:04,267 Action=… Caller=… Params={…}`.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// `[audit]`, or the defaults when it is absent.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> AuditConfig {
    match root.remove("audit") {
        None => AuditConfig::default(),
        Some(v) => deserialize::<AuditConfig>(v, "audit", errors).unwrap_or_default(),
    }
}
