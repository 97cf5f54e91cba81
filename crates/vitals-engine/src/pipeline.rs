//! `[[pipeline]]`: stages in order, each an existing check (pushed counts, heartbeats, SQL
//! counts, polled endpoints) with expectations. The pipeline is an asset whose check `stages`
//! names the first stage that is wrong: "stuck at transform: nothing in for 40 min; 1,204
//! waiting". Per stage the evaluation records throughput, backlog and lag (sparklines).

use crate::store::{EngineStore, StageSample};
use std::sync::Arc;
use vitals_config::engine::{PipelineConfig, StageConfig};
use vitals_core::{Component, Observation, Status, Timestamp, Value};
use vitals_scheduler::LiveState;
use vitals_store::{AssetRecord, ObservationQuery, Store};

/// The check of a pipeline's asset.
pub const CHECK_STAGES: &str = "stages";
/// Observations of a stage's check read per evaluation at most.
const READ_LIMIT: usize = 10_000;

/// What one stage looks like now.
#[derive(Debug, Clone, PartialEq)]
pub struct StageVerdict {
    pub status: Status,
    /// What is wrong, in words (empty when all is well).
    pub problems: Vec<String>,
    /// Stuck (nothing comes in, or nothing reports) rather than failing.
    pub stuck: bool,
    pub records_in: Option<f64>,
    pub records_out: Option<f64>,
    pub rejects: Option<f64>,
    pub backlog: Option<f64>,
    pub lag: Option<f64>,
}

/// Facts about a stage's check gathered for one evaluation.
#[derive(Debug, Clone, Default)]
pub struct StageFacts {
    /// The check's newest observation.
    pub latest: Option<Observation>,
    /// Sums over the observations since the last evaluation.
    pub records_in: Option<f64>,
    pub records_out: Option<f64>,
    pub rejects: Option<f64>,
    /// When records last came in (`records_in` > 0).
    pub last_in: Option<Timestamp>,
    /// Vitals has watched this pipeline for less than the stage's grace, so a stage that has
    /// never reported is not yet overdue (right after start-up, or after the pipeline was added).
    pub in_grace: bool,
}

/// Judges a stage (pure).
pub fn evaluate(st: &StageConfig, f: &StageFacts, now: Timestamp) -> StageVerdict {
    let value = |name: &Option<String>| -> Option<f64> {
        name.as_ref()
            .and_then(|n| f.latest.as_ref().and_then(|o| o.value(n)))
    };
    let mut v = StageVerdict {
        status: Status::Ok,
        problems: Vec::new(),
        stuck: false,
        records_in: f.records_in,
        records_out: f.records_out,
        rejects: f.rejects,
        backlog: value(&st.backlog),
        lag: value(&st.lag),
    };
    let Some(latest) = &f.latest else {
        v.problems.push("no report yet".into());
        if f.in_grace {
            v.status = Status::Unknown;
        } else {
            v.status = Status::Crit;
            v.stuck = true;
        }
        return v;
    };
    if let Some(max) = st.max_silence {
        let since = f.last_in.map_or(i64::MAX, |t| now.0 - t.0);
        if since > max.as_millis() as i64 {
            v.stuck = true;
            v.problems.push(match f.last_in {
                Some(_) => format!("nothing in for {}", minutes(since)),
                None => "nothing in yet".into(),
            });
        }
    }
    if let Some(max) = st.max_age {
        let age = now.0 - latest.time.0;
        if age > max.as_millis() as i64 {
            v.stuck = true;
            v.problems.push(format!("no report for {}", minutes(age)));
        }
    }
    if latest.status == Status::Crit {
        v.problems.push(if latest.reason.is_empty() {
            "check failing".into()
        } else {
            format!("check failing: {}", latest.reason)
        });
    }
    if let (Some(max), Some(r)) = (st.max_rejects, f.rejects) {
        if r > max {
            v.problems.push(format!("{} rejected", thousands(r)));
        }
    }
    if let (Some(max), Some(l)) = (st.max_lag, v.lag) {
        if l > max {
            v.problems
                .push(format!("{} behind", minutes((l * 1000.0) as i64)));
        }
    }
    let backlog_over = matches!((st.max_backlog, v.backlog), (Some(m), Some(b)) if b > m);
    if !v.problems.is_empty() || backlog_over {
        if let Some(b) = v.backlog {
            v.problems.push(format!("{} waiting", thousands(b)));
        }
        v.status = Status::Crit;
    }
    v
}

/// The pipeline's status and reason from its stages' verdicts in order: the first stage that is
/// wrong; a stage still awaiting its first report only when nothing is wrong.
pub fn summarise(stages: &[(String, StageVerdict)]) -> (Status, String) {
    let wrong = stages
        .iter()
        .find(|(_, v)| matches!(v.status, Status::Warn | Status::Crit));
    if wrong.is_none() {
        if let Some((name, _)) = stages.iter().find(|(_, v)| v.status == Status::Unknown) {
            return (
                Status::Unknown,
                format!("waiting for the first report of {name}"),
            );
        }
    }
    match wrong {
        Some((name, v)) => (
            v.status,
            format!(
                "{} at {name}: {}",
                if v.stuck { "stuck" } else { "failing" },
                v.problems.join("; ")
            ),
        ),
        None => (Status::Ok, format!("all {} stages flowing", stages.len())),
    }
}

/// "40 min", "2 h 5 min", "45 s".
pub fn minutes(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 * 2 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    } else {
        format!("{} days", s / 86_400)
    }
}

/// 1204 → "1,204" (whole numbers; fractions are rounded).
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    // A comma before every digit whose distance from the end is a multiple of three.
    let first = digits.len() % 3;
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 3 == first {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A pipeline at work: reads its stages' checks, judges them, reports.
pub struct Pipeline {
    pub cfg: PipelineConfig,
    store: Arc<dyn EngineStore>,
    /// Where the last evaluation read up to.
    read_to: std::sync::Mutex<Option<Timestamp>>,
    /// This process's first evaluation: the start of every stage's grace for a first report.
    first: std::sync::OnceLock<Timestamp>,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig, store: Arc<dyn EngineStore>) -> Pipeline {
        Pipeline {
            cfg,
            store,
            read_to: std::sync::Mutex::new(None),
            first: std::sync::OnceLock::new(),
        }
    }

    pub fn asset(&self) -> AssetRecord {
        AssetRecord {
            id: self.cfg.id.clone(),
            name: self.cfg.name.clone().unwrap_or_else(|| self.cfg.id.clone()),
            groups: vec![self.cfg.group.clone().unwrap_or_else(|| "pipelines".into())],
            labels: Default::default(),
            parents: vec![],
            metadata: serde_json::Map::from_iter([(
                "engine".to_string(),
                serde_json::Value::String("pipeline".into()),
            )]),
        }
    }

    /// One evaluation: the pipeline's observation.
    pub async fn evaluate(
        &self,
        now: Timestamp,
        state: &LiveState,
        obs_store: &dyn Store,
    ) -> Observation {
        let from = {
            let g = self.read_to.lock().unwrap_or_else(|e| e.into_inner());
            // The first evaluation looks back one interval (and at most a day for last_in).
            g.unwrap_or(now.add_millis(-(self.cfg.interval.as_millis() as i64)))
        };
        let watched = now.0 - self.first.get_or_init(|| now).0;
        let mut verdicts: Vec<(String, StageVerdict)> = Vec::new();
        let mut samples = Vec::new();
        for st in &self.cfg.stages {
            let mut facts = self.facts(st, from, now, state, obs_store).await;
            facts.in_grace = watched < self.grace(st);
            let v = evaluate(st, &facts, now);
            samples.push(StageSample {
                time: now,
                pipeline: self.cfg.id.clone(),
                stage: st.name.clone(),
                status: v.status.as_str().to_string(),
                records_in: v.records_in,
                records_out: v.records_out,
                backlog: v.backlog,
                lag: v.lag,
            });
            verdicts.push((st.name.clone(), v));
        }
        *self.read_to.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        if let Err(e) = self.store.record_stage_samples(&samples) {
            tracing::error!(pipeline = %self.cfg.id, error = %e, "engine: storing stage samples failed");
        }
        let (status, reason) = summarise(&verdicts);
        let mut o = Observation::new(&self.cfg.id, CHECK_STAGES, now, status, reason);
        for (name, v) in &verdicts {
            o.components.push(Component {
                name: name.clone(),
                status: v.status,
                value: v.backlog.map(thousands),
                output: v.problems.join("; "),
            });
            for (k, x) in [
                ("in", v.records_in),
                ("out", v.records_out),
                ("backlog", v.backlog),
                ("lag_s", v.lag),
            ] {
                if let Some(x) = x {
                    o.values.push(Value::new(format!("{name}.{k}"), x));
                }
            }
        }
        o
    }

    /// How long a stage may go without its first report once Vitals watches the pipeline: its
    /// longest silence limit, and at least two evaluations.
    fn grace(&self, st: &StageConfig) -> i64 {
        [st.max_silence, st.max_age]
            .into_iter()
            .flatten()
            .chain([self.cfg.interval * 2])
            .max()
            .map_or(0, |d| d.as_millis() as i64)
    }

    async fn facts(
        &self,
        st: &StageConfig,
        from: Timestamp,
        now: Timestamp,
        state: &LiveState,
        obs_store: &dyn Store,
    ) -> StageFacts {
        let latest = state.asset(&st.asset).and_then(|a| {
            a.checks
                .get(&st.check)
                .and_then(|c| c.latest.as_deref().cloned())
        });
        let mut f = StageFacts {
            latest,
            ..Default::default()
        };
        let mut last_in = self.store.stage_mark(&self.cfg.id, &st.name).ok().flatten();
        let counted = st.records_in.is_some() || st.records_out.is_some() || st.rejects.is_some();
        if counted {
            // Since the last evaluation; the very first one also finds when records last came in.
            let look_from = if last_in.is_none() {
                now.add_millis(-86_400_000)
            } else {
                from
            };
            let q = ObservationQuery {
                asset: st.asset.clone(),
                check: Some(st.check.clone()),
                from: Some(look_from),
                to: None,
                limit: READ_LIMIT,
            };
            match obs_store.observations(&q).await {
                Ok(list) => {
                    let sum = |name: &Option<String>| -> Option<f64> {
                        let n = name.as_ref()?;
                        Some(
                            list.iter()
                                .filter(|o| o.time > from)
                                .filter_map(|o| o.value(n))
                                .sum(),
                        )
                    };
                    f.records_in = sum(&st.records_in);
                    f.records_out = sum(&st.records_out);
                    f.rejects = sum(&st.rejects);
                    if let Some(n) = &st.records_in {
                        let newest = list
                            .iter()
                            .filter(|o| o.value(n).is_some_and(|v| v > 0.0))
                            .map(|o| o.time)
                            .max();
                        if let Some(t) = newest {
                            if last_in.is_none_or(|l| t > l) {
                                last_in = Some(t);
                                if let Err(e) = self.store.set_stage_mark(&self.cfg.id, &st.name, t)
                                {
                                    tracing::error!(error = %e, "engine: storing a stage mark failed");
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(pipeline = %self.cfg.id, stage = %st.name, error = %e, "engine: reading stage observations failed")
                }
            }
        }
        f.last_in = last_in;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stage() -> StageConfig {
        StageConfig {
            name: "transform".into(),
            asset: "etl".into(),
            check: "transform".into(),
            records_in: Some("in".into()),
            records_out: Some("out".into()),
            rejects: Some("rejects".into()),
            backlog: Some("waiting".into()),
            lag: None,
            max_silence: Some(Duration::from_secs(30 * 60)),
            max_age: Some(Duration::from_secs(3600)),
            max_backlog: Some(5000.0),
            max_rejects: Some(10.0),
            max_lag: None,
        }
    }

    fn obs(t: i64, waiting: f64) -> Observation {
        let mut o = Observation::new("etl", "transform", Timestamp(t), Status::Ok, "");
        o.values = vec![Value::new("in", 0.0), Value::new("waiting", waiting)];
        o
    }

    #[test]
    fn a_stage_with_nothing_in_is_stuck_and_says_how_long_and_how_many_wait() {
        let now = Timestamp(100 * 60_000);
        let f = StageFacts {
            latest: Some(obs(now.0 - 60_000, 1204.0)),
            records_in: Some(0.0),
            last_in: Some(Timestamp(now.0 - 40 * 60_000)),
            ..Default::default()
        };
        let v = evaluate(&stage(), &f, now);
        assert_eq!(v.status, Status::Crit);
        assert!(v.stuck);
        let (s, reason) = summarise(&[
            (
                "extract".into(),
                evaluate(
                    &StageConfig {
                        max_silence: None,
                        ..stage()
                    },
                    &StageFacts {
                        latest: Some(obs(now.0, 0.0)),
                        ..Default::default()
                    },
                    now,
                ),
            ),
            ("transform".into(), v),
        ]);
        assert_eq!(s, Status::Crit);
        assert_eq!(
            reason,
            "stuck at transform: nothing in for 40 min; 1,204 waiting"
        );
    }

    #[test]
    fn a_flowing_stage_is_ok_and_limits_are_named() {
        let now = Timestamp(100 * 60_000);
        let ok = StageFacts {
            latest: Some(obs(now.0 - 60_000, 10.0)),
            records_in: Some(50.0),
            last_in: Some(Timestamp(now.0 - 60_000)),
            ..Default::default()
        };
        assert_eq!(evaluate(&stage(), &ok, now).status, Status::Ok);
        let rejecting = StageFacts {
            rejects: Some(12.0),
            ..ok.clone()
        };
        let v = evaluate(&stage(), &rejecting, now);
        assert_eq!(v.problems, vec!["12 rejected", "10 waiting"]);
        assert!(!v.stuck);
        assert_eq!(
            summarise(&[("load".into(), v)]).1,
            "failing at load: 12 rejected; 10 waiting"
        );
        let silent = StageFacts { latest: None, ..ok };
        let v = evaluate(&stage(), &silent, now);
        assert_eq!(
            (v.status, v.problems),
            (Status::Crit, vec!["no report yet".into()])
        );
    }

    #[test]
    fn a_stage_not_yet_heard_from_waits_out_its_grace_behind_real_problems() {
        let now = Timestamp(100 * 60_000);
        let new = StageFacts {
            in_grace: true,
            ..Default::default()
        };
        let v = evaluate(&stage(), &new, now);
        assert_eq!(v.status, Status::Unknown);
        assert!(!v.stuck);
        assert_eq!(
            summarise(&[("extract".into(), v.clone())]),
            (
                Status::Unknown,
                "waiting for the first report of extract".into()
            )
        );
        let failing = evaluate(
            &stage(),
            &StageFacts {
                latest: Some(obs(now.0, 0.0)),
                records_in: Some(10.0),
                last_in: Some(now),
                rejects: Some(50.0),
                ..Default::default()
            },
            now,
        );
        let (s, reason) = summarise(&[("extract".into(), v), ("load".into(), failing)]);
        assert_eq!(s, Status::Crit);
        assert!(
            reason.starts_with("failing at load: 50 rejected"),
            "{reason}"
        );
    }

    #[test]
    fn numbers_read_like_people_write_them() {
        assert_eq!(thousands(1204.0), "1,204");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(minutes(40 * 60_000), "40 min");
        assert_eq!(minutes(125 * 60_000), "2 h 5 min");
        assert_eq!(minutes(30_000), "30 s");
    }
}
