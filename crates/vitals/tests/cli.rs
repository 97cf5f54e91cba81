//! The `vitals` binary as a user runs it: config check, one-shot probes, and `serve` end to end
//! against real loopback targets (plus `promtool` on its `/metrics`).

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

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

#[test]
fn with_tokens_any_address_is_allowed_and_secrets_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    let admin = "s3cret-admin-token-value-42";
    let hook = "hmac-key-that-must-not-leak";
    // The port is free when picked but may be taken by a parallel test before the server binds
    // it: a server that exits at once is tried again on another port.
    let mut started = None;
    for _ in 0..5 {
        let port = free_port();
        std::fs::write(
            &config,
            format!(
                "[server]\ndata_dir = \"data\"\nlisten = \"0.0.0.0:{port}\"\n\n[[token]]\nname = \"ops\"\nrole = \"admin\"\nsecret = \"${{ADMIN_TOKEN}}\"\n\n\
                 [[notifier]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"${{HOOK_SECRET}}\"\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .current_dir(dir.path())
            .env("ADMIN_TOKEN", admin)
            .env("HOOK_SECRET", hook)
            .env("VITALS_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let up = wait_until(60, || {
            child.try_wait().unwrap().is_some()
                || http_get(&addr, "/monitor").is_some_and(|(c, _)| c == 200)
        });
        if up && child.try_wait().unwrap().is_none() {
            started = Some((child, addr));
            break;
        }
        let _ = child.kill();
    }
    let (mut child, addr) = started.expect("did not start (five ports tried)");
    // Without a token: 401. With it: the API, and a change that is audited under its name.
    assert_eq!(http_get(&addr, "/api/v1/assets").map(|(c, _)| c), Some(401));
    let authed = |path: &str, method: &str, body: &str| -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
        let code = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, resp)
    };
    assert_eq!(authed("/api/v1/assets", "GET", "").0, 200);
    let (code, _) = authed(
        "/api/v1/silences",
        "POST",
        r#"{"matchers": {"assets": ["x"]}, "duration": "1h", "author": "ops", "comment": "test"}"#,
    );
    assert_eq!(code, 201);
    let (_, audit) = authed("/api/v1/audit", "GET", "");
    assert!(audit.contains("\"actor\":\"ops\""), "{audit}");
    let (_, metrics) = authed("/metrics", "GET", "");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    for secret in [admin, hook] {
        assert!(!log.contains(secret), "a secret is in the log:\n{log}");
        assert!(
            !audit.contains(secret) && !metrics.contains(secret),
            "a secret is in an answer"
        );
    }
    assert!(log.contains("tokens=1"), "{log}");
}
