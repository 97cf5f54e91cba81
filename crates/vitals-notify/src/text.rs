//! Wording shared by the channels, so that mail, Slack and Teams say the same thing.

use vitals_core::notify::{AlertView, Notification, NotificationKind};
use vitals_core::{Status, Timestamp};

/// `FIRING`, `REMINDER`, … — the word a message starts with.
pub(crate) fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Firing => "FIRING",
        NotificationKind::Reminder => "REMINDER",
        NotificationKind::Escalation => "ESCALATION",
        NotificationKind::Resolved => "RESOLVED",
        NotificationKind::Acknowledged => "ACKNOWLEDGED",
        NotificationKind::Flapping => "FLAPPING",
        NotificationKind::Test => "TEST",
    }
}

pub(crate) fn status_label(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warn => "WARN",
        Status::Crit => "CRIT",
        Status::Unknown => "UNKNOWN",
    }
}

/// The severity that colours a message: resolved is green whatever the alert's severity was.
pub(crate) fn display_status(n: &Notification) -> Status {
    if n.kind == NotificationKind::Resolved {
        return Status::Ok;
    }
    n.alerts
        .iter()
        .map(|a| a.status)
        .reduce(Status::worst)
        .unwrap_or(Status::Unknown)
}

/// One line naming the notification's alerts: the title, or `"<title> and N more"`.
pub(crate) fn headline(n: &Notification) -> String {
    match n.alerts.as_slice() {
        [] => "no alerts".to_string(),
        [a] => a.title.clone(),
        [a, rest @ ..] => format!("{} and {} more", a.title, rest.len()),
    }
}

/// `"FIRING: minlog2/monitor is CRIT"`.
pub(crate) fn summary(n: &Notification) -> String {
    format!("{}: {}", kind_label(n.kind), headline(n))
}

/// The asset as people know it: `"Name (id)"`, or whichever of the two exists.
pub(crate) fn asset_label(a: &AlertView) -> Option<String> {
    match (&a.asset_name, &a.asset) {
        (Some(name), Some(id)) if name != id => Some(format!("{name} ({id})")),
        (Some(name), _) => Some(name.clone()),
        (None, Some(id)) => Some(id.clone()),
        (None, None) => None,
    }
}

/// How long the alert has been (or was) active: from `started` to `resolved` or `now`.
pub(crate) fn active_for(a: &AlertView, now: Timestamp) -> String {
    let end = a.resolved.unwrap_or(now);
    human_duration(end.millis().saturating_sub(a.started.millis()))
}

/// `"2d 3h"`, `"5m 10s"`, `"42s"`: the two largest units, which is what a reader wants.
pub(crate) fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = s;
    for (size, name) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // A zero between two units ends the phrase: "2h" rather than "2h 0m".
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// RFC 3339 at second precision (`2024-05-02T08:15:30Z`), as Adaptive Card date functions want.
pub(crate) fn rfc3339_secs(t: Timestamp) -> String {
    t.to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `2024-05-02 08:15 UTC`: short and unambiguous for mail bodies.
pub(crate) fn short_time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// At most `max` characters, with `…` when cut (receivers reject over-long fields).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Shows a URL as `scheme://host[:port]` only: webhook URLs carry their token in the path or
/// query, and user info may hold a password.
pub(crate) fn redact_url(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => format!("{}://", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(42_000), "42s");
        assert_eq!(human_duration(310_000), "5m 10s");
        assert_eq!(human_duration(7_200_000), "2h");
        assert_eq!(human_duration(7_260_000), "2h 1m");
        assert_eq!(human_duration(183_600_000), "2d 3h");
        assert_eq!(human_duration(-5), "0s");
    }

    #[test]
    fn urls_are_redacted_to_scheme_and_host() {
        let u = reqwest::Url::parse("https://hooks.slack.com/services/T0/B0/SECRET?x=1").unwrap();
        assert_eq!(redact_url(&u), "https://hooks.slack.com");
        let u = reqwest::Url::parse("http://user:pw@127.0.0.1:9093/x").unwrap();
        assert_eq!(redact_url(&u), "http://127.0.0.1:9093");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("äöüß", 3), "äö…");
    }
}
