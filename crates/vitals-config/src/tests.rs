use super::*;
use std::time::Duration;
use vitals_core::spec::{self, CheckKind, ProbeSpec, SqlTls};

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
    assert_eq!(c.server.listen.to_string(), DEFAULT_LISTEN);
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
fn staging_rows_defaults_and_is_bounded() {
    assert_eq!(parse("").unwrap().server.staging_rows, 16_384);
    let c = parse("[server]\nstaging_rows = 65536\n").unwrap();
    assert_eq!(c.server.staging_rows, 65_536);
    for bad in ["0", "1000001"] {
        assert_eq!(
            errors(&format!("[server]\nstaging_rows = {bad}\n")),
            vec!["server.staging_rows: must be from 1 to 1000000"]
        );
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
            for t in vitals_core::notify::NotifierSpec::TYPES {
                assert!(
                    c.notifiers.iter().any(|n| n.spec.type_name() == t),
                    "example lacks a {t} notifier"
                );
            }
        }
        Err(e) => panic!("examples/vitals.toml does not parse:\n{e}"),
    }
}

/// The first column of the first table under `## heading` in a doc: its backticked names.
fn doc_table_types(doc: &str, heading: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/{doc} has no section {heading:?}"));
    // The first table of the section, below its header row.
    section
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn docs_list_every_registered_type() {
    let mut documented = doc_table_types("checks.md", "Check types");
    documented.sort();
    let mut registered: Vec<String> = CheckKind::TYPES.iter().map(|t| t.to_string()).collect();
    registered.sort();
    assert_eq!(documented, registered, "docs/checks.md, \"Check types\"");

    let mut documented = doc_table_types("alerting.md", "Notifiers and durable delivery");
    documented.sort();
    let mut registered: Vec<String> = vitals_core::notify::NotifierSpec::TYPES
        .iter()
        .map(|t| t.to_string())
        .collect();
    registered.sort();
    assert_eq!(documented, registered, "docs/alerting.md, notifiers");
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

#[test]
fn new_check_types_parse_with_defaults_and_report_every_error() {
    let c = parse(
        r#"
[[check]]
asset = "gw"
name = "ping"
type = "icmp"
host = "::1"
ip = "6"

[[check]]
asset = "db"
name = "pg"
type = "postgres"
host = "127.0.0.1"
user = "minlog2"
password = "secret"
grants = { logentries = ["select", "INSERT"] }

[[check]]
asset = "win"
name = "x"
type = "prometheus"
url = "http://127.0.0.1:9182/metrics"
conditions = ['windows_service_state{name="minlog2",state="running"} == 1']

[[check]]
asset = "app"
name = "log"
type = "log"
file = "/var/log/app.log"
patterns = ["ERROR"]
"#,
    )
    .unwrap();
    let ProbeSpec::Icmp(i) = c.checks[0].kind.probe().unwrap() else {
        panic!()
    };
    assert_eq!(
        (i.count, i.ip, i.warn_loss, i.crit_loss),
        (3, spec::IpVersion::V6, 20.0, 60.0)
    );
    let ProbeSpec::Postgres(q) = c.checks[1].kind.probe().unwrap() else {
        panic!()
    };
    assert_eq!(
        (q.query.as_str(), q.tls, q.max_rows),
        ("SELECT 1", SqlTls::Prefer, 1000)
    );
    assert!(
        !format!("{q:?}").contains("secret"),
        "the password stays out of debug output"
    );
    let ProbeSpec::Log(l) = c.checks[3].kind.probe().unwrap() else {
        panic!()
    };
    assert_eq!(
        (l.warn_count, l.crit_count, l.quote_lines),
        (Some(1), None, 3)
    );

    let errs = errors(
        r#"
[[check]]
asset = "gw"
name = "ping"
type = "icmp"
host = "gw"
count = 0
ip = "5"

[[check]]
asset = "gw"
name = "ping2"
type = "icmp"
host = "gw"
count = 10
packet_interval = "1s"
timeout = "5s"

[[check]]
asset = "db"
name = "pg"
type = "mysql"
host = "db"
user = "u"
conditions = ["rows >= x", "state < ready"]
grants = { t = ["TRUNCATE"], u = [] }

[[check]]
asset = "win"
name = "x"
type = "prometheus"
url = "ftp://x/metrics"
conditions = ['median(up) > 1', 'up{a=~"("} == 1']

[[check]]
asset = "win"
name = "y"
type = "prometheus"
url = "http://x/metrics"

[[check]]
asset = "app"
name = "log"
type = "log"
file = "/var/log/app.log"
patterns = ["("]
warn_count = 5
crit_count = 2

[[check]]
asset = "app"
name = "v"
type = "http"
url = "http://x/version"
capture = { regex = "(", json = "/v" }

[[rule]]
id = "versions"
kind = "consistent"
value = "total_ms"
capture = "has space"

[[rule]]
id = "other"
expected = "2.5.1"
"#,
    );
    let has = |path: &str, text: &str| {
        assert!(
            errs.iter().any(|e| e.starts_with(path) && e.contains(text)),
            "no {path} … {text} in {errs:#?}"
        )
    };
    has("check[0].ip", "unknown variant `5`");
    has(
        "check[1].timeout",
        "must be longer than (count - 1) × packet_interval = 9s",
    );
    has(
        "check[2].conditions[0]",
        "\">=\" needs a number on its right in \"rows >= x\"",
    );
    has("check[2].conditions[1]", "needs a number on its right");
    has("check[2].grants.t", "unknown privilege \"TRUNCATE\"");
    has("check[2].grants.u", "name at least one privilege");
    has("check[3].url", "scheme \"ftp\" is not http or https");
    has("check[3].conditions[0]", "unknown aggregation \"median\"");
    has("check[3].conditions[1]", "invalid regex");
    has("check[4].conditions", "give at least one condition");
    has("check[5].patterns[0]", "regex parse error");
    has("check[5].warn_count", "must not be more than crit_count");
    has("check[6].capture", "give regex or json");
    has("rule[0].value", "not for kind = \"consistent\"");
    has("rule[0].capture", "\"has space\"");
    has("rule[1].expected", "only for kind = \"consistent\"");
}

#[test]
fn status_pages_are_checked() {
    let c = parse(
        r#"
[[asset]]
id = "clinic-17"
groups = ["clinics"]

[[status_page]]
slug = "clinic-17"
title = "Clinic 17"
assets = ["clinic-17"]
groups = ["national"]
"#,
    )
    .unwrap();
    assert_eq!(c.status_pages.len(), 1);
    let p = &c.status_pages[0];
    assert!(p.shows("clinic-17", &[]));
    assert!(p.shows("minlog2", &["national".to_string()]));
    assert!(!p.shows("minlog2", &["clinics".to_string()]));

    let e = errors(
        r#"
[[status_page]]
slug = "Clinic 17"
title = ""
assets = ["nowhere"]

[[status_page]]
slug = "x"
title = "X"

[[status_page]]
slug = "x"
title = "X again"
groups = ["g"]

[[status_page]]
slug = "y"
title = "Y"
groups = ["g"]
colour = "red"
"#,
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("status_page[0].slug: \"Clinic 17\" must be")),
        "{e:?}"
    );
    assert!(
        e.contains(&"status_page[0].title: must be 1–200 characters".to_string()),
        "{e:?}"
    );
    assert!(
        e.contains(&"status_page[0].assets[0]: unknown asset \"nowhere\"".to_string()),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("status_page[1]: name the groups or assets")),
        "{e:?}"
    );
    assert!(
        e.contains(&"status_page[2].slug: duplicate status page \"x\"".to_string()),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("status_page[3].colour: unknown field `colour`")),
        "{e:?}"
    );
}

#[test]
fn every_bad_key_of_one_check_is_named_at_once() {
    let e = errors(
        r#"
[[check]]
asset = "web"
name = "home"
type = "http"
url = 17
interval = "often"
timeout = "soon"
"#,
    );
    for key in ["url", "interval", "timeout"] {
        assert!(
            e.iter().any(|m| m.starts_with(&format!("check[0].{key}:"))),
            "no error for {key}: {e:?}"
        );
    }
    // What is missing only because it was wrong is not reported again.
    assert!(!e.iter().any(|m| m.contains("missing field")), "{e:?}");
}

#[test]
fn the_default_timeout_fits_a_short_interval() {
    let c = parse(
        "[[check]]\nasset = \"web\"\nname = \"home\"\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"5s\"\n",
    )
    .unwrap();
    assert_eq!(c.checks[0].timeout, Duration::from_secs(5));
    let c = parse(
        "[[check]]\nasset = \"web\"\nname = \"home\"\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1m\"\n",
    )
    .unwrap();
    assert_eq!(c.checks[0].timeout, DEFAULT_TIMEOUT);
}

#[test]
fn http_checks_read_health_bodies_by_default() {
    let c = parse(
        "[[check]]\nasset = \"web\"\nname = \"home\"\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    match &c.checks[0].kind {
        CheckKind::Probe(ProbeSpec::Http(h)) => {
            assert_eq!(h.health, vitals_core::spec::HealthFormat::Auto)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn located_checks_keep_their_text_as_written_for_the_agents() {
    let env = |n: &str| (n == "DB_HOST").then(|| "db.central".to_string());
    let c = Config::parse(
        r#"
[[token]]
name = "agent-a"
role = "reporter"
secret = "a-long-enough-agent-secret"
location = "site-a"

[[check]]
asset = "kis"
name = "db"
type = "tcp"
address = "${DB_HOST}:5432"
locations = ["site-a", "site-b"]
quorum = 2
alert = { count = 2 }
"#,
        &env,
    )
    .unwrap();
    let l = c.checks[0].locations.as_ref().unwrap();
    assert_eq!(l.locations, ["site-a", "site-b"]);
    assert_eq!(l.quorum, 2);
    // The agent expands ${DB_HOST} itself; the alert stays on the server.
    assert!(l.source.contains("${DB_HOST}"), "{}", l.source);
    assert!(!l.source.contains("alert"), "{}", l.source);
    // The agent parses it back with its own environment.
    let back = Config::parse(&format!("[[check]]\n{}", l.source), &|n: &str| {
        (n == "DB_HOST").then(|| "db.site".to_string())
    })
    .unwrap();
    assert_eq!(back.checks[0].locations, c.checks[0].locations);
    // Every agent has its own alert rule.
    assert!(c.rules.iter().any(|r| r.id == "agent:site-a"));
    assert_eq!(c.ingest.agent_stale_after, Duration::from_secs(120));
}

#[test]
fn locations_quorum_and_agent_tokens_are_validated() {
    let e = errors(
        r#"
[[token]]
name = "agent-a"
role = "admin"
secret = "a-long-enough-agent-secret"
location = "site-a"

[[token]]
name = "agent-b"
role = "reporter"
secret = "another-long-agent-secret"
location = "site@b"

[[check]]
asset = "kis"
name = "db"
type = "tcp"
address = "h:1"
locations = ["site-a", "site-a", "x@y"]
quorum = 4

[[check]]
asset = "kis"
name = "beat"
type = "heartbeat"
locations = ["site-a"]

[[check]]
asset = "kis"
name = "web"
type = "tcp"
address = "h:1"
quorum = 1
"#,
    );
    let has = |s: &str| e.iter().any(|x| x.contains(s));
    assert!(
        has("token[0].location: an agent token is a reporter token"),
        "{e:?}"
    );
    assert!(has("token[1].location: must be letters"), "{e:?}");
    assert!(has("check[0].locations[1]"), "{e:?}");
    assert!(has("check[0].locations[2]"), "{e:?}");
    assert!(has("check[0].quorum: must be 1–3"), "{e:?}");
    assert!(has("check[1].locations: only polled checks"), "{e:?}");
    assert!(
        has("check[2].quorum: is for checks with locations"),
        "{e:?}"
    );
}

#[test]
fn cron_expressions_arrive_parsed_or_are_errors_at_their_path() {
    let c = parse(
        r#"
[retention]
cron = "5 3 * * *"

[[check]]
asset = "a"
name = "nightly"
type = "push"
cron = "0 2 * * *"

[[job]]
id = "rebuild"
command = ["true"]
schedule = "0 4 * * *"
"#,
    )
    .unwrap();
    assert_eq!(c.retention.cron.as_str(), "5 3 * * *");
    assert!(matches!(&c.checks[0].schedule, ScheduleSpec::Cron(x) if x.as_str() == "0 2 * * *"));
    assert!(c.checks[0].build_schedule().is_ok());
    assert_eq!(c.engine.jobs[0].schedule.as_str(), "0 4 * * *");
    assert_eq!(RetentionConfig::default().cron.as_str(), "17 * * * *");

    let errs = errors(
        r#"
[retention]
cron = "99 * * * *"

[[job]]
id = "rebuild"
command = ["true"]
schedule = "every night"
"#,
    );
    let joined = errs.join("\n");
    for want in [
        "retention.cron: invalid cron expression \"99 * * * *\"",
        "job[0].schedule: invalid cron expression \"every night\"",
    ] {
        assert!(joined.contains(want), "missing {want:?} in:\n{joined}");
    }
}
