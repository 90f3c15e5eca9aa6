//! Single-byte code pages of receipt printers (CP437, CP858, CP866) and the encoder that maps
//! a cleaned line of text to their bytes.
//!
//! Owns the character tables and the choice of a code page for a line. Must not emit commands
//! (the code page *selector* belongs to the profile and the command builders), and never
//! returns a byte below 0x20 or 0x7F: an encoded line cannot carry a printer command.

/// A code page whose upper half (0x80–0xFF) we know; the lower half is ASCII in all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePage {
    /// IBM PC (US): box drawing, some Western accents, Greek maths letters.
    Cp437,
    /// Multilingual Latin-1 with the euro sign (CP850 with € at 0xD5).
    Cp858,
    /// Cyrillic (Russian).
    Cp866,
}

// Upper halves, byte 0x80 first (generated from Python's codecs).
const CP437: &str =
    "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
const CP858: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈ€ÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u{ad}±‗¾¶§÷¸°¨·¹³²■\u{a0}";
const CP866: &str =
    "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмноп░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀рстуфхцчшщъыьэюяЁёЄєЇїЎў°∙·√№¤■\u{a0}";

impl CodePage {
    pub fn name(self) -> &'static str {
        match self {
            CodePage::Cp437 => "CP437",
            CodePage::Cp858 => "CP858",
            CodePage::Cp866 => "CP866",
        }
    }

    fn upper(self) -> &'static str {
        match self {
            CodePage::Cp437 => CP437,
            CodePage::Cp858 => CP858,
            CodePage::Cp866 => CP866,
        }
    }

    /// The byte for `c`, if this page has it (printable ASCII or the upper half).
    pub fn encode_char(self, c: char) -> Option<u8> {
        if (' '..='~').contains(&c) {
            return Some(c as u8);
        }
        let i = self.upper().chars().position(|u| u == c)?;
        u8::try_from(0x80 + i).ok()
    }

    /// The bytes of `s`, if every character is in this page (after [`fold`] of typographic
    /// punctuation the page lacks).
    pub fn encode(self, s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len());
        for c in s.chars() {
            if super::text::is_ignorable(c) {
                continue;
            }
            match self.encode_char(c) {
                Some(b) => out.push(b),
                None => {
                    for f in fold(c)?.chars() {
                        out.push(self.encode_char(f)?);
                    }
                }
            }
        }
        Some(out)
    }
}

/// The first page of `pages` (with its selector) that encodes every string of `parts`.
pub fn pick<'a>(pages: &'a [(CodePage, u8)], parts: &[&str]) -> Option<&'a (CodePage, u8)> {
    pages.iter().find(|(page, _)| parts.iter().all(|p| page.encode(p).is_some()))
}

/// ASCII stand-ins for typographic punctuation, so that a curly quote or a dash does not
/// turn a whole line into a raster image.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => " ",
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' => "'",
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' => "\"",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{2022}' => "*",
        _ => return None,
    })
}
