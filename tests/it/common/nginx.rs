//! A real nginx (Debian's package) as the load balancer in front of hub processes, run from
//! the documented `packaging/nginx/branchd-hub-cluster.conf`: the test's config is that file
//! with only its `listen` line, the `server` lines of its upstream and (for round robin or
//! `ip_hash`) its `hash` line swapped, inside a small main config that keeps pid, logs and
//! temporary files in a temporary directory (`nginx -p DIR -c DIR/nginx.conf`, `daemon off`).
//! The process stops when the [`Nginx`] is dropped or the test process exits.
//!
//! ```ignore
//! let Some(lb) = common::nginx::start(&[a.addr, b.addr], Balance::Sticky) else { return };  // says SKIPPED
//! reqwest::get(format!("{}/health", lb.base)).await?;
//! ```

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::supervised::{self, Supervised};

/// The documented config (an operator's copy in `/etc/nginx/conf.d/`).
pub const TEMPLATE: &str = include_str!("../../../packaging/nginx/branchd-hub-cluster.conf");
/// The template's sticky-session line.
const STICKY_LINE: &str = "hash $remote_addr consistent;";

/// What a test prints when nginx is missing and it does not run.
pub const SKIPPED: &str = "SKIPPED: nginx not installed (apt-get install nginx)";

/// How nginx picks a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each request to the next backend (the template without its `hash` line).
    RoundRobin,
    /// The template as documented: `hash $remote_addr consistent` (one client address, one
    /// backend).
    Sticky,
    /// `ip_hash`, what the Socket.IO documentation shows: sticky by the first three octets
    /// of an IPv4 address.
    IpHash,
}

pub struct Nginx {
    /// Where clients connect: 127.0.0.1 and a free port.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dir: PathBuf,
    process: Supervised,
    backends: Vec<SocketAddr>,
    balance: Balance,
}

/// The nginx binary, when installed.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]).map(|d| d.join("nginx")).find(|p| p.is_file())
}

/// nginx on 127.0.0.1 in front of `backends`; `None`, after printing [`SKIPPED`], when nginx
/// is not installed. Returns once nginx accepts connections.
pub fn start(backends: &[SocketAddr], balance: Balance) -> Option<Nginx> {
    let Some(bin) = binary() else {
        eprintln!("{SKIPPED}");
        return None;
    };
    assert!(!backends.is_empty(), "nginx needs at least one backend");
    for _ in 0..5 {
        if let Some(nginx) = try_start(&bin, backends, balance) {
            return Some(nginx);
        }
    }
    panic!("nginx could not bind a free port on 127.0.0.1 in five tries");
}

impl Nginx {
    /// The config nginx runs with (the documented file after the test's changes).
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.join("branchd-hub-cluster.conf")).unwrap_or_default()
    }

    /// The access log so far: `client "request" status -> backend` a line.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Marks the backends at the indexes in `down` as `down` (all others up) and reloads
    /// nginx, as in the documented rolling update; returns once new workers run the new
    /// config and the old ones take no new connections (open connections stay where they
    /// are until they close).
    pub fn set_down(&self, down: &[usize]) {
        std::fs::write(self.dir.join("branchd-hub-cluster.conf"), config_for(self.addr, &self.backends, down, self.balance))
            .expect("write config");
        let workers = || std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.process.pid)).unwrap_or_default();
        let before = workers();
        // SAFETY: a plain kill(2); the pid is nginx's (its supervisor reaps it only at stop).
        assert_eq!(unsafe { libc::kill(self.process.pid as libc::pid_t, libc::SIGHUP) }, 0, "signal nginx");
        // Reloaded: a new worker runs, and the old ones have stopped accepting (they are
        // gone, or say they are shutting down while their open connections finish).
        let old_accepting =
            |w: &str| std::fs::read(format!("/proc/{w}/cmdline")).is_ok_and(|c| !String::from_utf8_lossy(&c).contains("shutting down"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = workers();
            let fresh = now.split_whitespace().any(|w| !before.split_whitespace().any(|b| b == w));
            if fresh && !before.split_whitespace().any(old_accepting) {
                break;
            }
            assert!(Instant::now() < deadline, "nginx did not reload in 30 s:\n{}", self.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops nginx (fast shutdown: open connections are closed) and removes its directory;
    /// dropping does the same.
    pub fn stop(mut self) {
        self.process.stop();
    }
}

/// The documented config for this test: listening on `listen`, balancing over `backends`,
/// those at the indexes in `down` marked `down`. Panics when the template no longer has the
/// lines it swaps (then this helper must learn the new shape, so that the documented file
/// stays the tested one).
fn config_for(listen: SocketAddr, backends: &[SocketAddr], down: &[usize], balance: Balance) -> String {
    let (mut listens, mut servers, mut sticky) = (0, 0, 0);
    let mut in_upstream = false;
    let mut out = String::new();
    for line in TEMPLATE.lines() {
        let t = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if line.starts_with("upstream ") {
            in_upstream = true;
        } else if line.starts_with('}') {
            in_upstream = false;
        }
        if t == "listen 80;" {
            listens += 1;
            out.push_str(&format!("{indent}listen {listen};\n"));
        } else if in_upstream && t.starts_with("server ") {
            // The first server line, once per backend, with its parameters; the others go.
            if servers == 0 {
                let params = t.trim_end_matches(';').split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
                for (i, b) in backends.iter().enumerate() {
                    let down = if down.contains(&i) { " down" } else { "" };
                    out.push_str(&format!("{indent}server {b} {params}{down};\n"));
                }
            }
            servers += 1;
        } else if in_upstream && t == STICKY_LINE {
            sticky += 1;
            match balance {
                Balance::RoundRobin => {}
                Balance::Sticky => out.push_str(&format!("{line}\n")),
                Balance::IpHash => out.push_str(&format!("{indent}ip_hash;\n")),
            }
        } else {
            out.push_str(&format!("{line}\n"));
        }
    }
    assert!(
        listens == 1 && servers >= 1 && sticky == 1,
        "packaging/nginx/branchd-hub-cluster.conf changed shape: tests/it/common/nginx.rs expects one `listen 80;` line, \
         `server ADDR PARAMS;` lines in `upstream`, and one `{STICKY_LINE}` line there (found {listens}, {servers}, {sticky})"
    );
    out
}

/// The main config around the documented one: everything nginx writes stays in `dir`.
fn main_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n    log_format branchd '$remote_addr \"$request\" $status -> $upstream_addr';\n    access_log {d}/access.log branchd;\n\
         \x20   client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n    fastcgi_temp_path {d}/tmp/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/tmp/uwsgi;\n    scgi_temp_path {d}/tmp/scgi;\n    include {d}/branchd-hub-cluster.conf;\n}}\n"
    )
}

fn try_start(bin: &Path, backends: &[SocketAddr], balance: Balance) -> Option<Nginx> {
    let dir = supervised::temp_dir("branchd-nginx-");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    std::fs::create_dir(dir.join("tmp")).expect("tmp dir");
    std::fs::write(dir.join("branchd-hub-cluster.conf"), config_for(addr, backends, &[], balance)).expect("write config");
    std::fs::write(dir.join("nginx.conf"), main_config(&dir)).expect("write config");
    supervised::give_away(&dir);
    let args: Vec<String> = ["-p", &dir.display().to_string(), "-c", "nginx.conf", "-e", "error.log"].map(String::from).into();
    // SIGTERM: fast shutdown (SIGQUIT would wait for open WebSockets).
    let process = Supervised::spawn(bin, &args, &dir.join("nginx.out"), "TERM", Some(&dir));
    let nginx = Nginx { addr, base: format!("http://{addr}"), dir, process, backends: backends.to_vec(), balance };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if !nginx.process.alive() {
            let log = format!("{}{}", nginx.error_log(), std::fs::read_to_string(nginx.dir.join("nginx.out")).unwrap_or_default());
            if log.contains("Address already in use") {
                return None; // dropping `nginx` removes the directory
            }
            panic!("nginx exited at start:\n{log}\nconfig:\n{}", nginx.config());
        }
        // Listening, and the pid file says it is ours.
        let pid = std::fs::read_to_string(nginx.dir.join("nginx.pid")).unwrap_or_default();
        if pid.trim() == nginx.process.pid.to_string() && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Some(nginx);
        }
        assert!(Instant::now() < deadline, "nginx did not listen in 30 s:\n{}", nginx.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}
