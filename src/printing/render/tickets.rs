//! What is on each kind of paper: kitchen tickets, customer receipts and test pages, built as
//! printer-independent [`Doc`]s from orders; money formatting.
//!
//! Owns the content and its order on the ticket. Must not know profiles, code pages or
//! bytes, and never fails: whatever the order holds (empty items, huge numbers, hostile
//! strings) yields a ticket.

use serde_json::Value;

use super::doc::{Block, Doc, Line, Size};
use super::profile::{Geometry, Profile};
use super::text;
use crate::orders::{Item, Order};

/// Money is an integer in the currency's minor units; `digits` is that currency's number of
/// minor-unit digits: `1250` → `12.50` (USD, 2), `1500` → `1500` (JPY, 0), `1.500` (KWD, 3).
pub fn money(minor: i128, digits: u8) -> String {
    crate::currency::format_minor(minor, digits)
}

fn order_type(t: &str) -> String {
    match t {
        "dine_in" => "Dine in".to_string(),
        "takeaway" => "Takeaway".to_string(),
        "delivery" => "Delivery".to_string(),
        other => text::clean(other),
    }
}

fn banner(doc: &mut Doc, banner: Option<&str>) {
    if let Some(b) = banner.map(text::clean).filter(|b| !b.is_empty()) {
        doc.line(Line::new(&b).size(Size::Big).bold().invert().center());
        doc.push(Block::Feed(1));
    }
}

/// A string field of the customer object (numbers accepted for phone numbers).
fn customer_field(customer: Option<&Value>, keys: &[&str]) -> Option<String> {
    let obj = customer?.as_object()?;
    keys.iter().find_map(|k| match obj.get(*k)? {
        Value::String(s) => Some(text::clean(s)).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `2 x Name` with the paragraph direction of the name, so that an Arabic item reads
/// right-to-left with its quantity first.
fn item_line(item: &Item) -> Line {
    let name = text::clean(&item.name);
    Line::new(&format!("{} x {}", item.quantity, name)).direction_of(&name)
}

fn notes(doc: &mut Doc, notes: Option<&str>, indent: usize, prefix: &str) {
    for n in text::clean_lines(notes.unwrap_or("")) {
        doc.line(Line::new(&format!("{prefix}{n}")).indent(indent).direction_of(&n));
    }
}

/// Kitchen ticket for one station: station, order number, type, the order's time, items with
/// notes.
pub fn kitchen(order: &Order, station: Option<&str>, items: &[Item], banner_text: Option<&str>, when_local: &str) -> Doc {
    let mut doc = Doc::default();
    banner(&mut doc, banner_text);
    let station = station.map(text::clean).filter(|s| !s.is_empty()).unwrap_or_else(|| "KITCHEN".to_string());
    doc.line(Line::new(&station.to_uppercase()).size(Size::Big).bold().center());
    doc.line(Line::new(&format!("#{}", order.number)).size(Size::Big).bold().center());
    doc.line(Line::new(&order_type(&order.order_type).to_uppercase()).bold().center());
    doc.line(Line::new(when_local).center());
    doc.line(Line::new(&format!("Order {}", order.id)).center());
    doc.push(Block::Rule('='));
    if items.is_empty() {
        doc.line(Line::new("(no items)"));
    }
    for item in items {
        doc.line(item_line(item).size(Size::Tall).bold());
        notes(&mut doc, item.notes.as_deref(), 4, "> ");
    }
    doc.push(Block::Rule('='));
    if order.notes.as_deref().is_some_and(|n| !text::clean(n).is_empty()) {
        doc.line(Line::new("ORDER NOTES").bold());
        notes(&mut doc, order.notes.as_deref(), 0, "");
        doc.push(Block::Rule('-'));
    }
    doc.push(Block::Feed(2));
    doc.push(Block::Cut);
    doc
}

/// Customer receipt: company and branch names, order number, items with quantity × unit
/// price and line totals, subtotal and total, customer, QR of the order id, cut, and the
/// drawer kick — only on the first copy: a reprint or possible duplicate never opens the
/// cash drawer again.
pub fn receipt(order: &Order, shop: &Shop<'_>, banner_text: Option<&str>, when_local: &str) -> Doc {
    let mut doc = Doc::default();
    banner(&mut doc, banner_text);
    doc.line(Line::new(shop.company).bold().center());
    doc.line(Line::new(shop.branch).center());
    doc.push(Block::Rule('-'));
    doc.line(Line::new(&format!("Order #{}", order.number)).size(Size::Big).bold().center());
    doc.line(Line::new(&order_type(&order.order_type)).end(when_local));
    if let Some(name) = customer_field(order.customer.as_ref(), &["name", "fullName", "customerName"]) {
        doc.line(Line::new(&format!("Customer: {name}")));
    }
    if let Some(phone) = customer_field(order.customer.as_ref(), &["phone", "phoneNumber", "mobile"]) {
        doc.line(Line::new(&format!("Phone: {phone}")));
    }
    if let Some(address) = customer_field(order.customer.as_ref(), &["address"]) {
        doc.line(Line::new(&format!("Address: {address}")));
    }
    doc.push(Block::Rule('-'));
    for item in &order.items {
        let total = i128::from(item.quantity) * i128::from(item.unit_price);
        doc.line(item_line(item).end(&money(total, shop.digits)));
        if item.quantity != 1 {
            doc.line(Line::new(&format!("@ {}", money(item.unit_price.into(), shop.digits))).indent(4));
        }
        notes(&mut doc, item.notes.as_deref(), 4, "> ");
    }
    if order.items.is_empty() {
        doc.line(Line::new("(no items)"));
    }
    doc.push(Block::Rule('-'));
    doc.line(Line::new("Subtotal").end(&money(order.subtotal.into(), shop.digits)));
    doc.line(Line::new("TOTAL").end(&money(order.total.into(), shop.digits)).size(Size::Tall).bold());
    doc.push(Block::Rule('-'));
    doc.push(Block::Feed(1));
    doc.push(Block::Qr(order.id.clone()));
    doc.line(Line::new(&order.id).center());
    doc.line(Line::new("Thank you!").center());
    doc.push(Block::Feed(2));
    doc.push(Block::Cut);
    if banner_text.is_none() {
        doc.push(Block::Drawer);
    }
    doc
}

/// The names a receipt is headed with, and the minor-unit digits of the branch's currency
/// (`crate::currency::minor_digits`).
#[derive(Debug, Clone, Copy)]
pub struct Shop<'a> {
    pub company: &'a str,
    pub branch: &'a str,
    pub digits: u8,
}

/// Only a banner (for a raw job sent again: the banner, then the job's own bytes).
pub fn banner_only(banner_text: &str) -> Doc {
    let mut doc = Doc::default();
    banner(&mut doc, Some(banner_text));
    doc
}

/// Test page: printer name, profile, paper geometry, time and correlation id, a column
/// ruler, a code-page sample and an Arabic sample (raster on every profile), QR, cut.
pub fn test_page(printer_name: &str, profile: Profile, geom: Geometry, paper_width: u8, correlation_id: &str, now_local: &str) -> Doc {
    let mut doc = Doc::default();
    doc.line(Line::new("TEST PRINT").size(Size::Big).bold().invert().center());
    doc.push(Block::Feed(1));
    doc.line(Line::new(printer_name).bold().center());
    doc.line(Line::new("Profile").end(profile.id()));
    doc.line(Line::new("Paper").end(&format!("{paper_width} mm, {} cols, {} dots", geom.cols, geom.dots)));
    doc.line(Line::new("Time").end(now_local));
    doc.line(Line::new("Correlation id:"));
    doc.line(Line::new(correlation_id).indent(2));
    doc.push(Block::Rule('-'));
    let ruler: String = (1..=geom.cols).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
    doc.line(Line::new(&ruler));
    doc.line(Line::new("Code page: Café Straße Ñandú"));
    doc.line(Line::new("Euro: 12,50 €"));
    doc.line(Line::new("Кириллица: борщ"));
    doc.line(Line::new("مرحبا بالعالم - طلب رقم 42"));
    doc.push(Block::Rule('-'));
    doc.push(Block::Qr(correlation_id.to_string()));
    doc.push(Block::Feed(2));
    doc.push(Block::Cut);
    doc
}
