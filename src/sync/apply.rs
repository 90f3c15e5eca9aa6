//! Applying the other side's events to local state, idempotently, inside the caller's
//! transaction, and re-broadcasting them to local clients as the usual events.
//! At the hub: a branch's pushed events (origin `Branch`). At a branch: the hub's feed
//! (origin `Hub`), except HQ-taken orders, which the branch creates as its own (it numbers
//! them, prints them, and reports them back to the hub).

use serde_json::Value;

use crate::availability::{self, ItemState};
use crate::domain::printer::Printer;
use crate::orders::{self, Order, Status};
use crate::store::events::Origin;
use crate::store::{
    StoreError, Tx, availability as avail_store, orders as order_store, print_alerts as print_alert_store, printers as printer_store,
};

/// Why an event was refused: it is parked (kept, reported, never retried).
#[derive(Debug, Clone)]
pub struct Reject {
    pub code: &'static str,
    pub message: String,
}

fn reject<T>(code: &'static str, message: impl Into<String>) -> Result<T, Reject> {
    Err(Reject { code, message: message.into() })
}

impl From<StoreError> for Reject {
    fn from(e: StoreError) -> Self {
        Reject { code: "APPLY_FAILED", message: e.to_string() }
    }
}

fn payload(data: &Value) -> Result<Value, Reject> {
    let mut d = data.clone();
    match d.as_object_mut() {
        Some(m) => {
            m.remove("eventId");
            Ok(d)
        }
        None => reject("INVALID_EVENT", "event data must be an object"),
    }
}

fn str_of<'a>(d: &'a Value, k: &str) -> Result<&'a str, Reject> {
    d.get(k).and_then(Value::as_str).ok_or_else(|| Reject { code: "INVALID_EVENT", message: format!("{k} is missing") })
}

/// Runs `f` in a savepoint: a refused event leaves no trace (rows or broadcasts).
pub fn isolated<T>(tx: &mut Tx<'_>, f: impl FnOnce(&mut Tx<'_>) -> Result<T, Reject>) -> Result<T, Reject> {
    tx.isolated(f)
}

/// The payload of an event pushed by `branch`, if it does not name another branch.
fn branch_payload(data: &Value, branch: &str) -> Result<Value, Reject> {
    let d = payload(data)?;
    if let Some(b) = d.get("branchId").and_then(Value::as_str)
        && b != branch
    {
        return reject("WRONG_BRANCH", format!("event names branch {b}, but this uplink is for {branch}"));
    }
    Ok(d)
}

/// The order a `newOrder` of `branch` carries, if it is that branch's.
fn branch_order(d: &Value, company: &str, branch: &str) -> Result<Order, Reject> {
    let o: Order = serde_json::from_value(d.clone()).map_err(|e| Reject { code: "INVALID_EVENT", message: format!("order: {e}") })?;
    if o.branch_id != branch || o.company_id != company {
        return reject("WRONG_BRANCH", "the order belongs to another branch or company");
    }
    Ok(o)
}

/// Changes of a push waiting to be written together ([`from_branch_queued`]): new orders
/// (distinct ids, in push order) and item states (the last one per item: a replica keeps
/// what the branch reported last).
#[derive(Default)]
pub struct Queued {
    orders: Vec<Order>,
    order_ids: std::collections::HashSet<String>,
    items: Vec<ItemState>,
    item_at: std::collections::HashMap<(String, String), usize>,
}

impl Queued {
    /// Writes what is queued. Refused when an order id is already another branch's: the
    /// caller undoes the batch and applies it event by event to find which.
    pub fn flush(&mut self, tx: &mut Tx<'_>, company: &str) -> Result<(), Reject> {
        if !self.orders.is_empty() {
            if order_store::upsert_replicas(tx, &self.orders)? < self.orders.len() {
                return reject("WRONG_BRANCH", "an order id of this push is already another branch's order");
            }
            self.orders.clear();
            self.order_ids.clear();
        }
        if !self.items.is_empty() {
            avail_store::upsert_replicas(tx, company, &self.items)?;
            self.items.clear();
            self.item_at.clear();
        }
        Ok(())
    }

    fn item(&mut self, item: ItemState) {
        match self.item_at.entry((item.item_type.clone(), item.item_id.clone())) {
            std::collections::hash_map::Entry::Occupied(at) => self.items[*at.get()] = item,
            std::collections::hash_map::Entry::Vacant(at) => {
                at.insert(self.items.len());
                self.items.push(item);
            }
        }
    }
}

/// [`from_branch`] for bulk work: a new order or an item's state is checked, announced and
/// queued in `queued` (written by its next flush, many rows per statement); any other event
/// flushes the queue first, so that every change applies in push order. The caller flushes
/// at the end.
pub fn from_branch_queued(
    tx: &mut Tx<'_>,
    queued: &mut Queued,
    company: &str,
    branch: &str,
    ns: &str,
    name: &str,
    data: &Value,
) -> Result<(), Reject> {
    match name {
        "newOrder" => {
            tx.origin = Origin::Branch;
            let d = branch_payload(data, branch)?;
            let o = branch_order(&d, company, branch)?;
            if !queued.order_ids.contains(&o.id) {
                queued.order_ids.insert(o.id.clone());
                queued.orders.push(o);
                tx.emit(ns, name, (company, branch), d)?;
                return Ok(());
            }
        }
        "availabilityUpdate" | "bulkAvailabilityUpdate" => {
            tx.origin = Origin::Branch;
            let d = branch_payload(data, branch)?;
            let items = pushed_items(name, &d)?.into_iter().map(|it| branch_item(it, branch)).collect::<Result<Vec<_>, _>>()?;
            for item in items {
                queued.item(item);
            }
            tx.emit(ns, name, (company, branch), d)?;
            return Ok(());
        }
        _ => {}
    }
    queued.flush(tx, company)?;
    from_branch(tx, company, branch, ns, name, data)
}

/// At the hub: one event pushed by `branch` of `company`.
pub fn from_branch(tx: &mut Tx<'_>, company: &str, branch: &str, ns: &str, name: &str, data: &Value) -> Result<(), Reject> {
    tx.origin = Origin::Branch;
    let d = branch_payload(data, branch)?;
    let scope = (company, branch);
    match name {
        "newOrder" | "orderStatusUpdate" | "orderCancelled" | "driverUpdate" | "orderPrintingUpdate" => {
            order_event(tx, company, branch, name, &d)?
        }
        "printer:added" | "printerUpdate" | "printerRemoved" | "printerStatusUpdate" => printer_event(tx, company, branch, name, &d)?,
        "availabilityUpdate" | "bulkAvailabilityUpdate" => {
            for it in pushed_items(name, &d)? {
                let item = branch_item(it, branch)?;
                avail_store::upsert_replica(tx, company, &item)?;
            }
        }
        "stockAlert" | "newAlert" => {}
        // Print alerts, acks and order print state: HQ sees every branch's stuck printers.
        // A branch sends each alert and ack once; HQ's screens get it on both namespaces.
        "printAlert" | "printAlertAck" => {
            if name == "printAlert" {
                str_of(&d, "id")?;
                print_alert_store::upsert_replica(tx, company, branch, &d)?;
            } else {
                let id = str_of(&d, "alertId").or_else(|_| str_of(&d, "id"))?;
                let at = d.get("ackedAt").and_then(Value::as_str).map(str::to_string).unwrap_or_else(crate::store::now_rfc3339);
                print_alert_store::replicate_ack(tx, branch, id, &at, d.get("ackedBy").and_then(Value::as_str))?;
            }
            for ns in print_alert_store::NAMESPACES {
                tx.emit(ns, name, scope, d.clone())?;
            }
            return Ok(());
        }
        other => return reject("UNKNOWN_EVENT", format!("unknown event {other}")),
    }
    tx.emit(ns, name, scope, d)?;
    Ok(())
}

/// At the hub: an order event of `branch` (the order, its status, driver, print state).
fn order_event(tx: &mut Tx<'_>, company: &str, branch: &str, name: &str, d: &Value) -> Result<(), Reject> {
    match name {
        "newOrder" => {
            let o = branch_order(d, company, branch)?;
            if !order_store::upsert_replica(tx, &o)? {
                return reject("WRONG_BRANCH", format!("order id {} is already another branch's order", o.id));
            }
        }
        "orderStatusUpdate" | "orderCancelled" => {
            let id = str_of(d, "orderId")?;
            let status = if name == "orderCancelled" {
                Status::Cancelled
            } else {
                Status::parse(str_of(d, "status")?).ok_or_else(|| Reject { code: "INVALID_EVENT", message: "unknown status".into() })?
            };
            let at = d.get("updatedAt").and_then(Value::as_str).map(str::to_string).unwrap_or_else(crate::store::now_rfc3339);
            if !order_store::replicate_status(tx, branch, id, status, d.get("reason").and_then(Value::as_str), &at)? {
                return unknown_order(id);
            }
        }
        "driverUpdate" => {
            let id = str_of(d, "orderId")?;
            let at = d.get("updatedAt").and_then(Value::as_str).map(str::to_string).unwrap_or_else(crate::store::now_rfc3339);
            if !order_store::replicate_driver(tx, branch, id, d.get("driver").unwrap_or(&Value::Null), &at)? {
                return unknown_order(id);
            }
        }
        "orderPrintingUpdate" => {
            let id = str_of(d, "orderId")?;
            let printing = d
                .get("printing")
                .filter(|p| p.is_object())
                .ok_or_else(|| Reject { code: "INVALID_EVENT", message: "printing must be an object".into() })?;
            if !order_store::replicate_printing(tx, branch, id, printing)? {
                return unknown_order(id);
            }
        }
        other => return reject("UNKNOWN_EVENT", format!("unknown event {other}")),
    }
    Ok(())
}

/// At the hub: a printer event of `branch` (added, changed, removed, its status).
fn printer_event(tx: &mut Tx<'_>, company: &str, branch: &str, name: &str, d: &Value) -> Result<(), Reject> {
    match name {
        "printer:added" | "printerUpdate" => {
            let mut p: Printer =
                serde_json::from_value(d.clone()).map_err(|e| Reject { code: "INVALID_EVENT", message: format!("printer: {e}") })?;
            if p.branch_id != branch || p.company_id != company {
                return reject("WRONG_BRANCH", "the printer belongs to another branch or company");
            }
            if printer_store::get(tx, &p.id)?.is_some_and(|other| other.branch_id != branch) {
                return reject("WRONG_BRANCH", format!("printer id {} is already another branch's printer", p.id));
            }
            p.sync_desktop_ids();
            printer_store::upsert_replica(tx, &p)?;
        }
        "printerRemoved" => {
            let id = str_of(d, "printerId")?;
            // Removing one this hub never had is a no-op; another branch's is refused.
            if printer_store::get(tx, id)?.is_some_and(|p| p.branch_id != branch) {
                return reject("WRONG_BRANCH", format!("printer {id} is another branch's printer"));
            }
            printer_store::delete_replica(tx, id)?;
        }
        "printerStatusUpdate" => {
            let id = str_of(d, "printerId")?;
            // One this hub has not seen yet (added before the uplink existed) is only relayed.
            if printer_store::get(tx, id)?.is_some_and(|p| p.branch_id != branch) {
                return reject("WRONG_BRANCH", format!("printer {id} is another branch's printer"));
            }
            let at = d.get("checkedAt").and_then(Value::as_str).unwrap_or_default().to_string();
            printer_store::replicate_status(tx, id, str_of(d, "status")?, &at)?;
        }
        other => return reject("UNKNOWN_EVENT", format!("unknown event {other}")),
    }
    Ok(())
}

fn unknown_order<T>(id: &str) -> Result<T, Reject> {
    reject("UNKNOWN_ORDER", format!("order {id} is not known for this branch"))
}

/// The items an availability event of a branch carries: itself, or its `items`.
fn pushed_items<'d>(name: &str, d: &'d Value) -> Result<Vec<&'d Value>, Reject> {
    if name == "availabilityUpdate" {
        return Ok(vec![d]);
    }
    let items =
        d.get("items").and_then(Value::as_array).ok_or_else(|| Reject { code: "INVALID_EVENT", message: "items missing".into() })?;
    Ok(items.iter().collect())
}

/// An item's state as `branch` reports it, if it is that branch's and well-formed.
fn branch_item(d: &Value, branch: &str) -> Result<ItemState, Reject> {
    let item: ItemState =
        serde_json::from_value(d.clone()).map_err(|e| Reject { code: "INVALID_EVENT", message: format!("availability: {e}") })?;
    if item.branch_id != branch {
        return reject("WRONG_BRANCH", "the item belongs to another branch");
    }
    availability::item_type(&item.item_type).map_err(|e| Reject { code: "INVALID_EVENT", message: e.0 })?;
    Ok(item)
}

/// At a branch: one change made at the hub for this branch.
pub fn from_hub(tx: &mut Tx<'_>, company: &str, branch: &str, business_day: &str, name: &str, data: &Value) -> Result<(), Reject> {
    let d = payload(data)?;
    let visible = |o: &Order| o.branch_id == branch;
    match name {
        "newOrder" => {
            let id = str_of(&d, "id")?;
            if order_store::get(tx, id)?.is_some() {
                return Ok(()); // already here (a repeated feed page)
            }
            let body = serde_json::json!({
                "id": id, "branchId": branch, "type": d.get("type"), "items": d.get("items"),
                "customer": d.get("customer"), "notes": d.get("notes"),
            });
            let new = orders::parse_new(&body).map_err(|e| Reject { code: "INVALID_EVENT", message: e.0 })?;
            // The branch numbers, prints and reports HQ-taken orders as its own.
            tx.origin = Origin::Local;
            order_store::create(tx, company, &new, business_day, true)?;
        }
        "orderStatusUpdate" => {
            tx.origin = Origin::Hub;
            let id = str_of(&d, "orderId")?;
            let status =
                Status::parse(str_of(&d, "status")?).ok_or_else(|| Reject { code: "INVALID_EVENT", message: "unknown status".into() })?;
            match order_store::get(tx, id)? {
                Some(o) if o.status == status => {}
                Some(_) => {
                    order_store::set_status(tx, id, status, &visible)?;
                }
                None => return reject("UNKNOWN_ORDER", format!("order {id} is not here")),
            }
        }
        "orderCancelled" => {
            tx.origin = Origin::Hub;
            let id = str_of(&d, "orderId")?;
            if order_store::get(tx, id)?.is_some_and(|o| !o.status.is_final()) {
                order_store::cancel(tx, id, d.get("reason").and_then(Value::as_str).map(str::to_string), &visible)?;
            }
        }
        "driverUpdate" => {
            tx.origin = Origin::Hub;
            let id = str_of(&d, "orderId")?;
            if order_store::get(tx, id)?.is_some_and(|o| !o.status.is_final()) {
                order_store::set_driver(tx, id, d.get("driver").cloned().unwrap_or(Value::Null), &visible)?;
            }
        }
        "availabilityUpdate" | "bulkAvailabilityUpdate" => {
            tx.origin = Origin::Hub;
            let items = if name == "availabilityUpdate" {
                vec![d.clone()]
            } else {
                d.get("items").and_then(Value::as_array).cloned().unwrap_or_default()
            };
            for it in items {
                let (t, id) = (str_of(&it, "itemType")?.to_string(), str_of(&it, "itemId")?.to_string());
                // Exact values from HQ: absent fields clear, as HQ sent its whole state.
                let exact = serde_json::json!({
                    "available": it.get("available"), "stock": it.get("stock").cloned().unwrap_or(Value::Null),
                    "lowStockThreshold": it.get("lowStockThreshold").cloned().unwrap_or(Value::Null),
                });
                let change = availability::parse_change(&t, &id, &exact).map_err(|e| Reject { code: "INVALID_EVENT", message: e.0 })?;
                avail_store::put(tx, company, branch, &change)?;
            }
        }
        "directory:user" => {
            tx.origin = Origin::Hub;
            crate::store::directory::replicate_user(tx, &d)?;
        }
        "directory:license" => {
            tx.origin = Origin::Hub;
            crate::store::directory::replicate_license(tx, &d)?;
        }
        // Other HQ events (alerts, HQ's view of printers) are not the branch's to apply.
        _ => {}
    }
    Ok(())
}
