//! The server lock: `serve` holds an exclusive `flock` on `DATA_DIR/branchd.lock` for as
//! long as it runs and writes its pid and address into it. `restore` refuses while the lock
//! is held; `healthcheck`, `doctor` and `update` read the address (so port 0 works too).
//! The kernel drops the lock when the process dies, `kill -9` included.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "branchd.lock";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCK_FILE)
}

/// Held while the server runs; the lock goes with the open file.
pub struct ServerLock {
    _file: File,
}

/// What a running server wrote into its lock file.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub pid: Option<u32>,
    pub addr: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// SPEC §6: one server per data directory.
    #[error("another branchd ({}) serves the data directory {dir}: stop it first (systemctl stop branchd), or give this one its own --data-dir", who(.pid))]
    InUse { dir: String, pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn who(pid: &Option<u32>) -> String {
    pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "a process".into())
}

/// Takes the lock before the server touches the database; refused while another server
/// holds it. The pid is written at once, the address once the listener is bound
/// ([`ServerLock::record_addr`]).
pub fn acquire(data_dir: &Path) -> Result<ServerLock, LockError> {
    let p = path(data_dir);
    let io = |source| LockError::Io { path: p.display().to_string(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&p).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let pid = running(data_dir).and_then(|i| i.pid);
            return Err(LockError::InUse { dir: data_dir.display().to_string(), pid });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    write_info(&mut file, None).map_err(io)?;
    Ok(ServerLock { _file: file })
}

fn write_info(file: &mut File, addr: Option<SocketAddr>) -> std::io::Result<()> {
    let body = serde_json::json!({"pid": std::process::id(), "addr": addr.map(|a| a.to_string())}).to_string();
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(body.as_bytes())
}

impl ServerLock {
    /// Records the bound address for the CLI (`healthcheck`, `doctor`, `printer`).
    pub fn record_addr(&mut self, addr: SocketAddr) {
        if let Err(e) = write_info(&mut self._file, Some(addr)) {
            tracing::warn!(error = %e, "cannot write the server address into the lock file");
        }
    }
}

/// `Some` when a server holds the lock of `data_dir`.
pub fn running(data_dir: &Path) -> Option<RunInfo> {
    let mut file = File::open(path(data_dir)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => return None,
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(_)) => return None,
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Some(RunInfo { pid: v["pid"].as_u64().and_then(|p| u32::try_from(p).ok()), addr: v["addr"].as_str().and_then(|a| a.parse().ok()) })
}

/// Taken by `restore` so that a server started meanwhile is noticed; `Err` when a server
/// holds the lock.
pub fn exclusive(data_dir: &Path) -> std::io::Result<Option<File>> {
    let file = match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path(data_dir)) {
        Ok(f) => f,
        // Not ours to create (e.g. a read-only directory): the port check still protects.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => {
            Err(std::io::Error::new(std::io::ErrorKind::WouldBlock, "a branchd server holds the data directory"))
        }
        Err(TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_lock_is_seen_with_its_address() {
        let dir = tempfile::tempdir().unwrap();
        assert!(running(dir.path()).is_none());
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        let mut held = acquire(dir.path()).unwrap();
        assert!(matches!(acquire(dir.path()), Err(LockError::InUse { pid: Some(p), .. }) if p == std::process::id()));
        held.record_addr(addr);
        let info = running(dir.path()).unwrap();
        assert_eq!(info.addr, Some(addr));
        assert_eq!(info.pid, Some(std::process::id()));
        assert!(exclusive(dir.path()).is_err());
        drop(held);
        assert!(running(dir.path()).is_none());
        assert!(exclusive(dir.path()).unwrap().is_some());
    }
}
