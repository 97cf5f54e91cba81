//! Health documents that services publish about themselves, read into one shape: an overall
//! [`Status`] plus one [`Component`] per named dependency (see
//! `shared/spec/health-formats.md`).
//!
//! - [`parse_health_json`]: IETF draft `application/health+json` (`status`, `checks`).
//! - [`parse_actuator`]: Spring Boot actuator health, in its 2.2+ (`components`, nested to any
//!   depth), 2.0–2.1 (`details`) and 1.x (indicators at the top level) shapes.
//! - [`parse_lines`]: `name : STATUS [text]` detail lines, as `/monitor?details` answers.
//! - [`parse_auto`]: picks one of those from the content type and the body.
//!
//! All are pure functions of the bytes: any input gives `Some(doc)` or `None`, never a panic
//! (serde_json bounds nesting depth, so the recursive walks here are bounded too).

use serde_json::{Map, Value};
use vitals_core::{Component, Status};

/// A parsed health document.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthDoc {
    /// Overall verdict: the document's own status aggregated with its components'.
    pub status: Status,
    pub components: Vec<Component>,
    /// The service's version, when the document carries one (health+json `version` or
    /// `releaseId`).
    pub version: Option<String>,
    /// The document's own status as written (`DOWN`, `fail`); empty for detail lines.
    pub status_text: String,
    /// The document's own free text (health+json `output`), empty when it has none.
    pub output: String,
    /// Each component's status as written (`FAIL`, `DOWN`, `warn`), parallel to `components`,
    /// so that reasons quote the target's own words.
    pub component_status_text: Vec<String>,
}

/// Components named in a reason at most; the rest are counted.
const MAX_NAMED: usize = 3;
/// Output quoted in a reason at most, in characters.
const MAX_REASON_OUTPUT: usize = 120;
/// Output kept per component at most, in characters.
const MAX_OUTPUT: usize = 1024;

impl HealthDoc {
    /// A short reason naming the failing components, worst first
    /// (`component MinLog2 database FAIL: connection refused`), or the document's own status
    /// when no component explains it. `None` when the document is ok.
    pub fn failure_reason(&self) -> Option<String> {
        if self.status == Status::Ok {
            return None;
        }
        let mut failing: Vec<usize> = (0..self.components.len())
            .filter(|&i| self.components[i].status != Status::Ok)
            .collect();
        // Stable: equal severities keep document order.
        failing.sort_by_key(|&i| std::cmp::Reverse(self.components[i].status.rank()));
        if failing.is_empty() {
            let mut r = format!("health status {}", self.status_text_or_status());
            push_output(&mut r, &self.output);
            return Some(r);
        }
        let mut parts = Vec::with_capacity(failing.len().min(MAX_NAMED) + 1);
        for &i in failing.iter().take(MAX_NAMED) {
            let c = &self.components[i];
            let word = self
                .component_status_text
                .get(i)
                .map(String::as_str)
                .filter(|w| !w.is_empty())
                .unwrap_or(c.status.as_str());
            let mut r = format!("component {} {}", c.name, word);
            push_output(&mut r, &c.output);
            parts.push(r);
        }
        if failing.len() > MAX_NAMED {
            parts.push(format!("{} more failing", failing.len() - MAX_NAMED));
        }
        Some(parts.join("; "))
    }

    fn status_text_or_status(&self) -> &str {
        if self.status_text.is_empty() {
            self.status.as_str()
        } else {
            &self.status_text
        }
    }
}

fn push_output(reason: &mut String, output: &str) {
    let output = output.trim();
    if output.is_empty() {
        return;
    }
    reason.push_str(": ");
    // Only the first line: stack traces do not belong in a reason.
    let first = output.lines().next().unwrap_or(output);
    reason.push_str(&truncate(first, MAX_REASON_OUTPUT));
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Detects the format from the content type, then from the body's shape, and parses it.
///
/// `application/health+json` → health+json; a Spring actuator media type → actuator; other
/// JSON objects: `checks` → health+json, `components`/`details` or an upper-case Spring status
/// (`UP`, `DOWN`, `OUT_OF_SERVICE`, `UNKNOWN`) → actuator, an IETF status word → health+json;
/// anything else is tried as detail lines.
pub fn parse_auto(content_type: Option<&str>, body: &[u8]) -> Option<HealthDoc> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.contains("health+json") {
        return parse_health_json(body);
    }
    if ct.contains("spring-boot.actuator") {
        return parse_actuator(body);
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let v: Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        let status = obj.get("status")?.as_str()?;
        if obj.contains_key("checks") {
            return health_json_doc(obj);
        }
        if obj.contains_key("components")
            || obj.contains_key("details")
            || matches!(status, "UP" | "DOWN" | "OUT_OF_SERVICE" | "UNKNOWN")
        {
            return actuator_doc(obj);
        }
        return health_json_doc(obj);
    }
    // A web page is not a list of detail lines, whatever colons its text has.
    if ct.contains("json") || ct.contains("html") {
        return None;
    }
    parse_lines(body)
}

// ---------------------------------------------------------------------------------------------
// IETF health+json

/// IETF draft health+json. `None` unless the body is a JSON object whose `status` is one of
/// pass/ok/up, warn, fail/error/down (case-insensitive).
pub fn parse_health_json(body: &[u8]) -> Option<HealthDoc> {
    let v: Value = serde_json::from_slice(body).ok()?;
    health_json_doc(v.as_object()?)
}

fn ietf_status(s: &str) -> Option<Status> {
    let s = s.trim();
    if ["pass", "ok", "up"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
    {
        Some(Status::Ok)
    } else if s.eq_ignore_ascii_case("warn") {
        Some(Status::Warn)
    } else if ["fail", "error", "down"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
    {
        Some(Status::Crit)
    } else {
        None
    }
}

fn health_json_doc(obj: &Map<String, Value>) -> Option<HealthDoc> {
    let status_text = obj.get("status")?.as_str()?;
    let own = ietf_status(status_text)?;
    let mut doc = HealthDoc {
        status: own,
        components: Vec::new(),
        version: ["version", "releaseId"]
            .iter()
            .find_map(|k| scalar_text(obj.get(*k)?)),
        status_text: status_text.to_string(),
        output: obj
            .get("output")
            .and_then(Value::as_str)
            .map(|s| truncate(s, MAX_OUTPUT))
            .unwrap_or_default(),
        component_status_text: Vec::new(),
    };
    if let Some(Value::Object(checks)) = obj.get("checks") {
        for (key, entries) in checks {
            // The draft says an array; a lone object is read as one instance.
            let entries: Vec<&Map<String, Value>> = match entries {
                Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
                Value::Object(o) => vec![o],
                _ => continue,
            };
            let several = entries.len() > 1;
            for (i, e) in entries.iter().enumerate() {
                let name = match (several, e.get("componentId").and_then(scalar_text)) {
                    (true, Some(id)) => format!("{key}/{id}"),
                    (true, None) => format!("{key}[{i}]"),
                    (false, _) => key.clone(),
                };
                let word = e.get("status").and_then(Value::as_str).unwrap_or("");
                let status = ietf_status(word).unwrap_or(Status::Unknown);
                let value = e.get("observedValue").and_then(|v| {
                    let text = value_text(v)?;
                    Some(match e.get("observedUnit").and_then(Value::as_str) {
                        Some(unit) if !unit.is_empty() => format!("{text} {unit}"),
                        _ => text,
                    })
                });
                doc.status = doc.status.worst(status);
                doc.components.push(Component {
                    name,
                    status,
                    value,
                    output: e
                        .get("output")
                        .and_then(Value::as_str)
                        .map(|s| truncate(s, MAX_OUTPUT))
                        .unwrap_or_default(),
                });
                doc.component_status_text.push(word.to_string());
            }
        }
    }
    Some(doc)
}

/// A string as is, a number or boolean as written; `None` for null, arrays and objects.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Like [`scalar_text`], with arrays and objects as compact JSON.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => Some(truncate(&v.to_string(), MAX_OUTPUT)),
        other => scalar_text(other),
    }
}

// ---------------------------------------------------------------------------------------------
// Spring Boot actuator

/// Spring Boot actuator health. `None` unless the body is a JSON object with a string
/// `status`. Components are the leaf indicators, nested names joined with `/` (`db/primary`).
pub fn parse_actuator(body: &[u8]) -> Option<HealthDoc> {
    let v: Value = serde_json::from_slice(body).ok()?;
    actuator_doc(v.as_object()?)
}

/// UP → ok, DOWN and OUT_OF_SERVICE → crit, UNKNOWN → unknown, anything custom → warn.
fn actuator_status(s: &str) -> Status {
    let s = s.trim();
    if s.eq_ignore_ascii_case("UP") {
        Status::Ok
    } else if s.eq_ignore_ascii_case("DOWN") || s.eq_ignore_ascii_case("OUT_OF_SERVICE") {
        Status::Crit
    } else if s.eq_ignore_ascii_case("UNKNOWN") {
        Status::Unknown
    } else {
        Status::Warn
    }
}

/// Spring's aggregation order DOWN > OUT_OF_SERVICE > (custom) > UP > UNKNOWN: an UNKNOWN
/// indicator does not degrade an UP service, unlike [`Status::worst`].
fn actuator_rank(s: Status) -> u8 {
    match s {
        Status::Unknown => 0,
        Status::Ok => 1,
        Status::Warn => 2,
        Status::Crit => 3,
    }
}

fn actuator_doc(root: &Map<String, Value>) -> Option<HealthDoc> {
    let status_text = root.get("status")?.as_str()?;
    let mut doc = HealthDoc {
        status: actuator_status(status_text),
        components: Vec::new(),
        version: None,
        status_text: status_text.to_string(),
        output: String::new(),
        component_status_text: Vec::new(),
    };
    collect_indicators(root, "", &mut doc);
    for c in &doc.components {
        if actuator_rank(c.status) > actuator_rank(doc.status) {
            doc.status = c.status;
        }
    }
    Some(doc)
}

fn is_indicator(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
        .filter(|o| matches!(o.get("status"), Some(Value::String(_))))
}

/// The nested indicators of `node`: its `components` (Boot 2.2+), else its `details` when
/// every entry is an indicator (Boot 2.0–2.1), else its own entries that are indicators
/// (Boot 1.x, where details and nested indicators share the object).
fn indicator_children(node: &Map<String, Value>) -> Vec<(&str, &Map<String, Value>)> {
    if let Some(Value::Object(c)) = node.get("components") {
        return c
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), is_indicator(v)?)))
            .collect();
    }
    if let Some(Value::Object(d)) = node.get("details") {
        if !d.is_empty() && d.values().all(|v| is_indicator(v).is_some()) {
            return d
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), is_indicator(v)?)))
                .collect();
        }
    }
    node.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "status" | "details" | "components"))
        .filter_map(|(k, v)| Some((k.as_str(), is_indicator(v)?)))
        .collect()
}

fn collect_indicators(node: &Map<String, Value>, prefix: &str, doc: &mut HealthDoc) {
    for (name, child) in indicator_children(node) {
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        if indicator_children(child).is_empty() {
            let word = child.get("status").and_then(Value::as_str).unwrap_or("");
            let status = actuator_status(word);
            doc.components.push(Component {
                name: full,
                status,
                value: None,
                output: actuator_output(child, status),
            });
            doc.component_status_text.push(word.to_string());
        } else {
            collect_indicators(child, &full, doc);
        }
    }
}

/// The indicator's `error` (under `details` since Boot 2, at the top in 1.x); for a failing
/// indicator without one, its details as compact JSON.
fn actuator_output(node: &Map<String, Value>, status: Status) -> String {
    let details = node.get("details").and_then(Value::as_object);
    let error = details
        .and_then(|d| d.get("error"))
        .or_else(|| node.get("error"))
        .and_then(Value::as_str);
    if let Some(e) = error {
        return truncate(e, MAX_OUTPUT);
    }
    if status == Status::Ok {
        return String::new();
    }
    match details {
        Some(d) if !d.is_empty() => truncate(&Value::Object(d.clone()).to_string(), MAX_OUTPUT),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Detail lines

/// `name : STATUS [text]` lines. `OK` (any case) is ok; any other upper-case word (`FAIL`,
/// `ERROR`, `DOWN`, …) is crit, with the text after it as output. Lines that do not fit are
/// ignored; `None` when none fits.
pub fn parse_lines(body: &[u8]) -> Option<HealthDoc> {
    let text = String::from_utf8_lossy(body);
    let mut doc = HealthDoc {
        status: Status::Ok,
        components: Vec::new(),
        version: None,
        status_text: String::new(),
        output: String::new(),
        component_status_text: Vec::new(),
    };
    for line in text.lines() {
        let Some((name, word, rest)) = split_detail_line(line) else {
            continue;
        };
        let status = if word.eq_ignore_ascii_case("OK") {
            Status::Ok
        } else {
            Status::Crit
        };
        doc.status = doc.status.worst(status);
        doc.components.push(Component {
            name: name.to_string(),
            status,
            value: None,
            output: truncate(rest, MAX_OUTPUT),
        });
        doc.component_status_text.push(word.to_string());
    }
    if doc.components.is_empty() {
        None
    } else {
        Some(doc)
    }
}

/// Splits `name : WORD rest` at the first colon that a status word follows, so that names
/// with colons (`http://host:8080 : OK`) and texts with colons (`FAIL java.io: refused`) work.
fn split_detail_line(line: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in line.match_indices(':') {
        let name = line[..i].trim();
        if name.is_empty() {
            continue;
        }
        let after = line[i + 1..].trim_start();
        let end = after
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
            .unwrap_or(after.len());
        let word = &after[..end];
        let tail = &after[end..];
        // `OK2` or `FAILED7` is not a status word followed by text.
        if tail.starts_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        if is_status_word(word) {
            let rest = tail
                .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '-' | ','))
                .trim_end();
            return Some((name, word, rest));
        }
    }
    None
}

fn is_status_word(w: &str) -> bool {
    w.eq_ignore_ascii_case("ok")
        || (w.len() >= 2
            && w.len() <= 32
            && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            && w.bytes().any(|b| b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sorted, so that tests do not depend on serde_json's map order.
    fn names(doc: &HealthDoc) -> Vec<(&str, Status)> {
        let mut v: Vec<_> = doc
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect();
        v.sort_by_key(|(n, s)| (*n, s.rank()));
        v
    }

    fn comp<'a>(doc: &'a HealthDoc, name: &str) -> &'a Component {
        doc.components.iter().find(|c| c.name == name).unwrap()
    }

    // --- health+json ---

    #[test]
    fn health_json_full_document() {
        let body = br#"{
          "status": "warn", "version": "1", "releaseId": "1.0.2", "notes": [""],
          "output": "", "serviceId": "f03e522f", "description": "health of authz service",
          "checks": {
            "cassandra:responseTime": [
              {"componentId": "dfd6cf2b-1b6e", "componentType": "datastore",
               "observedValue": 250, "observedUnit": "ms", "status": "pass",
               "affectedEndpoints": ["/users/{userId}"], "time": "2018-01-17T03:36:48Z",
               "output": ""},
              {"componentId": "6fd416e0-8920", "componentType": "datastore",
               "observedValue": 1050, "observedUnit": "ms", "status": "warn",
               "output": "slow"}
            ],
            "uptime": [{"componentType": "system", "observedValue": 1209600.245,
                        "observedUnit": "s", "status": "pass"}],
            "cpu:utilization": [{"observedValue": 85, "observedUnit": "percent",
                                 "status": "fail", "output": "too busy\nmore"}]
          },
          "links": {"about": "http://api.example.com/about/authz"},
          "somethingElse": {"ignored": true}
        }"#;
        let doc = parse_health_json(body).unwrap();
        assert_eq!(doc.status, Status::Crit);
        assert_eq!(doc.version.as_deref(), Some("1"));
        assert_eq!(
            names(&doc),
            vec![
                ("cassandra:responseTime/6fd416e0-8920", Status::Warn),
                ("cassandra:responseTime/dfd6cf2b-1b6e", Status::Ok),
                ("cpu:utilization", Status::Crit),
                ("uptime", Status::Ok),
            ]
        );
        assert_eq!(
            comp(&doc, "cassandra:responseTime/dfd6cf2b-1b6e")
                .value
                .as_deref(),
            Some("250 ms")
        );
        assert_eq!(comp(&doc, "uptime").value.as_deref(), Some("1209600.245 s"));
        assert_eq!(
            doc.failure_reason().unwrap(),
            "component cpu:utilization fail: too busy; \
             component cassandra:responseTime/6fd416e0-8920 warn: slow"
        );
    }

    #[test]
    fn health_json_status_words_are_case_insensitive() {
        for (word, status) in [
            ("pass", Status::Ok),
            ("OK", Status::Ok),
            ("Up", Status::Ok),
            ("WARN", Status::Warn),
            ("fail", Status::Crit),
            ("Error", Status::Crit),
            ("DOWN", Status::Crit),
        ] {
            let body = format!(r#"{{"status": "{word}"}}"#);
            assert_eq!(parse_health_json(body.as_bytes()).unwrap().status, status);
        }
        assert!(parse_health_json(br#"{"status": "running"}"#).is_none());
        assert!(parse_health_json(br#"{"checks": {}}"#).is_none());
    }

    #[test]
    fn health_json_warn_is_degraded_and_own_fail_counts() {
        let doc = parse_health_json(br#"{"status":"pass","checks":{"disk":[{"status":"warn"}]}}"#)
            .unwrap();
        assert_eq!(doc.status, Status::Warn);
        let doc =
            parse_health_json(br#"{"status":"fail","output":"db gone","checks":{}}"#).unwrap();
        assert_eq!(doc.status, Status::Crit);
        assert_eq!(doc.failure_reason().unwrap(), "health status fail: db gone");
    }

    #[test]
    fn health_json_instances_without_ids_and_lone_objects() {
        let doc = parse_health_json(
            br#"{"status":"pass","checks":{
                "worker":[{"status":"pass"},{"status":"bogus"}],
                "db":{"status":"pass","observedValue":{"open":3}},
                "junk": 7}}"#,
        )
        .unwrap();
        assert_eq!(
            names(&doc),
            vec![
                ("db", Status::Ok),
                ("worker[0]", Status::Ok),
                ("worker[1]", Status::Unknown),
            ]
        );
        assert_eq!(comp(&doc, "db").value.as_deref(), Some(r#"{"open":3}"#));
        assert_eq!(doc.status, Status::Unknown);
    }

    // --- actuator ---

    #[test]
    fn actuator_nested_components_boot_2_2() {
        let body = br#"{"status":"DOWN","components":{
            "db":{"status":"DOWN","components":{
                "primary":{"status":"UP","details":{"database":"PostgreSQL","validationQuery":"isValid()"}},
                "secondary":{"status":"DOWN","details":{"error":"java.net.ConnectException: Connection refused"}}}},
            "diskSpace":{"status":"UP","details":{"total":1,"free":1,"threshold":1,"exists":true}},
            "ping":{"status":"UP"},
            "custom":{"status":"DEGRADED","details":{"lag":7}}},
            "groups":["liveness","readiness"]}"#;
        let doc = parse_actuator(body).unwrap();
        assert_eq!(doc.status, Status::Crit);
        assert_eq!(
            names(&doc),
            vec![
                ("custom", Status::Warn),
                ("db/primary", Status::Ok),
                ("db/secondary", Status::Crit),
                ("diskSpace", Status::Ok),
                ("ping", Status::Ok),
            ]
        );
        assert_eq!(comp(&doc, "db/primary").output, "");
        assert_eq!(comp(&doc, "custom").output, r#"{"lag":7}"#);
        assert_eq!(
            doc.failure_reason().unwrap(),
            "component db/secondary DOWN: java.net.ConnectException: Connection refused; \
             component custom DEGRADED: {\"lag\":7}"
        );
    }

    #[test]
    fn actuator_boot_2_0_details() {
        let body = br#"{"status":"UP","details":{
            "db":{"status":"UP","details":{"database":"H2","hello":1}},
            "mail":{"status":"OUT_OF_SERVICE","details":{"location":"smtp:25"}}}}"#;
        let doc = parse_actuator(body).unwrap();
        assert_eq!(
            names(&doc),
            vec![("db", Status::Ok), ("mail", Status::Crit)]
        );
        assert_eq!(doc.status, Status::Crit);
        assert!(doc
            .failure_reason()
            .unwrap()
            .starts_with("component mail OUT_OF_SERVICE"));
    }

    #[test]
    fn actuator_boot_1_top_level_and_composite() {
        let body = br#"{"status":"UP",
            "diskSpace":{"status":"UP","total":100,"free":50,"threshold":10},
            "db":{"status":"UP","primary":{"status":"UP","database":"H2"},
                                "secondary":{"status":"UNKNOWN"}},
            "version":"ignored"}"#;
        let doc = parse_actuator(body).unwrap();
        assert_eq!(
            names(&doc),
            vec![
                ("db/primary", Status::Ok),
                ("db/secondary", Status::Unknown),
                ("diskSpace", Status::Ok),
            ]
        );
        // UNKNOWN ranks below UP in Spring's order, so the service is still up.
        assert_eq!(doc.status, Status::Ok);
        assert_eq!(doc.failure_reason(), None);
    }

    #[test]
    fn actuator_status_only_and_mapping() {
        assert_eq!(
            parse_actuator(br#"{"status":"UP"}"#).unwrap().status,
            Status::Ok
        );
        let down = parse_actuator(br#"{"status":"DOWN"}"#).unwrap();
        assert_eq!(down.status, Status::Crit);
        assert_eq!(down.failure_reason().unwrap(), "health status DOWN");
        assert_eq!(
            parse_actuator(br#"{"status":"OUT_OF_SERVICE"}"#)
                .unwrap()
                .status,
            Status::Crit
        );
        assert_eq!(
            parse_actuator(br#"{"status":"UNKNOWN"}"#).unwrap().status,
            Status::Unknown
        );
        assert_eq!(
            parse_actuator(br#"{"status":"FATAL"}"#).unwrap().status,
            Status::Warn
        );
        assert!(parse_actuator(br#"{"status":3}"#).is_none());
        assert!(parse_actuator(br#"["UP"]"#).is_none());
    }

    #[test]
    fn actuator_boot_1_error_at_top_of_indicator() {
        let doc = parse_actuator(
            br#"{"status":"DOWN","redis":{"status":"DOWN","error":"RedisConnectionFailureException: refused"}}"#,
        )
        .unwrap();
        assert_eq!(
            doc.failure_reason().unwrap(),
            "component redis DOWN: RedisConnectionFailureException: refused"
        );
    }

    // --- lines ---

    #[test]
    fn detail_lines() {
        let body = b"MinLog2 database : OK\r\n\
                     Stamdata database : FAIL connection refused\n\
                     \n\
                     This is not a component line\n\
                     Uptime: 3 days\n\
                     http://cache:8080 : OK\n\
                     queue:ERROR - java.io.IOException: broken pipe\n";
        let doc = parse_lines(body).unwrap();
        assert_eq!(
            names(&doc),
            vec![
                ("MinLog2 database", Status::Ok),
                ("Stamdata database", Status::Crit),
                ("http://cache:8080", Status::Ok),
                ("queue", Status::Crit),
            ]
        );
        assert_eq!(doc.components[1].output, "connection refused");
        assert_eq!(doc.components[3].output, "java.io.IOException: broken pipe");
        assert_eq!(doc.status, Status::Crit);
        assert_eq!(
            doc.failure_reason().unwrap(),
            "component Stamdata database FAIL: connection refused; \
             component queue ERROR: java.io.IOException: broken pipe"
        );
    }

    #[test]
    fn detail_lines_all_ok_or_none() {
        let doc = parse_lines(b"A : OK\nB : ok\n").unwrap();
        assert_eq!(doc.status, Status::Ok);
        assert_eq!(doc.failure_reason(), None);
        assert!(parse_lines(b"OK").is_none());
        assert!(parse_lines(b"").is_none());
        assert!(parse_lines(b"<html><body>Note: see docs</body></html>").is_none());
        assert!(parse_lines(b"a : OK2").is_none());
    }

    #[test]
    fn many_failures_are_counted_not_listed() {
        let doc = parse_lines(b"a : DOWN\nb : DOWN\nc : DOWN\nd : DOWN\ne : DOWN\n").unwrap();
        assert_eq!(
            doc.failure_reason().unwrap(),
            "component a DOWN; component b DOWN; component c DOWN; 2 more failing"
        );
    }

    // --- auto ---

    #[test]
    fn auto_detects_each_format() {
        let hj = parse_auto(
            Some("application/health+json"),
            br#"{"status":"fail","checks":{}}"#,
        )
        .unwrap();
        assert_eq!(hj.status, Status::Crit);
        let act = parse_auto(
            Some("application/vnd.spring-boot.actuator.v3+json"),
            br#"{"status":"UP","components":{"db":{"status":"DOWN"}}}"#,
        )
        .unwrap();
        assert_eq!(names(&act), vec![("db", Status::Crit)]);
        // Shapes without a telling content type.
        assert_eq!(
            parse_auto(
                Some("application/json"),
                br#"{"status":"pass","checks":{"a":[{"status":"warn"}]}}"#
            )
            .unwrap()
            .status,
            Status::Warn
        );
        assert_eq!(
            parse_auto(None, br#" {"status":"UP","db":{"status":"DOWN"}}"#)
                .unwrap()
                .components[0]
                .name,
            "db"
        );
        assert_eq!(
            parse_auto(None, br#"{"status":"up"}"#).unwrap().status,
            Status::Ok
        );
        assert!(parse_auto(None, br#"{"status":"running"}"#).is_none());
        assert!(parse_auto(Some("application/json"), br#"{"hello":1}"#).is_none());
        let lines = parse_auto(Some("text/plain"), b"db : FAIL down\n").unwrap();
        assert_eq!(lines.status, Status::Crit);
        assert!(parse_auto(Some("text/plain"), b"OK").is_none());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut body = String::new();
        // 40 levels are 81 levels of JSON, within serde_json's limit of 128.
        for _ in 0..40 {
            body.push_str(r#"{"status":"UP","components":{"x":"#);
        }
        body.push_str(r#"{"status":"DOWN"}"#);
        for _ in 0..40 {
            body.push_str("}}");
        }
        let doc = parse_actuator(body.as_bytes()).unwrap();
        assert_eq!(doc.components.len(), 1);
        assert_eq!(doc.components[0].name.matches('/').count(), 39);
        assert_eq!(doc.status, Status::Crit);
        // Beyond serde_json's recursion limit: rejected, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse_auto(None, deep.as_bytes()).is_none());
        assert!(parse_actuator(deep.as_bytes()).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let samples: [&[u8]; 6] = [
            br#"{"status":"UP","components":{"db":{"status":"DOWN","details":{"error":"x"}}}}"#,
            br#"{"status":"pass","checks":{"a:b":[{"componentId":"1","status":"fail","observedValue":1}]}}"#,
            "Ærø database : FAIL ødelagt\nb : OK\n".as_bytes(),
            b"\xff\xfe\x00 : \xc3",
            b"{\"status\":",
            b"::::: : : OK :",
        ];
        // A small deterministic generator: truncations, byte flips and insertions.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for sample in samples {
            for cut in 0..=sample.len() {
                run_all(&sample[..cut]);
            }
            for _ in 0..300 {
                let mut b = sample.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % b.len().max(1);
                    let byte = (next() % 256) as u8;
                    if next() % 2 == 0 && i < b.len() {
                        b[i] = byte;
                    } else {
                        b.insert(i.min(b.len()), byte);
                    }
                }
                run_all(&b);
            }
        }
    }

    fn run_all(b: &[u8]) {
        for doc in [
            parse_health_json(b),
            parse_actuator(b),
            parse_lines(b),
            parse_auto(None, b),
            parse_auto(Some("application/health+json"), b),
            parse_auto(Some("text/plain"), b),
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(doc.components.len(), doc.component_status_text.len());
            let _ = doc.failure_reason();
        }
    }
}
