//! The small condition languages of the `postgres`/`mysql` and `prometheus` checks. Pure:
//! parsed once by `vitals-config` (every error named with its path) and evaluated by the
//! probes against what the target answered.
//!
//! - [`RowCondition`]: `rows >= 1`, `state == "ready"`, `lag_seconds < 30` over a query result.
//! - [`PromCondition`]: a PromQL-like subset over one scrape: a selector with label matchers
//!   (`=`, `!=`, `=~`, `!~`), an optional aggregation (`count`, `sum`, `min`, `max`, `avg`) and a
//!   comparison with a number, e.g. `count(container_last_seen{name=~"aktin-.*"}) >= 3`.

use regex::Regex;
use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Two-character operators first so that `<=` is not read as `<`.
    const TOKENS: [(&'static str, Op); 6] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Finds the first comparison operator outside quotes and braces: `(position, op, length)`.
fn find_op(s: &str) -> Option<(usize, Op, usize)> {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' => quote = Some(c),
            b'{' | b'(' => depth += 1,
            b'}' | b')' => depth -= 1,
            _ if depth == 0 => {
                for (tok, op) in Op::TOKENS {
                    // Bytes, not `s[i..]`: `i` may sit inside a multi-byte character.
                    if b[i..].starts_with(tok.as_bytes()) {
                        return Some((i, op, tok.len()));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Reads a quoted string (`"…"` or `'…'`, with `\"`, `\\`, `\n`, `\t` escapes); returns the
/// text and the rest after the closing quote.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next().filter(|(_, c)| *c == '"' || *c == '\'') else {
        return Err(format!("expected a quoted string at {s:?}"));
    };
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            out.push(match c {
                'n' => '\n',
                't' => '\t',
                c => c,
            });
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == q {
            return Ok((out, &s[i + c.len_utf8()..]));
        } else {
            out.push(c);
        }
    }
    Err(format!("unterminated string in {s:?}"))
}

/// A literal on the right of a row condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// A condition on a query result: `rows OP n`, or `column OP literal` on the first row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowCondition {
    /// `rows`, or a column name.
    pub subject: String,
    pub op: Op,
    pub expected: Literal,
}

impl RowCondition {
    /// Parses `rows >= 1`, `state == "ready"`, `state == ready`, `lag < 30`, `ok == true`.
    pub fn parse(s: &str) -> Result<RowCondition, String> {
        let s = s.trim();
        let Some((at, op, len)) = find_op(s) else {
            return Err(format!(
                "expected `column OP value` with OP one of == != < <= > >=: {s:?}"
            ));
        };
        let subject = s[..at].trim();
        let subject = if subject.starts_with('"') {
            let (name, rest) = quoted(subject)?;
            if !rest.trim().is_empty() {
                return Err(format!(
                    "unexpected {rest:?} after the column name in {s:?}"
                ));
            }
            name
        } else {
            subject.to_string()
        };
        if subject.is_empty() || subject.contains(char::is_whitespace) {
            return Err(format!("missing or invalid column name in {s:?}"));
        }
        let rhs = s[at + len..].trim();
        if rhs.is_empty() {
            return Err(format!("missing value after {:?} in {s:?}", op.as_str()));
        }
        let expected = if rhs.starts_with('"') || rhs.starts_with('\'') {
            let (text, rest) = quoted(rhs)?;
            if !rest.trim().is_empty() {
                return Err(format!("unexpected {rest:?} after the value in {s:?}"));
            }
            Literal::Text(text)
        } else if let Ok(n) = rhs.parse::<f64>() {
            Literal::Number(n)
        } else if rhs.eq_ignore_ascii_case("true") || rhs.eq_ignore_ascii_case("false") {
            Literal::Bool(rhs.eq_ignore_ascii_case("true"))
        } else {
            Literal::Text(rhs.to_string())
        };
        if !matches!(op, Op::Eq | Op::Ne) && !matches!(expected, Literal::Number(_)) {
            return Err(format!(
                "{:?} needs a number on its right in {s:?}",
                op.as_str()
            ));
        }
        if subject == "rows" && !matches!(expected, Literal::Number(_)) {
            return Err(format!("rows is compared with a number in {s:?}"));
        }
        Ok(RowCondition {
            subject,
            op,
            expected,
        })
    }

    /// Judges a result: `rows` rows, `first` the first row's columns as text (`None` = NULL).
    /// `Err` is the human-readable mismatch.
    pub fn eval(&self, rows: usize, first: &[(String, Option<String>)]) -> Result<(), String> {
        if self.subject == "rows" && !first.iter().any(|(c, _)| c == "rows") {
            let Literal::Number(n) = self.expected else {
                return Err("rows is compared with a number".into());
            };
            return if self.op.holds(rows as f64, n) {
                Ok(())
            } else {
                Err(format!("rows is {rows} (expected {} {n})", self.op))
            };
        }
        if rows == 0 {
            return Err(format!("no row to read {} from", self.subject));
        }
        let Some((_, value)) = first.iter().find(|(c, _)| c == &self.subject) else {
            return Err(format!("column {} is not in the result", self.subject));
        };
        let Some(value) = value else {
            return Err(format!(
                "{} is NULL (expected {} {})",
                self.subject, self.op, self.expected
            ));
        };
        let ok = match &self.expected {
            Literal::Number(n) => match value.trim().parse::<f64>() {
                Ok(v) => self.op.holds(v, *n),
                Err(_) => {
                    return Err(format!(
                        "{} is {value:?}, not a number (expected {} {n})",
                        self.subject, self.op
                    ))
                }
            },
            Literal::Bool(b) => {
                let v = matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "t" | "true" | "1" | "on" | "yes" | "y"
                );
                (v == *b) == (self.op == Op::Eq)
            }
            Literal::Text(t) => (value == t) == (self.op == Op::Eq),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} is {value:?} (expected {} {})",
                self.subject, self.op, self.expected
            ))
        }
    }
}

/// How a label matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

/// One label matcher of a selector.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex of `=~` / `!~`.
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// `metric{label="v", other=~"re.*"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// Whether a sample (name and labels) is selected. A label the sample lacks is `""`, as in
    /// PromQL.
    pub fn matches(&self, name: &str, labels: &[(String, String)]) -> bool {
        name == self.metric
            && self.matchers.iter().all(|m| {
                let v = labels
                    .iter()
                    .find(|(k, _)| k == &m.label)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("");
                m.matches(v)
            })
    }
}

/// An aggregation over the selected samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl Aggregation {
    fn parse(s: &str) -> Option<Aggregation> {
        Some(match s {
            "count" => Aggregation::Count,
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "avg" => Aggregation::Avg,
            _ => return None,
        })
    }

    /// `None` for an empty set, except `count` (0).
    pub fn apply(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return (self == Aggregation::Count).then_some(0.0);
        }
        Some(match self {
            Aggregation::Count => values.len() as f64,
            Aggregation::Sum => values.iter().sum(),
            Aggregation::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Avg => values.iter().sum::<f64>() / values.len() as f64,
        })
    }
}

/// A condition of a `prometheus` check.
#[derive(Debug, Clone, PartialEq)]
pub struct PromCondition {
    /// The left-hand side as written (trimmed): the name of the value(s) it yields.
    pub text: String,
    pub aggregation: Option<Aggregation>,
    pub selector: Selector,
    pub op: Op,
    pub threshold: f64,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_selector(s: &str) -> Result<Selector, String> {
    let s = s.trim();
    let name_len = s
        .char_indices()
        .find(|(i, c)| {
            !(if *i == 0 {
                is_name_start(*c)
            } else {
                is_name_char(*c)
            })
        })
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    if name_len == 0 {
        return Err(format!("expected a metric name at {s:?}"));
    }
    let metric = s[..name_len].to_string();
    let mut rest = s[name_len..].trim_start();
    let mut matchers = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let label_len = rest
                .char_indices()
                .find(|(i, c)| {
                    !(if *i == 0 {
                        c.is_ascii_alphabetic() || *c == '_'
                    } else {
                        c.is_ascii_alphanumeric() || *c == '_'
                    })
                })
                .map(|(i, _)| i)
                .unwrap_or(rest.len());
            if label_len == 0 {
                return Err(format!("expected a label name at {rest:?}"));
            }
            let label = rest[..label_len].to_string();
            rest = rest[label_len..].trim_start();
            let (op, len) = if rest.starts_with("=~") {
                (MatchOp::Re, 2)
            } else if rest.starts_with("!~") {
                (MatchOp::NotRe, 2)
            } else if rest.starts_with("!=") {
                (MatchOp::Ne, 2)
            } else if rest.starts_with('=') {
                (MatchOp::Eq, 1)
            } else {
                return Err(format!(
                    "expected = != =~ or !~ after label {label} at {rest:?}"
                ));
            };
            rest = rest[len..].trim_start();
            let (value, r) = quoted(rest)?;
            rest = r.trim_start();
            let re = match op {
                MatchOp::Re | MatchOp::NotRe => Some(
                    // Anchored, as in PromQL.
                    Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                        format!(
                            "label {label}: invalid regex {value:?}: {}",
                            e.to_string()
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    })?,
                ),
                _ => None,
            };
            matchers.push(Matcher {
                label,
                op,
                value,
                re,
            });
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected , or }} at {rest:?}"));
            }
        }
    }
    if !rest.trim().is_empty() {
        return Err(format!("unexpected {:?} after the selector", rest.trim()));
    }
    Ok(Selector { metric, matchers })
}

impl PromCondition {
    /// Parses `metric{l="v"} OP number` or `agg(metric{…}) OP number`.
    pub fn parse(s: &str) -> Result<PromCondition, String> {
        let s = s.trim();
        let Some((at, op, len)) = find_op(s) else {
            return Err(format!(
                "expected `selector OP number` with OP one of == != < <= > >=: {s:?}"
            ));
        };
        let lhs = s[..at].trim();
        let rhs = s[at + len..].trim();
        let threshold = match rhs.to_ascii_lowercase().as_str() {
            "+inf" | "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => rhs
                .parse::<f64>()
                .map_err(|_| format!("expected a number after {:?}, got {rhs:?}", op.as_str()))?,
        };
        let (aggregation, inner) = match lhs.find('(') {
            Some(open) if !lhs[..open].contains('{') => {
                let name = lhs[..open].trim();
                let agg = Aggregation::parse(name).ok_or_else(|| {
                    format!("unknown aggregation {name:?} (known: count, sum, min, max, avg)")
                })?;
                let Some(inner) = lhs[open + 1..].trim_end().strip_suffix(')') else {
                    return Err(format!("missing ) in {lhs:?}"));
                };
                (Some(agg), inner)
            }
            _ => (None, lhs),
        };
        let selector = parse_selector(inner)?;
        Ok(PromCondition {
            text: lhs.to_string(),
            aggregation,
            selector,
            op,
            threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        cols.iter()
            .map(|(k, v)| (k.to_string(), v.map(String::from)))
            .collect()
    }

    #[test]
    fn text_beyond_ascii_is_an_error_not_a_panic() {
        // Found by fuzzing: the operator search stepped into the middle of a character.
        for text in [
            "# HE# HELP go_gc @\u{a30a}",
            "x\u{e9}>1",
            "n\u{1f600} >= 2",
            "\u{e9}",
        ] {
            let _ = PromCondition::parse(text);
            let _ = RowCondition::parse(text);
        }
        assert!(PromCondition::parse("up{job=\"h\u{f6}pital\"} >= 1").is_ok());
        assert!(RowCondition::parse("state == \"f\u{e9}\"").is_ok());
    }

    #[test]
    fn row_conditions_parse_and_judge() {
        let r = row(&[
            ("state", Some("ready")),
            ("lag", Some("12.5")),
            ("ok", Some("t")),
        ]);
        let ok = |c: &str| RowCondition::parse(c).unwrap().eval(1, &r);
        assert_eq!(ok("rows >= 1"), Ok(()));
        assert_eq!(ok("rows > 1").unwrap_err(), "rows is 1 (expected > 1)");
        assert_eq!(ok(r#"state == "ready""#), Ok(()));
        assert_eq!(ok("state == ready"), Ok(()));
        assert_eq!(
            ok("state != 'ready'").unwrap_err(),
            r#"state is "ready" (expected != "ready")"#
        );
        assert_eq!(ok("lag < 30"), Ok(()));
        assert_eq!(
            ok("lag >= 30").unwrap_err(),
            r#"lag is "12.5" (expected >= 30)"#
        );
        assert_eq!(ok("ok == true"), Ok(()));
        assert_eq!(
            ok("missing == 1").unwrap_err(),
            "column missing is not in the result"
        );
        assert_eq!(
            RowCondition::parse("state == 1")
                .unwrap()
                .eval(0, &[])
                .unwrap_err(),
            "no row to read state from"
        );
        let null = row(&[("v", None)]);
        assert!(RowCondition::parse("v == 1")
            .unwrap()
            .eval(1, &null)
            .unwrap_err()
            .contains("NULL"));
        assert!(RowCondition::parse("state < ready").is_err());
        assert!(RowCondition::parse("rows == x").is_err());
        assert!(RowCondition::parse("just words").is_err());
        assert!(RowCondition::parse("a ==").is_err());
    }

    fn labels(l: &[(&str, &str)]) -> Vec<(String, String)> {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prom_conditions_parse() {
        let c =
            PromCondition::parse(r#"windows_service_state{name="minlog2",state="running"} == 1"#)
                .unwrap();
        assert_eq!(c.aggregation, None);
        assert_eq!(c.op, Op::Eq);
        assert_eq!(c.threshold, 1.0);
        assert!(c.selector.matches(
            "windows_service_state",
            &labels(&[("name", "minlog2"), ("state", "running")])
        ));
        assert!(!c.selector.matches(
            "windows_service_state",
            &labels(&[("name", "minlog2"), ("state", "stopped")])
        ));
        let c =
            PromCondition::parse(r#"count(container_last_seen{name=~"aktin-.*"}) >= 3"#).unwrap();
        assert_eq!(c.aggregation, Some(Aggregation::Count));
        assert_eq!(c.text, r#"count(container_last_seen{name=~"aktin-.*"})"#);
        assert!(c
            .selector
            .matches("container_last_seen", &labels(&[("name", "aktin-broker")])));
        // Anchored: a prefix is not enough.
        assert!(!c
            .selector
            .matches("container_last_seen", &labels(&[("name", "x-aktin-1")])));
        let c =
            PromCondition::parse(r#"up{job!="a", path!~"/tmp.*", q="say \"hi\"",} < 1"#).unwrap();
        assert_eq!(c.selector.matchers.len(), 3);
        assert_eq!(c.selector.matchers[2].value, "say \"hi\"");
        assert!(c.selector.matches(
            "up",
            &labels(&[("job", "b"), ("path", "/var"), ("q", "say \"hi\"")])
        ));
        // A missing label is the empty string.
        assert!(c
            .selector
            .matches("up", &labels(&[("path", "/"), ("q", "say \"hi\"")])));
        assert!(PromCondition::parse("up").is_err());
        assert!(PromCondition::parse("up == x").is_err());
        assert!(PromCondition::parse("median(up) > 1").is_err());
        assert!(PromCondition::parse(r#"up{a=~"("} > 1"#).is_err());
        assert!(PromCondition::parse(r#"up{a="x" > 1"#).is_err());
        assert!(PromCondition::parse(r#"up{a~"x"} > 1"#).is_err());
        assert!(PromCondition::parse("{a=\"x\"} > 1").is_err());
        assert!(PromCondition::parse("up > +Inf").is_ok());
    }

    #[test]
    fn aggregations() {
        let v = [1.0, 4.0, 2.0, 5.0];
        assert_eq!(Aggregation::Count.apply(&v), Some(4.0));
        assert_eq!(Aggregation::Sum.apply(&v), Some(12.0));
        assert_eq!(Aggregation::Min.apply(&v), Some(1.0));
        assert_eq!(Aggregation::Max.apply(&v), Some(5.0));
        assert_eq!(Aggregation::Avg.apply(&v), Some(3.0));
        assert_eq!(Aggregation::Count.apply(&[]), Some(0.0));
        assert_eq!(Aggregation::Sum.apply(&[]), None);
    }
}
