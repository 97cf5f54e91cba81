//! DNS probe: ask for one record type of one name and compare the answers.
//!
//! Resolvers are built once per (server, timeout) and reused, but with a cache size of zero
//! and one attempt: every probe really asks the server, so a record that changed or a server
//! that died shows up at the next run, not when a TTL runs out. The hosts file is not read —
//! this checks DNS, not `/etc/hosts`. Queries go over UDP; a truncated answer is asked again
//! over TCP.
//!
//! `expect` values must all be among the answers. Comparison is normalised: names are
//! compared case-insensitively without a trailing dot, addresses as parsed addresses (so
//! `::1` equals `0:0:0:0:0:0:0:1`), MX/SRV/SOA match either their full text
//! (`10 mail.example.com`) or just their target name, TXT values match their exact text.
//!
//! Values: `dns_ms` (query time) and `answers` (records of the asked type).

use crate::{fmt_duration, Outcome};
use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, ResolveError, ResolveErrorKind, TokioResolver};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vitals_core::spec::DnsSpec;
use vitals_core::{Status, Value};

/// Record types a DNS check may ask for.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SRV", "SOA"];

/// Answers quoted in a reason at most; the count is in the `answers` value.
const MAX_QUOTED: usize = 10;

/// Distinct resolvers kept at most; a config reload with ever new timeouts must not grow
/// the cache without end.
const MAX_RESOLVERS: usize = 256;

type Key = (Option<SocketAddr>, Duration);

/// Builds and keeps the resolvers DNS checks use: the system one and one per server.
pub struct DnsProber {
    resolvers: Mutex<HashMap<Key, TokioResolver>>,
}

impl DnsProber {
    pub fn new() -> Self {
        DnsProber {
            resolvers: Mutex::new(HashMap::new()),
        }
    }

    /// Runs one DNS probe bounded by `timeout`.
    pub async fn probe(&self, spec: &DnsSpec, timeout: Duration) -> Outcome {
        let started = Instant::now();
        let mut out = match self.run(spec, timeout).await {
            Ok(o) | Err(o) => o,
        };
        out.duration_us = started.elapsed().as_micros() as u64;
        out
    }

    async fn run(&self, spec: &DnsSpec, timeout: Duration) -> Result<Outcome, Outcome> {
        let unknown = |r: String| Outcome::new(Status::Unknown, r);
        let rtype = parse_record_type(&spec.record).map_err(unknown)?;
        let server = spec
            .server
            .as_deref()
            .map(parse_server)
            .transpose()
            .map_err(unknown)?;
        let name = query_name(&spec.query, rtype).map_err(unknown)?;
        let resolver = self.resolver(server, timeout).map_err(unknown)?;
        let asked = match server {
            Some(s) => s.to_string(),
            None => "the system resolver".to_string(),
        };

        let started = Instant::now();
        let result = tokio::time::timeout(timeout, resolver.lookup(name, rtype)).await;
        let dns_ms = started.elapsed().as_secs_f64() * 1000.0;
        let crit = |reason: String| {
            let mut o = Outcome::new(Status::Crit, reason);
            o.values.push(Value::new("dns_ms", dns_ms));
            o.values.push(Value::new("answers", 0.0));
            o
        };
        let lookup = match result {
            Err(_) => {
                return Err(crit(format!(
                    "timed out after {} querying {asked}",
                    fmt_duration(timeout)
                )))
            }
            Ok(Err(e)) => return Err(crit(describe_error(&e, rtype, timeout, &asked))),
            Ok(Ok(l)) => l,
        };

        let answers: Vec<Answer> = lookup
            .record_iter()
            .filter(|r| r.record_type() == rtype)
            .filter_map(|r| Answer::from_rdata(r.data()))
            .collect();
        if answers.is_empty() {
            return Err(crit(format!("no {rtype} records")));
        }
        let mut out = Outcome::new(Status::Ok, "resolved");
        out.values.push(Value::new("dns_ms", dns_ms));
        out.values.push(Value::new("answers", answers.len() as f64));

        let missing: Vec<&str> = spec
            .expect
            .iter()
            .map(|e| e.trim())
            .filter(|e| !answers.iter().any(|a| a.matches(e)))
            .collect();
        if !missing.is_empty() {
            out.status = Status::Crit;
            out.reason = format!(
                "expected {} {} missing (got {})",
                if missing.len() == 1 {
                    "answer"
                } else {
                    "answers"
                },
                missing.join(", "),
                quote_answers(&answers)
            );
        } else if !spec.expect.is_empty() {
            out.reason = "expected answers present".to_string();
        }
        Ok(out)
    }

    fn resolver(
        &self,
        server: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<TokioResolver, String> {
        let key = (server, timeout);
        // A poisoned lock only means another probe panicked mid-insert; the map is still valid.
        let mut map = self.resolvers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = map.get(&key) {
            return Ok(r.clone());
        }
        let resolver = build_resolver(server, timeout)?;
        if map.len() >= MAX_RESOLVERS {
            map.clear();
        }
        map.insert(key, resolver.clone());
        Ok(resolver)
    }
}

impl Default for DnsProber {
    fn default() -> Self {
        Self::new()
    }
}

fn build_resolver(server: Option<SocketAddr>, timeout: Duration) -> Result<TokioResolver, String> {
    let mut builder = match server {
        Some(addr) => {
            // Negative answers from the one server asked are final: no second opinion exists.
            let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            let config = ResolverConfig::from_parts(None, Vec::new(), group);
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    Ok(builder.build())
}

fn parse_record_type(s: &str) -> Result<RecordType, String> {
    let upper = s.trim().to_ascii_uppercase();
    if !RECORD_TYPES.contains(&upper.as_str()) {
        return Err(format!(
            "unsupported record type {s:?} (use one of {})",
            RECORD_TYPES.join(", ")
        ));
    }
    RecordType::from_str(&upper).map_err(|e| format!("unsupported record type {s:?}: {e}"))
}

/// `ip:port`, or a bare IP meaning port 53.
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = t
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "invalid DNS server {s:?}: expected ip:port, e.g. 192.0.2.53:53 or [2001:db8::53]:53"
    ))
}

/// The name to ask for; for PTR an IP address is turned into its reverse name.
fn query_name(name: &str, rtype: RecordType) -> Result<Name, String> {
    let t = name.trim();
    if t.is_empty() {
        return Err("empty DNS name".to_string());
    }
    if rtype == RecordType::PTR {
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Name::from(ip));
        }
    }
    Name::from_utf8(t).map_err(|e| format!("invalid DNS name {name:?}: {e}"))
}

fn describe_error(e: &ResolveError, rtype: RecordType, timeout: Duration, asked: &str) -> String {
    let proto = match e.kind() {
        ResolveErrorKind::Proto(p) => p,
        _ => return format!("DNS query to {asked} failed: {e}"),
    };
    match proto.kind() {
        ProtoErrorKind::NoRecordsFound { response_code, .. } => match *response_code {
            ResponseCode::NXDomain => "NXDOMAIN".to_string(),
            ResponseCode::NoError => format!("no {rtype} records"),
            code => rcode_name(code),
        },
        ProtoErrorKind::Timeout => {
            format!("timed out after {} querying {asked}", fmt_duration(timeout))
        }
        ProtoErrorKind::NoConnections => format!("no DNS server to ask ({asked})"),
        ProtoErrorKind::Io(io) => format!(
            "DNS query to {asked} failed: {}",
            crate::exec::strip_os_error(&io.to_string())
        ),
        _ => format!("DNS query to {asked} failed: {proto}"),
    }
}

/// The conventional upper-case mnemonic (`SERVFAIL`, `REFUSED`) of a failure response code.
fn rcode_name(code: ResponseCode) -> String {
    let name = match code {
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        other => return format!("DNS error response {}", u16::from(other)),
    };
    name.to_string()
}

/// One answer, in the forms an `expect` entry may match.
#[derive(Debug)]
enum Answer {
    Ip(IpAddr),
    /// Names: the full text and, for MX/SRV/SOA, the target name alone.
    Named {
        text: String,
        target: String,
    },
    Txt(String),
}

impl Answer {
    fn from_rdata(data: &RData) -> Option<Answer> {
        let named = |text: String, target: &Name| Answer::Named {
            text: normalise_words(&text),
            target: normalise(&target.to_utf8()),
        };
        Some(match data {
            RData::A(a) => Answer::Ip(IpAddr::V4(a.0)),
            RData::AAAA(a) => Answer::Ip(IpAddr::V6(a.0)),
            RData::CNAME(n) => named(n.0.to_utf8(), &n.0),
            RData::NS(n) => named(n.0.to_utf8(), &n.0),
            RData::PTR(n) => named(n.0.to_utf8(), &n.0),
            RData::MX(mx) => named(
                format!("{} {}", mx.preference(), mx.exchange()),
                mx.exchange(),
            ),
            RData::SRV(s) => named(
                format!(
                    "{} {} {} {}",
                    s.priority(),
                    s.weight(),
                    s.port(),
                    s.target()
                ),
                s.target(),
            ),
            RData::SOA(s) => named(
                format!(
                    "{} {} {} {} {} {} {}",
                    s.mname(),
                    s.rname(),
                    s.serial(),
                    s.refresh(),
                    s.retry(),
                    s.expire(),
                    s.minimum()
                ),
                s.mname(),
            ),
            RData::TXT(t) => Answer::Txt(
                t.txt_data()
                    .iter()
                    .map(|s| String::from_utf8_lossy(s))
                    .collect::<String>(),
            ),
            _ => return None,
        })
    }

    fn matches(&self, expected: &str) -> bool {
        match self {
            Answer::Ip(ip) => expected
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|e| e == *ip),
            Answer::Named { text, target } => {
                normalise(expected) == *target || normalise_words(expected) == *text
            }
            Answer::Txt(t) => t == expected,
        }
    }

    fn display(&self) -> String {
        match self {
            Answer::Ip(ip) => ip.to_string(),
            Answer::Named { text, .. } => text.clone(),
            Answer::Txt(t) => format!("{t:?}"),
        }
    }
}

/// Lowercase, trailing dot stripped.
fn normalise(s: &str) -> String {
    s.trim().trim_end_matches('.').to_lowercase()
}

/// [`normalise`] applied to each word, joined by single spaces: `10 Mail.Example.com.` →
/// `10 mail.example.com`.
fn normalise_words(s: &str) -> String {
    s.split_whitespace()
        .map(normalise)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sorted (answer order is the server's whim), de-duplicated and capped.
fn quote_answers(answers: &[Answer]) -> String {
    let mut shown: Vec<String> = answers.iter().map(Answer::display).collect();
    shown.sort();
    shown.dedup();
    let more = shown.len().saturating_sub(MAX_QUOTED);
    shown.truncate(MAX_QUOTED);
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

impl crate::Probe for vitals_core::spec::DnsSpec {
    async fn run(
        &self,
        prober: &crate::Prober,
        _kind: vitals_core::spec::ProbeKind,
        _key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        prober.dns.probe(self, timeout).await
    }
}
