//! Health scoring: score rules, per-asset health state, and population alarms.
//!
//! The model follows `shared/spec/health-scoring.md` (django-health-monitor's semantics):
//! - a *test* belongs to *groups*; posting a result gives the test a *score*;
//! - `state[group][test] = {score, updated}` — the latest score per group of the test;
//! - `severity[group] = {score, updated}` — the maximum of the group's non-zero scores, at
//!   least 1;
//! - `updated` moves only when the value changes ("last change", not "last report");
//! - `history[test]` — recent scores, newest first.
//!
//! Everything here is pure: times are passed in, and the caller persists what changed.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many recent scores per test are kept in memory for population alarms. Windows larger
/// than this are answered from storage.
pub const HISTORY_KEEP: usize = 128;

/// The typed field a score rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Int,
    Float,
    Bool,
}

/// One case of a score rule: a condition and the score it gives. No condition = default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScoreCase {
    #[serde(default)]
    pub above: Option<f64>,
    #[serde(default)]
    pub below: Option<f64>,
    #[serde(default)]
    pub at_least: Option<f64>,
    #[serde(default)]
    pub at_most: Option<f64>,
    /// A number, or for `bool` fields `true` / `false`.
    #[serde(default)]
    pub equals: Option<toml_like::Scalar>,
    pub score: i64,
}

/// Scalars as they come out of TOML (numbers or booleans), without depending on a TOML crate.
pub mod toml_like {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
    }

    impl Scalar {
        pub fn as_f64(&self) -> f64 {
            match self {
                Scalar::Bool(b) => f64::from(u8::from(*b)),
                Scalar::Int(i) => *i as f64,
                Scalar::Float(f) => *f,
            }
        }
    }
}

impl ScoreCase {
    fn has_condition(&self) -> bool {
        self.above.is_some()
            || self.below.is_some()
            || self.at_least.is_some()
            || self.at_most.is_some()
            || self.equals.is_some()
    }

    /// All given conditions must hold.
    fn matches(&self, v: f64) -> bool {
        self.above.is_none_or(|x| v > x)
            && self.below.is_none_or(|x| v < x)
            && self.at_least.is_none_or(|x| v >= x)
            && self.at_most.is_none_or(|x| v <= x)
            && self.equals.as_ref().is_none_or(|x| v == x.as_f64())
    }
}

/// `[[score]]`: how one test's results become a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRule {
    pub test: String,
    pub groups: Vec<String>,
    pub field: String,
    pub kind: FieldKind,
    /// Ordered; the first matching case wins; a case without condition matches anything.
    pub rules: Vec<ScoreCase>,
}

/// Parses a boolean the way form posts write them: 1/0, true/false, yes/no, on/off, t/f, y/n.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "t" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

impl ScoreRule {
    /// Checks the rule itself: at least one case, scores non-negative, a default last if any.
    pub fn validate(&self) -> Result<(), String> {
        if self.rules.is_empty() {
            return Err("needs at least one rule".into());
        }
        for (i, c) in self.rules.iter().enumerate() {
            if c.score < 0 {
                return Err(format!("rules[{i}].score must not be negative"));
            }
            if !c.has_condition() && i + 1 != self.rules.len() {
                return Err(format!(
                    "rules[{i}] has no condition, so the rules after it can never match; put the default last"
                ));
            }
            if self.kind == FieldKind::Bool
                && (c.above.is_some()
                    || c.below.is_some()
                    || c.at_least.is_some()
                    || c.at_most.is_some())
            {
                return Err(format!("rules[{i}]: a bool field takes only `equals`"));
            }
        }
        if self.groups.is_empty() {
            return Err("groups must name at least one group".into());
        }
        Ok(())
    }

    /// Parses a raw (form) value by the field's kind into a number (bools as 1/0).
    pub fn parse_field(&self, raw: &str) -> Result<f64, String> {
        let raw = raw.trim();
        match self.kind {
            FieldKind::Int => raw
                .parse::<i64>()
                .map(|v| v as f64)
                .map_err(|_| format!("{} must be an integer, got {raw:?}", self.field)),
            FieldKind::Float => raw
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{} must be a number, got {raw:?}", self.field)),
            FieldKind::Bool => parse_bool(raw)
                .map(|b| f64::from(u8::from(b)))
                .ok_or_else(|| {
                    format!(
                        "{} must be a boolean (true/false, 1/0, yes/no, on/off), got {raw:?}",
                        self.field
                    )
                }),
        }
    }

    /// The score of a (parsed) field value. `None` when no case matches and there is no default.
    pub fn score(&self, v: f64) -> Option<i64> {
        self.rules.iter().find(|c| c.matches(v)).map(|c| c.score)
    }
}

/// `{score, updated}`: a value and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scored {
    pub score: i64,
    pub updated: Timestamp,
}

/// A small map sorted by key, in one allocation: lookups are binary searches, an insert shifts
/// the entries after it (fine for the few, at most hundreds, an asset has). Every asset keeps
/// six of them (five here, its checks in the live state), most with one entry, where a
/// `BTreeMap` allocates a node for eleven: 10,000 assets keep ~30 MB less.
pub type SmallMap<K, V> = litemap::LiteMap<K, V>;

/// Inserts into a small map, or updates in place without allocating a key. An empty map gets
/// room for exactly one entry: a `Vec` would start at four, and most assets have one group and
/// one test (at 100,000 assets the four maps of their health kept ~55 MB of unused slots until
/// the pipeline's first copy trimmed them).
fn set_small<V>(m: &mut SmallMap<String, V>, key: &str, value: V) {
    if let Some(v) = m.get_mut(key) {
        *v = value;
        return;
    }
    if m.is_empty() {
        *m = SmallMap::with_capacity(1);
    }
    m.insert(key.to_string(), value);
}

/// The value at `key`, inserted first (as [`set_small`] does) when absent. Always `Some`.
fn small_entry<'a, V>(
    m: &'a mut SmallMap<String, V>,
    key: &str,
    make: impl FnOnce() -> V,
) -> Option<&'a mut V> {
    if !m.contains_key(key) {
        set_small(m, key, make());
    }
    m.get_mut(key)
}

/// A test's recent scores, newest first, at most [`HISTORY_KEEP`]. Scores are almost always
/// small (the status defaults are 1–4), so they are kept in one byte each until one does not
/// fit; then the whole history widens to `i64` (exact either way). 100,000 tests keep 128 B
/// each instead of 1 KB.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<i64>", into = "Vec<i64>")]
pub enum ScoreHistory {
    Narrow(VecDeque<i8>),
    Wide(VecDeque<i64>),
}

impl Clone for ScoreHistory {
    fn clone(&self) -> Self {
        match self {
            ScoreHistory::Narrow(h) => ScoreHistory::Narrow(h.clone()),
            ScoreHistory::Wide(h) => ScoreHistory::Wide(h.clone()),
        }
    }

    /// Into the same kind, the buffer is reused.
    fn clone_from(&mut self, src: &Self) {
        match (self, src) {
            (ScoreHistory::Narrow(d), ScoreHistory::Narrow(s)) => d.clone_from(s),
            (ScoreHistory::Wide(d), ScoreHistory::Wide(s)) => d.clone_from(s),
            (d, s) => *d = s.clone(),
        }
    }
}

impl Default for ScoreHistory {
    fn default() -> Self {
        ScoreHistory::Narrow(VecDeque::new())
    }
}

/// Makes room for one more at the front, exactly: a clone (the pipeline works on copies) has
/// no spare capacity, and a full history pushed before truncating would double its allocation.
fn room<T>(h: &mut VecDeque<T>) {
    if h.len() >= HISTORY_KEEP {
        h.truncate(HISTORY_KEEP - 1);
    } else if h.len() == h.capacity() {
        h.reserve_exact(HISTORY_KEEP - h.len());
    }
}

impl ScoreHistory {
    pub fn len(&self) -> usize {
        match self {
            ScoreHistory::Narrow(h) => h.len(),
            ScoreHistory::Wide(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        let (narrow, wide) = match self {
            ScoreHistory::Narrow(h) => (Some(h.iter().map(|s| i64::from(*s))), None),
            ScoreHistory::Wide(h) => (None, Some(h.iter().copied())),
        };
        narrow
            .into_iter()
            .flatten()
            .chain(wide.into_iter().flatten())
    }

    /// Adds the newest score, dropping the oldest beyond [`HISTORY_KEEP`].
    pub fn push_front(&mut self, score: i64) {
        if let ScoreHistory::Narrow(h) = self {
            match i8::try_from(score) {
                Ok(s) => {
                    room(h);
                    h.push_front(s);
                    return;
                }
                Err(_) => {
                    let mut wide = VecDeque::with_capacity(HISTORY_KEEP);
                    wide.extend(h.iter().map(|s| i64::from(*s)));
                    *self = ScoreHistory::Wide(wide);
                }
            }
        }
        if let ScoreHistory::Wide(h) = self {
            room(h);
            h.push_front(score);
        }
    }

    /// Bytes allocated (for tests of the memory budget).
    #[cfg(test)]
    fn allocated_bytes(&self) -> usize {
        match self {
            ScoreHistory::Narrow(h) => h.capacity(),
            ScoreHistory::Wide(h) => h.capacity() * 8,
        }
    }
}

impl From<&[i64]> for ScoreHistory {
    /// From newest first; keeps the newest [`HISTORY_KEEP`].
    fn from(newest_first: &[i64]) -> Self {
        let mut h = ScoreHistory::default();
        for s in newest_first.iter().take(HISTORY_KEEP).rev() {
            h.push_front(*s);
        }
        h
    }
}

impl From<Vec<i64>> for ScoreHistory {
    fn from(newest_first: Vec<i64>) -> Self {
        ScoreHistory::from(newest_first.as_slice())
    }
}

impl From<ScoreHistory> for Vec<i64> {
    fn from(h: ScoreHistory) -> Self {
        h.iter().collect()
    }
}

/// The health of one asset.
#[derive(Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct AssetHealth {
    pub state: SmallMap<String, SmallMap<String, Scored>>,
    pub severity: SmallMap<String, Scored>,
    /// Recent scores per test, newest first, at most [`HISTORY_KEEP`].
    pub history: SmallMap<String, ScoreHistory>,
    /// How many scores each test has had in total (so a window can tell when memory is short).
    pub history_len: SmallMap<String, u64>,
}

/// Makes `dst` a copy of `src` in `dst`'s allocations where they suffice (`copy` copies a
/// value into another's). The result is sorted because `src` is.
fn clone_small_from<K: Clone, V: Clone>(
    dst: &mut SmallMap<K, V>,
    src: &SmallMap<K, V>,
    copy: impl Fn(&mut V, &V),
) {
    let src = src.as_slice();
    let mut v = std::mem::take(dst).into_tuple_vec();
    v.truncate(src.len());
    for ((dk, dv), (sk, sv)) in v.iter_mut().zip(src) {
        dk.clone_from(sk);
        copy(dv, sv);
    }
    let n = v.len();
    // Exactly: a growing `Vec` would make room for four (see `set_small`).
    v.reserve_exact(src.len() - n);
    v.extend_from_slice(&src[n..]);
    *dst = SmallMap::from_sorted_store_unchecked(v);
}

impl Clone for AssetHealth {
    fn clone(&self) -> Self {
        AssetHealth {
            state: self.state.clone(),
            severity: self.severity.clone(),
            history: self.history.clone(),
            history_len: self.history_len.clone(),
        }
    }

    /// Reuses `self`'s maps, names and histories: the pipeline copies the health of every asset
    /// a round touches into the healths the round before replaced, instead of allocating ~11
    /// blocks per asset and freeing as many.
    fn clone_from(&mut self, src: &Self) {
        clone_small_from(&mut self.state, &src.state, |d, s| {
            clone_small_from(d, s, |d, s| *d = *s)
        });
        clone_small_from(&mut self.severity, &src.severity, |d, s| *d = *s);
        clone_small_from(&mut self.history, &src.history, ScoreHistory::clone_from);
        clone_small_from(&mut self.history_len, &src.history_len, |d, s| *d = *s);
    }
}

/// What one change did to the persisted health of an asset (for the store).
#[derive(Debug, Clone, PartialEq)]
pub enum HealthChange {
    State {
        group: String,
        test: String,
        value: Scored,
    },
    Severity {
        group: String,
        value: Scored,
    },
    DeleteState {
        group: String,
        test: Option<String>,
    },
    DeleteSeverity {
        group: String,
    },
    DeleteAll,
}

fn update(slot: &mut Option<Scored>, score: i64, now: Timestamp) -> Option<Scored> {
    match slot {
        Some(s) if s.score == score => None,
        _ => {
            let v = Scored {
                score,
                updated: now,
            };
            *slot = Some(v);
            Some(v)
        }
    }
}

impl AssetHealth {
    /// Severity of a group from its state: max of non-zero scores, at least 1.
    pub fn computed_severity(&self, group: &str) -> i64 {
        self.state
            .get(group)
            .map(|tests| {
                tests
                    .values()
                    .map(|s| s.score)
                    .filter(|s| *s != 0)
                    .fold(1, i64::max)
            })
            .unwrap_or(1)
    }

    fn set_severity(&mut self, group: &str, now: Timestamp, changes: &mut Vec<HealthChange>) {
        let sev = self.computed_severity(group);
        let mut slot = self.severity.get(group).copied();
        if let Some(v) = update(&mut slot, sev, now) {
            set_small(&mut self.severity, group, v);
            changes.push(HealthChange::Severity {
                group: group.to_string(),
                value: v,
            });
        }
    }

    /// Records a score of `test` (which belongs to `groups`) made at `now`.
    pub fn record(
        &mut self,
        groups: &[String],
        test: &str,
        score: i64,
        now: Timestamp,
    ) -> Vec<HealthChange> {
        let mut changes = Vec::new();
        for g in groups {
            let Some(tests) = small_entry(&mut self.state, g, SmallMap::new) else {
                continue;
            };
            let mut slot = tests.get(test).copied();
            if let Some(v) = update(&mut slot, score, now) {
                set_small(tests, test, v);
                changes.push(HealthChange::State {
                    group: g.clone(),
                    test: test.to_string(),
                    value: v,
                });
            }
            self.set_severity(g, now, &mut changes);
        }
        self.push_history(test, score);
        changes
    }

    /// Adds a score to the in-memory history only (used when loading from storage, oldest first).
    pub fn push_history(&mut self, test: &str, score: i64) {
        // Keys are allocated only for a new test: this runs for every scored observation.
        if let Some(h) = small_entry(&mut self.history, test, ScoreHistory::default) {
            h.push_front(score);
        }
        match self.history_len.get_mut(test) {
            Some(n) => *n += 1,
            None => set_small(&mut self.history_len, test, 1),
        }
    }

    /// The newest `n` scores of a test, if memory holds them all (else `None`: ask storage).
    pub fn window(&self, test: &str, n: usize) -> Option<Vec<i64>> {
        let h = self.history.get(test)?;
        let total = self.history_len.get(test).copied().unwrap_or(0) as usize;
        if h.len() >= n || h.len() == total {
            Some(h.iter().take(n).collect())
        } else {
            None
        }
    }

    /// Whether the newest `n` scores of a test fail `q`, without allocating; `None` when
    /// memory does not hold the whole window (ask storage).
    pub fn window_fails(&self, test: &str, q: &AlarmQuery) -> Option<bool> {
        let h = self.history.get(test)?;
        let total = self.history_len.get(test).copied().unwrap_or(0) as usize;
        if h.len() < q.repetition && h.len() != total {
            return None;
        }
        let mut len = 0i128;
        let mut failing = 0i128;
        for s in h.iter().take(q.repetition) {
            len += 1;
            failing += i128::from(s >= q.score);
        }
        // In i128: any i64 percentage is a valid (if odd) criterion and must not overflow.
        Some(len > 0 && 100 * failing >= i128::from(q.repetition_percent) * len)
    }

    /// `DELETE /health/{uid}/`.
    pub fn delete_all(&mut self) -> Vec<HealthChange> {
        self.state.clear();
        self.severity.clear();
        vec![HealthChange::DeleteAll]
    }

    /// `DELETE /health/{uid}/{group}/`. `Err` when the group is unknown.
    pub fn delete_group(&mut self, group: &str) -> Result<Vec<HealthChange>, String> {
        if self.state.remove(group).is_none() && self.severity.remove(group).is_none() {
            return Err(format!("group {group:?} not in health"));
        }
        self.severity.remove(group);
        Ok(vec![
            HealthChange::DeleteState {
                group: group.to_string(),
                test: None,
            },
            HealthChange::DeleteSeverity {
                group: group.to_string(),
            },
        ])
    }

    /// `DELETE /health/{uid}/{group}/{test}/`: removes the test and recomputes the severity.
    pub fn delete_test(
        &mut self,
        group: &str,
        test: &str,
        now: Timestamp,
    ) -> Result<Vec<HealthChange>, String> {
        let Some(tests) = self.state.get_mut(group) else {
            return Err(format!("group {group:?} not in health"));
        };
        if tests.remove(test).is_none() {
            return Err(format!("test {test:?} not in group {group:?}"));
        }
        let mut changes = vec![HealthChange::DeleteState {
            group: group.to_string(),
            test: Some(test.to_string()),
        }];
        self.set_severity(group, now, &mut changes);
        Ok(changes)
    }

    /// Applies a persisted row when loading (no history, no change records).
    pub fn load_state(&mut self, group: &str, test: &str, value: Scored) {
        if let Some(tests) = small_entry(&mut self.state, group, SmallMap::new) {
            set_small(tests, test, value);
        }
    }

    /// Loads a test's recent scores (newest first) from storage; `complete` when these are all
    /// the scores there are.
    pub fn load_history(&mut self, test: &str, newest_first: &[i64], complete: bool) {
        let h = ScoreHistory::from(newest_first);
        let total = if complete { h.len() as u64 } else { u64::MAX };
        set_small(&mut self.history, test, h);
        set_small(&mut self.history_len, test, total);
    }

    pub fn load_severity(&mut self, group: &str, value: Scored) {
        set_small(&mut self.severity, group, value);
    }
}

/// Parameters of a population alarm (`/health_alarm/{group}/{test}/?…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmQuery {
    /// S: a score at or above this fails.
    pub score: i64,
    /// A: the alarm answers only when at least this percent of the population fails.
    pub aggregate_percent: i64,
    /// R: window of newest scores per asset (≥ 1).
    pub repetition: usize,
    /// P: an asset fails when at least this percent of its window fails.
    pub repetition_percent: i64,
}

impl AlarmQuery {
    pub fn new(score: i64) -> Self {
        AlarmQuery {
            score,
            aggregate_percent: 0,
            repetition: 1,
            repetition_percent: 100,
        }
    }

    /// Whether an asset with this window (newest first) fails. An empty window does not.
    pub fn asset_fails(&self, window: &[i64]) -> bool {
        if window.is_empty() {
            return false;
        }
        let failing = window.iter().filter(|s| **s >= self.score).count() as i128;
        // 100·f/|W| ≥ P, in integers (i128: any i64 P, however odd, cannot overflow).
        100 * failing >= i128::from(self.repetition_percent) * window.len() as i128
    }

    /// The final step: |F| / |H| < A/100 → no alarm. In integers: 100·|F| < A·|H|.
    pub fn population_alarms(&self, failing: usize, population: usize) -> bool {
        if population == 0 || failing == 0 {
            return false;
        }
        (100 * failing as i128) >= i128::from(self.aggregate_percent) * population as i128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A health of `groups` × `tests`, each test with `scores` recorded.
    fn shaped(groups: &[&str], tests: &[&str], scores: &[i64]) -> AssetHealth {
        let mut h = AssetHealth::default();
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        for (i, s) in scores.iter().enumerate() {
            for t in tests {
                h.record(&groups, t, *s, Timestamp(i as i64 * 1000));
            }
        }
        h
    }

    #[test]
    fn clone_from_makes_an_equal_copy_whatever_was_there_before() {
        let shapes = [
            AssetHealth::default(),
            shaped(&["doctor"], &["heart"], &[1, 2, 3]),
            shaped(&["a", "b", "c"], &["x", "y"], &[4, 1]),
            shaped(&["doctor"], &["heart", "lung"], &[1, 300, 2]), // a wide history
            shaped(&["zz"], &["heart"], &[2; 200]),                // a full history
        ];
        for src in &shapes {
            for before in &shapes {
                let mut dst = before.clone();
                dst.clone_from(src);
                assert_eq!(&dst, src, "copying {src:?} over {before:?}");
                // The copy is independent of the original and keeps working.
                dst.record(&["doctor".to_string()], "heart", 4, Timestamp(999_000));
                assert_ne!(&dst, src);
            }
        }
        // Maps copied into an empty health are exact: no room for four where one is used.
        let mut dst = AssetHealth::default();
        dst.clone_from(&shapes[1]);
        assert_eq!(dst.state.into_tuple_vec().capacity(), 1);
    }

    fn heart() -> ScoreRule {
        ScoreRule {
            test: "heart".into(),
            groups: vec!["doctor".into()],
            field: "heartrate".into(),
            kind: FieldKind::Int,
            rules: vec![
                ScoreCase {
                    above: Some(120.0),
                    score: 4,
                    ..Default::default()
                },
                ScoreCase {
                    above: Some(100.0),
                    score: 3,
                    ..Default::default()
                },
                ScoreCase {
                    above: Some(80.0),
                    score: 2,
                    ..Default::default()
                },
                ScoreCase {
                    score: 1,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn score_rules_first_match_wins_at_boundaries() {
        let r = heart();
        assert!(r.validate().is_ok());
        for (hr, s) in [
            (121, 4),
            (120, 3),
            (101, 3),
            (100, 2),
            (81, 2),
            (80, 1),
            (0, 1),
        ] {
            assert_eq!(
                r.score(r.parse_field(&hr.to_string()).unwrap()),
                Some(s),
                "hr {hr}"
            );
        }
        assert!(r.parse_field("ninety").is_err());
        assert!(r.parse_field("90.5").is_err());
    }

    #[test]
    fn bool_fields_accept_the_usual_spellings() {
        let r = ScoreRule {
            test: "smoke".into(),
            groups: vec!["doctor".into()],
            field: "smokes".into(),
            kind: FieldKind::Bool,
            rules: vec![
                ScoreCase {
                    equals: Some(toml_like::Scalar::Bool(true)),
                    score: 3,
                    ..Default::default()
                },
                ScoreCase {
                    score: 1,
                    ..Default::default()
                },
            ],
        };
        for t in ["1", "true", "True", "yes", "on", "t", "Y"] {
            assert_eq!(r.score(r.parse_field(t).unwrap()), Some(3), "{t}");
        }
        for f in ["0", "false", "no", "off", "f", "N"] {
            assert_eq!(r.score(r.parse_field(f).unwrap()), Some(1), "{f}");
        }
        assert!(r.parse_field("maybe").is_err());
    }

    #[test]
    fn default_must_be_last() {
        let mut r = heart();
        r.rules.swap(0, 3);
        assert!(r.validate().unwrap_err().contains("put the default last"));
    }

    #[test]
    fn updated_moves_only_when_the_value_changes() {
        let mut h = AssetHealth::default();
        let g = vec!["doctor".to_string()];
        let c1 = h.record(&g, "heart", 2, Timestamp(1000));
        assert_eq!(c1.len(), 2); // state + severity
        let c2 = h.record(&g, "heart", 2, Timestamp(2000));
        assert!(c2.is_empty());
        assert_eq!(
            *h.state.get("doctor").unwrap().get("heart").unwrap(),
            Scored {
                score: 2,
                updated: Timestamp(1000)
            }
        );
        h.record(&g, "heart", 3, Timestamp(3000));
        assert_eq!(
            h.state.get("doctor").unwrap().get("heart").unwrap().updated,
            Timestamp(3000)
        );
        assert_eq!(
            *h.severity.get("doctor").unwrap(),
            Scored {
                score: 3,
                updated: Timestamp(3000)
            }
        );
        assert_eq!(h.window("heart", 10).unwrap(), vec![3, 2, 2]);
    }

    #[test]
    fn severity_is_max_of_nonzero_at_least_one_and_delete_recomputes() {
        let mut h = AssetHealth::default();
        let g = vec!["doctor".to_string()];
        h.record(&g, "heart", 0, Timestamp(1));
        assert_eq!(h.severity.get("doctor").unwrap().score, 1);
        h.record(&g, "sleep", 4, Timestamp(2));
        h.record(&g, "smoke", 2, Timestamp(3));
        assert_eq!(h.severity.get("doctor").unwrap().score, 4);
        h.delete_test("doctor", "sleep", Timestamp(4)).unwrap();
        assert_eq!(
            *h.severity.get("doctor").unwrap(),
            Scored {
                score: 2,
                updated: Timestamp(4)
            }
        );
        assert!(h.delete_test("doctor", "sleep", Timestamp(5)).is_err());
        assert!(h.delete_group("nurse").is_err());
        h.delete_group("doctor").unwrap();
        assert!(h.state.is_empty() && h.severity.is_empty());
    }

    #[test]
    fn windows_shorter_than_r_are_judged_on_what_they_have() {
        let q = AlarmQuery {
            score: 3,
            aggregate_percent: 0,
            repetition: 5,
            repetition_percent: 60,
        };
        assert!(!q.asset_fails(&[3, 1])); // 1 of 2 = 50 % < 60 %
        assert!(q.asset_fails(&[3, 3, 1])); // 2 of 3 = 66 % ≥ 60 %
        assert!(q.asset_fails(&[4])); // a single result is the whole window
        assert!(!q.asset_fails(&[]));
    }

    #[test]
    fn history_keeps_the_newest_in_its_first_allocation_even_through_copies() {
        let mut h = AssetHealth::default();
        for s in 0..1000i64 {
            // As the pipeline does: work on a copy, keep the copy.
            let mut copy = h.clone();
            copy.push_history("t", s);
            h = copy;
        }
        let kept = h.history.get("t").unwrap();
        assert_eq!(kept.len(), HISTORY_KEEP);
        assert_eq!(kept.iter().next(), Some(999));
        assert_eq!(kept.iter().last(), Some(1000 - HISTORY_KEEP as i64));
        assert!(
            kept.allocated_bytes() < 2 * 8 * HISTORY_KEEP,
            "{}",
            kept.allocated_bytes()
        );
        assert_eq!(*h.history_len.get("t").unwrap(), 1000);
        assert_eq!(h.window("t", 3), Some(vec![999, 998, 997]));
    }

    #[test]
    fn small_scores_take_a_byte_and_a_large_one_widens_the_history_exactly() {
        let mut h = AssetHealth::default();
        for i in 0..300i64 {
            let mut copy = h.clone();
            copy.push_history("t", i % 4 + 1);
            h = copy;
        }
        let kept = h.history.get("t").unwrap();
        assert!(matches!(kept, ScoreHistory::Narrow(_)));
        assert!(
            kept.allocated_bytes() <= HISTORY_KEEP,
            "{}",
            kept.allocated_bytes()
        );
        let before: Vec<i64> = kept.iter().collect();
        // A score beyond a byte (and the extremes) keep every older score as it was.
        for big in [1_000, i64::MIN, i64::MAX] {
            h.push_history("t", big);
        }
        let kept = h.history.get("t").unwrap();
        assert!(matches!(kept, ScoreHistory::Wide(_)));
        assert_eq!(kept.len(), HISTORY_KEEP);
        let now: Vec<i64> = kept.iter().collect();
        assert_eq!(&now[..3], &[i64::MAX, i64::MIN, 1_000]);
        assert_eq!(&now[3..], &before[..HISTORY_KEEP - 3]);
        assert_eq!(h.window("t", 2), Some(vec![i64::MAX, i64::MIN]));
        // -128 and 127 still fit a byte.
        let mut n = ScoreHistory::default();
        n.push_front(-128);
        n.push_front(127);
        assert!(matches!(n, ScoreHistory::Narrow(_)));
        assert_eq!(n.iter().collect::<Vec<_>>(), vec![127, -128]);
        // Serialised as the plain list, newest first, and back.
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "[127,-128]");
        assert_eq!(serde_json::from_str::<ScoreHistory>(&json).unwrap(), n);
    }

    #[test]
    fn a_first_score_allocates_one_slot_per_map() {
        let mut h = AssetHealth::default();
        h.record(&["g".to_string()], "t", 2, Timestamp(1));
        h.record(&["g".to_string()], "t", 3, Timestamp(2));
        let state = std::mem::take(&mut h.state).into_tuple_vec();
        assert_eq!((state.len(), state.capacity()), (1, 1));
        let tests = state.into_iter().next().map(|(_, t)| t.into_tuple_vec());
        assert_eq!(tests.map(|t| t.capacity()), Some(1));
        assert_eq!(
            std::mem::take(&mut h.severity).into_tuple_vec().capacity(),
            1
        );
        assert_eq!(
            std::mem::take(&mut h.history).into_tuple_vec().capacity(),
            1
        );
        assert_eq!(
            std::mem::take(&mut h.history_len)
                .into_tuple_vec()
                .capacity(),
            1
        );
        // A second group and test still work (the maps grow as usual).
        let mut h = AssetHealth::default();
        h.record(&["a".to_string(), "b".to_string()], "t", 3, Timestamp(1));
        h.record(&["a".to_string()], "u", 4, Timestamp(2));
        assert_eq!(h.state.get("a").map(|t| t.len()), Some(2));
        assert_eq!(h.severity.get("a").map(|s| s.score), Some(4));
        assert_eq!(h.severity.get("b").map(|s| s.score), Some(3));
        assert_eq!(h.window("u", 1), Some(vec![4]));
    }

    #[test]
    fn window_fails_agrees_with_window() {
        let mut h = AssetHealth::default();
        for s in [1, 3, 4, 1, 3] {
            h.push_history("t", s);
        }
        for r in 1..7 {
            for p in [0, 40, 50, 60, 100] {
                let q = AlarmQuery {
                    score: 3,
                    aggregate_percent: 0,
                    repetition: r,
                    repetition_percent: p,
                };
                assert_eq!(
                    h.window_fails("t", &q),
                    h.window("t", r).map(|w| q.asset_fails(&w)),
                    "r {r} p {p}"
                );
            }
        }
        assert_eq!(h.window_fails("none", &AlarmQuery::new(3)), None);
    }

    #[test]
    fn p_and_a_boundaries_are_inclusive() {
        let q = AlarmQuery {
            score: 3,
            aggregate_percent: 50,
            repetition: 4,
            repetition_percent: 50,
        };
        assert!(q.asset_fails(&[3, 3, 1, 1])); // exactly 50 %
        assert!(!q.asset_fails(&[3, 1, 1, 1])); // 25 %
        assert!(q.asset_fails(&[4, 1])); // 50 % of a short window
        assert!(q.population_alarms(2, 4)); // exactly 50 %
        assert!(!q.population_alarms(1, 4));
        assert!(!q.population_alarms(0, 0));
        let any = AlarmQuery::new(3);
        assert!(any.population_alarms(1, 1000)); // A = 0: any failing asset alarms
    }
}
