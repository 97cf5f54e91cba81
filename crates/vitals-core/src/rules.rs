//! Rules: when does a stream of observations become an alert, and when does it end?
//!
//! A [`Condition`] turns each observation of a matching check into *bad* or *good*; a
//! [`Trigger`] says how much bad makes an alert fire (N consecutive, M of the last N, or bad for
//! a duration) and how much good resolves it (K consecutive). [`Tracker`] keeps the little state
//! one (rule, asset, check) needs and answers, for each observation, what changed. Pure: time is
//! the observation's.

use crate::{Observation, Status, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Which checks a rule looks at. Every given list must match (empty = any).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Selector {
    pub assets: Vec<String>,
    /// Asset id prefixes (e.g. `clinic-`).
    pub asset_prefixes: Vec<String>,
    pub groups: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub checks: Vec<String>,
    /// Assets in any of these groups never match.
    #[serde(default)]
    pub exclude_groups: Vec<String>,
}

impl Selector {
    pub fn matches(
        &self,
        asset: &str,
        groups: &[String],
        labels: &BTreeMap<String, String>,
        check: &str,
    ) -> bool {
        !self.exclude_groups.iter().any(|g| groups.contains(g))
            && (self.assets.is_empty() || self.assets.iter().any(|a| a == asset))
            && (self.asset_prefixes.is_empty()
                || self
                    .asset_prefixes
                    .iter()
                    .any(|p| asset.starts_with(p.as_str())))
            && (self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g)))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && (self.checks.is_empty() || self.checks.iter().any(|c| glob(c, check)))
    }
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// What makes one observation bad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// Status at least this bad (`warn` counts warn and crit; `crit` only crit). Unknown counts
    /// as bad for `warn`.
    Status { at_least: Status },
    /// A named value above / below a limit (either or both). A missing value is not bad.
    Threshold {
        value: String,
        above: Option<f64>,
        below: Option<f64>,
    },
}

impl Condition {
    /// `Some(true)` bad, `Some(false)` good, `None` the observation says nothing about it.
    pub fn judge(&self, o: &Observation) -> Option<bool> {
        match self {
            Condition::Status { at_least } => Some(match at_least {
                Status::Crit => o.status == Status::Crit,
                Status::Warn | Status::Unknown => o.status != Status::Ok,
                Status::Ok => true,
            }),
            Condition::Threshold {
                value,
                above,
                below,
            } => {
                let v = o.value(value)?;
                Some(above.is_some_and(|a| v > a) || below.is_some_and(|b| v < b))
            }
        }
    }
}

/// How much bad fires and how much good resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Bad observations needed (N) …
    pub count: usize,
    /// … among the last `of_last` (M ≥ N); equal to `count` means consecutive.
    pub of_last: usize,
    /// Or: bad continuously for at least this long (the first bad observation starts it).
    pub for_duration: Option<Duration>,
    /// Consecutive good observations that resolve a firing alert (K).
    pub recover: usize,
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger {
            count: 1,
            of_last: 1,
            for_duration: None,
            recover: 1,
        }
    }
}

/// What an observation did to a (rule, asset, check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changed.
    Same,
    /// Bad, but not enough yet: an alert is pending.
    Pending,
    /// The trigger is met: fire.
    Fire,
    /// Good enough for long enough: resolve.
    Resolve,
    /// Good again before the trigger was met: the pending alert is dropped.
    Cleared,
}

/// The state of one (rule, asset, check).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tracker {
    /// Recent judgements, newest last, at most `of_last`.
    window: VecDeque<bool>,
    /// Start of the current run of bad observations.
    bad_since: Option<Timestamp>,
    good_run: usize,
    pub firing: bool,
    pub pending: bool,
}

impl Tracker {
    /// A tracker for an alert already firing (restored after a restart).
    pub fn firing() -> Self {
        Tracker {
            firing: true,
            ..Tracker::default()
        }
    }

    pub fn observe(&mut self, t: &Trigger, bad: bool, at: Timestamp) -> Verdict {
        self.window.push_back(bad);
        while self.window.len() > t.of_last.max(t.count).max(1) {
            self.window.pop_front();
        }
        if bad {
            self.good_run = 0;
            if self.bad_since.is_none() {
                self.bad_since = Some(at);
            }
        } else {
            self.good_run += 1;
            self.bad_since = None;
            // Consecutive mode: a good observation breaks the run.
            if t.of_last <= t.count {
                self.window.clear();
            }
        }
        if self.firing {
            if !bad && self.good_run >= t.recover.max(1) {
                self.firing = false;
                self.pending = false;
                self.window.clear();
                return Verdict::Resolve;
            }
            return Verdict::Same;
        }
        if self.met(t, at) {
            self.firing = true;
            self.pending = false;
            return Verdict::Fire;
        }
        if bad {
            let was = self.pending;
            self.pending = true;
            return if was { Verdict::Same } else { Verdict::Pending };
        }
        // A good observation: pending stays only while the M-of-N window still holds bad ones.
        if self.pending && !self.window.iter().any(|b| *b) {
            self.pending = false;
            return Verdict::Cleared;
        }
        Verdict::Same
    }

    /// Time passing alone can fire a `for_duration` trigger.
    pub fn tick(&mut self, t: &Trigger, now: Timestamp) -> Verdict {
        if !self.firing && t.for_duration.is_some() && self.met(t, now) {
            self.firing = true;
            self.pending = false;
            return Verdict::Fire;
        }
        Verdict::Same
    }

    fn met(&self, t: &Trigger, now: Timestamp) -> bool {
        match t.for_duration {
            Some(d) => self
                .bad_since
                .is_some_and(|s| now.0 - s.0 >= d.as_millis() as i64),
            None => self.window.iter().filter(|b| **b).count() >= t.count.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(t: &Trigger, seq: &[bool]) -> Vec<Verdict> {
        let mut tr = Tracker::default();
        seq.iter()
            .enumerate()
            .map(|(i, b)| tr.observe(t, *b, Timestamp(i as i64 * 1000)))
            .collect()
    }

    #[test]
    fn three_consecutive_then_two_good() {
        let t = Trigger {
            count: 3,
            of_last: 3,
            for_duration: None,
            recover: 2,
        };
        use Verdict::*;
        assert_eq!(
            run(
                &t,
                &[true, true, false, true, true, true, false, true, false, false]
            ),
            vec![Pending, Same, Cleared, Pending, Same, Fire, Same, Same, Same, Resolve]
        );
    }

    #[test]
    fn m_of_n() {
        let t = Trigger {
            count: 3,
            of_last: 5,
            for_duration: None,
            recover: 1,
        };
        use Verdict::*;
        assert_eq!(
            run(&t, &[true, false, true, false, true]),
            vec![Pending, Same, Same, Same, Fire]
        );
        // 2 of 5 never fires.
        assert!(!run(&t, &[true, false, false, true, false, false, true, false]).contains(&Fire));
    }

    #[test]
    fn for_duration_fires_on_time_alone() {
        let t = Trigger {
            count: 1,
            of_last: 1,
            for_duration: Some(Duration::from_secs(60)),
            recover: 1,
        };
        let mut tr = Tracker::default();
        assert_eq!(tr.observe(&t, true, Timestamp(0)), Verdict::Pending);
        assert_eq!(tr.tick(&t, Timestamp(59_999)), Verdict::Same);
        assert_eq!(tr.tick(&t, Timestamp(60_000)), Verdict::Fire);
        assert_eq!(tr.observe(&t, false, Timestamp(61_000)), Verdict::Resolve);
    }

    #[test]
    fn conditions() {
        let mut o = Observation::new("a", "c", Timestamp(0), Status::Warn, "");
        assert_eq!(
            Condition::Status {
                at_least: Status::Crit
            }
            .judge(&o),
            Some(false)
        );
        assert_eq!(
            Condition::Status {
                at_least: Status::Warn
            }
            .judge(&o),
            Some(true)
        );
        let th = Condition::Threshold {
            value: "cert_days_left".into(),
            above: None,
            below: Some(14.0),
        };
        assert_eq!(th.judge(&o), None);
        o.values.push(crate::Value::new("cert_days_left", 13.5));
        assert_eq!(th.judge(&o), Some(true));
    }

    #[test]
    fn selectors_and_globs() {
        let s = Selector {
            groups: vec!["clinics".into()],
            checks: vec!["import*".into()],
            labels: [("env".to_string(), "prod".to_string())].into(),
            ..Default::default()
        };
        let not_clinics = Selector {
            exclude_groups: vec!["clinics".into()],
            ..Default::default()
        };
        assert!(!not_clinics.matches("n1", &["clinics".into()], &BTreeMap::new(), "x"));
        assert!(not_clinics.matches("n1", &["platform".into()], &BTreeMap::new(), "x"));
        let labels: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        assert!(s.matches("n1", &["clinics".into()], &labels, "import.stale"));
        assert!(!s.matches("n1", &["clinics".into()], &BTreeMap::new(), "import"));
        assert!(!s.matches("n1", &["other".into()], &labels, "import"));
        assert!(glob("*.stale", "import.stale") && !glob("*.stale", "import"));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy"));
    }

    proptest! {
        /// Never fires before N bad observations have been seen.
        #[test]
        fn never_fires_before_n(n in 1usize..6, seq in proptest::collection::vec(any::<bool>(), 0..40)) {
            let t = Trigger { count: n, of_last: n, for_duration: None, recover: 1 };
            let mut tr = Tracker::default();
            let mut bad_seen = 0;
            for (i, b) in seq.iter().enumerate() {
                if *b { bad_seen += 1; }
                let v = tr.observe(&t, *b, Timestamp(i as i64));
                if v == Verdict::Fire {
                    prop_assert!(bad_seen >= n);
                    // and the last n were all bad (consecutive)
                    prop_assert!(seq[..=i].iter().rev().take(n).all(|x| *x));
                }
            }
        }

        /// A firing alert always resolves after K consecutive good observations.
        #[test]
        fn always_resolves_after_recovery(k in 1usize..5, prefix in proptest::collection::vec(any::<bool>(), 0..20)) {
            let t = Trigger { count: 1, of_last: 1, for_duration: None, recover: k };
            let mut tr = Tracker::default();
            let mut i = 0i64;
            for b in &prefix { tr.observe(&t, *b, Timestamp(i)); i += 1; }
            tr.observe(&t, true, Timestamp(i)); i += 1;
            prop_assert!(tr.firing);
            let mut resolved_at = None;
            for j in 0..k {
                if tr.observe(&t, false, Timestamp(i)) == Verdict::Resolve { resolved_at = Some(j + 1); }
                i += 1;
            }
            prop_assert_eq!(resolved_at, Some(k));
            prop_assert!(!tr.firing);
        }
    }
}
