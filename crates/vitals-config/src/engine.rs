//! Integration engines (`docs/integration-engines.md`): `[[source_set]]` (the sources of a
//! clinical data integration engine, their probe patients and the re-integration probe),
//! `[[pipeline]]` (stages over existing checks) and `[[job]]` (commands on cron).
//!
//! Only syntax and what can be known without I/O is checked here; a catalogue that cannot be
//! reached is an observation at run time, not a configuration error.

use crate::{deserialize, valid_id, ConfigError, ID_RULE};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use vitals_core::spec::duration;

/// Most probe patients per source.
pub const MAX_PROBE_PATIENTS: usize = 20;
/// Most compared fields per source set, stages per pipeline, arguments per job.
pub const MAX_FIELDS: usize = 100;
pub const MAX_STAGES: usize = 50;
const MAX_ARGS: usize = 256;

/// The three engine sections.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineConfig {
    pub source_sets: Vec<SourceSetConfig>,
    pub pipelines: Vec<PipelineConfig>,
    pub jobs: Vec<JobConfig>,
}

impl EngineConfig {
    pub fn is_empty(&self) -> bool {
        self.source_sets.is_empty() && self.pipelines.is_empty() && self.jobs.is_empty()
    }
}

/// `[[source_set]]`: where the list of sources comes from and how each is probed.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSetConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The catalogue database: `postgres://…`, `mysql://…` or `sqlite:PATH`.
    pub catalogue: String,
    /// Lists the sources (columns `id`, optional `name`, the rest become attributes usable as
    /// `{source.column}` in the fetch). Either this or `sources_file`.
    #[serde(default)]
    pub sources_query: Option<String>,
    /// A CSV file with a header line (`id`, optional `name`, more columns as attributes).
    #[serde(default)]
    pub sources_file: Option<PathBuf>,
    /// How often the list of sources (and the probe-patient assignment) is read again.
    #[serde(default = "default_refresh", with = "duration")]
    pub refresh: Duration,
    /// The group of the source assets (the set's id when absent).
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// At most this many probe patients per source.
    #[serde(default = "default_k")]
    pub probe_patients: usize,
    /// Candidate patients for a source, best first (first column): `:source` is the source id.
    pub assign_query: String,
    /// Whether an assigned patient still qualifies (any row: yes): `:source`, `:patient`.
    /// Without it a patient qualifies while `assign_query` still lists it.
    #[serde(default)]
    pub qualify_query: Option<String>,
    /// The catalogue's copy of a patient at a source (one row): `:source`, `:patient`.
    pub catalogue_query: String,
    /// How often every (source, probe patient) is re-integrated.
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Bound of one fetch (from the source, and from the catalogue).
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Re-integrations at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// `warn` (default) or `crit`: the status when fields differ.
    #[serde(default = "default_differ")]
    pub differ_status: String,
    pub fetch: FetchConfig,
    #[serde(default, rename = "field")]
    pub fields: Vec<FieldConfig>,
}

// The catalogue DSN may hold a password: never in debug output.
impl std::fmt::Debug for SourceSetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSetConfig")
            .field("id", &self.id)
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

/// How a patient is fetched from a source. Templates: `{source}`, `{patient}`,
/// `{source.COLUMN}` (URL-encoded in `url`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum FetchConfig {
    /// HTTP GET (FHIR or any JSON); fields are JSON pointers (`/name/0/family`).
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default = "default_body")]
        max_body_bytes: usize,
    },
    /// A SQL query against the source's database (one row); fields are column names.
    Sql { dsn: String, query: String },
}

/// One compared field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    /// JSON pointer (http) or column (sql) in the source's answer.
    pub source: String,
    /// Column of the catalogue's copy.
    pub catalogue: String,
    /// `trim` (default), `case`, `space`, `date`.
    #[serde(default = "default_normalise")]
    pub normalise: Vec<String>,
}

pub const NORMALISATIONS: &[&str] = &["trim", "case", "space", "date"];

/// `[[pipeline]]`: stages in order, each an existing check with expectations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// How often the stages are looked at.
    #[serde(default = "default_pipeline_interval", with = "duration")]
    pub interval: Duration,
    #[serde(rename = "stage")]
    pub stages: Vec<StageConfig>,
}

/// A stage: the check it is (`asset`/`check`), which values mean what, and what is expected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub name: String,
    pub asset: String,
    pub check: String,
    /// Value names in the check's observations (records since the last report).
    #[serde(default)]
    pub records_in: Option<String>,
    #[serde(default)]
    pub records_out: Option<String>,
    #[serde(default)]
    pub rejects: Option<String>,
    /// A gauge: records waiting.
    #[serde(default)]
    pub backlog: Option<String>,
    /// A gauge, in seconds.
    #[serde(default)]
    pub lag: Option<String>,
    /// Wrong when nothing came in (`records_in` > 0) for this long.
    #[serde(default, with = "duration::option")]
    pub max_silence: Option<Duration>,
    /// Wrong when the check has not reported (run) for this long.
    #[serde(default, with = "duration::option")]
    pub max_age: Option<Duration>,
    #[serde(default)]
    pub max_backlog: Option<f64>,
    #[serde(default)]
    pub max_rejects: Option<f64>,
    /// Seconds.
    #[serde(default)]
    pub max_lag: Option<f64>,
}

/// `[[job]]`: a command run on cron, never twice at once, bounded by `timeout`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// Cron (5 fields, or 6 with seconds), UTC; parsed when the file is read.
    pub schedule: crate::rules::Cron,
    #[serde(default = "default_job_timeout", with = "duration")]
    pub timeout: Duration,
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// The environment is empty but for `PATH` and these.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_k() -> usize {
    1
}
fn default_concurrency() -> usize {
    8
}
fn default_differ() -> String {
    "warn".into()
}
fn default_body() -> usize {
    1024 * 1024
}
fn default_normalise() -> Vec<String> {
    vec!["trim".into()]
}
fn default_pipeline_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_job_timeout() -> Duration {
    Duration::from_secs(3600)
}

/// Whether a DSN names a catalogue driver Vitals has.
pub fn dsn_kind(dsn: &str) -> Option<&'static str> {
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        Some("postgres")
    } else if dsn.starts_with("mysql://") || dsn.starts_with("mariadb://") {
        Some("mysql")
    } else if dsn.starts_with("sqlite:") {
        Some("sqlite")
    } else {
        None
    }
}

const DSN_RULE: &str = "must start with postgres://, mysql:// or sqlite:";

/// Parses the engine sections out of the root table.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> EngineConfig {
    let mut ids: Vec<String> = Vec::new();
    let mut id_ok = |id: &str, path: &str, errors: &mut Vec<ConfigError>| {
        if !valid_id(id) {
            errors.push(ConfigError::new(format!("{path}.id"), ID_RULE));
        } else if ids.iter().any(|x| x == id) {
            errors.push(ConfigError::new(
                format!("{path}.id"),
                format!("{id:?} is already the id of another source set, pipeline or job"),
            ));
        }
        ids.push(id.to_string());
    };
    let mut out = EngineConfig::default();
    for (path, v) in crate::array_of_tables(root, "source_set", errors) {
        let Some(s) = deserialize::<SourceSetConfig>(v, &path, errors) else {
            continue;
        };
        id_ok(&s.id, &path, errors);
        check_source_set(&s, &path, errors);
        out.source_sets.push(s);
    }
    for (path, v) in crate::array_of_tables(root, "pipeline", errors) {
        let Some(p) = deserialize::<PipelineConfig>(v, &path, errors) else {
            continue;
        };
        id_ok(&p.id, &path, errors);
        if p.stages.is_empty() || p.stages.len() > MAX_STAGES {
            errors.push(ConfigError::new(
                format!("{path}.stage"),
                format!("a pipeline needs 1–{MAX_STAGES} [[pipeline.stage]]s"),
            ));
        }
        if p.interval < Duration::from_secs(1) {
            errors.push(ConfigError::new(
                format!("{path}.interval"),
                "must be at least 1s",
            ));
        }
        for (i, st) in p.stages.iter().enumerate() {
            let sp = format!("{path}.stage[{i}]");
            if st.name.trim().is_empty() || st.name.len() > 100 {
                errors.push(ConfigError::new(
                    format!("{sp}.name"),
                    "must be 1–100 characters",
                ));
            }
            if p.stages[..i].iter().any(|o| o.name == st.name) {
                errors.push(ConfigError::new(
                    format!("{sp}.name"),
                    format!("duplicate stage {:?}", st.name),
                ));
            }
            if !valid_id(&st.asset) {
                errors.push(ConfigError::new(format!("{sp}.asset"), ID_RULE));
            }
            if st.check.is_empty() || st.check.len() > 200 {
                errors.push(ConfigError::new(
                    format!("{sp}.check"),
                    "must be 1–200 characters",
                ));
            }
            if st.max_silence.is_some() && st.records_in.is_none() {
                errors.push(ConfigError::new(
                    format!("{sp}.max_silence"),
                    "needs records_in (the value that counts records coming in)",
                ));
            }
            for (key, limit, value) in [
                ("max_backlog", st.max_backlog, &st.backlog),
                ("max_rejects", st.max_rejects, &st.rejects),
                ("max_lag", st.max_lag, &st.lag),
            ] {
                if limit.is_some() && value.is_none() {
                    errors.push(ConfigError::new(
                        format!("{sp}.{key}"),
                        format!("needs {} (the value it limits)", &key[4..]),
                    ));
                }
                if limit.is_some_and(|l| !l.is_finite() || l < 0.0) {
                    errors.push(ConfigError::new(
                        format!("{sp}.{key}"),
                        "must be a number ≥ 0",
                    ));
                }
            }
        }
        out.pipelines.push(p);
    }
    for (path, v) in crate::array_of_tables(root, "job", errors) {
        let Some(j) = deserialize::<JobConfig>(v, &path, errors) else {
            continue;
        };
        id_ok(&j.id, &path, errors);
        if j.command.is_empty() || j.command.len() > MAX_ARGS || j.command[0].trim().is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.command"),
                format!("must be a program and at most {} arguments", MAX_ARGS - 1),
            ));
        }
        if j.timeout < Duration::from_secs(1) {
            errors.push(ConfigError::new(
                format!("{path}.timeout"),
                "must be at least 1s",
            ));
        }
        if j.env.keys().any(|k| k.is_empty() || k.contains('=')) {
            errors.push(ConfigError::new(
                format!("{path}.env"),
                "names must be non-empty and have no '='",
            ));
        }
        out.jobs.push(j);
    }
    out
}

fn check_source_set(s: &SourceSetConfig, path: &str, errors: &mut Vec<ConfigError>) {
    let mut err =
        |key: &str, msg: String| errors.push(ConfigError::new(format!("{path}.{key}"), msg));
    if dsn_kind(&s.catalogue).is_none() {
        err("catalogue", DSN_RULE.into());
    }
    match (&s.sources_query, &s.sources_file) {
        (Some(_), Some(_)) | (None, None) => err(
            "sources_query",
            "give either sources_query (against the catalogue) or sources_file".into(),
        ),
        _ => {}
    }
    if s.refresh < Duration::from_secs(1) {
        err("refresh", "must be at least 1s".into());
    }
    if s.interval < Duration::from_secs(1) {
        err("interval", "must be at least 1s".into());
    }
    if s.timeout < Duration::from_millis(100) {
        err("timeout", "must be at least 100ms".into());
    }
    if !(1..=MAX_PROBE_PATIENTS).contains(&s.probe_patients) {
        err("probe_patients", format!("must be 1–{MAX_PROBE_PATIENTS}"));
    }
    if !(1..=256).contains(&s.concurrency) {
        err("concurrency", "must be 1–256".into());
    }
    if !matches!(s.differ_status.as_str(), "warn" | "crit") {
        err("differ_status", "must be \"warn\" or \"crit\"".into());
    }
    for (key, q) in [
        ("assign_query", Some(&s.assign_query)),
        ("catalogue_query", Some(&s.catalogue_query)),
        ("qualify_query", s.qualify_query.as_ref()),
        ("sources_query", s.sources_query.as_ref()),
    ] {
        if q.is_some_and(|q| q.trim().is_empty() || q.len() > 10_000) {
            err(key, "must be 1–10,000 characters".into());
        }
    }
    if !s.assign_query.contains(":source") {
        err(
            "assign_query",
            "must use :source (the source whose patients are candidates)".into(),
        );
    }
    if !s.catalogue_query.contains(":patient") {
        err("catalogue_query", "must use :patient".into());
    }
    match &s.fetch {
        FetchConfig::Http {
            url,
            headers,
            max_body_bytes,
        } => {
            if !(url.starts_with("http://")
                || url.starts_with("https://")
                || url.starts_with("{source."))
            {
                err(
                    "fetch.url",
                    "must start with http://, https:// or a source attribute such as {source.base}"
                        .into(),
                );
            }
            if !url.contains("{patient}") {
                err("fetch.url", "must contain {patient}".into());
            }
            for (k, v) in headers {
                if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || http::HeaderValue::from_str(v).is_err()
                {
                    err(
                        "fetch.headers",
                        format!("{k:?} is not a valid header name and value"),
                    );
                }
            }
            if !(1..=64 * 1024 * 1024).contains(max_body_bytes) {
                err("fetch.max_body_bytes", "must be 1 byte – 64 MiB".into());
            }
        }
        FetchConfig::Sql { dsn, query } => {
            if dsn_kind(dsn).is_none() && !dsn.starts_with('{') {
                err("fetch.dsn", DSN_RULE.into());
            }
            if !query.contains(":patient") {
                err("fetch.query", "must use :patient".into());
            }
        }
    }
    if s.fields.is_empty() || s.fields.len() > MAX_FIELDS {
        err(
            "field",
            format!("name 1–{MAX_FIELDS} [[source_set.field]]s to compare"),
        );
    }
    for (i, f) in s.fields.iter().enumerate() {
        if f.name.is_empty() || f.name.len() > 100 {
            err(
                &format!("field[{i}].name"),
                "must be 1–100 characters".into(),
            );
        }
        if s.fields[..i].iter().any(|o| o.name == f.name) {
            err(
                &format!("field[{i}].name"),
                format!("duplicate field {:?}", f.name),
            );
        }
        if matches!(s.fetch, FetchConfig::Http { .. }) && !f.source.starts_with('/') {
            err(
                &format!("field[{i}].source"),
                "must be a JSON pointer such as /name/0/family".into(),
            );
        }
        for n in &f.normalise {
            if !NORMALISATIONS.contains(&n.as_str()) {
                err(
                    &format!("field[{i}].normalise"),
                    format!("{n:?} is not one of {}", NORMALISATIONS.join(", ")),
                );
            }
        }
    }
}
