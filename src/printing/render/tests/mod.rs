//! Tests of rendering, at the byte level: `jobs` (command sequences, profiles, paper widths,
//! banners, station tickets, hostile input) and `unicode` (code pages, raster text, Arabic).
//! This file holds the shared fixtures and byte helpers. Test-only.

use serde_json::json;

use super::*;
use crate::orders::Status;

mod jobs;
mod unicode;

const PROFILES: [Profile; 4] = [Profile::EpsonTm, Profile::GenericEscPos, Profile::StarLine, Profile::StarRaster];

fn item(name: &str, quantity: i64, unit_price: i64, station: Option<&str>, notes: Option<&str>) -> Item {
    Item { name: name.into(), quantity, unit_price, station: station.map(Into::into), notes: notes.map(Into::into) }
}

fn order(items: Vec<Item>) -> Order {
    let subtotal = items.iter().map(|i| i.quantity.saturating_mul(i.unit_price)).fold(0i64, i64::saturating_add);
    Order {
        id: "ord-7f3a".into(),
        number: 42,
        company_id: "acme".into(),
        branch_id: "downtown".into(),
        order_type: "takeaway".into(),
        status: Status::Pending,
        items,
        subtotal,
        total: subtotal,
        customer: Some(json!({"name": "Jane Roe", "phone": "+1 555 0100"})),
        notes: Some("Ring the bell".into()),
        driver: None,
        cancel_reason: None,
        created_at: "2026-01-01T12:00:00Z".into(),
        updated_at: "2026-01-01T12:00:00Z".into(),
        printing: None,
    }
}

fn sample() -> Order {
    order(vec![
        item("Burger", 2, 1250, Some("grill"), Some("no onions")),
        item("Salad", 1, 800, Some("cold"), None),
        item("Fries", 3, 300, Some("grill"), None),
    ])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

const NOW: &str = "2026-01-01 13:00";
const SHOP: super::Shop<'static> = super::Shop { company: "Mezze House", branch: "Marina", digits: 2 };

/// Parses every `GS v 0` band: (xL+xH*256, yL+yH*256) with a check that the data is there.
fn gs_v0_bands(b: &[u8]) -> Vec<(usize, usize)> {
    let mut bands = Vec::new();
    let mut i = 0;
    while let Some(at) = find(&b[i..], &[0x1D, 0x76, 0x30, 0x00]) {
        let h = i + at;
        let x = usize::from(b[h + 4]) + 256 * usize::from(b[h + 5]);
        let y = usize::from(b[h + 6]) + 256 * usize::from(b[h + 7]);
        assert!(h + 8 + x * y <= b.len(), "band data truncated");
        bands.push((x, y));
        i = h + 8 + x * y;
    }
    bands
}

/// `b` with the data of length-prefixed commands removed (`GS v 0`, `GS ( k`, `ESC GS S`,
/// `ESC GS y D`), so that searching for commands cannot match inside image or QR data.
fn commands(b: &[u8]) -> Vec<u8> {
    let le = |i: usize| usize::from(b[i]) + 256 * usize::from(b[i + 1]);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let skip = if b[i..].starts_with(&[0x1D, 0x76, 0x30]) {
            Some((8, le(i + 4) * le(i + 6)))
        } else if b[i..].starts_with(&[0x1D, 0x28, 0x6B]) {
            Some((5, le(i + 3)))
        } else if b[i..].starts_with(&[0x1B, 0x1D, b'S']) {
            Some((9, le(i + 4) * le(i + 6)))
        } else if b[i..].starts_with(&[0x1B, 0x1D, b'y', b'D']) {
            Some((8, le(i + 6)))
        } else {
            None
        };
        match skip {
            Some((header, data)) => {
                out.extend_from_slice(&b[i..i + header]);
                i += header + data;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}
