//! `type = "logfile"`: one JSON line per notification, for systems that read alerts from files.
//!
//! Each line is the [`Notification`] as JSON (the same document the webhook channel posts),
//! terminated by `\n`, appended and fsync'd before `send` returns, so a delivered notification
//! survives a crash. The parent directory is created when missing.
//!
//! Rotation: when appending a line would make the file larger than `max_bytes`, the file is
//! first renamed to `<stem>-<UTC time YYYYMMDDTHHMMSS.mmmZ>.<ext>` in the same directory
//! (`alerts.log` → `alerts-20240502T081530.123Z.log`) and a new file is started; of the
//! rotated files only the newest `keep` are kept. Rotated names sort by time, and two
//! rotations never get the same name (the later one is moved on by a millisecond). A single
//! line larger than `max_bytes` still gets written, alone in its file.
//!
//! One lock is held from rotation to fsync and is moved into the blocking task, so concurrent
//! sends — even a cancelled one — never interleave: readers only ever see whole lines.
//! The file is opened for each line, so a reader that moves or deletes it loses nothing.

use crate::{Delivered, Notifier, NotifyError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;
use vitals_core::notify::{LogfileSpec, Notification};

pub struct LogfileNotifier {
    id: String,
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// The time of the last rotation, so that the next name is strictly later.
    state: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl LogfileNotifier {
    pub fn new(id: &str, spec: &LogfileSpec) -> LogfileNotifier {
        LogfileNotifier {
            id: id.to_string(),
            path: spec.path.clone(),
            max_bytes: spec.max_bytes,
            keep: usize::try_from(spec.keep).unwrap_or(usize::MAX),
            state: Arc::new(Mutex::new(None)),
        }
    }
}

#[async_trait]
impl Notifier for LogfileNotifier {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        let mut line = serde_json::to_vec(n)
            .map_err(|e| NotifyError::Permanent(format!("cannot encode notification: {e}")))?;
        line.push(b'\n');
        let guard = self.state.clone().lock_owned().await;
        let path = self.path.clone();
        let (max_bytes, keep) = (self.max_bytes, self.keep);
        let shown = self.path.display().to_string();
        let written = line.len();
        let rotated = tokio::task::spawn_blocking(move || {
            let mut last = guard;
            append(&path, &line, max_bytes, keep, &mut last)
        })
        .await
        .map_err(|e| NotifyError::Transient(format!("{shown}: write task failed: {e}")))?
        .map_err(|e| NotifyError::Transient(format!("{shown}: {e}")))?;
        let detail = match rotated {
            Some(to) => format!(
                "appended {written} bytes after rotating to {}",
                to.display()
            ),
            None => format!("appended {written} bytes"),
        };
        Ok(Delivered {
            recipients: vec![self.path.display().to_string()],
            detail,
        })
    }
}

/// Rotates when needed, appends and fsyncs. Returns the rotated file's new path, if any.
fn append(
    path: &Path,
    line: &[u8],
    max_bytes: u64,
    keep: usize,
    last: &mut Option<DateTime<Utc>>,
) -> std::io::Result<Option<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let size = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let mut rotated = None;
    if size > 0 && size.saturating_add(line.len() as u64) > max_bytes {
        let to = rotated_name(path, &dir, Utc::now(), last);
        fs::rename(path, &to)?;
        prune(path, &dir, keep)?;
        rotated = Some(to);
    }
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line)?;
    f.sync_data()?;
    if rotated.is_some() {
        // Make the rename and the new file's directory entry durable too.
        File::open(&dir)?.sync_all()?;
    }
    Ok(rotated)
}

fn stem_ext(path: &Path) -> (String, Option<String>) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path.extension().map(|s| s.to_string_lossy().into_owned());
    (stem, ext)
}

/// `<stem>-<YYYYMMDDTHHMMSS.mmmZ>.<ext>`, strictly later than the previous rotation and not
/// yet taken.
fn rotated_name(
    path: &Path,
    dir: &Path,
    now: DateTime<Utc>,
    last: &mut Option<DateTime<Utc>>,
) -> PathBuf {
    let (stem, ext) = stem_ext(path);
    let mut t = match *last {
        Some(l) if l >= now => l + chrono::Duration::milliseconds(1),
        _ => now,
    };
    loop {
        let ts = t.format("%Y%m%dT%H%M%S%.3fZ");
        let name = match &ext {
            Some(e) => format!("{stem}-{ts}.{e}"),
            None => format!("{stem}-{ts}"),
        };
        let candidate = dir.join(name);
        if !candidate.exists() {
            *last = Some(t);
            return candidate;
        }
        t += chrono::Duration::milliseconds(1);
    }
}

/// Whether `name` is a rotated file of `path`: `<stem>-<timestamp>[.<ext>]`.
fn is_rotated(name: &str, stem: &str, ext: Option<&str>) -> bool {
    let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let ts = match ext {
        Some(e) => match rest.strip_suffix(e).and_then(|r| r.strip_suffix('.')) {
            Some(ts) => ts,
            None => return false,
        },
        None => rest,
    };
    chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%S%.3fZ").is_ok() && ts.len() == 20
}

/// Deletes the oldest rotated files beyond `keep`; names sort chronologically.
fn prune(path: &Path, dir: &Path, keep: usize) -> std::io::Result<()> {
    let (stem, ext) = stem_ext(path);
    let mut rotated: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_rotated(name, &stem, ext.as_deref()))
        .collect();
    rotated.sort();
    let excess = rotated.len().saturating_sub(keep);
    for name in &rotated[..excess] {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl crate::Build for vitals_core::notify::LogfileSpec {
    fn build(&self, id: &str) -> Result<std::sync::Arc<dyn crate::Notifier>, String> {
        Ok(std::sync::Arc::new(LogfileNotifier::new(id, self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_are_recognised() {
        assert!(is_rotated(
            "alerts-20240502T081530.123Z.log",
            "alerts",
            Some("log")
        ));
        assert!(is_rotated("alerts-20240502T081530.123Z", "alerts", None));
        assert!(!is_rotated("alerts.log", "alerts", Some("log")));
        assert!(!is_rotated(
            "alerts-old-20240502T081530.123Z.log",
            "alerts",
            Some("log")
        ));
        assert!(!is_rotated("alerts-20240502.log", "alerts", Some("log")));
        assert!(!is_rotated(
            "alerts-20240502T081530.123Z.log",
            "alerts",
            Some("txt")
        ));
    }

    #[test]
    fn names_move_on_when_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let now = DateTime::parse_from_rfc3339("2024-05-02T08:15:30.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut last = None;
        let first = rotated_name(&path, dir.path(), now, &mut last);
        assert_eq!(first.file_name().unwrap(), "a-20240502T081530.123Z.log");
        // Same clock reading again: strictly later.
        let second = rotated_name(&path, dir.path(), now, &mut last);
        assert_eq!(second.file_name().unwrap(), "a-20240502T081530.124Z.log");
        // A file already there (e.g. from another process) is skipped.
        fs::write(dir.path().join("a-20240502T081530.200Z.log"), "x").unwrap();
        let mut last = None;
        let later = DateTime::parse_from_rfc3339("2024-05-02T08:15:30.200Z")
            .unwrap()
            .with_timezone(&Utc);
        let third = rotated_name(&path, dir.path(), later, &mut last);
        assert_eq!(third.file_name().unwrap(), "a-20240502T081530.201Z.log");
    }
}
