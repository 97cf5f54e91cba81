//! Observation intake: health, then store, then live state — in one order, for every source.
//!
//! One worker task owns the write path. Probe results, pushed batches (answered only after
//! commit) and health deletions queue on one bounded channel; the worker drains what has queued,
//! computes health changes *serially* (so concurrent posts for one asset never lose an update),
//! commits observations, health changes, new assets and idempotency keys as one store batch,
//! and only then applies the result to the live state and answers the callers. Many concurrent
//! requests thus cost one commit, and nothing is visible before it is durable.
//!
//! **Order and identity.** An observation is identified by (asset, check, time): a second one
//! with the same key — in a round or against the store — is a duplicate, reported as such and
//! not stored. One older than the check's latest is history: stored, but it moves no status,
//! health or alert; the alert engine sees each check's observations in time order only.
//!
//! **When the store fails** (a full disk, an I/O error), nothing that callers were told failed
//! has happened: the round's health is not applied, the engine is rolled back to exactly where
//! it was (trackers keep their windows), pushes are answered with the error. Probe observations
//! — nobody is waiting for them — go to a bounded buffer and are committed, in order, with the
//! next round that succeeds (tried again with backoff); beyond [`RETRY_MAX`] the oldest are
//! dropped and counted. `/monitor` says `store : FAIL` with the cause meanwhile.
//!
//! **Limits.** Pushes from outside (`push_from`) may create at most `[ingest] max_assets`
//! assets in all, `[[token]] max_assets` per token, and `max_checks_per_asset` checks per
//! asset; a push over a limit is refused whole, with the limit named.

use crate::cluster::Role;
use crate::model::{ModelHandle, DEFAULT_GROUP};
use crate::{LiveState, Metrics};
use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vitals_alert::{AssetInfo, Assets, Engine, EngineOp, OpAnswer, Output};
use vitals_core::health::{AlarmQuery, AssetHealth};
use vitals_core::Status;
use vitals_core::{Observation, SharedClock, SystemClock, Timestamp};
use vitals_store::cluster::{Cluster, Fence, InboxItem};
use vitals_store::{AssetRecord, CommitBatch, HealthUpdate, Store, StoreError};

/// Capacity of the intake channel; a full channel makes senders wait (backpressure).
const QUEUE: usize = 16_384;
/// Most messages drained into one commit.
const DRAIN: usize = 4_096;
/// Rounds of fewer probe results than this wait [`LINGER`] for more.
const LINGER_BELOW: usize = 64;
const LINGER: Duration = Duration::from_millis(20);
/// Probe observations kept while the store refuses writes; beyond, the oldest are dropped.
pub const RETRY_MAX: usize = 200_000;
/// The longest wait between two attempts to write to a failing store.
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The worker beats at least this often, also when idle.
const BEAT_EVERY: Duration = Duration::from_secs(1);
/// How often the alert engine's time-driven pass runs (`Engine::tick`).
const TICK_EVERY_MS: i64 = 1_000;
/// Healths a commit replaced, kept to copy the next rounds' healths into (see
/// `LiveState::swap_health`); beyond this many they are dropped.
const SPARE_HEALTHS: usize = 4_096;
/// Metadata key of assets created by a push: the token's name (or `local`).
pub const CREATED_BY: &str = "created_by";

/// A pushed result: the observation and its optional idempotency key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pushed {
    pub obs: Observation,
    pub id: Option<String>,
}

/// What became of a pushed batch.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PushReport {
    pub accepted: usize,
    /// Indices (in the batch) of results that were duplicates — their id was seen before, or
    /// their (asset, check, time) is already stored — accepted once, not again.
    pub duplicates: Vec<usize>,
}

/// Who pushed, for the limits that apply to pushes from outside.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// The token's name (`local` without tokens).
    pub token: String,
    /// The token's own quota of assets it may create (0: none of its own).
    pub max_assets: usize,
}

/// Why a push was not taken (nothing of it was stored).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{message}")]
    Limit {
        limit: crate::IngestLimit,
        message: String,
    },
}

/// A change to health made through the API.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

type PushReply = oneshot::Sender<Result<PushReport, PushError>>;

enum Msg {
    Obs(Observation),
    /// An engine call, and asset records committed with its output.
    Engine(EngineCall, Vec<AssetRecord>, EngineReply),
    Push(Vec<Pushed>, Option<Origin>, PushReply),
    Health(
        HealthOp,
        oneshot::Sender<Result<Result<(), HealthOpError>, StoreError>>,
    ),
    Flush(oneshot::Sender<()>),
    /// An API call into the engine, as data (a replica that does not decide relays it).
    Op(EngineOp, oneshot::Sender<Result<OpAnswer, StoreError>>),
    /// A message another replica left in the inbox (taken by the decider).
    Remote(i64, Remote),
}

/// What replicas hand to the decider through the inbox (`kind` names the variant).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Remote {
    Obs(Observation),
    Push(Vec<Pushed>, Option<Origin>),
    Health(HealthOp),
    Op(EngineOp),
    /// A message the decider could not read (answered as refused, consumed); never relayed.
    #[serde(skip)]
    Unreadable(String),
}

/// The decider's answer to a relayed message (JSON in the inbox's answers).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Answer {
    Pushed(PushReport),
    Limit(crate::IngestLimit, String),
    Health(Option<String>),
    Op(Box<OpAnswer>),
    Refused(String),
}

/// How long a relayed call waits for the decider's answer (a failover takes up to a lease).
const RELAY_WAIT: Duration = Duration::from_secs(15);
/// How often the decider looks into the inbox when nothing else wakes it.
const INBOX_POLL: Duration = Duration::from_millis(100);
/// A busy decider looks into the inbox at most this often (not one query per round).
const INBOX_EVERY: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
    model: Arc<ModelHandle>,
    tx: mpsc::Sender<Msg>,
    outbox_wake: Arc<tokio::sync::Notify>,
    clock: SharedClock,
    role: Arc<Role>,
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
        Self::start_watched(
            store,
            state,
            metrics,
            model,
            engine,
            crate::liveness::Beat::detached(),
            SystemClock::shared(),
            Role::solo(),
        )
    }

    /// [`Pipeline::start`], beating `beat` at least every second, on `clock`, in `role`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_watched(
        store: Arc<dyn Store>,
        state: Arc<LiveState>,
        metrics: Arc<Metrics>,
        model: Arc<ModelHandle>,
        engine: Engine,
        beat: crate::liveness::Beat,
        clock: SharedClock,
        role: Arc<Role>,
    ) -> (Pipeline, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        // Assets created by pushes so far, in all and per token (for the limits).
        let mut created_by: HashMap<String, usize> = HashMap::new();
        let mut pushed_assets = 0;
        for a in state.read().values() {
            if let Some(t) = a.record.metadata.get(CREATED_BY).and_then(|v| v.as_str()) {
                pushed_assets += 1;
                *created_by.entry(t.to_string()).or_default() += 1;
            }
        }
        let worker = Worker {
            store: store.clone(),
            state: state.clone(),
            metrics: metrics.clone(),
            model: model.clone(),
            engine,
            outbox_wake: outbox_wake.clone(),
            retry: VecDeque::new(),
            backoff: Duration::ZERO,
            pushed_assets,
            created_by,
            beat,
            clock: clock.clone(),
            next_tick: Timestamp(0),
            role: role.clone(),
            decided: None,
            relay_retry: VecDeque::new(),
            inbox_at: None,
            spares: Vec::new(),
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
                clock,
                role,
            },
            handle,
        )
    }

    /// This replica's role (on its own: everything).
    pub fn role(&self) -> &Arc<Role> {
        &self.role
    }

    /// An API call into the alert engine (acknowledgement, silences), committed before this
    /// returns; on a replica that does not decide, relayed to the one that does.
    pub async fn engine_op(&self, op: EngineOp) -> Result<OpAnswer, StoreError> {
        if self.role.is_decider() {
            return self
                .with_engine(move |e, a, now, out| e.apply_op(op, a, now, out))
                .await;
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Op(op, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a probe observation; waits only when the queue is full.
    pub async fn submit(&self, obs: Observation) {
        if self.tx.send(Msg::Obs(obs)).await.is_err() {
            tracing::error!("pipeline stopped; observation dropped");
        }
    }

    /// Commits results from inside Vitals (no limits); returns after they are durable.
    pub async fn push(&self, items: Vec<Pushed>) -> Result<PushReport, StoreError> {
        match self.send_push(items, None).await {
            Ok(r) => Ok(r),
            Err(PushError::Store(e)) => Err(e),
            // Not reachable: limits apply only with an origin.
            Err(e @ PushError::Limit { .. }) => Err(StoreError::Backend(e.to_string())),
        }
    }

    /// Commits results pushed from outside, within `[ingest]` and the token's limits; returns
    /// after they are durable.
    pub async fn push_from(
        &self,
        items: Vec<Pushed>,
        origin: Origin,
    ) -> Result<PushReport, PushError> {
        self.send_push(items, Some(origin)).await
    }

    async fn send_push(
        &self,
        items: Vec<Pushed>,
        origin: Option<Origin>,
    ) -> Result<PushReport, PushError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Push(items, origin, tx))
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
        self.with_engine_and_assets(Vec::new(), f).await
    }

    /// [`with_engine`](Self::with_engine), with `assets` stored in the same commit as `f`'s
    /// output: both or neither (a reload's new assets and the alert changes of its rules).
    pub async fn with_engine_and_assets<R, F>(
        &self,
        assets: Vec<AssetRecord>,
        f: F,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine, &dyn Assets, Timestamp, &mut Output) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let call: EngineCall =
            Box::new(move |e, a, now, out| Box::new(f(e, a, now, out)) as Box<dyn Any + Send>);
        self.tx
            .send(Msg::Engine(call, assets, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        let any = rx.await.map_err(|_| StoreError::Closed)??;
        any.downcast::<R>()
            .map(|b| *b)
            .map_err(|_| StoreError::Backend("engine call returned an unexpected type".into()))
    }

    /// The one clock of this process (see `vitals_core::clock`).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The domain's now, from [`Pipeline::clock`].
    pub fn now(&self) -> Timestamp {
        self.clock.now()
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
    /// Probe observations of failed rounds, oldest first, waiting for the store.
    retry: VecDeque<Observation>,
    /// Wait before the next attempt while the store fails (zero when it works).
    backoff: Duration,
    /// Assets created by pushes, in all and per token.
    pushed_assets: usize,
    created_by: HashMap<String, usize>,
    beat: crate::liveness::Beat,
    clock: SharedClock,
    /// When the engine's time-driven pass is next due.
    next_tick: Timestamp,
    role: Arc<Role>,
    /// The decider epoch this worker took over at (None: it relays).
    decided: Option<i64>,
    /// Inbox messages (kind, body) a failed relay keeps for the next, oldest first.
    relay_retry: VecDeque<(String, String)>,
    /// When the decider last looked into the inbox.
    inbox_at: Option<std::time::Instant>,
    /// Healths the last commit replaced, to copy the next round's into.
    spares: Vec<AssetHealth>,
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

    fn details(&self, asset: &str) -> std::collections::BTreeMap<String, String> {
        self.state.asset_details(asset)
    }

    fn component_values(
        &self,
        selector: &vitals_core::rules::Selector,
        component: &str,
    ) -> Vec<(String, String, String)> {
        self.state.component_values(selector, component)
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

/// Who is waiting for an observation of the round: (push reply index, item index).
type Owner = Option<(usize, usize)>;

/// Everything one drain turns into.
#[derive(Default)]
struct Round {
    batch: CommitBatch,
    /// Per observation of the batch: whose it is, if a caller waits for it.
    owners: Vec<Owner>,
    /// Indices of the batch's observations that are news (newer than the check's latest):
    /// what the alert engine sees, in order.
    current: Vec<usize>,
    /// (asset, check, time) of every observation of the round: the second is a duplicate.
    keys: HashSet<(String, String, i64)>,
    /// Health of touched assets, computed on copies; written to the state after the commit.
    scratch: HashMap<String, AssetHealth>,
    /// Newest observation time per (asset, check) seen in this round, to keep order.
    latest: HashMap<(String, String), Timestamp>,
    push_replies: Vec<(PushReply, PushReport)>,
    health_replies: Vec<oneshot::Sender<Result<Result<(), HealthOpError>, StoreError>>>,
    flushes: Vec<oneshot::Sender<()>>,
    engine_calls: Vec<(EngineCall, EngineReply)>,
    engine_replies: Vec<(EngineReply, Box<dyn Any + Send>)>,
    statuses: HashMap<String, HashMap<String, Status>>,
    new_assets: HashSet<String>,
    /// Checks this round adds, per asset (for `max_checks_per_asset`).
    new_checks: HashMap<String, HashSet<String>>,
    /// Assets this round's pushes create, per token.
    created_by: HashMap<String, usize>,
    /// Indices of the batch's observations that came from probes (kept if the commit fails).
    probes: Vec<usize>,
    /// Engine calls other replicas relayed: (inbox seq, call).
    remote_ops: Vec<(i64, EngineOp)>,
    /// Healths to copy touched assets' health into (the worker's spares).
    spares: Vec<AssetHealth>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(DRAIN);
        let mut open = true;
        while open || !self.retry.is_empty() {
            msgs.clear();
            self.beat.now();
            if !self.backoff.is_zero() {
                // The store failed: give it a moment; messages queue meanwhile.
                tokio::time::sleep(self.backoff).await;
            }
            let idle = if self.role.is_replica() && self.decided.is_some() {
                INBOX_POLL
            } else {
                BEAT_EVERY
            };
            if self.retry.is_empty() && self.relay_retry.is_empty() {
                tokio::select! {
                    n = rx.recv_many(&mut msgs, DRAIN) => {
                        if n == 0 {
                            break;
                        }
                    }
                    // Nothing came: a round of its own, for what time alone decides.
                    _ = tokio::time::sleep(idle) => {}
                }
            } else {
                // Buffered observations wait for the store: try again even with nothing new.
                while msgs.len() < DRAIN {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
            // A trickle of probe results only (nobody waiting for an answer): linger a few
            // milliseconds so they share a commit, instead of one commit per observation.
            if !msgs.is_empty()
                && msgs.len() < LINGER_BELOW
                && msgs.iter().all(|m| matches!(m, Msg::Obs(_)))
            {
                tokio::time::sleep(LINGER).await;
                while msgs.len() < DRAIN {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
            }
            if let Some(cluster) = self.role.cluster().cloned() {
                self.sync_role(&*cluster).await;
                if self.decided.is_none() {
                    self.relay(&cluster, &mut msgs).await;
                    continue;
                }
                self.take_inbox(&*cluster, &mut msgs).await;
            }
            let round = self.prepare(&mut msgs).await;
            self.finish(round).await;
        }
    }

    /// Follows the lease: takes over as the decider (fence, catch up on the feed, the engine
    /// from the store) or gives it up. A take-over that fails is tried again next round.
    async fn sync_role(&mut self, cluster: &dyn Cluster) {
        let epoch = self.role.lease_epoch();
        if epoch == self.decided {
            return;
        }
        self.role.set_deciding(false);
        cluster.set_feed(None);
        let Some(epoch) = epoch else {
            cluster.set_fence(None);
            self.decided = None;
            return;
        };
        self.decided = None;
        cluster.set_fence(Some(Fence {
            member: self.role.me().to_string(),
            epoch,
        }));
        // Everything the previous decider committed is in the feed; its last commit happened
        // before our claim (the fence), so after this pull the live state is complete.
        if let Err(e) = self.role.pull_feed(&self.state).await {
            tracing::warn!(error = %e, "taking over as the decider: cannot read the feed");
            return;
        }
        let since = self.clock.now().add_millis(-86_400_000);
        let synced = async {
            Ok::<_, StoreError>((
                self.store.open_alerts().await?,
                self.store.silences(since).await?,
                self.store.max_ids().await?,
            ))
        }
        .await;
        let (alerts, silences, ids) = match synced {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "taking over as the decider: cannot read the alerts");
                return;
            }
        };
        self.engine.resync(alerts, silences, ids);
        self.pushed_assets = 0;
        self.created_by.clear();
        for a in self.state.read().values() {
            if let Some(t) = a.record.metadata.get(CREATED_BY).and_then(|v| v.as_str()) {
                self.pushed_assets += 1;
                *self.created_by.entry(t.to_string()).or_default() += 1;
            }
        }
        self.next_tick = Timestamp(0);
        cluster.set_feed(Some(self.role.me().to_string()));
        self.decided = Some(epoch);
        self.role.set_deciding(true);
    }

    /// The decider's share of the inbox: what other replicas took in, oldest first.
    async fn take_inbox(&mut self, cluster: &dyn Cluster, msgs: &mut Vec<Msg>) {
        if self.inbox_at.is_some_and(|t| t.elapsed() < INBOX_EVERY) {
            return;
        }
        self.inbox_at = Some(std::time::Instant::now());
        let room = DRAIN.saturating_sub(msgs.len()).max(64);
        match cluster.inbox_take(room).await {
            Ok(items) => {
                for InboxItem { seq, kind, body } in items {
                    match serde_json::from_str::<Remote>(&body) {
                        Ok(r) => msgs.push(Msg::Remote(seq, r)),
                        Err(e) => {
                            tracing::warn!(seq, kind = %kind, error = %e, "unreadable inbox message");
                            msgs.push(Msg::Remote(seq, Remote::Unreadable(e.to_string())));
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the inbox"),
        }
    }

    /// Not the decider: hands everything to it through the inbox. Callers are answered when
    /// the decider has committed (or after [`RELAY_WAIT`]: their message stays queued).
    async fn relay(&mut self, cluster: &Arc<dyn Cluster>, msgs: &mut Vec<Msg>) {
        enum Waiter {
            Push(PushReply),
            Health(oneshot::Sender<Result<Result<(), HealthOpError>, StoreError>>),
            Op(oneshot::Sender<Result<OpAnswer, StoreError>>),
        }
        let mut items: Vec<(String, String)> = self.relay_retry.drain(..).collect();
        for o in self.retry.drain(..) {
            items.push(remote_item(&Remote::Obs(o)));
        }
        let mut waiters: Vec<(usize, Waiter)> = Vec::new();
        let mut flushes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Obs(o) => items.push(remote_item(&Remote::Obs(o))),
                Msg::Push(p, origin, reply) => {
                    waiters.push((items.len(), Waiter::Push(reply)));
                    items.push(remote_item(&Remote::Push(p, origin)));
                }
                Msg::Health(op, reply) => {
                    waiters.push((items.len(), Waiter::Health(reply)));
                    items.push(remote_item(&Remote::Health(op)));
                }
                Msg::Op(op, reply) => {
                    waiters.push((items.len(), Waiter::Op(reply)));
                    items.push(remote_item(&Remote::Op(op)));
                }
                Msg::Engine(call, assets, reply) => {
                    // A reload here: the assets are stored, and this replica's engine takes
                    // the new rules for when it decides (its alerts are read again then);
                    // the decider's own reload changes the alerts.
                    if let Err(e) = self.store.upsert_assets(&assets).await {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    let (scratch, statuses) = (HashMap::new(), HashMap::new());
                    let view = View {
                        state: &self.state,
                        scratch: &scratch,
                        statuses: &statuses,
                    };
                    self.engine.begin();
                    let r = call(
                        &mut self.engine,
                        &view,
                        self.clock.now(),
                        &mut Output::default(),
                    );
                    self.engine.commit();
                    let _ = reply.send(Ok(r));
                }
                Msg::Flush(f) => flushes.push(f),
                Msg::Remote(..) => {} // only the decider takes the inbox
            }
        }
        if items.is_empty() {
            for f in flushes {
                let _ = f.send(());
            }
            return;
        }
        let waiting: HashSet<usize> = waiters.iter().map(|(i, _)| *i).collect();
        match cluster.inbox_put(items.clone()).await {
            Ok(seqs) => {
                self.backoff = Duration::ZERO;
                self.metrics.store_ok(self.clock.now().0);
                self.metrics
                    .observations_buffered
                    .store(0, Ordering::Relaxed);
                for (i, w) in waiters {
                    let Some(&seq) = seqs.get(i) else { continue };
                    let cluster = cluster.clone();
                    tokio::spawn(async move {
                        let answer = wait_answer(&*cluster, seq).await;
                        match w {
                            Waiter::Push(reply) => {
                                let _ = reply.send(match answer {
                                    Ok(Answer::Pushed(r)) => Ok(r),
                                    Ok(Answer::Limit(limit, message)) => {
                                        Err(PushError::Limit { limit, message })
                                    }
                                    Ok(other) => Err(unexpected(&other).into()),
                                    Err(e) => Err(e.into()),
                                });
                            }
                            Waiter::Health(reply) => {
                                let _ = reply.send(match answer {
                                    Ok(Answer::Health(None)) => Ok(Ok(())),
                                    Ok(Answer::Health(Some(m))) => {
                                        Ok(Err(HealthOpError::NotFound(m)))
                                    }
                                    Ok(other) => Err(unexpected(&other)),
                                    Err(e) => Err(e),
                                });
                            }
                            Waiter::Op(reply) => {
                                let _ = reply.send(match answer {
                                    Ok(Answer::Op(a)) => Ok(*a),
                                    Ok(other) => Err(unexpected(&other)),
                                    Err(e) => Err(e),
                                });
                            }
                        }
                    });
                }
            }
            Err(e) => {
                let msg = e.to_string();
                self.metrics.store_failed(self.clock.now().0, msg.clone());
                tracing::warn!(error = %msg, "cannot hand results to the decider");
                for (_, w) in waiters {
                    match w {
                        Waiter::Push(r) => {
                            let _ = r.send(Err(e.again().into()));
                        }
                        Waiter::Health(r) => {
                            let _ = r.send(Err(e.again()));
                        }
                        Waiter::Op(r) => {
                            let _ = r.send(Err(e.again()));
                        }
                    }
                }
                // Probe results (nobody waits for them) are kept for the next attempt.
                self.relay_retry.extend(
                    items
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !waiting.contains(i))
                        .map(|(_, it)| it),
                );
                let over = keep_newest(&mut self.relay_retry, &self.metrics);
                if over > 0 {
                    tracing::error!(dropped = over, kept = RETRY_MAX, "the decider has been out of reach for long: the oldest buffered probe observations were dropped");
                }
                self.back_off();
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }

    /// The store (or the decider) refused: wait longer before the next attempt.
    fn back_off(&mut self) {
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(100), RETRY_BACKOFF_MAX);
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

    /// Adds one observation and its health changes to the round; `false` if it is a duplicate
    /// (of another in the round, or of the check's latest).
    fn add_observation(
        &self,
        round: &mut Round,
        obs: Observation,
        owner: Owner,
        creator: Option<&str>,
    ) -> bool {
        if !round
            .keys
            .insert((obs.asset.clone(), obs.check.clone(), obs.time.0))
        {
            return false;
        }
        let model = self.model.get();
        let mut health = (!round.scratch.contains_key(&obs.asset))
            .then(|| round.spares.pop().unwrap_or_default());
        let peek = self
            .state
            .peek(&obs.asset, &obs.check, health.as_mut(), |g| {
                model.groups_for(&obs.check, g)
            });
        let key = (obs.asset.clone(), obs.check.clone());
        let current = round.latest.get(&key).copied().or(peek.latest);
        if current == Some(obs.time) {
            round.spares.extend(health);
            return false;
        }
        if !peek.asset_known && round.new_assets.insert(obs.asset.clone()) {
            let mut record = AssetRecord::named(&obs.asset);
            if let Some(c) = creator {
                record
                    .metadata
                    .insert(CREATED_BY.to_string(), serde_json::Value::from(c));
                *round.created_by.entry(c.to_string()).or_default() += 1;
            }
            round.batch.assets.push(record);
        }
        if !peek.check_known {
            round
                .new_checks
                .entry(obs.asset.clone())
                .or_default()
                .insert(obs.check.clone());
        }
        // A result older than what we have is history, not news: stored, but it moves no
        // state, severity or alert.
        if current.is_none_or(|t| obs.time > t) {
            round.latest.insert(key, obs.time);
            round
                .statuses
                .entry(obs.asset.clone())
                .or_default()
                .insert(obs.check.clone(), obs.status);
            let groups = if peek.groups.is_empty() {
                vec![DEFAULT_GROUP.to_string()]
            } else {
                peek.groups
            };
            let h = match health {
                Some(h) => round.scratch.entry(obs.asset.clone()).or_insert(h),
                None => self.health_of(&mut round.scratch, &obs.asset),
            };
            for change in h.record(&groups, &obs.check, obs.score, obs.time) {
                round.batch.health.push(HealthUpdate {
                    asset: obs.asset.clone(),
                    change,
                });
            }
            round.current.push(round.batch.observations.len());
        } else {
            round.spares.extend(health);
        }
        round.batch.observations.push(obs);
        round.owners.push(owner);
        true
    }

    /// Which limit a push from `origin` would break, if any (nothing of it is added then).
    fn over_limit(&self, round: &Round, items: &[Pushed], origin: &Origin) -> Option<PushError> {
        let limits = self.model.get().ingest.clone();
        let mut new_assets: HashSet<&str> = HashSet::new();
        let mut new_checks: HashMap<&str, HashSet<&str>> = HashMap::new();
        for p in items {
            let (a, c) = (p.obs.asset.as_str(), p.obs.check.as_str());
            let (asset_known, check_known) = self.state.known(a, c);
            if !asset_known && !round.new_assets.contains(a) {
                new_assets.insert(a);
            }
            let known = check_known || round.new_checks.get(a).is_some_and(|s| s.contains(c));
            if !known {
                new_checks.entry(a).or_default().insert(c);
            }
        }
        let created = self.pushed_assets + round.created_by.values().sum::<usize>();
        if !new_assets.is_empty() && created + new_assets.len() > limits.max_assets {
            return Some(PushError::Limit {
                limit: crate::IngestLimit::Assets,
                message: format!(
                    "this push would create {} new asset(s); pushes have created {created} of at most {} (ingest.max_assets)",
                    new_assets.len(),
                    limits.max_assets
                ),
            });
        }
        if origin.max_assets > 0 && !new_assets.is_empty() {
            let mine = self.created_by.get(&origin.token).copied().unwrap_or(0)
                + round.created_by.get(&origin.token).copied().unwrap_or(0);
            if mine + new_assets.len() > origin.max_assets {
                return Some(PushError::Limit {
                    limit: crate::IngestLimit::TokenAssets,
                    message: format!(
                        "token {:?} has created {mine} asset(s) of at most {} (its max_assets); this push would create {} more",
                        origin.token,
                        origin.max_assets,
                        new_assets.len()
                    ),
                });
            }
        }
        for (a, checks) in &new_checks {
            let have = self.state.check_count(a) + round.new_checks.get(*a).map_or(0, |s| s.len());
            if have + checks.len() > limits.max_checks_per_asset {
                return Some(PushError::Limit {
                    limit: crate::IngestLimit::ChecksPerAsset,
                    message: format!(
                        "asset {a:?} has {have} check(s); this push would add {} more, over the {} of ingest.max_checks_per_asset",
                        checks.len(),
                        limits.max_checks_per_asset
                    ),
                });
            }
        }
        None
    }

    async fn prepare(&mut self, msgs: &mut Vec<Msg>) -> Round {
        let mut round = Round {
            spares: std::mem::take(&mut self.spares),
            ..Round::default()
        };
        // Observations of failed rounds first, in the order they were made.
        for o in std::mem::take(&mut self.retry) {
            let i = round.batch.observations.len();
            if self.add_observation(&mut round, o, None, None) {
                round.probes.push(i);
            }
        }
        // Idempotency keys: one look-up for the whole drain, plus duplicates within it.
        let ids: Vec<String> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::Push(items, _, _) | Msg::Remote(_, Remote::Push(items, _)) => {
                    Some(items.iter().filter_map(|p| p.id.clone()))
                }
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
                            Msg::Push(_, _, reply) => {
                                let _ = reply.send(Err(e.again().into()));
                            }
                            Msg::Health(_, reply) => {
                                let _ = reply.send(Err(e.again()));
                            }
                            Msg::Obs(o) => {
                                let i = round.batch.observations.len();
                                if self.add_observation(&mut round, o, None, None) {
                                    round.probes.push(i);
                                }
                            }
                            Msg::Flush(f) => round.flushes.push(f),
                            Msg::Engine(call, assets, reply) => {
                                round.batch.assets.extend(assets);
                                round.engine_calls.push((call, reply));
                            }
                            Msg::Op(op, reply) => self.local_op(&mut round, op, reply),
                            // Left in the inbox: taken again next round.
                            Msg::Remote(..) => {}
                        }
                    }
                    self.decide(&mut round);
                    return round;
                }
            }
        };
        for m in msgs.drain(..) {
            match m {
                Msg::Obs(o) => {
                    let i = round.batch.observations.len();
                    if self.add_observation(&mut round, o, None, None) {
                        round.probes.push(i);
                    }
                }
                Msg::Push(items, origin, reply) => {
                    if crate::liveness::failpoint("pipeline-panic")
                        && items.iter().any(|p| p.obs.asset == "failpoint")
                    {
                        panic!("failpoint pipeline-panic");
                    }
                    let r = round.push_replies.len();
                    match self.take_push(&mut round, items, origin, &mut seen, Some(r)) {
                        Ok(report) => round.push_replies.push((reply, report)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Msg::Remote(seq, remote) => {
                    let answer = match remote {
                        Remote::Obs(o) => {
                            self.add_observation(&mut round, o, None, None);
                            None
                        }
                        Remote::Push(items, origin) => Some(
                            match self.take_push(&mut round, items, origin, &mut seen, None) {
                                Ok(report) => Answer::Pushed(report),
                                Err(PushError::Limit { limit, message }) => {
                                    Answer::Limit(limit, message)
                                }
                                Err(PushError::Store(e)) => Answer::Refused(e.to_string()),
                            },
                        ),
                        Remote::Health(op) => {
                            Some(Answer::Health(self.take_health(&mut round, &op).err()))
                        }
                        Remote::Unreadable(why) => Some(Answer::Refused(format!(
                            "the decider could not read this message: {why}"
                        ))),
                        Remote::Op(op) => {
                            // Answered in `decide`, where the engine runs.
                            round.remote_ops.push((seq, op));
                            continue;
                        }
                    };
                    round.batch.inbox_done.push((
                        seq,
                        // Nobody waits for a probe result: consumed without an answer.
                        answer.map_or_else(String::new, |a| answer_json(&a)),
                    ));
                }
                Msg::Op(op, reply) => self.local_op(&mut round, op, reply),
                Msg::Health(op, reply) => match self.take_health(&mut round, &op) {
                    Ok(()) => round.health_replies.push(reply),
                    Err(e) => {
                        let _ = reply.send(Ok(Err(HealthOpError::NotFound(e))));
                    }
                },
                Msg::Flush(f) => round.flushes.push(f),
                Msg::Engine(call, assets, reply) => {
                    round.batch.assets.extend(assets);
                    round.engine_calls.push((call, reply));
                }
            }
        }
        self.decide(&mut round);
        round
    }

    /// An engine call from this replica's API, in a round of the decider.
    fn local_op(
        &self,
        round: &mut Round,
        op: EngineOp,
        reply: oneshot::Sender<Result<OpAnswer, StoreError>>,
    ) {
        let (tx, rx) = oneshot::channel();
        let call: EngineCall = Box::new(move |e, a, now, out| {
            Box::new(e.apply_op(op, a, now, out)) as Box<dyn Any + Send>
        });
        round.engine_calls.push((call, tx));
        tokio::spawn(async move {
            let r = match rx.await {
                Ok(Ok(any)) => any.downcast::<OpAnswer>().map(|b| *b).map_err(|_| {
                    StoreError::Backend("engine call returned an unexpected type".into())
                }),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(StoreError::Closed),
            };
            let _ = reply.send(r);
        });
    }

    /// Adds a pushed batch to the round, within the limits of its origin; `owner`: the index of
    /// its reply (local pushes, whose report the commit may still correct).
    fn take_push(
        &mut self,
        round: &mut Round,
        items: Vec<Pushed>,
        origin: Option<Origin>,
        seen: &mut HashSet<String>,
        owner: Option<usize>,
    ) -> Result<PushReport, PushError> {
        if let Some(o) = &origin {
            if let Some(e) = self.over_limit(round, &items, o) {
                if let PushError::Limit { limit, .. } = &e {
                    self.metrics.refused(*limit);
                }
                return Err(e);
            }
        }
        let mut report = PushReport::default();
        let creator = origin.as_ref().map(|o| o.token.as_str());
        // Room for the whole push at once: growing the round's tables one rehash at a time
        // was ~2 % of P3a's CPU.
        round.keys.reserve(items.len());
        round.latest.reserve(items.len());
        round.statuses.reserve(items.len());
        round.scratch.reserve(items.len());
        for (i, p) in items.into_iter().enumerate() {
            if let Some(id) = &p.id {
                if !seen.insert(id.clone()) {
                    report.duplicates.push(i);
                    continue;
                }
                round.batch.result_ids.push(id.clone());
            }
            if self.add_observation(round, p.obs, owner.map(|r| (r, i)), creator) {
                report.accepted += 1;
            } else {
                report.duplicates.push(i);
            }
        }
        Ok(report)
    }

    /// Adds a health deletion to the round; `Err`: what was not found (nothing changed).
    fn take_health(&self, round: &mut Round, op: &HealthOp) -> Result<(), String> {
        let now = self.clock.now();
        let (asset, result) = match op {
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
        let changes = result?;
        round
            .batch
            .health
            .extend(changes.into_iter().map(|change| HealthUpdate {
                asset: asset.clone(),
                change,
            }));
        Ok(())
    }

    /// Alert decisions for the round: rules over its news (each check's observations in time
    /// order), then the engine calls. Undone if the commit fails.
    fn decide(&mut self, round: &mut Round) {
        let now = self.clock.now();
        let mut out = Output::default();
        self.engine.begin();
        {
            let view = View {
                state: &self.state,
                scratch: &round.scratch,
                statuses: &round.statuses,
            };
            let obs = &round.batch.observations;
            self.engine
                .observe(round.current.iter().map(|&i| &obs[i]), &view, now, &mut out);
            // What time alone decides — reminders, escalation, `for` triggers, expiries —
            // at most once a second of the clock (a busy pipeline has many rounds a second).
            if now >= self.next_tick {
                self.engine.tick(&view, now, &mut out);
                self.next_tick = now.add_millis(TICK_EVERY_MS);
            }
            for (call, reply) in round.engine_calls.drain(..) {
                let r = call(&mut self.engine, &view, now, &mut out);
                round.engine_replies.push((reply, r));
            }
            for (seq, op) in round.remote_ops.drain(..) {
                let answer = Answer::Op(Box::new(self.engine.apply_op(op, &view, now, &mut out)));
                round.batch.inbox_done.push((seq, answer_json(&answer)));
            }
        }
        if self.role.is_replica() && !round.scratch.is_empty() {
            round.batch.feed_health = serde_json::to_value(&round.scratch).ok();
        }
        round.batch.alerts = out.alerts;
        round.batch.alert_events = out.events;
        round.batch.outbox = out.outbox;
        round.batch.silences = out.silences;
    }

    async fn finish(&mut self, round: Round) {
        let Round {
            batch,
            owners,
            scratch,
            mut push_replies,
            health_replies,
            flushes,
            engine_replies,
            created_by,
            probes,
            mut spares,
            ..
        } = round;
        let has_work = batch != CommitBatch::default();
        let notify_outbox = !batch.outbox.is_empty();
        let (result, batch) = if has_work {
            let shared = Arc::new(batch);
            let result = self.store.commit(shared.clone()).await;
            // The store let go of it before answering; a copy only if one does not.
            let batch = Arc::try_unwrap(shared).unwrap_or_else(|b| (*b).clone());
            (result, batch)
        } else {
            (Ok(vitals_store::CommitReport::default()), batch)
        };
        let now = self.clock.now();
        match result {
            Ok(report) => {
                self.engine.commit();
                if let Some(ms) = self.metrics.store_ok(now.0) {
                    tracing::info!(
                        after_s = ms / 1000,
                        "the store takes writes again; buffered observations are stored"
                    );
                }
                self.backoff = Duration::ZERO;
                self.metrics
                    .observations_buffered
                    .store(0, Ordering::Relaxed);
                // Duplicates found by the store (history already stored) were not stored.
                let dups: HashSet<usize> = report.duplicates.iter().copied().collect();
                for &i in &report.duplicates {
                    if let Some(Some((r, item))) = owners.get(i) {
                        if let Some((_, rep)) = push_replies.get_mut(*r) {
                            rep.accepted = rep.accepted.saturating_sub(1);
                            rep.duplicates.push(*item);
                            rep.duplicates.sort_unstable();
                        }
                    }
                }
                let stored: Vec<Observation> = if dups.is_empty() {
                    batch.observations
                } else {
                    batch
                        .observations
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !dups.contains(i))
                        .map(|(_, o)| o)
                        .collect()
                };
                self.metrics
                    .observations_stored
                    .fetch_add(stored.len() as u64, Ordering::Relaxed);
                for (token, n) in created_by {
                    self.pushed_assets += n;
                    *self.created_by.entry(token).or_default() += n;
                }
                self.state.ensure_assets(&batch.assets);
                self.state.apply(stored);
                self.state.swap_health(scratch, |old| {
                    if spares.len() < SPARE_HEALTHS {
                        spares.push(old);
                    }
                });
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
                // Nothing of the round happened: the engine is back where it was, health and
                // live state are untouched, callers hear of the failure.
                self.engine.rollback();
                let msg = e.to_string();
                self.metrics.store_failed(now.0, msg.clone());
                tracing::warn!(error = %msg, buffered = probes.len(), "store write failed");
                for (reply, _) in push_replies {
                    let _ = reply.send(Err(e.again().into()));
                }
                for reply in health_replies {
                    let _ = reply.send(Err(e.again()));
                }
                for (reply, _) in engine_replies {
                    let _ = reply.send(Err(e.again()));
                }
                // Probe observations wait for the next round, in order; the oldest go first
                // when there are too many.
                let keep: HashSet<usize> = probes.into_iter().collect();
                self.retry.extend(
                    batch
                        .observations
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| keep.contains(i))
                        .map(|(_, o)| o),
                );
                let over = keep_newest(&mut self.retry, &self.metrics);
                if over > 0 {
                    tracing::error!(
                        dropped = over,
                        kept = RETRY_MAX,
                        "the store has refused writes for long: the oldest buffered probe observations were dropped"
                    );
                }
                self.back_off();
            }
        }
        self.spares = spares;
        for f in flushes {
            let _ = f.send(());
        }
    }
}

/// Keeps at most [`RETRY_MAX`] buffered items, dropping and counting the oldest; returns how
/// many were dropped.
fn keep_newest<T>(buf: &mut VecDeque<T>, metrics: &Metrics) -> usize {
    let over = buf.len().saturating_sub(RETRY_MAX);
    if over > 0 {
        buf.drain(..over);
        metrics
            .observations_dropped
            .fetch_add(over as u64, Ordering::Relaxed);
    }
    metrics
        .observations_buffered
        .store(buf.len() as u64, Ordering::Relaxed);
    over
}

fn remote_item(r: &Remote) -> (String, String) {
    let kind = match r {
        Remote::Obs(_) => "obs",
        Remote::Push(..) => "push",
        Remote::Health(_) => "health",
        Remote::Op(_) => "op",
        Remote::Unreadable(_) => "unreadable",
    };
    let body = serde_json::to_string(r).unwrap_or_else(|e| {
        // Not reachable for these types; the decider answers an unreadable message as refused.
        tracing::error!(error = %e, "cannot encode an inbox message");
        String::from("null")
    });
    (kind.to_string(), body)
}

fn answer_json(a: &Answer) -> String {
    serde_json::to_string(a).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode an inbox answer");
        String::from("null")
    })
}

fn unexpected(a: &Answer) -> StoreError {
    match a {
        Answer::Refused(m) => StoreError::Backend(format!("the decider refused it: {m}")),
        other => StoreError::Backend(format!("the decider answered unexpectedly: {other:?}")),
    }
}

/// Waits for the decider's answer to inbox message `seq`.
async fn wait_answer(cluster: &dyn Cluster, seq: i64) -> Result<Answer, StoreError> {
    let began = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        tokio::time::sleep(pause).await;
        match cluster.inbox_answers(&[seq]).await {
            Ok(found) => {
                if let Some((_, a)) = found.into_iter().next() {
                    return serde_json::from_str(&a).map_err(|e| {
                        StoreError::Corrupt(format!("the decider's answer to {seq}: {e}"))
                    });
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the decider's answer"),
        }
        if began.elapsed() > RELAY_WAIT {
            return Err(StoreError::Backend(format!(
                "no replica decided on it within {} s (a failover takes up to the lease); it is queued and will be stored — sending it again is safe",
                RELAY_WAIT.as_secs()
            )));
        }
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
