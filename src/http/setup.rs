//! `/api/setup` (SPEC §3 first-run setup), with the demo admin's token only (other tokens:
//! 403; once the demo is gone: 404 for everyone).
//!
//! - `GET` → `{needed: true, demo: {companyId, companyName, branchId, branchName, adminEmail},
//!   modes: ["standalone", "join"], currencies: [...], defaultCurrency}`.
//! - `POST` standalone `{companyName, branchName, adminEmail, adminPassword, currency?}` or
//!   join `{upstreamUrl, uplinkToken, adminEmail, adminPassword}` → the login answer for the
//!   new admin `{accessToken, user}` plus `setup: {mode, companyId, companyName, branchId,
//!   branchName, currency, sync}`. Bad input is 400 and changes nothing; a hub that cannot be
//!   reached or refuses the credential is 502 (`UPSTREAM_UNREACHABLE`, `UPLINK_REFUSED`,
//!   `UPSTREAM_NOT_HUB`) and changes nothing. A join starts sync at once and keeps the uplink
//!   in the database for later starts (the configuration's `upstream_url`, when set, wins).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{Auth, JsonBody};
use crate::auth::{Principal, Role, manage, password};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::directory::{self, UserRow};
use crate::store::setup::{self as store, Demo, DemoIds, Replacement};
use crate::sync::relay::{self, HelloError};
use crate::validate;

const IDS: DemoIds<'static> = DemoIds {
    company_id: crate::ops::demo::DEMO_COMPANY,
    branch_id: crate::ops::demo::DEMO_BRANCH,
    admin_email: crate::ops::demo::DEMO_EMAIL,
};
const NAME_MAX: usize = 100;

/// The demo as it is, when setup is still needed and `p` is its admin.
async fn demo_for(st: &AppState, p: &Principal) -> Result<Demo, ApiError> {
    let demo = st.db().read(|c| store::demo(c, IDS)).await?;
    let Some(demo) = demo else {
        return Err(ApiError::not_found("setup is done: this appliance has its own company (first-run setup runs once)"));
    };
    if p.sub != demo.admin_id {
        return Err(ApiError::forbidden(format!("only the demo admin ({}) may run first-run setup", demo.admin_email)));
    }
    Ok(demo)
}

/// `GET /api/setup`.
pub async fn get(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let demo = demo_for(&st, &p).await?;
    let modes: &[&str] = if st.config().role == crate::config::ApplianceRole::Hub { &["standalone"] } else { &["standalone", "join"] };
    Ok(Json(json!({
        "needed": true,
        "demo": {
            "companyId": demo.company_id, "companyName": demo.company_name,
            "branchId": demo.branch_id, "branchName": demo.branch_name, "adminEmail": demo.admin_email,
        },
        "modes": modes,
        "currencies": crate::currency::codes().collect::<Vec<_>>(),
        "defaultCurrency": crate::currency::DEFAULT,
    })))
}

fn only_fields(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad(format!("unknown field {k}; expected {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// A name a person typed: trimmed, not empty, no control characters.
fn name(m: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    let v = validate::string(m, key, NAME_MAX)?.trim().to_string();
    if v.is_empty() || v.chars().any(char::is_control) {
        return Err(ApiError::bad(format!("{key} must be a name of 1 to {NAME_MAX} characters without control characters")));
    }
    Ok(v)
}

fn bad_gateway(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, code, message)
}

/// The company and branch a setup creates, and the uplink it persists (a join's).
struct Target {
    company_id: String,
    company_name: String,
    branch_id: String,
    branch_name: String,
    currency: &'static str,
    uplink: Option<(String, String)>,
}

/// Joining HQ: the hub named in the request says which company and branch this appliance is.
async fn join_target(st: &AppState, m: &Map<String, Value>) -> Result<Target, ApiError> {
    let url = validate::string(m, "upstreamUrl", 2048)?.trim().trim_end_matches('/').to_string();
    let parsed = reqwest::Url::parse(&url).map_err(|e| ApiError::bad(format!("upstreamUrl is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::bad("upstreamUrl must be the hub's http:// or https:// address"));
    }
    let token = validate::string(m, "uplinkToken", 512)?.trim().to_string();
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad("uplinkToken must be the credential `branchd uplink create` printed at HQ"));
    }
    if st.config().role == crate::config::ApplianceRole::Hub {
        return Err(ApiError::bad("this appliance is the HQ hub itself; a hub does not join another hub"));
    }
    if let Some(configured) = &st.config().upstream_url {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "UPLINK_CONFIGURED",
            format!("the settings already name an HQ hub ({configured}); remove upstream_url to join from here"),
        ));
    }
    let hello = relay::ask_hello(&url, &token, st.config().upstream_ca.as_deref()).await.map_err(|e| match e {
        HelloError::Unreachable(why) => bad_gateway("UPSTREAM_UNREACHABLE", format!("cannot reach the hub: {why}")),
        HelloError::Refused(why) => bad_gateway("UPLINK_REFUSED", format!("{why}; check the credential")),
        HelloError::NotHub(why) => bad_gateway("UPSTREAM_NOT_HUB", why),
    })?;
    let clean = |s: Option<String>, fallback: &str| {
        s.map(|n| n.trim().chars().filter(|c| !c.is_control()).take(NAME_MAX).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| fallback.to_string())
    };
    let currency = hello.currency.as_deref().and_then(|c| crate::currency::parse(c).ok()).unwrap_or(crate::currency::DEFAULT);
    Ok(Target {
        company_name: clean(hello.company_name, &hello.company_id),
        company_id: hello.company_id,
        branch_name: clean(hello.branch_name, &hello.branch_id),
        branch_id: hello.branch_id,
        currency,
        uplink: Some((url, token)),
    })
}

/// Standing alone: a new company and branch with the names given.
fn standalone_target(m: &Map<String, Value>) -> Result<Target, ApiError> {
    let company = name(m, "companyName")?;
    let branch = name(m, "branchName")?;
    let currency = match validate::opt_string(m, "currency", 16)? {
        None => crate::currency::DEFAULT,
        Some(c) => crate::currency::parse(&c).map_err(ApiError::bad)?,
    };
    Ok(Target {
        company_id: uuid::Uuid::new_v4().to_string(),
        company_name: company,
        branch_id: uuid::Uuid::new_v4().to_string(),
        branch_name: branch,
        currency,
        uplink: None,
    })
}

/// Outside the database, once the demo is replaced: the demo's printer workers, cached
/// lookups, the credentials file.
fn forget_demo(st: &AppState, p: &Principal, removed_printers: &[String]) {
    for id in removed_printers {
        st.print_queue().forget(id);
    }
    st.forget_branch(crate::ops::demo::DEMO_BRANCH);
    st.user_gate().invalidate(&p.sub);
    let cred = st.config().data_dir.join(crate::ops::demo::DEMO_CREDENTIALS_FILE);
    if let Err(e) = std::fs::remove_file(&cred)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %cred.display(), error = %e, "first-run setup: cannot delete the demo credentials file; delete it by hand");
    }
}

/// `POST /api/setup`.
pub async fn post(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    demo_for(&st, &p).await?;
    let m = validate::object(&body, "body")?;
    let join = m.contains_key("upstreamUrl") || m.contains_key("uplinkToken");
    if join {
        only_fields(m, &["upstreamUrl", "uplinkToken", "adminEmail", "adminPassword"])?;
    } else {
        only_fields(m, &["companyName", "branchName", "adminEmail", "adminPassword", "currency"])?;
    }
    let email = validate::string(m, "adminEmail", 320)?.trim().to_string();
    manage::check_email(&email).map_err(ApiError::bad)?;
    if email.eq_ignore_ascii_case(crate::ops::demo::DEMO_EMAIL) {
        return Err(ApiError::bad(format!("choose your own admin email, not the demo's ({})", crate::ops::demo::DEMO_EMAIL)));
    }
    let pw = validate::string(m, "adminPassword", 1024)?;
    manage::check_password(&pw, &email).map_err(ApiError::bad)?;

    let Target { company_id, company_name, branch_id, branch_name, currency, uplink } =
        if join { join_target(&st, m).await? } else { standalone_target(m)? };

    let admin = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.clone(),
        password_hash: tokio::task::spawn_blocking(move || password::hash(&pw)).await.map_err(|_| ApiError::internal())?,
        role: Role::CompanyOwner.as_str().into(),
        company_id: Some(company_id.clone()),
        branch_id: None,
    };
    let r = Replacement {
        company_id: company_id.clone(),
        company_name: company_name.clone(),
        branch_id: branch_id.clone(),
        branch_name: branch_name.clone(),
        currency: currency.to_string(),
        admin,
        uplink: uplink.clone(),
    };
    let replaced = st.db().write(move |tx| store::replace_demo(tx, IDS, &r)).await.map_err(ApiError::from)?;

    forget_demo(&st, &p, &replaced.removed_printers);
    let sync = match uplink {
        Some((url, token)) => {
            tokio::spawn(relay::run_uplink(st.clone(), url, token));
            "started"
        }
        None => "off",
    };
    tracing::info!(mode = if join { "join" } else { "standalone" }, company_id, branch_id, "first-run setup done: the demo data is gone");

    let lookup = email.clone();
    let user = st.db().read(move |c| directory::user_by_email(c, &lookup)).await?.ok_or_else(ApiError::internal)?;
    let token = super::system::issue_for(&st, &user);
    Ok(Json(json!({
        "accessToken": token,
        "user": {"id": user.id, "email": user.email, "name": user.name, "role": user.role, "companyId": user.company_id, "branchId": user.branch_id},
        "setup": {
            "mode": if join { "join" } else { "standalone" },
            "companyId": company_id, "companyName": company_name,
            "branchId": branch_id, "branchName": branch_name,
            "currency": currency, "sync": sync,
        },
    })))
}
