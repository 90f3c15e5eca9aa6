//! Network printers (raw TCP, usually port 9100): one connection per job or status check,
//! with connect, write and read timeouts. Hostnames are resolved on every connect, so a
//! printer that moved to another DHCP address is found again; connecting afresh each time
//! also means a half-open socket never blocks the queue.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::status::{self, Report, Status};
use super::{DriverError, Timeouts};

pub struct Network {
    pub host: String,
    pub port: u16,
    pub timeouts: Timeouts,
}

impl Network {
    async fn connect(&self) -> Result<TcpStream, DriverError> {
        let addr = format!("{}:{}", self.host, self.port);
        let stream = timeout(self.timeouts.connect, TcpStream::connect(&addr))
            .await
            .map_err(|_| DriverError::Unreachable(format!("no answer from {addr} within {:?}", self.timeouts.connect)))?
            .map_err(|e| DriverError::Unreachable(format!("cannot connect to {addr}: {e}")))?;
        // Connecting to a free local port can make the kernel pick that same port as the
        // source (a TCP "self-connect"): the socket then talks to itself and would echo our own
        // status requests back as answers. No printer is ever its own peer.
        if let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr())
            && local == peer
        {
            return Err(DriverError::Unreachable(format!("cannot connect to {addr}: nothing listens there")));
        }
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Sends `bytes`, then asks for the paper status (answered only after the job was
    /// processed) and the real-time status.
    pub async fn print(&self, bytes: &[u8], confirm: bool) -> Result<Report, DriverError> {
        let mut s = self.connect().await?;
        let mut sent = 0;
        for chunk in bytes.chunks(4096) {
            match timeout(self.timeouts.write, s.write_all(chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                Ok(Err(e)) => return Err(broken(sent, format!("write failed: {e}"))),
                Err(_) => return Err(broken(sent, "write timed out".into())),
            }
        }
        if !confirm {
            let _ = s.shutdown().await;
            return Ok(Report::new(Status::Unknown, "sent; this printer cannot confirm jobs"));
        }
        let confirm = async {
            s.write_all(&status::GS_R_PAPER).await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            Ok::<u8, std::io::Error>(b[0])
        };
        let paper = match timeout(self.timeouts.confirm, confirm).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(DriverError::Unconfirmed(format!("no confirmation after the job: {e}"))),
            Err(_) => return Err(DriverError::Unconfirmed("the printer did not confirm the job in time".into())),
        };
        let after = status::from_paper_reply(paper);
        let rt = realtime(&mut s, self.timeouts.read).await;
        let _ = s.shutdown().await;
        Ok(worst(after, rt))
    }

    pub async fn status(&self) -> Report {
        match self.connect().await {
            Ok(mut s) => {
                let r = realtime(&mut s, self.timeouts.read).await;
                let _ = s.shutdown().await;
                r
            }
            Err(e) => Report::new(Status::Offline, e.to_string()),
        }
    }
}

fn broken(sent: usize, why: String) -> DriverError {
    if sent == 0 { DriverError::Unreachable(why) } else { DriverError::Broken(format!("{why} after {sent} bytes")) }
}

/// Asks DLE EOT 1, 2 and 4; `unknown` when the printer does not answer them.
async fn realtime(s: &mut TcpStream, read: Duration) -> Report {
    let mut replies = [0u8; 3];
    for (i, n) in [1u8, 2, 4].into_iter().enumerate() {
        let ask = async {
            s.write_all(&status::dle_eot(n)).await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            Ok::<u8, std::io::Error>(b[0])
        };
        match timeout(read, ask).await {
            Ok(Ok(b)) => replies[i] = b,
            _ => return Report::new(Status::Unknown, "the printer does not answer status requests"),
        }
    }
    status::from_realtime(replies[0], replies[1], replies[2])
}

/// The more severe of two reports (a paper-out seen by either wins over online).
pub fn worst(a: Report, b: Report) -> Report {
    let rank = |s: Status| match s {
        Status::Online => 0,
        Status::Unknown => 1,
        Status::PaperLow => 2,
        Status::Offline => 3,
        Status::CoverOpen => 4,
        Status::PaperOut => 5,
        Status::Error => 6,
    };
    if rank(b.status) > rank(a.status) { b } else { a }
}
