//! Loopback servers and certificates for the HTTP and TLS probe tests.
//!
//! A hand-rolled HTTP/1.1 server (so that it can misbehave on purpose: drip, stall, reset,
//! never end a body) on 127.0.0.1 port 0, plain or behind rustls, and an rcgen PKI.
#![allow(dead_code)]

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use vitals_core::Value;

/// What the test server saw.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the test server answers.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Answers after a pause.
    Delayed(Duration, Box<Reply>),
    /// A complete head announcing a large body, then one body byte per 100 ms, forever.
    DripBody,
    /// One byte of the head per 100 ms, forever.
    DripHead,
    /// Reads the request and never answers.
    Silent,
    /// A head without length, then body bytes as fast as the client takes them, forever.
    EndlessBody,
    /// Closes the connection without answering.
    Close,
    /// Resets the connection (RST) without answering.
    Reset,
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::with_type(status, "text/plain", body)
    }

    pub fn with_type(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Location".to_string(), location.to_string())],
            body: Vec::new(),
        }
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// Serves plain HTTP on 127.0.0.1; the server lives as long as the test's runtime.
pub async fn serve(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> SocketAddr {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                if handle(&mut tcp, &handler).await == Ending::Reset {
                    let _ = tcp.set_zero_linger();
                }
            });
        }
    });
    addr
}

/// Serves HTTP over TLS with `config` on 127.0.0.1.
pub async fn serve_tls(
    config: Arc<ServerConfig>,
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> SocketAddr {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    handle(&mut tls, &handler).await;
                }
            });
        }
    });
    addr
}

/// Accepts connections and runs `f` on each raw TCP stream.
pub async fn serve_raw<F, Fut>(f: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(f(tcp));
        }
    });
    addr
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[derive(PartialEq)]
enum Ending {
    Normal,
    Reset,
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, handler: &Handler) -> Ending {
    let Some(req) = read_request(s).await else {
        return Ending::Normal;
    };
    let mut reply = handler(&req);
    loop {
        match reply {
            Reply::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            other => return respond(s, other).await,
        }
    }
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, reply: Reply) -> Ending {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} X\r\n");
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let _ = s.flush().await;
            let _ = s.shutdown().await;
            Ending::Normal
        }
        Reply::DripBody => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                .await;
            drip(s, b"x").await;
            Ending::Normal
        }
        Reply::DripHead => {
            drip(s, b"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await;
            Ending::Normal
        }
        Reply::Silent => {
            // Wait for the client to give up; reading returns 0 or fails when it does.
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            Ending::Normal
        }
        Reply::EndlessBody => {
            if s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await
                .is_err()
            {
                return Ending::Normal;
            }
            let chunk = vec![b'z'; 16 * 1024];
            // Ends when the client hangs up.
            while s.write_all(&chunk).await.is_ok() {}
            Ending::Normal
        }
        Reply::Close => Ending::Normal,
        Reply::Reset => Ending::Reset,
        Reply::Delayed(..) => Ending::Normal,
    }
}

/// Writes `bytes` one per 100 ms, then keeps writing spaces, until the client hangs up.
async fn drip<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) {
    let mut i = 0;
    loop {
        let b = bytes.get(i).copied().unwrap_or(b'a');
        i += 1;
        if s.write_all(&[b]).await.is_err() || s.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Req {
        method,
        target,
        headers,
        body,
    })
}

// --- certificates ---

/// Sets the validity to midnight UTC `not_before` to `not_after` days from today (negative:
/// in the past).
fn set_validity(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let day = |days: i64| {
        let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    params.not_before = day(not_before);
    params.not_after = day(not_after);
}

/// A test certificate authority.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A CA named `name`: two CAs of the same name differ only in their keys.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, -30, 365);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, valid from `not_before` to `not_after` days from
    /// today, as a rustls server configuration.
    pub fn server(&self, names: &[&str], not_before: i64, not_after: i64) -> Arc<ServerConfig> {
        let (params, key) = leaf_params(names, not_before, not_after);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        server_config(cert.der().clone(), key)
    }

    /// A server certificate for `names` (valid 30 days) and its key, both PEM, for servers
    /// that read files (PostgreSQL).
    pub fn server_pem(&self, names: &[&str]) -> (String, String) {
        let (params, key) = leaf_params(names, -1, 30);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the CA certificate to a PEM file.
    pub fn write_pem(&self) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, self.pem.as_bytes()).unwrap();
        f
    }
}

fn leaf_params(names: &[&str], not_before: i64, not_after: i64) -> (CertificateParams, KeyPair) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, not_before, not_after);
    (params, KeyPair::generate().unwrap())
}

/// A self-signed server certificate for `names`, valid for 30 days. Its subject is not one of
/// its names, so that it cannot share a name with a system root (Debian's `ssl-cert` installs a
/// trusted self-signed `CN=localhost`).
pub fn self_signed(names: &[&str]) -> Arc<ServerConfig> {
    let (mut params, key) = leaf_params(names, -1, 30);
    params
        .distinguished_name
        .push(DnType::CommonName, "Vitals self-signed test server");
    let cert = params.self_signed(&key).unwrap();
    server_config(cert.der().clone(), key)
}

/// A self-signed certificate for `names` that is marked as a CA (as `openssl req -x509`
/// makes them), and its PEM to trust it with.
pub fn self_signed_ca_as_server(names: &[&str]) -> (Arc<ServerConfig>, String) {
    let (mut params, key) = leaf_params(names, -1, 30);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Vitals self-signed CA-flagged server");
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    (server_config(cert.der().clone(), key), pem)
}

fn server_config(cert: CertificateDer<'static>, key: KeyPair) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    Arc::new(config)
}

// --- outcomes ---

pub fn value(values: &[Value], name: &str) -> Option<f64> {
    values.iter().find(|v| v.name == name).map(|v| v.value)
}
