//! Print alerts (SPEC §4 "Print alerts"): stored rows, each written with its `printAlert`
//! broadcast to the branch and company rooms of `/printing-ws` and `/orders`. A
//! `printer_stalled` alert stays open until `printer_recovered` closes it; a `job_expired`
//! one until its job is reprinted or moved. Acks mark an alert seen, not resolved.
//! Must not decide when a printer is stalled: the print queue does, this only records it.

use super::sql::{Row, params};
use serde_json::{Value, json};

use super::{Reader, StoreError, Tx, now_rfc3339};

/// Print alerts go to both: the printing screens and the order screens.
pub const NAMESPACES: [&str; 2] = ["/printing-ws", "/orders"];

/// What a new alert is about.
pub struct NewAlert<'a> {
    pub company_id: &'a str,
    pub branch_id: &'a str,
    pub kind: &'a str,
    pub severity: &'a str,
    pub printer_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub message: &'a str,
    /// Extra payload fields (`status`, `waitingJobs`, `station`, ...).
    pub extra: Value,
    /// Stored already resolved (`printer_recovered` closes, it is never open itself).
    pub resolved: bool,
}

fn emit_both(tx: &mut Tx<'_>, name: &str, company: &str, branch: &str, payload: &Value) -> Result<(), StoreError> {
    for ns in NAMESPACES {
        tx.emit(ns, name, (company, branch), payload.clone())?;
    }
    Ok(())
}

/// Stores an alert and broadcasts it as `printAlert`; returns its payload.
pub fn raise(tx: &mut Tx<'_>, a: NewAlert<'_>) -> Result<Value, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_rfc3339();
    let mut v = json!({
        "id": id,
        "alertId": id,
        "type": a.kind,
        "severity": a.severity,
        "branchId": a.branch_id,
        "message": a.message,
        "raisedAt": now,
    });
    if let Some(p) = a.printer_id {
        v["printerId"] = json!(p);
    }
    if let Some(o) = a.order_id {
        v["orderId"] = json!(o);
    }
    if let Some(j) = a.job_id {
        v["jobId"] = json!(j);
    }
    if let (Value::Object(m), Value::Object(e)) = (&mut v, a.extra) {
        for (k, x) in e {
            m.entry(k).or_insert(x);
        }
    }
    tx.conn.execute(
        "INSERT INTO print_alerts (id, company_id, branch_id, type, severity, printer_id, order_id, job_id, message, data, raised_at, resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, CASE WHEN ?12 THEN ?11 END)",
        params![id, a.company_id, a.branch_id, a.kind, a.severity, a.printer_id, a.order_id, a.job_id, a.message, v.to_string(), now, a.resolved],
    )?;
    emit_both(tx, "printAlert", a.company_id, a.branch_id, &v)?;
    Ok(v)
}

/// The open `printer_stalled` alert of a printer, if any (its id).
pub fn open_stall(r: &Reader<'_>, printer_id: &str) -> Result<Option<String>, StoreError> {
    let conn = r.conn;
    conn.query_opt(
        "SELECT id FROM print_alerts WHERE printer_id = ?1 AND type = 'printer_stalled' AND resolved_at IS NULL ORDER BY seq DESC LIMIT 1",
        params![printer_id],
        |r| r.get(0),
    )
}

/// Closes a printer's open stall alert (if it has one) and broadcasts `printer_recovered`.
/// Returns the recovered alert's payload when there was one to close.
pub fn recover(tx: &mut Tx<'_>, company: &str, branch: &str, printer_id: &str, printer_name: &str) -> Result<Option<Value>, StoreError> {
    let Some(stalled) = open_stall(tx, printer_id)? else { return Ok(None) };
    tx.conn.execute("UPDATE print_alerts SET resolved_at = ?2 WHERE id = ?1", params![stalled, now_rfc3339()])?;
    let message = format!("printer {printer_name} prints again");
    let v = raise(
        tx,
        NewAlert {
            company_id: company,
            branch_id: branch,
            kind: "printer_recovered",
            severity: "info",
            printer_id: Some(printer_id),
            order_id: None,
            job_id: None,
            message: &message,
            extra: json!({"resolves": stalled, "printerName": printer_name}),
            resolved: true,
        },
    )?;
    Ok(Some(v))
}

/// Resolves the `job_expired` alerts of a job (it was reprinted or moved).
pub fn resolve_for_job(tx: &Tx<'_>, job_id: &str) -> Result<usize, StoreError> {
    let conn = tx.conn;
    conn.execute(
        "UPDATE print_alerts SET resolved_at = ?2 WHERE job_id = ?1 AND type = 'job_expired' AND resolved_at IS NULL",
        params![job_id, now_rfc3339()],
    )
}

fn from_row(r: &Row<'_>) -> Result<Value, StoreError> {
    let data: String = r.get(0)?;
    let mut v: Value = serde_json::from_str(&data).unwrap_or_else(|_| json!({}));
    let resolved: Option<String> = r.get(1)?;
    let acked: Option<String> = r.get(2)?;
    let by: Option<String> = r.get(3)?;
    v["open"] = json!(resolved.is_none());
    v["resolvedAt"] = json!(resolved);
    v["ackedAt"] = json!(acked);
    v["ackedBy"] = json!(by);
    Ok(v)
}

/// Alerts of `branches` (`None`: every branch), newest first, at most `limit`.
pub fn list(r: &Reader<'_>, branches: Option<&[String]>, open_only: bool, limit: usize) -> Result<Vec<Value>, StoreError> {
    let conn = r.conn;
    let mut out = Vec::new();
    let sql = "SELECT data, resolved_at, acked_at, acked_by, branch_id FROM print_alerts
         WHERE (?1 = 0 OR resolved_at IS NULL) ORDER BY seq DESC";
    conn.each(sql, params![open_only], |r| {
        let branch: String = r.get(4)?;
        if branches.is_some_and(|b| !b.contains(&branch)) {
            return Ok(true);
        }
        out.push(from_row(r)?);
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// One alert with its branch and company (for the caller's access check).
pub fn get(r: &Reader<'_>, id: &str) -> Result<Option<(String, String, Value)>, StoreError> {
    let conn = r.conn;
    conn.query_opt(
        "SELECT data, resolved_at, acked_at, acked_by, company_id, branch_id FROM print_alerts WHERE id = ?1",
        params![id],
        |r| Ok((r.get(4)?, r.get(5)?, from_row(r)?)),
    )
}

/// Marks an alert seen and broadcasts `printAlertAck`; acking twice keeps the first ack.
pub fn ack(tx: &mut Tx<'_>, id: &str, by: &str) -> Result<Value, StoreError> {
    let Some((company, branch, _)) = get(tx, id)? else {
        return Err(StoreError::NotFound(format!("alert {id} not found")));
    };
    let now = now_rfc3339();
    tx.conn.execute(
        "UPDATE print_alerts SET acked_at = COALESCE(acked_at, ?2), acked_by = COALESCE(acked_by, ?3) WHERE id = ?1",
        params![id, now, by],
    )?;
    let (_, _, alert) = get(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("alert {id} not found")))?;
    let payload = json!({"id": id, "alertId": id, "branchId": branch, "ackedAt": alert["ackedAt"], "ackedBy": alert["ackedBy"]});
    emit_both(tx, "printAlertAck", &company, &branch, &payload)?;
    Ok(alert)
}

/// Open `printer_stalled` alerts (for `/health`): their payloads.
pub fn open_stalls(r: &Reader<'_>) -> Result<Vec<Value>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map("SELECT data, resolved_at, acked_at, acked_by FROM print_alerts WHERE type = 'printer_stalled' AND resolved_at IS NULL ORDER BY seq", params![], from_row)?;
    Ok(rows)
}

/// Stores an alert exactly as a branch reported it (the hub's copy), idempotently.
pub fn upsert_replica(tx: &Tx<'_>, company: &str, branch: &str, v: &Value) -> Result<(), StoreError> {
    let conn = tx.conn;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let id = s("id").ok_or_else(|| StoreError::Invalid("alert id missing".into()))?;
    conn.execute(
        "INSERT INTO print_alerts (id, company_id, branch_id, type, severity, printer_id, order_id, job_id, message, data, raised_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(id) DO NOTHING",
        params![
            id,
            company,
            branch,
            s("type").unwrap_or_default(),
            s("severity").unwrap_or_else(|| "warning".into()),
            s("printerId"),
            s("orderId"),
            s("jobId"),
            s("message").unwrap_or_default(),
            v.to_string(),
            s("raisedAt").unwrap_or_else(now_rfc3339),
        ],
    )?;
    if s("type").as_deref() == Some("printer_recovered") {
        let at = s("raisedAt").unwrap_or_else(now_rfc3339);
        conn.execute("UPDATE print_alerts SET resolved_at = COALESCE(resolved_at, ?2) WHERE id = ?1", params![id, at])?;
        if let Some(stalled) = s("resolves") {
            conn.execute(
                "UPDATE print_alerts SET resolved_at = COALESCE(resolved_at, ?3) WHERE id = ?1 AND branch_id = ?2",
                params![stalled, branch, at],
            )?;
        }
    }
    Ok(())
}

/// Applies an ack a branch reported (the hub's copy).
pub fn replicate_ack(tx: &Tx<'_>, branch: &str, id: &str, at: &str, by: Option<&str>) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute(
        "UPDATE print_alerts SET acked_at = COALESCE(acked_at, ?3), acked_by = COALESCE(acked_by, ?4) WHERE id = ?1 AND branch_id = ?2",
        params![id, branch, at, by],
    )?;
    Ok(())
}
