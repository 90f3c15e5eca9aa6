//! Pixels: 1-bit bitmaps, text drawn with the embedded DejaVu Sans font (pure-Rust
//! `ab_glyph` rasteriser, glyphs cached per render), QR symbols, and packing to printer rows.
//!
//! Owns everything measured in dots. Must not know printer commands (the command builders
//! wrap the packed rows) nor decide what text says; text arrives already in visual order.

use std::collections::HashMap;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};

/// DejaVu Sans (Bitstream Vera licence, see `assets/fonts/DejaVu-LICENSE.txt`): Latin, Greek,
/// Cyrillic, Hebrew and Arabic including the presentation forms that shaping produces.
static FONT_DATA: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans.ttf"));

/// Pixel size of normal text (about the height of ESC/POS Font A) and of double-size text.
pub const TEXT_PX: f32 = 26.0;
pub const BIG_PX: f32 = 52.0;

/// A 1-bit image, row-major; `true` is a black dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: usize,
    pub height: usize,
    px: Vec<bool>,
}

impl Bitmap {
    pub fn new(width: usize, height: usize) -> Bitmap {
        Bitmap { width, height, px: vec![false; width * height] }
    }

    /// Sets a dot; coordinates outside the image are ignored.
    pub fn set(&mut self, x: i64, y: i64) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.px[y as usize * self.width + x as usize] = true;
        }
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.px[y * self.width + x]
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy);
            }
        }
    }

    pub fn invert(&mut self) {
        self.px.iter_mut().for_each(|p| *p = !*p);
    }

    /// Appends `other` below this image (widths must match; a narrower one is left-aligned).
    pub fn push_below(&mut self, other: &Bitmap) {
        for y in 0..other.height {
            for x in 0..self.width {
                self.px.push(other.get(x, y));
            }
        }
        self.height += other.height;
    }

    /// Every row twice: the raster equivalent of double-height characters.
    pub fn double_height(&self) -> Bitmap {
        let mut out = Bitmap::new(self.width, self.height * 2);
        for y in 0..self.height {
            let row = &self.px[y * self.width..(y + 1) * self.width];
            out.px[2 * y * self.width..(2 * y + 1) * self.width].copy_from_slice(row);
            out.px[(2 * y + 1) * self.width..(2 * y + 2) * self.width].copy_from_slice(row);
        }
        out
    }

    pub fn row_bytes(&self) -> usize {
        self.width.div_ceil(8)
    }

    /// Row `y` packed 8 dots a byte, most significant bit leftmost, 1 = black.
    pub fn packed_row(&self, y: usize) -> Vec<u8> {
        let mut row = vec![0u8; self.row_bytes()];
        for x in 0..self.width {
            if self.get(x, y) {
                row[x / 8] |= 0x80 >> (x % 8);
            }
        }
        row
    }

    /// Rows `from..to` packed back to back.
    pub fn packed_rows(&self, from: usize, to: usize) -> Vec<u8> {
        (from..to.min(self.height)).flat_map(|y| self.packed_row(y)).collect()
    }

    #[cfg(test)]
    pub fn is_blank(&self) -> bool {
        !self.px.iter().any(|p| *p)
    }
}

/// A glyph's dots relative to the pen position on the baseline.
struct CachedGlyph {
    left: i64,
    top: i64,
    width: usize,
    dots: Vec<bool>,
}

/// Draws text with the embedded font. One per render: it caches rasterised glyphs.
pub struct Pen {
    font: Option<FontRef<'static>>,
    cache: HashMap<(GlyphId, u32), CachedGlyph>,
}

impl Pen {
    pub fn new() -> Pen {
        Pen { font: FontRef::try_from_slice(FONT_DATA).ok(), cache: HashMap::new() }
    }

    /// Whether the font has a real glyph (not the "missing" box) for `c`.
    #[cfg(test)]
    pub fn has_glyph(&self, c: char) -> bool {
        self.font.as_ref().is_some_and(|f| f.glyph_id(c).0 != 0)
    }

    /// Height of a text row at `px` and the baseline's distance from its top.
    pub fn row_metrics(&self, px: f32) -> (usize, i64) {
        match &self.font {
            Some(f) => {
                let s = f.as_scaled(PxScale::from(px));
                let ascent = s.ascent().ceil() as i64;
                let height = (s.ascent() - s.descent()).ceil() as usize + 2;
                (height, ascent + 1)
            }
            None => (px as usize + 2, px as i64),
        }
    }

    /// Advance width in dots of `visual` text at `px`.
    pub fn measure(&self, visual: &str, px: f32) -> f32 {
        let Some(font) = &self.font else { return 0.0 };
        let scaled = font.as_scaled(PxScale::from(px));
        let mut width = 0.0;
        let mut prev: Option<GlyphId> = None;
        for c in visual.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        width
    }

    /// Draws `visual` (left to right) with its pen starting at `x` on baseline `baseline`.
    /// `bold` thickens strokes by one dot.
    pub fn draw(&mut self, target: &mut Bitmap, visual: &str, x: f32, baseline: i64, px: f32, bold: bool) {
        let Some(font) = self.font.clone() else { return };
        let scaled = font.as_scaled(PxScale::from(px));
        let mut pen_x = x;
        let mut prev: Option<GlyphId> = None;
        for c in visual.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen_x += scaled.kern(p, id);
            }
            let glyph = self.cache.entry((id, px.to_bits())).or_insert_with(|| rasterise(&font, id, px));
            let origin_x = pen_x.round() as i64 + glyph.left;
            let origin_y = baseline + glyph.top;
            for (i, on) in glyph.dots.iter().enumerate() {
                if *on {
                    let gx = origin_x + (i % glyph.width.max(1)) as i64;
                    let gy = origin_y + (i / glyph.width.max(1)) as i64;
                    target.set(gx, gy);
                    if bold {
                        target.set(gx + 1, gy);
                    }
                }
            }
            pen_x += scaled.h_advance(id);
            prev = Some(id);
        }
    }
}

impl Default for Pen {
    fn default() -> Self {
        Pen::new()
    }
}

fn rasterise(font: &FontRef<'static>, id: GlyphId, px: f32) -> CachedGlyph {
    let glyph = id.with_scale_and_position(PxScale::from(px), point(0.0, 0.0));
    let Some(outlined) = font.outline_glyph(glyph) else { return CachedGlyph { left: 0, top: 0, width: 0, dots: Vec::new() } };
    let bounds = outlined.px_bounds();
    let width = bounds.width().max(0.0) as usize;
    let height = bounds.height().max(0.0) as usize;
    let mut dots = vec![false; width * height];
    outlined.draw(|x, y, coverage| {
        let i = y as usize * width + x as usize;
        if coverage >= 0.5 && (x as usize) < width && i < dots.len() {
            dots[i] = true;
        }
    });
    CachedGlyph { left: bounds.min.x as i64, top: bounds.min.y as i64, width, dots }
}

/// A QR code (model 2, error correction M) of `data`, centred on a `width`-dot wide image
/// with a quiet zone; `None` when the data does not fit a QR symbol.
pub fn qr_bitmap(data: &[u8], width: usize) -> Option<Bitmap> {
    let qr = qrcodegen::QrCode::encode_binary(data, qrcodegen::QrCodeEcc::Medium).ok()?;
    let size = usize::try_from(qr.size()).ok()?;
    let module = (width / (size + 8)).clamp(1, 6);
    let side = (size + 8) * module;
    let mut bmp = Bitmap::new(width, side);
    let x0 = width.saturating_sub(side) / 2 + 4 * module;
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x as i32, y as i32) {
                bmp.fill_rect((x0 + x * module) as i64, ((4 + y) * module) as i64, module as i64, module as i64);
            }
        }
    }
    Some(bmp)
}
