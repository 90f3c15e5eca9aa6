//! The application's wiring: `App` (build, bind, run, shut down) makes the
//! [`AppState`](crate::state::AppState) and hands it to every feature. Tests start an `App`
//! in-process on port 0; `main` does the same on the configured port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::jwt::Keys;
use crate::config::Config;
use crate::state::AppState;
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Lock(#[from] crate::ops::lock::LockError),
}

impl AppError {
    /// The process exit code (SPEC §1): 2 when a person must change the configuration or
    /// stop another server, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Secret(e) if e.is_config() => 2,
            AppError::Lock(crate::ops::lock::LockError::InUse { .. }) => 2,
            _ => 1,
        }
    }
}

/// A built application, bound to its listener, not yet serving.
pub struct App {
    state: AppState,
    listener: TcpListener,
    router: axum::Router,
    events_rx: tokio::sync::mpsc::UnboundedReceiver<Vec<crate::store::Event>>,
    lock: crate::ops::lock::ServerLock,
}

impl App {
    /// Opens the data directory and database, and binds the listener (`port` 0 picks one).
    pub async fn build(mut config: Config) -> Result<App, AppError> {
        let dir = config.data_dir.clone();
        let data_err = |source| AppError::DataDir { path: dir.display().to_string(), source };
        std::fs::create_dir_all(&dir).map_err(data_err)?;
        let lock = crate::ops::lock::acquire(&dir)?;
        // The port first: a taken port fails before anything (demo data included) is created.
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, source })?;
        let secret = crate::secrets::jwt_secret(&config)?;
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let sink: crate::store::db::EventSink = Box::new(move |evs| {
            let _ = events_tx.send(evs);
        });
        let db = match &config.database_url {
            // A hub cluster: connecting and migrating block, so not on the async workers.
            Some(url) => {
                let url = url.expose().to_string();
                tokio::task::spawn_blocking(move || Db::open_postgres(&url, sink))
                    .await
                    .map_err(|e| AppError::Serve(std::io::Error::other(e)))??
            }
            None => Db::open(&config.db_path(), sink)?,
        };
        if config.jwt_secret.is_none() {
            crate::store::meta::note_secret_kept(&db).await?;
        }
        // The HQ uplink first-run setup joined, unless the settings name one.
        if config.upstream_url.is_none()
            && let Some((url, token)) = db.read(crate::store::setup::persisted_uplink).await?
        {
            (config.upstream_url, config.upstream_token) = (Some(url), Some(token.into()));
        }
        if config.demo
            && let Some(demo) = crate::ops::demo::seed_demo_if_empty(&db, &config).await?
        {
            println!("{demo}");
        }
        let interfaces = config.mdns_interfaces.clone();
        let lan: crate::tls::AddressSource = Arc::new(move || crate::mdns::lan_addresses(&interfaces));
        let tls = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || crate::tls::Tls::new(&config, lan))
                .await
                .map_err(|e| AppError::Serve(std::io::Error::other(e)))??
        };
        let (layer, io) = crate::realtime::build_io(&config);
        let state = AppState::new(config, db, Keys::new(secret.as_bytes()), io, tls);
        crate::realtime::attach(&state);
        let mut router = crate::http::router(state.clone())
            .layer(layer)
            .layer(axum::middleware::from_fn(crate::realtime::own_request_parts))
            .layer(axum::middleware::from_fn_with_state(state.clone(), crate::realtime::admission::limit_new_sessions));
        if let Some(cors) = crate::http::cors(&state.config().cors_origins) {
            router = router.layer(cors);
        }
        Ok(App { state, listener, router, events_rx, lock })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes (or the state's token is cancelled), then stops
    /// accepting, closes Socket.IO clients, finishes in-flight requests (bounded) and closes
    /// the database.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), AppError> {
        let App { state, listener, router, events_rx, lock } = self;
        let token = state.shutdown_token().clone();
        let emitter = tokio::spawn(crate::realtime::bus::run(state.clone(), events_rx));
        let space = tokio::spawn(crate::store::health::monitor(
            state.db().clone(),
            state.config().data_dir.clone(),
            Duration::from_secs(5),
            token.clone(),
        ));
        // Damage found here is reported by /health and logged; the branch keeps serving
        // what it can (check-config and doctor say what to do).
        let db = state.db().clone();
        tokio::spawn(async move {
            if let Err(e) = db.quick_check().await {
                tracing::warn!(error = %e, "cannot check the database at start");
            }
        });
        let maintenance = tokio::spawn(crate::ops::upkeep::maintenance(state.clone()));
        tokio::spawn(crate::realtime::connect::disconnect_revoked(state.clone(), state.config().license_check));
        crate::printing::queue::start(&state).await?;
        let relay =
            (state.config().role == crate::config::ApplianceRole::Branch).then(|| tokio::spawn(crate::sync::relay::run(state.clone())));
        let mdns = start_mdns(&state, listener.local_addr().map(|a| a.port()).unwrap_or(0)).await;
        let ops = crate::ops::start(&state, lock, listener.local_addr().ok());
        tokio::spawn(state.tls_arc().watch(state.config().tls_check, token.clone()));
        tokio::spawn({
            let token = token.clone();
            async move {
                shutdown.await;
                token.cancel();
            }
        });
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, role = state.config().role.as_str(), version = crate::VERSION, "branchd serving");
            println!("branchd listening on http://{addr}");
            if let Some(fp) = state.tls().ca_fingerprint() {
                println!("branchd listening on https://{addr} (CA SHA-256 {fp}, GET /ca.crt)");
            } else if state.tls().enabled() {
                println!("branchd listening on https://{addr}");
            }
        }
        let graceful = {
            let token = token.clone();
            let io = state.io().clone();
            async move {
                token.cancelled().await;
                tracing::info!("shutting down: closing Socket.IO clients");
                io.close().await;
            }
        };
        // HTTP and HTTPS on the one port (the first byte of a connection tells them apart).
        let server = tokio::spawn(crate::tls::accept::serve(listener, router, state.tls_arc(), graceful));
        token.cancelled().await;
        match tokio::time::timeout(Duration::from_secs(10), server).await {
            Ok(Ok(Err(e))) => return Err(AppError::Serve(e)),
            Ok(_) => {}
            Err(_) => tracing::warn!("in-flight requests did not finish within 10 s; stopping anyway"),
        }
        state.print_queue().drain(Duration::from_secs(10)).await;
        if let Some(m) = mdns {
            let _ = tokio::task::spawn_blocking(move || m.withdraw()).await;
        }
        maintenance.abort();
        space.abort();
        if let Some(r) = relay {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        let db = state.db().clone();
        let _ = tokio::task::spawn_blocking(move || db.close()).await;
        drop(ops);
        emitter.abort();
        tracing::info!("stopped");
        Ok(())
    }
}

/// What mDNS says about this appliance: a name a person recognises ("Company – Branch"
/// when it serves one branch) and the ids of that branch.
async fn advert(state: &AppState) -> Result<crate::mdns::Advert, crate::store::StoreError> {
    let appliance_id = crate::store::meta::appliance_id(state.db()).await?;
    let (instance, company_id, branch_id) = match state.db().read(crate::store::directory::sole_branch).await? {
        Some((company_name, b)) => (format!("{company_name} - {}", b.name), b.company_id, b.id),
        None => (String::new(), String::new(), String::new()),
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Ok(crate::mdns::Advert {
        appliance_id,
        instance: crate::mdns::instance_name(&instance, &host),
        version: crate::VERSION.into(),
        role: state.config().role.as_str().into(),
        company_id,
        branch_id,
        port: state.config().port,
        tls: state.tls().txt(),
    })
}

/// Starts the mDNS advertisement when enabled; a failure is logged, not fatal (the
/// appliance still serves by IP address).
async fn start_mdns(state: &AppState, port: u16) -> Option<crate::mdns::Advertiser> {
    let not = |reason: String| crate::mdns::Status { reason: Some(reason), ..Default::default() };
    if !state.config().mdns {
        state.set_mdns(not("off in the settings (mdns = \"off\")".into()));
        return None;
    }
    let mut advert = match advert(state).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot prepare the mDNS advertisement");
            state.set_mdns(not(format!("cannot prepare the advertisement: {e}")));
            return None;
        }
    };
    advert.port = port;
    let instance = advert.instance.clone();
    let interfaces = state.config().mdns_interfaces.clone();
    match tokio::task::spawn_blocking(move || {
        crate::mdns::Advertiser::start(&advert, &interfaces).map(|a| (a, crate::mdns::lan_interfaces(&interfaces)))
    })
    .await
    {
        Ok(Ok((a, interfaces))) => {
            state.set_mdns(crate::mdns::Status { advertised: true, instance: Some(instance), interfaces, reason: None });
            Some(a)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "mDNS advertisement failed; tablets must use the IP address");
            state.set_mdns(not(e.to_string()));
            None
        }
        Err(_) => None,
    }
}
