//! The appliance's own certificate authority: made once (P-256, name-constrained to the
//! appliance's own names and LAN address ranges), kept in `DATA_DIR/tls` (key 0600), and the
//! server certificates it issues. Pure apart from reading and writing its own three files.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use super::TlsError;

/// Server certificates live at most this long (Apple's limit for TLS server certificates is
/// 398 days).
pub const LEAF_LIFETIME: Duration = Duration::from_secs(397 * 24 * 3600);
/// A server certificate is re-issued this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);

/// Address ranges the CA may vouch for besides the appliance's addresses at creation: the
/// private, shared, link-local and loopback ranges a LAN address moves within (DHCP), so an
/// address change never needs a new CA, and a stolen CA key cannot vouch for a public site.
const PERMITTED: [&str; 9] =
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10"];

/// An address range (`a.b.c.d/n`, `x::/n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    net: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(s: &str) -> Option<Range> {
        let (net, prefix) = s.split_once('/')?;
        let (net, prefix): (IpAddr, u8) = (net.parse().ok()?, prefix.parse().ok()?);
        (prefix <= if net.is_ipv4() { 32 } else { 128 }).then_some(Range { net, prefix })
    }

    fn contains(&self, a: &IpAddr) -> bool {
        match (self.net, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(*a) & mask
            }
            _ => false,
        }
    }

    fn subtree(&self) -> GeneralSubtree {
        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(self.net, self.prefix))
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

fn fixed_ranges() -> Vec<Range> {
    PERMITTED.iter().filter_map(|r| Range::parse(r)).collect()
}

/// Ranges for the appliance's addresses outside the fixed ones (a LAN on public addresses,
/// IPv6 global prefixes): the address itself, or its /64.
fn extra_ranges(addresses: &[IpAddr]) -> Vec<Range> {
    let fixed = fixed_ranges();
    let mut out: Vec<Range> = addresses
        .iter()
        .filter(|a| !fixed.iter().any(|r| r.contains(a)))
        .map(|a| match a {
            IpAddr::V4(_) => Range { net: *a, prefix: 32 },
            IpAddr::V6(v6) => {
                let net = u128::from(*v6) & (u128::MAX << 64);
                Range { net: IpAddr::V6(net.into()), prefix: 64 }
            }
        })
        .collect();
    out.dedup();
    out
}

/// The CA: its certificate (as devices download it) and what it needs to issue.
pub struct Ca {
    pub der: CertificateDer<'static>,
    pub pem: String,
    /// Hex SHA-256 of `der`.
    pub fingerprint: String,
    pub common_name: String,
    /// The address ranges its name constraints permit: server certificates name no other
    /// address (one outside would make clients refuse the whole certificate).
    ranges: Vec<Range>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("common_name", &self.common_name).field("fingerprint", &self.fingerprint).finish()
    }
}

/// What `ca.json` records next to the key and certificate.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    common_name: String,
    host_name: String,
    /// Address ranges permitted besides the fixed ones (`PERMITTED`).
    #[serde(default)]
    extra_ranges: Vec<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.display().to_string(), source }
}

/// Writes `data` to `path` through a temporary file (mode `mode`), so a crash never leaves
/// half a key.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn distinguished_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "branchd");
    dn.push(DnType::CommonName, cn);
    dn
}

/// The CA's parameters. Issuing needs only its name, key usages and key-id method, so the
/// same function rebuilds the issuer from the stored key.
fn ca_params(cn: &str, host: &str, ranges: &[Range]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = distinguished_name(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut permitted = vec![GeneralSubtree::DnsName(host.to_string()), GeneralSubtree::DnsName("localhost".into())];
    permitted.extend(ranges.iter().map(Range::subtree));
    p.name_constraints = Some(NameConstraints { permitted_subtrees: permitted, excluded_subtrees: vec![] });
    p
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte
    SerialNumber::from_slice(&bytes)
}

pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

impl Ca {
    /// Loads the CA from `dir`, or makes one when there is none (or the machine's host name
    /// changed, since the CA may only vouch for the name it was made for).
    pub fn load_or_create(dir: &Path, host: &str, addresses: &[IpAddr]) -> Result<Ca, TlsError> {
        let (key_path, cert_path, meta_path) = paths(dir);
        if key_path.exists() && cert_path.exists() && meta_path.exists() {
            let meta: Meta = serde_json::from_slice(&std::fs::read(&meta_path).map_err(io_err(&meta_path))?)
                .map_err(|e| TlsError::Pem { path: meta_path.display().to_string(), reason: e.to_string() })?;
            if meta.host_name == host {
                return Ca::load(&key_path, &cert_path, &meta);
            }
            tracing::warn!(
                old = %meta.host_name, new = %host,
                "the host name changed: making a new appliance CA (devices must trust the new one from /ca.crt)"
            );
        }
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let suffix: [u8; 3] = rand::random();
        let cn = format!("branchd {} CA {}", host.trim_end_matches(".local"), hex::encode(suffix));
        let extra = extra_ranges(addresses);
        let ranges: Vec<Range> = fixed_ranges().into_iter().chain(extra.iter().copied()).collect();
        let mut params = ca_params(&cn, host, &ranges);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + CA_LIFETIME;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        let meta =
            Meta { common_name: cn.clone(), host_name: host.to_string(), extra_ranges: extra.iter().map(Range::to_string).collect() };
        write_file(&meta_path, &serde_json::to_vec_pretty(&meta).unwrap_or_default(), 0o644)?;
        tracing::info!(fingerprint = %fingerprint(cert.der()), "made the appliance CA in {}", dir.display());
        Ok(Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            fingerprint: fingerprint(cert.der()),
            common_name: cn,
            ranges,
            issuer: Issuer::new(params, key),
        })
    }

    fn load(key_path: &Path, cert_path: &Path, meta: &Meta) -> Result<Ca, TlsError> {
        let pem_err = |p: &Path, e: String| TlsError::Pem { path: p.display().to_string(), reason: e };
        let key_pem = std::fs::read_to_string(key_path).map_err(io_err(key_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| pem_err(key_path, e.to_string()))?;
        let cert_pem = std::fs::read(cert_path).map_err(io_err(cert_path))?;
        let der = CertificateDer::from_pem_slice(&cert_pem).map_err(|e| pem_err(cert_path, e.to_string()))?;
        let ranges: Vec<Range> = fixed_ranges().into_iter().chain(meta.extra_ranges.iter().filter_map(|r| Range::parse(r))).collect();
        let params = ca_params(&meta.common_name, &meta.host_name, &ranges);
        Ok(Ca {
            pem: String::from_utf8_lossy(&cert_pem).into_owned(),
            fingerprint: fingerprint(&der),
            der,
            common_name: meta.common_name.clone(),
            ranges,
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for `host`, `localhost`, the loopback addresses and `addresses`
    /// (serverAuth, [`LEAF_LIFETIME`]), with a fresh key. Returns the chain (server
    /// certificate, then the CA), the key, and when it expires.
    pub fn issue(&self, host: &str, addresses: &[IpAddr]) -> Result<Issued, TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut p = CertificateParams::default();
        p.distinguished_name = {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, host);
            dn
        };
        let mut sans = vec![
            SanType::DnsName(host.try_into()?),
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        for a in addresses.iter().filter(|a| !a.is_loopback()) {
            if self.ranges.iter().any(|r| r.contains(a)) {
                sans.push(SanType::IpAddress(*a));
            } else {
                tracing::warn!(address = %a, "left out of the HTTPS certificate: outside the ranges the appliance CA may vouch for");
            }
        }
        p.subject_alt_names = sans;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        p.serial_number = Some(random_serial());
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + LEAF_LIFETIME - time::Duration::hours(1);
        let cert = p.signed_by(&key, &self.issuer)?;
        let not_after = SystemTime::now() + LEAF_LIFETIME - Duration::from_secs(3600);
        Ok(Issued {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            not_after,
        })
    }
}

/// A server certificate made by [`Ca::issue`].
pub struct Issued {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub not_after: SystemTime,
}

fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (dir.join("ca.key"), dir.join("ca.crt"), dir.join("ca.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_loaded_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ca::load_or_create(dir.path(), "pi.local", &[]).unwrap();
        let b = Ca::load_or_create(dir.path(), "pi.local", &[]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The loaded CA issues certificates that chain to the stored certificate.
        let issued = b.issue("pi.local", &["192.168.1.20".parse().unwrap()]).unwrap();
        assert_eq!(issued.chain[1], a.der);
        // A new host name makes a new CA.
        let c = Ca::load_or_create(dir.path(), "other.local", &[]).unwrap();
        assert_ne!(c.fingerprint, a.fingerprint);
    }

    #[test]
    fn permitted_ranges() {
        let fixed = fixed_ranges();
        assert_eq!(fixed.len(), PERMITTED.len());
        for a in ["10.1.2.3", "172.20.0.1", "192.168.0.9", "127.0.0.1", "169.254.3.3", "100.100.1.1", "::1", "fd00::2", "fe80::1"] {
            let a: IpAddr = a.parse().unwrap();
            assert!(fixed.iter().any(|r| r.contains(&a)), "{a}");
        }
        for a in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:db8::1"] {
            let a: IpAddr = a.parse().unwrap();
            assert!(!fixed.iter().any(|r| r.contains(&a)), "{a}");
        }
        let extra = extra_ranges(&["192.168.1.2".parse().unwrap(), "203.0.113.7".parse().unwrap(), "2001:db8:1:2::9".parse().unwrap()]);
        assert_eq!(extra.iter().map(Range::to_string).collect::<Vec<_>>(), ["203.0.113.7/32", "2001:db8:1:2::/64"]);
    }

    #[test]
    fn addresses_outside_the_constraints_are_left_out_and_extra_ranges_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        Ca::load_or_create(dir.path(), "pi.local", &[public]).unwrap();
        let ca = Ca::load_or_create(dir.path(), "pi.local", &[]).unwrap();
        assert!(ca.ranges.iter().any(|r| r.contains(&public)), "the public address at creation stays permitted");
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let issued = ca.issue("pi.local", &[public, other, "10.0.0.5".parse().unwrap()]).unwrap();
        let der = issued.chain[0].as_ref();
        let has = |ip: IpAddr| {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            der.windows(bytes.len() + 2).any(|w| w[0] == 0x87 && usize::from(w[1]) == bytes.len() && w[2..] == bytes[..])
        };
        assert!(has(public) && has("10.0.0.5".parse().unwrap()));
        assert!(!has(other), "an address the CA may not vouch for is not named");
    }
}
