//! The log probe on real files: appends, rotation (rename + new file), truncation in place,
//! a missing file, thresholds, quotes and excludes — as MinLog2's application and server logs
//! are watched.

use std::io::Write;
use std::path::Path;
use std::time::Duration;
use vitals_core::spec::{LogSpec, ProbeSpec};
use vitals_core::Status;
use vitals_probe::{Outcome, Prober};

fn spec(file: &Path) -> LogSpec {
    LogSpec {
        file: file.to_path_buf(),
        patterns: vec![" ERROR ".into(), "SQLException".into()],
        exclude: vec!["CleanUpController".into()],
        warn_count: Some(1),
        crit_count: Some(3),
        quote_lines: 2,
        max_read_bytes: 1024 * 1024,
    }
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

async fn run(p: &Prober, key: Option<&str>, s: &LogSpec) -> Outcome {
    p.run_check(key, &ProbeSpec::Log(s.clone()), Duration::from_secs(5))
        .await
}

fn value(o: &Outcome, name: &str) -> f64 {
    o.values
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.value)
        .unwrap_or(-1.0)
}

const INFO: &str = "2017-06-27 11:32:00,031 INFO [dk.nsi.minlog2.lookup.controller.CleanUpController] Starting cleanup\n";
const ERROR: &str =
    "2017-06-27 11:32:01,100 ERROR [dk.nsi.minlog2.lookup.service.LookupService] lookup failed\n";
const SQL: &str =
    "2017-06-27 11:32:02,200 WARN [org.hibernate] java.sql.SQLException: Connection refused\n";
const CLEANUP_ERROR: &str = "2017-06-27 11:32:03,300 ERROR [dk.nsi.minlog2.lookup.controller.CleanUpController] batch retried\n";

#[tokio::test]
async fn counts_matching_lines_per_run_through_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("minlog2-lookup-application.log");
    append(&path, ERROR); // history before the first run does not count
    let s = spec(&path);
    let p = Prober::new();
    let key = Some("minlog2/application-log");

    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(
        o.reason,
        format!("following {} from its end", path.display())
    );

    append(&path, INFO);
    append(&path, CLEANUP_ERROR);
    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(o.reason, "no matching line");
    assert_eq!((value(&o, "lines"), value(&o, "matches")), (2.0, 0.0));

    append(&path, ERROR);
    append(&path, INFO);
    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Warn);
    assert_eq!(o.reason, format!("1 matching line: {:?}", ERROR.trim_end()));

    // Rotation: the rest of the old file, then the new file from its start.
    append(&path, SQL);
    std::fs::rename(&path, dir.path().join("minlog2-lookup-application.log.1")).unwrap();
    append(&path, ERROR);
    append(&path, ERROR);
    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Crit, "{}", o.reason);
    assert_eq!(value(&o, "matches"), 3.0);
    // Two quoted at most; in file order.
    assert_eq!(
        o.reason,
        format!(
            "3 matching lines: {:?}, {:?}",
            SQL.trim_end(),
            ERROR.trim_end()
        )
    );

    // Truncation in place (copytruncate): reading starts again at the top.
    std::fs::write(&path, SQL).unwrap();
    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Warn, "{}", o.reason);
    assert_eq!(value(&o, "matches"), 1.0);

    // Gone: crit, naming the file.
    std::fs::remove_file(&path).unwrap();
    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(o.reason, format!("file {} missing", path.display()));
    // Back: read from its start.
    append(&path, ERROR);
    let o = run(&p, key, &s).await;
    assert_eq!(o.status, Status::Warn, "{}", o.reason);
}

#[tokio::test]
async fn one_off_runs_read_the_recent_end_and_reads_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    for _ in 0..100 {
        append(&path, INFO);
    }
    append(&path, ERROR);
    let mut s = spec(&path);
    let p = Prober::new();
    let o = run(&p, None, &s).await;
    assert_eq!(o.status, Status::Warn, "{}", o.reason);
    assert_eq!(value(&o, "matches"), 1.0);
    assert_eq!(p.log_followers(), 0, "one-off runs keep no follower");

    // A scheduled check reading at most 4 KiB per run catches up over several runs.
    s.max_read_bytes = 4096;
    let key = Some("a/b");
    run(&p, key, &s).await; // starts at the end
    for _ in 0..100 {
        append(&path, ERROR);
    }
    let mut total = 0.0;
    let mut runs = 0;
    loop {
        let o = run(&p, key, &s).await;
        total += value(&o, "matches");
        runs += 1;
        // Whole lines are counted: a run may finish the line the previous one began.
        assert!(value(&o, "bytes") <= (4096 + ERROR.len()) as f64);
        if value(&o, "backlog") == 0.0 {
            break;
        }
        assert!(
            o.reason.ends_with("(more to read next run)"),
            "{}",
            o.reason
        );
        assert!(runs < 10, "catches up");
    }
    assert_eq!(total, 100.0);
    assert!(runs > 1);
    // Forgetting a removed check drops its follower.
    assert_eq!(p.log_followers(), 1);
    p.retain_checks(&|k| k != "a/b");
    assert_eq!(p.log_followers(), 0);
}

#[tokio::test]
async fn a_missing_file_on_a_one_off_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.log");
    let o = run(&Prober::new(), None, &spec(&path)).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(o.reason, format!("file {} missing", path.display()));
}
