//! HTTPS and WSS on the branch LAN (SPEC §1 `BRANCHD_TLS`, §3 `/ca.crt`, §5): the certificate
//! the appliance serves and how it changes without a restart.
//!
//! Owns: the appliance's own CA ([`ca`], made on first start in `DATA_DIR/tls`), the server
//! certificate it issues for the mDNS host name, `localhost` and every LAN address (re-issued
//! before it expires and when an address changes), or the configured `BRANCHD_TLS_CERT` /
//! `BRANCHD_TLS_KEY` files (reloaded when they change); the rustls resolver that hands the
//! current one to every handshake (a connection by IP has no SNI and gets the same one); and
//! [`accept`], which serves plain HTTP and HTTPS on one port.
//! Must not: know axum routing, the store or Socket.IO; fail a running server because a
//! reload failed (the previous certificate stays in use, and the failure is logged).

pub mod accept;
pub mod ca;
pub mod profile;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use ca::Ca;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Lists the addresses the server certificate must name (the LAN addresses by default;
/// tests inject their own).
pub type AddressSource = Arc<dyn Fn() -> Vec<IpAddr> + Send + Sync>;

/// Hands the current certificate to every handshake.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Where the served certificate comes from, and what it was made from.
enum Source {
    /// Issued by the own CA for these addresses; re-issued from `renew_at` on.
    Own { ca: Box<Ca>, addresses: Vec<IpAddr>, renew_at: SystemTime },
    /// Configured files, as last loaded (modification time and length of each).
    Files { cert: PathBuf, key: PathBuf, stamp: Stamp },
}

type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| std::fs::metadata(p).map(|m| (m.modified().ok(), m.len())).unwrap_or((None, 0));
    [one(cert), one(key)]
}

/// HTTPS state: `None` inside when TLS is off.
pub struct Tls {
    inner: Option<Inner>,
}

struct Inner {
    host: String,
    resolver: Arc<Resolver>,
    /// Rebuilt with each new certificate, so no session made under the previous one is
    /// resumed (resumption skips the certificate).
    acceptor: RwLock<tokio_rustls::TlsAcceptor>,
    source: Mutex<Source>,
    /// Immutable facts for `/health`, `/ca.crt` and mDNS.
    ca_der: Option<CertificateDer<'static>>,
    ca_pem: Option<String>,
    ca_name: Option<String>,
    fingerprint: Option<String>,
    addresses: RwLock<AddressSource>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Arc<CertifiedKey>, TlsError> {
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

fn load_files(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem_err = |p: &Path, reason: String| TlsError::Pem { path: p.display().to_string(), reason };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "no CERTIFICATE in the file".into()));
    }
    let k = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, format!("no usable private key: {e}")))?;
    certified(chain, k).map_err(|e| pem_err(key, format!("does not fit {}: {e}", cert.display())))
}

/// A TLS acceptor with a fresh session cache that takes its certificate from `resolver`.
fn acceptor(resolver: &Arc<Resolver>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    // HTTP/1.1 only: what the server speaks, and what WebSocket upgrades need.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// The host name certificates are made for: `NAME.local`.
pub fn host_name() -> String {
    crate::mdns::host_name().trim_end_matches('.').to_string()
}

impl Tls {
    /// TLS off.
    pub fn disabled() -> Tls {
        Tls { inner: None }
    }

    /// Sets up what `config` asks for: nothing (TLS off), the configured files, or the own CA
    /// (made now if there is none) and a certificate from it. Blocking (files, key generation).
    pub fn new(config: &crate::Config, addresses: AddressSource) -> Result<Tls, TlsError> {
        if !config.tls {
            return Ok(Tls::disabled());
        }
        let host = host_name();
        let (source, current, ca_facts) = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let current = load_files(cert, key)?;
                tracing::info!(cert = %cert.display(), "HTTPS with the configured certificate");
                (Source::Files { cert: cert.clone(), key: key.clone(), stamp: stamp(cert, key) }, current, None)
            }
            _ => {
                let now = addresses();
                let ca = Ca::load_or_create(&config.data_dir.join("tls"), &host, &now)?;
                let issued = ca.issue(&host, &now)?;
                let current = certified(issued.chain, issued.key)?;
                let facts = (ca.der.clone(), ca.pem.clone(), ca.common_name.clone(), ca.fingerprint.clone());
                let renew_at = issued.not_after - ca::RENEW_BEFORE;
                (Source::Own { ca: Box::new(ca), addresses: now, renew_at }, current, Some(facts))
            }
        };
        let resolver = Arc::new(Resolver { current: RwLock::new(current) });
        let acceptor = acceptor(&resolver)?;
        let (ca_der, ca_pem, ca_name, fingerprint) = match ca_facts {
            Some((d, p, n, f)) => (Some(d), Some(p), Some(n), Some(f)),
            None => (None, None, None, None),
        };
        Ok(Tls {
            inner: Some(Inner {
                host,
                resolver,
                acceptor: RwLock::new(acceptor),
                source: Mutex::new(source),
                ca_der,
                ca_pem,
                ca_name,
                fingerprint,
                addresses: RwLock::new(addresses),
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The acceptor for TLS connections (`None`: TLS off).
    pub fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.inner.as_ref().and_then(|i| i.acceptor.read().ok().map(|a| a.clone()))
    }

    /// The own CA's certificate, DER (`None`: TLS off or a configured certificate).
    pub fn ca_der(&self) -> Option<&CertificateDer<'static>> {
        self.inner.as_ref()?.ca_der.as_ref()
    }
    pub fn ca_pem(&self) -> Option<&str> {
        self.inner.as_ref()?.ca_pem.as_deref()
    }
    pub fn ca_name(&self) -> Option<&str> {
        self.inner.as_ref()?.ca_name.as_deref()
    }
    /// Hex SHA-256 of the own CA's certificate.
    pub fn ca_fingerprint(&self) -> Option<&str> {
        self.inner.as_ref()?.fingerprint.as_deref()
    }
    /// The host name the certificate names (`NAME.local`).
    pub fn host(&self) -> Option<&str> {
        self.inner.as_ref().map(|i| i.host.as_str())
    }

    /// The mDNS TXT hint: `None` with TLS off; the CA fingerprint, or empty with a configured
    /// certificate.
    pub fn txt(&self) -> Option<String> {
        self.inner.as_ref().map(|i| i.fingerprint.clone().unwrap_or_default())
    }

    /// Replaces the address source (tests) and re-checks at once.
    pub fn set_address_source(&self, f: AddressSource) -> Result<bool, TlsError> {
        if let Some(i) = &self.inner
            && let Ok(mut a) = i.addresses.write()
        {
            *a = f;
        }
        self.refresh()
    }

    /// Re-issues or reloads the served certificate if it is due: own CA — an address was added
    /// or removed, or expiry is near; files — either file changed. Returns whether a new
    /// certificate is now served. On error the previous one stays. Blocking.
    pub fn refresh(&self) -> Result<bool, TlsError> {
        let Some(i) = &self.inner else { return Ok(false) };
        let mut source = i.source.lock().unwrap_or_else(|e| e.into_inner());
        let next = match &mut *source {
            Source::Own { ca, addresses, renew_at } => {
                let source_fn = i.addresses.read().map(|f| f.clone()).ok();
                let now = source_fn.map(|f| f()).unwrap_or_default();
                if now == *addresses && SystemTime::now() < *renew_at {
                    return Ok(false);
                }
                let issued = ca.issue(&i.host, &now)?;
                let next = certified(issued.chain, issued.key)?;
                tracing::info!(addresses = ?now, "re-issued the server certificate");
                *addresses = now;
                *renew_at = issued.not_after - ca::RENEW_BEFORE;
                next
            }
            Source::Files { cert, key, stamp: last } => {
                let now = stamp(cert, key);
                if now == *last {
                    return Ok(false);
                }
                // Remember the new stamp even on failure: a half-written pair is retried when
                // it changes again, not logged every few seconds.
                *last = now;
                let next = load_files(cert, key)?;
                tracing::info!(cert = %cert.display(), "reloaded the configured certificate");
                next
            }
        };
        if let Ok(mut c) = i.resolver.current.write() {
            *c = next;
        }
        let fresh = acceptor(&i.resolver)?;
        if let Ok(mut a) = i.acceptor.write() {
            *a = fresh;
        }
        Ok(true)
    }

    /// Checks every `every` until `stop` (addresses, expiry, changed files).
    pub async fn watch(self: Arc<Self>, every: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
        if !self.enabled() {
            return;
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let me = self.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || me.refresh()).await {
                tracing::warn!(error = %e, "cannot renew the HTTPS certificate; the previous one stays in use");
            }
        }
    }
}
