//! Rendering of print jobs: kitchen tickets, receipts, test pages and raw passthrough, to the
//! bytes a printer of a given [`Profile`] understands plus a plain-text preview.
//!
//! Pure: no I/O, no clock, no global state; the same input always gives the same bytes, and
//! no input panics. Every job starts with `ESC @`. Text is printed with the printer's own
//! font when one of its code pages has every character of a line, otherwise as a raster
//! image drawn with the embedded DejaVu Sans (Arabic shaped and laid out right-to-left).
//! Control characters are stripped from all text, so order content cannot inject commands.
//! Must not know how bytes reach the printer (drivers) nor when to print (the queue).
//!
//! Files: `profile` (profiles, geometry), `codepage` (tables, encoder), `text` (cleaning,
//! bidi, shaping, wrap), `raster` (bitmaps, font, QR), `escpos` (command bytes), `doc`
//! (document model, layout), `emit` (doc → job bytes, preview), `tickets` (content).

mod codepage;
mod doc;
mod emit;
mod escpos;
mod profile;
mod raster;
#[cfg(test)]
mod tests;
mod text;
mod tickets;

pub use codepage::CodePage;
pub use profile::{Profile, profile_for};
pub use tickets::Shop;

use crate::orders::{Item, Order};

/// A rendered job: the bytes for the printer and a UTF-8 plain-text rendition of what they
/// print, for the dashboard and the virtual printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub preview: String,
}

fn render(doc: &doc::Doc, paper_width: u8, profile: &Profile) -> Rendered {
    let geom = profile::geometry(paper_width);
    Rendered { bytes: emit::bytes(doc, *profile, geom), preview: emit::preview(doc, geom.cols) }
}

/// The kitchen ticket of `order` for `station` (`None`: a ticket titled "KITCHEN"), listing
/// exactly `items` (see [`station_groups`]). `banner` (e.g. "REPRINT") is printed large and
/// reversed at the top; `when_local` is the preformatted time of the order.
pub fn kitchen_ticket(
    order: &Order,
    station: Option<&str>,
    items: &[Item],
    paper_width: u8,
    profile: &Profile,
    banner: Option<&str>,
    when_local: &str,
) -> Rendered {
    render(&tickets::kitchen(order, station, items, banner, when_local), paper_width, profile)
}

/// The customer receipt of `order`, headed with `shop`'s names: items, totals, customer, QR
/// code of the order id, cut, and the cash-drawer kick on the first copy only.
pub fn receipt(order: &Order, shop: &Shop<'_>, paper_width: u8, profile: &Profile, banner: Option<&str>, when_local: &str) -> Rendered {
    render(&tickets::receipt(order, shop, banner, when_local), paper_width, profile)
}

/// A test page naming the printer, its profile and geometry, with the correlation id of
/// the test-print request.
pub fn test_page(printer_name: &str, paper_width: u8, profile: &Profile, correlation_id: &str, now_local: &str) -> Rendered {
    let geom = profile::geometry(paper_width);
    render(&tickets::test_page(printer_name, *profile, geom, paper_width, correlation_id, now_local), paper_width, profile)
}

/// A "raw" job: `data` is sent exactly as given (no `ESC @` added); the preview is a hex
/// and ASCII dump of its first 512 bytes.
pub fn raw(data: &[u8]) -> Rendered {
    const SHOWN: usize = 512;
    let mut preview = format!("RAW {} bytes\n", data.len());
    for (i, chunk) in data[..data.len().min(SHOWN)].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk.iter().map(|b| if b.is_ascii_graphic() || *b == b' ' { char::from(*b) } else { '.' }).collect();
        preview.push_str(&format!("{:08x}  {:<47}  |{}|\n", i * 16, hex.join(" "), ascii));
    }
    if data.len() > SHOWN {
        preview.push_str(&format!("... {} more bytes\n", data.len() - SHOWN));
    }
    Rendered { bytes: data.to_vec(), preview }
}

/// A raw job sent again (`banner`: "REPRINT", "POSSIBLE DUPLICATE"): the banner in the
/// printer's own commands, then `data` exactly as given.
pub fn raw_with_banner(data: &[u8], banner: Option<&str>, paper_width: u8, profile: &Profile) -> Rendered {
    let job = raw(data);
    let Some(banner) = banner else { return job };
    let head = render(&tickets::banner_only(banner), paper_width, profile);
    let mut bytes = head.bytes;
    bytes.extend_from_slice(&job.bytes);
    Rendered { bytes, preview: format!("{}{}", head.preview, job.preview) }
}

/// The items of `items` grouped by station, in order of first appearance; items without a
/// station form the `None` group. One kitchen ticket per group.
pub fn station_groups(items: &[Item]) -> Vec<(Option<String>, Vec<Item>)> {
    let mut groups: Vec<(Option<String>, Vec<Item>)> = Vec::new();
    for item in items {
        let key = item.station.clone().filter(|s| !s.trim().is_empty());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(item.clone()),
            None => groups.push((key, vec![item.clone()])),
        }
    }
    groups
}
