//! One collection cycle over N emulated nodes (default 1,000), against the emulated broker on
//! loopback and a fresh SQLite store: `cargo run --release -p vitals-fleet --example
//! fleet_bench -- [NODES] [CONCURRENCY]`. Prints one line per cycle and the target, and the
//! time broker-monitor's working directory takes to write after each cycle (its own line; not
//! part of the collection target).

use std::sync::Arc;
use std::time::{Duration, Instant};
use vitals_fleet::collector::{Collector, Settings};
use vitals_fleet::emulator::Emulator;
use vitals_store::Store;

const TARGET_S: f64 = 5.0;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let nodes: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(vitals_store_sqlite::SqliteStore::open(
        &dir.path().join("bench.db"),
    )?);
    let broker = Emulator::start("bench-admin").await?;
    let day0 = vitals_core::SystemClock::now().add_millis(-2 * 86_400_000);
    broker.populate(nodes, day0, true);
    let settings = Settings {
        base: url::Url::parse(&format!("{}/", broker.url()))?,
        api_key: "bench-admin".into(),
        timeout: Duration::from_secs(30),
        concurrency,
        expected_dwh: vitals_fleet::version::Version::parse("1.5.1"),
        expected_dwh_text: Some("1.5.1".into()),
        expected_i2b2: None,
        mapping: None,
        contacts: Default::default(),
    };
    let collector = Collector::new(settings, store.clone())?;
    let workdir = vitals_fleet::workdir::WorkDir::new(dir.path().join("workdir"));
    let mut worst: f64 = 0.0;
    for (label, day) in [
        ("first (all new)", 0),
        ("next day (deltas)", 1),
        ("same day again", 1),
    ] {
        let now = day0.add_millis(day * 86_400_000 + 3_600_000);
        broker.advance(now);
        let before = broker.requests();
        let t = Instant::now();
        let cycle = collector.collect_once(now).await?;
        let s = t.elapsed().as_secs_f64();
        worst = worst.max(s);
        println!(
            "fleet cycle, {label}: {nodes} nodes, {} requests, {} samples, {} observations, {} failed: {s:.3} s",
            broker.requests() - before,
            cycle.samples,
            cycle.observations.len(),
            cycle.failed
        );
        let t = Instant::now();
        let w = workdir.write_nodes(now, &cycle.raw);
        println!(
            "  working directory after it: {} files changed, {} problems: {:.3} s",
            w.files,
            w.errors.len(),
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "fleet collection cycle over {nodes} nodes: worst {worst:.3} s vs target {TARGET_S} s ({:.1}x headroom)",
        TARGET_S / worst
    );
    store.close().await?;
    Ok(())
}
