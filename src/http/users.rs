//! `/api/users` and `POST /auth/password` (SPEC §2/§3): list, create, change, disable and
//! reset users within the caller's scope (`auth::manage`), and change one's own password.
//! Passwords are never returned or logged. Users that came from HQ's feed are read-only at
//! a branch (409 `MANAGED_AT_HQ`). On a hub every change is put on the company's feed.
//! Disabling a user or changing its password invalidates the user gate, which refuses its
//! older tokens and closes its sockets.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{Auth, JsonBody};
use crate::auth::manage::{self, Refusal};
use crate::auth::{Principal, Role, password};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::directory::{self, User, UserChange};
use crate::store::{StoreError, Tx};
use crate::validate;

fn user_json(u: &User) -> Value {
    let changed = u
        .password_changed_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    json!({
        "id": u.id, "email": u.email, "name": u.name, "role": u.role, "companyId": u.company_id,
        "branchId": u.branch_id, "disabled": u.disabled, "origin": if u.from_hq() { "hq" } else { "local" },
        "readOnly": u.from_hq(), "passwordChangedAt": changed, "createdAt": u.created_at,
    })
}

fn refusal(r: Refusal, id: &str) -> ApiError {
    match r {
        Refusal::NotFound => ApiError::not_found(format!("user {id} not found")),
        Refusal::Forbidden(m) => ApiError::forbidden(m),
    }
}

fn managers_only(p: &Principal) -> Result<(), ApiError> {
    if p.role.configures() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("a {} may not manage users; ask a branch manager", p.role.as_str())))
    }
}

fn role_of(s: &str) -> Result<Role, ApiError> {
    Role::parse_user(s).ok_or_else(|| ApiError::bad(format!("role must be one of {}", manage::role_names())))
}

/// A user the caller may see (404 otherwise, also for ids of other companies).
async fn load(st: &AppState, p: &Principal, id: &str) -> Result<User, ApiError> {
    managers_only(p)?;
    let lookup = id.to_string();
    let user = st.db().read(move |c| directory::user(c, &lookup)).await?;
    user.filter(|u| manage::in_scope(p, u.company_id.as_deref(), u.branch_id.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

fn local_only(u: &User) -> Result<(), ApiError> {
    if u.from_hq() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "MANAGED_AT_HQ",
            format!("user {} was created at HQ and is managed there; change it on the HQ hub", u.email),
        ));
    }
    Ok(())
}

async fn hash(pw: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&pw)).await.map_err(|_| ApiError::internal())
}

/// Writes `change` to user `id` (re-read in the transaction: it must still be local), and
/// on a hub puts the result on the feed.
async fn write_change(st: &AppState, id: String, change: UserChange) -> Result<User, ApiError> {
    let hub = st.config().role == crate::config::ApplianceRole::Hub;
    let user = st
        .db()
        .write(move |tx: &mut Tx<'_>| {
            let current = directory::user(tx, &id)?.ok_or_else(|| StoreError::NotFound(format!("user {id} not found")))?;
            local_only(&current)?;
            let u = directory::update_user(tx, &id, &change)?;
            if hub {
                directory::publish_user(tx, &u)?;
            }
            Ok::<_, ApiError>(u)
        })
        .await?;
    st.user_gate().invalidate(&user.id);
    Ok(user)
}

/// `GET /api/users[?branchId=][&companyId=]`: the users the caller manages or sees.
pub async fn list(State(st): State<AppState>, Auth(p): Auth, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>, ApiError> {
    managers_only(&p)?;
    let branch = q.get("branchId").cloned();
    if let Some(b) = &branch {
        st.authorize_branch(&p, b).await?;
    }
    let company = match (p.role, q.get("companyId")) {
        (Role::SuperAdmin, c) => c.cloned(),
        (_, Some(c)) if Some(c.as_str()) != p.company_id.as_deref() => return Err(ApiError::not_found(format!("unknown company {c}"))),
        _ => p.company_id.clone(),
    };
    let branch = if p.role == Role::BranchManager { p.branch_id.clone() } else { branch };
    let users = st.db().read(move |c| directory::users(c, company.as_deref(), branch.as_deref())).await?;
    let items: Vec<Value> =
        users.iter().filter(|u| manage::in_scope(&p, u.company_id.as_deref(), u.branch_id.as_deref())).map(user_json).collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn get_one(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_json(&load(&st, &p, &id).await?)))
}

fn opt_id(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    Ok(match validate::opt_string(m, key, 128)? {
        Some(s) => Some(validate::id(&s, key)?),
        None => None,
    })
}

fn opt_name(m: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let name = validate::opt_string(m, "name", 200)?;
    if name.as_deref().is_some_and(|n| n.chars().any(char::is_control)) {
        return Err(ApiError::bad("name must not contain control characters"));
    }
    Ok(name.filter(|n| !n.trim().is_empty()))
}

fn only_fields(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad(format!("unknown field {k}; expected {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// `POST /api/users` `{email, password, role, companyId?, branchId?, name?}` → 201.
pub async fn create(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Value>), ApiError> {
    managers_only(&p)?;
    let m = validate::object(&body, "body")?;
    only_fields(m, &["email", "password", "role", "companyId", "branchId", "name"])?;
    let email = validate::string(m, "email", 320)?;
    manage::check_email(&email).map_err(ApiError::bad)?;
    let pw = validate::string(m, "password", manage::MAX_PASSWORD)?;
    manage::check_password(&pw, &email).map_err(ApiError::bad)?;
    let role = role_of(&validate::string(m, "role", 32)?)?;
    let name = opt_name(m)?;
    let mut company = opt_id(m, "companyId")?;
    let mut branch = opt_id(m, "branchId")?;
    if role == Role::SuperAdmin {
        if company.is_some() || branch.is_some() {
            return Err(ApiError::bad("a super_admin belongs to no company or branch: leave companyId and branchId out"));
        }
    } else {
        if branch.is_none() && p.role == Role::BranchManager {
            branch = p.branch_id.clone();
        }
        if company.is_none() {
            company = match &branch {
                Some(b) => Some(st.branch_company(b).await?.ok_or_else(|| ApiError::not_found(format!("unknown branch {b}")))?),
                None => p.company_id.clone(),
            };
        }
        if company.is_none() {
            return Err(ApiError::bad(format!("companyId is required for a {}", role.as_str())));
        }
        if role.branch_scoped() && branch.is_none() {
            return Err(ApiError::bad(format!("branchId is required for a {}", role.as_str())));
        }
        if matches!(role, Role::CompanyOwner) && branch.is_some() {
            return Err(ApiError::bad("a company_owner belongs to no branch: leave branchId out"));
        }
    }
    manage::may_manage(&p, role, company.as_deref(), branch.as_deref()).map_err(|r| match r {
        Refusal::NotFound => ApiError::not_found("unknown company or branch"),
        other => refusal(other, ""),
    })?;
    if let Some(b) = &branch
        && st.branch_company(b).await? != company
    {
        return Err(ApiError::not_found(format!("unknown branch {b}")));
    }
    let row = directory::UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email,
        password_hash: hash(pw).await?,
        role: role.as_str().into(),
        company_id: company,
        branch_id: branch,
    };
    let hub = st.config().role == crate::config::ApplianceRole::Hub;
    let user = st
        .db()
        .write(move |tx: &mut Tx<'_>| {
            directory::add_user(tx, &row).map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    StoreError::conflict("EMAIL_TAKEN", format!("a user with email {} already exists", row.email))
                }
                other => other,
            })?;
            let u = directory::update_user(tx, &row.id, &UserChange { name: Some(name), ..UserChange::default() })?;
            if hub {
                directory::publish_user(tx, &u)?;
            }
            Ok::<_, StoreError>(u)
        })
        .await?;
    tracing::info!(user = %user.id, role = %user.role, by = %p.sub, "user created");
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

/// `PATCH /api/users/{id}` `{role?, branchId?, name?, disabled?}`.
pub async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let target = load(&st, &p, &id).await?;
    let m = validate::object(&body, "body")?;
    only_fields(m, &["role", "branchId", "name", "disabled"])?;
    local_only(&target)?;
    let mut change = UserChange::default();
    if m.contains_key("name") {
        change.name = Some(opt_name(m)?);
    }
    let role_changes = m.contains_key("role") || m.contains_key("branchId") || m.contains_key("disabled");
    if target.id == p.sub && role_changes {
        return Err(ApiError::forbidden("you cannot change your own role, branch or disabled flag; ask another manager"));
    }
    let current_role = role_of(&target.role)?;
    // Oneself: only the name (checked above), within what `load` lets one see.
    if target.id != p.sub {
        manage::may_manage(&p, current_role, target.company_id.as_deref(), target.branch_id.as_deref()).map_err(|r| refusal(r, &id))?;
    }
    let role = match m.get("role") {
        Some(Value::String(r)) => role_of(r)?,
        Some(_) => return Err(ApiError::bad("role must be a string")),
        None => current_role,
    };
    let mut company = target.company_id.clone();
    let mut branch = if m.contains_key("branchId") { opt_id(m, "branchId")? } else { target.branch_id.clone() };
    if role != current_role {
        if current_role == Role::SuperAdmin {
            return Err(ApiError::bad("a super_admin cannot become another role (it has no company); add a new user instead"));
        }
        if role == Role::SuperAdmin {
            company = None;
            branch = None;
        }
        if role == Role::CompanyOwner {
            branch = None;
        }
        change.role = Some(role.as_str().into());
        change.company_id = Some(company.clone());
    }
    if role.branch_scoped() && branch.is_none() {
        return Err(ApiError::bad(format!("branchId is required for a {}", role.as_str())));
    }
    if branch != target.branch_id || change.role.is_some() {
        change.branch_id = Some(branch.clone());
    }
    if let Some(b) = &branch
        && st.branch_company(b).await? != company
    {
        return Err(ApiError::not_found(format!("unknown branch {b}")));
    }
    if target.id != p.sub {
        manage::may_manage(&p, role, company.as_deref(), branch.as_deref()).map_err(|r| refusal(r, &id))?;
    }
    if m.contains_key("disabled") {
        change.disabled = Some(validate::bool(m, "disabled")?);
    }
    let user = write_change(&st, id, change).await?;
    tracing::info!(user = %user.id, role = %user.role, disabled = user.disabled, by = %p.sub, "user changed");
    Ok(Json(user_json(&user)))
}

/// `POST /api/users/{id}/password` `{password}`: a manager sets a user's password. The
/// user's older tokens stop working and its sockets close.
pub async fn reset_password(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let target = load(&st, &p, &id).await?;
    if target.id == p.sub {
        return Err(ApiError::forbidden("change your own password with POST /auth/password (it asks for the current one)"));
    }
    manage::may_manage(&p, role_of(&target.role)?, target.company_id.as_deref(), target.branch_id.as_deref())
        .map_err(|r| refusal(r, &id))?;
    local_only(&target)?;
    let m = validate::object(&body, "body")?;
    only_fields(m, &["password"])?;
    let pw = validate::string(m, "password", manage::MAX_PASSWORD)?;
    manage::check_password(&pw, &target.email).map_err(ApiError::bad)?;
    let change = UserChange { password_hash: Some(hash(pw).await?), ..UserChange::default() };
    let user = write_change(&st, id, change).await?;
    tracing::info!(user = %user.id, by = %p.sub, "password reset by a manager");
    Ok(Json(user_json(&user)))
}

/// `POST /auth/password` `{currentPassword, newPassword}`: one's own password. Answers a
/// fresh token (older ones are refused from now on).
pub async fn change_own_password(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    let m = validate::object(&body, "body")?;
    only_fields(m, &["currentPassword", "newPassword"])?;
    let current = validate::string(m, "currentPassword", manage::MAX_PASSWORD)?;
    let new = validate::string(m, "newPassword", manage::MAX_PASSWORD)?;
    let sub = p.sub.clone();
    let Some(me) = st.db().read(move |c| directory::user(c, &sub)).await? else {
        return Err(ApiError::not_found(
            "your user is not kept on this appliance (an HQ token?); change the password where it was created",
        ));
    };
    local_only(&me)?;
    let now = std::time::Instant::now();
    if let Err(wait) = st.login_throttle().check_email(&me.email, now).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            format!("too many wrong passwords; try again in {} s", wait.as_secs().max(1)),
        ));
    }
    let pending = st.password_checker().verify(current, Some(me.password_hash.clone())).map_err(|_| {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "too many password checks at once; try again shortly")
    })?;
    if !pending.await.map_err(|_| ApiError::internal())? {
        if let Err(e) = st.login_throttle().failed_email(&me.email, now).await {
            tracing::error!(user = %me.id, error = %e, "could not count a wrong current password");
        }
        return Err(ApiError::new(StatusCode::FORBIDDEN, "INVALID_CREDENTIALS", "the current password is wrong"));
    }
    manage::check_password(&new, &me.email).map_err(ApiError::bad)?;
    let change = UserChange { password_hash: Some(hash(new).await?), ..UserChange::default() };
    let user = write_change(&st, me.id.clone(), change).await?;
    tracing::info!(user = %user.id, "password changed by its user");
    Ok(Json(json!({ "accessToken": super::system::issue_for(&st, &user), "user": user_json(&user) })))
}
