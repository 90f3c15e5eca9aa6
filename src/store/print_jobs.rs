//! Print-job rows: the durable queue. Every change is written with its `printJobUpdate`
//! broadcast; alerts (`printAlert`) are written with the change that raises them.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Page, StoreError, Tx, now_rfc3339};

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
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
    #[serde(skip)]
    pub next_attempt_ms: i64,
    #[serde(skip)]
    pub expires_at_ms: Option<i64>,
}

const COLUMNS: &str = "seq, id, company_id, branch_id, printer_id, kind, order_id, station, status, attempts, uncertain, reprint_of, \
                       last_error, created_at, updated_at, printed_at, data, next_attempt_ms, expires_at_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Job)> {
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

pub fn enqueue(tx: &mut Tx<'_>, new: NewJob<'_>) -> Result<Job, StoreError> {
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
    let job = get(tx.conn, &id)?.ok_or_else(|| StoreError::Corrupt("inserted job vanished".into()))?;
    announce(tx, &job)?;
    Ok(job)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM print_jobs WHERE id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?.map(|(_, j)| j))
}

/// The printer's next job in FIFO order (`printing` ones first: they were interrupted).
pub fn next_for_printer(conn: &Connection, printer_id: &str) -> Result<Option<Job>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM print_jobs WHERE printer_id = ?1 AND status IN ('queued', 'printing') ORDER BY seq LIMIT 1"
    ))?;
    Ok(stmt.query_row([printer_id], from_row).optional()?.map(|(_, j)| j))
}

/// Printers with pending work.
pub fn printers_with_work(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT printer_id FROM print_jobs WHERE status IN ('queued', 'printing')")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn set(tx: &mut Tx<'_>, id: &str, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Job, StoreError> {
    let mut all: Vec<&dyn rusqlite::ToSql> = vec![&id];
    all.extend_from_slice(args);
    let n = tx.conn.execute(sql, all.as_slice())?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("print job {id} not found")));
    }
    let job = get(tx.conn, id)?.ok_or_else(|| StoreError::NotFound(format!("print job {id} not found")))?;
    announce(tx, &job)?;
    Ok(job)
}

/// Recorded before the first byte is sent: a crash from here on makes delivery uncertain.
pub fn mark_printing(tx: &mut Tx<'_>, id: &str) -> Result<Job, StoreError> {
    let now = now_rfc3339();
    set(tx, id, "UPDATE print_jobs SET status = 'printing', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1", &[&now])
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
        && let Some(j) = get(tx.conn, id)?
    {
        announce(tx, &j)?;
    }
    Ok(n == 1)
}

/// `printAlert` `{type, message, ...}` for staff (e.g. `job_expired`, `no_printer_for_station`).
pub fn alert(tx: &mut Tx<'_>, company: &str, branch: &str, kind: &str, message: &str, extra: Value) -> Result<(), StoreError> {
    let mut v = json!({"type": kind, "severity": "warning", "message": message, "branchId": branch, "raisedAt": now_rfc3339()});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    tx.emit(NS, "printAlert", (company, branch), v)?;
    Ok(())
}

/// After a crash: jobs caught mid-print go back to the queue, marked uncertain.
pub fn recover_interrupted(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE print_jobs SET status = 'queued', uncertain = 1, last_error = 'interrupted while printing', next_attempt_ms = 0
         WHERE status = 'printing'",
        [],
    )?)
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

pub fn list(conn: &Connection, f: &Filter) -> Result<Page<Job>, StoreError> {
    const WHERE: &str = "(?2 IS NULL OR status = ?2) AND (?3 IS NULL OR printer_id = ?3)";
    let (sql, from) = if f.newest_first {
        // No cursor yet (0): start from the newest job.
        let before = if f.after_seq == 0 { i64::MAX } else { f.after_seq };
        (format!("SELECT {COLUMNS} FROM print_jobs WHERE seq < ?1 AND {WHERE} ORDER BY seq DESC"), before)
    } else {
        (format!("SELECT {COLUMNS} FROM print_jobs WHERE seq > ?1 AND {WHERE} ORDER BY seq"), f.after_seq)
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = Vec::new();
    for row in stmt.query_map(params![from, f.status, f.printer_id], from_row)? {
        let (seq, j) = row?;
        if f.branches.as_ref().is_none_or(|b| b.contains(&j.branch_id)) {
            rows.push((seq, j));
            if rows.len() > f.limit {
                break;
            }
        }
    }
    Ok(Page::from_rows(rows, f.limit))
}

/// Queues the tickets and receipt of a new order, in the order's own transaction; raises an
/// alert for each station no printer serves.
pub fn route_order(tx: &mut Tx<'_>, order: &crate::orders::Order) -> Result<usize, StoreError> {
    let printers = super::printers::list(tx.conn, Some(std::slice::from_ref(&order.branch_id)), 0, 1000)?.items;
    let plan = crate::printing::routing::plan(order, &printers);
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
        enqueue(tx, new)?;
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
        enqueue(tx, new)?;
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
