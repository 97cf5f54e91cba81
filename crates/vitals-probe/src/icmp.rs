//! ICMP probe: `count` echo requests `interval` apart to one address (IPv4 or IPv6), replies
//! collected until all are in or the timeout ends the probe.
//!
//! Sockets: an unprivileged ICMP datagram socket (`SOCK_DGRAM, IPPROTO_ICMP[V6]`, allowed when
//! the process' group is inside `net.ipv4.ping_group_range`; the kernel then picks the echo
//! identifier and hands us only our own replies) or, failing that, a raw socket (needs
//! `CAP_NET_RAW`; we filter replies by identifier, sequence and a per-run token). Without
//! either the probe says exactly what is needed ([`choose`], also used by `vitals config check`).
//!
//! Values: `loss_percent`, `received`, and with at least one reply `rtt_min_ms`, `rtt_avg_ms`,
//! `rtt_max_ms`. Loss at or above `warn_loss` / `crit_loss`, and an average round trip slower
//! than `warn_rtt` / `crit_rtt`, set the status.

use crate::{fmt_duration, Outcome};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, timeout_at};
use vitals_core::spec::{IcmpSpec, IpVersion};
use vitals_core::{Status, Value};

/// Which kind of socket a probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// Unprivileged ICMP datagram socket (`net.ipv4.ping_group_range`).
    Datagram,
    /// Raw socket (`CAP_NET_RAW`).
    Raw,
}

/// What this process may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    pub datagram: bool,
    pub raw: bool,
}

/// The socket to use given what is allowed, or the error that names what is needed.
pub fn choose(p: Privileges) -> Result<SocketKind, String> {
    if p.datagram {
        Ok(SocketKind::Datagram)
    } else if p.raw {
        Ok(SocketKind::Raw)
    } else {
        Err(format!(
            "ICMP needs unprivileged ping sockets or CAP_NET_RAW: allow this process' group \
             (gid {}) in net.ipv4.ping_group_range (now \"{}\"; e.g. sysctl -w \
             net.ipv4.ping_group_range=\"0 2147483647\"), or grant CAP_NET_RAW (setcap \
             cap_net_raw+ep on the binary, or AmbientCapabilities=CAP_NET_RAW in its systemd unit)",
            current_gid(),
            ping_group_range().unwrap_or_else(|| "unreadable".into())
        ))
    }
}

/// The effective group of this process (the owner group of `/proc/self`).
fn current_gid() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.gid().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn ping_group_range() -> Option<String> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .ok()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn protocol(v6: bool) -> Protocol {
    if v6 {
        Protocol::ICMPV6
    } else {
        Protocol::ICMPV4
    }
}

fn domain(v6: bool) -> Domain {
    if v6 {
        Domain::IPV6
    } else {
        Domain::IPV4
    }
}

fn denied(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EPROTONOSUPPORT)
    )
}

/// Opens the best socket allowed for this address family.
fn open(v6: bool) -> Result<(Socket, SocketKind), String> {
    let attempt = |ty: Type| match Socket::new(domain(v6), ty, Some(protocol(v6))) {
        Ok(s) => Ok(Some(s)),
        Err(e) if denied(&e) => Ok(None),
        Err(e) => Err(format!("cannot open an ICMP socket: {e}")),
    };
    let dgram = attempt(Type::DGRAM)?;
    let raw = if dgram.is_none() {
        attempt(Type::RAW)?
    } else {
        None
    };
    let kind = choose(Privileges {
        datagram: dgram.is_some(),
        raw: raw.is_some(),
    })?;
    match kind {
        SocketKind::Datagram => dgram,
        SocketKind::Raw => raw,
    }
    .map(|s| (s, kind))
    .ok_or_else(|| "no ICMP socket could be opened".to_string())
}

/// Which socket an ICMP check would use here, or why none can be opened (for
/// `vitals config check` and start-up).
pub fn availability() -> Result<SocketKind, String> {
    open(false).map(|(_, k)| k)
}

/// A token per run, so a raw socket tells our replies from other processes' (and from earlier
/// runs').
fn token() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64 of time and counter: distinct per run and per process.
    let mut z = t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const PAYLOAD: usize = 24;

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum, identifier, sequence, then the token and padding.
pub fn echo_request(v6: bool, id: u16, seq: u16, token: u64) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&token.to_be_bytes());
    for (i, b) in p[16..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        // ICMPv6 checksums cover a pseudo-header and are filled in by the kernel.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The sequence number of an echo reply of ours in `packet` (as received on this socket kind).
pub fn parse_reply(v6: bool, kind: SocketKind, packet: &[u8], id: u16, token: u64) -> Option<u16> {
    let icmp = if !v6 && kind == SocketKind::Raw {
        // IPv4 raw sockets deliver the IP header too.
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(ihl..)?
    } else {
        packet
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 16 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    // Datagram sockets: the kernel chose the identifier and filters by it already.
    if kind == SocketKind::Raw && u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    if icmp[8..16] != token.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs one ICMP probe bounded by `timeout`.
pub async fn probe(spec: &IcmpSpec, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut values = Vec::new();
    let (status, reason) = run(spec, timeout, deadline, &mut values).await;
    let mut out = Outcome::new(status, reason);
    out.values = values;
    out.duration_us = started.elapsed().as_micros() as u64;
    out
}

async fn resolve(
    spec: &IcmpSpec,
    deadline: tokio::time::Instant,
    after: &str,
) -> Result<IpAddr, String> {
    let host = spec
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return match (spec.ip, ip) {
            (IpVersion::V4, IpAddr::V6(_)) => Err(format!("{ip} is not an IPv4 address")),
            (IpVersion::V6, IpAddr::V4(_)) => Err(format!("{ip} is not an IPv6 address")),
            _ => Ok(ip),
        };
    }
    let addrs: Vec<SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((host, 0))).await {
            Err(_) => return Err(format!("timed out after {after} resolving {host}")),
            Ok(Err(e)) => return Err(format!("cannot resolve {host}: {e}")),
            Ok(Ok(a)) => a.collect(),
        };
    addrs
        .iter()
        .map(SocketAddr::ip)
        .find(|ip| match spec.ip {
            IpVersion::V4 => ip.is_ipv4(),
            IpVersion::V6 => ip.is_ipv6(),
            IpVersion::Auto => true,
        })
        .ok_or_else(|| {
            let family = match spec.ip {
                IpVersion::V4 => " IPv4",
                IpVersion::V6 => " IPv6",
                IpVersion::Auto => "",
            };
            format!("cannot resolve {host}: no{family} address")
        })
}

fn describe_send_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENETUNREACH) => "network unreachable".into(),
        Some(libc::EHOSTUNREACH) => "host unreachable".into(),
        Some(libc::EACCES) | Some(libc::EPERM) => "not permitted".into(),
        Some(libc::EADDRNOTAVAIL) => "address not available".into(),
        _ => crate::exec::strip_os_error(&e.to_string()),
    }
}

async fn run(
    spec: &IcmpSpec,
    timeout: Duration,
    deadline: tokio::time::Instant,
    values: &mut Vec<Value>,
) -> (Status, String) {
    let after = fmt_duration(timeout);
    let count = spec.count.clamp(1, 100) as usize;
    let ip = match resolve(spec, deadline, &after).await {
        Ok(ip) => ip,
        Err(e) => return (Status::Crit, e),
    };
    let v6 = ip.is_ipv6();
    let (socket, kind) = match open(v6) {
        Ok(s) => s,
        Err(e) => return (Status::Unknown, e),
    };
    if let Err(e) = socket.set_nonblocking(true) {
        return (Status::Unknown, format!("cannot use the ICMP socket: {e}"));
    }
    let std_socket: std::net::UdpSocket = socket.into();
    let sock = match UdpSocket::from_std(std_socket) {
        Ok(s) => s,
        Err(e) => return (Status::Unknown, format!("cannot use the ICMP socket: {e}")),
    };
    let target = SocketAddr::new(ip, 0);
    // Connected: the kernel drops ICMP from other addresses (raw sockets see all of it).
    if let Err(e) = sock.connect(target).await {
        let lost = (
            Status::Crit,
            format!("cannot reach {ip}: {}", describe_send_error(&e)),
        );
        values.push(Value::new("loss_percent", 100.0));
        values.push(Value::new("received", 0.0));
        return lost;
    }

    let token = token();
    let id = (token >> 48) as u16;
    let start = tokio::time::Instant::now();
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    let mut rtts: Vec<Duration> = Vec::new();
    let mut send_error: Option<String> = None;
    let mut next = 0usize;
    let mut buf = [0u8; 1500];
    loop {
        if rtts.len() == count || (next == count && sent_at.is_empty()) {
            break;
        }
        let send_due = start + spec.packet_interval * next as u32;
        tokio::select! {
            _ = sleep_until(send_due), if next < count => {
                let seq = next as u16;
                let packet = echo_request(v6, id, seq, token);
                match sock.send(&packet).await {
                    Ok(_) => {
                        sent_at.insert(seq, Instant::now());
                    }
                    Err(e) => {
                        send_error.get_or_insert_with(|| describe_send_error(&e));
                    }
                }
                next += 1;
            }
            r = sock.recv(&mut buf) => {
                match r {
                    Ok(n) => {
                        if let Some(seq) = parse_reply(v6, kind, &buf[..n], id, token) {
                            if let Some(t) = sent_at.remove(&seq) {
                                rtts.push(t.elapsed());
                            }
                        }
                    }
                    // ICMP errors for our requests (e.g. unreachable) come back as socket
                    // errors on a connected socket; the request is simply lost.
                    Err(e) => {
                        send_error.get_or_insert_with(|| describe_send_error(&e));
                    }
                }
            }
            _ = sleep_until(deadline) => break,
        }
    }

    let received = rtts.len();
    let loss = (count - received) as f64 * 100.0 / count as f64;
    let loss = (loss * 100.0).round() / 100.0;
    values.push(Value::new("loss_percent", loss));
    values.push(Value::new("received", received as f64));
    let mut avg = None;
    if received > 0 {
        let min = rtts.iter().min().copied().unwrap_or_default();
        let max = rtts.iter().max().copied().unwrap_or_default();
        let mean = rtts.iter().sum::<Duration>() / received as u32;
        values.push(Value::new("rtt_min_ms", ms(min)));
        values.push(Value::new("rtt_avg_ms", ms(mean)));
        values.push(Value::new("rtt_max_ms", ms(max)));
        avg = Some(mean);
    }

    let summary = format!("{loss}% loss ({count} sent, {received} received)");
    let mut status = Status::Ok;
    let mut why: Vec<String> = Vec::new();
    if loss >= spec.crit_loss {
        status = Status::Crit;
    } else if loss >= spec.warn_loss {
        status = Status::Warn;
    }
    if received == 0 {
        why.push(match &send_error {
            Some(e) => format!("no reply from {ip}: {e}"),
            None => format!("no reply from {ip} within {after}"),
        });
    }
    if let Some(avg) = avg {
        if spec.crit_rtt.is_some_and(|c| avg > c) {
            status = Status::Crit;
            why.push(format!(
                "average round trip above {}",
                fmt_duration(spec.crit_rtt.unwrap_or_default())
            ));
        } else if spec.warn_rtt.is_some_and(|w| avg > w) {
            status = status.worst(Status::Warn);
            why.push(format!(
                "average round trip above {}",
                fmt_duration(spec.warn_rtt.unwrap_or_default())
            ));
        }
    }
    let reason = if why.is_empty() {
        summary
    } else {
        format!("{summary}: {}", why.join("; "))
    };
    (status, reason)
}

impl crate::Probe for vitals_core::spec::IcmpSpec {
    async fn run(
        &self,
        _prober: &crate::Prober,
        _kind: vitals_core::spec::ProbeKind,
        _key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        probe(self, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_names_what_is_needed() {
        assert_eq!(
            choose(Privileges {
                datagram: true,
                raw: true
            }),
            Ok(SocketKind::Datagram)
        );
        assert_eq!(
            choose(Privileges {
                datagram: false,
                raw: true
            }),
            Ok(SocketKind::Raw)
        );
        let e = choose(Privileges {
            datagram: false,
            raw: false,
        })
        .unwrap_err();
        assert!(e.contains("net.ipv4.ping_group_range"), "{e}");
        assert!(e.contains("CAP_NET_RAW"), "{e}");
    }

    #[test]
    fn requests_carry_a_valid_checksum_and_replies_are_recognised() {
        let token = 0x0102_0304_0506_0708;
        let req = echo_request(false, 0xbeef, 7, token);
        assert_eq!(checksum(&req), 0, "a correct ICMP checksum sums to zero");
        // The reply is the request with type 0, behind a 20-byte IPv4 header on raw sockets.
        let mut reply = req.clone();
        reply[0] = 0;
        let mut raw = vec![0x45u8];
        raw.extend_from_slice(&[0; 19]);
        raw.extend_from_slice(&reply);
        assert_eq!(
            parse_reply(false, SocketKind::Raw, &raw, 0xbeef, token),
            Some(7)
        );
        assert_eq!(
            parse_reply(false, SocketKind::Raw, &raw, 0xbeee, token),
            None
        );
        assert_eq!(
            parse_reply(false, SocketKind::Raw, &raw, 0xbeef, token + 1),
            None
        );
        assert_eq!(
            parse_reply(false, SocketKind::Datagram, &reply, 0, token),
            Some(7)
        );
        // Our own request seen on a raw socket is not a reply.
        assert_eq!(
            parse_reply(false, SocketKind::Datagram, &req, 0, token),
            None
        );
        let mut r6 = echo_request(true, 1, 2, token);
        r6[0] = 129;
        assert_eq!(parse_reply(true, SocketKind::Raw, &r6, 1, token), Some(2));
        assert_eq!(
            parse_reply(true, SocketKind::Raw, &r6[..10], 1, token),
            None
        );
        assert_eq!(parse_reply(false, SocketKind::Raw, &[], 1, token), None);
    }
}
