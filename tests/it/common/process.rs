//! The real binary as a child process (so tests can SIGKILL it), and its admin CLI.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_branchd");

/// Runs the binary on `dir` (no config file, no `PORT` from the environment).
pub fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    run_env(dir, args, &[])
}

/// [`run`] with extra environment variables.
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("JWT_SECRET", super::SECRET)
        .env("BRANCHD_CONFIG", "")
        .env_remove("PORT")
        .envs(env.iter().copied())
        .output()
        .expect("binary runs")
}

/// Asserts a run succeeded; returns its stdout.
pub fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs an admin command on `dir`; panics with its stderr if it fails; returns stdout, trimmed.
pub fn cli(dir: &Path, args: &[&str]) -> String {
    ok(&run(dir, args)).trim().to_string()
}

pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    /// `branchd serve` on 127.0.0.1, port chosen by the OS, with extra environment.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        Self::start_logging(dir, env, None)
    }

    /// As [`ServerProcess::start`], with the server's log (stderr) written to `log`.
    pub fn start_logging(dir: &Path, env: &[(&str, &str)], log: Option<&Path>) -> ServerProcess {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--no-demo", "--port", "0", "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"])
            .arg(dir)
            .env("JWT_SECRET", super::SECRET)
            .env("BRANCHD_CONFIG", "")
            .env("BRANCHD_BACKUP_INTERVAL_HOURS", "0")
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(p) => Stdio::from(std::fs::File::create(p).expect("log file")),
                None => Stdio::null(),
            });
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

    /// SIGTERM, and the exit status of the graceful shutdown.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
