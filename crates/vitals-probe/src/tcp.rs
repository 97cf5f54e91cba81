//! TCP probe: connect to `host:port`, optionally send a string and wait for an expected one.
//!
//! Phases share one deadline, so the whole probe costs at most its timeout, and a timeout
//! names the phase it hit ("timed out after 2s connecting", "… waiting for \"+OK\"").
//! The answer is read into a buffer of at most [`MAX_READ`] bytes, so an endless stream costs
//! bounded memory. `send` and `expect` understand `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`
//! escapes, because TOML literal strings (`'PING\r\n'`) keep backslashes as written.
//!
//! Values: `connect_ms` (the TCP handshake) and `total_ms` (everything, resolution included).

use crate::{fmt_duration, Outcome};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use vitals_core::spec::TcpSpec;
use vitals_core::{Status, Value};

/// At most this many bytes of the answer are read while looking for `expect`.
pub const MAX_READ: usize = 64 * 1024;

/// How much of an unexpected answer is quoted in the reason.
const QUOTE_BYTES: usize = 64;

/// Runs one TCP probe bounded by `timeout`.
pub async fn probe(spec: &TcpSpec, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut values = Vec::new();
    let (status, reason) = run(spec, timeout, deadline, &mut values).await;
    let elapsed = started.elapsed();
    values.push(Value::new("total_ms", ms(elapsed)));
    let mut out = Outcome::new(status, reason);
    out.values = values;
    out.duration_us = elapsed.as_micros() as u64;
    out
}

async fn run(
    spec: &TcpSpec,
    timeout: Duration,
    deadline: tokio::time::Instant,
    values: &mut Vec<Value>,
) -> (Status, String) {
    let after = fmt_duration(timeout);
    let address = spec.address.trim();
    if let Err(e) = check_address(address) {
        return (Status::Unknown, e);
    }
    let send = spec.send.as_deref().map(unescape);
    let expect = spec
        .expect
        .as_deref()
        .map(unescape)
        .filter(|e| !e.is_empty());
    if let Some(e) = &expect {
        if e.len() > MAX_READ {
            return (
                Status::Unknown,
                format!(
                    "expect is longer than the {} KiB read limit",
                    MAX_READ / 1024
                ),
            );
        }
    }

    let addrs: Vec<SocketAddr> = match timeout_at(deadline, tokio::net::lookup_host(address)).await
    {
        Err(_) => return (Status::Crit, format!("timed out after {after} resolving")),
        Ok(Err(e)) => return (Status::Crit, format!("cannot resolve {address}: {e}")),
        Ok(Ok(a)) => a.collect(),
    };
    if addrs.is_empty() {
        return (
            Status::Crit,
            format!("cannot resolve {address}: no addresses"),
        );
    }

    let connect_started = Instant::now();
    let mut stream = None;
    let mut last_err = None;
    // Like `TcpStream::connect(host:port)`: try every address, report the last failure.
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return (Status::Crit, format!("timed out after {after} connecting")),
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_err = Some((*addr, e)),
        }
    }
    let Some(mut stream) = stream else {
        let reason = match last_err {
            Some((addr, e)) => format!("connect to {addr} {}", describe_io(&e)),
            None => format!("cannot connect to {address}"),
        };
        return (Status::Crit, reason);
    };
    values.push(Value::new("connect_ms", ms(connect_started.elapsed())));

    if let Some(send) = &send {
        let write = async {
            stream.write_all(send).await?;
            stream.flush().await
        };
        match timeout_at(deadline, write).await {
            Err(_) => return (Status::Crit, format!("timed out after {after} sending")),
            Ok(Err(e)) => {
                return (
                    Status::Crit,
                    format!("connection {} while sending", describe_io(&e)),
                )
            }
            Ok(Ok(())) => {}
        }
    }

    let Some(expect) = expect else {
        return (Status::Ok, "connected".to_string());
    };
    let shown = quote(&expect);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let read = async {
        loop {
            let room = MAX_READ - buf.len();
            if room == 0 {
                return Ok(false);
            }
            let want = room.min(chunk.len());
            let n = stream.read(&mut chunk[..want]).await?;
            if n == 0 {
                return Ok(false);
            }
            // Only the new bytes plus an overlap of `expect.len() - 1` can hold a new match.
            let from = buf.len().saturating_sub(expect.len() - 1);
            buf.extend_from_slice(&chunk[..n]);
            if contains(&buf[from..], &expect) {
                return Ok(true);
            }
        }
    };
    let result = timeout_at(deadline, read).await;
    match result {
        Err(_) => (
            Status::Crit,
            format!("timed out after {after} waiting for {shown}"),
        ),
        // A server that answers and closes with our request unread sends a reset after its
        // answer; what it said is then the useful part.
        Ok(Err(e)) if buf.is_empty() => (
            Status::Crit,
            format!("connection {} while waiting for {shown}", describe_io(&e)),
        ),
        Ok(Ok(true)) => (Status::Ok, format!("received {shown}")),
        Ok(Ok(false) | Err(_)) => {
            let got = if buf.is_empty() {
                "nothing".to_string()
            } else if buf.len() > QUOTE_BYTES {
                format!("{} truncated", quote(&buf[..QUOTE_BYTES]))
            } else {
                quote(&buf)
            };
            (
                Status::Crit,
                format!("expected {shown} not received (got: {got})"),
            )
        }
    }
}

/// `host:port` with a numeric port; IPv6 literals as `[::1]:80`.
fn check_address(address: &str) -> Result<(), String> {
    let bad = || format!("invalid address {address:?}: expected host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "invalid address {address:?}: write an IPv6 address as [addr]:port"
        ));
    }
    Ok(())
}

/// Short, stable words for the errors a probe meets; the OS text otherwise.
fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_string(),
        io::ErrorKind::ConnectionReset => "reset".to_string(),
        io::ErrorKind::ConnectionAborted => "aborted".to_string(),
        io::ErrorKind::BrokenPipe => "closed by peer".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        io::ErrorKind::HostUnreachable => "failed: host unreachable".to_string(),
        io::ErrorKind::NetworkUnreachable => "failed: network unreachable".to_string(),
        io::ErrorKind::AddrNotAvailable => "failed: address not available".to_string(),
        _ => format!("failed: {}", crate::exec::strip_os_error(&e.to_string())),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Bytes as a quoted string with control characters escaped (`"+PONG\r\n"`).
fn quote(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Turns `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH` into bytes; other backslashes stay as written.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let esc = match b[i + 1] {
                b'r' => Some((b'\r', 2)),
                b'n' => Some((b'\n', 2)),
                b't' => Some((b'\t', 2)),
                b'0' => Some((0, 2)),
                b'\\' => Some((b'\\', 2)),
                b'x' => b
                    .get(i + 2..i + 4)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .map(|v| (v, 4)),
                _ => None,
            };
            if let Some((byte, len)) = esc {
                out.push(byte);
                i += len;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl crate::Probe for vitals_core::spec::TcpSpec {
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
