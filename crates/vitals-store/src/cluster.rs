//! What replicas sharing one database coordinate through (PostgreSQL only; see
//! `docs/high-availability.md`).
//!
//! - **Members**: every replica renews a lease row; the live members are those whose lease
//!   has not run out by the *database's* clock (so replicas' clocks need not agree).
//! - **Decider**: one lease row; its holder makes every health and alert decision. Each claim by
//!   a new holder bumps the epoch, and the holder's commits are fenced by (holder, epoch, lease):
//!   a replica that lost the lease cannot commit, whatever it believes.
//! - **Inbox**: what a replica that is not the decider takes in (probe results, pushes, health
//!   deletions, acknowledgements, silences) waits here, durably, for the decider; the decider
//!   consumes it in the commit that stores its effects, and leaves each caller's answer.
//! - **Feed**: what each decider commit applied (assets, stored observations, health of the
//!   assets touched), in commit order, so the other replicas' live state follows within a second.

use crate::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The decider's fence: commits succeed only while `member` holds the lease at `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub member: String,
    pub epoch: i64,
}

/// A live member, as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Where it serves (`host:port`), for operators.
    pub address: String,
    /// How long its lease still runs, by the database's clock when it was read (ms).
    #[serde(default)]
    pub lease_left_ms: i64,
}

/// One waiting inbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub seq: i64,
    pub kind: String,
    pub body: String,
}

/// One feed entry: a decider commit, as JSON (`assets`, `observations`, `health`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub seq: i64,
    /// The replica whose commit it was (its own entries are already in its live state).
    pub writer: String,
    pub body: serde_json::Value,
}

/// Coordination of replicas over the shared database.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// Renews `name`'s lease for `lease`; returns the live members, sorted by name.
    async fn member_beat(&self, name: &str, address: &str, lease: Duration) -> Result<Vec<Member>>;

    /// Gives up `name`'s membership (a clean stop: the others take over at once).
    async fn member_leave(&self, name: &str) -> Result<()>;

    /// Takes or renews the decider lease; `Some(epoch)` while `name` holds it. The epoch
    /// changes whenever the lease changes hands (or lapsed).
    async fn decider_claim(&self, name: &str, lease: Duration) -> Result<Option<i64>>;

    /// Gives the decider lease up at once, if `name` holds it.
    async fn decider_release(&self, name: &str) -> Result<()>;

    /// The current holder and epoch, if the lease is held.
    async fn decider(&self) -> Result<Option<(String, i64)>>;

    /// Fences every later commit by this fence (`None`: not the decider, commits unfenced —
    /// only the decider commits through the pipeline).
    fn set_fence(&self, fence: Option<Fence>);

    /// Writes a feed entry with each fenced commit (on while this replica decides).
    fn set_feed(&self, writer: Option<String>);

    /// Queues messages for the decider (one transaction); returns their sequence numbers.
    async fn inbox_put(&self, items: Vec<(String, String)>) -> Result<Vec<i64>>;

    /// The oldest waiting messages.
    async fn inbox_take(&self, limit: usize) -> Result<Vec<InboxItem>>;

    /// The decider's answers to these messages, where it has given them.
    async fn inbox_answers(&self, seqs: &[i64]) -> Result<Vec<(i64, String)>>;

    /// Feed entries after `after`, oldest first.
    async fn feed_since(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>>;

    /// The newest feed entry's sequence number (0: none).
    async fn feed_head(&self) -> Result<i64>;

    /// Deletes feed entries and inbox answers older than `keep`, and members gone for a day.
    async fn cluster_prune(&self, keep: Duration) -> Result<usize>;
}
