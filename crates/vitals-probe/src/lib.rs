//! Vitals probes. Every outcome is data — an [`Outcome`] that becomes an
//! [`Observation`](vitals_core::Observation) — never an error: a refused connection, a timeout,
//! a wrong status code or an expired certificate is a `crit` outcome with a precise reason.
//!
//! Every probe is bounded by its timeout and by bounded memory (body and output caps), so a
//! hostile target (slow drip, endless body, redirect loop, broken TLS) costs at most that.
//!
//! Modules: [`http`] (with timing phases, health bodies and captures), [`tls`], [`tcp`],
//! [`dns`], [`exec`] (Nagios plugins), [`icmp`] (ping), [`sql`] (`postgres`, `mysql`),
//! [`prometheus`] (exporters), [`log`] (log files, with [`follow`]), [`health`]
//! (health+json, Spring actuator, detail lines), [`nagios`] (plugin output and perfdata).

pub mod dns;
pub mod exec;
pub mod follow;
pub mod health;
pub mod http;
pub mod icmp;
pub mod log;
pub mod nagios;
pub mod prometheus;
pub mod sql;
pub mod tcp;
pub mod tls;

use std::time::{Duration, Instant};
use vitals_core::spec::{ProbeKind, ProbeSpec};
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

/// Shared probe resources (TLS roots, DNS resolver, log followers), built once and reused by
/// every run.
pub struct Prober {
    http: http::HttpProber,
    dns: dns::DnsProber,
    logs: log::Tails,
}

impl Prober {
    pub fn new() -> Self {
        Prober {
            http: http::HttpProber::new(),
            dns: dns::DnsProber::new(),
            logs: log::Tails::default(),
        }
    }

    /// Runs one probe, bounded by `timeout` whatever the probe does. A `log` probe run this
    /// way reads the recent end of its file once.
    pub async fn run(&self, spec: &ProbeSpec, timeout: Duration) -> Outcome {
        self.run_check(None, spec, timeout).await
    }

    /// Runs one probe of the scheduled check `key` (`asset/name`): a `log` check goes on from
    /// where its previous run stopped.
    pub async fn run_check(
        &self,
        key: Option<&str>,
        spec: &ProbeSpec,
        timeout: Duration,
    ) -> Outcome {
        let started = Instant::now();
        let fut = self.dispatch(key, spec, timeout);
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

/// What a probe module gives the dispatcher: one run of its spec type with the shared
/// resources. Implemented next to each probe; [`Prober::run_check`] dispatches over the
/// registered kinds (`vitals_core::probe_kinds!`), so nothing here lists them.
pub(crate) trait Probe {
    /// `kind` tells apart the kinds that share a spec type (`postgres` and `mysql`: `SqlSpec`);
    /// `key` is the scheduled check's (`asset/name`), for probes that keep state between runs.
    async fn run(
        &self,
        prober: &Prober,
        kind: ProbeKind,
        key: Option<&str>,
        timeout: Duration,
    ) -> Outcome;
}

macro_rules! dispatch {
    ($($variant:ident($spec:ty) = $name:literal,)*) => {
        impl Prober {
            async fn dispatch(&self, key: Option<&str>, spec: &ProbeSpec, timeout: Duration) -> Outcome {
                match spec {
                    $(ProbeSpec::$variant(s) => Probe::run(s, self, spec.kind(), key, timeout).await,)*
                }
            }
        }
    };
}

vitals_core::probe_kinds!(dispatch);

impl Prober {
    /// Drops the state (log followers) of checks that are gone; `keep` answers for a key.
    pub fn retain_checks(&self, keep: &dyn Fn(&str) -> bool) {
        self.logs.retain(keep);
    }

    /// How many log followers are kept.
    pub fn log_followers(&self) -> usize {
        self.logs.len()
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
