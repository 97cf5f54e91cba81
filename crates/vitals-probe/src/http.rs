//! The HTTP(S) probe: one request on a fresh connection, with timing phases and checks.
//!
//! The client is driven by hand — resolve, TCP connect, TLS handshake (tokio-rustls), then
//! HTTP/1.1 over `hyper::client::conn::http1` — because a probe needs the time of each phase,
//! a precise reason for whatever went wrong, and a hard bound on time and memory against
//! hostile targets. Every probe opens a fresh connection and sends `Connection: close`; the
//! hyper connection future is polled in the probe's own task (no spawned driver).
//!
//! One timer bounds the whole probe; the phase running when it fires names the reason
//! ("timed out after 2s waiting for the first byte"). Bodies are read up to `max_body_bytes`
//! and only kept when a check reads them.
//!
//! Values: `dns_ms`, `connect_ms`, `tls_ms` (https), `ttfb_ms` (request sent → response head),
//! `total_ms`, `status_code`, `body_bytes`, `cert_days_left` (https). When redirects are
//! followed, the phase times are summed over the hops and `cert_days_left` is the smallest.

use crate::health::{self, HealthDoc};
use crate::tls::{self, TlsShared};
use crate::{fmt_duration, Outcome};
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use regex::Regex;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use url::{Position, Url};
use vitals_core::spec::{CaptureSpec, HealthFormat, HttpSpec, JsonCondition};
use vitals_core::{Status, Value};

const USER_AGENT: &str = concat!("vitals/", env!("CARGO_PKG_VERSION"));
/// A captured string is cut to this many bytes.
pub const CAPTURE_MAX: usize = 200;

/// Reads the body of a successful answer: adds failures and values.
pub(crate) type BodyJudge<'a> =
    dyn Fn(&[u8], &mut Vec<(Status, String)>, &mut Vec<Value>) + Send + Sync + 'a;
/// A regex cache bigger than this is cleared: configurations hold a bounded set of patterns.
const MAX_CACHED_REGEXES: usize = 1024;

/// Shared HTTP probe resources: the process-wide TLS configuration and compiled regexes.
/// Built once and reused by every probe.
pub struct HttpProber {
    tls: Arc<TlsShared>,
    regexes: Mutex<HashMap<String, Regex>>,
}

impl Default for HttpProber {
    fn default() -> Self {
        Self::new()
    }
}

// What the probe is doing, for the reason when the timeout fires.
const PHASE_START: u8 = 0;
const PHASE_RESOLVE: u8 = 1;
const PHASE_CONNECT: u8 = 2;
const PHASE_TLS: u8 = 3;
const PHASE_SEND: u8 = 4;
const PHASE_FIRST_BYTE: u8 = 5;
const PHASE_HEADERS: u8 = 6;
const PHASE_BODY: u8 = 7;

fn phase_text(phase: u8) -> &'static str {
    match phase {
        PHASE_RESOLVE => " during DNS resolution",
        PHASE_CONNECT => " while connecting",
        PHASE_TLS => " during TLS handshake",
        PHASE_SEND => " while sending the request",
        PHASE_FIRST_BYTE => " waiting for the first byte",
        PHASE_HEADERS => " reading the response headers",
        PHASE_BODY => " reading the body",
        _ => "",
    }
}

/// Phase times, summed over redirect hops.
#[derive(Default)]
struct Timings {
    dns: Duration,
    connect: Duration,
    tls: Option<Duration>,
    ttfb: Duration,
    cert_days_left: Option<f64>,
    status_code: Option<u16>,
    body_bytes: Option<u64>,
}

/// Why the exchange ended without a response to judge.
struct Failure {
    status: Status,
    reason: String,
}

impl Failure {
    fn crit(reason: impl Into<String>) -> Self {
        Failure {
            status: Status::Crit,
            reason: reason.into(),
        }
    }
    fn unknown(reason: impl Into<String>) -> Self {
        Failure {
            status: Status::Unknown,
            reason: reason.into(),
        }
    }
}

/// The final response.
struct Exchange {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    /// Empty unless a check reads the body.
    body: Vec<u8>,
    /// Warnings and failures found on the way (certificate expiry under `insecure`).
    notes: Vec<(Status, String)>,
}

impl HttpProber {
    pub fn new() -> Self {
        HttpProber {
            tls: tls::shared(),
            regexes: Mutex::new(HashMap::new()),
        }
    }

    /// Runs one HTTP(S) probe bounded by `timeout`. Never fails: every problem is an outcome.
    pub async fn probe(&self, spec: &HttpSpec, timeout: Duration) -> Outcome {
        self.probe_with(spec, timeout, None).await
    }

    /// Like [`probe`](Self::probe), with `body` judging the body of a successful answer (the
    /// `prometheus` check reads expositions this way).
    pub(crate) async fn probe_with(
        &self,
        spec: &HttpSpec,
        timeout: Duration,
        body: Option<&BodyJudge<'_>>,
    ) -> Outcome {
        let started = Instant::now();
        let phase = AtomicU8::new(PHASE_START);
        let mut t = Timings::default();
        let mut extra_values = Vec::new();
        let keep = body.is_some();
        let result = tokio::time::timeout(timeout, self.fetch(spec, keep, &phase, &mut t)).await;
        let total = started.elapsed();

        let (status, reason, components) = match result {
            Err(_) => (
                Status::Crit,
                format!(
                    "timed out after {}{}",
                    fmt_duration(timeout),
                    phase_text(phase.load(Ordering::Relaxed))
                ),
                Vec::new(),
            ),
            Ok(Err(f)) => (f.status, f.reason, Vec::new()),
            Ok(Ok(ex)) => self.judge(spec, ex, total, body, &mut extra_values),
        };

        let mut values = Vec::with_capacity(9 + extra_values.len());
        values.push(Value::new("dns_ms", tls::ms(t.dns)));
        values.push(Value::new("connect_ms", tls::ms(t.connect)));
        if let Some(d) = t.tls {
            values.push(Value::new("tls_ms", tls::ms(d)));
        }
        values.push(Value::new("ttfb_ms", tls::ms(t.ttfb)));
        values.push(Value::new("total_ms", tls::ms(total)));
        if let Some(code) = t.status_code {
            values.push(Value::new("status_code", f64::from(code)));
        }
        if let Some(n) = t.body_bytes {
            values.push(Value::new("body_bytes", n as f64));
        }
        if let Some(days) = t.cert_days_left {
            values.push(Value::new("cert_days_left", days));
        }
        values.extend(extra_values);
        Outcome {
            status,
            reason,
            duration_us: total.as_micros() as u64,
            values,
            components,
        }
    }

    /// Applies the checks of `spec` to the final response.
    fn judge(
        &self,
        spec: &HttpSpec,
        ex: Exchange,
        total: Duration,
        body: Option<&BodyJudge<'_>>,
        values: &mut Vec<Value>,
    ) -> (Status, String, Vec<vitals_core::Component>) {
        let mut fails = ex.notes;
        let code = ex.status.as_u16();
        let mut components = Vec::new();

        let doc: Option<HealthDoc> = match spec.health {
            HealthFormat::None => None,
            HealthFormat::Auto => {
                let ct = ex.content_type.as_ref().and_then(|v| v.to_str().ok());
                health::parse_auto(ct, &ex.body)
            }
            HealthFormat::HealthJson => health::parse_health_json(&ex.body),
            HealthFormat::Actuator => health::parse_actuator(&ex.body),
            HealthFormat::Lines => health::parse_lines(&ex.body),
        };
        // A valid health body speaks for the service (a 503 naming its DOWN components says
        // more than "HTTP 503"); an explicit expect_status is still honoured.
        let status_judged_by_body = doc.is_some() && spec.expect_status.is_empty();
        if let Some(doc) = doc {
            if let Some(r) = doc.failure_reason() {
                fails.push((doc.status, r));
            }
            components = doc.components;
        }
        if !status_judged_by_body {
            if spec.expect_status.is_empty() {
                if !ex.status.is_success() {
                    fails.push((Status::Crit, format!("HTTP {code} (expected 2xx)")));
                }
            } else if !spec.expect_status.contains(&code) {
                fails.push((
                    Status::Crit,
                    format!(
                        "HTTP {code} (expected {})",
                        expected_list(&spec.expect_status)
                    ),
                ));
            }
        }

        let text = String::from_utf8_lossy(&ex.body);
        if let Some(needle) = &spec.body_contains {
            if !text.contains(needle.as_str()) {
                fails.push((Status::Crit, format!("body does not contain {needle:?}")));
            }
        }
        if let Some(needle) = &spec.body_not_contains {
            if text.contains(needle.as_str()) {
                fails.push((Status::Crit, format!("body contains {needle:?}")));
            }
        }
        if let Some(pattern) = &spec.body_regex {
            match self.regex(pattern) {
                Ok(re) => {
                    if !re.is_match(&text) {
                        fails.push((Status::Crit, format!("body does not match /{pattern}/")));
                    }
                }
                Err(e) => fails.push((Status::Unknown, format!("invalid body_regex: {e}"))),
            }
        }
        if !spec.json.is_empty() {
            json_checks(&spec.json, &ex.body, &mut fails);
        }
        // A capture reads answers the check accepts: an error page has no version.
        let accepted = if spec.expect_status.is_empty() {
            ex.status.is_success()
        } else {
            spec.expect_status.contains(&code)
        };
        if let Some(c) = spec.capture.as_ref().filter(|_| accepted) {
            match self.capture(c, &ex.body) {
                Ok(text) => components.push(vitals_core::Component {
                    name: c.name.clone(),
                    status: Status::Ok,
                    value: Some(text),
                    output: "captured".into(),
                }),
                Err(e) => fails.push((Status::Warn, format!("capture {}: {e}", c.name))),
            }
        }
        // Only a successful answer is worth reading further ("HTTP 404" says it all).
        if let Some(judge) = body.filter(|_| fails.is_empty()) {
            judge(&ex.body, &mut fails, values);
        }
        if let Some(limit) = spec.crit_latency.filter(|l| total > *l) {
            fails.push((
                Status::Crit,
                format!("response slower than {}", fmt_duration(limit)),
            ));
        } else if let Some(limit) = spec.warn_latency.filter(|l| total > *l) {
            fails.push((
                Status::Warn,
                format!("response slower than {}", fmt_duration(limit)),
            ));
        }

        if fails.is_empty() {
            return (Status::Ok, format!("HTTP {code}"), components);
        }
        let status = fails
            .iter()
            .map(|f| f.0)
            .reduce(Status::worst)
            .unwrap_or(Status::Ok);
        // Worst first; equal severities keep the order of the checks. The same note can come
        // from several hops (a certificate expiring soon on both ends of a redirect).
        fails.sort_by_key(|f| std::cmp::Reverse(f.0.rank()));
        let mut seen = Vec::with_capacity(fails.len());
        fails.retain(|f| {
            let new = !seen.contains(&f.1);
            if new {
                seen.push(f.1.clone());
            }
            new
        });
        let reason = fails
            .into_iter()
            .map(|f| f.1)
            .collect::<Vec<_>>()
            .join("; ");
        (status, reason, components)
    }

    /// The captured string of a `capture` (at most [`CAPTURE_MAX`] bytes).
    fn capture(&self, c: &CaptureSpec, body: &[u8]) -> Result<String, String> {
        let text = if let Some(pattern) = &c.regex {
            let re = self
                .regex(pattern)
                .map_err(|e| format!("invalid regex: {e}"))?;
            let body = String::from_utf8_lossy(body);
            let caps = re
                .captures(&body)
                .ok_or_else(|| format!("/{pattern}/ matched nothing"))?;
            caps.get(1)
                .or_else(|| caps.get(0))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default()
        } else if let Some(pointer) = &c.json {
            let doc: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e})"))?;
            match doc.pointer(pointer) {
                None => return Err(format!("{pointer} is missing")),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    v.to_string()
                }
                Some(v) => return Err(format!("{pointer} is not a string but {v}")),
            }
        } else {
            return Err("give regex or json".into());
        };
        let text = text.trim();
        if text.is_empty() {
            return Err("captured an empty string".into());
        }
        let mut end = text.len().min(CAPTURE_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Ok(text[..end].to_string())
    }

    fn regex(&self, pattern: &str) -> Result<Regex, regex::Error> {
        if let Ok(cache) = self.regexes.lock() {
            if let Some(re) = cache.get(pattern) {
                return Ok(re.clone());
            }
        }
        let re = Regex::new(pattern)?;
        if let Ok(mut cache) = self.regexes.lock() {
            if cache.len() >= MAX_CACHED_REGEXES {
                cache.clear();
            }
            cache.insert(pattern.to_string(), re.clone());
        }
        Ok(re)
    }

    /// Follows the request through redirects to the final response.
    async fn fetch(
        &self,
        spec: &HttpSpec,
        keep_body: bool,
        phase: &AtomicU8,
        t: &mut Timings,
    ) -> Result<Exchange, Failure> {
        let mut url = Url::parse(&spec.url)
            .map_err(|e| Failure::unknown(format!("invalid url {:?}: {e}", spec.url)))?;
        let mut method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| Failure::unknown(format!("invalid method {:?}", spec.method)))?;
        let mut body = spec.body.clone().map(Bytes::from).unwrap_or_default();
        let mut headers = user_headers(spec)?;
        let policy = Policy {
            max_body: spec.max_body_bytes,
            keep_body: keep_body
                || spec.capture.is_some()
                || spec.health != HealthFormat::None
                || spec.body_contains.is_some()
                || spec.body_not_contains.is_some()
                || spec.body_regex.is_some()
                || !spec.json.is_empty(),
            max_redirects: spec.max_redirects,
            expect_status: &spec.expect_status,
        };
        let mut notes = Vec::new();
        let mut redirects = 0u32;
        loop {
            let hop = self
                .hop(
                    spec,
                    &url,
                    &method,
                    &headers,
                    body.clone(),
                    &policy,
                    phase,
                    t,
                )
                .await?;
            notes.extend(hop.notes);
            let code = hop.status.as_u16();
            let location = match hop.location {
                Some(l) if policy.follows(hop.status) => l,
                _ => {
                    return Ok(Exchange {
                        status: hop.status,
                        content_type: hop.content_type,
                        body: hop.body,
                        notes,
                    })
                }
            };
            if redirects >= spec.max_redirects {
                return Err(Failure::crit(format!(
                    "too many redirects ({})",
                    spec.max_redirects
                )));
            }
            redirects += 1;
            let target = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| Failure::crit(format!("HTTP {code} with an invalid Location")))?;
            // Credentials are for the origin they were configured for, as curl and browsers do.
            if target.origin() != url.origin() {
                headers.retain(|(k, _)| {
                    !matches!(
                        *k,
                        header::AUTHORIZATION | header::COOKIE | header::PROXY_AUTHORIZATION
                    )
                });
            }
            // Browsers' rule: 303 (and 301/302 after a POST) continue with a bodiless GET.
            if code == 303 && method != Method::HEAD
                || (code == 301 || code == 302) && method == Method::POST
            {
                method = Method::GET;
                body = Bytes::new();
            }
            url = target;
        }
    }

    /// One request on one fresh connection.
    #[allow(clippy::too_many_arguments)]
    async fn hop(
        &self,
        spec: &HttpSpec,
        url: &Url,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        policy: &Policy<'_>,
        phase: &AtomicU8,
        t: &mut Timings,
    ) -> Result<Hop, Failure> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(Failure::unknown(format!(
                    "unsupported scheme {other:?} in {url}"
                )))
            }
        };
        let host = url
            .host()
            .ok_or_else(|| Failure::unknown(format!("url without host: {url}")))?;
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });

        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method.clone();
        *req.uri_mut() = Uri::try_from(&url[Position::BeforePath..Position::AfterQuery])
            .map_err(|e| Failure::unknown(format!("invalid url {url}: {e}")))?;
        let h = req.headers_mut();
        let host_header = &url[Position::BeforeHost..Position::AfterPort];
        h.insert(
            header::HOST,
            HeaderValue::from_str(host_header)
                .map_err(|_| Failure::unknown(format!("invalid host in {url}")))?,
        );
        h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        for (k, v) in headers {
            h.insert(k.clone(), v.clone());
        }
        // Fresh connection per probe: say so, whatever the spec's headers said.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));

        phase.store(PHASE_RESOLVE, Ordering::Relaxed);
        let started = Instant::now();
        let addrs: Vec<SocketAddr> = match host {
            url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            url::Host::Domain(name) => {
                let found = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| Failure::crit(format!("cannot resolve {name}: {e}")))?;
                let addrs: Vec<SocketAddr> = found.collect();
                if addrs.is_empty() {
                    return Err(Failure::crit(format!("{name} has no address")));
                }
                t.dns += started.elapsed();
                addrs
            }
        };

        phase.store(PHASE_CONNECT, Ordering::Relaxed);
        let started = Instant::now();
        let tcp = tls::connect_any(&addrs).await.map_err(Failure::crit)?;
        t.connect += started.elapsed();
        // A bodiless request goes out in one write; a body may follow the head in a second
        // segment, which Nagle must not hold back. (One syscall saved on the common path.)
        if !req.body().is_end_stream() {
            let _ = tcp.set_nodelay(true);
        }

        if !https {
            let io = PhaseIo {
                inner: tcp,
                phase,
                // The socket is closed right after the exchange, which sends the FIN anyway.
                shutdown: false,
            };
            return exchange(io, req, policy, t, Vec::new()).await;
        }

        let verifier = self
            .tls
            .verifier(spec.ca_file.as_deref())
            .map_err(Failure::unknown)?;
        let name = tls::server_name(sni_host(url))
            .map_err(|e| Failure::unknown(format!("{e} in {url}")))?;
        phase.store(PHASE_TLS, Ordering::Relaxed);
        let started = Instant::now();
        let stream = TlsConnector::from(self.tls.http_config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| Failure::crit(tls::describe_handshake_error(&e)))?;
        *t.tls.get_or_insert(Duration::ZERO) += started.elapsed();
        let check = tls::verify_peer(
            stream.get_ref().1.peer_certificates(),
            &verifier,
            &name,
            spec.insecure,
        );
        if let Some(days) = check.days_left {
            t.cert_days_left = Some(t.cert_days_left.map_or(days, |d: f64| d.min(days)));
        }
        check.verified.map_err(Failure::crit)?;
        let notes: Vec<(Status, String)> =
            tls::expiry_check(check.days_left, spec.cert_warn_days, spec.cert_crit_days)
                .into_iter()
                .collect();
        let io = PhaseIo {
            inner: stream,
            phase,
            // TLS says goodbye with close_notify, so that servers do not log a truncation.
            shutdown: true,
        };
        exchange(io, req, policy, t, notes).await
    }
}

/// The host of `url` for SNI and verification (an IPv6 address in brackets, which
/// [`tls::server_name`] strips).
fn sni_host(url: &Url) -> &str {
    url.host_str().unwrap_or("")
}

/// One response, possibly a redirect.
struct Hop {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    location: Option<HeaderValue>,
    body: Vec<u8>,
    notes: Vec<(Status, String)>,
}

/// How responses are read and which redirects are followed.
struct Policy<'a> {
    max_body: u64,
    /// Whether some check reads the body.
    keep_body: bool,
    max_redirects: u32,
    expect_status: &'a [u16],
}

impl Policy<'_> {
    /// Whether a response with `status` (and a `Location`) is a redirect to follow: an
    /// expected status is final, and so is every 3xx when redirects are off.
    fn follows(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        self.max_redirects > 0
            && matches!(code, 301 | 302 | 303 | 307 | 308)
            && !self.expect_status.contains(&code)
    }
}

/// Sends `req` on `io` and reads the response, its body capped at `policy.max_body`.
async fn exchange<S>(
    io: PhaseIo<'_, S>,
    req: Request<Full<Bytes>>,
    policy: &Policy<'_>,
    t: &mut Timings,
    notes: Vec<(Status, String)>,
) -> Result<Hop, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let phase = io.phase;
    let io = TokioIo::new(io);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| Failure::crit(format!("HTTP handshake failed: {e}")))?;
    let work = async {
        phase.store(PHASE_SEND, Ordering::Relaxed);
        let sent = Instant::now();
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Failure::crit(describe_hyper_error(&e, false)))?;
        t.ttfb += sent.elapsed();
        phase.store(PHASE_BODY, Ordering::Relaxed);
        let (parts, incoming) = resp.into_parts();
        t.status_code = Some(parts.status.as_u16());
        // The body of a redirect that is followed is not read at all: the connection closes.
        let passing = policy.follows(parts.status) && parts.headers.contains_key(header::LOCATION);
        let body = if passing {
            Vec::new()
        } else {
            read_body(
                incoming,
                &parts.headers,
                policy.max_body,
                policy.keep_body,
                t,
            )
            .await?
        };
        let mut headers = parts.headers;
        Ok(Hop {
            status: parts.status,
            content_type: headers.remove(header::CONTENT_TYPE),
            location: headers.remove(header::LOCATION),
            body,
            notes,
        })
    };
    drive(conn, work).await
}

/// Reads the body up to `max_body` bytes; keeps it only when `keep`.
async fn read_body(
    mut incoming: Incoming,
    headers: &http::HeaderMap,
    max_body: u64,
    keep: bool,
    t: &mut Timings,
) -> Result<Vec<u8>, Failure> {
    let too_big = || Failure::crit(format!("body larger than {max_body} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        t.body_bytes = declared;
        return Err(too_big());
    }
    let mut body = Vec::new();
    if keep {
        // Bounded: a large declared length must not cost memory before bytes arrive.
        body.reserve(declared.unwrap_or(0).min(64 * 1024) as usize);
    }
    let mut n: u64 = 0;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| Failure::crit(describe_hyper_error(&e, true)))?;
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
            t.body_bytes = Some(n);
            if n > max_body {
                return Err(too_big());
            }
            if keep {
                body.extend_from_slice(&data);
            }
        }
    }
    t.body_bytes = Some(n);
    Ok(body)
}

/// Polls the connection and the work on it in this task until the work is done, so that a
/// probe costs no spawned task. The connection's errors reach the work through hyper's
/// channels (the response or body future fails with them).
async fn drive<C, W, T>(conn: C, work: W) -> T
where
    C: Future,
    W: Future<Output = T>,
{
    let mut conn = pin!(conn);
    let mut work = pin!(work);
    let mut conn_done = false;
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if !conn_done && conn.as_mut().poll(cx).is_ready() {
            conn_done = true;
            // The connection's last act may have completed the work.
            if let Poll::Ready(v) = work.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
        }
        Poll::Pending
    })
    .await
}

/// A stable reason for a hyper error, from the I/O error underneath when there is one.
fn describe_hyper_error(e: &hyper::Error, in_body: bool) -> String {
    let when = if in_body {
        "while reading the body"
    } else {
        "before the response"
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset => format!("connection reset {when}"),
                std::io::ErrorKind::UnexpectedEof => format!("connection closed {when}"),
                std::io::ErrorKind::BrokenPipe => {
                    "connection closed while sending the request".to_string()
                }
                _ => format!("I/O error {when}: {io}"),
            };
        }
        source = s.source();
    }
    if e.is_incomplete_message() {
        format!("connection closed {when}")
    } else if e.is_parse() || e.is_parse_status() {
        format!("invalid HTTP response: {e}")
    } else {
        format!("HTTP error {when}: {e}")
    }
}

/// The spec's headers, validated; `Host` and `User-Agent` given here replace the defaults.
fn user_headers(spec: &HttpSpec) -> Result<Vec<(HeaderName, HeaderValue)>, Failure> {
    spec.headers
        .iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Failure::unknown(format!("invalid header name {k:?}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| Failure::unknown(format!("invalid value for header {k}")))?;
            Ok((name, value))
        })
        .collect()
}

fn expected_list(codes: &[u16]) -> String {
    match codes {
        [one] => one.to_string(),
        many => format!(
            "one of {}",
            many.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The `json` conditions: the body must be JSON, then each condition must hold.
fn json_checks(conditions: &[String], body: &[u8], fails: &mut Vec<(Status, String)>) {
    let parsed: Result<Vec<JsonCondition>, String> =
        conditions.iter().map(|c| JsonCondition::parse(c)).collect();
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            fails.push((Status::Unknown, format!("invalid json condition: {e}")));
            return;
        }
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        fails.push((Status::Crit, "body is not JSON".to_string()));
        return;
    };
    for c in &parsed {
        if let Err(mismatch) = c.eval(&doc) {
            fails.push((Status::Crit, mismatch));
        }
    }
}

/// Passes I/O through and moves the phase on: "sending" ends when hyper flushes the request,
/// and "waiting for the first byte" ends when the first response byte arrives.
struct PhaseIo<'a, S> {
    inner: S,
    phase: &'a AtomicU8,
    /// Whether hyper's shutdown at the end of a `Connection: close` exchange is passed on.
    shutdown: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for PhaseIo<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before && this.phase.load(Ordering::Relaxed) == PHASE_FIRST_BYTE {
            this.phase.store(PHASE_HEADERS, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PhaseIo<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) && this.phase.load(Ordering::Relaxed) == PHASE_SEND {
            this.phase.store(PHASE_FIRST_BYTE, Ordering::Relaxed);
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.shutdown {
            Pin::new(&mut this.inner).poll_shutdown(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

impl crate::Probe for vitals_core::spec::HttpSpec {
    async fn run(
        &self,
        prober: &crate::Prober,
        _kind: vitals_core::spec::ProbeKind,
        _key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        prober.http.probe(self, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_lists_read_naturally() {
        assert_eq!(expected_list(&[200]), "200");
        assert_eq!(expected_list(&[200, 204]), "one of 200, 204");
    }

    #[test]
    fn json_checks_report_each_problem() {
        let mut fails = Vec::new();
        json_checks(
            &["/items/0/id == 17".to_string()],
            br#"{"items":[{"id":18}]}"#,
            &mut fails,
        );
        assert_eq!(
            fails,
            vec![(
                Status::Crit,
                "/items/0/id is 18 (expected == 17)".to_string()
            )]
        );
        fails.clear();
        json_checks(&["/a".to_string()], b"<html>", &mut fails);
        assert_eq!(fails, vec![(Status::Crit, "body is not JSON".to_string())]);
        fails.clear();
        json_checks(&["a == 1".to_string()], b"{}", &mut fails);
        assert_eq!(fails[0].0, Status::Unknown);
        assert!(fails[0].1.starts_with("invalid json condition: "));
    }

    #[test]
    fn phases_have_texts() {
        assert_eq!(phase_text(PHASE_FIRST_BYTE), " waiting for the first byte");
        assert_eq!(phase_text(PHASE_TLS), " during TLS handshake");
        assert_eq!(phase_text(PHASE_START), "");
    }
}
