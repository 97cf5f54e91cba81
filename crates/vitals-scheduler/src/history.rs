//! Recent history of one check, in memory: its last [`RECENT`] results and how many of its
//! observations were OK per hour (the last 25 hours) and per UTC day (the last 31 days).
//!
//! The overview's "last 50" bars and its uptime figures read this, so a page of 1,000 assets
//! touches no database. It is filled at start from the store (rollups where they exist, raw
//! observations after them: [`History::load_counts`], [`History::load_recent`]) and then kept
//! up to date by [`History::record`] as observations are committed.
//!
//! Uptime is the share of observations that were OK (`unknown`, `warn` and `crit` count as not
//! OK), over windows aligned to whole periods like the store's rollups: **24 h** is the current
//! hour and the 24 before it, **7 d** and **30 d** are today (UTC) and the 7 or 30 days before.
//! A window therefore covers up to one period more than its name (at most 25 h, 8 d, 31 d).

use std::collections::VecDeque;
use vitals_core::{Status, Timestamp};

/// Results kept per check for the "last 50" bar.
pub const RECENT: usize = 50;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// Hour buckets kept: the current hour and the 24 before it.
const HOURS: usize = 25;
/// Day buckets kept: today and the 30 before it.
const DAYS: usize = 31;

/// Observations counted in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    /// Not OK.
    pub bad: u64,
}

impl Counts {
    /// OK share in 0…1; `None` without observations.
    pub fn ratio(self) -> Option<f64> {
        (self.total > 0).then(|| (self.total - self.bad.min(self.total)) as f64 / self.total as f64)
    }

    pub fn add(&mut self, o: Counts) {
        self.total += o.total;
        self.bad += o.bad;
    }
}

/// The three windows of the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uptime {
    pub h24: Counts,
    pub d7: Counts,
    pub d30: Counts,
}

impl Uptime {
    pub fn add(&mut self, o: &Uptime) {
        self.h24.add(o.h24);
        self.d7.add(o.d7);
        self.d30.add(o.d30);
    }
}

/// A bucket: which period (its index since the epoch) and its counts. Compact on purpose:
/// 10,000 checks keep 56 of these each.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    period: i32,
    total: u32,
    bad: u32,
}

/// One recent result in 8 bytes: the time in ms shifted left by two, the status in the low two
/// bits (a `(i64, Status)` pair takes 16). 10,000 checks keep 50 of these each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed(i64);

/// Times beyond ±2^60 ms (36 million years) are clamped so the shift cannot overflow.
const PACK_LIMIT: i64 = 1 << 60;

impl Packed {
    fn new(t: i64, s: Status) -> Self {
        let code = match s {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Crit => 2,
            Status::Unknown => 3,
        };
        Packed((t.clamp(-PACK_LIMIT, PACK_LIMIT) << 2) | code)
    }

    fn time(self) -> i64 {
        self.0 >> 2 // arithmetic: negative times come back as they were
    }

    fn status(self) -> Status {
        Status::ALL[(self.0 & 3) as usize]
    }
}

#[derive(Debug, Clone)]
pub struct History {
    /// Newest last. Grown once, straight to exactly [`RECENT`] entries, never past it.
    recent: VecDeque<Packed>,
    hours: [Bucket; HOURS],
    days: [Bucket; DAYS],
}

impl Default for History {
    fn default() -> Self {
        History {
            recent: VecDeque::new(),
            hours: [Bucket::default(); HOURS],
            days: [Bucket::default(); DAYS],
        }
    }
}

fn index(t: i64, period: i64) -> i32 {
    i32::try_from(t.div_euclid(period)).unwrap_or(if t < 0 { i32::MIN } else { i32::MAX })
}

/// Adds to the bucket of `period_index` in a ring, replacing an older period found there;
/// counts of a period older than the one in the slot are dropped (they left the window).
fn add(ring: &mut [Bucket], period_index: i32, total: u64, bad: u64) {
    let slot = period_index.rem_euclid(ring.len() as i32) as usize;
    let b = &mut ring[slot];
    if b.period < period_index || (b.total == 0 && b.period != period_index) {
        *b = Bucket {
            period: period_index,
            total: 0,
            bad: 0,
        };
    }
    if b.period == period_index {
        b.total = b
            .total
            .saturating_add(u32::try_from(total).unwrap_or(u32::MAX));
        b.bad = b.bad.saturating_add(u32::try_from(bad).unwrap_or(u32::MAX));
    }
}

fn sum(ring: &[Bucket], from_index: i32, to_index: i32) -> Counts {
    let mut c = Counts::default();
    for b in ring {
        if b.total > 0 && b.period >= from_index && b.period <= to_index {
            c.total += u64::from(b.total);
            c.bad += u64::from(b.bad);
        }
    }
    c
}

impl History {
    /// Counts one committed observation.
    pub fn record(&mut self, time: Timestamp, status: Status) {
        let bad = u64::from(status != Status::Ok);
        add(&mut self.hours, index(time.0, HOUR), 1, bad);
        add(&mut self.days, index(time.0, DAY), 1, bad);
        // Usually the newest; a late pushed result is put in its place by time.
        let mut pos = self
            .recent
            .iter()
            .rposition(|p| p.time() <= time.0)
            .map_or(0, |p| p + 1);
        if self.recent.len() >= RECENT {
            if pos == 0 {
                return; // older than all of the last 50
            }
            // Room first, so the ring never grows past its exact allocation.
            self.recent.pop_front();
            pos -= 1;
        } else if self.recent.len() == self.recent.capacity() {
            // Straight to the bound (a clone has no spare room either), never doubling past it.
            self.recent.reserve_exact(RECENT - self.recent.len());
        }
        self.recent.insert(pos, Packed::new(time.0, status));
    }

    /// Loads stored counts of one period (`HOUR` or `DAY` long, starting at `start`).
    pub fn load_counts(&mut self, period_ms: i64, start: Timestamp, total: u64, bad: u64) {
        match period_ms {
            HOUR => add(&mut self.hours, index(start.0, HOUR), total, bad),
            DAY => add(&mut self.days, index(start.0, DAY), total, bad),
            _ => {}
        }
    }

    /// Replaces the recent results with stored ones (any order).
    pub fn load_recent(&mut self, mut results: Vec<(Timestamp, Status)>) {
        results.sort_by_key(|(t, _)| t.0);
        let skip = results.len().saturating_sub(RECENT);
        let mut recent = VecDeque::new();
        recent.reserve_exact(results.len().min(RECENT));
        recent.extend(
            results
                .into_iter()
                .skip(skip)
                .map(|(t, s)| Packed::new(t.0, s)),
        );
        self.recent = recent;
    }

    /// The last results, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = (Timestamp, Status)> + '_ {
        self.recent
            .iter()
            .map(|p| (Timestamp(p.time()), p.status()))
    }

    /// Uptime counts of the three windows ending at `now`.
    pub fn uptime(&self, now: Timestamp) -> Uptime {
        let (h, d) = (index(now.0, HOUR), index(now.0, DAY));
        Uptime {
            h24: sum(&self.hours, h.saturating_sub(HOURS as i32 - 1), h),
            d7: sum(&self.days, d.saturating_sub(7), d),
            d30: sum(&self.days, d.saturating_sub(30), d),
        }
    }
}

/// The newest `n` results of several checks together, oldest first.
pub fn merge_recent<'a>(
    histories: impl IntoIterator<Item = &'a History>,
    n: usize,
) -> Vec<(Timestamp, Status)> {
    let mut all: Vec<(Timestamp, Status)> = histories
        .into_iter()
        .flat_map(|h| h.recent().rev().take(n))
        .collect();
    all.sort_by_key(|(t, _)| t.0);
    let skip = all.len().saturating_sub(n);
    all.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn keeps_the_last_fifty_in_time_order() {
        let mut h = History::default();
        for i in 0..60 {
            h.record(Timestamp(T0 + i * 1000), Status::Ok);
        }
        h.record(Timestamp(T0 + 30_500), Status::Crit); // a late one inside the window
        h.record(Timestamp(T0 - 5_000), Status::Crit); // older than all 50: dropped
        let r: Vec<_> = h.recent().collect();
        assert_eq!(r.len(), RECENT);
        assert!(r.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(r.last().unwrap().0, Timestamp(T0 + 59_000));
        assert_eq!(r.iter().filter(|x| x.1 == Status::Crit).count(), 1);
    }

    #[test]
    fn the_ring_keeps_times_and_statuses_exactly_in_its_first_allocation() {
        let mut h = History::default();
        for (i, s) in Status::ALL.iter().cycle().take(200).enumerate() {
            h.record(Timestamp(T0 + i as i64 * 7), *s);
        }
        let r: Vec<_> = h.recent().collect();
        assert_eq!(r.len(), RECENT);
        for (k, (t, s)) in r.iter().enumerate() {
            let i = 150 + k;
            assert_eq!(*t, Timestamp(T0 + i as i64 * 7));
            assert_eq!(*s, Status::ALL[i % 4]);
        }
        assert!(h.recent.capacity() < 2 * RECENT, "{}", h.recent.capacity());
        for t in [-1, -T0, 0, i64::MIN, i64::MAX] {
            let p = Packed::new(t, Status::Crit);
            assert_eq!(p.status(), Status::Crit);
            assert_eq!(p.time(), t.clamp(-PACK_LIMIT, PACK_LIMIT));
        }
    }

    #[test]
    fn uptime_windows_count_whole_periods() {
        let mut h = History::default();
        let now = Timestamp(T0 + 40 * DAY + 90 * 60_000); // day 40, 01:30
                                                          // 3 ok and 1 crit in the current hour; 1 crit 10 hours ago; 2 ok 3 days ago; 1 crit
                                                          // 20 days ago; 5 ok 35 days ago (out of every window).
        for _ in 0..3 {
            h.record(Timestamp(now.0 - 60_000), Status::Ok);
        }
        h.record(Timestamp(now.0 - 120_000), Status::Crit);
        h.record(Timestamp(now.0 - 10 * HOUR), Status::Crit);
        h.load_counts(DAY, Timestamp(T0 + 37 * DAY), 2, 0);
        h.load_counts(DAY, Timestamp(T0 + 20 * DAY), 1, 1);
        h.load_counts(DAY, Timestamp(T0 + 5 * DAY), 5, 0);
        let u = h.uptime(now);
        assert_eq!(u.h24, Counts { total: 5, bad: 2 });
        assert_eq!(u.d7, Counts { total: 7, bad: 2 });
        assert_eq!(u.d30, Counts { total: 8, bad: 3 });
        assert_eq!(u.h24.ratio(), Some(0.6));
        assert_eq!(Counts::default().ratio(), None);
    }

    #[test]
    fn old_buckets_are_replaced_as_time_moves_on() {
        let mut h = History::default();
        h.record(Timestamp(T0), Status::Crit);
        // 25 hours later the hour slot is reused; 31 days later the day slot.
        h.record(Timestamp(T0 + 25 * HOUR), Status::Ok);
        h.record(Timestamp(T0 + 31 * DAY), Status::Ok);
        let u = h.uptime(Timestamp(T0 + 31 * DAY));
        assert_eq!(u.h24, Counts { total: 1, bad: 0 });
        assert_eq!(u.d30, Counts { total: 2, bad: 0 }, "day 0 left the window");
        // A late observation of a period older than its slot's is not counted.
        h.record(Timestamp(T0), Status::Crit);
        assert_eq!(h.uptime(Timestamp(T0 + 31 * DAY)).d30.bad, 0);
    }

    #[test]
    fn merged_recent_takes_the_newest_of_all_checks() {
        let (mut a, mut b) = (History::default(), History::default());
        for i in 0..40 {
            a.record(Timestamp(T0 + i * 2), Status::Ok);
            b.record(Timestamp(T0 + i * 2 + 1), Status::Crit);
        }
        let m = merge_recent([&a, &b], 50);
        assert_eq!(m.len(), 50);
        assert_eq!(m[49], (Timestamp(T0 + 79), Status::Crit));
        assert_eq!(m[0], (Timestamp(T0 + 30), Status::Ok));
    }
}
