//! Raw append throughput of the SQLite store (no HTTP), with realistic observations: 1,000
//! checks in turn, six latency/size values each, 5% failing, 10% with components.
//!
//! - `append/batch_500`: one `append` of 500 observations (one commit).
//! - `append/single`: one `append` of 1 observation at a time, awaited (one commit each).
//! - `append/concurrent_1000x1`: 1,000 tasks each appending 1 observation at once; group
//!   commit folds them into a few transactions.
//! - `latest/10000_checks`: the warm-start read over 10,000 checks.
//!
//! Run: `cargo bench -p vitals-store-sqlite --bench append`. Throughput is in elements
//! (observations) per second.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_store::prelude::*;
use vitals_store_sqlite::SqliteStore;

const CHECKS: u64 = 1_000;
const T0: i64 = 1_714_006_400_000;

/// Deterministic observation generator: checks in turn, 10 s apart per check.
struct Gen {
    n: u64,
    rng: u64,
}

impl Gen {
    fn next_rand(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn ms(&mut self, lo: u64, hi: u64) -> f64 {
        (lo * 1000 + self.next_rand() % ((hi - lo) * 1000)) as f64 / 1000.0
    }

    fn observation(&mut self) -> Observation {
        let i = self.n;
        self.n += 1;
        let check = i % CHECKS;
        let round = (i / CHECKS) as i64;
        let time = Timestamp(T0 + round * 10_000 + check as i64 * 7);
        let crit = self.next_rand().is_multiple_of(20);
        let status = if crit { Status::Crit } else { Status::Ok };
        let reason = if crit { "connection refused" } else { "" };
        let mut o = Observation::new(
            format!("node-{:04}", check / 4),
            format!("http-{}", check % 4),
            time,
            status,
            reason,
        );
        let dns = self.ms(0, 3);
        let connect = self.ms(0, 5);
        let ttfb = self.ms(5, 300);
        let total = dns + connect + ttfb + self.ms(0, 20);
        o.duration_us = (total * 1000.0) as u64;
        o.values = vec![
            Value::new("dns_ms", dns),
            Value::new("connect_ms", connect),
            Value::new("ttfb_ms", ttfb),
            Value::new("total_ms", (total * 1000.0).round() / 1000.0),
            Value::new("status_code", if crit { 503.0 } else { 200.0 }),
            Value::new("body_bytes", (self.next_rand() % 5_000) as f64),
        ];
        if check.is_multiple_of(10) {
            o.components = vec![Component {
                name: "database".into(),
                status: Status::Ok,
                value: None,
                output: String::new(),
            }];
        }
        o
    }

    fn batch(&mut self, n: usize) -> Vec<Observation> {
        (0..n).map(|_| self.observation()).collect()
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open_in(dir.path()).expect("open store"));
    let mut gen = Gen { n: 0, rng: 42 };

    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(500));
    group.bench_function("batch_500", |b| {
        b.iter_batched(
            || gen.batch(500),
            |batch| rt.block_on(store.append(batch)).expect("append"),
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter_batched(
            || gen.batch(1),
            |batch| rt.block_on(store.append(batch)).expect("append"),
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("concurrent_1000x1", |b| {
        b.iter_batched(
            || gen.batch(1_000),
            |batch| {
                rt.block_on(async {
                    let tasks: Vec<_> = batch
                        .into_iter()
                        .map(|o| {
                            let store = Arc::clone(&store);
                            tokio::spawn(async move { store.append(vec![o]).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task").expect("append");
                    }
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    rt.block_on(store.close()).expect("close");
}

/// Warm start: the newest observation of each of 10,000 checks, half of them staged.
fn latest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("open store");
    let mut gen = Gen { n: 0, rng: 7 };
    rt.block_on(async {
        for _ in 0..3 {
            let batch: Vec<Observation> = gen
                .batch(10_000)
                .into_iter()
                .enumerate()
                .map(|(i, mut o)| {
                    // 10,000 distinct checks instead of the generator's 1,000.
                    o.check = format!("{}-{}", o.check, i / 1_000);
                    o
                })
                .collect();
            store.append(batch).await.expect("append");
        }
    });
    let mut group = c.benchmark_group("latest");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("10000_checks", |b| {
        b.iter(|| {
            let got = rt.block_on(store.latest()).expect("latest");
            assert_eq!(got.len(), 10_000);
        })
    });
    group.finish();
    rt.block_on(store.close()).expect("close");
}

criterion_group!(benches, append, latest);
criterion_main!(benches);
