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

/// The counts of the last `L` periods (hours or days) in 8 bytes each: the slot of period `p`
/// is `p mod L`, and which period a slot holds follows from the newest period seen, so no
/// slot stores its own. 10,000 checks keep 56 slots each.
#[derive(Debug, Clone, Copy)]
struct Ring<const L: usize> {
    /// The newest period counted; `i64::MIN` before the first.
    newest: i64,
    /// `(total, bad)` per slot.
    slots: [(u32, u32); L],
}

impl<const L: usize> Default for Ring<L> {
    fn default() -> Self {
        Ring {
            newest: i64::MIN,
            slots: [(0, 0); L],
        }
    }
}

impl<const L: usize> Ring<L> {
    fn slot(period: i64) -> usize {
        period.rem_euclid(L as i64) as usize
    }

    /// Adds counts to a period. A newer period than any before empties the slots of the
    /// periods it skips; counts of a period that has left the window are dropped.
    fn add(&mut self, period: i32, total: u64, bad: u64) {
        let period = i64::from(period);
        if self.newest == i64::MIN {
            self.newest = period;
        } else if period > self.newest {
            if period - self.newest >= L as i64 {
                self.slots = [(0, 0); L];
            } else {
                for p in self.newest + 1..=period {
                    self.slots[Self::slot(p)] = (0, 0);
                }
            }
            self.newest = period;
        } else if period <= self.newest - L as i64 {
            return;
        }
        let s = &mut self.slots[Self::slot(period)];
        s.0 = s.0.saturating_add(u32::try_from(total).unwrap_or(u32::MAX));
        s.1 = s.1.saturating_add(u32::try_from(bad).unwrap_or(u32::MAX));
    }

    /// Counts of the periods `from..=to` still held.
    fn sum(&self, from: i32, to: i32) -> Counts {
        let mut c = Counts::default();
        if self.newest == i64::MIN {
            return c;
        }
        for (i, (total, bad)) in self.slots.iter().enumerate() {
            // The period in this slot: the newest one at or before `newest` that maps here.
            let period = self.newest - (self.newest - i as i64).rem_euclid(L as i64);
            if *total > 0 && period >= i64::from(from) && period <= i64::from(to) {
                c.total += u64::from(*total);
                c.bad += u64::from(*bad);
            }
        }
        c
    }
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

#[derive(Debug, Clone, Default)]
pub struct History {
    /// Newest last. Grown once, straight to exactly [`RECENT`] entries, never past it.
    recent: VecDeque<Packed>,
    hours: Ring<HOURS>,
    days: Ring<DAYS>,
}

fn index(t: i64, period: i64) -> i32 {
    i32::try_from(t.div_euclid(period)).unwrap_or(if t < 0 { i32::MIN } else { i32::MAX })
}

impl History {
    /// Counts one committed observation.
    pub fn record(&mut self, time: Timestamp, status: Status) {
        let bad = u64::from(status != Status::Ok);
        self.hours.add(index(time.0, HOUR), 1, bad);
        self.days.add(index(time.0, DAY), 1, bad);
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
            HOUR => self.hours.add(index(start.0, HOUR), total, bad),
            DAY => self.days.add(index(start.0, DAY), total, bad),
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
            h24: self.hours.sum(h.saturating_sub(HOURS as i32 - 1), h),
            d7: self.days.sum(d.saturating_sub(7), d),
            d30: self.days.sum(d.saturating_sub(30), d),
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
    fn rings_agree_with_counting_every_observation() {
        // Pseudo-random times over 80 days, in and out of order, against a plain count.
        let mut h = History::default();
        let mut all = Vec::new();
        let mut x: u64 = 42;
        for _ in 0..5_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let t = T0 + (x >> 20) as i64 % (80 * DAY);
            let s = if x.is_multiple_of(3) {
                Status::Crit
            } else {
                Status::Ok
            };
            h.record(Timestamp(t), s);
            all.push((t, s));
        }
        assert_eq!(
            std::mem::size_of::<History>() - std::mem::size_of::<VecDeque<Packed>>(),
            8 + HOURS * 8 + 8 + DAYS * 8
        );
        let newest_day = all.iter().map(|(t, _)| t.div_euclid(DAY)).max().unwrap();
        let newest_hour = all.iter().map(|(t, _)| t.div_euclid(HOUR)).max().unwrap();
        // What a ring may still hold: the periods within its length of the newest seen so far
        // when each observation arrived — so count in arrival order, like the ring does.
        let (mut nd, mut nh) = (i64::MIN, i64::MIN);
        let mut kept = Vec::new();
        for (t, s) in &all {
            let (d, hr) = (t.div_euclid(DAY), t.div_euclid(HOUR));
            nd = nd.max(d);
            nh = nh.max(hr);
            kept.push((d > nd - DAYS as i64, hr > nh - HOURS as i64, d, hr, *s));
        }
        let now = Timestamp(newest_day * DAY + 3 * HOUR);
        let u = h.uptime(now);
        let count = |from_day: i64| {
            let mut c = Counts::default();
            for (day_kept, _, d, _, s) in &kept {
                if *day_kept && *d >= from_day && *d <= newest_day {
                    c.total += 1;
                    c.bad += u64::from(*s != Status::Ok);
                }
            }
            c
        };
        assert_eq!(u.d30, count(newest_day - 30));
        assert_eq!(u.d7, count(newest_day - 7));
        let h_now = now.0.div_euclid(HOUR);
        let mut c = Counts::default();
        for (_, hour_kept, _, hr, s) in &kept {
            if *hour_kept && *hr >= h_now - 24 && *hr <= h_now && *hr <= newest_hour {
                c.total += 1;
                c.bad += u64::from(*s != Status::Ok);
            }
        }
        assert_eq!(u.h24, c);
        assert!(u.d30.total > 1_000);
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
