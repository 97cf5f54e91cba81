//! Replicas: several `vitals serve` with one configuration on one PostgreSQL database share the
//! checks, hand their decisions to one decider, fail over on `kill -9` and lose nothing
//! (docs/high-availability.md). Real processes, the real PostgreSQL on loopback, a database
//! of their own per test.
//!
//! `VITALS_REPLICA_KILLS` sets how many replicas the kill loop kills (default 4;
//! `bench/failover.sh` runs it with 20 and keeps the figures it prints).

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEASE_S: u64 = 3;
const CHECKS: usize = 12;

/// A loopback HTTP target: 200, or 500 while `failing`.
fn target(failing: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let failing = failing.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let status = if failing.load(Ordering::Relaxed) {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
            });
        }
    });
    port
}

/// A TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones refused)
/// and restore: a replica losing its database.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(to: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c, to) = (open.clone(), conns.clone(), to.to_string());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(client) = s else { continue };
                if !o.load(Ordering::Relaxed) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                let mut keep = c.lock().unwrap();
                keep.push(client.try_clone().unwrap());
                keep.push(server.try_clone().unwrap());
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::Relaxed);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

fn config(store: &str, hook_port: u16, ok_port: u16, flap_port: u16) -> String {
    let mut c = format!(
        r#"
[server]
data_dir = "data"
self_check = false
store = "{store}"
lease = "{LEASE_S}s"

[[notifier]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
timeout = "2s"

[[rule]]
id = "down"
notifiers = ["hook"]

[[check]]
asset = "flappy"
name = "http"
type = "http"
url = "http://127.0.0.1:{flap_port}/"
interval = "1s"
timeout = "1s"
"#
    );
    for i in 0..CHECKS {
        c.push_str(&format!(
            "\n[[check]]\nasset = \"web-{}\"\nname = \"c{i}\"\ntype = \"http\"\nurl = \"http://127.0.0.1:{ok_port}/\"\ninterval = \"1s\"\ntimeout = \"1s\"\n",
            i % 3
        ));
    }
    c
}

/// A replica's folder with the shared configuration in it.
fn replica_dir(
    root: &std::path::Path,
    name: &str,
    cfg: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("vitals.toml");
    std::fs::write(&config, cfg).unwrap();
    (dir, config)
}

fn status(addr: &str) -> Option<Value> {
    let (code, body) = http_get(addr, "/api/v1/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

fn members(addr: &str) -> usize {
    status(addr)
        .and_then(|s| s["cluster"]["members"].as_array().map(|m| m.len()))
        .unwrap_or(0)
}

fn is_decider(addr: &str) -> bool {
    status(addr).is_some_and(|s| s["cluster"]["decider"] == true)
}

/// Times (ms) of one check's stored observations, oldest first (every one: pages of 10,000,
/// newest first, each ending before the oldest of the last).
fn times(addr: &str, asset: &str, check: &str) -> Vec<i64> {
    let mut all: Vec<i64> = Vec::new();
    let mut to: Option<i64> = None;
    loop {
        let mut path = format!("/api/v1/assets/{asset}/observations?check={check}&limit=10000");
        if let Some(t) = to {
            path.push_str(&format!("&to={}", vitals_core::Timestamp(t).to_rfc3339()));
        }
        let (code, body) = http_get(addr, &path).expect("observations");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let page: Vec<i64> = v["observations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                vitals_core::Timestamp::parse(o["time"].as_str().unwrap())
                    .unwrap()
                    .0
            })
            .filter(|t| to.is_none_or(|to| *t < to))
            .collect();
        let Some(&oldest) = page.iter().min() else {
            break;
        };
        let full = page.len() >= 10_000;
        all.extend(page);
        if !full {
            break;
        }
        to = Some(oldest);
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// Pushes one result (JSON of its fields) to `addr`; asserts 200.
fn push_one(addr: &str, result: &str) {
    let (code, body) = http_post(
        addr,
        "/api/v1/results",
        "application/json",
        &format!(r#"{{"results": [{result}]}}"#),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
}

fn configured_checks() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (0..CHECKS)
        .map(|i| (format!("web-{}", i % 3), format!("c{i}")))
        .collect();
    v.push(("flappy".into(), "http".into()));
    v
}

#[test]
fn three_replicas_share_the_checks_fail_over_on_kill_9_and_lose_nothing() {
    let kills: usize = std::env::var("VITALS_REPLICA_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let db = Db::new("replicas");
    let hook_port = free_port();
    let received = receiver(TcpListener::bind(("127.0.0.1", hook_port)).unwrap());
    let ok_port = target(Arc::new(AtomicBool::new(false)));
    let flapping = Arc::new(AtomicBool::new(false));
    let flap_port = target(flapping.clone());
    let root = tempfile::tempdir().unwrap();
    let cfg = config(&db.url(), hook_port, ok_port, flap_port);
    let dirs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| replica_dir(root.path(), n, &cfg))
        .collect();
    let mut servers: Vec<Server> = dirs.iter().map(|(d, c)| Server::start(d, c)).collect();
    assert!(
        wait_until(30, || servers.iter().all(|s| members(&s.addr) == 3)),
        "the three replicas did not see each other"
    );
    assert!(
        wait_until(30, || servers
            .iter()
            .filter(|s| is_decider(&s.addr))
            .count()
            == 1),
        "not exactly one decider"
    );

    // Steady state: each check runs on one replica per period, not on three.
    std::thread::sleep(Duration::from_secs(6));
    let a = servers[0].addr.clone();
    for (asset, check) in configured_checks() {
        let t = times(&a, &asset, &check);
        let recent: Vec<i64> = t.iter().rev().take(4).copied().collect();
        assert!(recent.len() >= 3, "{asset}/{check} is not probed: {t:?}");
        for w in recent.windows(2) {
            assert!(
                w[0] - w[1] >= 500,
                "{asset}/{check} probed twice in one period: {recent:?}"
            );
        }
    }

    // What one replica takes in, every replica shows.
    push_one(
        &servers[1].addr,
        r#"{"asset": "pushed", "check": "seen", "status": "warn", "reason": "from b"}"#,
    );
    let began = Instant::now();
    for s in &servers {
        assert!(
            wait_until(10, || http_get(&s.addr, "/api/v1/assets/pushed")
                .is_some_and(|(c, b)| c == 200 && b.contains("from b"))),
            "replica {} does not show what another took in",
            s.addr
        );
    }
    println!(
        "replicas: a push to one replica was shown by all three after {} ms",
        began.elapsed().as_millis()
    );

    // Acknowledgements and silences through a replica that does not decide: relayed to the
    // decider, answered after its commit, seen everywhere.
    let follower = servers
        .iter()
        .find(|s| !is_decider(&s.addr))
        .map(|s| s.addr.clone())
        .unwrap();
    push_one(
        &servers[0].addr,
        r#"{"asset": "acked", "check": "port", "status": "crit", "reason": "connection refused"}"#,
    );
    let mut alert_id = None;
    assert!(
        wait_until(15, || {
            let (_, b) = http_get(&follower, "/api/v1/alerts?state=open").unwrap();
            let v: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
            alert_id = v["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["asset"] == "acked")
                .and_then(|a| a["id"].as_i64());
            alert_id.is_some()
        }),
        "no alert for the pushed failure"
    );
    let id = alert_id.unwrap();
    let (code, body) = http_post(
        &follower,
        &format!("/api/v1/alerts/{id}/ack"),
        "application/json",
        r#"{"by": "oncall", "comment": "on it"}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "ack through a follower: {body}");
    assert!(body.contains("acknowledged"), "{body}");
    for s in &servers {
        let v = s.json(&format!("/api/v1/alerts/{id}"));
        assert_eq!(v["alert"]["state"], "acknowledged", "{}: {v}", s.addr);
    }
    let (code, body) = http_post(
        &follower,
        "/api/v1/silences",
        "application/json",
        r#"{"matchers": {"assets": ["acked"]}, "duration": "1h", "author": "oncall", "comment": "planned"}"#,
    )
    .unwrap();
    assert_eq!(code, 201, "silence through a follower: {body}");

    // Load: pushes to every live replica in turn (ids, so a repeat is harmless), and a check
    // that fails and recovers, so that alerts fire and notify.
    let live: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(servers.iter().map(|s| s.addr.clone()).collect()));
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (live, acked, stop) = (live.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let base = 1_700_000_000_000i64;
            let mut n = 0i64;
            let mut turn = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let addr = {
                    let l = live.lock().unwrap();
                    turn += 1;
                    l[turn % l.len()].clone()
                };
                let t: Vec<i64> = (0..10).map(|i| base + n * 10 + i).collect();
                let results: Vec<Value> = t
                    .iter()
                    .map(|t| serde_json::json!({"asset": "load", "check": "push", "status": "ok", "time": t, "id": format!("p-{t}")}))
                    .collect();
                let body = serde_json::json!({ "results": results }).to_string();
                if let Some((200, _)) =
                    http_post(&addr, "/api/v1/results", "application/json", &body)
                {
                    acked.lock().unwrap().extend(t);
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let flapper = {
        let (f, stop) = (flapping.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(5));
                f.fetch_xor(true, Ordering::Relaxed);
            }
            f.store(false, Ordering::Relaxed);
        })
    };

    let loop_began = vitals_core::SystemClock::now().0;
    let mut failovers: Vec<u128> = Vec::new();
    for k in 0..kills {
        let victim = if k % 2 == 0 {
            servers
                .iter()
                .position(|s| is_decider(&s.addr))
                .unwrap_or(k % 3)
        } else {
            servers
                .iter()
                .position(|s| !is_decider(&s.addr))
                .unwrap_or(k % 3)
        };
        let was_decider = is_decider(&servers[victim].addr);
        live.lock().unwrap().retain(|a| a != &servers[victim].addr);
        servers[victim].kill9();
        let killed = Instant::now();
        if was_decider {
            let others: Vec<String> = servers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != victim)
                .map(|(_, s)| s.addr.clone())
                .collect();
            assert!(
                wait_until(30, || others.iter().any(|a| is_decider(a))),
                "no replica took over deciding after kill {k}"
            );
            failovers.push(killed.elapsed().as_millis());
        }
        std::thread::sleep(Duration::from_secs(LEASE_S + 2));
        let (d, c) = &dirs[victim];
        servers[victim] = Server::start(d, c);
        live.lock().unwrap().push(servers[victim].addr.clone());
        assert!(
            wait_until(30, || servers.iter().all(|s| members(&s.addr) == 3)),
            "the restarted replica did not rejoin after kill {k}"
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    flapper.join().unwrap();
    std::thread::sleep(Duration::from_secs(LEASE_S + 3));

    let a = servers[0].addr.clone();
    // Nothing acknowledged is lost.
    let acked = acked.lock().unwrap().clone();
    let stored: HashSet<i64> = times(&a, "load", "push").into_iter().collect();
    let lost = acked.iter().filter(|t| !stored.contains(t)).count();
    // Each check kept being probed: the longest silence while replicas died.
    let mut longest: BTreeMap<i64, String> = BTreeMap::new();
    let mut doubled = 0usize;
    for (asset, check) in configured_checks() {
        let t: Vec<i64> = times(&a, &asset, &check)
            .into_iter()
            .filter(|t| *t >= loop_began)
            .collect();
        for w in t.windows(2) {
            longest.insert(w[1] - w[0], format!("{asset}/{check}"));
            if w[1] - w[0] < 500 {
                doubled += 1;
            }
        }
    }
    let (gap, which) = longest
        .iter()
        .next_back()
        .map(|(g, w)| (*g, w.clone()))
        .unwrap();
    // Notifications: each id delivered once.
    let bodies = received.lock().unwrap().clone();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for b in &bodies {
        let v: Value = serde_json::from_str(b).unwrap_or(Value::Null);
        *ids.entry(v["id"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let dups: usize = ids.values().map(|n| n - 1).sum();
    println!(
        "replicas: {kills} kills, decider failovers {failovers:?} ms; {} results acknowledged, {lost} lost; \
         longest gap of a check {gap} ms ({which}; lease {LEASE_S} s + interval 1 s); \
         {doubled} double probes; {} notifications, {dups} duplicates",
        acked.len(),
        bodies.len()
    );
    assert!(acked.len() > 100, "the writer made no progress");
    assert_eq!(lost, 0, "acknowledged results were lost");
    assert_eq!(dups, 0, "notifications delivered twice: {ids:?}");
    assert!(!bodies.is_empty(), "the flapping check notified nobody");
    // The lease runs out (each replica knows when, from its last renewal), then the next
    // period; 1.5 s for a loaded machine.
    let bound = (LEASE_S * 1000) as i64 + 1000 + 1500;
    assert!(
        gap <= bound,
        "{which} went {gap} ms without an observation (bound {bound} ms)"
    );
    for s in servers {
        s.stop();
    }
}

#[test]
fn a_replica_that_loses_the_database_stops_says_fail_and_rejoins() {
    let db = Db::new("detach");
    let ok_port = target(Arc::new(AtomicBool::new(false)));
    let flap_port = target(Arc::new(AtomicBool::new(false)));
    let hook_port = free_port();
    let _received = receiver(TcpListener::bind(("127.0.0.1", hook_port)).unwrap());
    let root = tempfile::tempdir().unwrap();
    let proxy = Proxy::start("127.0.0.1:5432");
    let direct = config(&db.url(), hook_port, ok_port, flap_port);
    let url = db.url().replace(":5432/", &format!(":{}/", proxy.port));
    let proxied = config(&url, hook_port, ok_port, flap_port);
    let (da, ca) = replica_dir(root.path(), "a", &direct);
    let (db_, cb) = replica_dir(root.path(), "b", &proxied);
    let a = Server::start(&da, &ca);
    let b = Server::start(&db_, &cb);
    assert!(wait_until(30, || members(&a.addr) == 2 && members(&b.addr) == 2));

    proxy.cut();
    assert!(
        wait_until(30, || http_get(&b.addr, "/monitor?details").is_some_and(
            |(c, body)| c == 503 && body.contains("cluster : FAIL")
        )),
        "b did not say it lost the database"
    );
    assert!(wait_until(30, || members(&a.addr) == 1), "a still counts b");
    assert!(wait_until(30, || is_decider(&a.addr)), "a does not decide");
    // a probes every check now, b's share too.
    let cut_at = vitals_core::SystemClock::now().0;
    std::thread::sleep(Duration::from_secs(4));
    for (asset, check) in configured_checks() {
        let t = times(&a.addr, &asset, &check);
        assert!(
            t.iter().filter(|t| **t > cut_at).count() >= 2,
            "{asset}/{check} is not probed while b is cut off"
        );
    }
    let b_status = status(&b.addr).unwrap();
    assert_eq!(b_status["cluster"]["decider"], false, "{b_status}");

    proxy.restore();
    assert!(
        wait_until(60, || http_get(&b.addr, "/monitor")
            .is_some_and(|(c, _)| c == 200)),
        "b did not come back"
    );
    assert!(wait_until(30, || members(&a.addr) == 2 && members(&b.addr) == 2));

    // A reload (SIGHUP) on the replica that does not decide takes the new configuration too.
    let (follower, cfg) = if is_decider(&a.addr) {
        (&b, &cb)
    } else {
        (&a, &ca)
    };
    let more = format!(
        "{}\n[[check]]\nasset = \"added\"\nname = \"http\"\ntype = \"http\"\nurl = \"http://127.0.0.1:{ok_port}/\"\ninterval = \"1s\"\n",
        std::fs::read_to_string(cfg).unwrap()
    );
    std::fs::write(cfg, more).unwrap();
    follower.signal("HUP");
    assert!(
        wait_until(15, || http_get(&follower.addr, "/api/v1/assets/added")
            .is_some_and(|(c, _)| c == 200)),
        "the follower's reload did not take the new check"
    );
    a.stop();
    b.stop();
}
