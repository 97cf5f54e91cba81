//! Site agents (`vitals agent`): probing from inside networks the server cannot reach, and from
//! several places at once.
//!
//! - `GET /api/v1/agent/checks`: the checks of the caller's location (`[[check]] locations`),
//!   as their TOML text, with a version (ETag; `If-None-Match` answers 304).
//! - `POST /api/v1/agent/results`: the agent's results (whole observations with idempotency
//!   ids) and its own figures (version, buffer depth, dropped results, clock offset). Each
//!   result becomes the observation of `{check}@{location}`; with it the server commits the
//!   check's verdict `{check}` by quorum over the latest observation of every location.
//! - `GET /api/v1/agents`: every location with last seen, version, buffer and clock offset.
//!
//! An agent is an asset (`agent-{location}`, check `agent`): `ok` while it reports, `crit`
//! once it has not been seen for `[ingest] agent_stale_after` — then its checks are `unknown`
//! ("agent site-a not seen for 2 min"), never `crit`, and the verdicts leave it out.
//!
//! Pushes of one request and the verdicts computed from them are committed together; requests
//! are serialised (one lock) so two locations reporting at once both count in the verdict.

use crate::auth::Caller;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vitals_config::{agent_asset, Config, Located};
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_scheduler::{Origin, Pushed};

/// The routes an agent token may use (and nothing else).
pub const ROUTES: &[&str] = &["/api/v1/agent/checks", "/api/v1/agent/results"];

/// The check an agent reports itself as, on its asset `agent-{location}`.
pub const AGENT_CHECK: &str = "agent";

/// Most results in one agent request.
pub const MAX_BATCH: usize = 5_000;
const MAX_REASON: usize = 1_000;
const MAX_COMPONENTS: usize = 200;
const MAX_VERSION: usize = 100;
/// A result more than this far in the future (by the server's clock) is refused.
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;
/// The agent's own observation is committed at most this often while nothing changes.
const SELF_EVERY_MS: i64 = 10_000;

/// `{check}@{location}`: the observation of one location.
pub fn at(check: &str, location: &str) -> String {
    format!("{check}@{location}")
}

/// The checks agents add to the live state: `{check}@{location}` per location (they take no
/// pushes but the agents'), and every agent's own `agent-{location}/agent`.
pub fn configured(cfg: &Config) -> Vec<vitals_scheduler::ConfiguredCheck> {
    let mut out = Vec::new();
    let mut locations = std::collections::BTreeSet::new();
    for c in &cfg.checks {
        let Some(loc) = &c.locations else { continue };
        for l in &loc.locations {
            out.push(vitals_scheduler::ConfiguredCheck::new(
                &c.asset,
                at(&c.name, l),
                c.kind.type_name(),
            ));
            locations.insert(l.clone());
        }
    }
    locations.extend(cfg.tokens.iter().filter_map(|t| t.location.clone()));
    for l in locations {
        out.push(vitals_scheduler::ConfiguredCheck::new(
            agent_asset(&l),
            AGENT_CHECK,
            AGENT_CHECK,
        ));
    }
    out
}

/// What the configuration assigns to agents (replaced on reload).
#[derive(Debug, Default)]
struct Assignment {
    /// Per location: the version and the TOML text of its checks.
    texts: BTreeMap<String, (String, String)>,
    /// Located checks by (asset, name).
    checks: HashMap<(String, String), Located>,
    /// Every location that has an agent token or a check.
    locations: Vec<String>,
    stale_after: Duration,
}

/// What the server knows of one agent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Seen {
    pub location: String,
    /// Last accepted request (server time); `None`: never since this server started.
    pub last_seen: Option<Timestamp>,
    pub version: String,
    pub buffer_depth: u64,
    pub dropped: u64,
    /// The agent's clock minus the server's, in ms, as the agent measured it.
    pub clock_offset_ms: i64,
    /// Not seen for longer than `agent_stale_after`: its checks are `unknown`.
    pub stale: bool,
    #[serde(skip)]
    self_at: i64,
}

/// The agents' registry, shared by the handlers and the staleness watch.
#[derive(Default)]
pub struct Agents {
    assignment: Mutex<Arc<Assignment>>,
    seen: Mutex<BTreeMap<String, Seen>>,
    /// One request (or staleness round) at a time computes verdicts and commits them.
    commit: tokio::sync::Mutex<()>,
}

impl Agents {
    /// Takes the agent part of a (new) configuration.
    pub fn configure(&self, cfg: &Config) {
        let mut a = Assignment {
            stale_after: cfg.ingest.agent_stale_after,
            ..Default::default()
        };
        let mut texts: BTreeMap<String, String> = BTreeMap::new();
        for t in &cfg.tokens {
            if let Some(l) = &t.location {
                texts.entry(l.clone()).or_default();
            }
        }
        for c in &cfg.checks {
            let Some(loc) = &c.locations else { continue };
            for l in &loc.locations {
                let text = texts.entry(l.clone()).or_default();
                text.push_str("[[check]]\n");
                text.push_str(&loc.source);
                text.push('\n');
            }
            a.checks
                .insert((c.asset.clone(), c.name.clone()), loc.clone());
        }
        a.locations = texts.keys().cloned().collect();
        a.texts = texts
            .into_iter()
            .map(|(l, t)| {
                let digest = vitals_config::sha256(t.as_bytes());
                let version: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                (l, (version, t))
            })
            .collect();
        *self.assignment.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(a);
    }

    fn assignment(&self) -> Arc<Assignment> {
        self.assignment
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every known location and what was last heard from its agent.
    pub fn list(&self) -> Vec<Seen> {
        let a = self.assignment();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        a.locations
            .iter()
            .map(|l| {
                seen.get(l).cloned().unwrap_or_else(|| Seen {
                    location: l.clone(),
                    ..Default::default()
                })
            })
            .collect()
    }

    fn is_stale(&self, location: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(location)
            .is_some_and(|s| s.stale)
    }
}

/// The location a request acts for: the agent token's own; an admin (or, without tokens, the
/// local caller) names it.
fn location_of(caller: Option<&Caller>, named: Option<&str>) -> Result<String, AppError> {
    match (caller.and_then(|c| c.location.clone()), named) {
        (Some(own), Some(n)) if n != own => Err(AppError {
            status: StatusCode::FORBIDDEN,
            error: format!("this token is the agent token of location {own:?}, not {n:?}"),
            field: Some("location".into()),
        }),
        (Some(own), _) => Ok(own),
        (None, Some(n)) if caller.is_none_or(|c| c.role == vitals_config::Role::Admin) => {
            Ok(n.to_string())
        }
        (None, _) => Err(AppError {
            status: StatusCode::FORBIDDEN,
            error: "this needs an agent token ([[token]] location = \"…\")".into(),
            field: Some("location".into()),
        }),
    }
}

#[derive(Deserialize)]
pub struct ChecksQuery {
    location: Option<String>,
}

/// `GET /api/v1/agent/checks` — the caller's location's checks, versioned.
pub async fn checks(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    Query(q): Query<ChecksQuery>,
) -> Response {
    let location = match location_of(caller.as_ref().map(|c| &c.0), q.location.as_deref()) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let a = app.agents.assignment();
    let Some((version, text)) = a.texts.get(&location) else {
        return AppError::not_found(format!(
            "no check and no agent token names location {location:?}"
        ))
        .into_response();
    };
    let etag = format!("\"{version}\"");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    (
        [(header::ETAG, etag_header)],
        Json(json!({
            "location": location,
            "version": version,
            "stale_after_s": a.stale_after.as_secs(),
            "checks": text,
        })),
    )
        .into_response()
}

/// The agent's own figures, sent with every request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentInfo {
    #[serde(default)]
    location: Option<String>,
    version: String,
    #[serde(default)]
    buffer_depth: u64,
    #[serde(default)]
    dropped: u64,
    #[serde(default)]
    clock_offset_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentResult {
    /// Idempotency key: a replayed result is recognised and not committed twice.
    id: String,
    obs: Observation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBatch {
    agent: AgentInfo,
    #[serde(default)]
    results: Vec<AgentResult>,
}

fn bad(field: String, error: impl Into<String>) -> Response {
    AppError::bad_request(&field, error).into_response()
}

/// What is wrong with one result, if anything.
fn check_result(
    r: &AgentResult,
    i: usize,
    now: Timestamp,
    max_values: usize,
) -> Result<(), (String, String)> {
    let p = format!("results[{i}]");
    if !crate::ingest::valid_id(&r.id) {
        return Err((
            format!("{p}.id"),
            "must be 1–200 characters of letters, digits and - _ . : @".into(),
        ));
    }
    let o = &r.obs;
    if o.time.0 < 0 || o.time.0 > now.0 + FUTURE_SLACK_MS {
        return Err((
            format!("{p}.obs.time"),
            "is before 1970 or more than 5 minutes ahead of the server's clock".into(),
        ));
    }
    if o.reason.len() > MAX_REASON {
        return Err((
            format!("{p}.obs.reason"),
            format!("longer than {MAX_REASON} bytes"),
        ));
    }
    if o.values.len() > max_values {
        return Err((
            format!("{p}.obs.values"),
            format!(
                "{} values; at most {max_values} (ingest.max_values)",
                o.values.len()
            ),
        ));
    }
    if o.values
        .iter()
        .any(|v| !v.value.is_finite() || v.name.len() > 100)
        || o.components.len() > MAX_COMPONENTS
        || o.components
            .iter()
            .any(|c| c.name.len() > 200 || c.output.len() > MAX_REASON)
    {
        return Err((
            format!("{p}.obs"),
            format!("values must be finite with names of at most 100 bytes; at most {MAX_COMPONENTS} components"),
        ));
    }
    Ok(())
}

/// The latest observation per location of one located check: (status, reason, time).
type Latest = BTreeMap<String, (Status, String, Timestamp)>;

/// The verdict of a check from the latest observation of each location.
pub fn verdict(
    loc: &Located,
    latest: &Latest,
    stale: &dyn Fn(&str) -> bool,
) -> (Status, String, Vec<Value>) {
    let mut failing = Vec::new();
    let mut warn = Vec::new();
    let mut fine = Vec::new();
    let mut unseen = Vec::new();
    for l in &loc.locations {
        match latest.get(l) {
            Some(_) if stale(l) => unseen.push(l.as_str()),
            Some((Status::Crit, reason, _)) => failing.push((l.as_str(), reason.as_str())),
            Some((Status::Warn, reason, _)) => warn.push((l.as_str(), reason.as_str())),
            Some((Status::Ok, _, _)) => fine.push(l.as_str()),
            Some((Status::Unknown, _, _)) | None => unseen.push(l.as_str()),
        }
    }
    let values = vec![
        Value::new("locations_crit", failing.len() as f64),
        Value::new("locations_ok", fine.len() as f64),
        Value::new("locations_unknown", unseen.len() as f64),
    ];
    let names = |v: &[(&str, &str)]| v.iter().map(|x| x.0).collect::<Vec<_>>().join(", ");
    let (status, reason) = if failing.len() >= loc.quorum {
        (
            Status::Crit,
            format!(
                "crit from {} (quorum {}): {}",
                names(&failing),
                loc.quorum,
                failing[0].1
            ),
        )
    } else if !failing.is_empty() {
        (
            Status::Warn,
            format!(
                "only {} sees crit ({}); quorum is {}",
                names(&failing),
                failing[0].1,
                loc.quorum
            ),
        )
    } else if !warn.is_empty() {
        (Status::Warn, format!("{}: {}", names(&warn), warn[0].1))
    } else if !fine.is_empty() {
        let mut r = format!("ok from {}", fine.join(", "));
        if !unseen.is_empty() {
            r.push_str(&format!("; no result from {}", unseen.join(", ")));
        }
        (Status::Ok, r)
    } else {
        (
            Status::Unknown,
            format!("no result from {}", unseen.join(", ")),
        )
    };
    (status, reason, values)
}

/// The latest observation of every location of `asset/name`, from the live state.
fn latest_of(app: &AppState, asset: &str, name: &str, loc: &Located) -> Latest {
    let map = app.state().read();
    let mut out = Latest::new();
    if let Some(a) = map.get(asset) {
        for l in &loc.locations {
            if let Some(o) = a.checks.get(&at(name, l)).and_then(|c| c.latest.as_ref()) {
                out.insert(l.clone(), (o.status, o.reason.clone(), o.time));
            }
        }
    }
    out
}

/// Builds the verdict observations for results of `location` (in order), updating `latests`.
struct Verdicts<'a> {
    app: &'a AppState,
    assignment: &'a Assignment,
    latests: HashMap<(String, String), Latest>,
    /// Verdict times used in this round, so two verdicts never share (asset, check, time).
    used: HashMap<(String, String), Timestamp>,
}

impl<'a> Verdicts<'a> {
    fn new(app: &'a AppState, assignment: &'a Assignment) -> Self {
        Verdicts {
            app,
            assignment,
            latests: HashMap::new(),
            used: HashMap::new(),
        }
    }

    /// `obs` is the observation of `location` for `asset/name` (already renamed).
    /// `None` for a check that is not located (callers checked that it is).
    fn after(
        &mut self,
        asset: &str,
        name: &str,
        location: &str,
        obs: &Observation,
    ) -> Option<Pushed> {
        let key = (asset.to_string(), name.to_string());
        let loc = self.assignment.checks.get(&key)?;
        let latest = self
            .latests
            .entry(key.clone())
            .or_insert_with(|| latest_of(self.app, asset, name, loc));
        if latest.get(location).is_none_or(|l| l.2 <= obs.time) {
            latest.insert(
                location.to_string(),
                (obs.status, obs.reason.clone(), obs.time),
            );
        }
        let agents = &self.app.agents;
        let (status, reason, values) = verdict(loc, latest, &|l| agents.is_stale(l));
        // Two locations reporting in the same millisecond: the later verdict moves by 1 ms.
        let taken = self
            .used
            .get(&key)
            .copied()
            .or_else(|| self.app.state().latest_time(asset, name));
        let time = match taken {
            Some(t) if t >= obs.time && t.0 - obs.time.0 < 1000 => t.add_millis(1),
            _ => obs.time,
        };
        self.used.insert(key, time);
        let mut v = Observation::new(asset, name, time, status, reason);
        v.values = values;
        v.duration_us = obs.duration_us;
        Some(Pushed { obs: v, id: None })
    }
}

/// `POST /api/v1/agent/results`.
pub async fn results(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Response {
    let batch: AgentBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad("body".into(), format!("invalid agent batch: {e}")),
    };
    let location = match location_of(
        caller.as_ref().map(|c| &c.0),
        batch.agent.location.as_deref(),
    ) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    if batch.results.len() > MAX_BATCH {
        return bad(
            "results".into(),
            format!(
                "{} results; at most {MAX_BATCH} in one request",
                batch.results.len()
            ),
        );
    }
    if batch.agent.version.is_empty() || batch.agent.version.len() > MAX_VERSION {
        return bad(
            "agent.version".into(),
            format!("must be 1–{MAX_VERSION} bytes"),
        );
    }
    let a = app.agents.assignment();
    if !a.locations.contains(&location) {
        return AppError::not_found(format!(
            "no check and no agent token names location {location:?}"
        ))
        .into_response();
    }
    let now = app.now();
    let max_values = app.pipeline.model().get().ingest.max_values;
    for (i, r) in batch.results.iter().enumerate() {
        if let Err((field, error)) = check_result(r, i, now, max_values) {
            return bad(field, error);
        }
        let key = (r.obs.asset.clone(), r.obs.check.clone());
        if !a
            .checks
            .get(&key)
            .is_some_and(|l| l.locations.contains(&location))
        {
            return AppError {
                status: StatusCode::FORBIDDEN,
                error: format!(
                    "check {}/{} is not assigned to location {location:?}",
                    key.0, key.1
                ),
                field: Some(format!("results[{i}].obs.check")),
            }
            .into_response();
        }
    }
    let _one = app.agents.commit.lock().await;
    let was_stale = app.agents.is_stale(&location);
    // Seen now, before verdicts are computed: this location counts again.
    let self_due = {
        let mut seen = app.agents.seen.lock().unwrap_or_else(|e| e.into_inner());
        let s = seen.entry(location.clone()).or_insert_with(|| Seen {
            location: location.clone(),
            ..Default::default()
        });
        let changed = s.version != batch.agent.version;
        s.last_seen = Some(now);
        s.version = batch.agent.version.clone();
        s.buffer_depth = batch.agent.buffer_depth;
        s.dropped = batch.agent.dropped;
        s.clock_offset_ms = batch.agent.clock_offset_ms;
        s.stale = false;
        let due = was_stale || changed || now.0 - s.self_at >= SELF_EVERY_MS;
        if due {
            s.self_at = now.0;
        }
        due
    };
    let n = batch.results.len();
    let mut items = Vec::with_capacity(n * 2 + 1);
    let mut verdicts = Vec::with_capacity(n);
    let mut v = Verdicts::new(&app, &a);
    for r in batch.results {
        let mut obs = r.obs;
        let name = std::mem::take(&mut obs.check);
        obs.check = at(&name, &location);
        verdicts.extend(v.after(&obs.asset, &name, &location, &obs));
        items.push(Pushed {
            obs,
            id: Some(r.id),
        });
    }
    drop(v);
    // One verdict per check and request: the one after its newest result. A replayed backlog
    // keeps every location's result; the verdict's history gets one point per batch.
    let mut seen_checks = std::collections::HashSet::new();
    let mut last: Vec<Pushed> = verdicts
        .into_iter()
        .rev()
        .filter(|p| seen_checks.insert((p.obs.asset.clone(), p.obs.check.clone())))
        .collect();
    last.reverse();
    items.extend(last);
    if self_due {
        let info = &batch.agent;
        let mut o = Observation::new(
            agent_asset(&location),
            AGENT_CHECK,
            now,
            Status::Ok,
            format!("agent {location} (vitals {}) reporting", info.version),
        );
        o.values = vec![
            Value::new("buffer_depth", info.buffer_depth as f64),
            Value::new("dropped", info.dropped as f64),
            Value::new("clock_offset_ms", info.clock_offset_ms as f64),
        ];
        items.push(Pushed { obs: o, id: None });
    }
    let origin = match &caller {
        Some(Extension(c)) => Origin {
            token: c.name.clone(),
            max_assets: c.max_assets,
        },
        None => Origin {
            token: "local".into(),
            max_assets: 0,
        },
    };
    match app.pipeline.push_from(items, origin).await {
        Ok(report) => {
            let dup: Vec<usize> = report.duplicates.into_iter().filter(|&i| i < n).collect();
            Json(json!({
                "accepted": n - dup.len(),
                "duplicates": dup,
                "server_time": app.now().0,
            }))
            .into_response()
        }
        Err(vitals_scheduler::PushError::Limit { limit, message }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": message, "field": limit.as_str(), "limit": limit.as_str() })),
        )
            .into_response(),
        Err(vitals_scheduler::PushError::Store(e)) => AppError::unavailable(e).into_response(),
    }
}

/// `GET /api/v1/agents`.
pub async fn list(State(app): State<AppState>) -> Response {
    let stale_after = app.agents.assignment().stale_after.as_secs();
    Json(json!({
        "stale_after_s": stale_after,
        "agents": app.agents.list(),
    }))
    .into_response()
}

/// "2 min", "45 s": how long an agent has not been seen.
fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 120 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// One round of the staleness watch: agents not seen for `agent_stale_after` (since they
/// were last seen, or since the server started) become stale — their asset `crit`, their
/// checks `unknown`, the verdicts recomputed without them.
pub async fn watch_once(app: &AppState, now: Timestamp) -> usize {
    let a = app.agents.assignment();
    let limit = a.stale_after.as_millis() as i64;
    let _one = app.agents.commit.lock().await;
    let mut newly = Vec::new();
    {
        let mut seen = app.agents.seen.lock().unwrap_or_else(|e| e.into_inner());
        for l in &a.locations {
            let s = seen.entry(l.clone()).or_insert_with(|| Seen {
                location: l.clone(),
                ..Default::default()
            });
            let since = s.last_seen.unwrap_or(app.started).max(app.started);
            if !s.stale && now.0 - since.0 > limit {
                s.stale = true;
                newly.push((l.clone(), now.0 - since.0));
            }
        }
    }
    if newly.is_empty() {
        return 0;
    }
    let mut items = Vec::new();
    let mut v = Verdicts::new(app, &a);
    for (l, gone) in &newly {
        let reason = format!("agent {l} not seen for {}", ago(*gone));
        tracing::warn!(location = %l, "{reason}");
        items.push(Pushed {
            obs: Observation::new(agent_asset(l), AGENT_CHECK, now, Status::Crit, &reason),
            id: None,
        });
        for ((asset, name), loc) in &a.checks {
            if loc.locations.contains(l) {
                let o = Observation::new(asset, at(name, l), now, Status::Unknown, &reason);
                let verdict = v.after(asset, name, l, &o);
                items.push(Pushed { obs: o, id: None });
                items.extend(verdict);
            }
        }
    }
    drop(v);
    if let Err(e) = app.pipeline.push(items).await {
        // Not committed: try again next round.
        tracing::error!(error = %e, "agent staleness not committed");
        let mut seen = app.agents.seen.lock().unwrap_or_else(|e| e.into_inner());
        for (l, _) in &newly {
            if let Some(s) = seen.get_mut(l) {
                s.stale = false;
            }
        }
        return 0;
    }
    newly.len()
}

/// The staleness watch, every second.
pub fn spawn_watch(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if app.pipeline.role().is_decider() {
                watch_once(&app, app.now()).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(n: usize, quorum: usize) -> Located {
        Located {
            locations: (0..n).map(|i| format!("site-{i}")).collect(),
            quorum,
            source: String::new(),
        }
    }

    fn latest(statuses: &[Status]) -> Latest {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("site-{i}"), (*s, format!("r{i}"), Timestamp(1))))
            .collect()
    }

    #[test]
    fn quorum_decides_between_crit_and_warn() {
        let l = located(3, 2);
        let none = |_: &str| false;
        let (s, r, _) = verdict(&l, &latest(&[Status::Ok, Status::Ok, Status::Crit]), &none);
        assert_eq!(s, Status::Warn);
        assert!(r.contains("only site-2 sees crit"), "{r}");
        let (s, r, _) = verdict(
            &l,
            &latest(&[Status::Crit, Status::Ok, Status::Crit]),
            &none,
        );
        assert_eq!(s, Status::Crit);
        assert!(r.contains("site-0, site-2"), "{r}");
        let (s, _, _) = verdict(&l, &latest(&[Status::Ok; 3]), &none);
        assert_eq!(s, Status::Ok);
    }

    #[test]
    fn stale_locations_do_not_count() {
        let l = located(2, 1);
        let (s, r, _) = verdict(&l, &latest(&[Status::Crit, Status::Ok]), &|x: &str| {
            x == "site-0"
        });
        assert_eq!(s, Status::Ok, "{r}");
        let (s, r, _) = verdict(&l, &latest(&[Status::Crit, Status::Crit]), &|_: &str| true);
        assert_eq!(s, Status::Unknown, "{r}");
    }
}
