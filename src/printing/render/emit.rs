//! Turns a [`Doc`] into the bytes of one print job for a [`Profile`], and into the plain-text
//! preview. For each line it decides between the printer's own font (when one code page of
//! the profile has every character) and a raster image of the text.
//!
//! Owns the order of commands in a job: init first, styles set and reset around each line,
//! cut and drawer last. Must not lay text out (that is `doc`) nor know command bytes (that is
//! `escpos`).

use super::codepage::{self, CodePage};
use super::doc::{Align, Block, Doc, Line, Size, layout_cols, layout_raster, rule_raster};
use super::escpos::{self, EscPos, LF, StarLine, TextPrinter, star_raster};
use super::profile::{Geometry, Profile};
use super::raster::{Bitmap, Pen, qr_bitmap};

/// Dots per QR module (ESC/POS) / cell size (Star): about 3.75 mm per 6 dots at 203 dpi.
const QR_MODULE: u8 = 6;

/// The print job of `doc` for `profile` on paper of `geom`.
pub fn bytes(doc: &Doc, profile: Profile, geom: Geometry) -> Vec<u8> {
    let mut pen = Pen::new();
    let mut out = Vec::new();
    let printer: &dyn TextPrinter = match profile {
        Profile::EpsonTm => &EscPos { partial_cut: true },
        Profile::GenericEscPos => &EscPos { partial_cut: false },
        Profile::StarLine => &StarLine,
        Profile::StarRaster => {
            star_raster::start(&mut out, doc.has(&Block::Drawer), doc.has(&Block::Cut));
            for block in &doc.blocks {
                if let Some(bmp) = block_raster(block, geom, &mut pen) {
                    star_raster::rows(&mut out, &bmp);
                }
            }
            star_raster::end(&mut out);
            return out;
        }
    };
    printer.init(&mut out);
    // Select the first code page explicitly: ESC @ restores the printer's configured default,
    // which need not be CP437.
    let mut current = profile.code_pages().first().map(|(_, n)| *n);
    if let Some(n) = current {
        printer.code_page(&mut out, n);
    }
    for block in &doc.blocks {
        match block {
            Block::Line(line) => match codepage::pick(profile.code_pages(), &[&line.start, &line.end]) {
                Some(&(page, n)) => {
                    if current != Some(n) {
                        printer.code_page(&mut out, n);
                        current = Some(n);
                    }
                    text_line(&mut out, printer, line, page, geom);
                }
                None => printer.raster(&mut out, &layout_raster(line, geom, &mut pen)),
            },
            Block::Rule(c) => {
                let c = if c.is_ascii_graphic() { *c } else { '-' };
                out.extend(std::iter::repeat_n(c as u8, geom.cols));
                out.push(LF);
            }
            Block::Feed(n) => out.extend(std::iter::repeat_n(LF, usize::from(*n))),
            Block::Qr(data) => {
                printer.align(&mut out, 1);
                printer.qr(&mut out, data.as_bytes(), QR_MODULE);
                printer.align(&mut out, 0);
                out.push(LF);
            }
            Block::Cut => printer.cut(&mut out),
            Block::Drawer => printer.drawer_kick(&mut out),
        }
    }
    out
}

/// A line in the printer's font: style on, encoded rows each ended by LF, style off.
fn text_line(out: &mut Vec<u8>, printer: &dyn TextPrinter, line: &Line, page: CodePage, geom: Geometry) {
    let st = line.style;
    let (w, h) = match st.size {
        Size::Normal => (1, 1),
        Size::Tall => (1, 2),
        Size::Big => (2, 2),
    };
    if st.bold {
        printer.bold(out, true);
    }
    if st.size != Size::Normal {
        printer.size(out, w, h);
    }
    if st.invert {
        printer.invert(out, true);
    }
    for row in layout_cols(line, geom.cols, false) {
        // Rows only hold characters of `line` plus spaces, so they encode; '?' is a fallback.
        out.extend(page.encode(&row).unwrap_or_else(|| row.chars().map(|c| if c.is_ascii_graphic() { c as u8 } else { b'?' }).collect()));
        out.push(LF);
    }
    if st.invert {
        printer.invert(out, false);
    }
    if st.size != Size::Normal {
        printer.size(out, 1, 1);
    }
    if st.bold {
        printer.bold(out, false);
    }
}

/// A block as an image for raster-only printers (`None`: nothing to draw).
pub(super) fn block_raster(block: &Block, geom: Geometry, pen: &mut Pen) -> Option<Bitmap> {
    match block {
        Block::Line(line) => Some(layout_raster(line, geom, pen)),
        Block::Rule(c) => Some(rule_raster(*c, geom, pen)),
        Block::Feed(n) => Some(Bitmap::new(geom.dots, pen.row_metrics(super::raster::TEXT_PX).0 * usize::from(*n))),
        Block::Qr(data) if data.len() <= escpos::MAX_QR_DATA => qr_bitmap(data.as_bytes(), geom.dots),
        Block::Qr(_) | Block::Cut | Block::Drawer => None,
    }
}

/// The plain-text (UTF-8) rendition of `doc` in `cols` columns: what a virtual printer
/// shows. Raster lines appear as their text; reversed lines as `*** text ***`; QR, cut and
/// drawer as `[QR …]`, `[cut]`, `[drawer]`. Double-width lines keep their
/// printed wrapping (half the columns).
pub fn preview(doc: &Doc, cols: usize) -> String {
    let mut out = String::new();
    for block in &doc.blocks {
        match block {
            Block::Line(line) => {
                let mut l = line.clone();
                let (wide, invert) = (l.style.size == Size::Big, l.style.invert);
                l.style.size = Size::Normal;
                l.style.invert = false;
                let mut width = if wide { cols / 2 } else { cols };
                if invert {
                    width = width.min(cols.saturating_sub(8)).max(1);
                }
                for row in layout_cols(&l, width, line.is_rtl()) {
                    let row = if invert { format!("*** {} ***", row.trim()) } else { row };
                    let row = if (wide || invert) && l.style.align == Align::Center { center(&row, cols) } else { row };
                    out.push_str(&row);
                    out.push('\n');
                }
            }
            Block::Rule(c) => {
                out.extend(std::iter::repeat_n(*c, cols));
                out.push('\n');
            }
            Block::Feed(n) => out.extend(std::iter::repeat_n('\n', usize::from(*n))),
            Block::Qr(data) => {
                out.push_str(&center(&format!("[QR {data}]"), cols));
                out.push('\n');
            }
            Block::Cut => out.push_str("[cut]\n"),
            Block::Drawer => out.push_str("[drawer]\n"),
        }
    }
    out
}

fn center(s: &str, cols: usize) -> String {
    let s = s.trim();
    let pad = cols.saturating_sub(super::text::columns(s)) / 2;
    format!("{}{s}", " ".repeat(pad))
}
