//! `type = "webhook"`: the notification itself, as JSON, to any HTTP endpoint.
//!
//! # Request
//!
//! `POST <url>` with body = the [`Notification`] serialized as JSON, for example:
//!
//! ```json
//! {
//!   "id": "42-ops-firing",
//!   "notifier": "ops",
//!   "kind": "firing",
//!   "created": 1714637730123,
//!   "alerts": [{
//!     "alert_id": 42, "rule": "minlog2-down", "title": "minlog2/monitor is CRIT",
//!     "status": "crit", "state": "firing",
//!     "asset": "minlog2", "asset_name": "MinLog2 production", "check": "monitor",
//!     "group": "national", "assets": [], "reason": "HTTP 503",
//!     "value": null, "labels": {"site": "aarhus"},
//!     "started": 1714637700000, "resolved": null,
//!     "url": "https://vitals.example/alerts/42", "contacts": ["ops@example.org"]
//!   }]
//! }
//! ```
//!
//! `kind` is one of `firing`, `reminder`, `escalation`, `resolved`, `acknowledged`,
//! `flapping`, `test` (a test message asked for by a person: alert id 0, rule `vitals-test`); `status` one of `ok`, `warn`, `crit`, `unknown`; times are milliseconds since
//! the Unix epoch (UTC). Receivers should ignore fields they do not know: fields may be added.
//!
//! Headers:
//! - `Content-Type: application/json`
//! - `X-Vitals-Notification: <id>` — the same on every retry of the same notification, so a
//!   receiver that has seen it can answer 2xx and drop it.
//! - `X-Vitals-Timestamp: <unix seconds>` — when this attempt was made.
//! - `X-Vitals-Signature: sha256=<hex>` — only when `secret` is set: the lowercase hex
//!   HMAC-SHA256, keyed with the secret, of `"<X-Vitals-Timestamp>.<raw body>"`.
//! - the spec's `headers`, e.g. `Authorization`.
//!
//! To verify: recompute the HMAC over the timestamp header, a `.`, and the body bytes exactly
//! as received; compare in constant time; reject timestamps far from the receiver's clock
//! (e.g. more than 5 minutes) to stop replays.
//!
//! # Response
//!
//! Any 2xx is delivered. 408, 429 and 5xx, timeouts and connection errors are retried later;
//! any other status is a permanent failure and is not retried.

use crate::http::HttpTarget;
use crate::{Delivered, Notifier, NotifyError};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use vitals_core::notify::{Notification, WebhookSpec};

pub const HEADER_NOTIFICATION: &str = "x-vitals-notification";
pub const HEADER_TIMESTAMP: &str = "x-vitals-timestamp";
pub const HEADER_SIGNATURE: &str = "x-vitals-signature";

pub struct WebhookNotifier {
    id: String,
    target: HttpTarget,
    secret: Option<Vec<u8>>,
    headers: HeaderMap,
}

impl WebhookNotifier {
    pub fn new(id: &str, spec: &WebhookSpec) -> Result<WebhookNotifier, String> {
        let target = HttpTarget::new(&spec.url, spec.timeout)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers.{name}: not a valid header name"))?;
            // The value may be a credential: it is not repeated in the message.
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| format!("headers.{name}: not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(WebhookNotifier {
            id: id.to_string(),
            target,
            secret: spec.secret.as_ref().map(|s| s.as_bytes().to_vec()),
            headers,
        })
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the `X-Vitals-Signature` value.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it total.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a signature header in constant time: what a receiver does, used by the tests.
pub fn verify_signature(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(bytes) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(hex_digit(*hi)? << 4 | hex_digit(*lo)?),
            _ => None,
        })
        .collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        let body = serde_json::to_vec(n)
            .map_err(|e| NotifyError::Permanent(format!("cannot encode notification: {e}")))?;
        let ts = chrono::Utc::now().timestamp();
        let mut headers = self.headers.clone();
        let id = HeaderValue::from_str(&n.id).map_err(|_| {
            NotifyError::Permanent(format!(
                "notification id {:?} cannot be sent as a header",
                n.id
            ))
        })?;
        headers.insert(HEADER_NOTIFICATION, id);
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from(ts));
        if let Some(secret) = &self.secret {
            let sig = signature(secret, ts, &body);
            if let Ok(v) = HeaderValue::from_str(&sig) {
                headers.insert(HEADER_SIGNATURE, v);
            }
        }
        self.target
            .post_json(self.target.url().clone(), body, headers)
            .await
    }
}

impl crate::Build for vitals_core::notify::WebhookSpec {
    fn build(&self, id: &str) -> Result<std::sync::Arc<dyn crate::Notifier>, String> {
        WebhookNotifier::new(id, self).map(|n| std::sync::Arc::new(n) as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently with Python: hmac.new(b"k", b"1700000000.{\"a\":1}", sha256).
        assert_eq!(
            signature(b"k", 1_700_000_000, br#"{"a":1}"#),
            "sha256=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3"
        );
    }

    #[test]
    fn verification_rejects_tampering() {
        let sig = signature(b"secret", 17, b"body");
        assert!(verify_signature(b"secret", 17, b"body", &sig));
        assert!(!verify_signature(b"secret", 18, b"body", &sig));
        assert!(!verify_signature(b"other", 17, b"body", &sig));
        assert!(!verify_signature(b"secret", 17, b"body!", &sig));
        assert!(!verify_signature(b"secret", 17, b"body", "sha256=zz"));
        assert!(!verify_signature(b"secret", 17, b"body", "md5=00"));
    }
}
