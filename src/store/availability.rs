//! Availability rows and their broadcasts (`availabilityUpdate`, `bulkAvailabilityUpdate`,
//! `stockAlert`, `newAlert`), each written with the change.

use super::sql::{Row, params};
use serde_json::{Value, json};

use super::{Reader, StoreError, Tx, now_rfc3339};
use crate::availability::{Alert, Change, ItemState, crossing};

pub const NS: &str = "/availability";

fn from_row(r: &Row<'_>) -> Result<ItemState, StoreError> {
    Ok(ItemState {
        branch_id: r.get(0)?,
        item_type: r.get(1)?,
        item_id: r.get(2)?,
        available: r.get(3)?,
        stock: r.get(4)?,
        low_stock_threshold: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

const COLUMNS: &str = "branch_id, item_type, item_id, available, stock, low_stock_threshold, updated_at";

pub fn list(r: &Reader<'_>, branch_id: &str) -> Result<Vec<ItemState>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map(
        &format!("SELECT {COLUMNS} FROM availability WHERE branch_id = ?1 ORDER BY item_type, item_id"),
        params![branch_id],
        from_row,
    )?;
    Ok(rows)
}

fn get(conn: super::sql::Conn<'_>, branch_id: &str, item_type: &str, item_id: &str) -> Result<Option<ItemState>, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM availability WHERE branch_id = ?1 AND item_type = ?2 AND item_id = ?3"),
        params![branch_id, item_type, item_id],
        from_row,
    )
}

/// Stores one change and emits its stock alerts; the caller emits the update itself.
fn apply_one(tx: &mut Tx<'_>, company_id: &str, branch_id: &str, change: &Change, now: &str) -> Result<ItemState, StoreError> {
    let prev = get(tx.conn, branch_id, &change.item_type, &change.item_id)?;
    let next = change.apply(branch_id, prev.as_ref(), now);
    tx.conn.execute(
        "INSERT INTO availability (branch_id, item_type, item_id, company_id, available, stock, low_stock_threshold, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(branch_id, item_type, item_id) DO UPDATE SET available = excluded.available,
             stock = excluded.stock, low_stock_threshold = excluded.low_stock_threshold, updated_at = excluded.updated_at",
        params![branch_id, next.item_type, next.item_id, company_id, next.available, next.stock, next.low_stock_threshold, now],
    )?;
    if let Some(alert) = crossing(prev.as_ref(), &next) {
        let base = json!({
            "branchId": branch_id, "itemType": next.item_type, "itemId": next.item_id, "stock": next.stock,
            "lowStockThreshold": next.low_stock_threshold, "updatedAt": now,
        });
        let mut stock_alert = base.clone();
        stock_alert["type"] = json!(alert.as_str());
        tx.emit(NS, "stockAlert", (company_id, branch_id), stock_alert)?;
        if alert == Alert::OutOfStock {
            let mut critical = base;
            critical["severity"] = json!("critical");
            critical["type"] = json!("out_of_stock");
            critical["message"] = json!(format!("{} {} is out of stock", next.item_type, next.item_id));
            tx.emit(NS, "newAlert", (company_id, branch_id), critical)?;
        }
    }
    Ok(next)
}

pub fn put(tx: &mut Tx<'_>, company_id: &str, branch_id: &str, change: &Change) -> Result<Value, StoreError> {
    let now = now_rfc3339();
    let item = apply_one(tx, company_id, branch_id, change, &now)?;
    tx.emit(NS, "availabilityUpdate", (company_id, branch_id), serde_json::to_value(&item)?)?;
    Ok(serde_json::to_value(&item)?)
}

pub fn bulk(tx: &mut Tx<'_>, company_id: &str, branch_id: &str, changes: &[Change]) -> Result<Value, StoreError> {
    let now = now_rfc3339();
    let items = changes.iter().map(|c| apply_one(tx, company_id, branch_id, c, &now)).collect::<Result<Vec<_>, _>>()?;
    let payload = json!({"branchId": branch_id, "items": items});
    tx.emit(NS, "bulkAvailabilityUpdate", (company_id, branch_id), payload.clone())?;
    Ok(payload)
}

/// Stores an item exactly as another instance reports it.
pub fn upsert_replica(tx: &Tx<'_>, company_id: &str, item: &ItemState) -> Result<(), StoreError> {
    upsert_replicas(tx, company_id, std::slice::from_ref(item))
}

/// [`upsert_replica`] for many items (distinct ones), in one multi-row statement (SQLite: 64
/// rows per statement).
pub fn upsert_replicas(tx: &Tx<'_>, company_id: &str, items: &[ItemState]) -> Result<(), StoreError> {
    let conn = tx.conn;
    let mut p: Vec<&dyn super::sql::Param> = Vec::with_capacity(items.len() * 8);
    for item in items {
        p.extend([
            &item.branch_id as &dyn super::sql::Param,
            &item.item_type,
            &item.item_id,
            &company_id,
            &item.available,
            &item.stock,
            &item.low_stock_threshold,
            &item.updated_at,
        ]);
    }
    use super::sql::Ty::{Int, Text};
    let rows = super::sql::Rows {
        head: "INSERT INTO availability (branch_id, item_type, item_id, company_id, available, stock, low_stock_threshold, updated_at)",
        cols: &[Text, Text, Text, Text, Int, Int, Int, Text],
        tail: "ON CONFLICT(branch_id, item_type, item_id) DO UPDATE SET available = excluded.available,
                   stock = excluded.stock, low_stock_threshold = excluded.low_stock_threshold, updated_at = excluded.updated_at",
    };
    conn.insert_rows(&rows, &p, |_| Ok(()))?;
    Ok(())
}
