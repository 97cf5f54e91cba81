//! `vitals agent`: runs the checks of one location where the server cannot reach (inside a
//! hospital's network, or as one of several vantage points) and sends the results to the
//! server over one outbound HTTP(S) connection.
//!
//! Three tasks:
//! - **assignment**: `GET /api/v1/agent/checks` with the last ETag, every `--refresh`; a new
//!   version is parsed and validated like a config file (`${ENV}` from the agent's own
//!   environment), saved to the data directory (so a restart while the server is away still
//!   probes) and handed to the scheduler — the same scheduler and probes as `vitals serve`.
//! - **writer**: the scheduler's observations are appended to the disk [`buffer`], in order,
//!   one durable transaction per batch.
//! - **sender**: the oldest results go to `POST /api/v1/agent/results` in batches with
//!   idempotency ids (`{location}.{buffer instance}.{row}`); they leave the buffer only when the
//!   server has committed them. A failed request is retried with backoff (at most `--retry-max`
//!   apart), so after an outage everything is replayed, in order, none twice. Every request
//!   carries the agent's version, buffer depth, dropped count and clock offset (measured from
//!   the previous exchange, NTP-style); one is sent at least every `--heartbeat` so the server
//!   can tell "agent gone" from "nothing to say".

pub mod buffer;

use anyhow::{bail, Context, Result};
use buffer::Buffer;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vitals_core::Observation;
use vitals_scheduler::{Metrics, ScheduledCheck, Scheduler, Sink};

/// `vitals agent`.
#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The Vitals server, e.g. https://vitals.example.org
    #[arg(long)]
    pub server: String,
    /// The agent token ([[token]] with location = …). Better: --token-file or the environment
    /// variable VITALS_AGENT_TOKEN (a command line is visible to every local user).
    #[arg(long)]
    pub token: Option<String>,
    /// A file holding the agent token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// This agent's location (as in [[check]] locations = [...]).
    #[arg(long)]
    pub location: String,
    /// Where the buffer and the last assignment are kept.
    #[arg(long, default_value = "./vitals-agent")]
    pub data_dir: PathBuf,
    /// Most bytes of results kept while the server is unreachable; beyond, the oldest go.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub buffer_bytes: u64,
    /// How often the assignment is asked for (an unchanged one costs a 304).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub refresh: Duration,
    /// At least this often the agent reports, also with nothing to send.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// The longest wait between two attempts to reach the server.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// Results per request.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Checks run at once.
    #[arg(long, default_value_t = 64)]
    pub max_concurrency: usize,
    /// A PEM CA certificate to trust for the server (besides the public roots).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Allow a plain http:// server that is not on this machine (the token and the results
    /// then cross the network unencrypted; only on a network you trust).
    #[arg(long)]
    pub allow_http: bool,
}

/// How long the writer gathers results before one durable append.
const WRITE_LINGER: Duration = Duration::from_millis(200);
/// How long the sender waits after new results before sending them.
const SEND_LINGER: Duration = Duration::from_millis(1000);

fn parse_duration(s: &str) -> Result<Duration, String> {
    vitals_core::spec::duration::parse(s).map_err(|e| e.to_string())
}

/// The last assignment, as saved in the data directory.
#[derive(serde::Serialize, serde::Deserialize)]
struct Assignment {
    version: String,
    checks: String,
}

struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the sender when results were appended.
    wake: tokio::sync::Notify,
    /// The agent's clock minus the server's, in ms (from the last exchange).
    offset_ms: std::sync::atomic::AtomicI64,
    /// Results appended to the buffer / committed by the server, since start.
    appended: std::sync::atomic::AtomicU64,
    delivered: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn new(buffer: Buffer) -> Shared {
        Shared {
            buffer: Mutex::new(buffer),
            wake: tokio::sync::Notify::new(),
            offset_ms: std::sync::atomic::AtomicI64::new(0),
            appended: Default::default(),
            delivered: Default::default(),
        }
    }
}

/// Runs until `stop` resolves (or forever).
pub async fn run(args: AgentArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    if !vitals_config::valid_location(&args.location) {
        bail!(
            "--location {:?}: use letters, digits and - _ . : only",
            args.location
        );
    }
    if args.batch == 0 || args.batch > 5_000 {
        bail!("--batch must be 1–5000");
    }
    server_url(&args.server, args.allow_http)?;
    let token = token(&args)?;
    let client = client(&args)?;
    let base = args.server.trim_end_matches('/').to_string();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let buffer_path = args.data_dir.join("agent-buffer.db");
    let buffer = Buffer::open(&buffer_path, args.buffer_bytes)
        .with_context(|| format!("cannot open the buffer {}", buffer_path.display()))?;
    tracing::info!(
        location = %args.location,
        server = %base,
        buffered = buffer.depth(),
        dropped = buffer.dropped(),
        "vitals agent starting"
    );
    let shared = Arc::new(Shared::new(buffer));

    let (tx, rx) = tokio::sync::mpsc::channel::<Observation>(16_384);
    let saved = args.data_dir.join("assignment.json");
    let mut version = None;
    let mut initial = Vec::new();
    if let Some(a) = load_saved(&saved) {
        match checks_of(&a.checks) {
            Ok(c) => {
                tracing::info!(version = %a.version, checks = c.len(), "running the saved assignment until the server answers");
                initial = c;
                version = Some(a.version);
            }
            Err(e) => tracing::warn!("saved assignment not usable: {e:#}"),
        }
    }
    let scheduler = Scheduler::start(
        initial,
        Arc::new(vitals_probe::Prober::new()),
        Sink::Channel(tx),
        Arc::new(Metrics::default()),
        args.max_concurrency,
    );
    let writer = tokio::spawn(writer(shared.clone(), rx));
    let sender = tokio::spawn(sender(
        args.clone(),
        client.clone(),
        base.clone(),
        token.clone(),
        shared.clone(),
    ));
    let assign = assignment_loop(&args, &client, &base, &token, &saved, version, &scheduler);
    tokio::select! {
        _ = stop => {}
        _ = assign => {}
    }
    tracing::info!("vitals agent stopping: finishing running checks");
    scheduler.shutdown().await;
    drop(scheduler);
    // The writer ends when the scheduler's sender is gone, after appending what was queued.
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    sender.abort();
    let left = shared
        .buffer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .depth();
    tracing::info!(
        appended = shared.appended.load(std::sync::atomic::Ordering::Relaxed),
        delivered = shared.delivered.load(std::sync::atomic::Ordering::Relaxed),
        buffered = left,
        "vitals agent stopped"
    );
    Ok(())
}

fn token(args: &AgentArgs) -> Result<Option<String>> {
    if let Some(t) = &args.token {
        return Ok(Some(t.clone()));
    }
    if let Some(f) = &args.token_file {
        let t = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read --token-file {}", f.display()))?;
        return Ok(Some(t.trim().to_string()));
    }
    Ok(std::env::var("VITALS_AGENT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty()))
}

/// The server's URL: `https://`, or `http://` only on this machine or with `--allow-http`, since
/// the agent's token and results would otherwise cross the network in clear text.
fn server_url(server: &str, allow_http: bool) -> Result<()> {
    let url = reqwest::Url::parse(server)
        .with_context(|| format!("--server {server:?} is not a URL (https://host[:port])"))?;
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let local = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if local || allow_http => Ok(()),
        "http" => bail!(
            "--server {server}: over http:// the agent's token and results would cross the \
             network unencrypted; use https:// (or --allow-http on a network you trust)"
        ),
        other => bail!("--server {server}: {other}:// is neither https:// nor http://"),
    }
}

fn client(args: &AgentArgs) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("vitals-agent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(2)
        .https_only(false);
    if let Some(p) = &args.ca_cert {
        let pem = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", p.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().context("building the HTTP client")
}

fn load_saved(path: &Path) -> Option<Assignment> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Saves atomically: a crash leaves the old or the new file, never half of one.
fn save(path: &Path, a: &Assignment) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec(a)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Parses an assignment like a config file (the agent's environment fills `${ENV}`).
fn checks_of(text: &str) -> Result<Vec<ScheduledCheck>> {
    let cfg = vitals_config::Config::parse(text, &|n| std::env::var(n).ok())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.checks
        .iter()
        .filter_map(|c| {
            ScheduledCheck::from_config(c).map(|r| r.with_context(|| format!("check {}", c.key())))
        })
        .collect()
}

fn now_ms() -> i64 {
    vitals_core::SystemClock::now().0
}

fn authorized(req: reqwest::RequestBuilder, token: &Option<String>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

async fn assignment_loop(
    args: &AgentArgs,
    client: &reqwest::Client,
    base: &str,
    token: &Option<String>,
    saved: &Path,
    mut version: Option<String>,
    scheduler: &Scheduler,
) {
    let url = format!("{base}/api/v1/agent/checks");
    loop {
        let mut req = authorized(
            client
                .get(&url)
                .query(&[("location", args.location.as_str())]),
            token,
        );
        if let Some(v) = &version {
            req = req.header("If-None-Match", format!("\"{v}\""));
        }
        match fetch(req).await {
            Ok(None) => {}
            Ok(Some(a)) => match checks_of(&a.checks) {
                Ok(checks) => {
                    tracing::info!(version = %a.version, checks = checks.len(), "new assignment");
                    scheduler.reload(checks).await;
                    if let Err(e) = save(saved, &a) {
                        tracing::warn!("assignment not saved: {e:#}");
                    }
                    version = Some(a.version);
                }
                Err(e) => tracing::error!(
                    version = %a.version,
                    "assignment refused, keeping the running checks: {e:#}"
                ),
            },
            Err(e) => tracing::warn!("assignment not fetched: {e:#}"),
        }
        tokio::time::sleep(args.refresh).await;
    }
}

/// The largest assignment the agent reads (100,000 checks are about 30 MB of JSON).
const MAX_ASSIGNMENT_BYTES: usize = 64 << 20;
/// The largest answer to a batch of results it reads (one duplicate index per row at most).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A response's body, refused once it grows past `limit` bytes: whatever answers in the
/// server's name cannot make the agent hold more than that (the request's timeout bounds the
/// time, not the bytes).
async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    if let Some(n) = resp.content_length().filter(|&n| n > limit as u64) {
        bail!("the answer has {n} bytes, more than the {limit} the agent reads");
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            bail!("the answer goes on past the {limit} bytes the agent reads");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `None`: unchanged (304).
async fn fetch(req: reqwest::RequestBuilder) -> Result<Option<Assignment>> {
    let resp = req.send().await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let body = read_capped(resp, MAX_ASSIGNMENT_BYTES).await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(Some(serde_json::from_slice(&body)?))
}

/// Runs `f` on the buffer on a blocking thread (SQLite calls block; a write waits for an fsync).
async fn with_buffer<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut Buffer) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    let s = shared.clone();
    let r = tokio::task::spawn_blocking(move || {
        f(&mut s.buffer.lock().unwrap_or_else(|e| e.into_inner()))
    })
    .await;
    match r {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Appends what the scheduler produced, in batches, each durable before the next.
async fn writer(shared: Arc<Shared>, mut rx: tokio::sync::mpsc::Receiver<Observation>) {
    while let Some(first) = rx.recv().await {
        // Results come one by one as checks finish: gather for a moment, so one durable
        // commit (an fsync) carries many.
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + WRITE_LINGER;
        while batch.len() < 4096 {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(o)) => batch.push(o),
                Ok(None) | Err(_) => break,
            }
        }
        let bodies: Vec<Vec<u8>> = batch
            .iter()
            .filter_map(|o| serde_json::to_vec(o).ok())
            .collect();
        let bodies = Arc::new(bodies);
        let mut backoff = Duration::from_millis(100);
        loop {
            let b = bodies.clone();
            match with_buffer(&shared, move |buf| buf.append(&b)).await {
                Ok(()) => {
                    shared
                        .appended
                        .fetch_add(bodies.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
                // A full disk: keep the results in memory (the channel backs up the
                // scheduler meanwhile) and try again.
                Err(e) => tracing::error!("buffer append failed, retrying: {e}"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        shared.wake.notify_one();
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    server_time: i64,
    #[serde(default)]
    duplicates: Vec<usize>,
}

#[derive(serde::Deserialize)]
struct Refusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    field: Option<String>,
}

/// One request's worth of the buffer, ready to send.
struct Prepared {
    /// The rows' sequence numbers, in order (the body's `results[i]` is `seqs[i]`).
    seqs: Vec<i64>,
    body: Vec<u8>,
    /// Results behind this batch when it was built.
    depth: u64,
}

impl Prepared {
    fn last(&self) -> Option<i64> {
        self.seqs.last().copied()
    }
}

/// What the server said to one batch.
enum Sent {
    Committed(Answer),
    /// The server will never take this row (its check is no longer assigned here, or it is
    /// malformed): it leaves the buffer, so it cannot hold back everything behind it.
    Refused(i64),
    Failed(String),
}

/// Reads the oldest results after `after` (rows up to it are delivered or on their way) and
/// builds the request body.
async fn prepare(args: &AgentArgs, shared: &Arc<Shared>, after: i64) -> Result<Prepared, String> {
    let n = args.batch;
    let (rows, depth, dropped, instance) = with_buffer(shared, move |b| {
        let rows = b.peek(after, n)?;
        let last = rows.last().map_or(after, |r| r.seq);
        Ok((
            rows,
            b.waiting_after(last)?,
            b.dropped(),
            b.instance().to_string(),
        ))
    })
    .await?;
    let head = serde_json::json!({
        "location": args.location,
        "version": env!("CARGO_PKG_VERSION"),
        // What waits behind this batch: 0 once caught up.
        "buffer_depth": depth,
        "dropped": dropped,
        "clock_offset_ms": shared.offset_ms.load(std::sync::atomic::Ordering::Relaxed),
    })
    .to_string();
    // {"agent": {...}, "results": [{"id": "...", "obs": <stored JSON>}, ...]}: the stored
    // bodies go out as they are, without parsing them again.
    let mut out =
        Vec::with_capacity(rows.iter().map(|r| r.body.len() + 64).sum::<usize>() + head.len() + 32);
    out.extend_from_slice(b"{\"agent\":");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(b",\"results\":[");
    let mut seqs = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(
                "{{\"id\":\"{}.{}.{}\",\"obs\":",
                args.location, instance, r.seq
            )
            .as_bytes(),
        );
        out.extend_from_slice(&r.body);
        out.push(b'}');
        seqs.push(r.seq);
    }
    out.extend_from_slice(b"]}");
    Ok(Prepared {
        seqs,
        body: out,
        depth,
    })
}

/// Posts one batch and reads the answer.
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &Option<String>,
    shared: &Shared,
    body: Vec<u8>,
    seqs: &[i64],
) -> Sent {
    let t0 = now_ms();
    let resp = authorized(client.post(url), token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await;
    let t1 = now_ms();
    let r = match resp {
        Ok(r) => r,
        Err(e) => return Sent::Failed(e.to_string()),
    };
    let status = r.status();
    let bytes = match read_capped(r, MAX_ANSWER_BYTES).await {
        Ok(bytes) => bytes,
        // A success whose answer cannot be read is not taken as one: the rows are sent again
        // (the server recognises their ids); a refusal is still a refusal.
        Err(e) if status.is_success() => return Sent::Failed(format!("{e:#}")),
        Err(_) => Vec::new(),
    };
    if status.is_success() {
        return match serde_json::from_slice::<Answer>(&bytes) {
            Ok(a) => {
                // NTP-style: the server's clock was read about halfway through the exchange.
                shared.offset_ms.store(
                    (t0 + t1) / 2 - a.server_time,
                    std::sync::atomic::Ordering::Relaxed,
                );
                Sent::Committed(a)
            }
            Err(e) => Sent::Failed(format!("unreadable answer: {e}")),
        };
    }
    let refusal: Option<Refusal> = serde_json::from_slice(&bytes).ok();
    let bad_row = refusal
        .as_ref()
        .and_then(|r| r.field.as_deref())
        .filter(|_| matches!(status.as_u16(), 400 | 403 | 422))
        .and_then(|f| f.strip_prefix("results["))
        .and_then(|f| f.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| seqs.get(i));
    if let Some(&seq) = bad_row {
        tracing::error!(
            status = %status,
            error = refusal.as_ref().map(|r| r.error.as_str()).unwrap_or(""),
            "result refused by the server; dropped from the buffer"
        );
        return Sent::Refused(seq);
    }
    Sent::Failed(format!(
        "{status}: {}",
        refusal.map(|r| r.error).unwrap_or_default()
    ))
}

/// Removes delivered rows from the buffer.
async fn ack(shared: &Arc<Shared>, seqs: Vec<i64>) -> bool {
    with_buffer(shared, move |b| b.ack(&seqs)).await.is_ok()
}

/// Sends the buffer's oldest results until it is empty; then waits for more (or the heartbeat).
///
/// One request at a time, so the server takes every check's results in the order they were
/// probed. While a full batch is on its way, the next one is read and built, and the batch
/// before it is removed from the buffer: the server's commit is the only step of a replay
/// that waits for the network.
async fn sender(
    args: AgentArgs,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    shared: Arc<Shared>,
) {
    let url = format!("{base}/api/v1/agent/results");
    let mut backoff = Duration::ZERO;
    let mut sent_total: u64 = 0;
    // Rows up to `cursor` are committed by the server (some maybe not yet removed).
    let mut cursor: i64 = 0;
    let mut ready: Option<Prepared> = None;
    // The removal of the last committed batch, running beside the next request.
    let mut removing: Option<tokio::task::JoinHandle<bool>> = None;
    loop {
        let mut batch = match ready.take() {
            Some(b) => b,
            None => match prepare(&args, &shared, cursor).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("buffer read failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let full = batch.seqs.len() >= args.batch;
        let after = batch.last().unwrap_or(cursor);
        // The next batch is read ahead only while the server takes batches: during an outage
        // every attempt would read it for nothing.
        let read_ahead = full && backoff.is_zero();
        let next = async {
            if read_ahead {
                Some(prepare(&args, &shared, after).await)
            } else {
                None
            }
        };
        let body = std::mem::take(&mut batch.body);
        let sending = send(&client, &url, &token, &shared, body, &batch.seqs);
        let (outcome, next) = tokio::join!(sending, next);
        // The previous removal has had a whole request's time.
        let removed = match removing.take() {
            Some(h) => matches!(h.await, Ok(true)),
            None => true,
        };
        match outcome {
            Sent::Committed(answer) => {
                if backoff > Duration::ZERO {
                    tracing::info!(buffered = batch.depth, "server reachable again; replaying");
                }
                backoff = Duration::ZERO;
                let n = batch.seqs.len();
                sent_total += n.saturating_sub(answer.duplicates.len()) as u64;
                shared
                    .delivered
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(
                    sent = n,
                    duplicates = answer.duplicates.len(),
                    sent_total,
                    "results delivered"
                );
                cursor = after;
                if n > 0 {
                    let s = shared.clone();
                    removing = Some(tokio::spawn(async move { ack(&s, batch.seqs).await }));
                }
                match next {
                    Some(Ok(b)) => ready = Some(b),
                    Some(Err(e)) => tracing::error!("buffer read failed: {e}"),
                    // Full but not read ahead (the first batch after an outage): read now.
                    None if full => {}
                    None => {
                        // Caught up: wait for new results (and a moment more, so one request
                        // carries what finishes meanwhile), or the heartbeat.
                        if tokio::time::timeout(args.heartbeat, shared.wake.notified())
                            .await
                            .is_ok()
                        {
                            tokio::time::sleep(SEND_LINGER).await;
                        }
                    }
                }
            }
            Sent::Refused(seq) => {
                // The batch is built again without it.
                if !ack(&shared, vec![seq]).await {
                    tracing::error!("buffer acknowledgement failed");
                }
            }
            Sent::Failed(e) => {
                backoff = (backoff * 2)
                    .max(Duration::from_millis(500))
                    .min(args.retry_max);
                tracing::warn!(buffered = batch.depth, retry_in = ?backoff, "server not reached: {e}");
                tokio::time::sleep(backoff).await;
            }
        }
        if !removed {
            // Those rows are still in the buffer: read it again from the start (the server
            // recognises what it already has by the ids).
            tracing::error!("buffer acknowledgement failed; unremoved results are sent again");
            cursor = 0;
            ready = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_text_only_on_this_machine_or_when_allowed() {
        for ok in [
            "https://vitals.example.org",
            "https://10.0.0.5:8443/vitals",
            "http://127.0.0.1:8080",
            "http://[::1]:8080/",
            "http://localhost:8080",
        ] {
            assert!(server_url(ok, false).is_ok(), "{ok}");
        }
        let e = server_url("http://vitals.example.org", false).unwrap_err();
        assert!(e.to_string().contains("unencrypted"), "{e}");
        assert!(server_url("http://10.0.0.5:8080", true).is_ok());
        assert!(server_url("ftp://vitals.example.org", true).is_err());
        assert!(server_url("vitals.example.org:8443", false).is_err());
    }

    /// Bodies past the cap are refused whether the server says how long they are or not, and
    /// the agent stops reading (an endless body would otherwise fill its memory).
    #[tokio::test]
    async fn answers_past_the_cap_are_refused_not_buffered() {
        use axum::body::{Body, Bytes};
        async fn endless() -> Body {
            let chunk = Bytes::from(vec![b' '; 64 << 10]);
            Body::from_stream(futures_util::stream::repeat_with(move || {
                Ok::<_, std::convert::Infallible>(chunk.clone())
            }))
        }
        async fn declared() -> Vec<u8> {
            vec![b' '; 3 << 20]
        }
        async fn small() -> &'static str {
            "{\"server_time\": 5}"
        }
        let app = axum::Router::new()
            .route("/endless", axum::routing::get(endless))
            .route("/declared", axum::routing::get(declared))
            .route("/small", axum::routing::get(small));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("http://{addr}{path}")).send();

        let e = read_capped(get("/endless").await.unwrap(), 1 << 20)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("goes on past the 1048576 bytes"),
            "{e}"
        );
        let e = read_capped(get("/declared").await.unwrap(), 1 << 20)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("has 3145728 bytes"), "{e}");
        let body = read_capped(get("/small").await.unwrap(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(body, b"{\"server_time\": 5}");
        // Exactly the cap is allowed; one byte less is not.
        let n = body.len();
        assert_eq!(
            read_capped(get("/small").await.unwrap(), n).await.unwrap(),
            body
        );
        assert!(read_capped(get("/small").await.unwrap(), n - 1)
            .await
            .is_err());
    }

    /// A replay against a server that is slow, fails once and refuses one row: the batches
    /// arrive one at a time and in order, every row is committed once (the refused one never),
    /// and the buffer ends empty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_sends_one_batch_at_a_time_in_order_and_empties_the_buffer() {
        use axum::extract::State;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

        #[derive(Default)]
        struct Seen {
            requests: AtomicUsize,
            in_flight: AtomicUsize,
            max_in_flight: AtomicUsize,
            committed: Mutex<Vec<i64>>,
            /// `agent.buffer_depth` of every request.
            depths: Mutex<Vec<u64>>,
        }
        async fn take(State(seen): State<Arc<Seen>>, body: String) -> axum::response::Response {
            use axum::response::IntoResponse;
            let now = seen.in_flight.fetch_add(1, SeqCst) + 1;
            seen.max_in_flight.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.in_flight.fetch_sub(1, SeqCst);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            seen.depths
                .lock()
                .unwrap()
                .push(v["agent"]["buffer_depth"].as_u64().unwrap());
            let seqs: Vec<i64> = v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let id = r["id"].as_str().unwrap();
                    id.rsplit('.').next().unwrap().parse().unwrap()
                })
                .collect();
            match seen.requests.fetch_add(1, SeqCst) {
                1 => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
                3 => (
                    axum::http::StatusCode::FORBIDDEN,
                    axum::Json(serde_json::json!({"error": "not assigned", "field": "results[2].obs.check"})),
                )
                    .into_response(),
                _ => {
                    seen.committed.lock().unwrap().extend(seqs);
                    axum::Json(serde_json::json!({"server_time": now_ms(), "duplicates": []}))
                        .into_response()
                }
            }
        }

        let seen = Arc::new(Seen::default());
        let app = axum::Router::new()
            .route("/api/v1/agent/results", axum::routing::post(take))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let mut buffer = Buffer::open(&dir.path().join("b.db"), 1 << 30).unwrap();
        let bodies: Vec<Vec<u8>> = (0..95)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect();
        buffer.append(&bodies).unwrap();
        let all: Vec<i64> = buffer
            .peek(0, 1000)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        let shared = Arc::new(Shared::new(buffer));
        let args = AgentArgs {
            server: format!("http://{addr}"),
            token: None,
            token_file: None,
            location: "site".into(),
            data_dir: dir.path().to_path_buf(),
            buffer_bytes: 1 << 30,
            refresh: Duration::from_secs(30),
            heartbeat: Duration::from_secs(30),
            retry_max: Duration::from_millis(50),
            batch: 10,
            max_concurrency: 1,
            ca_cert: None,
            allow_http: false,
        };
        let task = tokio::spawn(sender(
            args.clone(),
            reqwest::Client::new(),
            args.server.clone(),
            None,
            shared.clone(),
        ));
        let mut empty = false;
        for _ in 0..500 {
            if shared.buffer.lock().unwrap().depth() == 0 {
                empty = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        assert!(empty, "buffer not emptied");
        assert_eq!(seen.max_in_flight.load(SeqCst), 1, "two requests at once");
        let committed = seen.committed.lock().unwrap().clone();
        // Requests: rows 1–10 committed, 11–20 failed, 11–20 again committed, 21–30 with its
        // third row refused, then 21–30 without it, and so on.
        let refused = all[22];
        let expected: Vec<i64> = all.iter().copied().filter(|&s| s != refused).collect();
        assert_eq!(committed, expected);
        // What waits behind each batch: 85 behind the first ten, none behind the last.
        let depths = seen.depths.lock().unwrap().clone();
        assert_eq!(depths.first(), Some(&85), "{depths:?}");
        assert_eq!(depths.last(), Some(&0), "{depths:?}");
    }
}
