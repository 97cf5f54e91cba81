//! Observations Vitals makes about silence: missed heartbeats and stale reports.
//!
//! - A heartbeat check expects a ping every `interval` (or at its `cron` times); when the next
//!   expected ping plus `grace` passes without one, Vitals records a `crit` observation *at the
//!   deadline*, once, until the next ping.
//! - A test or push check with `stale_after` that an asset has reported before but not for
//!   longer than that gets a `crit` observation on the companion check `{test}.stale`, once;
//!   when reports resume, the companion goes back to `ok`. (A companion check keeps the test's
//!   own score history free of invented scores.)
//!
//! The watcher reads the live state once a second; it keeps no state of its own beyond the
//! registry, so a restart picks up where the data says it is.

use crate::{LiveState, ModelHandle, Pipeline};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use vitals_config::{CheckConfig, ScheduleSpec};
use vitals_core::schedule::Schedule;
use vitals_core::{Observation, Status, Timestamp};

/// Reason prefix of a missed-heartbeat observation (also how the watcher recognises its own).
pub const MISSED: &str = "no ping";
/// Suffix of the companion check that carries staleness.
pub const STALE_SUFFIX: &str = ".stale";
const STALE_REASON: &str = "stale: no report for";

#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub asset: String,
    pub check: String,
    pub schedule: Schedule,
    pub grace: Duration,
    /// When the check appeared (deadline base before the first ping).
    pub since: Timestamp,
    /// The check's own ping secret (`?key=`), if it has one.
    pub key: Option<String>,
}

impl Heartbeat {
    /// When the ping after `last` is overdue.
    pub fn deadline_after(&self, last: Timestamp) -> Option<Timestamp> {
        let expected = match &self.schedule {
            Schedule::Interval { every_ms, .. } => last.add_millis(*every_ms),
            Schedule::Cron(_) => self.schedule.next_after(last)?,
        };
        Some(expected.add_duration(self.grace))
    }

    fn describe(&self) -> String {
        match &self.schedule {
            Schedule::Interval { every_ms, .. } => format!(
                "expected every {} + {} grace",
                humanize(Duration::from_millis(*every_ms as u64)),
                humanize(self.grace)
            ),
            Schedule::Cron(_) => format!(
                "expected by its cron schedule + {} grace",
                humanize(self.grace)
            ),
        }
    }
}

fn humanize(d: Duration) -> String {
    humantime_like(d.as_secs())
}

/// `1h 5m`, `30s`, `2d 3h` — coarse on purpose.
fn humantime_like(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.into_iter().take(2).collect::<Vec<_>>().join(" ")
    }
}

/// Slug → heartbeat check, plus `/start` times. Replaced on reload.
#[derive(Debug, Default)]
pub struct HeartbeatRegistry {
    by_slug: RwLock<Arc<HashMap<String, Heartbeat>>>,
    starts: Mutex<HashMap<String, Timestamp>>,
}

impl HeartbeatRegistry {
    /// Rebuilds from the configuration; checks that stay keep their `since`.
    pub fn sync<'a>(&self, checks: impl IntoIterator<Item = &'a CheckConfig>, now: Timestamp) {
        let old = self.snapshot();
        let mut map = HashMap::new();
        for c in checks {
            let Some(slug) = c.heartbeat_slug() else {
                continue;
            };
            let schedule = match &c.schedule {
                ScheduleSpec::Interval(d) => Schedule::Interval {
                    every_ms: d.as_millis() as i64,
                    phase_ms: 0,
                },
                ScheduleSpec::Cron(_) => match c.build_schedule() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(check = %c.key(), error = %e, "heartbeat schedule");
                        continue;
                    }
                },
            };
            let (grace, key) = match &c.kind {
                vitals_core::spec::CheckKind::Heartbeat(h) => (h.grace, h.key.clone()),
                _ => continue,
            };
            let since = old
                .get(&slug)
                .filter(|h| h.asset == c.asset && h.check == c.name)
                .map(|h| h.since)
                .unwrap_or(now);
            map.insert(
                slug,
                Heartbeat {
                    asset: c.asset.clone(),
                    check: c.name.clone(),
                    schedule,
                    grace,
                    since,
                    key,
                },
            );
        }
        *self.by_slug.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    pub fn snapshot(&self) -> Arc<HashMap<String, Heartbeat>> {
        self.by_slug
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, slug: &str) -> Option<Heartbeat> {
        self.snapshot().get(slug).cloned()
    }

    pub fn started(&self, slug: &str, at: Timestamp) {
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slug.to_string(), at);
    }

    pub fn take_start(&self, slug: &str) -> Option<Timestamp> {
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(slug)
    }
}

/// One pass over the state at `now`: the observations silence calls for.
pub fn silence_observations(
    state: &LiveState,
    heartbeats: &HashMap<String, Heartbeat>,
    model: &crate::Model,
    now: Timestamp,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let map = state.read();
    for hb in heartbeats.values() {
        let latest = map
            .get(&hb.asset)
            .and_then(|a| a.checks.get(&hb.check))
            .and_then(|c| c.latest.as_ref());
        if latest.is_some_and(|l| l.reason.starts_with(MISSED)) {
            continue; // already down; the next ping brings it back
        }
        let last = latest.map(|l| l.time).unwrap_or(hb.since);
        let Some(deadline) = hb.deadline_after(last) else {
            continue;
        };
        if now >= deadline {
            let silent = Duration::from_millis((deadline.0 - last.0).max(0) as u64);
            out.push(Observation::new(
                &hb.asset,
                &hb.check,
                deadline,
                Status::Crit,
                format!("{MISSED} for {} ({})", humanize(silent), hb.describe()),
            ));
        }
    }
    if model.stale_after.is_empty() {
        return out;
    }
    for (asset_id, asset) in map.iter() {
        for (check, c) in &asset.checks {
            if check.ends_with(STALE_SUFFIX) {
                continue;
            }
            let Some(limit) = model.stale_limit(asset_id, check) else {
                continue;
            };
            let Some(latest) = &c.latest else { continue };
            let companion = format!("{check}{STALE_SUFFIX}");
            let marker = asset.checks.get(&companion).and_then(|s| s.latest.as_ref());
            let is_stale = marker.is_some_and(|m| m.status == Status::Crit);
            let deadline = latest.time.add_duration(limit);
            if !is_stale && now >= deadline {
                out.push(Observation::new(
                    asset_id,
                    &companion,
                    deadline,
                    Status::Crit,
                    format!(
                        "{STALE_REASON} {} on {check} (limit {})",
                        humanize(limit),
                        humanize(limit)
                    ),
                ));
            } else if is_stale && marker.is_some_and(|m| latest.time > m.time) {
                out.push(Observation::new(
                    asset_id,
                    &companion,
                    latest.time,
                    Status::Ok,
                    format!("{check} reporting again"),
                ));
            }
        }
    }
    out
}

/// Runs [`silence_observations`] once a second until the pipeline is gone.
pub fn spawn(
    state: Arc<LiveState>,
    heartbeats: Arc<HeartbeatRegistry>,
    model: Arc<ModelHandle>,
    pipeline: Pipeline,
    beat: crate::liveness::Beat,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            beat.now();
            // Replicas: only the decider watches (it sees every replica's pings).
            if !pipeline.role().is_decider() {
                continue;
            }
            let obs =
                silence_observations(&state, &heartbeats.snapshot(), &model.get(), pipeline.now());
            if obs.is_empty() {
                continue;
            }
            // Committed before the next pass, so one silence gives one observation.
            if let Err(e) = pipeline.ingest(obs).await {
                tracing::warn!(error = %e, "could not record missed heartbeats / stale reports");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_store::AssetRecord;

    fn hb(every_s: u64, grace_s: u64) -> Heartbeat {
        Heartbeat {
            asset: "node".into(),
            check: "nightly".into(),
            schedule: Schedule::Interval {
                every_ms: every_s as i64 * 1000,
                phase_ms: 0,
            },
            grace: Duration::from_secs(grace_s),
            since: Timestamp(0),
            key: None,
        }
    }

    #[test]
    fn missed_deadline_is_reported_once_at_the_deadline() {
        let state = LiveState::new();
        state.ensure_assets(&[AssetRecord::named("node")]);
        let map: HashMap<String, Heartbeat> = [("node-nightly".to_string(), hb(60, 10))].into();
        let model = crate::Model::default();
        state.apply(vec![Observation::new(
            "node",
            "nightly",
            Timestamp(1_000),
            Status::Ok,
            "",
        )]);
        assert!(silence_observations(&state, &map, &model, Timestamp(70_999)).is_empty());
        let missed = silence_observations(&state, &map, &model, Timestamp(71_000));
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].time, Timestamp(71_000));
        assert_eq!(missed[0].status, Status::Crit);
        assert!(
            missed[0].reason.starts_with("no ping for 1m 10s"),
            "{}",
            missed[0].reason
        );
        state.apply(missed.clone());
        assert!(silence_observations(&state, &map, &model, Timestamp(500_000)).is_empty());
        // A ping brings it back and re-arms the deadline.
        state.apply(vec![Observation::new(
            "node",
            "nightly",
            Timestamp(600_000),
            Status::Ok,
            "",
        )]);
        assert!(silence_observations(&state, &map, &model, Timestamp(669_999)).is_empty());
        assert_eq!(
            silence_observations(&state, &map, &model, Timestamp(670_000)).len(),
            1
        );
    }

    #[test]
    fn never_pinged_counts_from_when_the_check_appeared() {
        let state = LiveState::new();
        let map: HashMap<String, Heartbeat> = [("s".to_string(), hb(60, 0))].into();
        assert_eq!(
            silence_observations(&state, &map, &crate::Model::default(), Timestamp(60_000)).len(),
            1
        );
    }

    #[test]
    fn stale_reports_raise_and_clear_a_companion_check() {
        let cfg = vitals_config::Config::parse(
            "[[check]]\nasset = \"n\"\nname = \"import\"\ntype = \"push\"\nstale_after = \"1h\"\n",
            &|_| None,
        )
        .unwrap();
        let model = crate::Model::from_config(&cfg);
        let state = LiveState::new();
        let none = HashMap::new();
        state.apply(vec![Observation::new(
            "n",
            "import",
            Timestamp(0),
            Status::Ok,
            "",
        )]);
        assert!(silence_observations(&state, &none, &model, Timestamp(3_599_999)).is_empty());
        let stale = silence_observations(&state, &none, &model, Timestamp(3_600_000));
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].check, "import.stale");
        assert_eq!(stale[0].status, Status::Crit);
        state.apply(stale.clone());
        assert!(silence_observations(&state, &none, &model, Timestamp(9_000_000)).is_empty());
        // A new report clears it.
        state.apply(vec![Observation::new(
            "n",
            "import",
            Timestamp(9_100_000),
            Status::Ok,
            "",
        )]);
        let back = silence_observations(&state, &none, &model, Timestamp(9_100_001));
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].status, Status::Ok);
    }

    #[test]
    fn humanized_durations() {
        assert_eq!(humantime_like(70), "1m 10s");
        assert_eq!(humantime_like(90_000), "1d 1h");
        assert_eq!(humantime_like(0), "0s");
    }
}
