//! ICMP probes against loopback, IPv4 and IPv6, with the socket this machine allows (tests run
//! as root here: datagram sockets if ping_group_range allows root's group, raw ones otherwise).
//! The unreachable and no-reply cases run in a private network namespace (crates/vitals tests),
//! so no packet leaves the machine.

use std::time::Duration;
use vitals_core::spec::{IcmpSpec, IpVersion, ProbeSpec};
use vitals_core::Status;
use vitals_probe::icmp::{self, SocketKind};
use vitals_probe::Prober;

fn spec(host: &str, ip: IpVersion, count: u32) -> IcmpSpec {
    IcmpSpec {
        host: host.into(),
        count,
        packet_interval: Duration::from_millis(20),
        ip,
        warn_loss: 20.0,
        crit_loss: 60.0,
        warn_rtt: None,
        crit_rtt: None,
    }
}

async fn run(s: IcmpSpec) -> vitals_probe::Outcome {
    Prober::new()
        .run(&ProbeSpec::Icmp(s), Duration::from_secs(3))
        .await
}

fn value(o: &vitals_probe::Outcome, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

#[test]
fn a_socket_is_available_here() {
    let kind = icmp::availability().expect("tests run with ping sockets or CAP_NET_RAW");
    assert!(matches!(kind, SocketKind::Datagram | SocketKind::Raw));
}

#[tokio::test]
async fn loopback_ipv4_answers_every_request() {
    let o = run(spec("127.0.0.1", IpVersion::Auto, 3)).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(o.reason, "0% loss (3 sent, 3 received)");
    assert_eq!(value(&o, "loss_percent"), Some(0.0));
    assert_eq!(value(&o, "received"), Some(3.0));
    let (min, avg, max) = (
        value(&o, "rtt_min_ms").unwrap(),
        value(&o, "rtt_avg_ms").unwrap(),
        value(&o, "rtt_max_ms").unwrap(),
    );
    assert!(min > 0.0 && min <= avg && avg <= max, "{min} {avg} {max}");
}

#[tokio::test]
async fn loopback_ipv6_answers() {
    let o = run(spec("::1", IpVersion::V6, 2)).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(value(&o, "loss_percent"), Some(0.0));
    assert!(value(&o, "rtt_avg_ms").is_some());
}

#[tokio::test]
async fn names_resolve_by_the_asked_ip_version() {
    let o = run(spec("localhost", IpVersion::V4, 1)).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    let o = run(spec("127.0.0.1", IpVersion::V6, 1)).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(o.reason, "127.0.0.1 is not an IPv6 address");
    let o = run(spec("no-such-host.invalid", IpVersion::Auto, 1)).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.starts_with("cannot resolve no-such-host.invalid"),
        "{}",
        o.reason
    );
}

#[tokio::test]
async fn a_round_trip_threshold_turns_a_healthy_ping_warn() {
    let mut s = spec("127.0.0.1", IpVersion::V4, 2);
    // Loopback answers in microseconds; anything above 1 ns is "slow".
    s.warn_rtt = Some(Duration::from_nanos(1));
    let o = run(s).await;
    assert_eq!(o.status, Status::Warn, "{}", o.reason);
    assert!(
        o.reason.contains("average round trip above"),
        "{}",
        o.reason
    );
}

#[tokio::test]
async fn concurrent_probes_keep_their_replies_apart() {
    let prober = std::sync::Arc::new(Prober::new());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let p = prober.clone();
        tasks.push(tokio::spawn(async move {
            p.run(
                &ProbeSpec::Icmp(spec("127.0.0.1", IpVersion::V4, 3)),
                Duration::from_secs(3),
            )
            .await
        }));
    }
    for t in tasks {
        let o = t.await.unwrap();
        assert_eq!(o.status, Status::Ok, "{}", o.reason);
        assert_eq!(
            value(&o, "received"),
            Some(3.0),
            "no reply counted twice or lost"
        );
    }
}
