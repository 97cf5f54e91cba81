//! Exporter answers and check conditions → `vitals_probe::prometheus::{parse_exposition, judge}`,
//! `PromCondition::parse`, `RowCondition::parse` and `sql::single_statement`. An exporter (or a
//! database answer) may be anything; none of them may panic.
//!
//! The whole input is an exposition; its first line is also tried as a prometheus condition
//! (judged against the exposition), as a row condition (judged against a made-up row) and as a
//! query.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals_core::expr::{PromCondition, RowCondition};
use vitals_probe::prometheus::{judge, parse_exposition};
use vitals_probe::sql::{single_statement, Dialect};

fuzz_target!(|text: &str| {
    let samples = parse_exposition(text).unwrap_or_default();
    let first = text.lines().next().unwrap_or("");
    if let Ok(c) = PromCondition::parse(first) {
        let mut values = Vec::new();
        let _ = judge(&c, &samples, &mut values);
    }
    if let Ok(c) = RowCondition::parse(first) {
        let row = vec![("state".to_string(), Some(first.to_string())), ("n".to_string(), None)];
        let _ = c.eval(1, &row);
        let _ = c.eval(0, &[]);
    }
    let _ = single_statement(text, Dialect::Postgres);
    let _ = single_statement(text, Dialect::Mysql);
});
