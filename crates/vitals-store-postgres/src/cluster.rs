//! Replica coordination on the shared database (`vitals_store::cluster`): member leases, the
//! decider lease with its fence, the inbox and the feed. Leases are judged by the database's
//! clock (`now()`), never a replica's.

use crate::{backend, PgStore};
use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashSet;
use std::time::Duration;
use vitals_store::cluster::{Cluster, FeedEntry, Fence, InboxItem, Member};
use vitals_store::{CommitBatch, Result, StoreError};

/// The most messages the inbox holds: without a decider for long, replicas stop queueing (their
/// callers get an error, probe results wait in their bounded memory buffer).
pub const INBOX_MAX: i64 = 200_000;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl PgStore {
    /// Inside a commit: refuses it unless this replica holds the decider lease at its epoch.
    /// `FOR SHARE` keeps a new claim (an `UPDATE` of that row) waiting until this commit ends,
    /// so a commit and a change of decider never overlap.
    pub(crate) async fn check_fence(&self, tx: &mut Transaction<'static, Postgres>) -> Result<()> {
        let fence = self.fence.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(f) = fence else { return Ok(()) };
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM vitals_decider WHERE id = 1 AND holder = $1 AND epoch = $2 \
             AND lease_until > clock_timestamp() FOR SHARE",
        )
        .bind(&f.member)
        .bind(f.epoch)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
        match held {
            Some(_) => Ok(()),
            None => Err(StoreError::Backend(format!(
                "this replica ({}) no longer holds the decider lease (epoch {}): its decisions were not stored",
                f.member, f.epoch
            ))),
        }
    }

    /// Inside a commit: consumes the inbox messages it answered and writes its feed entry.
    pub(crate) async fn write_cluster(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        batch: &CommitBatch,
        duplicates: &[usize],
    ) -> Result<()> {
        if !batch.inbox_done.is_empty() {
            let seqs: Vec<i64> = batch.inbox_done.iter().map(|(s, _)| *s).collect();
            sqlx::query("DELETE FROM vitals_inbox WHERE seq = ANY($1)")
                .bind(&seqs)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            // Only messages someone waits for have an answer (probe results have none).
            let (seqs, answers): (Vec<i64>, Vec<String>) = batch
                .inbox_done
                .iter()
                .filter(|(_, a)| !a.is_empty())
                .map(|(s, a)| (*s, a.clone()))
                .unzip();
            if !seqs.is_empty() {
                sqlx::query(
                    "INSERT INTO vitals_inbox_done (seq, answer) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[]) \
                     ON CONFLICT (seq) DO NOTHING",
                )
                .bind(&seqs)
                .bind(&answers)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            }
        }
        let writer = self.feed.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(writer) = writer else { return Ok(()) };
        if batch.assets.is_empty() && batch.observations.is_empty() && batch.feed_health.is_none() {
            return Ok(());
        }
        let dups: HashSet<usize> = duplicates.iter().copied().collect();
        let stored: Vec<&vitals_core::Observation> = batch
            .observations
            .iter()
            .enumerate()
            .filter(|(i, _)| !dups.contains(i))
            .map(|(_, o)| o)
            .collect();
        let body = serde_json::json!({
            "assets": batch.assets,
            "observations": stored,
            "health": batch.feed_health,
        });
        sqlx::query("INSERT INTO vitals_feed (writer, body) VALUES ($1, $2)")
            .bind(&writer)
            .bind(body.to_string())
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl Cluster for PgStore {
    async fn member_beat(&self, name: &str, address: &str, lease: Duration) -> Result<Vec<Member>> {
        self.check_open()?;
        sqlx::query(
            "INSERT INTO vitals_members (name, address, lease_until) \
             VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3)) \
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, lease_until = excluded.lease_until",
        )
        .bind(name)
        .bind(address)
        .bind(secs(lease))
        .execute(self.pool())
        .await
        .map_err(backend)?;
        let rows = sqlx::query(
            "SELECT name, address, \
                    (EXTRACT(EPOCH FROM (lease_until - clock_timestamp())) * 1000)::BIGINT AS left_ms \
             FROM vitals_members WHERE lease_until > clock_timestamp() ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    name: r.try_get("name").map_err(backend)?,
                    address: r.try_get("address").map_err(backend)?,
                    lease_left_ms: r.try_get("left_ms").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn member_leave(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM vitals_members WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn decider_claim(&self, name: &str, lease: Duration) -> Result<Option<i64>> {
        self.check_open()?;
        // A holder renewing a lease that has not lapsed keeps its epoch; anything else (a new
        // holder, or a lapsed lease taken again) is a new epoch.
        sqlx::query_scalar(
            "INSERT INTO vitals_decider (id, holder, epoch, lease_until) \
             VALUES (1, $1, 1, clock_timestamp() + make_interval(secs => $2)) \
             ON CONFLICT (id) DO UPDATE SET \
               epoch = CASE WHEN vitals_decider.holder = $1 AND vitals_decider.lease_until > clock_timestamp() \
                       THEN vitals_decider.epoch ELSE vitals_decider.epoch + 1 END, \
               holder = $1, lease_until = excluded.lease_until \
             WHERE vitals_decider.holder = $1 OR vitals_decider.lease_until <= clock_timestamp() \
             RETURNING epoch",
        )
        .bind(name)
        .bind(secs(lease))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)
    }

    async fn decider_release(&self, name: &str) -> Result<()> {
        sqlx::query(
            "UPDATE vitals_decider SET lease_until = clock_timestamp() - interval '1 second' WHERE id = 1 AND holder = $1",
        )
        .bind(name)
        .execute(self.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn decider(&self) -> Result<Option<(String, i64)>> {
        let row = sqlx::query(
            "SELECT holder, epoch FROM vitals_decider WHERE id = 1 AND lease_until > clock_timestamp()",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok((
                r.try_get("holder").map_err(backend)?,
                r.try_get("epoch").map_err(backend)?,
            ))
        })
        .transpose()
    }

    fn set_fence(&self, fence: Option<Fence>) {
        *self.fence.write().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    fn set_feed(&self, writer: Option<String>) {
        *self.feed.write().unwrap_or_else(|e| e.into_inner()) = writer;
    }

    async fn inbox_put(&self, items: Vec<(String, String)>) -> Result<Vec<i64>> {
        self.check_open()?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Sequence numbers are dense while the decider consumes in order: the span is the
        // size, read from the primary key's two ends instead of counting.
        let held: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) - min(seq) + 1 FROM vitals_inbox")
                .fetch_one(self.pool())
                .await
                .map_err(backend)?;
        if held.unwrap_or(0) + items.len() as i64 > INBOX_MAX {
            return Err(StoreError::Backend(format!(
                "the replicas' inbox holds {} messages (at most {INBOX_MAX}): no replica has decided for long",
                held.unwrap_or(0)
            )));
        }
        let (kinds, bodies): (Vec<String>, Vec<String>) = items.into_iter().unzip();
        sqlx::query_scalar(
            "INSERT INTO vitals_inbox (kind, body) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]) RETURNING seq",
        )
        .bind(&kinds)
        .bind(&bodies)
        .fetch_all(self.pool())
        .await
        .map_err(backend)
    }

    async fn inbox_take(&self, limit: usize) -> Result<Vec<InboxItem>> {
        self.check_open()?;
        let rows = sqlx::query("SELECT seq, kind, body FROM vitals_inbox ORDER BY seq LIMIT $1")
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(InboxItem {
                    seq: r.try_get("seq").map_err(backend)?,
                    kind: r.try_get("kind").map_err(backend)?,
                    body: r.try_get("body").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn inbox_answers(&self, seqs: &[i64]) -> Result<Vec<(i64, String)>> {
        self.check_open()?;
        let rows = sqlx::query("SELECT seq, answer FROM vitals_inbox_done WHERE seq = ANY($1)")
            .bind(seqs)
            .fetch_all(self.pool())
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("seq").map_err(backend)?,
                    r.try_get("answer").map_err(backend)?,
                ))
            })
            .collect()
    }

    async fn feed_since(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>> {
        self.check_open()?;
        let rows = sqlx::query(
            "SELECT seq, writer, body FROM vitals_feed WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body").map_err(backend)?;
                Ok(FeedEntry {
                    seq: r.try_get("seq").map_err(backend)?,
                    writer: r.try_get("writer").map_err(backend)?,
                    body: serde_json::from_str(&body)
                        .map_err(|e| StoreError::Corrupt(format!("feed entry: {e}")))?,
                })
            })
            .collect()
    }

    async fn feed_head(&self) -> Result<i64> {
        self.check_open()?;
        let head: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM vitals_feed")
            .fetch_one(self.pool())
            .await
            .map_err(backend)?;
        Ok(head.unwrap_or(0))
    }

    async fn cluster_prune(&self, keep: Duration) -> Result<usize> {
        self.check_open()?;
        let mut n = 0;
        for sql in [
            "DELETE FROM vitals_feed WHERE at < clock_timestamp() - make_interval(secs => $1)",
            "DELETE FROM vitals_inbox_done WHERE at < clock_timestamp() - make_interval(secs => $1)",
            "DELETE FROM vitals_members WHERE lease_until < clock_timestamp() - interval '1 day' AND $1 >= 0",
        ] {
            n += sqlx::query(sql)
                .bind(secs(keep))
                .execute(self.pool())
                .await
                .map_err(backend)?
                .rows_affected() as usize;
        }
        Ok(n)
    }
}
