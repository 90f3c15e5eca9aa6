//! Finding printers: USB printer-class devices, serial ports (probed only when asked),
//! network printers advertised over mDNS, and (opt-in) a scan of port 9100 on given hosts,
//! each confirmed by a real-time status reply. Every candidate carries the `connection`
//! object that `POST /api/printers` takes, so adding one is one call.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::drivers::status;

/// At most this many hosts in one scan (a /24).
pub const MAX_SCAN_HOSTS: usize = 254;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub source: &'static str,
    pub name: String,
    pub connection: Value,
    pub detail: Option<String>,
}

/// What to look for. USB and mDNS are always searched; the rest only when asked.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub mdns: Option<Duration>,
    pub mdns_interfaces: Vec<String>,
    pub probe_serial: bool,
    pub scan_hosts: Vec<IpAddr>,
    pub scan_port: u16,
}

/// Parses `a.b.c.d/nn` (nn ≥ 24) into its host addresses.
pub fn hosts_of(cidr: &str) -> Option<Vec<IpAddr>> {
    let (ip, bits) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok().filter(|b| (24..=32).contains(b))?;
    let mask = if bits == 32 { u32::MAX } else { !(u32::MAX >> bits) };
    let net = u32::from(ip) & mask;
    let size = 1u32 << (32 - bits);
    let hosts: Vec<IpAddr> = if size <= 2 {
        (0..size).map(|i| IpAddr::V4(Ipv4Addr::from(net + i))).collect()
    } else {
        (1..size - 1).map(|i| IpAddr::V4(Ipv4Addr::from(net + i))).collect()
    };
    Some(hosts)
}

pub async fn discover(req: Request) -> Vec<Candidate> {
    let mut out = Vec::new();
    let usb = tokio::task::spawn_blocking(super::drivers::usb::enumerate).await.unwrap_or_default();
    for d in usb {
        out.push(Candidate {
            source: "usb",
            name: d.product.clone().unwrap_or_else(|| format!("USB printer {:04x}:{:04x}", d.vendor_id, d.product_id)),
            connection: json!({"type": "usb", "vendorId": d.vendor_id, "productId": d.product_id, "serialNumber": d.serial_number}),
            detail: Some(format!("port {}", d.port_path)),
        });
    }
    for path in tokio::task::spawn_blocking(super::drivers::serial::ports).await.unwrap_or_default() {
        let (baud, detail) = if req.probe_serial {
            // Only a port where a printer answered is a candidate, at the speed it answered.
            let Some(baud) = probe_serial(&path).await else { continue };
            (baud, format!("answered at {baud} baud"))
        } else {
            (9600, "not probed (ask with serial: true); 9600 baud assumed".to_string())
        };
        out.push(Candidate {
            source: "serial",
            name: path.clone(),
            connection: json!({"type": "serial", "path": path, "baudRate": baud}),
            detail: Some(detail),
        });
    }
    if let Some(wait) = req.mdns {
        let types = ["_pdl-datastream._tcp.local.", "_printer._tcp.local.", "_ipp._tcp.local."];
        let ifs = req.mdns_interfaces.clone();
        let found = tokio::task::spawn_blocking(move || crate::mdns::browse(&types, wait, &ifs)).await;
        for f in found.ok().and_then(Result::ok).unwrap_or_default() {
            let Some(host) = f.addresses.first().cloned() else { continue };
            // Raw printing is port 9100; an LPD or IPP advert says the printer is there.
            let port = if f.service.starts_with("_pdl-datastream") { f.port } else { 9100 };
            out.push(Candidate {
                source: "mdns",
                name: f.txt.get("ty").cloned().unwrap_or(f.instance.clone()),
                connection: json!({"type": "network", "host": host, "port": port}),
                detail: Some(format!("{} as {}", f.instance, f.service.trim_end_matches(".local."))),
            });
        }
    }
    out.extend(scan(&req.scan_hosts, req.scan_port).await);
    out
}

/// Tries every host on `port` (64 at a time); a host counts only when it answers DLE EOT.
pub async fn scan(hosts: &[IpAddr], port: u16) -> Vec<Candidate> {
    let mut out = Vec::new();
    for chunk in hosts.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for host in chunk {
            let host = *host;
            set.spawn(async move { (host, confirm(host, port).await) });
        }
        while let Some(Ok((host, reply))) = set.join_next().await {
            if let Some(byte) = reply {
                let report = status::from_realtime(byte, 0x12, 0x12);
                out.push(Candidate {
                    source: "scan",
                    name: format!("Printer at {host}"),
                    connection: json!({"type": "network", "host": host.to_string(), "port": port}),
                    detail: Some(format!("answered a status request: {}", report.status.as_str())),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

async fn confirm(host: IpAddr, port: u16) -> Option<u8> {
    let t = Duration::from_millis(400);
    let mut s = tokio::time::timeout(t, tokio::net::TcpStream::connect((host, port))).await.ok()?.ok()?;
    s.write_all(&status::dle_eot(1)).await.ok()?;
    let mut b = [0u8; 1];
    tokio::time::timeout(t, s.read_exact(&mut b)).await.ok()?.ok()?;
    status::valid_rt(b[0]).then_some(b[0])
}

/// The first speed at which a printer on `path` answers a status request.
async fn probe_serial(path: &str) -> Option<u32> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        for baud in [9600u32, 19200, 38400, 115200] {
            let Ok(mut port) = serialport::new(&path, baud).timeout(Duration::from_millis(300)).open() else { return None };
            let mut b = [0u8; 1];
            if std::io::Write::write_all(&mut port, &status::dle_eot(1)).is_ok()
                && std::io::Read::read_exact(&mut port, &mut b).is_ok()
                && status::valid_rt(b[0])
            {
                return Some(baud);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cidr_hosts() {
        assert_eq!(super::hosts_of("192.168.1.0/24").unwrap().len(), 254);
        assert_eq!(super::hosts_of("127.0.0.1/32").unwrap(), vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        assert!(super::hosts_of("10.0.0.0/8").is_none(), "no scans wider than a /24");
        assert!(super::hosts_of("nonsense").is_none());
    }
}
