//! Accepting connections: plain or TLS, bounded in number and in time.
//!
//! Every accepted connection runs in its own task, so a slow client holds up nobody else:
//! - **Caps.** At most `max_connections` at once, and `max_connections_per_address` from one
//!   IP address; a connection beyond either is closed at once (counted in `/metrics`).
//! - **TLS handshakes** run inside the connection's task, bounded by [`HANDSHAKE_TIMEOUT`].
//! - **Header timeout.** A request's headers must arrive within `header_timeout` (hyper counts
//!   it from the moment the connection opens or the previous response ended, so a keep-alive
//!   connection that sends nothing further is closed after it too).
//! - **Body timeout.** A request body must arrive within `body_timeout` (the handler sees an
//!   error, answered 4xx).
//! - **Idle timeout.** A connection on which no byte moved either way for `idle_timeout` is
//!   closed — also one whose client stopped reading an answer.
//!
//! Each request carries the client's address as `ConnectInfo<SocketAddr>`.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

use crate::edge::{ConnRefusal, Edge};

/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown is asked for, open connections get this long to finish their requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `[server.limits]`, as the listener uses them.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

impl From<&vitals_config::ConnectionLimits> for Limits {
    fn from(c: &vitals_config::ConnectionLimits) -> Limits {
        Limits {
            max_connections: c.max_connections,
            max_connections_per_address: c.max_connections_per_address,
            header_timeout: c.header_timeout,
            body_timeout: c.body_timeout,
            idle_timeout: c.idle_timeout,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&vitals_config::ConnectionLimits::default())
    }
}

// --- TLS ---

/// Reads a certificate chain and its key.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and the key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The current TLS configuration, swapped on reload.
#[derive(Clone)]
pub struct Certs {
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    pub fn new(cert: PathBuf, key: PathBuf) -> Result<Certs, String> {
        let config = load_tls(&cert, &key)?;
        Ok(Certs {
            current: Arc::new(RwLock::new(config)),
            cert,
            key,
        })
    }

    /// Reads the files again: a new configuration, not yet in use (see [`Certs::swap`]).
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        load_tls(&self.cert, &self.key)
    }

    /// Puts a loaded configuration in use for new connections.
    pub fn swap(&self, config: Arc<rustls::ServerConfig>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

// --- connection accounting ---

/// Open connections per address; a slot is given back when its guard drops.
#[derive(Default)]
struct Slots {
    per_address: Mutex<HashMap<IpAddr, usize>>,
    total: std::sync::atomic::AtomicUsize,
}

struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
    edge: Arc<crate::Protection>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.total.fetch_sub(1, Ordering::Relaxed);
        let mut m = self
            .slots
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.edge
            .edge
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &Limits,
        protect: &Arc<crate::Protection>,
    ) -> Result<Slot, ConnRefusal> {
        let mut m = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if self.total.load(Ordering::Relaxed) >= limits.max_connections {
            return Err(ConnRefusal::Global);
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= limits.max_connections_per_address {
            return Err(ConnRefusal::PerAddress);
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        let edge: &Edge = &protect.edge;
        edge.connections_open.fetch_add(1, Ordering::Relaxed);
        edge.connections_total.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            slots: self.clone(),
            ip,
            edge: protect.clone(),
        })
    }
}

// --- I/O with a last-activity clock ---

struct Tracked<S> {
    inner: S,
    last: Arc<AtomicU64>,
    base: Instant,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        self.last
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// --- the accept loop ---

/// Serves `router` on `listener` until `stop` turns true; then stops accepting, lets running
/// requests finish (at most [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listener: TcpListener,
    certs: Option<Certs>,
    router: Router,
    limits: Limits,
    protect: Arc<crate::Protection>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots::default());
    let (drained_tx, mut drained_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: say so, breathe, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip(), &limits, &protect) {
            Ok(s) => s,
            Err(why) => {
                protect.edge.count_conn_refused(why);
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let task = Connection {
            router: router.clone(),
            limits: limits.clone(),
            certs: certs.clone(),
            peer,
            stop: stop.clone(),
            _drained: drained_tx.clone(),
        };
        tokio::spawn(task.run(tcp, slot));
    }
    drop(listener);
    drop(drained_tx);
    // Every connection task holds a sender; recv returns None once all have ended.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained_rx.recv()).await;
}

struct Connection {
    router: Router,
    limits: Limits,
    certs: Option<Certs>,
    peer: SocketAddr,
    stop: tokio::sync::watch::Receiver<bool>,
    _drained: tokio::sync::mpsc::Sender<()>,
}

impl Connection {
    async fn run(self, tcp: TcpStream, _slot: Slot) {
        let last = Arc::new(AtomicU64::new(0));
        let base = Instant::now();
        let io = Tracked {
            inner: tcp,
            last: last.clone(),
            base,
        };
        match self.certs.clone() {
            None => self.http(io, last, base).await,
            Some(certs) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, certs.acceptor().accept(io)).await {
                    Ok(Ok(tls)) => self.http(tls, last, base).await,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn http<S>(mut self, io: S, last: Arc<AtomicU64>, base: Instant)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let router = self.router.clone();
        let body_timeout = self.limits.body_timeout;
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut router = router.clone();
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let body = tower_http::timeout::TimeoutBody::new(body_timeout, body);
            let req = hyper::Request::from_parts(parts, axum::body::Body::new(body));
            async move { router.call(req).await }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut draining = false;
        loop {
            let quiet_ms =
                (base.elapsed().as_millis() as u64).saturating_sub(last.load(Ordering::Relaxed));
            let quiet = Duration::from_millis(quiet_ms);
            if quiet >= idle {
                tracing::debug!(%peer, "closing a connection idle for {:?}", idle);
                return;
            }
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep(idle - quiet) => {}
                _ = self.stop.wait_for(|s| *s), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
