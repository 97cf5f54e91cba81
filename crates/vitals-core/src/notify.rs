//! What a notification is and where it can go: the data handed from the alert engine to the
//! durable outbox and from there to a notifier, and the `[[notifier]]` specifications.
//!
//! A [`Notification`] is a self-contained snapshot: everything a channel needs to render a
//! message is in its [`AlertView`]s, so a notification replayed from the outbox hours later says
//! exactly what it said when it was created. Its serde form is also the documented JSON body of
//! the `webhook` channel and the line format of the `logfile` channel, so field names are stable.
//!
//! The specs are plain data deserialized by `vitals-config` (secrets arrive already
//! `${ENV}`-expanded) and executed by `vitals-notify`. Each is `deny_unknown_fields`, and
//! [`NotifierSpec::validate`] reports every problem at once with the key it belongs to.

use crate::spec::duration;
use crate::{Status, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// The alert started firing.
    Firing,
    /// Still firing after the configured reminder interval.
    Reminder,
    /// Still firing (and not acknowledged) after the escalation delay.
    Escalation,
    /// The condition cleared.
    Resolved,
    /// Someone acknowledged the alert.
    Acknowledged,
    /// The alert changes state too often; notifications are held back until it settles.
    Flapping,
    /// A test message asked for by a person (`vitals notify test`, the UI's test button): it
    /// belongs to no alert and only proves that the channel delivers.
    Test,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 7] = [
        NotificationKind::Firing,
        NotificationKind::Reminder,
        NotificationKind::Escalation,
        NotificationKind::Resolved,
        NotificationKind::Acknowledged,
        NotificationKind::Flapping,
        NotificationKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Escalation => "escalation",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Acknowledged => "acknowledged",
            NotificationKind::Flapping => "flapping",
            NotificationKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub alert_id: i64,
    /// The rule id.
    pub rule: String,
    /// One-line summary, e.g. `"minlog2/monitor is CRIT"`.
    pub title: String,
    /// Severity of the alert (usually `warn` or `crit`).
    pub status: Status,
    /// `"firing"`, `"acknowledged"` or `"resolved"`.
    pub state: String,
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(default)]
    pub asset_name: Option<String>,
    #[serde(default)]
    pub check: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Population alerts: the failing assets.
    #[serde(default)]
    pub assets: Vec<String>,
    /// The latest observation's reason.
    #[serde(default)]
    pub reason: String,
    /// The value a threshold rule looked at.
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub started: Timestamp,
    #[serde(default)]
    pub resolved: Option<Timestamp>,
    /// Link to the alert in the Vitals UI, when known.
    #[serde(default)]
    pub url: Option<String>,
    /// E-mail addresses of the asset's contacts (already without unsubscribed ones).
    #[serde(default)]
    pub contacts: Vec<String>,
    /// The message template family the rule asked for (`template = "aktin_offline"`), for
    /// channels that have one (e-mail); `None`: the generic templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The asset's text metadata when the notification was made (e.g. a broker node's
    /// `long_name`, `last_contact`, `dwh_version`), for templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// One message for one notifier, about one alert or a group of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique and stable across retries, so receivers can drop duplicates.
    pub id: String,
    /// The `[[notifier]]` id it is for.
    pub notifier: String,
    pub kind: NotificationKind,
    /// At least one; several when grouped.
    pub alerts: Vec<AlertView>,
    pub created: Timestamp,
}

/// The rule name a test message carries (its kind `test` and alert id 0 are what mark it).
pub const TEST_RULE: &str = "vitals-test";

impl Notification {
    /// A clearly marked test message for one notifier, asked for by `by` at `now`: one
    /// pseudo-alert (id 0, rule [`TEST_RULE`], status ok) whose title and reason say that it
    /// is a test and that nothing needs doing. `url` links to the Vitals UI when known.
    pub fn test(notifier: &str, by: &str, now: Timestamp, url: Option<String>) -> Notification {
        let view = AlertView {
            alert_id: 0,
            rule: TEST_RULE.to_string(),
            title: format!("Test message from Vitals to notifier {notifier}: no action needed"),
            status: Status::Ok,
            state: "test".to_string(),
            asset: None,
            asset_name: None,
            check: None,
            group: None,
            assets: Vec::new(),
            reason: format!(
                "{by} asked Vitals to send this test message through notifier {notifier:?} \
                 to check that the channel delivers. It belongs to no alert."
            ),
            value: None,
            labels: BTreeMap::from([("vitals_test".to_string(), "true".to_string())]),
            started: now,
            resolved: None,
            url,
            contacts: Vec::new(),
            template: None,
            details: BTreeMap::new(),
        };
        Notification {
            id: format!("test-{notifier}-{}", now.0),
            notifier: notifier.to_string(),
            kind: NotificationKind::Test,
            alerts: vec![view],
            created: now,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// Plain connection upgraded with `STARTTLS`, which is required (submission, port 587).
    #[default]
    Starttls,
    /// No encryption (a local relay on port 25).
    None,
}

impl SmtpTls {
    /// The customary port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_email_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_keep() -> u32 {
    10
}

/// `type = "email"`: one multipart (text + HTML) mail per notification over SMTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    pub smtp_host: String,
    /// Defaults by `tls`: 465 implicit, 587 starttls, 25 none. See [`EmailSpec::port`].
    #[serde(default)]
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// SMTP AUTH is used when set.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Sender, `addr@example.org` or `Vitals <addr@example.org>`.
    pub from: String,
    /// Static recipients, e.g. the support team.
    #[serde(default)]
    pub to: Vec<String>,
    /// Also send to the contacts of the alert's asset.
    #[serde(default = "default_true")]
    pub to_contacts: bool,
    /// Put before every subject; `[Vitals]` when absent.
    #[serde(default)]
    pub subject_prefix: Option<String>,
    /// Overrides of the built-in templates: `<kind>.subject`, `<kind>.txt`, `<kind>.html`.
    /// A missing file falls back to the built-in template.
    #[serde(default)]
    pub template_dir: Option<PathBuf>,
    #[serde(default = "default_email_timeout", with = "duration")]
    pub timeout: Duration,
    /// PEM file of CA certificates to trust for the SMTP server (e.g. the hospital's internal
    /// CA), in addition to the public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl EmailSpec {
    /// The port to connect to: `smtp_port`, or the customary one for `tls`.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or_else(|| self.tls.default_port())
    }
}

/// `type = "slack"`: a Slack incoming webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSpec {
    /// The incoming-webhook URL (a secret: it carries the token).
    pub url: String,
    #[serde(default = "default_http_timeout", with = "duration")]
    pub timeout: Duration,
}

/// `type = "teams"`: a Microsoft Teams Workflows webhook receiving an Adaptive Card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSpec {
    /// The Workflows webhook URL (a secret: it carries the signature).
    pub url: String,
    #[serde(default = "default_http_timeout", with = "duration")]
    pub timeout: Duration,
}

/// `type = "webhook"`: the notification itself as JSON, optionally HMAC-signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: String,
    /// Key of the `X-Vitals-Signature` HMAC-SHA256 signature.
    #[serde(default)]
    pub secret: Option<String>,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout", with = "duration")]
    pub timeout: Duration,
}

/// `type = "alertmanager"`: hand alerts to a Prometheus Alertmanager (API v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSpec {
    /// Base URL, e.g. `http://127.0.0.1:9093`; alerts go to `{url}/api/v2/alerts`.
    pub url: String,
    /// Extra labels put on every alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout", with = "duration")]
    pub timeout: Duration,
}

/// `type = "logfile"`: one JSON line per notification in a size-rotated file, for systems that
/// pick alerts up from log files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogfileSpec {
    pub path: PathBuf,
    /// A file that would grow beyond this is renamed `<stem>-<UTC time>.<ext>` first.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept; older ones are deleted.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

/// **The one registration of the notifier types**: variant, spec struct, and the name written
/// as `type = "…"`. [`NotifierSpec`], `TYPES`, `type_name`, the config parser
/// ([`NotifierSpec::deserialize_kind`]) and the builder of `vitals-notify` derive from it.
///
/// It calls the macro `$callback` with the list; a callback matches
/// `$($variant:ident($spec:ty) = $name:literal,)*`.
#[macro_export]
macro_rules! notifier_kinds {
    ($callback:ident) => {
        $callback! {
            Email($crate::notify::EmailSpec) = "email",
            Slack($crate::notify::SlackSpec) = "slack",
            Teams($crate::notify::TeamsSpec) = "teams",
            Webhook($crate::notify::WebhookSpec) = "webhook",
            Alertmanager($crate::notify::AlertmanagerSpec) = "alertmanager",
            Logfile($crate::notify::LogfileSpec) = "logfile",
        }
    };
}

macro_rules! define_notifier_kinds {
    ($($variant:ident($spec:ty) = $name:literal,)*) => {
        /// Where notifications of one `[[notifier]]` go: one variant per registered type
        /// ([`notifier_kinds!`]).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum NotifierSpec {
            $(#[serde(rename = $name)] $variant($spec),)*
        }

        impl NotifierSpec {
            /// Every type's name, in registration order.
            pub const TYPES: [&'static str; [$($name),*].len()] = [$($name),*];

            pub fn type_name(&self) -> &'static str {
                match self {
                    $(NotifierSpec::$variant(_) => $name,)*
                }
            }

            /// Hands the spec type registered as `name` to `visitor`; `None` for a name that is
            /// not registered.
            pub fn deserialize_kind<V: crate::spec::SpecVisitor<NotifierSpec>>(
                name: &str,
                visitor: V,
            ) -> Option<V::Out> {
                match name {
                    $($name => Some(visitor.visit::<$spec>(NotifierSpec::$variant)),)*
                    _ => None,
                }
            }
        }
    };
}

notifier_kinds!(define_notifier_kinds);

impl NotifierSpec {
    /// Where it delivers, without secrets, for people choosing one to test: the SMTP server
    /// and static recipients, the URL as scheme and host only (chat webhook URLs carry their
    /// token), or the file.
    pub fn target(&self) -> String {
        match self {
            NotifierSpec::Email(s) => {
                let mut t = format!("smtp {}:{}", s.smtp_host.trim(), s.port());
                if !s.to.is_empty() {
                    t.push_str(" to ");
                    t.push_str(&s.to.join(", "));
                }
                if s.to_contacts {
                    t.push_str(if s.to.is_empty() {
                        " to the alerts' contacts"
                    } else {
                        " and the alerts' contacts"
                    });
                }
                t
            }
            NotifierSpec::Slack(SlackSpec { url, .. })
            | NotifierSpec::Teams(TeamsSpec { url, .. })
            | NotifierSpec::Webhook(WebhookSpec { url, .. })
            | NotifierSpec::Alertmanager(AlertmanagerSpec { url, .. }) => origin(url),
            NotifierSpec::Logfile(s) => s.path.display().to_string(),
        }
    }

    /// Every problem of the spec as `(key, message)`, e.g. `("to[1]", "…")`; empty when valid.
    /// Pure checks only: whether `template_dir` exists is found out when the notifier is built.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        match self {
            NotifierSpec::Email(s) => validate_email(s, &mut errs),
            NotifierSpec::Slack(s) => {
                check_url("url", &s.url, &mut errs);
                check_timeout(s.timeout, &mut errs);
            }
            NotifierSpec::Teams(s) => {
                check_url("url", &s.url, &mut errs);
                check_timeout(s.timeout, &mut errs);
            }
            NotifierSpec::Webhook(s) => {
                check_url("url", &s.url, &mut errs);
                check_timeout(s.timeout, &mut errs);
                if s.secret.as_deref().is_some_and(str::is_empty) {
                    errs.push(("secret".into(), "must not be empty when set".into()));
                }
                for (name, value) in &s.headers {
                    let key = format!("headers.{name}");
                    if let Err(e) = check_header(name, value) {
                        errs.push((key, e));
                    }
                }
            }
            NotifierSpec::Alertmanager(s) => {
                check_url("url", &s.url, &mut errs);
                check_timeout(s.timeout, &mut errs);
                for (name, value) in &s.labels {
                    let key = format!("labels.{name}");
                    if !is_label_name(name) {
                        errs.push((
                            key,
                            "label names must match [a-zA-Z_][a-zA-Z0-9_]*".to_string(),
                        ));
                    } else if value.is_empty() {
                        errs.push((key, "label value must not be empty".to_string()));
                    }
                }
            }
            NotifierSpec::Logfile(s) => {
                if s.path.as_os_str().is_empty() {
                    errs.push(("path".into(), "must not be empty".into()));
                } else if s.path.file_name().is_none() {
                    errs.push(("path".into(), format!("{:?} names no file", s.path)));
                }
                if s.max_bytes == 0 {
                    errs.push(("max_bytes".into(), "must be greater than 0".into()));
                }
            }
        }
        errs
    }
}

/// `scheme://host[:port]` of a URL: no user info, path or query (they may hold secrets).
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

fn validate_email(s: &EmailSpec, errs: &mut Vec<(String, String)>) {
    let host = s.smtp_host.trim();
    if host.is_empty() {
        errs.push(("smtp_host".into(), "must not be empty".into()));
    } else if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
        errs.push((
            "smtp_host".into(),
            format!("{host:?} is not a host name (give the port as smtp_port)"),
        ));
    }
    if s.smtp_port == Some(0) {
        errs.push(("smtp_port".into(), "must be greater than 0".into()));
    }
    match (&s.username, &s.password) {
        (Some(_), None) => {
            errs.push(("password".into(), "is required when username is set".into()))
        }
        (None, Some(_)) => {
            errs.push(("username".into(), "is required when password is set".into()))
        }
        (Some(u), Some(_)) if u.is_empty() => {
            errs.push(("username".into(), "must not be empty".into()))
        }
        _ => {}
    }
    if let Err(e) = check_mailbox(&s.from) {
        errs.push(("from".into(), e));
    }
    for (i, to) in s.to.iter().enumerate() {
        if let Err(e) = check_mailbox(to) {
            errs.push((format!("to[{i}]"), e));
        }
    }
    if s.to.is_empty() && !s.to_contacts {
        errs.push((
            "to".into(),
            "no recipients: list addresses in `to` or set `to_contacts = true`".into(),
        ));
    }
    if s.ca_file.is_some() && s.tls == SmtpTls::None {
        errs.push((
            "ca_file".into(),
            "is only used with tls = \"implicit\" or \"starttls\"".into(),
        ));
    }
    if let Some(p) = &s.subject_prefix {
        if p.contains(['\r', '\n']) {
            errs.push(("subject_prefix".into(), "must be one line".into()));
        }
    }
    check_timeout(s.timeout, errs);
}

fn check_timeout(t: Duration, errs: &mut Vec<(String, String)>) {
    if t.is_zero() {
        errs.push(("timeout".into(), "must be greater than 0".into()));
    }
}

fn check_url(key: &str, url: &str, errs: &mut Vec<(String, String)>) {
    if let Err(e) = check_http_url(url) {
        errs.push((key.to_string(), e));
    }
}

/// An absolute `http://` or `https://` URL with a host. Messages never repeat the URL, which
/// may carry a token.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        r
    } else {
        return Err("must be an absolute http:// or https:// URL".into());
    };
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err("URL has no host".into());
    }
    if let Some(port) = host_port
        .rsplit_once(']')
        .map_or(host_port, |(_, p)| p)
        .split_once(':')
        .map(|(_, p)| p)
    {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("URL port {port:?} is not a port number")),
        }
    }
    Ok(())
}

/// Checks `addr@domain` or `Display Name <addr@domain>`: the shape of an address, not whether
/// it exists (only the receiving server can tell).
pub fn check_mailbox(s: &str) -> Result<(), String> {
    let s = s.trim();
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        (None, false) => s,
        _ => return Err(format!("{s:?} is not an e-mail address (unbalanced <>)")),
    };
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err(format!("{s:?} is not an e-mail address (no @)"));
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c);
    if local.is_empty() || local.contains(bad) || local.contains('@') {
        return Err(format!("{s:?} is not an e-mail address (bad local part)"));
    }
    if domain.is_empty()
        || domain.contains(bad)
        || domain.contains('@')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(format!("{s:?} is not an e-mail address (bad domain)"));
    }
    Ok(())
}

/// Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if value.contains(|c: char| c.is_control() && c != '\t') {
        return Err("header value must not contain control characters".into());
    }
    Ok(())
}

/// A short, stable hex digest of `text` (FNV-1a, 64 bits): for ids derived from other ids,
/// not for security.
pub fn short_digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(to: &[&str]) -> EmailSpec {
        EmailSpec {
            smtp_host: "mail.example.org".into(),
            smtp_port: None,
            tls: SmtpTls::default(),
            username: None,
            password: None,
            from: "Vitals <vitals@example.org>".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            to_contacts: true,
            subject_prefix: None,
            template_dir: None,
            timeout: default_email_timeout(),
            ca_file: None,
        }
    }

    fn keys(errs: &[(String, String)]) -> Vec<&str> {
        errs.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn targets_name_no_secrets() {
        let s = NotifierSpec::Slack(SlackSpec {
            url: "https://hooks.slack.com/services/T0/B0/SECRET?x=1".into(),
            timeout: default_http_timeout(),
        });
        assert_eq!(s.target(), "https://hooks.slack.com");
        let w = NotifierSpec::Webhook(WebhookSpec {
            url: "http://user:pw@127.0.0.1:9093/hook#frag".into(),
            secret: Some("s".into()),
            headers: BTreeMap::new(),
            timeout: default_http_timeout(),
        });
        assert_eq!(w.target(), "http://127.0.0.1:9093");
        let mut e = email(&["ops@example.org"]);
        e.password = Some("hunter2".into());
        let t = NotifierSpec::Email(e).target();
        assert_eq!(
            t,
            "smtp mail.example.org:587 to ops@example.org and the alerts' contacts"
        );
    }

    #[test]
    fn a_test_message_is_marked_and_belongs_to_no_alert() {
        let n = Notification::test("ops", "alice", Timestamp(1_000), None);
        assert_eq!(n.kind, NotificationKind::Test);
        assert_eq!(n.notifier, "ops");
        assert_eq!(n.alerts.len(), 1);
        assert_eq!(n.alerts[0].alert_id, 0);
        assert!(n.alerts[0].title.starts_with("Test message"));
        assert!(n.alerts[0].reason.contains("alice"));
        assert_eq!(serde_json::to_value(&n).unwrap()["kind"], "test");
    }

    #[test]
    fn kinds_round_trip_lowercase() {
        for k in NotificationKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(NotificationKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn notifier_specs_deserialize_by_type_with_defaults() {
        let s: NotifierSpec = serde_json::from_value(serde_json::json!({
            "type": "email", "smtp_host": "mail", "from": "a@b.example", "tls": "implicit"
        }))
        .unwrap();
        let NotifierSpec::Email(e) = &s else {
            panic!("not email: {s:?}")
        };
        assert_eq!(e.port(), 465);
        assert!(e.to_contacts);
        assert_eq!(e.timeout, Duration::from_secs(30));
        assert_eq!(s.type_name(), "email");

        let s: NotifierSpec = serde_json::from_value(serde_json::json!({
            "type": "logfile", "path": "/var/log/vitals/alerts.log"
        }))
        .unwrap();
        assert_eq!(
            s,
            NotifierSpec::Logfile(LogfileSpec {
                path: "/var/log/vitals/alerts.log".into(),
                max_bytes: 10 * 1024 * 1024,
                keep: 10
            })
        );
        let s: NotifierSpec = serde_json::from_value(serde_json::json!({
            "type": "slack", "url": "https://hooks.example/x", "timeout": "3s"
        }))
        .unwrap();
        assert_eq!(
            s,
            NotifierSpec::Slack(SlackSpec {
                url: "https://hooks.example/x".into(),
                timeout: Duration::from_secs(3)
            })
        );
        for t in NotifierSpec::TYPES {
            assert!(
                serde_json::from_value::<NotifierSpec>(serde_json::json!({"type": t})).is_err()
            );
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let r: Result<SlackSpec, _> = serde_json::from_value(serde_json::json!({
            "url": "https://hooks.example/x", "chanel": "#ops"
        }));
        assert!(r.unwrap_err().to_string().contains("chanel"));
        let r: Result<NotifierSpec, _> = serde_json::from_value(serde_json::json!({
            "type": "teams", "url": "https://hooks.example/x", "colour": "red"
        }));
        assert!(r.unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn email_validation_names_each_bad_key() {
        assert_eq!(
            NotifierSpec::Email(email(&["ops@example.org"])).validate(),
            []
        );
        let mut e = email(&["ops@example.org", "not an address", "x@"]);
        e.smtp_host = "mail:25".into();
        e.smtp_port = Some(0);
        e.from = "nobody".into();
        e.username = Some("u".into());
        let errs = NotifierSpec::Email(e).validate();
        assert_eq!(
            keys(&errs),
            [
                "smtp_host",
                "smtp_port",
                "password",
                "from",
                "to[1]",
                "to[2]"
            ]
        );
        let mut e = email(&[]);
        e.to_contacts = false;
        e.tls = SmtpTls::None;
        e.ca_file = Some("/etc/vitals/ca.pem".into());
        let errs = NotifierSpec::Email(e).validate();
        assert_eq!(keys(&errs), ["to", "ca_file"]);
        assert!(errs[0].1.contains("no recipients"));
        assert_eq!(NotifierSpec::Email(email(&["a@b.example"])).validate(), []);
    }

    #[test]
    fn mailboxes_and_urls() {
        for ok in ["a@b.example", "Ops Team <ops@h.example>", " x.y+z@h "] {
            assert_eq!(check_mailbox(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a", "@h", "a@", "a b@h", "a@h..x", "Ops <a@h", "a@b@c"] {
            assert!(check_mailbox(bad).is_err(), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:9093",
            "https://hooks.example/services/T/B/X?x=1",
            "http://[::1]:8080/x",
            "https://user@host",
        ] {
            assert_eq!(check_http_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "hooks.example/x",
            "ftp://h/x",
            "http://",
            "http:///x",
            "http://h:0/",
            "http://h:x/",
            "https://h/a b",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_specs_validate_url_headers_and_labels() {
        let bad = NotifierSpec::Webhook(WebhookSpec {
            url: "example.org/hook".into(),
            secret: Some(String::new()),
            headers: [("Bad Name".to_string(), "v".to_string())].into(),
            timeout: Duration::ZERO,
        });
        assert_eq!(
            keys(&bad.validate()),
            ["url", "timeout", "secret", "headers.Bad Name"]
        );
        let bad = NotifierSpec::Alertmanager(AlertmanagerSpec {
            url: "http://127.0.0.1:9093".into(),
            labels: [
                ("env".to_string(), "prod".to_string()),
                ("team-x".to_string(), "a".to_string()),
                ("empty".to_string(), String::new()),
            ]
            .into(),
            timeout: default_http_timeout(),
        });
        assert_eq!(keys(&bad.validate()), ["labels.empty", "labels.team-x"]);
        let bad = NotifierSpec::Logfile(LogfileSpec {
            path: PathBuf::new(),
            max_bytes: 0,
            keep: 0,
        });
        assert_eq!(keys(&bad.validate()), ["path", "max_bytes"]);
    }

    #[test]
    fn notification_json_round_trips() {
        let n = Notification {
            id: "n1".into(),
            notifier: "ops".into(),
            kind: NotificationKind::Firing,
            alerts: vec![AlertView {
                alert_id: 7,
                rule: "r".into(),
                title: "a/c is CRIT".into(),
                status: Status::Crit,
                state: "firing".into(),
                asset: Some("a".into()),
                asset_name: None,
                check: Some("c".into()),
                group: None,
                assets: vec![],
                reason: "connection refused".into(),
                value: Some(1.5),
                labels: BTreeMap::new(),
                started: Timestamp(1_700_000_000_000),
                resolved: None,
                url: None,
                contacts: vec!["x@y.example".into()],
                template: None,
                details: BTreeMap::new(),
            }],
            created: Timestamp(1_700_000_060_000),
        };
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["kind"], "firing");
        assert_eq!(v["alerts"][0]["status"], "crit");
        assert_eq!(v["alerts"][0]["started"], 1_700_000_000_000_i64);
        assert_eq!(serde_json::from_value::<Notification>(v).unwrap(), n);
    }
}
