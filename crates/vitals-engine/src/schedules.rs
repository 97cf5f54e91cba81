//! Check schedule overrides: an admin gives one check (asset + check name) another `interval`
//! or `cron` than `vitals.toml` says. The override is stored in the engine's file beside the
//! job overrides, applied by the scheduler at once and after every reload and restart; the
//! file's schedule stays the default and comes back when the override is removed.
//!
//! Polled checks and heartbeats have schedules (a heartbeat's is when pings are expected);
//! push checks and checks run by site agents do not. An override that no longer fits the
//! file's check (the check is gone, became a push check, or its timeout grew past the
//! interval) is kept but not applied, and said so.

use crate::store::{CheckOverride, EngineStore};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use vitals_config::{CheckConfig, ScheduleSpec};
use vitals_core::spec::CheckKind;

/// The longest interval an override may give.
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 86_400);

/// Hands the checks with their schedules in effect to the running scheduler (and heartbeat
/// watch). The composition root provides it.
pub type Apply =
    Arc<dyn Fn(Vec<Arc<CheckConfig>>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Why a schedule change was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleError {
    /// No such check in the configuration.
    NotFound(String),
    /// Bad input: the field (`interval`, `cron`, `check`) and what is wrong.
    Invalid(&'static str, String),
    Store(String),
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleError::NotFound(m) | ScheduleError::Store(m) => f.write_str(m),
            ScheduleError::Invalid(field, m) => write!(f, "{field}: {m}"),
        }
    }
}

/// A schedule as written: `{"interval": "5m"}` or `{"cron": "*/5 * * * *"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Written {
    Interval(String),
    Cron(String),
}

impl Written {
    pub fn of(spec: &ScheduleSpec) -> Written {
        match spec {
            ScheduleSpec::Interval(d) => {
                Written::Interval(humantime::format_duration(*d).to_string())
            }
            ScheduleSpec::Cron(c) => Written::Cron(c.as_str().to_string()),
        }
    }

    /// `every 5m` / `cron */5 * * * *`, for pages.
    pub fn describe(&self) -> String {
        match self {
            Written::Interval(d) => format!("every {d}"),
            Written::Cron(c) => format!("cron {c}"),
        }
    }
}

/// One check's schedule as the API and the asset page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckScheduleView {
    pub asset: String,
    pub check: String,
    /// `polled` or `heartbeat` (when pings are expected).
    pub kind: &'static str,
    /// The schedule in `vitals.toml`.
    pub file: Written,
    /// The schedule in effect (the override's when one is applied).
    pub effective: Written,
    /// What an admin set (absent: as in the file).
    pub r#override: Option<CheckOverride>,
    /// Why a stored override is not applied (it no longer fits the file's check).
    pub not_applied: Option<String>,
}

/// Parses what an admin gave: exactly one of `interval` and `cron`.
pub fn parse(interval: Option<&str>, cron: Option<&str>) -> Result<ScheduleSpec, ScheduleError> {
    match (interval, cron) {
        (Some(_), Some(_)) => Err(ScheduleError::Invalid(
            "interval",
            "give either interval or cron, not both".into(),
        )),
        (None, None) => Err(ScheduleError::Invalid(
            "interval",
            "give {\"interval\": \"30s\"} or {\"cron\": \"*/5 * * * *\"}".into(),
        )),
        (Some(i), None) => {
            let d = vitals_core::spec::duration::parse(i)
                .map_err(|e| ScheduleError::Invalid("interval", e))?;
            Ok(ScheduleSpec::Interval(d))
        }
        (None, Some(c)) => {
            let c = c.trim();
            if c.len() > 200 {
                return Err(ScheduleError::Invalid(
                    "cron",
                    "at most 200 characters".into(),
                ));
            }
            vitals_config::rules::Cron::parse(c)
                .map(ScheduleSpec::Cron)
                .map_err(|e| ScheduleError::Invalid("cron", e.to_string()))
        }
    }
}

fn kind_of(c: &CheckConfig) -> Result<&'static str, String> {
    if c.locations.is_some() {
        return Err(format!(
            "{} is run by site agents (locations); its schedule is the one in vitals.toml",
            c.key()
        ));
    }
    match c.kind {
        CheckKind::Probe(_) => Ok("polled"),
        CheckKind::Heartbeat(_) => Ok("heartbeat"),
        CheckKind::Push(_) => Err(format!(
            "{} is a push check; only polled checks and heartbeats have schedules",
            c.key()
        )),
    }
}

/// Whether `spec` may be `c`'s schedule: the rules of `vitals.toml` (at least 1s, not shorter
/// than a polled check's timeout, a valid cron expression).
pub fn validate(c: &CheckConfig, spec: &ScheduleSpec) -> Result<(), ScheduleError> {
    kind_of(c).map_err(|m| ScheduleError::Invalid("check", m))?;
    match spec {
        ScheduleSpec::Interval(d) => {
            if *d < Duration::from_secs(1) {
                return Err(ScheduleError::Invalid(
                    "interval",
                    "must be at least 1s".into(),
                ));
            }
            if *d > MAX_INTERVAL {
                return Err(ScheduleError::Invalid(
                    "interval",
                    "must be at most 366d".into(),
                ));
            }
            if c.kind.probe().is_some() && c.timeout > *d {
                return Err(ScheduleError::Invalid(
                    "interval",
                    format!(
                        "must not be shorter than the check's timeout ({}); give at least that",
                        humantime::format_duration(c.timeout)
                    ),
                ));
            }
        }
        // Parsed when it was read (`parse`).
        ScheduleSpec::Cron(_) => {}
    }
    Ok(())
}

fn spec_of(o: &CheckOverride) -> Result<ScheduleSpec, ScheduleError> {
    match o.kind.as_str() {
        "interval" => parse(Some(&o.value), None),
        _ => parse(None, Some(&o.value)),
    }
}

/// Whether the stored override applies to `c`; `Err` says why not.
fn fits(c: &CheckConfig, o: &CheckOverride) -> Result<ScheduleSpec, String> {
    let spec = spec_of(o).map_err(|e| e.to_string())?;
    validate(c, &spec).map_err(|e| e.to_string())?;
    Ok(spec)
}

/// `checks` with every stored override that fits applied. A store that cannot be read leaves
/// the file's schedules (logged): a broken override table must not stop checks. A check
/// without an override is the same allocation as the file's: the scheduler and this module
/// share one copy of each check (10,000 checks' configurations are ~6 MB a copy).
pub fn effective(store: &dyn EngineStore, checks: &[Arc<CheckConfig>]) -> Vec<Arc<CheckConfig>> {
    let overrides = match store.check_overrides() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "reading check schedule overrides failed; the file's schedules apply");
            return checks.to_vec();
        }
    };
    checks
        .iter()
        .map(|c| {
            let Some(o) = overrides
                .iter()
                .find(|o| o.asset == c.asset && o.check == c.name)
            else {
                return c.clone();
            };
            match fits(c, o) {
                Ok(spec) => {
                    let mut changed = CheckConfig::clone(c);
                    changed.schedule = spec;
                    Arc::new(changed)
                }
                Err(why) => {
                    tracing::warn!(check = %c.key(), reason = %why, "check schedule override not applied");
                    c.clone()
                }
            }
        })
        .collect()
}

/// The checks of the running configuration and their overrides; every change goes through
/// here, one at a time, so a reload and an admin's change cannot interleave.
pub struct CheckSchedules {
    store: Arc<dyn EngineStore>,
    apply: Apply,
    /// The checks as the file says (plus the self check).
    checks: tokio::sync::Mutex<Vec<Arc<CheckConfig>>>,
    clock: vitals_core::SharedClock,
}

impl CheckSchedules {
    /// Over the checks already running (the scheduler started with [`effective`] of them).
    pub fn new(
        store: Arc<dyn EngineStore>,
        checks: Vec<Arc<CheckConfig>>,
        apply: Apply,
        clock: vitals_core::SharedClock,
    ) -> Self {
        CheckSchedules {
            store,
            apply,
            checks: tokio::sync::Mutex::new(checks),
            clock,
        }
    }

    /// A reload's new checks: overrides are applied to them and the result handed on.
    pub async fn replace(&self, checks: Vec<Arc<CheckConfig>>) {
        let mut held = self.checks.lock().await;
        *held = checks;
        (self.apply)(effective(&*self.store, &held)).await;
    }

    fn find<'a>(
        checks: &'a [Arc<CheckConfig>],
        asset: &str,
        check: &str,
    ) -> Result<&'a CheckConfig, ScheduleError> {
        checks
            .iter()
            .map(|c| &**c)
            .find(|c| c.asset == asset && c.name == check)
            .ok_or_else(|| {
                ScheduleError::NotFound(format!("no check {asset}/{check} in the configuration"))
            })
    }

    /// Sets `asset/check`'s schedule; applied before this returns.
    pub async fn set(
        &self,
        asset: &str,
        check: &str,
        spec: ScheduleSpec,
        actor: &str,
    ) -> Result<CheckScheduleView, ScheduleError> {
        let held = self.checks.lock().await;
        let c = Self::find(&held, asset, check)?;
        validate(c, &spec)?;
        let w = Written::of(&spec);
        if w == Written::of(&c.schedule) {
            // The file's own schedule: nothing differs, so nothing is kept.
            self.store
                .remove_check_override(asset, check)
                .map_err(ScheduleError::Store)?;
        } else {
            let (kind, value) = match w {
                Written::Interval(v) => ("interval", v),
                Written::Cron(v) => ("cron", v),
            };
            self.store
                .set_check_override(&CheckOverride {
                    asset: asset.to_string(),
                    check: check.to_string(),
                    kind: kind.to_string(),
                    value,
                    set_by: actor.to_string(),
                    set_at: self.clock.now(),
                })
                .map_err(ScheduleError::Store)?;
        }
        tracing::info!(check = %c.key(), schedule = ?spec, by = actor, "check schedule overridden");
        (self.apply)(effective(&*self.store, &held)).await;
        self.view_in(&held, asset, check)
    }

    /// Removes `asset/check`'s override (`false`: there was none); the file's schedule applies
    /// before this returns.
    pub async fn remove(
        &self,
        asset: &str,
        check: &str,
    ) -> Result<(bool, CheckScheduleView), ScheduleError> {
        let held = self.checks.lock().await;
        let c = Self::find(&held, asset, check)?;
        kind_of(c).map_err(|m| ScheduleError::Invalid("check", m))?;
        let removed = self
            .store
            .remove_check_override(asset, check)
            .map_err(ScheduleError::Store)?;
        if removed {
            tracing::info!(asset, check, "check schedule override removed");
            (self.apply)(effective(&*self.store, &held)).await;
        }
        Ok((removed, self.view_in(&held, asset, check)?))
    }

    fn view_in(
        &self,
        checks: &[Arc<CheckConfig>],
        asset: &str,
        check: &str,
    ) -> Result<CheckScheduleView, ScheduleError> {
        let c = Self::find(checks, asset, check)?;
        kind_of(c).map_err(|m| ScheduleError::Invalid("check", m))?;
        self.views_in(checks, Some(asset))?
            .into_iter()
            .find(|v| v.check == check)
            .ok_or_else(|| {
                ScheduleError::NotFound(format!("no check {asset}/{check} in the configuration"))
            })
    }

    fn views_in(
        &self,
        checks: &[Arc<CheckConfig>],
        asset: Option<&str>,
    ) -> Result<Vec<CheckScheduleView>, ScheduleError> {
        let overrides = self.store.check_overrides().map_err(ScheduleError::Store)?;
        Ok(checks
            .iter()
            .filter(|c| asset.is_none_or(|a| a == c.asset))
            .filter_map(|c| {
                let kind = kind_of(c).ok()?;
                let o = overrides
                    .iter()
                    .find(|o| o.asset == c.asset && o.check == c.name)
                    .cloned();
                let fit = o.as_ref().map(|o| fits(c, o));
                let effective = match &fit {
                    Some(Ok(spec)) => Written::of(spec),
                    _ => Written::of(&c.schedule),
                };
                Some(CheckScheduleView {
                    asset: c.asset.clone(),
                    check: c.name.clone(),
                    kind,
                    file: Written::of(&c.schedule),
                    effective,
                    r#override: o,
                    not_applied: fit.and_then(Result::err),
                })
            })
            .collect())
    }

    /// Every scheduled check (polled and heartbeat), or those of one asset.
    pub async fn views(
        &self,
        asset: Option<&str>,
    ) -> Result<Vec<CheckScheduleView>, ScheduleError> {
        let held = self.checks.lock().await;
        self.views_in(&held, asset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks() -> Vec<CheckConfig> {
        vitals_config::Config::parse(
            r#"
[[check]]
asset = "web"
name = "http"
type = "tcp"
address = "127.0.0.1:9"
interval = "1h"

[[check]]
asset = "web"
name = "pushed"
type = "push"
"#,
            &|_| None,
        )
        .unwrap()
        .checks
    }

    #[test]
    fn overrides_follow_the_rules_of_the_file() {
        let c = checks();
        let ok = |spec| validate(&c[0], &spec);
        assert!(ok(ScheduleSpec::Interval(Duration::from_secs(30))).is_ok());
        let cron = |e: &str| ScheduleSpec::Cron(vitals_config::rules::Cron::parse(e).unwrap());
        assert!(ok(cron("*/5 * * * *")).is_ok());
        // The default timeout of an hourly check is 10s: a shorter interval is refused, saying so.
        let Err(ScheduleError::Invalid(field, m)) =
            ok(ScheduleSpec::Interval(Duration::from_secs(5)))
        else {
            panic!("a 5s interval under a 10s timeout");
        };
        assert_eq!(field, "interval");
        assert!(m.contains("timeout (10s)"), "{m}");
        assert!(matches!(
            parse(None, Some("soon")),
            Err(ScheduleError::Invalid("cron", _))
        ));
        assert!(matches!(
            validate(&c[1], &ScheduleSpec::Interval(Duration::from_secs(60))),
            Err(ScheduleError::Invalid("check", _))
        ));
        assert!(parse(Some("2 fortnights"), None).is_err());
        assert_eq!(parse(None, Some(" 0 3 * * * ")), Ok(cron("0 3 * * *")));
    }
}
