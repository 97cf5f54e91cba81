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

use crate::parse::{parse_line, period_key, Malformed, Period};

/// Number of hash partitions of message ids; more than cores so that phase 2 balances and each
/// partition's table stays cache-friendly.
pub(crate) const PARTITIONS: usize = 16;
/// Slots of the per-chunk cache that merges the lines of one message id into one record before
/// they reach phase 2 (the lines of a call are written close together).
const RECENT_SLOTS: usize = 256;
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

/// Where the message-id bytes a record points to live.
pub(crate) enum IdStore<'b> {
    /// In the scanned data itself, which is buffer `src` from offset `base` on (memory map).
    InPlace { src: u32, base: u64 },
    /// Copied to the end of `arena`, which becomes buffer `src` (streamed input whose blocks
    /// are dropped after scanning).
    Copy { src: u32, arena: &'b mut Vec<u8> },
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
    let mut recent: Vec<Option<Pending<'_>>> = vec![None; RECENT_SLOTS];
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
        let rec = match parse_line(line) {
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
        let op = match op_index.get(&(rec.log_point, detail)) {
            Some(&op) => op,
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
            let same = matches!(slot, Some(p) if p.hash == hash && p.id == id);
            if !same {
                if let Some(old) = slot.take() {
                    emit(&mut out.ids, &mut ids, data, old);
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
                    emit(&mut out.ids, &mut ids, data, old);
                }
            }
        }
    }
    for p in recent.iter_mut().filter_map(Option::take) {
        emit(&mut out.ids, &mut ids, data, p);
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

/// A message id seen recently in this chunk, not yet turned into a record.
#[derive(Clone, Copy)]
struct Pending<'a> {
    hash: u64,
    id: &'a [u8],
    db_us: u64,
    db_calls: u32,
    group: u32,
}

fn emit(parts: &mut [Vec<IdRec>], store: &mut IdStore<'_>, data: &[u8], p: Pending<'_>) {
    let (src, off) = match store {
        IdStore::InPlace { src, base } => {
            // `p.id` is a sub-slice of `data`.
            let within = p.id.as_ptr() as usize - data.as_ptr() as usize;
            (*src, *base + within as u64)
        }
        IdStore::Copy { src, arena } => {
            let off = arena.len() as u64;
            arena.extend_from_slice(p.id);
            (*src, off)
        }
    };
    parts[partition_of(p.hash)].push(IdRec {
        hash: p.hash,
        off,
        db_us: p.db_us,
        src,
        len: p.id.len() as u32,
        db_calls: p.db_calls,
        group: p.group,
    });
}
