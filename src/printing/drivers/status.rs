//! Printer status bytes and their mapping to SPEC's printer statuses: ESC/POS (DLE EOT
//! real-time status, GS r transmit status, Automatic Status Back frames) and Star's
//! Automatic Status Back frames. Pure.

use serde::Serialize;

/// SPEC §3 printer statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Offline,
    PaperOut,
    PaperLow,
    CoverOpen,
    Error,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
            Status::PaperOut => "paper_out",
            Status::PaperLow => "paper_low",
            Status::CoverOpen => "cover_open",
            Status::Error => "error",
            Status::Unknown => "unknown",
        }
    }

    /// Whether a job may be sent now (`paper_low` still prints).
    pub fn can_print(self) -> bool {
        matches!(self, Status::Online | Status::PaperLow | Status::Unknown)
    }
}

/// A status with the reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub status: Status,
    pub detail: Option<String>,
    /// The printer itself answered a status request (rather than the report being inferred
    /// from a failed connection or a missing answer).
    pub answered: bool,
}

impl Report {
    pub fn new(status: Status, detail: impl Into<String>) -> Report {
        Report { status, detail: Some(detail.into()), answered: false }
    }
    pub fn online() -> Report {
        Report { status: Status::Online, detail: None, answered: false }
    }
    /// The same report, marked as the printer's own answer.
    pub fn answered(self) -> Report {
        Report { answered: true, ..self }
    }
}

/// DLE EOT n: real-time status request (answered at once, even mid-job).
pub const fn dle_eot(n: u8) -> [u8; 3] {
    [0x10, 0x04, n]
}

/// GS r 1: transmit paper status. Not real-time: the printer answers only after it has
/// processed everything sent before, so its reply confirms the job went through.
pub const GS_R_PAPER: [u8; 3] = [0x1d, 0x72, 0x01];

/// A DLE EOT reply has bits 1 and 4 set and bits 0 and 7 clear.
pub fn valid_rt(byte: u8) -> bool {
    byte & 0x93 == 0x12
}

/// Maps the replies to DLE EOT 1 (printer), 2 (offline cause) and 4 (paper roll).
pub fn from_realtime(printer: u8, offline: u8, paper: u8) -> Report {
    if ![printer, offline, paper].into_iter().all(valid_rt) {
        return Report::new(Status::Unknown, "printer sent an unexpected status reply");
    }
    classify_realtime(printer, offline, paper).answered()
}

fn classify_realtime(printer: u8, offline: u8, paper: u8) -> Report {
    if paper & 0x60 != 0 || offline & 0x20 != 0 {
        return Report::new(Status::PaperOut, "out of paper: load a new roll");
    }
    if offline & 0x04 != 0 {
        return Report::new(Status::CoverOpen, "cover is open: close it");
    }
    if offline & 0x40 != 0 {
        return Report::new(Status::Error, "printer reports an error: turn it off and on");
    }
    if printer & 0x08 != 0 {
        return Report::new(Status::Offline, "printer is offline (paper feed button held?)");
    }
    if paper & 0x0c != 0 {
        return Report::new(Status::PaperLow, "paper is running low");
    }
    Report::online()
}

/// Maps the reply to GS r 1: bits 0-1 paper near end, bits 2-3 paper end.
pub fn from_paper_reply(byte: u8) -> Report {
    let r = if byte & 0x0c != 0 {
        Report::new(Status::PaperOut, "out of paper: load a new roll")
    } else if byte & 0x03 != 0 {
        Report::new(Status::PaperLow, "paper is running low")
    } else {
        Report::online()
    };
    r.answered()
}

/// Which kind of pushed status a held connection carries, and how the printer is asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asb {
    /// ESC/POS Automatic Status Back: four-byte frames after `GS a n`.
    EscPos,
    /// Star Automatic Status Back, turned on with `ESC RS a 1` (Star Line Mode).
    StarLine,
    /// Star ASB on a raster-only model (TSP100 family): sent nothing to turn it on (a Line
    /// Mode command has no business in a raster job stream); over Ethernet Star's interface
    /// pushes ASB by default.
    StarRaster,
}

/// GS a n: Automatic Status Back for drawer, on/offline, error and paper sensor changes.
const GS_A_ON: [u8; 3] = [0x1d, 0x61, 0x0f];

/// ESC RS a n, "set status transmission conditions" (STAR Line Mode Command
/// Specifications): n = 1 turns ASB on (n = 0 off), as public Star drivers send it.
const ESC_RS_A_ON: [u8; 4] = [0x1b, 0x1e, 0x61, 0x01];

impl Asb {
    /// What to send on a new connection so that the printer pushes its status (it then
    /// pushes its current status at once).
    pub fn turn_on(self) -> &'static [u8] {
        match self {
            Asb::EscPos => &GS_A_ON,
            Asb::StarLine => &ESC_RS_A_ON,
            Asb::StarRaster => &[],
        }
    }

    pub fn is_star(self) -> bool {
        self != Asb::EscPos
    }
}

/// What the printer sent, byte by byte, on a connection with Automatic Status Back on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// An answer to one of our requests (DLE EOT or GS r), or on a Star connection (where
    /// nothing is asked) a stray byte.
    Reply(u8),
    /// A status frame the printer pushed by itself, mapped.
    Pushed(Report),
}

/// Tells pushed ASB frames apart from answers.
///
/// - ESC/POS: an ASB frame is four bytes whose first has bit 4 set and bits 0, 1 and 7
///   clear; a DLE EOT answer has bit 1 set, a GS r answer bit 4 clear.
/// - Star: a frame's first byte has bit 0 set and bits 4 and 7 clear, and gives the frame's
///   length (see [`star_frame_len`]); nothing else is expected (no requests are sent).
///
/// Off (a connection that never turned ASB on), every byte is an answer.
#[derive(Debug, Default)]
pub struct Splitter {
    asb: Option<Asb>,
    frame: Vec<u8>,
    want: usize,
}

impl Splitter {
    pub fn new(asb: Option<Asb>) -> Splitter {
        Splitter { asb, ..Splitter::default() }
    }

    pub fn feed(&mut self, b: u8) -> Option<Piece> {
        if self.want > 0 {
            self.frame.push(b);
            if self.frame.len() < self.want {
                return None;
            }
            self.want = 0;
            let frame = std::mem::take(&mut self.frame);
            return Some(Piece::Pushed(match self.asb {
                Some(Asb::EscPos) | None => from_asb([frame[0], frame[1], frame[2], frame[3]]),
                Some(_) => from_star(&frame),
            }));
        }
        let want = match self.asb {
            Some(Asb::EscPos) if b & 0x93 == 0x10 => 4,
            Some(Asb::StarLine | Asb::StarRaster) => star_frame_len(b).unwrap_or(0),
            _ => 0,
        };
        if want > 0 {
            self.frame = vec![b];
            self.want = want;
            return None;
        }
        Some(Piece::Reply(b))
    }
}

/// Maps an ASB frame: byte 1 offline (bit 3) and cover open (bit 5); byte 2 mechanical,
/// cutter, unrecoverable and recoverable errors (bits 2, 3, 5, 6); byte 3 paper near end
/// (bits 0-1) and paper end (bits 2-3).
pub fn from_asb(f: [u8; 4]) -> Report {
    let r = if f[2] & 0x0c != 0 {
        Report::new(Status::PaperOut, "out of paper: load a new roll")
    } else if f[0] & 0x20 != 0 {
        Report::new(Status::CoverOpen, "cover is open: close it")
    } else if f[1] & 0x6c != 0 {
        Report::new(Status::Error, "printer reports an error: turn it off and on")
    } else if f[0] & 0x08 != 0 {
        Report::new(Status::Offline, "printer is offline (paper feed button held?)")
    } else if f[2] & 0x03 != 0 {
        Report::new(Status::PaperLow, "paper is running low")
    } else {
        Report::online()
    };
    r.answered()
}

// Star ASB frames. The layout is Star Micronics' "ASB (Automatic Status Back) Function
// Specifications" as cited by public implementations (the `hardless-http-dialects` crate's
// webPRNT `asb` docs; an open-source Python ASB parser), checked against each other:
//
// - byte 1, header 1: bit 0 = 1, bits 4 and 7 = 0; bits 1-3 (low three bits) and bit 5
//   (value 8) give the number of bytes of the whole frame (e.g. 0x23 → 9, 0x2f → 15);
// - byte 2, header 2: version (bits 1-3, 5), bit 7 an extension we never ask for;
// - byte 3, status 1: bit 2 drawer, bit 3 offline, bit 5 cover open;
// - byte 4, status 2: bit 2 mechanical error, bit 3 auto-cutter error, bit 5 unrecoverable
//   error, bit 6 head too hot (printing stops until it cools);
// - byte 5, status 3: bit 1 voltage error, bit 2 paper jam, bit 3 black mark error;
// - byte 6, status 4: bits 1-2 paper near end (outer/inner sensor), bit 3 paper end;
// - later bytes (presenter, ETB counter, ...) are not used.

/// The length of a Star ASB frame starting with `header`, if it is one: at least the six
/// bytes the statuses need.
pub fn star_frame_len(header: u8) -> Option<usize> {
    if header & 0x91 != 0x01 {
        return None;
    }
    let len = ((header >> 1) & 0x07) as usize | ((header >> 2) & 0x08) as usize;
    (len >= 6).then_some(len)
}

/// Maps a Star ASB frame (see the layout above) to a SPEC status.
pub fn from_star(f: &[u8]) -> Report {
    let byte = |i: usize| f.get(i).copied().unwrap_or(0);
    let (s1, s2, s3, s4) = (byte(2), byte(3), byte(4), byte(5));
    let r = if s4 & 0x08 != 0 {
        Report::new(Status::PaperOut, "out of paper: load a new roll")
    } else if s1 & 0x20 != 0 {
        Report::new(Status::CoverOpen, "cover is open: close it")
    } else if s2 & 0x6c != 0 || s3 & 0x0e != 0 {
        Report::new(Status::Error, "printer reports an error (jam, cutter, head or power): clear it, or turn it off and on")
    } else if s1 & 0x08 != 0 {
        Report::new(Status::Offline, "printer is offline")
    } else if s4 & 0x06 != 0 {
        Report::new(Status::PaperLow, "paper is running low")
    } else {
        Report::online()
    };
    r.answered()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_realtime_replies() {
        assert_eq!(from_realtime(0x12, 0x12, 0x12).status, Status::Online);
        assert_eq!(from_realtime(0x12, 0x12 | 0x20, 0x12 | 0x60).status, Status::PaperOut);
        assert_eq!(from_realtime(0x12 | 0x08, 0x12 | 0x04, 0x12).status, Status::CoverOpen);
        assert_eq!(from_realtime(0x12, 0x12, 0x12 | 0x0c).status, Status::PaperLow);
        assert_eq!(from_realtime(0x12 | 0x08, 0x12, 0x12).status, Status::Offline);
        assert_eq!(from_realtime(0xff, 0x12, 0x12).status, Status::Unknown);
        assert_eq!(from_paper_reply(0x0c).status, Status::PaperOut);
        assert_eq!(from_paper_reply(0x00).status, Status::Online);
    }

    #[test]
    fn splits_pushed_frames_from_answers() {
        let mut s = Splitter::new(Some(Asb::EscPos));
        let bytes = [0x12, 0x10 | 0x08 | 0x20, 0x00, 0x0c, 0x00, 0x00, 0x12, 0x10, 0, 0, 0];
        let pieces: Vec<Piece> = bytes.iter().filter_map(|&b| s.feed(b)).collect();
        assert_eq!(
            pieces,
            vec![
                Piece::Reply(0x12),
                Piece::Pushed(from_asb([0x38, 0x00, 0x0c, 0x00])),
                Piece::Reply(0x00),
                Piece::Reply(0x12),
                Piece::Pushed(from_asb([0x10, 0, 0, 0]))
            ]
        );
        // Off: a byte that looks like a frame's start is an answer.
        assert_eq!(Splitter::new(None).feed(0x10), Some(Piece::Reply(0x10)));
        assert_eq!(from_asb([0x38, 0x00, 0x0c, 0x00]).status, Status::PaperOut);
        assert_eq!(from_asb([0x38, 0x00, 0x00, 0x00]).status, Status::CoverOpen);
        assert_eq!(from_asb([0x10, 0x00, 0x03, 0x00]).status, Status::PaperLow);
        assert_eq!(from_asb([0x10, 0x00, 0x00, 0x00]).status, Status::Online);
        assert!(from_asb([0x10, 0x00, 0x00, 0x00]).answered);
    }

    #[test]
    fn reads_star_frames_by_their_length() {
        assert_eq!(star_frame_len(0x23), Some(9));
        assert_eq!(star_frame_len(0x2f), Some(15));
        assert_eq!(star_frame_len(0x0f), Some(7));
        assert_eq!(star_frame_len(0x12), None, "bit 0 clear: not a header");
        assert_eq!(star_frame_len(0x03), None, "too short to carry the paper status");
        let online = [0x23, 0x86, 0, 0, 0, 0, 0, 0, 0];
        let cover = [0x23, 0x86, 0x28, 0, 0, 0, 0, 0, 0];
        let paper_out = [0x2f, 0x86, 0x08, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut s = Splitter::new(Some(Asb::StarLine));
        // A stray byte, then three frames back to back (of two lengths).
        let bytes: Vec<u8> = [&[0x00][..], &online, &cover, &paper_out].concat();
        let pieces: Vec<Piece> = bytes.iter().filter_map(|&b| s.feed(b)).collect();
        let statuses: Vec<_> = pieces
            .iter()
            .map(|p| match p {
                Piece::Pushed(r) => Some(r.status),
                Piece::Reply(_) => None,
            })
            .collect();
        assert_eq!(statuses, vec![None, Some(Status::Online), Some(Status::CoverOpen), Some(Status::PaperOut)]);
        assert_eq!(from_star(&[0x23, 0x86, 0x08, 0, 0, 0, 0, 0, 0]).status, Status::Offline);
        assert_eq!(from_star(&[0x23, 0x86, 0, 0, 0, 0x04, 0, 0, 0]).status, Status::PaperLow);
        assert_eq!(from_star(&[0x23, 0x86, 0x08, 0x20, 0, 0, 0, 0, 0]).status, Status::Error);
        assert_eq!(from_star(&[0x23, 0x86, 0x08, 0, 0x04, 0, 0, 0, 0]).status, Status::Error, "paper jam");
        assert!(from_star(&online).answered);
    }
}
