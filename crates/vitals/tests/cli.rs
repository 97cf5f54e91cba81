//! The `vitals` binary as a user runs it: config check, one-shot probes, and `serve` end to end
//! against real loopback targets (plus `promtool` on its `/metrics`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vitals");

fn vitals(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("FHIR_TOKEN", "t")
        .env("PGPASSWORD", "p")
        .output()
        .expect("run vitals");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback HTTP server: `/ok` 200, `/down` 503, `/monitor?details` lines with one FAIL,
/// `/health` health+json with a failing component. Runs until the test process exits.
fn target() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (code, ctype, body) = match path.as_str() {
                    "/ok" => ("200 OK", "text/plain", "fine".to_string()),
                    "/down" => ("503 Service Unavailable", "text/plain", "down".to_string()),
                    "/monitor?details" => (
                        "200 OK",
                        "text/plain",
                        "MinLog2 database : OK\nStamdata database : FAIL connection refused\n".to_string(),
                    ),
                    "/health" => (
                        "503 Service Unavailable",
                        "application/health+json",
                        r#"{"status":"fail","checks":{"db:responseTime":[{"status":"fail","observedValue":250,"observedUnit":"ms"}],"cache":[{"status":"pass"}]}}"#.to_string(),
                    ),
                    _ => ("404 Not Found", "text/plain", "no".to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {code}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes());
            });
        }
    });
    addr.to_string()
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Bodies of the API come without chunking for small answers; strip chunk framing if any.
    Some((code, dechunk(&resp, body)))
}

fn dechunk(resp: &str, body: String) -> String {
    if !resp
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body;
    }
    let mut out = String::new();
    let mut rest = body.as_str();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &std::path::Path, config: &std::path::Path) -> Server {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args([
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &addr,
            ])
            .current_dir(dir)
            .env("VITALS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let s = Server { child, addr };
        assert!(
            wait_until(20, || http_get(&s.addr, "/monitor")
                .is_some_and(|(c, _)| c == 200)),
            "server did not come up"
        );
        s
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = http_get(&self.addr, path).expect("request");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// SIGTERM and wait for a clean exit; returns the log.
    fn stop(mut self) -> String {
        self.signal("TERM");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut log = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut log);
                }
                assert!(status.success(), "exit {status}: {log}");
                return log;
            }
            assert!(Instant::now() < end, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn config_check_accepts_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/vitals.toml");
    let (code, out, err) = vitals(&["config", "check", example]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": OK ("), "{out}");
}

#[test]
fn config_check_prints_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[[check]]\nasset = \"a\"\nname = \"x\"\ntype = \"http\"\nurl = \"/relative\"\n\n[[check]]\nasset = \"a\"\nname = \"y\"\ntype = \"tcp\"\naddress = \"nohost\"\ninterval = \"soon\"\n",
    )
    .unwrap();
    let (code, _, err) = vitals(&["config", "check", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("check[0].url: relative URL without a base"),
        "{err}"
    );
    assert!(
        err.contains("check[1].interval: invalid duration \"soon\""),
        "{err}"
    );
    assert!(err.contains("2 error(s)"), "{err}");
}

#[test]
fn probe_exits_like_a_nagios_plugin() {
    let t = target();
    let (code, out, _) = vitals(&["probe", &format!("http://{t}/ok")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VITALS HTTP OK - "), "{out}");
    assert!(
        out.contains("| ") && out.contains("total_ms="),
        "perfdata: {out}"
    );

    let (code, out, _) = vitals(&["probe", &format!("http://{t}/down")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("503"), "{out}");

    let (code, out, _) = vitals(&[
        "probe",
        &format!("http://{t}/monitor?details"),
        "--health",
        "lines",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("CRITICAL Stamdata database: connection refused"),
        "{out}"
    );
    assert!(out.contains("OK MinLog2 database"), "{out}");

    let port = free_port();
    let (code, out, _) = vitals(&["probe", &format!("127.0.0.1:{port}"), "--timeout", "2s"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("refused"), "{out}");

    let (code, out, _) = vitals(&["probe", "no-idea-what-this-is"]);
    assert_eq!(code, 3, "{out}");

    let dummy = "/usr/lib/nagios/plugins/check_dummy";
    assert!(
        std::path::Path::new(dummy).exists(),
        "{dummy} missing: apt-get install monitoring-plugins-basic"
    );
    let (code, out, _) = vitals(&[
        "probe",
        "--type",
        "exec",
        dummy,
        "--",
        "1",
        "disk getting full",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("disk getting full"), "{out}");
}

#[test]
fn serve_refuses_a_public_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without access tokens"),
        "{err}"
    );
}

#[test]
fn serve_end_to_end_components_metrics_reload_and_restart() {
    let t = target();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    let base = format!(
        r#"
[server]
data_dir = "data"

[[asset]]
id = "minlog2"
name = "MinLog2"
groups = ["platform"]

[[check]]
asset = "minlog2"
name = "monitor"
type = "http"
url = "http://{t}/monitor?details"
health = "lines"
interval = "2s"
timeout = "1s"

[[check]]
asset = "api"
name = "health"
type = "http"
url = "http://{t}/health"
health = "auto"
interval = "2s"
timeout = "1s"
"#
    );
    std::fs::write(&config, &base).unwrap();
    let s = Server::start(dir.path(), &config);

    // The failing database component behind the health endpoint is visible as such.
    assert!(wait_until(20, || s.json("/api/v1/assets/minlog2")
        ["status"]
        == "crit"));
    let a = s.json("/api/v1/assets/minlog2");
    let comps = &a["checks"][0]["components"];
    assert_eq!(comps[1]["name"], "Stamdata database");
    assert_eq!(comps[1]["status"], "crit");
    assert!(
        a["checks"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Stamdata database"),
        "{a}"
    );
    assert!(wait_until(20, || s.json("/api/v1/assets/api")["status"] == "crit"));
    let h = s.json("/api/v1/assets/api");
    assert!(
        h["checks"][0]["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "crit"),
        "{h}"
    );

    // /metrics passes promtool's own checks.
    let (code, metrics) = http_get(&s.addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics
        .contains("vitals_check_status{asset=\"minlog2\",check=\"monitor\",type=\"http\"} 2"));
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGHUP with a new check: it appears without a restart; a broken file is refused and the
    // running configuration stays.
    std::fs::write(&config, "this is not toml [").unwrap();
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.json("/api/v1/assets/minlog2")["checks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let extra = format!(
        "{base}\n[[check]]\nasset = \"minlog2\"\nname = \"home\"\ntype = \"http\"\nurl = \"http://{t}/ok\"\ninterval = \"2s\"\ntimeout = \"1s\"\n"
    );
    std::fs::write(&config, extra).unwrap();
    s.signal("HUP");
    assert!(wait_until(20, || {
        s.json("/api/v1/assets/minlog2")["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "home" && c["status"] == "ok")
    }));
    let log = s.stop();
    assert!(log.contains("reload refused"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");

    // History survives a restart and is there before any new probe ran.
    let s = Server::start(dir.path(), &config);
    let obs = s.json("/api/v1/assets/minlog2/observations?check=monitor&limit=1000");
    assert!(!obs["observations"].as_array().unwrap().is_empty(), "{obs}");
    assert_eq!(s.json("/api/v1/assets/minlog2")["status"], "crit");
    s.stop();
}
