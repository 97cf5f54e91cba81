//! The log-file channel on a real file system: whole JSON lines, size rotation with
//! timestamped names, `keep`, and concurrent writers.

mod support;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::{alert, notification};
use vitals_core::notify::{LogfileSpec, Notification, NotificationKind, NotifierSpec};
use vitals_notify::Notifier;

fn build(path: &Path, max_bytes: u64, keep: u32) -> Arc<dyn Notifier> {
    vitals_notify::build(
        "log",
        &NotifierSpec::Logfile(LogfileSpec {
            path: path.to_path_buf(),
            max_bytes,
            keep,
        }),
    )
    .unwrap()
}

fn note(i: usize, padding: usize) -> Notification {
    let mut a = alert(i as i64);
    a.reason = "x".repeat(padding);
    notification(&format!("n{i:04}"), NotificationKind::Firing, vec![a])
}

/// `alerts-YYYYMMDDTHHMMSS.mmmZ.log` files in `dir`, oldest first.
fn rotated(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            let Some(ts) = name
                .strip_prefix("alerts-")
                .and_then(|r| r.strip_suffix(".log"))
            else {
                return false;
            };
            assert_eq!(ts.len(), 20, "{name}");
            chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%S%.3fZ")
                .unwrap_or_else(|e| panic!("{name}: not a timestamped name ({e})"));
            true
        })
        .collect();
    v.sort();
    v
}

/// The ids of the whole lines of a file; panics on a torn or foreign line.
fn ids(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{path:?} ends mid-line"
    );
    text.lines()
        .map(|l| {
            let n: Notification = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{path:?}: torn line ({e}): {l:.80}"));
            n.id
        })
        .collect()
}

#[tokio::test]
async fn appends_whole_lines_creating_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool/alerts/alerts.log");
    let log = build(&path, 1024 * 1024, 3);
    let n = note(1, 10);
    let d = log.send(&n).await.unwrap();
    assert_eq!(d.recipients, [path.display().to_string()]);
    assert!(d.detail.starts_with("appended "), "{}", d.detail);
    log.send(&note(2, 10)).await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let first: Notification = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first, n);
    assert_eq!(ids(&path), ["n0001", "n0002"]);
}

#[tokio::test]
async fn rotates_by_size_with_timestamped_names_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.log");
    let line_len = serde_json::to_vec(&note(0, 600)).unwrap().len() as u64 + 1;
    // Two lines fit, a third rotates.
    let max = line_len * 2 + line_len / 2;
    let log = build(&path, max, 3);
    let mut sent = Vec::new();
    for i in 0..11 {
        let n = note(i, 600);
        sent.push(n.id.clone());
        let d = log.send(&n).await.unwrap();
        // Every third line starts a new file.
        assert_eq!(
            d.detail.contains("rotating to"),
            i > 0 && i % 2 == 0,
            "send {i}: {}",
            d.detail
        );
        assert!(fs::metadata(&path).unwrap().len() <= max);
    }
    let old = rotated(dir.path());
    // Five rotations happened (before sends 2, 4, 6, 8, 10); three are kept.
    assert_eq!(old.len(), 3, "{old:?}");
    // What is kept, oldest first, then the current file, is the unbroken tail of what was
    // sent: nothing lost or reordered among the kept files.
    let mut kept: Vec<String> = old.iter().flat_map(|p| ids(p)).collect();
    kept.extend(ids(&path));
    assert_eq!(kept, sent[sent.len() - kept.len()..]);
    assert_eq!(kept.len(), 7);
    for p in &old {
        assert!(fs::metadata(p).unwrap().len() <= max);
    }
}

#[tokio::test]
async fn keep_zero_deletes_every_rotated_file_and_big_lines_stand_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.log");
    let log = build(&path, 100, 0);
    for i in 0..3 {
        // Each line is larger than max_bytes: written anyway, alone in its file.
        log.send(&note(i, 200)).await.unwrap();
        assert_eq!(ids(&path), [format!("n{i:04}")]);
        assert!(rotated(dir.path()).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.log");
    let log = build(&path, 64 * 1024 * 1024, 10);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                // Lines of different lengths make a torn write visible.
                log.send(&note(t * 1000 + i, (t * 37 + i * 11) % 3000))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = ids(&path);
    assert_eq!(got.len(), 320);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 320);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_while_rotating_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.log");
    let max = 16 * 1024;
    let log = build(&path, max, 1000);
    let mut tasks = Vec::new();
    for t in 0..6 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                log.send(&note(t * 1000 + i, (t * 53 + i * 7) % 1500))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let files = rotated(dir.path());
    assert!(files.len() > 3, "expected rotations, got {files:?}");
    let mut all: Vec<String> = files.iter().flat_map(|p| ids(p)).collect();
    all.extend(ids(&path));
    assert_eq!(all.len(), 240);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 240);
    for p in files.iter().chain([&path]) {
        assert!(fs::metadata(p).unwrap().len() <= max, "{p:?}");
    }
}
