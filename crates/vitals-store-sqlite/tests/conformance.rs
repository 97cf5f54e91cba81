//! The shared store stories (`vitals_store::conformance`), each on a fresh temporary database.

use tempfile::TempDir;
use vitals_store_sqlite::SqliteStore;

async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("open a fresh store");
    (store, dir)
}

vitals_store::conformance_tests!(fresh);

/// `run_all` is the one-call form other backends may use; keep it working too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_stories_in_one_test() {
    vitals_store::conformance::run_all(fresh).await;
}
