//! This replica's part in a cluster of replicas on one PostgreSQL database
//! (`docs/high-availability.md`); on its own (SQLite, or PostgreSQL without replicas) it does
//! everything.
//!
//! - **Who probes what.** Every replica has every check scheduled; at each tick a check runs
//!   only on its owner: the live member with the highest rendezvous hash of (member, check).
//!   When members come or go, only the checks of the member that came or went move.
//! - **Who decides.** The holder of the decider lease (see `vitals_store::cluster`) runs the
//!   pipeline's decisions and the workers that must run once (heartbeat watch, fleet collector,
//!   SLA follower, housekeeping, integration engine, agent watch). The others hand what they
//!   take in to it through the inbox and follow its feed.
//! - **Losing the database.** A replica that cannot renew its membership within its lease owns
//!   no check and decides nothing until it can again; `/monitor` says `FAIL`.

use crate::LiveState;
use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use vitals_core::health::AssetHealth;
use vitals_core::Observation;
use vitals_store::cluster::{Cluster, Member};
use vitals_store::AssetRecord;

/// Default lease of members and of the decider: a killed replica's checks move within it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// How long feed entries and inbox answers are kept; a replica away longer reloads its state.
pub const FEED_KEEP: Duration = Duration::from_secs(300);

/// What `/monitor` and `/metrics` show of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    pub me: String,
    pub members: Vec<Member>,
    pub decider: bool,
    pub epoch: Option<i64>,
    /// Set while this replica cannot reach the database: why, and since when (ms).
    pub detached: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The live members at the last renewal, each with when its lease runs out (on this
    /// machine's monotonic clock): a member whose lease ran out since counts as gone at once,
    /// not at the next renewal, so its checks move within the lease.
    members: Vec<(Member, Instant)>,
    epoch: Option<i64>,
    detached: Option<String>,
    attached: bool,
}

/// This replica's role; cheap to ask from every tick.
pub struct Role {
    me: String,
    cluster: Option<Arc<dyn Cluster>>,
    inner: RwLock<Inner>,
    /// The pipeline worker decides (set by it once it has caught up after winning the lease).
    deciding: AtomicBool,
    /// The feed's cursor: the last entry applied (or skipped as our own).
    cursor: tokio::sync::Mutex<i64>,
    /// When the feed was last read successfully (ms of the machine's clock; 0: never).
    fed_at: AtomicI64,
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Role")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly for short keys: finish with a multiply-xorshift.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The member that owns `asset/check` among `members` (rendezvous hashing), if any.
pub fn owner<'a>(
    members: impl IntoIterator<Item = &'a str>,
    asset: &str,
    check: &str,
) -> Option<&'a str> {
    members
        .into_iter()
        .max_by_key(|m| (fnv(&[m, asset, check]), *m))
}

impl Role {
    /// One process doing everything.
    pub fn solo() -> Arc<Role> {
        Arc::new(Role {
            me: "solo".into(),
            cluster: None,
            inner: RwLock::new(Inner::default()),
            deciding: AtomicBool::new(true),
            cursor: tokio::sync::Mutex::new(0),
            fed_at: AtomicI64::new(0),
        })
    }

    /// A replica named `me` (unique per process) coordinating through `cluster`. It owns
    /// nothing and decides nothing until its first beat.
    pub fn replica(me: String, cluster: Arc<dyn Cluster>) -> Arc<Role> {
        Arc::new(Role {
            me,
            cluster: Some(cluster),
            inner: RwLock::new(Inner {
                detached: Some("not yet joined".into()),
                ..Inner::default()
            }),
            deciding: AtomicBool::new(false),
            cursor: tokio::sync::Mutex::new(0),
            fed_at: AtomicI64::new(0),
        })
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn cluster(&self) -> Option<&Arc<dyn Cluster>> {
        self.cluster.as_ref()
    }

    pub fn is_replica(&self) -> bool {
        self.cluster.is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica runs the check `asset/check` now.
    pub fn owns(&self, asset: &str, check: &str) -> bool {
        if self.cluster.is_none() {
            return true;
        }
        let inner = self.read();
        if !inner.attached {
            return false;
        }
        let now = Instant::now();
        let live = inner
            .members
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(m, _)| m.name.as_str());
        owner(live, asset, check) == Some(self.me.as_str())
    }

    /// Whether this replica makes the decisions and runs the once-only workers now.
    pub fn is_decider(&self) -> bool {
        self.deciding.load(Ordering::Acquire)
    }

    /// The decider epoch this replica holds, if it holds the lease (replicas only).
    pub fn lease_epoch(&self) -> Option<i64> {
        let inner = self.read();
        if inner.attached {
            inner.epoch
        } else {
            None
        }
    }

    /// Set by the pipeline worker.
    pub fn set_deciding(&self, on: bool) {
        let was = self.deciding.swap(on, Ordering::AcqRel);
        if was != on && self.cluster.is_some() {
            tracing::info!(replica = %self.me, "{}", if on { "this replica decides now" } else { "this replica no longer decides" });
        }
    }

    pub fn view(&self) -> RoleView {
        let inner = self.read();
        let now = Instant::now();
        RoleView {
            me: self.me.clone(),
            members: inner
                .members
                .iter()
                .filter(|(_, until)| *until > now)
                .map(|(m, _)| m.clone())
                .collect(),
            decider: self.is_decider(),
            epoch: inner.epoch,
            detached: if self.cluster.is_some() {
                inner.detached.clone()
            } else {
                None
            },
        }
    }

    /// Applies the decider's feed entries written since the last call to `state` (this
    /// replica's own are skipped: they are in its state already). Returns how many applied.
    pub async fn pull_feed(&self, state: &LiveState) -> vitals_store::Result<usize> {
        let Some(cluster) = &self.cluster else {
            return Ok(0);
        };
        let mut cursor = self.cursor.lock().await;
        let mut applied = 0;
        loop {
            let entries = cluster.feed_since(*cursor, 500).await?;
            let n = entries.len();
            for e in entries {
                *cursor = e.seq;
                if e.writer == self.me {
                    continue;
                }
                apply_entry(state, &e.body);
                applied += 1;
            }
            if n < 500 {
                break;
            }
        }
        self.fed_at
            .store(vitals_core::SystemClock::now().0, Ordering::Relaxed);
        Ok(applied)
    }

    /// Starts following the feed from its current end (the state was just loaded from the
    /// store, which holds everything before it).
    pub async fn feed_from_head(&self) -> vitals_store::Result<()> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        let head = cluster.feed_head().await?;
        *self.cursor.lock().await = head;
        self.fed_at
            .store(vitals_core::SystemClock::now().0, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the feed was last read so long ago that entries may have been pruned since.
    pub fn feed_lost(&self) -> bool {
        let at = self.fed_at.load(Ordering::Relaxed);
        at > 0 && vitals_core::SystemClock::now().0 - at > (FEED_KEEP.as_millis() as i64) - 60_000
    }
}

/// One feed entry applied to the live state, as the decider applied it after its commit.
fn apply_entry(state: &LiveState, body: &serde_json::Value) {
    if let Some(a) = body.get("assets") {
        match serde_json::from_value::<Vec<AssetRecord>>(a.clone()) {
            Ok(assets) if !assets.is_empty() => state.ensure_assets(&assets),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "feed entry: unreadable assets"),
        }
    }
    if let Some(o) = body.get("observations") {
        match serde_json::from_value::<Vec<Observation>>(o.clone()) {
            Ok(obs) => state.apply(obs),
            Err(e) => tracing::warn!(error = %e, "feed entry: unreadable observations"),
        }
    }
    if let Some(h) = body.get("health").filter(|h| !h.is_null()) {
        match serde_json::from_value::<BTreeMap<String, AssetHealth>>(h.clone()) {
            Ok(health) => state.set_health(health),
            Err(e) => tracing::warn!(error = %e, "feed entry: unreadable health"),
        }
    }
}

/// Keeps this replica's membership and the decider lease, every `lease / 5`; gives both up when
/// `stop` turns true. `address` is where this replica serves, for operators.
pub fn spawn_coordinator(
    role: Arc<Role>,
    address: String,
    lease: Duration,
    beat: crate::liveness::Beat,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(cluster) = role.cluster.clone() else {
            return;
        };
        let every = (lease / 5).max(Duration::from_millis(200));
        // Judged on the machine's monotonic clock: a lease renewed at `ok` holds until
        // `ok + lease` by the database's clock at the latest.
        let mut last_ok: Option<Instant> = None;
        let mut pruned = Instant::now();
        loop {
            beat.now();
            let started = Instant::now();
            match cluster.member_beat(&role.me, &address, lease).await {
                Ok(members) => {
                    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
                    let changed = {
                        let mut inner = role.write();
                        let before: Vec<&str> =
                            inner.members.iter().map(|(m, _)| m.name.as_str()).collect();
                        let changed = before != names || !inner.attached;
                        // Counted from when the query was sent: never later than the database's.
                        inner.members = members
                            .into_iter()
                            .map(|m| {
                                let left = Duration::from_millis(m.lease_left_ms.max(0) as u64);
                                (m, started + left)
                            })
                            .collect();
                        inner.attached = true;
                        inner.detached = None;
                        changed
                    };
                    if changed {
                        tracing::info!(replica = %role.me, members = ?names, "cluster members");
                    }
                    last_ok = Some(started);
                }
                Err(e) => {
                    let lapsed = last_ok.is_none_or(|t| t.elapsed() + every >= lease);
                    if lapsed {
                        let mut inner = role.write();
                        if inner.attached {
                            tracing::error!(replica = %role.me, error = %e, "lost the database: this replica stops probing and deciding");
                        }
                        inner.attached = false;
                        inner.epoch = None;
                        inner.detached = Some(format!("cannot reach the database: {e}"));
                    }
                }
            }
            match cluster.decider_claim(&role.me, lease).await {
                Ok(epoch) => {
                    let mut inner = role.write();
                    if inner.attached {
                        inner.epoch = epoch;
                    }
                }
                Err(e) => {
                    tracing::warn!(replica = %role.me, error = %e, "cannot renew the decider lease");
                    if last_ok.is_none_or(|t| t.elapsed() + every >= lease) {
                        role.write().epoch = None;
                    }
                }
            }
            if role.is_decider() && pruned.elapsed() > Duration::from_secs(60) {
                pruned = Instant::now();
                if let Err(e) = cluster.cluster_prune(FEED_KEEP).await {
                    tracing::warn!(error = %e, "cannot prune the cluster's feed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every.saturating_sub(started.elapsed())) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                // A clean stop: the others take over at once instead of after the lease.
                role.write().epoch = None;
                role.set_deciding(false);
                let _ = cluster.decider_release(&role.me).await;
                let _ = cluster.member_leave(&role.me).await;
                return;
            }
        }
    })
}

/// Follows the decider's feed into `state` twice a second while this replica does not decide;
/// `reload` is called when the feed was out of reach for longer than it is kept.
pub fn spawn_follower<F, Fut>(
    role: Arc<Role>,
    state: Arc<LiveState>,
    reload: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    tokio::spawn(async move {
        if !role.is_replica() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if role.is_decider() {
                continue; // the worker pulls the feed itself when it takes over
            }
            if role.feed_lost() {
                tracing::warn!("the cluster's feed was out of reach for long: reloading the live state from the store");
                match role.feed_from_head().await {
                    Ok(()) => {
                        if let Err(e) = reload().await {
                            tracing::warn!(error = %e, "cannot reload the live state");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "feed unreachable"),
                }
                continue;
            }
            if let Err(e) = role.pull_feed(&state).await {
                tracing::debug!(error = %e, "cannot read the cluster's feed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<Member> {
        names
            .iter()
            .map(|n| Member {
                name: n.to_string(),
                address: String::new(),
                lease_left_ms: 0,
            })
            .collect()
    }

    #[test]
    fn a_member_leaving_moves_only_its_own_share_and_shares_are_even() {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for i in 0..3000 {
            let check = format!("c{i}");
            let before = owner(["a", "b", "c"], "asset", &check).unwrap();
            let after = owner(["a", "c"], "asset", &check).unwrap();
            *counts.entry(before.to_string()).or_default() += 1;
            if before != "b" {
                assert_eq!(before, after, "{check} moved though its owner stayed");
            }
        }
        for (m, n) in &counts {
            assert!((800..1200).contains(n), "{m} owns {n} of 3000: {counts:?}");
        }
    }

    #[test]
    fn alone_a_replica_owns_nothing_before_it_joined() {
        struct Never;
        #[async_trait::async_trait]
        impl Cluster for Never {
            async fn member_beat(
                &self,
                _: &str,
                _: &str,
                _: Duration,
            ) -> vitals_store::Result<Vec<Member>> {
                Err(vitals_store::StoreError::Closed)
            }
            async fn member_leave(&self, _: &str) -> vitals_store::Result<()> {
                Ok(())
            }
            async fn decider_claim(
                &self,
                _: &str,
                _: Duration,
            ) -> vitals_store::Result<Option<i64>> {
                Ok(None)
            }
            async fn decider_release(&self, _: &str) -> vitals_store::Result<()> {
                Ok(())
            }
            async fn decider(&self) -> vitals_store::Result<Option<(String, i64)>> {
                Ok(None)
            }
            fn set_fence(&self, _: Option<vitals_store::cluster::Fence>) {}
            fn set_feed(&self, _: Option<String>) {}
            async fn inbox_put(&self, _: Vec<(String, String)>) -> vitals_store::Result<Vec<i64>> {
                Ok(vec![])
            }
            async fn inbox_take(
                &self,
                _: usize,
            ) -> vitals_store::Result<Vec<vitals_store::cluster::InboxItem>> {
                Ok(vec![])
            }
            async fn inbox_answers(&self, _: &[i64]) -> vitals_store::Result<Vec<(i64, String)>> {
                Ok(vec![])
            }
            async fn feed_since(
                &self,
                _: i64,
                _: usize,
            ) -> vitals_store::Result<Vec<vitals_store::cluster::FeedEntry>> {
                Ok(vec![])
            }
            async fn feed_head(&self) -> vitals_store::Result<i64> {
                Ok(0)
            }
            async fn cluster_prune(&self, _: Duration) -> vitals_store::Result<usize> {
                Ok(0)
            }
        }
        let r = Role::replica("a".into(), Arc::new(Never));
        assert!(!r.owns("x", "y"));
        assert!(!r.is_decider());
        assert!(r.view().detached.is_some());
        // Members whose lease ran out (on this machine's clock) own nothing.
        {
            let mut inner = r.write();
            inner.attached = true;
            inner.members = members(&["a"])
                .into_iter()
                .map(|m| (m, Instant::now() - Duration::from_millis(1)))
                .collect();
        }
        assert!(!r.owns("x", "y"), "a lapsed lease owns nothing");
        assert!(r.view().members.is_empty());
        {
            let mut inner = r.write();
            inner.members[0].1 = Instant::now() + Duration::from_secs(10);
        }
        assert!(r.owns("x", "y"));
        assert!(Role::solo().owns("x", "y") && Role::solo().is_decider());
    }
}
