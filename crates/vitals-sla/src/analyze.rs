//! Reading the inputs and turning them into per-group statistics.
//!
//! Plain files are memory-mapped and cut into chunks at line boundaries; all chunks of all plain
//! files go through one work queue served by every core (phase 1, `scan.rs`), and each chunk's
//! pages are unmapped as soon as it is scanned. Gzip'd files (recognised by their magic bytes)
//! are decompressed on one thread and scanned block by block on another. Either way message ids
//! are copied to a small arena per chunk or block, since the bytes they came from are gone by
//! phase 2. Then the chunk results are merged by operation name and period, and two kinds of
//! independent tasks run on all cores: the message-id join of each hash partition (phase 2,
//! exact on the id bytes) and, per group, gathering its durations and their exact percentiles.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use anyhow::{anyhow, Context};
use flate2::read::MultiGzDecoder;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use memchr::{memchr, memrchr};

use crate::parse::{Malformed, Period};
use crate::percentile::{self, Percentile};
use crate::scan::{
    same_bytes, scan_chunk, ChunkOut, IdStore, ScanCtx, MAX_EXAMPLES, NO_GROUP, PARTITIONS,
};
use crate::target::{self, Target};

/// How to analyse.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Group by period as well as by operation.
    pub by: Option<Period>,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
}

/// Statistics of one (operation, period) group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// `LogPoint` for service calls; `LogPoint:LogPointUniqId` for other calls whose uniq id
    /// differs from the log point (e.g. `DB_Operation:lookupPersonName`).
    pub operation: String,
    /// Whether any line of this operation was a service call (had a `SOAPOperation`).
    pub service: bool,
    /// Period key ([`crate::parse::period_key`]) when grouping by period.
    pub period: Option<u32>,
    pub count: u64,
    /// Lines whose `Result` was not `OK`.
    pub errors: u64,
    pub total_us: u128,
    pub max_us: u64,
    /// Exact nearest-rank percentiles: the reported ones and those the targets ask for.
    pub percentiles: Vec<(Percentile, u64)>,
    /// Sum of the durations of the non-service calls sharing a `MessageId` with this group's
    /// service calls (each id counted once per group, however many calls of the group carry it).
    pub db_us: u128,
}

impl GroupStats {
    /// The value of percentile `p`, if it was computed.
    pub fn percentile(&self, p: Percentile) -> Option<u64> {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, v)| *v)
    }
}

/// A skipped line, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    pub file: PathBuf,
    /// 1-based.
    pub line: u64,
    pub reason: Malformed,
}

/// Everything the report is made of.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub files: Vec<PathBuf>,
    pub by: Option<Period>,
    pub lines: u64,
    pub malformed: u64,
    /// The first few (five) malformed lines, in file order.
    pub malformed_examples: Vec<MalformedLine>,
    /// Groups in no particular order.
    pub groups: Vec<GroupStats>,
    /// Non-service calls whose `MessageId` no service call shares.
    pub uncorrelated_db_calls: u64,
    pub uncorrelated_db_us: u128,
}

/// Bytes of one input kept alive until the message-id join is done.
enum Buf {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Buf {
    fn bytes(&self) -> &[u8] {
        match self {
            Buf::Map(m) => m,
            Buf::Owned(v) => v,
        }
    }
}

enum Input {
    Plain { buf: usize },
    Gzip(File),
}

/// The seed of the message-id hash; any constant works, all threads must share it.
const HASH_SEED: u64 = 0x5_1a_10_c0;
/// Streamed blocks of decompressed input.
const GZIP_BLOCK: usize = 4 << 20;
/// A streamed line longer than this is skipped as malformed rather than buffered.
const GZIP_MAX_LINE: usize = 64 << 20;

/// Analyses `files` in order. `progress` counts input bytes consumed (compressed bytes for
/// gzip'd files), for a progress display.
pub fn analyze(
    files: &[PathBuf],
    opts: &Options,
    targets: &[Target],
    progress: &AtomicU64,
) -> anyhow::Result<Analysis> {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let ctx = ScanCtx {
        by: opts.by,
        hasher: FixedState::with_seed(HASH_SEED),
        progress,
    };

    let mut bufs: Vec<Buf> = Vec::new();
    let mut inputs = Vec::with_capacity(files.len());
    for path in files {
        inputs.push(open(path, &mut bufs)?);
    }

    // Phase 1 over plain files: (file, chunk start, chunk end) in a shared queue.
    let plain_bytes: usize = inputs
        .iter()
        .map(|i| match i {
            Input::Plain { buf } => bufs[*buf].bytes().len(),
            Input::Gzip(_) => 0,
        })
        .sum();
    // Many chunks per thread, so that the last one to finish leaves the others idle briefly.
    let chunk_size = (plain_bytes / (threads * 16)).clamp(1 << 20, 16 << 20);
    let mut work: Vec<(usize, usize, usize, usize)> = Vec::new(); // file, buf, start, end
    for (file, input) in inputs.iter().enumerate() {
        if let Input::Plain { buf } = input {
            for (start, end) in line_chunks(bufs[*buf].bytes(), chunk_size) {
                work.push((file, *buf, start, end));
            }
        }
    }
    // Every chunk copies its message ids to an arena of its own, which becomes buffer
    // `first_arena + i`, so that the chunk's pages can be unmapped as soon as it is scanned.
    let first_arena = bufs.len();
    let scan_one = |i: usize| -> (ChunkOut, Vec<u8>) {
        let Some(&(_, buf, start, end)) = work.get(i) else {
            return (ChunkOut::empty(), Vec::new());
        };
        // Ids are ~1 % of an SLA log's bytes; room for more, so that it never grows by copying.
        let mut arena = Vec::with_capacity((end - start) / 32);
        let src = IdStore {
            src: (first_arena + i) as u32,
            arena: &mut arena,
        };
        let out = scan_chunk(&bufs[buf].bytes()[start..end], &ctx, src);
        release(&bufs[buf], start, end);
        (out, arena)
    };
    let mut done: Vec<(usize, (ChunkOut, Vec<u8>))> = if work.len() <= 1 || threads == 1 {
        (0..work.len()).map(|i| (i, scan_one(i))).collect()
    } else {
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads.min(work.len()))
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= work.len() {
                                break;
                            }
                            mine.push((i, scan_one(i)));
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    if done.len() != work.len() {
        return Err(anyhow!("a scanning thread failed"));
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut outs: Vec<(usize, ChunkOut)> = Vec::with_capacity(work.len());
    for (i, (out, arena)) in done {
        outs.push((work[i].0, out));
        bufs.push(Buf::Owned(arena));
    }

    // Gzip'd files, one after the other; each yields its chunks in order.
    for (file, input) in inputs.into_iter().enumerate() {
        if let Input::Gzip(f) = input {
            let src = bufs.len();
            let mut arena = Vec::new();
            let chunks = scan_gzip(f, &ctx, src as u32, &mut arena)
                .with_context(|| format!("{}: cannot decompress", files[file].display()))?;
            bufs.push(Buf::Owned(arena));
            outs.extend(chunks.into_iter().map(|c| (file, c)));
        }
    }
    // Chunks of a file in order, files in order: line numbers follow.
    outs.sort_by_key(|(file, _)| *file);

    let mut lines = 0;
    let mut malformed = 0;
    let mut malformed_examples = Vec::new();
    let mut file_line = (usize::MAX, 0u64);
    for (file, out) in &outs {
        if file_line.0 != *file {
            file_line = (*file, 0);
        }
        for (index, reason) in &out.examples {
            if malformed_examples.len() < MAX_EXAMPLES {
                malformed_examples.push(MalformedLine {
                    file: files[*file].clone(),
                    line: file_line.1 + index + 1,
                    reason: *reason,
                });
            }
        }
        file_line.1 += out.lines;
        lines += out.lines;
        malformed += out.malformed;
    }

    let mut merged = merge(&mut outs, targets);
    let (db, uncorrelated_db_calls, uncorrelated_db_us) =
        finish(&mut merged, &outs, &bufs, threads);

    let groups = merged
        .groups
        .into_iter()
        .zip(db)
        .map(|(g, db_us)| {
            let op = &merged.ops[g.op as usize];
            GroupStats {
                operation: String::from_utf8_lossy(&op.name).into_owned(),
                service: op.service,
                period: opts.by.map(|_| g.period),
                count: g.count,
                errors: g.errors,
                total_us: g.total_us,
                max_us: g.max_us,
                percentiles: g.percentiles,
                db_us,
            }
        })
        .collect();
    Ok(Analysis {
        files: files.to_vec(),
        by: opts.by,
        lines,
        malformed,
        malformed_examples,
        groups,
        uncorrelated_db_calls,
        uncorrelated_db_us,
    })
}

fn open(path: &Path, bufs: &mut Vec<Buf>) -> anyhow::Result<Input> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_dir() {
        return Err(anyhow!("{} is a directory, not a log file", path.display()));
    }
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    if got == 2 && magic == [0x1f, 0x8b] {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        return Ok(Input::Gzip(file));
    }
    let buf = if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is only read. Should another process truncate the file while it is
        // mapped, reading the lost pages faults — the trade-off every mmap-based log reader
        // (ripgrep included) makes for reading at memory speed; logs are appended, not truncated,
        // and a rotated file is renamed, which does not disturb the map.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        Buf::Map(map)
    } else {
        // Pipes, devices and empty files: read what is there.
        let mut data = magic[..got].to_vec();
        file.read_to_end(&mut data)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Buf::Owned(data)
    };
    bufs.push(buf);
    Ok(Input::Plain {
        buf: bufs.len() - 1,
    })
}

/// Unmaps the pages of `buf[start..end]` once they are scanned (nothing points into them: the
/// chunk's ids were copied). The kernel tears a mapping's page tables down anyway, when it is
/// dropped; done here, each core does it for its own chunks while the others still scan, instead
/// of one thread for the whole file at the end (30 ms of a 190 ms report on 754 MB).
fn release(buf: &Buf, start: usize, end: usize) {
    if let Buf::Map(map) = buf {
        // SAFETY: `MADV_DONTNEED` on a shared, read-only file mapping only drops page-table
        // entries: a later read of these bytes (another chunk's line may share the first page)
        // faults them in again from the page cache with the same content. Failure only means
        // the pages stay mapped until the map is dropped.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

/// Cuts `data` into ranges of about `size` bytes that start and end at line boundaries.
fn line_chunks(data: &[u8], size: usize) -> Vec<(usize, usize)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let target = start.saturating_add(size);
        let end = if target >= data.len() {
            data.len()
        } else {
            memchr(b'\n', &data[target..]).map_or(data.len(), |i| target + i + 1)
        };
        chunks.push((start, end));
        start = end;
    }
    chunks
}

/// Counts bytes read from the compressed file for the progress display.
struct Counting<'a, R> {
    inner: R,
    progress: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Block {
    Lines(Vec<u8>),
    /// A line longer than [`GZIP_MAX_LINE`] was skipped.
    TooLong,
}

/// Decompresses on a helper thread, scans complete-line blocks on this one.
fn scan_gzip(
    file: File,
    ctx: &ScanCtx<'_>,
    src: u32,
    arena: &mut Vec<u8>,
) -> io::Result<Vec<ChunkOut>> {
    // The decoder reports progress itself, not through `ctx`, so that scanning doesn't count
    // decompressed bytes on top.
    let silent = AtomicU64::new(0);
    let scan_ctx = ScanCtx {
        by: ctx.by,
        hasher: ctx.hasher.clone(),
        progress: &silent,
    };
    let progress = ctx.progress;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Block>>(2);
        s.spawn(move || {
            let reader = io::BufReader::with_capacity(
                256 << 10,
                Counting {
                    inner: file,
                    progress,
                },
            );
            let mut decoder = MultiGzDecoder::new(reader);
            if let Err(e) = decompress_blocks(&mut decoder, &tx, GZIP_BLOCK, GZIP_MAX_LINE) {
                let _ = tx.send(Err(e));
            }
        });
        let mut outs = Vec::new();
        for block in rx {
            match block? {
                Block::Lines(data) => {
                    outs.push(scan_chunk(&data, &scan_ctx, IdStore { src, arena }));
                }
                Block::TooLong => {
                    let mut out = ChunkOut::empty();
                    out.lines = 1;
                    out.malformed = 1;
                    out.examples.push((0, Malformed::TooLong));
                    outs.push(out);
                }
            }
        }
        Ok(outs)
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Sends blocks of about `block` bytes that end at a line boundary; a line longer than
/// `max_line` is dropped and reported as [`Block::TooLong`]. A receiver that hung up ends the
/// loop.
fn decompress_blocks(
    r: &mut impl Read,
    tx: &mpsc::SyncSender<io::Result<Block>>,
    block: usize,
    max_line: usize,
) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = std::mem::take(&mut carry);
        let start = buf.len();
        buf.resize(start + block, 0);
        let n = read_full(r, &mut buf[start..])?;
        buf.truncate(start + n);
        if n == 0 {
            if !buf.is_empty() && tx.send(Ok(Block::Lines(buf))).is_err() {
                return Ok(());
            }
            return Ok(());
        }
        match memrchr(b'\n', &buf[start..]) {
            Some(i) => {
                carry = buf[start + i + 1..].to_vec();
                buf.truncate(start + i + 1);
                if tx.send(Ok(Block::Lines(buf))).is_err() {
                    return Ok(());
                }
            }
            None if buf.len() < max_line => carry = buf,
            None => {
                // Drop the rest of this line without keeping it.
                let mut scratch = vec![0u8; 64 << 10];
                loop {
                    let n = read_full(r, &mut scratch)?;
                    if n == 0 {
                        break;
                    }
                    if let Some(i) = memchr(b'\n', &scratch[..n]) {
                        carry = scratch[i + 1..n].to_vec();
                        break;
                    }
                }
                if tx.send(Ok(Block::TooLong)).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

struct MergedOp {
    name: Vec<u8>,
    service: bool,
    /// Percentiles to compute for this operation's groups.
    percentiles: Vec<Percentile>,
}

struct MergedGroup {
    op: u32,
    period: u32,
    /// Where its durations are: (chunk, local group) pairs, gathered by [`finish`] on all cores.
    parts: Vec<(u32, u32)>,
    count: u64,
    errors: u64,
    total_us: u128,
    max_us: u64,
    percentiles: Vec<(Percentile, u64)>,
}

struct Merged {
    ops: Vec<MergedOp>,
    groups: Vec<MergedGroup>,
    /// Per chunk: local group index → merged group index.
    group_maps: Vec<Vec<u32>>,
}

fn merge(outs: &mut [(usize, ChunkOut)], targets: &[Target]) -> Merged {
    let mut ops: Vec<MergedOp> = Vec::new();
    let mut op_index: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut groups: Vec<MergedGroup> = Vec::new();
    let mut group_index: HashMap<(u32, u32), u32> = HashMap::new();
    let mut group_maps = Vec::with_capacity(outs.len());
    for (chunk, (_, out)) in outs.iter_mut().enumerate() {
        let op_map: Vec<u32> = out
            .ops
            .iter_mut()
            .map(|local| {
                let i = *op_index
                    .entry(std::mem::take(&mut local.name))
                    .or_insert_with_key(|name| {
                        let text = String::from_utf8_lossy(name);
                        let mut percentiles = Percentile::REPORTED.to_vec();
                        for t in target::applicable(targets, &text) {
                            if !percentiles.contains(&t.percentile) {
                                percentiles.push(t.percentile);
                            }
                        }
                        ops.push(MergedOp {
                            name: name.clone(),
                            service: false,
                            percentiles,
                        });
                        ops.len() as u32 - 1
                    });
                ops[i as usize].service |= local.service;
                i
            })
            .collect();
        let group_map = out
            .groups
            .iter_mut()
            .enumerate()
            .map(|(local_index, local)| {
                let op = op_map[local.op as usize];
                let i = *group_index.entry((op, local.period)).or_insert_with(|| {
                    groups.push(MergedGroup {
                        op,
                        period: local.period,
                        parts: Vec::new(),
                        count: 0,
                        errors: 0,
                        total_us: 0,
                        max_us: 0,
                        percentiles: Vec::new(),
                    });
                    groups.len() as u32 - 1
                });
                let g = &mut groups[i as usize];
                g.parts.push((chunk as u32, local_index as u32));
                g.count += local.durations.len() as u64;
                g.errors += local.errors;
                g.total_us += local.total_us;
                i
            })
            .collect();
        group_maps.push(group_map);
    }
    Merged {
        ops,
        groups,
        group_maps,
    }
}

/// Runs the message-id join of every partition and the percentiles of every group on all
/// cores. Returns DB time per merged group and the uncorrelated DB calls and time.
fn finish(
    merged: &mut Merged,
    outs: &[(usize, ChunkOut)],
    bufs: &[Buf],
    threads: usize,
) -> (Vec<u128>, u64, u128) {
    let n_groups = merged.groups.len();
    let ops = &merged.ops;
    let group_maps = &merged.group_maps;
    let next_partition = AtomicUsize::new(0);
    let pending_groups = Mutex::new(merged.groups.iter_mut());
    let work = || {
        let mut acc = JoinAcc {
            db: vec![0u128; n_groups],
            uncorrelated_calls: 0,
            uncorrelated_us: 0,
            table: HashTable::new(),
            more: Vec::new(),
        };
        loop {
            let p = next_partition.fetch_add(1, Ordering::Relaxed);
            if p >= PARTITIONS {
                break;
            }
            join_partition(p, outs, group_maps, bufs, &mut acc);
        }
        loop {
            let next = match pending_groups.lock() {
                Ok(mut it) => it.next(),
                Err(_) => None,
            };
            let Some(g) = next else { break };
            // One group's durations in one allocation, gathered here rather than in `merge`
            // so that the copying is shared by all cores too.
            let mut durations = Vec::with_capacity(g.count as usize);
            for &(chunk, local) in &g.parts {
                if let Some(local) = outs
                    .get(chunk as usize)
                    .and_then(|(_, out)| out.groups.get(local as usize))
                {
                    durations.extend_from_slice(&local.durations);
                }
            }
            g.count = durations.len() as u64;
            g.max_us = durations.iter().copied().max().unwrap_or(0);
            let wanted = &ops[g.op as usize].percentiles;
            if let Some(values) = percentile::select(&mut durations, wanted) {
                g.percentiles = wanted.iter().copied().zip(values).collect();
            }
        }
        acc
    };
    let accs: Vec<JoinAcc> = if threads <= 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    };
    let mut db = vec![0u128; n_groups];
    let (mut calls, mut us) = (0, 0);
    for acc in accs {
        for (total, part) in db.iter_mut().zip(acc.db) {
            *total += part;
        }
        calls += acc.uncorrelated_calls;
        us += acc.uncorrelated_us;
    }
    (db, calls, us)
}

struct JoinAcc {
    db: Vec<u128>,
    uncorrelated_calls: u64,
    uncorrelated_us: u128,
    /// The message-id table, reused from partition to partition.
    table: HashTable<IdEntry>,
    /// Further groups of ids seen with more than one, reused likewise.
    more: Vec<Vec<u32>>,
}

/// One message id in the join.
struct IdEntry {
    hash: u64,
    off: u64,
    src: u32,
    len: u32,
    db_us: u64,
    db_calls: u32,
    /// First service group carrying this id, or [`NO_GROUP`].
    group: u32,
    /// Index into the side list of further groups, or [`NO_GROUP`]; rare (ids reused across
    /// operations or periods).
    more: u32,
}

fn id_bytes(bufs: &[Buf], src: u32, off: u64, len: u32) -> &[u8] {
    let start = off as usize;
    bufs.get(src as usize)
        .and_then(|b| b.bytes().get(start..start + len as usize))
        .unwrap_or(&[])
}

fn join_partition(
    p: usize,
    outs: &[(usize, ChunkOut)],
    group_maps: &[Vec<u32>],
    bufs: &[Buf],
    acc: &mut JoinAcc,
) {
    let records: usize = outs.iter().map(|(_, o)| o.ids[p].len()).sum();
    if records == 0 {
        return;
    }
    // The table and side lists of the thread's previous partition, emptied: their memory is
    // already mapped (a new table per partition was a tenth of the run's page faults).
    let table = &mut acc.table;
    table.clear();
    table.reserve(records, |e| e.hash);
    let more = &mut acc.more;
    more.clear();
    for ((_, out), group_map) in outs.iter().zip(group_maps) {
        for rec in &out.ids[p] {
            let bytes = id_bytes(bufs, rec.src, rec.off, rec.len);
            let entry = table
                .entry(
                    rec.hash,
                    |e| {
                        e.hash == rec.hash
                            && e.len == rec.len
                            && same_bytes(id_bytes(bufs, e.src, e.off, e.len), bytes)
                    },
                    |e| e.hash,
                )
                .or_insert_with(|| IdEntry {
                    hash: rec.hash,
                    off: rec.off,
                    src: rec.src,
                    len: rec.len,
                    db_us: 0,
                    db_calls: 0,
                    group: NO_GROUP,
                    more: NO_GROUP,
                })
                .into_mut();
            entry.db_us = entry.db_us.saturating_add(rec.db_us);
            entry.db_calls = entry.db_calls.saturating_add(rec.db_calls);
            if rec.group == NO_GROUP {
                continue;
            }
            let Some(&group) = group_map.get(rec.group as usize) else {
                continue;
            };
            if entry.group == NO_GROUP {
                entry.group = group;
            } else if entry.group != group {
                if entry.more == NO_GROUP {
                    entry.more = more.len() as u32;
                    more.push(Vec::new());
                }
                let list = &mut more[entry.more as usize];
                if !list.contains(&group) {
                    list.push(group);
                }
            }
        }
    }
    for e in table.iter() {
        if e.group == NO_GROUP {
            acc.uncorrelated_calls += u64::from(e.db_calls);
            acc.uncorrelated_us += u128::from(e.db_us);
            continue;
        }
        acc.db[e.group as usize] += u128::from(e.db_us);
        if let Some(list) = more.get(e.more as usize) {
            for &g in list {
                acc.db[g as usize] += u128::from(e.db_us);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(input: &[u8], block: usize, max_line: usize) -> Vec<Option<Vec<u8>>> {
        let (tx, rx) = mpsc::sync_channel(1000);
        decompress_blocks(&mut &input[..], &tx, block, max_line).unwrap();
        drop(tx);
        rx.into_iter()
            .map(|b| match b.unwrap() {
                Block::Lines(data) => Some(data),
                Block::TooLong => None,
            })
            .collect()
    }

    #[test]
    fn streamed_blocks_end_at_line_boundaries() {
        let input = b"one\ntwo\nthree\nfour";
        let got = blocks(input, 5, 100);
        assert!(got.iter().all(Option::is_some));
        let joined: Vec<u8> = got.iter().flatten().flatten().copied().collect();
        assert_eq!(joined, input);
        for b in got.iter().flatten().take(got.len() - 1) {
            assert_eq!(b.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn overlong_streamed_lines_are_dropped_not_buffered() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend_from_slice(b"\nafter\n");
        let got = blocks(&input, 16, 64);
        assert!(got.contains(&None), "one line too long");
        let kept: Vec<u8> = got.iter().flatten().flatten().copied().collect();
        assert_eq!(kept, b"short\nafter\n");
    }

    #[test]
    fn line_chunks_cover_the_input_at_line_boundaries() {
        let data = b"aaaa\nbb\ncccccc\nd\n\ne";
        for size in 1..data.len() + 2 {
            let chunks = line_chunks(data, size);
            assert_eq!(chunks.first().map(|c| c.0), Some(0));
            assert_eq!(chunks.last().map(|c| c.1), Some(data.len()));
            for pair in chunks.windows(2) {
                assert_eq!(pair[0].1, pair[1].0);
                assert_eq!(data[pair[0].1 - 1], b'\n');
            }
        }
        assert!(line_chunks(b"", 4).is_empty());
    }
}
