//! Vitals probes. Every outcome is data — an [`Outcome`] that becomes an
//! [`Observation`](vitals_core::Observation) — never an error: a refused connection, a timeout,
//! a wrong status code or an expired certificate is a `crit` outcome with a precise reason.
//!
//! Every probe is bounded by its timeout and by bounded memory (body and output caps), so a
//! hostile target (slow drip, endless body, redirect loop, broken TLS) costs at most that.
//!
//! Modules: [`http`] (with timing phases and health bodies), [`tls`], [`tcp`], [`dns`],
//! [`exec`] (Nagios plugins), [`health`] (health+json, Spring actuator, detail lines),
//! [`nagios`] (plugin output and perfdata).

pub mod dns;
pub mod exec;
pub mod health;
pub mod http;
pub mod nagios;
pub mod tcp;
pub mod tls;

use std::time::{Duration, Instant};
use vitals_core::spec::ProbeSpec;
use vitals_core::{Component, Observation, Status, Timestamp, Value};

/// The result of one probe run, before it is attached to an asset and check.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    /// Short and stable; numbers go in `values`.
    pub reason: String,
    pub duration_us: u64,
    pub values: Vec<Value>,
    pub components: Vec<Component>,
}

impl Outcome {
    pub fn new(status: Status, reason: impl Into<String>) -> Self {
        Outcome {
            status,
            reason: reason.into(),
            duration_us: 0,
            values: Vec::new(),
            components: Vec::new(),
        }
    }

    pub fn into_observation(self, asset: &str, check: &str, time: Timestamp) -> Observation {
        Observation {
            asset: asset.to_string(),
            check: check.to_string(),
            time,
            status: self.status,
            score: self.status.default_score(),
            duration_us: self.duration_us,
            reason: self.reason,
            values: self.values,
            components: self.components,
        }
    }
}

/// Shared probe resources (TLS roots, DNS resolver), built once and reused by every run.
pub struct Prober {
    http: http::HttpProber,
    dns: dns::DnsProber,
}

impl Prober {
    pub fn new() -> Self {
        Prober {
            http: http::HttpProber::new(),
            dns: dns::DnsProber::new(),
        }
    }

    /// Runs one probe, bounded by `timeout` whatever the probe does.
    pub async fn run(&self, spec: &ProbeSpec, timeout: Duration) -> Outcome {
        let started = Instant::now();
        let fut = async {
            match spec {
                ProbeSpec::Http(s) => self.http.probe(s, timeout).await,
                ProbeSpec::Tls(s) => tls::probe(s, timeout).await,
                ProbeSpec::Tcp(s) => tcp::probe(s, timeout).await,
                ProbeSpec::Dns(s) => self.dns.probe(s, timeout).await,
                ProbeSpec::Exec(s) => exec::probe(s, timeout).await,
            }
        };
        // Backstop: each probe enforces its own timeout with a precise reason; this one only
        // catches a probe that failed to.
        let mut out = match tokio::time::timeout(timeout + Duration::from_millis(50), fut).await {
            Ok(o) => o,
            Err(_) => Outcome::new(
                Status::Crit,
                format!("timed out after {}", fmt_duration(timeout)),
            ),
        };
        if out.duration_us == 0 {
            out.duration_us = started.elapsed().as_micros() as u64;
        }
        // Millisecond timings are kept to the microsecond: finer is noise, and rounded values
        // store compactly.
        for v in &mut out.values {
            if v.name.ends_with("_ms") {
                v.value = (v.value * 1000.0).round() / 1000.0;
            }
        }
        out
    }
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}

/// `1.5s`, `250ms`, `10s` — for reasons.
pub fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
