//! `POST /api/v1/results` and the heartbeat pings `/ping/{slug}…`.

use crate::auth::Caller;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value as J};
use std::borrow::Cow;
use std::collections::HashMap;
use vitals_config::UnknownAssets;
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_scheduler::model::{status_of_score, Model};
use vitals_scheduler::{Origin, PushError, Pushed};

/// Longest idempotency key and reason accepted.
const MAX_ID: usize = 200;
const MAX_REASON: usize = 1000;
/// A result more than this far in the future is refused (clock skew allowance).
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// Errors of one batch, each with the field it is about.
#[derive(Default)]
struct Errors(Vec<(String, String)>);

impl Errors {
    fn add(&mut self, field: String, error: impl Into<String>) {
        self.0.push((field, error.into()));
    }

    fn into_response(self) -> Response {
        let first = self.0.first().cloned().unwrap_or_default();
        let list: Vec<J> = self
            .0
            .iter()
            .map(|(f, e)| json!({"field": f, "error": e}))
            .collect();
        (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": if self.0.len() == 1 { first.1.clone() } else { format!("{} invalid fields; first: {}", self.0.len(), first.1) },
                "field": first.0,
                "errors": list,
            })),
        )
            .into_response()
    }
}

/// A JSON value of a result batch, its strings borrowed from the body where they have no
/// escapes: a batch of 500 results parsed into `serde_json::Value` built and dropped ~4,000
/// `String`s and B-tree nodes, ~6 % of P3a's CPU. Objects keep their fields in order; a field
/// given twice counts as its last (as `serde_json::Value` did).
#[derive(Debug)]
enum Raw<'a> {
    Null,
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    Big(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Seq(Vec<Raw<'a>>),
    Map(Vec<(Cow<'a, str>, Raw<'a>)>),
}

impl<'a> Raw<'a> {
    fn get(fields: &'a [(Cow<'a, str>, Raw<'a>)], key: &str) -> Option<&'a Raw<'a>> {
        fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Raw::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Raw::Int(i) => Some(*i as f64),
            Raw::Big(u) => Some(*u as f64),
            Raw::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Raw<'de>, E> {
        Ok(Raw::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Raw<'de>, E> {
        Ok(Raw::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Raw<'de>, E> {
        Ok(i64::try_from(u).map_or(Raw::Big(u), Raw::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Raw<'de>, E> {
        Ok(Raw::Float(f))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Raw::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        let mut v = Vec::with_capacity(map.size_hint().unwrap_or(0).min(16));
        while let Some((k, x)) = map.next_entry::<Key<'de>, Raw<'de>>()? {
            v.push((k.0, x));
        }
        Ok(Raw::Map(v))
    }
}

/// An object's key, borrowed where it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Turns one JSON entry into an observation, or records what is wrong with it.
fn parse_entry(
    e: &Raw,
    path: &str,
    model: &Model,
    now: Timestamp,
    errs: &mut Errors,
) -> Option<Pushed> {
    let Raw::Map(obj) = e else {
        errs.add(path.to_string(), "must be an object");
        return None;
    };
    let get = |k: &str| Raw::get(obj, k);
    let before = errs.0.len();
    const KNOWN: [&str; 9] = [
        "asset",
        "check",
        "status",
        "score",
        "values",
        "time",
        "id",
        "reason",
        "duration_ms",
    ];
    for (k, _) in obj {
        if !KNOWN.contains(&k.as_ref()) {
            errs.add(
                format!("{path}.{k}"),
                format!("unknown field (known: {})", KNOWN.join(", ")),
            );
        }
    }
    let text = |k: &str, errs: &mut Errors| -> Option<String> {
        match get(k) {
            Some(Raw::Str(s)) if valid_id(s) => Some(s.to_string()),
            Some(Raw::Str(s)) => {
                errs.add(
                    format!("{path}.{k}"),
                    format!("{s:?} must be 1–200 characters of letters, digits and - _ . : @"),
                );
                None
            }
            Some(_) => {
                errs.add(format!("{path}.{k}"), "must be a string");
                None
            }
            None => {
                errs.add(format!("{path}.{k}"), "is required");
                None
            }
        }
    };
    let asset = text("asset", errs);
    let check = text("check", errs);
    let status = match get("status") {
        None | Some(Raw::Null) => None,
        Some(Raw::Str(s)) => match Status::parse(s) {
            Some(s) => Some(s),
            None => {
                errs.add(
                    format!("{path}.status"),
                    format!("{s:?} is not ok, warn, crit or unknown"),
                );
                None
            }
        },
        Some(_) => {
            errs.add(format!("{path}.status"), "must be a string");
            None
        }
    };
    let score = match get("score") {
        None | Some(Raw::Null) => None,
        Some(v) => match v.as_i64() {
            Some(s) if s >= 0 => Some(s),
            _ => {
                errs.add(format!("{path}.score"), "must be a non-negative integer");
                None
            }
        },
    };
    let mut values = Vec::new();
    match get("values") {
        None | Some(Raw::Null) => {}
        Some(Raw::Map(m)) if m.len() > model.ingest.max_values => {
            errs.add(
                format!("{path}.values"),
                format!(
                    "{} values; at most {} (ingest.max_values)",
                    m.len(),
                    model.ingest.max_values
                ),
            );
        }
        Some(Raw::Map(m)) => {
            // In name order, a name given twice counting once with its last value, as
            // `serde_json::Value` kept them (the sort is stable: equal names stay in body
            // order). Sorting, not comparing pairs: `max_values` may be large.
            let mut named: Vec<(&str, &Raw)> = m.iter().map(|(k, v)| (k.as_ref(), v)).collect();
            named.sort_by_key(|(k, _)| *k);
            for (i, &(k, v)) in named.iter().enumerate() {
                if named.get(i + 1).is_some_and(|(next, _)| *next == k) {
                    continue;
                }
                let x = match v {
                    Raw::Bool(b) => Some(f64::from(u8::from(*b))),
                    n => n.as_f64().filter(|f| f.is_finite()),
                };
                match x {
                    Some(x) if !k.is_empty() && k.len() <= 100 => {
                        values.push(Value::new(k.to_string(), x))
                    }
                    _ => errs.add(
                        format!("{path}.values.{k}"),
                        "must be a finite number or a boolean, under a name of 1–100 characters",
                    ),
                }
            }
        }
        Some(_) => errs.add(
            format!("{path}.values"),
            "must be an object of name → number",
        ),
    }
    let time = match get("time") {
        None | Some(Raw::Null) => now,
        Some(Raw::Str(s)) => match Timestamp::parse(s) {
            Some(t) => t,
            None => {
                errs.add(
                    format!("{path}.time"),
                    format!("{s:?} is not an RFC 3339 time"),
                );
                now
            }
        },
        Some(n @ (Raw::Int(_) | Raw::Big(_) | Raw::Float(_))) => match n.as_i64() {
            Some(ms) => Timestamp(ms),
            None => {
                errs.add(
                    format!("{path}.time"),
                    "must be epoch milliseconds or RFC 3339",
                );
                now
            }
        },
        Some(_) => {
            errs.add(
                format!("{path}.time"),
                "must be epoch milliseconds or RFC 3339",
            );
            now
        }
    };
    if time.0 < 0 {
        errs.add(format!("{path}.time"), "is before 1970-01-01");
    }
    if time.0 > now.0 + FUTURE_SLACK_MS {
        errs.add(
            format!("{path}.time"),
            "is more than 5 minutes in the future",
        );
    }
    let id = match get("id") {
        None | Some(Raw::Null) => None,
        Some(Raw::Str(s)) if !s.is_empty() && s.len() <= MAX_ID => Some(s.to_string()),
        Some(_) => {
            errs.add(
                format!("{path}.id"),
                format!("must be a string of 1–{MAX_ID} characters"),
            );
            None
        }
    };
    let reason = match get("reason") {
        None | Some(Raw::Null) => String::new(),
        Some(Raw::Str(s)) if s.len() <= MAX_REASON => s.to_string(),
        Some(_) => {
            errs.add(
                format!("{path}.reason"),
                format!("must be a string of at most {MAX_REASON} bytes"),
            );
            String::new()
        }
    };
    let max_ms = model.ingest.max_duration.as_millis() as f64;
    let duration_us = match get("duration_ms") {
        None | Some(Raw::Null) => 0,
        Some(v) => match v.as_f64() {
            Some(ms) if ms.is_finite() && (0.0..=max_ms).contains(&ms) => (ms * 1000.0) as u64,
            Some(ms) if ms.is_finite() && ms > max_ms => {
                errs.add(
                    format!("{path}.duration_ms"),
                    format!("{ms} ms is longer than ingest.max_duration ({max_ms} ms)"),
                );
                0
            }
            _ => {
                errs.add(
                    format!("{path}.duration_ms"),
                    "must be a non-negative number",
                );
                0
            }
        },
    };
    let (asset, check) = (asset?, check?);
    // Score: given, else from the test's score rule and its field, else from the status.
    let rule_score = model.score_rule(&check).and_then(|r| {
        values
            .iter()
            .find(|v| v.name == r.field)
            .and_then(|v| r.score(v.value))
    });
    let score = score.or(rule_score);
    let (status, score) = match (status, score) {
        (Some(st), Some(sc)) => (st, sc),
        (Some(st), None) => (st, st.default_score()),
        (None, Some(sc)) => (status_of_score(sc), sc),
        (None, None) => {
            let hint = model
                .score_rule(&check)
                .map(|r| {
                    format!(
                        ", or the value {:?} for the score rule of {check:?}",
                        r.field
                    )
                })
                .unwrap_or_default();
            errs.add(
                format!("{path}.status"),
                format!("give a status or a score{hint}"),
            );
            return None;
        }
    };
    if errs.0.len() > before {
        return None;
    }
    Some(Pushed {
        obs: Observation {
            asset,
            check,
            time,
            status,
            score,
            duration_us,
            reason,
            values,
            components: Vec::new(),
        },
        id,
    })
}

/// `POST /api/v1/results` — validated as a whole, answered after the batch is durable.
pub async fn post_results(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Response {
    let doc: Raw = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return AppError::bad_request("body", format!("invalid JSON: {e}")).into_response()
        }
    };
    let results = match &doc {
        Raw::Map(fields) => Raw::get(fields, "results"),
        _ => None,
    };
    let Some(Raw::Seq(results)) = results else {
        return AppError::bad_request("results", "the body must be {\"results\": [ … ]}")
            .into_response();
    };
    let model = app.pipeline.model().get();
    if results.is_empty() {
        return AppError::bad_request("results", "is empty").into_response();
    }
    if results.len() > model.max_batch {
        app.metrics().refused(vitals_scheduler::IngestLimit::Batch);
        return AppError::bad_request(
            "results",
            format!(
                "{} results in one batch; at most {} (ingest.max_batch)",
                results.len(),
                model.max_batch
            ),
        )
        .into_response();
    }
    let now = app.now();
    let mut errs = Errors::default();
    let mut items = Vec::with_capacity(results.len());
    for (i, e) in results.iter().enumerate() {
        let path = format!("results[{i}]");
        if let Some(p) = parse_entry(e, &path, &model, now, &mut errs) {
            if model.unknown_assets == UnknownAssets::Reject && !app.state().contains(&p.obs.asset)
            {
                errs.add(
                    format!("{path}.asset"),
                    format!(
                        "unknown asset {:?} (ingest.unknown_assets = \"reject\")",
                        p.obs.asset
                    ),
                );
                continue;
            }
            items.push(p);
        }
    }
    if !errs.0.is_empty() {
        for (limit, name) in [
            (vitals_scheduler::IngestLimit::Values, "ingest.max_values"),
            (
                vitals_scheduler::IngestLimit::Duration,
                "ingest.max_duration",
            ),
        ] {
            if errs.0.iter().any(|(_, e)| e.contains(name)) {
                app.metrics().refused(limit);
            }
        }
        return errs.into_response();
    }
    // A push must not hide what a probe sees: polled checks take pushes only if they say so.
    for (i, p) in items.iter().enumerate() {
        if let Some(why) = app.state().push_refused(&p.obs.asset, &p.obs.check) {
            app.metrics()
                .refused(vitals_scheduler::IngestLimit::PolledCheck);
            return AppError {
                status: StatusCode::CONFLICT,
                error: why,
                field: Some(format!("results[{i}].check")),
            }
            .into_response();
        }
    }
    if let Some(Extension(c)) = &caller {
        if let Some((i, p)) = items
            .iter()
            .enumerate()
            .find(|(_, p)| !c.may_report(&p.obs.asset))
        {
            return AppError {
                status: StatusCode::FORBIDDEN,
                error: format!(
                    "token {:?} may not report for asset {:?}",
                    c.name, p.obs.asset
                ),
                field: Some(format!("results[{i}].asset")),
            }
            .into_response();
        }
    }
    let origin = origin(caller.as_ref().map(|Extension(c)| c));
    match app.pipeline.push_from(items, origin).await {
        Ok(report) => Json(json!({ "accepted": report.accepted, "duplicates": report.duplicates }))
            .into_response(),
        Err(e) => push_error(e),
    }
}

/// Who pushes, for the pipeline's limits.
pub(crate) fn origin(caller: Option<&Caller>) -> Origin {
    match caller {
        Some(c) => Origin {
            token: c.name.clone(),
            max_assets: c.max_assets,
        },
        None => Origin {
            token: "local".into(),
            max_assets: 0,
        },
    }
}

/// A refused push as an answer: a limit is 429 naming it, a store failure 503.
pub(crate) fn push_error(e: PushError) -> Response {
    match e {
        PushError::Limit { limit, message } => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": message, "field": limit.as_str(), "limit": limit.as_str() })),
        )
            .into_response(),
        PushError::Store(e) => AppError::unavailable(e).into_response(),
    }
}

/// Heartbeat pings: `/ping/{slug}`, `/ping/{slug}/start`, `/ping/{slug}/fail`,
/// `/ping/{slug}/{exit_code}`; GET or POST; a short body becomes the reason.
type Peer = Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

fn source(peer: Peer) -> std::net::IpAddr {
    peer.map(|Extension(c)| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

pub async fn ping(
    State(app): State<AppState>,
    Path(slug): Path<String>,
    caller: Option<Extension<Caller>>,
    peer: Peer,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let key = q.get("key").cloned();
    ping_event(app, slug, None, caller, source(peer), key, body).await
}

pub async fn ping_with(
    State(app): State<AppState>,
    Path((slug, event)): Path<(String, String)>,
    caller: Option<Extension<Caller>>,
    peer: Peer,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let key = q.get("key").cloned();
    ping_event(app, slug, Some(event), caller, source(peer), key, body).await
}

async fn ping_event(
    app: AppState,
    slug: String,
    event: Option<String>,
    caller: Option<Extension<Caller>>,
    source: std::net::IpAddr,
    key: Option<String>,
    body: Bytes,
) -> Response {
    if caller.is_none() && key.is_some() && app.protect.edge.is_throttled(source) {
        return crate::auth::throttled(&app, source);
    }
    let Some(hb) = app.heartbeats.get(&slug) else {
        return AppError::not_found(format!("no heartbeat check with slug {slug:?}"))
            .into_response();
    };
    if !app.auth.is_open() {
        match (&caller, key, &hb.key) {
            (Some(Extension(c)), _, _) if c.may_report(&hb.asset) => {}
            (Some(Extension(c)), _, _) => {
                return AppError {
                    status: StatusCode::FORBIDDEN,
                    error: format!("token {:?} may not report for asset {:?}", c.name, hb.asset),
                    field: None,
                }
                .into_response()
            }
            (None, Some(given), Some(own))
                if vitals_config::sha256(given.as_bytes())
                    == vitals_config::sha256(own.as_bytes()) => {}
            (None, given, _) => {
                if given.is_some() {
                    app.protect
                        .edge
                        .auth_failed(source, crate::edge::AuthFailure::PingKey);
                }
                return AppError {
                    status: StatusCode::UNAUTHORIZED,
                    error: "this needs a reporter token or the check's own key (?key=)".into(),
                    field: Some("key".into()),
                }
                .into_response();
            }
        }
    }
    let now = app.now();
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_REASON)])
        .trim()
        .to_string();
    let (status, reason) = match event.as_deref() {
        None => (Status::Ok, text),
        Some("start") => {
            app.heartbeats.started(&slug, now);
            return (StatusCode::OK, "OK\n").into_response();
        }
        Some("fail") => (
            Status::Crit,
            if text.is_empty() {
                "failure reported".to_string()
            } else {
                text
            },
        ),
        Some(code) => match code.parse::<u8>() {
            Ok(0) => (Status::Ok, text),
            Ok(c) => (
                Status::Crit,
                if text.is_empty() {
                    format!("exit code {c}")
                } else {
                    format!("exit code {c}: {text}")
                },
            ),
            Err(_) => {
                return AppError::bad_request(
                    "event",
                    format!("{code:?} is not start, fail or an exit code 0–255"),
                )
                .into_response()
            }
        },
    };
    let mut obs = Observation::new(&hb.asset, &hb.check, now, status, reason);
    if let Some(started) = app.heartbeats.take_start(&slug) {
        obs.duration_us = ((now.0 - started.0).max(0) as u64) * 1000;
        obs.values
            .push(Value::new("run_ms", (now.0 - started.0).max(0) as f64));
    }
    match app.pipeline.push(vec![Pushed { obs, id: None }]).await {
        Ok(_) => (StatusCode::OK, "OK\n").into_response(),
        Err(e) => AppError::unavailable(e).into_response(),
    }
}
