//! Serial printers through the `serialport` crate (blocking calls, run on the blocking pool).
//! The port is opened per job or status check and closed after, so an unplugged adapter is
//! found again when it comes back.

use std::io::{Read, Write};
use std::time::Duration;

use super::status::{self, Report, Status};
use super::{DriverError, Timeouts};

pub struct Serial {
    pub path: String,
    pub baud_rate: u32,
    pub timeouts: Timeouts,
}

type Port = Box<dyn serialport::SerialPort>;

fn open(path: &str, baud: u32, t: Duration) -> Result<Port, DriverError> {
    serialport::new(path, baud).timeout(t).open().map_err(|e| DriverError::Unreachable(format!("cannot open {path}: {e}")))
}

fn ask(port: &mut Port, request: &[u8]) -> std::io::Result<u8> {
    port.write_all(request)?;
    port.flush()?;
    let mut b = [0u8; 1];
    port.read_exact(&mut b)?;
    Ok(b[0])
}

fn realtime(port: &mut Port) -> Report {
    let mut r = [0u8; 3];
    for (i, n) in [1u8, 2, 4].into_iter().enumerate() {
        match ask(port, &status::dle_eot(n)) {
            Ok(b) => r[i] = b,
            Err(_) => return Report::new(Status::Unknown, "the printer does not answer status requests"),
        }
    }
    status::from_realtime(r[0], r[1], r[2])
}

impl Serial {
    pub async fn print(&self, bytes: &[u8], confirm: bool) -> Result<Report, DriverError> {
        let (path, baud, t, bytes) = (self.path.clone(), self.baud_rate, self.timeouts, bytes.to_vec());
        tokio::task::spawn_blocking(move || {
            let mut port = open(&path, baud, t.write)?;
            let mut sent = 0;
            for chunk in bytes.chunks(1024) {
                if let Err(e) = port.write_all(chunk) {
                    let why = format!("write to {path} failed: {e}");
                    return Err(if sent == 0 { DriverError::Unreachable(why) } else { DriverError::Broken(why) });
                }
                sent += chunk.len();
            }
            if !confirm {
                let _ = port.flush();
                return Ok(Report::new(Status::Unknown, "sent; this printer cannot confirm jobs"));
            }
            let _ = port.set_timeout(t.confirm);
            let paper =
                ask(&mut port, &status::GS_R_PAPER).map_err(|e| DriverError::Unconfirmed(format!("no confirmation after the job: {e}")))?;
            let _ = port.set_timeout(t.read);
            Ok(super::network::worst(status::from_paper_reply(paper), realtime(&mut port)))
        })
        .await
        .map_err(|e| DriverError::Unreachable(format!("serial task failed: {e}")))?
    }

    pub async fn status(&self) -> Report {
        let (path, baud, t) = (self.path.clone(), self.baud_rate, self.timeouts);
        tokio::task::spawn_blocking(move || match open(&path, baud, t.read) {
            Ok(mut port) => realtime(&mut port),
            Err(e) => Report::new(Status::Offline, e.to_string()),
        })
        .await
        .unwrap_or_else(|e| Report::new(Status::Unknown, format!("serial task failed: {e}")))
    }
}

/// Serial ports present on this machine (for discovery).
pub fn ports() -> Vec<String> {
    serialport::available_ports().map(|ps| ps.into_iter().map(|p| p.port_name).collect()).unwrap_or_default()
}
