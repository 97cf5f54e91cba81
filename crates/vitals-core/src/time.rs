//! Timestamps: milliseconds since the Unix epoch, UTC. Stored as `i64` everywhere.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or_default()
    }
    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
    /// RFC 3339 with millisecond precision and a `Z` suffix.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
    /// Parses RFC 3339 / ISO 8601; a naive date-time (no offset) is taken as UTC.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::from_datetime(&dt));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(n.and_utc().timestamp_millis()));
            }
        }
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|n| Timestamp(n.and_utc().timestamp_millis()))
    }
    pub fn add_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }
    pub fn add_duration(self, d: std::time::Duration) -> Self {
        self.add_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The hours between two times as broker-monitor counts them: the absolute difference rounded
/// to a whole number, ties to even (Python's `round`), so 24 h 30 min is 24 and 25 h 30 min is
/// 26. Compare the result strictly (`>`) with a threshold.
pub fn rounded_hours(a: Timestamp, b: Timestamp) -> i64 {
    let d = (i128::from(b.0) - i128::from(a.0)).abs();
    let h = i128::from(HOUR_MS);
    let (q, r) = (d / h, d % h);
    let q = if 2 * r > h || (2 * r == h && q % 2 == 1) {
        q + 1
    } else {
        q
    };
    i64::try_from(q).unwrap_or(i64::MAX)
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_naive_as_utc() {
        let a = Timestamp::parse("2024-05-02T08:15:30.123Z").unwrap();
        let b = Timestamp::parse("2024-05-02T10:15:30.123+02:00").unwrap();
        let c = Timestamp::parse("2024-05-02T08:15:30.123").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_rfc3339(), "2024-05-02T08:15:30.123Z");
        assert!(Timestamp::parse("yesterday").is_none());
    }

    #[test]
    fn hours_round_half_to_even_and_ignore_the_sign() {
        let h = |ms: i64| rounded_hours(Timestamp(0), Timestamp(ms));
        assert_eq!(h(24 * HOUR_MS + HOUR_MS / 2), 24); // tie → even
        assert_eq!(h(25 * HOUR_MS + HOUR_MS / 2), 26); // tie → even
        assert_eq!(h(24 * HOUR_MS + HOUR_MS / 2 + 1), 25);
        assert_eq!(h(24 * HOUR_MS + HOUR_MS / 2 - 1), 24);
        assert_eq!(h(-25 * HOUR_MS), 25);
        assert_eq!(h(HOUR_MS / 2), 0);
        assert!(rounded_hours(Timestamp(i64::MIN), Timestamp(i64::MAX)) > 0);
    }
}
