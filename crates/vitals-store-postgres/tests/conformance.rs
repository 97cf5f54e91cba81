//! The shared store stories (`vitals_store::conformance`) against the real PostgreSQL on
//! loopback (`VITALS_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`): every
//! story gets a database of its own, dropped when the story ends.

use std::sync::atomic::{AtomicU32, Ordering};
use vitals_store_postgres::PgStore;

fn admin_url() -> String {
    std::env::var("VITALS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Drops the story's database when the story ends (also when it fails).
pub struct TempDb {
    name: String,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A fresh runtime on a fresh thread: this runs inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url()).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn fresh() -> (PgStore, TempDb) {
    let (url, guard) = fresh_url().await;
    let store = PgStore::connect(&url).await.expect("connect the store");
    (store, guard)
}

/// A fresh database's URL (several stores may connect to it: replicas).
async fn fresh_url() -> (String, TempDb) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vitals_conf_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url())
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (set VITALS_TEST_PG to another server)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let guard = TempDb { name: name.clone() };
    let base = admin_url();
    let url = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && i > base.find("://").unwrap_or(0) + 2 => {
            let query = base[i..].find('?').map(|q| &base[i + q..]).unwrap_or("");
            format!("{}/{name}{query}", &base[..i])
        }
        _ => format!("{base}/{name}"),
    };
    (url, guard)
}

vitals_store::conformance_tests!(fresh);

// --- replicas (vitals_store::cluster), PostgreSQL only ---

mod cluster {
    use super::*;
    use std::time::Duration;
    use vitals_core::{Observation, Status, Timestamp};
    use vitals_store::cluster::{Cluster, Fence};
    use vitals_store::prelude::*;
    use vitals_store::CommitBatch;

    fn obs(t: i64) -> CommitBatch {
        CommitBatch {
            observations: vec![Observation::new("a", "c", Timestamp(t), Status::Ok, "fine")],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_replica_that_lost_the_decider_lease_cannot_commit() {
        let (url, _guard) = fresh_url().await;
        let a = PgStore::connect(&url).await.unwrap();
        let b = PgStore::connect(&url).await.unwrap();
        let e1 = a.decider_claim("a", Duration::from_secs(1)).await.unwrap();
        let e1 = e1.expect("a takes the free lease");
        assert_eq!(
            b.decider_claim("b", Duration::from_secs(1)).await.unwrap(),
            None
        );
        // Renewing keeps the epoch.
        assert_eq!(
            a.decider_claim("a", Duration::from_secs(1)).await.unwrap(),
            Some(e1)
        );
        a.set_fence(Some(Fence {
            member: "a".into(),
            epoch: e1,
        }));
        a.commit(obs(1_000).into())
            .await
            .expect("the holder commits");

        tokio::time::sleep(Duration::from_millis(1_300)).await;
        let e2 = b
            .decider_claim("b", Duration::from_secs(10))
            .await
            .unwrap()
            .expect("b takes the lapsed lease");
        assert!(e2 > e1, "a new holder is a new epoch: {e1} then {e2}");
        let err = a
            .commit(obs(2_000).into())
            .await
            .expect_err("a is fenced off");
        assert!(
            err.to_string()
                .contains("no longer holds the decider lease"),
            "{err}"
        );
        assert_eq!(
            a.count_observations().await.unwrap(),
            1,
            "nothing of a's was stored"
        );
        assert_eq!(
            a.decider_claim("a", Duration::from_secs(1)).await.unwrap(),
            None
        );
        assert_eq!(a.decider().await.unwrap(), Some(("b".to_string(), e2)));
        // Given up, it is free at once.
        b.decider_release("b").await.unwrap();
        assert!(a
            .decider_claim("a", Duration::from_secs(1))
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn members_inbox_and_feed() {
        let (url, _guard) = fresh_url().await;
        let a = PgStore::connect(&url).await.unwrap();
        let b = PgStore::connect(&url).await.unwrap();
        a.member_beat("a", "127.0.0.1:1", Duration::from_secs(10))
            .await
            .unwrap();
        let m = b
            .member_beat("b", "127.0.0.1:2", Duration::from_secs(10))
            .await
            .unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        b.member_leave("b").await.unwrap();
        let m = a
            .member_beat("a", "127.0.0.1:1", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(m.len(), 1);

        // b relays two messages; a, the decider, consumes them with its commit.
        let seqs = b
            .inbox_put(vec![
                ("obs".into(), "{}".into()),
                ("push".into(), "{}".into()),
            ])
            .await
            .unwrap();
        assert_eq!(seqs.len(), 2);
        let taken = a.inbox_take(10).await.unwrap();
        assert_eq!(taken.iter().map(|i| i.seq).collect::<Vec<_>>(), seqs);
        let e = a
            .decider_claim("a", Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        a.set_fence(Some(Fence {
            member: "a".into(),
            epoch: e,
        }));
        a.set_feed(Some("a".into()));
        let mut batch = obs(5_000);
        batch.inbox_done = vec![(seqs[0], String::new()), (seqs[1], "\"answer\"".into())];
        a.commit(batch.into()).await.unwrap();
        assert!(a.inbox_take(10).await.unwrap().is_empty(), "consumed");
        assert_eq!(
            b.inbox_answers(&seqs).await.unwrap(),
            vec![(seqs[1], "\"answer\"".to_string())],
            "only the push waits for an answer"
        );
        // The commit's feed entry, for the other replicas' live state.
        let feed = b.feed_since(0, 10).await.unwrap();
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0].writer, "a");
        assert_eq!(feed[0].body["observations"][0]["asset"], "a");
        assert_eq!(b.feed_head().await.unwrap(), feed[0].seq);
        assert!(b.feed_since(feed[0].seq, 10).await.unwrap().is_empty());
    }
}
