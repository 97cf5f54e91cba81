//! Daily samples and error rates. Pure: time is passed in.
//!
//! - A *day* is a UTC calendar day, counted in days since 1970-01-01.
//! - One sample per node and day; re-collecting on the same day replaces it.
//! - Daily values are today's counters minus the previous sample's, only when that sample is
//!   from yesterday **and** the data warehouse's `start` did not change (a restart resets the
//!   counters, so no delta is taken across it). Otherwise they are unknown.
//! - Error rate = F / (S + F) × 100 with S = imported + updated, F = invalid + failed, kept as
//!   an integer number of hundredths of a percent (so `4.99` and `5.00` compare exactly) and
//!   shown with two decimals. F > 0 and S = 0 gives 100; F = 0 and S = 0 gives none (`-`).

use crate::xml::ImportStats;
use chrono::{Datelike, NaiveDate};
use vitals_core::Timestamp;
use vitals_store::{FleetCounts, FleetSample};

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;

/// The UTC day of a time.
pub fn day_of(t: Timestamp) -> i64 {
    t.0.div_euclid(DAY_MS)
}

/// Midnight (UTC) at the start of a day.
pub fn day_start(day: i64) -> Timestamp {
    Timestamp(day.saturating_mul(DAY_MS))
}

fn date_of(day: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::TimeDelta::try_days(day)?)
}

/// `YYYY-MM-DD` of a day.
pub fn date_string(day: i64) -> String {
    date_of(day).map_or_else(
        || format!("day {day}"),
        |d| d.format("%Y-%m-%d").to_string(),
    )
}

/// The year a day is in.
pub fn year_of_day(day: i64) -> i32 {
    date_of(day).map_or(1970, |d| d.year())
}

/// The year (UTC) of a time.
pub fn year_of(t: Timestamp) -> i32 {
    year_of_day(day_of(t))
}

/// First and last day of a year, or `None` for a year chrono cannot represent.
pub fn year_days(year: i32) -> Option<(i64, i64)> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let first = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let last = NaiveDate::from_ymd_opt(year, 12, 31)?;
    Some(((first - epoch).num_days(), (last - epoch).num_days()))
}

/// Hours between two times as broker-monitor counts them: the absolute difference rounded
/// half to even (24 h 30 min is 24, 24 h 31 min is 25); compare strictly (`>`).
pub fn hours(from: Timestamp, to: Timestamp) -> i64 {
    vitals_core::time::rounded_hours(from, to)
}

/// An error rate in hundredths of a percent: `ErrorRate(499)` is 4.99 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorRate(pub i64);

impl ErrorRate {
    /// F / (S + F) × 100, rounded half up to two decimals; `None` when nothing was imported
    /// or failed, or when a counter is negative (counters that went backwards).
    pub fn of(c: &FleetCounts) -> Option<ErrorRate> {
        let s = i128::from(c.imported) + i128::from(c.updated);
        let f = i128::from(c.invalid) + i128::from(c.failed);
        if s < 0 || f < 0 || c.imported < 0 || c.updated < 0 || c.invalid < 0 || c.failed < 0 {
            return None;
        }
        let total = s + f;
        if total == 0 {
            return None;
        }
        // Half up in integers: (2·F·10000 + T) / (2·T).
        let hundredths = (2 * f * 10_000 + total) / (2 * total);
        i64::try_from(hundredths).ok().map(ErrorRate)
    }

    /// From a percentage (tests and thresholds), rounded to hundredths.
    pub fn from_percent(p: f64) -> ErrorRate {
        ErrorRate((p * 100.0).round() as i64)
    }

    pub fn percent(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl std::fmt::Display for ErrorRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{:02}",
            self.0.div_euclid(100),
            self.0.rem_euclid(100)
        )
    }
}

/// The cumulative counters of a sample.
pub fn counts(s: &FleetSample) -> FleetCounts {
    FleetCounts {
        imported: s.imported,
        updated: s.updated,
        invalid: s.invalid,
        failed: s.failed,
    }
}

/// Daily error rate of a sample (`None`: unknown daily values or nothing happened).
pub fn daily_rate(s: &FleetSample) -> Option<ErrorRate> {
    s.daily.as_ref().and_then(ErrorRate::of)
}

/// Cumulative error rate of a sample.
pub fn total_rate(s: &FleetSample) -> Option<ErrorRate> {
    ErrorRate::of(&counts(s))
}

/// The newest sample from a day before `day` (samples oldest first).
pub fn previous(samples: &[FleetSample], day: i64) -> Option<&FleetSample> {
    samples.iter().rev().find(|s| s.day < day)
}

/// Builds today's sample from the polled statistics and the previous sample.
pub fn build_sample(
    node: &str,
    polled: Timestamp,
    last_contact: Option<Timestamp>,
    stats: &ImportStats,
    prev: Option<&FleetSample>,
) -> FleetSample {
    let day = day_of(polled);
    // broker-monitor compares the starts to the second (as `%Y-%m-%d %H:%M:%S` in UTC).
    let daily = prev
        .filter(|p| p.day == day - 1 && same_second(p.last_start, stats.start))
        .map(|p| FleetCounts {
            imported: stats.imported.saturating_sub(p.imported),
            updated: stats.updated.saturating_sub(p.updated),
            invalid: stats.invalid.saturating_sub(p.invalid),
            failed: stats.failed.saturating_sub(p.failed),
        });
    FleetSample {
        node: node.to_string(),
        day,
        polled,
        last_contact,
        last_start: stats.start,
        last_write: stats.last_write,
        last_reject: stats.last_reject,
        imported: stats.imported,
        updated: stats.updated,
        invalid: stats.invalid,
        failed: stats.failed,
        daily,
    }
}

fn same_second(a: Timestamp, b: Timestamp) -> bool {
    a.0.div_euclid(1000) == b.0.div_euclid(1000)
}

/// Puts `today` into `samples` (oldest first), replacing a sample of the same day.
pub fn upsert(samples: &mut Vec<FleetSample>, today: FleetSample) {
    samples.retain(|s| s.day != today.day);
    let at = samples.partition_point(|s| s.day < today.day);
    samples.insert(at, today);
}

/// Mean of the known daily error rates of the samples from `first_day` on (two decimals).
pub fn mean_daily_rate(samples: &[FleetSample], first_day: i64) -> Option<ErrorRate> {
    let rates: Vec<i64> = samples
        .iter()
        .filter(|s| s.day >= first_day)
        .filter_map(daily_rate)
        .map(|r| r.0)
        .collect();
    if rates.is_empty() {
        return None;
    }
    let n = rates.len() as i64;
    let sum: i64 = rates.iter().sum();
    Some(ErrorRate((2 * sum + n).div_euclid(2 * n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: i64, f: i64) -> FleetCounts {
        FleetCounts {
            imported: s,
            updated: 0,
            invalid: f,
            failed: 0,
        }
    }

    #[test]
    fn error_rate_formula_and_edges() {
        assert_eq!(ErrorRate::of(&c(0, 0)), None);
        assert_eq!(
            ErrorRate::of(&c(0, 5)).map(|r| r.to_string()),
            Some("100.00".into())
        );
        assert_eq!(ErrorRate::of(&c(5, 0)), Some(ErrorRate(0)));
        assert_eq!(ErrorRate::of(&c(9901, 99)), Some(ErrorRate(99)));
        assert_eq!(ErrorRate::of(&c(99, 1)), Some(ErrorRate(100)));
        assert_eq!(ErrorRate::of(&c(9501, 499)), Some(ErrorRate(499)));
        assert_eq!(ErrorRate::of(&c(95, 5)), Some(ErrorRate(500)));
        assert_eq!(ErrorRate::of(&c(9001, 999)), Some(ErrorRate(999)));
        assert_eq!(ErrorRate::of(&c(9, 1)), Some(ErrorRate(1000)));
        // 1/3 = 33.333… → 33.33; 2/3 → 66.67 (half up).
        assert_eq!(ErrorRate::of(&c(2, 1)).unwrap().to_string(), "33.33");
        assert_eq!(ErrorRate::of(&c(1, 2)).unwrap().to_string(), "66.67");
        assert_eq!(ErrorRate::of(&c(-1, 2)), None);
        assert_eq!(ErrorRate(5).to_string(), "0.05");
    }

    #[test]
    fn days_and_years() {
        let t = Timestamp::parse("2024-12-31T23:59:59.999Z").unwrap();
        assert_eq!(date_string(day_of(t)), "2024-12-31");
        assert_eq!(year_of(t), 2024);
        assert_eq!(year_of(t.add_millis(1)), 2025);
        let (a, b) = year_days(2024).unwrap();
        assert_eq!(b - a, 365); // leap year
        assert_eq!(date_string(a), "2024-01-01");
        assert_eq!(hours(Timestamp(0), Timestamp(HOUR_MS * 25 - 1)), 25);
        assert_eq!(
            hours(Timestamp(0), Timestamp(HOUR_MS * 24 + HOUR_MS / 2)),
            24
        );
        assert_eq!(hours(Timestamp(HOUR_MS * 26), Timestamp(0)), 26);
    }
}
