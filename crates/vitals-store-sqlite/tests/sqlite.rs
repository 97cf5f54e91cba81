//! SQLite-specific behaviour: persistence, kill -9 durability, readers vs the writer, group
//! commit, migrations, corrupt rows, and the on-disk size of an observation.

use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_store::prelude::*;
use vitals_store::{ObservationQuery, StoreError};
use vitals_store_sqlite::{schema, SqliteOptions, SqliteStore};

const T0: i64 = 1_714_006_400_000;

fn obs(asset: &str, check: &str, ms: i64, status: Status, reason: &str) -> Observation {
    Observation::new(asset, check, Timestamp(T0 + ms), status, reason)
}

fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).unwrap();
    (store, dir)
}

fn all_of(asset: &str) -> ObservationQuery {
    ObservationQuery {
        asset: asset.into(),
        limit: usize::MAX,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_captured_version_survives_the_round_trip() {
    let (store, _dir) = fresh();
    let mut o = obs("minlog2-node-1", "version", 1, Status::Ok, "HTTP 200");
    o.values = vec![Value::new("total_ms", 1.5)];
    o.components = vec![Component {
        name: "version".into(),
        status: Status::Ok,
        value: Some("2.5.1".into()),
        output: "captured".into(),
    }];
    let mut newer = o.clone();
    newer.time = Timestamp(T0 + 2);
    newer.components[0].value = Some("2.5.2".into());
    store.append(vec![o.clone(), newer.clone()]).await.unwrap();
    let got = store.observations(&all_of("minlog2-node-1")).await.unwrap();
    assert_eq!(
        got,
        vec![newer, o],
        "newest first, each with its own version"
    );
}

/// A plain connection to the same file, as another process would have.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    conn
}

/// Polls `cond` every 10 ms, at most 6,000 times (a minute), so a bug fails instead of hangs.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..6_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting until {what}");
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/vitals.db");
    let mut o = obs("a", "http", 1, Status::Crit, "refused");
    o.values = vec![Value::new("ttfb_ms", 12.345)];
    o.components = vec![Component {
        name: "db".into(),
        status: Status::Crit,
        value: None,
        output: "down".into(),
    }];
    {
        let store = SqliteStore::open(&path).unwrap();
        store.append(vec![o.clone()]).await.unwrap();
        store.close().await.unwrap();
    }
    // Without close: dropping the store must not lose acknowledged data either.
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .append(vec![obs("a", "http", 2, Status::Ok, "")])
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let got = store.observations(&all_of("a")).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], o);
    // The staged keys were reloaded: a second observation at ms 2 is found to be a duplicate
    // of the one still staged from before the restart.
    store
        .append(vec![obs("a", "http", 2, Status::Warn, "again")])
        .await
        .unwrap();
    let times: Vec<i64> = store
        .observations(&all_of("a"))
        .await
        .unwrap()
        .iter()
        .map(|o| o.time.0 - T0)
        .collect();
    assert_eq!(times, vec![2, 1]);
    // Interned ids were reloaded from the file, not reassigned.
    store
        .append(vec![obs("a", "http", 4, Status::Crit, "refused")])
        .await
        .unwrap();
    let conn = raw(&path);
    let texts: i64 = conn
        .query_row(
            "SELECT count(*) FROM texts WHERE text = 'refused'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(texts, 1);
}

const CHILD_ENV: &str = "VITALS_SQLITE_KILL9_CHILD_DB";
const KILL9_TEST: &str = "kill_9_keeps_every_acknowledged_append";

/// The child half of the kill -9 test: append forever (bounded), print `acked N` after each
/// `append` returned.
fn kill9_child(db: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(Path::new(db)).unwrap();
        for i in 0..100_000i64 {
            let batch = vec![
                obs("a", &format!("c{}", i % 5), i, Status::Ok, ""),
                obs("b", "x", i, Status::Warn, &format!("r{}", i % 3)),
            ];
            store.append(batch).await.unwrap();
            println!("acked {i}");
        }
    });
}

#[test]
fn kill_9_keeps_every_acknowledged_append() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        return kill9_child(&db);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vitals.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([KILL9_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: Vec<i64> = Vec::new();
    let parse = |line: &str| {
        line.strip_prefix("acked ")
            .map(|n| n.parse::<i64>().unwrap())
    };
    while acked.len() < 300 {
        match lines.next() {
            Some(Ok(line)) => acked.extend(parse(&line)),
            other => panic!(
                "child stopped before 300 acks ({} seen): {other:?}",
                acked.len()
            ),
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines already written before the kill were acknowledged too.
    for line in lines.map_while(Result::ok) {
        acked.extend(parse(&line));
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&db).unwrap();
        let a = store.observations(&all_of("a")).await.unwrap();
        let b = store.observations(&all_of("b")).await.unwrap();
        let a_times: std::collections::HashSet<i64> = a.iter().map(|o| o.time.0 - T0).collect();
        let b_times: std::collections::HashSet<i64> = b.iter().map(|o| o.time.0 - T0).collect();
        for i in &acked {
            assert!(a_times.contains(i), "acked observation a/{i} lost");
            assert!(b_times.contains(i), "acked observation b/{i} lost");
        }
        println!(
            "kill -9: {} appends acknowledged, {} observations found after restart",
            acked.len(),
            a.len() + b.len()
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_committed_data_while_another_writer_holds_a_big_transaction() {
    let (store, _dir) = fresh();
    let batch = (0..100).map(|i| obs("a", "c", i, Status::Ok, "")).collect();
    store.append(batch).await.unwrap();

    let ext = raw(store.path());
    ext.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut insert = ext
            .prepare(
                "INSERT INTO observations (check_id, ts, status, duration_us) \
                 SELECT id, ?1, 0, 0 FROM checks WHERE asset = 'a'",
            )
            .unwrap();
        for i in 0..50_000i64 {
            insert.execute([T0 + 1_000 + i]).unwrap();
        }
    }
    // The write lock is held and 50,000 rows are pending: reads go on, on the old snapshot.
    assert_eq!(store.count_observations().await.unwrap(), 100);
    assert_eq!(store.observations(&all_of("a")).await.unwrap().len(), 100);
    assert_eq!(store.latest().await.unwrap()[0].time.0, T0 + 99);
    ext.execute_batch("COMMIT").unwrap();
    assert_eq!(store.count_observations().await.unwrap(), 50_100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_a_big_append_see_all_or_nothing_of_it() {
    let (store, _dir) = fresh();
    let store = Arc::new(store);
    store
        .append((0..100).map(|i| obs("a", "c", i, Status::Ok, "")).collect())
        .await
        .unwrap();
    let big: Vec<Observation> = (0..50_000)
        .map(|i| obs("a", &format!("c{}", i % 50), 1_000 + i, Status::Ok, ""))
        .collect();
    let writer = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.append(big).await }
    });
    let mut reads = 0;
    // Bounded: at most 100,000 reads, stops as soon as the append is done.
    while !writer.is_finished() && reads < 100_000 {
        let n = store.count_observations().await.unwrap();
        assert!(
            n == 100 || n == 50_100,
            "a read saw a partial transaction: {n}"
        );
        reads += 1;
    }
    writer.await.unwrap().unwrap();
    assert_eq!(store.count_observations().await.unwrap(), 50_100);
    println!("{reads} reads completed while the 50,000-observation append ran");
}

/// Blocks the store's writer with an outside write lock until `n` commands are queued, so
/// the test controls exactly what one group contains.
async fn with_writer_blocked_until_queued<T>(
    store: &SqliteStore,
    n: usize,
    start: impl FnOnce() -> T,
) -> T {
    let ext = raw(store.path());
    ext.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = start();
    wait_until("the writes are queued", || store.queued_writes() >= n).await;
    ext.execute_batch("COMMIT").unwrap();
    started
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thousand_concurrent_appends_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions {
        busy_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let store = Arc::new(SqliteStore::open_with(&dir.path().join("v.db"), opts).unwrap());
    let before = store.commits();
    let tasks = with_writer_blocked_until_queued(&store, 999, || {
        (0..1_000)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .append(vec![obs("a", &format!("c{}", i % 10), i, Status::Ok, "")])
                        .await
                })
            })
            .collect::<Vec<_>>()
    })
    .await;
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let commits = store.commits() - before;
    assert_eq!(store.count_observations().await.unwrap(), 1_000);
    // The writer took the write lock before draining the queue, so all 1,000 are one group.
    assert_eq!(commits, 1, "{commits} commits for 1,000 appends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_append_does_not_sink_the_rest_of_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions {
        busy_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let store = Arc::new(SqliteStore::open_with(&dir.path().join("v.db"), opts).unwrap());
    let append = |batch: Vec<Observation>| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.append(batch).await })
    };
    let tasks = with_writer_blocked_until_queued(&store, 3, || {
        let first = append(vec![obs("a", "c", 0, Status::Ok, "")]);
        let good1 = append(vec![obs("a", "c", 1, Status::Ok, "good")]);
        let failing = Arc::clone(&store);
        let bad = tokio::spawn(async move { failing.failing_write("refused on purpose").await });
        let good2 = append(vec![obs("a", "d", 2, Status::Ok, "good")]);
        [first, good1, bad, good2]
    })
    .await;
    let [first, good1, bad, good2] = tasks;
    first.await.unwrap().unwrap();
    good1.await.unwrap().unwrap();
    good2.await.unwrap().unwrap();
    match bad.await.unwrap() {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("refused on purpose"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    let got = store.observations(&all_of("a")).await.unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
}

fn schema_dump(path: &Path) -> (i64, Vec<(String, String, Option<String>)>) {
    let conn = raw(path);
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (version, rows)
}

#[tokio::test]
async fn migrating_an_empty_file_and_reopening_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitals.db");
    std::fs::File::create(&path).unwrap(); // zero bytes: what a fresh touch leaves
    let store = SqliteStore::open(&path).unwrap();
    store
        .append(vec![obs("a", "c", 1, Status::Ok, "kept")])
        .await
        .unwrap();
    store.close().await.unwrap();
    let first = schema_dump(&path);
    assert_eq!(first.0, schema::MIGRATIONS.len() as i64);
    assert!(first.1.iter().any(|(_, name, _)| name == "observations"));

    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.count_observations().await.unwrap(), 1);
        store.close().await.unwrap();
        assert_eq!(schema_dump(&path), first);
    }
    // Running the migrations again on a current database is a no-op.
    let mut conn = raw(&path);
    schema::migrate(&mut conn).unwrap();
    drop(conn);
    assert_eq!(schema_dump(&path), first);
    let journal: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

#[test]
fn a_newer_schema_or_a_foreign_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    raw(&newer)
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    match SqliteStore::open(&newer) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("schema version 999"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }

    let foreign = dir.path().join("notes.txt");
    std::fs::write(
        &foreign,
        "these are not the pages you are looking for\n".repeat(200),
    )
    .unwrap();
    match SqliteStore::open(&foreign) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("notes.txt"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }

    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "x").unwrap();
    match SqliteStore::open(&blocked.join("sub/vitals.db")) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("cannot create directory"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_rows_are_corrupt_errors_not_panics() {
    let (store, _dir) = fresh();
    store
        .append(vec![obs("a", "c", 0, Status::Ok, "")])
        .await
        .unwrap();
    let ext = raw(store.path());
    let check_id: i64 = ext
        .query_row("SELECT id FROM checks", [], |r| r.get(0))
        .unwrap();
    let cases = [
        ("status 9", "status = 9"),
        ("garbage values", "vals = x'ff'"),
        ("values as text", "vals = 'text'"),
        ("unknown value name", "vals = x'fc0700'"),
        ("dangling reason", "reason_id = 424242"),
        ("score as text", "score = 'high'"),
        ("duration as blob", "duration_us = x'00'"),
    ];
    for (what, set) in cases {
        ext.execute_batch(&format!(
            "DELETE FROM observations; INSERT INTO observations \
             (check_id, ts, status, duration_us) VALUES ({check_id}, {T0}, 0, 0); \
             UPDATE observations SET {set};"
        ))
        .unwrap();
        for r in [store.observations(&all_of("a")).await, store.latest().await] {
            match r {
                Err(StoreError::Corrupt(msg)) => println!("{what}: {msg}"),
                other => panic!("{what}: expected Corrupt, got {other:?}"),
            }
        }
    }
    ext.execute_batch(&format!(
        "DELETE FROM observations; INSERT INTO texts (id, text) VALUES (77, 'not json'); \
         INSERT INTO observations (check_id, ts, status, duration_us, comp_id) \
         VALUES ({check_id}, {T0}, 0, 0, 77); \
         INSERT INTO assets (id, name, doc) VALUES ('x', 'x', '{{broken');"
    ))
    .unwrap();
    assert!(matches!(
        store.observations(&all_of("a")).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(store.assets().await, Err(StoreError::Corrupt(_))));
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A latency in ms with 1 µs resolution, in [lo, hi).
    fn ms(&mut self, lo: f64, hi: f64) -> f64 {
        let span = ((hi - lo) * 1000.0) as u64;
        ((lo * 1000.0) as u64 + self.next() % span) as f64 / 1000.0
    }
}

/// One scheduler round's worth of realistic observations of `check`.
fn realistic(rng: &mut Rng, check: u64, round: i64) -> Observation {
    let crit = rng.next().is_multiple_of(20);
    let reasons = [
        "connection refused",
        "timeout after 10s",
        "HTTP 503",
        "TLS handshake failed",
    ];
    let (status, reason) = if crit {
        (Status::Crit, reasons[(rng.next() % 4) as usize])
    } else {
        (Status::Ok, "")
    };
    // Each check runs every 60 s at its own offset, like a scheduler spreading the load.
    let time = T0 + round * 60_000 + (check as i64 * 60_000) / 1_000 + (rng.next() % 50) as i64;
    let mut o = Observation::new(
        format!("node-{:03}", check / 5),
        ["http", "tls", "dns", "health", "tcp"][(check % 5) as usize],
        Timestamp(time),
        status,
        reason,
    );
    let dns = rng.ms(0.2, 3.0);
    let connect = rng.ms(0.1, 2.0);
    let ttfb = rng.ms(5.0, 400.0);
    let total = ((dns + connect + ttfb + rng.ms(0.0, 30.0)) * 1000.0).round() / 1000.0;
    o.duration_us = (total * 1000.0) as u64 + rng.next() % 200;
    o.values = vec![
        Value::new("dns_ms", dns),
        Value::new("connect_ms", connect),
        Value::new("ttfb_ms", ttfb),
        Value::new("total_ms", total),
        Value::new("status_code", if crit { 503.0 } else { 200.0 }),
        Value::new("body_bytes", (200 + rng.next() % 20_000) as f64),
    ];
    if check % 5 == 3 {
        // Health endpoints report components; they change rarely, so they intern well.
        let db_down = crit && rng.next().is_multiple_of(2);
        o.components = vec![
            Component {
                name: "database".into(),
                status: if db_down { Status::Crit } else { Status::Ok },
                value: None,
                output: if db_down {
                    "FAIL connection refused".into()
                } else {
                    String::new()
                },
            },
            Component {
                name: "disk".into(),
                status: Status::Ok,
                value: Some("42".into()),
                output: String::new(),
            },
        ];
    }
    o
}

async fn db_bytes(store: &SqliteStore) -> i64 {
    store.checkpoint().await.unwrap();
    let conn = raw(store.path());
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    pages * size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_observation_takes_at_most_64_bytes_on_disk() {
    const CHECKS: u64 = 1_000;
    const ROUNDS: i64 = 200;
    let (empty, _empty_dir) = fresh();
    let empty_bytes = db_bytes(&empty).await;

    let (store, _dir) = fresh();
    let mut rng = Rng(7);
    let mut batch = Vec::with_capacity(500);
    let mut kept = Vec::new();
    for round in 0..ROUNDS {
        for check in 0..CHECKS {
            let o = realistic(&mut rng, check, round);
            if check == 3 && round % 50 == 0 {
                kept.push(o.clone());
            }
            batch.push(o);
            if batch.len() == 500 {
                store.append(std::mem::take(&mut batch)).await.unwrap();
            }
        }
    }
    store.append(batch).await.unwrap();
    let n = store.count_observations().await.unwrap();
    assert_eq!(n, CHECKS * ROUNDS as u64);

    let bytes = db_bytes(&store).await;
    let per = (bytes - empty_bytes) as f64 / n as f64;
    let free: i64 = raw(store.path())
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    println!(
        "{n} observations: {bytes} bytes on disk ({empty_bytes} empty, {free} free pages \
         left by the staging table) = {per:.1} bytes each"
    );
    assert!(per <= 64.0, "{per:.1} bytes per observation");

    // The compact form loses nothing: a sample reads back exactly.
    let q = ObservationQuery {
        asset: kept[0].asset.clone(),
        check: Some(kept[0].check.clone()),
        limit: usize::MAX,
        ..Default::default()
    };
    let got = store.observations(&q).await.unwrap();
    assert_eq!(got.len(), ROUNDS as usize);
    for k in &kept {
        assert!(got.contains(k), "{k:?} did not read back exactly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_covers_ten_thousand_checks() {
    let (store, _dir) = fresh();
    for round in 0..3i64 {
        let batch: Vec<Observation> = (0..10_000)
            .map(|c| {
                obs(
                    &format!("asset-{:05}", c / 2),
                    ["a", "b"][c % 2],
                    // Rounds arrive out of order: round 1 is the newest.
                    [10_000, 30_000, 20_000][round as usize] + c as i64,
                    Status::Ok,
                    &format!("round {round}"),
                )
            })
            .collect();
        store.append(batch).await.unwrap();
    }
    let started = Instant::now();
    let latest = store.latest().await.unwrap();
    let took = started.elapsed();
    assert_eq!(latest.len(), 10_000);
    assert!(latest.iter().all(|o| o.reason == "round 1"));
    println!("latest() over 10,000 checks took {took:?} (debug build)");
}

/// Reads see the staging table and the main table as one: with merges every 50 rows, the
/// data ends up split between them, and every query answers exactly like a plain sorted list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_over_staged_and_merged_rows_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions {
        merge_rows: 50,
        ..Default::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("v.db"), opts).unwrap();
    let mut rng = Rng(11);
    let mut model: Vec<Observation> = (0..400i64)
        .map(|i| {
            // Every 12 rows share one time, one row per (asset, check) pair: plenty of equal
            // times across checks to test the order of ties, none within a check.
            let asset = format!("a{}", i % 3);
            let check = format!("c{}", (i / 3) % 4);
            let mut o = obs(&asset, &check, (i / 12) * 100, Status::Ok, "");
            o.values = vec![Value::new("n", i as f64)];
            o
        })
        .collect();
    // Arrival order differs from time order.
    for i in (1..model.len()).rev() {
        model.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let mut rest = &model[..];
    while !rest.is_empty() {
        let n = (1 + rng.next() % 40) as usize;
        let (batch, tail) = rest.split_at(n.min(rest.len()));
        store.append(batch.to_vec()).await.unwrap();
        rest = tail;
    }
    let staged: i64 = raw(store.path())
        .query_row("SELECT count(*) FROM observations_recent", [], |r| r.get(0))
        .unwrap();
    assert!(
        staged > 0 && staged < 400,
        "{staged} rows staged: not a mix"
    );

    let newest = |a: &Observation, b: &Observation| {
        b.time
            .cmp(&a.time)
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| a.asset.cmp(&b.asset))
    };
    let at = |ms: Option<i64>| ms.map(|m| Timestamp(T0 + m));
    let ranges = [
        (None, None),
        (Some(1_000), Some(2_000)),
        (Some(3_000), None),
    ];
    for asset in ["a0", "a1", "a2"] {
        for check in [None, Some("c0"), Some("c3")] {
            for (from, to) in ranges {
                for limit in [1, 3, 17, 1_000] {
                    let q = ObservationQuery {
                        asset: asset.into(),
                        check: check.map(Into::into),
                        from: at(from),
                        to: at(to),
                        limit,
                    };
                    let mut expected: Vec<Observation> = model
                        .iter()
                        .filter(|o| o.asset == asset && check.is_none_or(|c| o.check == c))
                        .filter(|o| q.from.is_none_or(|f| o.time >= f))
                        .filter(|o| q.to.is_none_or(|t| o.time <= t))
                        .cloned()
                        .collect();
                    expected.sort_by(newest);
                    expected.truncate(limit);
                    assert_eq!(store.observations(&q).await.unwrap(), expected, "{q:?}");
                }
            }
        }
    }
    for assets in [None, Some(vec!["a0".to_string(), "a2".to_string()])] {
        for (from, to) in ranges {
            for limit in [1, 5, 1_000] {
                let mut expected: Vec<Observation> = model
                    .iter()
                    .filter(|o| o.check == "c1")
                    .filter(|o| assets.as_ref().is_none_or(|l| l.contains(&o.asset)))
                    .filter(|o| at(from).is_none_or(|f| o.time >= f))
                    .filter(|o| at(to).is_none_or(|t| o.time <= t))
                    .cloned()
                    .collect();
                expected.sort_by(newest);
                expected.truncate(limit);
                let got = store
                    .check_history("c1", assets.as_deref(), at(from), at(to), limit)
                    .await
                    .unwrap();
                assert_eq!(
                    got, expected,
                    "check_history {assets:?} {from:?}..{to:?} {limit}"
                );
            }
        }
    }
    let mut expected_latest: Vec<Observation> = Vec::new();
    for o in &model {
        match expected_latest
            .iter_mut()
            .find(|l| l.asset == o.asset && l.check == o.check)
        {
            Some(l) if l.time < o.time => *l = o.clone(),
            Some(_) => {}
            None => expected_latest.push(o.clone()),
        }
    }
    expected_latest.sort_by(|a, b| (&a.asset, &a.check).cmp(&(&b.asset, &b.check)));
    assert_eq!(store.latest().await.unwrap(), expected_latest);
    assert_eq!(store.count_observations().await.unwrap(), 400);
}

#[tokio::test]
async fn the_audit_log_loses_rows_only_once_they_are_archived() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let store = SqliteStore::open(&path).unwrap();
    for i in 0..3 {
        store
            .audit_append(vitals_store::AuditEntry {
                id: 0,
                time: Timestamp(1_000 + i),
                actor: "ops".into(),
                action: "POST /x".into(),
                target: "/x".into(),
                params: serde_json::json!({}),
                outcome: "200".into(),
            })
            .await
            .unwrap();
    }
    store
        .archive_audit(Timestamp(1_001), 10, &dir.path().join("archive"))
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
    let conn = raw(&path);
    // Not archived: neither changed nor deleted, whoever asks.
    for sql in [
        "DELETE FROM audit WHERE id = 3",
        "UPDATE audit SET outcome = 'forged' WHERE id = 3",
        "UPDATE audit_archived SET upto = 0",
        "DELETE FROM audit_archived",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(
            err.contains("append-only") || err.contains("archive mark"),
            "{sql}: {err}"
        );
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}
