//! Shared test fixture: a fresh SQLite store, an emulated broker on loopback and a collector
//! pointed at it. Time is injected: every collection is `collect(now)`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use vitals_config::broker::Contact;
use vitals_core::{Observation, Timestamp};
use vitals_fleet::collector::{Collector, Cycle, Settings};
use vitals_fleet::emulator::Emulator;
use vitals_fleet::version::Version;
use vitals_fleet::xml::ImportStats;
use vitals_store::Store;
use vitals_store_sqlite::SqliteStore;

pub const ADMIN_KEY: &str = "admin-secret";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub broker: Emulator,
    pub collector: Collector,
}

pub struct Options {
    pub mapping: Option<&'static str>,
    pub expected: Option<&'static str>,
    pub timeout: Duration,
    pub contacts: BTreeMap<String, Vec<String>>,
    pub i2b2: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mapping: None,
            expected: None,
            timeout: Duration::from_secs(10),
            contacts: BTreeMap::new(),
            i2b2: None,
        }
    }
}

pub async fn fixture(opts: Options) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("v.db")).unwrap());
    let broker = Emulator::start(ADMIN_KEY).await.unwrap();
    let mapping = opts.mapping.map(|text| {
        let p = dir.path().join("mapping.json");
        std::fs::write(&p, text).unwrap();
        p
    });
    let settings = Settings {
        base: url::Url::parse(&format!("{}/", broker.url())).unwrap(),
        api_key: ADMIN_KEY.into(),
        timeout: opts.timeout,
        concurrency: 4,
        expected_dwh: opts.expected.map(|v| Version::parse(v).unwrap()),
        expected_dwh_text: opts.expected.map(str::to_string),
        expected_i2b2: opts.i2b2.map(str::to_string),
        mapping,
        contacts: opts
            .contacts
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|a| Contact::address(a)).collect()))
            .collect(),
    };
    let collector = Collector::new(settings, store.clone()).unwrap();
    Fixture {
        dir,
        store,
        broker,
        collector,
    }
}

impl Fixture {
    pub async fn collect(&self, now: Timestamp) -> Cycle {
        self.collector.collect_once(now).await.unwrap()
    }
}

pub fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad time {s}"))
}

pub const H: i64 = 3_600_000;
pub const DAY: i64 = 24 * H;

pub fn stats(start: Timestamp, ok: i64, bad: i64, last_write: Option<Timestamp>) -> ImportStats {
    ImportStats {
        start,
        last_write,
        last_reject: None,
        imported: ok,
        updated: 0,
        invalid: bad,
        failed: 0,
        errors: Vec::new(),
    }
}

pub fn obs<'a>(c: &'a Cycle, node: &str, check: &str) -> &'a Observation {
    c.observations
        .iter()
        .find(|o| o.asset == node && o.check == check)
        .unwrap_or_else(|| {
            panic!(
                "no {check} observation for node {node}: {:#?}",
                c.observations
            )
        })
}

pub fn status_of(c: &Cycle, node: &str) -> String {
    obs(c, node, "status").reason.clone()
}
