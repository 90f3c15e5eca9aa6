//! Printer drivers: deliver rendered bytes and report status. They do no formatting
//! (that is `render`) and keep no queue (that is `queue`). One driver value per printer;
//! each call opens its own connection, except a held connection or serial port
//! ([`network::Held`], kept by the printer's worker), over which the printer pushes its
//! status (`network` has the held connection itself; `serial` holds a port the same way).

pub mod network;
pub mod serial;
pub mod status;
pub mod usb;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use super::render::Rendered;
pub use crate::config::Timeouts;
use crate::domain::printer::{Connection, Printer};
use crate::state::desktops::{self, DesktopHub};
use status::{Report, Status};

/// Why a delivery failed, which decides what the queue does next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// Nothing reached the printer: retry later, as a normal copy.
    #[error("{0}")]
    Unreachable(String),
    /// The connection broke mid-job: part of it may have printed. Retry with a
    /// `POSSIBLE DUPLICATE` banner.
    #[error("{0}")]
    Broken(String),
    /// Everything was sent but the printer did not confirm it: retry with a banner.
    #[error("{0}")]
    Unconfirmed(String),
    /// The printer's side answered that it did not print (a desktop app's failure answer):
    /// retry later as a normal copy; its status is the app's to report.
    #[error("{0}")]
    Refused(String),
}

pub enum Driver {
    Network(network::Network),
    Serial(serial::Serial),
    Usb(usb::Usb),
    Virtual { dir: PathBuf },
    Desktop { hub: Arc<DesktopHub>, printer: Box<Printer>, timeout: Duration },
}

impl Driver {
    pub fn for_printer(
        p: &Printer,
        data_dir: &std::path::Path,
        hub: Arc<DesktopHub>,
        timeouts: Timeouts,
        desktop_timeout: Duration,
        held: Option<Arc<network::Held>>,
    ) -> Driver {
        match &p.connection {
            Connection::Network { host, port, .. } => Driver::Network(network::Network { host: host.clone(), port: *port, timeouts, held }),
            Connection::Serial { path, baud_rate } => {
                Driver::Serial(serial::Serial { path: path.clone(), baud_rate: *baud_rate, timeouts, held })
            }
            Connection::Usb { vendor_id, product_id, serial_number } => {
                Driver::Usb(usb::Usb { vendor_id: *vendor_id, product_id: *product_id, serial_number: serial_number.clone(), timeouts })
            }
            Connection::Virtual => Driver::Virtual { dir: data_dir.join("virtual").join(&p.id) },
            Connection::Desktop { .. } => Driver::Desktop { hub, printer: Box::new(p.clone()), timeout: desktop_timeout },
        }
    }

    /// Delivers one job. With `confirm`, `Ok` means the printer confirmed it (the report is
    /// its status after); without, that every byte was sent to a printer that cannot confirm.
    pub async fn print(&self, job_id: &str, job: &Rendered, confirm: bool) -> Result<Report, DriverError> {
        match self {
            Driver::Network(d) => d.print(&job.bytes, confirm).await,
            Driver::Serial(d) => d.print(&job.bytes, confirm).await,
            Driver::Usb(d) => d.print(&job.bytes, confirm).await,
            Driver::Virtual { dir } => {
                let write = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(dir.join(format!("{job_id}.bin")), &job.bytes).await?;
                    tokio::fs::write(dir.join(format!("{job_id}.txt")), &job.preview).await
                };
                write.await.map(|_| Report::online()).map_err(|e| DriverError::Unreachable(format!("cannot write virtual print: {e}")))
            }
            Driver::Desktop { hub, printer, timeout } => {
                let Some((device, local)) = printer.connection.desktop_ids() else {
                    return Err(DriverError::Unreachable("not a desktop printer".into()));
                };
                let correlation = uuid::Uuid::new_v4().to_string();
                let payload = json!({
                    "jobId": job_id, "correlationId": correlation, "printerId": printer.id, "deviceId": device, "localId": local,
                    "data": base64::engine::general_purpose::STANDARD.encode(&job.bytes), "preview": job.preview,
                });
                let a = hub.request(device, &printer.branch_id, &correlation, "print:job", payload, *timeout).await;
                match a.code {
                    None => Ok(Report::online()),
                    Some(desktops::PRINT_TIMEOUT) => Err(DriverError::Unconfirmed("the desktop app did not answer in time".into())),
                    // Gone after the job reached it: it may have printed.
                    Some(desktops::DESKTOP_OFFLINE) if a.sent => {
                        Err(DriverError::Unconfirmed("the desktop app disconnected before confirming the job".into()))
                    }
                    Some(desktops::DESKTOP_OFFLINE) => Err(DriverError::Unreachable(a.message)),
                    Some(_) => Err(DriverError::Refused(format!("the desktop app could not print: {}", a.message))),
                }
            }
        }
    }

    /// Asks the printer how it is. Desktop printers report through their app instead.
    pub async fn status(&self) -> Option<Report> {
        match self {
            Driver::Network(d) => Some(d.status().await),
            Driver::Serial(d) => Some(d.status().await),
            Driver::Usb(d) => Some(d.status().await),
            Driver::Virtual { .. } => Some(Report::online().answered()),
            Driver::Desktop { .. } => None,
        }
    }
}

impl Report {
    pub fn printable(&self) -> bool {
        self.status.can_print()
    }
}

impl From<Status> for Report {
    fn from(s: Status) -> Report {
        Report { status: s, detail: None, answered: false }
    }
}
