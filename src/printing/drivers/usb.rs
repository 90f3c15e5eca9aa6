//! USB printers (printer class 0x07) through libusb (`rusb`, blocking, on the blocking pool).
//! Identical printers are told apart by serial number. The kernel's `usblp` driver is
//! detached when it holds the interface. A machine without USB (or without permission to
//! open the device) is normal: the printer is reported `offline` with the reason.

use std::time::Duration;

use rusb::{Direction, TransferType, UsbContext};

use super::status::{self, Report, Status};
use super::{DriverError, Timeouts};

const PRINTER_CLASS: u8 = 0x07;

pub struct Usb {
    pub vendor_id: u16,
    pub product_id: u16,
    pub serial_number: Option<String>,
    pub timeouts: Timeouts,
}

struct Open {
    handle: rusb::DeviceHandle<rusb::Context>,
    interface: u8,
    ep_out: u8,
    ep_in: Option<u8>,
}

/// A USB printer seen on the bus.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub vendor_id: u16,
    pub product_id: u16,
    pub serial_number: Option<String>,
    pub product: Option<String>,
    pub port_path: String,
}

fn printer_interface(dev: &rusb::Device<rusb::Context>) -> Option<(u8, u8, Option<u8>)> {
    let config = dev.active_config_descriptor().or_else(|_| dev.config_descriptor(0)).ok()?;
    for iface in config.interfaces() {
        for d in iface.descriptors() {
            if d.class_code() != PRINTER_CLASS {
                continue;
            }
            let mut out = None;
            let mut inp = None;
            for ep in d.endpoint_descriptors() {
                if ep.transfer_type() == TransferType::Bulk {
                    match ep.direction() {
                        Direction::Out => out = out.or(Some(ep.address())),
                        Direction::In => inp = inp.or(Some(ep.address())),
                    }
                }
            }
            if let Some(o) = out {
                return Some((d.interface_number(), o, inp));
            }
        }
    }
    None
}

fn port_path(dev: &rusb::Device<rusb::Context>) -> String {
    let ports = dev.port_numbers().unwrap_or_default();
    let ports: Vec<String> = ports.iter().map(u8::to_string).collect();
    format!("{}-{}", dev.bus_number(), ports.join("."))
}

/// Enumerates printer-class USB devices. No USB or no permission gives an empty list.
pub fn enumerate() -> Vec<Found> {
    let Ok(ctx) = rusb::Context::new() else { return vec![] };
    let Ok(devices) = ctx.devices() else { return vec![] };
    let timeout = Duration::from_millis(200);
    devices
        .iter()
        .filter(|d| printer_interface(d).is_some())
        .filter_map(|d| {
            let desc = d.device_descriptor().ok()?;
            let handle = d.open().ok();
            let read = |f: &dyn Fn(&rusb::DeviceHandle<rusb::Context>) -> Option<String>| handle.as_ref().and_then(f);
            let lang = handle.as_ref().and_then(|h| h.read_languages(timeout).ok()).and_then(|l| l.first().copied());
            Some(Found {
                vendor_id: desc.vendor_id(),
                product_id: desc.product_id(),
                serial_number: lang.and_then(|l| read(&|h| h.read_serial_number_string(l, &desc, timeout).ok())),
                product: lang.and_then(|l| read(&|h| h.read_product_string(l, &desc, timeout).ok())),
                port_path: port_path(&d),
            })
        })
        .collect()
}

impl Usb {
    fn open(&self) -> Result<Open, DriverError> {
        let unreachable = |why: String| DriverError::Unreachable(why);
        let ctx = rusb::Context::new().map_err(|e| unreachable(format!("USB is not available: {e}")))?;
        let devices = ctx.devices().map_err(|e| unreachable(format!("cannot list USB devices: {e}")))?;
        let t = Duration::from_millis(300);
        for dev in devices.iter() {
            let Ok(desc) = dev.device_descriptor() else { continue };
            if desc.vendor_id() != self.vendor_id || desc.product_id() != self.product_id {
                continue;
            }
            let Some((interface, ep_out, ep_in)) = printer_interface(&dev) else { continue };
            let handle = dev.open().map_err(|e| unreachable(format!("cannot open USB printer (permissions? udev rule?): {e}")))?;
            if let Some(want) = &self.serial_number {
                let lang = handle.read_languages(t).ok().and_then(|l| l.first().copied());
                let serial = lang.and_then(|l| handle.read_serial_number_string(l, &desc, t).ok());
                if serial.as_deref() != Some(want.as_str()) {
                    continue;
                }
            }
            let _ = handle.set_auto_detach_kernel_driver(true);
            handle.claim_interface(interface).map_err(|e| unreachable(format!("cannot claim USB printer interface: {e}")))?;
            return Ok(Open { handle, interface, ep_out, ep_in });
        }
        Err(unreachable(format!("USB printer {:04x}:{:04x} is not plugged in", self.vendor_id, self.product_id)))
    }

    pub async fn print(&self, bytes: &[u8], confirm: bool) -> Result<Report, DriverError> {
        let me = Usb { serial_number: self.serial_number.clone(), ..*self };
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || {
            let dev = me.open()?;
            let mut sent = 0;
            for chunk in bytes.chunks(4096) {
                match dev.handle.write_bulk(dev.ep_out, chunk, me.timeouts.write) {
                    Ok(n) if n == chunk.len() => sent += n,
                    Ok(n) => return Err(DriverError::Broken(format!("short USB write ({} of {} bytes)", sent + n, bytes.len()))),
                    Err(e) if sent == 0 => return Err(DriverError::Unreachable(format!("USB write failed: {e}"))),
                    Err(e) => return Err(DriverError::Broken(format!("USB write failed after {sent} bytes: {e}"))),
                }
            }
            let report = match dev.ep_in {
                _ if !confirm => Report::new(Status::Unknown, "sent; this printer cannot confirm jobs"),
                Some(ep_in) => {
                    let paper = ask(&dev, ep_in, &status::GS_R_PAPER, me.timeouts.confirm)
                        .map_err(|e| DriverError::Unconfirmed(format!("no confirmation after the job: {e}")))?;
                    status::from_paper_reply(paper)
                }
                None => return Err(DriverError::Unconfirmed("this USB printer has no status channel".into())),
            };
            let _ = dev.handle.release_interface(dev.interface);
            Ok(report)
        })
        .await
        .map_err(|e| DriverError::Unreachable(format!("USB task failed: {e}")))?
    }

    pub async fn status(&self) -> Report {
        let me = Usb { serial_number: self.serial_number.clone(), ..*self };
        tokio::task::spawn_blocking(move || {
            let dev = match me.open() {
                Ok(d) => d,
                Err(e) => return Report::new(Status::Offline, e.to_string()),
            };
            let Some(ep_in) = dev.ep_in else { return Report::new(Status::Unknown, "this USB printer has no status channel") };
            let mut r = [0u8; 3];
            for (i, n) in [1u8, 2, 4].into_iter().enumerate() {
                match ask(&dev, ep_in, &status::dle_eot(n), me.timeouts.read) {
                    Ok(b) => r[i] = b,
                    Err(_) => return Report::new(Status::Unknown, "the printer does not answer status requests"),
                }
            }
            let _ = dev.handle.release_interface(dev.interface);
            status::from_realtime(r[0], r[1], r[2])
        })
        .await
        .unwrap_or_else(|e| Report::new(Status::Unknown, format!("USB task failed: {e}")))
    }
}

fn ask(dev: &Open, ep_in: u8, request: &[u8], t: Duration) -> Result<u8, rusb::Error> {
    dev.handle.write_bulk(dev.ep_out, request, t)?;
    let mut buf = [0u8; 64];
    let n = dev.handle.read_bulk(ep_in, &mut buf, t)?;
    if n == 0 { Err(rusb::Error::Io) } else { Ok(buf[n - 1]) }
}
