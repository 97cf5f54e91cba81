//! The one test harness: a real Vitals — the same [`App`] `vitals serve` runs — on a random
//! loopback port with a temporary store, and helpers to push, wait for an observation and read
//! alerts and notifications. Test support: it panics on what a test cannot go on from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{App, StartOptions};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vitals_config::Config;
use vitals_core::alert::Alert;
use vitals_core::{ManualClock, Observation, SharedClock, SystemClock};
use vitals_server::{AppState, BuildInfo};
use vitals_store::{AlertQuery, OutboxItem, Store};

/// What `/version` says in tests.
pub const TEST_BUILD: BuildInfo = BuildInfo {
    name: "vitals",
    version: "0",
    git_commit: "x",
    build_profile: "t",
    rustc: "r",
};

pub struct TestApp {
    app: Option<App>,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:port`
    pub url: String,
    pub client: reqwest::Client,
    /// Sent as `Authorization: Bearer …` by the helpers, when set.
    pub token: Option<String>,
    /// The app's clock (kept across `restart`).
    clock: SharedClock,
}

/// Starts Vitals with the configuration `text` (TOML, as in `vitals.toml`). The harness puts
/// the store in a temporary directory and leaves out the self check (tests count assets);
/// everything else is as written.
pub async fn spawn_app(text: &str) -> TestApp {
    let cfg = Config::parse(text, &|_| None).unwrap_or_else(|e| panic!("test config: {e}"));
    spawn_config(cfg).await
}

/// As [`spawn_app`], with a configuration already parsed (and possibly adjusted).
pub async fn spawn_config(cfg: Config) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    spawn_in(cfg, dir).await
}

/// As [`spawn_config`], in a directory the test made (to look at files it leaves there).
pub async fn spawn_in(cfg: Config, dir: tempfile::TempDir) -> TestApp {
    spawn_at(cfg, dir, SystemClock::shared()).await
}

/// As [`spawn_app`], on a clock the test moves: a `ManualClock` steps over hours at once
/// (reminders, missed heartbeats, retention) while everything else runs as usual.
pub async fn spawn_app_on(text: &str, clock: Arc<ManualClock>) -> TestApp {
    let cfg = Config::parse(text, &|_| None).unwrap_or_else(|e| panic!("test config: {e}"));
    let dir = tempfile::tempdir().expect("temporary directory");
    spawn_at(cfg, dir, clock).await
}

async fn spawn_at(mut cfg: Config, dir: tempfile::TempDir, clock: SharedClock) -> TestApp {
    cfg.server.data_dir = dir.path().to_path_buf();
    let opened = crate::open_store(&cfg).await.expect("open the test store");
    spawn_opened(cfg, opened, dir, clock).await
}

/// As [`spawn_in`], on a store the test opened (and may share with other components).
pub async fn spawn_store(cfg: Config, store: Arc<dyn Store>, dir: tempfile::TempDir) -> TestApp {
    let url = crate::StoreUrl::parse(None, dir.path()).expect("store url");
    let opened = crate::OpenedStore {
        store,
        claim_owner: vitals_alert::outbox::LOCAL_OWNER.to_string(),
        url,
        cluster: None,
    };
    spawn_opened(cfg, opened, dir, SystemClock::shared()).await
}

async fn spawn_opened(
    cfg: Config,
    opened: crate::OpenedStore,
    dir: tempfile::TempDir,
    clock: SharedClock,
) -> TestApp {
    let app = start_in(cfg, opened, dir.path(), clock.clone()).await;
    let url = format!("http://{}", app.addr());
    TestApp {
        app: Some(app),
        dir,
        url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        token: None,
        clock,
    }
}

async fn start_in(
    mut cfg: Config,
    opened: crate::OpenedStore,
    dir: &Path,
    clock: SharedClock,
) -> App {
    cfg.server.data_dir = dir.to_path_buf();
    cfg.server.self_check = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    App::start(
        cfg,
        opened,
        StartOptions {
            listener,
            build: TEST_BUILD,
            listen_fixed: true,
            exit_on_worker_failure: false,
            clock,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("start: {e:#}"))
}

impl TestApp {
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("running")
    }

    /// The server's shared state; `vitals_server::router(state.clone())` answers like the socket.
    pub fn state(&self) -> &AppState {
        self.app().state()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.app().store()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn with_token(mut self, secret: &str) -> TestApp {
        self.token = Some(secret.to_string());
        self
    }

    fn authorized(&self, b: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => b.bearer_auth(t),
            None => b,
        }
    }

    /// `POST /api/v1/results` with `{"results": results}`; the response as it came.
    pub async fn push(&self, results: Value) -> reqwest::Response {
        self.authorized(self.client.post(format!("{}/api/v1/results", self.url)))
            .json(&serde_json::json!({ "results": results }))
            .send()
            .await
            .expect("push")
    }

    /// `GET path` as JSON; panics on a status other than 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self
            .authorized(self.client.get(format!("{}{path}", self.url)))
            .send()
            .await
            .expect("get");
        let status = r.status();
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// The latest observation of `asset`/`check` once `ready` accepts it (up to 20 s).
    pub async fn wait_for(
        &self,
        asset: &str,
        check: &str,
        ready: impl Fn(&Observation) -> bool,
    ) -> Observation {
        for _ in 0..400 {
            let latest = self
                .state()
                .state()
                .read()
                .get(asset)
                .and_then(|a| a.checks.get(check))
                .and_then(|c| c.latest.as_deref().cloned());
            if let Some(o) = latest.filter(|o| ready(o)) {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no matching observation of {asset}/{check} within 20 s");
    }

    /// Every alert, newest first.
    pub async fn alerts(&self) -> Vec<Alert> {
        self.app().pipeline().flush().await;
        self.store()
            .alerts(&AlertQuery {
                states: None,
                asset: None,
                limit: 10_000,
            })
            .await
            .expect("alerts")
    }

    /// Every notification in the outbox, whatever its state.
    pub async fn notifications(&self) -> Vec<OutboxItem> {
        self.app().pipeline().flush().await;
        self.store()
            .notifications(None, 10_000)
            .await
            .expect("notifications")
    }

    /// [`App::reload`] with a new configuration text (same data directory).
    pub async fn reload(&self, text: &str) -> anyhow::Result<crate::Reloaded> {
        let mut cfg = Config::parse(text, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.server.data_dir = self.dir.path().to_path_buf();
        cfg.server.self_check = false;
        self.app().reload(cfg).await
    }

    /// Stops and starts again with `text` on the same data directory (a new port: `url`
    /// changes), as a restart of `vitals serve` does.
    pub async fn restart(&mut self, text: &str) {
        self.stop().await;
        let mut cfg = Config::parse(text, &|_| None).unwrap_or_else(|e| panic!("test config: {e}"));
        cfg.server.data_dir = self.dir.path().to_path_buf();
        let opened = crate::open_store(&cfg).await.expect("open the test store");
        let app = start_in(cfg, opened, self.dir.path(), self.clock.clone()).await;
        self.url = format!("http://{}", app.addr());
        self.app = Some(app);
    }

    /// Shuts down as `vitals serve` does on SIGTERM; the directory stays until `self` drops.
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.expect("clean shutdown");
        }
    }
}
