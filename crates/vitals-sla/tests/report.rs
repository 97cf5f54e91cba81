//! End-to-end tests of `vitals sla` as a user runs it: arguments parsed by clap, real files on
//! disk (plain, gzip'd, CRLF, malformed), the report read back from the JSON/CSV/table output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use vitals_sla::{run, SlaArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SlaArgs,
}

/// Runs the command with `argv` (without the program name): (exit code, stdout).
fn sla(argv: &[&str]) -> anyhow::Result<(i32, String)> {
    let cli = Cli::try_parse_from(std::iter::once("sla").chain(argv.iter().copied()))?;
    let mut out = Vec::new();
    let code = run(&cli.args, &mut out)?;
    Ok((code, String::from_utf8(out)?))
}

fn sla_json(argv: &[&str]) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(argv);
    let (code, out) = sla(&all).unwrap();
    (code, serde_json::from_str(&out).unwrap())
}

/// serde_json's default float parsing may be off by one unit in the last place.
fn assert_close(got: &Value, want: f64) {
    let got = got.as_f64().unwrap();
    assert!((got - want).abs() <= want.abs() * 1e-12, "{got} != {want}");
}

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == name)
        .unwrap_or_else(|| panic!("no operation {name} in {report:#}"))
}

fn line(
    time: &str,
    log_point: &str,
    uniq: &str,
    duration: &str,
    message: &str,
    result: &str,
    soap: &str,
) -> String {
    format!(
        "{time},751 [default task-4] INFO  dk.sdsd.nsp.slalogdata - LogPoint=\"{log_point}\" LogPointUniqId=\"{uniq}\" StartTime=\"{time}.750\" EndTime=\"{time}.750\" Duration=\"{duration}\" MessageId=\"{message}\" RequestSize=0 ReplySize=0 Result={result} ClientIP=\"127.0.0.1\" SOAPOperation=\"{soap}\" SOAPEndpoint=\"http://localhost:8080/x?a=b\" SOAPAction=\"{soap}\" TargetSOAPOperation=\"<empty>\" TargetSOAPEndpoint=\"<empty>\" GenericCallParms(0)= {{  }}\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A hand-made log: two service calls with their DB calls, one orphan DB call.
fn small_log() -> String {
    let t = "2017-06-26 08:22:05";
    let mut s = String::new();
    s += &line(
        t,
        "DB_Operation",
        "lookupPersonName",
        "767 microseconds",
        "M1",
        "OK",
        "<empty>",
    );
    s += &line(
        t,
        "DB_Operation",
        "getLogStatements",
        "632086 microseconds",
        "M1",
        "OK",
        "<empty>",
    );
    s += &line(
        t,
        "minlog2.Get",
        "minlog2.Get",
        "1340017 microseconds",
        "M1",
        "OK",
        "Get",
    );
    s += &line(
        t,
        "DB_Operation",
        "lookupPersonName",
        "1 ms",
        "M2",
        "OK",
        "<empty>",
    );
    // The service line may come before its DB lines.
    s += &line(
        t,
        "minlog2.Get",
        "minlog2.Get",
        "2 s",
        "M2",
        "Connection refused by peer",
        "Get",
    );
    s += &line(
        t,
        "DB_Operation",
        "getLogStatements",
        "0.5 s",
        "M2",
        "OK",
        "<empty>",
    );
    s += &line(
        t,
        "DB_Operation",
        "lookupPersonName",
        "50 us",
        "ORPHAN",
        "OK",
        "<empty>",
    );
    s
}

#[test]
fn db_time_share_on_a_hand_made_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "sla.log", &small_log());
    let (code, r) = sla_json(&[path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(r["lines"], 7);
    assert_eq!(r["malformed"], 0);
    let get = op(&r, "minlog2.Get");
    assert_eq!(get["service"], true);
    assert_eq!(get["count"], 2);
    assert_eq!(get["errors"], 1);
    assert_eq!(get["error_rate"], 0.5);
    assert_eq!(get["p50_us"], 1_340_017);
    assert_eq!(get["max_us"], 2_000_000);
    let db = 767 + 632_086 + 1_000 + 500_000;
    let own = 1_340_017 + 2_000_000;
    assert_close(&get["db_time_share"], db as f64 / own as f64);
    let person = op(&r, "DB_Operation:lookupPersonName");
    assert_eq!(person["service"], false);
    assert_eq!(person["count"], 3);
    assert_eq!(person["p50_us"], 767);
    assert_eq!(person["db_time_share"], Value::Null);
    assert_eq!(op(&r, "DB_Operation:getLogStatements")["max_us"], 632_086);
    assert_eq!(r["uncorrelated_db_calls"], 1);
    assert_eq!(r["uncorrelated_db_us"], 50);
    // Service operations come first.
    assert_eq!(r["operations"][0]["operation"], "minlog2.Get");
    // No --by: no period field.
    assert!(get.get("period").is_none());
}

#[test]
fn targets_met_and_broken_set_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "sla.log", &small_log());
    let p = path.to_str().unwrap();
    // p95 of minlog2.Get is 2 s.
    let (code, r) = sla_json(&["--target", "minlog2.*=95:2.5s", "--target", "*=98:5.5s", p]);
    assert_eq!(code, 0);
    let t = &op(&r, "minlog2.Get")["targets"];
    assert_eq!(t.as_array().unwrap().len(), 2);
    assert_eq!(t[0]["percentile"], 95.0);
    assert_eq!(t[0]["limit_us"], 2_500_000);
    assert_eq!(t[0]["value_us"], 2_000_000);
    assert_eq!(t[0]["met"], true);
    assert_eq!(t[1]["pattern"], "*");
    // The catch-all applies to DB operations too.
    assert_eq!(
        op(&r, "DB_Operation:lookupPersonName")["targets"][0]["met"],
        true
    );
    assert_eq!(r["targets_broken"], 0);

    let (code, r) = sla_json(&["--target", "minlog2.Get=95:1.9s", p]);
    assert_eq!(code, 1);
    assert_eq!(op(&r, "minlog2.Get")["targets"][0]["met"], false);
    assert_eq!(r["targets_broken"], 1);
    assert_eq!(
        op(&r, "DB_Operation:lookupPersonName")["targets"],
        Value::Array(vec![])
    );

    // Inclusive bound: exactly at the limit is met.
    let (code, _) = sla_json(&["--target", "minlog2.Get=95:2s", p]);
    assert_eq!(code, 0);

    // The same from a targets file, after the command-line ones.
    let file = write(
        dir.path(),
        "targets.toml",
        "[[target]]\noperation = \"minlog2.*\"\npercentile = 50\nwithin = \"1s\"\n",
    );
    let (code, r) = sla_json(&["--targets-file", file.to_str().unwrap(), p]);
    assert_eq!(code, 1);
    assert_eq!(op(&r, "minlog2.Get")["targets"][0]["percentile"], 50.0);

    // The table says it too.
    let (code, table) = sla(&["--target", "minlog2.Get=95:1.9s", p]).unwrap();
    assert_eq!(code, 1);
    assert!(table.contains("p95≤1.90s BROKEN"), "{table}");
    assert!(table.contains("targets: 0 met, 1 broken"), "{table}");
}

#[test]
fn bad_arguments_and_inputs_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.log");
    let err = sla(&[missing.to_str().unwrap()]).unwrap_err().to_string();
    assert!(err.contains("nope.log"), "{err}");
    let err = sla(&[dir.path().to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("directory"), "{err}");
    let err = sla(&["--target", "minlog2.*=95", "x.log"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("minlog2.*=95"), "{err}");
    assert!(sla(&[]).is_err(), "a file is required");
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[target]]\noperation = \"x\"\npercentile = 120\nwithin = \"1s\"\n",
    );
    let log = write(dir.path(), "a.log", &small_log());
    let err = sla(&[
        "--targets-file",
        bad.to_str().unwrap(),
        log.to_str().unwrap(),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("bad.toml") && err.contains("target[0].percentile"),
        "{err}"
    );
}

#[test]
fn malformed_lines_are_counted_and_located_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let t = "2017-06-26 08:22:05";
    let mut s = String::new();
    s += &line(t, "svc.A", "svc.A", "10 ms", "M1", "OK", "A"); // 1
    s += "\n"; // 2: blank, not malformed
    s += "complete garbage \u{1} \"=\"=\n"; // 3
    s += &line(t, "svc.A", "svc.A", "10 parsecs", "M2", "OK", "A"); // 4
    s += "\u{0}\u{ff}\u{7f}binary\n"; // 5
    s += &line(t, "svc.A", "svc.A", "30 ms", "M3", "OK", "A")
        .replace("Duration=\"30 ms\"", "Duration=\"30"); // 6: cut quote
    s += &line(t, "svc.A", "svc.A", "20 ms", "M4", "OK", "A"); // 7
                                                               // 8: cut mid-field, no newline at the end of the file.
    s += &line(t, "svc.A", "svc.A", "20 ms", "M5", "OK", "A")[..60];
    let path = write(dir.path(), "m.log", &s);
    let (code, r) = sla_json(&[path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(r["lines"], 8);
    assert_eq!(r["malformed"], 5);
    let lines: Vec<u64> = r["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 8]);
    assert!(r["malformed_lines"][1]["reason"]
        .as_str()
        .unwrap()
        .contains("unit"));
    assert_eq!(op(&r, "svc.A")["count"], 2);

    // An empty file and a file of blank lines are fine, too.
    let empty = write(dir.path(), "empty.log", "");
    let blank = write(dir.path(), "blank.log", "\n\r\n  \n");
    let (code, r) = sla_json(&[empty.to_str().unwrap(), blank.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(r["lines"], 3);
    assert_eq!(r["malformed"], 0);
    assert_eq!(r["operations"], Value::Array(vec![]));
}

#[test]
fn huge_lines_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let t = "2017-06-26 08:22:05";
    let mut s = line(t, "svc.A", "svc.A", "10 ms", "M1", "OK", "A");
    s += &format!("{}\n", "x".repeat(1 << 20));
    let mut big = line(t, "svc.A", "svc.A", "30 ms", "M2", "OK", "A");
    big.insert_str(big.len() - 1, &format!(" Note=\"{}\"", "y".repeat(1 << 20)));
    s += &big;
    let path = write(dir.path(), "huge.log", &s);
    let (_, r) = sla_json(&[path.to_str().unwrap()]);
    assert_eq!(r["lines"], 3);
    assert_eq!(r["malformed"], 1);
    assert_eq!(op(&r, "svc.A")["max_us"], 30_000);
}

#[test]
fn by_hour_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::new();
    s += &line(
        "2017-06-26 08:59:59",
        "svc.A",
        "svc.A",
        "1 ms",
        "M1",
        "OK",
        "A",
    );
    s += &line(
        "2017-06-26 08:00:00",
        "DB_Operation",
        "q",
        "1 ms",
        "M2",
        "OK",
        "<empty>",
    );
    s += &line(
        "2017-06-26 09:00:00",
        "svc.A",
        "svc.A",
        "3 ms",
        "M2",
        "OK",
        "A",
    );
    s += &line(
        "2017-06-26 09:10:00",
        "svc.A",
        "svc.A",
        "5 ms",
        "M3",
        "ERROR",
        "A",
    );
    s += &line(
        "2017-06-27 09:10:00",
        "svc.A",
        "svc.A",
        "7 ms",
        "M4",
        "OK",
        "A",
    );
    s += "no timestamp LogPoint=\"svc.A\" Duration=\"1 ms\" Result=OK\n";
    let path = write(dir.path(), "h.log", &s);
    let p = path.to_str().unwrap();
    let (_, r) = sla_json(&["--by", "hour", p]);
    assert_eq!(r["by"], "hour");
    let a: Vec<(String, u64, u64)> = r["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["operation"] == "svc.A")
        .map(|o| {
            (
                o["period"].as_str().unwrap().to_string(),
                o["count"].as_u64().unwrap(),
                o["max_us"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        a,
        [
            ("2017-06-26 08:00".to_string(), 1, 1_000),
            ("2017-06-26 09:00".to_string(), 2, 5_000),
            ("2017-06-27 09:00".to_string(), 1, 7_000),
        ]
    );
    // The DB call of M2 (08:00) belongs to the 09:00 service call that shares its id.
    let nine = r["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "svc.A" && o["period"] == "2017-06-26 09:00")
        .unwrap();
    assert_close(&nine["db_time_share"], 1_000.0 / 8_000.0);
    assert_eq!(r["malformed"], 1);
    assert!(r["malformed_lines"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("timestamp"));

    let (_, r) = sla_json(&["--by", "day", p]);
    let days: Vec<&str> = r["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["operation"] == "svc.A")
        .map(|o| o["period"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2017-06-26", "2017-06-27"]);

    let (_, csv) = sla(&["--by", "hour", "--format", "csv", p]).unwrap();
    assert!(csv.starts_with("operation,period,service,count,"), "{csv}");
    assert!(
        csv.contains("\nsvc.A,2017-06-26 09:00,true,2,1,0.500000,"),
        "{csv}"
    );
}

#[test]
fn csv_and_table_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "sla.log", &small_log());
    let p = path.to_str().unwrap();
    let (_, csv) = sla(&["--format", "csv", "--target", "*=95:1s", p]).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "operation,service,count,errors,error_rate,p50_us,p95_us,p98_us,p99_us,max_us,mean_us,total_us,db_time_share,targets,targets_broken"
    );
    assert_eq!(rows.len(), 1 + 3);
    let columns = rows[0].split(',').count();
    assert!(
        rows.iter().all(|r| r.split(',').count() == columns),
        "{csv}"
    );
    assert!(rows[1].starts_with(
        "minlog2.Get,true,2,1,0.500000,1340017,2000000,2000000,2000000,2000000,1670009,3340017,"
    ));
    assert!(rows[1].ends_with(",p95<=1000000us:broken,1"), "{}", rows[1]);

    let (_, table) = sla(&[p]).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("OPERATION"));
    assert!(lines[1].starts_with("minlog2.Get"));
    // Columns line up: every row puts COUNT's last digit where the header's T is.
    let end = lines[0].find("COUNT").unwrap() + "COUNT".len();
    for row in &lines[1..4] {
        assert!(row.as_bytes()[end - 1].is_ascii_digit(), "{row}");
        assert_eq!(row.as_bytes()[end], b' ', "{row}");
    }
    assert!(
        lines[1].contains("1.34s") && lines[1].contains("2.00s"),
        "{}",
        lines[1]
    );
    assert!(table.contains("7 lines in 1 file, 0 malformed"), "{table}");
}

#[test]
fn gzip_input_equals_plain_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = small_log().repeat(50);
    let plain = write(dir.path(), "sla.log", &text);
    // Two gzip members, as `cat a.gz b.gz` makes; named without .gz: detected by content.
    let gz = dir.path().join("sla.log.1");
    {
        let mut f = std::fs::File::create(&gz).unwrap();
        let (a, b) = text.split_at(text.len() / 3);
        for part in [a, b] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part.as_bytes()).unwrap();
            f.write_all(&enc.finish().unwrap()).unwrap();
        }
    }
    let (_, from_plain) = sla_json(&[plain.to_str().unwrap()]);
    let (_, from_gz) = sla_json(&[gz.to_str().unwrap()]);
    assert_eq!(from_plain["operations"], from_gz["operations"]);
    assert_eq!(from_plain["lines"], from_gz["lines"]);
    // Message ids correlate across files, plain and gzip'd alike.
    let (_, both) = sla_json(&[plain.to_str().unwrap(), gz.to_str().unwrap()]);
    assert_eq!(op(&both, "minlog2.Get")["count"], 200);
    assert_eq!(both["files"].as_array().unwrap().len(), 2);

    // A damaged gzip file is an error naming it.
    let bytes = std::fs::read(&gz).unwrap();
    let broken = dir.path().join("broken.gz");
    let mut damaged = bytes[..bytes.len() / 2].to_vec();
    damaged.extend_from_slice(&[0xff; 64]);
    std::fs::write(&broken, damaged).unwrap();
    let err = sla(&[broken.to_str().unwrap()]).unwrap_err();
    assert!(format!("{err:#}").contains("broken.gz"), "{err:#}");
}

/// A deterministic generator of a realistic log with known answers.
struct Generated {
    text: String,
    durations: BTreeMap<String, Vec<u64>>,
    errors: BTreeMap<String, u64>,
    db_by_service: BTreeMap<String, u64>,
    malformed_lines: Vec<u64>,
}

fn generate(messages: usize) -> Generated {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let services = [
        "minlog2.GetLogStatementsForCPRPerson",
        "minlog2.AddRegistrations",
        "minlog1.GetLogStatements",
    ];
    let dbs = ["lookupPersonName", "getLogStatements", "insertRegistration"];
    let mut g = Generated {
        text: String::new(),
        durations: BTreeMap::new(),
        errors: BTreeMap::new(),
        db_by_service: BTreeMap::new(),
        malformed_lines: Vec::new(),
    };
    let mut line_no = 0u64;
    for m in 0..messages {
        let id = format!("AAAB{m:012}NPU0k=");
        let service = services[(next() % 3) as usize];
        let mut db_total = 0;
        for _ in 0..next() % 4 {
            let db = dbs[(next() % 3) as usize];
            let us = next() % 20_000;
            let ok = next() % 50 != 0;
            let (text, unit_us) = if next() % 2 == 0 {
                (format!("{us} microseconds"), us)
            } else {
                (format!("{}.{:03} ms", us / 1000, us % 1000), us)
            };
            g.text += &line(
                "2017-06-26 08:00:00",
                "DB_Operation",
                db,
                &text,
                &id,
                if ok { "OK" } else { "ERROR" },
                "<empty>",
            );
            line_no += 1;
            let name = format!("DB_Operation:{db}");
            g.durations.entry(name.clone()).or_default().push(unit_us);
            *g.errors.entry(name).or_default() += u64::from(!ok);
            db_total += unit_us;
        }
        let us = next() % 3_000_000;
        let ok = next() % 100 != 0;
        let mut l = line(
            "2017-06-26 08:00:00",
            service,
            service,
            &format!("{us} microseconds"),
            &id,
            if ok { "OK" } else { "Some error text" },
            service.split('.').nth(1).unwrap(),
        );
        if m % 7 == 0 {
            l = l.replace('\n', "\r\n");
        }
        g.text += &l;
        line_no += 1;
        g.durations.entry(service.to_string()).or_default().push(us);
        *g.errors.entry(service.to_string()).or_default() += u64::from(!ok);
        *g.db_by_service.entry(service.to_string()).or_default() += db_total;
        if m % 1000 == 999 {
            g.text += "this line is not an SLA line\n";
            line_no += 1;
            g.malformed_lines.push(line_no);
        }
    }
    g
}

fn nearest_rank(values: &[u64], p: f64) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank - 1]
}

#[test]
fn big_log_in_parallel_chunks_matches_a_straightforward_computation() {
    // About 9 MB: several 1 MiB chunks, so chunk boundaries split messages.
    let g = generate(12_000);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "big.log", &g.text);
    let p = path.to_str().unwrap();
    let (_, r) = sla_json(&["--threads", "2", p]);
    let (_, single) = sla_json(&["--threads", "1", p]);
    assert_eq!(r, single, "thread count must not change the answer");

    assert_eq!(
        r["malformed"].as_u64().unwrap(),
        g.malformed_lines.len() as u64
    );
    let reported: Vec<u64> = r["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(reported, g.malformed_lines[..5]);
    for (name, values) in &g.durations {
        let o = op(&r, name);
        assert_eq!(o["count"].as_u64().unwrap(), values.len() as u64, "{name}");
        assert_eq!(o["errors"].as_u64().unwrap(), g.errors[name], "{name}");
        for (field, p) in [
            ("p50_us", 50.0),
            ("p95_us", 95.0),
            ("p98_us", 98.0),
            ("p99_us", 99.0),
            ("max_us", 100.0),
        ] {
            assert_eq!(
                o[field].as_u64().unwrap(),
                nearest_rank(values, p),
                "{name} {field}"
            );
        }
        let total: u64 = values.iter().sum();
        assert_eq!(o["total_us"].as_u64().unwrap(), total, "{name}");
        if let Some(db) = g.db_by_service.get(name) {
            assert_close(&o["db_time_share"], *db as f64 / total as f64);
        }
    }
    assert_eq!(r["uncorrelated_db_calls"], 0);
}
