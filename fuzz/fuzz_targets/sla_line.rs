//! SLA log lines → `vitals_sla::parse`: the line parser, the duration parser and the period key,
//! plus the `OP=PCT:DURATION` target syntax. Logs are big and sometimes broken; a malformed line
//! is counted, never fatal, so none of these may panic.
//!
//! One property is checked as well: a period key renders to a label that parses back to the
//! same key (the label is what `--by hour|day` reports and what a reader feeds back).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals_sla::parse::{parse_duration_us, parse_line, period_key, period_label, Period};
use vitals_sla::target::Target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = parse_line(data) {
        let _ = (line.duration_us, line.ok, line.message_id, line.uniq_id);
    }
    let _ = parse_duration_us(data);
    for by in [Period::Hour, Period::Day] {
        if let Some(key) = period_key(data, by) {
            let label = period_label(key, by);
            let padded = format!("{label} 00");
            assert_eq!(
                period_key(padded.as_bytes(), by),
                Some(key),
                "label {label:?} of key {key} does not parse back"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = text.parse::<Target>() {
            let _ = t.to_string();
            let _ = t.matches(text);
        }
    }
});
