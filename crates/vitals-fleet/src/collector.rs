//! The broker collector: one [`Collector::collect_once`] polls the broker's admin API, writes
//! the day's samples, errors, resources and resource changes to the store (one transaction),
//! and returns the node assets and their observations for the pipeline.
//!
//! - Nodes are polled concurrently, at most `concurrency` at once; each request is bounded by
//!   the timeout and its body by [`MAX_BODY`]. A failing node — 404, timeout, malformed XML, an
//!   HTTP error — is a `broker` observation on that node; the others go on.
//! - If the node list itself cannot be read, the broker's own asset gets the crit observation
//!   and nothing else changes.
//! - `now` is passed in, so day boundaries are deterministic in tests.
//!
//! Observations per node: `broker` (the poll), `status` (the node status: its word is the
//! reason; values `imports_today`, `error_rate_today`, …, and `notify` = 1 for the states that
//! are mailed), `version` (OUTDATED against the expected version).

use crate::daily::{self, day_of, year_of, ErrorRate};
use crate::history::{diff_resource, merge_errors};
use crate::status::{self, NodeStatus, Thresholds};
use crate::version::{drift, Drift, Version};
use crate::xml::{self, ImportStats, NodeEntry, RawTimes};
use crate::{BROKER_ASSET, CHECK_BROKER, CHECK_STATUS, CHECK_VERSION, GROUP, NODE_KEY, RESOURCES};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vitals_config::broker::{Contact, NodeInfo, NodeMapping};
use vitals_config::BrokerConfig;
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_store::{
    AssetRecord, FleetError, FleetResource, FleetSample, FleetWrite, Store, StoreError,
};

/// Largest answer body read from the broker.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Days of samples a status looks back on (TESTING needs a node's import history).
pub const HISTORY_DAYS: i64 = 400;

/// What the collector needs of `[broker]`, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL ending in `/`.
    pub base: url::Url,
    pub api_key: String,
    pub timeout: Duration,
    pub concurrency: usize,
    pub expected_dwh: Option<Version>,
    /// `expected_dwh_version` and `expected_i2b2_version` as written (for the node mails).
    pub expected_dwh_text: Option<String>,
    pub expected_i2b2: Option<String>,
    pub mapping: Option<PathBuf>,
    /// Node id → contacts from `[broker.contacts]`.
    pub contacts: BTreeMap<String, Vec<Contact>>,
}

impl Settings {
    pub fn from_config(b: &BrokerConfig) -> Result<Settings, String> {
        let mut base =
            url::Url::parse(&b.url).map_err(|e| format!("broker.url {:?}: {e}", b.url))?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let expected_dwh = match &b.expected_dwh_version {
            None => None,
            Some(v) => Some(Version::parse(v).ok_or_else(|| {
                format!("broker.expected_dwh_version: {v:?} is not a version like \"1.5.1\"")
            })?),
        };
        let mut contacts = BTreeMap::new();
        for (node, list) in &b.contacts {
            let list = list
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.to_contact()
                        .map_err(|e| format!("broker.contacts.{node}[{i}]: {e}"))
                })
                .collect::<Result<Vec<Contact>, String>>()?;
            contacts.insert(node.clone(), list);
        }
        Ok(Settings {
            base,
            api_key: b.api_key.clone(),
            timeout: b.timeout,
            concurrency: b.concurrency.max(1),
            expected_dwh,
            expected_dwh_text: b.expected_dwh_version.clone(),
            expected_i2b2: b.expected_i2b2_version.clone(),
            mapping: b.mapping.clone(),
            contacts,
        })
    }
}

/// What one collection produced for the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Cycle {
    /// The broker's asset and one per node.
    pub assets: Vec<AssetRecord>,
    pub observations: Vec<Observation>,
    /// Nodes the broker listed.
    pub nodes: usize,
    /// Nodes whose poll failed.
    pub failed: usize,
    /// Samples written.
    pub samples: usize,
    /// What the broker said, as it said it, per node (for broker-monitor's working directory).
    pub raw: Vec<NodeRaw>,
    /// The mapping used (for the working directory and Confluence).
    pub mapping: NodeMapping,
}

/// One node's answers as the broker wrote them.
#[derive(Debug, Clone)]
pub struct NodeRaw {
    pub id: String,
    /// `last-contact` from the node list.
    pub last_contact: Option<String>,
    /// The statistics and their raw timestamps; `None` when they could not be read.
    pub stats: Option<(ImportStats, RawTimes)>,
    /// The four resources (absent when the statistics failed: they were not asked for).
    pub resources: Vec<(&'static str, RawResource)>,
}

/// One resource fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum RawResource {
    /// The entries in document order.
    Entries(Vec<(String, String)>),
    /// 404: never uploaded (or removed).
    NotFound,
    /// Any other failure (timeout, HTTP error, bad XML).
    Failed(String),
}

/// Why a collection could not run at all (a failing node is an observation, not this).
#[derive(Debug)]
pub enum CollectError {
    Store(StoreError),
    Http(String),
}

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CollectError::Store(e) => write!(f, "fleet store: {e}"),
            CollectError::Http(e) => write!(f, "HTTP client: {e}"),
        }
    }
}

impl std::error::Error for CollectError {}

pub struct Collector {
    client: reqwest::Client,
    settings: Settings,
    store: Arc<dyn Store>,
    mapping: Mutex<NodeMapping>,
}

/// One resource: `Ok(None)` = 404 (never uploaded).
type ResourceFetch = Result<Option<Vec<(String, String)>>, String>;

/// What polling one node brought back.
struct Fetched {
    entry: NodeEntry,
    stats: Result<(ImportStats, RawTimes), String>,
    /// Per resource: `Ok(None)` = 404 (never uploaded).
    resources: Vec<(&'static str, ResourceFetch)>,
    took: Duration,
}

impl Collector {
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<Collector, CollectError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .pool_max_idle_per_host(settings.concurrency)
            .user_agent(concat!("vitals-fleet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CollectError::Http(e.to_string()))?;
        Ok(Collector {
            client,
            settings,
            store,
            mapping: Mutex::new(NodeMapping::default()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Re-reads the mapping file; on error keeps the previous mapping and says why.
    fn refresh_mapping(&self) -> NodeMapping {
        let mut guard = self.mapping.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = &self.settings.mapping {
            match vitals_config::broker::load_mapping(path) {
                Ok(m) => *guard = m,
                Err(errors) => tracing::warn!(
                    errors = %errors.join("; "),
                    "broker.mapping is not readable; keeping the previous mapping"
                ),
            }
        }
        guard.clone()
    }

    /// GET `path` below the base URL. `Ok(None)` for 404.
    async fn get(&self, path: &str) -> Result<Option<String>, String> {
        let url = self
            .settings
            .base
            .join(path)
            .map_err(|e| format!("bad URL {path}: {e}"))?;
        let where_ = format!("/{path}");
        let resp = self
            .client
            .get(url)
            .bearer_auth(&self.settings.api_key)
            .header(reqwest::header::ACCEPT, "application/xml")
            .send()
            .await
            .map_err(|e| describe(&e, &where_, self.settings.timeout))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(format!(
                "401 Unauthorized on {where_} (check broker.api_key)"
            ));
        }
        if !status.is_success() {
            return Err(format!("HTTP {} on {where_}", status.as_u16()));
        }
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| describe(&e, &where_, self.settings.timeout))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!(
                    "answer of {where_} is larger than {MAX_BODY} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map(Some)
            .map_err(|_| format!("answer of {where_} is not UTF-8"))
    }

    async fn fetch_node(&self, entry: NodeEntry) -> Fetched {
        let started = Instant::now();
        let id = entry.id.clone();
        let stats_path = format!("broker/node/{id}/stats");
        let stats = match self.get(&stats_path).await {
            Ok(Some(body)) => {
                xml::parse_stats_raw(&body).map_err(|e| format!("{} in /{stats_path}", e.0))
            }
            Ok(None) => Err(format!("404 Not Found on /{stats_path}")),
            Err(e) => Err(e),
        };
        let mut resources = Vec::with_capacity(RESOURCES.len());
        // A node whose statistics failed is not asked for more: it would fail the same way.
        if stats.is_ok() {
            for name in RESOURCES {
                let path = format!("broker/node/{id}/{name}");
                let r = match self.get(&path).await {
                    Ok(Some(body)) => xml::parse_properties_ordered(&body)
                        .map(Some)
                        .map_err(|e| format!("{} in /{path}", e.0)),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                resources.push((name, r));
            }
        }
        Fetched {
            entry,
            stats,
            resources,
            took: started.elapsed(),
        }
    }

    /// One collection at `now`.
    pub async fn collect_once(&self, now: Timestamp) -> Result<Cycle, CollectError> {
        let mapping = self.refresh_mapping();
        let mut cycle = Cycle::default();
        let broker_asset = AssetRecord {
            id: BROKER_ASSET.into(),
            name: "AKTIN broker".into(),
            groups: vec![GROUP.into()],
            metadata: [(
                "url".to_string(),
                serde_json::Value::String(self.settings.base.to_string()),
            )]
            .into_iter()
            .collect(),
            ..AssetRecord::default()
        };
        cycle.assets.push(broker_asset);
        cycle.mapping = mapping.clone();
        let started = Instant::now();
        let list = match self.get("broker/node").await {
            Ok(Some(body)) => {
                xml::parse_node_list(&body).map_err(|e| format!("{e} in /broker/node"))
            }
            Ok(None) => Err("404 Not Found on /broker/node (is broker.url the broker?)".into()),
            Err(e) => Err(e),
        };
        let entries = match list {
            Ok(l) => l,
            Err(reason) => {
                let mut o = Observation::new(BROKER_ASSET, CHECK_BROKER, now, Status::Crit, reason);
                o.duration_us = micros(started.elapsed());
                cycle.observations.push(o);
                return Ok(cycle);
            }
        };
        let mut o = Observation::new(BROKER_ASSET, CHECK_BROKER, now, Status::Ok, "");
        o.duration_us = micros(started.elapsed());
        o.values.push(Value::new("nodes", entries.len() as f64));
        cycle.observations.push(o);
        cycle.nodes = entries.len();

        let today = day_of(now);
        let year = year_of(now);
        let store = &self.store;
        let (samples, resources, errors) = tokio::try_join!(
            store.fleet_samples(None, today - HISTORY_DAYS, today),
            store.fleet_resources(None),
            store.fleet_errors(None, Some(year), usize::MAX),
        )
        .map_err(CollectError::Store)?;
        let mut samples_by: HashMap<String, Vec<FleetSample>> = HashMap::new();
        for s in samples {
            samples_by.entry(s.node.clone()).or_default().push(s);
        }
        let mut resources_by: HashMap<(String, String), FleetResource> = HashMap::new();
        for r in resources {
            resources_by.insert((r.node.clone(), r.name.clone()), r);
        }
        let mut errors_by: HashMap<String, Vec<FleetError>> = HashMap::new();
        for e in errors {
            errors_by.entry(e.node.clone()).or_default().push(e);
        }

        let fetched: Vec<Fetched> = futures_util::stream::iter(entries)
            .map(|e| self.fetch_node(e))
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;

        let mut write = FleetWrite::default();
        for f in fetched {
            let id = f.entry.id.clone();
            let info = mapping.nodes.get(&id).cloned().unwrap_or_else(|| {
                NodeInfo::unmapped(
                    &f.entry
                        .common_name()
                        .unwrap_or_else(|| format!("node {id}")),
                )
            });
            let mut history = samples_by.remove(&id).unwrap_or_default();

            // The poll itself.
            let mut problems: Vec<String> = Vec::new();
            if let Err(e) = &f.stats {
                problems.push(e.clone());
            }
            for (_, r) in &f.resources {
                if let Err(e) = r {
                    problems.push(e.clone());
                }
            }
            let mut poll = match problems.first() {
                None => Observation::new(&id, CHECK_BROKER, now, Status::Ok, ""),
                Some(p) => Observation::new(&id, CHECK_BROKER, now, Status::Crit, p.clone()),
            };
            poll.duration_us = micros(f.took);
            if !problems.is_empty() {
                cycle.failed += 1;
            }
            cycle.observations.push(poll);
            cycle.raw.push(NodeRaw {
                id: id.clone(),
                last_contact: f.entry.last_contact_raw.clone(),
                stats: f.stats.as_ref().ok().cloned(),
                resources: f
                    .resources
                    .iter()
                    .map(|(name, r)| {
                        let raw = match r {
                            Ok(Some(entries)) => RawResource::Entries(entries.clone()),
                            Ok(None) => RawResource::NotFound,
                            Err(e) => RawResource::Failed(e.clone()),
                        };
                        (*name, raw)
                    })
                    .collect(),
            });

            // Today's sample and errors.
            if let Ok((stats, _)) = &f.stats {
                let contact = f
                    .entry
                    .last_contact
                    .or_else(|| history.last().and_then(|s| s.last_contact));
                let sample =
                    daily::build_sample(&id, now, contact, stats, daily::previous(&history, today));
                write.samples.push(sample.clone());
                cycle.samples += 1;
                daily::upsert(&mut history, sample);
                let incoming: Vec<FleetError> = stats
                    .errors
                    .iter()
                    .filter(|e| year_of(e.time) == year)
                    .map(|e| FleetError {
                        node: id.clone(),
                        year,
                        time: e.time,
                        repeats: e.repeats,
                        content: e.content.clone(),
                    })
                    .collect();
                let known = errors_by.remove(&id).unwrap_or_default();
                write.errors.extend(merge_errors(&known, &incoming));
            }

            // Resources and their changes.
            for (name, r) in &f.resources {
                let key = (id.clone(), name.to_string());
                let old = resources_by.get(&key).map(|r| &r.entries);
                let new = match r {
                    Ok(Some(m)) => m.iter().cloned().collect(),
                    // Gone from the broker after it was there: every key is removed.
                    Ok(None) if old.is_some_and(|o| !o.is_empty()) => BTreeMap::new(),
                    _ => continue,
                };
                if old == Some(&new) {
                    continue;
                }
                write
                    .changes
                    .extend(diff_resource(&id, name, now, old, &new));
                let res = FleetResource {
                    node: id.clone(),
                    name: name.to_string(),
                    fetched: now,
                    entries: new,
                };
                resources_by.insert(key, res.clone());
                write.resources.push(res);
            }

            // Status, from the history including today.
            let thresholds = Thresholds {
                failure_hours: i64::from(info.threshold_hours_failure),
                consecutive_days: info.consecutive_import_days as usize,
            };
            let contact = f
                .entry
                .last_contact
                .or_else(|| history.last().and_then(|s| s.last_contact));
            if let Some(st) = status::evaluate(&history, contact, now, thresholds) {
                cycle
                    .observations
                    .push(status_observation(&id, now, st, &history, contact));
            }

            // Version drift.
            let dwh = resources_by
                .get(&(id.clone(), "versions".to_string()))
                .and_then(|r| r.entries.get("dwh-j2ee").cloned());
            let live = LiveFacts {
                last_contact: contact,
                last_write: status::last_write(&history),
                dwh_version: dwh.clone(),
            };
            cycle.assets.push(self.asset(&f.entry, &info, &live));
            if let Some(o) = version_observation(
                &id,
                now,
                dwh.as_deref(),
                self.settings.expected_dwh.as_ref(),
            ) {
                cycle.observations.push(o);
            }
        }
        self.store
            .fleet_write(write)
            .await
            .map_err(CollectError::Store)?;
        Ok(cycle)
    }

    /// The asset of a node: name from the mapping (else the certificate's CN), group `aktin`,
    /// JIRA labels as labels, the mapping's fields, the contacts and what the node mails say
    /// (last contact and write, versions) as metadata.
    fn asset(&self, entry: &NodeEntry, info: &NodeInfo, live: &LiveFacts) -> AssetRecord {
        use serde_json::Value as J;
        let mut meta = serde_json::Map::new();
        meta.insert(NODE_KEY.into(), J::String(entry.id.clone()));
        if let Some(dn) = &entry.client_dn {
            meta.insert("client_dn".into(), J::String(dn.clone()));
        }
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                meta.insert(k.into(), J::String(v.clone()));
            }
        };
        put("long_name", &info.long_name);
        put(
            "hospital_information_system",
            &info.hospital_information_system,
        );
        put("import_interface", &info.import_interface);
        meta.insert(
            "threshold_hours_failure".into(),
            J::from(info.threshold_hours_failure),
        );
        meta.insert(
            "consecutive_import_days".into(),
            J::from(info.consecutive_import_days),
        );
        meta.insert(
            "weeks_notification_interval".into(),
            J::from(info.weeks_notification_interval),
        );
        // Per-node re-notify interval, for rules that honour an asset's `reminder`.
        meta.insert(
            "reminder".into(),
            J::String(format!("{}w", info.weeks_notification_interval)),
        );
        let ids = |m: &BTreeMap<String, String>| -> J {
            J::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::String(v.clone())))
                    .collect(),
            )
        };
        if !info.root.is_empty() {
            meta.insert("root".into(), ids(&info.root));
        }
        if !info.format.is_empty() {
            meta.insert("format".into(), ids(&info.format));
        }
        if !info.jira_labels.is_empty() {
            meta.insert(
                "jira_labels".into(),
                J::Array(info.jira_labels.iter().cloned().map(J::String).collect()),
            );
        }
        let mut contacts: Vec<Contact> = info.contacts.clone();
        for c in self.settings.contacts.get(&entry.id).into_iter().flatten() {
            if !contacts
                .iter()
                .any(|x| x.email.eq_ignore_ascii_case(&c.email))
            {
                contacts.push(c.clone());
            }
        }
        if !contacts.is_empty() {
            // Who is mailed (broker-monitor's rule: the emergency department's main contacts
            // and IT, minus those who opted out) — what the e-mail notifier reads …
            meta.insert(
                "contacts".into(),
                J::Array(
                    vitals_config::broker::recipients(&contacts)
                        .into_iter()
                        .map(J::String)
                        .collect(),
                ),
            );
            // … and everyone with their role, for the node's page.
            meta.insert(
                "contact_list".into(),
                serde_json::to_value(&contacts).unwrap_or(J::Null),
            );
        }
        let mut put_time = |k: &str, t: Option<Timestamp>| {
            if let Some(t) = t {
                meta.insert(k.into(), J::String(t.to_rfc3339()));
            }
        };
        put_time("last_contact", live.last_contact);
        put_time("last_write", live.last_write);
        let mut put_text = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                meta.insert(k.into(), J::String(v.clone()));
            }
        };
        put_text("dwh_version", &live.dwh_version);
        put_text("expected_dwh_version", &self.settings.expected_dwh_text);
        put_text("expected_i2b2_version", &self.settings.expected_i2b2);
        AssetRecord {
            id: entry.id.clone(),
            name: info.common_name.clone(),
            groups: vec![GROUP.into()],
            labels: info
                .jira_labels
                .iter()
                .map(|l| (l.clone(), "true".to_string()))
                .collect(),
            parents: Vec::new(),
            metadata: meta,
        }
    }
}

/// What a node's mails say about it now.
struct LiveFacts {
    last_contact: Option<Timestamp>,
    last_write: Option<Timestamp>,
    dwh_version: Option<String>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A reqwest error as a short, stable reason.
fn describe(e: &reqwest::Error, at: &str, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timeout after {} on {at}", humanize(timeout))
    } else if e.is_connect() {
        format!("cannot connect to the broker for {at}")
    } else if e.is_body() || e.is_decode() {
        format!("broken answer on {at}")
    } else {
        format!("request for {at} failed: {e}")
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The `status` observation of a node.
pub fn status_observation(
    node: &str,
    now: Timestamp,
    st: NodeStatus,
    history: &[FleetSample],
    contact: Option<Timestamp>,
) -> Observation {
    let mut o = Observation::new(
        node,
        CHECK_STATUS,
        now,
        st.observation_status(),
        st.as_str(),
    );
    let mut v = |name: &str, x: f64| o.values.push(Value::new(name, x));
    if let Some(s) = history.last().filter(|s| s.day == day_of(now)) {
        if let Some(d) = s.daily {
            v("imports_today", d.imported as f64);
            v("updates_today", d.updated as f64);
            v("invalid_today", d.invalid as f64);
            v("failed_today", d.failed as f64);
        }
        if let Some(r) = daily::daily_rate(s) {
            v("error_rate_today", r.percent());
        }
        if let Some(r) = daily::total_rate(s) {
            v("error_rate", r.percent());
        }
    }
    if let Some(r) = daily::mean_daily_rate(history, day_of(now) - 6) {
        v("error_rate_7d", r.percent());
    }
    if let Some(c) = contact {
        v("hours_since_contact", daily::hours(c, now) as f64);
    }
    if let Some(w) = status::last_write(history) {
        v("hours_since_write", daily::hours(w, now) as f64);
    }
    v("notify", if st.notifies() { 1.0 } else { 0.0 });
    for value in [crate::VALUE_OFFLINE, crate::VALUE_NO_IMPORTS] {
        v(
            value,
            if st.mail_value() == Some(value) {
                1.0
            } else {
                0.0
            },
        );
    }
    o
}

/// The `version` observation of a node, if there is anything to say.
pub fn version_observation(
    node: &str,
    now: Timestamp,
    dwh_j2ee: Option<&str>,
    expected: Option<&Version>,
) -> Option<Observation> {
    let (status, reason, notify) = match drift(dwh_j2ee, expected) {
        Drift::Current(v) => (Status::Ok, format!("dwh-j2ee {v}"), false),
        Drift::Outdated { have, want } => (
            Status::Warn,
            format!("OUTDATED: dwh-j2ee {have} < expected {want}"),
            true,
        ),
        Drift::Unparseable(raw) => (
            Status::Unknown,
            format!("unparseable version {raw:?}"),
            false,
        ),
        Drift::Missing if expected.is_some() => (
            Status::Unknown,
            "no dwh-j2ee version uploaded".to_string(),
            false,
        ),
        Drift::Missing => return None,
    };
    let mut o = Observation::new(node, CHECK_VERSION, now, status, reason);
    let flag = if notify { 1.0 } else { 0.0 };
    o.values.push(Value::new("notify", flag));
    o.values.push(Value::new(crate::VALUE_OUTDATED, flag));
    Some(o)
}

/// A rate for JSON: two decimals as a number.
pub fn rate_json(r: Option<ErrorRate>) -> serde_json::Value {
    match r {
        Some(r) => serde_json::json!(r.percent()),
        None => serde_json::Value::Null,
    }
}
