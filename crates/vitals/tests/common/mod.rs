//! Helpers shared by the binary's integration tests: run `vitals`, talk HTTP to it, serve
//! loopback targets.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vitals");

pub fn vitals(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("FHIR_TOKEN", "t")
        .env("PGPASSWORD", "p")
        .env("MINLOG2_DB_PASSWORD", "p")
        .env("SMTP_PASSWORD", "p")
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.example/services/x",
        )
        .env("TEAMS_WEBHOOK_URL", "https://teams.example/workflows/x")
        .env("WEBHOOK_SECRET", "s")
        .env("BROKER_API_KEY", "k")
        .env("CONFLUENCE_TOKEN", "c")
        .env("VITALS_ADMIN_TOKEN", "admin-token-for-the-example-0001")
        .env("CLINIC17_TOKEN", "clinic-token-for-the-example-0001")
        .env(
            "CLINIC17_AGENT_TOKEN",
            "clinic-agent-token-for-the-example-01",
        )
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
pub fn target() -> String {
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

pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
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

pub fn dechunk(resp: &str, body: String) -> String {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(dir: &std::path::Path, config: &std::path::Path) -> Server {
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
            wait_until(60, || http_get(&s.addr, "/monitor")
                .is_some_and(|(c, _)| c == 200)),
            "server did not come up"
        );
        s
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// `kill -9`, and wait until the process is gone.
    pub fn kill9(&mut self) {
        self.signal("KILL");
        let end = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "vitals did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = http_get(&self.addr, path).expect("request");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// SIGTERM and wait for a clean exit; returns the log.
    pub fn stop(mut self) -> String {
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

/// POSTs a body; `(status, body)`.
pub fn http_post(addr: &str, path: &str, ctype: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let b = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, dechunk(&resp, b)))
}

/// A loopback HTTP receiver on `listener` that answers 200 to every POST and keeps the bodies.
pub fn receiver(listener: TcpListener) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let got: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Read headers, then exactly Content-Length bytes of body.
            let body = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if rest.len() >= len {
                        break Some(rest[..len].to_string());
                    }
                }
            };
            if let Some(b) = body {
                keep.lock().unwrap().push(b);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    got
}

/// A writer posts batches of 50 results (`node-1`/`import`, ids `r-{time}`) as fast as it can;
/// once 2,000 are answered 200, the server gets `kill -9` mid-stream. Returns the times of every
/// result that was answered 200 — what the server acknowledged and must still have.
pub fn kill9_while_writing(s: &mut Server) -> Vec<i64> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let addr = s.addr.clone();
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (a2, s2) = (acked.clone(), stop.clone());
    let writer = std::thread::spawn(move || {
        let base = 1_700_000_000_000i64;
        for batch in 0..100_000i64 {
            if s2.load(Ordering::Relaxed) {
                break;
            }
            let times: Vec<i64> = (0..50).map(|i| base + batch * 50 + i).collect();
            let results: Vec<serde_json::Value> = times
                .iter()
                .map(|t| serde_json::json!({"asset": "node-1", "check": "import", "status": "ok", "time": t, "id": format!("r-{t}")}))
                .collect();
            let body = serde_json::json!({ "results": results }).to_string();
            match http_post(&addr, "/api/v1/results", "application/json", &body) {
                Some((200, _)) => a2.lock().unwrap().extend(times),
                _ => break, // the server is gone
            }
        }
    });
    assert!(
        wait_until(60, || acked.lock().unwrap().len() >= 2_000),
        "writer made no progress"
    );
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    acked
}

/// A CA (PEM) and a server certificate + key (PEM) for 127.0.0.1 signed by it.
pub fn pki(ca_name: &str) -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "vitals test server");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

// --- PostgreSQL (`VITALS_TEST_PG`, default the server on 127.0.0.1:5432) ---

pub fn admin_url() -> String {
    std::env::var("VITALS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn admin(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url())
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::query(sql).execute(&mut c).await.unwrap();
    });
}

/// A fresh database, dropped when the test ends.
pub struct Db {
    pub name: String,
}

impl Db {
    pub fn new(tag: &str) -> Db {
        let name = format!("vitals_serve_{tag}_{}", std::process::id());
        admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        admin(&format!("CREATE DATABASE {name}"));
        Db { name }
    }

    pub fn url(&self) -> String {
        let base = admin_url();
        let cut = base.rfind('/').unwrap();
        format!("{}/{}", &base[..cut], self.name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
