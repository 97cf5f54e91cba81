//! Confluence (`[broker.confluence]`): broker-monitor's node pages, its summary page and its
//! backups, through the REST API v1 with a Bearer token.
//!
//! After every collection:
//! 1. the parent page (`parent`, default "Support Log Broker-Monitor") is looked up by title in
//!    the space and created (empty, under `root` if that page exists) when missing;
//! 2. per mapped node the broker listed, the page titled `COMMON_NAME` is created under the
//!    parent when missing, else updated — only when its content changed, with Confluence's next
//!    version number; then the node's files (the working directory's `.csv`, `.txt` and `.log`
//!    files, else this year's CSVs from the database) are attached as backups: an attachment of
//!    the same name gets a new version, and only files that changed are sent;
//! 3. the error-rate heatmap (PNG, last 30 days) is attached to the parent as
//!    `error_rates_hist.png`, and the parent's body becomes the summary table with the image.
//!
//! Calls (all below `<url>/rest/api/`, `Authorization: Bearer <token>`, JSON):
//! - `GET content?type=page&spaceKey=S&title=T&limit=1&expand=body.storage,version` — find a
//!   page with its body and version;
//! - `POST content` — create (`{"type":"page","title","space":{"key"},"ancestors":[{"id"}],
//!   "body":{"storage":{"value","representation":"storage"}}}`);
//! - `PUT content/{id}` — update, with `"version":{"number": current + 1}`;
//! - `GET content/{id}/child/attachment?filename=F` — find an attachment;
//! - `POST content/{id}/child/attachment` (new) or `POST content/{id}/child/attachment/{att}/data`
//!   (new version) — multipart `file`, header `X-Atlassian-Token: no-check`.
//!
//! "Changed" is judged against the page's current body (trimmed, case-insensitive, as
//! broker-monitor does) and against what Vitals itself last wrote to that page version (a
//! digest kept in the store), because Confluence normalises the storage format it is sent.
//! The pages are built by pure functions ([`node_page`], [`summary_page`]) and tested as text.

use crate::daily::{daily_rate, day_of, mean_daily_rate, year_of, ErrorRate};
use crate::status::NodeStatus;
use crate::xml::escape;
use serde_json::{json, Value as J};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use vitals_config::broker::{ConfluenceConfig, Contact, ContactRole, NodeInfo};
use vitals_core::Timestamp;
use vitals_store::{FleetError, FleetResource, FleetSample};

/// Largest answer read from Confluence.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The heatmap's file name and days (broker-monitor's).
pub const HEATMAP_FILE: &str = "error_rates_hist.png";
pub const HEATMAP_DAYS: usize = 30;
/// The JIRA macro's server and project (broker-monitor's).
pub const JIRA_SERVER: &str = "Jira IMI Cloud";
pub const JIRA_PROJECT: &str = "AKTIN";
/// Largest attachment uploaded.
const MAX_ATTACHMENT: u64 = 32 * 1024 * 1024;

/// `YYYY-MM-DD HH:MM:SS` in Europe/Berlin (how broker-monitor's pages show times).
pub fn berlin(t: Timestamp) -> String {
    t.to_datetime()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn berlin_opt(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_string(), berlin)
}

/// The JQL of a node's JIRA macro: `project=AKTIN AND ( Labels="a" OR Labels="b" )`, or with
/// no labels `project=AKTIN AND Labels="empty"` (broker-monitor's fallback).
pub fn jira_query(project: &str, labels: &[String]) -> String {
    if labels.is_empty() {
        return format!("project={project} AND Labels=\"empty\"");
    }
    let ors: Vec<String> = labels
        .iter()
        .map(|l| format!("Labels=\"{}\"", l.replace('"', "")))
        .collect();
    format!("project={project} AND ( {} )", ors.join(" OR "))
}

fn param(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!(
        "<ac:parameter ac:name=\"{}\">{}</ac:parameter>",
        escape(name),
        escape(value)
    ));
}

/// The JIRA macro of a node (broker-monitor's columns, 25 issues).
pub fn jira_macro(server: &str, project: &str, labels: &[String]) -> String {
    let mut m = String::from("<ac:structured-macro ac:name=\"jira\" ac:schema-version=\"1\">");
    param(&mut m, "server", server);
    param(
        &mut m,
        "columnIds",
        "issuekey,summary,issuetype,created,updated,duedate,assignee,reporter,priority,status,resolution",
    );
    param(
        &mut m,
        "columns",
        "key,summary,type,created,updated,due,assignee,reporter,priority,status,resolution",
    );
    param(&mut m, "maximumIssues", "25");
    param(&mut m, "jqlQuery", &jira_query(project, labels));
    m.push_str("</ac:structured-macro>");
    m
}

/// The status lozenge (broker-monitor's colours: Red, Yellow, Blue, Green).
pub fn status_macro(st: Option<NodeStatus>) -> String {
    let (title, colour) = match st {
        Some(s) => (
            s.as_str(),
            match s.colour() {
                "red" => "Red",
                "yellow" => "Yellow",
                "blue" => "Blue",
                _ => "Green",
            },
        ),
        None => ("-", "Grey"),
    };
    let mut m = String::from("<ac:structured-macro ac:name=\"status\" ac:schema-version=\"1\">");
    param(&mut m, "title", title);
    param(&mut m, "colour", colour);
    m.push_str("</ac:structured-macro>");
    m
}

fn row(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!(
        "<tr><th>{}</th><td>{}</td></tr>",
        escape(label),
        escape(value)
    ));
}

fn row_raw(out: &mut String, label: &str, html: &str) {
    out.push_str(&format!(
        "<tr><th>{}</th><td>{html}</td></tr>",
        escape(label)
    ));
}

fn opt_text(v: &Option<String>) -> String {
    v.clone()
        .filter(|x| !x.trim().is_empty())
        .unwrap_or_else(|| "changeme".to_string())
}

/// Two decimals of a hundredths-based mean.
fn hundredths(v: i64) -> String {
    ErrorRate(v).to_string()
}

/// What a node page shows.
pub struct NodePage<'a> {
    pub id: &'a str,
    pub info: &'a NodeInfo,
    /// Everyone, with roles (no opt-out filter, as on broker-monitor's pages).
    pub contacts: &'a [Contact],
    pub status: Option<NodeStatus>,
    /// This year's daily samples, oldest first.
    pub samples: &'a [FleetSample],
    /// Newest first; the first 20 are shown.
    pub errors: &'a [FleetError],
    pub resources: &'a [FleetResource],
    pub jira_server: &'a str,
    pub jira_project: &'a str,
}

fn contact_table(out: &mut String, title: &str, contacts: &[&Contact]) {
    out.push_str(&format!("<h3>{}</h3>", escape(title)));
    if contacts.is_empty() {
        out.push_str("<p>-</p>");
        return;
    }
    out.push_str("<table><tbody>");
    for c in contacts {
        out.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"mailto:{}\">{}</a></td></tr>",
            escape(c.name.as_deref().unwrap_or("-")),
            escape(&c.email),
            escape(&c.email)
        ));
    }
    out.push_str("</tbody></table>");
}

fn daily_table(out: &mut String, title: &str, values: [String; 5]) {
    out.push_str(&format!("<h3>{}</h3><table><tbody>", escape(title)));
    let labels = [
        "Importiert",
        "Aktualisiert",
        "Ungültig",
        "Fehlgeschlagen",
        "Fehlerrate",
    ];
    for (l, v) in labels.iter().zip(values) {
        row(out, l, &v);
    }
    out.push_str("</tbody></table>");
}

/// "Letzte 7 Tage (Durchschnitt)": per counter the known daily values of the last ≤ 7 samples
/// summed and divided by the number of samples; the error rate is the mean of the known daily
/// rates.
fn week_means(samples: &[FleetSample]) -> [String; 5] {
    let last: Vec<&FleetSample> = samples.iter().rev().take(7).collect();
    if last.is_empty() {
        return std::array::from_fn(|_| "-".to_string());
    }
    let n = last.len() as i64;
    let mean = |f: fn(&vitals_store::FleetCounts) -> i64| -> String {
        let sum: i64 = last.iter().filter_map(|s| s.daily.as_ref().map(f)).sum();
        // Two decimals, half up, in integers.
        let h = (2 * sum * 100 + n).div_euclid(2 * n);
        hundredths(h)
    };
    let first_day = last.last().map_or(0, |s| s.day);
    [
        mean(|d| d.imported),
        mean(|d| d.updated),
        mean(|d| d.invalid),
        mean(|d| d.failed),
        mean_daily_rate(samples, first_day).map_or_else(|| "-".to_string(), |r| r.to_string()),
    ]
}

fn today_values(s: Option<&FleetSample>) -> [String; 5] {
    match s.and_then(|s| s.daily.map(|d| (s, d))) {
        Some((s, d)) => [
            d.imported.to_string(),
            d.updated.to_string(),
            d.invalid.to_string(),
            d.failed.to_string(),
            daily_rate(s).map_or_else(|| "-".to_string(), |r| r.to_string()),
        ],
        None => std::array::from_fn(|_| "-".to_string()),
    }
}

fn resource<'a>(resources: &'a [FleetResource], name: &str) -> Option<&'a FleetResource> {
    resources.iter().find(|r| r.name == name)
}

/// `key (value), …` of a resource, or `-`.
fn resource_list(r: Option<&FleetResource>) -> String {
    match r {
        Some(r) if !r.entries.is_empty() => r
            .entries
            .iter()
            .map(|(k, v)| format!("{k} ({})", if v.is_empty() { "-" } else { v }))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".to_string(),
    }
}

/// The storage-format body of a node's page (German, broker-monitor's layout).
pub fn node_page(p: &NodePage<'_>) -> String {
    let i = p.info;
    let last = p.samples.last();
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("<h2>Statistiken</h2>");
    out.push_str("<ac:layout><ac:layout-section ac:type=\"three_equal\"><ac:layout-cell>");
    out.push_str("<table><tbody>");
    row(&mut out, "Klinikum", &opt_text(&i.long_name));
    row(&mut out, "KIS", &opt_text(&i.hospital_information_system));
    row(&mut out, "Schnittstelle", &opt_text(&i.import_interface));
    row(
        &mut out,
        "Monitoring seit",
        &p.samples.first().map_or_else(
            || "-".to_string(),
            |s| berlin(s.polled).get(..10).unwrap_or("-").to_string(),
        ),
    );
    out.push_str("</tbody></table>");
    let ed: Vec<&Contact> = p
        .contacts
        .iter()
        .filter(|c| c.role == ContactRole::Ed)
        .collect();
    let it: Vec<&Contact> = p
        .contacts
        .iter()
        .filter(|c| c.role == ContactRole::It)
        .collect();
    let other: Vec<&Contact> = p
        .contacts
        .iter()
        .filter(|c| c.role == ContactRole::Any)
        .collect();
    contact_table(&mut out, "Ansprechpartner Notaufnahme", &ed);
    contact_table(&mut out, "Ansprechpartner IT", &it);
    if !other.is_empty() {
        contact_table(&mut out, "Weitere Kontakte", &other);
    }
    out.push_str("<h3>IDs</h3><table><tbody><tr><th></th><th>ROOT</th><th>FORMAT</th></tr>");
    for k in ["PATIENT", "ENCOUNTER", "BILLING"] {
        out.push_str(&format!(
            "<tr><th>{k}</th><td>{}</td><td>{}</td></tr>",
            escape(i.root.get(k).map_or("changeme", String::as_str)),
            escape(i.format.get(k).map_or("changeme", String::as_str))
        ));
    }
    out.push_str("</tbody></table>");
    out.push_str("</ac:layout-cell><ac:layout-cell><table><tbody>");
    row_raw(&mut out, "Status", &status_macro(p.status));
    row(
        &mut out,
        "Letzter Check",
        &berlin_opt(last.map(|s| s.polled)),
    );
    row(
        &mut out,
        "Letzter Kontakt",
        &berlin_opt(last.and_then(|s| s.last_contact)),
    );
    row(
        &mut out,
        "Letzter Start",
        &berlin_opt(last.map(|s| s.last_start)),
    );
    row(
        &mut out,
        "Letzter Import",
        &berlin_opt(crate::status::last_write(p.samples)),
    );
    row(
        &mut out,
        "Letzte Ablehnung",
        &berlin_opt(last.and_then(|s| s.last_reject)),
    );
    out.push_str("</tbody></table>");
    daily_table(
        &mut out,
        "Letzte 7 Tage (Durchschnitt)",
        week_means(p.samples),
    );
    daily_table(&mut out, "Täglich", today_values(last));
    out.push_str("</ac:layout-cell><ac:layout-cell><h3>Versionen</h3><table><tbody>");
    let versions = resource(p.resources, "versions");
    for (key, label) in [
        ("os", "os"),
        ("kernel", "kernel"),
        ("java", "java"),
        ("j2ee-impl", "wildfly"),
        ("apache2", "apache2"),
        ("postgres", "postgres"),
        ("dwh-api", "dwh-api"),
        ("dwh-j2ee", "dwh-j2ee"),
    ] {
        let v = versions
            .and_then(|r| r.entries.get(key))
            .filter(|v| !v.is_empty())
            .map_or("-", String::as_str);
        row(&mut out, label, v);
    }
    row(
        &mut out,
        "rscript",
        &resource_list(resource(p.resources, "rscript")),
    );
    row(
        &mut out,
        "python",
        &resource_list(resource(p.resources, "python")),
    );
    row(
        &mut out,
        "import-scripts",
        &resource_list(resource(p.resources, "import-scripts")),
    );
    out.push_str("</tbody></table></ac:layout-cell></ac:layout-section></ac:layout>");
    out.push_str("<h2>Fehlermeldungen</h2>");
    if p.errors.is_empty() {
        out.push_str("<p>-</p>");
    } else {
        out.push_str(
            "<table><tbody><tr><th>Zeitpunkt (UTC)</th><th>Wiederholungen</th><th>Meldung</th></tr>",
        );
        for e in p.errors.iter().take(20) {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.time.to_datetime().format("%Y-%m-%d %H:%M:%S"),
                e.repeats,
                escape(&e.content)
            ));
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h2>Jira-Tickets</h2>");
    out.push_str(&jira_macro(p.jira_server, p.jira_project, &i.jira_labels));
    out.push_str("<h2>Backups</h2>");
    out.push_str("<ac:structured-macro ac:name=\"attachments\" ac:schema-version=\"3\"></ac:structured-macro>");
    out.push_str(&format!(
        "<p><sub>Node {} · written by Vitals</sub></p>",
        escape(p.id)
    ));
    out
}

/// One row of the summary table.
pub struct SummaryRow<'a> {
    pub title: &'a str,
    pub interface: Option<&'a str>,
    pub status: Option<NodeStatus>,
    pub last: Option<&'a FleetSample>,
    /// Mean of the known daily rates of the last 7 days.
    pub rate_7d: Option<ErrorRate>,
}

/// Python's `str(round(float, 2))` of a whole number, as broker-monitor's summary shows sums.
fn py_float(n: i64) -> String {
    format!("{n}.0")
}

/// The parent page's body: the network's table and the heatmap image.
pub fn summary_page(rows: &[SummaryRow<'_>], parent_id: &str, base_url: &str) -> String {
    let mut out =
        String::from("<table><colgroup><col /></colgroup><tbody class=\"table_summary_body\"><tr>");
    for h in [
        "Index",
        "Node",
        "Interface",
        "Letzter Check",
        "Status",
        "Imports heute",
        "Fehler heute",
        "Fehlerrate heute",
        "Fehlerrate über 7 Tage",
    ] {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>");
    for (i, r) in rows.iter().enumerate() {
        let daily = r.last.and_then(|s| s.daily);
        let (imports, errors) = match daily {
            Some(d) => (
                py_float(d.imported + d.updated),
                py_float(d.invalid + d.failed),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        out.push_str(&format!(
            "<tr><td style=\"text-align: center;\">{}</td><td style=\"text-align: left;\"><ac:link><ri:page ri:content-title=\"{}\" /></ac:link></td>",
            i + 1,
            escape(r.title)
        ));
        for v in [
            r.interface.unwrap_or("changeme").to_string(),
            berlin_opt(r.last.map(|s| s.polled)),
        ] {
            out.push_str(&format!(
                "<td style=\"text-align: center;\">{}</td>",
                escape(&v)
            ));
        }
        out.push_str(&format!(
            "<td style=\"text-align: center;\">{}</td>",
            status_macro(r.status)
        ));
        for v in [
            imports,
            errors,
            r.last
                .and_then(daily_rate)
                .map_or_else(|| "-".to_string(), |x| x.to_string()),
            r.rate_7d.map_or_else(|| "-".to_string(), |x| x.to_string()),
        ] {
            out.push_str(&format!(
                "<td style=\"text-align: center;\">{}</td>",
                escape(&v)
            ));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out.push_str(&format!(
        "<p><img src=\"{}/download/attachments/{}/{HEATMAP_FILE}\" /></p>",
        escape(base_url.trim_end_matches('/')),
        escape(parent_id)
    ));
    out
}

/// broker-monitor's test for an unchanged page: bodies equal after trimming, ignoring case.
pub fn same_body(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A page as Confluence returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub id: String,
    pub title: String,
    pub version: i64,
    pub body: String,
}

/// What Vitals last wrote (kept in the store between runs): per page id the digest of the body
/// and the version it became; per `page id/file name` the digest of the attachment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    #[serde(default)]
    pub pages: BTreeMap<String, (String, i64)>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub attached: usize,
    pub errors: Vec<String>,
}

/// A Confluence REST client for one space.
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    space: String,
    token: String,
    pub parent: String,
    pub root: String,
}

async fn read_body(resp: reqwest::Response, what: &str) -> Result<Vec<u8>, String> {
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{what}: broken answer: {e}"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("{what}: answer larger than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn page_of(v: &J) -> Option<Page> {
    Some(Page {
        id: match &v["id"] {
            J::String(s) => s.clone(),
            J::Number(n) => n.to_string(),
            _ => return None,
        },
        title: v["title"].as_str().unwrap_or("").to_string(),
        version: v["version"]["number"].as_i64().unwrap_or(0),
        body: v["body"]["storage"]["value"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    })
}

impl Client {
    pub fn new(c: &ConfluenceConfig) -> Result<Client, String> {
        let mut base = url::Url::parse(&c.url)
            .map_err(|e| format!("broker.confluence.url {:?}: {e}", c.url))?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .timeout(c.timeout)
            .connect_timeout(c.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("vitals-fleet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Client {
            http,
            base,
            space: c.space.clone(),
            token: c.token.clone(),
            parent: c.parent.clone(),
            root: c.root.clone(),
        })
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn url(&self, path: &str) -> Result<url::Url, String> {
        self.base
            .join(&format!("rest/api/{path}"))
            .map_err(|e| format!("bad URL {path}: {e}"))
    }

    /// Sends a request; a non-2xx answer is an error naming the call and the status.
    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<J, String> {
        let resp = req
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    format!("{what}: timeout")
                } else if e.is_connect() {
                    format!("{what}: cannot connect to Confluence")
                } else {
                    format!("{what}: {e}")
                }
            })?;
        let status = resp.status();
        let body = read_body(resp, what).await?;
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(format!("{what}: HTTP {} {text}", status.as_u16()));
        }
        if body.is_empty() {
            return Ok(J::Null);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{what}: answer is not JSON: {e}"))
    }

    /// The page titled `title` in the space, with its body and version.
    pub async fn find(&self, title: &str) -> Result<Option<Page>, String> {
        let mut url = self.url("content")?;
        url.query_pairs_mut()
            .append_pair("type", "page")
            .append_pair("spaceKey", &self.space)
            .append_pair("title", title)
            .append_pair("limit", "1")
            .append_pair("expand", "body.storage,version");
        let v = self
            .send(&format!("finding page {title:?}"), self.http.get(url))
            .await?;
        Ok(v["results"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(page_of))
    }

    pub async fn create(
        &self,
        title: &str,
        parent: Option<&str>,
        body: &str,
    ) -> Result<Page, String> {
        let mut doc = json!({
            "type": "page",
            "title": title,
            "space": {"key": self.space},
            "body": {"storage": {"value": body, "representation": "storage"}},
        });
        if let Some(p) = parent {
            doc["ancestors"] = json!([{ "id": p }]);
        }
        let v = self
            .send(
                &format!("creating page {title:?}"),
                self.http.post(self.url("content")?).json(&doc),
            )
            .await?;
        page_of(&v).ok_or_else(|| format!("creating page {title:?}: no page in the answer"))
    }

    /// Replaces the body of `page` (version `page.version + 1`).
    pub async fn update(&self, page: &Page, body: &str) -> Result<Page, String> {
        let doc = json!({
            "id": page.id,
            "type": "page",
            "title": page.title,
            "space": {"key": self.space},
            "body": {"storage": {"value": body, "representation": "storage"}},
            "version": {"number": page.version + 1},
        });
        let v = self
            .send(
                &format!("updating page {:?}", page.title),
                self.http
                    .put(self.url(&format!("content/{}", page.id))?)
                    .json(&doc),
            )
            .await?;
        Ok(page_of(&v).unwrap_or_else(|| Page {
            version: page.version + 1,
            body: body.to_string(),
            ..page.clone()
        }))
    }

    /// Attaches a file to a page: a new version of an attachment of the same name, or a new
    /// attachment.
    pub async fn attach(
        &self,
        page_id: &str,
        file: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        let mut url = self.url(&format!("content/{page_id}/child/attachment"))?;
        url.query_pairs_mut().append_pair("filename", file);
        let found = self
            .send(&format!("finding attachment {file}"), self.http.get(url))
            .await?;
        let existing = found["results"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(|a| match &a["id"] {
                J::String(s) => Some(s.clone()),
                J::Number(n) => Some(n.to_string()),
                _ => None,
            });
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file.to_string())
            .mime_str(content_type)
            .map_err(|e| format!("attachment {file}: {e}"))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let path = match &existing {
            Some(att) => format!("content/{page_id}/child/attachment/{att}/data"),
            None => format!("content/{page_id}/child/attachment"),
        };
        self.send(
            &format!("uploading attachment {file}"),
            self.http
                .post(self.url(&path)?)
                .header("X-Atlassian-Token", "no-check")
                .multipart(form),
        )
        .await
        .map(|_| ())
    }

    /// Writes `body` to the page titled `title`: created under `parent` when missing, updated
    /// when changed. Returns the page.
    pub async fn put_page(
        &self,
        title: &str,
        parent: Option<&str>,
        body: &str,
        memory: &mut Memory,
        report: &mut Report,
    ) -> Result<Page, String> {
        let ours = digest(body.as_bytes());
        let page = match self.find(title).await? {
            None => {
                let p = self.create(title, parent, body).await?;
                report.created += 1;
                p
            }
            Some(p) => {
                let known = memory.pages.get(&p.id) == Some(&(ours.clone(), p.version));
                if known || same_body(&p.body, body) {
                    report.unchanged += 1;
                    return Ok(p);
                }
                let p = self.update(&p, body).await?;
                report.updated += 1;
                p
            }
        };
        memory.pages.insert(page.id.clone(), (ours, page.version));
        Ok(page)
    }

    /// Attaches `bytes` unless the same bytes were attached before.
    pub async fn put_file(
        &self,
        page_id: &str,
        file: &str,
        content_type: &str,
        bytes: Vec<u8>,
        memory: &mut Memory,
        report: &mut Report,
    ) -> Result<(), String> {
        let key = format!("{page_id}/{file}");
        let d = digest(&bytes);
        if memory.files.get(&key) == Some(&d) {
            return Ok(());
        }
        self.attach(page_id, file, content_type, bytes).await?;
        memory.files.insert(key, d);
        report.attached += 1;
        Ok(())
    }
}

/// A node's files for backup: the working directory's `.csv`, `.txt` and `.log` files.
pub fn node_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let name = p.file_name()?.to_str()?.to_string();
            let ok = !name.starts_with('.')
                && (name.ends_with(".csv") || name.ends_with(".txt") || name.ends_with(".log"));
            if !ok || !p.is_file() || p.metadata().ok()?.len() > MAX_ATTACHMENT {
                return None;
            }
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One node the broker listed, as the collection saw it.
#[derive(Debug, Clone)]
pub struct SyncNode {
    pub id: String,
    pub status: Option<NodeStatus>,
    /// Everyone with their role (the mapping's and `[broker.contacts]`).
    pub contacts: Vec<Contact>,
}

/// What a sync works from.
pub struct SyncInput<'a> {
    pub now: Timestamp,
    pub mapping: &'a vitals_config::broker::NodeMapping,
    pub nodes: &'a [SyncNode],
    /// The working directory, whose node files are attached; without one, this year's CSVs
    /// from the database are.
    pub workdir: Option<&'a std::path::Path>,
}

/// A node's line of the summary, collected while its page is written.
struct Summarised {
    title: String,
    interface: Option<String>,
    status: Option<NodeStatus>,
    samples: Vec<FleetSample>,
}

/// One sync: the parent page, every mapped node's page and files, the heatmap and the summary.
/// A failing page is reported and the others go on.
pub async fn sync(
    client: &Client,
    store: &dyn vitals_store::Store,
    input: &SyncInput<'_>,
    memory: &mut Memory,
) -> Report {
    let mut report = Report::default();
    let parent = match client.find(&client.parent).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let root = match client.find(&client.root).await {
                Ok(r) => r.map(|r| r.id),
                Err(e) => {
                    report.errors.push(e);
                    return report;
                }
            };
            match client.create(&client.parent, root.as_deref(), "").await {
                Ok(p) => {
                    report.created += 1;
                    p
                }
                Err(e) => {
                    report.errors.push(e);
                    return report;
                }
            }
        }
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let today = day_of(input.now);
    let year = year_of(input.now);
    let first_of_year = crate::daily::year_days(year).map_or(today, |(a, _)| a);
    let from = first_of_year.min(today - HEATMAP_DAYS as i64 + 1);
    let (samples, resources) = match tokio::try_join!(
        store.fleet_samples(None, from, today),
        store.fleet_resources(None),
    ) {
        Ok(x) => x,
        Err(e) => {
            report.errors.push(format!("reading the fleet data: {e}"));
            return report;
        }
    };
    let mut by_node: BTreeMap<&str, Vec<FleetSample>> = BTreeMap::new();
    for s in &samples {
        by_node.entry(&s.node).or_default().push(s.clone());
    }
    let mut nodes: Vec<&SyncNode> = input
        .nodes
        .iter()
        .filter(|n| input.mapping.nodes.contains_key(&n.id))
        .collect();
    nodes.sort_by_key(|n| (n.id.parse::<u64>().unwrap_or(u64::MAX), n.id.clone()));
    let mut summary: Vec<Summarised> = Vec::new();
    for n in nodes {
        let Some(info) = input.mapping.nodes.get(&n.id) else {
            continue;
        };
        let all = by_node.get(n.id.as_str()).cloned().unwrap_or_default();
        let this_year: Vec<FleetSample> = all
            .iter()
            .filter(|s| s.day >= first_of_year)
            .cloned()
            .collect();
        let errors = match store
            .fleet_errors(Some(&n.id), Some(year), usize::MAX)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(format!("node {}: {e}", n.id));
                continue;
            }
        };
        let res: Vec<FleetResource> = resources
            .iter()
            .filter(|r| r.node == n.id)
            .cloned()
            .collect();
        let body = node_page(&NodePage {
            id: &n.id,
            info,
            contacts: &n.contacts,
            status: n.status,
            samples: &this_year,
            errors: &errors,
            resources: &res,
            jira_server: JIRA_SERVER,
            jira_project: JIRA_PROJECT,
        });
        let page = match client
            .put_page(
                &info.common_name,
                Some(&parent.id),
                &body,
                memory,
                &mut report,
            )
            .await
        {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(e);
                continue;
            }
        };
        let files = match input.workdir {
            Some(dir) => node_files(&dir.join(&n.id)),
            None => vec![
                (
                    crate::csv::stats_file(&n.id, year),
                    crate::csv::stats_csv(&this_year).into_bytes(),
                ),
                (
                    crate::csv::errors_file(&n.id, year),
                    crate::csv::errors_csv(&errors).into_bytes(),
                ),
            ],
        };
        for (name, bytes) in files {
            if let Err(e) = client
                .put_file(&page.id, &name, "text/csv", bytes, memory, &mut report)
                .await
            {
                report.errors.push(e);
            }
        }
        summary.push(Summarised {
            title: info.common_name.clone(),
            interface: info.import_interface.clone(),
            status: n.status,
            samples: all,
        });
    }
    // The heatmap of the last 30 days, then the summary that shows it.
    let names: Vec<(String, String)> = input
        .nodes
        .iter()
        .filter_map(|n| {
            let info = input.mapping.nodes.get(&n.id)?;
            Some((n.id.clone(), info.common_name.clone()))
        })
        .collect();
    let recent: Vec<FleetSample> = samples
        .iter()
        .filter(|s| s.day > today - HEATMAP_DAYS as i64)
        .cloned()
        .collect();
    let png = tokio::task::spawn_blocking(move || {
        crate::heatmap::build(&names, &recent, today, HEATMAP_DAYS).png(HEATMAP_DAYS, 60_000_000)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match png {
        Ok(bytes) => {
            if let Err(e) = client
                .put_file(
                    &parent.id,
                    HEATMAP_FILE,
                    "image/png",
                    bytes,
                    memory,
                    &mut report,
                )
                .await
            {
                report.errors.push(e);
            }
        }
        Err(e) => report.errors.push(format!("heatmap: {e}")),
    }
    let rows: Vec<SummaryRow<'_>> = summary
        .iter()
        .map(|x| SummaryRow {
            title: &x.title,
            interface: x.interface.as_deref(),
            status: x.status,
            last: x.samples.last(),
            rate_7d: mean_daily_rate(&x.samples, today - 6),
        })
        .collect();
    let body = summary_page(&rows, &parent.id, client.base_url());
    if let Err(e) = client
        .put_page(&client.parent, None, &body, memory, &mut report)
        .await
    {
        report.errors.push(e);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_queries_as_broker_monitor_writes_them() {
        assert_eq!(
            jira_query("AKTIN", &["a".into(), "b".into()]),
            "project=AKTIN AND ( Labels=\"a\" OR Labels=\"b\" )"
        );
        assert_eq!(
            jira_query("AKTIN", &[]),
            "project=AKTIN AND Labels=\"empty\""
        );
        let m = jira_macro(JIRA_SERVER, JIRA_PROJECT, &["x".into()]);
        assert!(m.contains("<ac:parameter ac:name=\"server\">Jira IMI Cloud</ac:parameter>"));
        assert!(m.contains("<ac:parameter ac:name=\"maximumIssues\">25</ac:parameter>"));
        assert!(
            m.contains("project=AKTIN AND ( Labels=&quot;x&quot; )"),
            "{m}"
        );
    }

    #[test]
    fn berlin_times_and_unchanged_bodies() {
        let t = Timestamp::parse("2024-07-01T22:30:00Z").unwrap();
        assert_eq!(berlin(t), "2024-07-02 00:30:00");
        let t = Timestamp::parse("2024-01-01T22:30:00Z").unwrap();
        assert_eq!(berlin(t), "2024-01-01 23:30:00");
        assert!(same_body("  <P>x</P>\n", "<p>X</p>"));
        assert!(!same_body("<p>x</p>", "<p>y</p>"));
    }
}
