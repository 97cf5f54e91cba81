//! The broker's XML: parsed defensively (a bad answer is an [`XmlError`] naming what is wrong,
//! never a panic) and rendered (for the emulated broker).
//!
//! Elements are matched by local name, so the `http://aktin.org/ns/exchange` namespace of the
//! node list and its absence in the statistics are both fine. The DOCTYPE of Java properties
//! files is allowed but never fetched; the number of nodes in a document is capped.

use std::collections::BTreeMap;
use vitals_core::Timestamp;

/// Largest number of XML nodes in one answer (a 1,000-node list is ~10,000).
const NODES_LIMIT: u32 = 2_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlError {}

fn err(msg: impl Into<String>) -> XmlError {
    XmlError(msg.into())
}

fn parse(text: &str) -> Result<roxmltree::Document<'_>, XmlError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: NODES_LIMIT,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| err(format!("malformed XML: {e}")))
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name).map(|c| c.text().unwrap_or("").trim().to_string())
}

fn time(text: &str, what: &str) -> Result<Timestamp, XmlError> {
    Timestamp::parse(text.trim())
        .ok_or_else(|| err(format!("<{what}> {text:?} is not a timestamp")))
}

fn opt_time(n: roxmltree::Node<'_, '_>, name: &str) -> Result<Option<Timestamp>, XmlError> {
    match child_text(n, name) {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => time(&t, name).map(Some),
    }
}

fn count(n: roxmltree::Node<'_, '_>, name: &str) -> Result<i64, XmlError> {
    let t = child_text(n, name).ok_or_else(|| err(format!("missing <{name}>")))?;
    t.parse::<i64>()
        .map_err(|_| err(format!("<{name}> {t:?} is not a whole number")))
}

/// One entry of `GET /broker/node`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    pub id: String,
    pub client_dn: Option<String>,
    pub last_contact: Option<Timestamp>,
    /// `last-contact` as the broker wrote it (broker-monitor's CSV keeps the raw text).
    pub last_contact_raw: Option<String>,
}

impl NodeEntry {
    /// The `CN=` part of the client DN, if any.
    pub fn common_name(&self) -> Option<String> {
        let dn = self.client_dn.as_deref()?;
        dn.split(',').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("CN")
                .then(|| v.trim().to_string())
        })
    }
}

fn node_entry(n: roxmltree::Node<'_, '_>) -> Result<NodeEntry, XmlError> {
    let id = child_text(n, "id").ok_or_else(|| err("a <node> without <id>"))?;
    if id.parse::<u64>().is_err() {
        return Err(err(format!("node id {id:?} is not a whole number")));
    }
    Ok(NodeEntry {
        client_dn: child_text(n, "clientDN").filter(|s| !s.is_empty()),
        last_contact: opt_time(n, "last-contact")?,
        last_contact_raw: child_text(n, "last-contact").filter(|s| !s.is_empty()),
        id,
    })
}

/// `<node-list><node>…</node>…</node-list>`.
pub fn parse_node_list(text: &str) -> Result<Vec<NodeEntry>, XmlError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "node-list" {
        return Err(err(format!(
            "expected <node-list>, got <{}>",
            root.tag_name().name()
        )));
    }
    root.children()
        .filter(|c| c.is_element() && c.tag_name().name() == "node")
        .map(node_entry)
        .collect()
}

/// One `<node>` (of `GET /broker/node/{id}`).
pub fn parse_node(text: &str) -> Result<NodeEntry, XmlError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "node" {
        return Err(err(format!(
            "expected <node>, got <{}>",
            root.tag_name().name()
        )));
    }
    node_entry(root)
}

/// One entry of `<last-errors>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub time: Timestamp,
    /// 1 when the attribute is absent.
    pub repeats: i64,
    pub content: String,
}

/// `<import-statistics>` of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub start: Timestamp,
    pub last_write: Option<Timestamp>,
    pub last_reject: Option<Timestamp>,
    pub imported: i64,
    pub updated: i64,
    pub invalid: i64,
    pub failed: i64,
    pub errors: Vec<ImportError>,
}

/// The timestamps of `<import-statistics>` as the broker wrote them, for broker-monitor's
/// files (which keep the raw text): `errors[i]` is the timestamp of `ImportStats::errors[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTimes {
    pub start: String,
    pub last_write: Option<String>,
    pub last_reject: Option<String>,
    pub errors: Vec<String>,
}

pub fn parse_stats(text: &str) -> Result<ImportStats, XmlError> {
    parse_stats_raw(text).map(|(s, _)| s)
}

/// [`parse_stats`], plus the raw timestamps.
pub fn parse_stats_raw(text: &str) -> Result<(ImportStats, RawTimes), XmlError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "import-statistics" {
        return Err(err(format!(
            "expected <import-statistics>, got <{}>",
            root.tag_name().name()
        )));
    }
    let start = child_text(root, "start").ok_or_else(|| err("missing <start>"))?;
    let mut errors = Vec::new();
    let mut raw_errors = Vec::new();
    if let Some(list) = child(root, "last-errors") {
        for e in list
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "error")
        {
            let ts = e
                .attribute("timestamp")
                .ok_or_else(|| err("an <error> without timestamp"))?;
            let repeats = match e.attribute("repeats") {
                None => 1,
                Some(r) => r
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| err(format!("<error repeats={r:?}> is not a whole number")))?,
            };
            // Text may span lines and contain escaped markup; roxmltree has unescaped it.
            let content: String = e
                .descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect();
            errors.push(ImportError {
                time: time(ts, "error timestamp")?,
                repeats,
                content,
            });
            raw_errors.push(ts.trim().to_string());
        }
    }
    let stats = ImportStats {
        start: time(&start, "start")?,
        last_write: opt_time(root, "last-write")?,
        last_reject: opt_time(root, "last-reject")?,
        imported: count(root, "imported")?,
        updated: count(root, "updated")?,
        invalid: count(root, "invalid")?,
        failed: count(root, "failed")?,
        errors,
    };
    let raw = RawTimes {
        start,
        last_write: child_text(root, "last-write").filter(|s| !s.is_empty()),
        last_reject: child_text(root, "last-reject").filter(|s| !s.is_empty()),
        errors: raw_errors,
    };
    Ok((stats, raw))
}

/// A Java properties XML document: key → value (`<entry key="x"/>` is the empty value).
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, XmlError> {
    parse_properties_ordered(text).map(|v| v.into_iter().collect())
}

/// [`parse_properties`] in document order (broker-monitor's `.txt` files keep it; a key given
/// twice keeps its last value in its first place).
pub fn parse_properties_ordered(text: &str) -> Result<Vec<(String, String)>, XmlError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "properties" {
        return Err(err(format!(
            "expected <properties>, got <{}>",
            root.tag_name().name()
        )));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "entry")
    {
        let key = e
            .attribute("key")
            .ok_or_else(|| err("an <entry> without key"))?;
        let value = e.text().unwrap_or("").to_string();
        match at.get(key) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(key.to_string(), out.len());
                out.push((key.to_string(), value));
            }
        }
    }
    Ok(out)
}

// --- rendering (the emulated broker) ---

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

pub const NS: &str = "http://aktin.org/ns/exchange";

fn node_body(out: &mut String, n: &NodeEntry) {
    out.push_str("<id>");
    out.push_str(&escape(&n.id));
    out.push_str("</id>");
    if let Some(dn) = &n.client_dn {
        out.push_str("<clientDN>");
        out.push_str(&escape(dn));
        out.push_str("</clientDN>");
    }
    if let Some(t) = n.last_contact {
        out.push_str("<last-contact>");
        out.push_str(&t.to_rfc3339());
        out.push_str("</last-contact>");
    }
    out.push_str("<websocket>false</websocket>");
}

pub fn render_node_list(nodes: &[NodeEntry]) -> String {
    let mut out = format!("<node-list xmlns=\"{NS}\">");
    for n in nodes {
        out.push_str("<node>");
        node_body(&mut out, n);
        out.push_str("</node>");
    }
    out.push_str("</node-list>");
    out
}

pub fn render_node(n: &NodeEntry) -> String {
    let mut out = format!("<node xmlns=\"{NS}\">");
    node_body(&mut out, n);
    out.push_str("<modules/></node>");
    out
}

pub fn render_stats(s: &ImportStats) -> String {
    let mut out = String::from("<import-statistics>");
    out.push_str(&format!("<start>{}</start>", s.start.to_rfc3339()));
    if let Some(t) = s.last_write {
        out.push_str(&format!("<last-write>{}</last-write>", t.to_rfc3339()));
    }
    if let Some(t) = s.last_reject {
        out.push_str(&format!("<last-reject>{}</last-reject>", t.to_rfc3339()));
    }
    out.push_str(&format!(
        "<imported>{}</imported><updated>{}</updated><invalid>{}</invalid><failed>{}</failed>",
        s.imported, s.updated, s.invalid, s.failed
    ));
    if !s.errors.is_empty() {
        out.push_str("<last-errors>");
        for e in &s.errors {
            out.push_str("<error");
            if e.repeats != 1 {
                out.push_str(&format!(" repeats=\"{}\"", e.repeats));
            }
            out.push_str(&format!(" timestamp=\"{}\">", e.time.to_rfc3339()));
            out.push_str(&escape(&e.content));
            out.push_str("</error>");
        }
        out.push_str("</last-errors>");
    }
    out.push_str("</import-statistics>");
    out
}

pub fn render_properties(comment: &str, entries: &BTreeMap<String, String>) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
         <!DOCTYPE properties SYSTEM \"http://java.sun.com/dtd/properties.dtd\">\n<properties>",
    );
    out.push_str(&format!("<comment>{}</comment>", escape(comment)));
    for (k, v) in entries {
        if v.is_empty() {
            out.push_str(&format!("<entry key=\"{}\"/>", escape(k)));
        } else {
            out.push_str(&format!(
                "<entry key=\"{}\">{}</entry>",
                escape(k),
                escape(v)
            ));
        }
    }
    out.push_str("</properties>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shapes() {
        let list = parse_node_list(
            r#"<node-list xmlns="http://aktin.org/ns/exchange"><node><id>0</id><clientDN>CN=Klinik A,O=Org,L=Town</clientDN><last-contact>2024-05-02T08:15:30.123Z</last-contact><websocket>false</websocket></node><node><id>3</id></node></node-list>"#,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].common_name().as_deref(), Some("Klinik A"));
        assert_eq!(
            list[0].last_contact,
            Timestamp::parse("2024-05-02T08:15:30.123Z")
        );
        assert_eq!(list[1].last_contact, None);

        let s = parse_stats(
            "<import-statistics>\n  <start>2017-09-08T13:48:27.257+02:00</start>\n  <last-write>2017-09-28T15:02:53.873+02:00</last-write>\n  <imported>583</imported><updated>0</updated><invalid>198</invalid><failed>0</failed>\n  <last-errors>\n    <error timestamp=\"2017-09-15T12:41:35.626+02:00\">text, may\nspan lines &amp; more</error>\n    <error repeats=\"5\" timestamp=\"2017-09-21T14:40:32.584+02:00\">b</error>\n  </last-errors>\n</import-statistics>",
        )
        .unwrap();
        assert_eq!(s.imported, 583);
        assert_eq!(s.invalid, 198);
        assert_eq!(s.last_reject, None);
        assert_eq!(s.errors[0].repeats, 1);
        assert_eq!(s.errors[0].content, "text, may\nspan lines & more");
        assert_eq!(s.errors[1].repeats, 5);
        assert_eq!(
            s.start,
            Timestamp::parse("2017-09-08T11:48:27.257Z").unwrap()
        );

        let p = parse_properties(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n<!DOCTYPE properties SYSTEM \"http://java.sun.com/dtd/properties.dtd\">\n<properties><comment>versions</comment>\n  <entry key=\"os\">Ubuntu 20.04.2 LTS</entry><entry key=\"dwh-j2ee\">dwh-j2ee-1.5.1rc1</entry><entry key=\"x\"/>\n</properties>",
        )
        .unwrap();
        assert_eq!(p["dwh-j2ee"], "dwh-j2ee-1.5.1rc1");
        assert_eq!(p["x"], "");
    }

    #[test]
    fn bad_answers_are_errors_naming_the_problem() {
        assert!(parse_stats("<import-statistics><start>")
            .unwrap_err()
            .0
            .starts_with("malformed XML"));
        assert_eq!(
            parse_stats("<import-statistics><start>2020-01-01T00:00:00Z</start><imported>1</imported><updated>0</updated><invalid>0</invalid></import-statistics>").unwrap_err().0,
            "missing <failed>"
        );
        assert!(parse_stats("<html/>")
            .unwrap_err()
            .0
            .contains("expected <import-statistics>"));
        assert!(parse_node_list("<node-list><node><id>x</id></node></node-list>").is_err());
    }

    #[test]
    fn render_round_trips() {
        let s = ImportStats {
            start: Timestamp(1_000),
            last_write: Some(Timestamp(2_000)),
            last_reject: None,
            imported: 5,
            updated: 1,
            invalid: 2,
            failed: 0,
            errors: vec![ImportError {
                time: Timestamp(3_000),
                repeats: 4,
                content: "a <b> & \"c\"\nd".into(),
            }],
        };
        assert_eq!(parse_stats(&render_stats(&s)).unwrap(), s);
        let mut m = BTreeMap::new();
        m.insert("dwh-j2ee".to_string(), "dwh-j2ee-1.5.1".to_string());
        m.insert("empty".to_string(), String::new());
        assert_eq!(
            parse_properties(&render_properties("versions", &m)).unwrap(),
            m
        );
    }
}
