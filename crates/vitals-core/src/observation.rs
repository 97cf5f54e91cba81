//! One outcome of one check at one time. A failed probe is an observation, never an error.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// The status of an observation or component.
///
/// Aggregation ("the worst of") uses [`Status::rank`]: `ok < unknown < warn < crit`, so a
/// component without a verdict never outranks a real warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Crit,
    Unknown,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warn, Status::Crit, Status::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Crit => "crit",
            Status::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s.to_ascii_lowercase().as_str() {
            "ok" => Some(Status::Ok),
            "warn" | "warning" => Some(Status::Warn),
            "crit" | "critical" => Some(Status::Crit),
            "unknown" => Some(Status::Unknown),
            _ => None,
        }
    }

    /// Severity order for aggregation: ok 0, unknown 1, warn 2, crit 3.
    pub fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Unknown => 1,
            Status::Warn => 2,
            Status::Crit => 3,
        }
    }

    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The default score of a status when no score rule applies (documented in the README):
    /// ok 1, warn 2, crit 3, unknown 4.
    pub fn default_score(self) -> i64 {
        match self {
            Status::Ok => 1,
            Status::Warn => 2,
            Status::Crit => 3,
            Status::Unknown => 4,
        }
    }

    /// Nagios plugin exit code: 0 ok, 1 warn, 2 crit, 3 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Crit => 2,
            Status::Unknown => 3,
        }
    }

    /// The status a Nagios plugin exit code means; anything but 0–2 is unknown.
    pub fn from_exit_code(code: i32) -> Status {
        match code {
            0 => Status::Ok,
            1 => Status::Warn,
            2 => Status::Crit,
            _ => Status::Unknown,
        }
    }

    /// Compact code used by storage backends (stable: never renumber).
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Crit => 2,
            Status::Unknown => 3,
        }
    }

    pub fn from_code(code: u8) -> Status {
        match code {
            0 => Status::Ok,
            1 => Status::Warn,
            2 => Status::Crit,
            _ => Status::Unknown,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named numeric value of an observation: a latency phase, a counter, a perfdata sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub name: String,
    pub value: f64,
}

impl Value {
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Value {
            name: name.into(),
            value,
        }
    }
}

/// The result of one named dependency inside an observation, e.g. `MinLog2 database : OK`
/// from a `/monitor?details` body, or `db` from a Spring actuator health document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub status: Status,
    /// Observed value as text (e.g. `"250"` with unit `"ms"`), when the format has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Free text from the target (e.g. the text after `FAIL`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// One outcome of one check at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub asset: String,
    pub check: String,
    pub time: Timestamp,
    pub status: Status,
    pub score: i64,
    /// Wall time the check took, in microseconds (0 for pushed results without one).
    pub duration_us: u64,
    /// Short, stable, human-readable reason. Volatile numbers belong in `values`, so that
    /// identical reasons can be stored once.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

impl Observation {
    /// A new observation whose score is the status' default score.
    pub fn new(
        asset: impl Into<String>,
        check: impl Into<String>,
        time: Timestamp,
        status: Status,
        reason: impl Into<String>,
    ) -> Self {
        Observation {
            asset: asset.into(),
            check: check.into(),
            time,
            status,
            score: status.default_score(),
            duration_us: 0,
            reason: reason.into(),
            values: Vec::new(),
            components: Vec::new(),
        }
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.name == name).map(|v| v.value)
    }
}

/// The worst status of a list of components, or `None` for an empty list.
pub fn worst_component(components: &[Component]) -> Option<Status> {
    components.iter().map(|c| c.status).reduce(Status::worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_orders_crit_over_warn_over_unknown_over_ok() {
        assert_eq!(Status::Ok.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Unknown.worst(Status::Warn), Status::Warn);
        assert_eq!(Status::Crit.worst(Status::Warn), Status::Crit);
        assert_eq!(Status::Warn.worst(Status::Ok), Status::Warn);
    }

    #[test]
    fn codes_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), s);
            assert_eq!(Status::from_exit_code(s.exit_code()), s);
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::from_exit_code(7), Status::Unknown);
    }
}
