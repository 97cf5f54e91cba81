//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Rendered by hand from the live state at scrape time: per-check gauges come straight from
//! the latest observations, so they can never disagree with the API. (The `prometheus-client`
//! crate emits OpenMetrics, whose counter naming `promtool check metrics` rejects.)

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// The exposition in chunks: with 100,000 checks it is ~73 MB, and one `String` doubling to
/// it peaked at ~130 MB (heaptrack); chunks hold what was written.
struct Out {
    /// The chunk being written.
    cur: String,
    /// Full chunks, in order.
    done: Vec<axum::body::Bytes>,
}

/// Size of one chunk of the body.
const CHUNK: usize = 256 * 1024;

impl Out {
    fn new() -> Self {
        Out {
            cur: String::with_capacity(CHUNK + 4096),
            done: Vec::new(),
        }
    }

    /// Moves the current chunk out once it is full (called between samples, so a sample is
    /// never split — not that the client would notice).
    fn spill(&mut self) {
        if self.cur.len() >= CHUNK {
            let full = std::mem::replace(&mut self.cur, String::with_capacity(CHUNK + 4096));
            self.done.push(full.into());
        }
    }

    fn into_body(mut self) -> axum::body::Body {
        if !self.cur.is_empty() {
            self.done.push(std::mem::take(&mut self.cur).into());
        }
        let chunks = self.done.into_iter().map(Ok::<_, std::convert::Infallible>);
        axum::body::Body::from_stream(futures_util::stream::iter(chunks))
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.cur, "# HELP {name} {help}");
        let _ = writeln!(self.cur, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.cur.push_str(name);
        if !labels.is_empty() {
            self.cur.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.cur.push(',');
                }
                self.cur.push_str(k);
                self.cur.push_str("=\"");
                escape_label(&mut self.cur, v);
                self.cur.push('"');
            }
            self.cur.push('}');
        }
        self.cur.push(' ');
        if value.is_finite() {
            let _ = write!(self.cur, "{value}");
        } else if value.is_nan() {
            self.cur.push_str("NaN");
        } else if value > 0.0 {
            self.cur.push_str("+Inf");
        } else {
            self.cur.push_str("-Inf");
        }
        self.cur.push('\n');
        self.spill();
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// What the edge refused and who failed to authenticate.
fn edge(o: &mut Out, e: &crate::edge::Edge) {
    use crate::edge::{AuthFailure, ConnRefusal, Refusal};
    o.family(
        "vitals_http_refused_total",
        "counter",
        "Requests refused before routing: a Host that is not ours, a write from another site, a JSON route sent another content type.",
    );
    for r in Refusal::ALL {
        o.sample(
            "vitals_http_refused_total",
            &[("reason", r.as_str())],
            e.refused(r) as f64,
        );
    }
    o.family(
        "vitals_auth_failures_total",
        "counter",
        "Failed authentications by kind.",
    );
    for f in AuthFailure::ALL {
        o.sample(
            "vitals_auth_failures_total",
            &[("reason", f.as_str())],
            e.auth_failures(f) as f64,
        );
    }
    o.family(
        "vitals_auth_throttled_total",
        "counter",
        "Requests refused because their source failed to authenticate too often.",
    );
    o.sample("vitals_auth_throttled_total", &[], e.throttled() as f64);
    o.family(
        "vitals_http_connections_open",
        "gauge",
        "Client connections open now.",
    );
    o.sample(
        "vitals_http_connections_open",
        &[],
        e.connections_open.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_http_connections_total",
        "counter",
        "Client connections accepted.",
    );
    o.sample(
        "vitals_http_connections_total",
        &[],
        e.connections_total.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_http_connections_refused_total",
        "counter",
        "Connections closed at once: over max_connections, or over max_connections_per_address.",
    );
    for (r, label) in [
        (ConnRefusal::Global, "global"),
        (ConnRefusal::PerAddress, "per_address"),
    ] {
        o.sample(
            "vitals_http_connections_refused_total",
            &[("limit", label)],
            e.conn_refused(r) as f64,
        );
    }
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let mut o = Out::new();
    let m = app.metrics();

    o.family(
        "vitals_build_info",
        "gauge",
        "Version of this Vitals build (always 1).",
    );
    o.sample(
        "vitals_build_info",
        &[
            ("version", app.build.version),
            ("git_commit", app.build.git_commit),
        ],
        1.0,
    );
    if let Some(b) = crate::monitor::resident_bytes() {
        // The name Prometheus' own process collectors use, so existing dashboards find it.
        o.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the Vitals process in bytes.",
        );
        o.sample("process_resident_memory_bytes", &[], b as f64);
    }
    if let Some(b) = app.store().memory_in_use() {
        o.family(
            "vitals_store_memory_bytes",
            "gauge",
            "Memory the embedded database holds in this process (bounded, see docs/operations.md).",
        );
        o.sample("vitals_store_memory_bytes", &[], b as f64);
    }

    {
        let state = app.state().read();
        o.family("vitals_assets", "gauge", "Number of known assets.");
        o.sample("vitals_assets", &[], state.len() as f64);

        o.family(
            "vitals_check_status",
            "gauge",
            "Latest status of a check: 0 ok, 1 warn, 2 crit, 3 unknown.",
        );
        for (id, a) in state.iter() {
            for (name, c) in &a.checks {
                if let Some(l) = &c.latest {
                    o.sample(
                        "vitals_check_status",
                        &[("asset", id), ("check", name), ("type", &c.kind)],
                        f64::from(l.status.code()),
                    );
                }
            }
        }
        o.family(
            "vitals_check_up",
            "gauge",
            "1 when the latest status of a check is ok, else 0.",
        );
        for (id, a) in state.iter() {
            for (name, c) in &a.checks {
                if let Some(l) = &c.latest {
                    let up = if l.status == vitals_core::Status::Ok {
                        1.0
                    } else {
                        0.0
                    };
                    o.sample("vitals_check_up", &[("asset", id), ("check", name)], up);
                }
            }
        }
        o.family(
            "vitals_check_score",
            "gauge",
            "Latest score of a check (1 good … 4 extremely bad).",
        );
        for (id, a) in state.iter() {
            for (name, c) in &a.checks {
                if let Some(l) = &c.latest {
                    o.sample(
                        "vitals_check_score",
                        &[("asset", id), ("check", name)],
                        l.score as f64,
                    );
                }
            }
        }
        o.family(
            "vitals_check_duration_seconds",
            "gauge",
            "Duration of the latest run of a check.",
        );
        for (id, a) in state.iter() {
            for (name, c) in &a.checks {
                if let Some(l) = &c.latest {
                    o.sample(
                        "vitals_check_duration_seconds",
                        &[("asset", id), ("check", name)],
                        l.duration_us as f64 / 1e6,
                    );
                }
            }
        }
        o.family(
            "vitals_check_last_run_timestamp_seconds",
            "gauge",
            "When the latest observation of a check was made (Unix time).",
        );
        for (id, a) in state.iter() {
            for (name, c) in &a.checks {
                if let Some(l) = &c.latest {
                    o.sample(
                        "vitals_check_last_run_timestamp_seconds",
                        &[("asset", id), ("check", name)],
                        l.time.0 as f64 / 1e3,
                    );
                }
            }
        }
        // Bounded by the checks: one series per (asset, check, value name) of the latest
        // observation; a name repeated within one observation is shown once.
        o.family(
            "vitals_check_value",
            "gauge",
            "Numeric values of the latest observation of a check (latencies, counts, query results, scraped figures).",
        );
        let mut seen: Vec<&str> = Vec::new();
        for (id, a) in state.iter() {
            for (name, c) in &a.checks {
                if let Some(l) = &c.latest {
                    seen.clear();
                    for v in l.values.iter().filter(|v| v.value.is_finite()) {
                        if seen.contains(&v.name.as_str()) {
                            continue;
                        }
                        seen.push(&v.name);
                        o.sample(
                            "vitals_check_value",
                            &[("asset", id), ("check", name), ("name", &v.name)],
                            v.value,
                        );
                    }
                }
            }
        }
    }

    // Open alerts, like Prometheus' own ALERTS series: one sample per alert, value 1.
    o.family(
        "vitals_alert_active",
        "gauge",
        "One per open alert (pending, firing or acknowledged), with its rule, asset, check, severity, state and whether it is suppressed (silence, maintenance, failing parent).",
    );
    match app.store().open_alerts().await {
        Ok(alerts) => {
            for a in &alerts {
                let id = a.id.to_string();
                o.sample(
                    "vitals_alert_active",
                    &[
                        ("id", &id),
                        ("rule", &a.rule),
                        ("asset", a.asset.as_deref().unwrap_or("")),
                        ("check", a.check.as_deref().unwrap_or("")),
                        ("severity", a.severity.as_str()),
                        ("state", a.state.as_str()),
                        (
                            "suppressed",
                            if a.suppressed.is_some() {
                                "true"
                            } else {
                                "false"
                            },
                        ),
                    ],
                    1.0,
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "/metrics: cannot read open alerts"),
    }

    o.family(
        "vitals_component_up",
        "gauge",
        "Vitals' own parts as /monitor reports them: 1 OK, 0 FAIL.",
    );
    for (name, r) in crate::monitor::components(&app).await {
        o.sample(
            "vitals_component_up",
            &[("component", name)],
            if r.is_ok() { 1.0 } else { 0.0 },
        );
    }
    o.family(
        "vitals_start_time_seconds",
        "gauge",
        "When this Vitals process started (Unix time).",
    );
    o.sample("vitals_start_time_seconds", &[], app.started.0 as f64 / 1e3);

    o.family(
        "vitals_probes_total",
        "counter",
        "Probes completed, by probe type and outcome.",
    );
    for (t, s, n) in m.probe_counts() {
        o.sample(
            "vitals_probes_total",
            &[("type", t), ("status", s.as_str())],
            n as f64,
        );
    }
    o.family("vitals_probes_in_flight", "gauge", "Probes running now.");
    o.sample(
        "vitals_probes_in_flight",
        &[],
        m.in_flight.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_observations_stored_total",
        "counter",
        "Observations committed to the store.",
    );
    o.sample(
        "vitals_observations_stored_total",
        &[],
        m.observations_stored.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_store_errors_total",
        "counter",
        "Failed store writes.",
    );
    o.sample(
        "vitals_store_errors_total",
        &[],
        m.store_errors.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_schedule_skipped_total",
        "counter",
        "Ticks skipped because the previous run of the check was still in progress.",
    );
    o.sample(
        "vitals_schedule_skipped_total",
        &[],
        m.skipped_ticks.load(Ordering::Relaxed) as f64,
    );

    edge(&mut o, &app.protect.edge);
    o.family(
        "vitals_ingest_refused_total",
        "counter",
        "Pushes refused by a limit (label: the limit's name).",
    );
    for l in vitals_scheduler::IngestLimit::ALL {
        o.sample(
            "vitals_ingest_refused_total",
            &[("limit", l.as_str())],
            m.refused_count(l) as f64,
        );
    }
    o.family(
        "vitals_observations_buffered",
        "gauge",
        "Probe observations waiting for the store to take writes again.",
    );
    o.sample(
        "vitals_observations_buffered",
        &[],
        m.observations_buffered.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_observations_dropped_total",
        "counter",
        "Probe observations dropped because the store refused writes for too long.",
    );
    o.sample(
        "vitals_observations_dropped_total",
        &[],
        m.observations_dropped.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "vitals_store_failing",
        "gauge",
        "1 while the store refuses writes.",
    );
    o.sample(
        "vitals_store_failing",
        &[],
        if m.store_failure().is_some() {
            1.0
        } else {
            0.0
        },
    );

    let (buckets, count, sum) = m.lateness_histogram();
    o.family(
        "vitals_schedule_lateness_seconds",
        "histogram",
        "How late probes started after their due time.",
    );
    for (le, c) in buckets {
        o.sample(
            "vitals_schedule_lateness_seconds_bucket",
            &[("le", &le.to_string())],
            c as f64,
        );
    }
    o.sample(
        "vitals_schedule_lateness_seconds_bucket",
        &[("le", "+Inf")],
        count as f64,
    );
    o.sample("vitals_schedule_lateness_seconds_sum", &[], sum);
    o.sample("vitals_schedule_lateness_seconds_count", &[], count as f64);

    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.into_body(),
    )
}
