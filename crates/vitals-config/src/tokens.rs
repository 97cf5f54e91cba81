//! `[[token]]`: access tokens, their roles and scopes, and the alert of every site agent.

use crate::de::{array_of_tables, deserialize};
use crate::{agent_asset, valid_id, valid_location, ConfigError, ID_RULE};
use serde::Deserialize;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Push results and pings (optionally only for some assets).
    Reporter,
    /// Everything: acknowledge, silence, run jobs — and read and push.
    Admin,
}

/// `[[token]]`: an access token. Only the SHA-256 of the secret is kept in memory.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: Role,
    /// The secret itself, normally `${ENV}` …
    #[serde(default)]
    pub secret: Option<String>,
    /// … or its hash, `sha256:<64 hex digits>` (`vitals token hash` prints it).
    #[serde(default)]
    pub hash: Option<String>,
    /// Reporter scope: only these asset ids …
    #[serde(default)]
    pub assets: Vec<String>,
    /// … or ids starting with this.
    #[serde(default)]
    pub asset_prefix: Option<String>,
    /// Requests per second (sustained; bursts up to twice as many); 0 = no limit.
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
    /// Most assets this token's pushes may create (0: only `[ingest] max_assets` applies).
    #[serde(default)]
    pub max_assets: usize,
    /// A site agent's token: fetches and reports the checks of this location, nothing else.
    #[serde(default)]
    pub location: Option<String>,
}

fn default_rate() -> u32 {
    200
}

// Secrets stay out of debug output and logs.
impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("assets", &self.assets)
            .field("asset_prefix", &self.asset_prefix)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl TokenConfig {
    /// The 32-byte SHA-256 of the secret, from `secret` or `hash`.
    pub fn digest(&self) -> Option<[u8; 32]> {
        if let Some(s) = &self.secret {
            return Some(sha256(s.as_bytes()));
        }
        let hex = self.hash.as_deref()?.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

/// SHA-256 of a secret (tokens are long random strings, so a plain hash suffices).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Every `[[token]]` that deserializes, each checked on its own and against the ones before.
pub(crate) fn parse(root: &mut toml::Table, errors: &mut Vec<ConfigError>) -> Vec<TokenConfig> {
    let mut tokens: Vec<TokenConfig> = Vec::new();
    for (path, v) in array_of_tables(root, "token", errors) {
        let Some(t) = deserialize::<TokenConfig>(v, &path, errors) else {
            continue;
        };
        if !valid_id(&t.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} {ID_RULE}", t.name),
            ));
        }
        if tokens.iter().any(|x| x.name == t.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate token name {:?}", t.name),
            ));
        }
        match (&t.secret, &t.hash) {
            (Some(_), Some(_)) => errors.push(ConfigError::new(
                path.clone(),
                "give secret or hash, not both",
            )),
            (None, None) => errors.push(ConfigError::new(
                path.clone(),
                "give secret (e.g. \"${VITALS_TOKEN}\") or hash",
            )),
            (Some(s), None) if s.len() < 16 => errors.push(ConfigError::new(
                format!("{path}.secret"),
                "must be at least 16 characters (use a long random string)",
            )),
            (None, Some(_)) if t.digest().is_none() => errors.push(ConfigError::new(
                format!("{path}.hash"),
                "must be sha256: followed by 64 hex digits",
            )),
            _ => {}
        }
        if t.location.as_deref().is_some_and(|l| !valid_location(l)) {
            errors.push(ConfigError::new(
                format!("{path}.location"),
                "must be letters, digits and - _ . :",
            ));
        }
        if t.location.is_some()
            && (t.role != Role::Reporter || !t.assets.is_empty() || t.asset_prefix.is_some())
        {
            errors.push(ConfigError::new(
                format!("{path}.location"),
                "an agent token is a reporter token without asset scopes",
            ));
        }
        if t.role != Role::Reporter && (!t.assets.is_empty() || t.asset_prefix.is_some()) {
            errors.push(ConfigError::new(
                format!("{path}.assets"),
                "asset scopes are for reporter tokens",
            ));
        }
        if tokens
            .iter()
            .any(|x| x.digest().is_some() && x.digest() == t.digest())
        {
            errors.push(ConfigError::new(
                format!("{path}.secret"),
                "the same secret as another token",
            ));
        }
        tokens.push(t);
    }
    tokens
}

/// Every agent has its own alert: its `agent` check is `crit` once it is not seen.
pub(crate) fn agent_rules(root: &toml::Table) -> Vec<(String, toml::Value)> {
    let Some(toml::Value::Array(tokens)) = root.get("token") else {
        return Vec::new();
    };
    tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let loc = t.get("location")?.as_str()?;
            let mut rule = toml::Table::new();
            rule.insert("id".into(), format!("agent:{loc}").into());
            rule.insert(
                "description".into(),
                format!("site agent {loc} not seen").into(),
            );
            rule.insert("assets".into(), vec![agent_asset(loc)].into());
            rule.insert("checks".into(), vec!["agent".to_string()].into());
            Some((format!("token[{i}].location"), rule.into()))
        })
        .collect()
}
