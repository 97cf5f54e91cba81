//! Prometheus probe: scrape an exposition endpoint (node_exporter, windows_exporter, cAdvisor,
//! any exporter) with the HTTP probe (same timing phases, TLS options and body cap) and judge
//! the text format (parsed by `prom_text_format_parser`) with conditions such as
//! `windows_service_state{name="minlog2",state="running"} == 1` or
//! `count(container_last_seen{name=~"aktin-.*"}) >= 3`.
//!
//! Histograms and summaries are addressed as Prometheus stores them: `x_bucket{le=…}`,
//! `x{quantile=…}`, `x_sum`, `x_count`. Every figure a condition matched becomes a value of the
//! observation (named by the condition's left side; one per series when a selector without
//! aggregation matches several, at most [`MAX_SERIES_VALUES`]), besides the HTTP timings and
//! `samples`. A selector that matches nothing fails its condition ("… matched nothing"), except
//! under `count`, which is 0.

use crate::http::HttpProber;
use crate::Outcome;
use std::time::Duration;
use vitals_core::expr::PromCondition;
use vitals_core::spec::{HttpSpec, PrometheusSpec};
use vitals_core::{Status, Value};

/// Values kept per condition whose selector matches several series.
pub const MAX_SERIES_VALUES: usize = 20;
/// Failing series named per condition in the reason.
const NAMED_FAILURES: usize = 3;

/// One sample of an exposition: name (with `_bucket`/`_sum`/`_count`), labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl PromSample {
    /// `name{a="x",b="y"}`.
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// The escapes of the text format (`\\`, `\"`, `\n`) undone; the parser keeps them as written.
fn unescape(v: &str) -> String {
    if !v.contains('\\') {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses an exposition in the Prometheus text format into flat samples. Families that do not
/// assemble (e.g. a HELP line without samples) are skipped, as Prometheus skips nothing but we
/// would rather judge what is there; a line that does not parse fails the whole scrape.
pub fn parse_exposition(text: &str) -> Result<Vec<PromSample>, String> {
    use prom_text_format_parser::{Type, ValueType};
    // The parser is a third-party one fed hostile input: a panic in it becomes a reason.
    let parsed = std::panic::catch_unwind(|| prom_text_format_parser::parse_scrape(text))
        .map_err(|_| "exposition could not be parsed (parser failure)".to_string())?;
    let (metrics, error) = parsed;
    if metrics.is_empty() {
        if let Some(prom_text_format_parser::ScrapeParseError::Parse(e)) = error {
            let e = e.lines().next().unwrap_or("").trim().to_string();
            return Err(format!("exposition does not parse: {e}"));
        }
    }
    let mut out = Vec::new();
    for m in metrics {
        for s in m.samples {
            let suffix = match (m.kind, s.value.value_type) {
                (Type::Histogram, ValueType::Sample) => "_bucket",
                (Type::Histogram | Type::Summary, ValueType::Sum) => "_sum",
                (Type::Histogram | Type::Summary, ValueType::Count) => "_count",
                _ => "",
            };
            let value = match s.value.value.as_str() {
                v if v.eq_ignore_ascii_case("+inf") || v.eq_ignore_ascii_case("inf") => {
                    f64::INFINITY
                }
                v if v.eq_ignore_ascii_case("-inf") => f64::NEG_INFINITY,
                v => v.parse::<f64>().unwrap_or(f64::NAN),
            };
            out.push(PromSample {
                name: format!("{}{suffix}", m.name),
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.key.clone(), unescape(&l.value)))
                    .collect(),
                value,
            });
        }
    }
    Ok(out)
}

/// Judges one condition against the samples: adds its values, returns its failure.
pub fn judge(c: &PromCondition, samples: &[PromSample], values: &mut Vec<Value>) -> Option<String> {
    let selected: Vec<&PromSample> = samples
        .iter()
        .filter(|s| {
            let labels = &s.labels;
            c.selector.matches(&s.name, labels)
        })
        .collect();
    let expect = format!("{} {}", c.op, c.threshold);
    if let Some(agg) = c.aggregation {
        let figures: Vec<f64> = selected.iter().map(|s| s.value).collect();
        let Some(v) = agg.apply(&figures) else {
            return Some(format!("{} matched nothing", c.text));
        };
        values.push(Value::new(c.text.clone(), v));
        return (!c.op.holds(v, c.threshold))
            .then(|| format!("{} is {v} (expected {expect})", c.text));
    }
    if selected.is_empty() {
        return Some(format!("{} matched nothing", c.text));
    }
    if selected.len() == 1 {
        values.push(Value::new(c.text.clone(), selected[0].value));
    } else {
        for s in selected.iter().take(MAX_SERIES_VALUES) {
            values.push(Value::new(s.series(), s.value));
        }
    }
    let failing: Vec<&&PromSample> = selected
        .iter()
        .filter(|s| !c.op.holds(s.value, c.threshold))
        .collect();
    if failing.is_empty() {
        return None;
    }
    if selected.len() == 1 {
        return Some(format!(
            "{} is {} (expected {expect})",
            c.text, selected[0].value
        ));
    }
    let named: Vec<String> = failing
        .iter()
        .take(NAMED_FAILURES)
        .map(|s| format!("{} is {}", s.series(), s.value))
        .collect();
    let more = failing.len().saturating_sub(NAMED_FAILURES);
    Some(format!(
        "{} of {} series of {} fail (expected {expect}): {}{}",
        failing.len(),
        selected.len(),
        c.text,
        named.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Runs one scrape bounded by `timeout`.
pub async fn probe(http: &HttpProber, spec: &PrometheusSpec, timeout: Duration) -> Outcome {
    let mut conditions: Vec<(Status, PromCondition)> = Vec::new();
    for (status, list) in [
        (Status::Crit, &spec.conditions),
        (Status::Warn, &spec.warn_conditions),
    ] {
        for c in list {
            match PromCondition::parse(c) {
                Ok(p) => conditions.push((status, p)),
                Err(e) => return Outcome::new(Status::Unknown, format!("invalid condition: {e}")),
            }
        }
    }
    let mut h = HttpSpec::new(spec.url.clone());
    h.headers = spec.headers.clone();
    // Ask for the text format, not protobuf or OpenMetrics.
    if !h.headers.keys().any(|k| k.eq_ignore_ascii_case("accept")) {
        h.headers.insert(
            "Accept".into(),
            "text/plain;version=0.0.4;q=1,*/*;q=0.1".into(),
        );
    }
    h.max_body_bytes = spec.max_body_bytes;
    h.ca_file = spec.ca_file.clone();
    h.insecure = spec.insecure;
    let judge_body = |body: &[u8], fails: &mut Vec<(Status, String)>, values: &mut Vec<Value>| {
        let text = match std::str::from_utf8(body) {
            Ok(t) => t,
            Err(e) => {
                fails.push((
                    Status::Crit,
                    format!("exposition is not UTF-8 (at byte {})", e.valid_up_to()),
                ));
                return;
            }
        };
        let samples = match parse_exposition(text) {
            Ok(s) => s,
            Err(e) => {
                fails.push((Status::Crit, e));
                return;
            }
        };
        values.push(Value::new("samples", samples.len() as f64));
        for (status, c) in &conditions {
            if let Some(f) = judge(c, &samples, values) {
                fails.push((*status, f));
            }
        }
    };
    let mut out = http.probe_with(&h, timeout, Some(&judge_body)).await;
    if out.status == Status::Ok {
        out.reason = if conditions.is_empty() {
            "scraped".into()
        } else {
            "every condition holds".into()
        };
    }
    out
}

impl crate::Probe for vitals_core::spec::PrometheusSpec {
    async fn run(
        &self,
        prober: &crate::Prober,
        _kind: vitals_core::spec::ProbeKind,
        _key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        probe(&prober.http, self, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

    fn cond(s: &str) -> PromCondition {
        PromCondition::parse(s).unwrap()
    }

    #[test]
    fn escapes_histograms_and_summaries() {
        let s = parse_exposition(TEXT).unwrap();
        let msdos = s
            .iter()
            .find(|x| x.name == "msdos_file_access_time_seconds")
            .unwrap();
        assert_eq!(msdos.labels[0].1, r"C:\DIR\FILE.TXT");
        assert_eq!(msdos.labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        let mut v = Vec::new();
        assert_eq!(
            judge(
                &cond(r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT"} > 1"#),
                &s,
                &mut v
            ),
            None
        );
        assert_eq!(
            judge(
                &cond(r#"http_request_duration_seconds_bucket{le="+Inf"} == 144320"#),
                &s,
                &mut v
            ),
            None
        );
        assert_eq!(
            judge(&cond("http_request_duration_seconds_count > 0"), &s, &mut v),
            None
        );
        assert_eq!(
            judge(
                &cond(r#"rpc_duration_seconds{quantile="0.99"} < 80000"#),
                &s,
                &mut v
            ),
            None
        );
        assert_eq!(
            judge(&cond("rpc_duration_seconds_sum > 1e7"), &s, &mut v),
            None
        );
        assert_eq!(
            judge(&cond("sum(http_requests_total) == 1030"), &s, &mut v),
            None
        );
        assert_eq!(
            judge(
                &cond(r#"http_requests_total{code!="200"} == 0"#),
                &s,
                &mut v
            )
            .unwrap(),
            r#"http_requests_total{code!="200"} is 3 (expected == 0)"#
        );
        assert_eq!(
            judge(&cond("http_requests_total < 100"), &s, &mut v).unwrap(),
            r#"1 of 2 series of http_requests_total fail (expected < 100): http_requests_total{method="post",code="200"} is 1027"#
        );
        assert_eq!(
            judge(&cond(r#"nothing_here{a="b"} == 1"#), &s, &mut v).unwrap(),
            r#"nothing_here{a="b"} matched nothing"#
        );
        assert_eq!(judge(&cond("count(nothing_here) == 0"), &s, &mut v), None);
        assert_eq!(
            judge(&cond("max(nothing_here) == 0"), &s, &mut v).unwrap(),
            "max(nothing_here) matched nothing"
        );
        assert!(v
            .iter()
            .any(|x| x.name == "sum(http_requests_total)" && x.value == 1030.0));
    }

    #[test]
    fn garbage_is_a_reason_not_a_panic() {
        assert!(parse_exposition("this is { not an exposition\n").is_err());
        assert!(parse_exposition("up{a=\"x} 1\n").is_err());
        assert_eq!(parse_exposition("").map(|v| v.len()).unwrap_or(0), 0);
    }
}
