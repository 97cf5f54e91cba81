//! P3a (batch ingest) and P8 (bytes per stored observation) on PostgreSQL beside SQLite, the
//! same generated observations for both (1,000 checks, six values each, 5% failing, 10% with
//! components — the generator of `vitals-store-sqlite`'s append bench), appended in batches of
//! 500 (one commit each). Prints one line per figure. Run by `bench/postgres/run.sh`.
//!
//! `VITALS_BENCH_PG`: an admin URL (default `postgres://postgres@127.0.0.1:5432/postgres`); a
//! fresh database is created and dropped. `OBS`: observations per backend (default 200,000).

use std::time::Instant;
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_store::prelude::*;

const CHECKS: u64 = 1_000;
const T0: i64 = 1_714_006_400_000;
const BATCH: usize = 500;

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

async fn ingest(store: &dyn Store, total: usize) -> f64 {
    let mut gen = Gen { n: 0, rng: 42 };
    let batches: Vec<Vec<Observation>> = (0..total / BATCH).map(|_| gen.batch(BATCH)).collect();
    let start = Instant::now();
    for b in batches {
        if let Err(e) = store.append(b).await {
            eprintln!("append failed: {e}");
            std::process::exit(1);
        }
    }
    (total / BATCH * BATCH) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::var("OBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let admin_url = std::env::var("VITALS_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());

    // SQLite (the anchor).
    let dir = std::env::temp_dir().join(format!("vitals-pg-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite = match vitals_store_sqlite::SqliteStore::open_in(&dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sqlite: {e}");
            std::process::exit(1);
        }
    };
    let sqlite_rate = ingest(&sqlite, total).await;
    let _ = sqlite.checkpoint().await;
    let n = sqlite.count_observations().await.unwrap_or(0).max(1);
    let file = std::fs::metadata(sqlite.path())
        .map(|m| m.len())
        .unwrap_or(0);
    let _ = sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    // PostgreSQL, in a fresh database.
    let name = format!("vitals_bench_{}", std::process::id());
    let mut admin = match <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("PostgreSQL at {admin_url}: {e}");
            std::process::exit(1);
        }
    };
    let _ = sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await;
    let url = format!(
        "{}/{name}",
        &admin_url[..admin_url.rfind('/').unwrap_or(admin_url.len())]
    );
    let pg = match vitals_store_postgres::PgStore::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let pg_rate = ingest(&pg, total).await;
    let pn = pg.count_observations().await.unwrap_or(0).max(1);
    // Heap, indexes and TOAST of every partition and of the interned tables.
    let bytes = sqlx::query_scalar::<_, i64>(
        "SELECT ((SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits \
         WHERE inhparent = 'observations'::regclass) + pg_total_relation_size('texts') \
         + pg_total_relation_size('value_names') + pg_total_relation_size('checks'))::bigint",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap_or(0);
    let _ = pg.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;

    println!("P3a sqlite    batch ingest: {sqlite_rate:>10.0} obs/s ({n} observations, batches of {BATCH})");
    println!(
        "P3a postgres  batch ingest: {pg_rate:>10.0} obs/s ({pn} observations, batches of {BATCH})"
    );
    println!(
        "P3a ratio postgres/sqlite:  {:>10.2}",
        pg_rate / sqlite_rate
    );
    println!(
        "P8  sqlite    bytes/observation: {:>6.1} (file after checkpoint)",
        file as f64 / n as f64
    );
    println!(
        "P8  postgres  bytes/observation: {:>6.1} (partitions with indexes + interned tables)",
        bytes as f64 / pn as f64
    );
}
