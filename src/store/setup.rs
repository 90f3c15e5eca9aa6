//! First-run setup (SPEC §3): whether the demo data made on a first start is still there
//! unchanged, and replacing it, in one transaction, with the installer's own company,
//! branch and admin (standalone) or with the ones HQ's hub names (join). Also the uplink a
//! join persisted (`meta`), used when the configuration gives none.

use super::sql::params;

use super::directory::{self, UserRow};
use super::{Reader, StoreError, Tx, now_rfc3339};

const UPLINK_URL: &str = "uplink_url";
const UPLINK_TOKEN: &str = "uplink_token";

/// The demo data a first start made, as it still is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demo {
    pub company_id: String,
    pub company_name: String,
    pub branch_id: String,
    pub branch_name: String,
    pub admin_id: String,
    pub admin_email: String,
}

/// The demo as a first start made it (ids and the admin's email).
#[derive(Debug, Clone, Copy)]
pub struct DemoIds<'a> {
    pub company_id: &'a str,
    pub branch_id: &'a str,
    pub admin_email: &'a str,
}

/// `Some` while setup is needed: the demo company, its branch and its admin exist, and no
/// other company does (a company made with the CLI means someone set the appliance up).
pub fn demo(r: &Reader<'_>, ids: DemoIds<'_>) -> Result<Option<Demo>, StoreError> {
    let Some(company_name) = directory::company_name(r, ids.company_id)? else { return Ok(None) };
    let Some(branch) = directory::branch(r, ids.branch_id)?.filter(|b| b.company_id == ids.company_id) else { return Ok(None) };
    let Some(admin) = directory::user_by_email(r, ids.admin_email)?.filter(|u| u.company_id.as_deref() == Some(ids.company_id)) else {
        return Ok(None);
    };
    let others: i64 = r.conn.query_row("SELECT COUNT(*) FROM companies WHERE id != ?1", params![ids.company_id], |r| r.get(0))?;
    if others > 0 {
        return Ok(None);
    }
    Ok(Some(Demo {
        company_id: ids.company_id.into(),
        company_name,
        branch_id: branch.id,
        branch_name: branch.name,
        admin_id: admin.id,
        admin_email: admin.email,
    }))
}

/// What replaces the demo.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub company_id: String,
    pub company_name: String,
    pub branch_id: String,
    pub branch_name: String,
    pub currency: String,
    /// The new admin (a `company_owner` of the new company).
    pub admin: UserRow,
    /// Join: the hub's URL and this branch's uplink credential, kept for later starts.
    pub uplink: Option<(String, String)>,
}

/// What the replacement removed that lives outside the database: the printers whose
/// queue workers must stop.
#[derive(Debug, Clone, Default)]
pub struct Replaced {
    pub removed_printers: Vec<String>,
}

/// Replaces the demo company, branch and admin with `r` in the caller's transaction: the
/// demo printer (the virtual one the first start made), the demo orders with their print
/// jobs, alerts and events go; other rows of the demo company and branch (printers added
/// since, availability, other users, licenses) move to the new ids; the demo licenses are
/// revoked (their keys were in the credentials file). Fails with `NotFound` when setup is
/// no longer needed (a concurrent setup won) and changes nothing then.
pub fn replace_demo(tx: &mut Tx<'_>, ids: DemoIds<'_>, r: &Replacement) -> Result<Replaced, StoreError> {
    let conn = tx.conn;
    let Some(demo) = demo(tx, ids)? else {
        return Err(StoreError::NotFound("setup is done: the demo company no longer exists".into()));
    };
    let (oc, ob, nc, nb) = (demo.company_id.as_str(), demo.branch_id.as_str(), r.company_id.as_str(), r.branch_id.as_str());
    if directory::company_exists(tx, nc)? || directory::branch(tx, nb)?.is_some() {
        return Err(StoreError::conflict("CONFLICT", format!("company {nc} or branch {nb} already exists here")));
    }
    let now = now_rfc3339();
    conn.execute("INSERT INTO companies (id, name, created_at) VALUES (?1, ?2, ?3)", params![nc, r.company_name, now])?;
    conn.execute(
        "INSERT INTO branches (id, company_id, name, created_at, currency) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![nb, nc, r.branch_name, now, r.currency],
    )?;

    // The demo's own printer and everything of the demo orders.
    let named = conn.query_map(
        "SELECT id, connection FROM printers WHERE branch_id = ?1 AND name = 'Virtual receipt printer'",
        params![ob],
        |row| Ok((row.get::<String>(0)?, row.get::<String>(1)?)),
    )?;
    let virtual_printer = |connection: &str| serde_json::from_str::<serde_json::Value>(connection).is_ok_and(|c| c["type"] == "virtual");
    let removed_printers: Vec<String> = named.into_iter().filter(|(_, c)| virtual_printer(c)).map(|(id, _)| id).collect();
    for p in &removed_printers {
        conn.execute("DELETE FROM printers WHERE id = ?1", params![p])?;
    }
    conn.execute("DELETE FROM print_jobs WHERE company_id = ?1", params![oc])?;
    conn.execute("DELETE FROM print_alerts WHERE company_id = ?1", params![oc])?;
    conn.execute("DELETE FROM orders WHERE company_id = ?1", params![oc])?;
    conn.execute("DELETE FROM order_numbers WHERE branch_id = ?1", params![ob])?;
    conn.execute("DELETE FROM events WHERE company_id = ?1", params![oc])?;
    conn.execute("DELETE FROM sync_parked WHERE branch_id IN (?1, 'feed:' || ?1)", params![ob])?;
    conn.execute("DELETE FROM sync_state WHERE key IN ('acked:' || ?1, 'stream:' || ?1, 'uplink:branch', 'feed:cursor')", params![ob])?;

    // What stays moves to the new ids.
    for table in ["printers", "availability"] {
        conn.execute(
            &format!("UPDATE {table} SET company_id = ?2, branch_id = ?4 WHERE company_id = ?1 AND branch_id = ?3"),
            params![oc, nc, ob, nb],
        )?;
    }
    conn.execute(
        "UPDATE licenses SET company_id = ?2, branch_id = ?4, revoked_at = COALESCE(revoked_at, ?5) WHERE company_id = ?1",
        params![oc, nc, ob, nb, now],
    )?;
    conn.execute("UPDATE uplinks SET company_id = ?2, branch_id = ?4 WHERE company_id = ?1 AND branch_id = ?3", params![oc, nc, ob, nb])?;
    conn.execute(
        "UPDATE users SET company_id = ?2, branch_id = CASE WHEN branch_id = ?3 THEN ?4 ELSE branch_id END WHERE company_id = ?1",
        params![oc, nc, ob, nb],
    )?;

    // The demo admin goes (its tokens stay refused), the new one comes.
    directory::remove_user(tx, &demo.admin_id)?;
    conn.execute("DELETE FROM branches WHERE company_id = ?1", params![oc])?;
    conn.execute("DELETE FROM companies WHERE id = ?1", params![oc])?;
    directory::add_user(tx, &r.admin)?;
    if let Some((url, token)) = &r.uplink {
        set_meta(conn, UPLINK_URL, url)?;
        set_meta(conn, UPLINK_TOKEN, token)?;
    }
    Ok(Replaced { removed_printers })
}

fn set_meta(conn: super::sql::Conn<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// The uplink first-run setup joined (hub URL, credential), if any.
pub fn persisted_uplink(r: &Reader<'_>) -> Result<Option<(String, String)>, StoreError> {
    let get = |k: &str| r.conn.query_opt("SELECT value FROM meta WHERE key = ?1", params![k], |r| r.get::<String>(0));
    Ok(match (get(UPLINK_URL)?, get(UPLINK_TOKEN)?) {
        (Some(u), Some(t)) => Some((u, t)),
        _ => None,
    })
}
