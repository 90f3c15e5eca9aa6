//! Companies, branches, users and desktop-app licenses.

use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, now_rfc3339};

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub id: String,
    pub company_id: String,
    pub name: String,
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

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub fn add_company(conn: &Connection, id: &str, name: &str) -> Result<(), StoreError> {
    conn.execute("INSERT INTO companies (id, name, created_at) VALUES (?1, ?2, ?3)", params![id, name, now_rfc3339()]).map_err(|e| {
        if unique_violation(&e) { StoreError::conflict("CONFLICT", format!("company {id} already exists")) } else { e.into() }
    })?;
    Ok(())
}

pub fn company_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row("SELECT 1 FROM companies WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
}

pub fn add_branch(conn: &Connection, id: &str, company_id: &str, name: &str) -> Result<(), StoreError> {
    if !company_exists(conn, company_id)? {
        return Err(StoreError::NotFound(format!("company {company_id} does not exist")));
    }
    conn.execute(
        "INSERT INTO branches (id, company_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, company_id, name, now_rfc3339()],
    )
    .map_err(|e| if unique_violation(&e) { StoreError::conflict("CONFLICT", format!("branch {id} already exists")) } else { e.into() })?;
    Ok(())
}

pub fn branch(conn: &Connection, id: &str) -> Result<Option<Branch>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, company_id, name FROM branches WHERE id = ?1")?;
    Ok(stmt.query_row([id], |r| Ok(Branch { id: r.get(0)?, company_id: r.get(1)?, name: r.get(2)? })).optional()?)
}

/// The company's and the branch's names, for receipt headers.
pub fn names(conn: &Connection, branch_id: &str) -> Result<Option<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT c.name, b.name FROM branches b JOIN companies c ON c.id = b.company_id WHERE b.id = ?1")?;
    Ok(stmt.query_row([branch_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
}

/// Branches a principal may see: all (None), one company's, or one branch.
pub fn branches(conn: &Connection, company: Option<&str>) -> Result<Vec<Branch>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, company_id, name FROM branches WHERE ?1 IS NULL OR company_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([company], |r| Ok(Branch { id: r.get(0)?, company_id: r.get(1)?, name: r.get(2)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn add_user(conn: &Connection, u: &UserRow) -> Result<(), StoreError> {
    if let Some(c) = &u.company_id
        && !company_exists(conn, c)?
    {
        return Err(StoreError::NotFound(format!("company {c} does not exist")));
    }
    if let Some(b) = &u.branch_id {
        match branch(conn, b)? {
            Some(br) if Some(&br.company_id) == u.company_id.as_ref() => {}
            Some(_) => return Err(StoreError::Invalid(format!("branch {b} belongs to another company"))),
            None => return Err(StoreError::NotFound(format!("branch {b} does not exist"))),
        }
    }
    conn.execute(
        "INSERT INTO users (id, email, password_hash, role, company_id, branch_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![u.id, u.email, u.password_hash, u.role, u.company_id, u.branch_id, now_rfc3339()],
    )
    .map_err(|e| {
        if unique_violation(&e) { StoreError::conflict("CONFLICT", format!("user {} already exists", u.email)) } else { e.into() }
    })?;
    Ok(())
}

pub fn user_by_email(conn: &Connection, email: &str) -> Result<Option<UserRow>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, email, password_hash, role, company_id, branch_id FROM users WHERE email = ?1")?;
    Ok(stmt
        .query_row([email], |r| {
            Ok(UserRow {
                id: r.get(0)?,
                email: r.get(1)?,
                password_hash: r.get(2)?,
                role: r.get(3)?,
                company_id: r.get(4)?,
                branch_id: r.get(5)?,
            })
        })
        .optional()?)
}

pub fn count_users(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn add_license(conn: &Connection, key_hash: &str, company_id: &str, branch_id: &str) -> Result<(), StoreError> {
    match branch(conn, branch_id)? {
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
pub fn license(conn: &Connection, key_hash: &str) -> Result<Option<License>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT company_id, branch_id FROM licenses WHERE key_hash = ?1 AND revoked_at IS NULL")?;
    Ok(stmt.query_row([key_hash], |r| Ok(License { company_id: r.get(0)?, branch_id: r.get(1)? })).optional()?)
}

/// Revokes a license; `false` when no active license has that hash.
/// Hashes of every revoked license.
pub fn revoked_licenses(conn: &Connection) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT key_hash FROM licenses WHERE revoked_at IS NOT NULL")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn revoke_license(conn: &Connection, key_hash: &str) -> Result<bool, StoreError> {
    let n =
        conn.execute("UPDATE licenses SET revoked_at = ?2 WHERE key_hash = ?1 AND revoked_at IS NULL", params![key_hash, now_rfc3339()])?;
    Ok(n == 1)
}

/// A user as the hub reports it (`directory:user` feed event), stored or updated by id.
pub fn replicate_user(conn: &Connection, d: &serde_json::Value) -> Result<(), StoreError> {
    let s = |k: &str| d.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    let (Some(id), Some(email), Some(hash), Some(role)) = (s("id"), s("email"), s("passwordHash"), s("role")) else {
        return Err(StoreError::Invalid("directory:user needs id, email, passwordHash and role".into()));
    };
    if let Some(c) = s("companyId") {
        let name = s("companyName").unwrap_or_else(|| c.clone());
        conn.execute("INSERT OR IGNORE INTO companies (id, name, created_at) VALUES (?1, ?2, ?3)", params![c, name, now_rfc3339()])?;
    }
    conn.execute(
        "INSERT INTO users (id, email, password_hash, role, company_id, branch_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET email = excluded.email, password_hash = excluded.password_hash, role = excluded.role,
                                       company_id = excluded.company_id, branch_id = excluded.branch_id",
        params![id, email, hash, role, s("companyId"), s("branchId"), now_rfc3339()],
    )?;
    Ok(())
}

/// A license as the hub reports it (`directory:license`): created or revoked.
pub fn replicate_license(conn: &Connection, d: &serde_json::Value) -> Result<(), StoreError> {
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
