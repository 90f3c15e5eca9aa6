//! Order rules: the request shape, the status state machine and business-day numbering.
//! Pure: no I/O here; `store::orders` applies these rules inside a transaction.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::{self, Invalid, invalid};

pub const MAX_ITEMS: usize = 500;
const MAX_QUANTITY: i64 = 100_000;
const MAX_UNIT_PRICE: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Confirmed,
    Preparing,
    Ready,
    OutForDelivery,
    Completed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Confirmed,
        Status::Preparing,
        Status::Ready,
        Status::OutForDelivery,
        Status::Completed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Preparing => "preparing",
            Status::Ready => "ready",
            Status::OutForDelivery => "out_for_delivery",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// `completed` and `cancelled` are final; the others are "live".
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Cancelled)
    }

    /// The statuses an order of `order_type` may move to from `self` with PATCH .../status.
    pub fn next(self, order_type: &str) -> &'static [Status] {
        match self {
            Status::Pending => &[Status::Confirmed],
            Status::Confirmed => &[Status::Preparing],
            Status::Preparing => &[Status::Ready],
            Status::Ready if order_type == "delivery" => &[Status::OutForDelivery, Status::Completed],
            Status::Ready => &[Status::Completed],
            Status::OutForDelivery => &[Status::Completed],
            Status::Completed | Status::Cancelled => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub station: Option<String>,
    pub notes: Option<String>,
}

/// The stored order, exactly as REST returns it and `newOrder` carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub number: i64,
    pub company_id: String,
    pub branch_id: String,
    #[serde(rename = "type")]
    pub order_type: String,
    pub status: Status,
    pub items: Vec<Item>,
    pub subtotal: i64,
    pub total: i64,
    pub customer: Option<Value>,
    pub notes: Option<String>,
    pub driver: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Its print state (SPEC §3 `printing`), filled in by the store when the order is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printing: Option<Value>,
}

/// A validated `POST /api/orders` body.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Option<String>,
    pub branch_id: String,
    pub order_type: String,
    pub items: Vec<Item>,
    pub customer: Option<Value>,
    pub notes: Option<String>,
    /// Canonical form of the request (sorted keys) for the idempotency check.
    pub canonical: String,
}

impl NewOrder {
    pub fn subtotal(&self) -> i64 {
        self.items.iter().map(|i| i.quantity * i.unit_price).sum()
    }
}

/// Reads the branch id first, so that authorisation can run before the rest is checked.
pub fn branch_of(body: &Value) -> validate::Result<String> {
    let m = validate::object(body, "body")?;
    let b = validate::string(m, "branchId", 128)?;
    validate::id(&b, "branchId")
}

pub fn parse_new(body: &Value) -> validate::Result<NewOrder> {
    let m = validate::object(body, "body")?;
    let id = match validate::opt_string(m, "id", 128)? {
        Some(id) => Some(validate::id(&id, "id")?),
        None => None,
    };
    let branch_id = branch_of(body)?;
    let order_type = match m.get("type").and_then(Value::as_str) {
        Some(t @ ("dine_in" | "takeaway" | "delivery")) => t.to_string(),
        _ => return invalid("type must be dine_in, takeaway or delivery"),
    };
    let raw_items = match m.get("items") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_ITEMS => a,
        Some(Value::Array(a)) if a.len() > MAX_ITEMS => return invalid(format!("items: at most {MAX_ITEMS} per order")),
        _ => return invalid("items must be a non-empty array"),
    };
    let mut items = Vec::with_capacity(raw_items.len());
    for (i, it) in raw_items.iter().enumerate() {
        let o = validate::object(it, &format!("items[{i}]"))?;
        let field = |e: Invalid| Invalid(format!("items[{i}].{}", e.0));
        items.push(Item {
            name: validate::string(o, "name", 200).map_err(field)?,
            quantity: validate::int(o.get("quantity").unwrap_or(&Value::Null), "quantity", 1, MAX_QUANTITY).map_err(field)?,
            unit_price: validate::int(o.get("unitPrice").unwrap_or(&Value::Null), "unitPrice", 0, MAX_UNIT_PRICE)
                .map_err(|_| Invalid(format!("items[{i}].unitPrice must be an integer >= 0 in minor units")))?,
            station: validate::opt_string(o, "station", 64).map_err(field)?,
            notes: validate::opt_string(o, "notes", 1000).map_err(field)?,
        });
    }
    // Each line fits an i64 (quantity and price are bounded), but 500 of them may not:
    // refuse an order whose total cannot be represented instead of overflowing.
    if items.iter().try_fold(0i64, |sum, i| sum.checked_add(i.quantity.checked_mul(i.unit_price)?)).is_none() {
        return invalid("the order total is too large");
    }
    let customer = match m.get("customer") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) if c.to_string().len() <= 8192 => Some(c.clone()),
        Some(Value::Object(_)) => return invalid("customer is too large (8 KiB at most)"),
        Some(_) => return invalid("customer must be an object"),
    };
    let notes = validate::opt_string(m, "notes", 2000)?;
    // serde_json's map is ordered by key, so this string is canonical.
    let canonical = body.to_string();
    Ok(NewOrder { id, branch_id, order_type, items, customer, notes, canonical })
}

/// The business day of `now`: the local date (in `tz`) of `now - day_start`.
pub fn business_day<Tz: TimeZone>(now: DateTime<Utc>, tz: &Tz, day_start: NaiveTime) -> String {
    let local = now.with_timezone(tz).naive_local();
    let shifted = local - day_start.signed_duration_since(NaiveTime::MIN);
    shifted.date().format("%Y-%m-%d").to_string()
}

/// `{driverId, name, phone?, etaMinutes?}`.
pub fn parse_driver(body: &Value) -> validate::Result<Value> {
    let m = validate::object(body, "body")?;
    let driver_id = validate::string(m, "driverId", 128)?;
    let name = validate::string(m, "name", 200)?;
    let phone = validate::opt_string(m, "phone", 64)?;
    let eta = validate::opt_int(m, "etaMinutes", 0, 24 * 60)?;
    Ok(serde_json::json!({ "driverId": driver_id, "name": name, "phone": phone, "etaMinutes": eta }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_machine_follows_spec() {
        assert_eq!(Status::Pending.next("dine_in"), &[Status::Confirmed]);
        assert!(!Status::Ready.next("takeaway").contains(&Status::OutForDelivery));
        assert!(Status::Ready.next("delivery").contains(&Status::OutForDelivery));
        assert!(Status::Completed.next("delivery").is_empty());
        assert!(Status::Cancelled.next("delivery").is_empty());
    }

    #[test]
    fn business_day_rolls_at_day_start() {
        let start = NaiveTime::from_hms_opt(4, 0, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 3, 2, 3, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 2, 4, 0, 0).unwrap();
        assert_eq!(business_day(before, &Utc, start), "2026-03-01");
        assert_eq!(business_day(after, &Utc, start), "2026-03-02");
    }

    #[test]
    fn a_total_beyond_i64_is_refused_not_overflowed() {
        // Found by tests/it/fuzz.rs: 93 lines at the maximum quantity and price overflow i64.
        let line = json!({"name": "x", "quantity": MAX_QUANTITY, "unitPrice": MAX_UNIT_PRICE});
        let body = json!({"branchId": "b", "type": "dine_in", "items": vec![line.clone(); 100]});
        assert_eq!(parse_new(&body).unwrap_err().0, "the order total is too large");
        let fits = json!({"branchId": "b", "type": "dine_in", "items": vec![line; 92]});
        assert_eq!(parse_new(&fits).unwrap().subtotal(), 92 * MAX_QUANTITY * MAX_UNIT_PRICE);
    }

    #[test]
    fn rejects_bad_orders_with_field_names() {
        let ok = json!({"branchId": "b", "type": "dine_in", "items": [{"name": "x", "quantity": 1, "unitPrice": 100}]});
        assert!(parse_new(&ok).is_ok());
        let bad = json!({"branchId": "b", "type": "dine_in", "items": [{"name": "x", "quantity": 1.5, "unitPrice": 100}]});
        assert!(parse_new(&bad).unwrap_err().0.contains("items[0].quantity"));
        let neg = json!({"branchId": "b", "type": "dine_in", "items": [{"name": "x", "quantity": 1, "unitPrice": -1}]});
        assert!(parse_new(&neg).unwrap_err().0.contains("unitPrice"));
        assert!(parse_new(&json!({"branchId": "b", "type": "boat", "items": []})).is_err());
    }
}
