//! Byte-level tests of rendering: command sequences, code pages, raster headers, Arabic,
//! Star profiles, paper widths, banners, station tickets and hostile input. Test-only.

use serde_json::json;

use super::doc::{Line, layout_raster};
use super::profile::geometry;
use super::raster::Pen;
use super::*;
use crate::orders::Status;

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

#[test]
fn every_job_starts_with_init() {
    for p in PROFILES {
        for w in [58, 80] {
            assert_eq!(&receipt(&sample(), w, &p, None, NOW).bytes[..2], &[0x1B, 0x40], "{p:?} {w}");
            assert_eq!(&kitchen_ticket(&sample(), None, &sample().items, w, &p, None, NOW).bytes[..2], &[0x1B, 0x40]);
            assert_eq!(&test_page("Bar", w, &p, "c-1", NOW).bytes[..2], &[0x1B, 0x40]);
        }
    }
}

#[test]
fn epson_receipt_cuts_then_kicks_the_drawer_with_five_bytes() {
    let b = receipt(&sample(), 80, &Profile::EpsonTm, None, NOW).bytes;
    let cut = find(&b, &[0x1D, 0x56, 66, 3]).expect("GS V 66 3");
    let kick = find(&b, &[0x1B, 0x70, 0x00, 0x19, 0xFA]).expect("ESC p 0 25 250");
    assert!(cut < kick);
    assert_eq!(count(&b, &[0x1B, 0x70]), 1, "exactly one drawer command");
    assert_eq!(kick + 5, b.len(), "the kick is the last command");
    // Generic clones get a feed and a function-A full cut.
    let g = receipt(&sample(), 80, &Profile::GenericEscPos, None, NOW).bytes;
    assert!(find(&g, &[0x1B, b'd', 4, 0x1D, 0x56, 0]).is_some());
    // Kitchen tickets cut but never open the drawer.
    let k = kitchen_ticket(&sample(), None, &sample().items, 80, &Profile::EpsonTm, None, NOW).bytes;
    assert!(find(&k, &[0x1D, 0x56, 66, 3]).is_some());
    assert!(find(&k, &[0x1B, 0x70]).is_none());
}

#[test]
fn qr_code_sequence_has_model_2_and_correct_lengths() {
    let o = sample();
    let b = receipt(&o, 58, &Profile::EpsonTm, None, NOW).bytes;
    let at = find(&b, &[0x1D, 0x28, 0x6B, 4, 0, 49, 65, 50, 0]).expect("select model 2");
    let rest = &b[at + 9..];
    assert_eq!(&rest[..8], &[0x1D, 0x28, 0x6B, 3, 0, 49, 67, 6], "module size 6");
    assert_eq!(&rest[8..16], &[0x1D, 0x28, 0x6B, 3, 0, 49, 69, 49], "error correction M");
    let id = o.id.as_bytes();
    let p = (id.len() + 3) as u16;
    assert_eq!(&rest[16..24], &[0x1D, 0x28, 0x6B, p as u8, (p >> 8) as u8, 49, 80, 48], "store, pL pH = k + 3");
    assert_eq!(&rest[24..24 + id.len()], id);
    assert_eq!(&rest[24 + id.len()..32 + id.len()], &[0x1D, 0x28, 0x6B, 3, 0, 49, 81, 48], "print");
    // Centred while printing, left alignment restored after.
    assert_eq!(&b[at - 3..at], &[0x1B, b'a', 1]);
    assert_eq!(&rest[32 + id.len()..35 + id.len()], &[0x1B, b'a', 0]);
}

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

#[test]
fn raster_lines_use_gs_v_0_with_paper_width_bytes() {
    let o = order(vec![item("شاورما دجاج", 2, 1500, None, None)]);
    for (w, xbytes) in [(58, 48), (80, 72)] {
        let b = receipt(&o, w, &Profile::EpsonTm, None, NOW).bytes;
        let bands = gs_v0_bands(&b);
        assert!(!bands.is_empty(), "Arabic item must be rasterised");
        for (x, y) in bands {
            assert_eq!(x, xbytes);
            assert!((1..=240).contains(&y));
        }
        assert!(find(&b, "شاورما".as_bytes()).is_none(), "no UTF-8 sent to the printer");
    }
}

#[test]
fn cafe_uses_a_code_page_and_euro_switches_or_rasters() {
    let o = order(vec![item("Café", 1, 350, None, None), item("Tarte 2 €", 1, 200, None, None)]);
    for p in [Profile::EpsonTm, Profile::GenericEscPos] {
        let b = receipt(&o, 80, &p, None, NOW).bytes;
        assert_eq!(&b[2..8], &[0x1B, b'R', 0, 0x1B, b't', 0], "{p:?}: USA set, CP437 selected after init");
        assert!(find(&b, b"Caf\x82").is_some(), "{p:?}: é is 0x82 in CP437");
    }
    let epson = receipt(&o, 80, &Profile::EpsonTm, None, NOW).bytes;
    let sel = find(&epson, &[0x1B, b't', 19]).expect("CP858 selected for €");
    assert!(find(&epson[sel..], b"Tarte 2 \xD5").is_some(), "€ is 0xD5 in CP858");
    let generic = receipt(&o, 80, &Profile::GenericEscPos, None, NOW).bytes;
    assert!(find(&generic, &[0x1B, b't', 19]).is_none(), "generic never leaves CP437");
    assert!(!gs_v0_bands(&generic).is_empty(), "generic prints € as raster");
    let star = receipt(&o, 80, &Profile::StarLine, None, NOW).bytes;
    assert!(find(&star, &[0x1B, 0x1D, b't', 1]).is_some() && find(&star, b"Caf\x82").is_some());
    assert!(find(&star, &[0x1B, 0x1D, b't', 4]).is_some(), "Star CP858 selector for €");
}

#[test]
fn arabic_is_shaped_into_glyphs_the_font_has() {
    let pen = Pen::new();
    let visual = text::visual("شاورما لحم", true);
    assert!(visual.chars().all(|c| c == ' ' || ('\u{fb50}'..='\u{feff}').contains(&c)), "presentation forms: {visual:?}");
    assert!(visual.chars().all(|c| pen.has_glyph(c)), "DejaVu Sans has every shaped form");
    // Visual order is reversed: the first logical letter (sheen) ends up rightmost.
    let last = visual.chars().last().unwrap();
    assert!(('\u{feb5}'..='\u{feb8}').contains(&last), "sheen form last, got {last:?}");
    // Lam-alef becomes one ligature glyph.
    assert!(text::visual("سلام", true).contains('\u{fefc}') || text::visual("سلام", true).contains('\u{fefb}'));
}

#[test]
fn short_rtl_line_is_right_aligned_in_the_raster() {
    let geom = geometry(80);
    let mut pen = Pen::new();
    let bmp = layout_raster(&Line::new("سلطة"), geom, &mut pen);
    assert!(!bmp.is_blank());
    let ink = |x0: usize, x1: usize| (0..bmp.height).any(|y| (x0..x1).any(|x| bmp.get(x, y)));
    assert!(!ink(0, geom.dots / 2), "left half blank for a short RTL line");
    assert!(ink(geom.dots - 80, geom.dots), "ink at the right edge");
    // LTR text is the mirror image.
    let ltr = layout_raster(&Line::new("Ωμέγα"), geom, &mut pen);
    assert!((0..ltr.height).any(|y| (0..80).any(|x| ltr.get(x, y))));
    assert!(!(0..ltr.height).any(|y| (geom.dots / 2..geom.dots).any(|x| ltr.get(x, y))));
}

#[test]
fn rtl_item_keeps_its_amount_on_the_left() {
    let geom = geometry(58);
    let mut pen = Pen::new();
    let line = Line::new("2 x كباب").direction_of("كباب").end("30.00");
    let bmp = layout_raster(&line, geom, &mut pen);
    let ink = |x0: usize, x1: usize| (0..bmp.height).any(|y| (x0..x1).any(|x| bmp.get(x, y)));
    assert!(ink(0, 40), "amount at the left edge");
    assert!(ink(geom.dots - 40, geom.dots), "item at the right edge");
    assert!(!ink(150, 230), "gap between them");
}

#[test]
fn star_line_uses_star_commands_only() {
    let o = order(vec![item("Burger", 2, 1250, None, None), item("فلافل", 1, 500, None, None)]);
    let b = receipt(&o, 80, &Profile::StarLine, Some("REPRINT"), NOW).bytes;
    assert!(find(&b, &[0x1B, b'd', 3]).is_some(), "Star cut ESC d 3");
    assert!(find(&b, &[0x1B, 0x07, 20, 20, 0x07]).is_some(), "Star drawer ESC BEL n1 n2 BEL");
    assert!(find(&b, &[0x1B, 0x1D, b'y', b'S', b'0', 2]).is_some(), "Star QR model 2");
    assert!(find(&b, &[0x1B, 0x1D, b'S', 1]).is_some(), "Star raster for Arabic");
    assert!(find(&b, &[0x1B, b'4']).is_some() && find(&b, &[0x1B, b'i', 1, 1]).is_some(), "Star highlight + expansion");
    for esc_pos in [&[0x1D, 0x56][..], &[0x1B, 0x70], &[0x1D, 0x28, 0x6B], &[0x1D, 0x76, 0x30], &[0x1D, b'!'], &[0x1D, b'B']] {
        assert!(find(&b, esc_pos).is_none(), "ESC/POS command {esc_pos:02x?} in a Star job");
    }
}

#[test]
fn star_raster_sends_everything_as_an_image() {
    let b = receipt(&sample(), 80, &Profile::StarRaster, None, NOW).bytes;
    assert!(b.starts_with(b"\x1b@\x1b*rR\x1b*rA\x1b*rP0\x00\x1b*rD1\x00\x1b*rE13\x00"));
    assert!(b.ends_with(b"\x1b\x0c\x04\x1b*rB"));
    assert!(find(&b, b"Burger").is_none(), "no text in a raster-only job");
    assert!(find(&b, &[0x1D, 0x76, 0x30]).is_none() && find(&b, &[0x1D, 0x56]).is_none());
    // Walk the rows: every row is `b nL nH` with at most 72 bytes, or an `ESC * r Y n NUL` skip.
    let mut i = b"\x1b@\x1b*rR\x1b*rA\x1b*rP0\x00\x1b*rD1\x00\x1b*rE13\x00".len();
    let end = b.len() - 7;
    let mut rows = 0;
    while i < end {
        if b[i] == b'b' {
            let n = usize::from(b[i + 1]) + 256 * usize::from(b[i + 2]);
            assert!((1..=72).contains(&n));
            i += 3 + n;
            rows += 1;
        } else {
            assert_eq!(&b[i..i + 4], b"\x1b*rY", "at {i}");
            i += b[i..].iter().position(|c| *c == 0).unwrap() + 1;
        }
    }
    assert_eq!(i, end);
    assert!(rows > 100);
    let k = kitchen_ticket(&sample(), None, &sample().items, 58, &Profile::StarRaster, None, NOW).bytes;
    assert!(find(&k, b"\x1b*rD0\x00").is_some(), "no drawer on kitchen tickets");
}

#[test]
fn column_widths_follow_the_paper() {
    let long = "Extra large double cheeseburger with caramelised onions and a side of everything";
    let o = order(vec![item(long, 1, 999, None, Some(long))]);
    for (w, cols) in [(58, 32), (80, 48)] {
        let r = receipt(&o, w, &Profile::EpsonTm, None, NOW);
        let rule = vec![b'-'; cols];
        assert!(find(&r.bytes, &[&rule[..], b"\n"].concat()).is_some());
        assert!(find(&r.bytes, &vec![b'-'; cols + 1]).is_none());
        for line in r.preview.lines() {
            assert!(line.chars().count() <= cols, "{w} mm: {line:?}");
        }
        // The long name wraps, its total stays on the first row at the right edge.
        let first = r.preview.lines().find(|l| l.starts_with("1 x Extra")).unwrap();
        assert_eq!(first.chars().count(), cols);
        assert!(first.ends_with(" 9.99"));
        assert!(r.preview.contains("everything"));
    }
}

#[test]
fn banner_is_printed_big_and_reversed_when_given() {
    for p in [Profile::EpsonTm, Profile::GenericEscPos] {
        let with = kitchen_ticket(&sample(), None, &sample().items, 80, &p, Some("POSSIBLE DUPLICATE"), NOW);
        let at = find(&with.bytes, b"POSSIBLE DUPLICATE").expect("banner text");
        let head = &with.bytes[..at];
        assert!(find(head, &[0x1D, b'!', 0x11]).is_some() && find(head, &[0x1D, b'B', 1]).is_some());
        assert!(with.preview.starts_with("           *** POSSIBLE DUPLICATE ***\n"), "{}", with.preview);
        let without = kitchen_ticket(&sample(), None, &sample().items, 80, &p, None, NOW);
        assert!(find(&without.bytes, b"DUPLICATE").is_none() && find(&without.bytes, &[0x1D, b'B', 1]).is_none());
    }
}

#[test]
fn station_ticket_lists_only_that_station() {
    let o = sample();
    let groups = station_groups(&o.items);
    assert_eq!(groups.iter().map(|g| g.0.as_deref()).collect::<Vec<_>>(), vec![Some("grill"), Some("cold")]);
    let (station, items) = &groups[0];
    let r = kitchen_ticket(&o, station.as_deref(), items, 58, &Profile::EpsonTm, None, NOW);
    assert!(find(&r.bytes, b"GRILL").is_some());
    assert!(find(&r.bytes, b"2 x Burger").is_some() && find(&r.bytes, b"3 x Fries").is_some());
    assert!(find(&r.bytes, b"Salad").is_none() && !r.preview.contains("Salad"));
    assert!(r.preview.contains("    > no onions"), "notes indented:\n{}", r.preview);
    assert!(r.preview.contains("#42") && r.preview.contains("TAKEAWAY") && r.preview.contains(NOW));
    assert!(r.preview.contains("Ring the bell"));
}

#[test]
fn golden_kitchen_ticket_preview_58mm() {
    let o = order(vec![item("Burger", 2, 1250, Some("grill"), Some("no onions\nwell done"))]);
    let r = kitchen_ticket(&o, Some("grill"), &o.items, 58, &Profile::GenericEscPos, None, NOW);
    let expected = [
        "             GRILL",
        "              #42",
        "            TAKEAWAY",
        "        2026-01-01 13:00",
        "         Order ord-7f3a",
        "================================",
        "2 x Burger",
        "    > no onions",
        "    > well done",
        "================================",
        "ORDER NOTES",
        "Ring the bell",
        "--------------------------------",
        "",
        "",
        "[cut]",
        "",
    ]
    .join("\n");
    assert_eq!(r.preview, expected);
}

#[test]
fn hostile_and_extreme_input_never_panics_nor_injects_commands() {
    let evil = "Soup\x1b@\x1bp\x00\x19\u{fa}\x1dV\x00\u{85}\u{9b}";
    let mut o = order(vec![
        item(evil, i64::MAX, i64::MAX, Some("grill\x1b"), Some("\x1bp\x00\x19\u{fa} note\r\n\ttab")),
        item(&"W".repeat(5000), -3, i64::MIN, None, Some(&"ملاحظة طويلة ".repeat(40))),
        item("", 0, 0, Some(""), Some("")),
        item("\u{202e}\u{200f}🍔 بيتزا 中文 עברית", 1, 1, None, None),
    ]);
    o.customer = Some(json!({"name": {"nested": true}, "phone": 5550100, "address": "\x1b@ شارع ١٢"}));
    o.notes = Some("\x00\x1b\x1d".into());
    for p in PROFILES {
        for w in [0, 58, 80, 255] {
            let r = receipt(&o, w, &p, Some("RE\x1bPRINT"), "\x1b@now");
            assert_eq!(count(&r.bytes, &[0x1B, 0x40]), 1, "{p:?}: one ESC @, the first");
            if p.prints_text() {
                assert!(find(&r.bytes, b"Soup@").is_some() || find(&r.bytes, b"Soup").is_some());
                assert_eq!(count(&r.bytes, &[0x1B, 0x70]), usize::from(p.speaks_escpos()), "{p:?}: only our drawer kick");
                assert!(find(&r.bytes, b"RE\x1b").is_none());
            }
            let k = kitchen_ticket(&o, Some("\x1b"), &o.items, w, &p, None, "");
            assert_eq!(count(&k.bytes, &[0x1B, 0x40]), 1);
            let empty = order(vec![]);
            assert!(!receipt(&empty, w, &p, None, NOW).bytes.is_empty());
            assert!(kitchen_ticket(&empty, None, &[], w, &p, Some(""), NOW).preview.contains("(no items)"));
        }
    }
}

#[test]
fn money_has_two_decimals() {
    assert_eq!(tickets::money(1250), "12.50");
    assert_eq!(tickets::money(5), "0.05");
    assert_eq!(tickets::money(-5), "-0.05");
    assert_eq!(tickets::money(0), "0.00");
    assert_eq!(
        tickets::money(i128::from(i64::MIN) * i128::from(i64::MAX)),
        format!("-{}.{}", 85070591730234615856620279821087277056u128 / 100, "56")
    );
}

#[test]
fn profile_names_map_to_profiles() {
    for (name, p) in [
        (Some("epson-tm-t20"), Profile::EpsonTm),
        (Some("Epson TM-m30"), Profile::EpsonTm),
        (Some("tm_t88v"), Profile::EpsonTm),
        (Some("generic"), Profile::GenericEscPos),
        (Some("xprinter-xp58"), Profile::GenericEscPos),
        (Some(""), Profile::GenericEscPos),
        (None, Profile::GenericEscPos),
        (Some("star-tsp650"), Profile::StarLine),
        (Some("Star TSP654II"), Profile::StarLine),
        (Some("star-line"), Profile::StarLine),
        (Some("star-tsp100"), Profile::StarRaster),
        (Some("star-tsp143iii"), Profile::StarRaster),
        (Some("tsp100"), Profile::StarRaster),
        (Some("star-raster"), Profile::StarRaster),
    ] {
        assert_eq!(profile_for(name), p, "{name:?}");
    }
}

#[test]
fn raw_is_passed_through_with_a_hex_preview() {
    let data: Vec<u8> = (0..=255u8).cycle().take(600).collect();
    let r = raw(&data);
    assert_eq!(r.bytes, data);
    assert!(r.preview.starts_with("RAW 600 bytes\n00000000  00 01 02"));
    assert!(r.preview.contains("|.... !\"#$%&'()*+,-./|") || r.preview.contains(" !\"#$%&'()*+,-./|"));
    assert!(r.preview.ends_with("... 88 more bytes\n"));
    assert_eq!(raw(&[]).preview, "RAW 0 bytes\n");
}

#[test]
fn test_page_names_printer_profile_and_correlation_id() {
    let r = test_page("Kitchen 1", 80, &Profile::EpsonTm, "corr-123", NOW);
    for s in ["TEST PRINT", "Kitchen 1", "epson-tm", "80 mm, 48 cols, 576 dots", "corr-123", NOW] {
        assert!(r.preview.contains(s), "{s} in\n{}", r.preview);
    }
    assert!(find(&r.bytes, b"corr-123").is_some());
    assert!(!gs_v0_bands(&r.bytes).is_empty(), "the Arabic sample is rasterised");
}

/// Writes the receipt of an Arabic order, as a raster-only printer would print it, to
/// `docs/screenshots/render-arabic-receipt.png`. Run with `--ignored` to refresh it.
#[test]
#[ignore]
fn write_arabic_receipt_png() {
    let mut o = order(vec![
        item("شاورما دجاج", 2, 1500, Some("grill"), Some("بدون بصل")),
        item("فلافل (كبير)", 1, 900, Some("grill"), None),
        item("Café latte", 2, 450, Some("bar"), None),
    ]);
    o.customer = Some(json!({"name": "أحمد علي", "phone": "+971 50 123 4567"}));
    let doc = tickets::receipt(&o, Some("REPRINT"), NOW);
    let geom = geometry(80);
    let mut pen = Pen::new();
    let mut page = super::raster::Bitmap::new(geom.dots, 0);
    for block in &doc.blocks {
        if let Some(b) = emit::block_raster(block, geom, &mut pen) {
            page.push_below(&b);
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots/render-arabic-receipt.png");
    let file = std::fs::File::create(&path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), geom.dots as u32, page.height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let pixels: Vec<u8> =
        (0..page.height).flat_map(|y| (0..page.width).map(move |x| (x, y))).map(|(x, y)| if page.get(x, y) { 0 } else { 255 }).collect();
    enc.write_header().unwrap().write_image_data(&pixels).unwrap();
}

#[test]
fn debug_visual_tmp() {
    for s in ["> بدون بصل", "Customer: أحمد علي", "فلافل (كبير)"] {
        let v = text::visual(s, true);
        eprintln!("{s:?} -> {:?}", v.chars().map(|c| format!("{:04x}", c as u32)).collect::<Vec<_>>());
    }
}
