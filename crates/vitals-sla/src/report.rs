//! The SLA report: built once from an [`Analysis`] and the targets, then written as an aligned
//! table, JSON or CSV. All three carry the same numbers; durations are whole microseconds except
//! in the table, which shows them for people (`767µs`, `12.3ms`, `1.34s`).

use std::io::{self, Write};

use serde::Serialize;

use crate::analyze::Analysis;
use crate::parse::period_label;
use crate::percentile::Percentile;
use crate::target::{self, Target};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with human durations.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// A header and one row per operation (and period).
    Csv,
}

/// The whole report (this is also the JSON document).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub files: Vec<String>,
    /// `hour` or `day` when grouped by period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'static str>,
    /// All lines read, blank and malformed ones included.
    pub lines: u64,
    /// Lines skipped as malformed.
    pub malformed: u64,
    /// The first few of them.
    pub malformed_lines: Vec<MalformedLineReport>,
    /// Non-service calls (DB, Kafka) whose `MessageId` no service call in the input shares.
    pub uncorrelated_db_calls: u64,
    pub uncorrelated_db_us: u64,
    pub targets_met: u64,
    pub targets_broken: u64,
    /// Service operations first, then the others; each by name, then period.
    pub operations: Vec<OperationReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MalformedLineReport {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// One operation (in one period).
#[derive(Debug, Clone, Serialize)]
pub struct OperationReport {
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Whether the operation is a service call (has a `SOAPOperation`).
    pub service: bool,
    pub count: u64,
    pub errors: u64,
    /// errors ÷ count.
    pub error_rate: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p98_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Rounded to the nearest microsecond.
    pub mean_us: u64,
    pub total_us: u64,
    /// Service operations: DB time of the calls sharing their message ids ÷ their own total
    /// time. `null` for other operations.
    pub db_time_share: Option<f64>,
    pub targets: Vec<TargetReport>,
}

/// One target as applied to one operation.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// The pattern that matched.
    pub pattern: String,
    pub percentile: f64,
    pub limit_us: u64,
    /// The measured percentile.
    pub value_us: u64,
    /// `value_us <= limit_us`.
    pub met: bool,
}

impl Report {
    /// Builds the report. Targets apply per operation (see [`target::applicable`]).
    pub fn new(analysis: &Analysis, targets: &[Target]) -> Report {
        let mut operations: Vec<(bool, String, Option<u32>, OperationReport)> = analysis
            .groups
            .iter()
            .map(|g| {
                let pct = |p: Percentile| g.percentile(p).unwrap_or(0);
                let [p50, p95, p98, p99] = Percentile::REPORTED;
                let targets = target::applicable(targets, &g.operation)
                    .into_iter()
                    .map(|t| {
                        let value_us = pct(t.percentile);
                        TargetReport {
                            pattern: t.pattern.clone(),
                            percentile: t.percentile.as_f64(),
                            limit_us: t.limit_us,
                            value_us,
                            met: value_us <= t.limit_us,
                        }
                    })
                    .collect();
                let report = OperationReport {
                    operation: g.operation.clone(),
                    period: match (analysis.by, g.period) {
                        (Some(by), Some(p)) => Some(period_label(p, by)),
                        _ => None,
                    },
                    service: g.service,
                    count: g.count,
                    errors: g.errors,
                    error_rate: ratio(u128::from(g.errors), u128::from(g.count)),
                    p50_us: pct(p50),
                    p95_us: pct(p95),
                    p98_us: pct(p98),
                    p99_us: pct(p99),
                    max_us: g.max_us,
                    mean_us: if g.count == 0 {
                        0
                    } else {
                        clamp_u64((g.total_us + u128::from(g.count) / 2) / u128::from(g.count))
                    },
                    total_us: clamp_u64(g.total_us),
                    db_time_share: g.service.then(|| ratio(g.db_us, g.total_us)),
                    targets,
                };
                (!g.service, g.operation.clone(), g.period, report)
            })
            .collect();
        operations.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        let operations: Vec<OperationReport> = operations.into_iter().map(|o| o.3).collect();
        let met = operations
            .iter()
            .flat_map(|o| &o.targets)
            .filter(|t| t.met)
            .count() as u64;
        let all = operations.iter().map(|o| o.targets.len()).sum::<usize>() as u64;
        Report {
            files: analysis
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            by: analysis.by.map(|b| b.name()),
            lines: analysis.lines,
            malformed: analysis.malformed,
            malformed_lines: analysis
                .malformed_examples
                .iter()
                .map(|m| MalformedLineReport {
                    file: m.file.display().to_string(),
                    line: m.line,
                    reason: m.reason.to_string(),
                })
                .collect(),
            uncorrelated_db_calls: analysis.uncorrelated_db_calls,
            uncorrelated_db_us: clamp_u64(analysis.uncorrelated_db_us),
            targets_met: met,
            targets_broken: all - met,
            operations,
        }
    }

    /// Writes the report in `format`.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Table => self.write_table(out),
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, self)?;
                writeln!(out)
            }
            Format::Csv => self.write_csv(out),
        }
    }

    fn write_csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let by = self.by.is_some();
        let mut header = vec!["operation"];
        if by {
            header.push("period");
        }
        header.extend([
            "service",
            "count",
            "errors",
            "error_rate",
            "p50_us",
            "p95_us",
            "p98_us",
            "p99_us",
            "max_us",
            "mean_us",
            "total_us",
            "db_time_share",
            "targets",
            "targets_broken",
        ]);
        writeln!(out, "{}", header.join(","))?;
        for o in &self.operations {
            let mut row = vec![csv_field(&o.operation)];
            if by {
                row.push(csv_field(o.period.as_deref().unwrap_or("")));
            }
            row.extend([
                o.service.to_string(),
                o.count.to_string(),
                o.errors.to_string(),
                format!("{:.6}", o.error_rate),
                o.p50_us.to_string(),
                o.p95_us.to_string(),
                o.p98_us.to_string(),
                o.p99_us.to_string(),
                o.max_us.to_string(),
                o.mean_us.to_string(),
                o.total_us.to_string(),
                o.db_time_share.map_or(String::new(), |s| format!("{s:.6}")),
                csv_field(
                    &o.targets
                        .iter()
                        .map(|t| {
                            format!(
                                "p{}<={}us:{}",
                                t.percentile,
                                t.limit_us,
                                if t.met { "met" } else { "broken" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(";"),
                ),
                o.targets.iter().filter(|t| !t.met).count().to_string(),
            ]);
            writeln!(out, "{}", row.join(","))?;
        }
        Ok(())
    }

    fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        let by = self.by.is_some();
        let mut header = vec!["OPERATION"];
        if by {
            header.push("PERIOD");
        }
        header.extend([
            "COUNT", "ERRORS", "ERR%", "P50", "P95", "P98", "P99", "MAX", "MEAN", "DB%", "TARGETS",
        ]);
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        for o in &self.operations {
            let mut row = vec![o.operation.clone()];
            if by {
                row.push(o.period.clone().unwrap_or_default());
            }
            row.extend([
                o.count.to_string(),
                o.errors.to_string(),
                format!("{:.2}", o.error_rate * 100.0),
                human_us(o.p50_us),
                human_us(o.p95_us),
                human_us(o.p98_us),
                human_us(o.p99_us),
                human_us(o.max_us),
                human_us(o.mean_us),
                o.db_time_share
                    .map_or("-".to_string(), |s| format!("{:.1}", s * 100.0)),
                if o.targets.is_empty() {
                    "-".to_string()
                } else {
                    o.targets
                        .iter()
                        .map(|t| {
                            format!(
                                "p{}≤{} {}",
                                t.percentile,
                                human_us(t.limit_us),
                                if t.met { "met" } else { "BROKEN" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ]);
            rows.push(row);
        }
        let columns = rows[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        // Names and periods read left to right; numbers line up on the right; the last column is
        // free text and is not padded.
        let left = if by { 2 } else { 1 };
        for row in &rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                if c + 1 == columns {
                    line.push_str(cell);
                } else if c < left {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                } else {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        writeln!(out)?;
        let files = self.files.len();
        writeln!(
            out,
            "{} lines in {} file{}, {} malformed{}",
            self.lines,
            files,
            if files == 1 { "" } else { "s" },
            self.malformed,
            if self.malformed > 0 { " (skipped)" } else { "" }
        )?;
        for m in &self.malformed_lines {
            writeln!(out, "  {}:{}: {}", m.file, m.line, m.reason)?;
        }
        if self.uncorrelated_db_calls > 0 {
            writeln!(
                out,
                "{} non-service calls ({}) share no MessageId with a service call",
                self.uncorrelated_db_calls,
                human_us(self.uncorrelated_db_us)
            )?;
        }
        if self.targets_met + self.targets_broken > 0 {
            writeln!(
                out,
                "targets: {} met, {} broken",
                self.targets_met, self.targets_broken
            )?;
        }
        Ok(())
    }
}

fn ratio(part: u128, whole: u128) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A duration for people: `767µs`, `1.23ms`, `12.3ms`, `123ms`, `1.34s`, `2m05s`, `1h02m`.
pub fn human_us(us: u64) -> String {
    fn three_digits(value: f64, unit: &str) -> String {
        if value < 10.0 {
            format!("{value:.2}{unit}")
        } else if value < 100.0 {
            format!("{value:.1}{unit}")
        } else {
            format!("{value:.0}{unit}")
        }
    }
    match us {
        0..1_000 => format!("{us}µs"),
        // Below 999.5 ms so that rounding never shows "1000ms".
        1_000..999_500 => three_digits(us as f64 / 1e3, "ms"),
        999_500..59_950_000 => three_digits(us as f64 / 1e6, "s"),
        59_950_000..3_600_000_000 => {
            let s = (us + 500_000) / 1_000_000;
            format!("{}m{:02}s", s / 60, s % 60)
        }
        _ => {
            let m = (us + 30_000_000) / 60_000_000;
            format!("{}h{:02}m", m / 60, m % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let cases = [
            (0, "0µs"),
            (767, "767µs"),
            (999, "999µs"),
            (1_000, "1.00ms"),
            (12_345, "12.3ms"),
            (123_456, "123ms"),
            (999_499, "999ms"),
            (999_500, "1.00s"),
            (1_340_017, "1.34s"),
            (59_949_999, "59.9s"),
            (59_950_000, "1m00s"),
            (125_000_000, "2m05s"),
            (3_600_000_000, "1h00m"),
            (3_720_000_000, "1h02m"),
        ];
        for (us, text) in cases {
            assert_eq!(human_us(us), text, "{us}");
        }
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
