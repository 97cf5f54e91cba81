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
//! Sections of later capabilities (`[[score]]`, `[[rule]]`, `[[notifier]]`, `[[token]]`,
//! `[broker]`, `[retention]`, `[sla]`) join [`KNOWN_SECTIONS`] as they are built; until then
//! they are reported as unknown rather than silently ignored.

pub mod broker;
pub mod env;
pub mod rules;

pub use broker::BrokerConfig;
pub use rules::{MaintenanceConfig, Rule, RuleConfig, RuleKind};

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vitals_core::schedule::Schedule;
use vitals_core::spec::{
    self, CheckKind, DnsSpec, ExecSpec, HeartbeatSpec, HttpSpec, JsonCondition, ProbeSpec,
    PushSpec, TcpSpec, TlsSpec,
};

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
];

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
];

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./vitals-data";

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

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the embedded database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Probes running at once, at most.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Whether the built-in self check (`/monitor?details` of this server) is added.
    #[serde(default = "default_true")]
    pub self_check: bool,
    /// How users reach this server (for links in notifications), e.g. `https://vitals.example.org`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Serve HTTPS with this PEM certificate chain … (re-read on SIGHUP)
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// … and this PEM private key.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_max_concurrency() -> usize {
    512
}
fn default_true() -> bool {
    true
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            max_concurrency: default_max_concurrency(),
            self_check: true,
            public_url: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[[asset]]`: something watched.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    pub id: String,
    /// Display name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// One group (`group = "clinics"`) …
    #[serde(default)]
    pub group: Option<String>,
    /// … or several.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Assets this one depends on (alerts of a child are suppressed while a parent is down).
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl AssetConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// `group` and `groups` together, in order, without duplicates.
    pub fn all_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self.group.iter().chain(self.groups.iter()) {
            if !out.contains(g) {
                out.push(g.clone());
            }
        }
        out
    }
}

/// When a check runs, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleSpec {
    Interval(Duration),
    Cron(String),
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
            ScheduleSpec::Cron(expr) => Schedule::cron(expr),
        }
    }
}

/// `[[score]]`: how a test's results become a score, and which groups the test belongs to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    pub test: String,
    pub groups: Vec<String>,
    pub field: String,
    pub kind: vitals_core::health::FieldKind,
    pub rules: Vec<vitals_core::health::ScoreCase>,
    /// An asset that has reported this test but not for longer than this is stale (`crit`).
    #[serde(default, with = "spec::duration::option")]
    pub stale_after: Option<Duration>,
}

impl ScoreConfig {
    pub fn rule(&self) -> vitals_core::health::ScoreRule {
        vitals_core::health::ScoreRule {
            test: self.test.clone(),
            groups: self.groups.clone(),
            field: self.field.clone(),
            kind: self.kind,
            rules: self.rules.clone(),
        }
    }
}

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
}

fn default_max_batch() -> usize {
    10_000
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            unknown_assets: UnknownAssets::Create,
            max_batch: default_max_batch(),
        }
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
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Push results and pings (optionally only for some assets).
    Reporter,
    /// Everything: acknowledge, silence, run jobs — and read and push.
    Admin,
}

/// `[[token]]`: an access token. Only the SHA-256 of the secret is kept in memory.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: Role,
    /// The secret itself, normally `${ENV}` …
    #[serde(default)]
    pub secret: Option<String>,
    /// … or its hash, `sha256:<64 hex digits>` (`vitals token hash` prints it).
    #[serde(default)]
    pub hash: Option<String>,
    /// Reporter scope: only these asset ids …
    #[serde(default)]
    pub assets: Vec<String>,
    /// … or ids starting with this.
    #[serde(default)]
    pub asset_prefix: Option<String>,
    /// Requests per second (sustained; bursts up to twice as many); 0 = no limit.
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
}

fn default_rate() -> u32 {
    200
}

// Secrets stay out of debug output and logs.
impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("assets", &self.assets)
            .field("asset_prefix", &self.asset_prefix)
            .finish_non_exhaustive()
    }
}

impl TokenConfig {
    /// The 32-byte SHA-256 of the secret, from `secret` or `hash`.
    pub fn digest(&self) -> Option<[u8; 32]> {
        if let Some(s) = &self.secret {
            return Some(sha256(s.as_bytes()));
        }
        let hex = self.hash.as_deref()?.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

/// SHA-256 of a secret (tokens are long random strings, so a plain hash suffices).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

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
    /// `"minlog2.*=95:2.5s"`; every applicable target must hold.
    #[serde(default)]
    pub targets: Vec<String>,
}

fn default_sla_period() -> Duration {
    Duration::from_secs(60)
}

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
    pub cron: String,
    /// Rows deleted per transaction.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Pause between batches, so ingest never stalls.
    #[serde(default = "default_pause", with = "spec::duration")]
    pub pause: Duration,
    /// A run stops after this long (and goes on at the next one).
    #[serde(default = "default_max_run", with = "spec::duration")]
    pub max_run: Duration,
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
fn default_cleanup_cron() -> String {
    "17 * * * *".into()
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
        }
    }
}

/// `[audit]`: the audit log is always kept in the database; optionally also appended to a file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// One line per change, in the platform's style: `2026-11-21 08:22:04,267 Action=… Caller=… Params={…}`.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// `[ui]`: the web UI. Times are stored in UTC and shown in `timezone` (an IANA name).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            timezone: default_timezone(),
        }
    }
}

/// `[[notifier]]`: a channel alerts are delivered to.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierConfig {
    pub id: String,
    pub spec: vitals_core::notify::NotifierSpec,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

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
        expand_env(&mut root, "", env, &mut errors);

        for key in root.keys() {
            if !KNOWN_SECTIONS.contains(&key.as_str()) {
                errors.push(ConfigError::new(
                    key.clone(),
                    format!("unknown section (known: {})", KNOWN_SECTIONS.join(", ")),
                ));
            }
        }

        let server = match root.remove("server") {
            None => ServerConfig::default(),
            Some(v) => deserialize::<ServerConfig>(v, "server", &mut errors).unwrap_or_default(),
        };
        // Paths keep the index as written, also when earlier elements failed to parse.
        let (asset_paths, assets): (Vec<String>, Vec<AssetConfig>) =
            array_of_tables(&mut root, "asset", &mut errors)
                .into_iter()
                .filter_map(|(path, v)| deserialize(v, &path, &mut errors).map(|a| (path, a)))
                .unzip();
        // Per-check alert shorthands (`alert = { count = 3, notifiers = [...] }`) become rules
        // selecting just that check; taken out before the check itself is parsed.
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
        let (check_paths, checks): (Vec<String>, Vec<CheckConfig>) =
            array_of_tables(&mut root, "check", &mut errors)
                .into_iter()
                .filter_map(|(path, v)| parse_check(v, &path, &mut errors).map(|c| (path, c)))
                .unzip();

        let (score_paths, scores): (Vec<String>, Vec<ScoreConfig>) =
            array_of_tables(&mut root, "score", &mut errors)
                .into_iter()
                .filter_map(|(path, v)| deserialize(v, &path, &mut errors).map(|s| (path, s)))
                .unzip();
        let ingest = match root.remove("ingest") {
            None => IngestConfig::default(),
            Some(v) => deserialize::<IngestConfig>(v, "ingest", &mut errors).unwrap_or_default(),
        };

        let mut rules_out = Vec::new();
        let mut rule_ids: HashMap<String, String> = HashMap::new();
        let mut rule_refs: Vec<(String, Vec<String>)> = Vec::new();
        let mut rule_tables = array_of_tables(&mut root, "rule", &mut errors);
        rule_tables.extend(check_alerts);
        for (path, v) in rule_tables {
            if let Some(rc) = deserialize::<RuleConfig>(v, &path, &mut errors) {
                if let Some(prev) = rule_ids.insert(rc.id.clone(), path.clone()) {
                    errors.push(ConfigError::new(
                        format!("{path}.id"),
                        format!("duplicate rule id {:?} (also {prev})", rc.id),
                    ));
                }
                let named = rc
                    .notifiers
                    .iter()
                    .chain(rc.escalate.iter().flat_map(|e| e.notifiers.iter()))
                    .cloned()
                    .collect();
                rule_refs.push((path.clone(), named));
                if let Some(r) = rc.validate(&path, &mut errors) {
                    rules_out.push(r);
                }
            }
        }
        let mut maintenance = Vec::new();
        for (path, v) in array_of_tables(&mut root, "maintenance", &mut errors) {
            if let Some(m) = deserialize::<MaintenanceConfig>(v, &path, &mut errors) {
                m.validate(&path, &mut errors);
                maintenance.push(m);
            }
        }

        let mut notifiers: Vec<NotifierConfig> = Vec::new();
        for (path, v) in array_of_tables(&mut root, "notifier", &mut errors) {
            if let Some(n) = parse_notifier(v, &path, &mut errors) {
                if let Some(prev) = notifiers.iter().position(|x| x.id == n.id) {
                    errors.push(ConfigError::new(
                        format!("{path}.id"),
                        format!("duplicate notifier id {:?} (also notifier[{prev}])", n.id),
                    ));
                }
                notifiers.push(n);
            }
        }
        // Every notifier a rule names must exist.
        for (path, named) in &rule_refs {
            for n in named {
                if !notifiers.iter().any(|x| &x.id == n) {
                    errors.push(ConfigError::new(
                        format!("{path}.notifiers"),
                        format!("unknown notifier {n:?}"),
                    ));
                }
            }
        }

        let retention = match root.remove("retention") {
            None => RetentionConfig::default(),
            Some(v) => {
                deserialize::<RetentionConfig>(v, "retention", &mut errors).unwrap_or_default()
            }
        };
        if let Err(e) = Schedule::cron(&retention.cron) {
            errors.push(ConfigError::new("retention.cron", e.to_string()));
        }
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
        let audit = match root.remove("audit") {
            None => AuditConfig::default(),
            Some(v) => deserialize::<AuditConfig>(v, "audit", &mut errors).unwrap_or_default(),
        };

        let ui = match root.remove("ui") {
            None => UiConfig::default(),
            Some(v) => deserialize::<UiConfig>(v, "ui", &mut errors).unwrap_or_default(),
        };
        if ui.timezone.parse::<chrono_tz::Tz>().is_err() {
            errors.push(ConfigError::new(
                "ui.timezone",
                format!(
                    "{:?} is not an IANA time zone name (e.g. UTC, Europe/Copenhagen)",
                    ui.timezone
                ),
            ));
        }

        let broker = root.remove("broker").and_then(|v| {
            let b = deserialize::<BrokerConfig>(v, "broker", &mut errors)?;
            b.validate(&mut errors);
            Some(b)
        });

        let sla = match root.remove("sla") {
            None => None,
            Some(v) => deserialize::<SlaConfig>(v, "sla", &mut errors),
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
            for (i, t) in sla.targets.iter().enumerate() {
                if let Err(e) = t.parse::<vitals_sla::Target>() {
                    errors.push(ConfigError::new(format!("sla.targets[{i}]"), e));
                }
            }
        }

        let mut tokens: Vec<TokenConfig> = Vec::new();
        for (path, v) in array_of_tables(&mut root, "token", &mut errors) {
            let Some(t) = deserialize::<TokenConfig>(v, &path, &mut errors) else {
                continue;
            };
            if !valid_id(&t.name) {
                errors.push(ConfigError::new(
                    format!("{path}.name"),
                    format!("{:?} {ID_RULE}", t.name),
                ));
            }
            if tokens.iter().any(|x| x.name == t.name) {
                errors.push(ConfigError::new(
                    format!("{path}.name"),
                    format!("duplicate token name {:?}", t.name),
                ));
            }
            match (&t.secret, &t.hash) {
                (Some(_), Some(_)) => errors.push(ConfigError::new(
                    path.clone(),
                    "give secret or hash, not both",
                )),
                (None, None) => errors.push(ConfigError::new(
                    path.clone(),
                    "give secret (e.g. \"${VITALS_TOKEN}\") or hash",
                )),
                (Some(s), None) if s.len() < 16 => errors.push(ConfigError::new(
                    format!("{path}.secret"),
                    "must be at least 16 characters (use a long random string)",
                )),
                (None, Some(_)) if t.digest().is_none() => errors.push(ConfigError::new(
                    format!("{path}.hash"),
                    "must be sha256: followed by 64 hex digits",
                )),
                _ => {}
            }
            if t.role != Role::Reporter && (!t.assets.is_empty() || t.asset_prefix.is_some()) {
                errors.push(ConfigError::new(
                    format!("{path}.assets"),
                    "asset scopes are for reporter tokens",
                ));
            }
            if tokens
                .iter()
                .any(|x| x.digest().is_some() && x.digest() == t.digest())
            {
                errors.push(ConfigError::new(
                    format!("{path}.secret"),
                    "the same secret as another token",
                ));
            }
            tokens.push(t);
        }

        let config = Config {
            broker,
            server,
            assets,
            checks,
            scores,
            ingest,
            rules: rules_out,
            maintenance,
            notifiers,
            retention,
            audit,
            sla,
            tokens,
            ui,
        };
        let paths = Paths {
            assets: asset_paths,
            checks: check_paths,
            scores: score_paths,
        };
        validate(&config, &paths, &mut errors);
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

/// Walks every string value and expands `${NAME}`; a missing variable is an error at its path.
fn expand_env(
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

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// `[[name]]` elements with their paths (`name[0]`, …).
fn array_of_tables(
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
fn deserialize<T: serde::de::DeserializeOwned>(
    v: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(v) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            errors.push(ConfigError::new(
                full,
                clean_serde_message(&e.into_inner().to_string()),
            ));
            None
        }
    }
}

/// toml's messages may span lines and repeat context; keep the first meaningful line.
fn clean_serde_message(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(msg)
        .to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckCommon {
    asset: String,
    name: String,
    #[serde(rename = "type")]
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
}

fn parse_notifier(
    v: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<NotifierConfig> {
    use vitals_core::notify::{
        AlertmanagerSpec, EmailSpec, LogfileSpec, NotifierSpec, SlackSpec, TeamsSpec, WebhookSpec,
    };
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
    let rest = toml::Value::Table(table);
    let spec = match kind.as_str() {
        "email" => deserialize::<EmailSpec>(rest, path, errors).map(NotifierSpec::Email),
        "slack" => deserialize::<SlackSpec>(rest, path, errors).map(NotifierSpec::Slack),
        "teams" => deserialize::<TeamsSpec>(rest, path, errors).map(NotifierSpec::Teams),
        "webhook" => deserialize::<WebhookSpec>(rest, path, errors).map(NotifierSpec::Webhook),
        "alertmanager" => {
            deserialize::<AlertmanagerSpec>(rest, path, errors).map(NotifierSpec::Alertmanager)
        }
        "logfile" => deserialize::<LogfileSpec>(rest, path, errors).map(NotifierSpec::Logfile),
        other => {
            errors.push(ConfigError::new(
                format!("{path}.type"),
                format!(
                    "unknown notifier type {other:?} (known: {})",
                    NotifierSpec::TYPES.join(", ")
                ),
            ));
            None
        }
    }?;
    for (key, msg) in spec.validate() {
        errors.push(ConfigError::new(format!("{path}.{key}"), msg));
    }
    Some(NotifierConfig { id: id?, spec })
}

fn parse_check(v: toml::Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<CheckConfig> {
    let toml::Value::Table(table) = v else {
        errors.push(ConfigError::new(path, "must be a table"));
        return None;
    };
    let (common, rest): (toml::Table, toml::Table) = table
        .into_iter()
        .partition(|(k, _)| CHECK_COMMON_KEYS.contains(&k.as_str()));
    let before = errors.len();
    let common: Option<CheckCommon> = deserialize(toml::Value::Table(common), path, errors);
    let kind = common.as_ref().map(|c| c.kind.as_str());
    let probe = match kind {
        Some("push") => {
            deserialize::<PushSpec>(toml::Value::Table(rest), path, errors).map(CheckKind::Push)
        }
        Some("heartbeat") => deserialize::<HeartbeatSpec>(toml::Value::Table(rest), path, errors)
            .map(CheckKind::Heartbeat),
        Some("http") => deserialize::<HttpSpec>(toml::Value::Table(rest), path, errors)
            .map(|x| CheckKind::Probe(ProbeSpec::Http(x))),
        Some("tcp") => deserialize::<TcpSpec>(toml::Value::Table(rest), path, errors)
            .map(|x| CheckKind::Probe(ProbeSpec::Tcp(x))),
        Some("tls") => deserialize::<TlsSpec>(toml::Value::Table(rest), path, errors)
            .map(|x| CheckKind::Probe(ProbeSpec::Tls(x))),
        Some("dns") => deserialize::<DnsSpec>(toml::Value::Table(rest), path, errors)
            .map(|x| CheckKind::Probe(ProbeSpec::Dns(x))),
        Some("exec") => deserialize::<ExecSpec>(toml::Value::Table(rest), path, errors)
            .map(|x| CheckKind::Probe(ProbeSpec::Exec(x))),
        Some(other) => {
            errors.push(ConfigError::new(
                format!("{path}.type"),
                format!(
                    "unknown check type {other:?} (known: {})",
                    CheckKind::TYPES.join(", ")
                ),
            ));
            None
        }
        None => None,
    };
    let common = common?;
    let probe = probe?;
    let schedule = match (common.interval, common.cron) {
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                path,
                "give either interval or cron, not both",
            ));
            return None;
        }
        (Some(d), None) => ScheduleSpec::Interval(d),
        (None, Some(c)) => ScheduleSpec::Cron(c),
        (None, None) => ScheduleSpec::Interval(DEFAULT_INTERVAL),
    };
    if errors.len() > before {
        return None;
    }
    Some(CheckConfig {
        asset: common.asset,
        name: common.name,
        schedule,
        jitter: common.jitter,
        timeout: common.timeout.unwrap_or(DEFAULT_TIMEOUT),
        enabled: common.enabled,
        description: common.description,
        kind: probe,
    })
}

pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

pub(crate) const ID_RULE: &str = "must be 1–200 characters of letters, digits and - _ . : @";

/// The written path (`check[3]`) of each parsed element, aligned with the config's vectors.
struct Paths {
    assets: Vec<String>,
    checks: Vec<String>,
    scores: Vec<String>,
}

fn validate(config: &Config, paths: &Paths, errors: &mut Vec<ConfigError>) {
    let s = &config.server;
    if s.listen.parse::<std::net::SocketAddr>().is_err() {
        errors.push(ConfigError::new(
            "server.listen",
            format!("{:?} is not an address like \"127.0.0.1:8080\"", s.listen),
        ));
    }
    if s.tls_cert.is_some() != s.tls_key.is_some() {
        errors.push(ConfigError::new(
            if s.tls_cert.is_some() {
                "server.tls_key"
            } else {
                "server.tls_cert"
            },
            "give both tls_cert and tls_key, or neither",
        ));
    }
    if s.max_concurrency == 0 {
        errors.push(ConfigError::new(
            "server.max_concurrency",
            "must be at least 1",
        ));
    }

    let mut asset_index: HashMap<&str, usize> = HashMap::new();
    for (i, a) in config.assets.iter().enumerate() {
        let path = &paths.assets[i];
        if !valid_id(&a.id) {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!("{:?} {ID_RULE}", a.id),
            ));
        }
        if let Some(prev) = asset_index.insert(&a.id, i) {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!(
                    "duplicate asset id {:?} (also {})",
                    a.id, paths.assets[prev]
                ),
            ));
        }
    }
    for (i, a) in config.assets.iter().enumerate() {
        for (j, p) in a.parents.iter().enumerate() {
            if !asset_index.contains_key(p.as_str()) {
                errors.push(ConfigError::new(
                    format!("{}.parents[{j}]", paths.assets[i]),
                    format!("unknown asset {p:?}"),
                ));
            } else if p == &a.id {
                errors.push(ConfigError::new(
                    format!("{}.parents[{j}]", paths.assets[i]),
                    "an asset cannot be its own parent",
                ));
            }
        }
    }
    if let Some(cycle) = find_parent_cycle(&config.assets) {
        errors.push(ConfigError::new(
            "asset",
            format!("parents form a cycle: {}", cycle.join(" -> ")),
        ));
    }

    let mut tests: HashMap<&str, usize> = HashMap::new();
    for (i, sc) in config.scores.iter().enumerate() {
        let path = &paths.scores[i];
        if !valid_id(&sc.test) {
            errors.push(ConfigError::new(
                format!("{path}.test"),
                format!("{:?} {ID_RULE}", sc.test),
            ));
        }
        if let Some(prev) = tests.insert(&sc.test, i) {
            errors.push(ConfigError::new(
                format!("{path}.test"),
                format!(
                    "duplicate score for test {:?} (also {})",
                    sc.test, paths.scores[prev]
                ),
            ));
        }
        for (j, g) in sc.groups.iter().enumerate() {
            if !valid_id(g) {
                errors.push(ConfigError::new(
                    format!("{path}.groups[{j}]"),
                    format!("{g:?} {ID_RULE}"),
                ));
            }
        }
        if let Err(e) = sc.rule().validate() {
            errors.push(ConfigError::new(path.clone(), e));
        }
    }
    if config.ingest.max_batch == 0 {
        errors.push(ConfigError::new("ingest.max_batch", "must be at least 1"));
    }

    let mut slugs: HashMap<String, usize> = HashMap::new();
    for (i, c) in config.checks.iter().enumerate() {
        if let Some(slug) = c.heartbeat_slug() {
            if let Some(prev) = slugs.insert(slug.clone(), i) {
                errors.push(ConfigError::new(
                    format!("{}.slug", paths.checks[i]),
                    format!(
                        "heartbeat slug {slug:?} is also used by {}",
                        paths.checks[prev]
                    ),
                ));
            }
        }
    }

    let mut check_index: HashMap<(String, String), usize> = HashMap::new();
    for (i, c) in config.checks.iter().enumerate() {
        let path = &paths.checks[i];
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
        ScheduleSpec::Cron(expr) => {
            if let Err(e) = Schedule::cron(expr) {
                errors.push(ConfigError::new(format!("{path}.cron"), e.to_string()));
            }
        }
    }
    match &c.kind {
        CheckKind::Probe(p) => validate_probe(p, path, &mut errors),
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
    errors
}

fn validate_probe(probe: &ProbeSpec, path: &str, errors: &mut Vec<ConfigError>) {
    match probe {
        ProbeSpec::Http(h) => {
            match url::Url::parse(&h.url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                    if u.host_str().is_none_or(str::is_empty) {
                        errors.push(ConfigError::new(format!("{path}.url"), "URL has no host"));
                    }
                }
                Ok(u) => errors.push(ConfigError::new(
                    format!("{path}.url"),
                    format!("scheme {:?} is not http or https", u.scheme()),
                )),
                Err(e) => errors.push(ConfigError::new(format!("{path}.url"), e.to_string())),
            }
            if http::Method::from_bytes(h.method.as_bytes()).is_err() || h.method.is_empty() {
                errors.push(ConfigError::new(
                    format!("{path}.method"),
                    format!("invalid method {:?}", h.method),
                ));
            }
            for (j, code) in h.expect_status.iter().enumerate() {
                if !(100..=599).contains(code) {
                    errors.push(ConfigError::new(
                        format!("{path}.expect_status[{j}]"),
                        format!("{code} is not an HTTP status code"),
                    ));
                }
            }
            if let Some(re) = &h.body_regex {
                if let Err(e) = regex::Regex::new(re) {
                    errors.push(ConfigError::new(
                        format!("{path}.body_regex"),
                        e.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" "),
                    ));
                }
            }
            for (j, cond) in h.json.iter().enumerate() {
                if let Err(e) = JsonCondition::parse(cond) {
                    errors.push(ConfigError::new(format!("{path}.json[{j}]"), e));
                }
            }
            if h.cert_crit_days > h.cert_warn_days {
                errors.push(ConfigError::new(
                    format!("{path}.cert_crit_days"),
                    "must not be more than cert_warn_days",
                ));
            }
            if let (Some(w), Some(c)) = (h.warn_latency, h.crit_latency) {
                if w > c {
                    errors.push(ConfigError::new(
                        format!("{path}.warn_latency"),
                        "must not be more than crit_latency",
                    ));
                }
            }
        }
        ProbeSpec::Tcp(t) => check_address(&t.address, &format!("{path}.address"), errors),
        ProbeSpec::Tls(t) => {
            check_address(&t.address, &format!("{path}.address"), errors);
            if t.crit_days > t.warn_days {
                errors.push(ConfigError::new(
                    format!("{path}.crit_days"),
                    "must not be more than warn_days",
                ));
            }
        }
        ProbeSpec::Dns(d) => {
            const RECORDS: [&str; 9] =
                ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SRV", "SOA"];
            if !RECORDS.contains(&d.record.to_ascii_uppercase().as_str()) {
                errors.push(ConfigError::new(
                    format!("{path}.record"),
                    format!(
                        "unknown record type {:?} (known: {})",
                        d.record,
                        RECORDS.join(", ")
                    ),
                ));
            }
            if d.query.trim().is_empty() {
                errors.push(ConfigError::new(
                    format!("{path}.query"),
                    "must not be empty",
                ));
            }
            if let Some(server) = &d.server {
                if server.parse::<std::net::SocketAddr>().is_err() {
                    errors.push(ConfigError::new(
                        format!("{path}.server"),
                        format!("{server:?} is not an address like \"127.0.0.1:53\""),
                    ));
                }
            }
        }
        ProbeSpec::Exec(e) => {
            if e.command.first().is_none_or(|c| c.trim().is_empty()) {
                errors.push(ConfigError::new(
                    format!("{path}.command"),
                    "must name a program: [\"/usr/lib/nagios/plugins/check_dummy\", \"0\"]",
                ));
            }
        }
    }
}

fn check_address(addr: &str, path: &str, errors: &mut Vec<ConfigError>) {
    let ok = match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    };
    if !ok {
        errors.push(ConfigError::new(path, format!("{addr:?} is not host:port")));
    }
}

fn find_parent_cycle(assets: &[AssetConfig]) -> Option<Vec<String>> {
    let mut parents: HashMap<&str, &Vec<String>> = HashMap::new();
    for a in assets {
        // Duplicates are reported elsewhere; the first declaration counts here.
        parents.entry(a.id.as_str()).or_insert(&a.parents);
    }
    // 0 unvisited, 1 on stack, 2 done
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        parents: &HashMap<&'a str, &'a Vec<String>>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(id) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| *s == id).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(id, 1);
        stack.push(id);
        if let Some(ps) = parents.get(id) {
            for p in ps.iter() {
                if parents.contains_key(p.as_str()) {
                    if let Some(c) = visit(p.as_str(), parents, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(id, 2);
        None
    }
    for a in assets {
        let mut stack = Vec::new();
        if let Some(c) = visit(&a.id, &parents, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests;
