//! What a check is: its schedule, its timeout and its probe specification.
//!
//! These are plain data, deserialized from the `[[check]]` tables of `vitals.toml` by
//! `vitals-config` (which reports every error with its path) and executed by `vitals-probe`.
//! Each probe spec is `deny_unknown_fields`, so a misspelt key is an error, not a silent default.

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
    #[default]
    None,
    /// Detect health+json, Spring actuator or detail lines from content type and body.
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

/// What a polled check does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProbeSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Tls(TlsSpec),
    Dns(DnsSpec),
    Exec(ExecSpec),
}

impl ProbeSpec {
    pub const TYPES: [&'static str; 5] = ["http", "tcp", "tls", "dns", "exec"];

    pub fn type_name(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Tls(_) => "tls",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Exec(_) => "exec",
        }
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
    pub const TYPES: [&'static str; 7] = ["http", "tcp", "tls", "dns", "exec", "push", "heartbeat"];

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
    fn durations_parse_humanly() {
        assert_eq!(duration::parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration::parse("24h"), Ok(Duration::from_secs(86400)));
        assert!(duration::parse("30").is_err());
    }
}
