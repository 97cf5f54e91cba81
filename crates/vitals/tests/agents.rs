//! Site agents with real processes on loopback: `vitals serve` and `vitals agent` as built,
//! a loopback HTTP target, outages by stopping the server, `kill -9` of an agent.

mod common;

use common::{free_port, target, wait_until, BIN};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vitals_core::Timestamp;

const ADMIN: &str = "admin-secret-0123456789";

fn token_of(location: &str) -> String {
    format!("{location}-agent-secret-0123456789")
}

/// A config with an admin token, one agent token per location and `checks` (TOML).
fn config(dir: &Path, locations: &[&str], stale: &str, checks: &str) -> PathBuf {
    let mut t = format!(
        "[server]\ndata_dir = \"data\"\n\n[ingest]\nagent_stale_after = \"{stale}\"\n\n\
         [[token]]\nname = \"admin\"\nrole = \"admin\"\nsecret = \"{ADMIN}\"\n\n"
    );
    for l in locations {
        t.push_str(&format!(
            "[[token]]\nname = \"agent-{l}\"\nrole = \"reporter\"\nsecret = \"{}\"\nlocation = \"{l}\"\n\n",
            token_of(l)
        ));
    }
    t.push_str(checks);
    let p = dir.join("vitals.toml");
    std::fs::write(&p, t).unwrap();
    p
}

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn stop(mut self) -> String {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log();
                assert!(status.success(), "exit {status}: {log}");
                return log;
            }
            assert!(Instant::now() < end, "no exit on SIGTERM: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, config: &Path, addr: &str, env: &[(&str, String)]) -> Proc {
    let log = dir.join(format!("serve-{}.log", free_port()));
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        addr,
    ])
    .current_dir(dir)
    .env("VITALS_LOG", "info")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let p = Proc {
        child: cmd.spawn().unwrap(),
        log,
    };
    assert!(
        wait_until(30, || get(addr, "/monitor").is_some_and(|(c, _)| c == 200)),
        "server did not come up: {}",
        p.log()
    );
    p
}

fn agent(dir: &Path, addr: &str, location: &str, env: &[(&str, String)]) -> Proc {
    agent_at(dir, &format!("http://{addr}"), location, &[], env)
}

/// An agent for `server` (a URL) with further command-line arguments.
fn agent_at(
    dir: &Path,
    server: &str,
    location: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> Proc {
    let data = dir.join(format!("agent-{location}"));
    let log = dir.join(format!("agent-{location}-{}.log", free_port()));
    let mut cmd = Command::new(BIN);
    cmd.args([
        "agent",
        "--server",
        server,
        "--location",
        location,
        "--data-dir",
        data.to_str().unwrap(),
        "--refresh",
        "1s",
        "--heartbeat",
        "1s",
        "--retry-max",
        "1s",
        "--batch",
        "20",
    ])
    .args(extra)
    .env("VITALS_AGENT_TOKEN", token_of(location))
    .env("VITALS_LOG", "info")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().unwrap(),
        log,
    }
}

/// GET with the admin token: (status, body).
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    request(addr, "GET", path, ADMIN, "")
}

fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, common::dechunk(&resp, body)))
}

fn json(addr: &str, path: &str) -> serde_json::Value {
    let (code, body) = get(addr, path).expect("request");
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The current status and reason of `asset/check`.
fn current(addr: &str, asset: &str, check: &str) -> Option<(String, String)> {
    let (code, body) = get(addr, &format!("/api/v1/assets/{asset}"))?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let c = v["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == check)?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

/// Times (ms) of every stored observation of `asset/check`, oldest first.
fn times(addr: &str, asset: &str, check: &str) -> Vec<i64> {
    let v = json(
        addr,
        &format!("/api/v1/assets/{asset}/observations?check={check}&limit=10000"),
    );
    let mut t: Vec<i64> = v["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| Timestamp::parse(o["time"].as_str().unwrap()).unwrap().0)
        .collect();
    t.reverse();
    t
}

fn agent_info(addr: &str, location: &str) -> serde_json::Value {
    json(addr, "/api/v1/agents")["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["location"] == location)
        .cloned()
        .unwrap_or_default()
}

/// A number the agent logged at exit (`appended=12`).
fn logged(log: &str, key: &str) -> u64 {
    let line = log
        .lines()
        .rfind(|l| l.contains("vitals agent stopped"))
        .unwrap_or_else(|| panic!("no exit line: {log}"));
    let at = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("{key}: {line}"));
    line[at + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key}: {line}"))
}

/// Results still in an agent's buffer file.
fn in_buffer(db: &Path) -> usize {
    rusqlite::Connection::open(db)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM results", [], |r| r.get::<_, i64>(0)))
        .map(|n| n as usize)
        .unwrap_or(0)
}

const ONE_CHECK: &str = r#"
[[check]]
asset = "svc"
name = "api"
type = "http"
url = "http://${TARGET}/ok"
interval = "1s"
timeout = "900ms"
locations = ["site-a"]
"#;

/// The server is away for a while (60 s by default; `AGENT_OUTAGE_SECS` shortens it) while the
/// agent keeps probing: after it is back every result arrives, in order, none twice, with
/// its original time.
#[test]
fn server_outage_every_result_arrives_once_in_order() {
    let outage: u64 = std::env::var("AGENT_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let env = [("TARGET", target())];
    let cfg = config(dir.path(), &["site-a"], "1h", ONE_CHECK);
    let addr = format!("127.0.0.1:{}", free_port());
    let server = serve(dir.path(), &cfg, &addr, &env);
    let a = agent(dir.path(), &addr, "site-a", &env);
    assert!(
        wait_until(30, || times(&addr, "svc", "api@site-a").len() >= 3),
        "no results: {}",
        a.log()
    );
    assert_eq!(current(&addr, "svc", "api").unwrap().0, "ok");
    let before = times(&addr, "svc", "api@site-a").len();
    server.stop();
    let down_at = Instant::now();
    let down_ms = now_ms();
    std::thread::sleep(Duration::from_secs(outage));
    let down_for = down_at.elapsed();
    let server = serve(dir.path(), &cfg, &addr, &env);
    // The buffer drains: the agent says so with its next request.
    assert!(
        wait_until(60, || {
            let i = agent_info(&addr, "site-a");
            i["buffer_depth"] == 0 && i["last_seen"].is_number()
        }),
        "buffer not drained: {}",
        a.log()
    );
    let log = a.stop();
    assert!(log.contains("server not reached"), "{log}");
    let t = times(&addr, "svc", "api@site-a");
    let unique: BTreeSet<i64> = t.iter().copied().collect();
    assert_eq!(unique.len(), t.len(), "a result twice: {t:?}");
    // Every result the agent produced is on the server or (made while stopping) still in
    // its buffer: none lost.
    let left = in_buffer(&dir.path().join("agent-site-a/agent-buffer.db"));
    assert_eq!(
        t.len() + left,
        logged(&log, "appended") as usize,
        "stored {} + buffered {left}: {log}",
        t.len()
    );
    // The outage is covered by results with their own times, probed while the server was away.
    let during = t
        .iter()
        .filter(|&&x| x > down_ms && x < down_ms + down_for.as_millis() as i64)
        .count();
    assert!(
        during as u64 * 2 >= down_for.as_secs(),
        "{during} results during an outage of {down_for:?} ({before} before)"
    );
    // The verdict followed, with the same times (history), and is ok now.
    let v = times(&addr, "svc", "api");
    assert!(
        !v.is_empty() && v.len() <= t.len(),
        "{} verdicts, {} results",
        v.len(),
        t.len()
    );
    assert_eq!(current(&addr, "svc", "api").unwrap().0, "ok");
    let i = agent_info(&addr, "site-a");
    assert_eq!(i["dropped"], 0);
    assert!(i["clock_offset_ms"].as_i64().unwrap().abs() < 1000, "{i}");
    server.stop();
}

/// Results buffered while the server is away survive `kill -9` of the agent: the restarted
/// agent sends every one of them.
#[test]
fn kill_9_mid_buffer_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TARGET", target())];
    let cfg = config(dir.path(), &["site-a"], "1h", ONE_CHECK);
    let addr = format!("127.0.0.1:{}", free_port());
    // The server runs first so the agent gets its assignment (and saves it) …
    let server = serve(dir.path(), &cfg, &addr, &env);
    let a = agent(dir.path(), &addr, "site-a", &env);
    assert!(
        wait_until(30, || !times(&addr, "svc", "api@site-a").is_empty()),
        "no results: {}",
        a.log()
    );
    // … then goes away; the agent buffers.
    server.stop();
    let db = dir.path().join("agent-site-a/agent-buffer.db");
    let buffered = || in_buffer(&db);
    assert!(
        wait_until(30, || buffered() >= 5),
        "nothing buffered: {}",
        a.log()
    );
    a.kill9();
    // What the killed agent had on disk, by time.
    let on_disk: Vec<i64> = {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mut st = c.prepare("SELECT body FROM results ORDER BY seq").unwrap();
        let rows = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_slice(&b.unwrap()).unwrap();
                v["time"].as_i64().unwrap()
            })
            .collect();
        rows
    };
    assert!(on_disk.len() >= 5);
    // Restarted while the server is still away: it probes from its saved assignment.
    let a = agent(dir.path(), &addr, "site-a", &env);
    assert!(
        wait_until(30, || buffered() >= on_disk.len() + 3),
        "the restarted agent does not probe: {}",
        a.log()
    );
    let server = serve(dir.path(), &cfg, &addr, &env);
    assert!(
        wait_until(60, || {
            let i = agent_info(&addr, "site-a");
            i["buffer_depth"] == 0 && i["last_seen"].is_number()
        }),
        "buffer not drained: {}",
        a.log()
    );
    a.stop();
    let t = times(&addr, "svc", "api@site-a");
    let stored: BTreeSet<i64> = t.iter().copied().collect();
    assert_eq!(stored.len(), t.len(), "a result twice: {t:?}");
    for x in &on_disk {
        assert!(stored.contains(x), "buffered result at {x} lost: {t:?}");
    }
    server.stop();
}

const QUORUM_CHECKS: &str = r#"
[[check]]
asset = "svc"
name = "api"
type = "http"
url = "http://${TARGET}/ok"
interval = "1s"
timeout = "900ms"
locations = ["site-a", "site-b", "site-c"]
quorum = 2

[[check]]
asset = "svc"
name = "portal"
type = "http"
url = "http://${PORTAL}/ok"
interval = "1s"
timeout = "900ms"
locations = ["site-a", "site-b", "site-c"]
quorum = 2
"#;

/// Three locations, one of which cannot reach the target: `warn` naming it, not `crit`; two
/// that cannot: `crit`. An agent that goes away makes its checks `unknown`, its own check
/// `crit` with an alert, and drops out of the verdicts.
#[test]
fn three_locations_quorum_and_a_missing_agent() {
    let dir = tempfile::tempdir().unwrap();
    let up = target();
    // A port nothing listens on: "this location cannot reach the target".
    let cut = format!("127.0.0.1:{}", free_port());
    let cfg = config(
        dir.path(),
        &["site-a", "site-b", "site-c"],
        "3s",
        QUORUM_CHECKS,
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let server = serve(
        dir.path(),
        &cfg,
        &addr,
        &[("TARGET", up.clone()), ("PORTAL", up.clone())],
    );
    // Each site resolves ${TARGET} and ${PORTAL} in its own environment (its own network).
    let a = agent(
        dir.path(),
        &addr,
        "site-a",
        &[("TARGET", up.clone()), ("PORTAL", cut.clone())],
    );
    let b = agent(
        dir.path(),
        &addr,
        "site-b",
        &[("TARGET", up.clone()), ("PORTAL", up.clone())],
    );
    let c = agent(
        dir.path(),
        &addr,
        "site-c",
        &[("TARGET", cut.clone()), ("PORTAL", cut.clone())],
    );
    let settled = |check: &str, status: &str, needle: &str| {
        wait_until(30, || {
            current(&addr, "svc", check).is_some_and(|(s, r)| s == status && r.contains(needle))
        })
    };
    assert!(
        settled("api", "warn", "only site-c sees crit"),
        "api: {:?}\n{}",
        current(&addr, "svc", "api"),
        c.log()
    );
    assert_eq!(current(&addr, "svc", "api@site-c").unwrap().0, "crit");
    assert_eq!(current(&addr, "svc", "api@site-a").unwrap().0, "ok");
    assert!(
        settled("portal", "crit", "site-a, site-c"),
        "portal: {:?}",
        current(&addr, "svc", "portal")
    );
    // The asset page shows every location's view beside the verdict.
    let (code, page) = get(&addr, "/assets/svc").unwrap();
    assert_eq!(code, 200);
    for l in ["site-a", "site-b", "site-c"] {
        assert!(
            page.contains(&format!("api@{l}")),
            "{l} missing from the page"
        );
        assert!(page.contains(&format!("from {l}</span>")), "{l} not named");
    }
    // The agent token is for its own location's checks only.
    let (code, body) = request(
        &addr,
        "POST",
        "/api/v1/results",
        &token_of("site-a"),
        r#"{"results":[{"asset":"svc","check":"x","status":"ok"}]}"#,
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    let now = now_ms();
    let (code, body) = request(
        &addr,
        "POST",
        "/api/v1/agent/results",
        &token_of("site-a"),
        &format!(
            r#"{{"agent":{{"version":"x"}},"results":[{{"id":"forged-1","obs":{{"asset":"svc","check":"other","time":{now},"status":"ok","score":1,"duration_us":0}}}}]}}"#
        ),
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not assigned"), "{body}");
    let (code, _) = request(
        &addr,
        "GET",
        "/api/v1/agent/checks?location=site-b",
        &token_of("site-a"),
        "",
    )
    .unwrap();
    assert_eq!(code, 403);
    // site-c goes away: its checks are unknown, not crit; the verdict is taken without it.
    c.kill9();
    assert!(
        wait_until(30, || current(&addr, "svc", "api@site-c").is_some_and(
            |(s, r)| s == "unknown" && r.contains("agent site-c not seen")
        )),
        "api@site-c: {:?}",
        current(&addr, "svc", "api@site-c")
    );
    assert!(
        settled("api", "ok", "ok from site-a, site-b"),
        "api: {:?}",
        current(&addr, "svc", "api")
    );
    // Only site-a still fails the portal now: below the quorum.
    assert!(
        settled("portal", "warn", "only site-a sees crit"),
        "portal: {:?}",
        current(&addr, "svc", "portal")
    );
    let (s, r) = current(&addr, "agent-site-c", "agent").unwrap();
    assert_eq!(s, "crit", "{r}");
    assert!(r.contains("not seen"), "{r}");
    assert!(agent_info(&addr, "site-c")["stale"] == true);
    assert!(
        wait_until(10, || json(&addr, "/api/v1/alerts")
            .to_string()
            .contains("agent-site-c")),
        "no alert for the agent: {}",
        json(&addr, "/api/v1/alerts")
    );
    a.stop();
    b.stop();
    server.stop();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// GET with extra headers; the answer's status, headers and body.
fn get_with(addr: &str, path: &str, token: &str, extra: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (
        code,
        head.to_string(),
        common::dechunk(&resp, body.to_string()),
    )
}

/// The assignment is versioned (ETag, 304 when unchanged); a reload that adds a check for the
/// location reaches the running agent, which runs it.
#[test]
fn assignment_is_versioned_and_followed_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TARGET", target())];
    let cfg = config(dir.path(), &["site-a"], "1h", ONE_CHECK);
    let addr = format!("127.0.0.1:{}", free_port());
    let server = serve(dir.path(), &cfg, &addr, &env);
    let tok = token_of("site-a");
    let (code, head, body) = get_with(&addr, "/api/v1/agent/checks", &tok, "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["checks"].as_str().unwrap().contains("${TARGET}"), "{v}");
    let etag = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .expect("an ETag")
        .trim()
        .to_string();
    let (code, _, _) = get_with(
        &addr,
        "/api/v1/agent/checks",
        &tok,
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(code, 304);
    let a = agent(dir.path(), &addr, "site-a", &env);
    assert!(
        wait_until(30, || !times(&addr, "svc", "api@site-a").is_empty()),
        "{}",
        a.log()
    );
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&ONE_CHECK.replace("name = \"api\"", "name = \"api2\""));
    std::fs::write(&cfg, text).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(
        wait_until(30, || current(&addr, "svc", "api2@site-a")
            .is_some_and(|(s, _)| s == "ok")),
        "api2 not run: {}",
        a.log()
    );
    assert!(a.log().contains("new assignment"));
    let (code, _, _) = get_with(
        &addr,
        "/api/v1/agent/checks",
        &tok,
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(code, 200, "a new version after the reload");
    a.stop();
    server.stop();
}

/// Over HTTPS with the site's own CA (`--ca-cert`) the agent fetches its checks and delivers
/// results; without that CA it is refused by the certificate check and sends nothing. A plain
/// `http://` server beyond this machine is refused before anything is sent.
#[test]
fn https_with_the_sites_ca_and_never_clear_text_across_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::pki("Vitals Agent Test CA");
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), ca).unwrap();
    std::fs::write(p("cert.pem"), cert).unwrap();
    std::fs::write(p("key.pem"), key).unwrap();
    let cfg = config(dir.path(), &["site-a", "site-b"], "1m", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[server]\n",
        "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
        1,
    ) + &ONE_CHECK.replace("[\"site-a\"]", "[\"site-a\", \"site-b\"]");
    std::fs::write(&cfg, text).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let tgt = target();
    let log = p("serve-tls.log");
    let mut server = Command::new(BIN)
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .current_dir(dir.path())
        .env("TARGET", &tgt)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let monitor = format!("https://{addr}/monitor");
    let up = wait_until(30, || {
        common::vitals(&[
            "probe",
            &monitor,
            "--ca-file",
            p("ca.pem").to_str().unwrap(),
            "--health",
            "none",
        ])
        .0 == 0
    });
    let debug = [
        ("VITALS_LOG", "info,vitals_agent=debug".to_string()),
        ("TARGET", tgt.clone()),
    ];
    let trusting = agent_at(
        dir.path(),
        &format!("https://{addr}"),
        "site-a",
        &["--ca-cert", p("ca.pem").to_str().unwrap()],
        &debug,
    );
    let untrusting = agent_at(
        dir.path(),
        &format!("https://{addr}"),
        "site-b",
        &[],
        &debug,
    );
    // A debug line per answered request; an empty one is the agent's heartbeat.
    let delivered = up
        && wait_until(30, || {
            trusting
                .log()
                .lines()
                .any(|l| l.contains("results delivered") && !l.contains("sent=0 "))
        });
    // The other agent has tried for as long: its fetches and sends fail at the certificate.
    let refused = wait_until(10, || untrusting.log().contains("assignment not fetched"));
    let (a_log, b_log) = (trusting.stop(), untrusting.stop());
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        up,
        "HTTPS server did not come up: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(delivered && logged(&a_log, "delivered") > 0, "{a_log}");
    assert!(refused, "{b_log}");
    assert!(b_log.to_lowercase().contains("certificate"), "{b_log}");
    assert_eq!(logged(&b_log, "delivered"), 0, "{b_log}");

    // Clear text to another machine: refused at start, naming why and the way out.
    let (code, _, err) = common::vitals(&[
        "agent",
        "--server",
        "http://192.0.2.1:8080",
        "--location",
        "site-c",
        "--token",
        "t",
        "--data-dir",
        p("agent-site-c").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unencrypted") && err.contains("--allow-http"),
        "{err}"
    );
}
