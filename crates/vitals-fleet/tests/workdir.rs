//! broker-monitor's working directory, file by file, against the emulated broker: raw broker
//! timestamps, Python's `date` and error-rate formats, daily values against the previous row
//! (across New Year), the error merge, resource files and change logs, rotation by year.

mod support;

use support::*;
use vitals_fleet::runner::{After, Facts};

fn stats_xml(start: &str, c: [i64; 4], write: &str, reject: Option<&str>, errors: &str) -> String {
    format!(
        "<import-statistics><start>{start}</start><last-write>{write}</last-write>{}<imported>{}</imported><updated>{}</updated><invalid>{}</invalid><failed>{}</failed><last-errors>{errors}</last-errors></import-statistics>",
        reject.map(|r| format!("<last-reject>{r}</last-reject>")).unwrap_or_default(),
        c[0], c[1], c[2], c[3]
    )
}

struct Dir {
    f: Fixture,
    after: After,
    root: tempfile::TempDir,
}

impl Dir {
    async fn new() -> Dir {
        let f = fixture(Options::default()).await;
        let root = tempfile::tempdir().unwrap();
        let cfg = vitals_config::Config::parse(
            &format!(
                "[broker]\nurl = \"{}\"\napi_key = \"k\"\nworking_dir = {:?}\n",
                f.broker.url(),
                root.path().display().to_string()
            ),
            &|_| None,
        )
        .unwrap();
        let after = After::new(cfg.broker.as_ref().unwrap()).unwrap();
        Dir { f, after, root }
    }

    async fn collect(&mut self, now: &str) {
        let now = t(now);
        let c = self.f.collect(now).await;
        self.after.run(now, &Facts::of(&c), &self.f.store).await;
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn exists(&self, rel: &str) -> bool {
        self.root.path().join(rel).exists()
    }
}

const START: &str = "2024-12-01T08:00:00.123+01:00";
const HEADER: &str = "date;last_contact;last_start;last_write;last_reject;imported;updated;invalid;failed;error_rate;daily_imported;daily_updated;daily_invalid;daily_failed;daily_error_rate";

#[tokio::test]
async fn files_as_broker_monitor_writes_them() {
    let mut d = Dir::new().await;
    d.f.broker.add_node(1, "Eins");
    d.f.broker.set_contact(1, Some(t("2024-12-30T05:59:00Z")));
    d.f.broker.set_raw(
        1,
        "stats",
        &stats_xml(
            START,
            [100, 5, 3, 1],
            "2024-12-30T06:59:00.000+01:00",
            None,
            "<error timestamp=\"2024-12-29T10:00:00.000+01:00\">Bad CDA; &quot;x&quot;</error>\
             <error repeats=\"2\" timestamp=\"2023-12-31T23:00:00.000+01:00\">last year</error>",
        ),
    );
    d.f.broker.set_raw(
        1,
        "versions",
        "<properties><comment>versions</comment><entry key=\"os\">Ubuntu</entry><entry key=\"java\">11</entry><entry key=\"dwh-j2ee\">dwh-j2ee-1.5.1</entry><entry key=\"x\"/><entry key=\"note\">a\nb ä</entry></properties>",
    );
    d.f.broker.set_raw(1, "python", "<properties><entry");
    d.collect("2024-12-30T06:00:01.500Z").await;

    assert_eq!(
        d.read("1/1_stats_2024.csv"),
        format!("{HEADER}\n2024-12-30 06:00:01.500000+00:00;2024-12-30T05:59:00.000Z;{START};2024-12-30T06:59:00.000+01:00;-;100;5;3;1;3.67;-;-;-;-;-\n")
    );
    assert_eq!(
        d.read("1/1_errors_2024.csv"),
        "timestamp;repeats;content\n2024-12-29T10:00:00.000+01:00;1;\"Bad CDA; \"\"x\"\"\"\n"
    );
    assert_eq!(
        d.read("1/1_versions.txt"),
        r#"{"os": "Ubuntu", "java": "11", "dwh-j2ee": "dwh-j2ee-1.5.1", "x": "-", "note": "ab \u00e4"}"#
    );
    assert_eq!(
        d.read("1/1_rscript.txt"),
        "{}",
        "a 404 is an empty resource"
    );
    assert!(!d.exists("1/1_python.txt"), "a failed fetch writes nothing");
    assert!(
        !d.exists("1/1_log_versions.log"),
        "no log before there is a .txt"
    );

    // The next day: counters against yesterday's row, a reject, the errors merged.
    d.f.broker.set_contact(1, Some(t("2024-12-31T05:00:00Z")));
    d.f.broker.set_raw(
        1,
        "stats",
        &stats_xml(
            START,
            [150, 5, 13, 1],
            "2024-12-31T06:00:00.000+01:00",
            Some("2024-12-31T01:00:00+01:00"),
            "<error repeats=\"3\" timestamp=\"2024-12-31T00:30:00.000+01:00\">Bad CDA; &quot;x&quot;</error>\
             <error timestamp=\"2024-12-30T12:00:00.000+01:00\">second</error>",
        ),
    );
    d.f.broker.set_raw(
        1,
        "versions",
        "<properties><entry key=\"os\">Ubuntu</entry><entry key=\"java\">17</entry><entry key=\"kernel\">6.1</entry><entry key=\"dwh-j2ee\">dwh-j2ee-1.5.1</entry><entry key=\"note\">a\nb ä</entry></properties>",
    );
    d.collect("2024-12-31T06:00:00Z").await;
    let row2 = format!("2024-12-31 06:00:00+00:00;2024-12-31T05:00:00.000Z;{START};2024-12-31T06:00:00.000+01:00;2024-12-31T01:00:00+01:00;150;5;13;1;8.28;50;0;10;0;16.67");
    let stats = d.read("1/1_stats_2024.csv");
    assert_eq!(stats.lines().nth(2), Some(row2.as_str()), "{stats}");
    assert_eq!(
        d.read("1/1_errors_2024.csv"),
        "timestamp;repeats;content\n2024-12-31T00:30:00.000+01:00;3;\"Bad CDA; \"\"x\"\"\"\n2024-12-30T12:00:00.000+01:00;1;second\n"
    );
    assert_eq!(
        d.read("1/1_log_versions.log"),
        "2024-12-31 06:00:00+00:00 : [java] 11 --> 17\n\
         2024-12-31 06:00:00+00:00 : [kernel] NEW --> 6.1\n\
         2024-12-31 06:00:00+00:00 : [x] - --> DELETED\n"
    );

    // A second collection the same day replaces the day's row.
    d.f.broker.set_raw(
        1,
        "stats",
        &stats_xml(
            START,
            [160, 5, 13, 1],
            "2024-12-31T06:00:00.000+01:00",
            None,
            "",
        ),
    );
    d.collect("2024-12-31T07:00:00Z").await;
    let stats = d.read("1/1_stats_2024.csv");
    assert_eq!(stats.lines().count(), 3, "{stats}");
    assert!(
        stats
            .lines()
            .nth(2)
            .unwrap()
            .ends_with(";160;5;13;1;7.82;60;0;10;0;14.29"),
        "{stats}"
    );
    assert_eq!(
        d.read("1/1_log_versions.log").lines().count(),
        3,
        "nothing changed, nothing logged"
    );

    // New Year: a new file; the daily values against last year's last row.
    d.f.broker.set_raw(
        1,
        "stats",
        &stats_xml(
            START,
            [170, 5, 13, 1],
            "2025-01-01T06:00:00.000+01:00",
            None,
            "",
        ),
    );
    d.collect("2025-01-01T07:00:00Z").await;
    let stats = d.read("1/1_stats_2025.csv");
    assert_eq!(stats.lines().count(), 2, "{stats}");
    assert!(
        stats
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(";170;5;13;1;7.41;10;0;0;0;0.00"),
        "{stats}"
    );
    assert_eq!(d.read("1/1_errors_2025.csv"), "timestamp;repeats;content\n");
    assert_eq!(
        d.read("1/1_stats_2024.csv").lines().count(),
        3,
        "last year's file stays"
    );

    // A restart (another start): no daily values.
    d.f.broker.set_raw(
        1,
        "stats",
        &stats_xml(
            "2025-01-01T12:00:00+01:00",
            [3, 0, 0, 0],
            "2025-01-02T06:00:00.000+01:00",
            None,
            "",
        ),
    );
    d.collect("2025-01-02T07:00:00Z").await;
    let stats = d.read("1/1_stats_2025.csv");
    assert!(
        stats
            .lines()
            .nth(2)
            .unwrap()
            .ends_with(";3;0;0;0;0.00;-;-;-;-;-"),
        "{stats}"
    );
    // Nothing left behind but the files.
    let mut names: Vec<String> = std::fs::read_dir(d.root.path().join("1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "1_errors_2024.csv",
            "1_errors_2025.csv",
            "1_import-scripts.txt",
            "1_log_versions.log",
            "1_rscript.txt",
            "1_stats_2024.csv",
            "1_stats_2025.csv",
            "1_versions.txt"
        ]
    );
}
