//! mDNS (SPEC §5): advertises the appliance as `_branchd._tcp.local.` and its dashboard as
//! `_http._tcp.local.` on LAN interfaces (container, VPN and bridge interfaces are skipped
//! unless named in the configuration), follows address changes, withdraws the records on
//! shutdown, and browses the LAN for other appliances and for network printers.
//! Owns the mDNS daemon; knows nothing about HTTP or Socket.IO.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, IfPredicate, ServiceDaemon, ServiceEvent, ServiceInfo};

pub const SERVICE: &str = "_branchd._tcp.local.";
pub const HTTP_SERVICE: &str = "_http._tcp.local.";

#[derive(Debug, thiserror::Error)]
#[error("mDNS: {0}")]
pub struct MdnsError(String);

impl From<mdns_sd::Error> for MdnsError {
    fn from(e: mdns_sd::Error) -> Self {
        MdnsError(e.to_string())
    }
}

/// Interface names that are never the restaurant LAN: containers, bridges, VPNs.
fn virtual_interface(name: &str) -> bool {
    const PREFIXES: [&str; 14] =
        ["docker", "br-", "veth", "virbr", "vnet", "tun", "tap", "wg", "zt", "tailscale", "cni", "flannel", "cali", "lxc"];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A daemon that uses the LAN interfaces only, or exactly the configured ones.
fn daemon(interfaces: &[String]) -> Result<ServiceDaemon, MdnsError> {
    let d = ServiceDaemon::new()?;
    d.disable_interface(IfKind::All)?;
    if interfaces.is_empty() {
        d.enable_interface(IfKind::Predicate(IfPredicate::new(|i| !i.is_loopback() && !virtual_interface(&i.name))))?;
    } else {
        for name in interfaces {
            d.enable_interface(IfKind::Name(name.clone()))?;
        }
    }
    Ok(d)
}

/// The machine's LAN addresses as the advertisement lists them: every address of a
/// non-loopback LAN interface (or of exactly the configured ones), sorted. IPv6 link-local
/// addresses are left out (no browser takes them in a URL).
pub fn lan_addresses(interfaces: &[String]) -> Vec<std::net::IpAddr> {
    let mut out: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| if interfaces.is_empty() { !i.is_loopback() && !virtual_interface(&i.name) } else { interfaces.contains(&i.name) })
        .map(|i| i.ip())
        .filter(|ip| match ip {
            std::net::IpAddr::V6(v6) => !v6.is_unicast_link_local() && !v6.is_loopback(),
            std::net::IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The names of the interfaces advertised on: the LAN interfaces (as [`lan_addresses`]
/// picks them), or exactly the configured ones.
pub fn lan_interfaces(interfaces: &[String]) -> Vec<String> {
    if !interfaces.is_empty() {
        return interfaces.to_vec();
    }
    let mut out: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && !virtual_interface(&i.name))
        .map(|i| i.name)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What the running server does about mDNS, as `GET /api/system/effective` reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub advertised: bool,
    /// The instance name advertised.
    pub instance: Option<String>,
    /// The interfaces advertised on.
    pub interfaces: Vec<String>,
    /// Why it is not advertised (off in the settings, or the error).
    pub reason: Option<String>,
}

/// What the appliance says about itself.
pub struct Advert {
    pub appliance_id: String,
    pub instance: String,
    pub version: String,
    pub role: String,
    pub company_id: String,
    pub branch_id: String,
    pub port: u16,
    /// With HTTPS on: the hex SHA-256 of the appliance CA's certificate (`tlsfp`), or empty
    /// when a configured certificate is served (`tls=1` only).
    pub tls: Option<String>,
}

/// Longest DNS label, in bytes (RFC 1035 §2.3.4); mdns-sd drops packets with a longer one.
pub const MAX_INSTANCE_BYTES: usize = 63;

/// The mDNS instance name for `name` (e.g. "Company - Branch"): `branchd on HOST` when
/// `name` says nothing, and cut to at most [`MAX_INSTANCE_BYTES`] bytes at a character
/// boundary (Arabic letters take two bytes each, so 63 bytes is far fewer than 63 letters).
/// Never empty.
pub fn instance_name(name: &str, host: &str) -> String {
    let full = if name.trim_matches([' ', '-']).is_empty() { format!("branchd on {}", host.trim()) } else { name.to_string() };
    let mut end = full.len().min(MAX_INSTANCE_BYTES);
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    // No dangling separator where the cut fell ("Company - |Branch").
    let cut = full[..end].trim_end_matches([' ', '-']);
    if cut.is_empty() { "branchd".into() } else { cut.to_string() }
}

/// The running advertisement; [`Advertiser::withdraw`] says goodbye.
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
}

/// The machine's mDNS host name, `NAME.local.`.
pub fn host_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "branchd".into());
    let h: String = h.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    format!("{}.local.", if h.is_empty() { "branchd" } else { &h })
}

impl Advertiser {
    pub fn start(a: &Advert, interfaces: &[String]) -> Result<Advertiser, MdnsError> {
        let daemon = daemon(interfaces)?;
        let host = host_name();
        let mut txt = BTreeMap::new();
        txt.insert("txtvers".to_string(), "1".to_string());
        txt.insert("id".into(), a.appliance_id.clone());
        txt.insert("version".into(), a.version.clone());
        txt.insert("role".into(), a.role.clone());
        txt.insert("companyId".into(), a.company_id.clone());
        txt.insert("branchId".into(), a.branch_id.clone());
        txt.insert("path".into(), "/socket.io/".into());
        if let Some(fp) = &a.tls {
            txt.insert("tls".into(), "1".into());
            if !fp.is_empty() {
                txt.insert("tlsfp".into(), fp.clone());
            }
        }
        let main =
            ServiceInfo::new(SERVICE, &a.instance, &host, "", a.port, txt.into_iter().collect::<Vec<_>>().as_slice())?.enable_addr_auto();
        let web_txt = [("path", "/"), ("id", a.appliance_id.as_str())];
        let web = ServiceInfo::new(HTTP_SERVICE, &a.instance, &host, "", a.port, &web_txt[..])?.enable_addr_auto();
        let fullnames = vec![main.get_fullname().to_string(), web.get_fullname().to_string()];
        daemon.register(main)?;
        daemon.register(web)?;
        tracing::info!(instance = %a.instance, port = a.port, "advertising on mDNS as {SERVICE}");
        Ok(Advertiser { daemon, fullnames })
    }

    /// Sends goodbye packets for every record, then stops the daemon (bounded).
    pub fn withdraw(self) {
        for name in &self.fullnames {
            if let Ok(rx) = self.daemon.unregister(name) {
                let _ = rx.recv_timeout(Duration::from_secs(2));
            }
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        tracing::info!("mDNS advertisement withdrawn");
    }
}

/// A service instance found on the LAN.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub service: String,
    pub instance: String,
    pub host: String,
    pub addresses: Vec<String>,
    pub port: u16,
    pub txt: BTreeMap<String, String>,
}

/// Browses `types` for `wait` (bounded) and returns what resolved.
pub fn browse(types: &[&str], wait: Duration, interfaces: &[String]) -> Result<Vec<Found>, MdnsError> {
    let daemon = daemon(interfaces)?;
    let receivers: Vec<_> = types.iter().map(|t| daemon.browse(t)).collect::<Result<_, _>>()?;
    let deadline = Instant::now() + wait;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    while Instant::now() < deadline {
        for (t, rx) in types.iter().zip(&receivers) {
            while let Ok(ev) = rx.try_recv() {
                if let ServiceEvent::ServiceResolved(s) = ev {
                    let mut addresses: Vec<String> = s.get_addresses_v4().iter().map(|a| a.to_string()).collect();
                    addresses.sort();
                    let txt = s.get_properties().iter().map(|p| (p.key().to_string(), p.val_str().to_string())).collect();
                    let instance = s.get_fullname().trim_end_matches(t).trim_end_matches('.').to_string();
                    found.insert(
                        s.get_fullname().to_string(),
                        Found { service: t.to_string(), instance, host: s.get_hostname().to_string(), addresses, port: s.get_port(), txt },
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Ok(rx) = daemon.shutdown() {
        let _ = rx.recv_timeout(Duration::from_secs(1));
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::{MAX_INSTANCE_BYTES, instance_name};

    #[test]
    fn instance_name_fits_a_dns_label_in_bytes() {
        // 2 bytes per letter: 60 characters would be ~110 bytes.
        let full = "مطاعم الشام للمأكولات الشرقية والمشاوي - فرع شارع الملك عبد العزيز الرئيسي";
        assert!(full.chars().count() > MAX_INSTANCE_BYTES / 2 && full.len() > MAX_INSTANCE_BYTES);
        let name = instance_name(full, "pi");
        assert!(!name.is_empty());
        assert!(name.len() <= MAX_INSTANCE_BYTES, "{} bytes: {name}", name.len());
        assert!(std::str::from_utf8(name.as_bytes()).is_ok());
        assert!(full.starts_with(&name), "{name}");
        // A cut in the middle of a two-byte letter backs off to the letter before.
        let odd = format!("a{}", "ش".repeat(40));
        let name = instance_name(&odd, "pi");
        assert_eq!(name.len(), 63);
        assert!(odd.starts_with(&name));
        // Short names are kept whole; empty ones name the host; the result is never empty.
        assert_eq!(instance_name("Levant - Downtown", "pi"), "Levant - Downtown");
        assert_eq!(instance_name(" - ", "pi-7"), "branchd on pi-7");
        assert_eq!(instance_name("", ""), "branchd on");
        let long_host = "h".repeat(100);
        assert_eq!(instance_name("", &long_host).len(), MAX_INSTANCE_BYTES);
        assert_eq!(instance_name(&format!("{} - x", "ش".repeat(30)), "pi"), "ش".repeat(30));
    }

    #[test]
    fn virtual_interfaces_are_skipped() {
        for n in ["docker0", "br-1a2b", "veth12", "virbr0", "tun0", "wg0", "tailscale0"] {
            assert!(super::virtual_interface(n), "{n}");
        }
        for n in ["eth0", "enp3s0", "wlan0", "end0"] {
            assert!(!super::virtual_interface(n), "{n}");
        }
    }
}
