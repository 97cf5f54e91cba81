//! `vitals demo`: a simulated estate in one process, so that a newcomer sees every page alive
//! within seconds. It starts, all on loopback:
//!
//! - the emulated AKTIN broker (`vitals_fleet::emulator`) with twelve hospital nodes — steady
//!   ones, a restarted one, one with error bursts, one offline, one without imports, one on an
//!   outdated version — whose clock advances every 20 s; before serving, the collector is run
//!   once per simulated day over the last [`HISTORY_DAYS`] days, so that the fleet pages have
//!   daily figures, errors and a heatmap from the start;
//! - four tiny HTTP services: MinLog2 (`/minlog2/monitor?details` lines; its "Stamdata
//!   database" FAILs for the first 20 s of every minute), a patient API (`application/health+json`
//!   with a warning component), a Spring actuator lab gateway, and a plain patient portal page;
//! - a webhook receiver and a tiny SMTP receiver, so that notifications are really delivered:
//!   the node mails go to each clinic's own people (from the emulated broker's node mapping,
//!   [`Emulator::mapping_json`]) with the support team in Cc, one mail per clinic and state, and
//!   the notification log shows who got each;
//! - the normal serve path on `--listen` with a generated `vitals.toml` in a fresh data
//!   directory under the system's temp dir (printed at start, removed at exit);
//! - a pusher that reports `heart` results for five `clinic-*` assets every 5 s through the
//!   result API (one drifting into crit), and one silence for that drifting clinic.

use anyhow::{bail, Context, Result};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vitals_fleet::emulator::Emulator;

/// The emulated broker's admin key (it only listens on loopback).
const BROKER_KEY: &str = "demo-admin-key";
/// Simulated hospital nodes behind the broker (by the emulator's mix, node 7 stops importing
/// and node 8 goes silent after their first days, node 9 runs an outdated version).
const NODES: u64 = 12;
/// Days of fleet history collected before serving.
const HISTORY_DAYS: i64 = 40;
/// The clinic whose heart rate drifts into crit, and which the demo silences.
const DRIFTING_CLINIC: &str = "clinic-4";
const DAY_MS: i64 = 86_400_000;

/// Runs the demo until SIGTERM/SIGINT.
pub fn run(listen: &str) -> Result<()> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not an address like 127.0.0.1:8080"))?;
    // The demo has no access tokens, so like `serve` it only listens on loopback.
    if !addr.ip().is_loopback() {
        bail!("--listen {addr}: the demo has no access tokens and only listens on loopback (127.0.0.1 or [::1])");
    }
    // Port 0 is resolved now so that the printed URL and the pusher know the real port.
    let addr = if addr.port() == 0 {
        std::net::TcpListener::bind(addr)
            .and_then(|l| l.local_addr())
            .with_context(|| format!("cannot listen on {addr}"))?
    } else {
        addr
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let data_dir = fresh_data_dir()?;
    let result = rt.block_on(demo(addr, &data_dir));
    // Tasks of the simulation hold no files open once the runtime is gone. The data is only
    // the demo's, so it goes also after an error.
    drop(rt);
    if let Err(e) = std::fs::remove_dir_all(&data_dir) {
        tracing::warn!(dir = %data_dir.display(), error = %e, "could not remove the demo's data directory");
    }
    result
}

/// A new directory for this run's database, configuration and alert log.
fn fresh_data_dir() -> Result<PathBuf> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("vitals-demo-{}-{millis}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo's data directory {}", dir.display()))?;
    Ok(dir)
}

/// Where the simulated services listen.
struct Services {
    minlog2: SocketAddr,
    api: SocketAddr,
    actuator: SocketAddr,
    portal: SocketAddr,
    receiver: SocketAddr,
    smtp: SocketAddr,
}

async fn demo(addr: SocketAddr, data_dir: &Path) -> Result<()> {
    let broker = Emulator::start(BROKER_KEY)
        .await
        .context("cannot start the emulated broker")?;
    let services = start_services().await?;
    let mapping = data_dir.join("aktin-mapping.json");
    std::fs::write(&mapping, Emulator::mapping_json(NODES))
        .with_context(|| format!("cannot write {}", mapping.display()))?;
    let config_path = data_dir.join("vitals.toml");
    // A small integration engine: catalogue, three sources, a pipeline and a job.
    let engine = vitals_engine::demo::start(data_dir, addr)
        .await
        .map_err(|e| anyhow::anyhow!("demo engine: {e}"))?;
    let text = config_text(addr, data_dir, &broker.url(), &services) + &engine.config;
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let cfg = vitals_config::Config::load(&config_path)
        .map_err(|e| anyhow::anyhow!("the generated {} is invalid:\n{e}", config_path.display()))?;
    backfill(&broker, &cfg).await?;

    let broker = Arc::new(broker);
    let clock = {
        let broker = broker.clone();
        tokio::spawn(async move {
            // The collector polls every minute; the nodes move on a little more often.
            let mut tick = tokio::time::interval(Duration::from_secs(20));
            loop {
                tick.tick().await;
                broker.advance(vitals_core::SystemClock::now());
            }
        })
    };
    let pusher = tokio::spawn(push_results(addr));

    println!("Vitals demo: open http://{addr}/");
    println!(
        "  {NODES} hospital nodes behind an emulated AKTIN broker at {}",
        broker.url()
    );
    println!(
        "  services: MinLog2 http://{}/minlog2/monitor?details, patient API http://{}/health, \
         lab gateway http://{}/actuator/health, portal http://{}/",
        services.minlog2, services.api, services.actuator, services.portal
    );
    println!(
        "  data and generated configuration: {} (removed at exit)",
        data_dir.display()
    );

    let result = crate::serve::run_given(cfg, addr).await;
    pusher.abort();
    clock.abort();
    drop(engine);
    result
}

/// Populates the broker [`HISTORY_DAYS`] ago and runs the collector once per simulated day up
/// to yesterday, into the demo's store, so that today's first poll finds a history: daily
/// figures, error bursts, a restart, the node that went silent and the one that stopped
/// importing. Observations of these past polls are not needed (today's poll makes the current
/// ones), only the samples, errors and resource changes the collector stores.
async fn backfill(broker: &Emulator, cfg: &vitals_config::Config) -> Result<()> {
    let Some(b) = &cfg.broker else {
        return Ok(());
    };
    let now = vitals_core::SystemClock::now();
    let start = now.add_millis(-HISTORY_DAYS * DAY_MS);
    broker.populate(NODES, start, false);
    let store = vitals_app::open_store(cfg).await?.store;
    let settings = vitals_fleet::collector::Settings::from_config(b)
        .map_err(|e| anyhow::anyhow!("[broker]: {e}"))?;
    let collector = vitals_fleet::collector::Collector::new(settings, store.clone())
        .map_err(|e| anyhow::anyhow!("fleet collector: {e}"))?;
    for k in (1..=HISTORY_DAYS).rev() {
        let t = now.add_millis(-k * DAY_MS);
        broker.advance(t);
        collector
            .collect_once(t)
            .await
            .map_err(|e| anyhow::anyhow!("collecting the simulated fleet history: {e}"))?;
    }
    broker.advance(now);
    store.close().await.context("closing the store")?;
    Ok(())
}

/// Binds `127.0.0.1:0` and serves `app` there.
async fn serve_on_loopback(app: Router, what: &str) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .with_context(|| format!("cannot start the demo's {what}"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("the demo's {what} has no address"))?;
    let what = what.to_string();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(service = %what, error = %e, "demo service stopped");
        }
    });
    Ok(addr)
}

async fn start_services() -> Result<Services> {
    let started = Instant::now();
    let minlog2 = Router::new().route(
        "/minlog2/monitor",
        get(move || async move { minlog2_monitor(started.elapsed()) }),
    );
    let requests = Arc::new(AtomicU64::new(0));
    let api = Router::new().route(
        "/health",
        get(move || {
            let n = requests.fetch_add(1, Ordering::Relaxed);
            async move { patient_api_health(n) }
        }),
    );
    let actuator = Router::new().route("/actuator/health", get(actuator_health));
    let portal = Router::new().route(
        "/",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><title>Patient portal</title><h1>Patient portal</h1><p>Welcome.</p>",
            )
        }),
    );
    let receiver = Router::new().route(
        "/hook",
        post(|body: axum::body::Bytes| async move {
            tracing::debug!(
                bytes = body.len(),
                "demo webhook receiver: notification received"
            );
            StatusCode::OK
        }),
    );
    Ok(Services {
        minlog2: serve_on_loopback(minlog2, "MinLog2 service").await?,
        api: serve_on_loopback(api, "patient API").await?,
        actuator: serve_on_loopback(actuator, "lab gateway").await?,
        portal: serve_on_loopback(portal, "portal").await?,
        receiver: serve_on_loopback(receiver, "webhook receiver").await?,
        smtp: smtp_sink().await?,
    })
}

/// Most bytes of one SMTP line and of one message the demo's receiver reads.
const SMTP_LINE: u64 = 4096;
const SMTP_MESSAGE: usize = 8 * 1024 * 1024;

/// A tiny SMTP receiver on loopback for the demo's mails: enough of RFC 5321 for a client that
/// sends (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT); messages are read and dropped.
async fn smtp_sink() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the demo's SMTP receiver")?;
    let addr = listener
        .local_addr()
        .context("the demo's SMTP receiver has no address")?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(async move {
                        if let Err(e) = smtp_session(sock).await {
                            tracing::debug!(error = %e, "demo SMTP session ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "demo SMTP receiver stopped");
                    return;
                }
            }
        }
    });
    Ok(addr)
}

async fn smtp_session(sock: tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let (r, mut w) = sock.into_split();
    let mut r = tokio::io::BufReader::new(r);
    w.write_all(b"220 demo-smtp.invalid ESMTP Vitals demo\r\n")
        .await?;
    let mut line = String::new();
    loop {
        line.clear();
        if (&mut r).take(SMTP_LINE).read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-demo-smtp.invalid\r\n250-8BITMIME\r\n250 SIZE 8388608\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut size = 0usize;
                loop {
                    line.clear();
                    if (&mut r).take(SMTP_LINE).read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    size += line.len();
                    if size > SMTP_MESSAGE {
                        w.write_all(b"552 message too large\r\n").await?;
                        return Ok(());
                    }
                }
                tracing::debug!(bytes = size, "demo SMTP receiver: mail received");
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        w.write_all(answer).await?;
    }
}

/// Whether MinLog2's database is failing `elapsed` after the demo started: for the first 20 s
/// of every minute, so that the demo starts with a failure and then shows recoveries.
fn stamdata_failing(elapsed: Duration) -> bool {
    elapsed.as_secs() % 60 < 20
}

/// MinLog2's `/monitor?details`: one line per dependency; 503 while the database fails.
fn minlog2_monitor(elapsed: Duration) -> axum::response::Response {
    let failing = stamdata_failing(elapsed);
    let db = if failing {
        "Stamdata database : FAIL connection refused (stamdata-db:5432)"
    } else {
        "Stamdata database : OK"
    };
    let body = format!("MinLog2 service : OK\n{db}\nAudit log : OK\nSOSI STS : OK\n");
    let code = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// The patient API's `application/health+json`: its cache answers slowly (warn) on every
/// third request.
fn patient_api_health(n: u64) -> axum::response::Response {
    let (cache, overall, ms) = if n % 3 == 2 {
        ("warn", "warn", 870)
    } else {
        ("pass", "pass", 4)
    };
    let body = serde_json::json!({
        "status": overall,
        "version": "2.3.1",
        "checks": {
            "postgres:connections": [{"componentId": "patient-db", "status": "pass", "observedValue": 12}],
            "redis:responseTime": [{"componentId": "cache", "status": cache, "observedValue": ms, "observedUnit": "ms"}]
        }
    });
    (
        [(header::CONTENT_TYPE, "application/health+json")],
        body.to_string(),
    )
        .into_response()
}

async fn actuator_health() -> axum::response::Response {
    let body = serde_json::json!({
        "status": "UP",
        "components": {
            "db": {"status": "UP", "details": {"database": "PostgreSQL"}},
            "diskSpace": {"status": "UP", "details": {"total": 107374182400u64, "free": 53687091200u64}},
            "hl7Listener": {"status": "UP"}
        }
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/vnd.spring-boot.actuator.v3+json",
        )],
        body.to_string(),
    )
        .into_response()
}

/// A TOML basic string (Rust's debug quoting escapes what TOML needs for paths and URLs).
fn q(s: &str) -> String {
    format!("{s:?}")
}

fn config_text(addr: SocketAddr, data: &Path, broker: &str, s: &Services) -> String {
    let data_str = data.display().to_string();
    let alerts = data.join("alerts.jsonl").display().to_string();
    let mut t = format!(
        r#"# Generated by `vitals demo`.
[server]
listen = {listen}
data_dir = {data}
public_url = {public}

[[asset]]
id = "minlog2"
name = "MinLog2 (national log service)"
groups = ["platform"]
labels = {{ env = "demo", team = "nsp" }}
metadata = {{ owner = "NSP operations" }}

[[asset]]
id = "patient-api"
name = "Patient API"
groups = ["platform"]
labels = {{ env = "demo" }}

[[asset]]
id = "lab-gateway"
name = "Lab gateway (Spring Boot)"
groups = ["platform"]

[[asset]]
id = "portal"
name = "Patient portal"
groups = ["web"]

[[check]]
asset = "minlog2"
name = "monitor"
type = "http"
url = {minlog2}
health = "lines"
interval = "5s"
timeout = "2s"
description = "service and database access; one component per dependency"

[[check]]
asset = "patient-api"
name = "health"
type = "http"
url = {api}
health = "health-json"
interval = "10s"
timeout = "2s"

[[check]]
asset = "lab-gateway"
name = "actuator"
type = "http"
url = {actuator}
health = "actuator"
interval = "10s"
timeout = "2s"

[[check]]
asset = "portal"
name = "home"
type = "http"
url = {portal}
interval = "10s"
timeout = "2s"

[[score]]
test = "heart"
groups = ["clinics"]
field = "heartrate"
kind = "int"
rules = [{{ above = 120, score = 4 }}, {{ above = 100, score = 3 }}, {{ above = 80, score = 2 }}, {{ score = 1 }}]
stale_after = "1m"

[broker]
url = {broker}
api_key = "{BROKER_KEY}"
interval = "1m"
mapping = {mapping}
expected_dwh_version = "1.5.1"
expected_i2b2_version = "1.5.3"
working_dir = {workdir}
[broker.contacts]
"3" = ["it-support@clinic-3.example.org"]

# The clinics' mails: each node's own people in To, the support team in Cc.
[[notifier]]
id = "clinic-mail"
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
tls = "none"
from = "AKTIN Monitoring <monitoring@aktin.example.org>"
to = ["support@aktin.example.org"]
to_contacts = true

[[notifier]]
id = "alert-log"
type = "logfile"
path = {alerts}

[[notifier]]
id = "hook"
type = "webhook"
url = {hook}

[[rule]]
id = "services-down"
description = "a service or clinic going crit"
groups = ["platform", "web", "clinics"]
status = "crit"
notifiers = ["alert-log", "hook"]
reminder = "2m"

# broker-monitor's mail rules, one rule per state: a mail at once, again when a collection
# still finds the state after the reminder interval, none on recovery or acknowledgement.
[[rule]]
id = "aktin-offline"
groups = ["aktin"]
checks = ["status"]
kind = "threshold"
value = "offline"
above = 0.5
notifiers = ["clinic-mail", "alert-log"]
reminder = "1h"
reminder_at = "observed"
send = ["firing", "reminder"]
template = "aktin_offline"

[[rule]]
id = "aktin-no-imports"
groups = ["aktin"]
checks = ["status"]
kind = "threshold"
value = "no_imports"
above = 0.5
notifiers = ["clinic-mail", "alert-log"]
reminder = "1h"
reminder_at = "observed"
send = ["firing", "reminder"]
template = "aktin_no_imports"

[[rule]]
id = "aktin-outdated"
groups = ["aktin"]
checks = ["version"]
kind = "threshold"
value = "outdated"
above = 0.5
severity = "warn"
notifiers = ["clinic-mail", "alert-log"]
reminder = "1h"
reminder_at = "observed"
send = ["firing", "reminder"]
template = "aktin_outdated"

[[status_page]]
slug = "clinics"
title = "Emergency departments: data services"
description = "For the clinics: whether the services they send data to work. Questions: the NSP service desk."
assets = ["patient-api", "portal"]
groups = ["clinics"]
"#,
        listen = q(&addr.to_string()),
        data = q(&data_str),
        public = q(&format!("http://{addr}")),
        minlog2 = q(&format!("http://{}/minlog2/monitor?details", s.minlog2)),
        api = q(&format!("http://{}/health", s.api)),
        actuator = q(&format!("http://{}/actuator/health", s.actuator)),
        portal = q(&format!("http://{}/", s.portal)),
        broker = q(broker),
        mapping = q(&data.join("aktin-mapping.json").display().to_string()),
        workdir = q(&data.join("aktin-workdir").display().to_string()),
        smtp_port = s.smtp.port(),
        alerts = q(&alerts),
        hook = q(&format!("http://{}/hook", s.receiver)),
    );
    for (i, name) in CLINICS.iter().enumerate() {
        t.push_str(&format!(
            "\n[[asset]]\nid = \"clinic-{}\"\nname = {}\ngroups = [\"clinics\"]\n",
            i + 1,
            q(name)
        ));
    }
    t
}

const CLINICS: [&str; 5] = [
    "Klinikum Nordstadt ED",
    "St. Marien ED",
    "Uniklinik Süd ED",
    "Kreiskrankenhaus Ost ED",
    "Stadtspital West ED",
];

/// The heart rate clinic `i` (1-based) reports at push number `n`: most are calm, clinic 5
/// runs warm (warn), and the drifting clinic climbs past 100 (crit) within three pushes.
fn heartrate(i: usize, n: u64) -> u64 {
    let wobble = (n + i as u64 * 3) % 7;
    match i {
        4 => (96 + 6 * n).min(128) + wobble,
        5 => 84 + wobble,
        _ => 62 + 3 * i as u64 + wobble,
    }
}

/// Creates the silence for the drifting clinic as soon as the server answers — before its
/// first result, so that its alert is silenced from the start — then pushes `heart` results
/// for the clinics every 5 s through the result API.
async fn push_results(addr: SocketAddr) {
    let silence = serde_json::json!({
        "matchers": {"assets": [DRIFTING_CLINIC]},
        "duration": "8h",
        "author": "demo",
        "comment": "heart-rate sensor replaced tomorrow",
    })
    .to_string();
    // The server starts right after this task; the first tries may be refused.
    let mut wait = tokio::time::interval(Duration::from_millis(250));
    loop {
        wait.tick().await;
        match http(addr, "POST", "/api/v1/silences", &silence).await {
            Ok((201, _)) => break,
            Ok((code, text)) => {
                tracing::warn!(code, answer = %text, "demo: creating the silence was refused");
                break;
            }
            Err(e) => tracing::debug!(error = %e, "demo: server not up yet"),
        }
    }
    let notice = serde_json::json!({
        "kind": "maintenance",
        "title": "Patient portal maintenance on Saturday, 22:00–23:00",
        "body": "The portal is updated; logins may fail for a few minutes.\n\nData from the clinics is not affected.",
    })
    .to_string();
    match http(
        addr,
        "POST",
        "/api/v1/status-pages/clinics/notices",
        &notice,
    )
    .await
    {
        Ok((201, _)) => {}
        Ok((code, text)) => {
            tracing::warn!(code, answer = %text, "demo: posting the notice was refused")
        }
        Err(e) => tracing::warn!(error = %e, "demo: posting the notice failed"),
    }
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for n in 0u64.. {
        tick.tick().await;
        let results: Vec<serde_json::Value> = (1..=CLINICS.len())
            .map(|i| {
                serde_json::json!({
                    "asset": format!("clinic-{i}"),
                    "check": "heart",
                    "values": {"heartrate": heartrate(i, n)},
                    "reason": format!("heart rate {}/min", heartrate(i, n)),
                })
            })
            .collect();
        let body = serde_json::json!({ "results": results }).to_string();
        match http(addr, "POST", "/api/v1/results", &body).await {
            Ok((200, _)) => {}
            Ok((code, text)) => {
                tracing::warn!(code, answer = %text, "demo: pushing results was refused")
            }
            Err(e) => tracing::warn!(error = %e, "demo: pushing results failed"),
        }
    }
}

/// One HTTP/1.1 request to the demo's own server (the binary has no HTTP client; this is all
/// the pusher needs): returns the status code and the raw answer.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10s"))??;
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:.80}")))?;
    Ok((code, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_fails_a_third_of_every_minute() {
        assert!(stamdata_failing(Duration::from_secs(0)));
        assert!(stamdata_failing(Duration::from_secs(19)));
        assert!(!stamdata_failing(Duration::from_secs(20)));
        assert!(!stamdata_failing(Duration::from_secs(59)));
        assert!(stamdata_failing(Duration::from_secs(61)));
    }

    #[test]
    fn the_drifting_clinic_goes_crit_and_the_others_stay_below() {
        assert!(heartrate(4, 0) <= 102);
        assert!((3..50).all(|n| heartrate(4, n) > 100));
        assert!((0..50).all(|n| heartrate(5, n) > 80 && heartrate(5, n) <= 100));
        assert!((0..50).all(|n| (1..=3).all(|i| heartrate(i, n) <= 80)));
    }

    #[test]
    fn the_generated_configuration_is_valid() {
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let s = Services {
            minlog2: a,
            api: a,
            actuator: a,
            portal: a,
            receiver: a,
            smtp: a,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("aktin-mapping.json"),
            Emulator::mapping_json(NODES),
        )
        .unwrap();
        let text = config_text(a, dir.path(), "http://127.0.0.1:9", &s);
        let cfg = vitals_config::Config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.checks.len(), 4);
        assert!(cfg.broker.is_some());
        assert_eq!(cfg.notifiers.len(), 3);
        assert_eq!(cfg.rules.len(), 4);
        assert_eq!(cfg.status_pages.len(), 1);
    }
}
