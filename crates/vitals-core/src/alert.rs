//! The alert lifecycle: pending → firing → acknowledged → resolved, and which notification each
//! moment calls for. Pure: every function takes `now`.
//!
//! Fatigue rules kept here:
//! - one notification per change of state (firing, acknowledged, resolved);
//! - reminders only while firing and unacknowledged, exactly every `reminder` since the last one
//!   — or, with [`ReminderAt::Observed`], only when an observation confirms the alert and more
//!   than `reminder` has passed in rounded hours (broker-monitor's rule, see [`Alert::observed`]);
//! - a rule may send only some kinds of notification ([`Policy::send`]), e.g. no "resolved"
//!   mails to a clinic;
//! - escalation steps once each, after their delay unacknowledged;
//! - flapping (too many state changes in a window): one `flapping` notification, then silence
//!   about fire/resolve until it has been stable for a whole window;
//! - a suppressed alert (silence, maintenance, down parent) is recorded but not notified; if it
//!   is still firing when the suppression ends, the firing notification goes out then.

use crate::notify::NotificationKind;
use crate::{Status, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        match s {
            "pending" => Some(AlertState::Pending),
            "firing" => Some(AlertState::Firing),
            "acknowledged" => Some(AlertState::Acknowledged),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// Notification policy of a rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub notifiers: Vec<String>,
    pub reminder: Option<Duration>,
    /// `(after, notifiers)`, in order of `after`.
    pub escalate: Vec<(Duration, Vec<String>)>,
    /// `(changes, window)`: this many fire/resolve changes within the window is flapping.
    pub flapping: Option<(usize, Duration)>,
    /// When reminders are sent.
    #[serde(default)]
    pub reminder_at: ReminderAt,
    /// The kinds of notification this rule sends; `None`: every kind.
    #[serde(default)]
    pub send: Option<Vec<NotificationKind>>,
}

impl Policy {
    /// Whether this rule sends notifications of `kind`.
    pub fn sends(&self, kind: NotificationKind) -> bool {
        self.send.as_ref().is_none_or(|k| k.contains(&kind))
    }
}

/// When a firing, unacknowledged alert is reminded of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReminderAt {
    /// Exactly every `reminder` since the last notification, by the clock.
    #[default]
    Interval,
    /// Only when an observation confirms the alert, and only once the time since the last
    /// notification, in hours rounded half to even, is strictly more than `reminder` — the
    /// broker-monitor's "round(hours)/168 > WEEKS_NOTIFICATION_INTERVAL" for daily runs.
    Observed,
}

impl ReminderAt {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderAt::Interval => "interval",
            ReminderAt::Observed => "observed",
        }
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub from: Option<AlertState>,
    pub to: AlertState,
    pub reason: String,
}

/// A notification the lifecycle calls for, before routing and grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub kind: NotificationKind,
    pub notifiers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    /// `rule|asset|check` or `rule|group|test`: one open alert per key.
    pub key: String,
    pub rule: String,
    pub asset: Option<String>,
    pub check: Option<String>,
    pub group: Option<String>,
    /// Population alerts: the failing assets.
    pub assets: Vec<String>,
    pub state: AlertState,
    pub severity: Status,
    pub reason: String,
    pub value: Option<f64>,
    pub started: Timestamp,
    pub fired: Option<Timestamp>,
    pub resolved: Option<Timestamp>,
    pub acked_by: Option<String>,
    pub ack_comment: Option<String>,
    pub ack_until: Option<Timestamp>,
    /// A firing notification has gone out for this alert (so a resolve is worth telling).
    pub notified: bool,
    pub last_notified: Option<Timestamp>,
    pub escalation_level: usize,
    pub flapping: bool,
    /// Recent fire/resolve changes (for flapping), oldest first.
    pub changes: Vec<Timestamp>,
    /// Why notifications are held back now (`silenced by …`, `parent … is down`), if they are.
    pub suppressed: Option<String>,
}

impl Alert {
    pub fn new(
        id: i64,
        key: String,
        rule: String,
        severity: Status,
        reason: String,
        now: Timestamp,
    ) -> Alert {
        Alert {
            id,
            key,
            rule,
            asset: None,
            check: None,
            group: None,
            assets: Vec::new(),
            state: AlertState::Pending,
            severity,
            reason,
            value: None,
            started: now,
            fired: None,
            resolved: None,
            acked_by: None,
            ack_comment: None,
            ack_until: None,
            notified: false,
            last_notified: None,
            escalation_level: 0,
            flapping: false,
            changes: Vec::new(),
            suppressed: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state != AlertState::Resolved
    }

    fn transition(&mut self, to: AlertState, at: Timestamp, reason: &str) -> Transition {
        let t = Transition {
            at,
            from: Some(self.state),
            to,
            reason: reason.to_string(),
        };
        self.state = to;
        t
    }

    fn note_change(&mut self, p: &Policy, now: Timestamp) -> bool {
        self.changes.push(now);
        if let Some((n, window)) = p.flapping {
            let cutoff = now.0 - window.as_millis() as i64;
            self.changes.retain(|t| t.0 > cutoff);
            if self.changes.len() >= n.max(2) && !self.flapping {
                self.flapping = true;
                return true;
            }
        } else {
            self.changes.clear();
        }
        false
    }

    fn notify(
        &mut self,
        p: &Policy,
        kind: NotificationKind,
        notifiers: &[String],
        now: Timestamp,
        out: &mut Vec<Send>,
    ) {
        if notifiers.is_empty() || !p.sends(kind) {
            return;
        }
        self.last_notified = Some(now);
        out.push(Send {
            kind,
            notifiers: notifiers.to_vec(),
        });
    }

    /// The trigger is met.
    pub fn fire(
        &mut self,
        p: &Policy,
        now: Timestamp,
        reason: &str,
    ) -> (Vec<Transition>, Vec<Send>) {
        let mut sends = Vec::new();
        let mut trans = Vec::new();
        if matches!(self.state, AlertState::Firing | AlertState::Acknowledged) {
            return (trans, sends);
        }
        self.reason = reason.to_string();
        self.fired = Some(now);
        self.escalation_level = 0;
        trans.push(self.transition(AlertState::Firing, now, reason));
        if self.note_change(p, now) {
            let notifiers = p.notifiers.clone();
            self.notify(p, NotificationKind::Flapping, &notifiers, now, &mut sends);
            return (trans, sends);
        }
        self.maybe_notify_firing(p, now, &mut sends);
        (trans, sends)
    }

    fn maybe_notify_firing(&mut self, p: &Policy, now: Timestamp, sends: &mut Vec<Send>) {
        if self.state == AlertState::Firing
            && !self.notified
            && !self.flapping
            && self.suppressed.is_none()
        {
            self.notified = true;
            let notifiers = p.notifiers.clone();
            self.notify(p, NotificationKind::Firing, &notifiers, now, sends);
        }
    }

    /// Recovery is met: the alert ends (a new one opens on the next fire).
    pub fn resolve(
        &mut self,
        p: &Policy,
        now: Timestamp,
        reason: &str,
    ) -> (Vec<Transition>, Vec<Send>) {
        let mut sends = Vec::new();
        let trans = vec![self.transition(AlertState::Resolved, now, reason)];
        self.resolved = Some(now);
        if self.note_change(p, now) {
            let notifiers = p.notifiers.clone();
            self.notify(p, NotificationKind::Flapping, &notifiers, now, &mut sends);
        } else if self.notified && !self.flapping && self.suppressed.is_none() {
            let notifiers: Vec<String> = notified_set(p, self.escalation_level);
            self.notify(p, NotificationKind::Resolved, &notifiers, now, &mut sends);
        }
        (trans, sends)
    }

    /// Acknowledged by someone: reminders and escalation stop (until `until`, if given).
    pub fn acknowledge(
        &mut self,
        p: &Policy,
        by: &str,
        comment: Option<String>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(Vec<Transition>, Vec<Send>), String> {
        if self.state != AlertState::Firing {
            return Err(format!(
                "alert {} is {}, not firing",
                self.id,
                self.state.as_str()
            ));
        }
        let mut sends = Vec::new();
        let reason = match &comment {
            Some(c) => format!("acknowledged by {by}: {c}"),
            None => format!("acknowledged by {by}"),
        };
        let trans = vec![self.transition(AlertState::Acknowledged, now, &reason)];
        self.acked_by = Some(by.to_string());
        self.ack_comment = comment;
        self.ack_until = until;
        if self.notified && self.suppressed.is_none() {
            let notifiers = notified_set(p, self.escalation_level);
            self.notify(
                p,
                NotificationKind::Acknowledged,
                &notifiers,
                now,
                &mut sends,
            );
        }
        Ok((trans, sends))
    }

    /// What time alone calls for: acknowledgement expiry, end of flapping, end of suppression,
    /// reminders, escalation steps.
    /// Whether [`tick`](Self::tick) at `now` would do anything: when it is `false`, `tick`
    /// changes no field and returns nothing (so the engine need not copy the alert into its
    /// undo journal once a second). Mirrors `tick`'s conditions; may say `true` for nothing.
    pub fn tick_due(&self, p: &Policy, now: Timestamp) -> bool {
        if self.state == AlertState::Acknowledged && self.ack_until.is_some_and(|u| now >= u) {
            return true;
        }
        if self.flapping {
            return true;
        }
        if self.state != AlertState::Firing {
            return false;
        }
        if !self.notified {
            return true;
        }
        if self.suppressed.is_some() {
            return false;
        }
        let reminder = p
            .reminder
            .filter(|_| p.reminder_at == ReminderAt::Interval)
            .is_some_and(|every| {
                self.last_notified
                    .is_some_and(|l| now.0 - l.0 >= every.as_millis() as i64)
            });
        let fired = self.fired.unwrap_or(self.started);
        let escalation = p
            .escalate
            .get(self.escalation_level)
            .is_some_and(|(after, _)| now.0 - fired.0 >= after.as_millis() as i64);
        reminder || escalation
    }

    pub fn tick(&mut self, p: &Policy, now: Timestamp) -> (Vec<Transition>, Vec<Send>) {
        let mut sends = Vec::new();
        let mut trans = Vec::new();
        if self.state == AlertState::Acknowledged && self.ack_until.is_some_and(|u| now >= u) {
            trans.push(self.transition(AlertState::Firing, now, "acknowledgement expired"));
            self.ack_until = None;
            // Tell again: nobody is on it any more.
            self.notified = false;
            self.last_notified = None;
        }
        if self.flapping {
            if let Some((_, window)) = p.flapping {
                let quiet = self
                    .changes
                    .last()
                    .is_none_or(|t| now.0 - t.0 >= window.as_millis() as i64);
                if quiet {
                    self.flapping = false;
                    self.changes.clear();
                }
            } else {
                self.flapping = false;
            }
        }
        if self.state != AlertState::Firing {
            return (trans, sends);
        }
        self.maybe_notify_firing(p, now, &mut sends);
        if !self.notified || self.suppressed.is_some() || self.flapping {
            return (trans, sends);
        }
        if let Some(every) = p.reminder.filter(|_| p.reminder_at == ReminderAt::Interval) {
            if self
                .last_notified
                .is_some_and(|l| now.0 - l.0 >= every.as_millis() as i64)
            {
                let notifiers = notified_set(p, self.escalation_level);
                self.notify(p, NotificationKind::Reminder, &notifiers, now, &mut sends);
            }
        }
        let fired = self.fired.unwrap_or(self.started);
        while let Some((after, notifiers)) = p.escalate.get(self.escalation_level) {
            if now.0 - fired.0 < after.as_millis() as i64 {
                break;
            }
            self.escalation_level += 1;
            let notifiers = notifiers.clone();
            self.notify(p, NotificationKind::Escalation, &notifiers, now, &mut sends);
        }
        (trans, sends)
    }
}

impl Alert {
    /// An observation at `at` confirmed this alert (its condition still holds). With
    /// [`ReminderAt::Observed`], a firing, unacknowledged alert is reminded of now when the
    /// hours since its last notification, rounded half to even, are strictly more than the
    /// reminder interval: with a weekly interval and daily observations, on the eighth day.
    pub fn observed(&mut self, p: &Policy, at: Timestamp) -> Vec<Send> {
        let mut sends = Vec::new();
        if p.reminder_at != ReminderAt::Observed
            || self.state != AlertState::Firing
            || !self.notified
            || self.suppressed.is_some()
            || self.flapping
        {
            return sends;
        }
        let (Some(every), Some(last)) = (p.reminder, self.last_notified) else {
            return sends;
        };
        let hours = i128::from(crate::time::rounded_hours(last, at));
        if hours * i128::from(crate::time::HOUR_MS) > every.as_millis() as i128 {
            let notifiers = notified_set(p, self.escalation_level);
            self.notify(p, NotificationKind::Reminder, &notifiers, at, &mut sends);
        }
        sends
    }
}

/// The notifiers told so far: the rule's, plus those of the escalation steps reached.
fn notified_set(p: &Policy, level: usize) -> Vec<String> {
    let mut out = p.notifiers.clone();
    for (_, n) in p.escalate.iter().take(level) {
        for x in n {
            if !out.contains(x) {
                out.push(x.clone());
            }
        }
    }
    out
}

/// A silence: matching alerts are recorded but not notified between `starts` and `ends`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: i64,
    pub matchers: crate::rules::Selector,
    /// Only alerts of these rules (empty: all).
    #[serde(default)]
    pub rules: Vec<String>,
    pub starts: Timestamp,
    pub ends: Timestamp,
    pub author: String,
    pub comment: String,
    pub created: Timestamp,
}

impl Silence {
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts <= now && now < self.ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> Policy {
        Policy {
            notifiers: vec!["mail".into()],
            reminder: Some(Duration::from_secs(3600)),
            escalate: vec![(Duration::from_secs(1800), vec!["pager".into()])],
            flapping: Some((4, Duration::from_secs(600))),
            ..Policy::default()
        }
    }

    fn alert() -> Alert {
        Alert::new(
            1,
            "r|a|c".into(),
            "r".into(),
            Status::Crit,
            "down".into(),
            Timestamp(0),
        )
    }

    fn kinds(s: &[Send]) -> Vec<NotificationKind> {
        s.iter().map(|x| x.kind).collect()
    }

    #[test]
    fn one_notification_per_change_then_reminders_and_escalation() {
        let p = policy();
        let mut a = alert();
        let (t, s) = a.fire(&p, Timestamp(0), "down");
        assert_eq!(t[0].to, AlertState::Firing);
        assert_eq!(kinds(&s), vec![NotificationKind::Firing]);
        assert!(a.fire(&p, Timestamp(10), "down").1.is_empty());
        assert!(a.tick(&p, Timestamp(1_799_999)).1.is_empty());
        let (_, s) = a.tick(&p, Timestamp(1_800_000));
        assert_eq!(kinds(&s), vec![NotificationKind::Escalation]);
        assert_eq!(s[0].notifiers, vec!["pager".to_string()]);
        // Reminder exactly one interval after the last notification (the escalation).
        assert!(a.tick(&p, Timestamp(5_399_999)).1.is_empty());
        let (_, s) = a.tick(&p, Timestamp(5_400_000));
        assert_eq!(kinds(&s), vec![NotificationKind::Reminder]);
        assert_eq!(
            s[0].notifiers,
            vec!["mail".to_string(), "pager".to_string()]
        );
        let (_, s) = a.resolve(&p, Timestamp(6_000_000), "recovered");
        assert_eq!(kinds(&s), vec![NotificationKind::Resolved]);
        assert!(!a.is_open());
    }

    #[test]
    fn acknowledgement_stops_reminders_until_it_expires() {
        let p = policy();
        let mut a = alert();
        a.fire(&p, Timestamp(0), "down");
        let (_, s) = a
            .acknowledge(
                &p,
                "alice",
                Some("on it".into()),
                Some(Timestamp(10_000_000)),
                Timestamp(60_000),
            )
            .unwrap();
        assert_eq!(kinds(&s), vec![NotificationKind::Acknowledged]);
        assert!(a.tick(&p, Timestamp(9_999_999)).1.is_empty());
        let (t, s) = a.tick(&p, Timestamp(10_000_000));
        assert_eq!(t[0].reason, "acknowledgement expired");
        assert_eq!(kinds(&s)[0], NotificationKind::Firing);
        assert!(a
            .acknowledge(&p, "bob", None, None, Timestamp(10_000_001))
            .is_ok());
        assert!(a
            .acknowledge(&p, "bob", None, None, Timestamp(10_000_002))
            .is_err());
    }

    #[test]
    fn suppressed_alerts_notify_when_the_suppression_ends() {
        let p = policy();
        let mut a = alert();
        a.suppressed = Some("silenced by silence 3".into());
        assert!(a.fire(&p, Timestamp(0), "down").1.is_empty());
        assert!(a.tick(&p, Timestamp(100)).1.is_empty());
        a.suppressed = None;
        assert_eq!(
            kinds(&a.tick(&p, Timestamp(200)).1),
            vec![NotificationKind::Firing]
        );
        // Never notified → a resolve while suppressed says nothing.
        let mut b = alert();
        b.suppressed = Some("maintenance".into());
        b.fire(&p, Timestamp(0), "down");
        assert!(b.resolve(&p, Timestamp(10), "ok").1.is_empty());
    }

    #[test]
    fn flapping_sends_one_notification_not_twenty() {
        let p = policy();
        let mut total = Vec::new();
        let mut a = alert();
        for i in 0..20 {
            let now = Timestamp(i * 10_000);
            if a.is_open() {
                let (_, s) = if i % 2 == 0 {
                    a.fire(&p, now, "down")
                } else {
                    a.resolve(&p, now, "up")
                };
                total.extend(s);
            }
            if !a.is_open() {
                // The engine reopens the same key as a new alert carrying the change history.
                let mut n = alert();
                n.changes = a.changes.clone();
                n.flapping = a.flapping;
                n.notified = false;
                a = n;
            }
        }
        let k = kinds(&total);
        assert_eq!(
            k.iter()
                .filter(|x| **x == NotificationKind::Flapping)
                .count(),
            1,
            "{k:?}"
        );
        assert!(k.len() <= 4, "{k:?}");
    }

    #[test]
    fn observed_reminders_follow_broker_monitors_rounded_hours() {
        let week = Duration::from_secs(7 * 86_400);
        let p = Policy {
            notifiers: vec!["mail".into()],
            reminder: Some(week),
            reminder_at: ReminderAt::Observed,
            send: Some(vec![NotificationKind::Firing, NotificationKind::Reminder]),
            ..Policy::default()
        };
        let h = 3_600_000i64;
        let mut a = alert();
        assert_eq!(
            kinds(&a.fire(&p, Timestamp(0), "OFFLINE").1),
            vec![NotificationKind::Firing]
        );
        // Time alone never reminds.
        assert!(a.tick(&p, Timestamp(30 * 24 * h)).1.is_empty());
        // Daily observations: 168 h is not more than a week; 168 h 30 min rounds to 168 (even).
        for day in 1..=7 {
            assert!(
                a.observed(&p, Timestamp(day * 24 * h)).is_empty(),
                "day {day}"
            );
        }
        assert!(a.observed(&p, Timestamp(168 * h + h / 2)).is_empty());
        assert_eq!(
            kinds(&a.observed(&p, Timestamp(168 * h + h / 2 + 1))),
            vec![NotificationKind::Reminder]
        );
        assert_eq!(a.last_notified, Some(Timestamp(168 * h + h / 2 + 1)));
        // Acknowledged: no reminders; resolved: no mail, as `send` says.
        let mut b = alert();
        b.fire(&p, Timestamp(0), "OFFLINE");
        let (_, s) = b.acknowledge(&p, "ops", None, None, Timestamp(1)).unwrap();
        assert!(s.is_empty(), "no acknowledged mails");
        assert!(b.observed(&p, Timestamp(8 * 24 * h)).is_empty());
        let (_, s) = b.resolve(&p, Timestamp(9 * 24 * h), "ONLINE");
        assert!(s.is_empty(), "no resolved mails");
        // The interval policy ignores observations.
        let mut c = alert();
        c.fire(&policy(), Timestamp(0), "down");
        assert!(c.observed(&policy(), Timestamp(100 * 24 * h)).is_empty());
    }

    proptest! {
        /// Reminders come exactly every interval, never more often, while firing & unacked.
        #[test]
        fn reminders_exactly_on_interval(every_s in 60u64..7200, steps in proptest::collection::vec(1i64..600_000, 1..60)) {
            let p = Policy { notifiers: vec!["m".into()], reminder: Some(Duration::from_secs(every_s)), ..Policy::default() };
            let mut a = alert();
            a.fire(&p, Timestamp(0), "down");
            let mut now = 0i64;
            let mut last = 0i64;
            for d in steps {
                now += d;
                let (_, s) = a.tick(&p, Timestamp(now));
                if !s.is_empty() {
                    prop_assert_eq!(s[0].kind, NotificationKind::Reminder);
                    prop_assert!(now - last >= every_s as i64 * 1000);
                    last = now;
                } else {
                    prop_assert!(now - last < every_s as i64 * 1000);
                }
            }
        }

        /// When `tick_due` says no, `tick` changes nothing and returns nothing (the engine
        /// skips such alerts); after every step of a random life, at a random later time.
        #[test]
        fn tick_does_nothing_when_not_due(
            reminder in proptest::option::of(60u64..7200),
            escalate in proptest::option::of(60u64..7200),
            flapping in proptest::option::of(2usize..5),
            observed in any::<bool>(),
            steps in proptest::collection::vec((0u8..6, 1i64..3_000_000), 1..40),
            later in 0i64..10_000_000,
        ) {
            let p = Policy {
                notifiers: vec!["m".into()],
                reminder: reminder.map(Duration::from_secs),
                escalate: escalate.map(|s| vec![(Duration::from_secs(s), vec!["pager".into()])]).unwrap_or_default(),
                flapping: flapping.map(|n| (n, Duration::from_secs(600))),
                reminder_at: if observed { ReminderAt::Observed } else { ReminderAt::Interval },
                ..Policy::default()
            };
            let mut a = alert();
            let mut now = 0i64;
            for (op, d) in steps {
                now += d;
                let t = Timestamp(now);
                match op {
                    0 => { a.fire(&p, t, "down"); }
                    1 => { a.resolve(&p, t, "up"); }
                    2 => { let _ = a.acknowledge(&p, "ops", None, Some(Timestamp(now + d)), t); }
                    3 => a.suppressed = Some("silenced".into()),
                    4 => a.suppressed = None,
                    _ => { a.tick(&p, t); }
                }
                let at = Timestamp(now + later);
                if !a.tick_due(&p, at) {
                    let mut b = a.clone();
                    let (t, s) = b.tick(&p, at);
                    prop_assert!(t.is_empty() && s.is_empty(), "{:?} {:?}", t, s);
                    prop_assert_eq!(&b, &a);
                }
            }
        }
    }

    #[test]
    fn tick_due_sees_what_tick_would_do() {
        let p = policy();
        let mut a = alert();
        a.fire(&p, Timestamp(0), "down");
        // Notified at 0; escalation at 30 min, reminder at 1 h.
        assert!(!a.tick_due(&p, Timestamp(1_799_999)));
        assert!(a.tick_due(&p, Timestamp(1_800_000)));
        a.tick(&p, Timestamp(1_800_000));
        // The escalation notified at 30 min: the hourly reminder is due an hour after it.
        assert!(!a.tick_due(&p, Timestamp(5_399_999)));
        assert!(a.tick_due(&p, Timestamp(5_400_000)));
        // Acknowledged until a time: nothing is due before it, the expiry is due at it.
        let mut a = alert();
        a.fire(&p, Timestamp(0), "down");
        a.acknowledge(
            &p,
            "ops",
            None,
            Some(Timestamp(4_000_000)),
            Timestamp(1_000),
        )
        .unwrap();
        assert!(!a.tick_due(&p, Timestamp(3_999_999)));
        assert!(a.tick_due(&p, Timestamp(4_000_000)));
        // A silenced alert that was notified has nothing due.
        let mut a = alert();
        a.fire(&p, Timestamp(0), "down");
        a.suppressed = Some("silenced".into());
        assert!(!a.tick_due(&p, Timestamp(100_000_000)));
    }
}
