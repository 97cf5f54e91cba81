//! Continuous SLA checks: follow service SLA logs like `tail -F` (surviving rotation and
//! truncation) and turn every evaluation period into one observation per operation, `crit` when
//! a percentile target is broken, so rules alert on it and the UI can chart it.
//!
//! Lines are parsed by `vitals-sla` (the same parser as `vitals sla`); malformed lines are
//! counted, never fatal.

use crate::Pipeline;
use std::collections::HashMap;
use std::time::Duration;
use vitals_config::SlaConfig;
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_sla::Target;

/// The follower lives in `vitals-probe`, shared with the `log` check.
pub use vitals_probe::follow::Follower;

#[derive(Default)]
struct OpStats {
    durations: Vec<u64>,
    errors: u64,
}

/// Aggregates one period.
#[derive(Default)]
pub struct Period {
    ops: HashMap<String, OpStats>,
    pub malformed: u64,
}

impl Period {
    pub fn add_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match vitals_sla::parse::parse_line(line) {
            Ok(l) => {
                let lp = String::from_utf8_lossy(l.log_point);
                let op = match (lp.as_ref(), l.uniq_id) {
                    ("DB_Operation", Some(u)) => {
                        format!("DB_Operation:{}", String::from_utf8_lossy(u))
                    }
                    _ => lp.into_owned(),
                };
                let s = self.ops.entry(op).or_default();
                s.durations.push(l.duration_us);
                if !l.ok {
                    s.errors += 1;
                }
            }
            Err(_) => self.malformed += 1,
        }
    }

    /// One observation per operation seen, judged against the targets.
    pub fn observations(self, asset: &str, targets: &[Target], at: Timestamp) -> Vec<Observation> {
        let mut out = Vec::new();
        for (op, mut s) in self.ops {
            s.durations.sort_unstable();
            let n = s.durations.len();
            let rank = |p: f64| -> u64 {
                let r = ((p / 100.0) * n as f64).ceil() as usize;
                s.durations[r.clamp(1, n) - 1]
            };
            let mut broken = Vec::new();
            for t in vitals_sla::target::applicable(targets, &op) {
                let v = rank(t.percentile.as_f64());
                if v > t.limit_us {
                    broken.push(format!(
                        "p{} {:.2}s > {:.2}s",
                        t.percentile,
                        v as f64 / 1e6,
                        t.limit_us as f64 / 1e6
                    ));
                }
            }
            let status = if broken.is_empty() {
                Status::Ok
            } else {
                Status::Crit
            };
            let mut o = Observation::new(asset, format!("sla:{op}"), at, status, broken.join("; "));
            let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
            o.values = vec![
                Value::new("count", n as f64),
                Value::new("errors", s.errors as f64),
                Value::new(
                    "error_rate",
                    (s.errors as f64 * 10_000.0 / n as f64).round() / 100.0,
                ),
                Value::new("p50_ms", ms(rank(50.0))),
                Value::new("p95_ms", ms(rank(95.0))),
                Value::new("p98_ms", ms(rank(98.0))),
                Value::new("p99_ms", ms(rank(99.0))),
                Value::new("max_ms", ms(s.durations[n - 1])),
            ];
            out.push(o);
        }
        out.sort_by(|a, b| a.check.cmp(&b.check));
        out
    }
}

/// Follows the configured files until aborted.
pub fn spawn(
    cfg: SlaConfig,
    pipeline: Pipeline,
    beat: crate::liveness::Beat,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let targets = cfg.targets.clone();
        let mut followers: Vec<Follower> = cfg.files.iter().cloned().map(Follower::new).collect();
        let period_ms = cfg.period.as_millis() as i64;
        let mut current = Period::default();
        let mut period_end = (pipeline.now().0 / period_ms + 1) * period_ms;
        let mut tick =
            tokio::time::interval(Duration::from_millis(period_ms.clamp(200, 1000) as u64));
        loop {
            tick.tick().await;
            beat.now();
            for f in followers.iter_mut() {
                if let Err(e) = f.poll(&mut |l| current.add_line(l)) {
                    tracing::warn!(file = %f.path().display(), error = %e, "cannot read SLA log");
                }
            }
            let now = pipeline.now().0;
            if now >= period_end {
                let done = std::mem::take(&mut current);
                if done.malformed > 0 {
                    tracing::warn!(
                        malformed = done.malformed,
                        "malformed SLA log lines skipped"
                    );
                }
                let obs = done.observations(&cfg.asset, &targets, Timestamp(period_end));
                period_end = (now / period_ms + 1) * period_ms;
                // Replicas: every one follows the file, only the decider reports it.
                if !obs.is_empty() && pipeline.role().is_decider() {
                    if let Err(e) = pipeline.ingest(obs).await {
                        tracing::warn!(error = %e, "cannot store SLA observations");
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(op: &str, us: u64, ok: bool) -> String {
        let soap = if op == "DB_Operation" {
            "<empty>"
        } else {
            "Get"
        };
        format!(
            "2017-06-26 08:22:05,751 [default task-4] INFO  dk.sdsd.nsp.slalogdata - LogPoint=\"{op}\" LogPointUniqId=\"lookupPersonName\" StartTime=\"2017-06-26 08:22:05.750\" EndTime=\"2017-06-26 08:22:05.750\" Duration=\"{us} microseconds\" MessageId=\"AAAB\" RequestSize=0 ReplySize=0 Result={} ClientIP=\"<empty>\" SOAPOperation=\"{soap}\" SOAPEndpoint=\"<empty>\" SOAPAction=\"<empty>\" TargetSOAPOperation=\"<empty>\" TargetSOAPEndpoint=\"<empty>\" GenericCallParms(0)= {{  }}\n",
            if ok { "OK" } else { "ERROR" }
        )
    }

    #[test]
    fn follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sla.log");
        std::fs::write(&path, line("old.Op", 1, true)).unwrap(); // before start: not read
        let mut f = Follower::new(path.clone());
        let mut p = Period::default();
        let append = |s: &str| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(s.as_bytes())
                .unwrap()
        };
        append(&line("a.Op", 1000, true));
        append(&line("a.Op", 2000, true)[..50]); // half a line
        f.poll(&mut |l| p.add_line(l)).unwrap();
        assert_eq!(p.ops["a.Op"].durations, vec![1000]);
        append(&line("a.Op", 2000, true)[50..]);
        f.poll(&mut |l| p.add_line(l)).unwrap();
        assert_eq!(p.ops["a.Op"].durations, vec![1000, 2000]);
        // Rotation: the rest of the old file, then the new one from its start.
        append(&line("a.Op", 3000, false));
        std::fs::rename(&path, dir.path().join("sla.log.1")).unwrap();
        std::fs::write(&path, line("a.Op", 4000, true)).unwrap();
        f.poll(&mut |l| p.add_line(l)).unwrap();
        assert_eq!(p.ops["a.Op"].durations, vec![1000, 2000, 3000, 4000]);
        assert_eq!(p.ops["a.Op"].errors, 1);
        // Truncation in place.
        std::fs::write(&path, line("b.Op", 10, true)).unwrap();
        f.poll(&mut |l| p.add_line(l)).unwrap();
        assert_eq!(p.ops["b.Op"].durations, vec![10]);
        append("garbage without fields\n");
        f.poll(&mut |l| p.add_line(l)).unwrap();
        assert_eq!(p.malformed, 1);
    }

    #[test]
    fn broken_targets_are_crit_with_the_percentile_named() {
        let mut p = Period::default();
        for i in 1..=100u64 {
            p.add_line(
                line("minlog2.Get", i * 100_000, i != 7)
                    .trim_end()
                    .as_bytes(),
            );
        }
        p.add_line(line("DB_Operation", 500, true).trim_end().as_bytes());
        let targets: Vec<Target> = ["minlog2.*=95:2.5s", "*=98:9.7s"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let obs = p.observations("minlog2", &targets, Timestamp(60_000));
        assert_eq!(obs.len(), 2);
        let db = &obs[0];
        assert_eq!(db.check, "sla:DB_Operation:lookupPersonName");
        assert_eq!(db.status, Status::Ok);
        let svc = &obs[1];
        assert_eq!(svc.check, "sla:minlog2.Get");
        assert_eq!(svc.status, Status::Crit);
        assert_eq!(svc.reason, "p95 9.50s > 2.50s; p98 9.80s > 9.70s");
        assert_eq!(svc.value("p95_ms"), Some(9500.0));
        assert_eq!(svc.value("errors"), Some(1.0));
        assert_eq!(svc.value("error_rate"), Some(1.0));
    }
}
