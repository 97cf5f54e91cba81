//! Phase 1: one pass over a chunk of lines, on one thread, with no sharing.
//!
//! Each chunk interns its operation names in a small local map, appends every duration to the
//! `Vec<u64>` of its (operation, period) group, and turns every line that has a `MessageId` into a
//! compact [`IdRec`] filed under a hash partition of that id. The ids themselves are not copied
//! for memory-mapped input: a record points into the map. Phase 2 (`correlate`) then joins the
//! records of one partition from all chunks exactly, by id bytes, so chunks never need to agree
//! on anything but the hash function.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::FixedState;
use memchr::memchr;

use crate::parse::{parse_line_hinted, period_key, Hints, Malformed, Period};

/// Number of hash partitions of message ids; more than cores so that phase 2 balances and each
/// partition's table stays cache-friendly.
pub(crate) const PARTITIONS: usize = 16;
/// Slots of the per-chunk cache that merges the lines of one message id into one record before
/// they reach phase 2 (the lines of a call are written close together).
const RECENT_SLOTS: usize = 256;
/// Slots of the per-chunk cache in front of the operation map: a log has a handful of
/// operations, and a hit costs a few word compares where the map costs a hash and two `memcmp`
/// calls (10 % of the scan when it was the only way).
const OP_SLOTS: usize = 64;
/// How many malformed lines are reported by number.
pub(crate) const MAX_EXAMPLES: usize = 5;
/// Progress is published after this many bytes, to keep the shared counter cold.
const PROGRESS_STEP: usize = 4 << 20;

/// A message id and what some lines carrying it contribute: DB time and a service group.
/// Several records may carry the same id; phase 2 adds them up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdRec {
    pub hash: u64,
    /// Offset of the id bytes in buffer `src`.
    pub off: u64,
    /// Sum of the durations of the non-service calls.
    pub db_us: u64,
    pub src: u32,
    pub len: u32,
    pub db_calls: u32,
    /// Chunk-local group of a service call, or [`NO_GROUP`].
    pub group: u32,
}

/// No service group (yet).
pub(crate) const NO_GROUP: u32 = u32::MAX;

pub(crate) struct LocalOp {
    pub name: Vec<u8>,
    pub service: bool,
}

pub(crate) struct LocalGroup {
    pub op: u32,
    pub period: u32,
    pub durations: Vec<u64>,
    pub errors: u64,
    pub total_us: u128,
}

/// What one chunk found.
pub(crate) struct ChunkOut {
    pub ops: Vec<LocalOp>,
    pub groups: Vec<LocalGroup>,
    pub lines: u64,
    pub malformed: u64,
    /// The first malformed lines: 0-based line index within the chunk, and why.
    pub examples: Vec<(u64, Malformed)>,
    /// Message-id records, one vector per partition.
    pub ids: Vec<Vec<IdRec>>,
}

impl ChunkOut {
    pub(crate) fn empty() -> ChunkOut {
        ChunkOut {
            ops: Vec::new(),
            groups: Vec::new(),
            lines: 0,
            malformed: 0,
            examples: Vec::new(),
            ids: (0..PARTITIONS).map(|_| Vec::new()).collect(),
        }
    }

    fn malformed(&mut self, line_index: u64, why: Malformed) {
        self.malformed += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push((line_index, why));
        }
    }
}

/// Settings shared by all chunks.
pub(crate) struct ScanCtx<'a> {
    pub by: Option<Period>,
    pub hasher: FixedState,
    pub progress: &'a AtomicU64,
}

/// Where the message-id bytes a record points to are kept: copied to the end of `arena`, which
/// becomes buffer `src`. Never the scanned data itself: a memory-mapped chunk is unmapped as soon
/// as it is scanned, and a streamed block is dropped.
pub(crate) struct IdStore<'b> {
    pub src: u32,
    pub arena: &'b mut Vec<u8>,
}

/// Partition of a message id hash; uses high bits, which the table in phase 2 does not favour.
pub(crate) fn partition_of(hash: u64) -> usize {
    (hash >> 56) as usize % PARTITIONS
}

/// Scans `data` (whole lines; the last may lack its `\n`).
pub(crate) fn scan_chunk(data: &[u8], ctx: &ScanCtx<'_>, mut ids: IdStore<'_>) -> ChunkOut {
    let mut out = ChunkOut::empty();
    let mut op_index: HashMap<(&[u8], &[u8]), u32, FixedState> =
        HashMap::with_hasher(ctx.hasher.clone());
    let mut group_index: HashMap<(u32, u32), u32, FixedState> =
        HashMap::with_hasher(ctx.hasher.clone());
    let mut op_cache: [Option<CachedOp<'_>>; OP_SLOTS] = [None; OP_SLOTS];
    let mut recent: Vec<Option<Pending<'_>>> = vec![None; RECENT_SLOTS];
    let mut hints = Hints::default();
    let mut start = 0;
    let mut reported = 0;
    while start < data.len() {
        let end = memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let mut line = &data[start..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let line_index = out.lines;
        out.lines += 1;
        start = end + 1;
        if start - reported >= PROGRESS_STEP {
            ctx.progress
                .fetch_add((start - reported) as u64, Ordering::Relaxed);
            reported = start;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec = match parse_line_hinted(line, &mut hints) {
            Ok(rec) => rec,
            Err(why) => {
                out.malformed(line_index, why);
                continue;
            }
        };
        let period = match ctx.by {
            None => 0,
            Some(by) => match period_key(line, by) {
                Some(p) => p,
                None => {
                    out.malformed(line_index, Malformed::NoTimestamp);
                    continue;
                }
            },
        };
        let service = rec.soap_operation.is_some();
        // Service calls are named by LogPoint; other calls (DB, Kafka) also by what they looked up.
        let detail: &[u8] = match rec.uniq_id {
            Some(u) if !service && u != rec.log_point => u,
            _ => b"",
        };
        let slot = &mut op_cache[op_slot(rec.log_point, detail)];
        let cached = match *slot {
            Some((lp, d, op)) if same_bytes(lp, rec.log_point) && same_bytes(d, detail) => Some(op),
            _ => None,
        };
        let op = match cached.or_else(|| op_index.get(&(rec.log_point, detail)).copied()) {
            Some(op) => op,
            None => {
                let op = out.ops.len() as u32;
                let mut name = rec.log_point.to_vec();
                if !detail.is_empty() {
                    name.push(b':');
                    name.extend_from_slice(detail);
                }
                out.ops.push(LocalOp {
                    name,
                    service: false,
                });
                op_index.insert((rec.log_point, detail), op);
                op
            }
        };
        *slot = Some((rec.log_point, detail, op));
        if service {
            out.ops[op as usize].service = true;
        }
        let group = match ctx.by {
            // Without periods there is one group per operation.
            None => {
                if op as usize == out.groups.len() {
                    out.groups.push(LocalGroup::new(op, 0));
                }
                op
            }
            Some(_) => *group_index.entry((op, period)).or_insert_with(|| {
                out.groups.push(LocalGroup::new(op, period));
                out.groups.len() as u32 - 1
            }),
        };
        let g = &mut out.groups[group as usize];
        g.durations.push(rec.duration_us);
        g.total_us += u128::from(rec.duration_us);
        g.errors += u64::from(!rec.ok);
        if let Some(id) = rec.message_id {
            let hash = ctx.hasher.hash_one(id);
            let slot = &mut recent[(hash >> 32) as usize % RECENT_SLOTS];
            let same = matches!(slot, Some(p) if p.hash == hash && same_bytes(p.id, id));
            if !same {
                if let Some(old) = slot.take() {
                    emit(&mut out.ids, &mut ids, old);
                }
                *slot = Some(Pending {
                    hash,
                    id,
                    db_us: 0,
                    db_calls: 0,
                    group: NO_GROUP,
                });
            }
            if let Some(p) = slot {
                if !service {
                    p.db_us = p.db_us.saturating_add(rec.duration_us);
                    p.db_calls = p.db_calls.saturating_add(1);
                } else if p.group == NO_GROUP || p.group == group {
                    p.group = group;
                } else {
                    // A second group for this id: keep both, in separate records.
                    let old = *p;
                    p.db_us = 0;
                    p.db_calls = 0;
                    p.group = group;
                    emit(&mut out.ids, &mut ids, old);
                }
            }
        }
    }
    for p in recent.iter_mut().filter_map(Option::take) {
        emit(&mut out.ids, &mut ids, p);
    }
    ctx.progress.fetch_add(
        data.len().saturating_sub(reported) as u64,
        Ordering::Relaxed,
    );
    out
}

impl LocalGroup {
    fn new(op: u32, period: u32) -> LocalGroup {
        LocalGroup {
            op,
            period,
            durations: Vec::new(),
            errors: 0,
            total_us: 0,
        }
    }
}

/// An operation's (log point, detail) and its chunk-local index.
type CachedOp<'a> = (&'a [u8], &'a [u8], u32);

/// A message id seen recently in this chunk, not yet turned into a record.
#[derive(Clone, Copy)]
struct Pending<'a> {
    hash: u64,
    id: &'a [u8],
    db_us: u64,
    db_calls: u32,
    group: u32,
}

fn emit(parts: &mut [Vec<IdRec>], store: &mut IdStore<'_>, p: Pending<'_>) {
    let off = store.arena.len() as u64;
    store.arena.extend_from_slice(p.id);
    parts[partition_of(p.hash)].push(IdRec {
        hash: p.hash,
        off,
        db_us: p.db_us,
        src: store.src,
        len: p.id.len() as u32,
        db_calls: p.db_calls,
        group: p.group,
    });
}

/// Slot of an operation (log point, detail) in the chunk's cache: from the lengths and the last
/// bytes of both, which is where the names of one log's operations differ.
#[inline(always)]
fn op_slot(log_point: &[u8], detail: &[u8]) -> usize {
    let lens = (log_point.len() as u64) << 32 | detail.len() as u64;
    let f = tail_word(log_point) ^ tail_word(detail).rotate_left(29) ^ lens;
    (f.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % OP_SLOTS
}

/// The last (up to) eight bytes of `s` as a number.
#[inline(always)]
fn tail_word(s: &[u8]) -> u64 {
    match s.len().checked_sub(8) {
        Some(k) => word(s, k),
        None => s.iter().fold(0, |w, &b| w << 8 | u64::from(b)),
    }
}

#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    s.get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// `a == b`, inline, eight bytes at a time: the names and ids compared here are tens of bytes,
/// where a call into `memcmp` costs more than the comparison.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last word, overlapping the one before when `n` is not a multiple of eight.
    word(a, n - 8) == word(b, n - 8)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn same_bytes_is_slice_equality(
            a in proptest::collection::vec(any::<u8>(), 0..48),
            b in proptest::collection::vec(any::<u8>(), 0..48),
            flip in 0usize..48,
        ) {
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            let mut c = a.clone();
            prop_assert!(same_bytes(&a, &c));
            if let Some(byte) = c.get_mut(flip) {
                *byte ^= 0x20;
                prop_assert!(!same_bytes(&a, &c), "a difference at {flip} of {}", a.len());
            }
        }
    }

    #[test]
    fn operations_sharing_cache_slots_are_counted_apart() {
        // More operations than the cache has slots, in rotation, so that slots are shared and
        // overwritten all the time; names that differ only in their first bytes, too.
        let mut text = String::new();
        for i in 0..3_000 {
            let op = i % 300;
            let _ = writeln!(
                text,
                "LogPoint=\"DB_Operation\" LogPointUniqId=\"{op:03}-lookupPersonName\" \
                 Duration=\"{op} microseconds\" Result=OK"
            );
        }
        let progress = AtomicU64::new(0);
        let ctx = ScanCtx {
            by: None,
            hasher: FixedState::with_seed(1),
            progress: &progress,
        };
        let mut arena = Vec::new();
        let ids = IdStore {
            src: 0,
            arena: &mut arena,
        };
        let out = scan_chunk(text.as_bytes(), &ctx, ids);
        assert_eq!(out.malformed, 0);
        assert_eq!(out.ops.len(), 300);
        assert_eq!(out.groups.len(), 300);
        for g in &out.groups {
            let name = String::from_utf8_lossy(&out.ops[g.op as usize].name).into_owned();
            let op: u64 = name["DB_Operation:".len()..][..3].parse().unwrap();
            assert_eq!(g.durations, vec![op; 10], "{name}");
        }
    }
}
