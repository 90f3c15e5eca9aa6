//! Orders: rows, numbering, transitions; each change stored with its broadcast.

use super::sql::{Row, params};
use serde_json::{Value, json};

use super::{Page, Reader, StoreError, Tx, now_rfc3339};
use crate::orders::{NewOrder, Order, Status};

pub const NS: &str = "/orders";

const COLUMNS: &str = "seq, id, company_id, branch_id, number, type, status, items, subtotal, total, customer, notes, driver, cancel_reason, created_at, updated_at, printing";

fn json_col(r: &Row<'_>, i: usize) -> Result<Option<Value>, StoreError> {
    let s: Option<String> = r.get(i)?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
}

fn from_row(r: &Row<'_>) -> Result<(i64, Order), StoreError> {
    let status: String = r.get(6)?;
    let items: String = r.get(7)?;
    Ok((
        r.get(0)?,
        Order {
            id: r.get(1)?,
            company_id: r.get(2)?,
            branch_id: r.get(3)?,
            number: r.get(4)?,
            order_type: r.get(5)?,
            status: Status::parse(&status).unwrap_or(Status::Pending),
            items: serde_json::from_str(&items).unwrap_or_default(),
            subtotal: r.get(8)?,
            total: r.get(9)?,
            customer: json_col(r, 10)?,
            notes: r.get(11)?,
            driver: json_col(r, 12)?,
            cancel_reason: r.get(13)?,
            created_at: r.get(14)?,
            updated_at: r.get(15)?,
            printing: json_col(r, 16)?,
        },
    ))
}

/// An order with its `printing`.
pub fn get(r: &Reader<'_>, id: &str) -> Result<Option<Order>, StoreError> {
    let conn = r.conn;
    let Some((_, mut o)) = conn.query_opt(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?1"), params![id], from_row)? else {
        return Ok(None);
    };
    fill_printing(r, &mut o)?;
    Ok(Some(o))
}

/// An order's `printing`: worked out from its print jobs, or (at the hub) as its branch
/// last reported it.
fn fill_printing(r: &Reader<'_>, o: &mut Order) -> Result<(), StoreError> {
    if o.printing.is_none() {
        o.printing = Some(super::print_jobs::order_printing(r, &o.id)?);
    }
    Ok(())
}

/// Whether `create` made a new order or returned the one an earlier identical call made.
pub enum Created {
    New(Order),
    Existing(Order),
}

/// Creates an order (or returns the earlier one for the same client id and body).
/// `print`: queue its tickets and receipt on this appliance's printers (a branch does; a hub
/// only holds copies of its branches' printers and never prints on them).
pub fn create(tx: &mut Tx<'_>, company_id: &str, new: &NewOrder, business_day: &str, print: bool) -> Result<Created, StoreError> {
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(new.canonical.as_bytes()));
    if let Some(id) = &new.id {
        let prior: Option<(Option<String>, String)> =
            tx.conn.query_opt("SELECT request_hash, branch_id FROM orders WHERE id = ?1", params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if let Some((prior_hash, _)) = prior {
            if prior_hash.as_deref() == Some(hash.as_str()) {
                let order = get(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("order {id} not found")))?;
                return Ok(Created::Existing(order));
            }
            return Err(StoreError::conflict("IDEMPOTENCY_CONFLICT", format!("order id {id} was already used with another body")));
        }
    }
    let number: i64 = tx.conn.query_row(
        "INSERT INTO order_numbers (branch_id, business_day, last_number) VALUES (?1, ?2, 1)
         ON CONFLICT(branch_id, business_day) DO UPDATE SET last_number = order_numbers.last_number + 1
         RETURNING last_number",
        params![new.branch_id, business_day],
        |r| r.get(0),
    )?;
    let now = now_rfc3339();
    let subtotal = new.subtotal();
    let order = Order {
        id: new.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        number,
        company_id: company_id.to_string(),
        branch_id: new.branch_id.clone(),
        order_type: new.order_type.clone(),
        status: Status::Pending,
        items: new.items.clone(),
        subtotal,
        total: subtotal,
        customer: new.customer.clone(),
        notes: new.notes.clone(),
        driver: None,
        cancel_reason: None,
        created_at: now.clone(),
        updated_at: now,
        printing: None,
    };
    tx.conn.execute(
        "INSERT INTO orders (id, company_id, branch_id, number, business_day, type, status, items, subtotal, total,
                             customer, notes, request_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        params![
            order.id,
            order.company_id,
            order.branch_id,
            number,
            business_day,
            order.order_type,
            serde_json::to_string(&order.items)?,
            subtotal,
            subtotal,
            order.customer.as_ref().map(Value::to_string),
            order.notes,
            new.id.as_ref().map(|_| hash.clone()),
            order.created_at,
        ],
    )?;
    // Its tickets are queued first, so that `newOrder` carries the order's `printing`.
    if print {
        super::print_jobs::route_order(tx, &order)?;
    }
    let mut order = order;
    order.printing = Some(super::print_jobs::order_printing(tx, &order.id)?);
    tx.emit(NS, "newOrder", (&order.company_id, &order.branch_id), serde_json::to_value(&order)?)?;
    Ok(Created::New(order))
}

/// Loads an order for a change, after `visible` confirms the caller may see it.
fn load(r: &Reader<'_>, id: &str, visible: &dyn Fn(&Order) -> bool) -> Result<Order, StoreError> {
    get(r, id)?.filter(|o| visible(o)).ok_or_else(|| StoreError::NotFound(format!("order {id} not found")))
}

pub fn set_status(tx: &mut Tx<'_>, id: &str, status: Status, visible: &dyn Fn(&Order) -> bool) -> Result<Order, StoreError> {
    let mut o = load(tx, id, visible)?;
    if !o.status.next(&o.order_type).contains(&status) {
        return Err(StoreError::conflict("INVALID_TRANSITION", format!("cannot go from {} to {}", o.status.as_str(), status.as_str())));
    }
    let previous = o.status;
    o.status = status;
    o.updated_at = now_rfc3339();
    tx.conn.execute("UPDATE orders SET status = ?2, updated_at = ?3 WHERE id = ?1", params![o.id, status.as_str(), o.updated_at])?;
    let payload =
        json!({"orderId": o.id, "status": status, "previousStatus": previous, "updatedAt": o.updated_at, "branchId": o.branch_id});
    tx.emit(NS, "orderStatusUpdate", (&o.company_id, &o.branch_id), payload)?;
    Ok(o)
}

pub fn cancel(tx: &mut Tx<'_>, id: &str, reason: Option<String>, visible: &dyn Fn(&Order) -> bool) -> Result<Order, StoreError> {
    let mut o = load(tx, id, visible)?;
    if o.status.is_final() {
        return Err(StoreError::conflict("INVALID_TRANSITION", format!("order is {}", o.status.as_str())));
    }
    o.status = Status::Cancelled;
    o.cancel_reason = reason;
    o.updated_at = now_rfc3339();
    tx.conn.execute(
        "UPDATE orders SET status = 'cancelled', cancel_reason = ?2, updated_at = ?3 WHERE id = ?1",
        params![o.id, o.cancel_reason, o.updated_at],
    )?;
    let payload = json!({"orderId": o.id, "reason": o.cancel_reason, "branchId": o.branch_id, "updatedAt": o.updated_at});
    tx.emit(NS, "orderCancelled", (&o.company_id, &o.branch_id), payload)?;
    Ok(o)
}

pub fn set_driver(tx: &mut Tx<'_>, id: &str, driver: Value, visible: &dyn Fn(&Order) -> bool) -> Result<Order, StoreError> {
    let mut o = load(tx, id, visible)?;
    if o.status.is_final() {
        return Err(StoreError::conflict("INVALID_TRANSITION", format!("order is {}", o.status.as_str())));
    }
    o.updated_at = now_rfc3339();
    tx.conn.execute("UPDATE orders SET driver = ?2, updated_at = ?3 WHERE id = ?1", params![o.id, driver.to_string(), o.updated_at])?;
    o.driver = Some(driver.clone());
    let payload = json!({"orderId": o.id, "driver": driver, "branchId": o.branch_id, "updatedAt": o.updated_at});
    tx.emit(NS, "driverUpdate", (&o.company_id, &o.branch_id), payload)?;
    Ok(o)
}

/// Which orders a list covers.
pub struct Filter {
    /// `None`: every branch (super admin); otherwise only these branches.
    pub branches: Option<Vec<String>>,
    pub live_only: bool,
    pub since: Option<String>,
    pub after_seq: i64,
    pub limit: usize,
}

pub fn list(r: &Reader<'_>, f: &Filter) -> Result<Page<Order>, StoreError> {
    let conn = r.conn;
    let mut sql = format!("SELECT {COLUMNS} FROM orders WHERE seq > ?1");
    if f.live_only {
        sql.push_str(" AND status NOT IN ('completed', 'cancelled')");
    }
    if f.since.is_some() {
        sql.push_str(" AND updated_at >= ?2");
    } else {
        sql.push_str(" AND ?2 IS NULL");
    }
    if let Some(b) = &f.branches {
        if b.is_empty() {
            return Ok(Page { items: vec![], next_cursor: None });
        }
        // Ids were checked as printable, but bind them anyway: one placeholder each.
        let marks: Vec<String> = (0..b.len()).map(|i| format!("?{}", i + 4)).collect();
        sql.push_str(&format!(" AND branch_id IN ({})", marks.join(",")));
    }
    sql.push_str(" ORDER BY seq LIMIT ?3");
    let limit = (f.limit + 1) as i64;
    let mut args: Vec<&dyn super::sql::Param> = vec![&f.after_seq, &f.since, &limit];
    for b in f.branches.iter().flatten() {
        args.push(b);
    }
    let rows = conn.query_map(&sql, &args, from_row)?;
    let mut page = Page::from_rows(rows, f.limit);
    for o in &mut page.items {
        fill_printing(r, o)?;
    }
    Ok(page)
}

/// Stores an order exactly as another instance reports it (the hub keeping a branch's
/// orders), in one statement. `false` when the id is already another branch's order (then
/// nothing changed).
pub fn upsert_replica(tx: &Tx<'_>, o: &Order) -> Result<bool, StoreError> {
    Ok(upsert_replicas(tx, std::slice::from_ref(o))? == 1)
}

/// [`upsert_replica`] for many orders of distinct ids, in one multi-row statement (SQLite: 64
/// rows per statement); how
/// many were stored (the others' ids belong to another branch, and they changed nothing).
pub fn upsert_replicas(tx: &Tx<'_>, orders: &[Order]) -> Result<usize, StoreError> {
    struct Row {
        day: String,
        status: &'static str,
        items: String,
        customer: Option<String>,
        driver: Option<String>,
        printing: Option<String>,
    }
    let conn = tx.conn;
    let rows = orders
        .iter()
        .map(|o| {
            Ok(Row {
                day: o.created_at.get(..10).unwrap_or_default().to_string(),
                status: o.status.as_str(),
                items: serde_json::to_string(&o.items)?,
                customer: o.customer.as_ref().map(Value::to_string),
                driver: o.driver.as_ref().map(Value::to_string),
                printing: o.printing.as_ref().map(Value::to_string),
            })
        })
        .collect::<Result<Vec<Row>, StoreError>>()?;
    let mut p: Vec<&dyn super::sql::Param> = Vec::with_capacity(orders.len() * 17);
    for (o, r) in orders.iter().zip(&rows) {
        p.extend([
            &o.id as &dyn super::sql::Param,
            &o.company_id,
            &o.branch_id,
            &o.number,
            &r.day,
            &o.order_type,
            &r.status,
            &r.items,
            &o.subtotal,
            &o.total,
            &r.customer,
            &o.notes,
            &r.driver,
            &o.cancel_reason,
            &o.created_at,
            &o.updated_at,
            &r.printing,
        ]);
    }
    use super::sql::Ty::{Int, Text};
    let statement = super::sql::Rows {
        head: "INSERT INTO orders (id, company_id, branch_id, number, business_day, type, status, items, subtotal, total,
                                   customer, notes, driver, cancel_reason, created_at, updated_at, printing)",
        cols: &[Text, Text, Text, Int, Text, Text, Text, Text, Int, Int, Text, Text, Text, Text, Text, Text, Text],
        tail: "ON CONFLICT(id) DO UPDATE SET number = excluded.number, status = excluded.status, items = excluded.items,
                   subtotal = excluded.subtotal, total = excluded.total, customer = excluded.customer, notes = excluded.notes,
                   driver = excluded.driver, cancel_reason = excluded.cancel_reason, updated_at = excluded.updated_at,
                   printing = COALESCE(excluded.printing, orders.printing)
               WHERE orders.branch_id = excluded.branch_id
               RETURNING id",
    };
    let stored = conn.insert_rows(&statement, &p, |r| r.get::<String>(0))?.len();
    Ok(stored)
}

// The `replicate_*` functions change `branch`'s order `id` as that branch reports it;
// `false` when `branch` has no such order (nothing changed).

/// Applies a status another instance reports (no state-machine check: the reporter owns it).
pub fn replicate_status(
    tx: &Tx<'_>,
    branch: &str,
    id: &str,
    status: Status,
    reason: Option<&str>,
    updated_at: &str,
) -> Result<bool, StoreError> {
    let conn = tx.conn;
    let n = conn.execute(
        "UPDATE orders SET status = ?2, cancel_reason = COALESCE(?3, cancel_reason), updated_at = ?4 WHERE id = ?1 AND branch_id = ?5",
        params![id, status.as_str(), reason, updated_at, branch],
    )?;
    Ok(n == 1)
}

/// Stores an order's `printing` as its branch reported it (the hub's copy).
pub fn replicate_printing(tx: &Tx<'_>, branch: &str, id: &str, printing: &Value) -> Result<bool, StoreError> {
    let conn = tx.conn;
    let n = conn.execute("UPDATE orders SET printing = ?2 WHERE id = ?1 AND branch_id = ?3", params![id, printing.to_string(), branch])?;
    Ok(n == 1)
}

pub fn replicate_driver(tx: &Tx<'_>, branch: &str, id: &str, driver: &Value, updated_at: &str) -> Result<bool, StoreError> {
    let conn = tx.conn;
    let n = conn.execute(
        "UPDATE orders SET driver = ?2, updated_at = ?3 WHERE id = ?1 AND branch_id = ?4",
        params![id, driver.to_string(), updated_at, branch],
    )?;
    Ok(n == 1)
}
