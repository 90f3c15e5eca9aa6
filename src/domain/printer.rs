//! Printer and status shapes of SPEC §3, and their validation. Pure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::{self, Invalid, invalid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Connection {
    Network {
        host: String,
        port: u16,
        /// Other senders (a second POS, another server) print to it too: branchd then holds
        /// no connection open to it and polls its status every 2 s instead.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        shared: bool,
    },
    Serial {
        path: String,
        #[serde(rename = "baudRate")]
        baud_rate: u32,
    },
    Usb {
        #[serde(rename = "vendorId")]
        vendor_id: u16,
        #[serde(rename = "productId")]
        product_id: u16,
        #[serde(rename = "serialNumber")]
        serial_number: Option<String>,
    },
    Desktop {
        #[serde(rename = "deviceId")]
        device_id: String,
        #[serde(rename = "localId")]
        local_id: String,
    },
    Virtual,
}

impl Connection {
    pub fn kind(&self) -> &'static str {
        match self {
            Connection::Network { .. } => "network",
            Connection::Serial { .. } => "serial",
            Connection::Usb { .. } => "usb",
            Connection::Desktop { .. } => "desktop",
            Connection::Virtual => "virtual",
        }
    }

    pub fn desktop_ids(&self) -> Option<(&str, &str)> {
        match self {
            Connection::Desktop { device_id, local_id } => Some((device_id, local_id)),
            _ => None,
        }
    }
}

pub const STATUSES: [&str; 7] = ["online", "offline", "paper_out", "paper_low", "cover_open", "error", "unknown"];

/// A printer as REST returns it and `printer:added` / `printerUpdate` carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Printer {
    pub id: String,
    pub name: String,
    pub branch_id: String,
    pub company_id: String,
    pub role: String,
    pub stations: Vec<String>,
    pub paper_width: u8,
    pub connection: Connection,
    pub profile: Option<String>,
    pub status: String,
    pub checked_at: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// Has answered a status request at least once (internal; see the queue).
    #[serde(skip)]
    pub answers_status: bool,
    /// Where its waiting tickets go once it has been stalled for `fallback_after_seconds`.
    #[serde(default)]
    pub fallback_printer_id: Option<String>,
    #[serde(default = "default_fallback_after")]
    pub fallback_after_seconds: i64,
}

/// SPEC §4: tickets move to the fallback printer after this long stalled, unless set.
pub const DEFAULT_FALLBACK_AFTER_SECONDS: i64 = 60;

fn default_fallback_after() -> i64 {
    DEFAULT_FALLBACK_AFTER_SECONDS
}

impl Printer {
    /// Keeps the top-level `deviceId`/`localId` of desktop printers in step with `connection`.
    pub fn sync_desktop_ids(&mut self) {
        let ids = self.connection.desktop_ids().map(|(d, l)| (d.to_string(), l.to_string()));
        self.device_id = ids.as_ref().map(|i| i.0.clone());
        self.local_id = ids.map(|i| i.1);
    }
}

fn u16_field(m: &serde_json::Map<String, Value>, key: &str) -> validate::Result<u16> {
    // USB ids are often written in hex ("0x04b8"): accept both.
    match m.get(key) {
        Some(Value::String(s)) => {
            let t = s.trim_start_matches("0x").trim_start_matches("0X");
            u16::from_str_radix(t, 16).map_err(|_| Invalid(format!("connection.{key} must be a 16-bit id")))
        }
        Some(v) => validate::int(v, &format!("connection.{key}"), 0, 0xffff).map(|n| n as u16),
        None => invalid(format!("connection.{key} is required")),
    }
}

pub fn parse_connection(v: &Value) -> validate::Result<Connection> {
    let m = validate::object(v, "connection")?;
    let prefixed = |e: Invalid| Invalid(format!("connection.{}", e.0));
    match m.get("type").and_then(Value::as_str) {
        Some("network") => Ok(Connection::Network {
            host: validate::string(m, "host", 253).map_err(prefixed)?,
            port: validate::opt_int(m, "port", 1, 65535).map_err(prefixed)?.unwrap_or(9100) as u16,
            shared: match m.get("shared") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return invalid("connection.shared must be true or false"),
            },
        }),
        Some("serial") => Ok(Connection::Serial {
            path: validate::string(m, "path", 255).map_err(prefixed)?,
            baud_rate: validate::opt_int(m, "baudRate", 300, 4_000_000).map_err(prefixed)?.unwrap_or(9600) as u32,
        }),
        Some("usb") => Ok(Connection::Usb {
            vendor_id: u16_field(m, "vendorId")?,
            product_id: u16_field(m, "productId")?,
            serial_number: validate::opt_string(m, "serialNumber", 128).map_err(prefixed)?,
        }),
        Some("desktop") => Ok(Connection::Desktop {
            device_id: validate::string(m, "deviceId", 128).map_err(prefixed)?,
            local_id: validate::string(m, "localId", 256).map_err(prefixed)?,
        }),
        Some("virtual") => Ok(Connection::Virtual),
        _ => invalid("connection.type must be network, serial, usb, desktop or virtual"),
    }
}

/// The editable fields of a printer; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    pub name: Option<String>,
    pub role: Option<String>,
    pub stations: Option<Vec<String>>,
    pub paper_width: Option<u8>,
    pub connection: Option<Connection>,
    pub profile: Option<Option<String>>,
    pub fallback_printer_id: Option<Option<String>>,
    pub fallback_after_seconds: Option<i64>,
}

pub fn parse_fields(v: &Value) -> validate::Result<Fields> {
    let m = validate::object(v, "body")?;
    let mut f = Fields::default();
    if m.contains_key("name") {
        f.name = Some(validate::string(m, "name", 200)?);
    }
    if let Some(r) = m.get("role") {
        match r.as_str() {
            Some(r @ ("receipt" | "kitchen" | "label")) => f.role = Some(r.to_string()),
            _ => return invalid("role must be receipt, kitchen or label"),
        }
    }
    if let Some(s) = m.get("stations") {
        let arr = s.as_array().ok_or_else(|| Invalid("stations must be an array of strings".into()))?;
        let mut out = Vec::new();
        for x in arr {
            match x.as_str() {
                Some(s) if !s.is_empty() && s.len() <= 64 => out.push(s.to_string()),
                _ => return invalid("stations must be an array of strings (1 to 64 characters)"),
            }
        }
        f.stations = Some(out);
    }
    if let Some(w) = m.get("paperWidth") {
        match w.as_i64() {
            Some(58) => f.paper_width = Some(58),
            Some(80) => f.paper_width = Some(80),
            _ => return invalid("paperWidth must be 58 or 80"),
        }
    }
    if let Some(c) = m.get("connection") {
        f.connection = Some(parse_connection(c)?);
    }
    if m.contains_key("profile") {
        f.profile = Some(validate::opt_string(m, "profile", 64)?);
    }
    if m.contains_key("fallbackPrinterId") {
        f.fallback_printer_id = Some(validate::opt_string(m, "fallbackPrinterId", 128)?);
    }
    f.fallback_after_seconds = validate::opt_int(m, "fallbackAfterSeconds", 1, 24 * 3600)?;
    Ok(f)
}

impl Fields {
    pub fn apply(self, p: &mut Printer) {
        if let Some(v) = self.name {
            p.name = v;
        }
        if let Some(v) = self.role {
            p.role = v;
        }
        if let Some(v) = self.stations {
            p.stations = v;
        }
        if let Some(v) = self.paper_width {
            p.paper_width = v;
        }
        if let Some(v) = self.connection {
            p.connection = v;
        }
        if let Some(v) = self.profile {
            p.profile = v;
        }
        if let Some(v) = self.fallback_printer_id {
            p.fallback_printer_id = v;
        }
        if let Some(v) = self.fallback_after_seconds {
            p.fallback_after_seconds = v;
        }
        p.sync_desktop_ids();
    }
}

/// The status a printer starts with: only a virtual printer is known to be there (SPEC §6:
/// never `online` by default).
pub fn initial_status(c: &Connection) -> &'static str {
    match c {
        Connection::Virtual => "online",
        _ => "unknown",
    }
}
