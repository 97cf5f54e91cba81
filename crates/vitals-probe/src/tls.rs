//! The TLS probe, and the TLS machinery the HTTPS probe shares with it.
//!
//! Both probes handshake with one process-wide rustls [`ClientConfig`] (built once, `ring`
//! provider, session resumption off so that every probe does and times a full handshake).
//! Its verifier checks the handshake signatures but *defers* the certificate chain and host
//! name: they are verified right after the handshake, before a single byte of the request is
//! sent, against the system roots or the roots of a `ca_file`. Deferring is what lets a probe
//! report the expiry of an untrusted or expired certificate, give a precise reason
//! ("certificate expired", "certificate not valid for name …", "certificate signed by unknown
//! authority") instead of a generic handshake failure, and skip verification for `insecure`.
//!
//! Roots: the system's (rustls-native-certs), falling back to webpki-roots when the system has
//! none. A `ca_file` replaces them; its verifier is cached per path and rebuilt when the file
//! changes.

use crate::{fmt_duration, Outcome};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vitals_core::spec::TlsSpec;
use vitals_core::{Status, Value};

/// TLS resources shared by every probe of the process.
pub(crate) struct TlsShared {
    /// For HTTPS: offers ALPN `http/1.1`.
    pub(crate) http_config: Arc<ClientConfig>,
    /// For the plain TLS probe: no ALPN, so that non-HTTP services do not refuse it.
    pub(crate) plain_config: Arc<ClientConfig>,
    provider: Arc<CryptoProvider>,
    system: Arc<WebPkiServerVerifier>,
    ca_files: Mutex<HashMap<PathBuf, CachedCa>>,
}

struct CachedCa {
    modified: Option<SystemTime>,
    len: u64,
    verifier: Arc<WebPkiServerVerifier>,
}

/// A `ca_file` verifier cache bigger than this is cleared: configurations name a handful.
const MAX_CACHED_CA_FILES: usize = 64;

static SHARED: OnceLock<Arc<TlsShared>> = OnceLock::new();

/// The process-wide TLS resources, built on first use.
pub(crate) fn shared() -> Arc<TlsShared> {
    Arc::clone(SHARED.get_or_init(|| Arc::new(TlsShared::build())))
}

impl TlsShared {
    fn build() -> TlsShared {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::info!("no usable system root certificates; using the webpki-roots bundle");
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        // Start-up invariants: the roots are not empty and the ring provider supports the
        // default protocol versions, so neither builder can fail.
        let system = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("root store is not empty");
        let deferred = Arc::new(DeferredVerifier {
            provider: provider.clone(),
        });
        let make = |alpn: Vec<Vec<u8>>| {
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(deferred.clone())
                .with_no_client_auth();
            // A probe measures a full handshake and always sees the current certificate.
            config.resumption = Resumption::disabled();
            config.alpn_protocols = alpn;
            Arc::new(config)
        };
        TlsShared {
            http_config: make(vec![b"http/1.1".to_vec()]),
            plain_config: make(Vec::new()),
            provider,
            system,
            ca_files: Mutex::new(HashMap::new()),
        }
    }

    /// The verifier for `ca_file` (cached per path, rebuilt when the file changes), or the
    /// system roots' one. `Err` is a reason for an `unknown` outcome.
    pub(crate) fn verifier(
        &self,
        ca_file: Option<&Path>,
    ) -> Result<Arc<WebPkiServerVerifier>, String> {
        let Some(path) = ca_file else {
            return Ok(self.system.clone());
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        let (modified, len) = (meta.modified().ok(), meta.len());
        if let Ok(cache) = self.ca_files.lock() {
            if let Some(c) = cache.get(path) {
                if c.modified == modified && c.len == len {
                    return Ok(c.verifier.clone());
                }
            }
        }
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| format!("invalid PEM in ca_file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("invalid certificate in ca_file {}: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        if let Ok(mut cache) = self.ca_files.lock() {
            if cache.len() >= MAX_CACHED_CA_FILES {
                cache.clear();
            }
            cache.insert(
                path.to_path_buf(),
                CachedCa {
                    modified,
                    len,
                    verifier: verifier.clone(),
                },
            );
        }
        Ok(verifier)
    }
}

/// Checks handshake signatures during the handshake and accepts any chain; the chain and the
/// name are verified by [`verify_peer`] right after the handshake, before anything is sent.
#[derive(Debug)]
struct DeferredVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DeferredVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What the peer's certificate chain came to.
pub(crate) struct PeerCheck {
    /// Leaf notAfter − now, in days; `None` when the leaf could not be parsed.
    pub(crate) days_left: Option<f64>,
    /// `Err(reason)` when chain or name verification failed (always `Ok` when skipped).
    pub(crate) verified: Result<(), String>,
}

/// Verifies the chain the server presented against `verifier` for `name` (unless
/// `skip_verify`) and reads the leaf's expiry.
pub(crate) fn verify_peer(
    certs: Option<&[CertificateDer<'static>]>,
    verifier: &WebPkiServerVerifier,
    name: &ServerName<'_>,
    skip_verify: bool,
) -> PeerCheck {
    let Some((leaf, intermediates)) = certs.and_then(|c| c.split_first()) else {
        return PeerCheck {
            days_left: None,
            verified: Err("server presented no certificate".to_string()),
        };
    };
    let days_left = days_left(leaf, SystemTime::now());
    let verified = if skip_verify {
        Ok(())
    } else {
        verifier
            .verify_server_cert(leaf, intermediates, name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| describe_cert_error(&e, name))
    };
    PeerCheck {
        days_left,
        verified,
    }
}

/// Leaf notAfter − `now` in days (negative once expired).
pub(crate) fn days_left(leaf: &[u8], now: SystemTime) -> Option<f64> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let not_after = cert.validity().not_after.timestamp() as f64;
    let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Some((not_after - now) / 86_400.0)
}

/// A stable reason for a certificate verification error.
pub(crate) fn describe_cert_error(e: &TlsError, name: &ServerName<'_>) -> String {
    match e {
        TlsError::InvalidCertificate(ce) => match ce {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not yet valid".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate not valid for name {}", name.to_str())
            }
            CertificateError::UnknownIssuer => {
                "certificate signed by unknown authority".to_string()
            }
            CertificateError::Revoked => "certificate revoked".to_string(),
            // In chain building these mean that a trusted CA has the issuer's name but did not
            // sign the certificate: for the probe, an unknown authority all the same.
            CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "certificate signed by unknown authority (not by the trusted CA of that name)"
                    .to_string()
            }
            CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
                "certificate uses an unsupported signature algorithm".to_string()
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "certificate not valid for server authentication".to_string()
            }
            CertificateError::Other(inner) => {
                // webpki's errors arrive type-erased; this common one (a self-signed
                // `openssl req -x509` certificate, which is marked as a CA) gets plain words.
                let text = inner.to_string();
                if text == "CaUsedAsEndEntity" {
                    "certificate is a CA certificate, not a server certificate".to_string()
                } else {
                    format!("certificate invalid: {text}")
                }
            }
            other => format!("certificate invalid: {other}"),
        },
        other => format!("certificate invalid: {other}"),
    }
}

/// The expiry verdict for `days_left` against the warn/crit thresholds, if any.
pub(crate) fn expiry_check(
    days_left: Option<f64>,
    warn_days: u32,
    crit_days: u32,
) -> Option<(Status, String)> {
    let days = days_left?;
    if days < 0.0 {
        Some((Status::Crit, "certificate expired".to_string()))
    } else if days < f64::from(crit_days) {
        Some((
            Status::Crit,
            format!("certificate expires within {crit_days} days"),
        ))
    } else if days < f64::from(warn_days) {
        Some((
            Status::Warn,
            format!("certificate expires within {warn_days} days"),
        ))
    } else {
        None
    }
}

/// The name to verify and send as SNI: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host)
        .map(|n| n.to_owned())
        .map_err(|_| format!("invalid server name {host:?}"))
}

/// A stable reason for a failed handshake.
pub(crate) fn describe_handshake_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof => "TLS handshake failed: connection closed by server".to_string(),
        ErrorKind::ConnectionReset => {
            "TLS handshake failed: connection reset by server".to_string()
        }
        _ => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TlsError>())
        {
            Some(TlsError::AlertReceived(alert)) => {
                format!("TLS handshake failed: server sent alert {alert:?}")
            }
            Some(tls) => format!("TLS handshake failed: {tls}"),
            None => format!("TLS handshake failed: {e}"),
        },
    }
}

/// A stable reason for a failed connect.
pub(crate) fn describe_connect_error(addr: &SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connect to {addr} refused"),
        _ => format!("connect to {addr} failed: {e}"),
    }
}

// Phases of the TLS probe, for the timeout reason.
const PHASE_START: u8 = 0;
const PHASE_RESOLVE: u8 = 1;
const PHASE_CONNECT: u8 = 2;
const PHASE_HANDSHAKE: u8 = 3;

fn phase_text(phase: u8) -> &'static str {
    match phase {
        PHASE_RESOLVE => " during DNS resolution",
        PHASE_CONNECT => " while connecting",
        PHASE_HANDSHAKE => " during TLS handshake",
        _ => "",
    }
}

/// Connects to `spec.address`, handshakes with SNI = `server_name` (or the host), verifies
/// chain and name, and judges the leaf's expiry. Bounded by `timeout`.
///
/// Values: `connect_ms`, `tls_ms`, `cert_days_left`.
pub async fn probe(spec: &TlsSpec, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let phase = AtomicU8::new(PHASE_START);
    let mut values = Vec::with_capacity(3);
    let run = run(spec, &phase, &mut values);
    let (status, reason) = match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => (
            Status::Crit,
            format!(
                "timed out after {}{}",
                fmt_duration(timeout),
                phase_text(phase.load(Ordering::Relaxed))
            ),
        ),
    };
    Outcome {
        status,
        reason,
        duration_us: started.elapsed().as_micros() as u64,
        values,
        components: Vec::new(),
    }
}

async fn run(spec: &TlsSpec, phase: &AtomicU8, values: &mut Vec<Value>) -> (Status, String) {
    let Some((host, port)) = split_host_port(&spec.address) else {
        return (
            Status::Unknown,
            format!("invalid address {:?}: expected host:port", spec.address),
        );
    };
    let name = match server_name(spec.server_name.as_deref().unwrap_or(host)) {
        Ok(n) => n,
        Err(e) => return (Status::Unknown, e),
    };
    let tls = shared();
    let verifier = match tls.verifier(spec.ca_file.as_deref()) {
        Ok(v) => v,
        Err(e) => return (Status::Unknown, e),
    };

    phase.store(PHASE_RESOLVE, Ordering::Relaxed);
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((bare, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return (Status::Crit, format!("cannot resolve {bare}: {e}")),
    };
    if addrs.is_empty() {
        return (Status::Crit, format!("{bare} has no address"));
    }

    phase.store(PHASE_CONNECT, Ordering::Relaxed);
    let t = Instant::now();
    let tcp = match connect_any(&addrs).await {
        Ok(s) => s,
        Err(reason) => return (Status::Crit, reason),
    };
    values.push(Value::new("connect_ms", ms(t.elapsed())));

    phase.store(PHASE_HANDSHAKE, Ordering::Relaxed);
    let t = Instant::now();
    let connector = TlsConnector::from(tls.plain_config.clone());
    let stream = match connector.connect(name.clone(), tcp).await {
        Ok(s) => s,
        Err(e) => return (Status::Crit, describe_handshake_error(&e)),
    };
    values.push(Value::new("tls_ms", ms(t.elapsed())));

    let check = verify_peer(
        stream.get_ref().1.peer_certificates(),
        &verifier,
        &name,
        false,
    );
    if let Some(days) = check.days_left {
        values.push(Value::new("cert_days_left", days));
    }
    if let Err(reason) = check.verified {
        return (Status::Crit, reason);
    }
    match expiry_check(check.days_left, spec.warn_days, spec.crit_days) {
        Some(verdict) => verdict,
        None => (Status::Ok, "certificate valid".to_string()),
    }
}

/// Connects to the first address that accepts; the error names the last one tried.
pub(crate) async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = describe_connect_error(addr, &e),
        }
    }
    Err(last)
}

/// `host:port`, `[v6]:port`; the host keeps its brackets.
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.trim().rsplit_once(':')?;
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl crate::Probe for vitals_core::spec::TlsSpec {
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
    fn addresses_split() {
        assert_eq!(
            split_host_port("example.org:443"),
            Some(("example.org", 443))
        );
        assert_eq!(split_host_port("[::1]:8443"), Some(("[::1]", 8443)));
        assert_eq!(split_host_port("::1:443"), None);
        assert_eq!(split_host_port("example.org"), None);
        assert_eq!(split_host_port(":443"), None);
        assert_eq!(split_host_port("host:99999"), None);
    }

    #[test]
    fn expiry_thresholds() {
        assert_eq!(expiry_check(None, 14, 3), None);
        assert_eq!(expiry_check(Some(30.0), 14, 3), None);
        assert_eq!(
            expiry_check(Some(5.0), 14, 3).map(|v| v.0),
            Some(Status::Warn)
        );
        assert_eq!(
            expiry_check(Some(2.0), 14, 3).map(|v| v.0),
            Some(Status::Crit)
        );
        assert_eq!(
            expiry_check(Some(-1.0), 14, 3),
            Some((Status::Crit, "certificate expired".to_string()))
        );
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("not a name").is_err());
    }
}
