//! Certificates through the HTTPS probe and the TLS probe, against rustls servers on
//! 127.0.0.1 with certificates made by rcgen in the test: a custom CA, expired, wrong host,
//! unknown authority, expiring soon, `insecure`, and broken handshakes.

mod http_support;

use http_support::{
    closed_port, self_signed, self_signed_ca_as_server, serve_raw, serve_tls, value, Ca, Reply,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use vitals_core::spec::{HttpSpec, TlsSpec};
use vitals_core::Status;
use vitals_probe::http::HttpProber;
use vitals_probe::{tls, Outcome};

const TIMEOUT: Duration = Duration::from_secs(2);

async fn https_server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    serve_tls(config, |_| Reply::text(200, "secure hello")).await
}

fn https(addr: SocketAddr, ca: Option<&tempfile::NamedTempFile>) -> HttpSpec {
    let mut s = HttpSpec::new(format!("https://localhost:{}/", addr.port()));
    s.ca_file = ca.map(|f| f.path().to_path_buf());
    s
}

fn tls_spec(addr: SocketAddr, ca: Option<&tempfile::NamedTempFile>) -> TlsSpec {
    TlsSpec {
        address: format!("localhost:{}", addr.port()),
        server_name: None,
        warn_days: 14,
        crit_days: 3,
        ca_file: ca.map(|f| f.path().to_path_buf()),
    }
}

async fn get(spec: &HttpSpec) -> Outcome {
    HttpProber::new().probe(spec, TIMEOUT).await
}

#[tokio::test]
async fn valid_certificate_from_a_custom_ca() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    let addr = https_server(ca.server(&["localhost"], -1, 30)).await;

    let out = get(&https(addr, Some(&pem))).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Ok, "HTTP 200"),
        "{out:?}"
    );
    assert!(value(&out.values, "tls_ms").is_some());
    let days = value(&out.values, "cert_days_left").unwrap();
    assert!(days > 29.0 && days <= 30.0, "{days}");
    assert_eq!(value(&out.values, "status_code"), Some(200.0));

    let out = tls::probe(&tls_spec(addr, Some(&pem)), TIMEOUT).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Ok, "certificate valid"),
        "{out:?}"
    );
    assert!(value(&out.values, "tls_ms").is_some());
    assert!(value(&out.values, "cert_days_left").is_some_and(|d| d > 29.0));
}

#[tokio::test]
async fn ip_address_certificates_and_server_name_override() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    let addr = https_server(ca.server(&["localhost", "127.0.0.1"], -1, 30)).await;
    let mut s = https(addr, Some(&pem));
    s.url = format!("https://{addr}/");
    assert_eq!(get(&s).await.status, Status::Ok);

    // Connect to the IP, verify and send SNI for a name.
    let mut t = tls_spec(addr, Some(&pem));
    t.address = addr.to_string();
    t.server_name = Some("localhost".into());
    assert_eq!(tls::probe(&t, TIMEOUT).await.status, Status::Ok);
}

#[tokio::test]
async fn expired_certificate() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    let addr = https_server(ca.server(&["localhost"], -30, -2)).await;

    let out = get(&https(addr, Some(&pem))).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "certificate expired");
    assert!(value(&out.values, "cert_days_left").is_some_and(|d| d < -1.0));
    assert_eq!(value(&out.values, "status_code"), None, "nothing was sent");

    let out = tls::probe(&tls_spec(addr, Some(&pem)), TIMEOUT).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Crit, "certificate expired")
    );
    assert!(value(&out.values, "cert_days_left").is_some_and(|d| d < -1.0));
}

#[tokio::test]
async fn wrong_host_name() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    let addr = https_server(ca.server(&["other.example"], -1, 30)).await;

    let out = get(&https(addr, Some(&pem))).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "certificate not valid for name localhost");

    let out = tls::probe(&tls_spec(addr, Some(&pem)), TIMEOUT).await;
    assert_eq!(out.reason, "certificate not valid for name localhost");

    let mut t = tls_spec(addr, Some(&pem));
    t.server_name = Some("other.example".into());
    assert_eq!(tls::probe(&t, TIMEOUT).await.status, Status::Ok);
}

#[tokio::test]
async fn self_signed_is_an_unknown_authority() {
    let addr = https_server(self_signed(&["localhost"])).await;

    let out = get(&https(addr, None)).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "certificate signed by unknown authority");
    assert!(value(&out.values, "cert_days_left").is_some());

    // Another CA's bundle does not help either.
    let other = Ca::new("Vitals Other CA").write_pem();
    let out = get(&https(addr, Some(&other))).await;
    assert_eq!(out.reason, "certificate signed by unknown authority");

    let out = tls::probe(&tls_spec(addr, None), TIMEOUT).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Crit, "certificate signed by unknown authority")
    );
}

#[tokio::test]
async fn certificate_expiring_in_five_days_warns_with_defaults() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    // Midnight six days from today: between five and six days left.
    let addr = https_server(ca.server(&["localhost"], -1, 6)).await;

    let out = get(&https(addr, Some(&pem))).await;
    assert_eq!(out.status, Status::Warn, "{out:?}");
    assert_eq!(out.reason, "certificate expires within 14 days");

    let out = tls::probe(&tls_spec(addr, Some(&pem)), TIMEOUT).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Warn, "certificate expires within 14 days")
    );

    let mut t = tls_spec(addr, Some(&pem));
    t.crit_days = 7;
    assert_eq!(
        tls::probe(&t, TIMEOUT).await.reason,
        "certificate expires within 7 days"
    );
    let mut s = https(addr, Some(&pem));
    s.cert_warn_days = 3;
    s.cert_crit_days = 1;
    assert_eq!(get(&s).await.status, Status::Ok);
}

#[tokio::test]
async fn insecure_skips_verification_but_reports_expiry() {
    let addr = https_server(self_signed(&["other.example"])).await;
    let mut s = https(addr, None);
    s.insecure = true;
    let out = get(&s).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Ok, "HTTP 200"),
        "{out:?}"
    );
    assert!(value(&out.values, "cert_days_left").is_some());

    let ca = Ca::new("Vitals Test CA");
    let addr = https_server(ca.server(&["localhost"], -30, -2)).await;
    let mut s = https(addr, None);
    s.insecure = true;
    s.body_contains = Some("secure hello".into());
    let out = get(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "certificate expired");
    assert_eq!(
        value(&out.values, "status_code"),
        Some(200.0),
        "the request was made"
    );
}

#[tokio::test]
async fn https_redirect_to_http_and_back_keeps_the_smallest_expiry() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    let plain = http_support::serve(|_| Reply::text(200, "plain")).await;
    let location = format!("http://{plain}/");
    let addr = serve_tls(ca.server(&["localhost"], -1, 30), move |_| {
        Reply::redirect(302, &location)
    })
    .await;
    let mut s = https(addr, Some(&pem));
    s.body_contains = Some("plain".into());
    let out = get(&s).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert!(value(&out.values, "tls_ms").is_some());
    assert!(value(&out.values, "cert_days_left").is_some());
}

#[tokio::test]
async fn plain_server_on_an_https_url_times_out_in_the_handshake() {
    // The plain server waits for an HTTP request head that a ClientHello never completes.
    let addr = http_support::serve(|_| Reply::text(200, "plain")).await;
    let out = HttpProber::new()
        .probe(&https(addr, None), Duration::from_millis(500))
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "timed out after 500ms during TLS handshake");

    let out = tls::probe(&tls_spec(addr, None), Duration::from_millis(500)).await;
    assert_eq!(out.reason, "timed out after 500ms during TLS handshake");
}

#[tokio::test]
async fn non_tls_answer_fails_the_handshake() {
    let addr = serve_raw(|mut tcp| async move {
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = tcp.shutdown().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let out = get(&https(addr, None)).await;
    assert_eq!(out.status, Status::Crit);
    assert!(out.reason.starts_with("TLS handshake failed: "), "{out:?}");

    let out = tls::probe(&tls_spec(addr, None), TIMEOUT).await;
    assert!(out.reason.starts_with("TLS handshake failed: "), "{out:?}");
}

#[tokio::test]
async fn tls_probe_connection_problems() {
    let addr = closed_port().await;
    let out = tls::probe(
        &TlsSpec {
            address: addr.to_string(),
            server_name: None,
            warn_days: 14,
            crit_days: 3,
            ca_file: None,
        },
        TIMEOUT,
    )
    .await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Crit, format!("connect to {addr} refused").as_str())
    );

    let mut t = tls_spec(addr, None);
    t.address = "no-port".into();
    assert_eq!(tls::probe(&t, TIMEOUT).await.status, Status::Unknown);
}

#[tokio::test]
async fn unreadable_ca_file_is_unknown() {
    let addr = https_server(self_signed(&["localhost"])).await;
    let mut s = https(addr, None);
    s.ca_file = Some("/nonexistent/ca.pem".into());
    let out = get(&s).await;
    assert_eq!(out.status, Status::Unknown);
    assert!(
        out.reason
            .starts_with("cannot read ca_file /nonexistent/ca.pem"),
        "{out:?}"
    );

    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = get(&https(addr, Some(&empty))).await;
    assert_eq!(out.status, Status::Unknown);
    assert!(out.reason.ends_with("holds no certificate"), "{out:?}");

    let mut t = tls_spec(addr, Some(&empty));
    t.server_name = Some("localhost".into());
    assert_eq!(tls::probe(&t, TIMEOUT).await.status, Status::Unknown);
}

#[tokio::test]
async fn ca_file_changes_are_picked_up() {
    let ca = Ca::new("Vitals Test CA");
    let pem = ca.write_pem();
    let addr = https_server(ca.server(&["localhost"], -1, 30)).await;
    let prober = HttpProber::new();
    let s = https(addr, Some(&pem));
    assert_eq!(prober.probe(&s, TIMEOUT).await.status, Status::Ok);

    // Replace the bundle with another CA's, with a comment that makes its length differ, so
    // that the change shows even within the file system's timestamp granularity.
    let other = Ca::new("Vitals Other CA");
    let replaced = format!("# replaced by another test CA, see below\n{}", other.pem);
    std::fs::write(pem.path(), replaced).unwrap();
    let out = prober.probe(&s, TIMEOUT).await;
    assert_eq!(out.reason, "certificate signed by unknown authority");

    // A CA that has the issuer's name but not its key did not sign it either.
    let impostor = Ca::new("Vitals Test CA");
    let replaced = format!(
        "# an impostor with the same name, see below\n{}",
        impostor.pem
    );
    std::fs::write(pem.path(), replaced).unwrap();
    let out = prober.probe(&s, TIMEOUT).await;
    assert_eq!(
        out.reason,
        "certificate signed by unknown authority (not by the trusted CA of that name)"
    );
}

#[tokio::test]
async fn ca_certificate_used_as_server_certificate() {
    let (config, pem) = self_signed_ca_as_server(&["localhost"]);
    let addr = https_server(config).await;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, pem.as_bytes()).unwrap();
    let out = get(&https(addr, Some(&file))).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "certificate is a CA certificate, not a server certificate"
    );
}
