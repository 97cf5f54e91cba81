//! An emulated AKTIN broker for tests, the benchmark and `vitals demo`: an axum server on
//! `127.0.0.1:0` with its state in memory.
//!
//! It implements the admin API Vitals polls (`/broker/status`, `/broker/node`,
//! `/broker/node/{id}`, `/broker/node/{id}/stats`, `/broker/node/{id}/{resource}`, with the
//! admin key as `Authorization: Bearer …`; a missing or wrong key, or a node key, gets 401; an
//! unknown node 404) and the nodes' side, `PUT /broker/my/node/{resource}` with the node's own
//! key (answer 204; a PUT replaces the resource and counts as contact), so tests can play nodes.
//!
//! Knobs per node: statistics, resources, last contact, and a [`Fault`] (404, malformed XML,
//! an HTTP status, or a slow answer). [`Emulator::populate`] and [`Emulator::advance`] run
//! simulated nodes (steady imports, restarts, error bursts, silence, no imports, outdated
//! versions) deterministically, without randomness.

use crate::xml::{self, ImportError, ImportStats, NodeEntry};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use vitals_core::Timestamp;

/// How a node's admin endpoints misbehave.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Every admin call about the node answers 404.
    NotFound,
    /// The statistics are not XML.
    Malformed,
    /// Every admin call about the node answers this status.
    Status(u16),
    /// Every admin call about the node waits this long first.
    Slow(Duration),
}

/// What a simulated node does on each [`Emulator::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Only what a test sets.
    Manual,
    /// Imports steadily, few errors.
    Steady,
    /// Imports steadily; its data warehouse restarts every seventh day.
    Restarts,
    /// Imports, with a burst of invalid documents every fifth day.
    ErrorBursts,
    /// Imports for its first [`ACTIVE_DAYS`] days, then keeps contacting the broker but
    /// imports nothing.
    NoImports,
    /// Imports for its first [`ACTIVE_DAYS`] days, then stops contacting the broker.
    Silent,
    /// Imports steadily with an old data-warehouse version.
    Outdated,
}

/// One emulated node.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub id: u64,
    /// The node's own API key (for `PUT /broker/my/node/…`).
    pub key: String,
    pub client_dn: String,
    pub last_contact: Option<Timestamp>,
    /// The structured statistics [`Emulator::set_stats`] renders into `raw["stats"]`.
    pub stats: Option<ImportStats>,
    /// Resource name → body as uploaded (`stats` included).
    pub raw: BTreeMap<String, String>,
    pub fault: Option<Fault>,
    pub behaviour: Behaviour,
    /// The last day `advance` handled, for once-a-day events.
    last_day: Option<i64>,
    /// Days `advance` has seen this node on.
    days_seen: u32,
}

/// Days a `NoImports` or `Silent` node works before it stops.
pub const ACTIVE_DAYS: u32 = 4;

struct Shared {
    admin_key: String,
    nodes: Mutex<BTreeMap<u64, SimNode>>,
    /// Time used for contacts made by PUTs (`None`: the wall clock).
    clock: Mutex<Option<Timestamp>>,
    requests: AtomicU64,
}

impl Shared {
    fn nodes(&self) -> MutexGuard<'_, BTreeMap<u64, SimNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn now(&self) -> Timestamp {
        let fixed = *self.clock.lock().unwrap_or_else(|e| e.into_inner());
        fixed.unwrap_or_else(vitals_core::SystemClock::now)
    }
}

/// A running emulated broker. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The data-warehouse version simulated nodes run (outdated ones run `OLD_DWH`).
pub const CURRENT_DWH: &str = "1.5.1";
pub const OLD_DWH: &str = "1.5.1rc1";

impl Emulator {
    /// Starts an empty broker on `127.0.0.1:0` with this admin key.
    pub async fn start(admin_key: &str) -> std::io::Result<Emulator> {
        Self::start_on(
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
            admin_key,
        )
        .await
    }

    /// Starts an empty broker on a loopback address.
    pub async fn start_on(addr: SocketAddr, admin_key: &str) -> std::io::Result<Emulator> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::other(
                "the emulated broker only listens on loopback",
            ));
        }
        let shared = Arc::new(Shared {
            admin_key: admin_key.to_string(),
            nodes: Mutex::new(BTreeMap::new()),
            clock: Mutex::new(None),
            requests: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/broker/status", get(status).head(status))
            .route("/broker/node", get(node_list))
            .route("/broker/node/{id}", get(node_get))
            .route("/broker/node/{id}/{resource}", get(node_resource))
            .route("/broker/my/node/{resource}", put(node_put))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "emulated broker stopped");
            }
        });
        Ok(Emulator { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Fixes the time PUTs record as contact (`None`: the wall clock).
    pub fn set_clock(&self, now: Option<Timestamp>) {
        *self.shared.clock.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Adds (or resets) a node; returns its own API key.
    pub fn add_node(&self, id: u64, common_name: &str) -> String {
        let key = format!("node-key-{id}");
        self.shared.nodes().insert(
            id,
            SimNode {
                id,
                key: key.clone(),
                client_dn: format!("CN={common_name},O=Emulated Hospital,L=Loopback"),
                last_contact: None,
                stats: None,
                raw: BTreeMap::new(),
                fault: None,
                behaviour: Behaviour::Manual,
                last_day: None,
                days_seen: 0,
            },
        );
        key
    }

    pub fn remove_node(&self, id: u64) {
        self.shared.nodes().remove(&id);
    }

    fn with<R>(&self, id: u64, f: impl FnOnce(&mut SimNode) -> R) -> Option<R> {
        self.shared.nodes().get_mut(&id).map(f)
    }

    pub fn set_contact(&self, id: u64, at: Option<Timestamp>) {
        self.with(id, |n| n.last_contact = at);
    }

    /// Sets the node's statistics (rendered as its `stats` resource).
    pub fn set_stats(&self, id: u64, stats: ImportStats) {
        self.with(id, |n| {
            n.raw.insert("stats".into(), xml::render_stats(&stats));
            n.stats = Some(stats);
        });
    }

    /// Changes the node's statistics in place (a node without any starts from zero at `start`).
    pub fn update_stats(&self, id: u64, start: Timestamp, f: impl FnOnce(&mut ImportStats)) {
        self.with(id, |n| {
            let mut s = n.stats.clone().unwrap_or_else(|| empty_stats(start));
            f(&mut s);
            n.raw.insert("stats".into(), xml::render_stats(&s));
            n.stats = Some(s);
        });
    }

    /// Sets a properties resource (`versions`, `rscript`, `python`, `import-scripts`).
    pub fn set_resource(&self, id: u64, name: &str, entries: &BTreeMap<String, String>) {
        self.with(id, |n| {
            n.raw
                .insert(name.to_string(), xml::render_properties(name, entries));
        });
    }

    /// Sets a resource body as is (e.g. broken XML).
    pub fn set_raw(&self, id: u64, name: &str, body: &str) {
        self.with(id, |n| {
            n.raw.insert(name.to_string(), body.to_string());
        });
    }

    pub fn remove_resource(&self, id: u64, name: &str) {
        self.with(id, |n| {
            n.raw.remove(name);
        });
    }

    pub fn set_fault(&self, id: u64, fault: Option<Fault>) {
        self.with(id, |n| n.fault = fault);
    }

    pub fn set_behaviour(&self, id: u64, b: Behaviour) {
        self.with(id, |n| n.behaviour = b);
    }

    /// A copy of one node.
    pub fn node(&self, id: u64) -> Option<SimNode> {
        self.shared.nodes().get(&id).cloned()
    }

    /// Adds `count` simulated nodes with ids from 0, their behaviour by `id % 10`: 0–4 steady,
    /// 5 restarts, 6 error bursts, 7 no imports, 8 silent, 9 outdated; `steady_only` makes
    /// them all steady (the benchmark). Each starts at `now` with its resources uploaded.
    pub fn populate(&self, count: u64, now: Timestamp, steady_only: bool) {
        for id in 0..count {
            let behaviour = if steady_only {
                Behaviour::Steady
            } else {
                match id % 10 {
                    5 => Behaviour::Restarts,
                    6 => Behaviour::ErrorBursts,
                    7 => Behaviour::NoImports,
                    8 => Behaviour::Silent,
                    9 => Behaviour::Outdated,
                    _ => Behaviour::Steady,
                }
            };
            self.add_node(id, &format!("[{id}] Emulated Clinic {id}"));
            let dwh = if behaviour == Behaviour::Outdated {
                OLD_DWH
            } else {
                CURRENT_DWH
            };
            let versions: BTreeMap<String, String> = [
                ("os", "Ubuntu 22.04.4 LTS"),
                ("java", "Ubuntu/11.0.22"),
                ("dwh-j2ee", &format!("dwh-j2ee-{dwh}")),
                ("postgres", "14.11"),
                ("apache2", "2.4.52"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            self.set_resource(id, "versions", &versions);
            let r: BTreeMap<String, String> =
                [("r-base-core", "4.1.2"), ("r-cran-tidyverse", "1.3.1")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            self.set_resource(id, "rscript", &r);
            self.set_behaviour(id, behaviour);
            self.update_stats(id, now.add_millis(-3_600_000), |_| {});
            self.set_contact(id, Some(now));
        }
        self.advance(now);
    }

    /// broker-monitor's node mapping (JSON) for simulated nodes `0..count`, as `populate`
    /// names them, with each clinic's own people ([`clinic_domain`]): the emergency
    /// department's main contact and a second one who is not (so not mailed), and IT — whose
    /// second address opted out on every third node. For tests and the demo, to see one mail
    /// per clinic.
    pub fn mapping_json(count: u64) -> String {
        let mut m = serde_json::Map::new();
        for id in 0..count {
            let d = clinic_domain(id);
            let mut it = vec![
                serde_json::json!({"EMAIL": format!("it@{d}"), "NAME": "IT-Service", "ROLE": "it"}),
            ];
            if id % 3 == 0 {
                it.push(serde_json::json!({"EMAIL": format!("former-it@{d}"), "ROLE": "it", "OPTED_OUT": true}));
            }
            let mut contacts = vec![
                serde_json::json!({"EMAIL": format!("notaufnahme@{d}"), "NAME": format!("Dr. Leitung {id}"), "ROLE": "ed", "MAIN": true}),
                serde_json::json!({"EMAIL": format!("pflege@{d}"), "NAME": "Pflegeleitung", "ROLE": "ed"}),
            ];
            contacts.extend(it);
            m.insert(
                id.to_string(),
                serde_json::json!({
                    "COMMON_NAME": format!("[{id}] Emulated Clinic {id}"),
                    "LONG_NAME": format!("Klinikum Emulation {id}"),
                    "JIRA_LABELS": [format!("emulated-{id}")],
                    "HOSPITAL_INFORMATION_SYSTEM": "EmuKIS",
                    "IMPORT_INTERFACE": if id % 2 == 0 { "Direkt" } else { "Kommunikationsserver" },
                    "CONTACTS": contacts,
                }),
            );
        }
        serde_json::Value::Object(m).to_string()
    }

    /// One step of the simulation at `now` (call it before each collection).
    pub fn advance(&self, now: Timestamp) {
        let day = crate::daily::day_of(now);
        let mut nodes = self.shared.nodes();
        for n in nodes.values_mut() {
            let new_day = n.last_day != Some(day);
            n.last_day = Some(day);
            if new_day {
                n.days_seen += 1;
            }
            let active = n.days_seen <= ACTIVE_DAYS;
            let id = n.id;
            let mut s = n.stats.clone().unwrap_or_else(|| empty_stats(now));
            let steady = |s: &mut ImportStats| {
                let k = 40 + (id % 17) as i64;
                s.imported += k;
                s.updated += k / 8;
                s.last_write = Some(now);
            };
            match n.behaviour {
                Behaviour::Manual => continue,
                Behaviour::Silent if !active => continue,
                Behaviour::Steady | Behaviour::Outdated | Behaviour::Silent => steady(&mut s),
                Behaviour::NoImports if active => steady(&mut s),
                Behaviour::Restarts => {
                    if new_day && day % 7 == 0 {
                        s = empty_stats(now);
                    }
                    steady(&mut s);
                }
                Behaviour::ErrorBursts => {
                    steady(&mut s);
                    if (day + id as i64) % 5 == 0 {
                        // Some bursts are moderate (yellow), most extreme (red).
                        s.invalid += if id % 20 == 16 { 3 } else { 12 };
                        s.last_reject = Some(now);
                        let text =
                            format!("CDA validation failed: missing encounter id (day {day})");
                        match s.errors.iter_mut().find(|e| e.content == text) {
                            Some(e) => {
                                e.repeats += 1;
                                e.time = now;
                            }
                            None => s.errors.push(ImportError {
                                time: now,
                                repeats: 1,
                                content: text,
                            }),
                        }
                        // The broker keeps only the last few errors.
                        let excess = s.errors.len().saturating_sub(20);
                        s.errors.drain(..excess);
                    }
                }
                Behaviour::NoImports => {}
            }
            n.last_contact = Some(now);
            n.raw.insert("stats".into(), xml::render_stats(&s));
            n.stats = Some(s);
        }
    }
}

/// The mail domain of simulated node `id`'s clinic (see [`Emulator::mapping_json`]).
pub fn clinic_domain(id: u64) -> String {
    format!("clinic-{id}.example.org")
}

fn empty_stats(start: Timestamp) -> ImportStats {
    ImportStats {
        start,
        last_write: None,
        last_reject: None,
        imported: 0,
        updated: 0,
        invalid: 0,
        failed: 0,
        errors: Vec::new(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

/// Whether the request carries the admin key (counted as a request either way).
fn is_admin(shared: &Shared, headers: &HeaderMap) -> bool {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    bearer(headers) == Some(shared.admin_key.as_str())
}

fn unauthorized() -> Response {
    plain(StatusCode::UNAUTHORIZED, "unauthorized")
}

fn unknown_node() -> Response {
    plain(StatusCode::NOT_FOUND, "node not found")
}

async fn status(State(shared): State<Arc<Shared>>, method: Method) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if method == Method::HEAD {
        return StatusCode::OK.into_response();
    }
    xml_response(
        StatusCode::OK,
        format!(
            "<broker-status xmlns=\"{}\"><timestamp>{}</timestamp><node-software><module id=\"broker-api\"><version>emulated</version></module></node-software></broker-status>",
            xml::NS,
            shared.now().to_rfc3339()
        ),
    )
}

fn entry(n: &SimNode) -> NodeEntry {
    NodeEntry {
        id: n.id.to_string(),
        client_dn: Some(n.client_dn.clone()),
        last_contact: n.last_contact,
        last_contact_raw: n.last_contact.map(|t| t.to_rfc3339()),
    }
}

async fn node_list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !is_admin(&shared, &headers) {
        return unauthorized();
    }
    let entries: Vec<NodeEntry> = shared.nodes().values().map(entry).collect();
    xml_response(StatusCode::OK, xml::render_node_list(&entries))
}

/// The node, if the id names one.
fn lookup(shared: &Shared, id: &str) -> Option<SimNode> {
    let id: u64 = id.parse().ok()?;
    shared.nodes().get(&id).cloned()
}

/// Applies a node's fault; `Some` is the answer to give instead.
async fn fault(node: &SimNode, resource: Option<&str>) -> Option<Response> {
    match &node.fault {
        None => None,
        Some(Fault::NotFound) => Some(plain(StatusCode::NOT_FOUND, "node not found")),
        Some(Fault::Status(code)) => Some(plain(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "emulated failure",
        )),
        Some(Fault::Malformed) if resource == Some("stats") => Some(xml_response(
            StatusCode::OK,
            "<import-statistics><start>2024-01-01T00:00:00Z</start><imported>".into(),
        )),
        Some(Fault::Malformed) => None,
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(*d).await;
            None
        }
    }
}

async fn node_get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !is_admin(&shared, &headers) {
        return unauthorized();
    }
    let Some(node) = lookup(&shared, &id) else {
        return unknown_node();
    };
    if let Some(r) = fault(&node, None).await {
        return r;
    }
    xml_response(StatusCode::OK, xml::render_node(&entry(&node)))
}

async fn node_resource(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((id, resource)): Path<(String, String)>,
) -> Response {
    if !is_admin(&shared, &headers) {
        return unauthorized();
    }
    let Some(node) = lookup(&shared, &id) else {
        return unknown_node();
    };
    if let Some(r) = fault(&node, Some(&resource)).await {
        return r;
    }
    match node.raw.get(&resource) {
        Some(body) => xml_response(StatusCode::OK, body.clone()),
        None => plain(StatusCode::NOT_FOUND, "resource not found"),
    }
}

async fn node_put(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(resource): Path<String>,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let Some(key) = bearer(&headers).map(str::to_string) else {
        return plain(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return plain(StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    let now = shared.now();
    let mut nodes = shared.nodes();
    let Some(node) = nodes.values_mut().find(|n| n.key == key) else {
        return plain(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    if resource == "stats" {
        node.stats = xml::parse_stats(&text).ok();
    }
    node.raw.insert(resource, text);
    node.last_contact = Some(now);
    StatusCode::NO_CONTENT.into_response()
}
