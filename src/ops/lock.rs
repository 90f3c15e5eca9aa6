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

/// Takes the lock for a server listening on `addr`. `None` (logged) when another process
/// holds it or the file cannot be written: the server still runs, but `restore` then relies
/// on the port check alone.
pub fn hold(data_dir: &Path, addr: SocketAddr) -> Option<ServerLock> {
    let p = path(data_dir);
    let mut file = match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&p) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %p.display(), error = %e, "cannot open the server lock file; `branchd restore` will not see this server by it");
            return None;
        }
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::warn!(path = %p.display(), "another branchd process serves this data directory");
            return None;
        }
        Err(TryLockError::Error(e)) => {
            tracing::warn!(path = %p.display(), error = %e, "cannot lock the server lock file");
            return None;
        }
    }
    let body = serde_json::json!({"pid": std::process::id(), "addr": addr.to_string()}).to_string();
    let written = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| file.write_all(body.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %p.display(), error = %e, "cannot write the server lock file");
    }
    Some(ServerLock { _file: file })
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
        let held = hold(dir.path(), addr).unwrap();
        let info = running(dir.path()).unwrap();
        assert_eq!(info.addr, Some(addr));
        assert_eq!(info.pid, Some(std::process::id()));
        assert!(exclusive(dir.path()).is_err());
        drop(held);
        assert!(running(dir.path()).is_none());
        assert!(exclusive(dir.path()).unwrap().is_some());
    }
}
