//! The real binary as a child process (so tests can SIGKILL it), and its admin CLI.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_branchd");

/// Runs an admin command on `dir`; panics with its stderr if it fails; returns stdout.
pub fn cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--data-dir").arg(dir).env("JWT_SECRET", super::SECRET).output().unwrap();
    assert!(out.status.success(), "branchd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    /// `branchd serve` on 127.0.0.1, port chosen by the OS, with extra environment.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--no-demo", "--port", "0", "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"])
            .arg(dir)
            .env("JWT_SECRET", super::SECRET)
            .env("BRANCHD_BACKUP_INTERVAL_HOURS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("server started").unwrap();
            if let Some(url) = line.strip_prefix("branchd listening on ") {
                break url.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, base }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
