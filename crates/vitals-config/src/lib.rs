//! `vitals.toml`: one TOML file, parsed and validated before anything is built.
//!
//! Parsing goes in three passes so that *every* error is reported at once, each with its path
//! (`check[3].url: relative URL without a base`):
//! 1. TOML syntax (one error with line and column if the file is not TOML at all);
//! 2. `${ENV}` expansion over every string value, then typed deserialization section by section
//!    and element by element (`deny_unknown_fields` everywhere: a misspelt key is an error);
//! 3. semantic checks across the whole file (unknown assets and parents, duplicates, cycles,
//!    URLs, regexes, JSON conditions, cron expressions).
//!
//! One module per section parses it (and checks what serde cannot); the shared machinery is in
//! `de`. This file holds [`Config`], the order of the passes, and the re-exports, so that every
//! type is `vitals_config::X` whichever module it lives in.

pub mod assets;
pub mod audit;
pub mod broker;
pub mod checks;
mod de;
pub mod engine;
pub mod env;
pub mod ingest;
pub mod notifiers;
pub mod retention;
pub mod rules;
pub mod scores;
pub mod server;
pub mod sla;
pub mod status_page;
pub mod tokens;
pub mod ui;

pub use assets::AssetConfig;
pub use audit::AuditConfig;
pub use broker::BrokerConfig;
pub use checks::{
    validate_check, CheckConfig, Located, ScheduleSpec, DEFAULT_INTERVAL, DEFAULT_TIMEOUT,
};
pub use ingest::{IngestConfig, UnknownAssets};
pub use notifiers::NotifierConfig;
pub use retention::RetentionConfig;
pub use rules::{Cron, MaintenanceConfig, Rule, RuleConfig, RuleKind};
pub use scores::ScoreConfig;
pub use server::{ConnectionLimits, Durability, ServerConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
pub use sla::SlaConfig;
pub use status_page::StatusPageConfig;
pub use tokens::{sha256, Role, TokenConfig};
pub use ui::UiConfig;

pub(crate) use de::{array_of_tables, deserialize};

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

/// Top-level sections this version understands.
pub const KNOWN_SECTIONS: &[&str] = &[
    "server",
    "asset",
    "check",
    "score",
    "ingest",
    "rule",
    "maintenance",
    "notifier",
    "broker",
    "retention",
    "audit",
    "sla",
    "token",
    "ui",
    "status_page",
    "source_set",
    "pipeline",
    "job",
];

/// One configuration error, with the path of the value it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `check[3].url`, `server.listen`, or empty for the file as a whole.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All errors of one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub assets: Vec<AssetConfig>,
    pub checks: Vec<CheckConfig>,
    pub scores: Vec<ScoreConfig>,
    pub ingest: IngestConfig,
    pub rules: Vec<Rule>,
    pub maintenance: Vec<MaintenanceConfig>,
    pub notifiers: Vec<NotifierConfig>,
    /// `[broker]`: the AKTIN broker the fleet collector polls.
    pub broker: Option<BrokerConfig>,
    pub retention: RetentionConfig,
    pub audit: AuditConfig,
    pub sla: Option<SlaConfig>,
    pub tokens: Vec<TokenConfig>,
    /// `[ui]`: how the web UI shows things.
    pub ui: UiConfig,
    /// `[[status_page]]`: public read-only pages at `/status/{slug}`.
    pub status_pages: Vec<StatusPageConfig>,
    /// `[[source_set]]`, `[[pipeline]]`, `[[job]]`: integration engines.
    pub engine: engine::EngineConfig,
}

impl Config {
    /// Reads and validates a file, expanding `${ENV}` from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        Config::parse(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates TOML text; `env` answers `${NAME}` look-ups.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let mut root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("not valid TOML: {}", e.to_string().trim()),
            )])
        })?;
        let mut errors = Vec::new();
        // Agents get located checks as written and expand `${ENV}` with their own environment.
        let raw_checks = root.get("check").cloned();
        de::expand_env(&mut root, "", env, &mut errors);

        for key in root.keys() {
            if !KNOWN_SECTIONS.contains(&key.as_str()) {
                errors.push(ConfigError::new(
                    key.clone(),
                    format!("unknown section (known: {})", KNOWN_SECTIONS.join(", ")),
                ));
            }
        }

        let server = server::parse(&mut root, &mut errors);
        let (asset_paths, assets) = assets::parse(&mut root, &mut errors);
        let check_alerts = checks::take_alerts(&mut root, &mut errors);
        let (check_paths, checks) = checks::parse(&mut root, raw_checks.as_ref(), &mut errors);
        let (score_paths, scores) = scores::parse(&mut root, &mut errors);
        let ingest = ingest::parse(&mut root, &mut errors);

        let mut made_rules = check_alerts;
        made_rules.extend(tokens::agent_rules(&root));
        let (rules, rule_refs) = rules::parse(&mut root, made_rules, &mut errors);
        let maintenance = rules::parse_maintenance(&mut root, &mut errors);
        let notifiers = notifiers::parse(&mut root, &mut errors);
        notifiers::check_references(&rule_refs, &notifiers, &mut errors);

        let retention = retention::parse(&mut root, &mut errors);
        let audit = audit::parse(&mut root, &mut errors);
        let ui = ui::parse(&mut root, &mut errors);
        let broker = broker::parse(&mut root, &mut errors);
        let sla = sla::parse(&mut root, &mut errors);
        let tokens = tokens::parse(&mut root, &mut errors);

        let status_tables = array_of_tables(&mut root, "status_page", &mut errors);
        let asset_ids: Vec<&str> = assets
            .iter()
            .map(|a| a.id.as_str())
            .chain(checks.iter().map(|c| c.asset.as_str()))
            .collect();
        let status_pages = status_page::parse(status_tables, &asset_ids, &mut errors);

        let engine = engine::parse(&mut root, &mut errors);
        let config = Config {
            engine,
            status_pages,
            broker,
            server,
            assets,
            checks,
            scores,
            ingest,
            rules,
            maintenance,
            notifiers,
            retention,
            audit,
            sla,
            tokens,
            ui,
        };
        // The cross-element checks run once everything is parsed, in this order.
        server::validate(&config.server, &mut errors);
        assets::validate(&config.assets, &asset_paths, &mut errors);
        scores::validate(&config.scores, &score_paths, &mut errors);
        ingest::validate(&config.ingest, &mut errors);
        checks::validate(&config.checks, &check_paths, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The built-in configuration of `vitals serve` without a file: serve, and watch yourself.
    pub fn builtin() -> Config {
        Config::default()
    }

    /// Every asset: the declared ones, plus one for each check whose asset is not declared.
    pub fn effective_assets(&self) -> Vec<AssetConfig> {
        let mut out = self.assets.clone();
        let mut seen: HashSet<String> = out.iter().map(|a| a.id.clone()).collect();
        for c in &self.checks {
            if seen.insert(c.asset.clone()) {
                out.push(AssetConfig {
                    id: c.asset.clone(),
                    name: None,
                    group: None,
                    groups: Vec::new(),
                    labels: BTreeMap::new(),
                    parents: Vec::new(),
                    metadata: serde_json::Map::new(),
                });
            }
        }
        out
    }
}

/// A location name: an id without `@` (which separates check and location in the names of
/// per-location checks, `{check}@{location}`).
pub fn valid_location(l: &str) -> bool {
    valid_id(l) && !l.contains('@')
}

/// The asset a site agent reports itself as.
pub fn agent_asset(location: &str) -> String {
    format!("agent-{location}")
}

// Ids are the same rule everywhere: vitals-core's, for the specs' own checks.
pub(crate) use vitals_core::spec::{valid_id, ID_RULE};

#[cfg(test)]
mod tests;
