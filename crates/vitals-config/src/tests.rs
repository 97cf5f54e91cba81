use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, &no_env)
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn empty_file_is_the_default() {
    let c = parse("").unwrap();
    assert_eq!(c.server.listen, DEFAULT_LISTEN);
    assert!(c.checks.is_empty());
}

#[test]
fn minimal_check_gets_defaults() {
    let c = parse(
        r#"
[[check]]
asset = "minlog2"
name = "monitor"
type = "http"
url = "http://127.0.0.1:8080/monitor?details"
health = "lines"
"#,
    )
    .unwrap();
    let ch = &c.checks[0];
    assert_eq!(ch.schedule, ScheduleSpec::Interval(DEFAULT_INTERVAL));
    assert_eq!(ch.timeout, DEFAULT_TIMEOUT);
    assert!(
        matches!(&ch.kind, CheckKind::Probe(ProbeSpec::Http(h)) if h.health == spec::HealthFormat::Lines)
    );
    // The undeclared asset is created implicitly.
    assert_eq!(c.effective_assets()[0].id, "minlog2");
}

#[test]
fn every_error_is_reported_with_its_path() {
    let errs = errors(
        r#"
[server]
listen = "nowhere"
lissten = "x"

[[asset]]
id = "a"
parents = ["ghost"]

[[check]]
asset = "a"
name = "one"
type = "http"
url = "/monitor"

[[check]]
asset = "a"
name = "two"
type = "smtp"

[[check]]
asset = "a"
name = "three"
type = "http"
url = "http://x/"
urll = "typo"

[[check]]
asset = "a"
name = "four"
type = "tcp"
address = "db"
interval = "5s"
timeout = "10s"

[[check]]
asset = "a"
name = "five"
type = "http"
url = "http://x/"
cron = "99 * * * *"
json = ["status == 1"]
body_regex = "("
"#,
    );
    let joined = errs.join("\n");
    for want in [
        "server.lissten: unknown field `lissten`",
        "asset[0].parents[0]: unknown asset \"ghost\"",
        "check[0].url: relative URL without a base",
        "check[1].type: unknown check type \"smtp\"",
        "check[2].urll: unknown field `urll`",
        "check[3].address: \"db\" is not host:port",
        "check[3].timeout: must not be longer than the interval",
        "check[4].cron: invalid cron expression",
        "check[4].json[0]: JSON pointer must start with '/'",
        "check[4].body_regex:",
    ] {
        assert!(joined.contains(want), "missing {want:?} in:\n{joined}");
    }
}

#[test]
fn server_listen_error_is_reported_even_when_other_server_keys_fail() {
    // Serde stops at the first error inside a table; the semantic pass still runs on defaults.
    let errs = errors("[server]\nlisten = \"nowhere\"\n");
    assert_eq!(
        errs,
        vec!["server.listen: \"nowhere\" is not an address like \"127.0.0.1:8080\""]
    );
}

#[test]
fn env_expansion_and_missing_variables() {
    let env = |n: &str| (n == "API_TOKEN").then(|| "abc".to_string());
    let c = Config::parse(
        r#"
[[check]]
asset = "a"
name = "api"
type = "http"
url = "http://127.0.0.1/"
headers = { Authorization = "Bearer ${API_TOKEN}" }
"#,
        &env,
    )
    .unwrap();
    let CheckKind::Probe(ProbeSpec::Http(h)) = &c.checks[0].kind else {
        panic!("http")
    };
    assert_eq!(h.headers["Authorization"], "Bearer abc");

    let e = Config::parse(
        "[[check]]\nasset = \"a\"\nname = \"b\"\ntype = \"http\"\nurl = \"http://${HOST}/\"\n",
        &env,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "check[0].url: environment variable HOST is not set"
    );
}

#[test]
fn duplicates_and_cycles() {
    let errs = errors(
        r#"
[[asset]]
id = "a"
parents = ["b"]
[[asset]]
id = "b"
parents = ["a"]
[[asset]]
id = "a"

[[check]]
asset = "a"
name = "x"
type = "tcp"
address = "h:1"
[[check]]
asset = "a"
name = "x"
type = "tcp"
address = "h:1"
"#,
    )
    .join("\n");
    assert!(
        errs.contains("asset[2].id: duplicate asset id \"a\""),
        "{errs}"
    );
    assert!(errs.contains("parents form a cycle"), "{errs}");
    assert!(
        errs.contains("check[1].name: duplicate check \"x\" on asset \"a\""),
        "{errs}"
    );
}

#[test]
fn interval_and_cron_together_is_an_error() {
    let errs = errors(
        "[[check]]\nasset=\"a\"\nname=\"b\"\ntype=\"tcp\"\naddress=\"h:1\"\ninterval=\"1m\"\ncron=\"* * * * *\"\n",
    );
    assert_eq!(
        errs,
        vec!["check[0]: give either interval or cron, not both"]
    );
}

#[test]
fn bad_duration_names_the_key() {
    let errs = errors(
        "[[check]]\nasset=\"a\"\nname=\"b\"\ntype=\"tcp\"\naddress=\"h:1\"\ninterval=\"often\"\n",
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("check[0].interval: invalid duration \"often\""),
        "{errs:?}"
    );
}

#[test]
fn not_toml_at_all() {
    let errs = errors("[[check]\nname = ");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("not valid TOML"), "{errs:?}");
}

#[test]
fn unknown_sections_are_errors() {
    let errs = errors("[servre]\nlisten = \"127.0.0.1:1\"\n");
    assert!(errs[0].starts_with("servre: unknown section"), "{errs:?}");
}

#[test]
fn shipped_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vitals.toml");
    let text = std::fs::read_to_string(&path).expect("examples/vitals.toml exists");
    let env = |name: &str| {
        Some(if name.ends_with("_URL") {
            "https://hooks.example.org/secret-path".to_string()
        } else {
            format!("example-secret-of-{name}")
        })
    };
    match Config::parse(&text, &env) {
        Ok(c) => {
            assert!(c.checks.len() >= 6, "the example shows every check type");
            for t in CheckKind::TYPES {
                assert!(
                    c.checks.iter().any(|ch| ch.kind.type_name() == t),
                    "example lacks a {t} check"
                );
            }
        }
        Err(e) => panic!("examples/vitals.toml does not parse:\n{e}"),
    }
}

#[test]
fn scores_ingest_push_and_heartbeat() {
    let c = parse(
        r#"
[ingest]
unknown_assets = "reject"

[[score]]
test = "heart"
groups = ["doctor"]
field = "heartrate"
kind = "int"
rules = [{ above = 120, score = 4 }, { above = 100, score = 3 }, { above = 80, score = 2 }, { score = 1 }]
stale_after = "2h"

[[check]]
asset = "node-1"
name = "import"
type = "push"
stale_after = "25h"

[[check]]
asset = "node-1"
name = "nightly"
type = "heartbeat"
interval = "24h"
grace = "30m"
"#,
    )
    .unwrap();
    assert_eq!(c.ingest.unknown_assets, UnknownAssets::Reject);
    assert_eq!(c.scores[0].rule().score(101.0), Some(3));
    assert_eq!(
        c.checks[1].heartbeat_slug().as_deref(),
        Some("node-1-nightly")
    );
    assert!(matches!(c.checks[0].kind, CheckKind::Push(_)));

    let errs = errors(
        r#"
[[score]]
test = "heart"
groups = []
field = "heartrate"
kind = "int"
rules = [{ score = 1 }, { above = 3, score = 4 }]

[[score]]
test = "heart"
groups = ["g"]
field = "x"
kind = "integer"
rules = []

[[check]]
asset = "a"
name = "x"
type = "heartbeat"
slug = "same"
[[check]]
asset = "b"
name = "y"
type = "heartbeat"
slug = "same"
"#,
    )
    .join("\n");
    assert!(
        errs.contains("score[0]: rules[0] has no condition"),
        "{errs}"
    );
    assert!(
        errs.contains("score[1].kind: unknown variant `integer`"),
        "{errs}"
    );
    assert!(
        errs.contains("check[1].slug: heartbeat slug \"same\" is also used by check[0]"),
        "{errs}"
    );
}

#[test]
fn rules_maintenance_and_notifiers() {
    let c = parse(
        r#"
[[notifier]]
id = "ops-mail"
type = "email"
smtp_host = "127.0.0.1"
from = "vitals@example.org"
to = ["ops@example.org"]

[[notifier]]
id = "pager"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[rule]]
id = "import-failing"
groups = ["clinics"]
checks = ["import"]
count = 3
of_last = 5
recover = 2
notifiers = ["ops-mail"]
reminder = "4h"
escalate = [{ after = "30m", notifiers = ["pager"] }]
flapping = { changes = 6, window = "1h" }

[[rule]]
id = "slow"
kind = "threshold"
value = "total_ms"
above = 2000
for = "5m"
severity = "warn"

[[rule]]
id = "clinics"
kind = "population"
group = "clinics"
test = "import"
score = 3
aggregate_percent = 20
repetition = 5
repetition_percent = 60

[[maintenance]]
id = "sunday-backup"
cron = "0 2 * * 0"
duration = "2h"
groups = ["clinics"]
"#,
    )
    .unwrap();
    assert_eq!(c.rules.len(), 3);
    assert_eq!(c.notifiers.len(), 2);
    let m = &c.maintenance[0];
    // 2026-11-22 is a Sunday.
    let at = |s: &str| vitals_core::Timestamp::parse(s).unwrap();
    assert!(!m.active(at("2026-11-22T01:59:59Z")));
    assert!(m.active(at("2026-11-22T02:00:00Z")));
    assert!(m.active(at("2026-11-22T03:59:59Z")));
    assert!(!m.active(at("2026-11-22T04:00:00Z")));
    assert!(!m.active(at("2026-11-23T02:30:00Z")));

    let errs = errors(
        r#"
[[rule]]
id = "r1"
notifiers = ["nobody"]
count = 3
of_last = 2

[[rule]]
id = "r2"
kind = "threshold"
above = 3

[[rule]]
id = "r3"
kind = "population"
group = "g"
test = "t"
score = 3
repetition = 1000

[[rule]]
id = "r4"
kind = "sometimes"

[[notifier]]
id = "x"
type = "pigeon"
"#,
    )
    .join("\n");
    for want in [
        "rule[0].of_last: must be at least count (3)",
        "rule[0].notifiers: unknown notifier \"nobody\"",
        "rule[1].value: is required",
        "rule[2].repetition: must be 1–128",
        "rule[3].kind: unknown rule kind \"sometimes\"",
        "notifier[0].type: unknown notifier type \"pigeon\"",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}

#[test]
fn per_check_alert_shorthand_becomes_a_rule_for_that_check() {
    let c = parse(
        r#"
[[notifier]]
id = "ops"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[check]]
asset = "minlog2"
name = "monitor"
type = "http"
url = "http://127.0.0.1/monitor"
alert = { count = 3, recover = 2, notifiers = ["ops"], reminder = "4h" }
"#,
    )
    .unwrap();
    assert_eq!(c.rules.len(), 1);
    let r = &c.rules[0];
    assert_eq!(r.id, "check:minlog2:monitor");
    assert_eq!(r.selector.assets, vec!["minlog2".to_string()]);
    assert_eq!(r.selector.checks, vec!["monitor".to_string()]);
    let errs = errors(
        "[[check]]\nasset = \"a\"\nname = \"b\"\ntype = \"tcp\"\naddress = \"h:1\"\nalert = { groups = [\"x\"], notifiers = [\"nobody\"] }\n",
    )
    .join("\n");
    assert!(
        errs.contains("check[0].alert.groups: not in a check's alert"),
        "{errs}"
    );
    assert!(
        errs.contains("check[0].alert.notifiers: unknown notifier \"nobody\""),
        "{errs}"
    );
}
