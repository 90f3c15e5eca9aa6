//! ESC/POS status bytes (DLE EOT real-time status, GS r transmit status, Automatic Status
//! Back frames) and their mapping to SPEC's printer statuses. Pure.

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

/// What the printer sent, byte by byte, on a connection with Automatic Status Back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// An answer to one of our requests (DLE EOT or GS r).
    Reply(u8),
    /// A status frame the printer pushed by itself (`GS a`).
    Pushed([u8; 4]),
}

/// Tells pushed ASB frames apart from answers: an ASB frame is four bytes whose first has
/// bit 4 set and bits 0, 1 and 7 clear; a DLE EOT answer has bit 1 set, a GS r answer bit 4
/// clear. Off (a connection that never turned ASB on), every byte is an answer.
#[derive(Debug, Default)]
pub struct Splitter {
    asb: bool,
    frame: [u8; 4],
    len: usize,
}

impl Splitter {
    pub fn new(asb: bool) -> Splitter {
        Splitter { asb, ..Splitter::default() }
    }

    pub fn feed(&mut self, b: u8) -> Option<Piece> {
        if self.len > 0 {
            self.frame[self.len] = b;
            self.len += 1;
            if self.len == 4 {
                self.len = 0;
                return Some(Piece::Pushed(self.frame));
            }
            return None;
        }
        if self.asb && b & 0x93 == 0x10 {
            self.frame[0] = b;
            self.len = 1;
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
        let mut s = Splitter::new(true);
        let bytes = [0x12, 0x10 | 0x08 | 0x20, 0x00, 0x0c, 0x00, 0x00, 0x12, 0x10, 0, 0, 0];
        let pieces: Vec<Piece> = bytes.iter().filter_map(|&b| s.feed(b)).collect();
        assert_eq!(
            pieces,
            vec![
                Piece::Reply(0x12),
                Piece::Pushed([0x38, 0x00, 0x0c, 0x00]),
                Piece::Reply(0x00),
                Piece::Reply(0x12),
                Piece::Pushed([0x10, 0, 0, 0])
            ]
        );
        // Off: a byte that looks like a frame's start is an answer.
        assert_eq!(Splitter::new(false).feed(0x10), Some(Piece::Reply(0x10)));
        assert_eq!(from_asb([0x38, 0x00, 0x0c, 0x00]).status, Status::PaperOut);
        assert_eq!(from_asb([0x38, 0x00, 0x00, 0x00]).status, Status::CoverOpen);
        assert_eq!(from_asb([0x10, 0x00, 0x03, 0x00]).status, Status::PaperLow);
        assert_eq!(from_asb([0x10, 0x00, 0x00, 0x00]).status, Status::Online);
        assert!(from_asb([0x10, 0x00, 0x00, 0x00]).answered);
    }
}
