//! Operating the appliance (issue #6, SPEC §1 and §7): configuration checks, health and the
//! `doctor` page, scheduled backups and restore, signed self-update with health-gated
//! rollback, release signing, and the systemd glue (`sd_notify`, the server lock).
//!
//! The CLI entry points are called by one dispatch line each in [`crate::commands`]; the
//! server's background part starts with [`start`] in [`crate::app::App::run`]. Failures are
//! [`OpsError`]s (usage, exit code 2, or failure, 1); `update` has its own
//! [`update::UpdateError`].

pub mod backup;
pub mod bundle;
pub mod demo;
pub mod doctor;
pub mod lock;
pub mod release;
pub mod settings;
pub mod sysconf;
pub mod systemd;
pub mod update;
pub mod upkeep;

use std::net::SocketAddr;

use crate::config::Config;
use crate::state::AppState;

/// What went wrong operating the appliance: the `ops` commands say what happened and what
/// to do; the exit code tells usage (2) from failure (1).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Bad usage or configuration, or something the operator must do first (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The operation failed; the message says what happened.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Update(#[from] update::UpdateError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot use data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

impl OpsError {
    /// The process exit code: 2 for bad usage or configuration (SPEC §1), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Usage(_) => 2,
            OpsError::Update(e) => e.exit_code(),
            OpsError::Secret(e) if e.is_config() => 2,
            _ => 1,
        }
    }
}

/// What `serve` runs next to the server for this module; dropping it stops those tasks,
/// releases the server lock and tells systemd that the service is stopping.
pub struct Running {
    _lock: Option<lock::ServerLock>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        systemd::notify("STOPPING=1");
    }
}

/// Keeps the server lock (recording the address for the CLI), starts scheduled backups and
/// the periodic update check, and tells systemd the service is ready (with watchdog pings
/// when the unit asks for them).
pub fn start(state: &AppState, mut lock: lock::ServerLock, addr: Option<SocketAddr>) -> Running {
    if let Some(a) = addr {
        lock.record_addr(a);
    }
    let lock = Some(lock);
    let mut tasks = vec![tokio::spawn(backup::scheduled(state.clone())), tokio::spawn(update::periodic_check(state.clone()))];
    systemd::notify("READY=1");
    if let Some(t) = systemd::watchdog(state.clone()) {
        tasks.push(t);
    }
    Running { _lock: lock, tasks }
}

/// The base URL of the local server: the address the running server recorded in its lock
/// file, else the configured bind address and port.
pub fn local_base(config: &Config) -> String {
    let addr = lock::running(&config.data_dir).and_then(|info| info.addr).unwrap_or_else(|| SocketAddr::new(config.bind, config.port));
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        std::net::IpAddr::V6(v) if v.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// A short-lived `super_admin` token signed with the configured secret, for talking to the
/// local server's API.
pub fn admin_token(config: &Config) -> Result<String, OpsError> {
    let secret = crate::secrets::jwt_secret(config)?;
    let claims = crate::auth::jwt::Claims {
        sub: "branchd-cli".into(),
        role: crate::auth::Role::SuperAdmin.as_str().into(),
        company_id: None,
        branch_id: None,
        email: None,
        exp: chrono::Utc::now().timestamp() + 120,
        iat: Some(crate::auth::jwt::now_iat()),
    };
    Ok(crate::auth::jwt::Keys::new(secret.as_bytes()).issue(&claims))
}

/// An [`OpsError::Failed`] (as whatever error the caller returns).
fn fail<T, E: From<OpsError>>(msg: impl Into<String>) -> Result<T, E> {
    Err(OpsError::Failed(msg.into()).into())
}
