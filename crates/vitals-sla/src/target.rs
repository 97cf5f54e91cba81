//! Response-time targets: "p % of the calls of the operations matching a glob finish within d".
//!
//! On the command line a target is `OP=PCT:DURATION` (`'minlog2.*=95:2.5s'`); in a targets file
//! it is a `[[target]]` table with `operation`, `percentile` and `within`. For each operation and
//! each percentile the *first* matching target applies (command line before file, then in the
//! order given), so specific patterns go first and a catch-all `*` last.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use serde::Deserialize;

use crate::percentile::Percentile;

/// One response-time target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Glob over operation names: `*` any run of characters, `?` one character.
    pub pattern: String,
    /// Which percentile of the durations is bounded.
    pub percentile: Percentile,
    /// The bound, inclusive: the target is met when the percentile is ≤ this.
    pub limit_us: u64,
}

impl Target {
    /// Whether this target applies to `operation`.
    pub fn matches(&self, operation: &str) -> bool {
        glob_match(self.pattern.as_bytes(), operation.as_bytes())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={}:{}",
            self.pattern,
            self.percentile,
            crate::report::human_us(self.limit_us)
        )
    }
}

impl FromStr for Target {
    type Err = String;

    /// `OP=PCT:DURATION`, e.g. `minlog2.*=95:2.5s` or `*=98%:5500ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (pattern, rule) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("target {s:?} is not OP=PCT:DURATION (no '=')"))?;
        let (pct, within) = rule
            .split_once(':')
            .ok_or_else(|| format!("target {s:?} is not OP=PCT:DURATION (no ':')"))?;
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err(format!(
                "target {s:?}: the operation pattern is empty (use * for all)"
            ));
        }
        Ok(Target {
            pattern: pattern.to_string(),
            percentile: pct.parse().map_err(|e| format!("target {s:?}: {e}"))?,
            limit_us: parse_limit(within).map_err(|e| format!("target {s:?}: {e}"))?,
        })
    }
}

/// A target bound: a number and a unit among `us`/`µs`, `ms`, `s`, `m`/`min`, `h`.
pub fn parse_limit(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_us: f64 = match unit.trim() {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" | "min" => 60e6,
        "h" => 3600e6,
        "" => return Err(format!("duration {text:?} needs a unit (us, ms, s, m, h)")),
        other => {
            return Err(format!(
                "duration {text:?} has unknown unit {other:?} (use us, ms, s, m, h)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let us = (value * unit_us).round();
    if !(us.is_finite() && us >= 0.0 && us <= crate::parse::MAX_DURATION_US as f64) {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(us as u64)
}

/// `*` and `?` glob over bytes, linear time (one backtrack point, as in the classic wildcard
/// matcher), so a hostile pattern cannot blow up.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    #[serde(default)]
    target: Vec<TargetEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    operation: String,
    percentile: f64,
    within: String,
}

/// Reads a TOML targets file:
///
/// ```toml
/// [[target]]
/// operation = "minlog2.AddRegistrations"
/// percentile = 95
/// within = "6.5s"
/// ```
///
/// Every bad entry is reported, each with its index.
pub fn load_targets_file(path: &Path) -> anyhow::Result<Vec<Target>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read targets file {}", path.display()))?;
    parse_targets_toml(&text).map_err(|e| anyhow::anyhow!("targets file {}: {e}", path.display()))
}

/// Parses the text of a targets file (see [`load_targets_file`]).
pub fn parse_targets_toml(text: &str) -> Result<Vec<Target>, String> {
    let file: TargetsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    let mut targets = Vec::new();
    for (i, entry) in file.target.into_iter().enumerate() {
        let percentile = format!("{}", entry.percentile).parse::<Percentile>();
        let limit = parse_limit(&entry.within);
        match (percentile, limit) {
            (Ok(percentile), Ok(limit_us)) if !entry.operation.trim().is_empty() => {
                targets.push(Target {
                    pattern: entry.operation.trim().to_string(),
                    percentile,
                    limit_us,
                })
            }
            (p, l) => {
                if entry.operation.trim().is_empty() {
                    errors.push(format!("target[{i}].operation: empty (use \"*\" for all)"));
                }
                if let Err(e) = p {
                    errors.push(format!("target[{i}].percentile: {e}"));
                }
                if let Err(e) = l {
                    errors.push(format!("target[{i}].within: {e}"));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(errors.join("; "))
    }
}

/// For `operation`, the targets that apply: per percentile the first matching one.
pub fn applicable<'t>(targets: &'t [Target], operation: &str) -> Vec<&'t Target> {
    let mut chosen: Vec<&Target> = Vec::new();
    for t in targets {
        if t.matches(operation) && !chosen.iter().any(|c| c.percentile == t.percentile) {
            chosen.push(t);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_line_targets() {
        let t: Target = "minlog2.*=95:2.5s".parse().unwrap();
        assert_eq!(t.pattern, "minlog2.*");
        assert_eq!(t.percentile.milli(), 95_000);
        assert_eq!(t.limit_us, 2_500_000);
        let t: Target = "*=99.9%:750ms".parse().unwrap();
        assert_eq!((t.percentile.milli(), t.limit_us), (99_900, 750_000));
        assert_eq!("x=50:1500us".parse::<Target>().unwrap().limit_us, 1_500);
        for bad in [
            "minlog2",
            "x=95",
            "=95:1s",
            "x=95:1",
            "x=95:1parsec",
            "x=101:1s",
            "x=95:-1s",
            "x=95:s",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        let err = "x=95:2.5".parse::<Target>().unwrap_err();
        assert!(err.contains("needs a unit"), "{err}");
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"minlog2.*", b"minlog2.AddRegistrations"));
        assert!(!glob_match(b"minlog2.*", b"minlog1.GetLogStatements"));
        assert!(glob_match(b"*Get*", b"minlog1.GetLogStatements"));
        assert!(glob_match(b"minlog?.Lookup*", b"minlog2.LookupId"));
        assert!(!glob_match(b"a*b", b"acbx"));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"abc", b"ab"));
        // Linear even for nasty patterns.
        let text = vec![b'a'; 10_000];
        assert!(!glob_match(b"*a*a*a*a*a*b", &text));
    }

    #[test]
    fn first_match_per_percentile_wins() {
        let targets: Vec<Target> = [
            "minlog2.AddRegistrations=95:6.5s",
            "minlog2.*=95:2.5s",
            "*=98:5.5s",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let add = applicable(&targets, "minlog2.AddRegistrations");
        assert_eq!(add.len(), 2);
        assert_eq!(add[0].limit_us, 6_500_000);
        assert_eq!(add[1].limit_us, 5_500_000);
        let lookup = applicable(&targets, "minlog2.LookupId");
        assert_eq!(lookup[0].limit_us, 2_500_000);
        assert_eq!(applicable(&targets, "DB_Operation:x").len(), 1);
    }

    #[test]
    fn targets_file() {
        let ok = "[[target]]\noperation = \"minlog2.*\"\npercentile = 95\nwithin = \"2.5s\"\n\n[[target]]\noperation = \"*\"\npercentile = 98.5\nwithin = \"5500ms\"\n";
        let t = parse_targets_toml(ok).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[1].percentile.milli(), t[1].limit_us),
            (98_500, 5_500_000)
        );
        let bad = "[[target]]\noperation = \"\"\npercentile = 0\nwithin = \"5\"\n";
        let err = parse_targets_toml(bad).unwrap_err();
        assert!(err.contains("target[0].operation"), "{err}");
        assert!(err.contains("target[0].percentile"), "{err}");
        assert!(err.contains("target[0].within"), "{err}");
        assert!(parse_targets_toml("[[target]]\nop = \"x\"\n").is_err());
    }
}
