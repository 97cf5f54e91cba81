//! The composition root: the one place where a configuration and a store become a running
//! Vitals — live state, pipeline, alert engine, outbox, scheduler, watchers, fleet collector,
//! SLA follower, housekeeping and the HTTP server. `vitals serve`, `vitals demo` and the tests
//! all start Vitals through [`App::start`]; [`App::reload`] builds everything a new
//! configuration needs before it replaces anything, so a reload either happens whole or not at
//! all (and says why).

pub mod deliver;
mod store;
pub mod supervise;
#[cfg(feature = "testing")]
pub mod testing;

pub use store::{open_store, replica_name, store_path, OpenedStore, StoreUrl};

use anyhow::{anyhow, Context, Result};
use deliver::Notifiers;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::AbortHandle;
use vitals_alert::Engine;
use vitals_config::engine::EngineConfig;
use vitals_config::{AssetConfig, BrokerConfig, CheckConfig, Config, ScheduleSpec, SlaConfig};
use vitals_core::spec::{CheckKind, HealthFormat, HttpSpec, ProbeSpec};
use vitals_core::{SharedClock, Timestamp};
use vitals_engine::schedules::{self, CheckSchedules};
use vitals_engine::store::EngineStore;
use vitals_scheduler::cluster::Role;
use vitals_scheduler::housekeeping::Cleanup;
use vitals_scheduler::liveness::Workers;
use vitals_scheduler::watch::{self, HeartbeatRegistry};
use vitals_scheduler::{
    ConfiguredCheck, LiveState, Metrics, Model, ModelHandle, Pipeline, ScheduledCheck, Scheduler,
};
use vitals_server::{AppState, BuildInfo};
use vitals_store::{AssetRecord, Store, StoreError};

/// The asset Vitals files its own checks under.
pub const SELF_ASSET: &str = "vitals";

/// How to start: what the configuration does not say.
pub struct StartOptions {
    /// Where to listen (a bound listener is taken as is; port 0 picks a free port).
    pub listener: tokio::net::TcpListener,
    pub build: BuildInfo,
    /// `--listen` was given: a reload does not warn that `[server] listen` differs.
    pub listen_fixed: bool,
    /// A dead worker ends the process (status 70) so its supervisor restarts it. Tests keep the
    /// process and read `/monitor` instead.
    pub exit_on_worker_failure: bool,
    /// The one clock every part reads (`SystemClock` in production; tests may pass a
    /// `ManualClock` and step over hours).
    pub clock: SharedClock,
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub assets: usize,
    pub checks: usize,
}

/// A running Vitals.
pub struct App {
    bound: SocketAddr,
    live: Live,
    scheduler: Arc<Scheduler>,
    server: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<AbortHandle>,
    pipeline_task: AbortHandle,
    listen_fixed: bool,
    /// One reload at a time: two SIGHUPs must not interleave their swaps.
    reloading: tokio::sync::Mutex<()>,
    /// Replicas: tells the coordinator to give up the leases.
    cluster_stop: tokio::sync::watch::Sender<bool>,
}

/// What a reload replaces.
struct Live {
    state: Arc<LiveState>,
    store: Arc<dyn Store>,
    model: Arc<ModelHandle>,
    notifiers: Arc<Notifiers>,
    pipeline: Pipeline,
    cleanup: Arc<Cleanup>,
    workers: Arc<Workers>,
    app: AppState,
    certs: Option<vitals_server::listen::Certs>,
    site: Arc<vitals_server::Site>,
    /// The SLA log follower and its settings, restarted when `[sla]` changes.
    sla: Mutex<(Option<SlaConfig>, Option<AbortHandle>)>,
    /// The broker collector and its settings, restarted when `[broker]` changes.
    fleet: Mutex<(Option<BrokerConfig>, Option<AbortHandle>)>,
    /// The integration engine's file (`engine.db`): its history, probe patients and the job and
    /// check schedule overrides, kept across reloads of the engine.
    engine_store: Arc<dyn EngineStore>,
    /// The engine sections and the engine running them, replaced when they change.
    engine: Mutex<(EngineConfig, Option<Arc<vitals_engine::Engine>>)>,
    /// Checks' schedules with the admins' overrides; hands them to the scheduler.
    schedules: Arc<CheckSchedules>,
}

impl App {
    /// Opens nothing itself: the store is given (see [`open_store`]).
    pub async fn start(cfg: Config, opened: OpenedStore, opts: StartOptions) -> Result<App> {
        let store = opened.store;
        let listener = opts.listener;
        let clock = opts.clock.clone();
        let bound = listener.local_addr().context("listener address")?;
        let (assets, checks) = effective(&cfg, bound);
        store
            .upsert_assets(&assets)
            .await
            .context("storing assets")?;
        let state = Arc::new(LiveState::new());
        // Replicas (PostgreSQL): follow the decider's feed from here on; what it committed
        // before is in the store, read next.
        let role = match &opened.cluster {
            Some(c) => Role::replica(opened.claim_owner.clone(), c.clone()),
            None => Role::solo(),
        };
        role.feed_from_head()
            .await
            .context("reading the replicas' feed")?;
        // Warm start: everything the store knows, then the configuration on top.
        state.sync_config(&store.assets().await.context("reading assets")?, &[]);
        state.apply(
            store
                .latest()
                .await
                .context("reading latest observations")?,
        );
        state.sync_config(&assets, &check_kinds(&cfg, &checks));
        load_health(&*store, &state).await?;
        load_history(&*store, &state, clock.now()).await?;
        // The engine's file also holds the check schedule overrides, so it is opened even
        // without engine sections; then a data directory that cannot hold it must not stop
        // Vitals (a PostgreSQL deployment may have none that is writable).
        let engine_store = match vitals_engine::open_store(&cfg.server.data_dir) {
            Ok(s) => s,
            Err(e) if cfg.engine.is_empty() => {
                tracing::warn!(error = %e, "cannot open the engine's file; check schedule overrides are kept in memory only and are lost at restart");
                vitals_engine::memory_store().map_err(|e| anyhow!("integration engine: {e}"))?
            }
            Err(e) => return Err(anyhow!("integration engine: {e}")),
        };
        let running = schedules::effective(&*engine_store, &checks);

        let metrics = Arc::new(Metrics::default());
        let model = Arc::new(ModelHandle::new(Model::from_config(&cfg)));
        let notifiers = Arc::new(Notifiers::default());
        notifiers.set(
            Notifiers::build(&cfg.notifiers).map_err(|e| anyhow!(e))?,
            &cfg.notifiers,
        );
        let engine = Engine::new(
            rules_of(&cfg),
            cfg.maintenance.clone(),
            cfg.server.public_url.clone(),
            store.open_alerts().await.context("reading open alerts")?,
            store
                .silences(clock.now().add_millis(-86_400_000))
                .await
                .context("reading silences")?,
            store.max_ids().await.context("reading alert ids")?,
        );
        // Every long-running worker reports here; one that dies or stalls ends the process.
        let workers = Arc::new(Workers::default());
        let (pipeline, pipeline_task) = Pipeline::start_watched(
            store.clone(),
            state.clone(),
            metrics.clone(),
            model.clone(),
            engine,
            workers.register("pipeline", Some(Duration::from_secs(30))),
            clock.clone(),
            role.clone(),
        );
        let pipeline_task = watched(&workers, "pipeline", pipeline_task);
        let mut tasks = Vec::new();
        let (cluster_stop, cluster_stop_rx) = tokio::sync::watch::channel(false);
        if role.is_replica() {
            let beat = workers.register(
                "cluster",
                Some(cfg.server.lease.max(Duration::from_secs(30))),
            );
            tasks.push(watched(
                &workers,
                "cluster",
                vitals_scheduler::cluster::spawn_coordinator(
                    role.clone(),
                    bound.to_string(),
                    cfg.server.lease,
                    beat,
                    cluster_stop_rx,
                ),
            ));
            let (s, st) = (store.clone(), state.clone());
            tasks.push(
                vitals_scheduler::cluster::spawn_follower(role.clone(), state.clone(), move || {
                    let (s, st) = (s.clone(), st.clone());
                    async move { reload_state(&*s, &st).await.map_err(|e| format!("{e:#}")) }
                })
                .abort_handle(),
            );
        }
        tasks.push(refresher(pipeline.clone(), notifiers.clone()));
        let outbox_beat = workers.register("outbox", Some(Duration::from_secs(600)));
        tasks.push(watched(
            &workers,
            "outbox",
            vitals_alert::outbox::spawn_owned(
                store.clone(),
                notifiers.clone(),
                pipeline.outbox_wake().clone(),
                opened.claim_owner,
                clock.clone(),
                move || outbox_beat.now(),
            ),
        ));
        report_held(&*store, &notifiers).await;
        let heartbeats = Arc::new(HeartbeatRegistry::default());
        heartbeats.sync(running.iter().map(|c| &**c), clock.now());
        // It turns every second; a minute without a turn means it hangs.
        let watch_beat = workers.register("watch", Some(Duration::from_secs(60)));
        tasks.push(watched(
            &workers,
            "watch",
            watch::spawn(
                state.clone(),
                heartbeats.clone(),
                model.clone(),
                pipeline.clone(),
                watch_beat,
            ),
        ));
        // Fleet monitoring: poll the AKTIN broker every interval (docs/fleet.md).
        let fleet = match &cfg.broker {
            Some(b) => {
                let runner = vitals_fleet::runner::Runner::new(b, store.clone())
                    .map_err(|e| anyhow!("[broker]: {e}"))?;
                Some(spawn_fleet(&workers, runner, pipeline.clone()))
            }
            None => None,
        };
        let prober = Arc::new(vitals_probe::Prober::new());
        // ICMP checks without a socket to use would each say so; say it once at start too.
        if checks
            .iter()
            .any(|c| matches!(c.kind.probe(), Some(ProbeSpec::Icmp(_))))
        {
            if let Err(e) = vitals_probe::icmp::availability() {
                tracing::warn!("icmp checks will fail: {e}");
            }
        }
        let scheduler = Arc::new(Scheduler::start(
            scheduled(&running)?,
            prober,
            pipeline.clone(),
            metrics.clone(),
            cfg.server.max_concurrency,
        ));
        let schedules = Arc::new(CheckSchedules::new(
            engine_store.clone(),
            checks.clone(),
            apply_schedules(scheduler.clone(), heartbeats.clone(), clock.clone()),
            clock.clone(),
        ));
        {
            // The scheduler loop turns at least once a second and records it.
            let m = metrics.clone();
            workers.register_fn(
                "scheduler",
                Some(Duration::from_secs(10)),
                Box::new(move || {
                    m.scheduler_heartbeat_ms
                        .load(std::sync::atomic::Ordering::Relaxed)
                }),
            );
        }
        let sla_task = cfg
            .sla
            .clone()
            .map(|c| spawn_sla(&workers, c, pipeline.clone()));
        let cleanup = Arc::new(Cleanup::new(store.clone(), retention_of(&cfg)));
        tasks.push(
            vitals_scheduler::housekeeping::spawn(cleanup.clone(), clock.clone(), role.clone())
                .abort_handle(),
        );
        let auth = Arc::new(vitals_server::auth::Auth::new(&cfg.tokens));
        let protect = Arc::new(vitals_server::Protection::new(host_policy(&cfg, bound)));
        let site = Arc::new(vitals_server::Site::default());
        site.set_status_pages(cfg.status_pages.clone());
        // Integration engines: sources and probe patients, pipelines, jobs
        // (docs/integration-engines.md).
        let engine = if cfg.engine.is_empty() {
            None
        } else {
            Some(
                vitals_engine::start(
                    &cfg.engine,
                    engine_store.clone(),
                    store.clone(),
                    pipeline.clone(),
                )
                .await
                .map_err(|e| anyhow!("integration engine: {e}"))?,
            )
        };
        site.set_engine(engine.clone());
        site.set_schedules(Some(schedules.clone()));
        site.set_notifiers(
            &cfg.notifiers,
            Some(notifiers.clone() as Arc<dyn vitals_alert::Deliver>),
            cfg.server.public_url.clone(),
        );
        let app = AppState::new(vitals_server::AppShared {
            site: site.clone(),
            auth,
            pipeline: pipeline.clone(),
            heartbeats: heartbeats.clone(),
            cleanup: Some(cleanup.clone()),
            audit_file: cfg.audit.file.clone(),
            build: Arc::new(opts.build),
            started: clock.now(),
            ui: Arc::new(vitals_server::UiSettings::from_config(
                &cfg.ui,
                cfg.server.tls_cert.is_some(),
            )),
            protect: protect.clone(),
            workers: Some(workers.clone()),
            agents: Arc::default(),
            views: Arc::default(),
        });
        app.agents.configure(&cfg);
        // Site agents: a silent one makes its checks unknown (docs/agents.md).
        tasks.push(vitals_server::agents::spawn_watch(app.clone()).abort_handle());
        let router = vitals_server::router(app.clone());
        tasks.push(
            supervise::spawn(
                workers.clone(),
                metrics.clone(),
                notifiers.clone(),
                opts.exit_on_worker_failure,
            )
            .abort_handle(),
        );
        let certs = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
            (Some(c), Some(k)) => Some(
                vitals_server::listen::Certs::new(c.clone(), k.clone())
                    .map_err(|e| anyhow!("[server] tls_cert / tls_key: {e}"))?,
            ),
            _ => None,
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(vitals_server::listen::serve(
            listener,
            certs.clone(),
            router,
            vitals_server::listen::Limits::from(&cfg.server.limits),
            protect,
            stop_rx,
        ));
        tracing::info!(
            listen = %bound,
            store = %opened.url.describe(),
            tls = certs.is_some(),
            assets = assets.len(),
            checks = checks.len(),
            tokens = cfg.tokens.len(),
            "vitals is serving"
        );
        if cfg.tokens.is_empty() {
            tracing::info!("no access tokens are configured: listening on loopback only, every local caller may do everything");
        }
        let live = Live {
            state,
            store,
            model,
            notifiers,
            pipeline,
            cleanup,
            workers,
            app,
            certs,
            site,
            sla: Mutex::new((cfg.sla.clone(), sla_task)),
            fleet: Mutex::new((cfg.broker.clone(), fleet)),
            engine_store,
            engine: Mutex::new((cfg.engine.clone(), engine)),
            schedules,
        };
        Ok(App {
            bound,
            live,
            scheduler,
            server,
            stop,
            tasks,
            pipeline_task,
            listen_fixed: opts.listen_fixed,
            reloading: tokio::sync::Mutex::new(()),
            cluster_stop,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.bound
    }

    /// The server's shared state (the router over it answers like the socket does).
    pub fn state(&self) -> &AppState {
        &self.live.app
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.live.store
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.live.pipeline
    }

    /// A new configuration, whole or not at all. Everything it needs is built first — schedule,
    /// notifiers, model, rules, tokens, TLS certificate, broker collector — and checked against
    /// what runs (a listener that would open to everyone); then assets are stored and the rules
    /// committed, the two steps that can fail on the store; only then is anything swapped. On
    /// error the running configuration is untouched and the error says which step refused.
    pub async fn reload(&self, mut cfg: Config) -> Result<Reloaded> {
        let _one = self.reloading.lock().await;
        let live = &self.live;
        if self.listen_fixed {
            cfg.server.listen = self.bound;
        } else if cfg.server.listen != self.bound {
            tracing::warn!(running = %self.bound, configured = %cfg.server.listen, "server.listen changed; a restart is needed to move");
        }
        // 1. Build.
        let (assets, checks) = effective(&cfg, self.bound);
        scheduled(&schedules::effective(&*live.engine_store, &checks)).context("reload refused")?;
        let built = Notifiers::build(&cfg.notifiers).map_err(|e| anyhow!("reload refused: {e}"))?;
        let model = Model::from_config(&cfg);
        if cfg.tokens.is_empty() && !live.app.auth.is_open() && !self.bound.ip().is_loopback() {
            return Err(anyhow!(
                "reload refused: removing every token while listening on {} would open it to everyone",
                self.bound
            ));
        }
        let tls = match (&live.certs, &cfg.server.tls_cert, &cfg.server.tls_key) {
            (Some(_), Some(c), Some(k)) => Some(
                vitals_server::listen::load_tls(c, k)
                    .map_err(|e| anyhow!("reload refused: [server] tls_cert / tls_key: {e}"))?,
            ),
            (None, Some(_), _) => {
                tracing::warn!("[server] tls_cert was added; a restart is needed to serve HTTPS");
                None
            }
            (Some(_), None, _) => {
                tracing::warn!(
                    "[server] tls_cert was removed; a restart is needed to serve plain HTTP"
                );
                None
            }
            _ => None,
        };
        let fleet = {
            let running = live.fleet.lock().unwrap_or_else(|e| e.into_inner());
            if running.0 != cfg.broker {
                Some(match &cfg.broker {
                    Some(b) => Some(
                        vitals_fleet::runner::Runner::new(b, live.store.clone())
                            .map_err(|e| anyhow!("reload refused: [broker]: {e}"))?,
                    ),
                    None => None,
                })
            } else {
                None
            }
        };
        // The engine sections: built (DSNs, SQLite catalogues) before the running engine stops.
        let engine = {
            let running = live.engine.lock().unwrap_or_else(|e| e.into_inner());
            if running.0 != cfg.engine {
                Some(if cfg.engine.is_empty() {
                    None
                } else {
                    Some(
                        vitals_engine::Engine::build(
                            &cfg.engine,
                            live.engine_store.clone(),
                            live.store.clone(),
                            live.pipeline.clone(),
                            running.1.as_deref(),
                        )
                        .map_err(|e| anyhow!("reload refused: integration engine: {e}"))?,
                    )
                })
            } else {
                None
            }
        };
        // 2. The one step that can fail on the store, before anything is swapped: the assets
        // and the alert changes of the new rules in one commit. If it fails, nothing of it is
        // stored and the engine rolls its rules back.
        let (rules, maintenance) = (rules_of(&cfg), cfg.maintenance.clone());
        live.pipeline
            .with_engine_and_assets(assets.clone(), move |e, _, now, out| {
                e.set_config(rules, maintenance, now, out)
            })
            .await
            .context("reload refused: cannot store the assets and alert changes of the new configuration")?;
        // 3. Swap: nothing below can fail.
        live.state.sync_config(&assets, &check_kinds(&cfg, &checks));
        live.app.agents.configure(&cfg);
        live.model.set(model);
        live.notifiers.set(built, &cfg.notifiers);
        report_held(&*live.store, &live.notifiers).await;
        live.site.set_notifiers(
            &cfg.notifiers,
            Some(live.notifiers.clone() as Arc<dyn vitals_alert::Deliver>),
            cfg.server.public_url.clone(),
        );
        live.site.set_status_pages(cfg.status_pages.clone());
        live.cleanup.set_config(retention_of(&cfg));
        if let (Some(c), Some(config)) = (&live.certs, tls) {
            c.swap(config);
            tracing::info!("TLS certificate reloaded");
        }
        live.app.set_tokens(&cfg.tokens);
        live.app.protect.set_hosts(host_policy(&cfg, self.bound));
        {
            let mut sla = live.sla.lock().unwrap_or_else(|e| e.into_inner());
            if sla.0 != cfg.sla {
                if let Some(t) = sla.1.take() {
                    t.abort();
                }
                live.workers.forget("sla");
                sla.1 = cfg
                    .sla
                    .clone()
                    .map(|c| spawn_sla(&live.workers, c, live.pipeline.clone()));
                sla.0.clone_from(&cfg.sla);
            }
        }
        if let Some(runner) = fleet {
            let mut running = live.fleet.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = running.1.take() {
                t.abort();
            }
            live.workers.forget("fleet");
            running.1 = runner.map(|r| spawn_fleet(&live.workers, r, live.pipeline.clone()));
            running.0.clone_from(&cfg.broker);
            tracing::info!("[broker] changed: the collector restarted");
        }
        if let Some(new) = engine {
            let old = {
                let mut running = live.engine.lock().unwrap_or_else(|e| e.into_inner());
                running.0.clone_from(&cfg.engine);
                std::mem::replace(&mut running.1, new.clone())
            };
            if let Some(old) = old {
                old.stop();
            }
            live.site.set_engine(new.clone());
            if let Some(e) = &new {
                e.run().await;
            }
            tracing::info!("engine sections changed: the integration engine restarted");
        }
        // Heartbeats and the scheduler, with the admins' schedule overrides on top.
        live.schedules.replace(checks.clone()).await;
        tracing::info!(
            assets = assets.len(),
            checks = checks.len(),
            "configuration reloaded"
        );
        Ok(Reloaded {
            assets: assets.len(),
            checks: checks.len(),
        })
    }

    /// Stops taking requests, lets running probes finish, flushes observations and closes the
    /// store.
    pub async fn shutdown(self) -> Result<()> {
        tracing::info!("shutting down: finishing running probes and flushing observations");
        let live = self.live;
        live.workers.stopping();
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .is_err()
        {
            tracing::warn!("HTTP connections still open after 15s; closing them");
        }
        self.scheduler.shutdown().await;
        if let Some(e) = live
            .engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .take()
        {
            e.stop();
        }
        live.site.set_engine(None);
        live.pipeline.flush().await;
        // Replicas: the others take over now, not after the lease.
        let _ = self.cluster_stop.send(true);
        let role = live.pipeline.role().clone();
        role.set_deciding(false);
        if let Some(c) = role.cluster() {
            let _ = c.decider_release(role.me()).await;
            let _ = c.member_leave(role.me()).await;
        }
        for t in &self.tasks {
            t.abort();
        }
        if let Some(t) = live.sla.lock().unwrap_or_else(|e| e.into_inner()).1.take() {
            t.abort();
        }
        if let Some(t) = live
            .fleet
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .take()
        {
            t.abort();
        }
        let store = live.store.clone();
        drop(live.app);
        drop(live.pipeline);
        self.pipeline_task.abort();
        store.close().await.context("closing the store")?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Alertmanager resolves alerts not re-sent within its resolve_timeout (5 min): firing alerts
/// are sent again every minute.
fn refresher(pipeline: Pipeline, notifiers: Arc<Notifiers>) -> AbortHandle {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if !pipeline.role().is_decider() {
                continue;
            }
            match pipeline.with_engine(|e, a, _, _| e.firing_views(a)).await {
                Ok(views) => notifiers.refresh(views, pipeline.now()).await,
                Err(e) if refresher_stops(&e) => return,
                Err(e) => tracing::warn!(error = %e, "cannot re-send firing alerts to Alertmanager; trying again in a minute"),
            }
        }
    })
    .abort_handle()
}

/// Whether an error ends the Alertmanager refresher: only shutting down does. A failing store
/// (a full disk, a lost database connection) must not end the refreshes for good, or
/// Alertmanager resolves every firing alert 5 minutes later; it tries again next minute.
fn refresher_stops(e: &StoreError) -> bool {
    matches!(e, StoreError::Closed)
}

/// The store's record of a configured asset.
pub fn asset_record(a: &AssetConfig) -> AssetRecord {
    AssetRecord {
        id: a.id.clone(),
        name: a.display_name().to_string(),
        groups: a.all_groups(),
        labels: a.labels.clone(),
        parents: a.parents.clone(),
        metadata: a.metadata.clone(),
    }
}

/// Assets and checks as the running system sees them: the config plus the self check.
/// Each check is allocated once here and shared from then on (schedules, scheduler).
fn effective(cfg: &Config, bound: SocketAddr) -> (Vec<AssetRecord>, Vec<Arc<CheckConfig>>) {
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
            accept_pushes: false,
            locations: None,
        });
    }
    (
        assets.iter().map(asset_record).collect(),
        checks.into_iter().map(Arc::new).collect(),
    )
}

fn scheduled(checks: &[Arc<CheckConfig>]) -> Result<Vec<ScheduledCheck>> {
    checks
        .iter()
        // Checks with locations are run by site agents, not here.
        .filter(|c| c.locations.is_none())
        .filter_map(|c| {
            ScheduledCheck::from_shared(c).map(|r| r.with_context(|| format!("check {}", c.key())))
        })
        .collect()
}

/// How the checks' schedules in effect reach the running parts: the heartbeat watch (when pings
/// are expected) and the scheduler (when probes run).
fn apply_schedules(
    scheduler: Arc<Scheduler>,
    heartbeats: Arc<HeartbeatRegistry>,
    clock: SharedClock,
) -> schedules::Apply {
    Arc::new(move |checks: Vec<Arc<CheckConfig>>| {
        let (scheduler, heartbeats, now) = (scheduler.clone(), heartbeats.clone(), clock.now());
        Box::pin(async move {
            heartbeats.sync(checks.iter().map(|c| &**c), now);
            // Overrides are validated as the file is, so this does not fail; if it did, the
            // checks keep their running schedules.
            match scheduled(&checks) {
                Ok(s) => scheduler.reload(s).await,
                Err(e) => tracing::error!(error = %format!("{e:#}"), "schedules not applied"),
            }
        })
    })
}

fn check_kinds(cfg: &Config, checks: &[Arc<CheckConfig>]) -> Vec<ConfiguredCheck> {
    checks
        .iter()
        .map(|c| {
            let mut cc = ConfiguredCheck::new(&c.asset, &c.name, c.kind.type_name());
            cc.accepts_pushes |= c.accept_pushes;
            cc
        })
        .chain(vitals_server::agents::configured(cfg))
        .collect()
}

/// Notifications queued for notifiers that are not configured (removed or renamed): kept, and
/// said so, never failed.
async fn report_held(store: &dyn Store, notifiers: &Notifiers) {
    let ids = notifiers.ids();
    match store.outbox_pending().await {
        Ok(pending) => {
            for (notifier, n) in pending.into_iter().filter(|(id, _)| !ids.contains(id)) {
                tracing::warn!(
                    notifier = %notifier,
                    pending = n,
                    "notifications are queued for a notifier that is not configured; they are kept and sent once a notifier of that name is configured again (see GET /api/v1/notifications)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox"),
    }
}

/// `[retention]` with the audit archive resolved (default: `audit-archive` in `data_dir`).
pub fn retention_of(cfg: &Config) -> vitals_config::RetentionConfig {
    let mut r = cfg.retention.clone();
    if r.audit_archive.is_none() {
        r.audit_archive = Some(cfg.server.data_dir.join("audit-archive"));
    }
    r
}

/// Hands `task` to the worker registry; what remains is the handle to abort it with.
fn watched(
    workers: &Workers,
    name: &'static str,
    task: tokio::task::JoinHandle<()>,
) -> AbortHandle {
    let abort = task.abort_handle();
    workers.watch(name, task);
    abort
}

fn spawn_sla(workers: &Workers, cfg: SlaConfig, pipeline: Pipeline) -> AbortHandle {
    // It polls its files at least once a second.
    let beat = workers.register("sla", Some(Duration::from_secs(60)));
    watched(
        workers,
        "sla",
        vitals_scheduler::sla_watch::spawn(cfg, pipeline, beat),
    )
}

fn spawn_fleet(
    workers: &Workers,
    runner: vitals_fleet::runner::Runner,
    pipeline: Pipeline,
) -> AbortHandle {
    let beat = workers.register("fleet", Some(runner.stall_after()));
    watched(workers, "fleet", runner.spawn(pipeline, beat))
}

/// The names this server answers to (the `Host` header).
fn host_policy(cfg: &Config, bound: SocketAddr) -> vitals_server::guard::HostPolicy {
    vitals_server::guard::HostPolicy::new(
        bound,
        cfg.server.public_url.as_deref(),
        &cfg.server.hosts,
        vitals_server::guard::HostPolicy::machine_name(),
    )
}

/// The configured rules; without any, the default rules: any check going crit, to every
/// notifier — and with a `[broker]`, for its nodes instead broker-monitor's mail rules (one
/// rule per mailed state): the node's people hear once of OFFLINE, NO IMPORTS and OUTDATED,
/// each in its own mail in `[broker] language`, and again when a collection finds the state
/// still there after the node's re-notify interval; never of acknowledgements or recoveries.
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
    let language = cfg.broker.as_ref().map_or("de", |b| b.language.as_str());
    let mut rules = vec![default];
    rules.extend(vitals_fleet::default_rules(notifiers, language));
    rules
}

/// The live state again from the store (a replica that could not follow the feed for long).
async fn reload_state(store: &dyn Store, state: &LiveState) -> Result<()> {
    state.apply(
        store
            .latest()
            .await
            .context("reading latest observations")?,
    );
    load_health(store, state).await?;
    load_history(store, state, vitals_core::SystemClock::now()).await
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

/// Warm start of the overview's history: every check's counts per hour (the last 25 hours) and
/// per day (the last 31 days) from rollups and raw observations, and its last 50 results.
async fn load_history(store: &dyn Store, state: &LiveState, now: Timestamp) -> Result<()> {
    use vitals_store::{DAY_MS, HOUR_MS};
    let began = std::time::Instant::now();
    let now = now.0;
    let end = |p: i64| vitals_core::Timestamp(now - now.rem_euclid(p) + p);
    let start = |p: i64, n: i64| vitals_core::Timestamp(now - now.rem_euclid(p) - n * p);
    let mut counts: Vec<(i64, vitals_store::PeriodCount)> = Vec::new();
    for (period, before) in [(HOUR_MS, 24), (DAY_MS, 30)] {
        let rows = store
            .period_counts(period, start(period, before), end(period))
            .await
            .context("reading uptime counts")?;
        counts.extend(rows.into_iter().map(|r| (period, r)));
    }
    let recent = store
        .recent_results(vitals_scheduler::history::RECENT)
        .await
        .context("reading recent results")?;
    state.load_history(&counts, recent);
    tracing::info!(
        ms = began.elapsed().as_millis() as u64,
        periods = counts.len(),
        "uptime history loaded"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shutting_down_ends_the_alertmanager_refresher() {
        assert!(refresher_stops(&StoreError::Closed));
        for e in [
            StoreError::Backend("database or disk is full".into()),
            StoreError::Corrupt("x".into()),
        ] {
            assert!(!refresher_stops(&e), "{e}");
        }
    }

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
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].selector.exclude_groups, vec!["aktin".to_string()]);
        let ids: Vec<&str> = r[1..].iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["aktin-offline", "aktin-no-imports", "aktin-outdated"]);
        for x in &r[1..] {
            assert_eq!(x.policy.notifiers, vec!["m".to_string()]);
            assert_eq!(x.policy.reminder, Some(Duration::from_secs(7 * 86_400)));
            assert_eq!(
                x.policy.reminder_at,
                vitals_core::alert::ReminderAt::Observed
            );
            assert!(!x
                .policy
                .sends(vitals_core::notify::NotificationKind::Resolved));
            assert!(!x
                .policy
                .sends(vitals_core::notify::NotificationKind::Acknowledged));
        }
        assert_eq!(r[1].template.as_deref(), Some("aktin_offline"));
        let en = Config::parse(
            "[[notifier]]\nid = \"m\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
             [broker]\nurl = \"http://127.0.0.1:9/\"\napi_key = \"k\"\nlanguage = \"en\"\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            rules_of(&en)[3].template.as_deref(),
            Some("aktin_outdated_en")
        );
    }
}
