//! `vitals probe TARGET`: one probe, printed as a Nagios plugin would print it.

use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use std::time::Duration;
use vitals_core::spec::{
    self, DnsSpec, ExecSpec, HealthFormat, HttpSpec, IcmpSpec, IpVersion, LogSpec, ProbeKind,
    ProbeSpec, PrometheusSpec, SqlSpec, SqlTls, TcpSpec, TlsSpec,
};
use vitals_core::{Observation, Status};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum IpArg {
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
    Auto,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TlsArg {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
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
    /// URL (http, prometheus), host:port (tcp, tls, postgres, mysql), name (dns), host
    /// (icmp), file (log) or program (exec; arguments after `--`).
    pub target: String,
    /// Probe type; guessed from the target when absent (URL → http, host:port → tcp).
    #[arg(long = "type", short = 't', value_parser = PossibleValuesParser::new(ProbeSpec::TYPES))]
    pub kind: Option<String>,
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
    /// icmp: echo requests to send.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
    /// icmp: time between two requests.
    #[arg(long, default_value = "1s", value_parser = spec::duration::parse)]
    pub interval: Duration,
    /// icmp: IP version.
    #[arg(long, value_enum, default_value = "auto")]
    pub ip: IpArg,
    /// postgres/mysql: user name.
    #[arg(long)]
    pub user: Option<String>,
    /// postgres/mysql: name of the environment variable holding the password (never the
    /// password itself: command lines are visible to every user).
    #[arg(long)]
    pub password_env: Option<String>,
    /// postgres/mysql: database.
    #[arg(long)]
    pub database: Option<String>,
    /// postgres/mysql: the read-only query.
    #[arg(long, default_value = "SELECT 1")]
    pub query: String,
    /// postgres/mysql: TLS mode.
    #[arg(long, value_enum, default_value = "prefer")]
    pub tls: TlsArg,
    /// postgres/mysql/prometheus: a condition that must hold, e.g. 'rows >= 1' or
    /// 'count(up{job="node"}) >= 3' (repeatable).
    #[arg(long)]
    pub condition: Vec<String>,
    /// postgres/mysql: TABLE=PRIV,PRIV… the user must hold, e.g. logentries=SELECT,INSERT
    /// (repeatable).
    #[arg(long)]
    pub grant: Vec<String>,
    /// log: regex of the lines that count (repeatable).
    #[arg(long)]
    pub pattern: Vec<String>,
    /// log: regex of lines that never count (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// log: this many matching lines is a warning.
    #[arg(long, default_value_t = 1)]
    pub warn_count: u64,
    /// log: this many matching lines is critical.
    #[arg(long)]
    pub crit_count: Option<u64>,
    /// Print the observation as JSON instead of plugin output.
    #[arg(long)]
    pub json_output: bool,
    /// exec: arguments for the program.
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn build_spec(a: &ProbeArgs) -> Result<ProbeSpec, String> {
    // The types are the registered ones (`vitals_core::probe_kinds!`); clap refused others.
    let kind = match a.kind.as_deref() {
        Some(name) => {
            ProbeKind::from_name(name).ok_or_else(|| format!("unknown probe type {name:?}"))?
        }
        None if a.target.starts_with("http://") || a.target.starts_with("https://") => {
            ProbeKind::Http
        }
        None if a.target.contains(':') => ProbeKind::Tcp,
        None => {
            return Err(format!(
                "cannot tell the probe type of {:?}; give --type",
                a.target
            ))
        }
    };
    Ok(match kind {
        ProbeKind::Http => {
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
        ProbeKind::Tcp => ProbeSpec::Tcp(TcpSpec {
            address: a.target.clone(),
            send: a.send.clone(),
            expect: a.expect.first().cloned(),
        }),
        ProbeKind::Tls => ProbeSpec::Tls(TlsSpec {
            address: a.target.clone(),
            server_name: None,
            warn_days: 14,
            crit_days: 3,
            ca_file: a.ca_file.clone(),
        }),
        ProbeKind::Dns => ProbeSpec::Dns(DnsSpec {
            query: a.target.clone(),
            record: a.record.clone(),
            server: a.server.clone(),
            expect: a.expect.clone(),
        }),
        ProbeKind::Exec => ProbeSpec::Exec(ExecSpec {
            command: std::iter::once(a.target.clone())
                .chain(a.args.iter().cloned())
                .collect(),
            env: Default::default(),
            max_output_bytes: 64 * 1024,
        }),
        ProbeKind::Icmp => ProbeSpec::Icmp(IcmpSpec {
            host: a.target.clone(),
            count: a.count,
            packet_interval: a.interval,
            ip: match a.ip {
                IpArg::V4 => IpVersion::V4,
                IpArg::V6 => IpVersion::V6,
                IpArg::Auto => IpVersion::Auto,
            },
            warn_loss: 20.0,
            crit_loss: 60.0,
            warn_rtt: None,
            crit_rtt: None,
        }),
        ProbeKind::Postgres | ProbeKind::Mysql => {
            let sql = sql_spec(a)?;
            if kind == ProbeKind::Postgres {
                ProbeSpec::Postgres(sql)
            } else {
                ProbeSpec::Mysql(sql)
            }
        }
        ProbeKind::Prometheus => ProbeSpec::Prometheus(PrometheusSpec {
            url: a.target.clone(),
            headers: Default::default(),
            conditions: a.condition.clone(),
            warn_conditions: Vec::new(),
            max_body_bytes: 16 * 1024 * 1024,
            ca_file: a.ca_file.clone(),
            insecure: a.insecure,
        }),
        ProbeKind::Log => ProbeSpec::Log(LogSpec {
            file: a.target.clone().into(),
            patterns: a.pattern.clone(),
            exclude: a.exclude.clone(),
            warn_count: Some(a.warn_count),
            crit_count: a.crit_count,
            quote_lines: 3,
            max_read_bytes: 16 * 1024 * 1024,
        }),
        // A type registered without options here yet is still listed by --type.
        #[allow(unreachable_patterns)]
        other => {
            return Err(format!(
                "no command-line options for type {} yet; run it as a [[check]] of a configuration file",
                other.name()
            ))
        }
    })
}

/// `host[:port]` and the SQL options.
fn sql_spec(a: &ProbeArgs) -> Result<SqlSpec, String> {
    let (host, port) = match a.target.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port in {:?}", a.target))?,
            ),
        ),
        _ => (a.target.clone(), None),
    };
    let password = match &a.password_env {
        Some(var) => {
            Some(std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?)
        }
        None => None,
    };
    let mut grants = std::collections::BTreeMap::new();
    for g in &a.grant {
        let (table, privs) = g
            .split_once('=')
            .ok_or_else(|| format!("--grant {g:?}: write TABLE=PRIV,PRIV"))?;
        grants.insert(
            table.trim().to_string(),
            privs.split(',').map(|p| p.trim().to_string()).collect(),
        );
    }
    Ok(SqlSpec {
        host,
        port,
        database: a.database.clone(),
        user: a.user.clone().ok_or_else(|| "give --user".to_string())?,
        password,
        tls: match a.tls {
            TlsArg::Disable => SqlTls::Disable,
            TlsArg::Prefer => SqlTls::Prefer,
            TlsArg::Require => SqlTls::Require,
            TlsArg::VerifyCa => SqlTls::VerifyCa,
            TlsArg::VerifyFull => SqlTls::VerifyFull,
        },
        ca_file: a.ca_file.clone(),
        query: a.query.clone(),
        conditions: a.condition.clone(),
        warn_conditions: Vec::new(),
        grants,
        max_rows: 1000,
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
        accept_pushes: false,
        locations: None,
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
        let start = vitals_core::SystemClock::now();
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
