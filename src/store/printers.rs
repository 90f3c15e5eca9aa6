//! Printer rows and their broadcasts on `/printing-ws`.

use super::sql::{Row, params};
use serde_json::{Value, json};

use super::{Page, Reader, StoreError, Tx, now_rfc3339};
use crate::domain::printer::{self as model, Fields, Printer, initial_status};

pub const NS: &str = "/printing-ws";

const COLUMNS: &str = "seq, id, company_id, branch_id, name, role, stations, paper_width, connection, profile, status, checked_at, created_at, answers_status, fallback_printer_id, fallback_after_seconds";

fn from_row(r: &Row<'_>) -> Result<(i64, Printer), StoreError> {
    let stations: String = r.get(6)?;
    let connection: String = r.get(8)?;
    let connection: model::Connection = serde_json::from_str(&connection).unwrap_or(model::Connection::Virtual);
    let mut p = Printer {
        id: r.get(1)?,
        company_id: r.get(2)?,
        branch_id: r.get(3)?,
        name: r.get(4)?,
        role: r.get(5)?,
        stations: serde_json::from_str(&stations).unwrap_or_default(),
        paper_width: r.get(7)?,
        connection,
        profile: r.get(9)?,
        status: r.get(10)?,
        checked_at: r.get(11)?,
        created_at: r.get(12)?,
        device_id: None,
        local_id: None,
        answers_status: r.get(13)?,
        fallback_printer_id: r.get(14)?,
        fallback_after_seconds: r.get(15)?,
    };
    p.sync_desktop_ids();
    Ok((r.get(0)?, p))
}

pub fn get(r: &Reader<'_>, id: &str) -> Result<Option<Printer>, StoreError> {
    let conn = r.conn;
    Ok(conn.query_opt(&format!("SELECT {COLUMNS} FROM printers WHERE id = ?1"), params![id], from_row)?.map(|(_, p)| p))
}

/// A desktop app's printer, by the app's device id and its own name for it, in one branch.
pub fn by_desktop(r: &Reader<'_>, branch_id: &str, device_id: &str, local_id: &str) -> Result<Option<Printer>, StoreError> {
    let conn = r.conn;
    Ok(conn
        .query_opt(
            &format!("SELECT {COLUMNS} FROM printers WHERE branch_id = ?1 AND device_id = ?2 AND local_id = ?3"),
            params![branch_id, device_id, local_id],
            from_row,
        )?
        .map(|(_, p)| p))
}

/// Every printer a desktop app reported in one branch.
pub fn by_device(r: &Reader<'_>, branch_id: &str, device_id: &str) -> Result<Vec<Printer>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map(
        &format!("SELECT {COLUMNS} FROM printers WHERE branch_id = ?1 AND device_id = ?2 ORDER BY seq"),
        params![branch_id, device_id],
        from_row,
    )?;
    Ok(rows.into_iter().map(|(_, p)| p).collect())
}

/// A desktop app went away: its printers cannot be reached until it is back (it reports
/// their status again when it reconnects).
pub fn desktop_gone(tx: &mut Tx<'_>, branch_id: &str, device_id: &str) -> Result<usize, StoreError> {
    let mut changed = 0;
    for p in by_device(tx, branch_id, device_id)? {
        if set_status(tx, &p, "offline", Some("desktop app disconnected"), false)?.is_some() {
            changed += 1;
        }
    }
    Ok(changed)
}

pub fn list(r: &Reader<'_>, branches: Option<&[String]>, after_seq: i64, limit: usize) -> Result<Page<Printer>, StoreError> {
    let conn = r.conn;
    let mut rows = Vec::new();
    conn.each(&format!("SELECT {COLUMNS} FROM printers WHERE seq > ?1 ORDER BY seq"), params![after_seq], |row| {
        let (seq, p) = from_row(row)?;
        if branches.is_none_or(|b| b.contains(&p.branch_id)) {
            rows.push((seq, p));
        }
        Ok(rows.len() <= limit)
    })?;
    Ok(Page::from_rows(rows, limit))
}

fn write_row(conn: super::sql::Conn<'_>, p: &Printer) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE printers SET name = ?2, role = ?3, stations = ?4, paper_width = ?5, connection = ?6, profile = ?7,
                             device_id = ?8, local_id = ?9, status = ?10, checked_at = ?11, answers_status = ?12,
                             fallback_printer_id = ?13, fallback_after_seconds = ?14
         WHERE id = ?1",
        params![
            p.id,
            p.name,
            p.role,
            serde_json::to_string(&p.stations)?,
            p.paper_width,
            serde_json::to_string(&p.connection)?,
            p.profile,
            p.device_id,
            p.local_id,
            p.status,
            p.checked_at,
            p.answers_status,
            p.fallback_printer_id,
            p.fallback_after_seconds,
        ],
    )?;
    Ok(())
}

/// A fallback must be another printer of the same branch.
fn check_fallback(r: &Reader<'_>, p: &Printer) -> Result<(), StoreError> {
    let Some(f) = &p.fallback_printer_id else { return Ok(()) };
    if *f == p.id {
        return Err(StoreError::Invalid("fallbackPrinterId must name another printer".into()));
    }
    match get(r, f)? {
        Some(other) if other.branch_id == p.branch_id => Ok(()),
        _ => Err(StoreError::Invalid(format!("fallbackPrinterId {f} is not a printer of this branch"))),
    }
}

fn desktop_taken(r: &Reader<'_>, p: &Printer) -> Result<bool, StoreError> {
    let Some((d, l)) = p.connection.desktop_ids() else { return Ok(false) };
    Ok(by_desktop(r, &p.branch_id, d, l)?.is_some_and(|other| other.id != p.id))
}

/// Adds a printer and broadcasts `printer:added`. `fields.name` and `fields.connection` are required.
pub fn add(tx: &mut Tx<'_>, company_id: &str, branch_id: &str, fields: Fields) -> Result<Printer, StoreError> {
    let connection = fields.connection.clone().ok_or_else(|| StoreError::Invalid("connection is required".into()))?;
    let now = now_rfc3339();
    let mut p = Printer {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        branch_id: branch_id.to_string(),
        company_id: company_id.to_string(),
        role: "receipt".into(),
        stations: vec![],
        paper_width: 80,
        status: initial_status(&connection).into(),
        connection,
        profile: None,
        checked_at: now.clone(),
        created_at: now,
        device_id: None,
        local_id: None,
        answers_status: false,
        fallback_printer_id: None,
        fallback_after_seconds: crate::domain::printer::DEFAULT_FALLBACK_AFTER_SECONDS,
    };
    fields.apply(&mut p);
    if p.name.is_empty() {
        return Err(StoreError::Invalid("name is required".into()));
    }
    check_fallback(tx, &p)?;
    if desktop_taken(tx, &p)? {
        return Err(StoreError::conflict("CONFLICT", "that desktop printer already exists"));
    }
    tx.conn.execute(
        "INSERT INTO printers (id, company_id, branch_id, name, role, stations, paper_width, connection, status, checked_at, created_at)
         VALUES (?1, ?2, ?3, '', '', '[]', 80, '{}', ?4, ?5, ?5)",
        params![p.id, p.company_id, p.branch_id, p.status, p.created_at],
    )?;
    write_row(tx.conn, &p)?;
    tx.emit(NS, "printer:added", (company_id, branch_id), serde_json::to_value(&p)?)?;
    Ok(p)
}

/// Applies `fields` to a printer and broadcasts `printerUpdate`.
pub fn update(tx: &mut Tx<'_>, mut p: Printer, fields: Fields) -> Result<Printer, StoreError> {
    let (old_kind, old_profile) = (p.connection.clone(), p.profile.clone());
    fields.apply(&mut p);
    if p.connection != old_kind {
        p.status = initial_status(&p.connection).into();
        p.checked_at = now_rfc3339();
    }
    if p.connection != old_kind || p.profile != old_profile {
        // Possibly another printer now: learn afresh whether it answers status requests.
        p.answers_status = false;
    }
    if desktop_taken(tx, &p)? {
        return Err(StoreError::conflict("CONFLICT", "that desktop printer already exists"));
    }
    check_fallback(tx, &p)?;
    write_row(tx.conn, &p)?;
    tx.emit(NS, "printerUpdate", (&p.company_id, &p.branch_id), serde_json::to_value(&p)?)?;
    Ok(p)
}

/// Removes a printer; its jobs that have not printed are cancelled.
pub fn remove(tx: &mut Tx<'_>, p: &Printer) -> Result<(), StoreError> {
    tx.conn.execute(
        "UPDATE print_jobs SET status = 'cancelled', last_error = 'printer removed', updated_at = ?2
         WHERE printer_id = ?1 AND status IN ('queued', 'printing')",
        params![p.id, now_rfc3339()],
    )?;
    tx.conn.execute("DELETE FROM printers WHERE id = ?1", params![&p.id])?;
    // Its alerts close with it: nothing waits on a printer that is gone.
    tx.conn
        .execute("UPDATE print_alerts SET resolved_at = ?2 WHERE printer_id = ?1 AND resolved_at IS NULL", params![p.id, now_rfc3339()])?;
    tx.emit(NS, "printerRemoved", (&p.company_id, &p.branch_id), json!({"printerId": p.id, "branchId": p.branch_id}))?;
    Ok(())
}

/// Records a status (and, when the printer itself `answered`, that it answers status
/// requests); broadcasts `printerStatusUpdate` only when the status changed.
pub fn set_status(tx: &mut Tx<'_>, p: &Printer, status: &str, detail: Option<&str>, answered: bool) -> Result<Option<Value>, StoreError> {
    let now = now_rfc3339();
    // Compared with the stored status, not the caller's copy (which may be older).
    let current: Option<String> = tx.conn.query_opt("SELECT status FROM printers WHERE id = ?1", params![&p.id], |r| r.get(0))?;
    tx.conn.execute(
        "UPDATE printers SET status = ?2, status_detail = ?3, checked_at = ?4, answers_status = MAX(answers_status, ?5)
         WHERE id = ?1",
        params![p.id, status, detail, now, answered],
    )?;
    if current.as_deref().unwrap_or(p.status.as_str()) == status {
        return Ok(None);
    }
    let mut payload = json!({"printerId": p.id, "status": status, "checkedAt": now, "branchId": p.branch_id});
    if let Some((d, l)) = p.connection.desktop_ids() {
        payload["deviceId"] = json!(d);
        payload["localId"] = json!(l);
    }
    if let Some(d) = detail {
        payload["detail"] = json!(d);
    }
    Ok(Some(tx.emit(NS, "printerStatusUpdate", (&p.company_id, &p.branch_id), payload)?))
}

pub fn status_detail(r: &Reader<'_>, id: &str) -> Result<Option<String>, StoreError> {
    let conn = r.conn;
    Ok(conn.query_opt("SELECT status_detail FROM printers WHERE id = ?1", params![id], |r| r.get(0))?.flatten())
}

/// Stores a printer exactly as a branch reports it (the hub's view of branch printers).
pub fn upsert_replica(tx: &Tx<'_>, p: &Printer) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute(
        "INSERT INTO printers (id, company_id, branch_id, name, role, stations, paper_width, connection, status, checked_at, created_at)
         VALUES (?1, ?2, ?3, '', '', '[]', 80, '{}', ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
        params![p.id, p.company_id, p.branch_id, p.status, p.checked_at, p.created_at],
    )?;
    write_row(conn, p)
}

pub fn replicate_status(tx: &Tx<'_>, id: &str, status: &str, checked_at: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute("UPDATE printers SET status = ?2, checked_at = ?3 WHERE id = ?1", params![id, status, checked_at])?;
    Ok(())
}

pub fn delete_replica(tx: &Tx<'_>, id: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute("DELETE FROM printers WHERE id = ?1", params![id])?;
    Ok(())
}
