//! Node status, first match wins (see `docs/fleet.md`):
//!
//! 1. GAP IN MONITORING: the newest daily sample is more than 24 h old, or the two newest are
//!    more than 24 h apart;
//! 2. TESTING: at least n daily samples and no run of n consecutive days with daily imports > 0
//!    (unknown counts as 0), n = the node's consecutive import days;
//! 3. OFFLINE: last contact older than the node's failure threshold;
//! 4. NO IMPORTS: the last write (or the newest known one) older than the threshold (never
//!    without any known write);
//! 5. EXTREME (≥ 10) / HIGH (≥ 5) / LOW (≥ 1) ERROR RATE, on the newest daily error rate;
//! 6. ONLINE.
//!
//! Durations are hours as broker-monitor counts them — the absolute difference rounded half to
//! even — and a status needs *strictly more* than its threshold: 24 h 30 min is 24 h, which is
//! not more than 24; 24 h 31 min is 25 h. Pure: `now` is passed in.

use crate::daily::{daily_rate, hours, ErrorRate};
use vitals_core::{Status, Timestamp};
use vitals_store::FleetSample;

/// Hours between daily samples beyond which monitoring has a gap.
pub const GAP_HOURS: i64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    GapInMonitoring,
    Testing,
    Offline,
    NoImports,
    ExtremeErrorRate,
    HighErrorRate,
    LowErrorRate,
    Online,
}

impl NodeStatus {
    pub const ALL: [NodeStatus; 8] = [
        NodeStatus::GapInMonitoring,
        NodeStatus::Testing,
        NodeStatus::Offline,
        NodeStatus::NoImports,
        NodeStatus::ExtremeErrorRate,
        NodeStatus::HighErrorRate,
        NodeStatus::LowErrorRate,
        NodeStatus::Online,
    ];

    /// The word users know from broker-monitor.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::GapInMonitoring => "GAP IN MONITORING",
            NodeStatus::Testing => "TESTING",
            NodeStatus::Offline => "OFFLINE",
            NodeStatus::NoImports => "NO IMPORTS",
            NodeStatus::ExtremeErrorRate => "EXTREME ERROR RATE",
            NodeStatus::HighErrorRate => "HIGH ERROR RATE",
            NodeStatus::LowErrorRate => "LOW ERROR RATE",
            NodeStatus::Online => "ONLINE",
        }
    }

    pub fn parse(s: &str) -> Option<NodeStatus> {
        NodeStatus::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The colour of the original status pages: red, yellow, blue or green.
    pub fn colour(self) -> &'static str {
        match self {
            NodeStatus::GapInMonitoring
            | NodeStatus::Offline
            | NodeStatus::NoImports
            | NodeStatus::ExtremeErrorRate => "red",
            NodeStatus::HighErrorRate | NodeStatus::LowErrorRate => "yellow",
            NodeStatus::Testing => "blue",
            NodeStatus::Online => "green",
        }
    }

    /// As an observation: red → crit, yellow → warn, TESTING (informational) and ONLINE → ok.
    pub fn observation_status(self) -> Status {
        match self.colour() {
            "red" => Status::Crit,
            "yellow" => Status::Warn,
            _ => Status::Ok,
        }
    }

    /// Whether this state is mailed to the node's contacts (OFFLINE and NO IMPORTS; OUTDATED
    /// is the `version` check's). Each has its own value on the `status` observation
    /// ([`NodeStatus::mail_value`]), so each is its own alert with its own mails.
    pub fn notifies(self) -> bool {
        matches!(self, NodeStatus::Offline | NodeStatus::NoImports)
    }

    /// The observation value that is 1 exactly in this (mailed) state.
    pub fn mail_value(self) -> Option<&'static str> {
        match self {
            NodeStatus::Offline => Some(crate::VALUE_OFFLINE),
            NodeStatus::NoImports => Some(crate::VALUE_NO_IMPORTS),
            _ => None,
        }
    }
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-node settings from the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `THRESHOLD_HOURS_FAILURE` (default 24, as broker-monitor's README says; its code's 72
    /// would tell a clinic of an outage three days late).
    pub failure_hours: i64,
    /// `CONSECUTIVE_IMPORT_DAYS` (default 3).
    pub consecutive_days: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure_hours: 24,
            consecutive_days: 3,
        }
    }
}

/// Whether there is a run of `n` consecutive calendar days with daily imports > 0 (samples
/// oldest first; a missing day breaks the run; unknown daily values count as 0).
pub fn has_import_run(samples: &[FleetSample], n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let mut run = 0usize;
    let mut last_day: Option<i64> = None;
    for s in samples {
        let imports = s.daily.map_or(0, |d| d.imported);
        if imports > 0 {
            run = match last_day {
                Some(d) if d + 1 == s.day && run > 0 => run + 1,
                _ => 1,
            };
            last_day = Some(s.day);
            if run >= n {
                return true;
            }
        } else {
            run = 0;
            last_day = None;
        }
    }
    false
}

/// The newest known last write of the samples (oldest first).
pub fn last_write(samples: &[FleetSample]) -> Option<Timestamp> {
    samples.iter().rev().find_map(|s| s.last_write)
}

/// The status of a node at `now`, from its daily samples (oldest first) and its last contact;
/// `None` without any sample.
pub fn evaluate(
    samples: &[FleetSample],
    last_contact: Option<Timestamp>,
    now: Timestamp,
    t: Thresholds,
) -> Option<NodeStatus> {
    let newest = samples.last()?;
    let gap = hours(newest.polled, now) > GAP_HOURS
        || samples.len() >= 2
            && hours(samples[samples.len() - 2].polled, newest.polled) > GAP_HOURS;
    if gap {
        return Some(NodeStatus::GapInMonitoring);
    }
    let n = t.consecutive_days.max(1);
    if samples.len() >= n && !has_import_run(samples, n) {
        return Some(NodeStatus::Testing);
    }
    let stale = |t0: Option<Timestamp>| t0.is_none_or(|t0| hours(t0, now) > t.failure_hours);
    if stale(last_contact) {
        return Some(NodeStatus::Offline);
    }
    // As in broker-monitor, a node that never wrote anything is not NO IMPORTS.
    if last_write(samples).is_some_and(|w| hours(w, now) > t.failure_hours) {
        return Some(NodeStatus::NoImports);
    }
    Some(match daily_rate(newest) {
        Some(r) if r >= ErrorRate(1000) => NodeStatus::ExtremeErrorRate,
        Some(r) if r >= ErrorRate(500) => NodeStatus::HighErrorRate,
        Some(r) if r >= ErrorRate(100) => NodeStatus::LowErrorRate,
        _ => NodeStatus::Online,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daily::{DAY_MS, HOUR_MS};
    use vitals_store::FleetCounts;

    fn sample(day: i64, imports: Option<i64>) -> FleetSample {
        let polled = Timestamp(day * DAY_MS + 6 * HOUR_MS);
        FleetSample {
            node: "1".into(),
            day,
            polled,
            last_contact: Some(polled),
            last_start: Timestamp(0),
            last_write: Some(polled),
            last_reject: None,
            imported: 0,
            updated: 0,
            invalid: 0,
            failed: 0,
            daily: imports.map(|i| FleetCounts {
                imported: i,
                ..FleetCounts::default()
            }),
        }
    }

    #[test]
    fn import_runs_need_consecutive_days() {
        let s = vec![sample(1, Some(5)), sample(2, Some(5)), sample(4, Some(5))];
        assert!(has_import_run(&s, 2));
        assert!(!has_import_run(&s, 3));
        let s = vec![sample(1, Some(5)), sample(2, None), sample(3, Some(5))];
        assert!(!has_import_run(&s, 2));
    }

    #[test]
    fn order_of_rules() {
        let s: Vec<_> = (10..14).map(|d| sample(d, Some(10))).collect();
        let now = s[3].polled.add_millis(HOUR_MS);
        assert_eq!(
            evaluate(&s, s[3].last_contact, now, Thresholds::default()),
            Some(NodeStatus::Online)
        );
        assert_eq!(evaluate(&[], None, now, Thresholds::default()), None);
        // No contact known at all: offline.
        assert_eq!(
            evaluate(&s, None, now, Thresholds::default()),
            Some(NodeStatus::Offline)
        );
    }
}
