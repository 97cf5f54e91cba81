//! Runs the collector every `interval` inside `vitals serve`: node assets go to the store and
//! the live state, observations through the pipeline (so rules, alerts, silences and notifiers
//! apply to them like to any other check).

use crate::collector::{Collector, Cycle, Settings};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use vitals_config::BrokerConfig;
use vitals_scheduler::{Pipeline, Pushed};
use vitals_store::{AssetRecord, Store};

/// The first collection runs this long after start (the server is up by then).
const FIRST_DELAY: Duration = Duration::from_secs(5);

/// Starts the collector task; fails only on settings that cannot work.
pub fn spawn(
    cfg: &BrokerConfig,
    store: Arc<dyn Store>,
    pipeline: Pipeline,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let settings = Settings::from_config(cfg)?;
    let collector = Collector::new(settings, store.clone()).map_err(|e| e.to_string())?;
    let interval = cfg.interval.max(Duration::from_secs(60));
    Ok(tokio::spawn(async move {
        let mut published: HashMap<String, AssetRecord> = HashMap::new();
        let start = tokio::time::Instant::now() + FIRST_DELAY;
        let mut tick = tokio::time::interval_at(start, interval);
        // A cycle longer than the interval delays the next one instead of bunching them.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = vitals_scheduler::now();
            let began = std::time::Instant::now();
            match collector.collect_once(now).await {
                Ok(cycle) => {
                    let (nodes, failed, samples) = (cycle.nodes, cycle.failed, cycle.samples);
                    if let Some(o) = cycle.observations.iter().find(|o| {
                        o.asset == crate::BROKER_ASSET && o.status != vitals_core::Status::Ok
                    }) {
                        tracing::warn!(reason = %o.reason, "fleet: the broker's node list could not be read");
                    }
                    if let Err(e) = publish(cycle, &store, &pipeline, &mut published).await {
                        tracing::error!(error = %e, "fleet: storing node observations failed");
                    }
                    tracing::info!(
                        nodes,
                        failed,
                        samples,
                        seconds = began.elapsed().as_secs_f64(),
                        "fleet: broker collected"
                    );
                }
                Err(e) => tracing::error!(error = %e, "fleet: collection failed"),
            }
        }
    }))
}

/// Hands a cycle's assets and observations to the running system.
pub async fn publish(
    cycle: Cycle,
    store: &Arc<dyn Store>,
    pipeline: &Pipeline,
    published: &mut HashMap<String, AssetRecord>,
) -> Result<(), vitals_store::StoreError> {
    let state = pipeline.state();
    let changed: Vec<AssetRecord> = cycle
        .assets
        .into_iter()
        .filter(|a| published.get(&a.id) != Some(a))
        .filter(|a| state.asset(&a.id).is_none_or(|s| &s.record != a))
        .collect();
    if !changed.is_empty() {
        store.upsert_assets(&changed).await?;
        let (new, updated): (Vec<AssetRecord>, Vec<AssetRecord>) = changed
            .iter()
            .cloned()
            .partition(|a| !state.contains(&a.id));
        state.ensure_assets(&new);
        if !updated.is_empty() {
            // `sync_config` replaces records; the configured checks are passed back as they
            // are so that nothing else changes.
            let configured: Vec<(String, String, String)> = state
                .read()
                .iter()
                .flat_map(|(id, a)| {
                    a.checks
                        .iter()
                        .filter(|(_, c)| c.configured)
                        .map(move |(name, c)| (id.clone(), name.clone(), c.kind.clone()))
                })
                .collect();
            state.sync_config(&updated, &configured);
        }
        for a in changed {
            published.insert(a.id.clone(), a);
        }
    }
    if !cycle.observations.is_empty() {
        pipeline
            .push(
                cycle
                    .observations
                    .into_iter()
                    .map(|obs| Pushed { obs, id: None })
                    .collect(),
            )
            .await?;
    }
    Ok(())
}
