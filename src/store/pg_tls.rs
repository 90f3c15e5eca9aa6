//! How a hub reaches PostgreSQL over the network: the TLS settings of
//! `BRANCHD_DATABASE_URL`, read the way libpq reads them, turned into a rustls client.
//!
//! - `sslmode=disable`: plain TCP.
//! - `prefer` (the default; `allow` reads the same): TLS when the server offers it, without
//!   checking its certificate; plain TCP when it does not offer it.
//! - `require`: TLS or no connection; the certificate is not checked, unless `sslrootcert` is
//!   given (then as `verify-ca`, like libpq).
//! - `verify-ca`: TLS, and the server's certificate must chain to `sslrootcert` (a PEM
//!   file; absent: the operating system's trusted roots). A self-signed server certificate
//!   named as its own `sslrootcert` is refused (rustls wants a CA), where libpq accepts it.
//! - `sslrootcert=system`: the operating system's roots, and `verify-full` (the default
//!   then; a weaker mode is refused), as in libpq 16.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host of the URL.
//!
//! - `sslcert` + `sslkey` (PEM files, an unencrypted key): the client certificate the
//!   server may ask for (`pg_hba.conf` method `cert`, or `clientcert=verify-full`); with
//!   every mode but `disable`. `sslpassword` (an encrypted key) is refused: decrypt the key.
//!
//! This module owns only the connection's security; it must not know any table.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::StoreError;

/// libpq's `sslmode` values (`allow` is read as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL split into what the PostgreSQL client reads and the TLS settings it does
/// not (`sslrootcert`, the `verify-*` modes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL for the client: `sslmode` as `disable`, `prefer` or `require`, no `sslrootcert`.
    pub url: String,
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted roots; `None` for the system's.
    pub roots: Option<PathBuf>,
    /// `sslcert` and `sslkey`: the client certificate (chain) and its key.
    pub client: Option<(PathBuf, PathBuf)>,
}

fn bad(why: String) -> StoreError {
    StoreError::Unavailable(format!("BRANCHD_DATABASE_URL: {why}"))
}

/// Reads `url`'s TLS settings. Never echoes the URL (it may hold a password).
pub fn parse(url: &str) -> Result<Target, StoreError> {
    // The query starts at the first `?` after the credentials (a password may hold one).
    let after_at = url.rfind('@').map_or(0, |i| i + 1);
    let (base, query) = match url[after_at..].find('?') {
        Some(i) => (&url[..after_at + i], &url[after_at + i + 1..]),
        None => (url, ""),
    };
    let mut mode = None;
    let mut roots = None;
    let mut system_roots = false;
    let (mut cert, mut key_file) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| bad(format!("the value of {key} is not valid percent-encoded UTF-8")))?;
        match key {
            "sslmode" => {
                mode = Some(match value.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(bad(format!("sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full")));
                    }
                })
            }
            "sslrootcert" if value == "system" => system_roots = true,
            "sslrootcert" => roots = Some(PathBuf::from(value)),
            "sslcert" => cert = Some(PathBuf::from(value)),
            "sslkey" => key_file = Some(PathBuf::from(value)),
            "sslpassword" => {
                return Err(bad("sslpassword: encrypted client keys are not supported; give sslkey an unencrypted key (openssl pkey -in key.pem -out plain.pem), readable by branchd only".into()));
            }
            _ => kept.push(pair),
        }
    }
    let mode = match (mode, system_roots) {
        // libpq 16: the system's roots mean verify-full, and nothing weaker.
        (None | Some(SslMode::VerifyFull), true) => SslMode::VerifyFull,
        (Some(_), true) => return Err(bad("sslrootcert=system needs sslmode=verify-full (or no sslmode)".into())),
        // libpq: a root file given makes `require` check the chain.
        (Some(SslMode::Require), false) if roots.is_some() => SslMode::VerifyCa,
        (m, false) => m.unwrap_or(SslMode::Prefer),
    };
    let client = match (cert, key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => return Err(bad("sslcert needs sslkey (the certificate's private key)".into())),
        (None, Some(_)) => return Err(bad("sslkey needs sslcert (the client certificate)".into())),
    };
    kept.push(match mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "sslmode=require",
    });
    Ok(Target { url: format!("{base}?{}", kept.join("&")), mode, roots, client })
}

impl Target {
    /// Whether the URL's host is this machine (loopback, or a unix socket directory), where
    /// an unverified connection crosses no network.
    pub fn is_local(&self) -> bool {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        let after_at = rest.rfind('@').map_or(0, |i| i + 1);
        let (authority, query) = rest[after_at..].split_once('?').unwrap_or((&rest[after_at..], ""));
        let authority = authority.split('/').next().unwrap_or_default();
        // `host=`/`hostaddr=` in the query win over the authority, as in libpq.
        let param =
            |name: &str| query.split('&').find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('='))).and_then(percent_decode);
        let loopback = |h: &str| {
            let h = h.trim_start_matches('[').split(']').next().unwrap_or(h);
            let h = if h.matches(':').count() == 1 { h.split(':').next().unwrap_or(h) } else { h };
            h.is_empty() || h.starts_with('/') || h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        };
        let hosts = param("hostaddr").or_else(|| param("host")).unwrap_or_else(|| authority.to_string());
        hosts.split(',').all(loopback)
    }
}

/// Whether the connection behind `r` is encrypted (PostgreSQL's `pg_stat_ssl`); `None` for
/// SQLite.
pub fn encrypted(r: &super::Reader<'_>) -> Result<Option<bool>, StoreError> {
    if r.conn.backend() == super::sql::Backend::Sqlite {
        return Ok(None);
    }
    let ssl: Option<bool> =
        r.conn.query_opt("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", super::sql::params![], |row| row.get(0))?;
    Ok(Some(ssl.unwrap_or(false)))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The rustls client for `target`'s mode (`None` for `disable`).
pub fn client_config(target: &Target) -> Result<Option<rustls::ClientConfig>, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match target.mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer | SslMode::Require => None,
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(root_store(target.roots.as_ref())?);
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| bad(format!("cannot use the trusted roots: {e}")))?;
            Some(verifier)
        }
    };
    let verifier = Arc::new(Checker { chain, check_name: target.mode == SslMode::VerifyFull, provider: provider.clone() });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &target.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(format!("sslkey {}: {e}", key.display())))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| bad(format!("sslcert/sslkey: {e}")))?
        }
    };
    Ok(Some(config))
}

fn root_store(file: Option<&PathBuf>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let (added, _) = store.add_parsable_certificates(read_certs(path, "sslrootcert")?);
            if added == 0 {
                return Err(bad(format!("sslrootcert {}: no certificate in it", path.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(bad("verify-ca/verify-full: the system has no trusted roots; give sslrootcert=/path/to/ca.pem".into()));
            }
        }
    }
    Ok(store)
}

/// The certificates of a PEM file (`what`: the URL parameter that named it).
fn read_certs(path: &PathBuf, what: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| bad(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!("{what} {}: no certificate in it", path.display())));
    }
    Ok(certs)
}

/// The server-certificate check of every mode but `disable`. `chain: None` (`prefer`,
/// `require`): encrypted, the certificate not checked, as libpq means these modes. With a
/// chain verifier (`verify-ca`): the chain must lead to a trusted root; `check_name`
/// (`verify-full`): and name the host. The handshake's signatures are verified always.
#[derive(Debug)]
struct Checker {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Checker {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }))
                if !self.check_name =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_like_libpq_and_the_client_gets_only_what_it_knows() {
        let t = parse("postgres://u:p@db.example:5432/hq").unwrap();
        assert_eq!((t.mode, t.url.as_str(), t.roots), (SslMode::Prefer, "postgres://u:p@db.example:5432/hq?sslmode=prefer", None));
        let t = parse("postgres://u@h/hq?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.url, "postgres://u@h/hq?application_name=x&sslmode=require");
        assert_eq!(t.roots, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(parse("postgres://h/d?sslmode=require&sslrootcert=/ca.pem").unwrap().mode, SslMode::VerifyCa);
        assert_eq!(parse("postgres://h/d?sslmode=allow").unwrap().mode, SslMode::Prefer);
        assert_eq!(parse("postgres://h/d?sslmode=disable").unwrap().url, "postgres://h/d?sslmode=disable");
        let t = parse("postgres://u:pa?ss@h/d?sslmode=verify-full&sslrootcert=/ca.pem").unwrap();
        assert_eq!((t.mode, t.url.as_str()), (SslMode::VerifyFull, "postgres://u:pa?ss@h/d?sslmode=require"), "a ? in the password");
        let t = parse("postgres://h/d?sslrootcert=system").unwrap();
        assert_eq!((t.mode, t.roots), (SslMode::VerifyFull, None));
        for (url, says) in [
            ("postgres://u:secret@h/d?sslmode=require&sslrootcert=system", "sslrootcert=system needs sslmode=verify-full"),
            ("postgres://u:secret@h/d?sslmode=sometimes", "sslmode=sometimes is not one of"),
            ("postgres://u:secret@h/d?sslcert=/c.pem", "sslcert needs sslkey"),
            ("postgres://u:secret@h/d?sslkey=/k.pem", "sslkey needs sslcert"),
            ("postgres://u:secret@h/d?sslcert=/c.pem&sslkey=/k.pem&sslpassword=x", "encrypted client keys are not supported"),
            ("postgres://u:secret@h/d?sslrootcert=%zz", "percent-encoded"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "the error does not echo the URL: {e}");
        }
        for (url, local) in [
            ("postgres://u:p@127.0.0.1:5432/d", true),
            ("postgres://u@localhost/d", true),
            ("postgres://u@[::1]:5432/d", true),
            ("postgres:///d?host=%2Fvar%2Frun%2Fpostgresql", true),
            ("postgres://u:p@10.0.0.20:5432/d", false),
            ("postgres://u@db.hq.example/d", false),
            ("postgres://u@localhost,10.0.0.21/d", false),
            ("postgres:///d?host=10.0.0.5", false),
            ("postgres://u@localhost/d?hostaddr=10.0.0.5", false),
        ] {
            assert_eq!(parse(url).unwrap().is_local(), local, "{url}");
        }
        let missing = Target { url: String::new(), mode: SslMode::VerifyFull, roots: Some("/nonexistent/ca.pem".into()), client: None };
        assert!(client_config(&missing).unwrap_err().to_string().contains("sslrootcert /nonexistent/ca.pem"));
    }
}
