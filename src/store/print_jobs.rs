//! Print-job rows: the durable queue. Every change is written with its `printJobUpdate`
//! broadcast; alerts (`printAlert`) are written with the change that raises them.

use super::sql::{Row, params};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Page, Reader, StoreError, Tx, now_rfc3339};

pub const NS: &str = "/printing-ws";
/// Kitchen tickets not printed within this time raise an alert instead of printing late.
pub const KITCHEN_EXPIRY_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub company_id: String,
    pub branch_id: String,
    pub printer_id: String,
    pub kind: String,
    pub order_id: Option<String>,
    pub station: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub uncertain: bool,
    pub reprint_of: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub printed_at: Option<String>,
    /// The printer's name this ticket was moved from (printed as `MOVED FROM <printer>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
    #[serde(skip)]
    pub next_attempt_ms: i64,
    #[serde(skip)]
    pub expires_at_ms: Option<i64>,
}

const COLUMNS: &str = "seq, id, company_id, branch_id, printer_id, kind, order_id, station, status, attempts, uncertain, reprint_of, \
                       last_error, created_at, updated_at, printed_at, data, next_attempt_ms, expires_at_ms, moved_from";

fn from_row(r: &Row<'_>) -> Result<(i64, Job), StoreError> {
    Ok((
        r.get(0)?,
        Job {
            id: r.get(1)?,
            company_id: r.get(2)?,
            branch_id: r.get(3)?,
            printer_id: r.get(4)?,
            kind: r.get(5)?,
            order_id: r.get(6)?,
            station: r.get(7)?,
            status: r.get(8)?,
            attempts: r.get(9)?,
            uncertain: r.get(10)?,
            reprint_of: r.get(11)?,
            last_error: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
            printed_at: r.get(15)?,
            data: r.get(16)?,
            next_attempt_ms: r.get(17)?,
            expires_at_ms: r.get(18)?,
            moved_from: r.get(19)?,
        },
    ))
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A job to enqueue.
pub struct NewJob<'a> {
    pub company_id: &'a str,
    pub branch_id: &'a str,
    pub printer_id: &'a str,
    pub kind: &'a str,
    pub order_id: Option<&'a str>,
    pub station: Option<&'a str>,
    pub data: Option<&'a [u8]>,
    pub reprint_of: Option<&'a str>,
}

fn update_payload(j: &Job) -> Value {
    let mut v = serde_json::to_value(j).unwrap_or(Value::Null);
    v["jobId"] = json!(j.id);
    v
}

fn announce(tx: &mut Tx<'_>, j: &Job) -> Result<(), StoreError> {
    tx.emit(NS, "printJobUpdate", (&j.company_id, &j.branch_id), update_payload(j))?;
    Ok(())
}

/// The `printing` of an order (SPEC §3): `{state, jobs: [{id, printerId, kind, status}]}`.
/// `attention`: a job failed or expired (and was not reprinted or moved since), or waits on
/// a printer with an open stall alert.
pub fn order_printing(r: &Reader<'_>, order_id: &str) -> Result<Value, StoreError> {
    let conn = r.conn;
    let sql = "SELECT j.id, j.printer_id, j.kind, j.status,
                EXISTS (SELECT 1 FROM print_jobs r WHERE r.reprint_of = j.id AND r.status NOT IN ('failed', 'expired', 'cancelled')),
                EXISTS (SELECT 1 FROM print_alerts a WHERE a.printer_id = j.printer_id AND a.type = 'printer_stalled'
                                                        AND a.resolved_at IS NULL)
         FROM print_jobs j WHERE j.order_id = ?1 AND j.kind != 'test' ORDER BY j.seq";
    let (mut jobs, mut attention, mut pending, mut printed) = (Vec::new(), false, false, false);
    conn.each(sql, params![order_id], |r| {
        let (id, printer, kind, status): (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (reprinted, stalled): (bool, bool) = (r.get(4)?, r.get(5)?);
        match status.as_str() {
            "failed" | "expired" if !reprinted => attention = true,
            "queued" | "printing" if stalled => attention = true,
            "queued" | "printing" => pending = true,
            "printed" => printed = true,
            _ => {}
        }
        jobs.push(json!({"id": id, "printerId": printer, "kind": kind, "status": status}));
        Ok(true)
    })?;
    let state = if attention {
        "attention"
    } else if pending {
        "pending"
    } else if printed {
        "printed"
    } else {
        "none"
    };
    Ok(json!({"state": state, "jobs": jobs}))
}

/// Broadcasts `orderPrintingUpdate` `{orderId, printing}` on `/orders` when an order's
/// `printing` differs from `before`.
pub fn announce_order(tx: &mut Tx<'_>, order_id: &str, before: Option<&Value>) -> Result<(), StoreError> {
    let now = order_printing(tx, order_id)?;
    if before == Some(&now) {
        return Ok(());
    }
    let Some(o) = super::orders::get(tx, order_id)? else { return Ok(()) };
    let payload = json!({"orderId": order_id, "printing": now, "branchId": o.branch_id});
    tx.emit(super::orders::NS, "orderPrintingUpdate", (&o.company_id, &o.branch_id), payload)?;
    Ok(())
}

/// The orders with tickets waiting on a printer.
pub fn orders_waiting_on(r: &Reader<'_>, printer_id: &str) -> Result<Vec<String>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map(
        "SELECT DISTINCT order_id FROM print_jobs WHERE printer_id = ?1 AND status IN ('queued', 'printing') AND order_id IS NOT NULL",
        params![printer_id],
        |r| r.get(0),
    )?;
    Ok(rows)
}

/// Runs `f` and re-announces the `printing` of each of `orders` that it changed.
pub fn with_order_updates<T>(
    tx: &mut Tx<'_>,
    orders: &[String],
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let before: Vec<Value> = orders.iter().map(|o| order_printing(tx, o)).collect::<Result<_, _>>()?;
    let out = f(tx)?;
    for (o, b) in orders.iter().zip(&before) {
        announce_order(tx, o, Some(b))?;
    }
    Ok(out)
}

/// How many tickets wait on a printer, and when the oldest was queued (ms since the epoch).
pub fn waiting(r: &Reader<'_>, printer_id: &str) -> Result<(i64, Option<String>), StoreError> {
    let conn = r.conn;
    conn.query_row(
        "SELECT COUNT(*), MIN(created_at) FROM print_jobs WHERE printer_id = ?1 AND status IN ('queued', 'printing') AND kind != 'test'",
        params![printer_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

pub fn enqueue(tx: &mut Tx<'_>, new: NewJob<'_>) -> Result<Job, StoreError> {
    let before = match new.order_id {
        Some(o) if new.kind != "test" => Some(order_printing(tx, o)?),
        _ => None,
    };
    let job = insert(tx, new)?;
    if let (Some(o), Some(b)) = (&job.order_id, &before) {
        announce_order(tx, o, Some(b))?;
    }
    Ok(job)
}

/// Inserts and announces a job (no `orderPrintingUpdate`: a new order carries its `printing`).
fn insert(tx: &mut Tx<'_>, new: NewJob<'_>) -> Result<Job, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_rfc3339();
    let expires = (new.kind == "kitchen").then(|| now_ms() + KITCHEN_EXPIRY_MS);
    tx.conn.execute(
        "INSERT INTO print_jobs (id, company_id, branch_id, printer_id, kind, order_id, station, data, status, reprint_of,
                                 expires_at_ms, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10, ?11, ?11)",
        params![
            id,
            new.company_id,
            new.branch_id,
            new.printer_id,
            new.kind,
            new.order_id,
            new.station,
            new.data,
            new.reprint_of,
            expires,
            now
        ],
    )?;
    let job = get(tx, &id)?.ok_or_else(|| StoreError::Corrupt("inserted job vanished".into()))?;
    announce(tx, &job)?;
    Ok(job)
}

pub fn get(r: &Reader<'_>, id: &str) -> Result<Option<Job>, StoreError> {
    let conn = r.conn;
    Ok(conn.query_opt(&format!("SELECT {COLUMNS} FROM print_jobs WHERE id = ?1"), params![id], from_row)?.map(|(_, j)| j))
}

/// The printer's next job in FIFO order (`printing` ones first: they were interrupted).
pub fn next_for_printer(r: &Reader<'_>, printer_id: &str) -> Result<Option<Job>, StoreError> {
    let conn = r.conn;
    Ok(conn
        .query_opt(
            &format!("SELECT {COLUMNS} FROM print_jobs WHERE printer_id = ?1 AND status IN ('queued', 'printing') ORDER BY seq LIMIT 1"),
            params![printer_id],
            from_row,
        )?
        .map(|(_, j)| j))
}

/// Printers with pending work.
pub fn printers_with_work(r: &Reader<'_>) -> Result<Vec<String>, StoreError> {
    let conn = r.conn;
    let rows =
        conn.query_map("SELECT DISTINCT printer_id FROM print_jobs WHERE status IN ('queued', 'printing')", params![], |r| r.get(0))?;
    Ok(rows)
}

fn set(tx: &mut Tx<'_>, id: &str, sql: &str, args: &[&dyn super::sql::Param]) -> Result<Job, StoreError> {
    let order = get(tx, id)?.and_then(|j| j.order_id.filter(|_| j.kind != "test"));
    let before = order.as_deref().map(|o| order_printing(tx, o)).transpose()?;
    let mut all: Vec<&dyn super::sql::Param> = vec![&id];
    all.extend_from_slice(args);
    let n = tx.conn.execute(sql, all.as_slice())?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("print job {id} not found")));
    }
    let job = get(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("print job {id} not found")))?;
    announce(tx, &job)?;
    if let Some(o) = &order {
        announce_order(tx, o, before.as_ref())?;
    }
    Ok(job)
}

/// Recorded before the first byte is sent: a crash from here on makes delivery uncertain.
/// Only while the job is still this printer's and not finished: a job moved to another
/// printer (or cancelled) meanwhile is `NotFound`, and the worker leaves it alone.
pub fn mark_printing(tx: &mut Tx<'_>, id: &str, printer_id: &str) -> Result<Job, StoreError> {
    let now = now_rfc3339();
    set(
        tx,
        id,
        "UPDATE print_jobs SET status = 'printing', attempts = attempts + 1, updated_at = ?2
         WHERE id = ?1 AND printer_id = ?3 AND status IN ('queued', 'printing')",
        &[&now, &printer_id],
    )
}

/// Moves the tickets waiting on `from` to `to` (not the one being printed, not test pages):
/// they keep their ids, print next on `to` with a `MOVED FROM <from>` line, and their
/// `job_expired` alerts are resolved. Returns the moved jobs.
pub fn move_jobs(
    tx: &mut Tx<'_>,
    from: &crate::domain::printer::Printer,
    to: &crate::domain::printer::Printer,
) -> Result<Vec<Job>, StoreError> {
    let ids: Vec<String> = {
        let sql = "SELECT id FROM print_jobs WHERE printer_id = ?1 AND status = 'queued' AND kind != 'test' ORDER BY seq";
        tx.conn.query_map(sql, params![&from.id], |r| r.get(0))?
    };
    let mut moved = Vec::with_capacity(ids.len());
    let now = now_rfc3339();
    for id in ids {
        let j = set(
            tx,
            &id,
            "UPDATE print_jobs SET printer_id = ?2, moved_from = COALESCE(moved_from, ?3), next_attempt_ms = 0, updated_at = ?4
             WHERE id = ?1 AND status = 'queued'",
            &[&to.id, &from.name, &now],
        )?;
        super::print_alerts::resolve_for_job(tx, &id)?;
        moved.push(j);
    }
    Ok(moved)
}

/// Makes every ticket waiting on a printer due now (`POST /api/printers/{id}/retry`).
pub fn retry_now(tx: &mut Tx<'_>, printer_id: &str) -> Result<usize, StoreError> {
    tx.conn.execute("UPDATE print_jobs SET next_attempt_ms = 0 WHERE printer_id = ?1 AND status = 'queued'", params![printer_id])
}

/// `note`: set when the printer could not confirm the job (it was sent in full).
pub fn mark_printed(tx: &mut Tx<'_>, id: &str, note: Option<&str>) -> Result<Job, StoreError> {
    let now = now_rfc3339();
    set(tx, id, "UPDATE print_jobs SET status = 'printed', last_error = ?3, updated_at = ?2, printed_at = ?2 WHERE id = ?1", &[&now, &note])
}

/// Back to the queue after a failed attempt; `uncertain` once any attempt may have printed.
pub fn mark_retry(tx: &mut Tx<'_>, id: &str, uncertain: bool, error: &str, next_attempt_ms: i64) -> Result<Job, StoreError> {
    let now = now_rfc3339();
    set(
        tx,
        id,
        "UPDATE print_jobs SET status = 'queued', uncertain = (uncertain OR ?2), last_error = ?3, next_attempt_ms = ?4, updated_at = ?5
         WHERE id = ?1",
        &[&uncertain, &error, &next_attempt_ms, &now],
    )
}

pub fn mark_final(tx: &mut Tx<'_>, id: &str, status: &str, error: &str) -> Result<Job, StoreError> {
    let now = now_rfc3339();
    set(tx, id, "UPDATE print_jobs SET status = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1", &[&status, &error, &now])
}

/// Cancels a job that has not started printing; `false` if it already did.
pub fn cancel_if_queued(tx: &mut Tx<'_>, id: &str, why: &str) -> Result<bool, StoreError> {
    let now = now_rfc3339();
    let n = tx.conn.execute(
        "UPDATE print_jobs SET status = 'cancelled', last_error = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'queued'",
        params![id, why, now],
    )?;
    if n == 1
        && let Some(j) = get(tx, id)?
    {
        announce(tx, &j)?;
    }
    Ok(n == 1)
}

/// `printAlert` `{id, type, message, ...}` for staff (e.g. `job_expired`,
/// `no_printer_for_station`), stored with the change that raises it (see `print_alerts`).
pub fn alert(tx: &mut Tx<'_>, company: &str, branch: &str, kind: &str, message: &str, extra: Value) -> Result<(), StoreError> {
    let field = |k: &str| extra.get(k).and_then(Value::as_str).map(str::to_string);
    let (printer, order, job) = (field("printerId"), field("orderId"), field("jobId"));
    super::print_alerts::raise(
        tx,
        super::print_alerts::NewAlert {
            company_id: company,
            branch_id: branch,
            kind,
            severity: "warning",
            printer_id: printer.as_deref(),
            order_id: order.as_deref(),
            job_id: job.as_deref(),
            message,
            extra,
            resolved: false,
        },
    )?;
    Ok(())
}

/// After a crash: jobs caught mid-print go back to the queue, marked uncertain.
pub fn recover_interrupted(tx: &Tx<'_>) -> Result<usize, StoreError> {
    let conn = tx.conn;
    conn.execute(
        "UPDATE print_jobs SET status = 'queued', uncertain = 1, last_error = 'interrupted while printing', next_attempt_ms = 0
         WHERE status = 'printing'",
        params![],
    )
}

pub struct Filter {
    pub branches: Option<Vec<String>>,
    pub status: Option<String>,
    pub printer_id: Option<String>,
    /// The cursor's position: jobs after it (oldest first) or before it (`newest_first`).
    pub after_seq: i64,
    pub limit: usize,
    pub newest_first: bool,
}

pub fn list(r: &Reader<'_>, f: &Filter) -> Result<Page<Job>, StoreError> {
    let conn = r.conn;
    const WHERE: &str = "(?2 IS NULL OR status = ?2) AND (?3 IS NULL OR printer_id = ?3)";
    let (sql, from) = if f.newest_first {
        // No cursor yet (0): start from the newest job.
        let before = if f.after_seq == 0 { i64::MAX } else { f.after_seq };
        (format!("SELECT {COLUMNS} FROM print_jobs WHERE seq < ?1 AND {WHERE} ORDER BY seq DESC"), before)
    } else {
        (format!("SELECT {COLUMNS} FROM print_jobs WHERE seq > ?1 AND {WHERE} ORDER BY seq"), f.after_seq)
    };
    let mut rows = Vec::new();
    conn.each(&sql, params![from, f.status, f.printer_id], |row| {
        let (seq, j) = from_row(row)?;
        if f.branches.as_ref().is_none_or(|b| b.contains(&j.branch_id)) {
            rows.push((seq, j));
        }
        Ok(rows.len() <= f.limit)
    })?;
    Ok(Page::from_rows(rows, f.limit))
}

/// Queues the tickets and receipt of a new order, in the order's own transaction; raises an
/// alert for each station no printer serves.
pub fn route_order(tx: &mut Tx<'_>, order: &crate::orders::Order) -> Result<usize, StoreError> {
    let printers = super::printers::list(tx, Some(std::slice::from_ref(&order.branch_id)), 0, 1000)?.items;
    let plan = crate::domain::routing::plan(order, &printers);
    let (company, branch) = (order.company_id.as_str(), order.branch_id.as_str());
    let mut queued = 0;
    for (printer, station) in &plan.kitchen {
        let new = NewJob {
            company_id: company,
            branch_id: branch,
            printer_id: printer,
            kind: "kitchen",
            order_id: Some(&order.id),
            station: station.as_deref(),
            data: None,
            reprint_of: None,
        };
        insert(tx, new)?;
        queued += 1;
    }
    if let Some(printer) = &plan.receipt {
        let new = NewJob {
            company_id: company,
            branch_id: branch,
            printer_id: printer,
            kind: "receipt",
            order_id: Some(&order.id),
            station: None,
            data: None,
            reprint_of: None,
        };
        insert(tx, new)?;
        queued += 1;
    }
    for station in &plan.unserved {
        let msg = match station {
            Some(s) => format!("order #{} has items for station '{s}', but no kitchen printer serves it", order.number),
            None => format!(
                "order #{} has items without a station, but no kitchen printer takes every item: give them a station or add a kitchen printer without stations",
                order.number
            ),
        };
        alert(tx, company, branch, "no_printer_for_station", &msg, json!({"station": station, "orderId": order.id}))?;
    }
    Ok(queued)
}
