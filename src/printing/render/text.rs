//! Unicode text handling for tickets: cleaning hostile input, paragraph direction, Arabic
//! shaping plus right-to-left reordering into visual order, and word wrapping.
//!
//! Owns every decision about *characters* (not bytes, not pixels). Must not emit printer
//! commands nor rasterise; the width used for wrapping is passed in as a measuring closure.

use std::borrow::Cow;

use unicode_bidi::{Direction, Level, ParagraphBidiInfo};

/// Longest text we lay out from one field; longer input is cut (validated orders never
/// come near it, but banners, customer JSON and names are not all validated here).
const MAX_FIELD_CHARS: usize = 4000;

/// Zero-width and bidi formatting characters: they never print and are not in any code page.
pub fn is_ignorable(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fe00}'..='\u{fe0f}')
}

/// One printable line: tabs become spaces, every other control character (C0, DEL, C1,
/// line breaks) is removed, so no input can smuggle a printer command into the output.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_FIELD_CHARS));
    for (n, c) in s.chars().enumerate() {
        if n >= MAX_FIELD_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// Multi-line text (notes): one cleaned line per input line, blank lines dropped.
pub fn clean_lines(s: &str) -> Vec<String> {
    s.split(['\n', '\r', '\u{2028}', '\u{2029}']).map(clean).filter(|l| !l.is_empty()).collect()
}

/// True when the first strong character of `s` is right-to-left (Arabic, Hebrew…).
pub fn is_rtl(s: &str) -> bool {
    unicode_bidi::get_base_direction(s) == Direction::Rtl
}

/// `s` as it is drawn from left to right: Arabic letters replaced by their contextual
/// presentation forms (isolated/initial/medial/final, lam-alef ligatures), then the line
/// reordered by the Unicode bidi algorithm with paragraph direction `rtl`, brackets mirrored
/// in right-to-left runs, and ignorable characters dropped.
pub fn visual(s: &str, rtl: bool) -> String {
    let shaped: Cow<str> = if s.chars().any(is_arabic) { Cow::Owned(ar_reshaper::reshape_line(s)) } else { Cow::Borrowed(s) };
    let level = if rtl { Level::rtl() } else { Level::ltr() };
    let info = ParagraphBidiInfo::new(&shaped, Some(level));
    let mut out = String::with_capacity(shaped.len());
    if !info.has_rtl() && !rtl {
        out.extend(shaped.chars().filter(|c| !is_ignorable(*c)));
        return out;
    }
    let (levels, runs) = info.visual_runs(0..shaped.len());
    for run in runs {
        let Some(piece) = shaped.get(run.clone()) else { continue };
        if levels.get(run.start).is_some_and(|l| l.is_rtl()) {
            out.extend(piece.chars().rev().filter(|c| !is_ignorable(*c)).map(mirror));
        } else {
            out.extend(piece.chars().filter(|c| !is_ignorable(*c)));
        }
    }
    out
}

fn is_arabic(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06ff}' | '\u{0750}'..='\u{077f}' | '\u{08a0}'..='\u{08ff}')
}

fn mirror(c: char) -> char {
    match c {
        '(' => ')',
        ')' => '(',
        '[' => ']',
        ']' => '[',
        '{' => '}',
        '}' => '{',
        '<' => '>',
        '>' => '<',
        '«' => '»',
        '»' => '«',
        other => other,
    }
}

/// Greedy word wrap: splits `s` at spaces into lines whose `width` fits `max`; a word wider
/// than `max` is broken between characters. Always returns at least one line.
pub fn wrap(s: &str, max: usize, width: &mut dyn FnMut(&str) -> usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if current.is_empty() { word.to_string() } else { format!("{current} {word}") };
        if width(&candidate) <= max {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if width(word) <= max {
            current = word.to_string();
            continue;
        }
        // A word longer than the line: cut it into pieces that fit (at least one char each),
        // summing per-character widths so that a huge word stays linear.
        let mut used = 0;
        let mut buf = [0u8; 4];
        for c in word.chars() {
            let w = width(c.encode_utf8(&mut buf));
            if !current.is_empty() && used + w > max {
                lines.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(c);
            used += w;
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Characters that occupy a printer column (ignorable characters take none).
pub fn columns(s: &str) -> usize {
    s.chars().filter(|c| !is_ignorable(*c)).count()
}
