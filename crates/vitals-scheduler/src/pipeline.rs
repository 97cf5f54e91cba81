//! Observation intake: health, then store, then live state — in one order, for every source.
//!
//! One worker task owns the write path. Probe results, pushed batches (answered only after
//! commit) and health deletions queue on one bounded channel; the worker drains what has queued,
//! computes health changes *serially* (so concurrent posts for one asset never lose an update),
//! commits observations, health changes, new assets and idempotency keys as one store batch,
//! and only then applies the result to the live state and answers the callers. Many concurrent
//! requests thus cost one commit, and nothing is visible before it is durable.

use crate::model::{ModelHandle, DEFAULT_GROUP};
use crate::{LiveState, Metrics};
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vitals_alert::{AssetInfo, Assets, Engine, Output};
use vitals_core::health::{AlarmQuery, AssetHealth};
use vitals_core::Status;
use vitals_core::{Observation, Timestamp};
use vitals_store::{AssetRecord, CommitBatch, HealthUpdate, Store, StoreError};

/// Capacity of the intake channel; a full channel makes senders wait (backpressure).
const QUEUE: usize = 16_384;
/// Most messages drained into one commit.
const DRAIN: usize = 4_096;
/// Rounds of fewer probe results than this wait [`LINGER`] for more.
const LINGER_BELOW: usize = 64;
const LINGER: Duration = Duration::from_millis(5);

/// A pushed result: the observation and its optional idempotency key.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub obs: Observation,
    pub id: Option<String>,
}

/// What became of a pushed batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushReport {
    pub accepted: usize,
    /// Indices (in the batch) of results whose id was seen before; accepted once, not again.
    pub duplicates: Vec<usize>,
}

/// A change to health made through the API.
#[derive(Debug, Clone)]
pub enum HealthOp {
    DeleteAsset {
        asset: String,
    },
    DeleteGroup {
        asset: String,
        group: String,
    },
    DeleteTest {
        asset: String,
        group: String,
        test: String,
    },
}

/// Why a health operation was refused (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthOpError {
    #[error("{0}")]
    NotFound(String),
}

/// A call into the alert engine whose output is committed like everything else.
type EngineCall =
    Box<dyn FnOnce(&mut Engine, &dyn Assets, Timestamp, &mut Output) -> Box<dyn Any + Send> + Send>;
type EngineReply = oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>;

enum Msg {
    Obs(Observation),
    Engine(EngineCall, EngineReply),
    Push(Vec<Pushed>, oneshot::Sender<Result<PushReport, StoreError>>),
    Health(
        HealthOp,
        oneshot::Sender<Result<Result<(), HealthOpError>, StoreError>>,
    ),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
    model: Arc<ModelHandle>,
    tx: mpsc::Sender<Msg>,
    outbox_wake: Arc<tokio::sync::Notify>,
}

impl Pipeline {
    /// Starts the worker. It ends when every `Pipeline` clone is dropped, after committing what
    /// was queued.
    pub fn start(
        store: Arc<dyn Store>,
        state: Arc<LiveState>,
        metrics: Arc<Metrics>,
        model: Arc<ModelHandle>,
        engine: Engine,
    ) -> (Pipeline, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let worker = Worker {
            store: store.clone(),
            state: state.clone(),
            metrics: metrics.clone(),
            model: model.clone(),
            engine,
            outbox_wake: outbox_wake.clone(),
        };
        let handle = tokio::spawn(worker.run(rx));
        (
            Pipeline {
                store,
                state,
                metrics,
                model,
                tx,
                outbox_wake,
            },
            handle,
        )
    }

    /// Queues a probe observation; waits only when the queue is full.
    pub async fn submit(&self, obs: Observation) {
        if self.tx.send(Msg::Obs(obs)).await.is_err() {
            tracing::error!("pipeline stopped; observation dropped");
        }
    }

    /// Commits pushed results; returns after they are durable.
    pub async fn push(&self, items: Vec<Pushed>) -> Result<PushReport, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Push(items, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits pushed observations without idempotency keys (convenience for tests and tools).
    pub async fn ingest(&self, obs: Vec<Observation>) -> Result<(), StoreError> {
        self.push(
            obs.into_iter()
                .map(|obs| Pushed { obs, id: None })
                .collect(),
        )
        .await
        .map(|_| ())
    }

    /// Applies a health deletion; returns after it is durable.
    pub async fn health_op(&self, op: HealthOp) -> Result<Result<(), HealthOpError>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Health(op, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the alert engine inside the write path; its output is committed before this
    /// returns `f`'s result.
    pub async fn with_engine<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine, &dyn Assets, Timestamp, &mut Output) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let call: EngineCall =
            Box::new(move |e, a, now, out| Box::new(f(e, a, now, out)) as Box<dyn Any + Send>);
        self.tx
            .send(Msg::Engine(call, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        let any = rx.await.map_err(|_| StoreError::Closed)??;
        any.downcast::<R>()
            .map(|b| *b)
            .map_err(|_| StoreError::Backend("engine call returned an unexpected type".into()))
    }

    /// Woken whenever a commit put notifications in the outbox.
    pub fn outbox_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.outbox_wake
    }

    /// Returns once everything queued before the call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Messages waiting for the worker.
    pub fn queued(&self) -> usize {
        QUEUE - self.tx.capacity()
    }

    pub fn state(&self) -> &Arc<LiveState> {
        &self.state
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn model(&self) -> &Arc<ModelHandle> {
        &self.model
    }
}

struct Worker {
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
    model: Arc<ModelHandle>,
    engine: Engine,
    outbox_wake: Arc<tokio::sync::Notify>,
}

/// What the engine sees of assets during a round: the live state, overlaid with this round's
/// not-yet-visible observations and health.
struct View<'a> {
    state: &'a LiveState,
    scratch: &'a HashMap<String, AssetHealth>,
    statuses: &'a HashMap<String, HashMap<String, Status>>,
}

impl Assets for View<'_> {
    fn info(&self, asset: &str) -> Option<AssetInfo> {
        self.state.asset_info(asset)
    }

    fn is_down(&self, asset: &str) -> bool {
        let map = self.state.read();
        let mut worst: Option<Status> = map.get(asset).and_then(|a| a.status());
        if let Some(round) = self.statuses.get(asset) {
            // This round's observations replace those checks' latest status.
            worst = map
                .get(asset)
                .map(|a| {
                    a.checks
                        .iter()
                        .filter(|(name, _)| !round.contains_key(*name))
                        .filter_map(|(_, c)| c.latest.as_ref().map(|l| l.status))
                        .chain(round.values().copied())
                        .reduce(Status::worst)
                })
                .unwrap_or_else(|| round.values().copied().reduce(Status::worst));
        }
        worst == Some(Status::Crit)
    }

    fn population(&self, group: &str, test: &str, q: &AlarmQuery) -> (Vec<String>, usize) {
        let map = self.state.read();
        let mut failing = Vec::new();
        let mut population = 0;
        let mut judge = |id: &str, h: &AssetHealth| {
            if !h.state.get(group).is_some_and(|t| t.contains_key(test)) {
                return;
            }
            population += 1;
            if h.window_fails(test, q) == Some(true) {
                failing.push(id.to_string());
            }
        };
        for (id, a) in map.iter() {
            match self.scratch.get(id) {
                Some(h) => judge(id, h),
                None => judge(id, &a.health),
            }
        }
        for (id, h) in self.scratch {
            if !map.contains_key(id) {
                judge(id, h);
            }
        }
        failing.sort();
        if q.population_alarms(failing.len(), population) {
            (failing, population)
        } else {
            (Vec::new(), population)
        }
    }
}

/// Everything one drain turns into.
#[derive(Default)]
struct Round {
    batch: CommitBatch,
    /// Health of touched assets, computed on copies; written to the state after the commit.
    scratch: HashMap<String, AssetHealth>,
    /// Newest observation time per (asset, check) seen in this round, to keep order.
    latest: HashMap<(String, String), Timestamp>,
    push_replies: Vec<(oneshot::Sender<Result<PushReport, StoreError>>, PushReport)>,
    health_replies: Vec<oneshot::Sender<Result<Result<(), HealthOpError>, StoreError>>>,
    flushes: Vec<oneshot::Sender<()>>,
    engine_calls: Vec<(EngineCall, EngineReply)>,
    engine_replies: Vec<(EngineReply, Box<dyn Any + Send>)>,
    statuses: HashMap<String, HashMap<String, Status>>,
    new_assets: HashSet<String>,
    probe_obs: usize,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(DRAIN);
        loop {
            msgs.clear();
            if rx.recv_many(&mut msgs, DRAIN).await == 0 {
                break;
            }
            // A trickle of probe results only (nobody waiting for an answer): linger a few
            // milliseconds so they share a commit, instead of one commit per observation.
            if msgs.len() < LINGER_BELOW && msgs.iter().all(|m| matches!(m, Msg::Obs(_))) {
                tokio::time::sleep(LINGER).await;
                while msgs.len() < DRAIN {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
            }
            let round = self.prepare(&mut msgs).await;
            self.finish(round).await;
        }
    }

    fn health_of<'a>(
        &self,
        scratch: &'a mut HashMap<String, AssetHealth>,
        asset: &str,
    ) -> &'a mut AssetHealth {
        scratch
            .entry(asset.to_string())
            .or_insert_with(|| self.state.health(asset).unwrap_or_default())
    }

    /// Adds one observation and its health changes to the round.
    fn add_observation(&self, round: &mut Round, obs: Observation) {
        let model = self.model.get();
        if !self.state.contains(&obs.asset) && round.new_assets.insert(obs.asset.clone()) {
            round.batch.assets.push(AssetRecord::named(&obs.asset));
        }
        let key = (obs.asset.clone(), obs.check.clone());
        let current = round
            .latest
            .get(&key)
            .copied()
            .or_else(|| self.state.latest_time(&obs.asset, &obs.check));
        // A result older than what we have is history, not news: stored, but it does not move
        // state or severity.
        if current.is_none_or(|t| obs.time >= t) {
            round.latest.insert(key, obs.time);
            round
                .statuses
                .entry(obs.asset.clone())
                .or_default()
                .insert(obs.check.clone(), obs.status);
            let groups = {
                self.state
                    .groups_for(&obs.asset, |g| model.groups_for(&obs.check, g))
            };
            let groups = if groups.is_empty() {
                vec![DEFAULT_GROUP.to_string()]
            } else {
                groups
            };
            let h = self.health_of(&mut round.scratch, &obs.asset);
            for change in h.record(&groups, &obs.check, obs.score, obs.time) {
                round.batch.health.push(HealthUpdate {
                    asset: obs.asset.clone(),
                    change,
                });
            }
        }
        round.batch.observations.push(obs);
    }

    async fn prepare(&mut self, msgs: &mut Vec<Msg>) -> Round {
        let mut round = Round::default();
        // Idempotency keys: one look-up for the whole drain, plus duplicates within it.
        let ids: Vec<String> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::Push(items, _) => Some(items.iter().filter_map(|p| p.id.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        let mut seen: HashSet<String> = if ids.is_empty() {
            HashSet::new()
        } else {
            match self.store.seen_result_ids(&ids).await {
                Ok(s) => s,
                Err(e) => {
                    // Without the look-up we cannot promise "once": refuse the pushes.
                    for m in msgs.drain(..) {
                        match m {
                            Msg::Push(_, reply) => {
                                let _ = reply.send(Err(StoreError::Backend(e.to_string())));
                            }
                            Msg::Health(_, reply) => {
                                let _ = reply.send(Err(StoreError::Backend(e.to_string())));
                            }
                            Msg::Obs(o) => self.add_observation(&mut round, o),
                            Msg::Flush(f) => round.flushes.push(f),
                            Msg::Engine(call, reply) => round.engine_calls.push((call, reply)),
                        }
                    }
                    return round;
                }
            }
        };
        for m in msgs.drain(..) {
            match m {
                Msg::Obs(o) => {
                    round.probe_obs += 1;
                    self.add_observation(&mut round, o);
                }
                Msg::Push(items, reply) => {
                    let mut report = PushReport::default();
                    for (i, p) in items.into_iter().enumerate() {
                        if let Some(id) = &p.id {
                            if !seen.insert(id.clone()) {
                                report.duplicates.push(i);
                                continue;
                            }
                            round.batch.result_ids.push(id.clone());
                        }
                        report.accepted += 1;
                        self.add_observation(&mut round, p.obs);
                    }
                    round.push_replies.push((reply, report));
                }
                Msg::Health(op, reply) => {
                    let now = crate::now();
                    let (asset, result) = match &op {
                        HealthOp::DeleteAsset { asset } => {
                            if !self.state.contains(asset) {
                                (asset.clone(), Err(format!("uid {asset} has no health")))
                            } else {
                                let h = self.health_of(&mut round.scratch, asset);
                                (asset.clone(), Ok(h.delete_all()))
                            }
                        }
                        HealthOp::DeleteGroup { asset, group } => {
                            let h = self.health_of(&mut round.scratch, asset);
                            (asset.clone(), h.delete_group(group))
                        }
                        HealthOp::DeleteTest { asset, group, test } => {
                            let h = self.health_of(&mut round.scratch, asset);
                            (asset.clone(), h.delete_test(group, test, now))
                        }
                    };
                    match result {
                        Ok(changes) => {
                            round.batch.health.extend(changes.into_iter().map(|change| {
                                HealthUpdate {
                                    asset: asset.clone(),
                                    change,
                                }
                            }));
                            round.health_replies.push(reply);
                        }
                        Err(e) => {
                            let _ = reply.send(Ok(Err(HealthOpError::NotFound(e))));
                        }
                    }
                }
                Msg::Flush(f) => round.flushes.push(f),
                Msg::Engine(call, reply) => round.engine_calls.push((call, reply)),
            }
        }
        self.decide(&mut round);
        round
    }

    /// Alert decisions for the round: rules over its observations, then the engine calls.
    fn decide(&mut self, round: &mut Round) {
        let now = crate::now();
        let mut out = Output::default();
        {
            let view = View {
                state: &self.state,
                scratch: &round.scratch,
                statuses: &round.statuses,
            };
            self.engine
                .observe(&round.batch.observations, &view, now, &mut out);
            for (call, reply) in round.engine_calls.drain(..) {
                let r = call(&mut self.engine, &view, now, &mut out);
                round.engine_replies.push((reply, r));
            }
        }
        round.batch.alerts = out.alerts;
        round.batch.alert_events = out.events;
        round.batch.outbox = out.outbox;
        round.batch.silences = out.silences;
    }

    async fn finish(&mut self, round: Round) {
        let Round {
            batch,
            scratch,
            push_replies,
            health_replies,
            flushes,
            probe_obs,
            engine_replies,
            ..
        } = round;
        let n = batch.observations.len() as u64;
        let has_work = batch != CommitBatch::default();
        let notify_outbox = !batch.outbox.is_empty();
        let result = if has_work {
            self.commit_with_retry(&batch, probe_obs > 0).await
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                self.metrics
                    .observations_stored
                    .fetch_add(n, Ordering::Relaxed);
                self.state.ensure_assets(&batch.assets);
                self.state.apply(&batch.observations);
                self.state.set_health(scratch);
                for (reply, report) in push_replies {
                    let _ = reply.send(Ok(report));
                }
                for reply in health_replies {
                    let _ = reply.send(Ok(Ok(())));
                }
                for (reply, r) in engine_replies {
                    let _ = reply.send(Ok(r));
                }
                if notify_outbox {
                    self.outbox_wake.notify_one();
                }
            }
            Err(e) => {
                // Callers that asked for durability learn it failed; probe results are still
                // shown, as the live picture should not lie about targets.
                let msg = e.to_string();
                for (reply, _) in push_replies {
                    let _ = reply.send(Err(StoreError::Backend(msg.clone())));
                }
                for reply in health_replies {
                    let _ = reply.send(Err(StoreError::Backend(msg.clone())));
                }
                for (reply, _) in engine_replies {
                    let _ = reply.send(Err(StoreError::Backend(msg.clone())));
                }
                if probe_obs > 0 {
                    self.state.apply(&batch.observations);
                }
                // The engine decided things that were not stored: start again from the store.
                self.resync_engine().await;
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }

    async fn resync_engine(&mut self) {
        let loaded = async {
            let open = self.store.open_alerts().await?;
            let ids = self.store.max_ids().await?;
            let silences = self.store.silences(crate::now()).await?;
            Ok::<_, StoreError>((open, silences, ids))
        }
        .await;
        match loaded {
            Ok((open, silences, ids)) => self.engine.resync(open, silences, ids),
            Err(e) => tracing::error!(error = %e, "cannot reload alerts after a failed commit"),
        }
    }

    /// Probe-only rounds retry a few times (nobody waits on them); rounds with waiting callers
    /// fail fast so the caller can retry.
    async fn commit_with_retry(
        &self,
        batch: &CommitBatch,
        has_probe_results: bool,
    ) -> Result<(), StoreError> {
        let attempts = if has_probe_results { 4 } else { 1 };
        let mut last = StoreError::Closed;
        for attempt in 0..attempts {
            match self.store.commit(batch.clone()).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Closed) => {
                    tracing::error!(
                        lost = batch.observations.len(),
                        "store closed; observations not stored"
                    );
                    return Err(StoreError::Closed);
                }
                Err(e) => {
                    self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .last_store_error_ms
                        .store(crate::now().0, Ordering::Relaxed);
                    tracing::warn!(error = %e, attempt, "store write failed");
                    last = e;
                    if attempt + 1 < attempts {
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                }
            }
        }
        Err(last)
    }
}
