//! Availability rules: the item shape, partial updates and stock-alert crossings. Pure; the
//! store applies them inside a transaction.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::{self, invalid};

const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_BULK: usize = 1000;

/// One item's state, as `availabilityUpdate` carries it and `GET` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemState {
    pub branch_id: String,
    pub item_type: String,
    pub item_id: String,
    pub available: bool,
    pub stock: Option<i64>,
    pub low_stock_threshold: Option<i64>,
    pub updated_at: String,
}

/// A field of a partial update: absent keeps the stored value, `null` clears it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Patch {
    Keep,
    Set(Option<i64>),
}

impl Patch {
    fn apply(self, old: Option<i64>) -> Option<i64> {
        match self {
            Patch::Keep => old,
            Patch::Set(v) => v,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub item_type: String,
    pub item_id: String,
    pub available: bool,
    pub stock: Patch,
    pub low_stock_threshold: Patch,
}

fn patch(m: &serde_json::Map<String, Value>, key: &str) -> validate::Result<Patch> {
    match m.get(key) {
        None => Ok(Patch::Keep),
        Some(Value::Null) => Ok(Patch::Set(None)),
        Some(v) => validate::int(v, key, 0, MAX_STOCK).map(|n| Patch::Set(Some(n))),
    }
}

pub fn item_type(s: &str) -> validate::Result<String> {
    match s {
        "product" | "modifier" => Ok(s.to_string()),
        _ => invalid("itemType must be product or modifier"),
    }
}

/// Parses `{available, stock?, lowStockThreshold?}` for the item named in the path.
pub fn parse_change(item_type_s: &str, item_id: &str, body: &Value) -> validate::Result<Change> {
    let m = validate::object(body, "body")?;
    Ok(Change {
        item_type: item_type(item_type_s)?,
        item_id: validate::id(item_id, "itemId")?,
        available: validate::bool(m, "available")?,
        stock: patch(m, "stock")?,
        low_stock_threshold: patch(m, "lowStockThreshold")?,
    })
}

/// Parses a bulk body `{items: [{itemType, itemId, available, ...}]}`; all or nothing.
pub fn parse_bulk(body: &Value) -> validate::Result<Vec<Change>> {
    let m = validate::object(body, "body")?;
    let items = match m.get("items") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_BULK => a,
        _ => return invalid(format!("items must be an array of 1 to {MAX_BULK} items")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let o = validate::object(it, &format!("items[{i}]"))?;
            let t = validate::string(o, "itemType", 16)?;
            let id = validate::string(o, "itemId", 128)?;
            parse_change(&t, &id, it).map_err(|e| validate::Invalid(format!("items[{i}]: {}", e.0)))
        })
        .collect()
}

impl Change {
    pub fn apply(&self, branch_id: &str, prev: Option<&ItemState>, now: &str) -> ItemState {
        ItemState {
            branch_id: branch_id.to_string(),
            item_type: self.item_type.clone(),
            item_id: self.item_id.clone(),
            available: self.available,
            stock: self.stock.apply(prev.and_then(|p| p.stock)),
            low_stock_threshold: self.low_stock_threshold.apply(prev.and_then(|p| p.low_stock_threshold)),
            updated_at: now.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    LowStock,
    OutOfStock,
}

impl Alert {
    pub fn as_str(self) -> &'static str {
        match self {
            Alert::LowStock => "low_stock",
            Alert::OutOfStock => "out_of_stock",
        }
    }
}

/// The alert that `next` crosses into, if any. An item seen for the first time, or without
/// tracked stock before, counts as coming from above its threshold.
pub fn crossing(prev: Option<&ItemState>, next: &ItemState) -> Option<Alert> {
    let stock = next.stock?;
    let before = prev.and_then(|p| p.stock).unwrap_or(i64::MAX);
    if stock == 0 {
        return (before > 0).then_some(Alert::OutOfStock);
    }
    let t = next.low_stock_threshold?;
    (stock <= t && before > t).then_some(Alert::LowStock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(stock: Option<i64>, t: Option<i64>) -> ItemState {
        ItemState {
            branch_id: "b".into(),
            item_type: "product".into(),
            item_id: "p".into(),
            available: true,
            stock,
            low_stock_threshold: t,
            updated_at: String::new(),
        }
    }

    #[test]
    fn alerts_fire_on_crossing_only() {
        assert_eq!(crossing(None, &item(Some(3), Some(5))), Some(Alert::LowStock));
        assert_eq!(crossing(Some(&item(Some(3), Some(5))), &item(Some(2), Some(5))), None);
        assert_eq!(crossing(Some(&item(Some(2), Some(5))), &item(Some(0), Some(5))), Some(Alert::OutOfStock));
        assert_eq!(crossing(Some(&item(Some(0), Some(5))), &item(Some(0), Some(5))), None);
        assert_eq!(crossing(Some(&item(Some(9), None)), &item(Some(1), None)), None);
        assert_eq!(crossing(Some(&item(Some(9), None)), &item(Some(0), None)), Some(Alert::OutOfStock));
    }

    #[test]
    fn patch_keeps_or_clears() {
        let prev = item(Some(4), Some(2));
        let c = parse_change("product", "p", &serde_json::json!({"available": false})).unwrap();
        let next = c.apply("b", Some(&prev), "t");
        assert_eq!((next.stock, next.low_stock_threshold), (Some(4), Some(2)));
        let c = parse_change("product", "p", &serde_json::json!({"available": true, "stock": null})).unwrap();
        assert_eq!(c.apply("b", Some(&prev), "t").stock, None);
    }
}
