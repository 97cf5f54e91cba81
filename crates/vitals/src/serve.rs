//! `vitals serve`: wire config → store → live state → pipeline → scheduler → HTTP server, and
//! handle signals: SIGHUP reloads the config (keeping all state), SIGTERM/SIGINT stop taking
//! requests, let running probes finish, flush observations and close the store.

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use vitals_app::{App, StartOptions};
use vitals_config::Config;

/// Where the configuration comes from, so SIGHUP can read it again.
#[derive(Clone)]
enum Source {
    File(PathBuf),
    Builtin,
    /// A configuration built in memory (`vitals demo`); a reload keeps it.
    Given(Box<Config>),
}

impl Source {
    fn load(&self) -> Result<Config> {
        match self {
            Source::File(p) => Config::load(p)
                .map_err(|e| anyhow::anyhow!("{} has {} error(s):\n{e}", p.display(), e.0.len())),
            Source::Builtin => Ok(Config::builtin()),
            Source::Given(c) => Ok((**c).clone()),
        }
    }
}

fn pick_source(config: Option<PathBuf>) -> Source {
    match config {
        Some(p) => Source::File(p),
        None if Path::new("vitals.toml").exists() => Source::File(PathBuf::from("vitals.toml")),
        None => Source::Builtin,
    }
}

pub fn run(config: Option<PathBuf>, listen: Option<String>) -> Result<()> {
    let source = pick_source(config);
    let mut cfg = source.load()?;
    let listen: Option<SocketAddr> = listen
        .map(|l| {
            l.parse()
                .with_context(|| format!("--listen {l:?} is not an address like 127.0.0.1:8080"))
        })
        .transpose()?;
    if let Some(l) = listen {
        cfg.server.listen = l;
    }
    let addr = cfg.server.listen;
    // Protected default: without access tokens, only this machine may talk to us.
    if !addr.ip().is_loopback() && cfg.tokens.is_empty() {
        bail!(
            "refusing to listen on {addr} without access tokens: anyone who can reach it could read \
             the health of your estate. Configure [[token]]s, or listen on a loopback address (127.0.0.1 or [::1])"
        );
    }
    raise_fd_limit(cfg.server.limits.max_connections);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(source, cfg, addr, listen))
}

/// Every connection is a file descriptor: the soft limit (often 1,024) is raised to the hard
/// one, as servers do, and a warning says when `max_connections` cannot fit.
fn raise_fd_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
        if ok && r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                r = raised;
            }
        }
        // Database files, probes and the listener need descriptors too. (rlim_t is not u64
        // everywhere, hence the casts.)
        #[allow(clippy::unnecessary_cast)]
        if ok && (r.rlim_cur as u64) < max_connections as u64 + 1024 {
            tracing::warn!(
                open_files = r.rlim_cur as u64,
                max_connections,
                "the open-file limit is below [server.limits] max_connections + 1024; raise it (LimitNOFILE=) or lower max_connections"
            );
        }
    }
}

/// Serves an already validated configuration on `addr` until SIGTERM/SIGINT, exactly like
/// `vitals serve` (used by `vitals demo`, which builds its configuration at run time).
pub async fn run_given(cfg: Config, addr: SocketAddr) -> Result<()> {
    serve(Source::Given(Box::new(cfg.clone())), cfg, addr, None).await
}

async fn serve(
    source: Source,
    cfg: Config,
    addr: SocketAddr,
    listen_override: Option<SocketAddr>,
) -> Result<()> {
    let store = vitals_app::open_store(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    match &source {
        Source::File(p) => tracing::info!(config = %p.display(), "configuration loaded"),
        Source::Builtin => {
            tracing::info!("no vitals.toml: running the built-in configuration (watching itself)")
        }
        Source::Given(_) => tracing::info!("configuration given by the caller"),
    }
    tracing::info!(store = %store.url.describe(), "store opened");
    let app = App::start(
        cfg,
        store,
        StartOptions {
            listener,
            build: crate::BUILD,
            listen_fixed: listen_override.is_some(),
            exit_on_worker_failure: true,
            clock: vitals_core::SystemClock::shared(),
        },
    )
    .await?;
    wait_for_signals(&source, &listen_override, &app).await;
    app.shutdown().await
}

#[cfg(unix)]
async fn wait_for_signals(source: &Source, listen_override: &Option<SocketAddr>, app: &App) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; waiting for Ctrl-C only");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => reload(source, listen_override, app).await,
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_: &Source, _: &Option<String>, _: &App) {
    let _ = tokio::signal::ctrl_c().await;
}

/// SIGHUP: read the config again; on any error keep running the old one and say why.
async fn reload(source: &Source, listen_override: &Option<SocketAddr>, app: &App) {
    let mut cfg = match source.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, keeping the running configuration: {e:#}");
            return;
        }
    };
    if let Some(l) = listen_override {
        cfg.server.listen = *l;
    }
    if let Err(e) = app.reload(cfg).await {
        tracing::error!("{e:#}; keeping the running configuration");
    }
}
