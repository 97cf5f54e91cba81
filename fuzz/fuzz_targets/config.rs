//! `vitals.toml` text → `vitals_config::Config::parse`: every input gives a `Config` or a list
//! of errors, never a panic.
//!
//! The text is parsed once with no environment (every `${NAME}` is unset, an error) and, when
//! it uses `${`, once more with an environment that answers every name, so the expansion path
//! and the validation of the expanded values are reached too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals_config::Config;

fuzz_target!(|text: &str| {
    if let Err(errors) = Config::parse(text, &|_| None) {
        // Rendering the errors is part of the contract (`vitals config check` prints them).
        let _ = errors.to_string();
    }
    if text.contains("${") {
        // A value that is itself valid in many places (a duration, a host, a name).
        let _ = Config::parse(text, &|name| Some(format!("{name}-1s")));
    }
});
