//! `vitals store migrate`: a SQLite store copied into PostgreSQL by the built binary, against
//! the real server on loopback (`VITALS_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test has a database of its own, dropped
//! at the end.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_store::prelude::*;
use vitals_store::{
    AlertQuery, AssetRecord, AuditEntry, FleetError, FleetResource, FleetSample, FleetWrite,
    Notice, ObservationQuery, ResourceChange, HOUR_MS,
};
use vitals_store_postgres::PgStore;
use vitals_store_sqlite::SqliteStore;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The database's URL with a password (the test server trusts loopback, so it is not checked).
fn url_with_password(db: &Db, pw: &str) -> String {
    let url = db.url();
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap();
            format!("{scheme}://{user}:{pw}@{host}")
        }
        None => url,
    }
}

/// One number from the database.
fn scalar(db: &Db, sql: &str) -> i64 {
    rt().block_on(async {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url())
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

fn migrate(from: &Path, to: &str, batch: &str) -> (i32, String, String) {
    vitals(&[
        "store",
        "migrate",
        "--from",
        &format!("sqlite://{}", from.display()),
        "--to",
        to,
        "--batch",
        batch,
    ])
}

/// Rows of every table of the SQLite file.
fn sqlite_counts(db: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names.retain(|n| !n.starts_with("sqlite_"));
    names
        .into_iter()
        .map(|n| {
            let k: i64 = c
                .query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0))
                .unwrap();
            (n, k)
        })
        .collect()
}

type Columns = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

fn sqlite_columns(db: &Path) -> Columns {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut out = Columns::new();
    for (table, _) in sqlite_counts(db) {
        let cols = c
            .prepare(&format!("PRAGMA table_info(\"{table}\")"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.insert(table, cols);
    }
    out
}

/// The Vitals tables of the PostgreSQL database and their columns (not the partitions of
/// observations, not PostgreSQL's own bookkeeping `vitals_…`).
fn pg_columns(url: &str) -> Columns {
    let rows: Vec<(String, String)> = rt().block_on(async {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        sqlx::query_as(
            "SELECT c.relname::text, a.attname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    });
    let mut out = Columns::new();
    for (t, col) in rows {
        if !t.starts_with("vitals_") {
            out.entry(t).or_default().insert(col);
        }
    }
    out
}

fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    http_post(addr, path, "application/json", body).expect("request")
}

/// What `vitals serve` cannot easily be made to write in a test (fleet, notices, rollups, job
/// state, one more audit entry), written through the SQLite store itself.
async fn fill_the_rest(store: &SqliteStore) {
    let now = vitals_now();
    let day = now / 86_400_000;
    store
        .fleet_write(FleetWrite {
            samples: vec![FleetSample {
                node: "node-7".into(),
                day,
                polled: Timestamp(now),
                last_contact: Some(Timestamp(now - 1000)),
                last_start: Timestamp(now - 86_400_000),
                last_write: None,
                last_reject: Some(Timestamp(now - 5000)),
                imported: 120,
                updated: 4,
                invalid: 1,
                failed: 0,
                daily: None,
            }],
            errors: vec![FleetError {
                node: "node-7".into(),
                year: 2025,
                time: Timestamp(now),
                repeats: 3,
                content: "import script failed:\n\tline 2 \\ back\\slash\r ü €".into(),
            }],
            resources: vec![FleetResource {
                node: "node-7".into(),
                name: "versions".into(),
                fetched: Timestamp(now),
                entries: [("dwh".to_string(), "1.5.1".to_string())].into(),
            }],
            changes: vec![ResourceChange {
                node: "node-7".into(),
                time: Timestamp(now),
                resource: "versions".into(),
                key: "dwh".into(),
                old: Some("1.5".into()),
                new: Some("1.5.1".into()),
            }],
        })
        .await
        .unwrap();
    for i in 0..2 {
        store
            .notice_add(
                Notice {
                    id: 0,
                    page: "clinic-17".into(),
                    kind: "maintenance".into(),
                    title: format!("window {i}"),
                    body: "planned".into(),
                    author: "bob".into(),
                    created: Timestamp(now + i),
                    ended: None,
                },
                10,
            )
            .await
            .unwrap();
    }
    // Texts with everything COPY's text format escapes, and values.
    let mut o = Observation::new(
        "svc",
        "odd",
        Timestamp(now - 500),
        Status::Crit,
        "two\nlines,\ta tab, a \\ backslash, \\N, \r and ü",
    );
    o.values.push(Value::new("ms", 1.25));
    o.values.push(Value::new("big", 1e300));
    store.append(vec![o]).await.unwrap();
    let hour = now.div_euclid(HOUR_MS) * HOUR_MS;
    let n = store
        .compute_rollups(
            HOUR_MS,
            Timestamp(hour - HOUR_MS),
            Timestamp(hour + HOUR_MS),
        )
        .await
        .unwrap();
    assert!(n > 0, "no rollups computed");
    store.set_job_value("rollups_hour", hour).await.unwrap();
    store
        .set_job_run("cleanup", serde_json::json!({"deleted": 0}))
        .await
        .unwrap();
    store
        .audit_append(AuditEntry {
            id: 0,
            time: Timestamp(now),
            actor: "local".into(),
            action: "POST /api/v1/migrate-test".into(),
            target: "nothing".into(),
            params: serde_json::json!({}),
            outcome: "200".into(),
        })
        .await
        .unwrap();
}

fn vitals_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn sorted<T: std::fmt::Debug>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by_key(|x| format!("{x:?}"));
    v
}

/// Every read of the store API answers the same on both stores.
async fn same_content(a: &dyn Store, b: &dyn Store) {
    assert_eq!(
        a.count_observations().await.unwrap(),
        b.count_observations().await.unwrap()
    );
    assert_eq!(
        sorted(a.latest().await.unwrap()),
        sorted(b.latest().await.unwrap())
    );
    assert_eq!(
        sorted(a.assets().await.unwrap()),
        sorted(b.assets().await.unwrap())
    );
    for asset in a.assets().await.unwrap() {
        let q = ObservationQuery {
            asset: asset.id.clone(),
            limit: 1_000_000,
            ..Default::default()
        };
        assert_eq!(
            a.observations(&q).await.unwrap(),
            b.observations(&q).await.unwrap(),
            "observations of {}",
            asset.id
        );
    }
    assert_eq!(
        sorted(a.health_rows().await.unwrap()),
        sorted(b.health_rows().await.unwrap())
    );
    let all = AlertQuery {
        limit: 10_000,
        ..Default::default()
    };
    let alerts = a.alerts(&all).await.unwrap();
    assert_eq!(alerts, b.alerts(&all).await.unwrap());
    assert_eq!(
        a.open_alerts().await.unwrap(),
        b.open_alerts().await.unwrap()
    );
    for al in &alerts {
        assert_eq!(a.alert(al.id).await.unwrap(), b.alert(al.id).await.unwrap());
    }
    assert_eq!(a.max_ids().await.unwrap(), b.max_ids().await.unwrap());
    assert_eq!(
        a.silences(Timestamp(0)).await.unwrap(),
        b.silences(Timestamp(0)).await.unwrap()
    );
    assert_eq!(
        a.notifications(None, 1000).await.unwrap(),
        b.notifications(None, 1000).await.unwrap()
    );
    assert_eq!(
        a.audit(None, 1000).await.unwrap(),
        b.audit(None, 1000).await.unwrap()
    );
    assert_eq!(
        a.fleet_resources(None).await.unwrap(),
        b.fleet_resources(None).await.unwrap()
    );
    assert_eq!(
        a.fleet_changes("node-7", 100).await.unwrap(),
        b.fleet_changes("node-7", 100).await.unwrap()
    );
    assert_eq!(
        a.fleet_years().await.unwrap(),
        b.fleet_years().await.unwrap()
    );
    let errors = a.fleet_errors(None, None, 100).await.unwrap();
    assert!(errors[0].content.contains("\\ back"), "{errors:?}");
    assert_eq!(errors, b.fleet_errors(None, None, 100).await.unwrap());
    assert_eq!(
        a.fleet_samples(None, 0, i64::MAX / 2).await.unwrap(),
        b.fleet_samples(None, 0, i64::MAX / 2).await.unwrap()
    );
    assert_eq!(
        a.notices("clinic-17", 100).await.unwrap(),
        b.notices("clinic-17", 100).await.unwrap()
    );
    assert_eq!(
        a.job_value("rollups_hour").await.unwrap(),
        b.job_value("rollups_hour").await.unwrap()
    );
    assert_eq!(
        a.job_run("cleanup").await.unwrap(),
        b.job_run("cleanup").await.unwrap()
    );
    let now = vitals_now();
    for obs in a.latest().await.unwrap() {
        let (from, to) = (Timestamp(now - 2 * HOUR_MS), Timestamp(now + HOUR_MS));
        assert_eq!(
            a.rollups(&obs.asset, &obs.check, HOUR_MS, from, to)
                .await
                .unwrap(),
            b.rollups(&obs.asset, &obs.check, HOUR_MS, from, to)
                .await
                .unwrap(),
            "rollups of {}/{}",
            obs.asset,
            obs.check
        );
    }
}

#[test]
fn a_store_filled_by_serve_is_copied_whole_and_verified() {
    let db = Db::new("migrate_whole");
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitals.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
data_dir = "data"
self_check = false

[[check]]
asset = "svc"
name = "up"
type = "http"
url = "http://{target}/ok"
interval = "1s"

[[check]]
asset = "svc"
name = "down"
type = "http"
url = "http://{target}/down"
interval = "1s"

[[check]]
asset = "svc"
name = "health"
type = "http"
url = "http://{target}/health"
interval = "1s"

[[notifier]]
id = "log"
type = "logfile"
path = "alerts.log"

[[rule]]
id = "down"
notifiers = ["log"]
"#
        ),
    )
    .unwrap();
    let s = Server::start(dir.path(), &config);
    // Pushed results with idempotency ids, one of them failing (an alert), and a silence.
    let now = vitals_now();
    let results: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"asset":"node-1","check":"import","status":"{}","time":{},"id":"r-{i}","reason":"batch {i}"}}"#,
                if i == 19 { "crit" } else { "ok" },
                now - 20_000 + i * 1000
            )
        })
        .collect();
    let (code, body) = post(
        &s.addr,
        "/api/v1/results",
        &format!(r#"{{"results":[{}]}}"#, results.join(",")),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = post(
        &s.addr,
        "/api/v1/silences",
        r#"{"matchers":{"assets":["node-1"]},"duration":"2h","author":"bob","comment":"planned upgrade"}"#,
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        wait_until(30, || {
            s.json("/api/v1/alerts?state=firing")["alerts"]
                .as_array()
                .is_some_and(|a| a.len() >= 2)
        }),
        "no alerts fired"
    );
    assert!(wait_until(30, || {
        s.json("/api/v1/notifications")["notifications"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }));
    std::thread::sleep(Duration::from_secs(2));
    s.stop();

    let file = dir.path().join("data").join("vitals.db");
    let rt = rt();
    rt.block_on(async {
        let store = SqliteStore::open(&file).unwrap();
        fill_the_rest(&store).await;
        store.close().await.unwrap();
    });
    // Every table has something to copy (the staging table may have been merged at close).
    for (table, n) in sqlite_counts(&file) {
        if table != "observations_recent" {
            assert!(n > 0, "the test left table {table} empty");
        }
    }

    let to = url_with_password(&db, "sekrit-pw");
    let (code, out, err) = migrate(&file, &to, "7");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("sekrit") && !err.contains("sekrit"),
        "the password leaked:\n{out}\n{err}"
    );
    assert!(out.contains("verified"), "{out}");
    assert!(!out.contains("MISMATCH"), "{out}");
    for t in [
        "assets",
        "observations",
        "alerts",
        "audit",
        "fleet_changes",
        "notices",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(t) && l.trim_end().ends_with("ok")),
            "no verified line for {t}:\n{out}"
        );
    }
    assert!(err.contains("observations"), "no progress on stderr: {err}");

    // Every table both schemas have was copied and verified, with every column: the tables and
    // columns of the two schemas are the same, but for SQLite's staging table, PostgreSQL's
    // retention column `alerts.ended` and PostgreSQL's own tables (`vitals_…`, partitions).
    let sqlite_tables = sqlite_columns(&file);
    let pg_tables = pg_columns(&db.url());
    let mut want = sqlite_tables.clone();
    want.remove("observations_recent");
    want.get_mut("alerts").unwrap().insert("ended".to_string());
    assert_eq!(pg_tables, want);
    for t in pg_tables.keys() {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(t.as_str())
                    && l.trim_end().ends_with(" ok")),
            "{t} was not verified:\n{out}"
        );
    }

    // The content reads back the same through both stores' own code.
    rt.block_on(async {
        let sqlite = SqliteStore::open(&file).unwrap();
        let pg = PgStore::connect(&db.url()).await.unwrap();
        same_content(&sqlite, &pg).await;
        sqlite.close().await.unwrap();
        pg.close().await.unwrap();
    });

    // Run again: nothing to do, verified again.
    let (code, out, err) = migrate(&file, &db.url(), "1000");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("done earlier"), "{err}");

    // New rows get new ids: the sequences were moved past the copied ones.
    rt.block_on(async {
        let pg = PgStore::connect(&db.url()).await.unwrap();
        let before = pg.notices("clinic-17", 100).await.unwrap();
        let top = before.iter().map(|n| n.id).max().unwrap();
        let added = pg
            .notice_add(
                Notice {
                    id: 0,
                    page: "clinic-17".into(),
                    kind: "info".into(),
                    title: "after".into(),
                    body: String::new(),
                    author: "bob".into(),
                    created: Timestamp(vitals_now()),
                    ended: None,
                },
                10,
            )
            .await
            .unwrap();
        assert!(added.id > top);
        pg.audit_append(AuditEntry {
            id: 0,
            time: Timestamp(vitals_now()),
            actor: "local".into(),
            action: "after".into(),
            target: "x".into(),
            params: serde_json::json!({}),
            outcome: "200".into(),
        })
        .await
        .unwrap();
        // A new check and new interned texts.
        let mut o = Observation::new(
            "new-asset",
            "new-check",
            Timestamp(vitals_now()),
            Status::Warn,
            "a reason never seen",
        );
        o.values.push(Value::new("a_new_value", 1.5));
        pg.append(vec![o.clone()]).await.unwrap();
        let back = pg
            .observations(&ObservationQuery {
                asset: "new-asset".into(),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(back, vec![o]);
        pg.close().await.unwrap();
    });
}

/// 200,000 observations over a week (several partitions), a small batch, `kill -9` in the middle
/// of the observations; the same command again completes it, without duplicates.
#[test]
fn an_interrupted_migration_continues_where_it_stopped() {
    let db = Db::new("migrate_resume");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vitals.db");
    let rt = rt();
    let start = vitals_now() - 8 * 86_400_000;
    rt.block_on(async {
        // Merging staged observations only every 30,000 rows, and no close (which merges): the
        // file is left as a killed server leaves it, with rows in both observation tables.
        let opts = vitals_store_sqlite::SqliteOptions {
            merge_rows: 30_000,
            ..Default::default()
        };
        let store = SqliteStore::open_with(&file, opts).unwrap();
        store
            .upsert_assets(&[AssetRecord::named("db-1"), AssetRecord::named("db-2")])
            .await
            .unwrap();
        for chunk in 0..20i64 {
            let batch: Vec<Observation> = (0..10_000i64)
                .map(|i| {
                    let n = chunk * 10_000 + i;
                    let status = if n % 97 == 0 {
                        Status::Crit
                    } else {
                        Status::Ok
                    };
                    let mut o = Observation::new(
                        format!("db-{}", 1 + n % 2),
                        format!("q{}", n % 20),
                        Timestamp(start + (n / 20) * 60_000 + n % 20),
                        status,
                        if status == Status::Ok { "" } else { "slow" },
                    );
                    o.duration_us = 1000 + (n % 500) as u64;
                    o.values.push(Value::new("rows", (n % 1000) as f64));
                    o
                })
                .collect();
            store.append(batch).await.unwrap();
        }
        drop(store);
    });
    let counts: std::collections::HashMap<String, i64> = sqlite_counts(&file).into_iter().collect();
    assert_eq!(
        counts["observations"] + counts["observations_recent"],
        200_000
    );
    assert!(counts["observations_recent"] > 0, "{counts:?}");
    assert!(counts["observations"] > 0, "{counts:?}");

    // First run: killed once it has copied part of the observations.
    let mut child = Command::new(BIN)
        .args([
            "store",
            "migrate",
            "--from",
            &format!("sqlite://{}", file.display()),
            "--to",
            &db.url(),
            "--batch",
            "200",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no progress on observations:\n{}", seen.join("\n")));
        seen.push(line.clone());
        let mut words = line.split_whitespace();
        if words.next() == Some("observations") {
            let copied: i64 = words.next().unwrap().parse().unwrap();
            if copied > 0 {
                assert!(
                    !line.contains("done"),
                    "finished before it could be interrupted: {line}"
                );
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let copied = scalar(
        &db,
        "SELECT copied FROM vitals_migration WHERE tbl = 'observations' AND NOT done",
    );
    assert!(copied > 0 && copied < 200_000, "{copied}");
    // What is in PostgreSQL is exactly what the progress says (the staging table comes after
    // the main one: nothing of it yet).
    let recent = scalar(
        &db,
        "SELECT coalesce(sum(copied), 0)::bigint FROM vitals_migration \
         WHERE tbl = 'observations_recent'",
    );
    assert_eq!(recent, 0);
    assert_eq!(scalar(&db, "SELECT count(*) FROM observations"), copied);

    // Second run: continues, completes, verifies.
    let (code, out, err) = migrate(&file, &db.url(), "5000");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("resuming"), "{err}");
    assert!(out.contains("verified"), "{out}");
    assert_eq!(scalar(&db, "SELECT count(*) FROM observations"), 200_000);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM (SELECT DISTINCT check_id, ts FROM observations) d"
        ),
        200_000
    );
    // One partition per UTC day the week of data touches: 7 or 8, by the time of day it starts.
    let last = start + (199_999 / 20) * 60_000 + 199_999 % 20;
    let days = last / 86_400_000 - start / 86_400_000 + 1;
    assert!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'observations_d%'"
        ) >= days
    );
    rt.block_on(async {
        let sqlite = SqliteStore::open(&file).unwrap();
        let pg = PgStore::connect(&db.url()).await.unwrap();
        assert_eq!(
            sorted(sqlite.latest().await.unwrap()),
            sorted(pg.latest().await.unwrap())
        );
        for asset in ["db-1", "db-2"] {
            let q = ObservationQuery {
                asset: asset.into(),
                check: Some("q3".into()),
                limit: 100_000,
                ..Default::default()
            };
            let a = sqlite.observations(&q).await.unwrap();
            assert_eq!(a, pg.observations(&q).await.unwrap());
        }
        sqlite.close().await.unwrap();
        pg.close().await.unwrap();
    });
}

#[test]
fn a_destination_with_data_of_its_own_and_a_foreign_source_are_refused() {
    let db = Db::new("migrate_refuse");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vitals.db");
    let rt = rt();
    rt.block_on(async {
        let store = SqliteStore::open(&file).unwrap();
        store
            .append(vec![Observation::new(
                "a",
                "c",
                Timestamp(vitals_now()),
                Status::Ok,
                "",
            )])
            .await
            .unwrap();
        store.close().await.unwrap();
        // The destination is a Vitals store already in use.
        let pg = PgStore::connect(&db.url()).await.unwrap();
        pg.upsert_assets(&[AssetRecord::named("someone-elses")])
            .await
            .unwrap();
        pg.close().await.unwrap();
    });
    let to = url_with_password(&db, "hunter2");
    let (code, out, err) = migrate(&file, &to, "100");
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("data of its own") && err.contains("table assets"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2") && !out.contains("hunter2"),
        "{err}"
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM observations"), 0);

    // Not a Vitals store: another SQLite database, a file that is no database, no file.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('hello');")
        .unwrap();
    let (code, _, err) = migrate(&other, &to, "100");
    assert_ne!(code, 0);
    assert!(err.contains("not a Vitals store"), "{err}");
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "just some text, long enough to be read as a header ....... ....... ...",
    )
    .unwrap();
    let (code, _, err) = migrate(&text, &to, "100");
    assert_ne!(code, 0);
    assert!(err.contains("not a SQLite database"), "{err}");
    let (code, _, err) = migrate(&dir.path().join("missing.db"), &to, "100");
    assert_ne!(code, 0);
    assert!(err.contains("no such file"), "{err}");
    // The wrong way round.
    let (code, _, err) = vitals(&[
        "store",
        "migrate",
        "--from",
        &to,
        "--to",
        &format!("sqlite://{}", file.display()),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--from must be the SQLite store"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
