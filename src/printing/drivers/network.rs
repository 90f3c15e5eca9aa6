//! Network printers (raw TCP, usually port 9100), in one of two ways:
//!
//! - **held** ([`Held`]): for models whose profile says they push their status (Epson TM,
//!   Star) and that branchd is the only sender to (the printer's `shared` flag is off): one
//!   connection stays open with Automatic Status Back on (ESC/POS `GS a`; Star `ESC RS a`,
//!   or Star's default on raster models), so the printer itself says when it runs out of
//!   paper or its cover opens; jobs and status requests use that same connection. It is
//!   dropped on any error or silence and opened again on the next use. A Star printer is
//!   never asked (it does not speak DLE EOT): its status is what it last pushed, and its jobs
//!   stay unconfirmed (Star's ASB says how the printer is, not that a job printed).
//! - **one-shot**: a connection per job or status check (other models, shared printers).
//!   Hostnames are resolved on every connect, so a printer that moved to another DHCP address
//!   is found again, and a half-open socket never blocks the queue.
//!
//! Either way every byte the printer sends goes through one reader that tells pushed status
//! frames apart from answers to our requests ([`status::Splitter`]), so an ASB frame arriving
//! while a job waits for its confirmation is never taken for the confirmation.
//!
//! The held-connection machinery (`Conn` over an `Out` and a `Reader`, `lease`,
//! `deliver`, `ask_status`) is shared with `serial`, which holds a port the same way.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, MutexGuard, mpsc, watch};
use tokio::time::timeout;

use super::status::{self, Asb, Piece, Report, Splitter, Status};

use super::{DriverError, Timeouts};

pub struct Network {
    pub host: String,
    pub port: u16,
    pub timeouts: Timeouts,
    /// The held connection of a printer that pushes its status; `None`: one-shot.
    pub held: Option<Arc<Held>>,
}

/// What a held connection tells its printer's worker between requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    Nothing,
    /// The printer pushed its status (ASB).
    Status(Report),
    /// The held connection closed: ask the printer afresh.
    Closed,
}

/// The one held connection of a printer, and the statuses it pushed. Kept by the printer's
/// worker across jobs; dropping it closes the connection.
pub struct Held {
    conn: Mutex<Option<Conn>>,
    pushed: watch::Sender<Pushed>,
    asb: Asb,
}

/// Where a held connection's pushed statuses go, and their kind.
pub(super) type Push = (watch::Sender<Pushed>, Asb);

impl Held {
    pub fn new(asb: Asb) -> Arc<Held> {
        Arc::new(Held { conn: Mutex::new(None), pushed: watch::channel(Pushed::Nothing).0, asb })
    }

    /// Follows what the printer pushes.
    pub fn subscribe(&self) -> watch::Receiver<Pushed> {
        self.pushed.subscribe()
    }
}

/// Where a connection's bytes go: a TCP write half, or a held serial port (blocking
/// writes, run on the blocking pool).
pub(super) enum Out {
    Tcp(OwnedWriteHalf),
    Serial(Arc<std::sync::Mutex<super::serial::Port>>),
}

impl Out {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Tcp(w) => w.write_all(bytes).await,
            Out::Serial(port) => {
                let (port, bytes) = (port.clone(), bytes.to_vec());
                tokio::task::spawn_blocking(move || {
                    let mut p = port.lock().unwrap_or_else(|e| e.into_inner());
                    p.write_all(&bytes)?;
                    p.flush()
                })
                .await
                .map_err(std::io::Error::other)?
            }
        }
    }

    async fn shutdown(&mut self) {
        if let Out::Tcp(w) = self {
            let _ = w.shutdown().await;
        }
    }
}

/// What reads a connection: a task (TCP) or a dedicated thread (a serial port's blocking
/// reads), stopped when the connection is dropped.
pub(super) enum Reader {
    Task(tokio::task::JoinHandle<()>),
    Thread(Arc<AtomicBool>),
}

/// Everything the printer sends on one connection, split into answers (to `replies`) and
/// pushed statuses (to the held connection's watchers).
pub(super) struct Feed {
    split: Splitter,
    replies: mpsc::Sender<u8>,
    pushed: Option<watch::Sender<Pushed>>,
    closed: Arc<AtomicBool>,
}

impl Feed {
    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.split.feed(b) {
                Some(Piece::Reply(b)) => {
                    let _ = self.replies.try_send(b);
                }
                Some(Piece::Pushed(report)) => {
                    if let Some(p) = &self.pushed {
                        p.send_replace(Pushed::Status(report));
                    }
                }
                None => {}
            }
        }
    }

    /// The printer's side closed (or the link failed).
    pub(super) fn closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(p) = &self.pushed {
            p.send_replace(Pushed::Closed);
        }
    }
}

/// An open connection: where to write, the printer's answers to our requests (pushed
/// frames already taken out), and its reader (stopped with the connection).
pub(super) struct Conn {
    w: Out,
    replies: mpsc::Receiver<u8>,
    closed: Arc<AtomicBool>,
    reader: Option<Reader>,
}

impl Conn {
    /// A connection writing to `w`; the caller starts the reader with the [`Feed`] and hands
    /// it back with [`Conn::read_by`]. `pushed`: the held connection's watchers (ASB on).
    pub(super) fn new(w: Out, push: Option<Push>) -> (Conn, Feed) {
        let (tx, replies) = mpsc::channel(64);
        let closed = Arc::new(AtomicBool::new(false));
        let (pushed, asb) = push.map_or((None, None), |(p, a)| (Some(p), Some(a)));
        let feed = Feed { split: Splitter::new(asb), replies: tx, pushed, closed: closed.clone() };
        (Conn { w, replies, closed, reader: None }, feed)
    }

    pub(super) fn read_by(mut self, reader: Reader) -> Conn {
        self.reader = Some(reader);
        self
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        match &self.reader {
            Some(Reader::Task(t)) => t.abort(),
            Some(Reader::Thread(stop)) => stop.store(true, Ordering::SeqCst),
            None => {}
        }
    }
}

#[derive(Debug)]
enum AskError {
    Io(std::io::Error),
    Silent,
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::Io(e) => write!(f, "{e}"),
            AskError::Silent => f.write_str("no answer"),
        }
    }
}

impl Conn {
    async fn send(&mut self, bytes: &[u8], within: Duration) -> Result<(), String> {
        match timeout(within, self.w.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err("write timed out".into()),
        }
    }

    /// Sends a request and waits for its one-byte answer. Answers left over from an earlier
    /// request that timed out are thrown away first.
    async fn ask(&mut self, request: &[u8], within: Duration) -> Result<u8, AskError> {
        while self.replies.try_recv().is_ok() {}
        let exchange = async {
            self.w.write_all(request).await.map_err(AskError::Io)?;
            self.replies.recv().await.ok_or(AskError::Io(std::io::ErrorKind::UnexpectedEof.into()))
        };
        timeout(within, exchange).await.unwrap_or(Err(AskError::Silent))
    }
}

/// A connection for one operation: the held one (under its lock) or a one-shot one.
pub(super) enum Lease<'a> {
    Held(MutexGuard<'a, Option<Conn>>),
    Own(Option<Conn>),
}

impl Lease<'_> {
    fn conn(&mut self) -> Option<&mut Conn> {
        match self {
            Lease::Held(g) => g.as_mut(),
            Lease::Own(c) => c.as_mut(),
        }
    }

    /// After an error: the connection is not to be trusted again.
    fn discard(&mut self) {
        match self {
            Lease::Held(g) => **g = None,
            Lease::Own(c) => *c = None,
        }
    }

    async fn finish(mut self) {
        if let Lease::Own(Some(c)) = &mut self {
            c.w.shutdown().await;
        }
    }
}

impl Network {
    /// A printer spoken to with a connection per job or status check.
    pub fn one_shot(host: impl Into<String>, port: u16, timeouts: Timeouts) -> Network {
        Network { host: host.into(), port, timeouts, held: None }
    }

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

    /// Opens a connection and starts its reader; pushed statuses go to `pushed`.
    async fn open(&self, pushed: Option<Push>) -> Result<Conn, DriverError> {
        let (mut r, w) = self.connect().await?.into_split();
        let (conn, mut feed) = Conn::new(Out::Tcp(w), pushed);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = r.read(&mut buf).await {
                feed.bytes(&buf[..n]);
            }
            feed.closed();
        });
        Ok(conn.read_by(Reader::Task(reader)))
    }

    async fn lease(&self) -> Result<Lease<'_>, DriverError> {
        lease(self.held.as_deref(), |pushed| self.open(pushed), self.timeouts.write).await
    }

    /// Sends `bytes`, then asks for the paper status (answered only after the job was
    /// processed) and the real-time status.
    pub async fn print(&self, bytes: &[u8], confirm: bool) -> Result<Report, DriverError> {
        let sent = deliver(self.lease().await?, bytes, confirm, &self.timeouts, 4096).await?;
        // A Star printer's job is sent, not confirmed; how the printer is after it is what it
        // last pushed, when that says it can print (a fault it pushes is recorded by the
        // worker as it hears it; it never makes a sent job print again).
        match &self.held {
            Some(h) if h.asb.is_star() => match &*h.pushed.borrow() {
                Pushed::Status(r) if r.printable() => Ok(r.clone()),
                _ => Ok(sent),
            },
            _ => Ok(sent),
        }
    }

    pub async fn status(&self) -> Report {
        match &self.held {
            Some(h) if h.asb.is_star() => pushed_status(h, self.lease().await, self.timeouts.read).await,
            _ => ask_status(self.lease().await, self.timeouts.read).await,
        }
    }
}

/// The status a Star printer last pushed on its held connection, waiting up to `read` for
/// the first frame of a new connection; `unknown` when none comes (ASB off).
async fn pushed_status(held: &Held, lease: Result<Lease<'_>, DriverError>, read: Duration) -> Report {
    match lease {
        Ok(lease) => {
            lease.finish().await;
            let mut rx = held.subscribe();
            match timeout(read, rx.wait_for(|p| matches!(p, Pushed::Status(_)))).await {
                Ok(Ok(p)) => match &*p {
                    Pushed::Status(r) => r.clone(),
                    _ => Report::new(Status::Unknown, "the printer has not pushed its status"),
                },
                _ => Report::new(Status::Unknown, "the printer has not pushed its status (is ASB turned off in its settings?)"),
            }
        }
        Err(e) => Report::new(Status::Offline, e.to_string()),
    }
}

/// The held connection of `held` (opened with `open` and ASB turned on when there is none
/// or it closed), or a one-shot connection from `open` without `held`.
pub(super) async fn lease<'a, F, Fut>(held: Option<&'a Held>, open: F, write: Duration) -> Result<Lease<'a>, DriverError>
where
    F: FnOnce(Option<Push>) -> Fut,
    Fut: Future<Output = Result<Conn, DriverError>>,
{
    let Some(held) = held else { return Ok(Lease::Own(Some(open(None).await?))) };
    let mut g = held.conn.lock().await;
    if g.as_ref().is_some_and(|c| c.closed.load(Ordering::SeqCst)) {
        *g = None;
    }
    if g.is_none() {
        // What an earlier connection heard is not news on this one.
        held.pushed.send_if_modified(|p| !matches!(std::mem::replace(p, Pushed::Nothing), Pushed::Nothing));
        let mut c = open(Some((held.pushed.clone(), held.asb))).await?;
        // The printer answers by pushing its current status at once.
        let on = held.asb.turn_on();
        if !on.is_empty() {
            c.send(on, write).await.map_err(DriverError::Unreachable)?;
        }
        *g = Some(c);
    }
    Ok(Lease::Held(g))
}

/// Sends a job over a leased connection (in chunks of `chunk` bytes), confirming it when
/// asked; a connection that failed is not used again.
pub(super) async fn deliver(mut lease: Lease<'_>, bytes: &[u8], confirm: bool, t: &Timeouts, chunk: usize) -> Result<Report, DriverError> {
    let result = print_on(&mut lease, bytes, confirm, t, chunk).await;
    if result.is_err() {
        lease.discard();
    }
    lease.finish().await;
    result
}

async fn print_on(lease: &mut Lease<'_>, bytes: &[u8], confirm: bool, t: &Timeouts, chunk: usize) -> Result<Report, DriverError> {
    let Some(c) = lease.conn() else { return Err(DriverError::Unreachable("no connection".into())) };
    let mut sent = 0;
    for part in bytes.chunks(chunk) {
        c.send(part, t.write).await.map_err(|why| broken(sent, why))?;
        sent += part.len();
    }
    if !confirm {
        return Ok(Report::new(Status::Unknown, "sent; this printer cannot confirm jobs"));
    }
    let paper = match c.ask(&status::GS_R_PAPER, t.confirm).await {
        Ok(b) => b,
        Err(AskError::Silent) => return Err(DriverError::Unconfirmed("the printer did not confirm the job in time".into())),
        Err(e) => return Err(DriverError::Unconfirmed(format!("no confirmation after the job: {e}"))),
    };
    let after = status::from_paper_reply(paper);
    let rt = realtime(c, t.read).await;
    Ok(worst(after, rt))
}

/// Asks the printer's real-time status over a leased connection (or says why there is none).
pub(super) async fn ask_status(lease: Result<Lease<'_>, DriverError>, read: Duration) -> Report {
    match lease {
        Ok(mut lease) => {
            let r = match lease.conn() {
                Some(c) => realtime(c, read).await,
                None => Report::new(Status::Offline, "no connection"),
            };
            // A held connection that stopped answering is opened afresh next time.
            if !r.answered {
                lease.discard();
            }
            lease.finish().await;
            r
        }
        Err(e) => Report::new(Status::Offline, e.to_string()),
    }
}

fn broken(sent: usize, why: String) -> DriverError {
    if sent == 0 { DriverError::Unreachable(why) } else { DriverError::Broken(format!("{why} after {sent} bytes")) }
}

/// Asks DLE EOT 1, 2 and 4; `unknown` when the printer does not answer them.
async fn realtime(c: &mut Conn, read: Duration) -> Report {
    let mut replies = [0u8; 3];
    for (i, n) in [1u8, 2, 4].into_iter().enumerate() {
        match c.ask(&status::dle_eot(n), read).await {
            Ok(b) => replies[i] = b,
            Err(_) => return Report::new(Status::Unknown, "the printer does not answer status requests"),
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
