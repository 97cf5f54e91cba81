//! `POST /api/v1/results` bodies through the real router: JSON parsing, batch validation,
//! scoring, the pipeline and a SQLite store. Whatever the body, the answer is 2xx or 4xx —
//! never a 5xx, never a panic.
//!
//! The server (temporary SQLite store, pipeline, `[[score]]` rules, two declared assets) is
//! built once per process; each input is one request through `router(app).oneshot(…)`. The
//! handler has no pure validation function of its own to fuzz (`parse_entry` is private), so
//! the whole path is exercised, which is slower per input but is what a client reaches.

#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;
use vitals_config::Config;
use vitals_scheduler::watch::HeartbeatRegistry;
use vitals_scheduler::{LiveState, Metrics, Model, ModelHandle, Pipeline};
use vitals_server::{router, AppShared, AppState, BuildInfo};
use vitals_store::{AssetRecord, Store};
use vitals_store_sqlite::SqliteStore;

/// A score rule (so entries without a status are scored from a value) and declared assets.
const CONFIG: &str = r#"
[[asset]]
id = "node-1"
name = "Node 1"
groups = ["doctor"]

[[asset]]
id = "a"
name = "A"

[[score]]
test = "heart"
groups = ["doctor"]
field = "heartrate"
kind = "int"
rules = [{ above = 120, score = 4 }, { above = 100, score = 3 }, { above = 80, score = 2 }, { score = 1 }]

[[score]]
test = "smoke"
groups = ["doctor"]
field = "smokes"
kind = "bool"
rules = [{ equals = true, score = 3 }, { score = 1 }]
"#;

/// Prefix of the per-process store directories under the system temp dir.
const DIR_PREFIX: &str = "vitals-fuzz-results-";

struct Harness {
    rt: tokio::runtime::Runtime,
    app: AppState,
}

/// libFuzzer ends the process with `exit()`, so statics are never dropped and a `TempDir`
/// would stay behind: the store lives in a directory named after the pid, and directories of
/// processes that are gone are removed at the next start.
fn store_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(DIR_PREFIX) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("{DIR_PREFIX}{}", std::process::id()));
    // A leftover of an earlier process with the same pid is stale: start empty.
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("harness start-up: cannot create {}: {e}", dir.display());
    }
    dir
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        // Start-up invariants of the harness itself: failing here is not a finding.
        let cfg = match Config::parse(CONFIG, &|_| None) {
            Ok(c) => c,
            Err(e) => panic!("harness start-up: the fuzz config is invalid: {e}"),
        };
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("harness start-up: tokio runtime: {e}"),
        };
        let dir = store_dir();
        let store: Arc<dyn Store> = match SqliteStore::open(&dir.join("v.db")) {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("harness start-up: SQLite store: {e}"),
        };
        let app = rt.block_on(async {
            let state = Arc::new(LiveState::new());
            let model = Model::from_config(&cfg);
            // Declared assets exist in the live state, as `vitals serve` puts them there.
            let records: Vec<AssetRecord> = cfg
                .assets
                .iter()
                .map(|a| AssetRecord {
                    id: a.id.clone(),
                    name: a.display_name().to_string(),
                    groups: a.all_groups(),
                    labels: a.labels.clone(),
                    parents: a.parents.clone(),
                    metadata: a.metadata.clone(),
                })
                .collect();
            state.sync_config(&records, &[]);
            let (pipeline, _) = Pipeline::start(
                store,
                state,
                Arc::new(Metrics::default()),
                Arc::new(ModelHandle::new(model)),
                vitals_alert::Engine::new(vec![], vec![], None, vec![], vec![], (0, 0)),
            );
            AppState::new(AppShared {
                pipeline,
                auth: Default::default(),
                heartbeats: Arc::new(HeartbeatRegistry::default()),
                cleanup: None,
                audit_file: None,
                build: Arc::new(BuildInfo {
                    name: "vitals",
                    version: "0",
                    git_commit: "fuzz",
                    build_profile: "fuzz",
                    rustc: "rustc",
                }),
                started: vitals_core::Timestamp(0),
                ui: Default::default(),
                site: Default::default(),
                protect: Default::default(),
                workers: None,
                agents: Default::default(),
                views: Arc::default(),
            })
        });
        Harness { rt, app }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let req = match Request::builder()
        .method(Method::POST)
        .uri("/api/v1/results")
        .header("content-type", "application/json")
        .body(Body::from(data.to_vec()))
    {
        Ok(r) => r,
        Err(e) => panic!("harness: request builder: {e}"),
    };
    let (status, body) = h.rt.block_on(async {
        let resp = match router(h.app.clone()).oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, body)
    });
    assert!(
        !status.is_server_error(),
        "POST /api/v1/results answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
});
