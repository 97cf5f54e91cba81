//! Log probe: follow a log file (through rotation and truncation, with the follower the `[sla]`
//! logs use) and count the lines that match `patterns` (and no `exclude` pattern) since the
//! previous run of the check. Each run is one observation for the interval that ended: `warn`
//! or `crit` by `warn_count` / `crit_count`, its reason quoting the first matching lines (at
//! most `quote_lines`, each cut to [`QUOTE_CHARS`] characters).
//!
//! A scheduled check keeps its follower between runs (in the [`Prober`](crate::Prober), by
//! check); its first run starts at the end of the file. A one-off run (`vitals probe`) reads the
//! last `max_read_bytes` of the file. Each run reads at most `max_read_bytes`; more is left for
//! the next run (`backlog` = 1).
//!
//! Values: `lines`, `matches`, `bytes`, `backlog`.

use crate::follow::Follower;
use crate::Outcome;
use regex::bytes::RegexSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vitals_core::spec::LogSpec;
use vitals_core::{Status, Value};

/// A quoted line is cut to this many characters.
pub const QUOTE_CHARS: usize = 200;
/// At most this many lines are quoted, whatever `quote_lines` says.
pub const MAX_QUOTES: usize = 20;

/// One check's follower and compiled patterns.
pub struct Tail {
    spec: LogSpec,
    follower: Follower,
    patterns: RegexSet,
    exclude: RegexSet,
    first: bool,
}

impl Tail {
    fn new(spec: &LogSpec, follower: Follower) -> Result<Tail, String> {
        let set = |list: &[String], what: &str| {
            RegexSet::new(list).map_err(|e| {
                format!(
                    "invalid {what}: {}",
                    e.to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })
        };
        Ok(Tail {
            spec: spec.clone(),
            follower,
            patterns: set(&spec.patterns, "pattern")?,
            exclude: set(&spec.exclude, "exclude pattern")?,
            first: true,
        })
    }
}

/// The followers of scheduled log checks, by check key.
#[derive(Default)]
pub struct Tails {
    map: Mutex<HashMap<String, Arc<Mutex<Tail>>>>,
}

impl Tails {
    /// Forgets the followers of checks for which `keep` is false (removed by a reload).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        if let Ok(mut m) = self.map.lock() {
            m.retain(|k, _| keep(k));
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &str, spec: &LogSpec) -> Result<Arc<Mutex<Tail>>, String> {
        let mut m = self
            .map
            .lock()
            .map_err(|_| "log follower state is poisoned")?;
        if let Some(t) = m.get(key) {
            // A changed spec (another file, other patterns) starts afresh.
            if t.lock().map(|t| &t.spec == spec).unwrap_or(false) {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(Mutex::new(Tail::new(
            spec,
            Follower::new(spec.file.clone()),
        )?));
        m.insert(key.to_string(), t.clone());
        Ok(t)
    }
}

/// What one run read.
#[derive(Debug, Default, PartialEq)]
struct Count {
    lines: u64,
    matches: u64,
    bytes: u64,
    quotes: Vec<String>,
    backlog: bool,
}

fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    let mut out: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().count() > QUOTE_CHARS {
        out.push('…');
    }
    format!("{out:?}")
}

fn read(tail: &mut Tail) -> std::io::Result<Count> {
    let mut c = Count::default();
    let cap = usize::try_from(tail.spec.max_read_bytes.max(1)).unwrap_or(usize::MAX);
    let quotes = tail.spec.quote_lines.min(MAX_QUOTES);
    let (patterns, exclude) = (&tail.patterns, &tail.exclude);
    let backlog = tail.follower.poll_capped(cap, &mut |line| {
        c.lines += 1;
        c.bytes += line.len() as u64 + 1;
        if patterns.is_match(line) && !exclude.is_match(line) {
            c.matches += 1;
            if c.quotes.len() < quotes {
                c.quotes.push(quote(line));
            }
        }
    })?;
    c.backlog = backlog;
    Ok(c)
}

/// Runs one log check. `tails` holds the follower of a scheduled check (`key`); without a key
/// the last `max_read_bytes` of the file are read once.
pub async fn probe(tails: &Tails, key: Option<&str>, spec: &LogSpec, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let path = spec.file.clone();
    let tail = match key {
        Some(k) => tails.get(k, spec),
        None => Tail::new(
            spec,
            Follower::starting_back(path.clone(), spec.max_read_bytes),
        )
        .map(|mut t| {
            t.first = false;
            Arc::new(Mutex::new(t))
        }),
    };
    let tail = match tail {
        Ok(t) => t,
        Err(e) => return Outcome::new(Status::Unknown, e),
    };
    // File reads and matching are blocking work; the read cap bounds them.
    let work = tokio::task::spawn_blocking(move || {
        let mut t = tail
            .lock()
            .map_err(|_| "log follower state is poisoned".to_string())?;
        let first = std::mem::replace(&mut t.first, false);
        let count = read(&mut t).map_err(|e| {
            format!(
                "cannot read {}: {}",
                t.spec.file.display(),
                crate::exec::strip_os_error(&e.to_string())
            )
        })?;
        Ok::<_, String>((first, count))
    });
    let result = match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(format!(
            "timed out after {} reading {}",
            crate::fmt_duration(timeout),
            path.display()
        )),
        Ok(Err(e)) => Err(format!("log reader failed: {e}")),
        Ok(Ok(r)) => r,
    };
    let mut out = match result {
        Err(e) => Outcome::new(Status::Crit, e),
        Ok((first, c)) => judge(spec, first, &c),
    };
    out.duration_us = started.elapsed().as_micros() as u64;
    out
}

fn judge(spec: &LogSpec, first: bool, c: &Count) -> Outcome {
    let file = spec.file.display();
    let exists = std::fs::metadata(&spec.file);
    let mut status = if spec.crit_count.is_some_and(|n| c.matches >= n) {
        Status::Crit
    } else if spec.warn_count.is_some_and(|n| c.matches >= n) {
        Status::Warn
    } else {
        Status::Ok
    };
    let mut reason = if c.matches > 0 {
        let s = if c.matches == 1 { "" } else { "s" };
        if c.quotes.is_empty() {
            format!("{} matching line{s}", c.matches)
        } else {
            format!("{} matching line{s}: {}", c.matches, c.quotes.join(", "))
        }
    } else if first {
        format!("following {file} from its end")
    } else {
        "no matching line".to_string()
    };
    match exists {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            status = Status::Crit;
            reason = if c.lines > 0 {
                format!("file {file} missing (after {reason})")
            } else {
                format!("file {file} missing")
            };
        }
        Err(e) => {
            status = Status::Crit;
            reason = format!(
                "cannot read {file}: {}",
                crate::exec::strip_os_error(&e.to_string())
            );
        }
    }
    if c.backlog {
        reason.push_str(" (more to read next run)");
    }
    let mut out = Outcome::new(status, reason);
    out.values = vec![
        Value::new("lines", c.lines as f64),
        Value::new("matches", c.matches as f64),
        Value::new("bytes", c.bytes as f64),
        Value::new("backlog", if c.backlog { 1.0 } else { 0.0 }),
    ];
    out
}

impl crate::Probe for vitals_core::spec::LogSpec {
    async fn run(
        &self,
        prober: &crate::Prober,
        _kind: vitals_core::spec::ProbeKind,
        key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        probe(&prober.logs, key, self, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_capped_and_escaped() {
        let long = "x".repeat(300);
        let q = quote(long.as_bytes());
        assert_eq!(q.chars().count(), QUOTE_CHARS + 3);
        assert_eq!(quote(b"say \"hi\"\r"), r#""say \"hi\"""#);
        assert_eq!(quote(b"\xff bad"), "\"\u{fffd} bad\"");
    }
}
