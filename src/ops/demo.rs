//! First-start demo data (`BRANCHD_DEMO`): a company, a branch, an owner who can log in, a
//! desktop-app license and a virtual printer, made once when the database has no users,
//! through the store's typed functions in one transaction.

use rand::Rng;

use crate::auth::{Role, license, password};
use crate::config::Config;
use crate::domain::printer::{Connection, Fields};
use crate::store::{Db, StoreError, directory, printers};

pub const DEMO_COMPANY: &str = "demo-company";
pub const DEMO_BRANCH: &str = "demo-branch";
pub const DEMO_EMAIL: &str = "admin@demo.local";
/// In the data directory: how to log in as the demo admin (first-run setup deletes it).
pub const DEMO_CREDENTIALS_FILE: &str = "demo-credentials.txt";

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
    let cred_file = config.data_dir.join(DEMO_CREDENTIALS_FILE);
    let _ = crate::secrets::write_private(&cred_file, &format!("{text}\n"));
    Ok(Some(text))
}
