//! The shared store stories (`vitals_store::conformance`), each on a fresh temporary database,
//! in two configurations: observations left in the staging table (the default threshold is
//! far above what a story writes), and merged into the main table after every commit.

use tempfile::TempDir;
use vitals_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("open a fresh store");
    (store, dir)
}

async fn fresh_merging() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = SqliteOptions {
        merge_rows: 1,
        ..SqliteOptions::default()
    };
    let store =
        SqliteStore::open_with(&dir.path().join("vitals.db"), opts).expect("open a fresh store");
    (store, dir)
}

mod staged {
    vitals_store::conformance_tests!(super::fresh);
}

mod merged {
    vitals_store::conformance_tests!(super::fresh_merging);
}

/// `run_all` is the one-call form other backends may use; keep it working too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_stories_in_one_test() {
    vitals_store::conformance::run_all(fresh).await;
}
