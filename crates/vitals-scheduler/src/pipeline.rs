//! Observation intake: store first, then live state.
//!
//! Probe results arrive through a bounded channel ([`Pipeline::sink`]) and are written in
//! batches by one task; pushed results call [`Pipeline::ingest`] and are answered only after
//! their batch is committed. Both paths end in [`Pipeline::commit`], so there is one order of
//! effects for every observation: committed, then visible.

use crate::{LiveState, Metrics};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vitals_core::Observation;
use vitals_store::{Store, StoreError};

/// Capacity of the probe-result channel; a full channel slows probes down (backpressure)
/// rather than growing memory.
const QUEUE: usize = 16_384;
/// Most observations committed in one store call from the probe path.
const BATCH: usize = 4_096;

#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Msg>,
}

enum Msg {
    Obs(Observation),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

impl Pipeline {
    /// Starts the batching task for probe results. It ends when every sender is dropped, after
    /// committing what was queued.
    pub fn start(
        store: Arc<dyn Store>,
        state: Arc<LiveState>,
        metrics: Arc<Metrics>,
    ) -> (Pipeline, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let p = Pipeline {
            store,
            state,
            metrics,
            tx,
        };
        let worker = p.clone_without_sender();
        let handle = tokio::spawn(async move { worker.run(rx).await });
        (p, handle)
    }

    /// A handle that cannot keep the channel open (used by the worker itself).
    fn clone_without_sender(&self) -> Worker {
        Worker {
            store: self.store.clone(),
            state: self.state.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Queues a probe observation; waits only when the queue is full (backpressure).
    pub async fn submit(&self, obs: Observation) {
        if self.tx.send(Msg::Obs(obs)).await.is_err() {
            tracing::error!("pipeline stopped; observation dropped");
        }
    }

    /// Returns once everything submitted before the call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Observations waiting to be committed.
    pub fn queued(&self) -> usize {
        QUEUE - self.tx.capacity()
    }

    /// Commits a batch and applies it to the live state; returns after the commit.
    pub async fn ingest(&self, batch: Vec<Observation>) -> Result<(), StoreError> {
        commit(&*self.store, &self.state, &self.metrics, batch).await
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
}

struct Worker {
    store: Arc<dyn Store>,
    state: Arc<LiveState>,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(BATCH);
        let mut batch = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        loop {
            msgs.clear();
            if rx.recv_many(&mut msgs, BATCH).await == 0 {
                break; // every sender dropped and the queue is drained
            }
            batch.clear();
            for m in msgs.drain(..) {
                match m {
                    Msg::Obs(o) => batch.push(o),
                    Msg::Flush(f) => flushes.push(f),
                }
            }
            self.commit_with_retry(&batch).await;
            for f in flushes.drain(..) {
                let _ = f.send(());
            }
        }
    }

    async fn commit_with_retry(&self, batch: &[Observation]) {
        if batch.is_empty() {
            return;
        }
        {
            let mut attempt = 0u32;
            loop {
                match commit(&*self.store, &self.state, &self.metrics, batch.to_vec()).await {
                    Ok(()) => break,
                    Err(StoreError::Closed) => {
                        tracing::error!(
                            lost = batch.len(),
                            "store closed; observations not stored"
                        );
                        return;
                    }
                    Err(e) => {
                        attempt += 1;
                        if attempt >= 5 {
                            tracing::error!(error = %e, lost = batch.len(), "giving up storing probe observations");
                            // Still show them: the live picture should not lie about targets.
                            self.state.apply(batch);
                            break;
                        }
                        tracing::warn!(error = %e, attempt, "store write failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                }
            }
        }
    }
}

async fn commit(
    store: &dyn Store,
    state: &LiveState,
    metrics: &Metrics,
    batch: Vec<Observation>,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let n = batch.len() as u64;
    // The store consumes the batch; keep a copy for the live state only of what it needs.
    let for_state = batch.clone();
    match store.append(batch).await {
        Ok(()) => {
            metrics.observations_stored.fetch_add(n, Ordering::Relaxed);
            state.apply(&for_state);
            Ok(())
        }
        Err(e) => {
            metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            metrics
                .last_store_error_ms
                .store(crate::now().0, Ordering::Relaxed);
            Err(e)
        }
    }
}
