//! broker-monitor's mail rules end to end: emulated broker → collector → pipeline (the default
//! AKTIN rules) → durable outbox → e-mail notifier → a real SMTP server (Debian's
//! `python3-aiosmtpd`), and the sent-mail log and tracking files in the working directory.
//! Time is injected per collection (one a day).

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use support::*;
use vitals_alert::{Deliver, DeliverError, Delivered};
use vitals_core::notify::{Notification, NotificationKind};
use vitals_core::Timestamp;
use vitals_fleet::runner::{publish, After, Facts};
use vitals_scheduler::{LiveState, Metrics, Pipeline};
use vitals_store::AssetRecord;

/// broker-monitor's contact table, per clinic: the department's main contact, a second one who
/// is not main, IT, and an IT address that opted out.
const MAPPING: &str = r#"{
  "1": {"COMMON_NAME": "[1] Eins", "LONG_NAME": "Klinikum Eins", "CONTACTS": [
     {"EMAIL": "chef@eins.example", "ROLE": "ed", "MAIN": true},
     {"EMAIL": "pflege@eins.example", "ROLE": "ed"},
     {"EMAIL": "it@eins.example", "ROLE": "it"},
     {"EMAIL": "weg@eins.example", "ROLE": "it", "OPTED_OUT": true}]},
  "2": {"COMMON_NAME": "[2] Zwei", "LONG_NAME": "Klinikum Zwei", "CONTACTS": [
     {"EMAIL": "chef@zwei.example", "ROLE": "ed", "MAIN": true},
     {"EMAIL": "it@zwei.example", "ROLE": "it"}]},
  "3": {"COMMON_NAME": "[3] Drei", "LONG_NAME": "Klinikum Drei", "CONTACTS": ["it@drei.example"]},
  "4": {"COMMON_NAME": "[4] Vier", "LONG_NAME": "Klinikum Vier", "WEEKS_NOTIFICATION_INTERVAL": 2},
  "5": {"COMMON_NAME": "[5] Fuenf"}
}"#;

// --- a real SMTP server -------------------------------------------------------------------

struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    let mut candidates: Vec<String> = std::env::var("VITALS_TEST_PYTHON").into_iter().collect();
    candidates.extend(["/usr/bin/python3".to_string(), "python3".to_string()]);
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.clone();
        }
    }
    panic!("these tests need python3-aiosmtpd (apt-get install -y python3-aiosmtpd); tried {candidates:?}");
}

struct Sink {
    _child: ChildGuard,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Sink {
        let maildir = tempfile::tempdir().unwrap();
        // The vitals-notify tests' sink: parses and saves every message as JSON.
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vitals-notify/tests/support/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(maildir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("SMTP sink did not start: {line:?} {err}")
        });
        Sink {
            _child: ChildGuard(child),
            port,
            maildir,
        }
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u32>().ok())
        });
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

fn header(msg: &serde_json::Value, name: &str) -> String {
    msg["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .and_then(|h| h[1].as_str())
        .unwrap_or("")
        .to_string()
}

fn html(msg: &serde_json::Value) -> String {
    msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "text/html")
        .and_then(|p| p["content"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The e-mail notifier as the outbox worker's deliverer.
struct Mail(Arc<dyn vitals_notify::Notifier>);

#[async_trait::async_trait]
impl Deliver for Mail {
    async fn deliver(&self, _: &str, n: &Notification) -> Result<Delivered, DeliverError> {
        match self.0.send(n).await {
            Ok(d) => Ok(Delivered {
                recipients: d.recipients,
                detail: d.detail,
            }),
            Err(vitals_notify::NotifyError::Transient(e)) => Err(DeliverError::Transient(e)),
            Err(vitals_notify::NotifyError::Permanent(e)) => Err(DeliverError::Permanent(e)),
        }
    }
}

// --- the system under test ----------------------------------------------------------------

struct System {
    f: Fixture,
    pipeline: Pipeline,
    published: std::collections::HashMap<String, AssetRecord>,
    after: After,
    workdir: tempfile::TempDir,
}

async fn system(language: &str) -> System {
    let f = fixture(Options {
        mapping: Some(MAPPING),
        expected: Some("1.5.1"),
        i2b2: Some("1.5.3"),
        ..Options::default()
    })
    .await;
    let workdir = tempfile::tempdir().unwrap();
    let cfg = vitals_config::Config::parse(
        &format!(
            "[broker]\nurl = \"{}\"\napi_key = \"k\"\nworking_dir = {:?}\n",
            f.broker.url(),
            workdir.path().display().to_string()
        ),
        &|_| None,
    )
    .unwrap();
    let rules = vitals_fleet::default_rules(vec!["mail".into()], language);
    let (pipeline, _task) = Pipeline::start(
        f.store.clone(),
        Arc::new(LiveState::new()),
        Arc::new(Metrics::default()),
        Arc::new(vitals_scheduler::ModelHandle::default()),
        vitals_alert::Engine::new(rules, vec![], None, vec![], vec![], (0, 0)),
    );
    let after = After::new(cfg.broker.as_ref().unwrap()).unwrap();
    System {
        f,
        pipeline,
        published: Default::default(),
        after,
        workdir,
    }
}

impl System {
    /// One collection at `now`, published, and the work after it.
    async fn collect(&mut self, now: Timestamp) {
        let cycle = self.f.collect(now).await;
        let facts = Facts::of(&cycle);
        publish(cycle, &self.f.store, &self.pipeline, &mut self.published)
            .await
            .unwrap();
        self.after.run(now, &facts, &self.f.store).await;
    }

    /// Outbox items so far: (node, template family, kind), oldest first.
    async fn mails(&self) -> Vec<(String, String, NotificationKind)> {
        let mut v: Vec<_> = self
            .f
            .store
            .notifications(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|it| {
                let a = &it.notification.alerts[0];
                (
                    a.asset.clone().unwrap_or_default(),
                    a.template.clone().unwrap_or_default(),
                    it.notification.kind,
                )
            })
            .collect();
        v.reverse();
        v
    }

    /// Delivers what the outbox holds through the e-mail notifier to `sink` (the support team
    /// as the static recipient, the nodes' contacts added); returns how many items it handled.
    async fn send_mails(&self, sink: &Sink) -> usize {
        let spec = vitals_core::notify::NotifierSpec::Email(vitals_core::notify::EmailSpec {
            smtp_host: "127.0.0.1".into(),
            smtp_port: Some(sink.port),
            tls: vitals_core::notify::SmtpTls::None,
            username: None,
            password: None,
            from: "AKTIN Monitoring <monitoring@aktin.example>".into(),
            to: vec!["support@aktin.example".into()],
            to_contacts: true,
            subject_prefix: None,
            template_dir: None,
            timeout: std::time::Duration::from_secs(10),
            ca_file: None,
        });
        let mail = Mail(vitals_notify::build("mail", &spec).unwrap());
        vitals_alert::outbox::deliver_due(
            &*self.f.store,
            &mail,
            vitals_alert::outbox::LOCAL_OWNER,
            &vitals_core::SystemClock,
        )
        .await
        .unwrap()
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.workdir.path().join(rel)).unwrap_or_default()
    }
}

/// A node that reports at `now`: contact now, imports written `write_age` ago.
fn online(f: &Fixture, id: u64, now: Timestamp, write_age: i64) {
    f.broker.set_contact(id, Some(now));
    f.broker.set_stats(
        id,
        stats(
            t("2024-01-01T00:00:00Z"),
            100,
            0,
            Some(now.add_millis(-write_age)),
        ),
    );
}

/// A node that reports and imports at `at`, day `d` of a test (its counters grow every day, so
/// it is not TESTING).
fn report_on(f: &Fixture, id: u64, at: Timestamp, d: i64) {
    f.broker.set_contact(id, Some(at));
    f.broker.set_stats(
        id,
        stats(
            t("2024-01-01T00:00:00Z"),
            1_000 + 10 * (d + 10),
            0,
            Some(at),
        ),
    );
}

/// A node silent since `since` (its statistics still answer, as the broker keeps them).
fn offline(f: &Fixture, id: u64, since: Timestamp) {
    f.broker.set_contact(id, Some(since));
    f.broker
        .set_stats(id, stats(t("2024-01-01T00:00:00Z"), 100, 0, Some(since)));
}

#[tokio::test]
async fn one_mail_per_clinic_through_a_real_smtp_server() {
    let sink = Sink::start();
    let mut s = system("de").await;
    let now = t("2024-03-10T06:00:00Z");
    for id in 1..=5 {
        s.f.broker.add_node(id, &format!("Node {id}"));
    }
    // Four nodes fail in the same collection; one is fine.
    offline(&s.f, 1, now.add_millis(-3 * DAY));
    offline(&s.f, 2, now.add_millis(-2 * DAY));
    online(&s.f, 3, now, 5 * DAY); // NO IMPORTS
    offline(&s.f, 4, now.add_millis(-4 * DAY)); // no contacts of its own
    online(&s.f, 5, now, H);
    s.collect(now).await;

    assert_eq!(s.send_mails(&sink).await, 4);

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 4, "one mail per node and state, never combined");
    let mut by_to: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for m in &msgs {
        by_to.insert(header(m, "To"), m);
        // Support reads along in every clinic's mail.
        let cc = header(m, "Cc");
        let to = header(m, "To");
        assert!(
            cc == "support@aktin.example" || (to == "support@aktin.example" && cc.is_empty()),
            "{to} / {cc}"
        );
    }
    let one = by_to["chef@eins.example, it@eins.example"];
    assert_eq!(
        header(one, "Subject"),
        "Automatische Information: AKTIN DWH Offline"
    );
    assert!(html(one).contains("<b>Klinikum Eins</b>"), "{}", html(one));
    // Last contact 3 days before 06:00 UTC on 10 March: 07.03.2024 in Berlin.
    assert!(html(one).contains("<b>07.03.2024</b>"), "{}", html(one));
    let rcpt: Vec<&str> = one["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        rcpt,
        [
            "chef@eins.example",
            "it@eins.example",
            "support@aktin.example"
        ]
    );
    let two = by_to["chef@zwei.example, it@zwei.example"];
    assert!(html(two).contains("Klinikum Zwei") && !html(two).contains("Klinikum Eins"));
    let three = by_to["it@drei.example"];
    assert_eq!(
        header(three, "Subject"),
        "Automatische Information: AKTIN DWH Keine Imports"
    );
    assert!(html(three).contains("05.03.2024"), "{}", html(three));
    // A node without people of its own: only the support team hears of it.
    let four = by_to["support@aktin.example"];
    assert!(html(four).contains("Klinikum Vier"));

    // The notification log shows each mail's own recipients, never another clinic's.
    for it in s.f.store.notifications(None, 100).await.unwrap() {
        assert_eq!(it.state, vitals_store::OutboxState::Sent);
        let domains: std::collections::BTreeSet<&str> = it
            .recipients
            .iter()
            .filter_map(|r| r.split_once('@').map(|(_, d)| d))
            .filter(|d| *d != "aktin.example")
            .collect();
        assert!(domains.len() <= 1, "{:?}", it.recipients);
    }
    // The sent-mail log and the tracking files, as broker-monitor writes them.
    let log = s.file("1/1_sent_mails.log");
    assert!(
        log.ends_with(" : Sent mail for status OFFLINE to node id 1\n") && log.lines().count() == 1,
        "{log}"
    );
    assert!(s
        .file("3/3_sent_mails.log")
        .contains("Sent mail for status NO IMPORTS to node id 3"));
    let tracking: serde_json::Value =
        serde_json::from_str(&s.file("tracking_OFFLINE.json")).unwrap();
    assert_eq!(tracking["1"], "2024-03-10 06:00:00+00:00");
    assert_eq!(
        tracking.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["1", "2", "4"]
    );
    assert_eq!(
        s.file("tracking_NO_IMPORTS.json"),
        r#"{"3": "2024-03-10 06:00:00+00:00"}"#
    );
    assert_eq!(s.file("tracking_DWH_OUTDATED.json"), "{}");
}

#[tokio::test]
async fn repeats_after_the_interval_clearing_and_state_changes() {
    let mut s = system("de").await;
    let day0 = t("2024-05-01T06:00:00Z");
    for id in 1..=5 {
        s.f.broker.add_node(id, &format!("Node {id}"));
    }
    let at = |d: i64| day0.add_millis(d * DAY);
    // A node that does not report keeps its last contact and statistics.
    let report = |f: &Fixture, id: u64, d: i64| report_on(f, id, at(d), d);
    let mut mails_seen = 0;
    let mut new_mails = Vec::new();
    // Six days of history in which everyone imports; then, from day 0:
    for d in -6..=17 {
        // 1 and 4 (re-notify interval 2 weeks): silent after day -2, OFFLINE from day 0.
        for id in [1, 4] {
            if d <= -2 {
                report(&s.f, id, d);
            }
        }
        // 2: silent after day -2, back for one collection on day 3, silent again after it
        // (OFFLINE again from day 5, 48 h after its last contact).
        if d <= -2 || d == 3 {
            report(&s.f, 2, d);
        }
        // 3: silent after day -2 (OFFLINE on day 0), then it reports again but imports
        // nothing (NO IMPORTS from day 1).
        if d <= -2 {
            report(&s.f, 3, d);
        } else if d >= 1 {
            s.f.broker.set_contact(3, Some(at(d)));
        }
        // 5: fine all along.
        report(&s.f, 5, d);
        s.collect(at(d)).await;
        let all = s.mails().await;
        for m in &all[mails_seen..] {
            new_mails.push((d, m.0.clone(), m.1.clone(), m.2));
        }
        mails_seen = all.len();
    }
    use NotificationKind::{Firing, Reminder};
    let want = vec![
        (0, "1", "aktin_offline", Firing),
        (0, "2", "aktin_offline", Firing),
        (0, "3", "aktin_offline", Firing),
        (0, "4", "aktin_offline", Firing),
        // OFFLINE → NO IMPORTS: the other state's mail, at once.
        (1, "3", "aktin_no_imports", Firing),
        // Offline again after one collection without the state: a mail at once.
        (5, "2", "aktin_offline", Firing),
        // 192 rounded hours / 168 > 1 on day 8 (168 / 168 on day 7 is not).
        (8, "1", "aktin_offline", Reminder),
        (9, "3", "aktin_no_imports", Reminder),
        (13, "2", "aktin_offline", Reminder),
        // Two weeks: 360 / 168 > 2 on day 15.
        (15, "4", "aktin_offline", Reminder),
        (16, "1", "aktin_offline", Reminder),
        (17, "3", "aktin_no_imports", Reminder),
    ];
    let mut got: Vec<(i64, &str, &str, NotificationKind)> = new_mails
        .iter()
        .map(|(d, n, f, k)| (*d, n.as_str(), f.as_str(), *k))
        .collect();
    got.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    assert_eq!(
        got, want,
        "no acknowledged or resolved mails, one per node and state"
    );
    // Node 2's tracking entry went away with the one collection without the state.
    let log = s.file("2/2_sent_mails.log");
    assert_eq!(log.lines().count(), 3, "{log}");
    let log = s.file("3/3_sent_mails.log");
    let statuses: Vec<&str> = log
        .lines()
        .map(|l| l.split(" : ").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "Sent mail for status OFFLINE to node id 3",
            "Sent mail for status NO IMPORTS to node id 3",
            "Sent mail for status NO IMPORTS to node id 3",
            "Sent mail for status NO IMPORTS to node id 3"
        ]
    );
    let tracking: serde_json::Value =
        serde_json::from_str(&s.file("tracking_OFFLINE.json")).unwrap();
    assert_eq!(tracking["1"], "2024-05-17 06:00:00+00:00");
    assert_eq!(tracking["4"], "2024-05-16 06:00:00+00:00");
    assert_eq!(tracking["2"], "2024-05-14 06:00:00+00:00");
    assert!(tracking.get("3").is_none(), "no longer OFFLINE: {tracking}");
}

#[tokio::test]
async fn english_mails_and_the_outdated_version_repeats_then_clears() {
    let sink = Sink::start();
    let mut s = system("en").await;
    let day0 = t("2024-06-03T06:00:00Z");
    let at = |d: i64| day0.add_millis(d * DAY);
    for id in 1..=3 {
        s.f.broker.add_node(id, &format!("Node {id}"));
    }
    let version = |f: &Fixture, id: u64, v: &str| {
        let m: BTreeMap<String, String> = [("dwh-j2ee".to_string(), format!("dwh-j2ee-{v}"))]
            .into_iter()
            .collect();
        f.broker.set_resource(id, "versions", &m);
    };
    let report = |f: &Fixture, id: u64, d: i64| report_on(f, id, at(d), d);
    let mut new_mails = Vec::new();
    let mut seen = 0;
    // Five days in which everyone imports, then from day 0: 1 OFFLINE (silent since day -2),
    // 3 NO IMPORTS (in contact, nothing written since day -2), 2 fine but outdated until it is
    // upgraded on day 9.
    for d in -6..=10 {
        if d <= -2 {
            report(&s.f, 1, d);
            report(&s.f, 3, d);
        } else {
            s.f.broker.set_contact(3, Some(at(d)));
        }
        report(&s.f, 2, d);
        version(&s.f, 1, "1.5.1");
        version(&s.f, 3, "1.5.1");
        version(
            &s.f,
            2,
            match d {
                ..0 => "1.5.1",
                0..9 => "1.4",
                _ => "1.5.2",
            },
        );
        s.collect(at(d)).await;
        let all = s.mails().await;
        for m in &all[seen..] {
            new_mails.push((d, m.0.clone(), m.1.clone(), m.2));
        }
        seen = all.len();
        if d == 0 {
            // The day's three mails through a real SMTP server, in English.
            assert_eq!(s.send_mails(&sink).await, 3);
            let msgs = sink.messages();
            let by_to: BTreeMap<String, &serde_json::Value> =
                msgs.iter().map(|m| (header(m, "To"), m)).collect();
            let one = by_to["chef@eins.example, it@eins.example"];
            assert_eq!(
                header(one, "Subject"),
                "Automatic information: AKTIN DWH offline"
            );
            assert!(html(one).contains("Klinikum Eins"), "{}", html(one));
            let two = by_to["chef@zwei.example, it@zwei.example"];
            assert_eq!(
                header(two, "Subject"),
                "Automatic information: AKTIN DWH version outdated"
            );
            // The node's own version text and the expected versions.
            let body = html(two);
            assert!(
                body.contains("dwh-j2ee-1.4") && body.contains("1.5.1") && body.contains("1.5.3"),
                "{body}"
            );
            let three = by_to["it@drei.example"];
            assert_eq!(
                header(three, "Subject"),
                "Automatic information: AKTIN DWH no imports"
            );
            for m in &msgs {
                assert!(
                    !html(m).contains("Automatische"),
                    "German text in {}",
                    html(m)
                );
            }
        }
    }
    use NotificationKind::{Firing, Reminder};
    let mut got: Vec<(i64, &str, &str, NotificationKind)> = new_mails
        .iter()
        .map(|(d, n, f, k)| (*d, n.as_str(), f.as_str(), *k))
        .collect();
    got.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    assert_eq!(
        got,
        vec![
            (0, "1", "aktin_offline_en", Firing),
            (0, "2", "aktin_outdated_en", Firing),
            (0, "3", "aktin_no_imports_en", Firing),
            // A week (168 h) is not more than a week; 192 h on day 8 is.
            (8, "1", "aktin_offline_en", Reminder),
            (8, "2", "aktin_outdated_en", Reminder),
            (8, "3", "aktin_no_imports_en", Reminder),
        ],
        "the outdated node upgraded on day 9 gets no further mail"
    );
    // Upgraded: no longer tracked as OUTDATED; the others still are in their states.
    let tracking: serde_json::Value =
        serde_json::from_str(&s.file("tracking_DWH_OUTDATED.json")).unwrap();
    assert!(tracking.get("2").is_none(), "{tracking}");
    let log = s.file("2/2_sent_mails.log");
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.lines()
            .all(|l| l.ends_with(" : Sent mail for status DWH OUTDATED to node id 2")),
        "{log}"
    );
}
