//! Nagios / Monitoring Plugins output: status text, long text and performance data.
//!
//! A plugin prints `TEXT | perfdata…` on its first line; further lines are long text up to
//! the first line containing a `|`, after which everything (the rest of that line and all
//! following lines) is more performance data. One perfdata item is
//! `'label'=value[UOM];[warn];[crit];[min];[max]`.
//!
//! [`parse_output`] is a pure function that never fails and never panics: whatever a plugin
//! prints, the caller gets the text and every well-formed item; malformed items are skipped.
//! [`Range`] implements the Nagios threshold syntax (`10`, `10:`, `~:10`, `10:20`, `@10:20`).

use std::fmt;

/// A plugin's output, split into its parts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginOutput {
    /// The first line up to `|`, trimmed.
    pub text: String,
    /// The lines after the first up to the perfdata `|`, joined with `\n`.
    pub long_text: String,
    pub perfdata: Vec<PerfData>,
}

/// One performance data item.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfData {
    pub label: String,
    pub value: f64,
    /// One of `""`, `s`, `ms`, `us`, `%`, `B`, `KB`, `MB`, `GB`, `TB`, `c`.
    pub uom: String,
    pub warn: Option<Range>,
    pub crit: Option<Range>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A Nagios threshold range. Alerts when the value is outside `start..=end`, or inside it
/// when `inside` is set (`@` prefix). Unbounded ends are infinite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    pub inside: bool,
}

impl Range {
    /// Parses `10` (outside 0..10), `10:` (below 10), `~:10` (above 10), `10:20` (outside),
    /// `@10:20` (inside).
    pub fn parse(s: &str) -> Result<Range, String> {
        let t = s.trim();
        let (inside, body) = match t.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if body.is_empty() {
            return Err(format!("empty threshold range {s:?}"));
        }
        let (start, end) = match body.split_once(':') {
            None => (0.0, parse_bound(body, s)?),
            Some((a, b)) => {
                let start = match a {
                    "~" => f64::NEG_INFINITY,
                    // `:10` is accepted by the plugins' own parser and means `0:10`.
                    "" => 0.0,
                    _ => parse_bound(a, s)?,
                };
                let end = if b.is_empty() {
                    f64::INFINITY
                } else {
                    parse_bound(b, s)?
                };
                (start, end)
            }
        };
        if start > end {
            return Err(format!(
                "threshold range {s:?}: start {start} is greater than end {end}"
            ));
        }
        Ok(Range { start, end, inside })
    }

    /// Whether `v` is an alert under this range.
    pub fn alerts(&self, v: f64) -> bool {
        let within = v >= self.start && v <= self.end;
        if self.inside {
            within
        } else {
            !within
        }
    }
}

fn parse_bound(b: &str, whole: &str) -> Result<f64, String> {
    match parse_number(b) {
        Some(v) => Ok(v),
        None => Err(format!("threshold range {whole:?}: {b:?} is not a number")),
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        if self.start == 0.0 && !self.inside && self.end.is_finite() {
            return write!(f, "{}", self.end);
        }
        if self.start == f64::NEG_INFINITY {
            f.write_str("~")?;
        } else {
            write!(f, "{}", self.start)?;
        }
        f.write_str(":")?;
        if self.end.is_finite() {
            write!(f, "{}", self.end)?;
        }
        Ok(())
    }
}

/// Splits plugin output into text, long text and performance data. Never fails.
pub fn parse_output(output: &str) -> PluginOutput {
    let mut lines = output.lines();
    let first = lines.next().unwrap_or("");
    let (text, first_perf) = match first.split_once('|') {
        Some((t, p)) => (t, Some(p)),
        None => (first, None),
    };
    let mut perfdata = Vec::new();
    if let Some(p) = first_perf {
        parse_perfdata_into(p, &mut perfdata);
    }
    let mut long_lines: Vec<&str> = Vec::new();
    let mut in_perf = false;
    for line in lines {
        if in_perf {
            parse_perfdata_into(line, &mut perfdata);
            continue;
        }
        match line.split_once('|') {
            Some((before, after)) => {
                if !before.trim().is_empty() {
                    long_lines.push(before.trim_end());
                }
                parse_perfdata_into(after, &mut perfdata);
                in_perf = true;
            }
            None => long_lines.push(line.trim_end()),
        }
    }
    // Trailing blank lines are noise from `echo`; blank lines inside are kept.
    while long_lines.last().is_some_and(|l| l.trim().is_empty()) {
        long_lines.pop();
    }
    PluginOutput {
        text: text.trim().to_string(),
        long_text: long_lines.join("\n"),
        perfdata,
    }
}

/// Parses whitespace-separated perfdata items; malformed ones are skipped.
pub fn parse_perfdata(s: &str) -> Vec<PerfData> {
    let mut out = Vec::new();
    parse_perfdata_into(s, &mut out);
    out
}

fn parse_perfdata_into(s: &str, out: &mut Vec<PerfData>) {
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return;
        }
        let (item, next) = take_item(rest);
        if let Some(p) = item {
            out.push(p);
        }
        rest = next;
    }
}

/// Reads one item from the start of `s` (which begins with a non-space); returns it, if it
/// is well formed, and the remaining input.
fn take_item(s: &str) -> (Option<PerfData>, &str) {
    let (label, after_label) = if let Some(quoted) = s.strip_prefix('\'') {
        match take_quoted(quoted) {
            Some((label, rest)) => (label, rest),
            // An unterminated quote swallows the rest of the line: nothing further is reliable.
            None => return (None, ""),
        }
    } else {
        let end = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    };
    let Some(after_eq) = after_label.strip_prefix('=') else {
        return (None, skip_token(after_label));
    };
    let end = after_eq.find(char::is_whitespace).unwrap_or(after_eq.len());
    let (data, rest) = after_eq.split_at(end);
    if label.is_empty() {
        return (None, rest);
    }
    (parse_data(label, data), rest)
}

/// `label'rest` with `''` as an escaped quote → (label, rest after the closing quote).
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let mut label = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if let Some(&(_, '\'')) = chars.peek() {
                chars.next();
                label.push('\'');
            } else {
                return Some((label, &s[i + 1..]));
            }
        } else {
            label.push(c);
        }
    }
    None
}

fn skip_token(s: &str) -> &str {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    &s[end..]
}

/// `value[UOM];[warn];[crit];[min];[max]`.
fn parse_data(label: String, data: &str) -> Option<PerfData> {
    let mut fields = data.split(';');
    let (value, uom) = split_value(fields.next()?)?;
    let warn = fields.next().and_then(parse_threshold);
    let crit = fields.next().and_then(parse_threshold);
    let min = fields.next().and_then(parse_limit);
    let max = fields.next().and_then(parse_limit);
    Some(PerfData {
        label,
        value,
        uom,
        warn,
        crit,
        min,
        max,
    })
}

// An unparsable threshold or limit loses only itself: the sample is what a user charts.
fn parse_threshold(s: &str) -> Option<Range> {
    if s.trim().is_empty() {
        return None;
    }
    Range::parse(s).ok()
}

fn parse_limit(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    // Some plugins repeat the unit on min/max (`0MB`); the number is what counts.
    let (v, _) = split_value(s)?;
    Some(v)
}

const UOMS: [&str; 11] = ["s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c", ""];

/// `12.5ms` → (12.5, "ms"). `U` (undetermined) and unknown units are rejected.
fn split_value(s: &str) -> Option<(f64, String)> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(s.len());
    // `e`/`E` belong to the number only when followed by a digit or sign (`1e3`), not in a
    // unit; no supported unit starts with `e`, so trimming them back suffices.
    let (mut num, mut uom) = s.split_at(split);
    while num.ends_with(['e', 'E']) {
        let cut = num.len() - 1;
        uom = &s[cut..];
        num = &s[..cut];
    }
    let value = parse_value_number(num)?;
    let uom = UOMS.iter().find(|u| u.eq_ignore_ascii_case(uom))?;
    Some((value, (*uom).to_string()))
}

/// A finite decimal number (no `inf`, `NaN` or hex, which `f64::from_str` would accept).
fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A sample value: as [`parse_number`], but a single `,` is accepted as decimal separator,
/// because plugins run under a German locale print `0,005`.
fn parse_value_number(s: &str) -> Option<f64> {
    if s.matches(',').count() == 1 && !s.contains('.') {
        parse_number(&s.replace(',', "."))
    } else {
        parse_number(s)
    }
}
