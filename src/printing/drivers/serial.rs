//! Serial printers through the `serialport` crate (blocking calls, never on the async
//! runtime), in one of two ways, like network printers:
//!
//! - **held** (a [`Held`] kept by the printer's worker, for models that push their status,
//!   Epson TM): the port stays open with Automatic Status Back (`GS a`) on, so paper out,
//!   cover open and offline are heard at once. A dedicated thread reads it (blocking reads
//!   with a short timeout) and splits pushed frames from answers exactly as a network
//!   connection's reader does; writes run on the blocking pool. Jobs and status requests use
//!   the open port; after any error it is closed and opened again on the next use, so an
//!   unplugged adapter is found again when it comes back.
//! - **one-shot**: the port is opened per job or status check and closed after (on the
//!   blocking pool).

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::network::{self, Conn, Held, Out, Push, Reader};
use super::status::{self, Report, Status};
use super::{DriverError, Timeouts};

pub struct Serial {
    pub path: String,
    pub baud_rate: u32,
    pub timeouts: Timeouts,
    /// The held port of a printer that pushes its status; `None`: one-shot.
    pub held: Option<Arc<Held>>,
}

pub(super) type Port = Box<dyn serialport::SerialPort>;

/// How long the reader thread blocks in one read: also how soon it notices it is stopped.
const READ_SLICE: Duration = Duration::from_millis(50);

/// Opens the port for holding: a reader thread (its own handle, short read timeout) and a
/// write handle. A port held before is released by its reader thread within [`READ_SLICE`]
/// (the port is opened exclusively), so a failed open is tried again until `connect` passes.
fn open_held(path: &str, baud: u32, t: Timeouts, pushed: Push) -> Result<Conn, DriverError> {
    let deadline = Instant::now() + t.connect;
    let port = loop {
        match open(path, baud, t.write) {
            Ok(p) => break p,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(READ_SLICE),
        }
    };
    let mut reading = port.try_clone().map_err(|e| DriverError::Unreachable(format!("cannot read {path}: {e}")))?;
    let _ = reading.set_timeout(READ_SLICE);
    let (conn, mut feed) = Conn::new(Out::Serial(Arc::new(std::sync::Mutex::new(port))), Some(pushed));
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let name = format!("serial {path}");
    std::thread::Builder::new()
        .name("branchd-serial".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            while !stopped.load(Ordering::SeqCst) {
                match reading.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => feed.bytes(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        tracing::debug!(port = %name, error = %e, "held serial port failed; it is opened again on the next use");
                        break;
                    }
                }
            }
            feed.closed();
        })
        .map_err(|e| DriverError::Unreachable(format!("cannot start the reader of {path}: {e}")))?;
    Ok(conn.read_by(Reader::Thread(stop)))
}

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
    async fn open_held(&self, pushed: Option<Push>) -> Result<Conn, DriverError> {
        let (path, baud, t) = (self.path.clone(), self.baud_rate, self.timeouts);
        let Some(pushed) = pushed else { return Err(DriverError::Unreachable("a one-shot serial port is not opened here".into())) };
        tokio::task::spawn_blocking(move || open_held(&path, baud, t, pushed))
            .await
            .map_err(|e| DriverError::Unreachable(format!("serial task failed: {e}")))?
    }

    pub async fn print(&self, bytes: &[u8], confirm: bool) -> Result<Report, DriverError> {
        if let Some(held) = &self.held {
            let lease = network::lease(Some(held), |p| self.open_held(p), self.timeouts.write).await?;
            return network::deliver(lease, bytes, confirm, &self.timeouts, 1024).await;
        }
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
        if let Some(held) = &self.held {
            let lease = network::lease(Some(held), |p| self.open_held(p), self.timeouts.write).await;
            return network::ask_status(lease, self.timeouts.read).await;
        }
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
