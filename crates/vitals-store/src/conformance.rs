//! The story tests every [`Store`] backend must pass.
//!
//! Each story is a `pub async fn story<S: Store>(store: &S)` that starts from an empty store
//! and panics (it is test code) with a message saying what the backend got wrong. A backend
//! runs them from its own test suite, either one `#[tokio::test]` per story (better reports):
//!
//! ```ignore
//! async fn fresh() -> (MyStore, tempfile::TempDir) { /* a new empty store */ }
//! vitals_store::conformance_tests!(fresh);
//! ```
//!
//! or all in one test with [`run_all`]. The factory returns the store together with a guard
//! (e.g. the temporary directory holding its files) that lives until the story ends.
//!
//! Concurrency is exercised by polling many store futures at once from one task (no runtime
//! dependency here); the writer behind them still sees them arrive concurrently.

use crate::{AssetRecord, ObservationQuery, Store, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use vitals_core::{Component, Observation, Status, Timestamp, Value};

/// 2024-04-25T00:53:20Z: a realistic base time for stories.
pub const T0: i64 = 1_714_006_400_000;

/// Generates one `#[tokio::test]` per story. `$make` is a path to an `async fn() -> (S, G)`
/// returning a fresh, empty store and a guard kept alive for the test. The calling crate
/// needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            empty_store_is_empty,
            round_trip_every_field,
            newest_first,
            inclusive_bounds,
            limit_keeps_the_newest,
            check_filter,
            unknown_asset_or_check_is_empty,
            latest_per_pair,
            same_millisecond_both_kept,
            concurrent_appends_all_stored,
            assets_upsert_replace_order,
            ping_on_an_open_store,
            calls_after_close_are_closed
        );
    };
    (@each $make:path; $($story:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let (store, _guard) = $make().await;
                $crate::conformance::$story(&store).await;
            }
        )*
    };
}

/// Runs every story, each on a fresh store from `make`.
pub async fn run_all<S, G, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = (S, G)>,
{
    macro_rules! story {
        ($name:ident) => {{
            let (store, _guard) = make().await;
            $name(&store).await;
        }};
    }
    story!(empty_store_is_empty);
    story!(round_trip_every_field);
    story!(newest_first);
    story!(inclusive_bounds);
    story!(limit_keeps_the_newest);
    story!(check_filter);
    story!(unknown_asset_or_check_is_empty);
    story!(latest_per_pair);
    story!(same_millisecond_both_kept);
    story!(concurrent_appends_all_stored);
    story!(assets_upsert_replace_order);
    story!(ping_on_an_open_store);
    story!(calls_after_close_are_closed);
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ok<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn obs(asset: &str, check: &str, ms: i64, status: Status, reason: &str) -> Observation {
    Observation::new(asset, check, Timestamp(T0 + ms), status, reason)
}

fn query(asset: &str, check: Option<&str>) -> ObservationQuery {
    ObservationQuery {
        asset: asset.into(),
        check: check.map(Into::into),
        from: None,
        to: None,
        limit: 1_000,
    }
}

async fn read<S: Store>(store: &S, q: &ObservationQuery) -> Vec<Observation> {
    ok(store.observations(q).await, "observations")
}

fn times(list: &[Observation]) -> Vec<i64> {
    list.iter().map(|o| o.time.0 - T0).collect()
}

/// Polls all futures concurrently from the current task, returning their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------------------------
// Stories

/// A new store has no observations, no assets, and nothing latest.
pub async fn empty_store_is_empty<S: Store>(store: &S) {
    assert_eq!(ok(store.count_observations().await, "count"), 0);
    assert!(ok(store.assets().await, "assets").is_empty());
    assert!(ok(store.latest().await, "latest").is_empty());
    assert!(read(store, &query("a", None)).await.is_empty());
}

/// Every field of an observation comes back exactly as appended.
pub async fn round_trip_every_field<S: Store>(store: &S) {
    let full = Observation {
        asset: "klinikum-nord".into(),
        check: "broker import".into(),
        time: Timestamp(T0 + 1_234),
        status: Status::Warn,
        score: 7,
        duration_us: 1_234_567,
        reason: "slow import — Übertragung verzögert".into(),
        values: vec![
            Value::new("dns_ms", 1.234),
            Value::new("connect_ms", 0.5),
            Value::new("ttfb_ms", 250.001),
            Value::new("status_code", 200.0),
            Value::new("body_bytes", 1_048_576.0),
            Value::new("error_rate", 1.0 / 3.0),
            Value::new("delta", -42.125),
            Value::new("zero", 0.0),
            Value::new("huge", 1e300),
            Value::new("tiny", 1e-9),
            // Names may repeat (e.g. perfdata with the same label twice); order is kept.
            Value::new("dns_ms", 2.0),
        ],
        components: vec![
            Component {
                name: "MinLog2 database".into(),
                status: Status::Ok,
                value: Some("250".into()),
                output: String::new(),
            },
            Component {
                name: "queue".into(),
                status: Status::Crit,
                value: None,
                output: "FAIL connection refused".into(),
            },
            Component {
                name: "cache".into(),
                status: Status::Unknown,
                value: None,
                output: String::new(),
            },
        ],
    };
    let mut bare = obs("klinikum-nord", "ping", 5, Status::Ok, "");
    bare.duration_us = 0;
    let mut odd_score = obs("klinikum-nord", "ping", 6, Status::Crit, "down");
    odd_score.score = -3;
    let unknown = obs("klinikum-nord", "ping", 7, Status::Unknown, "no data");
    ok(
        store
            .append(vec![
                full.clone(),
                bare.clone(),
                odd_score.clone(),
                unknown.clone(),
            ])
            .await,
        "append",
    );

    let got = read(store, &query("klinikum-nord", Some("broker import"))).await;
    assert_eq!(got, vec![full.clone()], "full observation round trip");
    let got = read(store, &query("klinikum-nord", Some("ping"))).await;
    assert_eq!(
        got,
        vec![unknown, odd_score, bare],
        "bare observations round trip"
    );
    assert_eq!(ok(store.count_observations().await, "count"), 4);
}

/// Results are newest first whatever order they were appended in.
pub async fn newest_first<S: Store>(store: &S) {
    let order = [3, 1, 4, 15, 9, 2, 6, 5];
    for ms in order {
        ok(
            store
                .append(vec![obs("a", "c", ms * 1_000, Status::Ok, "")])
                .await,
            "append",
        );
    }
    let got = read(store, &query("a", Some("c"))).await;
    assert_eq!(
        times(&got),
        vec![15_000, 9_000, 6_000, 5_000, 4_000, 3_000, 2_000, 1_000]
    );
}

/// `from` and `to` are both inclusive, and each may be left open.
pub async fn inclusive_bounds<S: Store>(store: &S) {
    let batch = (1..=5)
        .map(|i| obs("a", "c", i * 1_000, Status::Ok, ""))
        .collect();
    ok(store.append(batch).await, "append");
    let at = |ms: i64| Some(Timestamp(T0 + ms));
    let mut q = query("a", Some("c"));
    q.from = at(2_000);
    q.to = at(4_000);
    assert_eq!(times(&read(store, &q).await), vec![4_000, 3_000, 2_000]);
    q.from = at(2_001);
    q.to = at(3_999);
    assert_eq!(times(&read(store, &q).await), vec![3_000]);
    q.from = at(3_000);
    q.to = at(3_000);
    assert_eq!(times(&read(store, &q).await), vec![3_000], "from == to");
    q.from = None;
    q.to = at(2_000);
    assert_eq!(
        times(&read(store, &q).await),
        vec![2_000, 1_000],
        "open start"
    );
    q.from = at(4_000);
    q.to = None;
    assert_eq!(
        times(&read(store, &q).await),
        vec![5_000, 4_000],
        "open end"
    );
    q.from = at(4_000);
    q.to = at(2_000);
    assert!(read(store, &q).await.is_empty(), "from after to");
    // The same bounds without a check filter.
    let mut q = query("a", None);
    q.from = at(2_000);
    q.to = at(4_000);
    assert_eq!(times(&read(store, &q).await), vec![4_000, 3_000, 2_000]);
}

/// `limit` keeps the newest observations.
pub async fn limit_keeps_the_newest<S: Store>(store: &S) {
    let batch = (1..=10)
        .map(|i| obs("a", "c", i * 10, Status::Ok, ""))
        .collect();
    ok(store.append(batch).await, "append");
    let mut q = query("a", Some("c"));
    q.limit = 3;
    assert_eq!(times(&read(store, &q).await), vec![100, 90, 80]);
    q.limit = 1;
    assert_eq!(times(&read(store, &q).await), vec![100]);
    q.limit = 100;
    assert_eq!(read(store, &q).await.len(), 10);
    let mut q = query("a", None);
    q.limit = 2;
    assert_eq!(
        times(&read(store, &q).await),
        vec![100, 90],
        "limit without check"
    );
}

/// The check filter selects one check; without it every check of the asset, merged newest
/// first, and never another asset's.
pub async fn check_filter<S: Store>(store: &S) {
    ok(
        store
            .append(vec![
                obs("a", "http", 10, Status::Ok, ""),
                obs("a", "tcp", 20, Status::Ok, ""),
                obs("a", "http", 30, Status::Warn, "slow"),
                obs("b", "http", 40, Status::Crit, "down"),
                obs("a", "tcp", 50, Status::Ok, ""),
            ])
            .await,
        "append",
    );
    let http = read(store, &query("a", Some("http"))).await;
    assert_eq!(times(&http), vec![30, 10]);
    assert!(http.iter().all(|o| o.asset == "a" && o.check == "http"));
    let all = read(store, &query("a", None)).await;
    assert_eq!(times(&all), vec![50, 30, 20, 10]);
    assert!(all.iter().all(|o| o.asset == "a"));
    let b = read(store, &query("b", Some("http"))).await;
    assert_eq!(times(&b), vec![40]);
    assert_eq!(b[0].reason, "down");
}

/// Unknown assets and checks read as empty, not as errors.
pub async fn unknown_asset_or_check_is_empty<S: Store>(store: &S) {
    ok(
        store.append(vec![obs("a", "c", 1, Status::Ok, "")]).await,
        "append",
    );
    assert!(read(store, &query("nope", None)).await.is_empty());
    assert!(read(store, &query("nope", Some("c"))).await.is_empty());
    assert!(read(store, &query("a", Some("nope"))).await.is_empty());
    // Asset ids are exact, not prefixes or patterns.
    assert!(read(store, &query("", None)).await.is_empty());
    assert!(read(store, &query("%", None)).await.is_empty());
}

/// `latest` has exactly the newest observation of each (asset, check) pair.
pub async fn latest_per_pair<S: Store>(store: &S) {
    let mut batch = Vec::new();
    for (asset, check, times) in [
        ("a", "http", vec![30, 10, 20]),
        ("a", "tcp", vec![5]),
        ("b", "http", vec![1, 2, 99, 3]),
        ("c", "x", vec![7, 8]),
    ] {
        for ms in times {
            batch.push(obs(
                asset,
                check,
                ms,
                Status::Ok,
                &format!("{asset}{check}{ms}"),
            ));
        }
    }
    // Two appends, so the newest of a pair may come in an earlier batch.
    let later = batch.split_off(6);
    ok(store.append(later).await, "append");
    ok(store.append(batch).await, "append");
    let mut got = ok(store.latest().await, "latest");
    got.sort_by(|x, y| (&x.asset, &x.check).cmp(&(&y.asset, &y.check)));
    let summary: Vec<(String, String, i64, String)> = got
        .iter()
        .map(|o| {
            (
                o.asset.clone(),
                o.check.clone(),
                o.time.0 - T0,
                o.reason.clone(),
            )
        })
        .collect();
    let expected = [
        ("a", "http", 30, "ahttp30"),
        ("a", "tcp", 5, "atcp5"),
        ("b", "http", 99, "bhttp99"),
        ("c", "x", 8, "cx8"),
    ]
    .map(|(a, c, t, r)| (a.to_string(), c.to_string(), t, r.to_string()));
    assert_eq!(summary, expected);
}

/// Two observations of one check in the same millisecond are both kept, whether they come
/// in one append or two. A backend may move the later one forward by a few milliseconds.
pub async fn same_millisecond_both_kept<S: Store>(store: &S) {
    ok(
        store
            .append(vec![
                obs("a", "c", 500, Status::Ok, "first"),
                obs("a", "c", 500, Status::Crit, "second"),
            ])
            .await,
        "append",
    );
    ok(
        store
            .append(vec![obs("a", "c", 500, Status::Warn, "third")])
            .await,
        "append",
    );
    assert_eq!(ok(store.count_observations().await, "count"), 3);
    let mut q = query("a", Some("c"));
    q.from = Some(Timestamp(T0 + 500));
    q.to = Some(Timestamp(T0 + 1_500));
    let got = read(store, &q).await;
    let mut reasons: Vec<&str> = got.iter().map(|o| o.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["first", "second", "third"]);
    for o in &got {
        assert!(
            (500..1_500).contains(&(o.time.0 - T0)),
            "{} moved to {}",
            o.reason,
            o.time.0 - T0
        );
    }
}

/// 100 appends in flight at once are all stored and all acknowledged.
pub async fn concurrent_appends_all_stored<S: Store>(store: &S) {
    let appends = (0..100i64)
        .map(|i| {
            let check = format!("check-{}", i % 7);
            store.append(vec![obs("a", &check, i, Status::Ok, &format!("n{i}"))])
        })
        .collect();
    for (i, r) in join_all(appends).await.into_iter().enumerate() {
        ok(r, &format!("concurrent append {i}"));
    }
    assert_eq!(ok(store.count_observations().await, "count"), 100);
    let all = read(store, &query("a", None)).await;
    let mut reasons: Vec<String> = all.iter().map(|o| o.reason.clone()).collect();
    reasons.sort_unstable();
    let mut expected: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    expected.sort_unstable();
    assert_eq!(reasons, expected);
    assert_eq!(ok(store.latest().await, "latest").len(), 7);
}

/// Assets are upserted by id, replaced whole, left alone when not named, listed by id.
pub async fn assets_upsert_replace_order<S: Store>(store: &S) {
    let asset = |id: &str, name: &str| AssetRecord {
        id: id.into(),
        name: name.into(),
        ..Default::default()
    };
    let mut a = asset("node-a", "Klinikum A");
    a.groups = vec!["aktin".into(), "north".into()];
    a.labels.insert("tier".into(), "1".into());
    a.parents = vec!["broker".into()];
    a.metadata.insert("clinic_id".into(), serde_json::json!(17));
    a.metadata
        .insert("mail".into(), serde_json::json!(["it@klinikum-a.example"]));
    let b = asset("broker", "AKTIN broker");
    ok(store.upsert_assets(&[a.clone(), b.clone()]).await, "upsert");
    assert_eq!(
        ok(store.assets().await, "assets"),
        vec![b.clone(), a.clone()]
    );

    // Replace a (fewer groups, no labels), add c; b is not named and stays.
    let mut a2 = asset("node-a", "Klinikum A (neu)");
    a2.groups = vec!["aktin".into()];
    let c = asset("0-first", "sorts first");
    ok(
        store.upsert_assets(&[a2.clone(), c.clone()]).await,
        "upsert",
    );
    assert_eq!(ok(store.assets().await, "assets"), vec![c, b, a2]);
    ok(store.upsert_assets(&[]).await, "empty upsert");
}

/// `ping` succeeds on a working store.
pub async fn ping_on_an_open_store<S: Store>(store: &S) {
    ok(store.ping().await, "ping");
    ok(
        store.append(vec![obs("a", "c", 1, Status::Ok, "")]).await,
        "append",
    );
    ok(store.ping().await, "ping after a write");
}

/// After `close`, writes, pings and a second close fail with [`StoreError::Closed`]; what was
/// appended before `close` was flushed.
pub async fn calls_after_close_are_closed<S: Store>(store: &S) {
    ok(
        store.append(vec![obs("a", "c", 1, Status::Ok, "")]).await,
        "append",
    );
    ok(store.close().await, "close");
    let closed = |r: Result<(), StoreError>, what: &str| match r {
        Err(StoreError::Closed) => {}
        other => panic!("{what} after close: expected Closed, got {other:?}"),
    };
    closed(
        store.append(vec![obs("a", "c", 2, Status::Ok, "")]).await,
        "append",
    );
    closed(
        store.upsert_assets(&[AssetRecord::default()]).await,
        "upsert_assets",
    );
    closed(store.ping().await, "ping");
    closed(store.close().await, "second close");
}
