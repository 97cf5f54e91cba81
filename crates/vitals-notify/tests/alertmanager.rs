//! The Alertmanager channel against Debian's real `prometheus-alertmanager`, started by the
//! test on a loopback port with a null receiver and clustering off.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{alert, free_port, notification, ChildGuard};
use vitals_core::notify::{AlertmanagerSpec, NotificationKind, NotifierSpec};
use vitals_core::Timestamp;
use vitals_notify::NotifyError;

const CONFIG: &str = "\
route:
  receiver: 'null'
receivers:
  - name: 'null'
";

struct Alertmanager {
    _child: ChildGuard,
    url: String,
    _dir: tempfile::TempDir,
}

fn binary() -> String {
    let path = std::env::var("VITALS_TEST_ALERTMANAGER")
        .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".to_string());
    assert!(
        Path::new(&path).is_file(),
        "these tests need a real Alertmanager: {path} is missing; install it with \
         `apt-get install -y prometheus-alertmanager`"
    );
    path
}

impl Alertmanager {
    /// Starts Alertmanager and waits (bounded) until `/-/ready` answers 200.
    async fn start() -> Alertmanager {
        let bin = binary();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, CONFIG).unwrap();
        let client = reqwest::Client::new();
        // The port is chosen before Alertmanager binds it; another process may take it in
        // between, so a start that dies is tried again on a new port.
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = ChildGuard(
                Command::new(&bin)
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!(
                        "--storage.path={}",
                        dir.path().join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .arg("--cluster.listen-address=")
                    .arg("--log.level=warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start prometheus-alertmanager"),
            );
            let url = format!("http://127.0.0.1:{port}");
            for _ in 0..300 {
                if let Ok(Some(_)) = child.0.try_wait() {
                    break;
                }
                let ready = client
                    .get(format!("{url}/-/ready"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Alertmanager {
                        _child: child,
                        url,
                        _dir: dir,
                    };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.0.kill();
        }
        panic!("prometheus-alertmanager did not become ready");
    }

    async fn alerts(&self) -> Vec<Value> {
        let v: Value = reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().unwrap().clone()
    }

    async fn find(&self, alert_id: i64) -> Option<Value> {
        let id = alert_id.to_string();
        self.alerts()
            .await
            .into_iter()
            .find(|a| a["labels"]["vitals_alert_id"] == id.as_str())
    }
}

fn spec(url: &str) -> NotifierSpec {
    NotifierSpec::Alertmanager(AlertmanagerSpec {
        url: format!("{url}/"),
        labels: BTreeMap::from([("env".to_string(), "test".to_string())]),
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn alerts_fire_with_their_labels_and_end_when_resolved() {
    let am = Alertmanager::start().await;
    let notifier = vitals_notify::build("am", &spec(&am.url)).unwrap();
    let mut second = alert(102);
    second.check = None;
    second.status = vitals_core::Status::Warn;
    let n = notification(
        "101-am-firing",
        NotificationKind::Firing,
        vec![alert(101), second],
    );
    let d = notifier.send(&n).await.unwrap();
    assert_eq!(d.detail, "HTTP 200 (2 alert(s))");
    assert_eq!(d.recipients, [am.url.as_str()]);

    let a = am.find(101).await.expect("alert 101 in Alertmanager");
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "minlog2-down");
    assert_eq!(labels["asset"], "minlog2-101");
    assert_eq!(labels["check"], "monitor");
    assert_eq!(labels["group"], "national");
    assert_eq!(labels["severity"], "crit");
    assert_eq!(labels["site"], "aarhus");
    assert_eq!(labels["env"], "test");
    assert_eq!(a["annotations"]["summary"], "minlog2-101/monitor is CRIT");
    assert_eq!(
        a["annotations"]["description"],
        "HTTP 503 <Service Unavailable> & retrying"
    );
    assert_eq!(a["generatorURL"], "https://vitals.example/alerts/101");
    assert_eq!(a["status"]["state"], "active");
    let starts = Timestamp::parse(a["startsAt"].as_str().unwrap()).unwrap();
    assert_eq!(starts, n.alerts[0].started);

    let b = am.find(102).await.expect("alert 102 in Alertmanager");
    assert_eq!(b["labels"]["severity"], "warn");
    assert!(b["labels"].get("check").is_none(), "{b}");

    // Resolving 101 ends it there; 102 stays active.
    let mut resolved_view = n.alerts[0].clone();
    let resolved_at = Timestamp(support::now_ms() - 1_000);
    resolved_view.resolved = Some(resolved_at);
    resolved_view.state = "resolved".into();
    let r = notification(
        "101-am-resolved",
        NotificationKind::Resolved,
        vec![resolved_view],
    );
    notifier.send(&r).await.unwrap();
    let mut ended = false;
    for _ in 0..50 {
        match am.find(101).await {
            // Alertmanager's API leaves resolved alerts out of the list ...
            None => {
                ended = true;
                break;
            }
            // ... or shows them with the end time we sent.
            Some(a) => {
                let ends = Timestamp::parse(a["endsAt"].as_str().unwrap()).unwrap();
                if ends == resolved_at {
                    ended = true;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "alert 101 did not end: {:?}", am.find(101).await);
    let b = am.find(102).await.expect("alert 102 still there");
    assert_eq!(b["status"]["state"], "active");
}

#[tokio::test]
async fn an_alert_alertmanager_rejects_is_permanent_and_a_dead_one_transient() {
    let am = Alertmanager::start().await;
    let notifier = vitals_notify::build("am", &spec(&am.url)).unwrap();
    // Ending before it started is invalid: Alertmanager answers 400.
    let mut a = alert(7);
    a.resolved = Some(Timestamp(a.started.millis() - 60_000));
    let n = notification("7-am-resolved", NotificationKind::Resolved, vec![a]);
    let e = notifier.send(&n).await.unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("HTTP 400"), "{e}");

    let dead =
        vitals_notify::build("am", &spec(&format!("http://127.0.0.1:{}", free_port()))).unwrap();
    let n = notification("8", NotificationKind::Firing, vec![alert(8)]);
    assert!(dead.send(&n).await.unwrap_err().is_transient());
}
