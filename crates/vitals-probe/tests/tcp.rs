//! The TCP probe against real listeners on 127.0.0.1.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use vitals_core::spec::TcpSpec;
use vitals_core::Status;
use vitals_probe::tcp::{probe, unescape, MAX_READ};
use vitals_probe::Outcome;

const TIMEOUT: Duration = Duration::from_secs(5);

fn spec(address: &str, send: Option<&str>, expect: Option<&str>) -> TcpSpec {
    TcpSpec {
        address: address.to_string(),
        send: send.map(str::to_string),
        expect: expect.map(str::to_string),
    }
}

fn value(o: &Outcome, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

#[tokio::test]
async fn connect_only_is_ok_with_timings() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let _ = l.accept().await.unwrap();
    });
    let out = probe(&spec(&addr, None, None), TIMEOUT).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "connected");
    assert!(value(&out, "connect_ms").is_some_and(|v| v >= 0.0));
    assert!(value(&out, "total_ms").is_some_and(|v| v >= value(&out, "connect_ms").unwrap()));
    assert!(out.duration_us > 0);
    server.await.unwrap();
}

#[tokio::test]
async fn resolves_host_names() {
    let (l, addr) = listener().await;
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let server = tokio::spawn(async move {
        let _ = l.accept().await.unwrap();
    });
    let out = probe(&spec(&format!("localhost:{port}"), None, None), TIMEOUT).await;
    // `localhost` may resolve to ::1 first; the probe tries every address like `connect` does.
    assert_eq!(out.status, Status::Ok, "{out:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn refused_is_crit_naming_the_address() {
    let out = probe(&spec("127.0.0.1:1", None, None), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "connect to 127.0.0.1:1 refused");
    assert!(value(&out, "total_ms").is_some());
    assert!(value(&out, "connect_ms").is_none());
}

#[tokio::test]
async fn send_with_escapes_and_expect_answer() {
    let (l, addr) = listener().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed early");
            got.extend_from_slice(&buf[..n]);
        }
        // The answer arrives in two pieces, the expected string split across them.
        s.write_all(b"+PO").await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
        s.write_all(b"NG\r\n").await.unwrap();
        let _ = tx.send(got);
        // Keep the connection open until the client closes it.
        let _ = s.read(&mut buf).await;
    });
    // As TOML literal string 'PING\r\n' delivers it: backslashes as written.
    let out = probe(&spec(&addr, Some(r"PING\r\n"), Some("+PONG")), TIMEOUT).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "received \"+PONG\"");
    assert_eq!(rx.await.unwrap(), b"PING\r\n");
}

#[tokio::test]
async fn wrong_answer_is_crit_quoting_what_came() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 6];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(b"-ERR unknown command\r\n").await.unwrap();
        // Closing ends the read with what came so far.
    });
    let out = probe(&spec(&addr, Some("PING\r\n"), Some("+PONG")), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        r#"expected "+PONG" not received (got: "-ERR unknown command\r\n")"#
    );
}

#[tokio::test]
async fn answer_then_reset_still_quotes_the_answer() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        // Our request stays unread, so closing sends a reset right after the answer.
        s.write_all(b"-ERR go away\r\n").await.unwrap();
    });
    let out = probe(&spec(&addr, Some("PING\r\n"), Some("+PONG")), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        r#"expected "+PONG" not received (got: "-ERR go away\r\n")"#
    );
}

#[tokio::test]
async fn closed_without_answer_says_nothing_came() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let _ = l.accept().await.unwrap();
    });
    let out = probe(&spec(&addr, None, Some("SSH-")), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, r#"expected "SSH-" not received (got: nothing)"#);
}

#[tokio::test]
async fn silent_server_times_out_waiting() {
    let (l, addr) = listener().await;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (_s, _) = l.accept().await.unwrap();
        // Hold the connection open, silent, until the test is over.
        let _ = done_rx.await;
    });
    let out = probe(&spec(&addr, None, Some("+OK")), Duration::from_millis(300)).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, r#"timed out after 300ms waiting for "+OK""#);
    assert!(value(&out, "connect_ms").is_some());
    let _ = done_tx.send(());
}

#[tokio::test]
async fn endless_answer_is_cut_at_the_read_limit() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let chunk = vec![b'z'; 16 * 1024];
        let mut written = 0usize;
        // Writes until the client goes away; bounded so a bug cannot hang the test.
        while written < 64 * MAX_READ {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
            written += chunk.len();
        }
        written
    });
    let out = probe(&spec(&addr, None, Some("+OK")), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    let z = "z".repeat(64);
    assert_eq!(
        out.reason,
        format!("expected \"+OK\" not received (got: \"{z}\" truncated)")
    );
    let written = server.await.unwrap();
    assert!(written < 64 * MAX_READ, "the probe kept reading");
}

#[tokio::test]
async fn reset_is_crit() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        // Zero linger turns close into a RST.
        s.set_zero_linger().unwrap();
        let mut s = s;
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf).await;
        drop(s);
    });
    let out = probe(&spec(&addr, Some("HELLO\n"), Some("+OK")), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, r#"connection reset while waiting for "+OK""#);
}

#[tokio::test]
async fn connect_timeout_names_the_phase() {
    // A listener that never accepts, with its backlog filled: further SYNs are dropped, so
    // a connect hangs. Fill it until a connect attempt itself hangs (bounded attempts).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = socket.listen(1).unwrap();
    let addr = l.local_addr().unwrap();
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the backlog: {e}"),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(
        full,
        "could not fill the listen backlog of a loopback listener"
    );
    let out = probe(
        &spec(&addr.to_string(), None, None),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "timed out after 300ms connecting");
    drop(held);
    drop(l);
}

#[tokio::test]
async fn bad_addresses_are_unknown_with_a_clear_reason() {
    for (address, reason) in [
        (
            "localhost",
            r#"invalid address "localhost": expected host:port"#,
        ),
        (
            "localhost:",
            r#"invalid address "localhost:": expected host:port"#,
        ),
        (":80", r#"invalid address ":80": expected host:port"#),
        (
            "host:99999",
            r#"invalid address "host:99999": expected host:port"#,
        ),
        (
            "::1:80",
            r#"invalid address "::1:80": write an IPv6 address as [addr]:port"#,
        ),
    ] {
        let out = probe(&spec(address, None, None), TIMEOUT).await;
        assert_eq!(out.status, Status::Unknown, "{address}");
        assert_eq!(out.reason, reason);
    }
}

#[test]
fn escapes() {
    assert_eq!(unescape(r"PING\r\n"), b"PING\r\n");
    assert_eq!(unescape(r"a\tb\\c\0"), b"a\tb\\c\0");
    assert_eq!(unescape(r"\x41\x7e"), b"A~");
    // Unknown or incomplete escapes stay as written.
    assert_eq!(unescape(r"\q\x4\xzz\"), br"\q\x4\xzz\");
    assert_eq!(unescape("real\r\n"), b"real\r\n");
}
