//! The one HTTP POST every webhook-style channel makes, and how its outcome is classified.
//!
//! One `reqwest` client per notifier (connections are reused between sends), rustls with the
//! ring provider, the spec's timeout for the whole exchange, and no redirects: a webhook that
//! redirects is misconfigured, and following it could send the payload somewhere unexpected.

use crate::text::redact_url;
use crate::{Delivered, NotifyError};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// Receivers' error bodies are kept for the delivery log up to this many bytes.
const MAX_ERROR_BODY: usize = 512;

pub(crate) struct HttpTarget {
    client: reqwest::Client,
    url: Url,
    /// `scheme://host[:port]`, the only form of the URL that may be shown.
    shown: String,
}

impl HttpTarget {
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<HttpTarget, String> {
        // The parse error never includes the URL, which may carry a token.
        let url = Url::parse(url).map_err(|e| format!("url: not a valid URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("url: must be an absolute http:// or https:// URL".to_string());
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vitals/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))?;
        let shown = redact_url(&url);
        Ok(HttpTarget { client, url, shown })
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    #[cfg(test)]
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// POSTs a JSON body; 2xx is delivered, everything else an error classified for retrying.
    pub(crate) async fn post_json(
        &self,
        url: Url,
        body: Vec<u8>,
        mut headers: HeaderMap,
    ) -> Result<Delivered, NotifyError> {
        headers.insert(
            CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let resp = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| self.request_error(&e))?;
        let status = resp.status();
        let text = read_capped(resp).await;
        if status.is_success() {
            return Ok(Delivered {
                recipients: vec![self.shown.clone()],
                detail: format!("HTTP {}", status.as_u16()),
            });
        }
        let msg = if text.is_empty() {
            format!("{} answered HTTP {}", self.shown, status.as_u16())
        } else {
            format!("{} answered HTTP {}: {text}", self.shown, status.as_u16())
        };
        Err(classify_status(status, msg))
    }

    fn request_error(&self, e: &reqwest::Error) -> NotifyError {
        // `without_url` semantics by hand: the chain below never contains the URL, only the
        // top-level Display of reqwest does.
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            format!("cannot connect: {}", error_chain(e))
        } else {
            error_chain(e)
        };
        let msg = format!("{}: {what}", self.shown);
        if e.is_builder() {
            NotifyError::Permanent(msg)
        } else {
            NotifyError::Transient(msg)
        }
    }
}

/// 5xx, 408 and 429 may succeed later; any other answer will not.
pub(crate) fn classify_status(status: StatusCode, msg: String) -> NotifyError {
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        NotifyError::Transient(msg)
    } else {
        NotifyError::Permanent(msg)
    }
}

/// The causes of an error, innermost last, without reqwest's own top line (which names the
/// URL).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    if parts.is_empty() {
        // Nothing below: describe the kind rather than print the URL-bearing top line.
        return if e.is_decode() {
            "invalid response".to_string()
        } else if e.is_body() {
            "error sending the body".to_string()
        } else {
            "request failed".to_string()
        };
    }
    parts.join(": ")
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of the answer as one line of text, so a hostile or
/// broken receiver costs bounded memory.
async fn read_capped(mut resp: reqwest::Response) -> String {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let cut = buf.len() > MAX_ERROR_BODY;
    buf.truncate(MAX_ERROR_BODY);
    let mut s: String = String::from_utf8_lossy(&buf)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s = s.trim().to_string();
    if cut {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify_for_retrying() {
        for (code, transient) in [
            (500, true),
            (502, true),
            (503, true),
            (408, true),
            (429, true),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (410, false),
            (301, false),
        ] {
            let e = classify_status(StatusCode::from_u16(code).unwrap(), String::new());
            assert_eq!(e.is_transient(), transient, "{code}");
        }
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        let e = HttpTarget::new("https://", Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(e.starts_with("url:"), "{e}");
        let t = HttpTarget::new(
            "https://hooks.example/services/SECRET",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(t.shown(), "https://hooks.example");
    }
}
