//! Version ordering for OUTDATED, PEP 440-like: `1.5` = `1.5.0`; `1.5.1.dev1 < 1.5.1a1 <
//! 1.5.1b2 < 1.5.1rc1 < 1.5.1 < 1.5.1.post1` (also `1.5.1-1`). A `v` in front, `-`, `_` or `.`
//! before the pre/post/dev part, and a `+local` suffix are accepted. Anything else is
//! unparseable — reported as such, never as outdated.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    release: Vec<u64>,
    /// (0 alpha | 1 beta | 2 rc, number).
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    text: String,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits leading ASCII digits off; `None` if there are none or they overflow.
fn number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// An optional number (`rc` alone is `rc0`).
fn opt_number(s: &str) -> (u64, &str) {
    number(s).unwrap_or((0, s))
}

fn strip_sep(s: &str) -> &str {
    s.strip_prefix(['-', '_', '.']).unwrap_or(s)
}

/// The longest of `words` that `s` starts with (case-insensitive).
fn word<'a>(s: &'a str, words: &[&str]) -> Option<(&'a str, &'a str)> {
    let lower = s.to_ascii_lowercase();
    words
        .iter()
        .filter(|w| lower.starts_with(**w))
        .max_by_key(|w| w.len())
        .map(|w| (&s[..w.len()], &s[w.len()..]))
}

impl Version {
    /// Parses a version; `dwh-j2ee-` in front is removed (the broker reports it so).
    pub fn parse(raw: &str) -> Option<Version> {
        let text = raw.trim();
        let mut s = text.strip_prefix("dwh-j2ee-").unwrap_or(text);
        s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        // A local version label does not order.
        if let Some((head, _)) = s.split_once('+') {
            s = head;
        }
        let (first, mut rest) = number(s)?;
        let mut release = vec![first];
        while let Some(r) = rest.strip_prefix('.') {
            match number(r) {
                Some((n, r2)) => {
                    release.push(n);
                    rest = r2;
                }
                None => break,
            }
        }
        let mut v = Version {
            release,
            pre: None,
            post: None,
            dev: None,
            text: s.to_string(),
        };
        if let Some((w, r)) = word(
            strip_sep(rest),
            &["alpha", "a", "beta", "b", "rc", "c", "preview", "pre"],
        ) {
            let kind = match w.to_ascii_lowercase().as_str() {
                "alpha" | "a" => 0,
                "beta" | "b" => 1,
                _ => 2,
            };
            let (n, r) = opt_number(strip_sep(r));
            v.pre = Some((kind, n));
            rest = r;
        }
        if let Some((_, r)) = word(strip_sep(rest), &["post", "rev", "r"]) {
            let (n, r) = opt_number(strip_sep(r));
            v.post = Some(n);
            rest = r;
        } else if let Some(r) = rest.strip_prefix('-') {
            // `1.5.1-1`: an implicit post release.
            if let Some((n, r)) = number(r) {
                v.post = Some(n);
                rest = r;
            }
        }
        if let Some((_, r)) = word(strip_sep(rest), &["dev"]) {
            let (n, r) = opt_number(strip_sep(r));
            v.dev = Some(n);
            rest = r;
        }
        rest.is_empty().then_some(v)
    }

    fn release_cmp(&self, other: &Version) -> Ordering {
        let n = self.release.len().max(other.release.len());
        (0..n)
            .map(|i| {
                let a = self.release.get(i).copied().unwrap_or(0);
                let b = other.release.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// Sort key after the release: a dev-only release sorts before its pre-releases, which
    /// sort before the final release, which sorts before its post releases.
    fn suffix_key(&self) -> (i64, u64, i64, u64, i64, u64) {
        let (pk, pn) = match (self.pre, self.post, self.dev) {
            (Some((k, n)), _, _) => (i64::from(k), n),
            (None, None, Some(_)) => (-1, 0),
            (None, _, _) => (3, 0),
        };
        let (has_post, post) = match self.post {
            Some(p) => (1, p),
            None => (0, 0),
        };
        let (no_dev, dev) = match self.dev {
            Some(d) => (0, d),
            None => (1, 0),
        };
        (pk, pn, has_post, post, no_dev, dev)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.release_cmp(other)
            .then_with(|| self.suffix_key().cmp(&other.suffix_key()))
    }
}

/// What the `version` check says about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// At or above the expected version (or none is expected).
    Current(String),
    /// Lower than expected: OUTDATED.
    Outdated { have: String, want: String },
    /// The node's version cannot be read.
    Unparseable(String),
    /// The node never uploaded its versions (or has no `dwh-j2ee` entry).
    Missing,
}

/// Compares a node's `dwh-j2ee` entry with the expected version.
pub fn drift(dwh_j2ee: Option<&str>, expected: Option<&Version>) -> Drift {
    let Some(raw) = dwh_j2ee.map(str::trim).filter(|s| !s.is_empty()) else {
        return Drift::Missing;
    };
    let Some(have) = Version::parse(raw) else {
        return Drift::Unparseable(raw.to_string());
    };
    match expected {
        Some(want) if have < *want => Drift::Outdated {
            have: have.to_string(),
            want: want.to_string(),
        },
        _ => Drift::Current(have.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn pep440_like_ordering() {
        let ordered = [
            "1.4.9",
            "1.5.1.dev1",
            "1.5.1a1",
            "1.5.1b2",
            "1.5.1rc1",
            "1.5.1rc2",
            "1.5.1",
            "1.5.1.post1",
            "1.5.2",
            "1.10",
        ];
        for w in ordered.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("1.5").cmp(&v("1.5.0")), Ordering::Equal);
        assert_eq!(v("dwh-j2ee-1.5.1rc1").to_string(), "1.5.1rc1");
        assert!(v("1.5.1-rc1") < v("1.5.1"));
        assert!(v("1.5.1-1") > v("1.5.1"));
        assert!(v("v2.0+build7") > v("1.9"));
        for bad in ["", "abc", "1.5.x", "1..2", "1.5.1 beta", "[not installed]"] {
            assert!(Version::parse(bad).is_none(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn drift_reports_outdated_and_unparseable() {
        let want = v("1.5.1");
        assert_eq!(
            drift(Some("dwh-j2ee-1.5.1rc1"), Some(&want)),
            Drift::Outdated {
                have: "1.5.1rc1".into(),
                want: "1.5.1".into()
            }
        );
        assert_eq!(
            drift(Some("dwh-j2ee-1.5.1"), Some(&want)),
            Drift::Current("1.5.1".into())
        );
        assert_eq!(
            drift(Some("weird"), Some(&want)),
            Drift::Unparseable("weird".into())
        );
        assert_eq!(drift(None, Some(&want)), Drift::Missing);
        assert_eq!(drift(Some("1.0"), None), Drift::Current("1.0".into()));
    }
}
