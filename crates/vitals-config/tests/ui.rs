//! `[ui]`: the time zone the web UI shows times in.

use vitals_config::Config;

#[test]
fn timezone_defaults_to_utc_and_takes_iana_names() {
    let c = Config::parse("", &|_| None).unwrap();
    assert_eq!(c.ui.timezone, chrono_tz::UTC);
    let c = Config::parse("[ui]\ntimezone = \"Europe/Copenhagen\"\n", &|_| None).unwrap();
    assert_eq!(c.ui.timezone, chrono_tz::Europe::Copenhagen);
}

#[test]
fn bad_timezones_and_keys_are_named() {
    let e = Config::parse("[ui]\ntimezone = \"Mars/Olympus\"\n", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ui.timezone"), "{e}");
    assert!(e.contains("Mars/Olympus"), "{e}");
    let e = Config::parse("[ui]\ntheme = \"dark\"\n", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("theme"), "{e}");
}
