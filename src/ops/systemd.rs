//! systemd integration without a library: `sd_notify` datagrams (`READY=1`, `STOPPING=1`,
//! `WATCHDOG=1`) to `$NOTIFY_SOCKET`, and the watchdog loop the unit's `WatchdogSec=` asks
//! for. Outside systemd (no `NOTIFY_SOCKET`) all of this does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::state::AppState;

/// Sends one notification to `socket` (a path, or `@name` for an abstract socket).
pub fn notify_to(socket: &str, message: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        sock.send_to(message.as_bytes(), socket)?;
    }
    Ok(())
}

/// Notifies systemd when it started us with `Type=notify`; `false` when it did not.
pub fn notify(message: &str) -> bool {
    match std::env::var("NOTIFY_SOCKET") {
        Ok(socket) if !socket.is_empty() => match notify_to(&socket, message) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, socket = %socket, message, "sd_notify failed");
                false
            }
        },
        _ => false,
    }
}

/// The watchdog interval systemd set (`WATCHDOG_USEC`, for this process).
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval while the database answers, so that a wedged
/// server is restarted by systemd (`Restart=on-failure`).
pub fn watchdog(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let every = watchdog_interval()? / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let db_ok = state.db().ping().await;
            if db_ok {
                notify("WATCHDOG=1");
            } else {
                tracing::error!("database does not answer; not pinging the systemd watchdog");
            }
        }
    }))
}

/// Whether systemd manages this machine and runs `unit` now.
pub fn unit_active(unit: &str) -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
        && std::process::Command::new("systemctl")
            .args(["is-active", "--quiet", unit])
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
