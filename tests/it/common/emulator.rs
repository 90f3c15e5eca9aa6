//! An ESC/POS printer emulator for tests: a TCP port (like a printer's port 9100) or the
//! master side of a pseudo-terminal (like a serial printer). It answers DLE EOT real-time
//! status requests and GS r paper status (the job confirmation) according to its current
//! state, records every job it received, and can be switched off, run out of paper, or
//! break a connection mid-job. Over TCP and the pseudo-terminal alike it also does Automatic
//! Status Back like an Epson TM: after `GS a n` (n ≠ 0) it pushes a four-byte status frame
//! at once and on every change (checked every 100 ms).
//!
//! In Star mode ([`Emulator::start_star`]) it is a Star Line Mode printer over Ethernet
//! instead: it answers no ESC/POS status request, pushes Star ASB frames (nine bytes, on by
//! default, `ESC RS a n` turns them off and on) and records a job at each cut (`ESC d n`),
//! since a held connection never closes between jobs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    Ok,
    Low,
    Out,
}

#[derive(Default)]
pub struct State {
    /// Jobs completed (bytes up to a GS r confirmation request).
    jobs: Vec<Vec<u8>>,
    paper: Option<Paper>,
    cover_open: bool,
    /// Close the connection after this many job bytes (once).
    cut_after: Option<usize>,
    /// Never answer GS r.
    mute: bool,
    /// Answer nothing at all (a printer without a status channel).
    dumb: bool,
    /// Accept connections but read and answer nothing (busy, jammed or hung firmware). A
    /// connection accepted while hung is dropped when the printer recovers.
    hung: bool,
    /// Automatic Status Back was turned on (`GS a n`, n ≠ 0).
    asb: bool,
    /// `GS a` was just received: the current frame is pushed again (once).
    asb_fresh: bool,
    /// Offline without paper or cover trouble (the feed button held, or an error).
    offline: bool,
    /// A Star Line Mode printer (Star ASB, no ESC/POS status).
    star: bool,
    connections: usize,
    /// Status requests (DLE EOT) answered: a printer that pushes its status is asked less.
    status_requests: usize,
}

pub struct Emulator {
    state: Arc<(Mutex<State>, Condvar)>,
    pub addr: SocketAddr,
    running: Arc<AtomicBool>,
    listener: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// While switched off: a bound socket that does not listen, so connections are refused
    /// and no other socket (another test's emulator, or a connection to this very port
    /// picking it as its own source port) can take the port meanwhile.
    held: Mutex<Option<socket2::Socket>>,
}

impl Emulator {
    /// A network printer on 127.0.0.1, port chosen by the OS.
    pub fn start() -> Arc<Emulator> {
        Emulator::start_with(State { paper: Some(Paper::Ok), ..State::default() })
    }

    /// A Star Line Mode network printer, with ASB on (Star's default over Ethernet).
    pub fn start_star() -> Arc<Emulator> {
        Emulator::start_with(State { paper: Some(Paper::Ok), star: true, asb: true, ..State::default() })
    }

    fn start_with(state: State) -> Arc<Emulator> {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind emulator");
        let addr = l.local_addr().unwrap();
        let emu = Arc::new(Emulator {
            state: Arc::new((Mutex::new(state), Condvar::new())),
            addr,
            running: Arc::new(AtomicBool::new(false)),
            listener: Mutex::new(None),
            held: Mutex::new(None),
        });
        emu.serve(l);
        emu
    }

    fn serve(&self, l: TcpListener) {
        l.set_nonblocking(true).unwrap();
        self.running.store(true, Ordering::SeqCst);
        let (state, running) = (self.state.clone(), self.running.clone());
        let h = std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).ok();
                        // Close with a reset: this side never lingers in TIME_WAIT, so the
                        // port can be held (without SO_REUSEADDR) while switched off.
                        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).ok();
                        s.set_read_timeout(Some(Duration::from_millis(100))).ok();
                        let (st, run) = (state.clone(), running.clone());
                        std::thread::spawn(move || handle(s, st, run));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        *self.listener.lock().unwrap() = Some(h);
    }

    /// Switches the printer off: the port refuses connections, open ones are dropped.
    pub fn power_off(&self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(h) = self.listener.lock().unwrap().take() {
            h.join().ok();
        }
        // Open connections close within their read timeout (100 ms); until then they still
        // own the port.
        let deadline = Instant::now() + Duration::from_secs(5);
        let held = loop {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
            match sock.bind(&self.addr.into()) {
                Ok(()) => break sock,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("cannot hold the emulator's port {} while it is off: {e}", self.addr),
            }
        };
        *self.held.lock().unwrap() = Some(held);
    }

    /// Switches it on again on the same port.
    pub fn power_on(&self) {
        drop(self.held.lock().unwrap().take());
        let l = TcpListener::bind(self.addr).expect("rebind emulator port");
        self.serve(l);
    }

    pub fn set_paper(&self, p: Paper) {
        self.state.0.lock().unwrap().paper = Some(p);
    }
    pub fn set_cover_open(&self, open: bool) {
        self.state.0.lock().unwrap().cover_open = open;
    }
    pub fn cut_after(&self, bytes: usize) {
        self.state.0.lock().unwrap().cut_after = Some(bytes);
    }
    pub fn set_mute(&self, mute: bool) {
        self.state.0.lock().unwrap().mute = mute;
    }
    pub fn set_dumb(&self, dumb: bool) {
        self.state.0.lock().unwrap().dumb = dumb;
    }
    pub fn set_offline(&self, offline: bool) {
        self.state.0.lock().unwrap().offline = offline;
    }
    pub fn set_hung(&self, hung: bool) {
        self.state.0.lock().unwrap().hung = hung;
    }
    /// Whether a sender turned Automatic Status Back on.
    pub fn asb_on(&self) -> bool {
        self.state.0.lock().unwrap().asb
    }
    pub fn connections(&self) -> usize {
        self.state.0.lock().unwrap().connections
    }
    pub fn status_requests(&self) -> usize {
        self.state.0.lock().unwrap().status_requests
    }

    pub fn jobs(&self) -> Vec<Vec<u8>> {
        self.state.0.lock().unwrap().jobs.clone()
    }

    /// Waits until at least `n` jobs were printed (bounded).
    pub fn wait_jobs(&self, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        wait_for_jobs(&self.state, n, limit)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
    }
}

fn wait_for_jobs(state: &(Mutex<State>, Condvar), n: usize, limit: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let (lock, cv) = state;
    let mut st = lock.lock().unwrap();
    while st.jobs.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the emulator got {} jobs, expected {n}", st.jobs.len());
        st = cv.wait_timeout(st, left).unwrap().0;
    }
    st.jobs.clone()
}

fn rt_byte(st: &State, n: u8) -> u8 {
    let mut b = 0x12u8;
    match n {
        1 if st.cover_open || st.offline => b |= 0x08,
        2 => {
            if st.cover_open {
                b |= 0x04;
            }
            if st.paper == Some(Paper::Out) {
                b |= 0x20;
            }
        }
        4 => match st.paper {
            Some(Paper::Out) => b |= 0x6c,
            Some(Paper::Low) => b |= 0x0c,
            _ => {}
        },
        _ => {}
    }
    b
}

/// The ASB frame of the current state: byte 1 offline (bit 3) and cover open (bit 5), byte 3
/// paper near end (bits 0-1) and paper end (bits 2-3).
fn asb_frame(st: &State) -> [u8; 4] {
    let out = st.paper == Some(Paper::Out);
    let mut b1 = 0x10u8;
    if st.cover_open || out || st.offline {
        b1 |= 0x08;
    }
    if st.cover_open {
        b1 |= 0x20;
    }
    let b3 = match st.paper {
        Some(Paper::Out) => 0x0f,
        Some(Paper::Low) => 0x03,
        _ => 0x00,
    };
    [b1, 0x00, b3, 0x00]
}

/// A Star ASB frame of the current state (nine bytes): header 1 `0x23` (bits 1-3 and 5 give
/// the length, 9), header 2 (version), status 1 offline (bit 3) and cover open (bit 5),
/// status 4 paper near end (bit 2) and paper end (bit 3); the rest clear.
fn star_frame(st: &State) -> Vec<u8> {
    let out = st.paper == Some(Paper::Out);
    let mut s1 = 0u8;
    if st.cover_open || out || st.offline {
        s1 |= 0x08;
    }
    if st.cover_open {
        s1 |= 0x20;
    }
    let s4 = match st.paper {
        Some(Paper::Out) => 0x0c,
        Some(Paper::Low) => 0x04,
        _ => 0x00,
    };
    vec![0x23, 0x86, s1, 0x00, 0x00, s4, 0x00, 0x00, 0x00]
}

/// The ASB frame to push now, if any: ASB is on and the state changed since `pushed` (or
/// `GS a` was just received).
fn to_push(state: &(Mutex<State>, Condvar), pushed: &mut Option<Vec<u8>>) -> Option<Vec<u8>> {
    let mut st = state.0.lock().unwrap();
    let frame = if st.star { star_frame(&st) } else { asb_frame(&st).to_vec() };
    if st.asb && (pushed.as_ref() != Some(&frame) || st.asb_fresh) {
        st.asb_fresh = false;
        *pushed = Some(frame.clone());
        return Some(frame);
    }
    None
}

/// Protocol handling shared by TCP and pty: reads bytes, answers status requests, records
/// jobs. `write` sends a reply; returning false from `read` ends the session.
pub fn session(
    mut read: impl FnMut(&mut [u8]) -> Option<usize>,
    mut write: impl FnMut(&[u8]),
    state: Arc<(Mutex<State>, Condvar)>,
    alive: impl Fn() -> bool,
) {
    let mut job: Vec<u8> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    state.0.lock().unwrap().connections += 1;
    while alive() {
        let Some(n) = read(&mut buf) else {
            // The sender closed after the job: a printer prints what it received.
            let (lock, cv) = &*state;
            let mut st = lock.lock().unwrap();
            if !job.is_empty() && st.paper != Some(Paper::Out) {
                st.jobs.push(std::mem::take(&mut job));
                cv.notify_all();
            }
            return;
        };
        pending.extend_from_slice(&buf[..n]);
        let mut i = 0;
        let star = state.0.lock().unwrap().star;
        while i < pending.len() {
            let rest = &pending[i..];
            if star {
                // Star Line Mode: `ESC RS a n` switches ASB; a cut (`ESC d n`) ends a job;
                // everything else is the job (no ESC/POS status is answered).
                let ours = |n: usize| rest.len() >= 2 && (rest[1] == 0x1e || rest[1] == b'd') && rest.len() < n;
                if rest[0] == 0x1b && (rest.len() < 2 || ours(if rest[1] == b'd' { 3 } else { 4 })) {
                    break; // maybe one of the commands below: wait for more bytes
                }
                if rest.len() >= 4 && rest[..3] == [0x1b, 0x1e, 0x61] {
                    let mut st = state.0.lock().unwrap();
                    st.asb = rest[3] != 0;
                    st.asb_fresh = st.asb;
                    i += 4;
                    continue;
                }
                if rest.len() >= 3 && rest[..2] == [0x1b, b'd'] {
                    job.extend_from_slice(&rest[..3]);
                    i += 3;
                    let (lock, cv) = &*state;
                    let mut st = lock.lock().unwrap();
                    if st.paper != Some(Paper::Out) {
                        st.jobs.push(std::mem::take(&mut job));
                        cv.notify_all();
                    }
                    job.clear();
                    continue;
                }
                job.push(rest[0]);
                i += 1;
                continue;
            }
            // Skip over binary payloads so their bytes are not taken for commands.
            if rest.len() >= 8 && rest[..3] == [0x1d, 0x76, 0x30] {
                let w = rest[4] as usize + rest[5] as usize * 256;
                let h = rest[6] as usize + rest[7] as usize * 256;
                let len = 8 + w * h;
                if rest.len() < len {
                    break;
                }
                job.extend_from_slice(&rest[..len]);
                i += len;
                continue;
            }
            if rest.len() >= 5 && rest[..3] == [0x1d, 0x28, 0x6b] {
                let len = 5 + rest[3] as usize + rest[4] as usize * 256;
                if rest.len() < len {
                    break;
                }
                job.extend_from_slice(&rest[..len]);
                i += len;
                continue;
            }
            if rest.len() >= 3 && rest[..2] == [0x1d, 0x61] {
                let mut st = state.0.lock().unwrap();
                if !st.dumb {
                    st.asb = rest[2] != 0;
                    st.asb_fresh = st.asb;
                }
                i += 3;
                continue;
            }
            if rest.len() >= 3 && rest[..2] == [0x10, 0x04] {
                let mut st = state.0.lock().unwrap();
                st.status_requests += 1;
                if !st.dumb {
                    write(&[rt_byte(&st, rest[2])]);
                }
                i += 3;
                continue;
            }
            if rest.len() >= 3 && rest[..3] == [0x1d, 0x72, 0x01] {
                let (lock, cv) = &*state;
                let mut st = lock.lock().unwrap();
                i += 3;
                // The job printed (a muted printer printed it too, it just never says so).
                if !job.is_empty() && st.paper != Some(Paper::Out) {
                    st.jobs.push(std::mem::take(&mut job));
                    cv.notify_all();
                }
                if st.mute || st.dumb {
                    continue;
                }
                let reply = match st.paper {
                    Some(Paper::Out) => 0x0c,
                    Some(Paper::Low) => 0x03,
                    _ => 0x00,
                };
                drop(st);
                write(&[reply]);
                continue;
            }
            if rest.len() < 3 && (rest[0] == 0x10 || rest[0] == 0x1d) {
                break; // maybe the start of a command: wait for more bytes
            }
            job.push(rest[0]);
            i += 1;
            let mut st = state.0.lock().unwrap();
            if let Some(limit) = st.cut_after
                && job.len() >= limit
            {
                st.cut_after = None;
                return; // connection breaks mid-job; the partial job is lost
            }
        }
        pending.drain(..i);
    }
}

fn handle(mut s: std::net::TcpStream, state: Arc<(Mutex<State>, Condvar)>, running: Arc<AtomicBool>) {
    if state.0.lock().unwrap().hung {
        while state.0.lock().unwrap().hung && running.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        return;
    }
    let mut w = s.try_clone().unwrap();
    let mut pusher = s.try_clone().unwrap();
    // The last ASB frame pushed on this connection; a new one goes out (checked every read
    // timeout, 100 ms) when the state changed.
    let mut pushed: Option<Vec<u8>> = None;
    let asb_state = state.clone();
    session(
        |buf| loop {
            if let Some(frame) = to_push(&asb_state, &mut pushed) {
                let _ = pusher.write_all(&frame);
            }
            match s.read(buf) {
                Ok(0) => return None,
                Ok(n) => return Some(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    if !running.load(Ordering::SeqCst) {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        },
        |reply| {
            let _ = w.write_all(reply);
        },
        state,
        || running.load(Ordering::SeqCst),
    );
}

/// A serial printer: the slave side of a pseudo-terminal is the printer's device path.
pub struct SerialEmulator {
    pub path: String,
    state: Arc<(Mutex<State>, Condvar)>,
    running: Arc<AtomicBool>,
}

impl SerialEmulator {
    pub fn start() -> SerialEmulator {
        let (mut master, mut slave) = (0, 0);
        let mut name = [0 as libc::c_char; 256];
        // SAFETY: openpty writes two fds and a NUL-terminated name into the buffers given.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, name.as_mut_ptr(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: `name` was NUL-terminated by openpty.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().to_string();
        // Raw mode on the slave so bytes pass unchanged (the driver sets its own settings too).
        // SAFETY: termios calls on a valid fd with a zeroed struct filled by tcgetattr.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(slave, &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(slave, libc::TCSANOW, &t);
        }
        // SAFETY: master is a valid fd we own from here on.
        let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
        let state = Arc::new((Mutex::new(State { paper: Some(Paper::Ok), ..State::default() }), Condvar::new()));
        let running = Arc::new(AtomicBool::new(true));
        let (st, run) = (state.clone(), running.clone());
        std::thread::spawn(move || {
            let _keep_slave_open = slave;
            let mut r = file.try_clone().unwrap();
            let mut pusher = file.try_clone().unwrap();
            let mut w = file;
            let (asb_state, alive) = (st.clone(), run.clone());
            // Like the TCP side: wait for bytes at most 100 ms at a time, pushing an ASB frame
            // in between when the state changed.
            let mut pushed: Option<Vec<u8>> = None;
            let read = |buf: &mut [u8]| loop {
                if let Some(frame) = to_push(&asb_state, &mut pushed) {
                    let _ = pusher.write_all(&frame);
                }
                let mut pfd = libc::pollfd { fd: master, events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd for the master fd this thread owns.
                let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
                if !alive.load(Ordering::SeqCst) {
                    return None;
                }
                if ready > 0 {
                    return r.read(buf).ok().filter(|n| *n > 0);
                }
            };
            session(read, |reply| drop(w.write_all(reply)), st, || run.load(Ordering::SeqCst));
        });
        SerialEmulator { path, state, running }
    }

    pub fn set_paper(&self, p: Paper) {
        self.state.0.lock().unwrap().paper = Some(p);
    }
    pub fn set_cover_open(&self, open: bool) {
        self.state.0.lock().unwrap().cover_open = open;
    }
    pub fn set_offline(&self, offline: bool) {
        self.state.0.lock().unwrap().offline = offline;
    }
    /// Whether a sender turned Automatic Status Back on.
    pub fn asb_on(&self) -> bool {
        self.state.0.lock().unwrap().asb
    }
    pub fn status_requests(&self) -> usize {
        self.state.0.lock().unwrap().status_requests
    }

    pub fn wait_jobs(&self, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        wait_for_jobs(&self.state, n, limit)
    }
}

impl Drop for SerialEmulator {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// What a printer did with a job, decoded from its ESC/POS bytes, so tests assert what was
/// printed rather than which bytes arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printed {
    /// One printed line (code-page text; non-ASCII shown as `?`).
    Line(String),
    /// A raster image of `width` × `height` dots (`GS v 0`): text the code page cannot hold.
    Raster {
        width: usize,
        height: usize,
    },
    /// A QR code holding this text (`GS ( k`, store + print).
    Qr(String),
    Cut,
    /// Cash-drawer kick (`ESC p m t1 t2`).
    Drawer,
}

/// Decodes the ESC/POS commands branchd sends. Unknown commands are skipped by their known
/// length; anything unparseable ends the decoding (and the test would then miss lines).
pub fn decode(job: &[u8]) -> Vec<Printed> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut i = 0;
    let flush = |line: &mut String, out: &mut Vec<Printed>| {
        let l = std::mem::take(line);
        out.push(Printed::Line(l.trim_end().to_string()));
    };
    while i < job.len() {
        let b = job[i];
        let rest = &job[i..];
        let arg = |k: usize| rest.get(k).copied().unwrap_or(0) as usize;
        match b {
            b'\n' => {
                flush(&mut line, &mut out);
                i += 1;
            }
            0x1b => match rest.get(1) {
                Some(b'@') => i += 2,
                Some(b'p') => {
                    out.push(Printed::Drawer);
                    i += 5;
                }
                Some(b'd') => {
                    if !line.is_empty() {
                        flush(&mut line, &mut out);
                    }
                    i += 3;
                }
                Some(b't' | b'R' | b'a' | b'E' | b'-' | b'!' | b'M' | b'G' | b'{' | b'3' | b'2') => {
                    i += if rest.get(1) == Some(&b'2') { 2 } else { 3 };
                }
                _ => i += 2,
            },
            0x1d => match rest.get(1) {
                Some(b'V') => {
                    if !line.is_empty() {
                        flush(&mut line, &mut out);
                    }
                    out.push(Printed::Cut);
                    i += if arg(2) >= 65 { 4 } else { 3 };
                }
                Some(b'v') => {
                    let (w, h) = (arg(4) + arg(5) * 256, arg(6) + arg(7) * 256);
                    out.push(Printed::Raster { width: w * 8, height: h });
                    i += 8 + w * h;
                }
                Some(b'(') => {
                    let len = arg(3) + arg(4) * 256;
                    // QR: cn=49, fn=80 stores the data (after 3 bytes: cn fn m).
                    if rest.get(5) == Some(&49) && rest.get(6) == Some(&80) {
                        let data = rest.get(8..5 + len).unwrap_or_default();
                        out.push(Printed::Qr(String::from_utf8_lossy(data).to_string()));
                    }
                    i += 5 + len;
                }
                Some(b'!' | b'B' | b'L' | b'W' | b'h' | b'w' | b'H' | b'f') => i += 3,
                _ => i += 2,
            },
            0x10 => i += 3,
            b if (0x20..0x7f).contains(&b) => {
                line.push(b as char);
                i += 1;
            }
            b if b >= 0x80 => {
                line.push('?');
                i += 1;
            }
            _ => i += 1,
        }
    }
    if !line.trim().is_empty() {
        flush(&mut line, &mut out);
    }
    out
}

/// The printed text lines of a job.
pub fn lines(job: &[u8]) -> Vec<String> {
    decode(job).into_iter().filter_map(|p| if let Printed::Line(l) = p { Some(l) } else { None }).collect()
}
