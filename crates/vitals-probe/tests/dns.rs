//! The DNS probe against a small authoritative server on 127.0.0.1, built in the test from
//! hickory-proto messages over a real UDP socket (and TCP, for truncated answers).

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use vitals_core::spec::DnsSpec;
use vitals_core::Status;
use vitals_probe::dns::DnsProber;
use vitals_probe::Outcome;

const TIMEOUT: Duration = Duration::from_secs(5);

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// Name → records; names not in it are NXDOMAIN, `servfail.example.com.` fails, and
/// `big.example.com.` is truncated over UDP so that the client must ask over TCP.
struct Zone {
    records: HashMap<String, Vec<RData>>,
    queries: AtomicUsize,
    tcp_queries: AtomicUsize,
}

impl Zone {
    fn example() -> Zone {
        let mut r: HashMap<String, Vec<RData>> = HashMap::new();
        let mut add = |n: &str, d: RData| r.entry(n.to_string()).or_default().push(d);
        add("www.example.com.", RData::A(A::new(10, 0, 0, 1)));
        add("www.example.com.", RData::A(A::new(10, 0, 0, 2)));
        add(
            "www.example.com.",
            RData::AAAA(AAAA::from_str("2001:db8::1").unwrap()),
        );
        add(
            "alias.example.com.",
            RData::CNAME(CNAME(name("www.example.com."))),
        );
        add(
            "example.com.",
            RData::MX(MX::new(10, name("Mail.Example.com."))),
        );
        add("example.com.", RData::NS(NS(name("ns1.example.com."))));
        add(
            "example.com.",
            RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
        );
        add(
            "example.com.",
            RData::TXT(TXT::new(vec!["site-verification=AbC123".into()])),
        );
        add("example.com.", RData::SOA(soa()));
        add(
            "_sip._tcp.example.com.",
            RData::SRV(SRV::new(10, 5, 5060, name("sip.example.com."))),
        );
        add(
            "1.0.0.10.in-addr.arpa.",
            RData::PTR(PTR(name("www.example.com."))),
        );
        // A name that exists, but has only TXT records: asking for A is NOERROR/NODATA.
        add(
            "textonly.example.com.",
            RData::TXT(TXT::new(vec!["x".into()])),
        );
        for i in 0..40u8 {
            add("big.example.com.", RData::A(A::new(10, 1, 0, i)));
        }
        Zone {
            records: r,
            queries: AtomicUsize::new(0),
            tcp_queries: AtomicUsize::new(0),
        }
    }

    fn answer(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        let req = Message::from_vec(request).ok()?;
        let query = req.queries().first()?.clone();
        let qname = query.name().to_lowercase().to_string();
        let mut resp = Message::new();
        resp.set_id(req.id())
            .set_message_type(MessageType::Response)
            .set_op_code(req.op_code())
            .set_recursion_desired(req.recursion_desired())
            .set_authoritative(true)
            .add_query(query.clone());
        let soa_record = Record::from_rdata(name("example.com."), 60, RData::SOA(soa()));
        if qname == "servfail.example.com." {
            resp.set_response_code(ResponseCode::ServFail);
        } else if udp && qname == "big.example.com." {
            resp.set_truncated(true);
        } else if let Some(data) = self.records.get(&qname) {
            let matching: Vec<Record> = data
                .iter()
                .filter(|d| d.record_type() == query.query_type())
                .map(|d| Record::from_rdata(query.name().clone(), 60, d.clone()))
                .collect();
            if matching.is_empty() {
                resp.add_name_server(soa_record);
            }
            resp.add_answers(matching);
        } else {
            resp.set_response_code(ResponseCode::NXDomain);
            resp.add_name_server(soa_record);
        }
        resp.to_vec().ok()
    }
}

fn soa() -> SOA {
    SOA::new(
        name("ns1.example.com."),
        name("hostmaster.example.com."),
        2024010101,
        3600,
        600,
        86400,
        60,
    )
}

/// Starts the server on UDP and TCP of one loopback port; returns `ip:port` and the zone.
async fn start_server() -> (String, Arc<Zone>) {
    let zone = Arc::new(Zone::example());
    // UDP and TCP on the same port: retry a few times in case the TCP port is taken.
    let mut bound = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            bound = Some((udp, tcp, addr));
            break;
        }
    }
    let (udp, tcp, addr) = bound.expect("no loopback port free for both UDP and TCP");
    let z = zone.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                return;
            };
            z.queries.fetch_add(1, Ordering::SeqCst);
            if let Some(resp) = z.answer(&buf[..n], true) {
                let _ = udp.send_to(&resp, peer).await;
            }
        }
    });
    let z = zone.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                return;
            };
            let z = z.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut req = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut req).await.is_err() {
                        return;
                    }
                    z.tcp_queries.fetch_add(1, Ordering::SeqCst);
                    let Some(resp) = z.answer(&req, false) else {
                        return;
                    };
                    let mut framed = (resp.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&resp);
                    if s.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr.to_string(), zone)
}

fn spec(query: &str, record: &str, server: &str, expect: &[&str]) -> DnsSpec {
    DnsSpec {
        query: query.to_string(),
        record: record.to_string(),
        server: Some(server.to_string()),
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

fn value(o: &Outcome, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

#[tokio::test]
async fn a_answers_match_expectations() {
    let (server, _zone) = start_server().await;
    let prober = DnsProber::new();
    let out = prober
        .probe(
            &spec("www.example.com", "A", &server, &["10.0.0.2", "10.0.0.1"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "expected answers present");
    assert_eq!(value(&out, "answers"), Some(2.0));
    assert!(value(&out, "dns_ms").is_some_and(|v| v >= 0.0));
    assert!(out.duration_us > 0);

    let out = prober
        .probe(&spec("WWW.Example.COM.", "a", &server, &[]), TIMEOUT)
        .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "resolved");
}

#[tokio::test]
async fn expected_answer_missing_is_crit_listing_answers() {
    let (server, _zone) = start_server().await;
    let out = DnsProber::new()
        .probe(
            &spec("www.example.com", "A", &server, &["10.0.0.1", "10.0.0.9"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "expected answer 10.0.0.9 missing (got 10.0.0.1, 10.0.0.2)"
    );
    assert_eq!(value(&out, "answers"), Some(2.0));
}

#[tokio::test]
async fn aaaa_compares_parsed_addresses() {
    let (server, _zone) = start_server().await;
    let out = DnsProber::new()
        .probe(
            &spec("www.example.com", "AAAA", &server, &["2001:0db8:0:0::1"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(value(&out, "answers"), Some(1.0));
}

#[tokio::test]
async fn nxdomain_is_crit() {
    let (server, _zone) = start_server().await;
    let out = DnsProber::new()
        .probe(&spec("nope.example.com", "A", &server, &[]), TIMEOUT)
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "NXDOMAIN");
    assert_eq!(value(&out, "answers"), Some(0.0));
}

#[tokio::test]
async fn no_records_of_the_type_is_crit() {
    let (server, _zone) = start_server().await;
    let out = DnsProber::new()
        .probe(&spec("textonly.example.com", "A", &server, &[]), TIMEOUT)
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "no A records");
}

#[tokio::test]
async fn server_failure_is_crit() {
    let (server, _zone) = start_server().await;
    let out = DnsProber::new()
        .probe(&spec("servfail.example.com", "A", &server, &[]), TIMEOUT)
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "SERVFAIL");
}

#[tokio::test]
async fn silent_server_times_out() {
    // Bound and never read: queries vanish.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = DnsProber::new()
        .probe(
            &spec("www.example.com", "A", &addr, &[]),
            Duration::from_millis(300),
        )
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, format!("timed out after 300ms querying {addr}"));
    drop(silent);
}

#[tokio::test]
async fn txt_answers_match_their_exact_text() {
    let (server, _zone) = start_server().await;
    let prober = DnsProber::new();
    let out = prober
        .probe(
            &spec(
                "example.com",
                "TXT",
                &server,
                &["v=spf1 -all", "site-verification=AbC123"],
            ),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(value(&out, "answers"), Some(2.0));

    let out = prober
        .probe(
            &spec("example.com", "TXT", &server, &["site-verification=abc123"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        r#"expected answer site-verification=abc123 missing (got "site-verification=AbC123", "v=spf1 -all")"#
    );
}

#[tokio::test]
async fn names_compare_normalised_for_mx_ns_cname_srv_soa_ptr() {
    let (server, _zone) = start_server().await;
    let prober = DnsProber::new();
    for (qname, record, expect) in [
        ("example.com", "MX", "mail.example.com"),
        ("example.com", "MX", "10 MAIL.example.com."),
        ("example.com", "NS", "NS1.example.com."),
        ("alias.example.com", "CNAME", "www.example.com"),
        ("_sip._tcp.example.com", "SRV", "sip.example.com."),
        ("_sip._tcp.example.com", "SRV", "10 5 5060 sip.example.com"),
        ("example.com", "SOA", "ns1.example.com"),
        ("10.0.0.1", "PTR", "www.example.com"),
        ("1.0.0.10.in-addr.arpa", "PTR", "www.example.com."),
    ] {
        let out = prober
            .probe(&spec(qname, record, &server, &[expect]), TIMEOUT)
            .await;
        assert_eq!(out.status, Status::Ok, "{qname} {record} {expect}: {out:?}");
        assert_eq!(value(&out, "answers"), Some(1.0), "{qname} {record}");
    }
    let out = prober
        .probe(
            &spec("example.com", "MX", &server, &["20 mail.example.com"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "expected answer 20 mail.example.com missing (got 10 mail.example.com)"
    );
}

#[tokio::test]
async fn every_probe_asks_the_server_again() {
    let (server, zone) = start_server().await;
    let prober = DnsProber::new();
    let s = spec("www.example.com", "A", &server, &[]);
    for _ in 0..3 {
        assert_eq!(prober.probe(&s, TIMEOUT).await.status, Status::Ok);
    }
    assert_eq!(zone.queries.load(Ordering::SeqCst), 3);
    // Negative answers are not cached either.
    let s = spec("nope.example.com", "A", &server, &[]);
    for _ in 0..2 {
        assert_eq!(prober.probe(&s, TIMEOUT).await.reason, "NXDOMAIN");
    }
    assert_eq!(zone.queries.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn truncated_udp_answer_is_asked_again_over_tcp() {
    let (server, zone) = start_server().await;
    let out = DnsProber::new()
        .probe(
            &spec("big.example.com", "A", &server, &["10.1.0.39"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(value(&out, "answers"), Some(40.0));
    assert_eq!(zone.tcp_queries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn many_answers_are_quoted_capped() {
    let (server, _zone) = start_server().await;
    let out = DnsProber::new()
        .probe(
            &spec("big.example.com", "A", &server, &["10.9.9.9"]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Crit);
    assert!(out.reason.ends_with(" and 30 more)"), "{}", out.reason);
}

#[tokio::test]
async fn bad_input_is_unknown_with_a_clear_reason() {
    let prober = DnsProber::new();
    let out = prober
        .probe(&spec("example.com", "HINFO", "127.0.0.1:53", &[]), TIMEOUT)
        .await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(
        out.reason,
        r#"unsupported record type "HINFO" (use one of A, AAAA, CNAME, MX, TXT, NS, PTR, SRV, SOA)"#
    );

    let out = prober
        .probe(
            &spec("example.com", "A", "dns.example.com:53", &[]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Unknown);
    assert!(
        out.reason
            .starts_with(r#"invalid DNS server "dns.example.com:53": expected ip:port"#),
        "{}",
        out.reason
    );

    let out = prober
        .probe(&spec("  ", "A", "127.0.0.1:53", &[]), TIMEOUT)
        .await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(out.reason, "empty DNS name");

    let label = "a".repeat(64);
    let out = prober
        .probe(
            &spec(&format!("{label}.example.com"), "A", "127.0.0.1:53", &[]),
            TIMEOUT,
        )
        .await;
    assert_eq!(out.status, Status::Unknown);
    assert!(out.reason.starts_with("invalid DNS name"), "{}", out.reason);
}
