//! `vitals probe TARGET`: one probe, printed as a Nagios plugin would print it.

use clap::{Args, ValueEnum};
use std::time::Duration;
use vitals_core::spec::{
    self, DnsSpec, ExecSpec, HealthFormat, HttpSpec, ProbeSpec, TcpSpec, TlsSpec,
};
use vitals_core::{Observation, Status};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProbeType {
    Http,
    Tcp,
    Tls,
    Dns,
    Exec,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BodyFormat {
    None,
    Auto,
    HealthJson,
    Actuator,
    Lines,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// URL (http), host:port (tcp, tls), name (dns) or program (exec; arguments after `--`).
    pub target: String,
    /// Probe type; guessed from the target when absent (URL → http, host:port → tcp).
    #[arg(long = "type", short = 't', value_enum)]
    pub kind: Option<ProbeType>,
    /// Give up after this long.
    #[arg(long, default_value = "10s", value_parser = spec::duration::parse)]
    pub timeout: Duration,
    /// http: read the body as a health document.
    #[arg(long, value_enum, default_value = "auto")]
    pub health: BodyFormat,
    /// http: accepted status codes (repeatable); default any 2xx.
    #[arg(long = "expect-status")]
    pub expect_status: Vec<u16>,
    /// http: the body must contain this text.
    #[arg(long)]
    pub contains: Option<String>,
    /// http: JSON pointer condition, e.g. '/status == "pass"' (repeatable).
    #[arg(long)]
    pub json: Vec<String>,
    /// http: HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// http/tls: PEM bundle of CAs to trust.
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// http: skip certificate verification.
    #[arg(long)]
    pub insecure: bool,
    /// tcp: text to send after connecting.
    #[arg(long)]
    pub send: Option<String>,
    /// tcp: text expected in the answer; dns: expected answer (repeatable).
    #[arg(long)]
    pub expect: Vec<String>,
    /// dns: record type.
    #[arg(long, default_value = "A")]
    pub record: String,
    /// dns: server to ask (ip:port).
    #[arg(long)]
    pub server: Option<String>,
    /// Print the observation as JSON instead of plugin output.
    #[arg(long)]
    pub json_output: bool,
    /// exec: arguments for the program.
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn build_spec(a: &ProbeArgs) -> Result<ProbeSpec, String> {
    let kind = match a.kind {
        Some(k) => k,
        None if a.target.starts_with("http://") || a.target.starts_with("https://") => {
            ProbeType::Http
        }
        None if a.target.contains(':') => ProbeType::Tcp,
        None => {
            return Err(format!(
                "cannot tell the probe type of {:?}; give --type",
                a.target
            ))
        }
    };
    Ok(match kind {
        ProbeType::Http => {
            let mut h = HttpSpec::new(a.target.clone());
            h.method = a.method.clone();
            h.expect_status = a.expect_status.clone();
            h.body_contains = a.contains.clone();
            h.json = a.json.clone();
            h.ca_file = a.ca_file.clone();
            h.insecure = a.insecure;
            h.health = match a.health {
                BodyFormat::None => HealthFormat::None,
                BodyFormat::Auto => HealthFormat::Auto,
                BodyFormat::HealthJson => HealthFormat::HealthJson,
                BodyFormat::Actuator => HealthFormat::Actuator,
                BodyFormat::Lines => HealthFormat::Lines,
            };
            ProbeSpec::Http(h)
        }
        ProbeType::Tcp => ProbeSpec::Tcp(TcpSpec {
            address: a.target.clone(),
            send: a.send.clone(),
            expect: a.expect.first().cloned(),
        }),
        ProbeType::Tls => ProbeSpec::Tls(TlsSpec {
            address: a.target.clone(),
            server_name: None,
            warn_days: 14,
            crit_days: 3,
            ca_file: a.ca_file.clone(),
        }),
        ProbeType::Dns => ProbeSpec::Dns(DnsSpec {
            query: a.target.clone(),
            record: a.record.clone(),
            server: a.server.clone(),
            expect: a.expect.clone(),
        }),
        ProbeType::Exec => ProbeSpec::Exec(ExecSpec {
            command: std::iter::once(a.target.clone())
                .chain(a.args.iter().cloned())
                .collect(),
            env: Default::default(),
            max_output_bytes: 64 * 1024,
        }),
    })
}

/// Validates the spec the same way a config file's check is validated.
fn validate(spec: &ProbeSpec, timeout: Duration) -> Result<(), String> {
    let check = vitals_config::CheckConfig {
        asset: "cli".into(),
        name: "probe".into(),
        schedule: vitals_config::ScheduleSpec::Interval(timeout.max(Duration::from_secs(1))),
        jitter: None,
        timeout,
        enabled: true,
        description: None,
        kind: vitals_core::spec::CheckKind::Probe(spec.clone()),
    };
    let errors = vitals_config::validate_check(&check, "probe");
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// `label=value[UOM]` per Nagios perfdata; `*_ms` values carry the `ms` unit.
fn perfdata(o: &Observation) -> String {
    o.values
        .iter()
        .map(|v| {
            let label = if v
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                v.name.clone()
            } else {
                format!("'{}'", v.name.replace('\'', "''"))
            };
            let uom = if v.name.ends_with("_ms") { "ms" } else { "" };
            format!("{label}={}{uom}", v.value)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warn => "WARNING",
        Status::Crit => "CRITICAL",
        Status::Unknown => "UNKNOWN",
    }
}

pub fn run(args: &ProbeArgs) -> u8 {
    let spec = match build_spec(args).and_then(|s| validate(&s, args.timeout).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            println!("VITALS UNKNOWN - {e}");
            return 3;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("VITALS UNKNOWN - cannot start runtime: {e}");
            return 3;
        }
    };
    let obs = rt.block_on(async {
        let prober = vitals_probe::Prober::new();
        let start = vitals_scheduler::now();
        prober
            .run(&spec, args.timeout)
            .await
            .into_observation("cli", spec.type_name(), start)
    });
    if args.json_output {
        println!("{}", serde_json::to_string_pretty(&obs).unwrap_or_default());
    } else {
        let reason = if obs.reason.is_empty() {
            "ok"
        } else {
            obs.reason.as_str()
        };
        let perf = perfdata(&obs);
        let kind = spec.type_name().to_uppercase();
        if perf.is_empty() {
            println!("VITALS {kind} {} - {reason}", status_word(obs.status));
        } else {
            println!(
                "VITALS {kind} {} - {reason} | {perf}",
                status_word(obs.status)
            );
        }
        for c in &obs.components {
            let value = c
                .value
                .as_deref()
                .map(|v| format!(" ({v})"))
                .unwrap_or_default();
            let output = if c.output.is_empty() {
                String::new()
            } else {
                format!(": {}", c.output)
            };
            println!("{} {}{value}{output}", status_word(c.status), c.name);
        }
    }
    obs.status.exit_code() as u8
}
