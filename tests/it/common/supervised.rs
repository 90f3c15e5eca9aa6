//! A server program (PostgreSQL, nginx) that cannot outlive the test process: it runs under a
//! small `sh` supervisor whose standard input is a pipe from the test process. When the pipe
//! closes — [`Supervised::stop`], drop, or the test process exiting in any way, even killed —
//! the supervisor signals the program, waits for it (SIGKILL after 10 s) and removes its
//! temporary directory. Rust runs no destructors of statics at exit, so a server held in a
//! `OnceLock` for the whole test process is stopped this way too.
//!
//! As root (CI), the supervisor and the program run as `nobody` (PostgreSQL refuses root)
//! and the directory is given to that user first; otherwise as the test's own user.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// `$1` signal for a graceful stop, `$2` directory to remove, `$3` log file, then the program.
const SUPERVISOR: &str = r#"sig=$1; dir=$2; log=$3; shift 3
"$@" </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid"
cat >/dev/null
kill "-$sig" "$pid" 2>/dev/null
( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep 10 & s=$!; wait "$s"; kill -KILL "$pid" 2>/dev/null ) &
killer=$!
wait "$pid"
kill "$killer" 2>/dev/null
[ -z "$dir" ] || rm -rf "$dir"
"#;

/// The user tests run servers as when they run as root: `nobody` (uid, gid).
pub fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("nobody").unwrap();
    // SAFETY: getpwnam reads a static buffer; it is read at once, before any other call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "tests run as root but there is no user `nobody` to run servers as");
    // SAFETY: non-null result of getpwnam.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// A new temporary directory for a server, kept (the supervisor removes it): in `/tmp` when
/// root, since the unprivileged user may not reach into a `TMPDIR` of root's.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let base = if unprivileged().is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
    tempfile::Builder::new().prefix(prefix).tempdir_in(base).expect("temp dir").keep()
}

/// Gives `dir` and everything in it to the user of [`unprivileged`] (when root).
pub fn give_away(dir: &Path) {
    let Some((uid, gid)) = unprivileged() else { return };
    fn walk(p: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(p).expect("read dir") {
                walk(&e.expect("dir entry").path(), uid, gid);
            }
        }
    }
    walk(dir, uid, gid);
}

/// A command run as the user of [`unprivileged`] (when root), to completion.
pub fn command(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = unprivileged() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

pub struct Supervised {
    supervisor: Child,
    stdin: Option<ChildStdin>,
    /// The program's process id.
    pub pid: u32,
}

impl Supervised {
    /// Starts `program args` under a supervisor; its output is appended to `log`. On stop,
    /// the program gets `stop_signal` (e.g. `INT`, `QUIT`, `TERM`) and `remove` is deleted.
    pub fn spawn(program: &Path, args: &[String], log: &Path, stop_signal: &str, remove: Option<&Path>) -> Supervised {
        use std::os::unix::process::CommandExt;
        let mut cmd = command(Path::new("/bin/sh"));
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("supervised")
            .arg(stop_signal)
            .arg(remove.map(|p| p.as_os_str()).unwrap_or_default())
            .arg(log)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Not in the terminal's process group: Ctrl-C stops the tests, then the pipe
            // closes and the supervisor stops the program in order.
            .process_group(0);
        let mut supervisor = cmd.spawn().unwrap_or_else(|e| panic!("cannot start /bin/sh to supervise {}: {e}", program.display()));
        let mut line = String::new();
        BufReader::new(supervisor.stdout.take().expect("piped")).read_line(&mut line).expect("supervisor output");
        let pid = line.trim().parse().unwrap_or_else(|_| panic!("supervisor of {} said {line:?}, not a pid", program.display()));
        Supervised { stdin: supervisor.stdin.take(), supervisor, pid }
    }

    /// Whether the program still runs (a program that exited is a zombie until its
    /// supervisor reaps it at stop).
    pub fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // The state is the field after the parenthesised command name.
            Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
            Err(_) => false,
        }
    }

    /// Stops the program and waits until it has exited and its directory is removed.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
