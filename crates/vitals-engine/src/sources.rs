//! A `[[source_set]]` at work: the list of sources (from the catalogue or a file), the
//! probe-patient assignment, and the re-integration probe of every (source, probe patient).
//!
//! Every source is an asset (`{set}.{source}`, in the set's group) whose check `reintegration`
//! carries one observation per round: availability, fetch time, and which fields differ —
//! never their values. The set itself is an asset whose check `sources` says whether the list
//! could be read.

use crate::compare::{self, Difference, Field};
use crate::db::{Db, Rows};
use crate::store::{EngineStore, Run, Source, SourceDiff};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vitals_config::engine::{FetchConfig, SourceSetConfig};
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_store::AssetRecord;

/// The check of each source asset.
pub const CHECK_REINTEGRATION: &str = "reintegration";
/// The check of the source set's own asset.
pub const CHECK_SOURCES: &str = "sources";
/// Most sources per set.
pub const MAX_SOURCES: usize = 5_000;
/// Candidates read per source and assignment.
const MAX_CANDIDATES: usize = 1_000;

/// The asset id of a source: the set's id, a dot, and the source id with anything an asset id
/// cannot hold replaced by `-` (bounded).
pub fn source_asset(set: &str, source: &str) -> String {
    let clean: String = source
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{set}.{clean}")
}

/// What one re-integration found.
#[derive(Debug, Clone)]
struct Outcome {
    source: String,
    available: bool,
    /// Why the source did not answer (our words, no patient data).
    error: Option<String>,
    /// Why the catalogue's copy could not be read.
    catalogue_error: Option<String>,
    fetch_ms: f64,
    differing: Vec<(String, Difference)>,
}

/// One source set.
pub struct SourceSet {
    pub cfg: SourceSetConfig,
    catalogue: Db,
    fields: Vec<Field>,
    http: reqwest::Client,
    /// Pools of sources answering SQL, by DSN.
    source_dbs: Mutex<HashMap<String, Db>>,
    store: Arc<dyn EngineStore>,
    differ: Status,
    /// The sources listed by the last successful read.
    listed: Mutex<Vec<Source>>,
}

impl SourceSet {
    pub fn new(cfg: SourceSetConfig, store: Arc<dyn EngineStore>) -> Result<SourceSet, String> {
        let catalogue = Db::open(&cfg.catalogue, cfg.concurrency as u32 + 1, cfg.timeout)
            .map_err(|e| format!("source_set {}: catalogue: {e}", cfg.id))?;
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("vitals-engine/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("source_set {}: HTTP client: {e}", cfg.id))?;
        let listed = store
            .sources(&cfg.id)?
            .into_iter()
            .filter(|r| r.gone_at.is_none())
            .map(|r| r.source)
            .collect();
        Ok(SourceSet {
            fields: cfg.fields.iter().map(Field::from_config).collect(),
            differ: if cfg.differ_status == "crit" {
                Status::Crit
            } else {
                Status::Warn
            },
            catalogue,
            http,
            source_dbs: Mutex::new(HashMap::new()),
            store,
            listed: Mutex::new(listed),
            cfg,
        })
    }

    pub fn group(&self) -> String {
        self.cfg
            .group
            .clone()
            .unwrap_or_else(|| self.cfg.id.clone())
    }

    pub fn listed(&self) -> Vec<Source> {
        self.listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The set's asset and one per listed source.
    pub fn assets(&self) -> Vec<AssetRecord> {
        let group = self.group();
        let mut out = vec![AssetRecord {
            id: self.cfg.id.clone(),
            name: self.cfg.name.clone().unwrap_or_else(|| self.cfg.id.clone()),
            groups: vec![group.clone()],
            labels: self.cfg.labels.clone(),
            parents: vec![],
            metadata: serde_json::Map::from_iter([(
                "engine".to_string(),
                serde_json::Value::String("source_set".into()),
            )]),
        }];
        for s in self.listed() {
            let mut labels = self.cfg.labels.clone();
            labels.insert("source_set".into(), self.cfg.id.clone());
            out.push(AssetRecord {
                id: source_asset(&self.cfg.id, &s.id),
                name: if s.name.is_empty() {
                    s.id.clone()
                } else {
                    s.name.clone()
                },
                groups: vec![group.clone()],
                labels,
                parents: vec![],
                metadata: serde_json::Map::from_iter([
                    (
                        "engine".to_string(),
                        serde_json::Value::String("source".into()),
                    ),
                    (
                        "source_set".to_string(),
                        serde_json::Value::String(self.cfg.id.clone()),
                    ),
                    (
                        "source".to_string(),
                        serde_json::Value::String(s.id.clone()),
                    ),
                ]),
            });
        }
        out
    }

    /// Reads the list of sources (query or file).
    pub async fn read_list(&self) -> Result<Vec<Source>, String> {
        let rows = match (&self.cfg.sources_query, &self.cfg.sources_file) {
            (Some(q), _) => self.catalogue.query(q, &[], self.cfg.timeout).await?,
            (None, Some(path)) => read_csv(path)?,
            (None, None) => return Err("no sources_query or sources_file".into()),
        };
        sources_of(&rows)
    }

    /// Reads the list, records appearances and disappearances, and brings the probe-patient
    /// assignment up to date. Returns the observations to publish.
    pub async fn refresh(&self, now: Timestamp) -> (Vec<Observation>, Option<SourceDiff>) {
        let mut out = Vec::new();
        let list = match self.read_list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(set = %self.cfg.id, error = %e, "engine: the source list could not be read");
                out.push(Observation::new(
                    &self.cfg.id,
                    CHECK_SOURCES,
                    now,
                    Status::Crit,
                    format!("source list unreadable: {e}"),
                ));
                return (out, None);
            }
        };
        let diff = match self.store.sync_sources(&self.cfg.id, now, &list) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(set = %self.cfg.id, error = %e, "engine: storing the source list failed");
                return (out, None);
            }
        };
        for s in &diff.appeared {
            tracing::info!(set = %self.cfg.id, source = %s, "engine: source appeared");
        }
        for s in &diff.disappeared {
            tracing::info!(set = %self.cfg.id, source = %s, "engine: source disappeared");
            out.push(Observation::new(
                source_asset(&self.cfg.id, s),
                CHECK_REINTEGRATION,
                now,
                Status::Unknown,
                "no longer listed by the source set",
            ));
        }
        *self.listed.lock().unwrap_or_else(|e| e.into_inner()) = list.clone();
        let mut o = Observation::new(
            &self.cfg.id,
            CHECK_SOURCES,
            now,
            Status::Ok,
            format!("{} sources listed", list.len()),
        );
        o.values = vec![
            Value::new("sources", list.len() as f64),
            Value::new("appeared", diff.appeared.len() as f64),
            Value::new("disappeared", diff.disappeared.len() as f64),
        ];
        out.push(o);
        if let Err(e) = self.assign(now, &list).await {
            tracing::warn!(set = %self.cfg.id, error = %e, "engine: probe-patient assignment incomplete");
        }
        (out, Some(diff))
    }

    /// Keeps every probe patient that still qualifies, releases the others, and fills each
    /// listed source up to `probe_patients` from the assignment query's candidates.
    pub async fn assign(&self, now: Timestamp, list: &[Source]) -> Result<(), String> {
        let set = &self.cfg.id;
        let active = self.store.assignments(set)?;
        let listed: HashSet<&str> = list.iter().map(|s| s.id.as_str()).collect();
        for a in active
            .iter()
            .filter(|a| !listed.contains(a.source.as_str()))
        {
            self.store
                .release(set, &a.source, &a.patient, now, "source no longer listed")?;
        }
        let mut first_error = None;
        for s in list {
            let mine: Vec<&str> = active
                .iter()
                .filter(|a| a.source == s.id)
                .map(|a| a.patient.as_str())
                .collect();
            if let Err(e) = self.assign_source(now, s, &mine).await {
                first_error.get_or_insert(format!("{}: {e}", s.id));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn assign_source(&self, now: Timestamp, s: &Source, mine: &[&str]) -> Result<(), String> {
        let set = &self.cfg.id;
        let timeout = self.cfg.timeout;
        let mut candidates: Option<Vec<String>> = None;
        let mut kept: Vec<String> = Vec::new();
        for p in mine {
            let qualifies = match &self.cfg.qualify_query {
                Some(q) => {
                    let rows = self
                        .catalogue
                        .query(q, &[("source", &s.id), ("patient", p)], timeout)
                        .await?;
                    !rows.rows.is_empty()
                }
                None => {
                    if candidates.is_none() {
                        candidates = Some(self.candidates(&s.id).await?);
                    }
                    candidates
                        .as_ref()
                        .is_some_and(|c| c.iter().any(|x| x == p))
                }
            };
            if qualifies {
                kept.push(p.to_string());
            } else {
                self.store
                    .release(set, &s.id, p, now, "no longer qualifies")?;
                tracing::info!(set = %set, source = %s.id, "engine: probe patient no longer qualifies; replacing it");
            }
        }
        if kept.len() >= self.cfg.probe_patients {
            return Ok(());
        }
        let candidates = match candidates {
            Some(c) => c,
            None => self.candidates(&s.id).await?,
        };
        for c in candidates {
            if kept.len() >= self.cfg.probe_patients {
                break;
            }
            if kept.contains(&c) || mine.contains(&c.as_str()) {
                continue;
            }
            self.store.assign(set, &s.id, &c, now)?;
            tracing::info!(set = %set, source = %s.id, "engine: probe patient assigned");
            kept.push(c);
        }
        Ok(())
    }

    async fn candidates(&self, source: &str) -> Result<Vec<String>, String> {
        let rows = self
            .catalogue
            .query(
                &self.cfg.assign_query,
                &[("source", source)],
                self.cfg.timeout,
            )
            .await?;
        Ok(rows
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .filter(|p| !p.is_empty() && p.len() <= 200)
            .take(MAX_CANDIDATES)
            .collect())
    }

    /// Re-integrates every (listed source, probe patient) once, records the runs and returns
    /// one observation per listed source.
    pub async fn probe_round(self: &Arc<Self>, now: Timestamp) -> Vec<Observation> {
        let list = self.listed();
        let assignments = match self.store.assignments(&self.cfg.id) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(set = %self.cfg.id, error = %e, "engine: reading assignments failed");
                return Vec::new();
            }
        };
        let sem = Arc::new(tokio::sync::Semaphore::new(self.cfg.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let by_id: HashMap<&str, &Source> = list.iter().map(|s| (s.id.as_str(), s)).collect();
        for a in &assignments {
            let Some(source) = by_id.get(a.source.as_str()) else {
                continue;
            };
            let (me, source, patient, sem) = (
                self.clone(),
                (*source).clone(),
                a.patient.clone(),
                sem.clone(),
            );
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                me.reintegrate(&source, &patient).await
            });
        }
        let mut outcomes: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(o) => outcomes.entry(o.source.clone()).or_default().push(o),
                Err(e) => tracing::error!(error = %e, "engine: a re-integration task failed"),
            }
        }
        let runs: Vec<Run> = outcomes
            .values()
            .flatten()
            .map(|o| Run {
                time: now,
                source: o.source.clone(),
                available: o.available,
                compared: o.available && o.catalogue_error.is_none(),
                fetch_ms: o.fetch_ms,
                differing: o.differing.iter().map(|(f, _)| f.clone()).collect(),
            })
            .collect();
        if let Err(e) = self.store.record_runs(&self.cfg.id, &runs) {
            tracing::error!(set = %self.cfg.id, error = %e, "engine: storing runs failed");
        }
        list.iter()
            .map(|s| {
                let empty = Vec::new();
                let o = outcomes.get(&s.id).unwrap_or(&empty);
                self.observation(now, s, o)
            })
            .collect()
    }

    fn observation(&self, now: Timestamp, s: &Source, outs: &[Outcome]) -> Observation {
        let asset = source_asset(&self.cfg.id, &s.id);
        let n = outs.len();
        if n == 0 {
            let mut o = Observation::new(
                asset,
                CHECK_REINTEGRATION,
                now,
                Status::Unknown,
                "no probe patient: no patient in the catalogue qualifies for this source",
            );
            o.values = vec![Value::new("probe_patients", 0.0)];
            return o;
        }
        let up: Vec<&Outcome> = outs.iter().filter(|o| o.available).collect();
        let compared: Vec<&Outcome> = up
            .iter()
            .copied()
            .filter(|o| o.catalogue_error.is_none())
            .collect();
        let correct = compared.iter().filter(|o| o.differing.is_empty()).count();
        let mut differing: Vec<&str> = Vec::new();
        for f in &self.fields {
            if compared
                .iter()
                .any(|o| o.differing.iter().any(|(d, _)| *d == f.name))
            {
                differing.push(&f.name);
            }
        }
        let first_error = outs
            .iter()
            .find_map(|o| o.error.clone())
            .unwrap_or_default();
        let (mut status, mut reason) = if up.is_empty() {
            (Status::Crit, format!("source unavailable: {first_error}"))
        } else if up.len() < n {
            (
                Status::Warn,
                format!(
                    "source unavailable for {} of {n} probe patients: {first_error}",
                    n - up.len()
                ),
            )
        } else {
            (Status::Ok, String::new())
        };
        if !differing.is_empty() {
            status = status.worst(self.differ);
            let text = format!("fields differ: {}", differing.join(", "));
            reason = if reason.is_empty() {
                text
            } else {
                format!("{reason}; {text}")
            };
        }
        if !up.is_empty() && compared.is_empty() {
            let cat = up
                .iter()
                .find_map(|o| o.catalogue_error.clone())
                .unwrap_or_default();
            status = status.worst(Status::Unknown);
            let text = format!("catalogue copy unreadable: {cat}");
            reason = if reason.is_empty() {
                text
            } else {
                format!("{reason}; {text}")
            };
        }
        if reason.is_empty() {
            reason = if n == 1 {
                "1 probe patient re-integrated; all fields agree".into()
            } else {
                format!("{n} probe patients re-integrated; all fields agree")
            };
        }
        let mut o = Observation::new(asset, CHECK_REINTEGRATION, now, status, reason);
        let max_ms = up.iter().map(|o| o.fetch_ms).fold(0.0, f64::max);
        o.duration_us = (max_ms * 1000.0) as u64;
        o.values = vec![
            Value::new("probe_patients", n as f64),
            Value::new("available", up.len() as f64 / n as f64),
            Value::new("fields_differing", differing.len() as f64),
        ];
        if !up.is_empty() {
            o.values.push(Value::new("fetch_ms", max_ms));
        }
        if !compared.is_empty() {
            o.values.push(Value::new(
                "correct",
                correct as f64 / compared.len() as f64,
            ));
        }
        o.components = self
            .fields
            .iter()
            .filter(|_| !compared.is_empty())
            .map(|f| {
                let diffs: Vec<Difference> = compared
                    .iter()
                    .filter_map(|o| {
                        o.differing
                            .iter()
                            .find(|(d, _)| *d == f.name)
                            .map(|(_, k)| *k)
                    })
                    .collect();
                let output = match diffs.first() {
                    None => String::new(),
                    Some(k) => format!(
                        "{} for {} of {} probe patients",
                        match k {
                            Difference::Value => "differs",
                            Difference::MissingAtSource => "missing at the source",
                            Difference::MissingInCatalogue => "missing in the catalogue",
                        },
                        diffs.len(),
                        compared.len()
                    ),
                };
                Component {
                    name: f.name.clone(),
                    status: if diffs.is_empty() {
                        Status::Ok
                    } else {
                        self.differ
                    },
                    value: None,
                    output,
                }
            })
            .collect();
        o
    }

    /// Fetches one patient from the source and from the catalogue (at once) and compares.
    async fn reintegrate(&self, s: &Source, patient: &str) -> Outcome {
        let started = Instant::now();
        let source_side = async {
            let r = self.fetch(s, patient).await;
            (r, started.elapsed())
        };
        let params = [("source", s.id.as_str()), ("patient", patient)];
        let catalogue_side =
            self.catalogue
                .query(&self.cfg.catalogue_query, &params, self.cfg.timeout);
        let ((fetched, took), cat) = tokio::join!(source_side, catalogue_side);
        let mut out = Outcome {
            source: s.id.clone(),
            available: false,
            error: None,
            catalogue_error: None,
            fetch_ms: took.as_secs_f64() * 1000.0,
            differing: Vec::new(),
        };
        let answer = match fetched {
            Ok(a) => a,
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        out.available = true;
        let cat = match cat {
            Ok(rows) => rows,
            Err(e) => {
                out.catalogue_error = Some(e);
                return out;
            }
        };
        let cat_row = |col: &str| -> Option<String> {
            let i = cat.column(col)?;
            cat.rows.first()?.get(i).cloned().flatten()
        };
        out.differing = match &answer {
            Answer::Json(doc) => {
                compare::compare(&self.fields, &|p| compare::json_text(doc, p), &cat_row)
            }
            Answer::Row(rows) => compare::compare(
                &self.fields,
                &|c| {
                    let i = rows.column(c)?;
                    rows.rows.first()?.get(i).cloned().flatten()
                },
                &cat_row,
            ),
            Answer::NotFound => compare::compare(&self.fields, &|_| None, &cat_row),
        };
        out
    }

    async fn fetch(&self, s: &Source, patient: &str) -> Result<Answer, String> {
        match &self.cfg.fetch {
            FetchConfig::Http {
                url,
                headers,
                max_body_bytes,
            } => {
                let url = expand(url, s, patient, true);
                let mut req = self.http.get(&url);
                for (k, v) in headers {
                    req = req.header(k.as_str(), expand(v, s, patient, false));
                }
                let mut resp = req
                    .send()
                    .await
                    .map_err(|e| http_error(&e, self.cfg.timeout))?;
                let status = resp.status();
                if status == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Answer::NotFound);
                }
                if !status.is_success() {
                    return Err(format!("HTTP {}", status.as_u16()));
                }
                let mut body: Vec<u8> = Vec::new();
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| http_error(&e, self.cfg.timeout))?
                {
                    if body.len() + chunk.len() > *max_body_bytes {
                        return Err(format!("answer larger than {max_body_bytes} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                serde_json::from_slice(&body)
                    .map(Answer::Json)
                    .map_err(|e| format!("answer is not JSON ({e})"))
            }
            FetchConfig::Sql { dsn, query } => {
                let dsn = expand(dsn, s, patient, false);
                let db = {
                    let mut dbs = self.source_dbs.lock().unwrap_or_else(|e| e.into_inner());
                    match dbs.get(&dsn) {
                        Some(db) => db.clone(),
                        None => {
                            let db = Db::open(&dsn, 2, self.cfg.timeout)?;
                            if dbs.len() < MAX_SOURCES {
                                dbs.insert(dsn.clone(), db.clone());
                            }
                            db
                        }
                    }
                };
                let rows = db
                    .query(
                        query,
                        &[("source", &s.id), ("patient", patient)],
                        self.cfg.timeout,
                    )
                    .await?;
                if rows.rows.is_empty() {
                    Ok(Answer::NotFound)
                } else {
                    Ok(Answer::Row(rows))
                }
            }
        }
    }
}

/// What a source answered.
enum Answer {
    Json(serde_json::Value),
    Row(Rows),
    /// The source does not know the patient (HTTP 404, no row): every field is missing there.
    NotFound,
}

fn http_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else if e.is_redirect() {
        "too many redirects".into()
    } else {
        "the answer broke off".into()
    }
}

/// Fills `{source}`, `{patient}` and `{source.COLUMN}` in a template; in URLs, values are
/// percent-encoded.
pub fn expand(t: &str, s: &Source, patient: &str, url: bool) -> String {
    let enc = |v: &str| -> String {
        if url {
            url::form_urlencoded::byte_serialize(v.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        } else {
            v.to_string()
        }
    };
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let key = &after[..j];
        match key {
            "source" => out.push_str(&enc(&s.id)),
            "patient" => out.push_str(&enc(patient)),
            k if k.starts_with("source.") => {
                let col = &k["source.".len()..];
                match s.attrs.get(col) {
                    // An attribute that is a base URL is used as written.
                    Some(v) if url && (v.starts_with("http://") || v.starts_with("https://")) => {
                        out.push_str(v.trim_end_matches('/'))
                    }
                    Some(v) => out.push_str(&enc(v)),
                    None if col == "name" => out.push_str(&enc(&s.name)),
                    None => {}
                }
            }
            _ => {
                out.push('{');
                out.push_str(key);
                out.push('}');
            }
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Sources from rows: column `id` (or the first), optional `name`, the rest attributes.
pub fn sources_of(rows: &Rows) -> Result<Vec<Source>, String> {
    if rows.rows.len() > MAX_SOURCES {
        return Err(format!("more than {MAX_SOURCES} sources listed"));
    }
    let id_col = rows.column("id").unwrap_or(0);
    let name_col = rows.column("name");
    let mut out: Vec<Source> = Vec::with_capacity(rows.rows.len());
    for r in &rows.rows {
        let Some(Some(id)) = r.get(id_col) else {
            continue;
        };
        let id = id.trim().to_string();
        if id.is_empty() || id.len() > 200 || out.iter().any(|s| s.id == id) {
            continue;
        }
        let mut attrs = BTreeMap::new();
        for (i, c) in rows.columns.iter().enumerate() {
            if i != id_col && Some(i) != name_col {
                if let Some(Some(v)) = r.get(i) {
                    attrs.insert(c.clone(), v.clone());
                }
            }
        }
        out.push(Source {
            name: name_col
                .and_then(|i| r.get(i).cloned().flatten())
                .unwrap_or_default(),
            id,
            attrs,
        });
    }
    Ok(out)
}

/// A CSV file with a header line as rows.
fn read_csv(path: &std::path::Path) -> Result<Rows, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > 16 * 1024 * 1024 {
        return Err(format!("{} is larger than 16 MiB", path.display()));
    }
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let columns: Vec<String> = rd
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Rows {
        columns,
        rows: Vec::new(),
    };
    for rec in rd.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        rows.rows.push(
            rec.iter()
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .collect(),
        );
        if rows.rows.len() > MAX_SOURCES {
            return Err(format!("more than {MAX_SOURCES} sources listed"));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_source_patient_and_attributes() {
        let s = Source {
            id: "H 1".into(),
            name: "Hospital".into(),
            attrs: BTreeMap::from([("base".to_string(), "http://127.0.0.1:9/fhir/".to_string())]),
        };
        assert_eq!(
            expand(
                "{source.base}/Patient/{patient}?src={source}",
                &s,
                "P/1",
                true
            ),
            "http://127.0.0.1:9/fhir/Patient/P%2F1?src=H%201"
        );
        assert_eq!(expand("{patient}-{nope}", &s, "p", false), "p-{nope}");
    }

    #[test]
    fn source_rows_become_sources() {
        let rows = Rows {
            columns: vec!["name".into(), "id".into(), "base".into()],
            rows: vec![
                vec![Some("A".into()), Some("a".into()), Some("http://x".into())],
                vec![None, Some("b".into()), None],
                vec![Some("dup".into()), Some("a".into()), None],
                vec![Some("no id".into()), None, None],
            ],
        };
        let s = sources_of(&rows).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "A");
        assert_eq!(s[0].attrs["base"], "http://x");
        assert!(s[1].attrs.is_empty());
        assert_eq!(source_asset("rts", "St. Mary/ED"), "rts.St.-Mary-ED");
    }
}
