//! Health endpoint bodies → `vitals_probe::health`: health+json, Spring actuator, detail lines
//! and the auto-detection, as a probe sees them from an untrusted target. Never a panic.
//!
//! Input layout: the first byte picks the content type handed to `parse_auto` (none, JSON,
//! health+json, actuator, text); the rest is the body, given to every parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals_probe::health::{parse_actuator, parse_auto, parse_health_json, parse_lines, HealthDoc};

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("application/health+json"),
    Some("application/vnd.spring-boot.actuator.v3+json"),
    Some("text/plain; charset=utf-8"),
];

fn touch(doc: Option<HealthDoc>) {
    if let Some(d) = doc {
        // The reason is what ends up in the observation; building it must not panic either.
        let _ = d.failure_reason();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ct = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    touch(parse_auto(ct, body));
    touch(parse_health_json(body));
    touch(parse_actuator(body));
    touch(parse_lines(body));
});
