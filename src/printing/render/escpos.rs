//! Byte builders for the three command sets: ESC/POS (Epson and clones), Star Line Mode, and
//! Star raster mode. Written here instead of using the `escpos` crate, whose cash-drawer
//! command is 3 bytes instead of the 5 of `ESC p m t1 t2`.
//!
//! Owns the exact bytes of every command, and [`TextPrinter`], the one interface over
//! ESC/POS and Star Line Mode. Must not decide layout or encode text: callers pass encoded
//! text and packed bitmaps. Declared lengths always match the data that follows: bands are
//! at most 240 rows of at most 72 bytes, QR data at most 512 bytes (longer is not sent).

use super::raster::Bitmap;

pub const ESC: u8 = 0x1B;
pub const GS: u8 = 0x1D;
pub const LF: u8 = 0x0A;

/// Tallest band sent in one raster command: small enough for the receive buffers of cheap
/// printers, and seams between bands do not show.
const BAND_ROWS: usize = 240;

/// Longest QR payload we send (an order id is at most 128 bytes).
pub const MAX_QR_DATA: usize = 512;

fn le16(n: usize) -> [u8; 2] {
    let n = u16::try_from(n).unwrap_or(u16::MAX);
    n.to_le_bytes()
}

/// ESC/POS (Epson TM reference; followed by the common clones).
pub mod pos {
    use super::*;

    /// `ESC @` initialise, `ESC R 0` USA character set, so that job output never depends on
    /// what the previous job left behind.
    pub fn init(out: &mut Vec<u8>) {
        out.extend_from_slice(&[ESC, b'@', ESC, b'R', 0]);
    }

    /// `ESC t n`: select character code table `n`.
    pub fn code_page(out: &mut Vec<u8>, n: u8) {
        out.extend_from_slice(&[ESC, b't', n]);
    }

    /// `ESC E n`: emphasis on/off.
    pub fn bold(out: &mut Vec<u8>, on: bool) {
        out.extend_from_slice(&[ESC, b'E', u8::from(on)]);
    }

    /// `GS ! n`: character size; width and height multipliers 1..=8.
    pub fn size(out: &mut Vec<u8>, width: u8, height: u8) {
        let w = width.clamp(1, 8) - 1;
        let h = height.clamp(1, 8) - 1;
        out.extend_from_slice(&[GS, b'!', (w << 4) | h]);
    }

    /// `GS B n`: white-on-black (reverse) printing on/off.
    pub fn invert(out: &mut Vec<u8>, on: bool) {
        out.extend_from_slice(&[GS, b'B', u8::from(on)]);
    }

    /// `ESC a n`: justification 0 left, 1 centre, 2 right.
    pub fn align(out: &mut Vec<u8>, n: u8) {
        out.extend_from_slice(&[ESC, b'a', n.min(2)]);
    }

    /// `ESC d n`: print and feed `n` lines.
    pub fn feed(out: &mut Vec<u8>, n: u8) {
        out.extend_from_slice(&[ESC, b'd', n]);
    }

    /// `GS V 66 n`: feed to the cutter (plus `n` dots) and partial cut (function B).
    pub fn feed_and_cut(out: &mut Vec<u8>, n: u8) {
        out.extend_from_slice(&[GS, b'V', 66, n]);
    }

    /// `GS V 0`: full cut at the current position (function A, understood by every clone).
    pub fn cut_full(out: &mut Vec<u8>) {
        out.extend_from_slice(&[GS, b'V', 0]);
    }

    /// `ESC p 0 25 250`: pulse drawer pin 2 for 50 ms, then wait 500 ms (5 bytes).
    pub fn drawer_kick(out: &mut Vec<u8>) {
        out.extend_from_slice(&[ESC, b'p', 0, 25, 250]);
    }

    /// `GS v 0 0 xL xH yL yH d…`: raster bit image, in bands of at most 240 rows.
    pub fn raster(out: &mut Vec<u8>, bmp: &Bitmap) {
        let x = le16(bmp.row_bytes());
        let mut top = 0;
        while top < bmp.height {
            let rows = (bmp.height - top).min(BAND_ROWS);
            let y = le16(rows);
            out.extend_from_slice(&[GS, b'v', b'0', 0, x[0], x[1], y[0], y[1]]);
            out.extend(bmp.packed_rows(top, top + rows));
            top += rows;
        }
    }

    /// QR code through `GS ( k`: model 2, module `module` dots, error correction M, store,
    /// print. Data longer than [`MAX_QR_DATA`] is not sent.
    pub fn qr(out: &mut Vec<u8>, data: &[u8], module: u8) {
        if data.is_empty() || data.len() > MAX_QR_DATA {
            return;
        }
        // fn 165: model 2 (n1 = 50), n2 = 0.
        out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
        // fn 167: module size in dots.
        out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, module.clamp(1, 16)]);
        // fn 169: error correction level M (49).
        out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, 49]);
        // fn 180: store data; pL pH count the 3 bytes cn fn m plus the data.
        let p = le16(data.len() + 3);
        out.extend_from_slice(&[GS, b'(', b'k', p[0], p[1], 49, 80, 48]);
        out.extend_from_slice(data);
        // fn 181: print the stored symbol.
        out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]);
    }
}

/// Star Line Mode (Star Line Mode command specification).
pub mod star {
    use super::*;

    /// `ESC @` initialise, `ESC R 0` USA character set.
    pub fn init(out: &mut Vec<u8>) {
        out.extend_from_slice(&[ESC, b'@', ESC, b'R', 0]);
    }

    /// `ESC GS t n`: select code page `n`.
    pub fn code_page(out: &mut Vec<u8>, n: u8) {
        out.extend_from_slice(&[ESC, GS, b't', n]);
    }

    /// `ESC E` emphasis on, `ESC F` off.
    pub fn bold(out: &mut Vec<u8>, on: bool) {
        out.extend_from_slice(&[ESC, if on { b'E' } else { b'F' }]);
    }

    /// `ESC i n1 n2`: height expansion `n1`, width expansion `n2` (0 = normal, 1 = double).
    pub fn size(out: &mut Vec<u8>, width: u8, height: u8) {
        out.extend_from_slice(&[ESC, b'i', height.clamp(1, 6) - 1, width.clamp(1, 6) - 1]);
    }

    /// `ESC 4` highlight (white on black) on, `ESC 5` off.
    pub fn invert(out: &mut Vec<u8>, on: bool) {
        out.extend_from_slice(&[ESC, if on { b'4' } else { b'5' }]);
    }

    /// `ESC GS a n`: alignment 0 left, 1 centre, 2 right.
    pub fn align(out: &mut Vec<u8>, n: u8) {
        out.extend_from_slice(&[ESC, GS, b'a', n.min(2)]);
    }

    /// `ESC d 3`: feed to the cutter and partial cut.
    pub fn feed_and_cut(out: &mut Vec<u8>) {
        out.extend_from_slice(&[ESC, b'd', 3]);
    }

    /// `ESC BEL n1 n2` (drive time 200 ms, delay 200 ms) then `BEL`: open drawer 1.
    pub fn drawer_kick(out: &mut Vec<u8>) {
        out.extend_from_slice(&[ESC, 0x07, 20, 20, 0x07]);
    }

    /// `ESC GS S 1 xL xH yL yH 0 d…`: raster image, in bands of at most 240 rows.
    pub fn raster(out: &mut Vec<u8>, bmp: &Bitmap) {
        let x = le16(bmp.row_bytes());
        let mut top = 0;
        while top < bmp.height {
            let rows = (bmp.height - top).min(BAND_ROWS);
            let y = le16(rows);
            out.extend_from_slice(&[ESC, GS, b'S', 1, x[0], x[1], y[0], y[1], 0]);
            out.extend(bmp.packed_rows(top, top + rows));
            top += rows;
        }
    }

    /// QR code: `ESC GS y S 0 2` model 2, `ESC GS y S 1 1` correction M, `ESC GS y S 2 n`
    /// cell size, `ESC GS y D 1 0 nL nH d…` data (automatic mode), `ESC GS y P` print.
    pub fn qr(out: &mut Vec<u8>, data: &[u8], cell: u8) {
        if data.is_empty() || data.len() > MAX_QR_DATA {
            return;
        }
        out.extend_from_slice(&[ESC, GS, b'y', b'S', b'0', 2]);
        out.extend_from_slice(&[ESC, GS, b'y', b'S', b'1', 1]);
        out.extend_from_slice(&[ESC, GS, b'y', b'S', b'2', cell.clamp(1, 8)]);
        let n = le16(data.len());
        out.extend_from_slice(&[ESC, GS, b'y', b'D', b'1', 0, n[0], n[1]]);
        out.extend_from_slice(data);
        out.extend_from_slice(&[ESC, GS, b'y', b'P']);
    }
}

/// Star raster mode (TSP100 family and every Star receipt printer's graphic mode).
pub mod star_raster {
    use super::*;

    /// `ESC @`, `ESC * r R` + `ESC * r A` (initialise and enter raster mode), `ESC * r P 0 NUL`
    /// (continuous page), `ESC * r D n NUL` (open drawer 1 or not), and `ESC * r E n NUL`, the
    /// end-of-document action: `13` feed and partial cut, `1` none.
    pub fn start(out: &mut Vec<u8>, drawer: bool, cut: bool) {
        out.extend_from_slice(&[ESC, b'@']);
        out.extend_from_slice(b"\x1b*rR\x1b*rA");
        out.extend_from_slice(b"\x1b*rP0\x00");
        out.extend_from_slice(if drawer { b"\x1b*rD1\x00" } else { b"\x1b*rD0\x00" });
        out.extend_from_slice(if cut { b"\x1b*rE13\x00" } else { b"\x1b*rE1\x00" });
    }

    /// Rows of `bmp`: `b nL nH d…` per row with trailing white bytes dropped, and runs of blank
    /// rows as `ESC * r Y n NUL` (move down `n` rows, `n` in ASCII decimal).
    pub fn rows(out: &mut Vec<u8>, bmp: &Bitmap) {
        let mut blank = 0usize;
        for y in 0..bmp.height {
            let mut row = bmp.packed_row(y);
            while row.last() == Some(&0) {
                row.pop();
            }
            if row.is_empty() {
                blank += 1;
                continue;
            }
            skip(out, blank);
            blank = 0;
            let n = le16(row.len());
            out.extend_from_slice(&[b'b', n[0], n[1]]);
            out.extend_from_slice(&row);
        }
        skip(out, blank);
    }

    fn skip(out: &mut Vec<u8>, mut rows: usize) {
        while rows > 0 {
            let n = rows.min(255);
            out.extend_from_slice(b"\x1b*rY");
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(0);
            rows -= n;
        }
    }

    /// `ESC FF EOT` (end of document: runs the action set by `ESC * r E`), `ESC * r B` (quit
    /// raster mode).
    pub fn end(out: &mut Vec<u8>) {
        out.extend_from_slice(&[ESC, 0x0C, 0x04]);
        out.extend_from_slice(b"\x1b*rB");
    }
}

/// The commands of a printer that prints text with its own fonts, so that a job is written
/// once for ESC/POS and Star Line Mode.
pub trait TextPrinter {
    fn init(&self, out: &mut Vec<u8>);
    fn code_page(&self, out: &mut Vec<u8>, n: u8);
    fn bold(&self, out: &mut Vec<u8>, on: bool);
    fn size(&self, out: &mut Vec<u8>, width: u8, height: u8);
    fn invert(&self, out: &mut Vec<u8>, on: bool);
    fn align(&self, out: &mut Vec<u8>, n: u8);
    fn raster(&self, out: &mut Vec<u8>, bmp: &Bitmap);
    fn qr(&self, out: &mut Vec<u8>, data: &[u8], module: u8);
    fn cut(&self, out: &mut Vec<u8>);
    fn drawer_kick(&self, out: &mut Vec<u8>);
}

/// ESC/POS; `partial_cut`: `GS V 66 3` (Epson), else a 4-line feed and `GS V 0` (clones).
pub struct EscPos {
    pub partial_cut: bool,
}

impl TextPrinter for EscPos {
    fn init(&self, out: &mut Vec<u8>) {
        pos::init(out)
    }
    fn code_page(&self, out: &mut Vec<u8>, n: u8) {
        pos::code_page(out, n)
    }
    fn bold(&self, out: &mut Vec<u8>, on: bool) {
        pos::bold(out, on)
    }
    fn size(&self, out: &mut Vec<u8>, width: u8, height: u8) {
        pos::size(out, width, height)
    }
    fn invert(&self, out: &mut Vec<u8>, on: bool) {
        pos::invert(out, on)
    }
    fn align(&self, out: &mut Vec<u8>, n: u8) {
        pos::align(out, n)
    }
    fn raster(&self, out: &mut Vec<u8>, bmp: &Bitmap) {
        pos::raster(out, bmp)
    }
    fn qr(&self, out: &mut Vec<u8>, data: &[u8], module: u8) {
        pos::qr(out, data, module)
    }
    fn cut(&self, out: &mut Vec<u8>) {
        if self.partial_cut {
            pos::feed_and_cut(out, 3);
        } else {
            pos::feed(out, 4);
            pos::cut_full(out);
        }
    }
    fn drawer_kick(&self, out: &mut Vec<u8>) {
        pos::drawer_kick(out)
    }
}

/// Star Line Mode.
pub struct StarLine;

impl TextPrinter for StarLine {
    fn init(&self, out: &mut Vec<u8>) {
        star::init(out)
    }
    fn code_page(&self, out: &mut Vec<u8>, n: u8) {
        star::code_page(out, n)
    }
    fn bold(&self, out: &mut Vec<u8>, on: bool) {
        star::bold(out, on)
    }
    fn size(&self, out: &mut Vec<u8>, width: u8, height: u8) {
        star::size(out, width, height)
    }
    fn invert(&self, out: &mut Vec<u8>, on: bool) {
        star::invert(out, on)
    }
    fn align(&self, out: &mut Vec<u8>, n: u8) {
        star::align(out, n)
    }
    fn raster(&self, out: &mut Vec<u8>, bmp: &Bitmap) {
        star::raster(out, bmp)
    }
    fn qr(&self, out: &mut Vec<u8>, data: &[u8], module: u8) {
        star::qr(out, data, module)
    }
    fn cut(&self, out: &mut Vec<u8>) {
        star::feed_and_cut(out)
    }
    fn drawer_kick(&self, out: &mut Vec<u8>) {
        star::drawer_kick(out)
    }
}
