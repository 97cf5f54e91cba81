//! The first thing every request meets: is it addressed to us, and may a browser send it?
//!
//! - **Host.** The `Host` header must name this server: an IP address, `public_url`'s host,
//!   a name from `[server] hosts`, this machine's host name, or — when listening on loopback or
//!   on every address — `localhost`. Anything else is refused with 421, so a web page that
//!   makes a name of its own resolve to us (DNS rebinding) reads and writes nothing.
//! - **Cross-site writes.** A state-changing request (any method but GET/HEAD/OPTIONS, and the
//!   heartbeat pings, which change state on GET) is refused with 403 when the browser says it
//!   comes from another site (`Sec-Fetch-Site: cross-site | same-site`) or carries an `Origin`
//!   that is not this server's own. Clients that are not browsers send neither header.
//! - **JSON is JSON.** A write with a body to `/api/v1/…` must say `Content-Type:
//!   application/json` (415 otherwise): the content types a page may send without asking
//!   (`text/plain`, forms) never reach a JSON handler.

use crate::{AppError, AppState};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// The names this server answers to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostPolicy {
    names: HashSet<String>,
    localhost: bool,
}

impl HostPolicy {
    /// `listen`: the bound address; `public_url`: `[server] public_url`; `extra`: `[server]
    /// hosts`; `machine`: this machine's host name, if known.
    pub fn new(
        listen: SocketAddr,
        public_url: Option<&str>,
        extra: &[String],
        machine: Option<String>,
    ) -> HostPolicy {
        let mut names: HashSet<String> = extra.iter().map(|h| h.to_ascii_lowercase()).collect();
        if let Some(host) = public_url
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        {
            names.insert(host.to_ascii_lowercase());
        }
        if let Some(m) = machine.filter(|m| !m.is_empty()) {
            names.insert(m.to_ascii_lowercase());
        }
        let ip = listen.ip();
        HostPolicy {
            names,
            localhost: ip.is_loopback() || ip.is_unspecified(),
        }
    }

    /// This machine's host name (Linux: `/proc/sys/kernel/hostname`).
    pub fn machine_name() -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Whether `host` (a `Host` header value, with or without port) names this server.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        (self.localhost && (name == "localhost" || name.ends_with(".localhost")))
            || self.names.contains(&name)
    }
}

/// The host part of `host[:port]` / `[v6]:port`; `None` when malformed.
fn host_name(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (inner, tail) = rest.split_once(']')?;
        if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return Some(inner);
    }
    let name = match host.rsplit_once(':') {
        Some((h, p)) if is_port(p) => h,
        Some(_) => return None,
        None => host,
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then_some(name)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// `(host, port)` of an authority, with `default_port` when none is written.
fn authority(a: &str, default_port: u16) -> Option<(String, u16)> {
    let name = host_name(a)?.to_ascii_lowercase();
    let port = if a.starts_with('[') {
        a.split_once(']').and_then(|(_, t)| t.strip_prefix(':'))
    } else {
        a.rsplit_once(':').map(|(_, p)| p)
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((name, port))
}

/// Whether a request changes state (and so must not come from another site).
pub fn is_write(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || path.starts_with("/ping/")
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Why a write from a browser is refused, if it is.
fn cross_site(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = header_str(headers, header::HeaderName::from_static("sec-fetch-site")) {
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return Some(format!(
                "refused: the browser says this request comes from another site (Sec-Fetch-Site: {site})"
            ));
        }
    }
    let origin = header_str(headers, header::ORIGIN)?;
    let host = header_str(headers, header::HOST).unwrap_or("");
    let same = url::Url::parse(origin).ok().and_then(|o| {
        let scheme_port = match o.scheme() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let theirs = (
            o.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase(),
            o.port().unwrap_or(scheme_port),
        );
        let ours = authority(host, scheme_port)?;
        Some(theirs == ours)
    });
    if same == Some(true) {
        None
    } else {
        Some(format!(
            "refused: Origin {origin:?} is not this server ({host:?}); writes are accepted from this server's own pages and from clients that are not browsers"
        ))
    }
}

fn deny(status: StatusCode, field: &str, error: String) -> Response {
    AppError {
        status,
        error,
        field: Some(field.to_string()),
    }
    .into_response()
}

/// The middleware (outermost: it runs before routing).
pub async fn layer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    // HTTP/1.0 clients may send no Host; browsers always do.
    if let Some(host) = header_str(headers, header::HOST) {
        let policy = app
            .protect
            .hosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !policy.allows(host) {
            app.protect.edge.count(crate::edge::Refusal::Host);
            return deny(
                StatusCode::MISDIRECTED_REQUEST,
                "host",
                format!("{host:?} is not a name of this server; add it to [server] hosts if it is"),
            );
        }
    }
    let path = req.uri().path();
    if is_write(req.method(), path) {
        if let Some(why) = cross_site(headers) {
            app.protect.edge.count(crate::edge::Refusal::CrossSite);
            return deny(StatusCode::FORBIDDEN, "origin", why);
        }
        let has_body = header_str(headers, header::TRANSFER_ENCODING).is_some()
            || header_str(headers, header::CONTENT_LENGTH).is_some_and(|l| l != "0");
        if path.starts_with("/api/v1/") && has_body {
            let json = header_str(headers, header::CONTENT_TYPE).is_some_and(|c| {
                c.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
            if !json {
                app.protect.edge.count(crate::edge::Refusal::ContentType);
                return deny(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content-type",
                    "send the body as Content-Type: application/json".into(),
                );
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str) -> HostPolicy {
        HostPolicy::new(
            listen.parse().unwrap(),
            Some("https://vitals.example.org/base"),
            &["monitor.internal".to_string()],
            Some("box1".into()),
        )
    }

    #[test]
    fn hosts() {
        let p = policy("127.0.0.1:8080");
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.1.2.3",
            "vitals.example.org",
            "monitor.internal:443",
            "box1:8080",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "vitals.example.org.evil.example",
            "",
            "a b",
            "localhost:80:80",
            "[::1",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        // Not loopback: `localhost` is not one of our names.
        assert!(!policy("10.0.0.5:8080").allows("localhost"));
        assert!(policy("0.0.0.0:8080").allows("localhost"));
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn origins() {
        assert!(cross_site(&h(&[("host", "127.0.0.1:8080")])).is_none());
        assert!(cross_site(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]))
        .is_none());
        assert!(cross_site(&h(&[
            ("host", "vitals.example.org"),
            ("origin", "https://vitals.example.org")
        ]))
        .is_none());
        assert!(cross_site(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ]))
        .is_some());
        assert!(cross_site(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9999")
        ]))
        .is_some());
        assert!(cross_site(&h(&[("host", "127.0.0.1:8080"), ("origin", "null")])).is_some());
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site(&h(&[("sec-fetch-site", "same-site")])).is_some());
        assert!(cross_site(&h(&[("sec-fetch-site", "same-origin")])).is_none());
        assert!(cross_site(&h(&[("sec-fetch-site", "none")])).is_none());
    }

    #[test]
    fn writes() {
        assert!(is_write(&Method::POST, "/api/v1/silences"));
        assert!(is_write(&Method::GET, "/ping/x"));
        assert!(!is_write(&Method::GET, "/api/v1/alerts"));
    }
}
