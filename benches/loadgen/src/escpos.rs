//! A tiny TCP ESC/POS printer emulator for the print-latency mode: answers `DLE EOT n` with
//! 0x12 (online, paper present, cover closed) and `GS r 1` with 0x00 (paper adequate), skips
//! the payloads of raster images (`GS v 0`) and 2D codes (`GS ( k`) so that their bytes are
//! not taken for commands, and reports every job (the bytes between the start of a connection
//! or the previous `GS r` and the next `GS r`) with the arrival time of its last byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::clock::now_ns;

const DLE: u8 = 0x10;
const ESC: u8 = 0x1b;
const GS: u8 = 0x1d;
/// A connection idle this long is closed (branchd opens one per job or status check).
const IDLE: Duration = Duration::from_secs(60);
/// At most this many bytes buffered for one unfinished command (a raster band is far less).
const MAX_PENDING: usize = 4 << 20;

/// One job the printer confirmed: its text (printable bytes only) and when its last byte came.
#[derive(Debug)]
pub struct Job {
    pub text: String,
    pub last_byte_ns: u64,
}

#[derive(Default)]
pub struct EmuStats {
    pub connections: AtomicU64,
    pub status_requests: AtomicU64,
    pub jobs: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    /// `DLE EOT n`: real-time status request.
    Status,
    /// `GS r n`: transmit status (non-real-time: ends a job).
    PaperStatus,
    /// Any other command (its bytes belong to the job but are not text).
    Cmd,
    /// Printable bytes up to the next command byte.
    Text,
}

fn u16le(lo: u8, hi: u8) -> usize {
    lo as usize + 256 * hi as usize
}

/// The next token at the start of `b` and its length; `None` when `b` holds only part of it.
fn next(b: &[u8]) -> Option<(usize, Tok)> {
    let need = |n: usize| (b.len() >= n).then_some(());
    match *b.first()? {
        DLE => {
            need(2)?;
            if b[1] == 0x04 {
                need(3)?;
                Some((3, Tok::Status))
            } else {
                Some((1, Tok::Cmd))
            }
        }
        ESC => {
            need(2)?;
            let len = match b[1] {
                b'@' | b'2' => 2,
                b'p' => 5,
                b'*' => {
                    need(5)?;
                    let dots = u16le(b[3], b[4]);
                    5 + if b[2] >= 32 { 3 * dots } else { dots }
                }
                _ => 3,
            };
            need(len)?;
            Some((len, Tok::Cmd))
        }
        GS => {
            need(2)?;
            let (len, tok) = match b[1] {
                b'v' => {
                    need(8)?;
                    (8 + u16le(b[4], b[5]) * u16le(b[6], b[7]), Tok::Cmd)
                }
                b'(' => {
                    need(5)?;
                    (5 + u16le(b[3], b[4]), Tok::Cmd)
                }
                b'V' => {
                    need(3)?;
                    (if b[2] >= 65 { 4 } else { 3 }, Tok::Cmd)
                }
                b'L' | b'W' | b'P' => (4, Tok::Cmd),
                b'r' => (3, Tok::PaperStatus),
                _ => (3, Tok::Cmd),
            };
            need(len)?;
            Some((len, tok))
        }
        _ => {
            let n = b.iter().position(|&c| c == DLE || c == ESC || c == GS).unwrap_or(b.len());
            Some((n, Tok::Text))
        }
    }
}

/// Binds 127.0.0.1:0 and serves until the task is aborted; returns the port.
pub async fn start(jobs: mpsc::UnboundedSender<Job>, stats: Arc<EmuStats>) -> Result<(u16, tokio::task::JoinHandle<()>), String> {
    let l = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("emulator bind: {e}"))?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    let h = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            stats.connections.fetch_add(1, Relaxed);
            tokio::spawn(conn(s, jobs.clone(), stats.clone()));
        }
    });
    Ok((port, h))
}

async fn conn(mut s: TcpStream, jobs: mpsc::UnboundedSender<Job>, stats: Arc<EmuStats>) {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut rd = vec![0u8; 64 * 1024];
    let mut text: Vec<u8> = Vec::new();
    let mut in_job = false;
    let mut last_ns = 0;
    let mut replies = Vec::with_capacity(16);
    loop {
        let n = match tokio::time::timeout(IDLE, s.read(&mut rd)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        let t = now_ns();
        stats.bytes.fetch_add(n as u64, Relaxed);
        buf.extend_from_slice(&rd[..n]);
        let mut pos = 0;
        while let Some((len, tok)) = next(&buf[pos..]) {
            if len == 0 {
                break;
            }
            match tok {
                Tok::Status => {
                    stats.status_requests.fetch_add(1, Relaxed);
                    replies.push(0x12);
                }
                Tok::PaperStatus => {
                    replies.push(0x00);
                    if in_job {
                        stats.jobs.fetch_add(1, Relaxed);
                        let _ = jobs.send(Job { text: String::from_utf8_lossy(&text).into_owned(), last_byte_ns: last_ns });
                    }
                    text.clear();
                    in_job = false;
                }
                Tok::Cmd => {
                    in_job = true;
                    last_ns = t;
                }
                Tok::Text => {
                    in_job = true;
                    last_ns = t;
                    text.extend_from_slice(&buf[pos..pos + len]);
                }
            }
            pos += len;
        }
        buf.drain(..pos);
        if buf.len() > MAX_PENDING {
            return;
        }
        if !replies.is_empty() {
            if s.write_all(&replies).await.is_err() {
                return;
            }
            replies.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_commands_and_payloads() {
        assert_eq!(next(&[0x10, 0x04, 1]), Some((3, Tok::Status)));
        assert_eq!(next(&[0x10, 0x04]), None);
        assert_eq!(next(&[0x1d, 0x72, 1]), Some((3, Tok::PaperStatus)));
        // A raster image whose payload contains what looks like GS r 1 and DLE EOT.
        let mut r = vec![0x1d, b'v', b'0', 0, 3, 0, 2, 0];
        r.extend_from_slice(&[0x1d, 0x72, 1, 0x10, 0x04, 1]);
        assert_eq!(next(&r), Some((14, Tok::Cmd)));
        assert_eq!(next(&r[..10]), None);
        assert_eq!(next(&[0x1d, b'(', b'k', 3, 0, 49, 0x10, 0x04]), Some((8, Tok::Cmd)));
        assert_eq!(next(&[0x1d, b'V', 66, 3]), Some((4, Tok::Cmd)));
        assert_eq!(next(&[0x1b, b'@', 0x1b]), Some((2, Tok::Cmd)));
        assert_eq!(next(&[0x1b, b'!', 0x10, b'A']), Some((3, Tok::Cmd)));
        assert_eq!(next(b"abc\x1bE\x01"), Some((3, Tok::Text)));
    }
}
