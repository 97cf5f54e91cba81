//! `type = "email"`: one multipart (plain text + HTML) mail per notification, over SMTP.
//!
//! Recipients are `to` plus, when `to_contacts` is set, the contacts of every alert in the
//! notification, without duplicates (compared case-insensitively). Contacts go in `To` and
//! the static recipients in `Cc` — the support team reads along, as the clinics' mails of the
//! broker monitor did; without contacts the static recipients are the `To`. A contact address
//! that does not parse is skipped and named in [`Delivered::detail`]; no usable recipient at
//! all is the permanent error `no recipients`.
//!
//! Every mail carries `X-Vitals-Notification: <id>` and a `Message-ID` derived from the
//! notification id, so a resend after a lost answer is recognisable as the same message.
//!
//! # Templates
//!
//! Subject, text and HTML are rendered with minijinja from `<kind>.subject`, `<kind>.txt`
//! and `<kind>.html` (kinds: `firing`, `reminder`, `escalation`, `resolved`, `acknowledged`,
//! `flapping`, and `test` for the test messages of `vitals notify test`). Built-in templates are compiled in; a file of the same name in `template_dir`
//! replaces one, and a missing file falls back to the built-in one. The built-ins extend
//! `_base.txt` and `_base.html`, which can be overridden (or extended) the same way.
//! Templates are read and compiled once, when the notifier is built; a syntax error is a
//! configuration error. `.html` templates escape values for HTML; `trim_blocks` and
//! `lstrip_blocks` are on. The subject is made one line and prefixed with `subject_prefix`
//! (`[Vitals]` by default). `${name}` (broker-monitor's placeholders) means `{{ name }}`, and a
//! file that is not UTF-8 is read as ISO-8859-1 (as broker-monitor's template files are).
//!
//! # Template families
//!
//! A rule with `template = "<family>"` has its firing, reminder and escalation mails rendered
//! from `<family>.subject`, `<family>.html` and `<family>.txt` instead (one alert per mail; the
//! subject as written, without `subject_prefix`). Built in are broker-monitor's node mails,
//! German — `aktin_offline`, `aktin_no_imports`, `aktin_outdated` (subjects "Automatische
//! Information: AKTIN DWH Offline" / "… Keine Imports" / "… Version veraltet") — and English
//! (`aktin_offline_en`, …). They see, besides the context below, broker-monitor's variables
//! from the alert's `details` (the node asset's metadata): `clinic_name` (`long_name`, else the
//! asset's name), `last_contact` and `last_write` (`dd.mm.YYYY` in Europe/Berlin),
//! `version_dwh` (the node's raw `dwh-j2ee` text), `current_version_dwh`,
//! `current_version_i2b2`, and `node_id`. A `template_dir` may override them under these names
//! or broker-monitor's own file names (`template_mail_offline.html`,
//! `template_mail_no_imports.html`, `template_mail_outdated_version.html`), and may add
//! families of its own (`<family>.subject` plus `.html` and/or `.txt`; a missing part is made
//! from the other). A rule naming a family the notifier does not have gets the generic mail.
//!
//! Template context:
//! - `kind` (`"firing"`…), `kind_label` (`"FIRING"`…), `headline` (the title, or
//!   `"<title> and N more"`), `count` (number of alerts), `status` (worst status, `ok` when
//!   resolved), `status_label`
//! - `notification`: `id`, `notifier`, `created` (`2024-05-02 08:15 UTC`)
//! - `alerts`: list of alerts, `alert`: the first one; each with the [`AlertView`] fields
//!   (`title`, `rule`, `asset`, `asset_name`, `check`, `group`, `assets`, `reason`, `value`,
//!   `labels`, `url`, `state`, `alert_id`) and `status` (`crit`), `status_label` (`CRIT`),
//!   `asset_label` (`"Name (id)"`), `started`/`resolved` (formatted), `duration` (`"5m 10s"`:
//!   active so far, or until resolved).
//!
//! [`AlertView`]: vitals_core::notify::AlertView

use crate::text::{
    active_for, asset_label, display_status, headline, kind_label, short_time, status_label,
};
use crate::{Delivered, Notifier, NotifyError};
use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use vitals_core::notify::{EmailSpec, Notification, NotificationKind, SmtpTls};

/// The header that names the notification a mail was sent for.
pub const HEADER_NOTIFICATION: &str = "X-Vitals-Notification";

const DEFAULT_PREFIX: &str = "[Vitals]";

/// Built-in templates: (name, source).
const BUILTIN: &[(&str, &str)] = &[
    ("_base.txt", include_str!("../templates/_base.txt")),
    ("_base.html", include_str!("../templates/_base.html")),
    (
        "firing.subject",
        include_str!("../templates/firing.subject"),
    ),
    ("firing.txt", include_str!("../templates/firing.txt")),
    ("firing.html", include_str!("../templates/firing.html")),
    (
        "reminder.subject",
        include_str!("../templates/reminder.subject"),
    ),
    ("reminder.txt", include_str!("../templates/reminder.txt")),
    ("reminder.html", include_str!("../templates/reminder.html")),
    (
        "escalation.subject",
        include_str!("../templates/escalation.subject"),
    ),
    (
        "escalation.txt",
        include_str!("../templates/escalation.txt"),
    ),
    (
        "escalation.html",
        include_str!("../templates/escalation.html"),
    ),
    (
        "resolved.subject",
        include_str!("../templates/resolved.subject"),
    ),
    ("resolved.txt", include_str!("../templates/resolved.txt")),
    ("resolved.html", include_str!("../templates/resolved.html")),
    (
        "acknowledged.subject",
        include_str!("../templates/acknowledged.subject"),
    ),
    (
        "acknowledged.txt",
        include_str!("../templates/acknowledged.txt"),
    ),
    (
        "acknowledged.html",
        include_str!("../templates/acknowledged.html"),
    ),
    (
        "flapping.subject",
        include_str!("../templates/flapping.subject"),
    ),
    ("flapping.txt", include_str!("../templates/flapping.txt")),
    ("flapping.html", include_str!("../templates/flapping.html")),
    ("test.subject", include_str!("../templates/test.subject")),
    ("test.txt", include_str!("../templates/test.txt")),
    ("test.html", include_str!("../templates/test.html")),
];

/// Built-in template families (broker-monitor's node mails) and the files they use.
const BUILTIN_FAMILIES: &[(&str, &str)] = &[
    (
        "_aktin_de.html",
        include_str!("../templates/aktin/_aktin_de.html"),
    ),
    (
        "_aktin_en.html",
        include_str!("../templates/aktin/_aktin_en.html"),
    ),
    (
        "aktin_offline.subject",
        include_str!("../templates/aktin/aktin_offline.subject"),
    ),
    (
        "aktin_offline.html",
        include_str!("../templates/aktin/aktin_offline.html"),
    ),
    (
        "aktin_offline.txt",
        include_str!("../templates/aktin/aktin_offline.txt"),
    ),
    (
        "aktin_no_imports.subject",
        include_str!("../templates/aktin/aktin_no_imports.subject"),
    ),
    (
        "aktin_no_imports.html",
        include_str!("../templates/aktin/aktin_no_imports.html"),
    ),
    (
        "aktin_no_imports.txt",
        include_str!("../templates/aktin/aktin_no_imports.txt"),
    ),
    (
        "aktin_outdated.subject",
        include_str!("../templates/aktin/aktin_outdated.subject"),
    ),
    (
        "aktin_outdated.html",
        include_str!("../templates/aktin/aktin_outdated.html"),
    ),
    (
        "aktin_outdated.txt",
        include_str!("../templates/aktin/aktin_outdated.txt"),
    ),
    (
        "aktin_offline_en.subject",
        include_str!("../templates/aktin/aktin_offline_en.subject"),
    ),
    (
        "aktin_offline_en.html",
        include_str!("../templates/aktin/aktin_offline_en.html"),
    ),
    (
        "aktin_offline_en.txt",
        include_str!("../templates/aktin/aktin_offline_en.txt"),
    ),
    (
        "aktin_no_imports_en.subject",
        include_str!("../templates/aktin/aktin_no_imports_en.subject"),
    ),
    (
        "aktin_no_imports_en.html",
        include_str!("../templates/aktin/aktin_no_imports_en.html"),
    ),
    (
        "aktin_no_imports_en.txt",
        include_str!("../templates/aktin/aktin_no_imports_en.txt"),
    ),
    (
        "aktin_outdated_en.subject",
        include_str!("../templates/aktin/aktin_outdated_en.subject"),
    ),
    (
        "aktin_outdated_en.html",
        include_str!("../templates/aktin/aktin_outdated_en.html"),
    ),
    (
        "aktin_outdated_en.txt",
        include_str!("../templates/aktin/aktin_outdated_en.txt"),
    ),
];

/// broker-monitor's template file names, accepted in `template_dir` for the built-in families.
const ORIGINAL_NAMES: &[(&str, &str)] = &[
    ("template_mail_offline.html", "aktin_offline.html"),
    ("template_mail_no_imports.html", "aktin_no_imports.html"),
    ("template_mail_outdated_version.html", "aktin_outdated.html"),
];

/// Most template files read from a `template_dir`, and their largest size.
const MAX_TEMPLATE_FILES: usize = 500;
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// Reads a template file: UTF-8, else ISO-8859-1 (broker-monitor's files are Latin-1).
fn read_template(p: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("template_dir: cannot read {}: {e}", p.display()))?;
    if meta.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "template_dir: {} is larger than {MAX_TEMPLATE_BYTES} bytes",
            p.display()
        ));
    }
    let bytes =
        std::fs::read(p).map_err(|e| format!("template_dir: cannot read {}: {e}", p.display()))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|b| char::from(*b)).collect(),
    })
}

/// broker-monitor's `${name}` placeholders as template expressions (`{{ name }}`).
fn dollar_placeholders(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && after[name_len..].starts_with('}');
        if valid {
            out.push_str("{{ ");
            out.push_str(name);
            out.push_str(" }}");
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A plain-text version of an HTML mail (for a family without a `.txt`).
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let t = tag.trim_start_matches('/').to_ascii_lowercase();
                if t.starts_with("p")
                    || t.starts_with("br")
                    || t.starts_with("div")
                    || t.starts_with("tr")
                {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    let text = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut joined = lines.join("\n");
    while joined.contains("\n\n\n") {
        joined = joined.replace("\n\n\n", "\n\n");
    }
    joined.trim().to_string() + "\n"
}

/// `dd.mm.YYYY` in Europe/Berlin of an RFC 3339 time (broker-monitor's mail dates); the text
/// as it is when it is not a time.
pub fn berlin_date(t: &str) -> String {
    match vitals_core::Timestamp::parse(t.trim()) {
        Some(ts) => ts
            .to_datetime()
            .with_timezone(&chrono_tz::Europe::Berlin)
            .format("%d.%m.%Y")
            .to_string(),
        None => t.to_string(),
    }
}

/// The three parts of one rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates of one email notifier.
pub struct Templates {
    env: minijinja::Environment<'static>,
    prefix: String,
    /// Template families available (those with a `.subject`).
    families: std::collections::BTreeSet<String>,
}

impl Templates {
    /// The built-in templates, each replaced by `<dir>/<name>` when that file exists.
    pub fn load(dir: Option<&Path>, subject_prefix: Option<&str>) -> Result<Templates, String> {
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // An undefined name renders empty, as in Jinja, so user templates may test optional
        // fields loosely; a syntax error is still caught here.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env.set_formatter(|out, state, value| {
            // `none` renders empty, like an undefined value, so optional fields need no `if`.
            let value = if value.is_none() {
                &minijinja::Value::UNDEFINED
            } else {
                value
            };
            // The default HTML escaping also turns `/` into `&#x2f;`, which mangles the URLs
            // in a mail's source; escaping the five special characters is enough.
            if state.auto_escape() == minijinja::AutoEscape::Html
                && !value.is_safe()
                && !value.is_undefined()
            {
                out.write_str(&html_escape(&value.to_string()))?;
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        if let Some(d) = dir {
            if !d.is_dir() {
                return Err(format!("template_dir: {} is not a directory", d.display()));
            }
        }
        // name → source: the built-ins, then what the directory has.
        let mut sources: BTreeMap<String, String> = BUILTIN
            .iter()
            .chain(BUILTIN_FAMILIES)
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        if let Some(d) = dir {
            let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(d)
                .map_err(|e| format!("template_dir: cannot read {}: {e}", d.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let mut taken = 0usize;
            for p in files {
                let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                let name = ORIGINAL_NAMES
                    .iter()
                    .find(|(orig, _)| *orig == file)
                    .map_or(file, |(_, ours)| *ours);
                let known = sources.contains_key(name);
                let family_part = [".subject", ".html", ".txt"]
                    .iter()
                    .any(|ext| name.ends_with(ext));
                if !known && !family_part {
                    continue;
                }
                taken += 1;
                if taken > MAX_TEMPLATE_FILES {
                    return Err(format!(
                        "template_dir: {} has more than {MAX_TEMPLATE_FILES} template files",
                        d.display()
                    ));
                }
                // broker-monitor's own file wins over ours only if ours is not there too.
                if name != file && d.join(name).is_file() {
                    continue;
                }
                sources.insert(name.to_string(), read_template(&p)?);
            }
        }
        let mut families = std::collections::BTreeSet::new();
        for name in sources.keys() {
            if let Some(f) = name.strip_suffix(".subject") {
                if !NotificationKind::ALL.iter().any(|k| k.as_str() == f) {
                    families.insert(f.to_string());
                }
            }
        }
        // A family with only one of .html / .txt gets the other made from it.
        for f in &families {
            let (html, txt) = (format!("{f}.html"), format!("{f}.txt"));
            match (sources.contains_key(&html), sources.contains_key(&txt)) {
                (true, true) => {}
                (true, false) => {
                    let derived = format!("{{% include \"{html}\" %}}");
                    sources.insert(format!("{f}.txt.html-source"), derived);
                }
                (false, true) => {
                    let derived = format!(
                        "<!DOCTYPE html>\n<html><body><pre>{{% filter escape %}}{{% include \"{txt}\" %}}{{% endfilter %}}</pre></body></html>\n"
                    );
                    sources.insert(html, derived);
                }
                (false, false) => {
                    return Err(format!(
                        "template_dir: template family {f} has a .subject but neither {f}.html nor {f}.txt"
                    ))
                }
            }
        }
        for (name, source) in sources {
            env.add_template_owned(name.clone(), dollar_placeholders(&source))
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        let t = Templates {
            env,
            prefix: subject_prefix.unwrap_or(DEFAULT_PREFIX).to_string(),
            families,
        };
        // Render a sample of each kind now, so that a template referring to a missing one
        // (`{% extends "nope" %}`) fails at start-up and not at the first alert.
        for kind in NotificationKind::ALL {
            t.render(&sample(kind))
                .map_err(|e| format!("template for {kind}: {e}"))?;
        }
        for f in &t.families {
            let mut n = sample(NotificationKind::Firing);
            n.alerts.truncate(1);
            n.alerts[0].template = Some(f.clone());
            t.render(&n)
                .map_err(|e| format!("template family {f}: {e}"))?;
        }
        Ok(t)
    }

    /// The template families this notifier has.
    pub fn families(&self) -> impl Iterator<Item = &str> {
        self.families.iter().map(String::as_str)
    }

    /// The family a notification is rendered with, if any.
    fn family_of<'a>(&self, n: &'a Notification) -> Option<&'a str> {
        if !matches!(
            n.kind,
            NotificationKind::Firing | NotificationKind::Reminder | NotificationKind::Escalation
        ) {
            return None;
        }
        let f = n.alerts.first()?.template.as_deref()?;
        if self.families.contains(f) {
            Some(f)
        } else {
            tracing::warn!(
                family = f,
                "no such e-mail template family; sending the generic mail"
            );
            None
        }
    }

    /// Renders a notification with a template family: broker-monitor's variables on top.
    fn render_family(&self, family: &str, n: &Notification) -> Result<Rendered, String> {
        let a = n.alerts.first().ok_or("a notification without alerts")?;
        let d = &a.details;
        let text = |k: &str| {
            d.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let date = |k: &str| text(k).map_or_else(|| "-".to_string(), |v| berlin_date(&v));
        let clinic = text("long_name")
            .or_else(|| a.asset_name.clone())
            .or_else(|| a.asset.clone())
            .unwrap_or_default();
        let ctx = minijinja::context! {
            clinic_name => clinic,
            last_contact => date("last_contact"),
            last_write => date("last_write"),
            version_dwh => text("dwh_version").unwrap_or_else(|| "-".into()),
            current_version_dwh => text("expected_dwh_version").unwrap_or_else(|| "-".into()),
            current_version_i2b2 => text("expected_i2b2_version").unwrap_or_else(|| "-".into()),
            node_id => text("broker_node").or_else(|| a.asset.clone()).unwrap_or_default(),
            details => d,
            ..minijinja::Value::from_serialize(context(n))
        };
        let render = |name: &str| -> Result<String, String> {
            let tmpl = self
                .env
                .get_template(name)
                .map_err(|e| format!("{name}: {e}"))?;
            tmpl.render(&ctx).map_err(|e| format!("{name}: {e:#}"))
        };
        let subject = render(&format!("{family}.subject"))?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let html = render(&format!("{family}.html"))?;
        let text = match self.env.get_template(&format!("{family}.txt")) {
            Ok(_) => render(&format!("{family}.txt"))?,
            Err(_) => html_to_text(&render(&format!("{family}.txt.html-source"))?),
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    /// Renders subject, text and HTML for a notification.
    pub fn render(&self, n: &Notification) -> Result<Rendered, String> {
        if let Some(f) = self.family_of(n) {
            return self.render_family(f, n);
        }
        let ctx = context(n);
        let kind = n.kind.as_str();
        let render = |part: &str| -> Result<String, String> {
            let name = format!("{kind}.{part}");
            let tmpl = self
                .env
                .get_template(&name)
                .map_err(|e| format!("{name}: {e}"))?;
            tmpl.render(&ctx).map_err(|e| format!("{name}: {e:#}"))
        };
        let subject_line = render("subject")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let subject = if self.prefix.is_empty() {
            subject_line
        } else {
            format!("{} {subject_line}", self.prefix)
        };
        Ok(Rendered {
            subject,
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Serialize)]
struct Ctx<'a> {
    kind: &'a str,
    kind_label: &'a str,
    headline: String,
    count: usize,
    status: &'a str,
    status_label: &'a str,
    notification: NotificationCtx<'a>,
    alert: Option<AlertCtx<'a>>,
    alerts: Vec<AlertCtx<'a>>,
}

#[derive(Serialize)]
struct NotificationCtx<'a> {
    id: &'a str,
    notifier: &'a str,
    created: String,
}

#[derive(Serialize, Clone)]
struct AlertCtx<'a> {
    alert_id: i64,
    rule: &'a str,
    title: &'a str,
    status: &'a str,
    status_label: &'a str,
    state: &'a str,
    asset: Option<&'a str>,
    asset_name: Option<&'a str>,
    asset_label: Option<String>,
    check: Option<&'a str>,
    group: Option<&'a str>,
    assets: &'a [String],
    reason: &'a str,
    value: Option<f64>,
    labels: &'a BTreeMap<String, String>,
    started: String,
    resolved: Option<String>,
    duration: String,
    url: Option<&'a str>,
}

fn context(n: &Notification) -> Ctx<'_> {
    let alerts: Vec<AlertCtx<'_>> = n
        .alerts
        .iter()
        .map(|a| AlertCtx {
            alert_id: a.alert_id,
            rule: &a.rule,
            title: &a.title,
            status: a.status.as_str(),
            status_label: status_label(a.status),
            state: &a.state,
            asset: a.asset.as_deref(),
            asset_name: a.asset_name.as_deref(),
            asset_label: asset_label(a),
            check: a.check.as_deref(),
            group: a.group.as_deref(),
            assets: &a.assets,
            reason: &a.reason,
            value: a.value,
            labels: &a.labels,
            started: short_time(a.started),
            resolved: a.resolved.map(short_time),
            duration: active_for(a, n.created),
            url: a.url.as_deref(),
        })
        .collect();
    let status = display_status(n);
    Ctx {
        kind: n.kind.as_str(),
        kind_label: kind_label(n.kind),
        headline: headline(n),
        count: n.alerts.len(),
        status: status.as_str(),
        status_label: status_label(status),
        notification: NotificationCtx {
            id: &n.id,
            notifier: &n.notifier,
            created: short_time(n.created),
        },
        alert: alerts.first().cloned(),
        alerts,
    }
}

/// A representative notification to compile-check templates with.
fn sample(kind: NotificationKind) -> Notification {
    use vitals_core::notify::AlertView;
    use vitals_core::{Status, Timestamp};
    let view = AlertView {
        alert_id: 1,
        rule: "sample".into(),
        title: "sample/check is CRIT".into(),
        status: Status::Crit,
        state: "firing".into(),
        asset: Some("sample".into()),
        asset_name: Some("Sample".into()),
        check: Some("check".into()),
        group: Some("group".into()),
        assets: vec!["a".into(), "b".into()],
        reason: "sample reason".into(),
        value: Some(1.0),
        labels: BTreeMap::new(),
        started: Timestamp(0),
        resolved: Some(Timestamp(60_000)),
        url: Some("http://127.0.0.1/".into()),
        contacts: vec![],
        template: None,
        details: BTreeMap::new(),
    };
    Notification {
        id: "sample".into(),
        notifier: "sample".into(),
        kind,
        alerts: vec![view.clone(), view],
        created: Timestamp(120_000),
    }
}

pub struct EmailNotifier {
    id: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    to_contacts: bool,
    templates: Templates,
    /// `host:port`, for messages.
    server: String,
}

impl EmailNotifier {
    pub fn new(id: &str, spec: &EmailSpec) -> Result<EmailNotifier, String> {
        let from: Mailbox = spec
            .from
            .trim()
            .parse()
            .map_err(|e| format!("from: {:?} is not a valid address ({e})", spec.from))?;
        let to = spec
            .to
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.trim()
                    .parse::<Mailbox>()
                    .map_err(|e| format!("to[{i}]: {s:?} is not a valid address ({e})"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let host = spec.smtp_host.trim();
        let builder = match spec.tls {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| format!("smtp_host: cannot set up TLS for {host:?}: {e}"))?;
        let mut builder = builder.port(spec.port()).timeout(Some(spec.timeout));
        if let Some(ca) = &spec.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("ca_file: cannot read {}: {e}", ca.display()))?;
            let no_cert = || format!("ca_file: {} holds no PEM certificate", ca.display());
            // An empty bundle parses fine and would silently trust nothing extra.
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(no_cert());
            }
            let cert = Certificate::from_pem(&pem).map_err(|e| format!("{} ({e})", no_cert()))?;
            let params = TlsParameters::builder(host.to_string())
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(|e| format!("ca_file: cannot set up TLS with {}: {e}", ca.display()))?;
            builder = match spec.tls {
                SmtpTls::Implicit => builder.tls(Tls::Wrapper(params)),
                SmtpTls::Starttls => builder.tls(Tls::Required(params)),
                // Refused by validation; a plain connection has no use for a CA.
                SmtpTls::None => builder,
            };
        }
        if let (Some(user), Some(pass)) = (&spec.username, &spec.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let templates =
            Templates::load(spec.template_dir.as_deref(), spec.subject_prefix.as_deref())?;
        Ok(EmailNotifier {
            id: id.to_string(),
            transport: builder.build(),
            from,
            to,
            to_contacts: spec.to_contacts,
            templates,
            server: format!("{host}:{}", spec.port()),
        })
    }

    /// (contacts for `To`, static recipients, skipped invalid contact addresses).
    fn recipients(&self, n: &Notification) -> (Vec<Mailbox>, Vec<Mailbox>, Vec<String>) {
        let mut seen: HashSet<String> = HashSet::new();
        let mut contacts = Vec::new();
        let mut skipped = Vec::new();
        if self.to_contacts {
            for c in n.alerts.iter().flat_map(|a| &a.contacts) {
                match c.trim().parse::<Mailbox>() {
                    Ok(m) => {
                        if seen.insert(m.email.to_string().to_lowercase()) {
                            contacts.push(m);
                        }
                    }
                    Err(_) => skipped.push(c.clone()),
                }
            }
        }
        let mut fixed = Vec::new();
        for m in &self.to {
            if seen.insert(m.email.to_string().to_lowercase()) {
                fixed.push(m.clone());
            }
        }
        (contacts, fixed, skipped)
    }

    /// Builds the message without sending it (exposed for tests and previews).
    pub fn message(&self, n: &Notification) -> Result<Prepared, NotifyError> {
        let (contacts, fixed, skipped) = self.recipients(n);
        if contacts.is_empty() && fixed.is_empty() {
            let why = if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped invalid: {})", skipped.join(", "))
            };
            return Err(NotifyError::Permanent(format!("no recipients{why}")));
        }
        let r = self
            .templates
            .render(n)
            .map_err(|e| NotifyError::Permanent(format!("template: {e}")))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(r.subject)
            .message_id(Some(message_id(&n.id, &self.from)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(HEADER_NOTIFICATION),
                n.id.clone(),
            ));
        let (to, cc) = if contacts.is_empty() {
            (fixed, Vec::new())
        } else {
            (contacts, fixed)
        };
        let mut recipients = Vec::new();
        for m in to {
            recipients.push(m.email.to_string());
            b = b.to(m);
        }
        for m in cc {
            recipients.push(m.email.to_string());
            b = b.cc(m);
        }
        let message = b
            .multipart(MultiPart::alternative_plain_html(r.text, r.html))
            .map_err(|e| NotifyError::Permanent(format!("cannot build the mail: {e}")))?;
        Ok(Prepared {
            message,
            recipients,
            skipped,
        })
    }
}

/// A mail ready to send.
pub struct Prepared {
    pub message: Message,
    /// `To` then `Cc` addresses.
    pub recipients: Vec<String>,
    /// Contact addresses left out because they do not parse.
    pub skipped: Vec<String>,
}

/// `<id@domain-of-from>`, with characters a Message-ID may not hold replaced by `-`. The same
/// notification always gets the same Message-ID.
fn message_id(id: &str, from: &Mailbox) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('.').replace("..", ".");
    let clean = if clean.is_empty() {
        "notification".to_string()
    } else {
        clean
    };
    format!("<{clean}.vitals@{}>", from.email.domain())
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        let p = self.message(n)?;
        match self.transport.send(p.message).await {
            Ok(resp) => {
                let mut detail = format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_string();
                if !p.skipped.is_empty() {
                    detail.push_str(&format!("; skipped invalid: {}", p.skipped.join(", ")));
                }
                Ok(Delivered {
                    recipients: p.recipients,
                    detail,
                })
            }
            Err(e) => Err(classify(&self.server, &e)),
        }
    }
}

/// SMTP 5xx (bad recipient, authentication rejected, message refused) and client-side
/// refusals (the server offers no usable AUTH mechanism) will not get better by retrying;
/// 4xx replies, timeouts, connection and TLS failures may.
fn classify(server: &str, e: &lettre::transport::smtp::Error) -> NotifyError {
    let mut msg = format!("{server}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(&format!(": {t}"));
        }
        src = s.source();
    }
    if e.is_permanent() || e.is_client() {
        NotifyError::Permanent(msg)
    } else {
        NotifyError::Transient(msg)
    }
}

impl crate::Build for vitals_core::notify::EmailSpec {
    fn build(&self, id: &str) -> Result<std::sync::Arc<dyn crate::Notifier>, String> {
        EmailNotifier::new(id, self).map(|n| std::sync::Arc::new(n) as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_core::Status;

    fn n(kind: NotificationKind, alerts: usize) -> Notification {
        let mut s = sample(kind);
        s.alerts.truncate(alerts);
        s.alerts[0].reason = "<b>HTTP 503</b> & down".into();
        s
    }

    #[test]
    fn every_kind_renders_subject_text_and_html() {
        let t = Templates::load(None, None).unwrap();
        // Test messages say something else (test_messages_say_they_are_tests).
        for kind in NotificationKind::ALL
            .into_iter()
            .filter(|k| *k != NotificationKind::Test)
        {
            let r = t.render(&n(kind, 1)).unwrap();
            assert!(
                r.subject
                    .starts_with(&format!("[Vitals] {}: ", kind_label(kind))),
                "{kind}: {}",
                r.subject
            );
            assert!(!r.subject.contains('\n'));
            assert!(
                r.text.contains("sample/check is CRIT"),
                "{kind}: {}",
                r.text
            );
            assert!(r.text.contains("<b>HTTP 503</b> & down"), "{}", r.text);
            // HTML parts escape what the checked system said.
            assert!(
                r.html.contains("&lt;b&gt;HTTP 503&lt;/b&gt; &amp; down"),
                "{}",
                r.html
            );
            assert!(r.html.contains("http://127.0.0.1/"));
        }
    }

    #[test]
    fn test_messages_say_they_are_tests() {
        let t = Templates::load(None, None).unwrap();
        let n = Notification::test(
            "ops-mail",
            "alice",
            vitals_core::Timestamp(0),
            Some("https://vitals.example/".into()),
        );
        let r = t.render(&n).unwrap();
        assert_eq!(
            r.subject,
            "[Vitals] TEST: Test message from Vitals to notifier ops-mail: no action needed"
        );
        assert!(
            r.text.starts_with("This is a TEST message from Vitals."),
            "{}",
            r.text
        );
        assert!(r.text.contains("alice asked Vitals"), "{}", r.text);
        assert!(
            r.text.contains("notifier \"ops-mail\" delivers"),
            "{}",
            r.text
        );
        assert!(r
            .html
            .contains("<strong style=\"color: #1565c0;\">TEST</strong>"));
        assert!(r.html.contains("https://vitals.example/"));
    }

    #[test]
    fn grouped_notifications_list_every_alert() {
        let t = Templates::load(None, Some("[Ops]")).unwrap();
        let mut x = n(NotificationKind::Firing, 2);
        x.alerts[1].title = "other/check is WARN".into();
        x.alerts[1].status = Status::Warn;
        let r = t.render(&x).unwrap();
        assert_eq!(r.subject, "[Ops] FIRING: sample/check is CRIT and 1 more");
        assert!(r.text.contains("other/check is WARN"));
        assert!(r.html.contains("other/check is WARN"));
    }

    fn node_mail(family: &str, kind: NotificationKind) -> Notification {
        let mut x = n(kind, 1);
        let a = &mut x.alerts[0];
        a.template = Some(family.into());
        a.asset = Some("7".into());
        a.asset_name = Some("[7] Klinik Sieben".into());
        for (k, v) in [
            ("broker_node", "7"),
            ("long_name", "Klinikum Sieben <Nord>"),
            // 23:30 UTC on 31 March is 1 April in Berlin (summer time).
            ("last_contact", "2024-03-31T22:30:00.000Z"),
            ("last_write", "2024-01-15T12:00:00.000Z"),
            ("dwh_version", "dwh-j2ee-1.5.1rc1"),
            ("expected_dwh_version", "1.5.1"),
            ("expected_i2b2_version", "1.5.3"),
        ] {
            a.details.insert(k.into(), v.into());
        }
        x
    }

    #[test]
    fn node_mails_have_broker_monitors_subjects_and_variables() {
        let t = Templates::load(None, Some("[Ops]")).unwrap();
        let r = t
            .render(&node_mail("aktin_offline", NotificationKind::Firing))
            .unwrap();
        assert_eq!(r.subject, "Automatische Information: AKTIN DWH Offline");
        assert!(
            r.html.contains("<b>Klinikum Sieben &lt;Nord&gt;</b>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("<b>01.04.2024</b>"), "{}", r.html);
        assert!(
            r.text.contains("am 01.04.2024 beim AKTIN Broker"),
            "{}",
            r.text
        );
        let r = t
            .render(&node_mail("aktin_no_imports", NotificationKind::Reminder))
            .unwrap();
        assert_eq!(
            r.subject,
            "Automatische Information: AKTIN DWH Keine Imports"
        );
        assert_eq!(r.html.matches("15.01.2024").count(), 2, "{}", r.html);
        let r = t
            .render(&node_mail("aktin_outdated", NotificationKind::Firing))
            .unwrap();
        assert_eq!(
            r.subject,
            "Automatische Information: AKTIN DWH Version veraltet"
        );
        for want in ["dwh-j2ee-1.5.1rc1", "<b>1.5.1</b>", "<b>1.5.3</b>"] {
            assert!(r.html.contains(want), "{want}: {}", r.html);
        }
        let r = t
            .render(&node_mail("aktin_outdated_en", NotificationKind::Firing))
            .unwrap();
        assert_eq!(
            r.subject,
            "Automatic information: AKTIN DWH version outdated"
        );
        assert!(r.text.contains("1.5.3"));
        // Resolved (if a rule asks for it) and unknown families get the generic mail.
        let r = t
            .render(&node_mail("aktin_offline", NotificationKind::Resolved))
            .unwrap();
        assert!(r.subject.starts_with("[Ops] RESOLVED"), "{}", r.subject);
        let r = t
            .render(&node_mail("nope", NotificationKind::Firing))
            .unwrap();
        assert!(r.subject.starts_with("[Ops] FIRING"), "{}", r.subject);
        assert_eq!(berlin_date("2024-07-01T22:00:00Z"), "02.07.2024");
        assert_eq!(berlin_date("2024-12-31T22:59:59Z"), "31.12.2024");
        assert_eq!(berlin_date("-"), "-");
    }

    #[test]
    fn broker_monitors_own_template_files_work_as_overrides() {
        let dir = tempfile::tempdir().unwrap();
        // Latin-1, `${var}` placeholders, the original's file name.
        let mut latin1: Vec<u8> =
            b"<html><body><p>Standort <b>${clinic_name}</b> seit ${last_contact} Gr".to_vec();
        latin1.extend([0xFC, 0xDF]); // "üß"
        latin1.extend(b"e $5 ${not closed</p></body></html>");
        std::fs::write(dir.path().join("template_mail_offline.html"), latin1).unwrap();
        // A family of our own, HTML only.
        std::fs::write(
            dir.path().join("clinic_note.subject"),
            "Hinweis zu ${clinic_name}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("clinic_note.html"),
            "<p>Hallo &amp; ${node_id}</p>",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path()), None).unwrap();
        assert!(t.families().any(|f| f == "clinic_note"));
        let r = t
            .render(&node_mail("aktin_offline", NotificationKind::Firing))
            .unwrap();
        assert_eq!(
            r.html,
            "<html><body><p>Standort <b>Klinikum Sieben &lt;Nord&gt;</b> seit 01.04.2024 Grüße $5 ${not closed</p></body></html>"
        );
        // The text part of an override without one still comes from our built-in .txt.
        assert!(r.text.contains("01.04.2024"));
        let r = t
            .render(&node_mail("clinic_note", NotificationKind::Firing))
            .unwrap();
        assert_eq!(r.subject, "Hinweis zu Klinikum Sieben <Nord>");
        assert_eq!(r.text, "Hallo & 7\n");
        std::fs::write(dir.path().join("broken.subject"), "x").unwrap();
        let err = Templates::load(Some(dir.path()), None).err().unwrap();
        assert!(err.contains("broken"), "{err}");
    }

    #[test]
    fn message_ids_are_stable_and_well_formed() {
        let from: Mailbox = "Vitals <vitals@example.org>".parse().unwrap();
        assert_eq!(
            message_id("42-ops-firing", &from),
            "<42-ops-firing.vitals@example.org>"
        );
        assert_eq!(message_id("a b<c>", &from), "<a-b-c-.vitals@example.org>");
    }

    #[test]
    fn recipients_dedupe_and_skip_bad_contacts() {
        let spec = EmailSpec {
            smtp_host: "127.0.0.1".into(),
            smtp_port: Some(2525),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "vitals@example.org".into(),
            to: vec!["Support <support@example.org>".into()],
            to_contacts: true,
            subject_prefix: None,
            template_dir: None,
            timeout: std::time::Duration::from_secs(5),
            ca_file: None,
        };
        let e = EmailNotifier::new("mail", &spec).unwrap();
        let mut x = n(NotificationKind::Firing, 2);
        x.alerts[0].contacts = vec!["clinic@example.org".into(), "SUPPORT@example.org".into()];
        x.alerts[1].contacts = vec!["Clinic@Example.org".into(), "not an address".into()];
        let (to, fixed, skipped) = e.recipients(&x);
        let to: Vec<String> = to.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(to, ["clinic@example.org", "SUPPORT@example.org"]);
        assert!(fixed.is_empty());
        assert_eq!(skipped, ["not an address"]);

        let mut spec2 = spec.clone();
        spec2.to.clear();
        let e = EmailNotifier::new("mail", &spec2).unwrap();
        let mut x = n(NotificationKind::Firing, 1);
        x.alerts[0].contacts.clear();
        let err = e.message(&x).err().unwrap();
        assert_eq!(err, NotifyError::Permanent("no recipients".into()));
    }
}
