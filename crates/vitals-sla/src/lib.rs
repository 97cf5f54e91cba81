//! `vitals sla`: SLA reports from national-health-platform service logs, at memory speed.
//!
//! An SLA log has one line per measured call (`spec/sla-log.md`): service calls (a
//! `SOAPOperation`) and the database or Kafka calls made inside them, correlated by `MessageId`.
//! The report answers, per operation and optionally per hour or day: count, errors and error
//! rate, exact nearest-rank p50/p95/p98/p99, max and mean duration, the share of a service
//! operation's time spent in its correlated DB calls, and whether each response-time target holds.
//!
//! # How it is fast
//!
//! Plain files are memory-mapped and cut into chunks at line boundaries; every core scans chunks
//! (`scan`) with `memchr` and a hand-written key/value and duration parser ([`parse`]) — no
//! regex, no allocation per line — and unmaps each chunk's pages once it is scanned, so that
//! tearing down the map's page tables is shared by all cores rather than left to one at the end.
//! Durations go to one `Vec<u64>` per (operation, period); message ids are copied to a small
//! arena per chunk (about 1 % of the bytes) and become small records filed by hash partition,
//! joined exactly, partition by partition, on all cores ([`mod@analyze`]). Percentiles come from
//! `select_nth_unstable` ([`percentile`]), exact without sorting, each group's values gathered on
//! the core that selects them. Gzip'd input (detected by magic bytes) is decompressed on one
//! thread while another scans it.
//!
//! # Decisions
//!
//! - Operation names: a service call is named by its `LogPoint`; any other call by
//!   `LogPoint:LogPointUniqId` when its uniq id differs from the log point, e.g.
//!   `DB_Operation:lookupPersonName`.
//! - DB time share of a service operation: the sum of the durations of all non-service calls that
//!   share a `MessageId` with its calls (each id counted once per operation and period), divided
//!   by the sum of its own durations. It can exceed 1 when DB calls overlap.
//! - Errors are included in the duration statistics (a slow failure is still slow).
//! - Periods come from the timestamp that starts each line (when the call ended).
//! - Malformed lines (no `LogPoint`, `Duration` or `Result`, a duration without a known unit, or
//!   with `--by` no leading timestamp) are counted, the first few reported by file and line
//!   number, and skipped. Blank lines are counted as lines but are not malformed.
//! - Targets: per operation and percentile the first matching target applies ([`target`]).
//! - Exit code of [`run`]: 0 when every applicable target is met (or none is given), 1 when at
//!   least one is broken; any input that cannot be read is an `Err` naming the path.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use anyhow::Context;

pub mod analyze;
pub mod parse;
pub mod percentile;
mod progress;
pub mod report;
mod scan;
pub mod target;

pub use analyze::{analyze, Analysis, GroupStats, Options};
pub use parse::Period;
pub use percentile::Percentile;
pub use report::{Format, Report};
pub use target::Target;

/// Arguments of `vitals sla`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlaArgs {
    /// SLA log files, plain or gzip'd (detected by content), read in order.
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also group by period of the line timestamps.
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub by: Option<Period>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Response-time target OP=PCT:DURATION, OP a glob over operation names, e.g.
    /// 'minlog2.*=95:2.5s'; repeatable; per percentile the first matching one applies.
    #[arg(long = "target", value_name = "OP=PCT:DURATION")]
    pub targets: Vec<Target>,
    /// TOML file with [[target]] tables (operation, percentile, within), applied after
    /// the --target options.
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// Never draw a progress bar (it is drawn only for big inputs when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub threads: usize,
}

/// Runs `vitals sla`: writes the report to `out` and returns the exit code (0 all targets met or
/// none given, 1 some target broken). Errors (unreadable file, bad targets file) name the path.
pub fn run(args: &SlaArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut targets = args.targets.clone();
    if let Some(path) = &args.targets_file {
        targets.extend(target::load_targets_file(path)?);
    }
    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let counter = AtomicU64::new(0);
    let opts = Options {
        by: args.by,
        threads: args.threads,
    };
    let analysis = progress::run_with(
        progress::wanted(!args.no_progress, total),
        total,
        &counter,
        || analyze(&args.files, &opts, &targets, &counter),
    )?;
    let report = Report::new(&analysis, &targets);
    let mut out = BufWriter::with_capacity(64 << 10, out);
    report
        .write(args.format, &mut out)
        .and_then(|()| out.flush())
        .context("cannot write the report")?;
    Ok(i32::from(report.targets_broken > 0))
}
