//! The operator's tools as a user runs them: shell completions and manual pages from the clap
//! definition, `vitals notify test` through a real SMTP server (Debian's python3-aiosmtpd) and
//! a loopback webhook receiver, `vitals healthcheck`, the uptime history surviving a restart,
//! and the Grafana dashboard naming only metrics that `/metrics` of a running server exposes.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = vitals(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in ["serve", "probe", "notify", "completions", "healthcheck"] {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let (_, out, _) = vitals(&["completions", "bash"]);
    assert!(out.contains("complete -F _vitals"), "{out}");
    let (code, _, err) = vitals(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn man_pages_are_written_for_the_command_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = vitals(&["man", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("manual pages written"), "{out}");
    let main = std::fs::read_to_string(dir.path().join("vitals.1")).unwrap();
    assert!(
        main.starts_with(".ie") || main.contains(".TH vitals 1"),
        "{main}"
    );
    assert!(main.contains(".TH vitals 1"), "{main}");
    assert!(main.contains("Health monitoring and alerting"), "{main}");
    let serve = std::fs::read_to_string(dir.path().join("vitals-serve.1")).unwrap();
    assert!(serve.contains(".TH vitals-serve 1"), "{serve}");
    assert!(serve.contains("\\-\\-config"), "{serve}");
    let test = std::fs::read_to_string(dir.path().join("vitals-notify-test.1")).unwrap();
    assert!(test.contains("TEST"), "{test}");
    // `man` itself reads them (when man-db is installed).
    if Command::new("man").arg("--version").output().is_ok() {
        let out = Command::new("man")
            .args(["-l", dir.path().join("vitals-serve.1").to_str().unwrap()])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("--listen"));
    }
}

/// A Python with aiosmtpd (Debian's python3-aiosmtpd).
fn python() -> String {
    for c in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(c)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.to_string();
        }
    }
    panic!("this test needs python3-aiosmtpd (apt-get install python3-aiosmtpd)");
}

struct Sink(std::process::Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn notify_test_sends_through_email_and_webhook_and_says_how_it_went() {
    let maildir = tempfile::tempdir().unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../vitals-notify/tests/support/smtp_sink.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(maildir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _sink = Sink(child);
    let smtp_port: u16 = line.trim().parse().expect("the SMTP sink's port");
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let got = receiver(hook);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vitals.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
public_url = "https://vitals.example.org"

[[notifier]]
id = "support-mail"
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
tls = "none"
from = "vitals@example.org"
to = ["support@example.org"]

[[notifier]]
id = "hook"
type = "webhook"
url = "http://{hook_addr}/hook"

[[notifier]]
id = "nobody"
type = "webhook"
url = "http://127.0.0.1:{}/hook"
"#,
            free_port()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();

    let (code, out, err) = vitals(&["notify", "test", "support-mail", "--config", c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("delivered through support-mail (email): 250 "),
        "{out}"
    );
    assert!(out.contains("to support@example.org"), "{out}");
    let mails: Vec<serde_json::Value> = std::fs::read_dir(maildir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1);
    let subject = mails[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "Subject")
        .and_then(|h| h[1].as_str())
        .unwrap()
        .to_string();
    assert!(
        subject.starts_with("[Vitals] TEST: Test message from Vitals"),
        "{subject}"
    );

    let (code, out, err) = vitals(&["notify", "test", "hook", "--config", c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("delivered through hook (webhook): HTTP 200"),
        "{out}"
    );
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["kind"], "test");
    assert_eq!(body["alerts"][0]["url"], "https://vitals.example.org");

    // Nobody listening: not delivered, exit 1, and why.
    let (code, _, err) = vitals(&["notify", "test", "nobody", "--config", c]);
    assert_eq!(code, 1);
    assert!(err.contains("NOT delivered (transient"), "{err}");
    // No such notifier: exit 2, naming the ones there are.
    let (code, _, err) = vitals(&["notify", "test", "pager", "--config", c]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no notifier \"pager\" (configured: support-mail, hook, nobody)"),
        "{err}"
    );
}

#[test]
fn healthcheck_is_0_while_serving_and_1_when_nothing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vitals.toml");
    std::fs::write(&cfg, "[server]\nself_check = false\n").unwrap();
    let s = Server::start(dir.path(), &cfg);
    let url = format!("http://{}/monitor", s.addr);
    let (code, out, err) = vitals(&["healthcheck", "--url", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with(": OK\n"), "{out}");
    s.stop();
    let (code, _, err) = vitals(&["healthcheck", "--url", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn the_last_results_and_uptime_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vitals.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nself_check = false\ndata_dir = {:?}\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let s = Server::start(dir.path(), &cfg);
    for (i, status) in ["ok", "ok", "crit", "ok"].iter().enumerate() {
        let body = format!(
            r#"{{"results": [{{"asset": "node-1", "check": "import", "status": "{status}", "time": {}}}]}}"#,
            1_700_000_000_000i64.max(now_ms() - 60_000 + i as i64 * 1000)
        );
        let (code, b) = http_post(&s.addr, "/api/v1/results", "application/json", &body).unwrap();
        assert_eq!(code, 200, "{b}");
    }
    let before = http_get(&s.addr, "/").unwrap().1;
    assert!(before.contains("Last 4 results: 3 OK, 1 CRIT"), "{before}");
    s.stop();
    let s = Server::start(dir.path(), &cfg);
    let after = http_get(&s.addr, "/").unwrap().1;
    assert!(after.contains("Last 4 results: 3 OK, 1 CRIT"), "{after}");
    assert_eq!(
        after.matches("<td>75.00 %</td>").count(),
        3,
        "24 h, 7 d and 30 d from the store: {after}"
    );
    s.stop();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every metric name in a PromQL expression (selectors and the metric of `label_values`).
fn metric_names(expr: &str, out: &mut BTreeSet<String>) {
    use promql_parser::parser::{self, Expr};
    fn walk(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::VectorSelector(v) => {
                if let Some(n) = &v.name {
                    out.insert(n.clone());
                }
            }
            Expr::MatrixSelector(m) => {
                if let Some(n) = &m.vs.name {
                    out.insert(n.clone());
                }
            }
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::Call(c) => {
                for a in &c.args.args {
                    walk(a, out);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    // Grafana's variables are not PromQL: give them values that parse.
    let expr = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$asset", ".*")
        .replace("$check", ".*")
        .replace("$value", ".*");
    let expr = match expr
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        // label_values(selector, label): the selector is PromQL.
        Some(inner) => inner.rsplit_once(',').map_or(inner, |(s, _)| s).to_string(),
        None => expr,
    };
    let parsed = parser::parse(&expr).unwrap_or_else(|e| panic!("not PromQL: {expr}: {e}"));
    walk(&parsed, out);
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("definition", serde_json::Value::String(s))
                        if s.starts_with("label_values(") =>
                    {
                        out.push(s.clone())
                    }
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn every_metric_of_the_grafana_dashboard_is_exposed_by_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/grafana/dashboards/vitals.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 20, "the dashboard has {} queries", all.len());
    let mut names = BTreeSet::new();
    for e in &all {
        metric_names(e, &mut names);
    }
    for want in [
        "vitals_check_status",
        "vitals_check_duration_seconds",
        "vitals_check_value",
        "vitals_alert_active",
        "vitals_component_up",
        "vitals_schedule_lateness_seconds_bucket",
    ] {
        assert!(
            names.contains(want),
            "the dashboard does not use {want}: {names:?}"
        );
    }

    // A running server with a check that has values and fails (so an alert fires).
    let t = target();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vitals.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
data_dir = {:?}

[[check]]
asset = "web"
name = "down"
type = "http"
url = "http://{t}/down"
interval = "1s"
timeout = "1s"

[[rule]]
id = "down"
status = "crit"
count = 1
"#,
            dir.path().join("data")
        ),
    )
    .unwrap();
    let s = Server::start(dir.path(), &cfg);
    let mut exposed = BTreeSet::new();
    assert!(
        wait_until(20, || {
            let Some((200, m)) = http_get(&s.addr, "/metrics") else {
                return false;
            };
            exposed = m
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|l| l.split(['{', ' ']).next())
                .map(String::from)
                .collect();
            names.iter().all(|n| exposed.contains(n))
        }),
        "metrics the dashboard names but /metrics does not expose: {:?}",
        names.difference(&exposed).collect::<Vec<_>>()
    );
    s.stop();
}
