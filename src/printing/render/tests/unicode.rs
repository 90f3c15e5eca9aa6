//! Text that is not plain ASCII: code-page selection, raster text (`GS v 0` headers), Arabic
//! shaping and right-to-left layout, and the PNG screenshot of an Arabic receipt.

use serde_json::json;

use super::super::doc::{Line, layout_raster};
use super::super::profile::geometry;
use super::super::raster::Pen;
use super::super::{emit, text, tickets};
use super::*;

#[test]
fn raster_lines_use_gs_v_0_with_paper_width_bytes() {
    let o = order(vec![item("شاورما دجاج", 2, 1500, None, None)]);
    for (w, xbytes) in [(58, 48), (80, 72)] {
        let b = receipt(&o, &SHOP, w, &Profile::EpsonTm, None, NOW).bytes;
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
        let b = receipt(&o, &SHOP, 80, &p, None, NOW).bytes;
        assert_eq!(&b[2..8], &[0x1B, b'R', 0, 0x1B, b't', 0], "{p:?}: USA set, CP437 selected after init");
        assert!(find(&b, b"Caf\x82").is_some(), "{p:?}: é is 0x82 in CP437");
    }
    let epson = receipt(&o, &SHOP, 80, &Profile::EpsonTm, None, NOW).bytes;
    let sel = find(&epson, &[0x1B, b't', 19]).expect("CP858 selected for €");
    assert!(find(&epson[sel..], b"Tarte 2 \xD5").is_some(), "€ is 0xD5 in CP858");
    let generic = receipt(&o, &SHOP, 80, &Profile::GenericEscPos, None, NOW).bytes;
    assert!(find(&generic, &[0x1B, b't', 19]).is_none(), "generic never leaves CP437");
    assert!(!gs_v0_bands(&generic).is_empty(), "generic prints € as raster");
    let star = receipt(&o, &SHOP, 80, &Profile::StarLine, None, NOW).bytes;
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
    let doc = tickets::receipt(&o, &SHOP, Some("REPRINT"), NOW);
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
