//! Attacks on a running `vitals serve`, from outside, over real sockets — as an attacker on the
//! same network, or a web page open in an operator's browser, would try them. One test (or a
//! few) per guarantee of docs/security.md; each failed against the server before it was made.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-secret-for-the-attack-tests-01";
const VIEWER: &str = "viewer-secret-for-the-attack-tests-1";
const REPORTER: &str = "reporter-secret-for-attack-tests-001";

/// An HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A TCP connection to `addr` from the loopback address `from` (e.g. `127.0.0.7`).
fn connect_from(addr: &str, from: Option<[u8; 4]>) -> std::io::Result<TcpStream> {
    let to: SocketAddr = addr.parse().expect("address");
    match from {
        None => TcpStream::connect_timeout(&to, Duration::from_secs(5)),
        Some(ip) => {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.bind(&SocketAddr::from((ip, 0)).into())?;
            s.connect_timeout(&to.into(), Duration::from_secs(5))?;
            Ok(s.into())
        }
    }
}

/// Sends one raw request and reads the whole answer (`Connection: close`).
fn send(addr: &str, from: Option<[u8; 4]>, raw: &str) -> Option<Resp> {
    let mut s = connect_from(addr, from).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(raw.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Resp {
        status,
        head: head.to_string(),
        body: dechunk(&text, body.to_string()),
    })
}

/// A request with `Host: addr` unless `headers` names another, and `Connection: close`.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        r.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    r
}

fn call(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    send(addr, None, &request(addr, method, path, headers, body))
        .unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn start(config: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.toml");
    std::fs::write(&path, config).unwrap();
    let s = Server::start(dir.path(), &path);
    (dir, s)
}

fn tokens() -> String {
    format!(
        "[[token]]\nname = \"ops\"\nrole = \"admin\"\nsecret = \"{ADMIN}\"\n\
         [[token]]\nname = \"wall\"\nrole = \"viewer\"\nsecret = \"{VIEWER}\"\n\
         [[token]]\nname = \"clinic\"\nrole = \"reporter\"\nsecret = \"{REPORTER}\"\nasset_prefix = \"clinic-\"\n"
    )
}

fn metric(addr: &str, auth: Option<&str>, name: &str) -> f64 {
    try_metric(addr, auth, name).unwrap_or_else(|| panic!("GET /metrics: no answer"))
}

/// `None` when the connection is refused or closed unanswered: right after many connections
/// close, the server may not have counted them down yet and still be at its cap.
fn try_metric(addr: &str, auth: Option<&str>, name: &str) -> Option<f64> {
    let b = auth.map(bearer);
    let headers: Vec<(&str, &str)> = b
        .as_deref()
        .map(|b| vec![("Authorization", b)])
        .unwrap_or_default();
    let r = send(addr, None, &request(addr, "GET", "/metrics", &headers, ""))?;
    assert_eq!(r.status, 200, "{}", r.body);
    Some(
        r.body
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

// --- 1. No cross-site or rebinding writes ------------------------------------------------

#[test]
fn a_page_elsewhere_cannot_silence_alerts_or_fake_results_without_tokens() {
    let (_d, s) = start("[server]\nself_check = false\n");
    let a = &s.addr;
    let silence = r#"{"matchers":{"checks":["*"]},"duration":"365d","author":"x","comment":"x"}"#;
    // A form or fetch() from another site can send text/plain without asking first.
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[("Content-Type", "text/plain")],
        silence,
    );
    assert_eq!(r.status, 415, "{}", r.body);
    // A fetch() that did ask (CORS preflight is never answered) still shows its Origin.
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
        ],
        silence,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        silence,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let fake = r#"{"results":[{"asset":"db","check":"up","status":"ok"}]}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = call(a, "POST", "/api/v1/results", &[("Content-Type", ct)], fake);
        assert_eq!(r.status, 415, "{ct}: {}", r.body);
    }
    // A heartbeat ping changes state on GET: an <img> from another site must not send one.
    let r = call(
        a,
        "GET",
        "/ping/anything",
        &[("Sec-Fetch-Site", "cross-site")],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Nothing of it arrived.
    let silences = call(a, "GET", "/api/v1/silences", &[], "").json();
    assert_eq!(
        silences["silences"].as_array().map(Vec::len),
        Some(0),
        "{silences}"
    );
    let assets = call(a, "GET", "/api/v1/assets", &[], "").json();
    assert!(!assets.to_string().contains("\"db\""), "{assets}");
    // The same from this server's own origin, or from a client that is not a browser, works.
    let own = format!("http://{a}");
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[("Content-Type", "application/json"), ("Origin", &own)],
        silence,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &[("Content-Type", "application/json")],
        fake,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(metric(a, None, "vitals_http_refused_total") >= 6.0);
}

#[test]
fn dns_rebinding_reads_nothing() {
    let (_d, s) = start("[server]\nself_check = false\n");
    let a = &s.addr;
    let port = a.rsplit(':').next().unwrap();
    for host in [
        format!("evil.example:{port}"),
        "rebind.attacker.test".to_string(),
        format!("127.0.0.1.evil.example:{port}"),
    ] {
        for path in ["/", "/api/v1/assets", "/metrics", "/api/v1/alerts"] {
            let r = call(a, "GET", path, &[("Host", &host)], "");
            assert_eq!(r.status, 421, "{host} {path}: {}", r.body);
            assert!(r.body.contains("hosts"), "{}", r.body);
        }
    }
    for host in [
        a.to_string(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = call(a, "GET", "/api/v1/assets", &[("Host", &host)], "");
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
}

#[test]
fn a_configured_name_is_served_and_others_are_not() {
    let (_d, s) = start("[server]\nself_check = false\nhosts = [\"vitals.clinic.internal\"]\npublic_url = \"https://vitals.example.org\"\n");
    let a = &s.addr;
    for (host, code) in [
        ("vitals.clinic.internal", 200),
        ("VITALS.example.org", 200),
        ("other.clinic.internal", 421),
    ] {
        assert_eq!(
            call(a, "GET", "/api/v1/assets", &[("Host", host)], "").status,
            code,
            "{host}"
        );
    }
}

/// Logs in through the form; returns the session cookie (`name=value`).
fn login(addr: &str, from: Option<[u8; 4]>, secret: &str, next: &str) -> Resp {
    let body = format!("token={secret}&next={next}");
    send(
        addr,
        from,
        &request(
            addr,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        ),
    )
    .expect("login answer")
}

fn cookie_of(r: &Resp) -> String {
    r.header("set-cookie")
        .and_then(|c| c.split(';').next().map(str::to_string))
        .unwrap_or_else(|| panic!("no cookie: {r:?}"))
}

#[test]
fn the_ui_session_never_authenticates_the_json_api() {
    let (_d, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = &s.addr;
    let r = login(a, None, ADMIN, "/");
    assert_eq!(r.status, 303, "{r:?}");
    let cookie = cookie_of(&r);
    // The page opens with the cookie …
    let page = call(
        a,
        "GET",
        "/alerts",
        &[("Cookie", &cookie), ("Accept", "text/html")],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    // … but the JSON API does not take it, for reading or for writing.
    let r = call(a, "GET", "/api/v1/assets", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        r#"{"matchers":{"checks":["*"]},"duration":"1h","author":"x","comment":"x"}"#,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    // A UI form without its CSRF token is refused too.
    let r = call(
        a,
        "POST",
        "/alerts/silences",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "checks=*&duration=1h&comment=x",
    );
    assert!(r.status == 403 || r.status == 400, "{r:?}");
}

// --- 2. Audit what was done, not what was tried -------------------------------------------

#[test]
fn unauthenticated_floods_store_nothing() {
    let (dir, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = &s.addr;
    let db = dir.path().join("vitals-data/vitals.db");
    let size = |p: &std::path::Path| {
        ["", "-wal"]
            .iter()
            .filter_map(|x| std::fs::metadata(format!("{}{x}", p.display())).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    // Let start-up writes settle, then measure.
    std::thread::sleep(Duration::from_millis(500));
    let before = size(&db);
    let big = "x".repeat(60 * 1024);
    let requests = 1_000;
    for i in 0..requests {
        // Many source addresses, as a botnet would; every request is refused without a trace.
        let from = [127, 0, 1, (i % 200) as u8 + 1];
        let (path, auth) = match i % 4 {
            0 => ("/api/v1/nothing-here", None),
            1 => ("/api/v1/silences", Some(bearer("wrong-token"))),
            2 => ("/api/v1/results", Some(bearer("wrong-token"))),
            _ => ("/api/v1/alerts/1/ack", None),
        };
        let mut h = vec![("Content-Type", "application/json")];
        if let Some(b) = &auth {
            h.push(("Authorization", b.as_str()));
        }
        let r = send(a, Some(from), &request(a, "POST", path, &h, &big)).expect("answer");
        assert!(
            [401, 404, 413, 429].contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    let r = call(
        a,
        "GET",
        "/api/v1/audit",
        &[("Authorization", &bearer(ADMIN))],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["audit"].as_array().map(Vec::len),
        Some(0),
        "{}",
        r.body
    );
    let grown = size(&db).saturating_sub(before);
    println!("database grew {grown} bytes under {requests} unauthenticated 60 KB requests");
    // Nothing was stored: only SQLite's own bookkeeping may move (a WAL page or two).
    assert!(grown < 64 * 1024, "the database grew {grown} bytes");
    assert!(metric(a, Some(ADMIN), "vitals_auth_failures_total") >= 500.0);
}

#[test]
fn guessing_tokens_is_throttled_per_source() {
    let (_d, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = &s.addr;
    let guesser = Some([127, 0, 0, 3]);
    let mut codes = Vec::new();
    for i in 0..30 {
        let b = bearer(&format!("guess-{i}"));
        let r = send(
            a,
            guesser,
            &request(a, "GET", "/api/v1/assets", &[("Authorization", &b)], ""),
        )
        .unwrap();
        codes.push(r.status);
    }
    assert!(codes[..20].iter().all(|c| *c == 401), "{codes:?}");
    assert!(codes[20..].iter().all(|c| *c == 429), "{codes:?}");
    // Even the right token is not looked at from that address for now …
    let b = bearer(ADMIN);
    let r = send(
        a,
        guesser,
        &request(a, "GET", "/api/v1/assets", &[("Authorization", &b)], ""),
    )
    .unwrap();
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // … and the login form is throttled the same way; other addresses are not affected.
    assert_eq!(login(a, guesser, "guess", "/").status, 429);
    // Public routes need no credentials and answer from that address as to anyone.
    let r = send(
        a,
        guesser,
        &request(
            a,
            "GET",
            "/monitor",
            &[("Authorization", &bearer("guess-0"))],
            "",
        ),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let r = send(
        a,
        Some([127, 0, 0, 4]),
        &request(a, "GET", "/api/v1/assets", &[("Authorization", &b)], ""),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    // Login guesses count as well.
    let other = Some([127, 0, 0, 5]);
    let codes: Vec<u16> = (0..25)
        .map(|i| login(a, other, &format!("guess-{i}"), "/").status)
        .collect();
    assert!(codes[..20].iter().all(|c| *c == 401), "{codes:?}");
    assert!(codes[20..].iter().all(|c| *c == 429), "{codes:?}");
    // Dozens of failures, one log line per source in the minute (the rest are counted).
    let log = s.stop();
    for source in ["127.0.0.3", "127.0.0.5"] {
        let lines = log
            .lines()
            .filter(|l| l.contains("failed authentication") && l.contains(source))
            .count();
        assert_eq!(lines, 1, "{source}: {log}");
    }
}

#[test]
fn what_an_admin_did_is_audited_once_authenticated() {
    let (_d, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = &s.addr;
    let admin = bearer(ADMIN);
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[
            ("Authorization", &admin),
            ("Content-Type", "application/json"),
        ],
        r#"{"matchers":{"assets":["db"]},"duration":"1h","author":"ops","comment":"upgrade"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // A viewer's attempt is refused before the audit: it did nothing.
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &[
            ("Authorization", &bearer(VIEWER)),
            ("Content-Type", "application/json"),
        ],
        r#"{"matchers":{"assets":["db"]},"duration":"1h","author":"x","comment":"x"}"#,
    );
    assert_eq!(r.status, 403);
    let audit = call(a, "GET", "/api/v1/audit", &[("Authorization", &admin)], "").json();
    let rows = audit["audit"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(rows.iter().all(|r| r["actor"] == "ops"));
    assert_eq!(rows[0]["outcome"], "201");
    assert_eq!(rows[1]["outcome"], "started");
}

// --- 3. Slow and many clients ---------------------------------------------------------------

/// Opens `n` connections from `from` that send half a request and then nothing.
fn hang(addr: &str, from: [u8; 4], n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = connect_from(addr, Some(from)).ok()?;
            s.write_all(b"POST /api/v1/results HTTP/1.1\r\nHost: x\r\nContent-Le")
                .ok()?;
            Some(s)
        })
        .collect()
}

/// Whether the server closed `s` (EOF or reset) within `secs`.
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => {
            // An error answer, then the close.
            matches!(s.read(&mut b), Ok(0) | Err(_))
        }
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

#[test]
fn thousands_of_half_sent_requests_do_not_stop_the_server() {
    raise_fd_limit();
    let (_d, s) = start(&format!(
        "[server]\nself_check = false\n[server.limits]\nheader_timeout = \"60s\"\n{}",
        tokens()
    ));
    let a = &s.addr;
    let mut held = Vec::new();
    for k in 0..10u8 {
        held.extend(hang(a, [127, 0, 2, k + 1], 200));
    }
    let n = held.len();
    println!("{n} connections hang half-sent");
    assert!(n >= 1_900, "only {n} connections opened");
    let started = Instant::now();
    let r = call(a, "GET", "/monitor", &[], "");
    assert_eq!(r.status, 200);
    let push = call(
        a,
        "POST",
        "/api/v1/results",
        &[
            ("Authorization", &bearer(REPORTER)),
            ("Content-Type", "application/json"),
        ],
        r#"{"results":[{"asset":"clinic-1","check":"import","status":"ok"}]}"#,
    );
    assert_eq!(push.status, 200, "{}", push.body);
    let page = call(a, "GET", "/", &[("Authorization", &bearer(VIEWER))], "");
    assert_eq!(page.status, 200);
    println!(
        "/monitor, a push and the overview answered in {:?} while {n} connections hung",
        started.elapsed()
    );
    assert!(metric(a, Some(ADMIN), "vitals_http_connections_open") >= n as f64);
}

#[test]
fn one_address_cannot_take_every_connection() {
    let (_d, s) = start(
        "[server]\nself_check = false\n[server.limits]\nmax_connections = 100\nmax_connections_per_address = 20\n",
    );
    let a = &s.addr;
    let mut held = hang(a, [127, 0, 3, 1], 20);
    assert_eq!(held.len(), 20);
    // The 21st from the same address is closed at once …
    let mut extra = hang(a, [127, 0, 3, 1], 1);
    assert!(closed_within(&mut extra[0], 5), "21st connection kept open");
    // … while everyone else is served.
    assert_eq!(call(a, "GET", "/monitor", &[], "").status, 200);
    // The global cap holds too.
    for k in 0..4u8 {
        held.extend(hang(a, [127, 0, 3, k + 2], 20));
    }
    let mut over = hang(a, [127, 0, 3, 9], 1);
    assert!(
        closed_within(&mut over[0], 5),
        "connection beyond max_connections kept open"
    );
    drop(held);
    assert!(wait_until(10, || try_metric(
        a,
        None,
        "vitals_http_connections_refused_total"
    )
    .is_some_and(|n| n >= 2.0)));
}

#[test]
fn slow_headers_bodies_and_idle_connections_are_closed() {
    let (_d, s) = start(
        "[server]\nself_check = false\n[server.limits]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\nidle_timeout = \"2s\"\n",
    );
    let a = &s.addr;
    // Headers that never end.
    let mut slow = hang(a, [127, 0, 4, 1], 1);
    assert!(
        closed_within(&mut slow[0], 10),
        "half-sent headers kept open"
    );
    // A body that never comes: answered with an error, then closed.
    let mut b = connect_from(a, Some([127, 0, 4, 2])).unwrap();
    write!(
        b,
        "POST /api/v1/results HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"res"
    )
    .unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = b.read_to_string(&mut answer);
    let code: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!((400..500).contains(&code), "slow body answered {answer:?}");
    // A keep-alive connection that goes quiet after one request.
    let mut k = connect_from(a, Some([127, 0, 4, 3])).unwrap();
    write!(k, "GET /monitor HTTP/1.1\r\nHost: {a}\r\n\r\n").unwrap();
    let mut first = [0u8; 512];
    k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(k.read(&mut first).unwrap() > 0);
    assert!(
        closed_within(&mut k, 10),
        "idle keep-alive connection kept open"
    );
}

// --- 6. Plugins get a clean environment ---------------------------------------------------

#[test]
fn a_plugin_does_not_see_the_server_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nself_check = false\n{}\n[[check]]\nasset = \"box\"\nname = \"env\"\ntype = \"exec\"\n\
             command = ['/bin/sh', '-c', 'printf \"OK admin=[%s] smtp=[%s] own=[%s]\\n\" \"$ADMIN_SECRET\" \"$SMTP_PASSWORD\" \"$OWN\"']\n\
             env = {{ OWN = \"mine\" }}\ninterval = \"1s\"\ntimeout = \"1s\"\n",
            tokens()
        ),
    )
    .unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(BIN)
        .args([
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .current_dir(dir.path())
        .env("ADMIN_SECRET", ADMIN)
        .env("SMTP_PASSWORD", "smtp-secret")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin = bearer(ADMIN);
    let mut reason = String::new();
    let seen = wait_until(20, || {
        let Some(r) = send(
            &addr,
            None,
            &request(
                &addr,
                "GET",
                "/api/v1/assets/box",
                &[("Authorization", &admin)],
                "",
            ),
        ) else {
            return false;
        };
        reason = r.body.clone();
        r.status == 200 && r.body.contains("admin=")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "no observation: {reason}");
    assert!(reason.contains("admin=[] smtp=[] own=[mine]"), "{reason}");
}

// --- 7. Sessions and redirects ----------------------------------------------------------------

#[test]
fn login_never_redirects_off_site() {
    let (_d, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = &s.addr;
    for next in [
        "/%09/evil.example",
        "%2F%09%2Fevil.example",
        "//evil.example",
        "https://evil.example/",
        "/%5Cevil.example",
        "%2F%5Cevil.example",
        "/%0d%0a/evil.example",
    ] {
        let r = login(a, None, VIEWER, next);
        assert_eq!(r.status, 303, "{next}");
        assert_eq!(r.header("location").as_deref(), Some("/"), "{next}");
    }
    let r = login(a, None, VIEWER, "%2Falerts%3Fstate%3Dfiring");
    assert_eq!(
        r.header("location").as_deref(),
        Some("/alerts?state=firing")
    );
}

/// The alerts page with a session cookie.
fn alerts_page(a: &str, cookie: &str) -> Resp {
    call(
        a,
        "GET",
        "/alerts",
        &[("Cookie", cookie), ("Accept", "text/html")],
        "",
    )
}

#[test]
fn logout_ends_the_session_on_the_server() {
    let (_d, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = &s.addr;
    let cookie = cookie_of(&login(a, None, VIEWER, "/"));
    let page = |c: &str| alerts_page(a, c);
    assert_eq!(page(&cookie).status, 200);
    let r = call(a, "POST", "/logout", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 303);
    // The copy of the cookie an attacker kept is worthless now.
    let r = page(&cookie);
    assert_eq!(r.status, 303, "{r:?}");
    assert!(r
        .header("location")
        .unwrap_or_default()
        .starts_with("/login"));
}

#[test]
fn rotating_a_token_secret_ends_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.toml");
    std::fs::write(&path, format!("[server]\nself_check = false\n{}", tokens())).unwrap();
    let s = Server::start(dir.path(), &path);
    let a = &s.addr;
    let cookie = cookie_of(&login(a, None, VIEWER, "/"));
    let page = |c: &str| alerts_page(a, c);
    assert_eq!(page(&cookie).status, 200);
    std::fs::write(
        &path,
        format!("[server]\nself_check = false\n{}", tokens())
            .replace(VIEWER, "a-brand-new-viewer-secret-000000001"),
    )
    .unwrap();
    s.signal("HUP");
    assert!(
        wait_until(10, || page(&cookie).status == 303),
        "the session outlived its token's secret"
    );
}

#[test]
fn event_streams_are_capped_per_session_and_end_with_it() {
    let (_d, s) = start(&format!("[server]\nself_check = false\n{}", tokens()));
    let a = s.addr.clone();
    let cookie = cookie_of(&login(&a, None, VIEWER, "/"));
    let open = |c: &str| {
        let mut st = connect_from(&a, None).unwrap();
        write!(
            st,
            "GET /ui/events HTTP/1.1\r\nHost: {a}\r\nCookie: {c}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        st.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 256];
        let n = st.read(&mut b).unwrap_or(0);
        (st, String::from_utf8_lossy(&b[..n]).to_string())
    };
    let mut streams = Vec::new();
    for _ in 0..4 {
        let (st, head) = open(&cookie);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        streams.push(st);
    }
    let (_, fifth) = open(&cookie);
    assert!(fifth.starts_with("HTTP/1.1 429"), "{fifth}");
    let r = call(&a, "POST", "/logout", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 303);
    for st in &mut streams {
        // The stream ends within a few event periods: its chunked body's terminator, or the
        // connection closes. A kept-alive connection may stay open after the terminator.
        st.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut rest = Vec::new();
        let mut b = [0u8; 4096];
        let ended = loop {
            match st.read(&mut b) {
                Ok(0) => break true,
                Ok(n) => {
                    rest.extend_from_slice(&b[..n]);
                    if rest.ends_with(b"0\r\n\r\n") {
                        break true;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break true,
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
        };
        assert!(
            ended,
            "an event stream outlived its session: {}",
            String::from_utf8_lossy(&rest)
        );
    }
}

// --- 4. Bounded cardinality -----------------------------------------------------------------

#[test]
fn a_reporter_cannot_create_assets_without_end() {
    let (_d, s) = start(&format!(
        "[server]\nself_check = false\n[ingest]\nmax_assets = 1000\nmax_checks_per_asset = 5\nmax_values = 8\n{}",
        tokens().replace(
            "asset_prefix = \"clinic-\"\n",
            "asset_prefix = \"clinic-\"\nmax_assets = 100\nrate_limit = 0\n"
        )
    ));
    let a = &s.addr;
    let rep = bearer(REPORTER);
    let h = [
        ("Authorization", rep.as_str()),
        ("Content-Type", "application/json"),
    ];
    let mut created = 0;
    let mut refused = None;
    for batch in 0..600 {
        let results: Vec<String> = (0..50)
            .map(|i| {
                format!(r#"{{"asset":"clinic-{batch}-{i}","check":"import","status":"crit"}}"#)
            })
            .collect();
        let r = call(
            a,
            "POST",
            "/api/v1/results",
            &h,
            &format!(r#"{{"results":[{}]}}"#, results.join(",")),
        );
        if r.status == 200 {
            created += 50;
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("no limit was reached");
    println!(
        "a reporter token created {created} assets before: {} {}",
        r.status, r.body
    );
    assert_eq!(r.status, 429);
    assert!(r.body.contains("max_assets"), "{}", r.body);
    assert_eq!(created, 100);
    // Checks per asset and values per result are bounded too, and named.
    let many_checks: Vec<String> = (0..6)
        .map(|c| format!(r#"{{"asset":"clinic-0-0","check":"c{c}","status":"ok"}}"#))
        .collect();
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &h,
        &format!(r#"{{"results":[{}]}}"#, many_checks.join(",")),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("max_checks_per_asset"), "{}", r.body);
    let values: Vec<String> = (0..9).map(|v| format!(r#""v{v}":1"#)).collect();
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &h,
        &format!(
            r#"{{"results":[{{"asset":"clinic-0-0","check":"import","status":"ok","values":{{{}}}}}]}}"#,
            values.join(",")
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("max_values"), "{}", r.body);
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &h,
        r#"{"results":[{"asset":"clinic-0-0","check":"import","status":"ok","duration_ms":1e12}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("max_duration"), "{}", r.body);
    assert!(metric(a, Some(ADMIN), "vitals_ingest_refused_total") >= 4.0);
    let assets = call(
        a,
        "GET",
        "/api/v1/assets",
        &[("Authorization", &bearer(ADMIN))],
        "",
    )
    .json();
    let n = assets["assets"].as_array().map_or(0, Vec::len);
    assert!(n <= 101, "{n} assets");
}

// --- 5. Time and duplicates -----------------------------------------------------------------

#[test]
fn pushes_cannot_hide_what_a_probe_sees_or_rewrite_the_past() {
    let target = target();
    let (_d, s) = start(&format!(
        "[server]\nself_check = false\n\
         [[check]]\nasset = \"svc\"\nname = \"http\"\ntype = \"http\"\nurl = \"http://{target}/down\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
         [[check]]\nasset = \"svc\"\nname = \"both\"\ntype = \"http\"\nurl = \"http://{target}/ok\"\ninterval = \"1h\"\naccept_pushes = true\n\
         [[notifier]]\nid = \"log\"\ntype = \"logfile\"\npath = \"alerts.log\"\n[[rule]]\nid = \"r\"\nnotifiers = [\"log\"]\n"
    ));
    let a = &s.addr;
    let json = [("Content-Type", "application/json")];
    // A fake "ok" for a polled check is refused, naming why.
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &json,
        r#"{"results":[{"asset":"svc","check":"http","status":"ok"}]}"#,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("accept_pushes"), "{}", r.body);
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &json,
        r#"{"results":[{"asset":"svc","check":"both","status":"ok"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // A pushed check goes crit and alerts; a back-dated "ok" is history: it resolves nothing.
    let now = vitals_now();
    let push = |t: i64, status: &str| {
        call(
            a,
            "POST",
            "/api/v1/results",
            &json,
            &format!(
                r#"{{"results":[{{"asset":"db","check":"up","status":"{status}","time":{t}}}]}}"#
            ),
        )
    };
    assert_eq!(push(now, "crit").status, 200);
    let firing = || {
        call(a, "GET", "/api/v1/alerts?state=firing", &[], "").json()["alerts"]
            .as_array()
            .map_or(0, |v| v.iter().filter(|x| x["asset"] == "db").count())
    };
    assert!(wait_until(10, || firing() == 1));
    assert_eq!(push(now - 60_000, "ok").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(firing(), 1, "a back-dated result resolved the alert");
    let asset = call(a, "GET", "/api/v1/assets/db", &[], "").json();
    assert!(asset.to_string().contains("\"crit\""), "{asset}");
    // The same (asset, check, time) again is a duplicate, reported as such.
    let same: Vec<String> = (0..5000)
        .map(|_| format!(r#"{{"asset":"db","check":"up","status":"crit","time":{now}}}"#))
        .collect();
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &json,
        &format!(r#"{{"results":[{}]}}"#, same.join(",")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 0);
    assert_eq!(v["duplicates"].as_array().map(Vec::len), Some(5000));
    // Results from the future are refused.
    let r = push(now + 3_600_000, "ok");
    assert_eq!(r.status, 400, "{}", r.body);
}

fn vitals_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// --- 8. Dead workers are loud ---------------------------------------------------------------

#[test]
fn a_dead_worker_fails_monitor_and_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.toml");
    std::fs::write(&path, "[server]\nself_check = false\n").unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(BIN)
        .args([
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .current_dir(dir.path())
        .env("VITALS_FAILPOINTS", "pipeline-panic")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(60, || http_get(&addr, "/monitor")
        .is_some_and(|(c, _)| c == 200)));
    // The failpoint makes the pipeline worker panic on a result for asset "failpoint".
    let r = send(
        &addr,
        None,
        &request(
            &addr,
            "POST",
            "/api/v1/results",
            &[("Content-Type", "application/json")],
            r#"{"results":[{"asset":"failpoint","check":"x","status":"ok"}]}"#,
        ),
    );
    assert_ne!(r.map(|r| r.status), Some(200));
    let mut said = String::new();
    let seen = wait_until(5, || match http_get(&addr, "/monitor?details") {
        Some((503, body)) if body.contains("pipeline : FAIL") => {
            said = body;
            true
        }
        _ => false,
    });
    assert!(seen, "/monitor did not name the dead worker");
    assert!(said.contains("panicked"), "{said}");
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the process did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(70), "{log}");
    assert!(log.contains("a worker failed"), "{log}");
}

// --- 12. Reload keeps queued notifications ----------------------------------------------------

#[test]
fn a_removed_notifier_keeps_its_queued_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.toml");
    let dead = free_port();
    let config = |port: u16, with: bool| {
        let mut c = String::from("[server]\nself_check = false\n");
        if with {
            c.push_str(&format!(
                "[[notifier]]\nid = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
            ));
        }
        c.push_str("[[notifier]]\nid = \"file\"\ntype = \"logfile\"\npath = \"alerts.log\"\n");
        c.push_str(&format!(
            "[[rule]]\nid = \"r\"\nnotifiers = [{}]\n",
            if with {
                "\"ops\", \"file\""
            } else {
                "\"file\""
            }
        ));
        c
    };
    std::fs::write(&path, config(dead, true)).unwrap();
    let s = Server::start(dir.path(), &path);
    let a = &s.addr;
    let r = call(
        a,
        "POST",
        "/api/v1/results",
        &[("Content-Type", "application/json")],
        r#"{"results":[{"asset":"db","check":"up","status":"crit"}]}"#,
    );
    assert_eq!(r.status, 200);
    let ops_items = || -> Vec<serde_json::Value> {
        call(a, "GET", "/api/v1/notifications", &[], "").json()["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n["notifier"] == "ops")
            .collect()
    };
    // The webhook is down: the notification waits for a retry.
    assert!(wait_until(10, || ops_items()
        .first()
        .is_some_and(
            |n| n["state"] == "pending" && n["attempts"].as_u64() >= Some(1)
        )));
    // The notifier is removed: its notification is kept, not failed.
    std::fs::write(&path, config(dead, false)).unwrap();
    s.signal("HUP");
    std::thread::sleep(Duration::from_secs(4));
    let items = ops_items();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["state"], "pending", "{items:?}");
    // It comes back, pointing at a live receiver: the kept notification is delivered.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = receiver(l);
    std::fs::write(&path, config(port, true)).unwrap();
    s.signal("HUP");
    assert!(
        wait_until(40, || !got.lock().unwrap().is_empty()),
        "the kept notification was not delivered: {:?}",
        ops_items()
    );
    assert!(wait_until(10, || ops_items()
        .first()
        .is_some_and(|n| n["state"] == "sent")));
    let log = s.stop();
    assert!(log.contains("not configured"), "{log}");
}

// --- 11. Everything that grows has retention -----------------------------------------------

/// Resolved alerts and their events, delivered notifications and the audit log (archived to a
/// compressed file first) go once they are older than `[retention]` says, through the running
/// server's cleanup; open alerts and recent rows stay. (Unused texts and value names: the
/// in-process soak in vitals-scheduler's retention tests.)
#[test]
fn what_grows_is_deleted_by_retention_and_the_audit_archived_first() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("audit-archive");
    let config = format!(
        "[server]\nself_check = false\n\
         [retention]\nalerts = \"1s\"\nnotifications = \"1s\"\naudit = \"1s\"\naudit_archive = {:?}\n\
         [[notifier]]\nid = \"file\"\ntype = \"logfile\"\npath = \"alerts.log\"\n\
         [[rule]]\nid = \"r\"\nnotifiers = [\"file\"]\n{}",
        archive.display().to_string(),
        tokens()
    );
    let path = dir.path().join("vitals.toml");
    std::fs::write(&path, config).unwrap();
    let s = Server::start(dir.path(), &path);
    let a = &s.addr;
    let admin = bearer(ADMIN);
    let h = [
        ("Authorization", admin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let push = |asset: &str, status: &str, n: u32| {
        let body = format!(
            r#"{{"results":[{{"asset":"{asset}","check":"up","status":"{status}","reason":"answer {n}"}}]}}"#
        );
        assert_eq!(call(a, "POST", "/api/v1/results", &h, &body).status, 200);
    };
    // One alert fires and resolves; another fires and stays open.
    push("db", "crit", 1);
    push("db", "ok", 2);
    push("web", "crit", 3);
    let list = |path: &str, key: &str| -> Vec<serde_json::Value> {
        call(a, "GET", path, &h, "").json()[key]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        wait_until(20, || {
            let n = list("/api/v1/notifications", "notifications");
            n.len() >= 2 && n.iter().all(|x| x["state"] == "sent")
        }),
        "{:?}",
        list("/api/v1/notifications", "notifications")
    );
    assert_eq!(list("/api/v1/alerts?state=resolved", "alerts").len(), 1);
    // Audited admin actions.
    let r = call(
        a,
        "POST",
        "/api/v1/silences",
        &h,
        r#"{"matchers":{"assets":["db"]},"duration":"1h","author":"a","comment":"c"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let audited = list("/api/v1/audit", "audit").len();
    assert!(audited >= 1, "nothing audited");
    std::thread::sleep(Duration::from_millis(2500));
    let r = call(a, "POST", "/api/v1/jobs/cleanup", &h, "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["run"]["status"], "done", "{}", r.body);
    assert!(
        list("/api/v1/alerts?state=resolved", "alerts").is_empty(),
        "resolved alert kept"
    );
    let open = list("/api/v1/alerts?state=firing", "alerts");
    assert_eq!(open.len(), 1, "the open alert must stay: {open:?}");
    assert!(
        list("/api/v1/notifications", "notifications")
            .iter()
            .all(|n| n["state"] != "sent"),
        "delivered notifications kept"
    );
    // The audit rows older than a second went to a compressed archive first; what the cleanup
    // request itself added is recent and stays.
    let left = list("/api/v1/audit", "audit");
    assert!(
        left.iter()
            .all(|e| !e.to_string().contains("/api/v1/silences")),
        "{left:?}"
    );
    let archived: Vec<_> = std::fs::read_dir(&archive)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        archived
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".jsonl.gz")
                && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)),
        "{archived:?}"
    );
    s.stop();
}

// --- 9/10. A full disk ------------------------------------------------------------------------

/// A size-limited tmpfs mounted for the test (needs root); unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mb: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the disk to the last byte with a file; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        let f = self.path().join("filler");
        let mut file = std::fs::File::create(&f).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let small = vec![0u8; 512];
        while file.write_all(&small).is_ok() {}
        while file.write_all(&[0u8]).is_ok() {}
        let _ = file.sync_all();
        f
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_loses_nothing_acknowledged_and_recovers_by_itself() {
    let Some(disk) = SmallDisk::mount(48) else {
        println!("skipped: mounting a size-limited tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    };
    let target = target();
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = hook.local_addr().unwrap().port();
    let told = receiver(hook);
    let data = disk.path().join("data");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nself_check = false\ndata_dir = \"{}\"\n\
             [[check]]\nasset = \"svc\"\nname = \"http\"\ntype = \"http\"\nurl = \"http://{target}/ok\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
             [[notifier]]\nid = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n",
            data.display()
        ),
    )
    .unwrap();
    let s = Server::start(dir.path(), &path);
    let a = s.addr.clone();
    // Pushes all along: each batch of 100 results has ids; what was answered 200 must be kept.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pusher = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut acked, mut refused) = (Vec::new(), 0usize);
            let mut batch = 0u64;
            let reason = "x".repeat(300);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                batch += 1;
                let items: Vec<String> = (0..100)
                    .map(|i| {
                        format!(
                            r#"{{"asset":"push-{}","check":"c","status":"ok","id":"b{batch}-{i}","reason":"{reason} {batch} {i}"}}"#,
                            i % 10
                        )
                    })
                    .collect();
                let r = send(
                    &a,
                    None,
                    &request(
                        &a,
                        "POST",
                        "/api/v1/results",
                        &[("Content-Type", "application/json")],
                        &format!(r#"{{"results":[{}]}}"#, items.join(",")),
                    ),
                );
                match r.map(|r| r.status) {
                    Some(200) => acked.push(batch),
                    _ => refused += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (acked, refused)
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let filler = disk.fill();
    let full_at = Instant::now();
    // The store says FAIL with its cause, and the notifier hears of it directly.
    let mut said = String::new();
    assert!(
        wait_until(30, || match http_get(&a, "/monitor?details") {
            Some((503, b)) if b.contains("store : FAIL") => {
                said = b;
                true
            }
            _ => false,
        }),
        "/monitor did not report the full disk"
    );
    println!("after {:?}: {said}", full_at.elapsed());
    assert!(
        wait_until(30, || told
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains("cannot write to its store"))),
        "no notifier was told"
    );
    // An admin action is refused — before it is carried out when its audit row cannot be
    // written, or when its own commit fails — and nothing of it remains.
    let r = call(
        &a,
        "POST",
        "/api/v1/silences",
        &[("Content-Type", "application/json")],
        r#"{"matchers":{"assets":["x"]},"duration":"1h","author":"ops","comment":"full"}"#,
    );
    assert_eq!(r.status, 503, "{}", r.body);
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    // Space returns; Vitals recovers by itself.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    assert!(
        wait_until(60, || http_get(&a, "/monitor")
            .is_some_and(|(c, _)| c == 200)),
        "did not recover: {:?}",
        http_get(&a, "/monitor?details")
    );
    let recovered = freed.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, refused) = pusher.join().unwrap();
    assert!(
        wait_until(30, || told
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains("writes to its store again"))),
        "no notifier was told of the recovery"
    );
    // Every acknowledged result is there (by its idempotency id: sent again, it is a
    // duplicate); none of the refused ones was partly taken.
    let mut lost = 0;
    for b in &acked {
        let items: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    r#"{{"asset":"push-{}","check":"c","status":"ok","id":"b{b}-{i}"}}"#,
                    i % 10
                )
            })
            .collect();
        let r = call(
            &a,
            "POST",
            "/api/v1/results",
            &[("Content-Type", "application/json")],
            &format!(r#"{{"results":[{}]}}"#, items.join(",")),
        );
        lost += r.json()["accepted"].as_u64().unwrap_or(100);
    }
    // The probe kept probing: its observations from the outage were stored once space came.
    let obs = call(
        &a,
        "GET",
        "/api/v1/assets/svc/observations?check=http&limit=1000",
        &[],
        "",
    )
    .json();
    let times: Vec<i64> = obs["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            o["time"]
                .as_str()
                .and_then(chrono_ms)
                .or_else(|| o["time"].as_i64())
        })
        .collect();
    let outage_ms = outage.elapsed().as_millis() as i64;
    let during = times
        .iter()
        .filter(|t| **t >= vitals_now() - outage_ms - 5_000)
        .count();
    println!(
        "full disk for {:?}; recovered {recovered:?} after space returned; {} pushes acknowledged, {refused} refused, {lost} acknowledged results lost; {during} probe observations from the outage on",
        full_at.elapsed(),
        acked.len()
    );
    let silences = call(&a, "GET", "/api/v1/silences", &[], "").json();
    assert!(!silences.to_string().contains("\"full\""), "{silences}");
    assert_eq!(lost, 0, "acknowledged results were lost");
    assert!(refused > 0, "the disk never filled up");
    assert!(
        during >= 3,
        "probe observations of the outage are missing: {times:?}"
    );
    drop(s);
}

/// Epoch ms of an RFC 3339 time.
fn chrono_ms(t: &str) -> Option<i64> {
    vitals_core::Timestamp::parse(t).map(|t| t.0)
}
