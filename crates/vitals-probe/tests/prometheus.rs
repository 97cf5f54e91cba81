//! The prometheus probe against Debian's real `prometheus-node-exporter` on loopback, and against
//! recorded expositions of cAdvisor and windows_exporter (fixtures/, written from the exporters'
//! documented metric names) served by a loopback HTTP server.

mod http_support;

use http_support::{closed_port, serve, Reply};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vitals_core::spec::{ProbeSpec, PrometheusSpec};
use vitals_core::Status;
use vitals_probe::{Outcome, Prober};

const CADVISOR: &str = include_str!("fixtures/cadvisor.txt");
const WINDOWS: &str = include_str!("fixtures/windows_exporter.txt");

fn spec(url: String, conditions: &[&str], warn: &[&str]) -> PrometheusSpec {
    PrometheusSpec {
        url,
        headers: Default::default(),
        conditions: conditions.iter().map(|s| s.to_string()).collect(),
        warn_conditions: warn.iter().map(|s| s.to_string()).collect(),
        max_body_bytes: 16 * 1024 * 1024,
        ca_file: None,
        insecure: false,
    }
}

async fn run(s: PrometheusSpec) -> Outcome {
    Prober::new()
        .run(&ProbeSpec::Prometheus(s), Duration::from_secs(5))
        .await
}

fn value(o: &Outcome, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

async fn fixture(body: &'static str) -> String {
    let addr = serve(move |req| {
        if req.target == "/metrics" {
            Reply::with_type(200, "text/plain; version=0.0.4; charset=utf-8", body)
        } else {
            Reply::text(404, "not found")
        }
    })
    .await;
    format!("http://{addr}/metrics")
}

#[tokio::test]
async fn windows_exporter_services_disks_and_summaries() {
    let url = fixture(WINDOWS).await;
    let o = run(spec(
        url.clone(),
        &[
            r#"windows_service_state{name="minlog2",state="running"} == 1"#,
            r#"windows_service_info{display_name="MinLog2 \"Lookup\" service"} == 1"#,
            r#"go_gc_duration_seconds{quantile="1"} < 1"#,
            "go_gc_duration_seconds_count > 1000",
        ],
        &[r#"min(windows_logical_disk_free_bytes{volume=~"[A-Z]:"}) > 1e9"#],
    ))
    .await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(o.reason, "every condition holds");
    assert_eq!(
        value(
            &o,
            r#"windows_service_state{name="minlog2",state="running"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &o,
            r#"min(windows_logical_disk_free_bytes{volume=~"[A-Z]:"})"#
        ),
        Some(3.8654705664e9)
    );
    assert_eq!(value(&o, "status_code"), Some(200.0));
    assert_eq!(
        value(&o, "samples"),
        Some(40.0),
        "every sample of the fixture"
    );

    // A stopped service is crit, naming it; a low disk only warns.
    let o = run(spec(
        url.clone(),
        &[r#"windows_service_state{name="aktin-import",state="running"} == 1"#],
        &[r#"windows_logical_disk_free_bytes{volume=~"[A-Z]:"} > 5e9"#],
    ))
    .await;
    assert_eq!(o.status, Status::Crit, "{}", o.reason);
    assert_eq!(
        o.reason,
        r#"windows_service_state{name="aktin-import",state="running"} is 0 (expected == 1); 1 of 2 series of windows_logical_disk_free_bytes{volume=~"[A-Z]:"} fail (expected > 5000000000): windows_logical_disk_free_bytes{volume="D:"} is 3865470566.4"#
    );

    // Path labels with escaped quotes and backslashes are read as written by the exporter.
    let o = run(spec(
        url,
        &[r#"count(windows_service_info{path_name=~".*\\\\MinLog2\\\\bin\\\\.*"}) == 1"#],
        &[],
    ))
    .await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
}

#[tokio::test]
async fn cadvisor_containers_are_counted() {
    let url = fixture(CADVISOR).await;
    let o = run(spec(
        url.clone(),
        &[
            r#"count(container_last_seen{name=~"aktin-.*"}) >= 3"#,
            r#"container_memory_usage_bytes{name="aktin-wildfly"} < 2e9"#,
        ],
        &[],
    ))
    .await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(
        value(&o, r#"count(container_last_seen{name=~"aktin-.*"})"#),
        Some(3.0)
    );
    let o = run(spec(
        url.clone(),
        &[r#"count(container_last_seen{name=~"aktin-.*"}) >= 4"#],
        &[],
    ))
    .await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        r#"count(container_last_seen{name=~"aktin-.*"}) is 3 (expected >= 4)"#
    );
    let o = run(spec(
        url,
        &[r#"container_last_seen{name="aktin-gone"} > 0"#],
        &[],
    ))
    .await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        r#"container_last_seen{name="aktin-gone"} matched nothing"#
    );
}

#[tokio::test]
async fn bad_expositions_and_unreachable_exporters_are_reasons() {
    let url = fixture("this is not { an exposition\n").await;
    let o = run(spec(url, &["up == 1"], &[])).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.starts_with("exposition does not parse"),
        "{}",
        o.reason
    );

    let addr = serve(|_| Reply::text(404, "no metrics here")).await;
    let o = run(spec(format!("http://{addr}/metrics"), &["up == 1"], &[])).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(o.reason, "HTTP 404 (expected 2xx)");

    let addr = closed_port().await;
    let o = run(spec(format!("http://{addr}/metrics"), &["up == 1"], &[])).await;
    assert_eq!(o.status, Status::Crit);
    assert!(o.reason.contains("refused"), "{}", o.reason);

    // Bounded: a bigger exposition than allowed fails without reading it all.
    let url = fixture(CADVISOR).await;
    let mut s = spec(url, &["machine_cpu_cores > 0"], &[]);
    s.max_body_bytes = 1000;
    let o = run(s).await;
    assert_eq!(o.status, Status::Crit);
    assert!(o.reason.contains("1000"), "{}", o.reason);
}

/// Debian's node exporter on a free loopback port, stopped when dropped.
struct NodeExporter(Child, String);

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn node_exporter() -> NodeExporter {
    let port = closed_port().await.port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address={addr}"))
        // Only a few cheap collectors: the test is about the exposition, not this machine.
        .args([
            "--collector.disable-defaults",
            "--collector.loadavg",
            "--collector.cpu",
            "--collector.meminfo",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-node-exporter (Debian package) must be installed");
    let ne = NodeExporter(child, addr.clone());
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return ne;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node exporter did not listen on {addr}");
}

#[tokio::test]
async fn a_real_node_exporter() {
    let ne = node_exporter().await;
    let url = format!("http://{}/metrics", ne.1);
    let o = run(spec(
        url.clone(),
        &[
            r#"node_exporter_build_info{version=~".+"} == 1"#,
            r#"count(node_cpu_seconds_total{mode="idle"}) >= 1"#,
            "node_memory_MemTotal_bytes > 0",
            "node_load1 >= 0",
            r#"go_gc_duration_seconds{quantile="0.5"} >= 0"#,
            "go_gc_duration_seconds_count >= 0",
            r#"node_scrape_collector_success{collector!="nothing"} == 1"#,
        ],
        &[],
    ))
    .await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert!(value(&o, "node_memory_MemTotal_bytes").unwrap() > 1e6);
    assert!(value(&o, r#"count(node_cpu_seconds_total{mode="idle"})"#).unwrap() >= 1.0);

    let o = run(spec(
        url,
        &[r#"node_filesystem_avail_bytes{mountpoint="/"} > 0"#],
        &[],
    ))
    .await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        r#"node_filesystem_avail_bytes{mountpoint="/"} matched nothing"#
    );
}
