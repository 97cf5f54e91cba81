//! Nagios plugin output → `vitals_probe::nagios::parse_output`, and threshold ranges →
//! `Range::parse`. A plugin may print anything; neither may panic.
//!
//! The whole input is a plugin's output; its first line is also tried as a range (and every
//! perfdata item's thresholds are evaluated against its value, as the exec probe does).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals_probe::nagios::{parse_output, parse_perfdata, Range};

fuzz_target!(|text: &str| {
    let out = parse_output(text);
    for p in &out.perfdata {
        for r in [p.warn, p.crit].into_iter().flatten() {
            let _ = r.alerts(p.value);
        }
    }
    let first = text.lines().next().unwrap_or("");
    if let Ok(r) = Range::parse(first) {
        for v in [0.0, -1.0, 1e300, f64::NAN, f64::INFINITY, r.start, r.end] {
            let _ = r.alerts(v);
        }
    }
    let _ = parse_perfdata(text);
});
