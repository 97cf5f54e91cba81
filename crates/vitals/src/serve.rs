//! `vitals serve`: wire config → store → live state → pipeline → scheduler → HTTP server, and
//! handle signals: SIGHUP reloads the config (keeping all state), SIGTERM/SIGINT stop taking
//! requests, let running probes finish, flush observations and close the store.

use crate::deliver::Notifiers;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vitals_alert::Engine;
use vitals_config::{AssetConfig, CheckConfig, Config, ScheduleSpec};
use vitals_core::spec::{CheckKind, HealthFormat, HttpSpec, ProbeSpec};
use vitals_scheduler::housekeeping::Cleanup;
use vitals_scheduler::watch::{self, HeartbeatRegistry};
use vitals_scheduler::{
    LiveState, Metrics, Model, ModelHandle, Pipeline, ScheduledCheck, Scheduler,
};
use vitals_store::{AssetRecord, Store};
use vitals_store_sqlite::SqliteStore;

pub const SELF_ASSET: &str = "vitals";

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
    if let Some(l) = &listen {
        cfg.server.listen = l.clone();
    }
    let addr: SocketAddr = cfg.server.listen.parse().with_context(|| {
        format!(
            "--listen {:?} is not an address like 127.0.0.1:8080",
            cfg.server.listen
        )
    })?;
    // Protected default: without access tokens, only this machine may talk to us.
    if !addr.ip().is_loopback() && cfg.tokens.is_empty() {
        bail!(
            "refusing to listen on {addr} without access tokens: anyone who can reach it could read \
             the health of your estate. Configure [[token]]s, or listen on a loopback address (127.0.0.1 or [::1])"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(source, cfg, addr, listen))
}

/// Serves an already validated configuration on `addr` until SIGTERM/SIGINT, exactly like
/// `vitals serve` (used by `vitals demo`, which builds its configuration at run time).
pub async fn run_given(cfg: Config, addr: SocketAddr) -> Result<()> {
    serve(Source::Given(Box::new(cfg.clone())), cfg, addr, None).await
}

/// Assets and checks as the running system sees them: the config plus the self check.
fn effective(cfg: &Config, bound: SocketAddr) -> (Vec<AssetRecord>, Vec<CheckConfig>) {
    let mut assets = cfg.effective_assets();
    let mut checks = cfg.checks.clone();
    if cfg.server.self_check {
        if !assets.iter().any(|a| a.id == SELF_ASSET) {
            assets.push(AssetConfig {
                id: SELF_ASSET.into(),
                name: Some("Vitals (this server)".into()),
                group: Some("vitals".into()),
                groups: vec![],
                labels: Default::default(),
                parents: vec![],
                metadata: Default::default(),
            });
        }
        let tls = cfg.server.tls_cert.is_some();
        let scheme = if tls { "https" } else { "http" };
        let mut spec = HttpSpec::new(format!("{scheme}://{bound}/monitor?details"));
        spec.health = HealthFormat::Lines;
        // This checks that we answer; our certificate's name need not cover 127.0.0.1 (its
        // expiry is still reported as cert_days_left).
        spec.insecure = tls;
        checks.push(CheckConfig {
            asset: SELF_ASSET.into(),
            name: "monitor".into(),
            schedule: ScheduleSpec::Interval(Duration::from_secs(30)),
            jitter: Some(Duration::from_secs(5)),
            timeout: Duration::from_secs(5),
            enabled: true,
            description: Some("this server's own /monitor?details".into()),
            kind: CheckKind::Probe(ProbeSpec::Http(spec)),
        });
    }
    let records = assets
        .iter()
        .map(|a| AssetRecord {
            id: a.id.clone(),
            name: a.display_name().to_string(),
            groups: a.all_groups(),
            labels: a.labels.clone(),
            parents: a.parents.clone(),
            metadata: a.metadata.clone(),
        })
        .collect();
    (records, checks)
}

fn scheduled(checks: &[CheckConfig]) -> Result<Vec<ScheduledCheck>> {
    checks
        .iter()
        .filter_map(|c| {
            ScheduledCheck::from_config(c).map(|r| r.with_context(|| format!("check {}", c.key())))
        })
        .collect()
}

fn check_kinds(checks: &[CheckConfig]) -> Vec<(String, String, String)> {
    checks
        .iter()
        .map(|c| {
            (
                c.asset.clone(),
                c.name.clone(),
                c.kind.type_name().to_string(),
            )
        })
        .collect()
}

async fn serve(
    source: Source,
    cfg: Config,
    addr: SocketAddr,
    listen_override: Option<String>,
) -> Result<()> {
    let data_dir = cfg.server.data_dir.clone();
    let db = data_dir.join("vitals.db");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&db)
            .with_context(|| format!("cannot open the store at {}", db.display()))?,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr().context("listener address")?;

    let (assets, checks) = effective(&cfg, bound);
    store
        .upsert_assets(&assets)
        .await
        .context("storing assets")?;
    let state = Arc::new(LiveState::new());
    // Warm start: everything the store knows, then the configuration on top.
    state.sync_config(&store.assets().await.context("reading assets")?, &[]);
    state.apply(
        &store
            .latest()
            .await
            .context("reading latest observations")?,
    );
    state.sync_config(&assets, &check_kinds(&checks));

    load_health(&*store, &state).await?;

    let metrics = Arc::new(Metrics::default());
    let model = Arc::new(ModelHandle::new(Model::from_config(&cfg)));
    let notifiers = Arc::new(Notifiers::default());
    notifiers.set(
        Notifiers::build(&cfg.notifiers).map_err(|e| anyhow::anyhow!(e))?,
        &cfg.notifiers,
    );
    let engine = Engine::new(
        rules_of(&cfg),
        cfg.maintenance.clone(),
        cfg.server.public_url.clone(),
        store.open_alerts().await.context("reading open alerts")?,
        store
            .silences(vitals_scheduler::now().add_millis(-86_400_000))
            .await
            .context("reading silences")?,
        store.max_ids().await.context("reading alert ids")?,
    );
    let (pipeline, pipeline_task) = Pipeline::start(
        store.clone(),
        state.clone(),
        metrics.clone(),
        model.clone(),
        engine,
    );
    let refresher = {
        let (pipeline, notifiers) = (pipeline.clone(), notifiers.clone());
        tokio::spawn(async move {
            // Alertmanager resolves alerts not re-sent within its resolve_timeout (5 min).
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                match pipeline.with_engine(|e, a, _, _| e.firing_views(a)).await {
                    Ok(views) => notifiers.refresh(views, vitals_scheduler::now()).await,
                    Err(_) => return,
                }
            }
        })
    };
    let outbox_task = vitals_alert::outbox::spawn(
        store.clone(),
        notifiers.clone(),
        pipeline.outbox_wake().clone(),
    );
    let heartbeats = Arc::new(HeartbeatRegistry::default());
    heartbeats.sync(&checks, vitals_scheduler::now());
    let watcher = watch::spawn(
        state.clone(),
        heartbeats.clone(),
        model.clone(),
        pipeline.clone(),
    );
    // Fleet monitoring: poll the AKTIN broker every interval (docs/fleet.md).
    let fleet_task = match &cfg.broker {
        Some(b) => Some(
            vitals_fleet::runner::spawn(b, store.clone(), pipeline.clone())
                .map_err(|e| anyhow::anyhow!("[broker]: {e}"))?,
        ),
        None => None,
    };
    let prober = Arc::new(vitals_probe::Prober::new());
    let scheduler = Scheduler::start(
        scheduled(&checks)?,
        prober,
        pipeline.clone(),
        metrics.clone(),
        cfg.server.max_concurrency,
    );

    let sla_task = std::sync::Mutex::new(
        cfg.sla
            .clone()
            .map(|c| vitals_scheduler::sla_watch::spawn(c, pipeline.clone())),
    );
    let cleanup = Arc::new(Cleanup::new(store.clone(), cfg.retention.clone()));
    let cleanup_task = vitals_scheduler::housekeeping::spawn(cleanup.clone());
    let auth = Arc::new(vitals_server::auth::Auth::new(&cfg.tokens));
    let app = vitals_server::AppState {
        auth: auth.clone(),
        pipeline: pipeline.clone(),
        heartbeats: heartbeats.clone(),
        cleanup: Some(cleanup.clone()),
        audit_file: cfg.audit.file.clone(),
        build: Arc::new(crate::BUILD),
        started: vitals_scheduler::now(),
        ui: Arc::new(
            vitals_server::UiSettings::from_config(&cfg.ui, cfg.server.tls_cert.is_some())
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
    };
    let router = vitals_server::router(app);
    tracing::info!(
        listen = %bound,
        data = %db.display(),
        assets = assets.len(),
        checks = checks.len(),
        tokens = cfg.tokens.len(),
        "vitals is serving"
    );
    if cfg.tokens.is_empty() {
        tracing::info!("no access tokens are configured: listening on loopback only, every local caller may do everything");
    }
    match &source {
        Source::File(p) => tracing::info!(config = %p.display(), "configuration loaded"),
        Source::Builtin => {
            tracing::info!("no vitals.toml: running the built-in configuration (watching itself)")
        }
        Source::Given(_) => tracing::info!("configuration given by the caller"),
    }

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let certs = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(c), Some(k)) => Some(
            crate::tls::Certs::new(c.clone(), k.clone()).context("[server] tls_cert / tls_key")?,
        ),
        _ => None,
    };
    let server = {
        let certs = certs.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            match certs {
                Some(certs) => {
                    let tls = crate::tls::TlsListener::new(listener, certs)?;
                    axum::serve(tls, router)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
                None => {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
            }
        })
    };
    if certs.is_some() {
        tracing::info!("serving HTTPS");
    }

    let live = Live {
        state: state.clone(),
        store: store.clone(),
        model,
        heartbeats,
        notifiers,
        pipeline: pipeline.clone(),
        cleanup,
        sla_task,
        sla: std::sync::Mutex::new(cfg.sla.clone()),
        auth,
        certs,
    };
    wait_for_signals(&source, &listen_override, bound, &live, &scheduler).await;

    tracing::info!("shutting down: finishing running probes and flushing observations");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Err(_) => tracing::warn!("HTTP connections still open after 10s; closing them"),
        _ => {}
    }
    scheduler.shutdown().await;
    watcher.abort();
    if let Some(t) = &fleet_task {
        t.abort();
    }
    pipeline.flush().await;
    outbox_task.abort();
    cleanup_task.abort();
    if let Some(t) = live
        .sla_task
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        t.abort();
    }
    refresher.abort();
    drop(pipeline);
    pipeline_task.abort();
    store.close().await.context("closing the store")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What a reload updates.
struct Live {
    state: Arc<LiveState>,
    store: Arc<dyn Store>,
    model: Arc<ModelHandle>,
    heartbeats: Arc<HeartbeatRegistry>,
    notifiers: Arc<Notifiers>,
    pipeline: Pipeline,
    cleanup: Arc<Cleanup>,
    /// The SLA log follower, restarted when `[sla]` changes.
    sla_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    sla: std::sync::Mutex<Option<vitals_config::SlaConfig>>,
    auth: Arc<vitals_server::auth::Auth>,
    certs: Option<crate::tls::Certs>,
}

/// The configured rules; without any, the default rules: any check going crit, to every
/// notifier — and with a `[broker]`, for its nodes instead the AKTIN rule: the node's contacts
/// hear once of OFFLINE, NO IMPORTS and OUTDATED, and again after the node's re-notify interval.
pub fn rules_of(cfg: &Config) -> Vec<vitals_config::Rule> {
    if !cfg.rules.is_empty() {
        return cfg.rules.clone();
    }
    let notifiers: Vec<String> = cfg.notifiers.iter().map(|n| n.id.clone()).collect();
    let mut default = vitals_alert::engine::default_rule(notifiers.clone());
    if cfg.broker.is_none() {
        return vec![default];
    }
    default.selector.exclude_groups = vec![vitals_fleet::GROUP.to_string()];
    vec![default, vitals_fleet::default_rule(notifiers)]
}

/// Warm start of health: persisted state and severity, and each test's recent scores.
async fn load_health(store: &dyn Store, state: &LiveState) -> Result<()> {
    let rows = store.health_rows().await.context("reading health")?;
    let mut by_asset: std::collections::BTreeMap<String, vitals_core::health::AssetHealth> =
        Default::default();
    for r in &rows {
        let h = by_asset.entry(r.asset.clone()).or_default();
        match &r.test {
            Some(t) => h.load_state(&r.group, t, r.value),
            None => h.load_severity(&r.group, r.value),
        }
    }
    for (asset, h) in by_asset.iter_mut() {
        let tests: std::collections::BTreeSet<String> =
            h.state.values().flat_map(|t| t.keys().cloned()).collect();
        for t in tests {
            let keep = vitals_core::health::HISTORY_KEEP;
            let scores = store
                .recent_scores(asset, &t, keep)
                .await
                .context("reading score history")?;
            h.load_history(&t, &scores, scores.len() < keep);
        }
    }
    state.set_health(by_asset);
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(
    source: &Source,
    listen_override: &Option<String>,
    bound: SocketAddr,
    live: &Live,
    scheduler: &Scheduler,
) {
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
            _ = hup.recv() => reload(source, listen_override, bound, live, scheduler).await,
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_: &Source, _: &Option<String>, _: SocketAddr, _: &Live, _: &Scheduler) {
    let _ = tokio::signal::ctrl_c().await;
}

/// SIGHUP: read the config again; on any error keep running the old one and say why.
async fn reload(
    source: &Source,
    listen_override: &Option<String>,
    bound: SocketAddr,
    live: &Live,
    scheduler: &Scheduler,
) {
    let mut cfg = match source.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, keeping the running configuration: {e:#}");
            return;
        }
    };
    if let Some(l) = listen_override {
        cfg.server.listen = l.clone();
    }
    if cfg.server.listen.parse::<SocketAddr>().ok() != Some(bound) && listen_override.is_none() {
        tracing::warn!(running = %bound, configured = %cfg.server.listen, "server.listen changed; a restart is needed to move");
    }
    let (assets, checks) = effective(&cfg, bound);
    let sched = match scheduled(&checks) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reload refused: {e:#}");
            return;
        }
    };
    if let Err(e) = live.store.upsert_assets(&assets).await {
        tracing::error!(error = %e, "reload refused: cannot store assets");
        return;
    }
    let built = match Notifiers::build(&cfg.notifiers) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("reload refused: {e}");
            return;
        }
    };
    live.state.sync_config(&assets, &check_kinds(&checks));
    live.model.set(Model::from_config(&cfg));
    live.notifiers.set(built, &cfg.notifiers);
    live.cleanup.set_config(cfg.retention.clone());
    if let Some(c) = &live.certs {
        match c.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => {
                tracing::error!("TLS certificate not reloaded, keeping the running one: {e:#}")
            }
        }
    }
    if cfg.tokens.is_empty() != live.auth.is_open() && !bound.ip().is_loopback() {
        tracing::error!("reload refused: removing every token while listening on {bound} would open it to everyone");
    } else {
        live.auth.set(&cfg.tokens);
    }
    {
        let mut current = live.sla.lock().unwrap_or_else(|e| e.into_inner());
        if *current != cfg.sla {
            let mut task = live.sla_task.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = task.take() {
                t.abort();
            }
            *task = cfg
                .sla
                .clone()
                .map(|c| vitals_scheduler::sla_watch::spawn(c, live.pipeline.clone()));
            current.clone_from(&cfg.sla);
        }
    }
    let (rules, maintenance) = (rules_of(&cfg), cfg.maintenance.clone());
    if let Err(e) = live
        .pipeline
        .with_engine(move |e, _, now, out| e.set_config(rules, maintenance, now, out))
        .await
    {
        tracing::error!(error = %e, "could not store alert changes of the reload");
    }
    live.heartbeats.sync(&checks, vitals_scheduler::now());
    scheduler.reload(sched).await;
    tracing::info!(
        assets = assets.len(),
        checks = checks.len(),
        "configuration reloaded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_give_broker_nodes_their_own_rule() {
        let plain = Config::parse(
            "[[notifier]]\nid = \"m\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
            &|_| None,
        )
        .unwrap();
        let r = rules_of(&plain);
        assert_eq!(r.len(), 1);
        assert!(r[0].selector.exclude_groups.is_empty());

        let fleet = Config::parse(
            "[[notifier]]\nid = \"m\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
             [broker]\nurl = \"http://127.0.0.1:9/\"\napi_key = \"k\"\n",
            &|_| None,
        )
        .unwrap();
        let r = rules_of(&fleet);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].selector.exclude_groups, vec!["aktin".to_string()]);
        assert_eq!(r[1].id, "aktin-nodes");
        assert_eq!(r[1].policy.notifiers, vec!["m".to_string()]);
        assert_eq!(r[1].policy.reminder, Some(Duration::from_secs(7 * 86_400)));
    }
}
