//! `[ui]`: how the web UI shows things; the time zone arrives parsed.

use crate::de::deserialize;
use crate::ConfigError;
use serde::Deserialize;

/// `[ui]`: the web UI. Times are stored in UTC and shown in `timezone` (an IANA name).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    #[serde(default = "default_timezone", deserialize_with = "timezone")]
    pub timezone: chrono_tz::Tz,
}

fn default_timezone() -> chrono_tz::Tz {
    chrono_tz::UTC
}

fn timezone<'de, D: serde::Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{name:?} is not an IANA time zone name (e.g. UTC, Europe/Copenhagen)"
        ))
    })
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            timezone: default_timezone(),
        }
    }
}

/// `[ui]`, or the defaults when it is absent.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> UiConfig {
    match root.remove("ui") {
        None => UiConfig::default(),
        Some(v) => deserialize::<UiConfig>(v, "ui", errors).unwrap_or_default(),
    }
}
