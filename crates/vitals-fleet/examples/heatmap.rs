//! Renders the heatmap of N simulated nodes (default 200) over 42 simulated days into
//! `heatmap.svg` and `heatmap.png` in the given directory (default `.`):
//! `cargo run -p vitals-fleet --example heatmap -- [DIR] [NODES]`.

use std::sync::Arc;
use std::time::Duration;
use vitals_fleet::collector::{Collector, Settings};
use vitals_fleet::emulator::Emulator;
use vitals_store::Store;

const DAYS: usize = 42;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let nodes: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(vitals_store_sqlite::SqliteStore::open(
        &dir.path().join("h.db"),
    )?);
    let broker = Emulator::start("demo").await?;
    let now = vitals_core::SystemClock::now();
    let first = now.add_millis(-(DAYS as i64 - 1) * 86_400_000);
    broker.populate(nodes, first, false);
    let settings = Settings {
        base: url::Url::parse(&format!("{}/", broker.url()))?,
        api_key: "demo".into(),
        timeout: Duration::from_secs(30),
        concurrency: 16,
        expected_dwh: None,
        expected_dwh_text: None,
        expected_i2b2: None,
        mapping: None,
        contacts: Default::default(),
    };
    let collector = Collector::new(settings, store.clone())?;
    let mut names = Vec::new();
    for d in 0..DAYS as i64 {
        let at = first.add_millis(d * 86_400_000);
        broker.advance(at);
        let cycle = collector.collect_once(at).await?;
        if d == 0 {
            names = cycle
                .assets
                .iter()
                .filter(|a| a.metadata.contains_key(vitals_fleet::NODE_KEY))
                .map(|a| (a.id.clone(), a.name.clone()))
                .collect();
        }
    }
    let today = vitals_fleet::daily::day_of(now);
    let samples = store
        .fleet_samples(None, today - DAYS as i64 + 1, today)
        .await?;
    let h = vitals_fleet::heatmap::build(&names, &samples, today, DAYS);
    std::fs::write(out.join("heatmap.svg"), h.svg(DAYS))?;
    std::fs::write(out.join("heatmap.png"), h.png(DAYS, 60_000_000)?)?;
    println!("wrote {0}/heatmap.svg and {0}/heatmap.png", out.display());
    store.close().await?;
    Ok(())
}
