//! `[server]` and `[server.limits]`: where the server listens, where its data lives, and what
//! clients may hold.

use crate::de::{default_true, deserialize};
use crate::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./vitals-data";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    #[serde(default = "default_listen", deserialize_with = "listen_address")]
    pub listen: SocketAddr,
    /// Where the embedded database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The store as a data URL: `sqlite://PATH` or `postgres://…` (default: SQLite,
    /// `vitals.db` in `data_dir`). Checked when the store is opened.
    #[serde(default)]
    pub store: Option<String>,
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
    /// Further names this server is reached by (the `Host` header; `public_url`'s host, IP
    /// addresses, this machine's host name and — on loopback — `localhost` are always
    /// accepted). Any other name is refused, which defeats DNS rebinding.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `normal`: a commit survives `kill -9` of the process; `full`: it also survives a power
    /// loss (an fsync per commit).
    #[serde(default)]
    pub durability: Durability,
    /// Connections and slow clients.
    #[serde(default)]
    pub limits: ConnectionLimits,
    /// Replicas on PostgreSQL: how long a replica's membership and the decider lease last
    /// without renewal — a killed replica's checks move to the others within it.
    #[serde(default = "default_lease", with = "vitals_core::spec::duration")]
    pub lease: Duration,
    /// SQLite: observations kept in the staging table before they are moved into the main
    /// one in bulk. More: fewer, cheaper-per-row moves (each moved row rewrites its check's
    /// page, so with many checks reporting often a larger stage writes far fewer pages);
    /// fewer: less for a per-check read to scan (staged rows have no index). Read at start.
    #[serde(default = "default_staging_rows")]
    pub staging_rows: usize,
}

fn default_lease() -> Duration {
    Duration::from_secs(10)
}

/// The largest `staging_rows` (a stage this big takes ~50 MB and long per-check reads).
pub const MAX_STAGING_ROWS: usize = 1_000_000;

fn default_staging_rows() -> usize {
    16_384
}

/// How hard a commit is pushed to disk (SQLite `synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

/// `[server.limits]`: what one client, and all of them together, may hold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Open connections at once, from everyone.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections at once from one IP address.
    #[serde(default = "default_max_per_address")]
    pub max_connections_per_address: usize,
    /// A request's headers must arrive within this.
    #[serde(
        default = "default_header_timeout",
        with = "vitals_core::spec::duration"
    )]
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    #[serde(default = "default_body_timeout", with = "vitals_core::spec::duration")]
    pub body_timeout: Duration,
    /// A keep-alive connection with no traffic for this long is closed.
    #[serde(default = "default_idle_timeout", with = "vitals_core::spec::duration")]
    pub idle_timeout: Duration,
}

fn default_max_connections() -> usize {
    4096
}
fn default_max_per_address() -> usize {
    256
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_per_address(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn listen_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!("{s:?} is not an address like \"127.0.0.1:8080\""))
    })
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_max_concurrency() -> usize {
    512
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            store: None,
            max_concurrency: default_max_concurrency(),
            self_check: true,
            public_url: None,
            tls_cert: None,
            tls_key: None,
            hosts: Vec::new(),
            durability: Durability::Normal,
            limits: ConnectionLimits::default(),
            lease: default_lease(),
            staging_rows: default_staging_rows(),
        }
    }
}

/// `[server]`, or the defaults when it is absent.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> ServerConfig {
    match root.remove("server") {
        None => ServerConfig::default(),
        Some(v) => deserialize::<ServerConfig>(v, "server", errors).unwrap_or_default(),
    }
}

/// What serde cannot say about `[server]`; runs on the defaults too when keys failed.
pub(crate) fn validate(s: &ServerConfig, errors: &mut Vec<ConfigError>) {
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
    if s.staging_rows == 0 || s.staging_rows > MAX_STAGING_ROWS {
        errors.push(ConfigError::new(
            "server.staging_rows",
            format!("must be from 1 to {MAX_STAGING_ROWS}"),
        ));
    }
    if s.max_concurrency == 0 {
        errors.push(ConfigError::new(
            "server.max_concurrency",
            "must be at least 1",
        ));
    }
    let l = &s.limits;
    if l.max_connections == 0 {
        errors.push(ConfigError::new(
            "server.limits.max_connections",
            "must be at least 1",
        ));
    }
    if l.max_connections_per_address == 0 || l.max_connections_per_address > l.max_connections {
        errors.push(ConfigError::new(
            "server.limits.max_connections_per_address",
            "must be from 1 to max_connections",
        ));
    }
    for (k, d) in [
        ("header_timeout", l.header_timeout),
        ("body_timeout", l.body_timeout),
        ("idle_timeout", l.idle_timeout),
    ] {
        if d < Duration::from_millis(100) {
            errors.push(ConfigError::new(
                format!("server.limits.{k}"),
                "must be at least 100ms",
            ));
        }
    }
    if s.lease < Duration::from_secs(2) || s.lease > Duration::from_secs(300) {
        errors.push(ConfigError::new(
            "server.lease",
            "must be from 2s to 5m (replicas renew it every fifth of it)",
        ));
    }
    for (i, h) in s.hosts.iter().enumerate() {
        if h.is_empty()
            || h.len() > 253
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            errors.push(ConfigError::new(
                format!("server.hosts[{i}]"),
                format!("{h:?} is not a host name (letters, digits, - . _; no port)"),
            ));
        }
    }
}
