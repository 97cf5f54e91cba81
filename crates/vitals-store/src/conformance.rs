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

use crate::prelude::*;
use crate::{AssetRecord, CommitBatch, ObservationQuery, OutboxState, StoreError};
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
            same_millisecond_is_a_duplicate,
            concurrent_appends_all_stored,
            assets_upsert_replace_order,
            ping_on_an_open_store,
            retention_forgets_unused_texts,
            retention_of_alerts_and_notifications,
            audit_archive_then_delete,
            period_counts_from_rollups_then_raw,
            recent_results_newest_first,
            notices_are_kept_ended_and_bounded,
            commit_stores_everything_together,
            commit_reports_duplicates_and_remembers_ids,
            health_changes_apply_in_order,
            outbox_lifecycle,
            outbox_claims_are_exclusive_and_fenced,
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
    story!(same_millisecond_is_a_duplicate);
    story!(concurrent_appends_all_stored);
    story!(assets_upsert_replace_order);
    story!(ping_on_an_open_store);
    story!(retention_forgets_unused_texts);
    story!(retention_of_alerts_and_notifications);
    story!(audit_archive_then_delete);
    story!(period_counts_from_rollups_then_raw);
    story!(recent_results_newest_first);
    story!(notices_are_kept_ended_and_bounded);
    story!(commit_stores_everything_together);
    story!(commit_reports_duplicates_and_remembers_ids);
    story!(health_changes_apply_in_order);
    story!(outbox_lifecycle);
    story!(outbox_claims_are_exclusive_and_fenced);
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

/// An observation is identified by (asset, check, time): a second one with the same key —
/// in the same append, a later one, or a commit — is a duplicate, not stored; the first stays.
/// `commit` names the duplicates by their index in the batch.
pub async fn same_millisecond_is_a_duplicate<S: Store>(store: &S) {
    ok(
        store
            .append(vec![
                obs("a", "c", 500, Status::Ok, "first"),
                obs("a", "c", 500, Status::Crit, "second"),
                obs("a", "c", 501, Status::Ok, "next"),
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
    assert_eq!(ok(store.count_observations().await, "count"), 2);
    let batch = CommitBatch {
        observations: vec![
            obs("a", "c", 500, Status::Warn, "again"),
            obs("a", "c", 502, Status::Ok, "new"),
            obs("a", "c", 502, Status::Ok, "new twice"),
            obs("b", "c", 500, Status::Ok, "other check"),
        ],
        ..Default::default()
    };
    let report = ok(store.commit(batch.into()).await, "commit");
    assert_eq!(report.duplicates, vec![0, 2]);
    assert_eq!(ok(store.count_observations().await, "count"), 4);
    let mut q = query("a", Some("c"));
    q.from = Some(Timestamp(T0 + 500));
    q.to = Some(Timestamp(T0 + 500));
    let got = read(store, &q).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].reason, "first");
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

/// Texts (reasons, components) and value names only old observations used can be forgotten
/// once those observations are gone; those still in use are kept and still read back.
pub async fn retention_forgets_unused_texts<S: Store>(store: &S) {
    let day = 86_400_000;
    let mut old = obs("a", "c", 0, Status::Crit, "observed 1234 ms");
    old.values = vec![Value::new("observed_once", 1.0)];
    let mut kept = obs("a", "c", 10 * day, Status::Ok, "observed 17 ms");
    kept.values = vec![Value::new("latency_ms", 17.0)];
    ok(store.append(vec![old, kept.clone()]).await, "append");
    // Retention deletes raw observations before day 5, then what only they used.
    let deleted = ok(
        store
            .delete_raw_before(Timestamp(T0 + 5 * day), 1_000)
            .await,
        "delete_raw_before",
    );
    assert_eq!(deleted, 1);
    let forgotten = ok(
        store.forget_unused(Timestamp(T0 + 5 * day), 1_000).await,
        "forget_unused",
    );
    assert_eq!(
        forgotten, 2,
        "the old reason and the value name only it used"
    );
    let got = read(store, &query("a", Some("c"))).await;
    assert_eq!(got, vec![kept.clone()]);
    // Nothing in use goes, whatever the cutoff says about the past.
    let again = ok(
        store.forget_unused(Timestamp(T0 + 5 * day), 1_000).await,
        "forget_unused",
    );
    assert_eq!(again, 0);
    // And a text that comes back after being forgotten is interned again.
    let mut back = obs("a", "c", 11 * day, Status::Crit, "observed 1234 ms");
    back.values = vec![Value::new("observed_once", 2.0)];
    ok(store.append(vec![back.clone()]).await, "append");
    let got = read(store, &query("a", Some("c"))).await;
    assert_eq!(got, vec![back, kept]);
}

/// Resolved alerts (with their transitions) and delivered or failed notifications go after
/// their retention; open alerts and pending notifications never do.
pub async fn retention_of_alerts_and_notifications<S: Store>(store: &S) {
    use vitals_core::alert::{Alert, Policy};
    let day = 86_400_000;
    let t = |d: i64| Timestamp(T0 + d * day);
    let mut old = Alert::new(
        1,
        "r|a|c".into(),
        "r".into(),
        Status::Crit,
        "down".into(),
        t(0),
    );
    let (mut events, _) = old.fire(&Policy::default(), t(0), "down");
    let (e2, _) = old.resolve(&Policy::default(), t(1), "recovered");
    events.extend(e2);
    let open = Alert::new(
        2,
        "r|b|c".into(),
        "r".into(),
        Status::Crit,
        "down".into(),
        t(0),
    );
    let item = |id: &str, state: &str, created: Timestamp| crate::OutboxItem {
        id: id.into(),
        notifier: "n".into(),
        group_key: "g".into(),
        not_before: created,
        notification: vitals_core::notify::Notification {
            id: id.into(),
            notifier: "n".into(),
            kind: vitals_core::notify::NotificationKind::Firing,
            alerts: vec![],
            created,
        },
        state: OutboxState::parse(state).unwrap_or(OutboxState::Pending),
        attempts: 0,
        next_attempt: created,
        last_error: None,
        recipients: vec![],
        detail: None,
        sent: None,
    };
    let batch = CommitBatch {
        alerts: vec![old.clone(), open.clone()],
        alert_events: events.into_iter().map(|e| (1, e)).collect(),
        outbox: vec![
            item("old-pending", "pending", t(0)),
            item("old-sent", "pending", t(0)),
            item("new-sent", "pending", t(9)),
        ],
        ..Default::default()
    };
    ok(store.commit(batch.into()).await, "commit");
    let claimed = ok(store.outbox_claim("w", t(9), t(10), 100).await, "claim");
    assert_eq!(claimed.len(), 3, "all three are due");
    let sent = |id: &str| crate::OutboxUpdate {
        id: id.into(),
        state: OutboxState::Sent,
        attempts: 1,
        next_attempt: t(0),
        last_error: None,
        recipients: vec!["x@example.org".into()],
        detail: None,
        sent: Some(t(9)),
    };
    ok(
        store
            .outbox_update("w", vec![sent("old-sent"), sent("new-sent")])
            .await,
        "outbox_update",
    );
    // Give the third back: a claimed (in-flight) item is never deleted, a pending one neither.
    let back = crate::OutboxUpdate {
        state: OutboxState::Pending,
        recipients: vec![],
        sent: None,
        ..sent("old-pending")
    };
    ok(store.outbox_update("w", vec![back]).await, "outbox_update");
    assert_eq!(
        ok(
            store.delete_resolved_alerts(t(5), 100).await,
            "delete_resolved_alerts"
        ),
        1
    );
    assert_eq!(
        ok(
            store.delete_done_notifications(t(5), 100).await,
            "delete_done_notifications"
        ),
        1
    );
    let alerts = ok(
        store
            .alerts(&crate::AlertQuery {
                states: None,
                asset: None,
                limit: 100,
            })
            .await,
        "alerts",
    );
    assert_eq!(alerts.iter().map(|a| a.id).collect::<Vec<_>>(), vec![2]);
    assert!(ok(store.alert(1).await, "alert").is_none());
    let mut left: Vec<String> = ok(store.notifications(None, 100).await, "notifications")
        .into_iter()
        .map(|n| n.id)
        .collect();
    left.sort();
    assert_eq!(left, vec!["new-sent", "old-pending"]);
}

/// Old audit entries move to a compressed file, then leave the live log; newer ones stay.
pub async fn audit_archive_then_delete<S: Store>(store: &S) {
    let dir =
        std::env::temp_dir().join(format!("vitals-audit-story-{}-{}", std::process::id(), T0));
    let _ = std::fs::remove_dir_all(&dir);
    for i in 0..5 {
        ok(
            store
                .audit_append(crate::AuditEntry {
                    id: 0,
                    time: Timestamp(T0 + i * 1000),
                    actor: "ops".into(),
                    action: format!("POST /x/{i}"),
                    target: "/x".into(),
                    params: serde_json::json!({"i": i}),
                    outcome: "200".into(),
                })
                .await,
            "audit_append",
        );
    }
    let got = ok(
        store.archive_audit(Timestamp(T0 + 3_000), 2, &dir).await,
        "archive_audit",
    );
    let (n, file) = got.expect("entries to archive");
    assert_eq!(n, 2);
    let second = ok(
        store.archive_audit(Timestamp(T0 + 3_000), 2, &dir).await,
        "archive_audit",
    );
    assert_eq!(second.map(|(n, _)| n), Some(1));
    assert_eq!(
        ok(
            store.archive_audit(Timestamp(T0 + 3_000), 2, &dir).await,
            "archive_audit"
        ),
        None
    );
    let live = ok(store.audit(None, 100).await, "audit");
    let actions: Vec<&str> = live.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["POST /x/4", "POST /x/3"]);
    let mut text = String::new();
    let raw = std::fs::read(&file).expect("archive file");
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text)
        .expect("gzip");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "POST /x/0");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Uptime counts: rollups where they exist, raw observations after the last one.
pub async fn period_counts_from_rollups_then_raw<S: Store>(store: &S) {
    use crate::HOUR_MS;
    let h0 = T0 - T0.rem_euclid(HOUR_MS);
    // Hour 0: 3 observations (1 crit), rolled up. Hour 1: 2 (1 warn), not rolled up.
    let mut v = vec![
        Observation::new("a", "c", Timestamp(h0 + 1_000), Status::Ok, ""),
        Observation::new("a", "c", Timestamp(h0 + 2_000), Status::Crit, "x"),
        Observation::new("a", "c", Timestamp(h0 + 3_000), Status::Ok, ""),
    ];
    ok(store.append(v.clone()).await, "append hour 0");
    ok(
        store
            .compute_rollups(HOUR_MS, Timestamp(h0), Timestamp(h0 + HOUR_MS))
            .await,
        "rollups",
    );
    v = vec![
        Observation::new("a", "c", Timestamp(h0 + HOUR_MS + 1), Status::Warn, "w"),
        Observation::new("a", "c", Timestamp(h0 + HOUR_MS + 2), Status::Ok, ""),
        Observation::new("b", "d", Timestamp(h0 + 5), Status::Unknown, "?"),
    ];
    ok(store.append(v).await, "append hour 1");
    let mut got = ok(
        store
            .period_counts(HOUR_MS, Timestamp(h0), Timestamp(h0 + 2 * HOUR_MS))
            .await,
        "period_counts",
    );
    got.sort_by(|x, y| (&x.asset, x.start.0).cmp(&(&y.asset, y.start.0)));
    let flat: Vec<(&str, i64, u64, u64)> = got
        .iter()
        .map(|p| (p.asset.as_str(), p.start.0 - h0, p.count, p.failures))
        .collect();
    assert_eq!(
        flat,
        vec![("a", 0, 3, 1), ("a", HOUR_MS, 2, 1), ("b", 0, 1, 1)],
        "counts per hour from rollups, then raw (unknown is a failure)"
    );
    // A window starting after everything is empty; one ending before hour 1 has hour 0 only.
    assert!(ok(
        store
            .period_counts(
                HOUR_MS,
                Timestamp(h0 + 3 * HOUR_MS),
                Timestamp(h0 + 4 * HOUR_MS)
            )
            .await,
        "empty window"
    )
    .is_empty());
}

/// Each check's newest results for the "last 50" bars.
pub async fn recent_results_newest_first<S: Store>(store: &S) {
    let v: Vec<Observation> = (0..70)
        .map(|i| {
            let s = if i % 10 == 0 {
                Status::Crit
            } else {
                Status::Ok
            };
            Observation::new("a", "c", Timestamp(T0 + i * 1000), s, "")
        })
        .chain([Observation::new("b", "d", Timestamp(T0), Status::Warn, "")])
        .collect();
    ok(store.append(v).await, "append");
    let mut got = ok(store.recent_results(50).await, "recent_results");
    got.sort_by(|x, y| x.asset.cmp(&y.asset));
    assert_eq!(got.len(), 2, "one entry per check: {got:?}");
    assert_eq!((got[0].asset.as_str(), got[0].check.as_str()), ("a", "c"));
    assert_eq!(got[0].results.len(), 50);
    assert_eq!(got[0].results[0], (Timestamp(T0 + 69_000), Status::Ok));
    assert_eq!(got[0].results[9], (Timestamp(T0 + 60_000), Status::Crit));
    assert_eq!(got[0].results[49].0, Timestamp(T0 + 20_000));
    assert_eq!(got[1].results, vec![(Timestamp(T0), Status::Warn)]);
}

/// Notices: ids assigned, ended not deleted, pages apart, the oldest ended ones dropped.
pub async fn notices_are_kept_ended_and_bounded<S: Store>(store: &S) {
    let notice = |page: &str, title: &str| crate::Notice {
        id: 0,
        page: page.into(),
        kind: "maintenance".into(),
        title: title.into(),
        body: "Tonight 22-23 h.\n\nImports wait.".into(),
        author: "ops".into(),
        created: Timestamp(T0),
        ended: None,
    };
    let a = ok(store.notice_add(notice("p", "first"), 3).await, "add");
    let b = ok(store.notice_add(notice("p", "second"), 3).await, "add");
    let other = ok(store.notice_add(notice("q", "elsewhere"), 3).await, "add");
    assert!(a.id > 0 && b.id > a.id && other.id > b.id, "ids ascend");
    let list = ok(store.notices("p", 10).await, "notices");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], b, "newest first, every field kept");
    // Ending: kept, with its end; ending again keeps the first end; another page's id is not
    // found through this page.
    let ended = ok(store.notice_end("p", a.id, Timestamp(T0 + 5)).await, "end");
    assert_eq!(ended.map(|n| n.ended), Some(Some(Timestamp(T0 + 5))));
    let again = ok(
        store.notice_end("p", a.id, Timestamp(T0 + 9)).await,
        "end again",
    );
    assert_eq!(again.and_then(|n| n.ended), Some(Timestamp(T0 + 5)));
    assert_eq!(
        ok(
            store.notice_end("p", other.id, Timestamp(T0)).await,
            "wrong page"
        ),
        None
    );
    // Bounded: with keep = 3, adding two more drops the oldest ended one, never an open one.
    ok(store.notice_add(notice("p", "third"), 3).await, "add");
    ok(store.notice_add(notice("p", "fourth"), 3).await, "add");
    let titles: Vec<String> = ok(store.notices("p", 10).await, "notices")
        .into_iter()
        .map(|n| n.title)
        .collect();
    assert_eq!(titles, vec!["fourth", "third", "second"]);
    assert_eq!(ok(store.notices("q", 10).await, "notices").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The write path and the outbox

fn alert(id: i64, asset: &str, at: Timestamp) -> vitals_core::alert::Alert {
    let mut a = vitals_core::alert::Alert::new(
        id,
        format!("down|{asset}|http"),
        "down".into(),
        Status::Crit,
        "connection refused".into(),
        at,
    );
    a.asset = Some(asset.into());
    a.check = Some("http".into());
    a
}

fn outbox_item(
    id: &str,
    alert_id: i64,
    notifier: &str,
    group: &str,
    at: Timestamp,
) -> crate::OutboxItem {
    let view = vitals_core::notify::AlertView {
        alert_id,
        rule: "down".into(),
        title: format!("alert {alert_id}"),
        status: Status::Crit,
        state: "firing".into(),
        asset: None,
        asset_name: None,
        check: None,
        group: None,
        assets: vec![],
        reason: String::new(),
        value: None,
        labels: Default::default(),
        started: at,
        resolved: None,
        url: None,
        contacts: vec![],
        template: None,
        details: Default::default(),
    };
    crate::OutboxItem {
        id: id.into(),
        notifier: notifier.into(),
        group_key: group.into(),
        not_before: at,
        notification: vitals_core::notify::Notification {
            id: id.into(),
            notifier: notifier.into(),
            kind: vitals_core::notify::NotificationKind::Firing,
            alerts: vec![view],
            created: at,
        },
        state: OutboxState::Pending,
        attempts: 0,
        next_attempt: at,
        last_error: None,
        recipients: vec![],
        detail: None,
        sent: None,
    }
}

fn update(id: &str, state: OutboxState, attempts: u32, next: Timestamp) -> crate::OutboxUpdate {
    crate::OutboxUpdate {
        id: id.into(),
        state,
        attempts,
        next_attempt: next,
        last_error: (state != OutboxState::Sent).then(|| "503 from the receiver".to_string()),
        recipients: if state == OutboxState::Sent {
            vec!["oncall@example.org".into()]
        } else {
            vec![]
        },
        detail: (state == OutboxState::Sent).then(|| "250 queued".to_string()),
        sent: (state == OutboxState::Sent).then_some(next),
    }
}

fn ids(items: &[crate::OutboxItem]) -> Vec<&str> {
    let mut v: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    v.sort_unstable();
    v
}

/// One commit stores assets, observations, health, idempotency keys, alerts with their
/// transitions, notifications and silences, and every part reads back.
pub async fn commit_stores_everything_together<S: Store>(store: &S) {
    use vitals_core::alert::Policy;
    let t = |ms: i64| Timestamp(T0 + ms);
    let mut asset = AssetRecord::named("klinikum-sued");
    asset.groups = vec!["clinics".into()];
    asset.labels.insert("region".into(), "süd".into());
    let mut a = alert(7, "klinikum-sued", t(0));
    let (mut events, _) = a.fire(&Policy::default(), t(10), "connection refused");
    let mut open = alert(8, "klinikum-sued", t(0));
    open.rule = "slow".into();
    open.key = "slow|klinikum-sued|http".into();
    let (e2, _) = a
        .acknowledge(
            &Policy::default(),
            "ops",
            Some("looking".into()),
            None,
            t(20),
        )
        .unwrap_or_else(|e| panic!("acknowledge: {e}"));
    events.extend(e2);
    let silence = vitals_core::alert::Silence {
        id: 3,
        matchers: vitals_core::rules::Selector {
            assets: vec!["klinikum-sued".into()],
            ..Default::default()
        },
        rules: vec!["down".into()],
        starts: t(0),
        ends: t(3_600_000),
        author: "ops".into(),
        comment: "maintenance".into(),
        created: t(0),
    };
    let o = obs(
        "klinikum-sued",
        "http",
        10,
        Status::Crit,
        "connection refused",
    );
    let batch = CommitBatch {
        assets: vec![asset.clone()],
        observations: vec![o.clone()],
        health: vec![crate::HealthUpdate {
            asset: "klinikum-sued".into(),
            change: crate::HealthChange::State {
                group: "web".into(),
                test: "http".into(),
                value: crate::Scored {
                    score: 10,
                    updated: t(10),
                },
            },
        }],
        result_ids: vec!["push-1".into()],
        alerts: vec![a.clone(), open.clone()],
        alert_events: events.iter().cloned().map(|e| (7, e)).collect(),
        outbox: vec![outbox_item("7-firing-1-mail", 7, "mail", "down", t(10))],
        silences: vec![silence.clone()],
        ..Default::default()
    };
    let report = ok(store.commit(batch.into()).await, "commit");
    assert!(report.duplicates.is_empty(), "{report:?}");

    assert_eq!(ok(store.assets().await, "assets"), vec![asset]);
    assert_eq!(
        read(store, &query("klinikum-sued", None)).await,
        vec![o.clone()]
    );
    assert_eq!(ok(store.latest().await, "latest"), vec![o]);
    let health = ok(store.health_rows().await, "health_rows");
    assert_eq!(health.len(), 1);
    assert_eq!(
        (
            health[0].group.as_str(),
            health[0].test.as_deref(),
            health[0].value.score
        ),
        ("web", Some("http"), 10)
    );
    let seen = ok(
        store
            .seen_result_ids(&["push-1".into(), "push-2".into()])
            .await,
        "seen_result_ids",
    );
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec!["push-1".to_string()]
    );
    let (got, transitions) = ok(store.alert(7).await, "alert").expect("alert 7 stored");
    assert_eq!(got, a, "the alert round trips");
    assert_eq!(transitions, events, "transitions in order");
    let open_ids: Vec<i64> = ok(store.open_alerts().await, "open_alerts")
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(open_ids, vec![7, 8]);
    assert_eq!(ok(store.max_ids().await, "max_ids"), (8, 3));
    assert_eq!(
        ok(store.silences(t(0)).await, "silences"),
        vec![silence.clone()]
    );
    assert!(
        ok(store.silences(t(3_600_001)).await, "silences").is_empty(),
        "ended before"
    );
    let log = ok(store.notifications(Some(7), 10).await, "notifications");
    assert_eq!(ids(&log), vec!["7-firing-1-mail"]);
    assert_eq!(log[0].state, OutboxState::Pending);
    assert!(ok(store.notifications(Some(8), 10).await, "notifications").is_empty());

    // A later commit replaces alerts and silences by id, appends transitions, and keeps a
    // notification that is already there as it was.
    let (e3, _) = a.resolve(&Policy::default(), t(30), "recovered");
    let mut longer = silence.clone();
    longer.ends = t(7_200_000);
    let batch = CommitBatch {
        alerts: vec![a.clone()],
        alert_events: e3.iter().cloned().map(|e| (7, e)).collect(),
        outbox: vec![outbox_item("7-firing-1-mail", 7, "other", "x", t(99))],
        silences: vec![longer.clone()],
        ..Default::default()
    };
    ok(store.commit(batch.into()).await, "second commit");
    let (got, transitions) = ok(store.alert(7).await, "alert").expect("alert 7 stored");
    assert_eq!(got.state, vitals_core::alert::AlertState::Resolved);
    assert_eq!(transitions.len(), events.len() + e3.len());
    let open_ids: Vec<i64> = ok(store.open_alerts().await, "open_alerts")
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(open_ids, vec![8]);
    assert_eq!(ok(store.silences(t(0)).await, "silences"), vec![longer]);
    let log = ok(store.notifications(None, 10).await, "notifications");
    assert_eq!((log.len(), log[0].notifier.as_str()), (1, "mail"));
    let resolved = ok(
        store
            .alerts(&crate::AlertQuery {
                states: Some(vec![vitals_core::alert::AlertState::Resolved]),
                asset: Some("klinikum-sued".into()),
                limit: 10,
            })
            .await,
        "alerts",
    );
    assert_eq!(resolved.iter().map(|x| x.id).collect::<Vec<_>>(), vec![7]);
}

/// `commit` reports duplicates (stored before, or earlier in the batch) by index and stores
/// the rest; idempotency keys are remembered.
pub async fn commit_reports_duplicates_and_remembers_ids<S: Store>(store: &S) {
    ok(
        store
            .append(vec![obs("a", "c", 1, Status::Ok, "first")])
            .await,
        "append",
    );
    let batch = CommitBatch {
        observations: vec![
            obs("a", "c", 1, Status::Crit, "again"),
            obs("a", "c", 2, Status::Ok, ""),
            obs("a", "c", 2, Status::Warn, "same batch"),
            obs("b", "c", 1, Status::Ok, ""),
        ],
        result_ids: vec!["k1".into(), "k2".into()],
        ..Default::default()
    };
    let report = ok(store.commit(batch.into()).await, "commit");
    assert_eq!(report.duplicates, vec![0, 2]);
    assert_eq!(ok(store.count_observations().await, "count"), 3);
    let got = read(store, &query("a", Some("c"))).await;
    assert_eq!(
        got.iter().map(|o| o.reason.as_str()).collect::<Vec<_>>(),
        vec!["", "first"]
    );
    let seen = ok(
        store
            .seen_result_ids(&["k2".into(), "k3".into(), "k1".into()])
            .await,
        "seen",
    );
    let mut seen: Vec<String> = seen.into_iter().collect();
    seen.sort();
    assert_eq!(seen, vec!["k1", "k2"]);
    // An empty commit is fine and changes nothing.
    ok(
        store.commit(CommitBatch::default().into()).await,
        "empty commit",
    );
    assert_eq!(ok(store.count_observations().await, "count"), 3);
}

/// Health changes apply in order: set, replace, delete one, delete a group, delete all.
pub async fn health_changes_apply_in_order<S: Store>(store: &S) {
    use crate::{HealthChange as H, HealthUpdate, Scored};
    let sc = |score: i64, ms: i64| Scored {
        score,
        updated: Timestamp(T0 + ms),
    };
    let up = |asset: &str, change: H| HealthUpdate {
        asset: asset.into(),
        change,
    };
    let state = |g: &str, t: &str, v: Scored| H::State {
        group: g.into(),
        test: t.into(),
        value: v,
    };
    let batch = CommitBatch {
        health: vec![
            up("a", state("g", "t1", sc(1, 1))),
            up("a", state("g", "t1", sc(5, 2))),
            up("a", state("g", "t2", sc(2, 2))),
            up("a", state("h", "t3", sc(3, 2))),
            up(
                "a",
                H::Severity {
                    group: "g".into(),
                    value: sc(5, 2),
                },
            ),
            up("b", state("g", "t1", sc(9, 3))),
            up(
                "b",
                H::Severity {
                    group: "g".into(),
                    value: sc(9, 3),
                },
            ),
        ],
        ..Default::default()
    };
    ok(store.commit(batch.into()).await, "commit");
    let flat = |rows: Vec<crate::HealthRow>| {
        let mut v: Vec<(String, String, Option<String>, i64)> = rows
            .into_iter()
            .map(|r| (r.asset, r.group, r.test, r.value.score))
            .collect();
        v.sort();
        v
    };
    let s = |a: &str, g: &str, t: Option<&str>, n: i64| {
        (a.to_string(), g.to_string(), t.map(str::to_string), n)
    };
    assert_eq!(
        flat(ok(store.health_rows().await, "health_rows")),
        vec![
            s("a", "g", None, 5),
            s("a", "g", Some("t1"), 5),
            s("a", "g", Some("t2"), 2),
            s("a", "h", Some("t3"), 3),
            s("b", "g", None, 9),
            s("b", "g", Some("t1"), 9),
        ]
    );
    let batch = CommitBatch {
        health: vec![
            up(
                "a",
                H::DeleteState {
                    group: "g".into(),
                    test: Some("t2".into()),
                },
            ),
            up(
                "a",
                H::DeleteState {
                    group: "h".into(),
                    test: None,
                },
            ),
            up("a", H::DeleteSeverity { group: "g".into() }),
            up("b", H::DeleteAll),
        ],
        ..Default::default()
    };
    ok(store.commit(batch.into()).await, "commit");
    assert_eq!(
        flat(ok(store.health_rows().await, "health_rows")),
        vec![s("a", "g", Some("t1"), 5)]
    );
}

/// An outbox item goes pending → claimed → pending (retry) → claimed → sent, another one to
/// failed; items of one group wait for the group's window and then leave together.
pub async fn outbox_lifecycle<S: Store>(store: &S) {
    let t = |ms: i64| Timestamp(T0 + ms);
    let mut first = outbox_item("n1", 1, "mail", "down", t(0));
    first.not_before = t(30_000); // grouping window
    let mut second = outbox_item("n2", 2, "mail", "down", t(5_000));
    second.not_before = t(35_000);
    let mut other = outbox_item("n3", 3, "slack", "down", t(1_000));
    other.not_before = t(1_000);
    let batch = CommitBatch {
        outbox: vec![first, second, other],
        ..Default::default()
    };
    ok(store.commit(batch.into()).await, "commit");
    assert_eq!(
        ok(store.outbox_next_due().await, "next_due"),
        Some(t(1_000))
    );
    let mut pending = ok(store.outbox_pending().await, "pending");
    pending.sort();
    assert_eq!(
        pending,
        vec![("mail".to_string(), 2), ("slack".to_string(), 1)]
    );

    // Nothing is due before its window.
    assert!(ok(
        store.outbox_claim("w", t(500), t(60_500), 10).await,
        "claim"
    )
    .is_empty());
    // The slack item is; the mail group is not yet.
    let got = ok(
        store.outbox_claim("s", t(2_000), t(62_000), 10).await,
        "claim",
    );
    assert_eq!(ids(&got), vec!["n3"]);
    assert_eq!(got[0].state, OutboxState::Claimed);
    let log = ok(store.notifications(Some(3), 10).await, "log");
    assert_eq!(
        log[0].state,
        OutboxState::Claimed,
        "the log shows the claim"
    );
    // Once the first mail's window passed, the whole group goes (n2's own window has not).
    let got = ok(
        store.outbox_claim("w", t(30_000), t(90_000), 10).await,
        "claim",
    );
    assert_eq!(ids(&got), vec!["n1", "n2"]);
    // Claimed items still count as undelivered.
    let mut pending = ok(store.outbox_pending().await, "pending");
    pending.sort();
    assert_eq!(
        pending,
        vec![("mail".to_string(), 2), ("slack".to_string(), 1)]
    );

    // A transient failure: back to pending with a later next attempt.
    let applied = ok(
        store
            .outbox_update(
                "w",
                vec![
                    update("n1", OutboxState::Pending, 1, t(40_000)),
                    update("n2", OutboxState::Pending, 1, t(40_000)),
                ],
            )
            .await,
        "retry",
    );
    assert_eq!(applied, 2);
    assert_eq!(
        ok(store.outbox_next_due().await, "next_due"),
        Some(t(40_000)).min(Some(t(62_000)))
    );
    assert!(ok(
        store.outbox_claim("w", t(39_999), t(99_999), 10).await,
        "claim"
    )
    .is_empty());
    let got = ok(
        store.outbox_claim("w", t(40_000), t(100_000), 10).await,
        "claim",
    );
    assert_eq!(ids(&got), vec!["n1", "n2"]);
    assert_eq!(
        got.iter().map(|i| i.attempts).collect::<Vec<_>>(),
        vec![1, 1]
    );
    assert_eq!(got[0].last_error.as_deref(), Some("503 from the receiver"));

    // Sent, failed.
    let applied = ok(
        store
            .outbox_update(
                "w",
                vec![
                    update("n1", OutboxState::Sent, 2, t(41_000)),
                    update("n2", OutboxState::Sent, 2, t(41_000)),
                ],
            )
            .await,
        "done",
    );
    assert_eq!(applied, 2);
    let failed = vec![update("n3", OutboxState::Failed, 1, t(41_000))];
    assert_eq!(ok(store.outbox_update("s", failed).await, "failed"), 1);
    assert!(ok(
        store.outbox_claim("w", t(999_999), t(1_999_999), 10).await,
        "claim"
    )
    .is_empty());
    assert_eq!(ok(store.outbox_next_due().await, "next_due"), None);
    assert!(ok(store.outbox_pending().await, "pending").is_empty());
    let log = ok(store.notifications(None, 10).await, "log");
    let by_id = |id: &str| log.iter().find(|i| i.id == id).expect("in the log");
    assert_eq!(by_id("n1").state, OutboxState::Sent);
    assert_eq!(by_id("n1").sent, Some(t(41_000)));
    assert_eq!(
        by_id("n1").recipients,
        vec!["oncall@example.org".to_string()]
    );
    assert_eq!(by_id("n1").detail.as_deref(), Some("250 queued"));
    assert_eq!(by_id("n3").state, OutboxState::Failed);
    assert_eq!(
        by_id("n3").last_error.as_deref(),
        Some("503 from the receiver")
    );
    // The log is newest first (by creation).
    assert_eq!(
        log.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec!["n2", "n3", "n1"]
    );
}

/// A claim is exclusive while it lasts, even to claimers asking at the same moment; it can be
/// taken over once it expired, and then the old holder's outcome is not applied. A holder
/// that claims again (a restarted process) gets its own claims back.
pub async fn outbox_claims_are_exclusive_and_fenced<S: Store>(store: &S) {
    let t = |ms: i64| Timestamp(T0 + ms);
    let batch = CommitBatch {
        outbox: (0..20)
            .map(|i| outbox_item(&format!("n{i:02}"), i, "mail", &format!("g{i}"), t(0)))
            .collect(),
        ..Default::default()
    };
    ok(store.commit(batch.into()).await, "commit");
    // Four claimers at once, five items each at most: every item goes to exactly one.
    let claims = join_all(
        ["a", "b", "c", "d"]
            .iter()
            .map(|w| store.outbox_claim(w, t(1_000), t(61_000), 5))
            .collect(),
    )
    .await;
    let mut all: Vec<String> = Vec::new();
    for c in claims {
        let c = ok(c, "claim");
        assert!(c.len() <= 5);
        all.extend(c.into_iter().map(|i| i.id));
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "an item was claimed twice");
    assert_eq!(n, 20, "every item was claimed");
    // Held: no one else gets them before the claims expire.
    assert!(ok(
        store.outbox_claim("e", t(60_999), t(99_000), 100).await,
        "claim"
    )
    .is_empty());
    // The holder itself (restarted) gets its own back at once.
    let own = ok(
        store.outbox_claim("a", t(2_000), t(62_000), 100).await,
        "claim",
    );
    assert_eq!(own.len(), 5, "a's own claims");
    let a_ids: Vec<String> = own.iter().map(|i| i.id.clone()).collect();
    // Expired: another claimer takes everything over.
    let taken = ok(
        store.outbox_claim("e", t(62_000), t(122_000), 100).await,
        "claim",
    );
    assert_eq!(taken.len(), 20);
    // The old holder's outcome no longer applies; the new holder's does.
    let late = a_ids
        .iter()
        .map(|id| update(id, OutboxState::Sent, 1, t(62_500)))
        .collect();
    assert_eq!(ok(store.outbox_update("a", late).await, "stale update"), 0);
    let mine = a_ids
        .iter()
        .map(|id| update(id, OutboxState::Sent, 1, t(63_000)))
        .collect();
    assert_eq!(ok(store.outbox_update("e", mine).await, "update"), 5);
    let log = ok(store.notifications(None, 100).await, "log");
    let sent: Vec<&str> = log
        .iter()
        .filter(|i| i.state == OutboxState::Sent)
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(sent.len(), 5);
    assert!(log
        .iter()
        .filter(|i| i.state == OutboxState::Sent)
        .all(|i| i.sent == Some(t(63_000))));
    // An update cannot claim.
    let bad = vec![update("n00", OutboxState::Claimed, 1, t(0))];
    assert!(
        store.outbox_update("e", bad).await.is_err(),
        "an update that claims is refused"
    );
}
