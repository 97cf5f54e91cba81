//! `[[status_page]]`: a public, read-only page at `/status/{slug}` for the users of some
//! services (a clinic, the users of a national service). It shows only the names, statuses and
//! uptime of the assets it lists and the notices an admin posts, and needs no login.

use crate::{deserialize, ConfigError};
use serde::Deserialize;

/// One status page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageConfig {
    /// The page's address: `/status/{slug}` (lowercase letters, digits and `-`).
    pub slug: String,
    /// Its heading, e.g. "Clinic 17: services".
    pub title: String,
    /// A sentence under the heading (who the page is for, whom to call).
    #[serde(default)]
    pub description: Option<String>,
    /// Assets of these groups are shown …
    #[serde(default)]
    pub groups: Vec<String>,
    /// … and these assets (by id), in this order, before the groups' assets.
    #[serde(default)]
    pub assets: Vec<String>,
}

impl StatusPageConfig {
    /// Whether an asset with this id and these groups is on the page.
    pub fn shows(&self, id: &str, groups: &[String]) -> bool {
        self.assets.iter().any(|a| a == id) || groups.iter().any(|g| self.groups.contains(g))
    }
}

/// A slug: 1–64 lowercase ASCII letters, digits and inner `-`.
pub fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Parses and checks every `[[status_page]]`; `asset_ids` are the configured assets.
pub(crate) fn parse(
    tables: Vec<(String, toml::Value)>,
    asset_ids: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Vec<StatusPageConfig> {
    let mut out: Vec<StatusPageConfig> = Vec::new();
    for (path, v) in tables {
        let Some(p) = deserialize::<StatusPageConfig>(v, &path, errors) else {
            continue;
        };
        if !valid_slug(&p.slug) {
            errors.push(ConfigError::new(
                format!("{path}.slug"),
                format!(
                    "{:?} must be 1–64 lowercase letters, digits and - (not first or last)",
                    p.slug
                ),
            ));
        }
        if out.iter().any(|x| x.slug == p.slug) {
            errors.push(ConfigError::new(
                format!("{path}.slug"),
                format!("duplicate status page {:?}", p.slug),
            ));
        }
        if p.title.trim().is_empty() || p.title.len() > 200 {
            errors.push(ConfigError::new(
                format!("{path}.title"),
                "must be 1–200 characters",
            ));
        }
        if p.description.as_ref().is_some_and(|d| d.len() > 2000) {
            errors.push(ConfigError::new(
                format!("{path}.description"),
                "must be at most 2000 characters",
            ));
        }
        if p.groups.is_empty() && p.assets.is_empty() {
            errors.push(ConfigError::new(
                path.clone(),
                "name the groups or assets the page shows (groups = [...] or assets = [...])",
            ));
        }
        // Pushed assets are created at run time, so only a typo among configured ids is
        // caught here; an id configured nowhere would show nothing, which is most likely one.
        for (i, a) in p.assets.iter().enumerate() {
            if !asset_ids.contains(&a.as_str()) {
                errors.push(ConfigError::new(
                    format!("{path}.assets[{i}]"),
                    format!("unknown asset {a:?}"),
                ));
            }
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(valid_slug("clinic-17"));
        assert!(!valid_slug("Clinic"));
        assert!(!valid_slug("-x"));
        assert!(!valid_slug(""));
        assert!(!valid_slug("a/b"));
        assert!(!valid_slug(&"a".repeat(65)));
    }
}
