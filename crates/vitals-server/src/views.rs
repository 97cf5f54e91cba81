//! Answers computed from the live state, reused while the state stays the same.
//!
//! Dashboards and population alarms are polled by many clients at once, and between two
//! commits of the pipeline every one of them would compute the same answer. Each entry is
//! stamped with the live state's generation (bumped by every write, see
//! [`LiveState::read_at`](vitals_scheduler::LiveState::read_at)) and the time it was made; it is
//! reused only for the same generation and within its maximum age, so an answer is never older
//! than the state it shows. Answers that depend on the clock too carry what they depend on in
//! their key (the overview: the hour).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys longer than this are not cached (they are free-text searches; memory stays bounded).
const MAX_KEY: usize = 512;

/// A bounded map from a request's key to the answer for one generation of the live state.
pub struct GenCache<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
    cap: usize,
    max_age: Duration,
    /// Held while an answer is made, so that clients missing at once wait for one answer
    /// instead of each making their own.
    turn: tokio::sync::Mutex<()>,
}

struct Entry<V> {
    generation: u64,
    made: Instant,
    value: Arc<V>,
}

impl<V> GenCache<V> {
    pub fn new(cap: usize, max_age: Duration) -> Self {
        GenCache {
            entries: Mutex::new(HashMap::new()),
            cap: cap.max(1),
            max_age,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits for the turn to make an answer. Look again (`get`) once it is yours: whoever had
    /// it before may have made the one you need.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// The answer for `key` made from state `generation`, if it is still fresh.
    pub fn get(&self, key: &str, generation: u64) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key)?;
        (e.generation == generation && e.made.elapsed() < self.max_age).then(|| e.value.clone())
    }

    /// Keeps `value`, made from state `generation`. When full, entries of older generations go
    /// first, then (if every entry is current) all of them.
    pub fn put(&self, key: &str, generation: u64, value: Arc<V>) {
        if key.len() > MAX_KEY {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.cap && !entries.contains_key(key) {
            entries.retain(|_, e| e.generation >= generation && e.made.elapsed() < self.max_age);
            if entries.len() >= self.cap {
                entries.clear();
            }
        }
        entries.insert(
            key.to_string(),
            Entry {
                generation,
                made: Instant::now(),
                value,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The reusable answers of this server.
pub struct Views {
    /// `GET /health_alarm/…`: the JSON body, by query. The answer depends on the state only.
    pub alarms: GenCache<axum::body::Bytes>,
    /// `GET /`: the page's content (without the per-user frame), by query and hour (uptime
    /// figures change with the hour).
    pub overview: GenCache<String>,
}

impl Default for Views {
    fn default() -> Self {
        Views {
            alarms: GenCache::new(64, Duration::from_secs(3600)),
            overview: GenCache::new(64, Duration::from_secs(3600)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_reused_only_for_its_generation_and_age() {
        let c: GenCache<String> = GenCache::new(4, Duration::from_secs(60));
        assert!(c.get("k", 1).is_none());
        c.put("k", 1, Arc::new("one".into()));
        assert_eq!(c.get("k", 1).as_deref().map(String::as_str), Some("one"));
        assert!(
            c.get("k", 2).is_none(),
            "a newer state is never answered from an older one"
        );
        let short: GenCache<String> = GenCache::new(4, Duration::ZERO);
        short.put("k", 1, Arc::new("one".into()));
        assert!(short.get("k", 1).is_none(), "too old");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let c: GenCache<u32> = GenCache::new(3, Duration::from_secs(60));
        for i in 0..10u32 {
            c.put(&format!("k{i}"), 7, Arc::new(i));
            assert!(c.len() <= 3);
        }
        // Older generations make room first.
        let c: GenCache<u32> = GenCache::new(2, Duration::from_secs(60));
        c.put("old", 1, Arc::new(1));
        c.put("new", 2, Arc::new(2));
        c.put("newer", 2, Arc::new(3));
        assert!(c.get("new", 2).is_some());
        assert!(c.get("newer", 2).is_some());
        assert!(c.get("old", 1).is_none());
        c.put(&"x".repeat(MAX_KEY + 1), 2, Arc::new(9));
        assert!(c.get(&"x".repeat(MAX_KEY + 1), 2).is_none());
    }
}
