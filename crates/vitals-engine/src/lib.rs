//! Integration engines (`docs/integration-engines.md`): the RTS monitoring toolkit's three
//! packages on top of Vitals' checks, rules and pages.
//!
//! - [`sources`]: `[[source_set]]` — the list of sources (catalogue query or file), probe
//!   patients assigned per source and kept until they no longer qualify, and the re-integration
//!   probe of every (source, probe patient): fetch from the source, fetch the catalogue's copy,
//!   compare named fields ([`compare`]). Observations name differing fields, never values.
//! - [`pipeline`]: `[[pipeline]]` — stages over existing checks; the status names the first
//!   stage that is wrong.
//! - [`jobs`]: `[[job]]` — commands on cron with history, never twice at once, timeouts,
//!   overrides.
//!
//! Everything the engine observes goes through the normal pipeline ([`Publisher`]) as
//! observations of ordinary assets, so rules, silences, alerts and pages apply. What only the
//! engine needs (sources, assignments, runs, samples, job runs and overrides) is in its own
//! SQLite file behind [`store::EngineStore`].

pub mod compare;
pub mod db;
pub mod demo;
pub mod jobs;
pub mod pipeline;
pub mod schedules;
pub mod sources;
pub mod store;

use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{EngineStore, SqliteEngineStore};
use vitals_config::engine::EngineConfig;
use vitals_core::{Observation, Timestamp};
use vitals_scheduler::{Pipeline as Flow, Pushed};
use vitals_store::{AssetRecord, Store};

/// The engine's file in the data directory.
pub const DB_FILE: &str = "engine.db";
const DAY_MS: i64 = 86_400_000;

/// Hands assets and observations to the running system (store, live state, pipeline).
pub struct Publisher {
    store: Arc<dyn Store>,
    flow: Flow,
    published: Mutex<HashMap<String, AssetRecord>>,
}

impl Publisher {
    /// The domain's now, from the process's one clock.
    pub fn now(&self) -> vitals_core::Timestamp {
        self.flow.now()
    }

    pub fn clock(&self) -> &vitals_core::SharedClock {
        self.flow.clock()
    }

    /// Whether this process runs the engine's work now (among replicas: the decider only,
    /// so that a job never runs on two of them).
    pub fn decides(&self) -> bool {
        self.flow.role().is_decider()
    }

    pub fn new(store: Arc<dyn Store>, flow: Flow) -> Publisher {
        Publisher {
            store,
            flow,
            published: Mutex::new(HashMap::new()),
        }
    }

    /// Stores assets that are new or changed and makes them known to the live state.
    pub async fn assets(&self, assets: Vec<AssetRecord>) {
        let changed: Vec<AssetRecord> = {
            let p = self.published.lock().unwrap_or_else(|e| e.into_inner());
            assets
                .into_iter()
                .filter(|a| p.get(&a.id) != Some(a))
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        if let Err(e) = self.store.upsert_assets(&changed).await {
            tracing::error!(error = %e, "engine: storing assets failed");
            return;
        }
        let state = self.flow.state();
        let (new, known): (Vec<AssetRecord>, Vec<AssetRecord>) = changed
            .iter()
            .cloned()
            .partition(|a| !state.contains(&a.id));
        state.ensure_assets(&new);
        if !known.is_empty() {
            state.update_records(&known);
        }
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        for a in changed {
            p.insert(a.id.clone(), a);
        }
    }

    /// Pushes observations through the pipeline (health, rules, alerts, one commit).
    pub async fn observations(&self, obs: Vec<Observation>) {
        if obs.is_empty() {
            return;
        }
        let items = obs
            .into_iter()
            .map(|obs| Pushed { obs, id: None })
            .collect();
        if let Err(e) = self.flow.push(items).await {
            tracing::error!(error = %e, "engine: storing observations failed");
        }
    }
}

/// The running engine: what the pages and the API read and act on.
pub struct Engine {
    pub source_sets: Vec<Arc<sources::SourceSet>>,
    pub pipelines: Vec<Arc<pipeline::Pipeline>>,
    pub jobs: Arc<jobs::Jobs>,
    pub store: Arc<dyn EngineStore>,
    publisher: Arc<Publisher>,
    flow: Flow,
    main: Arc<dyn Store>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the engine when the configuration has any engine section (`None` otherwise).
/// Fails only on what cannot work (an unreadable engine file, a malformed DSN).
pub async fn spawn(
    cfg: &EngineConfig,
    data_dir: &Path,
    store: Arc<dyn Store>,
    flow: Flow,
) -> Result<Option<Arc<Engine>>, String> {
    if cfg.is_empty() {
        return Ok(None);
    }
    let es = open_store(data_dir)?;
    let engine = start(cfg, es, store, flow).await?;
    Ok(Some(engine))
}

/// The engine's file in `data_dir` (both created when absent).
pub fn open_store(data_dir: &Path) -> Result<Arc<dyn EngineStore>, String> {
    // A PostgreSQL deployment may not have made the data directory; a failure to make it is
    // reported by the open below.
    let _ = std::fs::create_dir_all(data_dir);
    Ok(Arc::new(SqliteEngineStore::open(&data_dir.join(DB_FILE))?))
}

/// An engine store in memory: what is kept is lost at exit.
pub fn memory_store() -> Result<Arc<dyn EngineStore>, String> {
    Ok(Arc::new(SqliteEngineStore::open(Path::new(":memory:"))?))
}

/// Starts the engine over a given engine store (tests and benchmarks use their own).
pub async fn start(
    cfg: &EngineConfig,
    es: Arc<dyn EngineStore>,
    store: Arc<dyn Store>,
    flow: Flow,
) -> Result<Arc<Engine>, String> {
    let engine = Engine::build(cfg, es, store, flow, None)?;
    engine.run().await;
    Ok(engine)
}

impl Engine {
    /// Everything the configuration needs, nothing started yet: what can fail (a malformed
    /// DSN, an SQLite catalogue that cannot be opened) fails here, so a reload can refuse a
    /// broken engine section before it stops the running one. Jobs that `previous` (the
    /// engine being replaced) is still running stay marked as running, so a reload never
    /// starts a job twice at once.
    pub fn build(
        cfg: &EngineConfig,
        es: Arc<dyn EngineStore>,
        store: Arc<dyn Store>,
        flow: Flow,
        previous: Option<&Engine>,
    ) -> Result<Arc<Engine>, String> {
        let publisher = Arc::new(Publisher::new(store.clone(), flow.clone()));
        let mut source_sets = Vec::new();
        for s in &cfg.source_sets {
            source_sets.push(Arc::new(sources::SourceSet::new(s.clone(), es.clone())?));
        }
        let pipelines: Vec<Arc<pipeline::Pipeline>> = cfg
            .pipelines
            .iter()
            .map(|p| Arc::new(pipeline::Pipeline::new(p.clone(), es.clone())))
            .collect();
        let jobs = Arc::new(jobs::Jobs::new(
            &cfg.jobs,
            es.clone(),
            publisher.clone(),
            previous.map(|p| &*p.jobs),
        ));
        Ok(Arc::new(Engine {
            source_sets,
            pipelines,
            jobs,
            store: es,
            publisher,
            flow,
            main: store,
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// Publishes the engine's assets and starts its loops (job timers, source sets,
    /// pipelines, pruning).
    pub async fn run(&self) {
        let (publisher, flow, store, es) = (
            self.publisher.clone(),
            self.flow.clone(),
            self.main.clone(),
            self.store.clone(),
        );
        let mut initial: Vec<AssetRecord> = self.jobs.assets();
        initial.extend(self.pipelines.iter().map(|p| p.asset()));
        for s in &self.source_sets {
            initial.extend(s.assets());
        }
        publisher.assets(initial).await;

        let mut tasks = self.jobs.spawn();
        for s in &self.source_sets {
            tasks.push(tokio::spawn(run_source_set(s.clone(), publisher.clone())));
        }
        for p in &self.pipelines {
            let (p, publisher, flow, store) =
                (p.clone(), publisher.clone(), flow.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(p.cfg.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if !publisher.decides() {
                        continue;
                    }
                    let o = p.evaluate(flow.now(), flow.state(), &*store).await;
                    publisher.observations(vec![o]).await;
                }
            }));
        }
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = es.prune(flow.now()) {
                    tracing::error!(error = %e, "engine: pruning its store failed");
                }
            }
        }));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
    }

    /// Stops the loops. A job run in progress finishes and is recorded (its process is not
    /// killed by a reload).
    pub fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// A source set's loop: the list (and the assignment) every `refresh`, a re-integration round
/// every `interval`; a round longer than the interval delays the next instead of piling up.
async fn run_source_set(set: Arc<sources::SourceSet>, publisher: Arc<Publisher>) {
    let mut refresh = tokio::time::interval(set.cfg.refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probe = tokio::time::interval(set.cfg.interval);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first list is read before the first round.
    refresh.tick().await;
    refresh_once(&set, &publisher).await;
    loop {
        tokio::select! {
            _ = refresh.tick() => refresh_once(&set, &publisher).await,
            _ = probe.tick() => {
                if !publisher.decides() {
                    continue;
                }
                let obs = set.probe_round(publisher.now()).await;
                publisher.observations(obs).await;
            }
        }
    }
}

async fn refresh_once(set: &Arc<sources::SourceSet>, publisher: &Publisher) {
    let (obs, _) = set.refresh(publisher.now()).await;
    publisher.assets(set.assets()).await;
    publisher.observations(obs).await;
}

// --- what the pages and the API show ---

/// One source with its figures.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub id: String,
    pub asset: String,
    pub name: String,
    pub listed: bool,
    pub first_seen: String,
    pub gone_at: Option<String>,
    pub availability_24h: Option<f64>,
    pub availability_7d: Option<f64>,
    pub mean_fetch_ms_24h: Option<f64>,
    pub max_fetch_ms_24h: Option<f64>,
    pub correctness_24h: Option<f64>,
    pub correctness_7d: Option<f64>,
    pub runs_24h: u64,
    /// Probe patients (identifiers as the catalogue has them; shown to signed-in users only,
    /// never in observations or notifications).
    pub probe_patients: Vec<ProbePatient>,
    /// Availability per hour over 24 h (0–1; `None`: no run that hour).
    pub availability_hourly: Vec<Option<f64>>,
    /// Mean fetch time per hour over 24 h.
    pub latency_hourly: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbePatient {
    pub patient: String,
    pub assigned_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceSetView {
    pub id: String,
    pub name: String,
    pub probe_patients_per_source: usize,
    pub interval_s: u64,
    pub sources: Vec<SourceView>,
    pub events: Vec<store::Event>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub name: String,
    pub asset: String,
    pub check: String,
    pub status: String,
    pub problems: String,
    /// Per evaluation over the last 24 h (oldest first, at most 96 points).
    pub throughput: Vec<f64>,
    pub backlog: Vec<f64>,
    pub last_backlog: Option<f64>,
    pub last_lag: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineView {
    pub id: String,
    pub name: String,
    /// The pipeline's status and reason ("stuck at transform: …"), from the live state.
    pub status: String,
    pub reason: String,
    pub stages: Vec<StageView>,
}

/// At most `n` points: the mean of each of `n` equal runs of `v`.
fn squeeze(v: &[f64], n: usize) -> Vec<f64> {
    if v.len() <= n {
        return v.to_vec();
    }
    (0..n)
        .map(|i| {
            let (a, b) = (
                i * v.len() / n,
                ((i + 1) * v.len() / n).max(i * v.len() / n + 1),
            );
            v[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect()
}

impl Engine {
    pub fn source_sets_view(&self, now: Timestamp) -> Result<Vec<SourceSetView>, String> {
        let mut out = Vec::new();
        for set in &self.source_sets {
            let id = &set.cfg.id;
            let day = self.store.stats(id, now.add_millis(-DAY_MS))?;
            let week = self.store.stats(id, now.add_millis(-7 * DAY_MS))?;
            let since = Timestamp((now.0 / 3_600_000 - 23) * 3_600_000);
            let series = self.store.series(id, since, 3_600_000)?;
            let assignments = self.store.assignments(id)?;
            let mut sources = Vec::new();
            for row in self.store.sources(id)? {
                let sid = &row.source.id;
                let d = day.get(sid).cloned().unwrap_or_default();
                let w = week.get(sid).cloned().unwrap_or_default();
                let mut avail = vec![None; 24];
                let mut lat = vec![None; 24];
                for (b, a, ms) in series.get(sid).map_or(&[][..], Vec::as_slice) {
                    if let Some(i) = usize::try_from(*b).ok().filter(|i| *i < 24) {
                        avail[i] = Some(*a);
                        lat[i] = *ms;
                    }
                }
                sources.push(SourceView {
                    id: sid.clone(),
                    asset: sources::source_asset(id, sid),
                    name: if row.source.name.is_empty() {
                        sid.clone()
                    } else {
                        row.source.name.clone()
                    },
                    listed: row.gone_at.is_none(),
                    first_seen: row.first_seen.to_rfc3339(),
                    gone_at: row.gone_at.map(|t| t.to_rfc3339()),
                    availability_24h: d.availability(),
                    availability_7d: w.availability(),
                    mean_fetch_ms_24h: d.mean_fetch_ms,
                    max_fetch_ms_24h: d.max_fetch_ms,
                    correctness_24h: d.correctness(),
                    correctness_7d: w.correctness(),
                    runs_24h: d.runs,
                    probe_patients: assignments
                        .iter()
                        .filter(|a| &a.source == sid)
                        .map(|a| ProbePatient {
                            patient: a.patient.clone(),
                            assigned_at: a.assigned_at.to_rfc3339(),
                        })
                        .collect(),
                    availability_hourly: avail,
                    latency_hourly: lat,
                });
            }
            out.push(SourceSetView {
                id: id.clone(),
                name: set.cfg.name.clone().unwrap_or_else(|| id.clone()),
                probe_patients_per_source: set.cfg.probe_patients,
                interval_s: set.cfg.interval.as_secs(),
                sources,
                events: self.store.events(id, 50)?,
            });
        }
        Ok(out)
    }

    /// The pipelines, with each stage's current status and problems from the live state.
    pub fn pipelines_view(
        &self,
        now: Timestamp,
        state: &vitals_scheduler::LiveState,
    ) -> Result<Vec<PipelineView>, String> {
        let mut out = Vec::new();
        for p in &self.pipelines {
            let samples = self
                .store
                .stage_samples(&p.cfg.id, now.add_millis(-DAY_MS))?;
            let latest = state.asset(&p.cfg.id).and_then(|a| {
                a.checks
                    .get(pipeline::CHECK_STAGES)
                    .and_then(|c| c.latest.clone())
            });
            let stages = p
                .cfg
                .stages
                .iter()
                .map(|st| {
                    let mine: Vec<&store::StageSample> =
                        samples.iter().filter(|s| s.stage == st.name).collect();
                    let last = mine.last();
                    let live = latest
                        .as_ref()
                        .and_then(|o| o.components.iter().find(|c| c.name == st.name));
                    StageView {
                        name: st.name.clone(),
                        asset: st.asset.clone(),
                        check: st.check.clone(),
                        status: live.map_or_else(
                            || last.map_or("pending".into(), |s| s.status.clone()),
                            |c| c.status.as_str().to_string(),
                        ),
                        problems: live.map(|c| c.output.clone()).unwrap_or_default(),
                        throughput: squeeze(
                            &mine
                                .iter()
                                .map(|s| s.records_out.or(s.records_in).unwrap_or(0.0))
                                .collect::<Vec<_>>(),
                            96,
                        ),
                        backlog: squeeze(
                            &mine
                                .iter()
                                .map(|s| s.backlog.unwrap_or(0.0))
                                .collect::<Vec<_>>(),
                            96,
                        ),
                        last_backlog: last.and_then(|s| s.backlog),
                        last_lag: last.and_then(|s| s.lag),
                    }
                })
                .collect();
            out.push(PipelineView {
                status: latest
                    .as_ref()
                    .map_or("pending".into(), |o| o.status.as_str().to_string()),
                reason: latest
                    .as_ref()
                    .map(|o| o.reason.clone())
                    .unwrap_or_default(),
                id: p.cfg.id.clone(),
                name: p.cfg.name.clone().unwrap_or_else(|| p.cfg.id.clone()),
                stages,
            });
        }
        Ok(out)
    }
}
