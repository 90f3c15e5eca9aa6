//! Printer profiles: which command set a printer speaks, which code pages it has, and the
//! paper geometry (columns and dots per line) of 58 and 80 mm rolls.
//!
//! Owns the mapping from the free-form `profile` string of a printer to a [`Profile`]. Must
//! not build bytes (that is `escpos`) nor know orders.
//!
//! | profile name (case-insensitive; `_`/space = `-`)                      | [`Profile`]       |
//! |------------------------------------------------------------------------|-------------------|
//! | `epson…`, `tm-…` (e.g. `epson-tm-t20`, `epson-tm-m30`, `epson-tm-t88`)  | `EpsonTm`         |
//! | `star-tsp100`, `star-tsp1…` (TSP113/TSP143…), `star-raster`, `tsp1…`    | `StarRaster`      |
//! | any other `star…` / `tsp…` name (e.g. `star-tsp650`, `star-line`, `star-sp742`)  | `StarLine`        |
//! | `generic`, `escpos`, unknown names, no profile                         | `GenericEscPos`   |

use super::codepage::CodePage;

/// The command set and character capabilities of a printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Epson TM series (ESC/POS): code pages CP437, CP858 and CP866 through `ESC t n`.
    EpsonTm,
    /// A generic ESC/POS clone, the safe default: only CP437 is trusted, everything else is
    /// printed as a raster image (`GS v 0`).
    GenericEscPos,
    /// Star Line Mode (TSP600/650/700/800, SP700…): Star's own commands (`ESC d n` cut,
    /// `ESC GS t n` code page, `BEL` drawer, `ESC E`/`ESC F` emphasis, `ESC GS S` raster).
    StarLine,
    /// Raster-only Star models (TSP100 family): the whole ticket, text included, is sent as a
    /// raster image in Star raster mode (`ESC * r A` … `ESC * r B`).
    StarRaster,
}

impl Profile {
    /// A stable identifier for logs and the dashboard.
    pub fn id(self) -> &'static str {
        match self {
            Profile::EpsonTm => "epson-tm",
            Profile::GenericEscPos => "generic",
            Profile::StarLine => "star-line",
            Profile::StarRaster => "star-raster",
        }
    }

    /// Whether the printer understands ESC/POS (and so `DLE EOT` status requests).
    pub fn speaks_escpos(self) -> bool {
        matches!(self, Profile::EpsonTm | Profile::GenericEscPos)
    }

    /// Whether the printer pushes its status changes by itself (ESC/POS Automatic Status
    /// Back, `GS a`, on Epson TM; Star's ASB on Star models, on by default over Ethernet).
    /// Only models known to do it reliably: clones that ignore `GS a` are polled instead.
    pub fn pushes_status(self) -> bool {
        self != Profile::GenericEscPos
    }

    /// Whether the printer prints text with its own fonts (false: everything is raster).
    pub fn prints_text(self) -> bool {
        self != Profile::StarRaster
    }

    /// The code pages this profile may select, in order of preference, with the selector byte
    /// (`n` of `ESC t n` for ESC/POS, of `ESC GS t n` for Star Line Mode).
    ///
    /// Arabic code pages (CP864, page 37 on Epson) are deliberately not listed: the printer
    /// neither shapes nor reorders, the page lacks many contextual forms, and its presence
    /// varies by model and region firmware. Arabic is always rasterised (shaped, RTL) instead.
    pub fn code_pages(self) -> &'static [(CodePage, u8)] {
        match self {
            Profile::EpsonTm => &[(CodePage::Cp437, 0), (CodePage::Cp858, 19), (CodePage::Cp866, 17)],
            Profile::GenericEscPos => &[(CodePage::Cp437, 0)],
            Profile::StarLine => &[(CodePage::Cp437, 1), (CodePage::Cp858, 4), (CodePage::Cp866, 10)],
            Profile::StarRaster => &[],
        }
    }
}

/// The profile for a printer's `profile` setting; unknown or missing names get the safe
/// generic ESC/POS profile.
pub fn profile_for(name: Option<&str>) -> Profile {
    let Some(raw) = name else { return Profile::GenericEscPos };
    let n: String = raw.trim().to_ascii_lowercase().chars().map(|c| if c == '_' || c == ' ' { '-' } else { c }).collect();
    if n.starts_with("epson") || n.starts_with("tm-") {
        return Profile::EpsonTm;
    }
    let star_model = match n.strip_prefix("star") {
        Some(m) => Some(m.trim_start_matches('-')),
        None => n.starts_with("tsp").then_some(n.as_str()),
    };
    match star_model {
        // The TSP100 family (TSP113, TSP143, TSP100IV…) is raster-only; the TSP1000 is not.
        Some(m) if m == "raster" || (m.starts_with("tsp1") && !m.starts_with("tsp1000")) => Profile::StarRaster,
        Some(_) => Profile::StarLine,
        None => Profile::GenericEscPos,
    }
}

/// Line geometry of a paper width: characters per line in Font A and dots per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub cols: usize,
    pub dots: usize,
}

/// 80 mm paper: 48 columns, 576 dots; anything narrower is treated as 58 mm: 32 columns, 384 dots.
pub(crate) fn geometry(paper_width: u8) -> Geometry {
    if paper_width >= 80 { Geometry { cols: 48, dots: 576 } } else { Geometry { cols: 32, dots: 384 } }
}
