//! The printer-independent document a ticket is built as (lines with a style, rules, QR,
//! cut, drawer), and its layout: into character columns (printer fonts and the preview) or
//! into a bitmap (raster text), with word wrap, indentation, alignment and right-to-left.
//!
//! Owns where text goes on the paper. Must not know command bytes (that is `escpos`, driven
//! from `emit`) nor orders (that is `tickets`).

use super::profile::Geometry;
use super::raster::{BIG_PX, Bitmap, Pen, TEXT_PX};
use super::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Size {
    #[default]
    Normal,
    /// Double height (kitchen item lines).
    Tall,
    /// Double width and height (order number, banner).
    Big,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// The start side: left for left-to-right text, right for right-to-left text.
    #[default]
    Start,
    Center,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub size: Size,
    pub bold: bool,
    pub invert: bool,
    pub align: Align,
}

/// One logical line: `start` text (wrapped as needed) and an optional `end` text on the
/// opposite side of the first row (amounts). Texts are cleaned on construction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line {
    pub start: String,
    pub end: String,
    pub style: Style,
    /// Columns of indentation on the start side (notes).
    pub indent: usize,
    /// Paragraph direction; `None` = from the first strong character of `start`.
    pub rtl: Option<bool>,
}

impl Line {
    pub fn new(start: &str) -> Line {
        Line { start: text::clean(start), ..Line::default() }
    }
    pub fn end(mut self, end: &str) -> Line {
        self.end = text::clean(end);
        self
    }
    pub fn bold(mut self) -> Line {
        self.style.bold = true;
        self
    }
    pub fn size(mut self, size: Size) -> Line {
        self.style.size = size;
        self
    }
    pub fn center(mut self) -> Line {
        self.style.align = Align::Center;
        self
    }
    pub fn invert(mut self) -> Line {
        self.style.invert = true;
        self
    }
    pub fn indent(mut self, cols: usize) -> Line {
        self.indent = cols;
        self
    }
    pub fn direction_of(mut self, sample: &str) -> Line {
        self.rtl = Some(text::is_rtl(sample));
        self
    }
    pub fn is_rtl(&self) -> bool {
        self.rtl.unwrap_or_else(|| text::is_rtl(&self.start))
    }
    /// Width multiplier of the style.
    pub fn wide(&self) -> usize {
        if self.style.size == Size::Big { 2 } else { 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Line(Line),
    /// A full-width separator drawn with this ASCII character.
    Rule(char),
    /// Blank lines.
    Feed(u8),
    Qr(String),
    Cut,
    Drawer,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doc {
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn line(&mut self, line: Line) {
        self.blocks.push(Block::Line(line));
    }
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
    pub fn has(&self, wanted: &Block) -> bool {
        self.blocks.iter().any(|b| b == wanted)
    }
}

/// Smallest room left for start text beside an end text before the end text gets its own row.
const MIN_START_COLS: usize = 6;

/// Rows of `line` in a `cols`-column font (columns counted at the line's own width). In
/// `rtl` mode (the preview of right-to-left text) the end text is put on the left and the
/// start text is aligned right, each start wrapped in an isolate so that viewers keep it RTL.
pub fn layout_cols(line: &Line, cols: usize, rtl: bool) -> Vec<String> {
    let width = (cols / line.wide()).max(1);
    let indent = line.indent.min(width / 2);
    let avail = width - indent;
    let end_w = text::columns(&line.end);
    let mut count = |s: &str| text::columns(s);
    let mut rows = Vec::new();
    let inline_end = end_w > 0 && end_w + 1 + MIN_START_COLS <= avail;
    let start_room = if inline_end { avail - end_w - 1 } else { avail };
    let starts = text::wrap(&line.start, start_room, &mut count);
    for (i, s) in starts.iter().enumerate() {
        let pad = start_room.saturating_sub(text::columns(s));
        let (before, after) = if line.style.align == Align::Center && !inline_end { (pad / 2, pad - pad / 2) } else { (0, pad) };
        let shown = if rtl && !s.is_empty() { format!("\u{2067}{s}\u{2069}") } else { s.clone() };
        let mut row = if rtl {
            format!("{}{}{}", " ".repeat(after), shown, " ".repeat(before + indent))
        } else {
            format!("{}{}{}", " ".repeat(indent + before), shown, " ".repeat(after))
        };
        if i == 0 && inline_end {
            row = if rtl { format!("{} {}", line.end, row) } else { format!("{} {}", row, line.end) };
        }
        rows.push(row);
    }
    if end_w > 0 && !inline_end {
        for e in text::wrap(&line.end, avail, &mut count) {
            let pad = " ".repeat(avail.saturating_sub(text::columns(&e)));
            rows.push(if rtl { format!("{e}{pad}") } else { format!("{}{pad}{e}", " ".repeat(indent)) });
        }
    }
    // Trailing blanks are dropped, except where they carry meaning: reversed bars, and the
    // start-side indent of right-to-left rows.
    if !line.style.invert && !rtl {
        for r in &mut rows {
            r.truncate(r.trim_end().len());
        }
    }
    rows
}

/// `line` drawn as an image `geom.dots` wide: shaped, in visual order, wrapped at the paper
/// width, right-aligned when right-to-left.
pub fn layout_raster(line: &Line, geom: Geometry, pen: &mut Pen) -> Bitmap {
    let px = if line.style.size == Size::Big { BIG_PX } else { TEXT_PX };
    let rtl = line.is_rtl();
    let dots = geom.dots as f32;
    let cell = (geom.dots / geom.cols.max(1) * line.wide()) as f32;
    let indent = (line.indent as f32 * cell).min(dots / 2.0);
    let gap = cell;
    let end_visual = text::visual(&line.end, text::is_rtl(&line.end));
    let end_w = pen.measure(&end_visual, px);
    let avail = dots - indent;
    let inline_end = !line.end.is_empty() && end_w + gap + MIN_START_COLS as f32 * cell <= avail;
    let start_room = if inline_end { avail - end_w - gap } else { avail };
    let mut width = |s: &str| pen.measure(&text::visual(s, rtl), px).ceil() as usize;
    let starts = text::wrap(&line.start, start_room.max(1.0) as usize, &mut width);
    let (row_h, baseline) = pen.row_metrics(px);
    let mut out = Bitmap::new(geom.dots, 0);
    for (i, s) in starts.iter().enumerate() {
        let vis = text::visual(s, rtl);
        let w = pen.measure(&vis, px);
        let free = (start_room - w).max(0.0);
        let offset = if line.style.align == Align::Center && !inline_end { free / 2.0 } else { 0.0 };
        // Start side is the left for LTR and the right for RTL; `indent` is on the start side.
        let x = if rtl { dots - indent - offset - w } else { indent + offset };
        let mut row = Bitmap::new(geom.dots, row_h);
        pen.draw(&mut row, &vis, x, baseline, px, line.style.bold);
        if i == 0 && inline_end {
            let ex = if rtl { 0.0 } else { dots - end_w };
            pen.draw(&mut row, &end_visual, ex, baseline, px, line.style.bold);
        }
        out.push_below(&row);
    }
    if !line.end.is_empty() && !inline_end {
        let mut width = |s: &str| pen.measure(&text::visual(s, text::is_rtl(s)), px).ceil() as usize;
        for e in text::wrap(&line.end, avail.max(1.0) as usize, &mut width) {
            let vis = text::visual(&e, text::is_rtl(&e));
            let w = pen.measure(&vis, px);
            let x = if rtl { 0.0 } else { dots - w };
            let mut row = Bitmap::new(geom.dots, row_h);
            pen.draw(&mut row, &vis, x, baseline, px, line.style.bold);
            out.push_below(&row);
        }
    }
    if line.style.invert {
        out.invert();
    }
    if line.style.size == Size::Tall { out.double_height() } else { out }
}

/// A separator as an image: one row of text height with a 2-dot line (two lines for `=`).
pub fn rule_raster(c: char, geom: Geometry, pen: &Pen) -> Bitmap {
    let (row_h, _) = pen.row_metrics(TEXT_PX);
    let mut bmp = Bitmap::new(geom.dots, row_h);
    let mid = (row_h / 2) as i64;
    if c == '=' {
        bmp.fill_rect(0, mid - 3, geom.dots as i64, 2);
        bmp.fill_rect(0, mid + 1, geom.dots as i64, 2);
    } else {
        bmp.fill_rect(0, mid - 1, geom.dots as i64, 2);
    }
    bmp
}
