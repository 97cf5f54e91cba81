//! The yearly CSV files users keep for audits, in broker-monitor's exact columns, `;`-separated:
//!
//! - `<id>_stats_<YYYY>.csv`: `date;last_contact;last_start;last_write;last_reject;imported;
//!   updated;invalid;failed;error_rate;daily_imported;daily_updated;daily_invalid;daily_failed;
//!   daily_error_rate`, one row per day, oldest first. `date` is when the day's sample was
//!   polled; times are RFC 3339 in UTC; rates have two decimals; unknown values are `-`.
//! - `<id>_errors_<YYYY>.csv`: `timestamp;repeats;content`, newest first.
//!
//! Fields containing `;`, `"`, or a line break are quoted (`"…"`, with `""` for a quote), as
//! pandas' CSV writer does, so multi-line error texts stay one record. Pure.

use crate::daily::{daily_rate, total_rate};
use vitals_core::Timestamp;
use vitals_store::{FleetError, FleetSample};

pub const STATS_HEADER: &str = "date;last_contact;last_start;last_write;last_reject;imported;updated;invalid;failed;error_rate;daily_imported;daily_updated;daily_invalid;daily_failed;daily_error_rate";
pub const ERRORS_HEADER: &str = "timestamp;repeats;content";

/// File names of a node's yearly files.
pub fn stats_file(node: &str, year: i32) -> String {
    format!("{node}_stats_{year}.csv")
}
pub fn errors_file(node: &str, year: i32) -> String {
    format!("{node}_errors_{year}.csv")
}

fn field(out: &mut String, s: &str) {
    if s.contains([';', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_string(), Timestamp::to_rfc3339)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The stats file of the given samples (one node, one year, oldest first).
pub fn stats_csv(samples: &[FleetSample]) -> String {
    let mut out = String::with_capacity(64 + samples.len() * 200);
    out.push_str(STATS_HEADER);
    out.push('\n');
    for s in samples {
        let d = s.daily;
        let cols = [
            s.polled.to_rfc3339(),
            time(s.last_contact),
            s.last_start.to_rfc3339(),
            time(s.last_write),
            time(s.last_reject),
            s.imported.to_string(),
            s.updated.to_string(),
            s.invalid.to_string(),
            s.failed.to_string(),
            opt(total_rate(s)),
            opt(d.map(|d| d.imported)),
            opt(d.map(|d| d.updated)),
            opt(d.map(|d| d.invalid)),
            opt(d.map(|d| d.failed)),
            opt(daily_rate(s)),
        ];
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            field(&mut out, c);
        }
        out.push('\n');
    }
    out
}

/// The errors file of the given errors (one node, one year), newest first.
pub fn errors_csv(errors: &[FleetError]) -> String {
    let mut sorted: Vec<&FleetError> = errors.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.content.cmp(&b.content)));
    let mut out = String::with_capacity(32 + errors.len() * 120);
    out.push_str(ERRORS_HEADER);
    out.push('\n');
    for e in sorted {
        out.push_str(&e.time.to_rfc3339());
        out.push(';');
        out.push_str(&e.repeats.to_string());
        out.push(';');
        field(&mut out, &e.content);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_store::FleetCounts;

    #[test]
    fn rows_in_the_exact_format() {
        let s = FleetSample {
            node: "7".into(),
            day: 19_000,
            polled: Timestamp::parse("2022-01-08T06:00:00Z").unwrap(),
            last_contact: Timestamp::parse("2022-01-08T05:59:00Z"),
            last_start: Timestamp::parse("2022-01-01T00:00:00Z").unwrap(),
            last_write: None,
            last_reject: None,
            imported: 90,
            updated: 0,
            invalid: 10,
            failed: 0,
            daily: Some(FleetCounts {
                imported: 0,
                updated: 0,
                invalid: 3,
                failed: 0,
            }),
        };
        let text = stats_csv(&[s]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], STATS_HEADER);
        assert_eq!(
            lines[1],
            "2022-01-08T06:00:00.000Z;2022-01-08T05:59:00.000Z;2022-01-01T00:00:00.000Z;-;-;90;0;10;0;10.00;0;0;3;0;100.00"
        );
        let e = FleetError {
            node: "7".into(),
            year: 2022,
            time: Timestamp(0),
            repeats: 2,
            content: "a;b \"c\"\nd".into(),
        };
        assert_eq!(
            errors_csv(&[e]),
            "timestamp;repeats;content\n1970-01-01T00:00:00.000Z;2;\"a;b \"\"c\"\"\nd\"\n"
        );
    }
}
