//! What the edge of the server refuses, counted for `/metrics`, and who keeps failing to
//! authenticate.
//!
//! Failed authentications are counted by reason and tracked per source address in a bounded
//! table: the first failure of a source in a minute is logged, the rest of that minute are
//! summed up in one line when the next minute begins, and a source with more than
//! [`THROTTLE_AFTER`] failures in a minute is answered 429 for every credential it presents
//! until the minute is over — so guessing tokens costs an attacker a minute per few dozen
//! tries and costs the log one line per minute.

use axum::extract::ConnectInfo;
use axum::http::Request;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications from one source in one minute before it is throttled.
pub const THROTTLE_AFTER: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);
/// Sources tracked at once; beyond this, expired entries are dropped, and if none are, new
/// sources are counted but not tracked (the table never grows past this).
const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A `Host` that is not one of ours.
    Host,
    /// A write from another site.
    CrossSite,
    /// A JSON route written to with another content type.
    ContentType,
}

impl Refusal {
    pub const ALL: [Refusal; 3] = [Refusal::Host, Refusal::CrossSite, Refusal::ContentType];
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Host => "host",
            Refusal::CrossSite => "cross_site",
            Refusal::ContentType => "content_type",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// A route that needs a token was called without one.
    Missing,
    /// A token (or session) that is not valid.
    Unknown,
    /// A failed login form.
    Login,
    /// A heartbeat `?key=` that does not match.
    PingKey,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 4] = [
        AuthFailure::Missing,
        AuthFailure::Unknown,
        AuthFailure::Login,
        AuthFailure::PingKey,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_token",
            AuthFailure::Unknown => "unknown_token",
            AuthFailure::Login => "login",
            AuthFailure::PingKey => "ping_key",
        }
    }
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    Global,
    PerAddress,
}

struct Source {
    window: Instant,
    failures: u32,
    logged: bool,
}

/// Counters and the per-source table.
pub struct Edge {
    refused: [AtomicU64; 3],
    auth: [AtomicU64; 4],
    throttled: AtomicU64,
    conn_refused: [AtomicU64; 2],
    pub connections_open: AtomicI64,
    pub connections_total: AtomicU64,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

impl Default for Edge {
    fn default() -> Self {
        Edge {
            refused: Default::default(),
            auth: Default::default(),
            throttled: AtomicU64::new(0),
            conn_refused: Default::default(),
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            sources: Mutex::new(HashMap::new()),
        }
    }
}

/// The client's address, as the listener recorded it (unspecified in tests without a socket).
pub fn peer<B>(req: &Request<B>) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

impl Edge {
    pub fn count(&self, r: Refusal) {
        self.refused[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, r: Refusal) -> u64 {
        self.refused[r as usize].load(Ordering::Relaxed)
    }

    pub fn conn_refused(&self, r: ConnRefusal) -> u64 {
        self.conn_refused[r as usize].load(Ordering::Relaxed)
    }

    pub fn count_conn_refused(&self, r: ConnRefusal) {
        self.conn_refused[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_failures(&self, f: AuthFailure) -> u64 {
        self.auth[f as usize].load(Ordering::Relaxed)
    }

    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Whether `source` has failed too often this minute (its credentials are not even looked
    /// at); counts the refusal.
    pub fn is_throttled(&self, source: IpAddr) -> bool {
        if source.is_unspecified() {
            return false;
        }
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let hot = sources
            .get(&source)
            .is_some_and(|s| s.window.elapsed() < WINDOW && s.failures >= THROTTLE_AFTER);
        if hot {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        hot
    }

    /// Seconds until `source`'s window ends (for Retry-After).
    pub fn retry_after(&self, source: IpAddr) -> u64 {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .get(&source)
            .map(|s| WINDOW.saturating_sub(s.window.elapsed()).as_secs().max(1))
            .unwrap_or(1)
    }

    /// Records one failed authentication from `source`.
    pub fn auth_failed(&self, source: IpAddr, why: AuthFailure) {
        self.auth[why as usize].fetch_add(1, Ordering::Relaxed);
        // No address (a request that came through no socket, as in tests), or a missing token
        // (not a guess): counted, not tracked.
        if source.is_unspecified() || why == AuthFailure::Missing {
            return;
        }
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if !sources.contains_key(&source) && sources.len() >= MAX_SOURCES {
            sources.retain(|_, s| s.window.elapsed() < WINDOW);
            if sources.len() >= MAX_SOURCES {
                return;
            }
        }
        let s = sources.entry(source).or_insert(Source {
            window: Instant::now(),
            failures: 0,
            logged: false,
        });
        if s.window.elapsed() >= WINDOW {
            if s.failures > 1 {
                tracing::warn!(%source, failures = s.failures, "failed authentications from this address in the minute before");
            }
            *s = Source {
                window: Instant::now(),
                failures: 0,
                logged: false,
            };
        }
        s.failures += 1;
        if !s.logged {
            s.logged = true;
            tracing::warn!(%source, reason = why.as_str(), "failed authentication (further ones from this address this minute are counted, then summed up in one line)");
        }
    }
}
