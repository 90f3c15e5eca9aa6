//! Administration shared by the CLI, first-start demo data and background upkeep. These
//! operations act on the database directly, so they work while a server runs (WAL lets the
//! CLI and the server share the file; the busy timeout serialises their writes).

use std::time::Duration;

use rand::Rng;

use crate::app::AppState;
use crate::auth::{Role, license, password};
use crate::config::Config;
use crate::printing::model::{Connection, Fields};
use crate::store::{Db, StoreError, directory, events, printers};

pub const DEMO_COMPANY: &str = "demo-company";
pub const DEMO_BRANCH: &str = "demo-branch";
pub const DEMO_EMAIL: &str = "admin@demo.local";

/// Creates the demo company, branch, admin user, license and virtual printer when the
/// database has no users yet. Returns the text that tells a person how to log in.
pub async fn seed_demo_if_empty(db: &Db, config: &Config) -> Result<Option<String>, StoreError> {
    let users = db.read(directory::count_users).await?;
    if users > 0 {
        return Ok(None);
    }
    let pw: String = rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(16).map(char::from).collect();
    let pw_hash = password::hash(&pw);
    let key = license::generate();
    let key_hash = license::hash(&key);
    db.write(move |tx| {
        directory::add_company(tx, DEMO_COMPANY, "Demo Restaurants")?;
        directory::add_branch(tx, DEMO_BRANCH, DEMO_COMPANY, "Demo Branch")?;
        directory::add_user(
            tx,
            &directory::UserRow {
                id: uuid::Uuid::new_v4().to_string(),
                email: DEMO_EMAIL.into(),
                password_hash: pw_hash,
                role: Role::CompanyOwner.as_str().into(),
                company_id: Some(DEMO_COMPANY.into()),
                branch_id: None,
            },
        )?;
        directory::add_license(tx, &key_hash, DEMO_COMPANY, DEMO_BRANCH)?;
        let fields = Fields { name: Some("Virtual receipt printer".into()), connection: Some(Connection::Virtual), ..Fields::default() };
        printers::add(tx, DEMO_COMPANY, DEMO_BRANCH, fields)?;
        Ok::<_, StoreError>(())
    })
    .await?;
    let host = if config.bind.is_unspecified() { "localhost".to_string() } else { config.bind.to_string() };
    let text = format!(
        "First start: created demo company '{DEMO_COMPANY}', branch '{DEMO_BRANCH}' and a virtual printer.\n\
         Log in at http://{host}:{port}/ as {DEMO_EMAIL} with password {pw}\n\
         API:  curl -s -X POST http://{host}:{port}/auth/login -H 'content-type: application/json' \
         -d '{{\"email\":\"{DEMO_EMAIL}\",\"password\":\"{pw}\"}}'\n\
         Desktop print agent license key (shown once): {key}",
        port = config.port
    );
    let cred_file = config.data_dir.join("demo-credentials.txt");
    let _ = crate::secrets::write_private(&cred_file, &format!("{text}\n"));
    Ok(Some(text))
}

/// Background upkeep: prunes the event log hourly.
pub async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let policy = match (state.config().role, state.config().upstream_url.is_some()) {
            (crate::config::Role::Hub, _) => events::Retention::Hub,
            (_, true) => events::Retention::KeepUnsynced,
            _ => events::Retention::Plain,
        };
        match state.db().write(move |tx| events::prune(tx, policy)).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned old events"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning events failed"),
        }
    }
}

/// The appliance's stable id (made once, kept in the database).
pub async fn appliance_id(db: &Db) -> Result<String, StoreError> {
    db.write(|tx| crate::store::meta::appliance_id(tx)).await
}

/// What mDNS says about this appliance: a name a person recognises ("Company – Branch"
/// when it serves one branch) and the ids of that branch.
pub async fn advert(state: &AppState) -> Result<crate::discovery::Advert, StoreError> {
    let appliance_id = appliance_id(state.db()).await?;
    let (instance, company_id, branch_id) = state
        .db()
        .read(|c| {
            let branches = directory::branches(c, None)?;
            let company_name = |id: &str| -> Option<String> { directory::company_name(c, id).ok().flatten() };
            Ok(match branches.as_slice() {
                [b] => (format!("{} - {}", company_name(&b.company_id).unwrap_or_default(), b.name), b.company_id.clone(), b.id.clone()),
                _ => (String::new(), String::new(), String::new()),
            })
        })
        .await?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Ok(crate::discovery::Advert {
        appliance_id,
        instance: crate::discovery::instance_name(&instance, &host),
        version: crate::VERSION.into(),
        role: state.config().role.as_str().into(),
        company_id,
        branch_id,
        port: state.config().port,
        tls: state.tls().txt(),
    })
}
