//! The email channel against a real SMTP server: Debian's `python3-aiosmtpd`, started on a
//! loopback port by each test (`tests/support/smtp_sink.py`), which parses and saves every
//! message it accepts.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{alert, free_port, notification, ChildGuard};
use vitals_core::notify::{EmailSpec, NotificationKind, NotifierSpec, SmtpTls};
use vitals_notify::NotifyError;

/// A Python with aiosmtpd: `VITALS_TEST_PYTHON`, Debian's `/usr/bin/python3`, or `python3`.
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
    panic!(
        "these tests need a real SMTP server: python3-aiosmtpd is not installed \
         (tried {candidates:?}); install it with `apt-get install -y python3-aiosmtpd`"
    );
}

struct Sink {
    _child: ChildGuard,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Sink {
    fn start(auth: Option<&str>) -> Sink {
        Sink::start_with(
            auth.map(|a| vec!["--auth".to_string(), a.to_string()])
                .unwrap_or_default(),
        )
    }

    /// `--starttls` or `--implicit` with the server certificate of `pki`.
    fn start_tls(mode: &str, pki: &Pki) -> Sink {
        Sink::start_with(vec![
            mode.to_string(),
            pki.cert.display().to_string(),
            pki.key.display().to_string(),
        ])
    }

    fn start_with(args: Vec<String>) -> Sink {
        let maildir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script).arg(maildir.path()).args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = match line.trim().parse() {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("SMTP sink did not start: {line:?} {err}");
            }
        };
        Sink {
            _child: ChildGuard(child),
            port,
            maildir,
        }
    }

    /// The saved messages, in the order received.
    fn messages(&self) -> Vec<Value> {
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

fn spec(port: u16) -> EmailSpec {
    EmailSpec {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Vitals <vitals@example.org>".into(),
        to: vec!["Support <support@example.org>".into()],
        to_contacts: true,
        subject_prefix: None,
        template_dir: None,
        timeout: Duration::from_secs(10),
        ca_file: None,
    }
}

fn header<'a>(msg: &'a Value, name: &str) -> Option<&'a str> {
    msg["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .and_then(|h| h[1].as_str())
}

fn part<'a>(msg: &'a Value, content_type: &str) -> &'a str {
    msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == content_type)
        .unwrap_or_else(|| panic!("no {content_type} part in {msg}"))["content"]
        .as_str()
        .unwrap()
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn delivers_a_multipart_mail_to_contacts_and_support() {
    let sink = Sink::start(None);
    let mut s = spec(sink.port);
    s.to.push("oncall@example.org".into());
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
    let mut a = alert(42);
    a.contacts = vec![
        "clinic@hospital.example".into(),
        "SUPPORT@example.org".into(),
        "not an address".into(),
    ];
    let mut b = alert(43);
    b.contacts = vec!["Clinic@Hospital.example".into()];
    let n = notification("42-mail-firing", NotificationKind::Firing, vec![a, b]);
    let d = notifier.send(&n).await.unwrap();
    // Deduplicated case-insensitively (support is both a contact and a static recipient);
    // the invalid contact is skipped and said so.
    assert_eq!(
        d.recipients,
        [
            "clinic@hospital.example",
            "SUPPORT@example.org",
            "oncall@example.org"
        ]
    );
    assert!(d.detail.starts_with("250 "), "{}", d.detail);
    assert!(
        d.detail.contains("skipped invalid: not an address"),
        "{}",
        d.detail
    );

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["mail_from"], "vitals@example.org");
    assert_eq!(
        sorted(&m["rcpt_tos"]),
        [
            "SUPPORT@example.org",
            "clinic@hospital.example",
            "oncall@example.org"
        ]
    );
    assert_eq!(
        header(m, "Subject"),
        Some("[Vitals] FIRING: minlog2-42/monitor is CRIT and 1 more")
    );
    // Contacts are addressed, the static recipients read along in Cc.
    assert_eq!(
        header(m, "To"),
        Some("clinic@hospital.example, SUPPORT@example.org")
    );
    assert_eq!(header(m, "Cc"), Some("oncall@example.org"));
    assert_eq!(header(m, "X-Vitals-Notification"), Some("42-mail-firing"));
    assert_eq!(
        header(m, "Message-ID"),
        Some("<42-mail-firing.vitals@example.org>")
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    let text = part(m, "text/plain");
    assert!(text.starts_with("2 alerts are firing."), "{text}");
    assert!(text.contains("[CRIT] minlog2-43/monitor is CRIT"), "{text}");
    assert!(
        text.contains("Reason:   HTTP 503 <Service Unavailable> & retrying"),
        "{text}"
    );
    assert!(
        text.contains("Details:  https://vitals.example/alerts/42"),
        "{text}"
    );
    let html = part(m, "text/html");
    assert!(
        html.contains("<strong style=\"color: #c62828;\">FIRING</strong>"),
        "{html}"
    );
    assert!(
        html.contains("HTTP 503 &lt;Service Unavailable&gt; &amp; retrying"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://vitals.example/alerts/43\">"),
        "{html}"
    );
}

#[tokio::test]
async fn a_resend_is_recognisable_as_the_same_message() {
    let sink = Sink::start(None);
    let mut s = spec(sink.port);
    s.to_contacts = false;
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
    let n = notification(
        "7-mail-reminder",
        NotificationKind::Reminder,
        vec![alert(7)],
    );
    notifier.send(&n).await.unwrap();
    notifier.send(&n).await.unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        header(&msgs[0], "Message-ID"),
        header(&msgs[1], "Message-ID")
    );
    assert_eq!(
        header(&msgs[1], "X-Vitals-Notification"),
        Some("7-mail-reminder")
    );
    // Without contacts the static recipients are the To.
    assert_eq!(
        header(&msgs[0], "To"),
        Some("Support <support@example.org>")
    );
    assert!(header(&msgs[0], "Subject")
        .unwrap()
        .starts_with("[Vitals] REMINDER: minlog2-7/monitor is CRIT (firing for 2m"));
}

#[tokio::test]
async fn templates_are_overridden_from_the_template_dir() {
    let sink = Sink::start(None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("resolved.subject"),
        "{{ alert.asset }} is fine again\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("resolved.txt"),
        "Custom: {{ alert.asset_label }} recovered after {{ alert.duration }}.\n",
    )
    .unwrap();
    let mut s = spec(sink.port);
    s.template_dir = Some(dir.path().to_path_buf());
    s.subject_prefix = Some("[Klinik]".into());
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
    let mut a = alert(3);
    a.resolved = Some(vitals_core::Timestamp(a.started.millis() + 90_000));
    let n = notification("3-mail-resolved", NotificationKind::Resolved, vec![a]);
    notifier.send(&n).await.unwrap();
    let m = &sink.messages()[0];
    assert_eq!(
        header(m, "Subject"),
        Some("[Klinik] minlog2-3 is fine again")
    );
    assert_eq!(
        part(m, "text/plain").trim_end(),
        "Custom: MinLog2 node 3 (minlog2-3) recovered after 1m 30s."
    );
    // No resolved.html in the directory: the built-in one is used.
    let html = part(m, "text/html");
    assert!(
        html.contains("<strong style=\"color: #2e7d32;\">RESOLVED</strong>"),
        "{html}"
    );

    // A template that does not compile is a configuration error naming the file.
    std::fs::write(dir.path().join("firing.html"), "{% if %}").unwrap();
    let mut s = spec(sink.port);
    s.template_dir = Some(dir.path().to_path_buf());
    let e = vitals_notify::build("mail", &NotifierSpec::Email(s))
        .err()
        .unwrap();
    assert!(e.contains("firing.html"), "{e}");
    let mut s = spec(sink.port);
    s.template_dir = Some(dir.path().join("missing"));
    let e = vitals_notify::build("mail", &NotifierSpec::Email(s))
        .err()
        .unwrap();
    assert!(
        e.contains("template_dir") && e.contains("not a directory"),
        "{e}"
    );
}

#[tokio::test]
async fn smtp_auth_is_used_and_a_wrong_password_is_permanent() {
    let sink = Sink::start(Some("vitals:s3cret-pw"));
    let mut s = spec(sink.port);
    s.username = Some("vitals".into());
    s.password = Some("s3cret-pw".into());
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s.clone())).unwrap();
    let n = notification("1", NotificationKind::Firing, vec![alert(1)]);
    notifier.send(&n).await.unwrap();
    let m = &sink.messages()[0];
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["login"], "vitals");

    s.password = Some("wrong-pw".into());
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
    let e = notifier.send(&n).await.unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("535"), "{e}");
    assert!(!e.to_string().contains("wrong-pw"), "{e}");

    // Without credentials the server's "authentication required" is permanent too.
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(spec(sink.port))).unwrap();
    let e = notifier.send(&n).await.unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_refused_recipient_is_permanent() {
    let sink = Sink::start(None);
    let mut s = spec(sink.port);
    s.to = vec!["reject-me@example.org".into()];
    s.to_contacts = false;
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
    let n = notification("1", NotificationKind::Firing, vec![alert(1)]);
    let e = notifier.send(&n).await.unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("550"), "{e}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn no_recipients_is_permanent_and_an_unreachable_server_transient() {
    let port = free_port();
    let mut s = spec(port);
    s.to.clear();
    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
    let mut a = alert(1);
    a.contacts = vec!["bogus".into()];
    let n = notification("1", NotificationKind::Firing, vec![a]);
    let e = notifier.send(&n).await.unwrap_err();
    assert_eq!(
        e,
        NotifyError::Permanent("no recipients (skipped invalid: bogus)".into())
    );

    let notifier = vitals_notify::build("mail", &NotifierSpec::Email(spec(port))).unwrap();
    let e = notifier.send(&n).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!("127.0.0.1:{port}: ")),
        "{e}"
    );
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Vitals test mail CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Vitals test mail server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
            _dir: dir,
        }
    }
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_a_private_ca() {
    let pki = Pki::new();
    for (mode, tls) in [
        ("--starttls", SmtpTls::Starttls),
        ("--implicit", SmtpTls::Implicit),
    ] {
        let sink = Sink::start_tls(mode, &pki);
        let mut s = spec(sink.port);
        s.tls = tls;
        s.ca_file = Some(pki.ca.clone());
        let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s.clone())).unwrap();
        let n = notification("tls", NotificationKind::Firing, vec![alert(1)]);
        let d = notifier
            .send(&n)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(d.detail.starts_with("250 "), "{mode}: {}", d.detail);
        let msgs = sink.messages();
        assert_eq!(msgs.len(), 1, "{mode}");
        assert_eq!(msgs[0]["tls"], true, "{mode}");

        // Without the CA the server is not trusted: nothing is sent, and the failure is
        // retried (a certificate can be fixed on the server side).
        s.ca_file = None;
        let notifier = vitals_notify::build("mail", &NotifierSpec::Email(s)).unwrap();
        let e = notifier.send(&n).await.unwrap_err();
        assert!(e.is_transient(), "{mode}: {e:?}");
        assert!(
            e.to_string().to_lowercase().contains("certificate"),
            "{mode}: {e}"
        );
        assert_eq!(sink.messages().len(), 1, "{mode}");
    }
    // A CA file without a certificate is a configuration error.
    let mut s = spec(25);
    s.tls = SmtpTls::Starttls;
    s.ca_file = Some(pki.key.clone());
    let e = vitals_notify::build("mail", &NotifierSpec::Email(s))
        .err()
        .unwrap();
    assert!(
        e.contains("ca_file") && e.contains("no PEM certificate"),
        "{e}"
    );
}

#[tokio::test]
async fn a_test_message_is_a_mail_marked_test_to_the_static_recipients() {
    let sink = Sink::start(None);
    let notifier =
        vitals_notify::build("support-mail", &NotifierSpec::Email(spec(sink.port))).unwrap();
    let n = vitals_core::notify::Notification::test(
        "support-mail",
        "alice",
        vitals_core::Timestamp(support::now_ms()),
        Some("https://vitals.example/".into()),
    );
    let d = notifier.send(&n).await.unwrap();
    assert_eq!(d.recipients, ["support@example.org"]);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(
        header(m, "Subject"),
        Some("[Vitals] TEST: Test message from Vitals to notifier support-mail: no action needed")
    );
    assert_eq!(header(m, "X-Vitals-Notification"), Some(n.id.as_str()));
    let text = part(m, "text/plain");
    assert!(
        text.starts_with("This is a TEST message from Vitals."),
        "{text}"
    );
    assert!(text.contains("alice asked Vitals"), "{text}");
    assert!(part(m, "text/html").contains(">TEST</strong>"));
}
