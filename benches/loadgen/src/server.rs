//! The server under test as a child process: branchd (release binary, set up with its
//! admin CLI in a scratch data directory) or the reference Node server. Also the /proc
//! readings (RSS, CPU time) and a raw-TCP `/health` probe for cold start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::proto::Layout;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Branchd,
    Reference,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Branchd => "branchd",
            Kind::Reference => "reference",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        match s.trim() {
            "branchd" => Some(Kind::Branchd),
            "reference" | "ref" | "node" => Some(Kind::Reference),
            _ => None,
        }
    }
}

pub struct Setup<'a> {
    pub branchd: &'a Path,
    pub reference_dir: &'a Path,
    pub node: &'a str,
    pub secret: &'a str,
    pub layout: Layout,
    pub scratch: &'a Path,
    pub log_dir: &'a Path,
    pub tag: String,
    /// Extra `serve` arguments (branchd only), e.g. `--role hub`.
    pub serve_args: Vec<String>,
    /// Extra environment variables for the server.
    pub env: Vec<(String, String)>,
    /// Listen on this port instead of a free one.
    pub port: Option<u16>,
    /// A data directory already made by [`prepare_branchd_dir`] (branchd only).
    pub data_dir: Option<PathBuf>,
}

pub struct Server {
    pub pid: u32,
    pub port: u16,
    child: Child,
    data_dir: Option<PathBuf>,
}

pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn log_file(dir: &Path, name: &str) -> std::io::Result<std::fs::File> {
    std::fs::File::create(dir.join(name))
}

/// Runs one admin CLI command of branchd against `data_dir` with extra environment variables
/// (e.g. BRANCHD_DATABASE_URL: the command then acts on that database instead of the data
/// directory's SQLite file); returns its stdout.
pub fn admin_env(branchd: &Path, data_dir: &Path, secret: &str, env: &[(String, String)], args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(branchd)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("JWT_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", branchd.display()))?;
    if !out.status.success() {
        return Err(format!("branchd {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh branchd data directory under `s.scratch` with the layout's companies and branches
/// (made with the admin CLI and `s.env`, so in PostgreSQL when that names a database).
pub fn prepare_branchd_dir(s: &Setup<'_>) -> Result<PathBuf, String> {
    prepare_dir_with(s, 0..s.layout.branches)
}

/// A fresh data directory with only branch `b` of the layout and its company (a branch
/// appliance among several).
pub fn prepare_branch_dir(s: &Setup<'_>, b: usize) -> Result<PathBuf, String> {
    prepare_dir_with(s, b..b + 1)
}

fn prepare_dir_with(s: &Setup<'_>, branches: std::ops::Range<usize>) -> Result<PathBuf, String> {
    let dir = s.scratch.join(format!("branchd-{}-{}", std::process::id(), s.tag));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let companies: std::collections::BTreeSet<usize> = branches.clone().map(|b| s.layout.company_of(b)).collect();
    for c in companies {
        let id = Layout::company_id(c);
        admin_env(s.branchd, &dir, s.secret, &s.env, &["company", "add", &id, "--name", &format!("Loadgen company {c}")])?;
    }
    for b in branches {
        let (id, co) = (Layout::branch_id(b), Layout::company_id(s.layout.company_of(b)));
        admin_env(s.branchd, &dir, s.secret, &s.env, &["branch", "add", &id, "--company", &co, "--name", &format!("Loadgen branch {b}")])?;
    }
    Ok(dir)
}

impl Server {
    /// Starts the server and waits until `/health` answers 200; returns it with the cold
    /// start (spawn to first successful `/health`) in ms.
    pub async fn start(kind: Kind, s: &Setup<'_>) -> Result<(Server, f64), String> {
        let port = match s.port {
            Some(p) => p,
            None => free_port().map_err(|e| format!("no free port: {e}"))?,
        };
        let out = log_file(s.log_dir, &format!("{}-{}.log", kind.name(), s.tag)).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut data_dir = None;
        let mut cmd = match kind {
            Kind::Branchd => {
                let dir = match &s.data_dir {
                    Some(d) => d.clone(),
                    None => prepare_branchd_dir(s)?,
                };
                let mut c = Command::new(s.branchd);
                c.args(["serve", "--no-demo", "--bind", "127.0.0.1", "--mdns", "off", "--port", &port.to_string(), "--data-dir"])
                    .arg(&dir)
                    .args(&s.serve_args)
                    .env("BRANCHD_BACKUP_INTERVAL_HOURS", "0")
                    .env("RUST_LOG", "warn");
                data_dir = Some(dir);
                c
            }
            Kind::Reference => {
                let branches: Vec<String> = (0..s.layout.branches)
                    .map(|b| format!("{}:{}", Layout::branch_id(b), Layout::company_id(s.layout.company_of(b))))
                    .collect();
                let mut c = Command::new(s.node);
                c.arg("server.js")
                    .current_dir(s.reference_dir)
                    .env("PORT", port.to_string())
                    .env("REF_BIND", "127.0.0.1")
                    .env("REF_BRANCHES", branches.join(","))
                    .env("NODE_ENV", "production");
                c
            }
        };
        cmd.envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.env("JWT_SECRET", s.secret).stdin(Stdio::null()).stdout(out).stderr(err).kill_on_drop(true);
        let spawned = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
        let pid = child.id().ok_or("server exited at once")?;
        let mut server = Server { pid, port, child, data_dir };
        let deadline = spawned + Duration::from_secs(20);
        loop {
            if health_ok(port).await {
                break;
            }
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(format!("{} exited during start ({st}); see {}", kind.name(), s.log_dir.display()));
            }
            if Instant::now() > deadline {
                server.stop().await;
                return Err(format!("{} did not answer /health within 20 s", kind.name()));
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        Ok((server, spawned.elapsed().as_secs_f64() * 1e3))
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Keeps the data directory when the server stops (to start it again on the same data).
    pub fn keep_data_dir(&mut self) {
        self.data_dir = None;
    }

    /// SIGTERM, then SIGKILL after 10 s; removes the scratch data directory.
    pub async fn stop(&mut self) {
        if self.alive() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
                let _ = self.child.kill().await;
            }
        }
        if let Some(d) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `GET /health` over a fresh TCP connection: true on a 200.
pub async fn health_ok(port: u16) -> bool {
    health(port).await.is_some()
}

/// The `/health` body, when it answers 200 within a second.
pub async fn health(port: u16) -> Option<String> {
    let go = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.ok()?;
        let mut buf = Vec::with_capacity(1024);
        s.take(64 * 1024).read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        if !(text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200")) {
            return None;
        }
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some(body)
    };
    tokio::time::timeout(Duration::from_secs(1), go).await.ok().flatten()
}

/// Resident set size and its high-water mark, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of the process so far, in ms.
pub fn cpu_ms(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = s.rsplit_once(')') else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok())).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 * 1000.0 / hz
}

fn stat_fields(pid: u32) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

fn ticks_ms(f: &[String], idx: &[usize]) -> f64 {
    let ticks: u64 = idx.iter().filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok())).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 * 1000.0 / hz
}

/// CPU time in ms of a process and its direct children (PostgreSQL's postmaster and its
/// backends): its own, its reaped children's (cutime + cstime) and its live children's.
pub fn cpu_tree_ms(pid: u32) -> f64 {
    let mut total = ticks_ms(&stat_fields(pid), &[11, 12, 13, 14]);
    let me = pid.to_string();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let f = stat_fields(child);
        if f.get(1) == Some(&me) {
            total += ticks_ms(&f, &[11, 12]);
        }
    }
    total
}

/// True while the process exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    stat_fields(pid).first().is_some_and(|s| s != "Z")
}
