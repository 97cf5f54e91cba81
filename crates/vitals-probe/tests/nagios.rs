//! The Nagios plugin output parser and threshold ranges, as pure functions.

use vitals_probe::nagios::{parse_output, parse_perfdata, PerfData, Range};

fn item(out: &[PerfData], label: &str) -> PerfData {
    out.iter()
        .find(|p| p.label == label)
        .cloned()
        .unwrap_or_else(|| panic!("no perfdata {label:?} in {out:?}"))
}

#[test]
fn first_line_text_and_perfdata() {
    let out = parse_output(
        "TCP OK - 0.000 second response time on 127.0.0.1 port 5432|time=0.000123s;;;0.000000;10.000000\n",
    );
    assert_eq!(
        out.text,
        "TCP OK - 0.000 second response time on 127.0.0.1 port 5432"
    );
    assert_eq!(out.long_text, "");
    assert_eq!(out.perfdata.len(), 1);
    let t = &out.perfdata[0];
    assert_eq!(t.label, "time");
    assert_eq!(t.value, 0.000123);
    assert_eq!(t.uom, "s");
    assert_eq!(t.warn, None);
    assert_eq!(t.crit, None);
    assert_eq!(t.min, Some(0.0));
    assert_eq!(t.max, Some(10.0));
}

#[test]
fn text_without_perfdata() {
    let out = parse_output("OK: all good");
    assert_eq!(out.text, "OK: all good");
    assert!(out.perfdata.is_empty());
    assert_eq!(out.long_text, "");
}

#[test]
fn full_item_with_thresholds() {
    let p = parse_perfdata("'/var'=1024MB;2048;4096;0;8192");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].label, "/var");
    assert_eq!(p[0].value, 1024.0);
    assert_eq!(p[0].uom, "MB");
    assert_eq!(p[0].warn, Range::parse("2048").ok());
    assert_eq!(p[0].crit, Range::parse("4096").ok());
    assert_eq!(p[0].min, Some(0.0));
    assert_eq!(p[0].max, Some(8192.0));
}

#[test]
fn every_unit_of_measure() {
    let p = parse_perfdata("a=1 b=2s c=3ms d=4us e=5% f=6B g=7KB h=8MB i=9TB j=10c k=11GB");
    let units: Vec<(&str, &str, f64)> = p
        .iter()
        .map(|p| (p.label.as_str(), p.uom.as_str(), p.value))
        .collect();
    assert_eq!(
        units,
        vec![
            ("a", "", 1.0),
            ("b", "s", 2.0),
            ("c", "ms", 3.0),
            ("d", "us", 4.0),
            ("e", "%", 5.0),
            ("f", "B", 6.0),
            ("g", "KB", 7.0),
            ("h", "MB", 8.0),
            ("i", "TB", 9.0),
            ("j", "c", 10.0),
            ("k", "GB", 11.0),
        ]
    );
}

#[test]
fn quoted_labels_with_spaces_equals_and_escaped_quotes() {
    let p = parse_perfdata("'disk usage'=5% 'it''s'=1 'a=b'=2 'ünïcødé ✓'=3.5");
    assert_eq!(p.len(), 4);
    assert_eq!(p[0].label, "disk usage");
    assert_eq!(p[1].label, "it's");
    assert_eq!(p[2].label, "a=b");
    assert_eq!(p[3].label, "ünïcødé ✓");
    assert_eq!(p[3].value, 3.5);
}

#[test]
fn numbers_in_their_forms() {
    let p = parse_perfdata("neg=-5 exp=1.5e3ms plus=+2 comma=0,005s dot=.5 trailing=5.");
    assert_eq!(item(&p, "neg").value, -5.0);
    assert_eq!(item(&p, "exp").value, 1500.0);
    assert_eq!(item(&p, "exp").uom, "ms");
    assert_eq!(item(&p, "plus").value, 2.0);
    assert_eq!(item(&p, "comma").value, 0.005);
    assert_eq!(item(&p, "dot").value, 0.5);
    assert_eq!(item(&p, "trailing").value, 5.0);
}

#[test]
fn malformed_items_are_skipped_and_the_rest_kept() {
    let p = parse_perfdata(
        "good=1 novalue= =3 noequals U=U undetermined=U x=abc inf=inf nan=NaN \
         hex=0x10 unit=5parsecs two=1=2 ok2=2;;;; 'unterminated=4",
    );
    let labels: Vec<&str> = p.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, vec!["good", "ok2"]);
    assert_eq!(item(&p, "ok2").warn, None);
    assert_eq!(item(&p, "ok2").max, None);
}

#[test]
fn bad_thresholds_lose_only_themselves() {
    let p = parse_perfdata("a=1;abc;5:2;x;10");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].value, 1.0);
    assert_eq!(p[0].warn, None);
    assert_eq!(p[0].crit, None);
    assert_eq!(p[0].min, None);
    assert_eq!(p[0].max, Some(10.0));
}

#[test]
fn multi_line_output_with_long_text_and_more_perfdata() {
    let out = parse_output(
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
         / 15272 MB (77%);\n\
         /boot 68 MB (69%);\n\
         /home 69357 MB (27%);\n\
         /var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
         /home=69357MB;253404;253409;0;253414\n\
         /var/log=818MB;970;975;0;980\n",
    );
    assert_eq!(out.text, "DISK OK - free space: / 3326 MB (56%);");
    assert_eq!(
        out.long_text,
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
    );
    let labels: Vec<&str> = out.perfdata.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, vec!["/", "/boot", "/home", "/var/log"]);
    assert_eq!(item(&out.perfdata, "/home").value, 69357.0);
    assert_eq!(
        item(&out.perfdata, "/var/log").crit,
        Range::parse("975").ok()
    );
}

#[test]
fn long_text_without_perfdata_and_crlf_lines() {
    let out = parse_output("WARNING - 2 jobs late\r\njob a\r\njob b\r\n\r\n");
    assert_eq!(out.text, "WARNING - 2 jobs late");
    assert_eq!(out.long_text, "job a\njob b");
    assert!(out.perfdata.is_empty());
}

#[test]
fn perfdata_only_after_a_pipe_on_a_later_line() {
    let out = parse_output("OK\nsome detail\n| a=1 b=2\nc=3");
    assert_eq!(out.text, "OK");
    assert_eq!(out.long_text, "some detail");
    let labels: Vec<&str> = out.perfdata.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, vec!["a", "b", "c"]);
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        "|",
        "||||",
        "\n\n\n|",
        "'",
        "''",
        "'''",
        "=",
        "==",
        ";;;;",
        "a=;;;;",
        "a=1;@;@:;~;~:",
        "\u{0}\u{1}|\u{0}=\u{1}",
        "ünïcødé | 'ü'=1€ ✓=2",
        "text | 'a b'=",
        "text | a=1e400 b=-1e400 c=1e-400",
        "\u{feff}BOM | x=1",
        "a\u{2028}b | c=1",
        "| 'x'''=1 ''=2 '''=3",
        "OK | a=1;2;3;4;5;6;7;8",
    ];
    for input in inputs {
        let out = parse_output(input);
        for p in &out.perfdata {
            assert!(p.value.is_finite(), "{input:?} gave {p:?}");
            assert!(!p.label.is_empty(), "{input:?} gave {p:?}");
        }
    }
    let p = parse_output("OK | 'x'''=1 ''=2").perfdata;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].label, "x'");
    // Overflowing numbers are not finite and are skipped; underflow is a tiny real number.
    let p = parse_output("text | a=1e400 c=1e-400").perfdata;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].label, "c");
}

#[test]
fn very_long_lines_and_many_items() {
    let long_text = "x".repeat(1_000_000);
    let out = parse_output(&format!("{long_text} | a=1"));
    assert_eq!(out.text.len(), 1_000_000);
    assert_eq!(out.perfdata.len(), 1);

    let items: Vec<String> = (0..100_000)
        .map(|i| format!("'m {i}'={i}ms;10;20"))
        .collect();
    let out = parse_output(&format!("OK | {}", items.join(" ")));
    assert_eq!(out.perfdata.len(), 100_000);
    assert_eq!(out.perfdata[99_999].label, "m 99999");
    assert_eq!(out.perfdata[99_999].value, 99_999.0);

    let long_label = "l".repeat(200_000);
    let p = parse_perfdata(&format!("'{long_label}'=1 {long_label}=2"));
    assert_eq!(p.len(), 2);
    assert_eq!(p[1].value, 2.0);
}

#[test]
fn range_plain_number_alerts_outside_zero_to_n() {
    let r = Range::parse("10").unwrap();
    assert!(r.alerts(-0.001));
    assert!(!r.alerts(0.0));
    assert!(!r.alerts(10.0));
    assert!(r.alerts(10.001));
}

#[test]
fn range_open_end_alerts_below_start() {
    let r = Range::parse("10:").unwrap();
    assert!(r.alerts(9.999));
    assert!(!r.alerts(10.0));
    assert!(!r.alerts(1e300));
}

#[test]
fn range_tilde_alerts_above_end() {
    let r = Range::parse("~:10").unwrap();
    assert!(!r.alerts(-1e300));
    assert!(!r.alerts(10.0));
    assert!(r.alerts(10.001));
}

#[test]
fn range_both_ends_alerts_outside() {
    let r = Range::parse("10:20").unwrap();
    assert!(r.alerts(9.99));
    assert!(!r.alerts(10.0));
    assert!(!r.alerts(15.0));
    assert!(!r.alerts(20.0));
    assert!(r.alerts(20.01));
}

#[test]
fn range_at_alerts_inside_inclusive() {
    let r = Range::parse("@10:20").unwrap();
    assert!(!r.alerts(9.99));
    assert!(r.alerts(10.0));
    assert!(r.alerts(15.0));
    assert!(r.alerts(20.0));
    assert!(!r.alerts(20.01));
    let r = Range::parse("@5").unwrap();
    assert!(r.alerts(0.0));
    assert!(r.alerts(5.0));
    assert!(!r.alerts(5.1));
    assert!(!r.alerts(-0.1));
}

#[test]
fn range_negative_and_fractional_bounds() {
    let r = Range::parse("-10.5:-2").unwrap();
    assert!(r.alerts(-10.6));
    assert!(!r.alerts(-10.5));
    assert!(!r.alerts(-2.0));
    assert!(r.alerts(-1.9));
    let r = Range::parse("~:").unwrap();
    assert!(!r.alerts(f64::MAX));
    assert!(!r.alerts(f64::MIN));
}

#[test]
fn range_errors_name_the_problem() {
    assert!(Range::parse("").unwrap_err().contains("empty"));
    assert!(Range::parse("@").unwrap_err().contains("empty"));
    assert!(Range::parse("abc")
        .unwrap_err()
        .contains("\"abc\" is not a number"));
    assert!(Range::parse("~").is_err());
    assert!(Range::parse("10:~").is_err());
    assert!(Range::parse("inf").is_err());
    assert!(Range::parse("1:2:3").is_err());
    assert!(Range::parse("20:10")
        .unwrap_err()
        .contains("start 20 is greater than end 10"));
}

#[test]
fn range_display_round_trips() {
    for s in ["10", "10:", "~:10", "10:20", "@10:20", "-5:5", "@~:3", "~:"] {
        let r = Range::parse(s).unwrap();
        assert_eq!(r.to_string(), s, "display of {s}");
        assert_eq!(Range::parse(&r.to_string()).unwrap(), r);
    }
}
