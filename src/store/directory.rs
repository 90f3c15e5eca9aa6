//! Companies, branches, users and desktop-app licenses.

use super::sql::{Row, params};

use super::{Reader, StoreError, Tx, now_rfc3339};

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub id: String,
    pub company_id: String,
    pub name: String,
    /// ISO 4217 code (`crate::currency`); receipts print amounts with its minor-unit digits.
    pub currency: String,
    /// The currency's minor-unit digits (ISO 4217): amounts are integers in 10^-digits.
    pub currency_digits: u8,
    pub company_name: String,
}

const BRANCH_COLS: &str =
    "SELECT b.id, b.company_id, b.name, b.currency, COALESCE(c.name, '') FROM branches b LEFT JOIN companies c ON c.id = b.company_id";

fn branch_from(r: &Row<'_>) -> Result<Branch, StoreError> {
    let currency: String = r.get(3)?;
    let currency_digits = crate::currency::minor_digits(&currency).unwrap_or(2);
    Ok(Branch { id: r.get(0)?, company_id: r.get(1)?, name: r.get(2)?, currency, currency_digits, company_name: r.get(4)? })
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub company_id: Option<String>,
    pub branch_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct License {
    pub company_id: String,
    pub branch_id: String,
}

fn unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Constraint(_))
}

pub fn add_company(tx: &Tx<'_>, id: &str, name: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute("INSERT INTO companies (id, name, created_at) VALUES (?1, ?2, ?3)", params![id, name, now_rfc3339()])
        .map_err(|e| if unique_violation(&e) { StoreError::conflict("CONFLICT", format!("company {id} already exists")) } else { e })?;
    Ok(())
}

pub fn company_exists(r: &Reader<'_>, id: &str) -> Result<bool, StoreError> {
    let conn = r.conn;
    Ok(conn.query_opt("SELECT 1 FROM companies WHERE id = ?1", params![id], |_| Ok(()))?.is_some())
}

pub fn add_branch(tx: &Tx<'_>, id: &str, company_id: &str, name: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    if !company_exists(tx, company_id)? {
        return Err(StoreError::NotFound(format!("company {company_id} does not exist")));
    }
    conn.execute(
        "INSERT INTO branches (id, company_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, company_id, name, now_rfc3339()],
    )
    .map_err(|e| if unique_violation(&e) { StoreError::conflict("CONFLICT", format!("branch {id} already exists")) } else { e })?;
    Ok(())
}

pub fn branch(r: &Reader<'_>, id: &str) -> Result<Option<Branch>, StoreError> {
    r.conn.query_opt(&format!("{BRANCH_COLS} WHERE b.id = ?1"), params![id], branch_from)
}

/// The company's and the branch's names, for receipt headers.
pub fn names(r: &Reader<'_>, branch_id: &str) -> Result<Option<(String, String)>, StoreError> {
    let conn = r.conn;
    conn.query_opt(
        "SELECT c.name, b.name FROM branches b JOIN companies c ON c.id = b.company_id WHERE b.id = ?1",
        params![branch_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A company's name.
pub fn company_name(r: &Reader<'_>, id: &str) -> Result<Option<String>, StoreError> {
    r.conn.query_opt("SELECT name FROM companies WHERE id = ?1", params![id], |r| r.get(0))
}

/// Sets a branch's currency (an ISO 4217 code checked by `crate::currency::parse`).
pub fn set_branch_currency(tx: &Tx<'_>, id: &str, currency: &str) -> Result<(), StoreError> {
    if tx.conn.execute("UPDATE branches SET currency = ?2 WHERE id = ?1", params![id, currency])? == 0 {
        return Err(StoreError::NotFound(format!("branch {id} does not exist")));
    }
    Ok(())
}

/// Branches a principal may see: all (None), one company's, or one branch.
pub fn branches(r: &Reader<'_>, company: Option<&str>) -> Result<Vec<Branch>, StoreError> {
    let rows =
        r.conn.query_map(&format!("{BRANCH_COLS} WHERE ?1 IS NULL OR b.company_id = ?1 ORDER BY b.id"), params![company], branch_from)?;
    Ok(rows)
}

pub fn add_user(tx: &Tx<'_>, u: &UserRow) -> Result<(), StoreError> {
    let conn = tx.conn;
    if let Some(c) = &u.company_id
        && !company_exists(tx, c)?
    {
        return Err(StoreError::NotFound(format!("company {c} does not exist")));
    }
    if let Some(b) = &u.branch_id {
        match branch(tx, b)? {
            Some(br) if Some(&br.company_id) == u.company_id.as_ref() => {}
            Some(_) => return Err(StoreError::Invalid(format!("branch {b} belongs to another company"))),
            None => return Err(StoreError::NotFound(format!("branch {b} does not exist"))),
        }
    }
    conn.execute(
        "INSERT INTO users (id, email, password_hash, role, company_id, branch_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![u.id, u.email, u.password_hash, u.role, u.company_id, u.branch_id, now_rfc3339()],
    )
    .map_err(
        |e| {
            if unique_violation(&e) { StoreError::conflict("CONFLICT", format!("user {} already exists", u.email)) } else { e }
        },
    )?;
    Ok(())
}

/// A stored user as read back (the password hash stays inside the server).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub company_id: Option<String>,
    pub branch_id: Option<String>,
    pub name: Option<String>,
    pub disabled: bool,
    /// Unix milliseconds of the last password change (tokens with an older `iat` are refused).
    pub password_changed_at: Option<i64>,
    /// `local` (managed here) or `hq` (came through the hub's feed; read-only here).
    pub origin: String,
    pub created_at: String,
}

impl User {
    pub fn from_hq(&self) -> bool {
        self.origin == ORIGIN_HQ
    }
}

pub const ORIGIN_HQ: &str = "hq";

const USER_COLS: &str = "id, email, password_hash, role, company_id, branch_id, name, disabled, password_changed_at, origin, created_at";

fn user_from(r: &Row<'_>) -> Result<User, StoreError> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        company_id: r.get(4)?,
        branch_id: r.get(5)?,
        name: r.get(6)?,
        disabled: r.get::<i64>(7)? != 0,
        password_changed_at: r.get(8)?,
        origin: r.get(9)?,
        created_at: r.get(10)?,
    })
}

pub fn user_by_email(r: &Reader<'_>, email: &str) -> Result<Option<User>, StoreError> {
    let conn = r.conn;
    conn.query_opt(&format!("SELECT {USER_COLS} FROM users WHERE lower(email) = lower(?1)"), params![email], user_from)
}

pub fn user(r: &Reader<'_>, id: &str) -> Result<Option<User>, StoreError> {
    let conn = r.conn;
    conn.query_opt(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"), params![id], user_from)
}

/// Users of one company (`None`: every user), optionally of one branch, by email.
pub fn users(r: &Reader<'_>, company: Option<&str>, branch: Option<&str>) -> Result<Vec<User>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map(
        &format!("SELECT {USER_COLS} FROM users WHERE (?1 IS NULL OR company_id = ?1) AND (?2 IS NULL OR branch_id = ?2) ORDER BY email"),
        params![company, branch],
        user_from,
    )?;
    Ok(rows)
}

/// What the token gate needs of a user: (disabled, password changed at, Unix ms).
pub fn user_gate_state(r: &Reader<'_>, id: &str) -> Result<Option<(bool, Option<i64>)>, StoreError> {
    let conn = r.conn;
    conn.query_opt(
        "SELECT disabled, password_changed_at FROM users WHERE id = ?1
         UNION ALL SELECT 1, NULL FROM users_removed WHERE id = ?1 LIMIT 1",
        params![id],
        |r| Ok((r.get::<i64>(0)? != 0, r.get(1)?)),
    )
}

/// Every user whose tokens may be refused: disabled, or with a password change recorded.
pub fn users_with_restrictions(r: &Reader<'_>) -> Result<std::collections::HashMap<String, (bool, Option<i64>)>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map(
        "SELECT id, disabled, password_changed_at FROM users WHERE disabled != 0 OR password_changed_at IS NOT NULL
                             UNION ALL SELECT id, 1, NULL FROM users_removed",
        params![],
        |r| Ok((r.get::<String>(0)?, (r.get::<i64>(1)? != 0, r.get(2)?))),
    )?;
    Ok(rows.into_iter().collect())
}

/// A change to a local user (`None` fields stay as they are; `branch_id: Some(None)` clears it).
#[derive(Debug, Default, Clone)]
pub struct UserChange {
    pub role: Option<String>,
    pub company_id: Option<Option<String>>,
    pub branch_id: Option<Option<String>>,
    pub name: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

/// Applies `change` to user `id`; returns the stored result. The branch must belong to the
/// user's company.
pub fn update_user(tx: &Tx<'_>, id: &str, change: &UserChange) -> Result<User, StoreError> {
    let conn = tx.conn;
    let Some(mut u) = user(tx, id)? else { return Err(StoreError::NotFound(format!("user {id} does not exist"))) };
    if let Some(r) = &change.role {
        u.role = r.clone();
    }
    if let Some(c) = &change.company_id {
        u.company_id = c.clone();
    }
    if let Some(b) = &change.branch_id {
        u.branch_id = b.clone();
    }
    if let Some(n) = &change.name {
        u.name = n.clone();
    }
    if let Some(d) = change.disabled {
        u.disabled = d;
    }
    if let Some(h) = &change.password_hash {
        u.password_hash = h.clone();
        u.password_changed_at = Some(chrono::Utc::now().timestamp_millis());
    }
    if let Some(b) = &u.branch_id {
        match branch(tx, b)? {
            Some(br) if Some(&br.company_id) == u.company_id.as_ref() => {}
            Some(_) => return Err(StoreError::Invalid(format!("branch {b} belongs to another company"))),
            None => return Err(StoreError::NotFound(format!("branch {b} does not exist"))),
        }
    }
    conn.execute(
        "UPDATE users SET role = ?2, company_id = ?3, branch_id = ?4, name = ?5, disabled = ?6, password_hash = ?7,
                          password_changed_at = ?8 WHERE id = ?1",
        params![id, u.role, u.company_id, u.branch_id, u.name, u.disabled as i64, u.password_hash, u.password_changed_at],
    )?;
    Ok(u)
}

/// Deletes a user and remembers its id, so its tokens stay refused; `false` when there was none.
pub fn remove_user(tx: &Tx<'_>, id: &str) -> Result<bool, StoreError> {
    let conn = tx.conn;
    conn.execute("INSERT INTO users_removed (id, removed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING", params![id, now_rfc3339()])?;
    Ok(conn.execute("DELETE FROM users WHERE id = ?1", params![id])? == 1)
}

/// The `directory:user` feed payload a hub publishes for a user (branches store it as an HQ user).
pub fn user_feed_payload(u: &User) -> serde_json::Value {
    serde_json::json!({
        "id": u.id, "email": u.email, "passwordHash": u.password_hash, "role": u.role,
        "companyId": u.company_id, "branchId": u.branch_id, "name": u.name, "disabled": u.disabled,
        "passwordChangedAt": u.password_changed_at,
    })
}

/// On a hub: puts the user on its company's feed, so branches get the change (users without
/// a company, `super_admin`s, stay at the hub).
pub fn publish_user(tx: &Tx<'_>, u: &User) -> Result<(), StoreError> {
    if let Some(company) = &u.company_id {
        super::events::append_internal(tx, "directory:user", company, u.branch_id.as_deref().unwrap_or(""), user_feed_payload(u))?;
    }
    Ok(())
}

pub fn count_users(r: &Reader<'_>) -> Result<i64, StoreError> {
    let conn = r.conn;
    conn.query_row("SELECT COUNT(*) FROM users", params![], |r| r.get(0))
}

pub fn add_license(tx: &Tx<'_>, key_hash: &str, company_id: &str, branch_id: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    match branch(tx, branch_id)? {
        Some(b) if b.company_id == company_id => {}
        Some(_) => return Err(StoreError::Invalid(format!("branch {branch_id} does not belong to company {company_id}"))),
        None => return Err(StoreError::NotFound(format!("branch {branch_id} does not exist"))),
    }
    conn.execute(
        "INSERT INTO licenses (key_hash, company_id, branch_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![key_hash, company_id, branch_id, now_rfc3339()],
    )?;
    Ok(())
}

/// An active (not revoked) license by the hash of its key.
pub fn license(r: &Reader<'_>, key_hash: &str) -> Result<Option<License>, StoreError> {
    let conn = r.conn;
    conn.query_opt("SELECT company_id, branch_id FROM licenses WHERE key_hash = ?1 AND revoked_at IS NULL", params![key_hash], |r| {
        Ok(License { company_id: r.get(0)?, branch_id: r.get(1)? })
    })
}

/// The company and branch of a license, revoked or not.
pub fn license_any(r: &Reader<'_>, key_hash: &str) -> Result<Option<License>, StoreError> {
    let conn = r.conn;
    conn.query_opt("SELECT company_id, branch_id FROM licenses WHERE key_hash = ?1", params![key_hash], |r| {
        Ok(License { company_id: r.get(0)?, branch_id: r.get(1)? })
    })
}

/// The branch and its company's name when the database holds exactly one branch (an
/// appliance serving one branch), else `None`. A missing company name reads as empty.
pub fn sole_branch(r: &Reader<'_>) -> Result<Option<(String, Branch)>, StoreError> {
    let conn = r.conn;
    let mut all = branches(r, None)?;
    if all.len() != 1 {
        return Ok(None);
    }
    let b = all.remove(0);
    let name: Option<String> = conn.query_opt("SELECT name FROM companies WHERE id = ?1", params![&b.company_id], |r| r.get(0))?;
    Ok(Some((name.unwrap_or_default(), b)))
}

/// Hashes of every revoked license.
pub fn revoked_licenses(r: &Reader<'_>) -> Result<std::collections::HashSet<String>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map("SELECT key_hash FROM licenses WHERE revoked_at IS NOT NULL", params![], |r| r.get::<String>(0))?;
    Ok(rows.into_iter().collect())
}

/// Revokes a license; `false` when no active license has that hash.
pub fn revoke_license(tx: &Tx<'_>, key_hash: &str) -> Result<bool, StoreError> {
    let conn = tx.conn;
    let n =
        conn.execute("UPDATE licenses SET revoked_at = ?2 WHERE key_hash = ?1 AND revoked_at IS NULL", params![key_hash, now_rfc3339()])?;
    Ok(n == 1)
}

/// A user as the hub reports it (`directory:user` feed event), stored or updated by id and
/// marked as HQ's (read-only at this branch), with its `disabled` flag and password change time.
pub fn replicate_user(tx: &Tx<'_>, d: &serde_json::Value) -> Result<(), StoreError> {
    let conn = tx.conn;
    let s = |k: &str| d.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    let (Some(id), Some(email), Some(hash), Some(role)) = (s("id"), s("email"), s("passwordHash"), s("role")) else {
        return Err(StoreError::Invalid("directory:user needs id, email, passwordHash and role".into()));
    };
    if let Some(c) = s("companyId") {
        let name = s("companyName").unwrap_or_else(|| c.clone());
        conn.execute(
            "INSERT INTO companies (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![c, name, now_rfc3339()],
        )?;
    }
    let disabled = d.get("disabled").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let changed = d.get("passwordChangedAt").and_then(serde_json::Value::as_i64);
    conn.execute(
        "INSERT INTO users (id, email, password_hash, role, company_id, branch_id, created_at, name, disabled, password_changed_at, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'hq')
         ON CONFLICT(id) DO UPDATE SET email = excluded.email, password_hash = excluded.password_hash, role = excluded.role,
                                       company_id = excluded.company_id, branch_id = excluded.branch_id, name = excluded.name,
                                       disabled = excluded.disabled, password_changed_at = excluded.password_changed_at,
                                       origin = 'hq'",
        params![id, email, hash, role, s("companyId"), s("branchId"), now_rfc3339(), s("name"), disabled as i64, changed],
    )?;
    Ok(())
}

/// A license as the hub reports it (`directory:license`): created or revoked.
pub fn replicate_license(tx: &Tx<'_>, d: &serde_json::Value) -> Result<(), StoreError> {
    let conn = tx.conn;
    let s = |k: &str| d.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    let (Some(hash), Some(company), Some(branch)) = (s("keyHash"), s("companyId"), s("branchId")) else {
        return Err(StoreError::Invalid("directory:license needs keyHash, companyId and branchId".into()));
    };
    conn.execute(
        "INSERT INTO licenses (key_hash, company_id, branch_id, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(key_hash) DO UPDATE SET revoked_at = excluded.revoked_at",
        params![hash, company, branch, now_rfc3339(), s("revokedAt")],
    )?;
    Ok(())
}

/// An email's wrong passwords as a hub cluster counts them (PostgreSQL only: the table is
/// the cluster's; a single process counts in memory, `auth::throttle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    pub failures: i64,
    pub first_at_ms: i64,
    pub locked_until_ms: Option<i64>,
}

pub fn login_failures(r: &Reader<'_>, email: &str) -> Result<Option<LoginFailures>, StoreError> {
    r.conn.query_opt("SELECT failures, first_at_ms, locked_until_ms FROM login_failures WHERE email = ?1", params![email], |row| {
        Ok(LoginFailures { failures: row.get(0)?, first_at_ms: row.get(1)?, locked_until_ms: row.get(2)? })
    })
}

/// Stores `email`'s count, and forgets counts that started before `forget_before_ms` and
/// hold no lockout running at `now_ms` (the table stays as small as the attacks of the
/// last window).
pub fn set_login_failures(tx: &Tx<'_>, email: &str, f: &LoginFailures, forget_before_ms: i64, now_ms: i64) -> Result<(), StoreError> {
    tx.conn.execute(
        "DELETE FROM login_failures WHERE first_at_ms < ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?2) AND email <> ?3",
        params![forget_before_ms, now_ms, email],
    )?;
    tx.conn.execute(
        "INSERT INTO login_failures (email, failures, first_at_ms, locked_until_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(email) DO UPDATE SET failures = excluded.failures, first_at_ms = excluded.first_at_ms,
             locked_until_ms = excluded.locked_until_ms",
        params![email, f.failures, f.first_at_ms, f.locked_until_ms],
    )?;
    Ok(())
}

pub fn clear_login_failures(tx: &Tx<'_>, email: &str) -> Result<(), StoreError> {
    tx.conn.execute("DELETE FROM login_failures WHERE email = ?1", params![email])?;
    Ok(())
}
