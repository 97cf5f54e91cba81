//! `vitals demo` as a newcomer runs it: within 30 s the JSON API shows a dozen fleet nodes, a
//! crit service with its failing "Stamdata database" component, a firing alert and a silence;
//! SIGTERM stops it cleanly and removes its data directory.

mod common;

use common::*;
use std::process::{Command, Stdio};

fn json(addr: &str, path: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get(addr, path)?;
    if code != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

fn failing_stamdata(addr: &str) -> bool {
    let Some(list) = json(addr, "/api/v1/assets?status=crit") else {
        return false;
    };
    let ids: Vec<String> = list["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    ids.iter().any(|id| {
        json(addr, &format!("/api/v1/assets/{id}")).is_some_and(|a| {
            a["checks"].as_array().into_iter().flatten().any(|c| {
                c["components"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["name"] == "Stamdata database" && k["status"] == "crit")
            })
        })
    })
}

/// The clinic mails so far: per mail, its recipients.
fn clinic_mails(addr: &str) -> Vec<Vec<String>> {
    let Some(log) = json(addr, "/api/v1/notifications?limit=1000") else {
        return Vec::new();
    };
    log["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["notifier"] == "clinic-mail" && n["state"] == "sent")
        .map(|n| {
            n["recipients"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The clinic domains among a mail's recipients.
fn clinics_of(recipients: &[String]) -> Vec<String> {
    let mut d: Vec<String> = recipients
        .iter()
        .filter_map(|r| r.split_once('@').map(|(_, d)| d.to_string()))
        .filter(|d| d.starts_with("clinic-"))
        .collect();
    d.sort();
    d.dedup();
    d
}

fn count(v: Option<serde_json::Value>, key: &str) -> usize {
    v.and_then(|v| v[key].as_array().map(Vec::len)).unwrap_or(0)
}

#[test]
fn demo_shows_a_living_estate_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let log_path = tmp.path().join("demo.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", &addr])
        .env("TMPDIR", tmp.path())
        .env("VITALS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let mut nodes = 0;
    let mut stamdata = false;
    let mut firing = 0;
    let mut silences = 0;
    let mut mails: Vec<Vec<String>> = Vec::new();
    let seen = wait_until(30, || {
        if nodes < 12 {
            nodes = json(&addr, "/api/v1/fleet/nodes")
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0);
        }
        stamdata = stamdata || failing_stamdata(&addr);
        firing = firing.max(count(json(&addr, "/api/v1/alerts?state=firing"), "alerts"));
        silences = silences.max(count(json(&addr, "/api/v1/silences"), "silences"));
        if mails.len() < 3 {
            mails = clinic_mails(&addr);
        }
        nodes >= 12 && stamdata && firing >= 1 && silences >= 1 && mails.len() >= 3
    });
    assert!(
        seen,
        "within 30 s: nodes {nodes} (want ≥ 12), failing Stamdata database {stamdata}, \
         firing alerts {firing}, silences {silences}, clinic mails {mails:?}\n{}",
        read_log()
    );
    // Nodes 7 (no imports), 8 (offline) and 9 (outdated): one mail each, to that clinic's own
    // people only, the support team in each.
    let mut clinics: Vec<String> = Vec::new();
    for m in &mails {
        let c = clinics_of(m);
        assert_eq!(c.len(), 1, "one clinic per mail: {m:?}");
        assert!(m.iter().any(|r| r == "support@aktin.example.org"), "{m:?}");
        assert!(
            !m.iter()
                .any(|r| r.starts_with("pflege@") || r.starts_with("former-it@")),
            "not main, or opted out: {m:?}"
        );
        clinics.extend(c);
    }
    clinics.sort();
    assert_eq!(
        clinics,
        [
            "clinic-7.example.org",
            "clinic-8.example.org",
            "clinic-9.example.org"
        ],
        "{mails:?}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{}", read_log());
    assert!(out.contains(&format!("open http://{addr}/")), "{out}");
    assert!(read_log().contains("stopped cleanly"), "{}", read_log());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("vitals-demo-"))
        .collect();
    assert!(left.is_empty(), "the demo's data directory was not removed");
}
