//! What a check is: its schedule, its timeout and its probe specification.
//!
//! These are plain data, deserialized from the `[[check]]` tables of `vitals.toml` by
//! `vitals-config` (which reports every error with its path) and executed by `vitals-probe`.
//! Each probe spec is `deny_unknown_fields`, so a misspelt key is an error, not a silent default,
//! and says what else is wrong with its keys (`validate`). The types are registered once, in
//! [`probe_kinds!`].

use crate::expr::{PromCondition, RowCondition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Serde helpers for durations written as `"30s"`, `"24h"`, `"1h 30m"`, `"250ms"`.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn parse(s: &str) -> Result<Duration, String> {
        humantime::parse_duration(s.trim()).map_err(|e| {
            format!("invalid duration {s:?} ({e}); write e.g. \"30s\", \"5m\", \"24h\"")
        })
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| super::parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// How a health body is read (see `shared/spec/health-formats.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HealthFormat {
    /// Do not interpret the body as a health document.
    None,
    /// Detect health+json, Spring actuator or detail lines from content type and body (the
    /// default: `/actuator/health` shows its components without any setting; a plain `OK`
    /// body or an HTML page stays plain).
    #[default]
    Auto,
    /// IETF draft `application/health+json`.
    HealthJson,
    /// Spring Boot actuator `/actuator/health` (1.x, 2.0–2.1 and 2.2+ shapes).
    Actuator,
    /// `name : OK` detail lines, as `/monitor?details` of the national platform services.
    Lines,
}

fn default_method() -> String {
    "GET".to_string()
}
fn default_max_body() -> u64 {
    1024 * 1024
}
fn default_redirects() -> u32 {
    5
}
fn default_warn_days() -> u32 {
    14
}
fn default_crit_days() -> u32 {
    3
}
fn default_record() -> String {
    "A".to_string()
}
fn default_max_output() -> u64 {
    64 * 1024
}

/// `type = "http"`: one HTTP(S) request with fresh connection, timing phases and assertions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted status codes; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub body_not_contains: Option<String>,
    #[serde(default)]
    pub body_regex: Option<String>,
    /// JSON pointer conditions, e.g. `/status == "pass"`, `/items/0/id == 17`, `/count >= 3`.
    #[serde(default)]
    pub json: Vec<String>,
    /// At most this many body bytes are read; a longer body fails the check.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Redirects followed at most; 0 means a 3xx answer is the final response.
    #[serde(default = "default_redirects")]
    pub max_redirects: u32,
    #[serde(default)]
    pub health: HealthFormat,
    /// Slower than this (total time) is `warn`.
    #[serde(default, with = "duration::option")]
    pub warn_latency: Option<Duration>,
    /// Slower than this (total time) is `crit`.
    #[serde(default, with = "duration::option")]
    pub crit_latency: Option<Duration>,
    #[serde(default = "default_warn_days")]
    pub cert_warn_days: u32,
    #[serde(default = "default_crit_days")]
    pub cert_crit_days: u32,
    /// PEM bundle of CAs to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (expiry is still reported).
    #[serde(default)]
    pub insecure: bool,
    /// Keep a string of the answer (e.g. the version of `/version`) with the observation.
    #[serde(default)]
    pub capture: Option<CaptureSpec>,
}

/// An `http(s)://` URL with a host, or its problem under the key `url`.
fn http_url(url: &str, errs: &mut Vec<(String, String)>) {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
            if u.host_str().is_none_or(str::is_empty) {
                errs.push(err("url", "URL has no host"));
            }
        }
        Ok(u) => errs.push(err(
            "url",
            format!("scheme {:?} is not http or https", u.scheme()),
        )),
        Err(e) => errs.push(err("url", e.to_string())),
    }
}

impl HttpSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let h = self;
        let mut errs = Vec::new();
        http_url(&h.url, &mut errs);
        if http::Method::from_bytes(h.method.as_bytes()).is_err() || h.method.is_empty() {
            errs.push(err("method", format!("invalid method {:?}", h.method)));
        }
        for (j, code) in h.expect_status.iter().enumerate() {
            if !(100..=599).contains(code) {
                errs.push(err(
                    format!("expect_status[{j}]"),
                    format!("{code} is not an HTTP status code"),
                ));
            }
        }
        if let Some(re) = &h.body_regex {
            if let Err(e) = regex::Regex::new(re) {
                errs.push(err(
                    "body_regex",
                    e.to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                ));
            }
        }
        for (j, cond) in h.json.iter().enumerate() {
            if let Err(e) = JsonCondition::parse(cond) {
                errs.push(err(format!("json[{j}]"), e));
            }
        }
        if h.cert_crit_days > h.cert_warn_days {
            errs.push(err(
                "cert_crit_days",
                "must not be more than cert_warn_days",
            ));
        }
        if let (Some(w), Some(c)) = (h.warn_latency, h.crit_latency) {
            if w > c {
                errs.push(err("warn_latency", "must not be more than crit_latency"));
            }
        }
        if let Some(c) = &h.capture {
            let p = "capture";
            match (&c.regex, &c.json) {
                (Some(_), Some(_)) | (None, None) => errs.push(err(
                    p,
                    "give regex or json: capture = { json = \"/version\" }",
                )),
                (Some(re), None) => {
                    if let Err(e) = regex::Regex::new(re) {
                        errs.push(err("capture.regex", one_line(&e.to_string())));
                    }
                }
                (None, Some(ptr)) => {
                    if !ptr.is_empty() && !ptr.starts_with('/') {
                        errs.push(err(
                            "capture.json",
                            format!("JSON pointer must start with '/': {ptr:?}"),
                        ));
                    }
                }
            }
            if !valid_id(&c.name) {
                errs.push(err("capture.name", format!("{:?} {ID_RULE}", c.name)));
            }
        }
        errs
    }
}

fn default_capture_name() -> String {
    "version".to_string()
}

/// `capture = { regex = '…' }` or `capture = { json = "/version" }` on an http check: the string
/// becomes a component named `name` (default `version`) whose value is the captured text, so it
/// is stored, shown, and compared by `kind = "consistent"` rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    #[serde(default = "default_capture_name")]
    pub name: String,
    /// A regex over the body; its first group if it has one, else the whole match.
    #[serde(default)]
    pub regex: Option<String>,
    /// A JSON pointer into the body; a number or boolean is kept as its JSON text.
    #[serde(default)]
    pub json: Option<String>,
}

impl HttpSpec {
    pub fn new(url: impl Into<String>) -> Self {
        HttpSpec {
            url: url.into(),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            expect_status: Vec::new(),
            body_contains: None,
            body_not_contains: None,
            body_regex: None,
            json: Vec::new(),
            max_body_bytes: default_max_body(),
            max_redirects: default_redirects(),
            health: HealthFormat::None,
            warn_latency: None,
            crit_latency: None,
            cert_warn_days: default_warn_days(),
            cert_crit_days: default_crit_days(),
            ca_file: None,
            insecure: false,
            capture: None,
        }
    }
}

/// `type = "tcp"`: connect, optionally send a string and expect one in the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// `host:port`.
    pub address: String,
    #[serde(default)]
    pub send: Option<String>,
    #[serde(default)]
    pub expect: Option<String>,
}

impl TcpSpec {
    /// Every problem of the spec as `(key, message)`; empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        check_address(&self.address, "address", &mut errs);
        errs
    }
}

/// `type = "tls"`: handshake and certificate checks (expiry, hostname, chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// `host:port`.
    pub address: String,
    /// Name to verify and send as SNI; defaults to the host of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
    #[serde(default = "default_crit_days")]
    pub crit_days: u32,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl TlsSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let t = self;
        let mut errs = Vec::new();
        check_address(&t.address, "address", &mut errs);
        if t.crit_days > t.warn_days {
            errs.push(err("crit_days", "must not be more than warn_days"));
        }
        errs
    }
}

/// `type = "dns"`: resolve a name and compare the answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to resolve. (Called `query` because `name` is the check's own name.)
    pub query: String,
    /// `A`, `AAAA`, `CNAME`, `MX`, `TXT`, `NS`, `PTR`, `SRV`, `SOA`.
    #[serde(default = "default_record")]
    pub record: String,
    /// `ip:port` of the server to ask; the system resolver when absent.
    #[serde(default)]
    pub server: Option<String>,
    /// Every one of these must be among the answers.
    #[serde(default)]
    pub expect: Vec<String>,
}

impl DnsSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let d = self;
        let mut errs = Vec::new();
        const RECORDS: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SRV", "SOA"];
        if !RECORDS.contains(&d.record.to_ascii_uppercase().as_str()) {
            errs.push(err(
                "record",
                format!(
                    "unknown record type {:?} (known: {})",
                    d.record,
                    RECORDS.join(", ")
                ),
            ));
        }
        if d.query.trim().is_empty() {
            errs.push(err("query", "must not be empty"));
        }
        if let Some(server) = &d.server {
            if server.parse::<std::net::SocketAddr>().is_err() {
                errs.push(err(
                    "server",
                    format!("{server:?} is not an address like \"127.0.0.1:53\""),
                ));
            }
        }
        errs
    }
}

/// `type = "exec"`: a Nagios / Monitoring Plugins plugin, run without a shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Program and arguments: `["/usr/lib/nagios/plugins/check_tcp", "-H", "db", "-p", "5432"]`.
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Output beyond this many bytes is discarded.
    #[serde(default = "default_max_output")]
    pub max_output_bytes: u64,
}

impl ExecSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let e = self;
        let mut errs = Vec::new();
        if e.command.first().is_none_or(|c| c.trim().is_empty()) {
            errs.push(err(
                "command",
                "must name a program: [\"/usr/lib/nagios/plugins/check_dummy\", \"0\"]",
            ));
        }
        errs
    }
}

/// Which IP version an `icmp` check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum IpVersion {
    #[serde(rename = "4")]
    V4,
    #[serde(rename = "6")]
    V6,
    /// The first address the name resolves to.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

fn default_ping_count() -> u32 {
    3
}
fn default_ping_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_warn_loss() -> f64 {
    20.0
}
fn default_crit_loss() -> f64 {
    60.0
}

/// `type = "icmp"`: echo requests (ping) to a host, IPv4 or IPv6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpSpec {
    /// A name or an address.
    pub host: String,
    /// Echo requests sent (1–100).
    #[serde(default = "default_ping_count")]
    pub count: u32,
    /// Time between two requests (`interval` is the check's own schedule).
    #[serde(default = "default_ping_interval", with = "duration")]
    pub packet_interval: Duration,
    /// `"4"`, `"6"` or `"auto"`.
    #[serde(default)]
    pub ip: IpVersion,
    /// Loss (percent) at or above which the check is `warn` …
    #[serde(default = "default_warn_loss")]
    pub warn_loss: f64,
    /// … and `crit`.
    #[serde(default = "default_crit_loss")]
    pub crit_loss: f64,
    /// Average round trip slower than this is `warn` …
    #[serde(default, with = "duration::option")]
    pub warn_rtt: Option<Duration>,
    /// … and `crit`.
    #[serde(default, with = "duration::option")]
    pub crit_rtt: Option<Duration>,
}

impl IcmpSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let i = self;
        let mut errs = Vec::new();
        if i.host.trim().is_empty() {
            errs.push(err("host", "must not be empty"));
        }
        if !(1..=100).contains(&i.count) {
            errs.push(err("count", "must be 1–100"));
        }
        if i.packet_interval < Duration::from_millis(10) {
            errs.push(err("packet_interval", "must be at least 10ms"));
        }
        for (k, v) in [("warn_loss", i.warn_loss), ("crit_loss", i.crit_loss)] {
            if !(0.0..=100.0).contains(&v) {
                errs.push(err(k, "must be 0–100 (percent)"));
            }
        }
        if i.warn_loss > i.crit_loss {
            errs.push(err("warn_loss", "must not be more than crit_loss"));
        }
        if let (Some(w), Some(c)) = (i.warn_rtt, i.crit_rtt) {
            if w > c {
                errs.push(err("warn_rtt", "must not be more than crit_rtt"));
            }
        }
        errs
    }
}

/// How a SQL check uses TLS (the libpq `sslmode` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SqlTls {
    /// Plain text.
    Disable,
    /// TLS when the server offers it, without verifying the certificate.
    #[default]
    Prefer,
    /// TLS or fail, without verifying the certificate.
    Require,
    /// TLS with a certificate from a trusted CA (any host name).
    VerifyCa,
    /// TLS with a trusted certificate for this host name.
    VerifyFull,
}

fn default_sql_query() -> String {
    "SELECT 1".to_string()
}
fn default_max_rows() -> usize {
    1000
}

/// `type = "postgres"` and `type = "mysql"` (MariaDB/MySQL): connect, run one read-only query,
/// judge its result, and check the user's grants.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSpec {
    pub host: String,
    /// 5432 (postgres) or 3306 (mysql) when absent.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub database: Option<String>,
    pub user: String,
    /// Normally `${ENV}`; never logged or shown.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub tls: SqlTls,
    /// PEM bundle of CAs to trust (verify-ca, verify-full) instead of the built-in roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// One statement, run in a read-only transaction.
    #[serde(default = "default_sql_query")]
    pub query: String,
    /// Each must hold or the check is `crit`: `rows >= 1`, `state == "ready"`, `lag < 30`.
    #[serde(default)]
    pub conditions: Vec<String>,
    /// Each must hold or the check is `warn`.
    #[serde(default)]
    pub warn_conditions: Vec<String>,
    /// Table → privileges the user must hold on it (`SELECT`, `INSERT`, `UPDATE`, `DELETE`).
    #[serde(default)]
    pub grants: BTreeMap<String, Vec<String>>,
    /// Rows read at most; more fails the check.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

impl SqlSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let q = self;
        let mut errs = Vec::new();
        if q.host.trim().is_empty() {
            errs.push(err("host", "must not be empty"));
        }
        if q.user.trim().is_empty() {
            errs.push(err("user", "must not be empty"));
        }
        if q.port == Some(0) {
            errs.push(err("port", "must be 1–65535"));
        }
        if q.query.trim().trim_end_matches(';').trim().is_empty() {
            errs.push(err("query", "must not be empty"));
        }
        if q.ca_file.is_some() && matches!(q.tls, SqlTls::Disable) {
            errs.push(err(
                "ca_file",
                "is for tls = \"verify-ca\" or \"verify-full\"",
            ));
        }
        if q.max_rows == 0 {
            errs.push(err("max_rows", "must be at least 1"));
        }
        for (key, list) in [
            ("conditions", &q.conditions),
            ("warn_conditions", &q.warn_conditions),
        ] {
            for (j, c) in list.iter().enumerate() {
                if let Err(e) = RowCondition::parse(c) {
                    errs.push(err(format!("{key}[{j}]"), e));
                }
            }
        }
        for (table, privileges) in &q.grants {
            if table.trim().is_empty() {
                errs.push(err("grants", "a table name is empty"));
            }
            if privileges.is_empty() {
                errs.push(err(
                    format!("grants.{table}"),
                    "name at least one privilege",
                ));
            }
            for p in privileges {
                if !["SELECT", "INSERT", "UPDATE", "DELETE"]
                    .contains(&p.to_ascii_uppercase().as_str())
                {
                    errs.push(err(
                        format!("grants.{table}"),
                        format!("unknown privilege {p:?} (known: SELECT, INSERT, UPDATE, DELETE)"),
                    ));
                }
            }
        }
        errs
    }
}

// The password stays out of debug output and logs.
impl std::fmt::Debug for SqlSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSpec")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

fn default_prom_max_body() -> u64 {
    16 * 1024 * 1024
}

/// `type = "prometheus"`: scrape an exposition endpoint (node_exporter, windows_exporter,
/// cAdvisor, any exporter) and judge it with conditions such as
/// `count(container_last_seen{name=~"aktin-.*"}) >= 3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    /// Absolute `http://` or `https://` URL, e.g. `http://node:9100/metrics`.
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Each must hold or the check is `crit`.
    #[serde(default)]
    pub conditions: Vec<String>,
    /// Each must hold or the check is `warn`.
    #[serde(default)]
    pub warn_conditions: Vec<String>,
    /// A longer exposition fails the check.
    #[serde(default = "default_prom_max_body")]
    pub max_body_bytes: u64,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
}

impl PrometheusSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let pr = self;
        let mut errs = Vec::new();
        http_url(&pr.url, &mut errs);
        if pr.conditions.is_empty() && pr.warn_conditions.is_empty() {
            errs.push(err(
                "conditions",
                "give at least one condition, e.g. 'up == 1'",
            ));
        }
        for (key, list) in [
            ("conditions", &pr.conditions),
            ("warn_conditions", &pr.warn_conditions),
        ] {
            for (j, c) in list.iter().enumerate() {
                if let Err(e) = PromCondition::parse(c) {
                    errs.push(err(format!("{key}[{j}]"), e));
                }
            }
        }
        errs
    }
}

fn default_log_warn() -> Option<u64> {
    Some(1)
}
fn default_quote_lines() -> usize {
    3
}
fn default_log_max_read() -> u64 {
    16 * 1024 * 1024
}

/// `type = "log"`: follow a log file (through rotation and truncation) and count the lines
/// matching `patterns` in each interval; one observation per interval quotes the first ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    pub file: PathBuf,
    /// Regexes; a line matching any of them counts.
    pub patterns: Vec<String>,
    /// Regexes; a line matching any of them never counts.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// This many matching lines in one interval is `warn` (default 1) …
    #[serde(default = "default_log_warn")]
    pub warn_count: Option<u64>,
    /// … and this many `crit`.
    #[serde(default)]
    pub crit_count: Option<u64>,
    /// Matching lines quoted in the reason (0–20).
    #[serde(default = "default_quote_lines")]
    pub quote_lines: usize,
    /// Bytes read at most per run; the rest is read by the next run.
    #[serde(default = "default_log_max_read")]
    pub max_read_bytes: u64,
}

impl LogSpec {
    /// Every problem of the spec as `(key, message)`, e.g. `("json[0]", "…")` (an empty key is
    /// the check itself); empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let l = self;
        let mut errs = Vec::new();
        if l.file.as_os_str().is_empty() {
            errs.push(err("file", "must not be empty"));
        }
        if l.patterns.is_empty() {
            errs.push(err(
                "patterns",
                "give at least one pattern, e.g. [\"ERROR\"]",
            ));
        }
        for (key, list) in [("patterns", &l.patterns), ("exclude", &l.exclude)] {
            for (j, re) in list.iter().enumerate() {
                if let Err(e) = regex::bytes::Regex::new(re) {
                    errs.push(err(format!("{key}[{j}]"), one_line(&e.to_string())));
                }
            }
        }
        if let (Some(w), Some(c)) = (l.warn_count, l.crit_count) {
            if w > c {
                errs.push(err("warn_count", "must not be more than crit_count"));
            }
        }
        if l.warn_count == Some(0) || l.crit_count == Some(0) {
            errs.push(err("", "warn_count and crit_count must be at least 1"));
        }
        if l.quote_lines > 20 {
            errs.push(err("quote_lines", "must be 0–20"));
        }
        if l.max_read_bytes < 4096 {
            errs.push(err("max_read_bytes", "must be at least 4096"));
        }
        errs
    }
}

/// **The one registration of the polled check types**: variant, spec struct, and the name
/// written as `type = "…"`. Everything that lists the types derives from this list —
/// [`ProbeSpec`], [`ProbeKind`], `TYPES` and `type_name`, the config parser (which deserializes
/// a check's keys by the name, [`ProbeSpec::deserialize_kind`]), the probe dispatcher of
/// `vitals-probe`, the per-type metrics and `vitals probe --type`. Adding a type is its spec
/// struct here, one line below, its probe module, its example and its docs (ARCHITECTURE.md).
///
/// It calls the macro `$callback` with the list; a callback matches
/// `$($variant:ident($spec:ty) = $name:literal,)*`.
#[macro_export]
macro_rules! probe_kinds {
    ($callback:ident) => {
        $callback! {
            Http($crate::spec::HttpSpec) = "http",
            Tcp($crate::spec::TcpSpec) = "tcp",
            Tls($crate::spec::TlsSpec) = "tls",
            Dns($crate::spec::DnsSpec) = "dns",
            Exec($crate::spec::ExecSpec) = "exec",
            Icmp($crate::spec::IcmpSpec) = "icmp",
            Postgres($crate::spec::SqlSpec) = "postgres",
            Mysql($crate::spec::SqlSpec) = "mysql",
            Prometheus($crate::spec::PrometheusSpec) = "prometheus",
            Log($crate::spec::LogSpec) = "log",
        }
    };
}

/// Deserializes the keys of one registered kind into its spec, for whoever holds them (the
/// config parser, with its own error reporting). `wrap` makes the spec enum of the result.
pub trait SpecVisitor<S> {
    type Out;
    fn visit<T: serde::de::DeserializeOwned>(self, wrap: fn(T) -> S) -> Self::Out;
}

macro_rules! define_probe_kinds {
    ($($variant:ident($spec:ty) = $name:literal,)*) => {
        /// What a polled check does: one variant per registered type ([`probe_kinds!`]).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum ProbeSpec {
            $(#[serde(rename = $name)] $variant($spec),)*
        }

        /// The type of a [`ProbeSpec`], without its keys; in registration order, so that
        /// `kind as usize` indexes [`ProbeSpec::TYPES`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProbeKind {
            $($variant,)*
        }

        impl ProbeKind {
            pub const ALL: [ProbeKind; [$($name),*].len()] = [$(ProbeKind::$variant),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(ProbeKind::$variant => $name,)*
                }
            }

            pub fn from_name(name: &str) -> Option<ProbeKind> {
                match name {
                    $($name => Some(ProbeKind::$variant),)*
                    _ => None,
                }
            }
        }

        impl ProbeSpec {
            /// Every polled type's name, in registration order.
            pub const TYPES: [&'static str; [$($name),*].len()] = [$($name),*];

            pub fn kind(&self) -> ProbeKind {
                match self {
                    $(ProbeSpec::$variant(_) => ProbeKind::$variant,)*
                }
            }

            /// Every problem of the spec as `(key, message)`; empty when valid.
            pub fn validate(&self) -> Vec<(String, String)> {
                match self {
                    $(ProbeSpec::$variant(s) => s.validate(),)*
                }
            }

            /// Hands the spec type registered as `name` to `visitor`; `None` for a name that is
            /// not registered.
            pub fn deserialize_kind<V: SpecVisitor<ProbeSpec>>(
                name: &str,
                visitor: V,
            ) -> Option<V::Out> {
                match name {
                    $($name => Some(visitor.visit::<$spec>(ProbeSpec::$variant)),)*
                    _ => None,
                }
            }
        }
    };
}

probe_kinds!(define_probe_kinds);

impl ProbeSpec {
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// Index of the type in [`ProbeSpec::TYPES`].
    pub fn type_index(&self) -> usize {
        self.kind() as usize
    }
}

/// `type = "push"`: results are reported to Vitals (result API, compatible API), not polled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PushSpec {
    /// No report for longer than this is itself a `crit` observation ("stale").
    #[serde(default, with = "duration::option")]
    pub stale_after: Option<Duration>,
}

fn default_grace() -> Duration {
    Duration::from_secs(300)
}

/// `type = "heartbeat"`: a dead-man's switch. The check's `interval` (or `cron`) is when pings
/// are expected; a ping later than that plus `grace` is a `crit` observation made by Vitals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    /// The URL segment of `/ping/{slug}`; `{asset}-{name}` when absent.
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default = "default_grace", with = "duration")]
    pub grace: Duration,
    /// A secret of this check's own: pings with `?key=<secret>` are accepted without a token
    /// (cron jobs can only curl a URL).
    #[serde(default)]
    pub key: Option<String>,
}

/// What kind of check: polled by Vitals, or reported to it. (Few of these exist, one per
/// configured check, so the size difference between variants does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Probe(ProbeSpec),
    Push(PushSpec),
    Heartbeat(HeartbeatSpec),
}

impl CheckKind {
    /// Every type: the polled ones ([`ProbeSpec::TYPES`]), then `push` and `heartbeat`.
    pub const TYPES: [&'static str; ProbeSpec::TYPES.len() + 2] = {
        let mut out = ["push"; ProbeSpec::TYPES.len() + 2];
        let mut i = 0;
        while i < ProbeSpec::TYPES.len() {
            out[i] = ProbeSpec::TYPES[i];
            i += 1;
        }
        out[i + 1] = "heartbeat";
        out
    };

    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Probe(p) => p.type_name(),
            CheckKind::Push(_) => "push",
            CheckKind::Heartbeat(_) => "heartbeat",
        }
    }

    pub fn probe(&self) -> Option<&ProbeSpec> {
        match self {
            CheckKind::Probe(p) => Some(p),
            _ => None,
        }
    }
}

/// An id (asset, check, component name, …): what URLs, metrics labels and files can carry.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// What [`valid_id`] wants, as an error message after the offending value.
pub const ID_RULE: &str = "must be 1–200 characters of letters, digits and - _ . : @";

/// One `(key, message)` of a spec's `validate`.
fn err(key: impl Into<String>, message: impl Into<String>) -> (String, String) {
    (key.into(), message.into())
}

/// A regex error message on one line.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check_address(addr: &str, key: &str, errs: &mut Vec<(String, String)>) {
    let ok = match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    };
    if !ok {
        errs.push(err(key, format!("{addr:?} is not host:port")));
    }
}

/// A JSON pointer condition of an HTTP check: `pointer [op literal]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCondition {
    pub pointer: String,
    pub op: JsonOp,
    /// The literal to compare with; `None` for a bare pointer (must exist).
    pub expected: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonOp {
    Exists,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl JsonOp {
    pub fn as_str(self) -> &'static str {
        match self {
            JsonOp::Exists => "exists",
            JsonOp::Eq => "==",
            JsonOp::Ne => "!=",
            JsonOp::Lt => "<",
            JsonOp::Le => "<=",
            JsonOp::Gt => ">",
            JsonOp::Ge => ">=",
        }
    }
}

impl JsonCondition {
    /// Parses `"/status == \"pass\""`, `"/items/0/id == 17"`, `"/count >= 3"`, `"/ok"`.
    /// A right-hand side that is not JSON is taken as a string: `/status == pass`.
    pub fn parse(s: &str) -> Result<JsonCondition, String> {
        let s = s.trim();
        if !s.starts_with('/') && !s.is_empty() {
            return Err(format!("JSON pointer must start with '/': {s:?}"));
        }
        // Two-character operators first so that `<=` is not read as `<`.
        for (tok, op) in [
            ("==", JsonOp::Eq),
            ("!=", JsonOp::Ne),
            ("<=", JsonOp::Le),
            (">=", JsonOp::Ge),
            ("<", JsonOp::Lt),
            (">", JsonOp::Gt),
        ] {
            if let Some(i) = s.find(tok) {
                let pointer = s[..i].trim().to_string();
                let rhs = s[i + tok.len()..].trim();
                if rhs.is_empty() {
                    return Err(format!("missing value after {tok:?} in {s:?}"));
                }
                let expected = serde_json::from_str(rhs)
                    .unwrap_or_else(|_| serde_json::Value::String(rhs.to_string()));
                if matches!(op, JsonOp::Lt | JsonOp::Le | JsonOp::Gt | JsonOp::Ge)
                    && !expected.is_number()
                {
                    return Err(format!("{tok:?} needs a number on its right in {s:?}"));
                }
                return Ok(JsonCondition {
                    pointer,
                    op,
                    expected: Some(expected),
                });
            }
        }
        if s.contains(char::is_whitespace) {
            return Err(format!(
                "expected `pointer`, or `pointer OP value` with OP one of == != < <= > >=: {s:?}"
            ));
        }
        Ok(JsonCondition {
            pointer: s.to_string(),
            op: JsonOp::Exists,
            expected: None,
        })
    }

    /// Evaluates against a document; `Err` is the human-readable mismatch.
    pub fn eval(&self, doc: &serde_json::Value) -> Result<(), String> {
        let Some(actual) = doc.pointer(&self.pointer) else {
            return Err(format!("{} is missing", self.pointer));
        };
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        let ok = match self.op {
            JsonOp::Exists => true,
            JsonOp::Eq => json_eq(actual, expected),
            JsonOp::Ne => !json_eq(actual, expected),
            op => match (actual.as_f64(), expected.as_f64()) {
                (Some(a), Some(b)) => match op {
                    JsonOp::Lt => a < b,
                    JsonOp::Le => a <= b,
                    JsonOp::Gt => a > b,
                    _ => a >= b,
                },
                _ => false,
            },
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} is {} (expected {} {})",
                self.pointer,
                actual,
                self.op.as_str(),
                expected
            ))
        }
    }
}

/// Numbers compare by value (`17 == 17.0`); everything else structurally.
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_conditions_parse_and_evaluate() {
        let doc = json!({"status": "pass", "items": [{"id": 17}], "count": 3});
        let c = JsonCondition::parse(r#"/status == "pass""#).unwrap();
        assert_eq!(c.eval(&doc), Ok(()));
        let c = JsonCondition::parse("/items/0/id == 17").unwrap();
        assert_eq!(c.eval(&doc), Ok(()));
        let c = JsonCondition::parse("/items/0/id == 18").unwrap();
        assert_eq!(
            c.eval(&doc).unwrap_err(),
            "/items/0/id is 17 (expected == 18)"
        );
        assert!(JsonCondition::parse("/count >= 3")
            .unwrap()
            .eval(&doc)
            .is_ok());
        assert!(JsonCondition::parse("/count < 3")
            .unwrap()
            .eval(&doc)
            .is_err());
        assert!(JsonCondition::parse("/status == pass")
            .unwrap()
            .eval(&doc)
            .is_ok());
        assert!(JsonCondition::parse("/missing")
            .unwrap()
            .eval(&doc)
            .is_err());
        assert!(JsonCondition::parse("/status").unwrap().eval(&doc).is_ok());
        assert!(JsonCondition::parse("status == 1").is_err());
        assert!(JsonCondition::parse("/a <").is_err());
        assert!(JsonCondition::parse("/a < x").is_err());
    }

    #[test]
    fn every_registered_kind_has_its_name_and_index() {
        assert_eq!(ProbeKind::ALL.len(), ProbeSpec::TYPES.len());
        for (i, k) in ProbeKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
            assert_eq!(k.name(), ProbeSpec::TYPES[i]);
            assert_eq!(ProbeKind::from_name(k.name()), Some(*k));
        }
        assert_eq!(ProbeKind::from_name("smtp"), None);
        let http = ProbeSpec::Http(HttpSpec::new("http://x/"));
        assert_eq!((http.type_name(), http.type_index()), ("http", 0));
        assert_eq!(
            &CheckKind::TYPES[..ProbeSpec::TYPES.len()],
            &ProbeSpec::TYPES[..]
        );
        assert_eq!(
            &CheckKind::TYPES[ProbeSpec::TYPES.len()..],
            &["push", "heartbeat"]
        );
        // The serde form keeps `type = "<name>"`.
        let json = serde_json::to_value(&http).unwrap();
        assert_eq!(json["type"], "http");
    }

    #[test]
    fn durations_parse_humanly() {
        assert_eq!(duration::parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration::parse("24h"), Ok(Duration::from_secs(86400)));
        assert!(duration::parse("30").is_err());
    }
}
