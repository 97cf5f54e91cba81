//! The embedded SQLite backend of Vitals: [`SqliteStore`] implements [`vitals_store::Store`].
//!
//! # Shape
//! - **One writer.** A dedicated std thread owns the only write connection ([`writer`]). Every
//!   write is sent to it over a bounded channel with a oneshot reply; it applies everything
//!   queued in ONE transaction (group commit) and replies after `COMMIT`. So `append` returns
//!   only once its observations are durable, and 1,000 concurrent small appends cost a few
//!   commits, not 1,000.
//! - **Reads never block writes.** The database runs in WAL mode; reads use a small pool of
//!   read-only connections on `tokio::task::spawn_blocking` ([`read`]) and see the last
//!   committed snapshot.
//! - **Staged appends.** Appends go to an append-only staging table and are moved into the
//!   compact per-check table in bulk every `merge_rows` rows, so a commit writes a few pages
//!   instead of one page per check it touches ([`schema`] explains; reads see both).
//! - **Migrations** are an ordered list of SQL scripts tracked by `PRAGMA user_version`
//!   ([`schema::MIGRATIONS`]); append to it, never edit an entry.
//!
//! # Durability
//! WAL with `synchronous = NORMAL` (the default): a committed transaction survives `kill -9`
//! of the process (it is in the WAL in the OS page cache), but the last commits before a power
//! loss or kernel crash may be lost. [`SqliteOptions::synchronous_full`] switches to `FULL`,
//! which fsyncs the WAL at every commit and so survives power loss too, at the cost of one
//! fsync per group commit.
//!
//! # Compact observations (≤ 64 bytes each on disk)
//! Observations live in a `WITHOUT ROWID` table keyed by `(check_id, ts)`: asset and check
//! names are interned in `checks`, reasons and component lists (serialized as JSON) in
//! `texts`, value names in `value_names`. Empty reasons, component lists and value lists are
//! NULL, and a score equal to the status' default score is NULL too. Values are a compact
//! binary list (see [`codec`]): an integer or a multiple of 0.001 or 0.000001 takes 1–4 bytes
//! plus a one-byte name tag, anything else 8 bytes; every value reads back **bit-exactly**.
//! Millisecond latencies rounded to 0.001 (1 µs precision) are therefore stored exactly.
//!
//! # One observation per check and millisecond
//! The key is `(check, millisecond)`: an observation is identified by its asset, check and
//! time. A second one with the same key is a duplicate — the first stays, the second is not
//! stored and `commit` reports its index — found with at most one index look-up.
//!
//! # One store per file
//! Open a database file with one `SqliteStore` at a time (one process): the writer keeps
//! what it has staged in memory. Other processes may read it (`sqlite3`, backups).
//!
//! # Failure
//! Nothing here panics on data read back: a bad row is [`StoreError::Corrupt`] naming it.

mod alerts;
use vitals_store::codec;
/// Switches for tests of failure handling (feature `failpoints`; never in a release).
#[cfg(feature = "failpoints")]
pub mod failpoints {
    use std::sync::atomic::{AtomicBool, Ordering};
    pub(crate) static REFUSE_WRITES: AtomicBool = AtomicBool::new(false);

    /// While on, every write of every store in this process fails inside the writer's
    /// transaction (rolled back like a real I/O error).
    pub fn refuse_writes(on: bool) {
        REFUSE_WRITES.store(on, Ordering::Relaxed);
    }
}
mod fleet;
mod health;
mod housekeeping;

pub use housekeeping::backup_file;
mod read;
pub mod schema;
mod site;
mod writer;

use async_trait::async_trait;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vitals_core::alert::{Alert, Silence, Transition};
use vitals_core::Observation;
use vitals_core::Timestamp;
use vitals_store::{
    AlertQuery, AssetRecord, AuditEntry, CommitBatch, CommitReport, HealthRow, ObservationQuery,
    OutboxItem, OutboxUpdate, Result, Rollup, StoreError,
};
use vitals_store::{Alerts, Fleet, Housekeeping, Notices, Observations};
use vitals_store::{FleetError, FleetResource, FleetSample, FleetWrite, ResourceChange};
use vitals_store::{Notice, PeriodCount, RecentResults};

use read::ReadPool;
use writer::{Command, Writer};

/// The database file name [`SqliteStore::open_in`] uses inside a data directory.
pub const DB_FILE: &str = "vitals.db";

/// Tuning of a [`SqliteStore`]. `Default` is right for almost everyone.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `synchronous = FULL` instead of `NORMAL`: commits also survive power loss / kernel
    /// crash, at one fsync per group commit. `NORMAL` already survives `kill -9`.
    pub synchronous_full: bool,
    /// How long a connection waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Read-only connections in the pool (reads running at once).
    pub read_connections: usize,
    /// A group transaction stops taking queued commands after this many observations.
    pub max_group_observations: usize,
    /// Writes queued for the writer before `append` waits for room.
    pub queue_capacity: usize,
    /// Staged observations that trigger a bulk move into the main table. Larger: fewer,
    /// bigger merges (less write amplification with many checks); smaller: less for reads to
    /// scan (staged rows have no index). `1` merges after every commit.
    pub merge_rows: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous_full: false,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_group_observations: 50_000,
            queue_capacity: 4_096,
            merge_rows: 16_384,
        }
    }
}

/// A Vitals store in one SQLite file. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    closed: AtomicBool,
    commits: Arc<AtomicU64>,
    writer: mpsc::Sender<Command>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    reads: Arc<ReadPool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database at `path`,
    /// brings its schema up to date and starts the writer thread.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`open`](Self::open) of `dir/vitals.db`.
    pub fn open_in(dir: &Path) -> Result<SqliteStore> {
        Self::open(&dir.join(DB_FILE))
    }

    /// [`open`](Self::open) with explicit options.
    pub fn open_with(path: &Path, opts: SqliteOptions) -> Result<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
        let mut conn = rusqlite::Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        schema::prepare_writer(&mut conn, &opts)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;

        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer::new(
            conn,
            opts.max_group_observations,
            opts.merge_rows,
            Arc::clone(&commits),
        )
        .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let handle = std::thread::Builder::new()
            .name("vitals-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            closed: AtomicBool::new(false),
            commits,
            writer: tx,
            writer_thread: Mutex::new(Some(handle)),
            reads: Arc::new(ReadPool::new(path.to_path_buf(), opts)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write transactions committed since this store was opened. With group commit this
    /// grows much more slowly than the number of `append` calls under load.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Write commands waiting for the writer (not counting the group it is working on).
    pub fn queued_writes(&self) -> usize {
        self.writer.max_capacity() - self.writer.capacity()
    }

    /// Moves staged observations to their final table, then writes the WAL back into the
    /// database file and truncates it (for backups, and for measuring the file size). Fails
    /// if readers hold old snapshots the whole time.
    pub async fn checkpoint(&self) -> Result<()> {
        self.send(Command::Checkpoint).await
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    /// Sends a command to the writer and waits for its reply.
    async fn send(&self, make: impl FnOnce(writer::Reply) -> Command) -> Result<()> {
        self.send_for_duplicates(make).await.map(|_| ())
    }

    /// Like `send`, returning the indices of observations that were duplicates.
    async fn send_for_duplicates(
        &self,
        make: impl FnOnce(writer::Reply) -> Command,
    ) -> Result<Vec<usize>> {
        self.check_open()?;
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the writer stopped before handling the command.
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &ReadPool) -> Result<T> + Send + 'static,
    {
        self.check_open()?;
        self.reads.read(f).await
    }
}

impl SqliteStore {
    /// Runs `f` in the writer's transaction.
    async fn exec(
        &self,
        f: impl Fn(&rusqlite::Connection) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        let f: writer::ExecFn = Arc::new(f);
        self.send(|r| Command::Exec(f, r)).await
    }

    /// A write that fails inside the writer's transaction with `message` (tests of failure
    /// handling only).
    #[cfg(feature = "failpoints")]
    pub async fn failing_write(&self, message: &str) -> Result<()> {
        let message = message.to_string();
        self.exec(move |_| Err(StoreError::Backend(message.clone())))
            .await
    }
}

#[async_trait]
impl Observations for SqliteStore {
    async fn upsert_assets(&self, assets: &[AssetRecord]) -> Result<()> {
        if assets.is_empty() {
            return self.check_open();
        }
        let assets = assets.to_vec();
        self.send(|r| Command::UpsertAssets(assets, r)).await
    }

    async fn assets(&self) -> Result<Vec<AssetRecord>> {
        self.read(|conn, _| read::assets(conn)).await
    }

    async fn append(&self, observations: Vec<Observation>) -> Result<()> {
        if observations.is_empty() {
            return self.check_open();
        }
        self.send(|r| Command::Append(observations, r)).await
    }

    async fn latest(&self) -> Result<Vec<Observation>> {
        self.read(read::latest).await
    }

    async fn observations(&self, query: &ObservationQuery) -> Result<Vec<Observation>> {
        let query = query.clone();
        self.read(move |conn, pool| read::observations(conn, pool, &query))
            .await
    }

    async fn count_observations(&self) -> Result<u64> {
        self.read(|conn, _| read::count(conn)).await
    }

    async fn check_history(
        &self,
        check: &str,
        assets: Option<&[String]>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<Observation>> {
        let check = check.to_string();
        let assets = assets.map(<[String]>::to_vec);
        self.read(move |conn, pool| {
            read::check_history(conn, pool, &check, assets.as_deref(), from, to, limit)
        })
        .await
    }

    async fn recent_scores(&self, asset: &str, check: &str, limit: usize) -> Result<Vec<i64>> {
        let (asset, check) = (asset.to_string(), check.to_string());
        self.read(move |conn, _| health::recent_scores(conn, &asset, &check, limit))
            .await
    }

    async fn health_rows(&self) -> Result<Vec<HealthRow>> {
        self.read(|conn, _| health::rows(conn)).await
    }

    async fn seen_result_ids(&self, ids: &[String]) -> Result<HashSet<String>> {
        if ids.is_empty() {
            self.check_open()?;
            return Ok(HashSet::new());
        }
        let ids = ids.to_vec();
        self.read(move |conn, _| health::seen_ids(conn, &ids)).await
    }

    async fn period_counts(
        &self,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<PeriodCount>> {
        self.read(move |c, _| site::period_counts(c, period_ms, from.0, to.0))
            .await
    }

    async fn recent_results(&self, limit: usize) -> Result<Vec<RecentResults>> {
        self.read(move |c, _| site::recent_results(c, limit)).await
    }

    async fn commit(&self, batch: Arc<CommitBatch>) -> Result<CommitReport> {
        if *batch == CommitBatch::default() {
            return self.check_open().map(|()| CommitReport::default());
        }
        let duplicates = self
            .send_for_duplicates(|r| Command::Commit(batch, r))
            .await?;
        Ok(CommitReport { duplicates })
    }
}

#[async_trait]
impl Alerts for SqliteStore {
    async fn open_alerts(&self) -> Result<Vec<Alert>> {
        self.read(|conn, _| alerts::open(conn)).await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>> {
        let q = query.clone();
        self.read(move |conn, _| alerts::list(conn, &q)).await
    }

    async fn alert(&self, id: i64) -> Result<Option<(Alert, Vec<Transition>)>> {
        self.read(move |conn, _| alerts::one(conn, id)).await
    }

    async fn max_ids(&self) -> Result<(i64, i64)> {
        self.read(|conn, _| alerts::max_ids(conn)).await
    }

    async fn silences(&self, since: Timestamp) -> Result<Vec<Silence>> {
        self.read(move |conn, _| alerts::silences(conn, since))
            .await
    }

    async fn outbox_claim(
        &self,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (out, owner) = (got.clone(), owner.to_string());
        self.exec(move |c| {
            let items = alerts::claim(c, &owner, now, until, limit)?;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = items;
            Ok(())
        })
        .await?;
        let items = std::mem::take(&mut *got.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(items)
    }

    async fn outbox_next_due(&self) -> Result<Option<Timestamp>> {
        self.read(|conn, _| alerts::next_due(conn)).await
    }

    async fn outbox_pending(&self) -> Result<Vec<(String, usize)>> {
        self.read(|conn, _| alerts::pending_by_notifier(conn)).await
    }

    async fn outbox_update(&self, owner: &str, updates: Vec<OutboxUpdate>) -> Result<usize> {
        if updates.is_empty() {
            return self.check_open().map(|()| 0);
        }
        let owner = owner.to_string();
        let n = self
            .send_for_duplicates(|r| Command::Outbox(owner, updates, r))
            .await?;
        Ok(n.first().copied().unwrap_or(0))
    }

    async fn notifications(&self, alert: Option<i64>, limit: usize) -> Result<Vec<OutboxItem>> {
        self.read(move |conn, _| alerts::log(conn, alert, limit))
            .await
    }
}

#[async_trait]
impl Housekeeping for SqliteStore {
    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        self.exec(move |c| housekeeping::audit_append(c, &entry))
            .await
    }

    async fn audit(&self, since: Option<Timestamp>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(move |c, _| housekeeping::audit(c, since, limit))
            .await
    }

    async fn compute_rollups(
        &self,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<usize> {
        let rows = self
            .read(move |c, _| housekeeping::scan_rollups(c, period_ms, from.0, to.0))
            .await?;
        let n = rows.len();
        let rows = Arc::new(rows);
        self.exec(move |c| housekeeping::write_rollups(c, &rows))
            .await?;
        Ok(n)
    }

    async fn rollups(
        &self,
        asset: &str,
        check: &str,
        period_ms: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Rollup>> {
        let (asset, check) = (asset.to_string(), check.to_string());
        self.read(move |c, _| housekeeping::rollups(c, &asset, &check, period_ms, from.0, to.0))
            .await
    }

    async fn delete_raw_before(&self, before: Timestamp, batch: usize) -> Result<usize> {
        let n = self
            .send_for_duplicates(|reply| Command::DeleteRaw {
                before: before.0,
                batch,
                reply,
            })
            .await?;
        Ok(n.first().copied().unwrap_or(0))
    }

    async fn prune(
        &self,
        period_ms: i64,
        before: Timestamp,
        ids_before: Timestamp,
    ) -> Result<usize> {
        let n = Arc::new(AtomicU64::new(0));
        let m = n.clone();
        self.exec(move |c| {
            let k = housekeeping::prune(c, period_ms, before.0, ids_before.0)?;
            m.store(k as u64, Ordering::Relaxed);
            Ok(())
        })
        .await?;
        Ok(n.load(Ordering::Relaxed) as usize)
    }

    async fn forget_unused(&self, before: Timestamp, batch: usize) -> Result<usize> {
        let n = self
            .send_for_duplicates(|reply| Command::ForgetUnused {
                before: before.0,
                batch,
                reply,
            })
            .await?;
        Ok(n.first().copied().unwrap_or(0))
    }

    async fn delete_resolved_alerts(&self, before: Timestamp, batch: usize) -> Result<usize> {
        let n = Arc::new(AtomicU64::new(0));
        let out = n.clone();
        self.exec(move |c| {
            let d = housekeeping::delete_resolved_alerts(c, before.0, batch)?;
            out.store(d as u64, Ordering::Relaxed);
            Ok(())
        })
        .await?;
        Ok(n.load(Ordering::Relaxed) as usize)
    }

    async fn delete_done_notifications(&self, before: Timestamp, batch: usize) -> Result<usize> {
        let n = Arc::new(AtomicU64::new(0));
        let out = n.clone();
        self.exec(move |c| {
            let d = housekeeping::delete_done_notifications(c, before.0, batch)?;
            out.store(d as u64, Ordering::Relaxed);
            Ok(())
        })
        .await?;
        Ok(n.load(Ordering::Relaxed) as usize)
    }

    async fn archive_audit(
        &self,
        before: Timestamp,
        batch: usize,
        dir: &Path,
    ) -> Result<Option<(usize, PathBuf)>> {
        let got = Arc::new(Mutex::new(None));
        let out = got.clone();
        let dir = dir.to_path_buf();
        self.exec(move |c| {
            let r = housekeeping::archive_audit(c, before.0, batch, &dir)?;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = r;
            Ok(())
        })
        .await?;
        let r = got.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(r)
    }

    async fn job_value(&self, key: &str) -> Result<Option<i64>> {
        let key = key.to_string();
        self.read(move |c, _| housekeeping::job_value(c, &key))
            .await
    }

    async fn set_job_value(&self, key: &str, value: i64) -> Result<()> {
        let key = key.to_string();
        self.exec(move |c| housekeeping::set_job_value(c, &key, value))
            .await
    }

    async fn job_run(&self, job: &str) -> Result<Option<serde_json::Value>> {
        let job = job.to_string();
        self.read(move |c, _| housekeeping::job_run(c, &job)).await
    }

    async fn set_job_run(&self, job: &str, run: serde_json::Value) -> Result<()> {
        let job = job.to_string();
        self.exec(move |c| housekeeping::set_job_run(c, &job, &run))
            .await
    }

    async fn backup(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_path_buf();
        self.read(move |c, _| housekeeping::backup(c, &dest)).await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|conn, _| read::ping(conn)).await?;
        self.send(Command::Ping).await
    }

    fn memory_in_use(&self) -> Option<u64> {
        schema::memory_in_use()
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Closed);
        }
        self.reads.close();
        let (tx, rx) = oneshot::channel();
        let result = match self.writer.send(Command::Close(tx)).await {
            Ok(()) => rx.await.unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Closed),
        };
        let handle = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            // The writer has replied and is returning; joining only reaps the thread.
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StoreError::Backend(format!("writer thread: {e}")))?
                .map_err(|_| StoreError::Backend("the writer thread panicked".into()))?;
        }
        result.map(|_| ())
    }
}

#[async_trait]
impl Fleet for SqliteStore {
    async fn fleet_write(&self, write: FleetWrite) -> Result<()> {
        if write.is_empty() {
            return self.check_open();
        }
        let write = Arc::new(write);
        self.exec(move |c| fleet::write(c, &write)).await
    }

    async fn fleet_samples(
        &self,
        node: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<FleetSample>> {
        let node = node.map(str::to_string);
        self.read(move |c, _| fleet::samples(c, node.as_deref(), from_day, to_day))
            .await
    }

    async fn fleet_errors(
        &self,
        node: Option<&str>,
        year: Option<i32>,
        limit: usize,
    ) -> Result<Vec<FleetError>> {
        let node = node.map(str::to_string);
        self.read(move |c, _| fleet::errors(c, node.as_deref(), year, limit))
            .await
    }

    async fn fleet_resources(&self, node: Option<&str>) -> Result<Vec<FleetResource>> {
        let node = node.map(str::to_string);
        self.read(move |c, _| fleet::resources(c, node.as_deref()))
            .await
    }

    async fn fleet_changes(&self, node: &str, limit: usize) -> Result<Vec<ResourceChange>> {
        let node = node.to_string();
        self.read(move |c, _| fleet::changes(c, &node, limit)).await
    }

    async fn fleet_years(&self) -> Result<Vec<(String, i32)>> {
        self.read(|c, _| fleet::years(c)).await
    }
}

#[async_trait]
impl Notices for SqliteStore {
    async fn notice_add(&self, notice: Notice, keep: usize) -> Result<Notice> {
        let id = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let (out, n) = (id.clone(), notice.clone());
        self.exec(move |c| site::notice_add(c, &n, keep, &out))
            .await?;
        Ok(Notice {
            id: id.load(Ordering::Acquire),
            ended: None,
            ..notice
        })
    }

    async fn notice_end(&self, page: &str, id: i64, at: Timestamp) -> Result<Option<Notice>> {
        let p = page.to_string();
        self.exec(move |c| site::notice_end(c, &p, id, at.0))
            .await?;
        let p = page.to_string();
        self.read(move |c, _| site::notice(c, &p, id)).await
    }

    async fn notices(&self, page: &str, limit: usize) -> Result<Vec<Notice>> {
        let p = page.to_string();
        self.read(move |c, _| site::notices(c, &p, limit)).await
    }
}
