//! `AppState`: the one state every handler, socket and background task shares (one `Arc`,
//! cheap to clone): configuration, the database, the Socket.IO handle, the print queue,
//! desktop apps, sync, TLS, metrics, throttles, and the §2 branch checks every transport
//! makes. It sits beneath the features, which take it; `app.rs` only builds and wires it.
//! The handles it holds for features are plain types here, so that it imports no feature:
//! `desktops` (desktop-app correlation), `print_queue` (the workers' registry; the workers
//! are `printing::queue`'s) and `relay` (sync status and wake-up; the task is
//! `sync::relay`'s).

pub mod desktops;
pub mod print_queue;
pub mod relay;

use std::sync::Arc;
use std::time::{Duration, Instant};

use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;

use crate::auth::{Principal, jwt::Keys};
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{Db, directory};

use desktops::DesktopHub;
use print_queue::PrintQueue;
use relay::Relay;

/// Cheap to clone; everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// Password checks (argon2, deliberately slow) running at once, each on its own thread.
const PASSWORD_CHECKS: usize = 2;
/// Password checks waiting their turn; more are refused (429) at once.
const PASSWORD_QUEUE: usize = 32;
/// New Engine.IO sessions one source address may open at once, then per second
/// (`realtime::admission`).
const SESSION_BURST: u32 = 200;
const SESSIONS_PER_SECOND: u32 = 20;

struct Inner {
    config: Config,
    db: Db,
    keys: Keys,
    io: SocketIo,
    desktops: Arc<DesktopHub>,
    print_queue: PrintQueue,
    sync: Relay,
    tls: Arc<crate::tls::Tls>,
    metrics: Metrics,
    login_throttle: crate::auth::throttle::LoginThrottle,
    source_throttle: crate::auth::throttle::SourceThrottle,
    session_limiter: crate::auth::throttle::RateLimiter,
    password_checker: crate::auth::password::Checker,
    user_gate: crate::auth::gate::UserGate,
    /// Branch → company. A branch never moves or disappears, so a known mapping never goes
    /// stale; unknown branches are looked up again each time (the CLI may add them).
    branch_cache: std::sync::RwLock<std::collections::HashMap<String, String>>,
    started: Instant,
    /// What the mDNS advertisement does (set once it started or failed).
    mdns: std::sync::RwLock<crate::mdns::Status>,
    shutdown: CancellationToken,
}

impl AppState {
    /// The state of a server about to start: its configuration and the handles `App::build`
    /// opened; everything else starts empty.
    pub fn new(config: Config, db: Db, keys: Keys, io: SocketIo, tls: crate::tls::Tls) -> AppState {
        // A hub cluster counts wrong passwords in the shared database (every process sees them).
        let login_throttle = match config.database_url {
            Some(_) => crate::auth::throttle::LoginThrottle::shared(db.clone()),
            None => Default::default(),
        };
        AppState {
            inner: Arc::new(Inner {
                keys,
                db,
                io,
                desktops: Arc::new(DesktopHub::default()),
                print_queue: PrintQueue::with_timeouts(config.printer_timeouts),
                sync: Relay::default(),
                tls: Arc::new(tls),
                metrics: Metrics::default(),
                login_throttle,
                source_throttle: Default::default(),
                session_limiter: crate::auth::throttle::RateLimiter::new(SESSION_BURST, SESSIONS_PER_SECOND),
                password_checker: crate::auth::password::Checker::start(PASSWORD_CHECKS, PASSWORD_QUEUE),
                user_gate: crate::auth::gate::UserGate::default(),
                branch_cache: Default::default(),
                started: Instant::now(),
                mdns: Default::default(),
                shutdown: CancellationToken::new(),
                config,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    pub fn db(&self) -> &Db {
        &self.inner.db
    }
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }
    pub fn io(&self) -> &SocketIo {
        &self.inner.io
    }
    pub fn desktops(&self) -> &DesktopHub {
        &self.inner.desktops
    }
    pub fn desktops_arc(&self) -> Arc<DesktopHub> {
        self.inner.desktops.clone()
    }
    pub fn print_queue(&self) -> &PrintQueue {
        &self.inner.print_queue
    }
    pub fn sync(&self) -> &Relay {
        &self.inner.sync
    }
    pub fn tls(&self) -> &crate::tls::Tls {
        &self.inner.tls
    }
    /// The TLS handle itself, for the tasks that keep it (certificate watcher, accept loop).
    pub fn tls_arc(&self) -> Arc<crate::tls::Tls> {
        self.inner.tls.clone()
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub fn login_throttle(&self) -> &crate::auth::throttle::LoginThrottle {
        &self.inner.login_throttle
    }
    pub fn source_throttle(&self) -> &crate::auth::throttle::SourceThrottle {
        &self.inner.source_throttle
    }
    pub fn session_limiter(&self) -> &crate::auth::throttle::RateLimiter {
        &self.inner.session_limiter
    }
    pub fn password_checker(&self) -> &crate::auth::password::Checker {
        &self.inner.password_checker
    }
    /// Refuses tokens of disabled users and tokens older than their user's password.
    pub fn user_gate(&self) -> &crate::auth::gate::UserGate {
        &self.inner.user_gate
    }
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
    /// What the mDNS advertisement does.
    pub fn mdns(&self) -> crate::mdns::Status {
        self.inner.mdns.read().map(|s| s.clone()).unwrap_or_default()
    }
    pub fn set_mdns(&self, status: crate::mdns::Status) {
        if let Ok(mut s) = self.inner.mdns.write() {
            *s = status;
        }
    }
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The company of a known branch (`None`: nobody knows this branch).
    pub async fn branch_company(&self, branch_id: &str) -> Result<Option<String>, ApiError> {
        if let Some(c) = self.inner.branch_cache.read().ok().and_then(|m| m.get(branch_id).cloned()) {
            return Ok(Some(c));
        }
        let id = branch_id.to_string();
        let company = self.db().read(move |c| Ok(directory::branch(c, &id)?.map(|b| b.company_id))).await?;
        if let (Some(c), Ok(mut m)) = (&company, self.inner.branch_cache.write()) {
            m.insert(branch_id.to_string(), c.clone());
        }
        Ok(company)
    }

    /// Drops a branch that no longer exists (first-run setup replaced the demo's).
    pub fn forget_branch(&self, branch_id: &str) {
        if let Ok(mut m) = self.inner.branch_cache.write() {
            m.remove(branch_id);
        }
    }

    /// SPEC §2 for one branch: 404 for a branch nobody knows, 403 outside the role table.
    /// Returns the branch's company.
    pub async fn authorize_branch(&self, p: &Principal, branch_id: &str) -> Result<String, ApiError> {
        let company = self.branch_company(branch_id).await?;
        let Some(company) = company else {
            return Err(ApiError::not_found(format!("unknown branch {branch_id}")));
        };
        if !p.may_access(branch_id, Some(&company)) {
            return Err(ApiError::forbidden(format!("no access to branch {branch_id}")));
        }
        Ok(company)
    }

    /// The branches a list covers: the one asked for (checked against §2), or every branch
    /// the principal may see (`None`: all of them).
    pub async fn branch_scope(&self, p: &Principal, asked: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
        match asked {
            Some(b) => {
                self.authorize_branch(p, b).await?;
                Ok(Some(vec![b.to_string()]))
            }
            None => self.visible_branches(p).await,
        }
    }

    /// The branches a principal may see (`None`: all of them).
    pub async fn visible_branches(&self, p: &Principal) -> Result<Option<Vec<String>>, ApiError> {
        if p.role == crate::auth::Role::SuperAdmin {
            return Ok(None);
        }
        if p.role.branch_scoped() {
            let b = p.branch_id.clone().unwrap_or_default();
            let ok = self.branch_company(&b).await?.is_some_and(|c| p.may_access(&b, Some(&c)));
            return Ok(Some(if ok { vec![b] } else { vec![] }));
        }
        let company = p.company_id.clone();
        let list = self.db().read(move |c| directory::branches(c, company.as_deref())).await?;
        Ok(Some(list.into_iter().map(|b| b.id).collect()))
    }
}
