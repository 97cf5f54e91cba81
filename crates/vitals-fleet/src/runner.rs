//! Runs the collector every `interval` inside `vitals serve`: node assets go to the store and
//! the live state, observations through the pipeline (so rules, alerts, silences and notifiers
//! apply to them like to any other check). After each collection ([`After`]): the node mails the
//! alert engine decided are logged (`Sent mail for status … to node id …`), broker-monitor's
//! working directory is brought up to date, and the Confluence pages are.

use crate::collector::{Collector, Cycle, NodeRaw, Settings};
use crate::confluence::{self, SyncNode};
use crate::status::NodeStatus;
use crate::workdir::{SentMail, WorkDir};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use vitals_config::broker::{Contact, NodeMapping};
use vitals_config::BrokerConfig;
use vitals_core::alert::AlertState;
use vitals_core::Timestamp;
use vitals_scheduler::{Pipeline, Pushed};
use vitals_store::{AssetRecord, Store};

/// The store key of the newest node mail already logged.
const MAIL_LOG_KEY: &str = "fleet.mail_log";
/// The store key of what Vitals last wrote to Confluence.
const CONFLUENCE_KEY: &str = "fleet.confluence";
/// Newest notifications looked through for node mails after a collection.
const MAIL_SCAN: usize = 10_000;

/// The first collection runs this long after start (the server is up by then).
const FIRST_DELAY: Duration = Duration::from_secs(5);

/// A collector ready to start: built first, so that a reload can refuse a `[broker]` that cannot
/// work before anything running is replaced.
pub struct Runner {
    collector: Collector,
    after: After,
    interval: Duration,
    store: Arc<dyn Store>,
}

impl Runner {
    pub fn new(cfg: &BrokerConfig, store: Arc<dyn Store>) -> Result<Runner, String> {
        let settings = Settings::from_config(cfg)?;
        let collector = Collector::new(settings, store.clone()).map_err(|e| e.to_string())?;
        let after = After::new(cfg)?;
        let interval = cfg.interval.max(Duration::from_secs(60));
        Ok(Runner {
            collector,
            after,
            interval,
            store,
        })
    }

    /// How long the collector may go without a sign of life before it counts as stalled: a
    /// cycle runs once per interval and its requests time out, so three intervals (at least a
    /// quarter of an hour) mean it hangs.
    pub fn stall_after(&self) -> Duration {
        (self.interval * 3).max(Duration::from_secs(900))
    }

    /// Starts the collector task; it beats `beat` around every cycle.
    pub fn spawn(
        self,
        pipeline: Pipeline,
        beat: vitals_scheduler::liveness::Beat,
    ) -> tokio::task::JoinHandle<()> {
        let Runner {
            collector,
            mut after,
            interval,
            store,
        } = self;
        tokio::spawn(async move {
            let mut published: HashMap<String, AssetRecord> = HashMap::new();
            let start = tokio::time::Instant::now() + FIRST_DELAY;
            let mut tick = tokio::time::interval_at(start, interval);
            // A cycle longer than the interval delays the next one instead of bunching them.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                beat.now();
                tick.tick().await;
                beat.now();
                if !pipeline.role().is_decider() {
                    continue; // among replicas, the decider collects
                }
                let now = pipeline.now();
                let began = std::time::Instant::now();
                match collector.collect_once(now).await {
                    Ok(cycle) => {
                        let (nodes, failed, samples) = (cycle.nodes, cycle.failed, cycle.samples);
                        if let Some(o) = cycle.observations.iter().find(|o| {
                            o.asset == crate::BROKER_ASSET && o.status != vitals_core::Status::Ok
                        }) {
                            tracing::warn!(reason = %o.reason, "fleet: the broker's node list could not be read");
                        }
                        let facts = Facts::of(&cycle);
                        match publish(cycle, &store, &pipeline, &mut published).await {
                            Ok(()) => after.run(now, &facts, &store).await,
                            Err(e) => {
                                tracing::error!(error = %e, "fleet: storing node observations failed")
                            }
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
        })
    }
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
            state.update_records(&updated);
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

/// What the work after a collection needs of it (the rest goes to the pipeline).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub raw: Vec<NodeRaw>,
    pub mapping: NodeMapping,
    pub nodes: Vec<SyncNode>,
}

impl Facts {
    pub fn of(cycle: &Cycle) -> Facts {
        let status: HashMap<&str, NodeStatus> = cycle
            .observations
            .iter()
            .filter(|o| o.check == crate::CHECK_STATUS)
            .filter_map(|o| Some((o.asset.as_str(), NodeStatus::parse(&o.reason)?)))
            .collect();
        let nodes = cycle
            .raw
            .iter()
            .map(|r| {
                let contacts: Vec<Contact> = cycle
                    .assets
                    .iter()
                    .find(|a| a.id == r.id)
                    .and_then(|a| a.metadata.get("contact_list"))
                    .and_then(|v| serde_json::from_value::<Vec<ContactJson>>(v.clone()).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(ContactJson::contact)
                    .collect();
                SyncNode {
                    id: r.id.clone(),
                    status: status.get(r.id.as_str()).copied(),
                    contacts,
                }
            })
            .collect();
        Facts {
            raw: cycle.raw.clone(),
            mapping: cycle.mapping.clone(),
            nodes,
        }
    }
}

/// A contact as the asset metadata `contact_list` holds it.
#[derive(serde::Deserialize)]
struct ContactJson {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: String,
    #[serde(default)]
    main: bool,
    #[serde(default)]
    opted_out: bool,
}

impl ContactJson {
    fn contact(self) -> Option<Contact> {
        let role = match self.role.as_str() {
            "ed" => vitals_config::broker::ContactRole::Ed,
            "it" => vitals_config::broker::ContactRole::It,
            _ => vitals_config::broker::ContactRole::Any,
        };
        Some(Contact {
            email: self.email,
            name: self.name,
            role,
            main: self.main,
            opted_out: self.opted_out,
        })
    }
}

/// The node mails the alert engine made since `since` (newest notification time first seen
/// wins), and per mailed state the nodes in it now with the time of their last mail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailLog {
    pub sent: Vec<SentMail>,
    pub tracking: BTreeMap<&'static str, BTreeMap<String, Timestamp>>,
    /// The newest notification time seen.
    pub newest: Option<Timestamp>,
}

/// Reads the node mails from the notification log (a mail is a notification of a rule whose
/// template family is one of [`crate::MAIL_STATES`]'), and the tracking from the open alerts.
pub async fn mail_log(
    store: &dyn Store,
    since: Timestamp,
) -> Result<MailLog, vitals_store::StoreError> {
    let mut log = MailLog::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut state_of: HashMap<i64, &'static crate::MailState> = HashMap::new();
    let items = store.notifications(None, MAIL_SCAN).await?;
    for it in &items {
        let n = &it.notification;
        let Some(a) = n.alerts.first() else { continue };
        let Some(state) = a.template.as_deref().and_then(crate::mail_state_of_family) else {
            continue;
        };
        state_of.entry(a.alert_id).or_insert(state);
        if n.created > since && seen.insert(n.id.clone()) {
            log.newest = log.newest.max(Some(n.created));
            if let Some(node) = &a.asset {
                log.sent.push(SentMail {
                    node: node.clone(),
                    status: state.status,
                    time: n.created,
                });
            }
        }
    }
    log.sent.reverse(); // oldest first, as the log lines go
    for a in store.open_alerts().await? {
        if !matches!(a.state, AlertState::Firing | AlertState::Acknowledged) || !a.notified {
            continue;
        }
        let (Some(node), Some(last)) = (a.asset.clone(), a.last_notified) else {
            continue;
        };
        let state = match state_of.get(&a.id) {
            Some(s) => Some(*s),
            // Older than the scanned notifications: ask for this alert's own.
            None => store
                .notifications(Some(a.id), 1)
                .await?
                .first()
                .and_then(|it| it.notification.alerts.first())
                .and_then(|v| v.template.as_deref())
                .and_then(crate::mail_state_of_family),
        };
        if let Some(state) = state {
            log.tracking
                .entry(state.tracking_file)
                .or_default()
                .insert(node, last);
        }
    }
    Ok(log)
}

/// The work after each collection: the sent-mail log, the working directory, Confluence.
pub struct After {
    workdir: Option<WorkDir>,
    confluence: Option<confluence::Client>,
    /// The newest node mail logged (`None`: not read from the store yet).
    watermark: Option<Timestamp>,
    memory: Option<confluence::Memory>,
    /// `[broker.confluence] interval` and when the pages were last written.
    confluence_every: Option<Duration>,
    confluence_last: Option<Timestamp>,
}

impl After {
    pub fn new(cfg: &BrokerConfig) -> Result<After, String> {
        Ok(After {
            workdir: cfg.working_dir.as_ref().map(WorkDir::new),
            confluence: cfg
                .confluence
                .as_ref()
                .map(confluence::Client::new)
                .transpose()?,
            watermark: None,
            memory: None,
            confluence_every: cfg.confluence.as_ref().and_then(|c| c.interval),
            confluence_last: None,
        })
    }

    /// Runs after a collection at `now` whose observations are committed.
    pub async fn run(&mut self, now: Timestamp, facts: &Facts, store: &Arc<dyn Store>) {
        let since = match self.watermark {
            Some(w) => w,
            None => match store.job_value(MAIL_LOG_KEY).await {
                Ok(Some(ms)) => Timestamp(ms),
                // First run: what this collection decides, not the whole history.
                Ok(None) => now.add_millis(-1),
                Err(e) => {
                    tracing::warn!(error = %e, "fleet: cannot read the mail log position");
                    now.add_millis(-1)
                }
            },
        };
        let mails = match mail_log(&**store, since).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "fleet: cannot read the node mails");
                MailLog::default()
            }
        };
        for m in &mails.sent {
            tracing::info!(
                node = %m.node,
                status = m.status,
                "Sent mail for status {} to node id {}",
                m.status,
                m.node
            );
        }
        let newest = mails.newest.unwrap_or(since).max(since);
        self.watermark = Some(newest);
        if newest != since {
            if let Err(e) = store.set_job_value(MAIL_LOG_KEY, newest.0).await {
                tracing::warn!(error = %e, "fleet: cannot store the mail log position");
            }
        }
        if let Some(dir) = self.workdir.clone() {
            let raw = facts.raw.clone();
            let written = tokio::task::spawn_blocking(move || {
                let mut w = dir.write_nodes(now, &raw);
                let m = dir.write_mails(&mails.sent, &mails.tracking);
                w.files += m.files;
                w.errors.extend(m.errors);
                w
            })
            .await;
            match written {
                Ok(w) => {
                    for e in w.errors.iter().take(20) {
                        tracing::warn!(problem = %e, "fleet: working directory");
                    }
                    tracing::info!(
                        files = w.files,
                        problems = w.errors.len(),
                        "fleet: working directory written"
                    );
                }
                Err(e) => tracing::error!(error = %e, "fleet: working directory task failed"),
            }
        }
        let due = match (self.confluence_every, self.confluence_last) {
            (Some(every), Some(last)) => now.0.saturating_sub(last.0) >= every.as_millis() as i64,
            _ => true,
        };
        if let Some(client) = self.confluence.as_ref().filter(|_| due) {
            self.confluence_last = Some(now);
            let mut memory = match self.memory.take() {
                Some(m) => m,
                None => match store.job_run(CONFLUENCE_KEY).await {
                    Ok(Some(v)) => serde_json::from_value(v).unwrap_or_default(),
                    _ => confluence::Memory::default(),
                },
            };
            let before = memory.clone();
            let input = confluence::SyncInput {
                now,
                mapping: &facts.mapping,
                nodes: &facts.nodes,
                workdir: self.workdir.as_ref().map(|w| w.root()),
            };
            let report = confluence::sync(client, &**store, &input, &mut memory).await;
            for e in report.errors.iter().take(20) {
                tracing::warn!(problem = %e, "fleet: Confluence");
            }
            tracing::info!(
                created = report.created,
                updated = report.updated,
                unchanged = report.unchanged,
                attached = report.attached,
                problems = report.errors.len(),
                "fleet: Confluence pages written"
            );
            if memory != before {
                match serde_json::to_value(&memory) {
                    Ok(v) => {
                        if let Err(e) = store.set_job_run(CONFLUENCE_KEY, v).await {
                            tracing::warn!(error = %e, "fleet: cannot store the Confluence state");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "fleet: Confluence state"),
                }
            }
            self.memory = Some(memory);
        }
    }
}
