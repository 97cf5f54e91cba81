//! The new check types through the binary: `vitals probe` for each, ICMP in a private network
//! namespace (no route, no reply, unprivileged ping sockets — no packet leaves the machine),
//! and `vitals serve` running all of them with a version-consistency rule, its values in
//! `/metrics` (checked by `promtool`).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Serves `routes` (path → content type, body) on loopback until the test process exits.
fn serve(routes: Vec<(&'static str, &'static str, String)>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (code, ctype, body) = routes
                .iter()
                .find(|(p, _, _)| *p == path)
                .map(|(_, c, b)| ("200 OK", *c, b.clone()))
                .unwrap_or(("404 Not Found", "text/plain", "no".into()));
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {code}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}

const WINDOWS: &str = include_str!("../../vitals-probe/tests/fixtures/windows_exporter.txt");

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs `script` (sh) in a new network namespace with `$VITALS` set; `(code, stdout)`.
fn in_netns(script: &str) -> (i32, String) {
    let out = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", script])
        .env("VITALS", BIN)
        .output()
        .expect("unshare (util-linux)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn icmp_unreachable_no_reply_and_ping_sockets_in_a_private_network_namespace() {
    // A network namespace needs root (CI runs as root); nothing here can run without one.
    assert!(is_root(), "these tests run as root (CI does)");
    // No route at all: the TEST-NET address is unreachable at once.
    let (code, out) = in_netns(
        "ip link set lo up && \"$VITALS\" probe --type icmp 192.0.2.1 --count 2 --interval 50ms --timeout 2s",
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with(
            "VITALS ICMP CRITICAL - cannot reach 192.0.2.1: network unreachable | loss_percent=100"
        ),
        "{out}"
    );
    // A route that leads nowhere (to lo, but no such address): every request is lost, and the
    // probe ends at its timeout.
    let (code, out) = in_netns(
        "ip link set lo up && ip route add 192.0.2.0/24 dev lo && ip -6 route add 2001:db8::/32 dev lo && \
         \"$VITALS\" probe --type icmp 192.0.2.1 --count 3 --interval 50ms --timeout 1s; \
         \"$VITALS\" probe --type icmp 2001:db8::1 --ip 6 --count 2 --interval 50ms --timeout 1s",
    );
    assert_eq!(code, 2, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "VITALS ICMP CRITICAL - 100% loss (3 sent, 0 received): no reply from 192.0.2.1 within 1s | loss_percent=100 received=0",
        "{out}"
    );
    assert!(
        lines[1].starts_with("VITALS ICMP CRITICAL - 100% loss (2 sent, 0 received)"),
        "{out}"
    );
    // With ping_group_range open to our group, the unprivileged datagram socket (tried first)
    // is used; loopback answers.
    let (code, out) = in_netns(
        "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 2147483647' && \
         \"$VITALS\" probe --type icmp 127.0.0.1 --count 2 --interval 20ms --timeout 2s && \
         \"$VITALS\" probe --type icmp ::1 --count 1 --timeout 2s",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(
            "VITALS ICMP OK - 0% loss (2 sent, 2 received) | loss_percent=0 received=2 rtt_min_ms="
        ),
        "{out}"
    );
}

#[test]
fn probe_runs_every_new_type() {
    let (code, out, _) = vitals(&["probe", "--type", "icmp", "127.0.0.1", "--count", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("VITALS ICMP OK - 0% loss (1 sent, 1 received)"),
        "{out}"
    );

    let (code, out, _) = vitals(&[
        "probe",
        "--type",
        "postgres",
        "127.0.0.1:5432",
        "--user",
        "postgres",
        "--database",
        "postgres",
        "--query",
        "SELECT count(*) AS databases FROM pg_database",
        "--condition",
        "databases >= 1",
        "--grant",
        "pg_class=SELECT",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VITALS POSTGRES OK - 1 row: \""), "{out}");
    assert!(
        out.contains("connect_ms=") && out.contains("query_ms=") && out.contains("databases="),
        "{out}"
    );

    let (code, out, _) = vitals(&[
        "probe",
        "--type",
        "mysql",
        "127.0.0.1:3306",
        "--user",
        "root",
        "--query",
        "SELECT SLEEP(3)",
        "--timeout",
        "1s",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("timed out"), "{out}");
    // The password comes from an environment variable, never the command line.
    let (code, out, _) = vitals(&[
        "probe",
        "--type",
        "mysql",
        "127.0.0.1:3306",
        "--user",
        "root",
        "--password-env",
        "NO_SUCH_VAR_123",
    ]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(
        out.trim(),
        "VITALS UNKNOWN - environment variable NO_SUCH_VAR_123 is not set"
    );

    let addr = serve(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        WINDOWS.to_string(),
    )]);
    let (code, out, _) = vitals(&[
        "probe",
        "--type",
        "prometheus",
        &format!("http://{addr}/metrics"),
        "--condition",
        r#"windows_service_state{name="aktin-import",state="running"} == 1"#,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with(r#"VITALS PROMETHEUS CRITICAL - windows_service_state{name="aktin-import",state="running"} is 0 (expected == 1) |"#), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    std::fs::write(&log, "INFO started\nERROR [LookupService] boom\nINFO ok\n").unwrap();
    let (code, out, _) = vitals(&[
        "probe",
        "--type",
        "log",
        log.to_str().unwrap(),
        "--pattern",
        "ERROR",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("VITALS LOG WARNING - 1 matching line: \"ERROR [LookupService] boom\" | lines=3 matches=1"), "{out}");
}

#[test]
fn serve_runs_the_new_checks_and_alerts_on_disagreeing_versions() {
    let exporter = serve(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        WINDOWS.to_string(),
    )]);
    let node1 = serve(vec![(
        "/version",
        "text/plain",
        "MinLog2 Lookup\nVersion: 2.5.1\n".into(),
    )]);
    let node2 = serve(vec![(
        "/version",
        "application/json",
        r#"{"version": "2.5.0"}"#.into(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
data_dir = "{data}"
self_check = false

[[check]]
asset = "minlog2-node-1"
name = "version"
type = "http"
url = "http://{node1}/version"
interval = "2s"
timeout = "1s"
capture = {{ regex = 'Version:\s*(\S+)' }}

[[check]]
asset = "minlog2-node-2"
name = "version"
type = "http"
url = "http://{node2}/version"
interval = "2s"
timeout = "1s"
capture = {{ json = "/version" }}

[[check]]
asset = "gateway"
name = "ping"
type = "icmp"
host = "127.0.0.1"
count = 2
packet_interval = "20ms"
interval = "2s"
timeout = "1s"

[[check]]
asset = "minlog2-win"
name = "windows"
type = "prometheus"
url = "http://{exporter}/metrics"
conditions = ['windows_service_state{{name="minlog2",state="running"}} == 1']
interval = "2s"
timeout = "1s"

[[check]]
asset = "nsp-db"
name = "pg"
type = "postgres"
host = "127.0.0.1"
user = "postgres"
database = "postgres"
query = "SELECT 1 AS one"
conditions = ["one == 1"]
interval = "2s"
timeout = "1s"

[[check]]
asset = "nsp-db"
name = "maria"
type = "mysql"
host = "127.0.0.1"
user = "root"
query = "SELECT 2 AS two"
interval = "2s"
timeout = "1s"

[[check]]
asset = "minlog2-node-1"
name = "application-log"
type = "log"
file = "{log}"
patterns = ["ERROR"]
interval = "1s"
timeout = "1s"

[[rule]]
id = "minlog2-versions"
kind = "consistent"
asset_prefixes = ["minlog2-node-"]
checks = ["version"]
"#,
            data = dir.path().join("data").display(),
            log = log.display(),
        ),
    )
    .unwrap();
    let s = Server::start(dir.path(), &config);

    // The two nodes disagree: one alert naming the odd one out (a tie: the greater version wins).
    assert!(
        wait_until(30, || s.json("/api/v1/alerts")["alerts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())),
        "no alert"
    );
    let alerts = s.json("/api/v1/alerts");
    let a = &alerts["alerts"][0];
    assert_eq!(a["rule"], "minlog2-versions", "{alerts}");
    assert_eq!(
        a["reason"], "minlog2-node-2 has \"2.5.0\" (1 of 2 have \"2.5.1\")",
        "{alerts}"
    );
    let node = s.json("/api/v1/assets/minlog2-node-1");
    let version = node["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "version")
        .cloned()
        .unwrap();
    assert_eq!(version["components"][0]["value"], "2.5.1", "{node}");

    // Every new type has run and its values are in /metrics.
    let metric = |asset: &str, check: &str, name: &str| {
        format!("vitals_check_value{{asset=\"{asset}\",check=\"{check}\",name=\"{name}\"}} ")
    };
    let wanted = [
        metric("gateway", "ping", "loss_percent"),
        metric("gateway", "ping", "rtt_avg_ms"),
        metric(
            "minlog2-win",
            "windows",
            "windows_service_state{name=\\\"minlog2\\\",state=\\\"running\\\"}",
        ),
        metric("nsp-db", "pg", "one"),
        metric("nsp-db", "maria", "two"),
        metric("nsp-db", "pg", "connect_ms"),
        metric("minlog2-node-1", "application-log", "matches"),
        metric("minlog2-node-1", "version", "total_ms"),
    ];
    let mut metrics = String::new();
    assert!(
        wait_until(30, || {
            metrics = http_get(&s.addr, "/metrics")
                .map(|r| r.1)
                .unwrap_or_default();
            wanted.iter().all(|w| metrics.contains(w))
        }),
        "missing from /metrics: {:?}\n{metrics}",
        wanted
            .iter()
            .filter(|w| !metrics.contains(w.as_str()))
            .collect::<Vec<_>>()
    );
    // The log check has run (and follows the file from its end): two errors appended now are
    // counted in one of its next observations.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"ERROR one\nERROR two\n")
        .unwrap();
    let two = format!(
        "{}2\n",
        metric("minlog2-node-1", "application-log", "matches")
    );
    assert!(
        wait_until(30, || {
            metrics = http_get(&s.addr, "/metrics")
                .map(|r| r.1)
                .unwrap_or_default();
            metrics.contains(&two)
        }),
        "{metrics}"
    );
    for (asset, check) in [
        ("gateway", "ping"),
        ("minlog2-win", "windows"),
        ("nsp-db", "pg"),
        ("nsp-db", "maria"),
    ] {
        assert!(
            metrics.contains(&format!(
                "vitals_check_status{{asset=\"{asset}\",check=\"{check}\",type="
            )),
            "{asset}/{check}"
        );
        let a = s.json(&format!("/api/v1/assets/{asset}"));
        let c = a["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == check)
            .cloned()
            .unwrap();
        assert_eq!(c["status"], "ok", "{asset}/{check}: {c}");
    }
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
    std::thread::sleep(Duration::from_millis(100));
    s.stop();
}

#[test]
fn without_ping_sockets_or_cap_net_raw_icmp_says_what_is_needed() {
    assert!(is_root(), "these tests run as root (CI does)");
    // As `nobody` (no capabilities), in a namespace whose ping_group_range admits no group.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("vitals");
    std::fs::copy(BIN, &bin).unwrap();
    let cfg = dir.path().join("v.toml");
    std::fs::write(
        &cfg,
        "[[check]]\nasset = \"gw\"\nname = \"ping\"\ntype = \"icmp\"\nhost = \"127.0.0.1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out) = in_netns(&format!(
        "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='1 0' && \
         runuser -u nobody -- {bin} config check {cfg} 2>&1; echo \"exit $?\"; \
         runuser -u nobody -- {bin} probe --type icmp 127.0.0.1 2>&1; echo \"exit $?\"",
        bin = bin.display(),
        cfg = cfg.display()
    ));
    assert_eq!(code, 0, "{out}");
    let needed =
        "ICMP needs unprivileged ping sockets or CAP_NET_RAW: allow this process' group (gid ";
    assert!(out.contains(&format!("check[0]: {needed}")), "{out}");
    assert!(
        out.contains("net.ipv4.ping_group_range (now \"1 0\""),
        "{out}"
    );
    assert!(out.contains("1 error(s)\nexit 1\n"), "{out}");
    assert!(
        out.contains(&format!("VITALS ICMP UNKNOWN - {needed}")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("exit 3"), "{out}");
}
