//! broker-monitor's working directory (`[broker] working_dir`), kept current after every
//! collection, so that operators' own scripts that read it keep working. The layout and formats
//! are the original's (`aktin-original.md` §1; `docs/fleet.md` lists every difference):
//!
//! - `<id>/<id>_stats_<YYYY>.csv`: one row per UTC day, rewritten every collection (a second
//!   collection on the same day replaces the day's row). `date` is Python's `str()` of the UTC
//!   time (`2024-03-05 06:00:01.123000+00:00`), `last_*` the broker's raw text (`-` for an absent
//!   write or reject), `error_rate` as broker-monitor computes it (`100.0`, `-`, or two decimals),
//!   daily values against the previous row (or last year's last row) only if it is from yesterday
//!   and its `last_start` is the same to the second.
//! - `<id>/<id>_errors_<YYYY>.csv`: the current year's errors keyed by their text (new → added,
//!   other `repeats` → replaced, else unchanged), newest first by the raw timestamp text.
//! - `<id>/<id>_<resource>.txt`: the resource as a JSON object (Python's `json.dumps` form, in
//!   the broker's key order), `-` for empty values, line breaks removed; `{}` after a 404.
//! - `<id>/<id>_log_<resource>.log`: one line per added, changed or removed key, appended.
//! - `<id>/<id>_sent_mails.log`: `<time> : Sent mail for status <STATUS> to node id <id>`.
//! - `tracking_OFFLINE.json`, `tracking_NO_IMPORTS.json`, `tracking_DWH_OUTDATED.json`: node id
//!   → time of the last mail, for the states a node is in.
//!
//! Every file is written to a temporary name in its directory and, after one filesystem sync for
//! the whole collection, renamed over the old one ([`Batch`]), so a reader never sees half a
//! file; files whose content did not change are not touched.
//! CSVs rotate by UTC year (the file name carries it); logs are never rotated (as in the
//! original). A file that cannot be read back as expected is left alone and reported.

use crate::collector::{NodeRaw, RawResource};
use crate::daily::{date_string, day_of, year_of, DAY_MS};
use crate::xml::{ImportStats, RawTimes};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use vitals_core::Timestamp;

/// The stats CSV's columns, in order.
pub const STATS_COLUMNS: [&str; 15] = [
    "date",
    "last_contact",
    "last_start",
    "last_write",
    "last_reject",
    "imported",
    "updated",
    "invalid",
    "failed",
    "error_rate",
    "daily_imported",
    "daily_updated",
    "daily_invalid",
    "daily_failed",
    "daily_error_rate",
];
pub const ERROR_COLUMNS: [&str; 3] = ["timestamp", "repeats", "content"];

/// Largest file read back (a year of daily rows is ~80 KB; logs grow slowly).
const MAX_READ: u64 = 64 * 1024 * 1024;

/// Python's `str()` of a UTC `datetime`: `2024-03-05 06:00:01.123000+00:00`, without the
/// fraction when it is zero (as broker-monitor's `date` column and log lines show times).
pub fn py_time(t: Timestamp) -> String {
    let dt = t.to_datetime();
    if t.0.rem_euclid(1000) == 0 {
        dt.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    }
}

/// broker-monitor's error rate text: `100.0` when something failed and nothing succeeded, `-`
/// when nothing happened, else (invalid + failed) / (all four) · 100 with two decimals, computed
/// and rounded as Python does (binary floating point, correctly rounded).
pub fn py_rate(imported: i64, updated: i64, invalid: i64, failed: i64) -> String {
    let s = i128::from(imported) + i128::from(updated);
    let f = i128::from(invalid) + i128::from(failed);
    if f > 0 && s == 0 {
        return "100.0".into();
    }
    if f == 0 && s == 0 {
        return "-".into();
    }
    if s + f == 0 {
        // Python would divide by zero here (counters that went backwards); say "unknown".
        return "-".into();
    }
    let rate = f as f64 / (s + f) as f64 * 100.0;
    format!("{rate:.2}")
}

/// Python's `json.dumps` of a string: ASCII only (`\uXXXX`, surrogate pairs beyond the BMP).
fn py_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps` of a `dict` of strings, in the given order: `{"a": "1", "b": "2"}`.
pub fn py_json(entries: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        py_json_str(k, &mut out);
        out.push_str(": ");
        py_json_str(v, &mut out);
    }
    out.push('}');
    out
}

/// A JSON object in document order (serde_json's own map sorts its keys).
struct OrderedObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedObject, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON object file as (key, text) pairs in file order; `None` if it is not one.
fn read_json_object(text: &str) -> Option<Vec<(String, String)>> {
    let OrderedObject(pairs) = serde_json::from_str(text).ok()?;
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => "-".to_string(),
                    other => other.to_string(),
                };
                (k, value)
            })
            .collect(),
    )
}

/// Files written together: each to a temporary name next to it, then all made durable with
/// one filesystem sync, then renamed over the old ones — so readers see the old or the new file,
/// never a part, and a thousand files cost one sync rather than a thousand. Unchanged content is
/// not written. Dropped without [`Batch::commit`], the temporary files are removed.
#[derive(Default)]
pub struct Batch {
    /// (temporary file, final path)
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Batch {
    /// Writes `bytes` for `path` to a temporary file; `false` when the file already holds them.
    pub fn stage(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && std::fs::read(path).is_ok_and(|old| old == bytes)
        {
            return Ok(false);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.staged.push((tmp, path.to_path_buf()));
        Ok(true)
    }

    /// Makes the staged files durable and renames them into place; returns the problems.
    pub fn commit(mut self) -> Vec<String> {
        let staged = std::mem::take(&mut self.staged);
        let mut errors = Vec::new();
        if let Err(e) = sync(&staged) {
            errors.push(format!("syncing the working directory: {e}"));
            for (tmp, _) in &staged {
                let _ = std::fs::remove_file(tmp);
            }
            return errors;
        }
        for (tmp, path) in staged {
            if let Err(e) = std::fs::rename(&tmp, &path) {
                errors.push(format!("{}: {e}", path.display()));
                let _ = std::fs::remove_file(&tmp);
            }
        }
        errors
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Flushes the staged files to disk: one file with `fsync`; many with one `syncfs` of their
/// filesystem (Linux), else `fsync` each.
fn sync(staged: &[(PathBuf, PathBuf)]) -> std::io::Result<()> {
    let Some((first, _)) = staged.first() else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    if staged.len() > 1 {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(first)?;
        // SAFETY: `syncfs` only reads the descriptor, which `f` keeps open for the call.
        let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
        return if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        };
    }
    for (tmp, _) in staged {
        std::fs::File::open(tmp)?.sync_all()?;
    }
    Ok(())
}

/// Writes one file atomically (a batch of one); returns whether it changed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let mut b = Batch::default();
    if !b.stage(path, bytes)? {
        return Ok(false);
    }
    match b.commit().into_iter().next() {
        None => Ok(true),
        Some(e) => Err(std::io::Error::other(e)),
    }
}

/// Reads a file we keep (bounded); `Ok(None)` when it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(m) if m.len() > MAX_READ => {
            return Err(format!(
                "{} is larger than {MAX_READ} bytes; left alone",
                path.display()
            ))
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("{} is not UTF-8; left alone", path.display()))
}

/// Appends lines to a log (rewritten atomically, with the batch).
fn append_lines(batch: &mut Batch, path: &Path, lines: &[String]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = read_text(path)?.unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    batch
        .stage(path, text.as_bytes())
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A `;`-separated CSV with a header: its rows as column → text.
fn read_csv(path: &Path, columns: &[&str]) -> Result<Option<Vec<Vec<String>>>, String> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h == c)
                .ok_or_else(|| format!("{} has no column {c:?}; left alone", path.display()))
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("{}: {e}; left alone", path.display()))?;
        rows.push(
            index
                .iter()
                .map(|&i| rec.get(i).unwrap_or("").to_string())
                .collect(),
        );
    }
    Ok(Some(rows))
}

/// The CSV text of a header and rows, as pandas writes it (`;`, minimal quoting, `\n`).
fn csv_text(columns: &[&str], rows: &[Vec<String>]) -> Result<String, String> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(columns).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(r).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

fn stats_name(id: &str, year: i32) -> String {
    format!("{id}_stats_{year}.csv")
}
fn errors_name(id: &str, year: i32) -> String {
    format!("{id}_errors_{year}.csv")
}

/// The UTC second of a time text, as broker-monitor compares starts (`None`: unreadable).
fn utc_second(text: &str) -> Option<i64> {
    Timestamp::parse(text.trim()).map(|t| t.0.div_euclid(1000))
}

/// One mail that went out for a node (for the sent-mail log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub node: String,
    /// broker-monitor's status name (`OFFLINE`, `NO IMPORTS`, `DWH OUTDATED`).
    pub status: &'static str,
    pub time: Timestamp,
}

/// What one write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Files changed.
    pub files: usize,
    /// Problems (a file that could not be read or written), each naming the file.
    pub errors: Vec<String>,
}

/// The working directory.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    pub fn new(root: impl Into<PathBuf>) -> WorkDir {
        WorkDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A node's folder (node ids are whole numbers: the XML parser refuses others).
    pub fn node_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Writes the files of every node the broker listed at `now`.
    pub fn write_nodes(&self, now: Timestamp, nodes: &[NodeRaw]) -> Written {
        let mut w = Written::default();
        if let Err(e) = std::fs::create_dir_all(&self.root) {
            w.errors.push(format!("{}: {e}", self.root.display()));
            return w;
        }
        let mut batch = Batch::default();
        for n in nodes {
            if n.id.is_empty() || !n.id.bytes().all(|b| b.is_ascii_digit()) {
                w.errors
                    .push(format!("node id {:?} is not a number; skipped", n.id));
                continue;
            }
            let dir = self.node_dir(&n.id);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                w.errors.push(format!("{}: {e}", dir.display()));
                continue;
            }
            let mut step = |r: Result<bool, String>| match r {
                Ok(true) => w.files += 1,
                Ok(false) => {}
                Err(e) => w.errors.push(e),
            };
            if let Some((stats, raw)) = &n.stats {
                step(self.write_stats(&mut batch, &dir, n, now, stats, raw));
                step(self.write_errors(&mut batch, &dir, &n.id, now, stats, raw));
            }
            for (name, r) in &n.resources {
                match self.write_resource(&mut batch, &dir, &n.id, name, r, now) {
                    Ok(c) => w.files += c,
                    Err(e) => w.errors.push(e),
                }
            }
        }
        w.errors.extend(batch.commit());
        w
    }

    fn write_stats(
        &self,
        batch: &mut Batch,
        dir: &Path,
        n: &NodeRaw,
        now: Timestamp,
        stats: &ImportStats,
        raw: &RawTimes,
    ) -> Result<bool, String> {
        let year = year_of(now);
        let path = dir.join(stats_name(&n.id, year));
        let mut rows = read_csv(&path, &STATS_COLUMNS)?.unwrap_or_default();
        let today = date_string(day_of(now));
        if rows
            .last()
            .is_some_and(|r| r[0].get(..10) == Some(today.as_str()))
        {
            rows.pop();
        }
        let previous = match rows.last() {
            Some(r) => Some(r.clone()),
            None => read_csv(&dir.join(stats_name(&n.id, year - 1)), &STATS_COLUMNS)
                .ok()
                .flatten()
                .and_then(|r| r.last().cloned()),
        };
        let counters = [stats.imported, stats.updated, stats.invalid, stats.failed];
        let yesterday = date_string(day_of(now.add_millis(-DAY_MS)));
        let daily: Option<[i64; 4]> = previous.as_ref().and_then(|p| {
            if p[0].get(..10) != Some(yesterday.as_str()) {
                return None;
            }
            let (a, b) = (utc_second(&p[2])?, utc_second(&raw.start)?);
            if a != b {
                return None;
            }
            let mut d = [0i64; 4];
            for (i, slot) in d.iter_mut().enumerate() {
                let before: i64 = p[5 + i].trim().parse().ok()?;
                *slot = counters[i].saturating_sub(before);
            }
            Some(d)
        });
        let mut row = vec![
            py_time(now),
            n.last_contact.clone().unwrap_or_default(),
            raw.start.clone(),
            raw.last_write.clone().unwrap_or_else(|| "-".into()),
            raw.last_reject.clone().unwrap_or_else(|| "-".into()),
        ];
        row.extend(counters.iter().map(i64::to_string));
        row.push(py_rate(counters[0], counters[1], counters[2], counters[3]));
        match daily {
            Some(d) => {
                row.extend(d.iter().map(i64::to_string));
                row.push(py_rate(d[0], d[1], d[2], d[3]));
            }
            None => row.extend(std::iter::repeat_n("-".to_string(), 5)),
        }
        rows.push(row);
        let text = csv_text(&STATS_COLUMNS, &rows)?;
        batch
            .stage(&path, text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn write_errors(
        &self,
        batch: &mut Batch,
        dir: &Path,
        id: &str,
        now: Timestamp,
        stats: &ImportStats,
        raw: &RawTimes,
    ) -> Result<bool, String> {
        let year = year_of(now);
        let path = dir.join(errors_name(id, year));
        let mut rows = read_csv(&path, &ERROR_COLUMNS)?.unwrap_or_default();
        for (i, e) in stats.errors.iter().enumerate() {
            if year_of(e.time) != year {
                continue;
            }
            let ts = raw
                .errors
                .get(i)
                .cloned()
                .unwrap_or_else(|| e.time.to_rfc3339());
            let row = vec![ts, e.repeats.to_string(), e.content.clone()];
            match rows.iter().position(|r| r[2] == e.content) {
                Some(at) if rows[at][1] != row[1] => {
                    rows.remove(at);
                    rows.push(row);
                }
                Some(_) => {}
                None => rows.push(row),
            }
        }
        rows.sort_by(|a, b| b[0].cmp(&a[0]));
        let text = csv_text(&ERROR_COLUMNS, &rows)?;
        batch
            .stage(&path, text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The resource file and its change log; returns the files changed.
    fn write_resource(
        &self,
        batch: &mut Batch,
        dir: &Path,
        id: &str,
        name: &str,
        r: &RawResource,
        now: Timestamp,
    ) -> Result<usize, String> {
        let new: Vec<(String, String)> = match r {
            RawResource::Entries(e) => e
                .iter()
                .map(|(k, v)| {
                    let v: String = v.chars().filter(|c| *c != '\n').collect();
                    (k.clone(), if v.is_empty() { "-".to_string() } else { v })
                })
                .collect(),
            // broker-monitor keeps `{}` for a resource the broker does not have.
            RawResource::NotFound => Vec::new(),
            // A transient failure changes nothing (broker-monitor would log every key as
            // DELETED and then NEW again).
            RawResource::Failed(_) => return Ok(0),
        };
        let txt = dir.join(format!("{id}_{name}.txt"));
        let mut changed = 0;
        if let Some(old_text) = read_text(&txt)? {
            let old = read_json_object(&old_text).unwrap_or_default();
            let old_map: BTreeMap<&str, &str> =
                old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let new_map: BTreeMap<&str, &str> =
                new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let stamp = py_time(now);
            let mut lines = Vec::new();
            for (k, v) in &new {
                match old_map.get(k.as_str()) {
                    Some(o) if *o == v.as_str() => {}
                    Some(o) => lines.push(format!("{stamp} : [{k}] {o} --> {v}")),
                    None => lines.push(format!("{stamp} : [{k}] NEW --> {v}")),
                }
            }
            for (k, o) in &old {
                if !new_map.contains_key(k.as_str()) {
                    lines.push(format!("{stamp} : [{k}] {o} --> DELETED"));
                }
            }
            if !lines.is_empty() {
                append_lines(batch, &dir.join(format!("{id}_log_{name}.log")), &lines)?;
                changed += 1;
            }
        }
        if batch
            .stage(&txt, py_json(&new).as_bytes())
            .map_err(|e| format!("{}: {e}", txt.display()))?
        {
            changed += 1;
        }
        Ok(changed)
    }

    /// Appends the sent-mail log lines of these mails and rewrites the tracking files: per
    /// state, node id → time of its last mail, for the nodes in that state now.
    pub fn write_mails(
        &self,
        sent: &[SentMail],
        tracking: &BTreeMap<&'static str, BTreeMap<String, Timestamp>>,
    ) -> Written {
        let mut w = Written::default();
        if let Err(e) = std::fs::create_dir_all(&self.root) {
            w.errors.push(format!("{}: {e}", self.root.display()));
            return w;
        }
        let mut batch = Batch::default();
        let mut by_node: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for m in sent {
            if m.node.is_empty() || !m.node.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            by_node.entry(&m.node).or_default().push(format!(
                "{} : Sent mail for status {} to node id {}",
                py_time(m.time),
                m.status,
                m.node
            ));
        }
        for (node, lines) in by_node {
            let dir = self.node_dir(node);
            let r = std::fs::create_dir_all(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))
                .and_then(|_| {
                    append_lines(
                        &mut batch,
                        &dir.join(format!("{node}_sent_mails.log")),
                        &lines,
                    )
                });
            match r {
                Ok(()) => w.files += 1,
                Err(e) => w.errors.push(e),
            }
        }
        for state in crate::MAIL_STATES {
            let entries: Vec<(String, String)> = tracking
                .get(state.tracking_file)
                .into_iter()
                .flatten()
                .map(|(node, t)| (node.clone(), py_time(*t)))
                .collect();
            let path = self.root.join(state.tracking_file);
            match batch.stage(&path, py_json(&entries).as_bytes()) {
                Ok(true) => w.files += 1,
                Ok(false) => {}
                Err(e) => w.errors.push(format!("{}: {e}", path.display())),
            }
        }
        w.errors.extend(batch.commit());
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_formats() {
        let t = Timestamp::parse("2024-03-05T06:00:01.123Z").unwrap();
        assert_eq!(py_time(t), "2024-03-05 06:00:01.123000+00:00");
        assert_eq!(py_time(t.add_millis(-123)), "2024-03-05 06:00:01+00:00");
        assert_eq!(py_rate(0, 0, 0, 0), "-");
        assert_eq!(py_rate(0, 0, 3, 0), "100.0");
        assert_eq!(py_rate(90, 0, 10, 0), "10.00");
        assert_eq!(py_rate(2, 0, 1, 0), "33.33");
        assert_eq!(py_rate(1, 0, 2, 0), "66.67");
        // 1/32 = 3.125 exactly: Python's format rounds the tie to even ("3.12").
        assert_eq!(py_rate(31, 0, 1, 0), "3.12");
        // 3/8 = 37.5; 0.375·100 in binary floating point is 37.5 → "37.50".
        assert_eq!(py_rate(5, 0, 3, 0), "37.50");
        assert_eq!(py_rate(-1, 0, 1, 0), "-");
        assert_eq!(
            py_json(&[
                ("os".into(), "Ubuntu 20.04".into()),
                ("x".into(), "ä \"q\" \\ 😀".into())
            ]),
            r#"{"os": "Ubuntu 20.04", "x": "\u00e4 \"q\" \\ \ud83d\ude00"}"#
        );
        assert_eq!(py_json(&[]), "{}");
        let back = read_json_object(r#"{"z": "1", "a": null, "m": "\u00e4"}"#).unwrap();
        assert_eq!(
            back,
            vec![
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "-".to_string()),
                ("m".to_string(), "ä".to_string())
            ]
        );
    }

    #[test]
    fn atomic_writes_skip_unchanged_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.txt");
        assert!(write_atomic(&p, b"one").unwrap());
        assert!(!write_atomic(&p, b"one").unwrap());
        assert!(write_atomic(&p, b"two").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary files left");
    }

    #[test]
    fn csv_quotes_like_pandas() {
        let rows = vec![vec!["2024".to_string(), "1".into(), "a;b \"c\"\nd".into()]];
        assert_eq!(
            csv_text(&ERROR_COLUMNS, &rows).unwrap(),
            "timestamp;repeats;content\n2024;1;\"a;b \"\"c\"\"\nd\"\n"
        );
    }
}
