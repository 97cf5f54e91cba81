//! Web UI sessions, kept on the server.
//!
//! A login exchanges a token secret for a random session id (the `vitals_session` cookie).
//! The server remembers, per id, the token's name and the digest of its secret, so:
//! - logging out ends the session on the server (a copied cookie is useless afterwards);
//! - rotating a token's secret (or removing the token) ends its sessions at the next request;
//! - a restart ends every session (nothing is written to disk).
//!
//! The table is bounded ([`MAX_SESSIONS`]; the oldest are dropped first) and so are the live
//! event streams per session ([`MAX_STREAMS`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use vitals_core::Timestamp;

/// Sessions kept at once.
pub const MAX_SESSIONS: usize = 10_000;
/// Open `/ui/events` streams per session.
pub const MAX_STREAMS: usize = 4;

#[derive(Debug, Clone)]
struct Session {
    token: String,
    digest: [u8; 32],
    expires: Timestamp,
    streams: usize,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// Releases a stream slot when the stream ends.
pub struct StreamSlot {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut map = self.sessions.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(&self.id) {
            s.streams = s.streams.saturating_sub(1);
        }
    }
}

fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut s = String::with_capacity(64);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl Sessions {
    /// Opens a session for the token `name` whose secret has `digest`; returns its id.
    pub fn open(&self, name: &str, digest: [u8; 32], expires: Timestamp, now: Timestamp) -> String {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        let id = random_id();
        map.insert(
            id.clone(),
            Session {
                token: name.to_string(),
                digest,
                expires,
                streams: 0,
            },
        );
        id
    }

    /// The token name and secret digest of a live session.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<(String, [u8; 32])> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(s) if s.expires > now => Some((s.token.clone(), s.digest)),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn close(&self, id: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
    }

    /// Ends every session of `token` whose digest is not `current` (rotated or removed tokens).
    pub fn retain_tokens(&self, valid: impl Fn(&str, &[u8; 32]) -> bool) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| valid(&s.token, &s.digest));
    }

    /// A stream slot of session `id`, unless it already has [`MAX_STREAMS`].
    pub fn stream(self: &Arc<Self>, id: &str) -> Option<StreamSlot> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get_mut(id)?;
        if s.streams >= MAX_STREAMS {
            return None;
        }
        s.streams += 1;
        Some(StreamSlot {
            sessions: self.clone(),
            id: id.to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_get_close_and_expire() {
        let s = Sessions::default();
        let id = s.open("ops", [1; 32], Timestamp(100), Timestamp(0));
        assert_eq!(id.len(), 64);
        assert_eq!(s.get(&id, Timestamp(50)), Some(("ops".into(), [1; 32])));
        assert_eq!(s.get(&id, Timestamp(100)), None, "expired");
        let id = s.open("ops", [1; 32], Timestamp(100), Timestamp(0));
        assert!(s.close(&id));
        assert_eq!(s.get(&id, Timestamp(50)), None);
        assert_eq!(s.get("made-up", Timestamp(50)), None);
    }

    #[test]
    fn streams_are_capped_and_released() {
        let s = Arc::new(Sessions::default());
        let id = s.open("ops", [1; 32], Timestamp(100), Timestamp(0));
        let slots: Vec<_> = (0..MAX_STREAMS).map(|_| s.stream(&id).unwrap()).collect();
        assert!(s.stream(&id).is_none());
        drop(slots);
        assert!(s.stream(&id).is_some());
    }

    #[test]
    fn the_table_is_bounded() {
        let s = Sessions::default();
        for i in 0..MAX_SESSIONS + 10 {
            s.open("ops", [1; 32], Timestamp(1_000 + i as i64), Timestamp(0));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }
}
