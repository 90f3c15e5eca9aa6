//! Typed configuration (SPEC §1): defaults < config file (TOML) < environment < flags,
//! validated once at start. A bad value is a [`ConfigError`] naming the setting; the binary
//! prints it on one line and exits 2.
//!
//! Every setting is declared once, in the `settings!` table below: its [`Config`] field,
//! type and default, its config-file key, environment variable, command-line flag, doc
//! line(s) and validation. Everything else is derived from that table: the [`Config`]
//! struct, its `Default` and `Debug` (secrets are [`Secret`]s and print `<redacted>`), the
//! layers ([`Layer::from_env`], [`Layer::from_toml`], [`Layer::overlay`], [`Layer::resolve`]
//! loop over [`SETTINGS`]), the `serve` flags (`cli.rs`), the documented config file
//! (`branchd print-default-config`) and the settings table in `docs/OPERATING.md`
//! (`branchd print-default-config --markdown`, kept equal by a test).
//!
//! **Adding a setting** is one entry in `settings!` plus its use through `config.field`:
//! doc comment (first paragraph: what it is, for `--help` and the docs table; the rest:
//! detail for the config file), `field: Type = default`, then `key`, `env`, `flag`, `group`,
//! `toml` (the value the config file shows), optionally `shown` (the default in words) and
//! `secret: true`, and `parse text:` (the file must give a string) or `parse value:` with the
//! parser, which returns the reason when a value is bad. Then regenerate the committed
//! copies, which tests compare: `branchd print-default-config --packaged >
//! packaging/debian/config.toml`, and the table in `docs/OPERATING.md` from `--markdown`.
//! Tuning knobs that are not user settings go in the `[internal]` part (field and default).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use chrono::NaiveTime;
use ed25519_dalek::VerifyingKey;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn bad(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.into(), reason: reason.into() }
}

/// What this appliance is (the `role` setting, `"branch"` or `"hub"`); a user's role is
/// [`crate::auth::Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplianceRole {
    Branch,
    Hub,
}

impl ApplianceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplianceRole::Branch => "branch",
            ApplianceRole::Hub => "hub",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Time zone for business days: an IANA zone from `TZ`, or the system's.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    Named(chrono_tz::Tz),
    System,
}

/// A configured secret (`JWT_SECRET`, `BRANCHD_UPSTREAM_TOKEN`): `Debug` and `Display` print
/// `<redacted>`, so a secret never reaches a log line or an error message by accident; the
/// value is read only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Printer I/O timeouts and the queue's waits (the `printer_timeouts` internal setting;
/// `printing::drivers` and `printing::queue` use them).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub write: Duration,
    pub read: Duration,
    /// How long a printer may take to process a job before confirming it.
    pub confirm: Duration,
    /// How often an idle printer is asked for its status.
    pub poll: Duration,
    /// The first and the longest wait between attempts on a printer that is not ready or
    /// failed (each failed attempt doubles it; a ready printer resets it).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long a ticket waits on a printer that cannot print before `printer_stalled`
    /// (SPEC §4: 30 s).
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            write: Duration::from_secs(10),
            read: Duration::from_millis(1500),
            confirm: Duration::from_secs(20),
            poll: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stall: Duration::from_secs(30),
        }
    }
}

/// Socket.IO transport settings that are not user settings (the `realtime` internal setting;
/// tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Engine.IO heartbeat (SPEC: the socket.io defaults, 25 s and 20 s).
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Packets queued per client. What a slow client gets: everything, late. Nobody waits
    /// for it: its packets queue up (memory is taken only as the queue grows) while it
    /// catches up, and a client that stops answering is cut off by the heartbeat within
    /// `ping_interval + ping_timeout`; it reconnects and `catchUp` returns what it missed.
    /// Only a client more than this many packets behind misses broadcasts (counted in
    /// `branchd_broadcast_deliveries_dropped_total` and logged); at a branch's event rates
    /// the heartbeat cuts a dead client off long before that.
    pub socket_buffer: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { ping_interval: Duration::from_secs(25), ping_timeout: Duration::from_secs(20), socket_buffer: 16 * 1024 }
    }
}

/// Declares the settings: see the module doc. Generates [`Config`] (with `Default` and
/// `Debug`) and [`SETTINGS`].
macro_rules! settings {
    (@shown) => { None };
    (@shown $s:literal) => { Some($s) };
    (@secret) => { false };
    (@secret $b:literal) => { $b };
    (@text_only text) => { true };
    (@text_only value) => { false };
    (@parse text, $parse:expr, $v:expr) => { text_parser($parse)(text($v).as_str()) };
    (@parse value, $parse:expr, $v:expr) => { value_parser($parse)($v) };
    (
        $(
            $(#[doc = $doc:literal])*
            $field:ident: $ty:ty = $default:expr => {
                key: $key:literal, env: $env:literal, flag: $flag:expr, group: $group:literal, toml: $toml:literal,
                $(shown: $shown:literal,)? $(secret: $secret:literal,)?
                parse $mode:ident: $parse:expr $(,)?
            }
        )*
        [internal]
        $(
            $(#[doc = $idoc:literal])*
            $ifield:ident: $ity:ty = $idefault:expr;
        )*
    ) => {
        /// The validated configuration: the user settings of [`SETTINGS`], then tuning
        /// knobs that are not user settings.
        #[derive(Clone, Debug)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            $( $(#[doc = $idoc])* pub $ifield: $ity, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $field: $default, )* $( $ifield: $idefault, )* }
            }
        }

        /// Every user setting, in the order of the config file.
        pub static SETTINGS: &[Setting] = &[
            $(
                Setting {
                    key: $key,
                    env: $env,
                    flag: $flag,
                    group: $group,
                    doc: &[$($doc),*],
                    toml: $toml,
                    shown: settings!(@shown $($shown)?),
                    secret: settings!(@secret $($secret)?),
                    text_only: settings!(@text_only $mode),
                    debug: |c| format!("{:?}", c.$field),
                    apply: |c, v| {
                        c.$field = settings!(@parse $mode, $parse, v)?;
                        Ok(())
                    },
                },
            )*
        ];
    };
}

settings! {
    // --- Network
    /// HTTP + Socket.IO port; 0 picks a free one (the address is logged).
    port: u16 = 3001 => {
        key: "port", env: "PORT", flag: Flag::Serve("port"), group: "Network", toml: "3001",
        parse value: |v| text(v).parse().map_err(|_| format!("{} is not a port number (0-65535)", text(v))),
    }
    /// Address to listen on; 0.0.0.0 means every interface.
    bind: IpAddr = IpAddr::from([0, 0, 0, 0]) => {
        key: "bind", env: "BRANCHD_BIND", flag: Flag::Serve("bind"), group: "Network", toml: "\"0.0.0.0\"",
        parse text: |s| s.parse().map_err(|_| format!("{s} is not an IP address")),
    }
    /// Reverse proxies / load balancers whose `X-Forwarded-For` names the client, e.g.
    /// `["10.0.0.5", "10.0.1.0/24"]` (a hub cluster's nginx); comma-separated in the environment.
    ///
    /// Loopback is always trusted. The client address is what per-address limits (failed
    /// logins, new Socket.IO sessions) count: behind an untrusted proxy every client would
    /// share the proxy's address.
    trusted_proxies: Vec<ipnet::IpNet> = vec![] => {
        key: "trusted_proxies", env: "BRANCHD_TRUSTED_PROXIES", flag: Flag::None, group: "Network", toml: "[]",
        shown: "loopback only",
        parse value: |v| list(v)
            .iter()
            .map(|s| s.parse::<ipnet::IpNet>().or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from)).map_err(|_| format!("{s} is not an IP address or network like 10.0.1.0/24")))
            .collect(),
    }
    /// Browser origins allowed to call the API (CORS), e.g. `["https://pos.example.com"]`,
    /// or `["*"]` for any; comma-separated in the environment and on the command line.
    cors_origins: Vec<String> = vec![] => {
        key: "cors_origins", env: "CORS_ORIGINS", flag: Flag::Serve("cors-origins"), group: "Network", toml: "[]",
        shown: "same-origin only",
        parse value: |v| {
            let origins = list(v);
            match origins.iter().find(|o| *o != "*" && !o.starts_with("http://") && !o.starts_with("https://")) {
                Some(o) => Err(format!("{o} is not an origin like https://pos.example.com")),
                None => Ok(origins),
            }
        },
    }

    // --- Storage
    /// Data directory: the SQLite database branchd.db, the generated JWT secret, virtual
    /// printer output, staged updates (updates/) and, by default, backups (backups/).
    data_dir: PathBuf = PathBuf::from("./data") => {
        key: "data_dir", env: "BRANCHD_DATA_DIR", flag: Flag::Global("data-dir"), group: "Storage", toml: "\"./data\"",
        shown: "`./data` (packaged: `/var/lib/branchd`)",
        parse text: |s| Ok(PathBuf::from(s)),
    }
    /// Scheduled backups: the directory they go to.
    ///
    /// A backup_dir outside the data directory must also be added to the unit's
    /// ReadWritePaths= (systemctl edit branchd).
    backup_dir: Option<PathBuf> = None => {
        key: "backup_dir", env: "BRANCHD_BACKUP_DIR", flag: Flag::None, group: "Storage",
        toml: "\"/var/lib/branchd/backups\"", shown: "`DATA_DIR/backups`",
        parse text: |s| Ok(Some(PathBuf::from(s))),
    }
    /// Scheduled backups: a consistent copy of the database every this many hours
    /// (fractions allowed; 0 turns them off).
    backup_interval_hours: f64 = 24.0 => {
        key: "backup_interval_hours", env: "BRANCHD_BACKUP_INTERVAL_HOURS", flag: Flag::None, group: "Storage", toml: "24",
        parse value: |v| in_range(v, 0.0..=8760.0, "a number of hours from 0 (off) to 8760"),
    }
    /// Scheduled backups: how many to keep (the newest).
    backup_keep: usize = 7 => {
        key: "backup_keep", env: "BRANCHD_BACKUP_KEEP", flag: Flag::None, group: "Storage", toml: "7",
        parse value: |v| in_range(v, 1..=1000, "a count from 1 to 1000"),
    }

    // --- Identity and roles
    /// HS256 secret shared with HQ, at least 16 characters.
    ///
    /// Unset: generated on first start and kept in DATA_DIR/jwt_secret (mode 0600).
    jwt_secret: Option<Secret> = None => {
        key: "jwt_secret", env: "JWT_SECRET", flag: Flag::None, group: "Identity and roles", toml: "\"\"",
        shown: "generated, kept in `DATA_DIR/jwt_secret` (0600)", secret: true,
        parse text: |s| if s.len() < 16 { Err("must be at least 16 characters".into()) } else { Ok(Some(Secret::from(s))) },
    }
    /// "branch" (a restaurant's appliance) or "hub" (HQ).
    role: ApplianceRole = ApplianceRole::Branch => {
        key: "role", env: "BRANCHD_ROLE", flag: Flag::Serve("role"), group: "Identity and roles", toml: "\"branch\"",
        parse text: |s| match s {
            "branch" => Ok(ApplianceRole::Branch),
            "hub" => Ok(ApplianceRole::Hub),
            _ => Err(format!("{s} is not branch or hub")),
        },
    }

    /// A hub cluster's PostgreSQL database, `postgres://user:password@host:port/dbname`
    /// (role hub only; every process of the cluster names the same one). TLS as libpq's
    /// `?sslmode=verify-full&sslrootcert=/path/ca.pem` say (default `prefer`).
    ///
    /// Unset: the hub keeps its state in SQLite in DATA_DIR, as a branch does. Set, JWT_SECRET
    /// must be set too (every process shares it); see docs/HUB-CLUSTER.md.
    database_url: Option<Secret> = None => {
        key: "database_url", env: "BRANCHD_DATABASE_URL", flag: Flag::None, group: "Identity and roles", toml: "\"\"",
        shown: "unset (SQLite in DATA_DIR)", secret: true,
        parse text: |s| match s.starts_with("postgres://") || s.starts_with("postgresql://") {
            true => Ok(Some(Secret::from(s))),
            false => Err("must be a postgres:// URL".into()),
        },
    }

    // --- Sync with HQ
    /// HQ (hub) base URL, e.g. `https://hq.example.com`; sync is off when unset.
    upstream_url: Option<String> = None => {
        key: "upstream_url", env: "BRANCHD_UPSTREAM_URL", flag: Flag::Serve("upstream-url"), group: "Sync with HQ", toml: "\"\"",
        shown: "unset (sync off)",
        parse text: |s| match s.starts_with("http://") || s.starts_with("https://") {
            true => Ok(Some(s.trim_end_matches('/').to_string())),
            false => Err(format!("{s} is not an http(s) URL")),
        },
    }
    /// This branch's uplink credential (made on the hub with `branchd uplink create`).
    upstream_token: Option<Secret> = None => {
        key: "upstream_token", env: "BRANCHD_UPSTREAM_TOKEN", flag: Flag::None, group: "Sync with HQ", toml: "\"\"",
        shown: "unset", secret: true,
        parse text: |s| Ok(Some(Secret::from(s))),
    }

    // --- Discovery
    /// Advertise this appliance on the LAN with mDNS (_branchd._tcp): "on" or "off".
    mdns: bool = true => {
        key: "mdns", env: "BRANCHD_MDNS", flag: Flag::Serve("mdns"), group: "Discovery", toml: "\"on\"",
        parse value: on_off,
    }
    /// Interfaces to advertise on, e.g. ["eth0", "wlan0"]; comma-separated in the environment.
    ///
    /// Empty: every LAN interface (container, VPN and bridge interfaces excluded).
    mdns_interfaces: Vec<String> = vec![] => {
        key: "mdns_interfaces", env: "BRANCHD_MDNS_INTERFACES", flag: Flag::None, group: "Discovery", toml: "[]",
        shown: "every LAN interface, not docker/bridge/VPN/veth",
        parse value: |v| Ok(list(v)),
    }

    // --- HTTPS
    /// HTTPS and WSS on the same port as HTTP (the first byte of a connection tells them
    /// apart): "on" or "off".
    ///
    /// With the appliance's own CA, made on first start in DATA_DIR/tls; devices trust it
    /// from GET /ca.crt.
    tls: bool = true => {
        key: "tls", env: "BRANCHD_TLS", flag: Flag::Serve("tls"), group: "HTTPS", toml: "\"on\"",
        parse value: on_off,
    }
    /// Certificate (PEM, full chain) served instead of the appliance's own CA, with tls_key
    /// (both or neither); reloaded when the file changes.
    tls_cert: Option<PathBuf> = None => {
        key: "tls_cert", env: "BRANCHD_TLS_CERT", flag: Flag::None, group: "HTTPS", toml: "\"\"", shown: "unset",
        parse text: |s| Ok(Some(PathBuf::from(s))),
    }
    /// The private key (PEM) of tls_cert; reloaded when the file changes.
    tls_key: Option<PathBuf> = None => {
        key: "tls_key", env: "BRANCHD_TLS_KEY", flag: Flag::None, group: "HTTPS", toml: "\"\"", shown: "unset",
        parse text: |s| Ok(Some(PathBuf::from(s))),
    }
    /// CA certificates (PEM) the uplink to HQ trusts besides the system's roots, for an HQ
    /// with a private CA.
    upstream_ca: Option<PathBuf> = None => {
        key: "upstream_ca", env: "BRANCHD_UPSTREAM_CA", flag: Flag::None, group: "HTTPS", toml: "\"\"",
        shown: "system roots only",
        parse text: |s| Ok(Some(PathBuf::from(s))),
    }

    // --- Limits and timing
    /// Largest Socket.IO payload in bytes (polling and WebSocket), 1024 to 67108864.
    max_payload: u64 = 1 << 20 => {
        key: "max_payload", env: "BRANCHD_MAX_PAYLOAD", flag: Flag::None, group: "Limits and timing", toml: "1048576",
        parse value: |v| in_range(v, 1024..=64 << 20, SIZE),
    }
    /// Largest HTTP request body in bytes, 1024 to 67108864.
    max_body: usize = 1 << 20 => {
        key: "max_body", env: "BRANCHD_MAX_BODY", flag: Flag::None, group: "Limits and timing", toml: "1048576",
        parse value: |v| in_range(v, 1024..=64 << 20, SIZE),
    }
    /// How long a print or desktop-app request may take, in milliseconds (100 to 600000).
    print_timeout: Duration = Duration::from_millis(15_000) => {
        key: "print_timeout_ms", env: "BRANCHD_PRINT_TIMEOUT_MS", flag: Flag::None, group: "Limits and timing", toml: "15000",
        parse value: |v| in_range(v, 100..=600_000, "milliseconds from 100 to 600000").map(Duration::from_millis),
    }
    /// Start of the business day (order numbers restart at 1), HH:MM.
    day_start: NaiveTime = NaiveTime::from_hms_opt(4, 0, 0).unwrap_or(NaiveTime::MIN) => {
        key: "day_start", env: "BRANCHD_DAY_START", flag: Flag::None, group: "Limits and timing", toml: "\"04:00\"",
        parse text: |s| NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("{s} is not a time like 04:00")),
    }
    /// IANA time zone for business days and tickets, e.g. "Europe/Berlin"; unset: the
    /// system's.
    zone: Zone = Zone::System => {
        key: "timezone", env: "TZ", flag: Flag::None, group: "Limits and timing", toml: "\"\"", shown: "the system's",
        // TZ may also be a POSIX rule or a file path; those mean "the system's zone".
        parse text: |s| match s.trim_start_matches(':').parse::<chrono_tz::Tz>() {
            Ok(tz) => Ok(Zone::Named(tz)),
            Err(_) if s.starts_with(':') || s.starts_with('/') => Ok(Zone::System),
            Err(_) => Err(format!("{s} is not a time zone like Europe/Berlin")),
        },
    }

    // --- Logs
    /// "text" or "json" (one JSON object per line, for log shippers).
    ///
    /// The level comes from RUST_LOG (default "info"). Logs go to stderr, i.e. the journal:
    /// journalctl -u branchd.
    log_format: LogFormat = LogFormat::Text => {
        key: "log_format", env: "BRANCHD_LOG_FORMAT", flag: Flag::None, group: "Logs", toml: "\"text\"",
        parse text: |s| match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{s} is not text or json")),
        },
    }

    // --- Updates
    /// Release manifest (URL or absolute path) for `branchd update`; its `--url` overrides it.
    ///
    /// Unset: {upstream_url}/updates/manifest.json when an upstream is configured (a hub
    /// serves DATA_DIR/updates/ at /updates/).
    update_url: Option<String> = None => {
        key: "update_url", env: "BRANCHD_UPDATE_URL", flag: Flag::None, group: "Updates", toml: "\"\"",
        shown: "`{upstream_url}/updates/manifest.json` when an upstream is set",
        parse text: |s| match ["http://", "https://", "file://", "/"].iter().any(|p| s.starts_with(p)) {
            true => Ok(Some(s.to_string())),
            false => Err(format!("{s} is not an http(s) URL or an absolute path")),
        },
    }
    /// Ed25519 public key (base64, 32 bytes) that release manifests must be signed with.
    ///
    /// Unset: the key built into this binary.
    update_public_key: Option<String> = None => {
        key: "update_public_key", env: "BRANCHD_UPDATE_PUBLIC_KEY", flag: Flag::None, group: "Updates", toml: "\"\"",
        shown: "the key built into this binary",
        parse text: |s| parse_public_key(s).map(|_| Some(s.to_string())),
    }

    [internal]
    /// Create demo data on a first start (`--no-demo` turns it off; not a file or env setting).
    demo: bool = true;
    /// How often the served certificate is checked (addresses, expiry, changed files); tests
    /// shorten it.
    tls_check: Duration = Duration::from_secs(5);
    /// Printer I/O timeouts and the idle status-poll interval (tests shorten them).
    printer_timeouts: Timeouts = Timeouts::default();
    /// How often connected desktop apps are checked for a revoked license (tests shorten it).
    license_check: Duration = Duration::from_secs(10);
    /// Engine.IO heartbeat and per-client queue (tests shorten them).
    realtime: Tuning = Tuning::default();
}

/// The cross-setting rules, checked after every setting parsed on its own.
fn check_together(c: &Config) -> Result<(), ConfigError> {
    if c.database_url.is_some() {
        if c.role != ApplianceRole::Hub {
            return Err(bad("BRANCHD_DATABASE_URL", "is for a hub cluster only (BRANCHD_ROLE=hub); a branch keeps its data in SQLite"));
        }
        if c.jwt_secret.is_none() {
            return Err(bad(
                "JWT_SECRET",
                "must be set with BRANCHD_DATABASE_URL: every process of the hub cluster signs and checks tokens with it",
            ));
        }
    }
    match (&c.tls_cert, &c.tls_key) {
        (Some(_), None) => Err(bad("BRANCHD_TLS_KEY", "must be set with BRANCHD_TLS_CERT")),
        (None, Some(_)) => Err(bad("BRANCHD_TLS_CERT", "must be set with BRANCHD_TLS_KEY")),
        _ => Ok(()),
    }
}

const SIZE: &str = "a size in bytes from 1024 to 67108864";

/// A raw value as text: a TOML string as it is, any other TOML value as TOML writes it.
fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A TOML array of strings, or a comma-separated string (environment, flags).
fn list(v: &toml::Value) -> Vec<String> {
    match v {
        toml::Value::Array(a) => a.iter().map(text).collect(),
        other => text(other).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    }
}

fn on_off(v: &toml::Value) -> Result<bool, String> {
    match text(v).as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(format!("{other} is not on or off")),
    }
}

/// A number in `range`; else "`v` is not `what`".
fn in_range<T: std::str::FromStr + PartialOrd>(v: &toml::Value, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T, String> {
    text(v).parse::<T>().ok().filter(|n| range.contains(n)).ok_or_else(|| format!("{} is not {what}", text(v)))
}

/// Parses a base64 ed25519 public key (`update_public_key`; `ops::update` verifies
/// manifests with it).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| "not 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| format!("not an ed25519 public key: {e}"))
}

/// Where a setting's command-line flag is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// No flag: config file and environment only.
    None,
    /// A server flag: after `serve`, or before the subcommand (`branchd --port 3002`).
    Serve(&'static str),
    /// Accepted before or after any subcommand.
    Global(&'static str),
}

/// One user setting, as declared in `settings!`.
pub struct Setting {
    /// The config file's key.
    pub key: &'static str,
    /// The environment variable (SPEC §1); bad values are reported under this name.
    pub env: &'static str,
    pub flag: Flag,
    /// The section of the config file it is listed under.
    pub group: &'static str,
    /// Doc lines: the first paragraph says what it is (help, docs table), the rest is
    /// detail for the config file.
    pub doc: &'static [&'static str],
    /// The value the config file shows (commented out); a placeholder when `shown` is set
    /// and the setting has no default value.
    pub toml: &'static str,
    /// The default in words, when the `toml` value does not say it.
    pub shown: Option<&'static str>,
    /// Never printed (layers and `Config` print `<redacted>`).
    pub secret: bool,
    /// The config file must give a TOML string (`text:` parsers); `value:` parsers take
    /// any TOML value.
    pub text_only: bool,
    /// The field's `Debug` text (a [`Secret`] prints `<redacted>`); see [`Setting::value`].
    debug: fn(&Config) -> String,
    /// Parses a raw value into its `Config` field: the reason when it is bad.
    apply: fn(&mut Config, &toml::Value) -> Result<(), String>,
}

impl Setting {
    /// The first paragraph of the doc, on one line.
    pub fn meaning(&self) -> String {
        self.doc.iter().map(|l| l.trim()).take_while(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }

    /// The default, as the docs and `--help` show it.
    pub fn default_text(&self) -> String {
        match self.shown {
            Some(s) => s.to_string(),
            None => format!("`{}`", self.toml.trim_matches('"')),
        }
    }

    /// The value `config` has, as a person reads it (`on`, `unset`, `./data`); a secret
    /// shows only whether it is set, never its value.
    pub fn value(&self, config: &Config) -> String {
        let debug = (self.debug)(config);
        if debug == "None" {
            return "unset".into();
        }
        if self.secret {
            return "set".into();
        }
        let inner = debug.strip_prefix("Some(").and_then(|d| d.strip_suffix(')')).unwrap_or(&debug);
        let plain = inner.strip_prefix("\"").and_then(|d| d.strip_suffix("\"")).filter(|d| !d.contains("\"")).unwrap_or(inner);
        let word = self.toml.trim_matches(|c| c == '\u{22}');
        match plain {
            "true" if word == "on" || word == "off" => "on".into(),
            "false" if word == "on" || word == "off" => "off".into(),
            p if self.toml.starts_with("\"") && p.chars().all(|c| c.is_ascii_alphanumeric()) => p.to_ascii_lowercase(),
            p => p.to_string(),
        }
    }

    /// `--flag`, if it has one.
    pub fn flag_name(&self) -> Option<&'static str> {
        match self.flag {
            Flag::None => None,
            Flag::Serve(f) | Flag::Global(f) => Some(f),
        }
    }
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting").field("key", &self.key).field("env", &self.env).field("flag", &self.flag).finish_non_exhaustive()
    }
}

/// The setting with config-file key `key`.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Typed closures for `settings!`: the parser's argument type is known where it is written.
fn text_parser<T>(f: impl Fn(&str) -> Result<T, String>) -> impl Fn(&str) -> Result<T, String> {
    f
}

fn value_parser<T>(f: impl Fn(&toml::Value) -> Result<T, String>) -> impl Fn(&toml::Value) -> Result<T, String> {
    f
}

/// Raw values of one layer (file, environment or flags) by config-file key; a key that is
/// absent leaves the value to the layers below.
#[derive(Default, Clone)]
pub struct Layer {
    values: BTreeMap<&'static str, toml::Value>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.values {
            match setting(k).is_some_and(|s| s.secret) {
                true => m.entry(k, &"<redacted>"),
                false => m.entry(k, v),
            };
        }
        m.finish()
    }
}

impl Layer {
    /// Sets `key` (a setting's config-file key) to `value`.
    pub fn set(&mut self, key: &'static str, value: impl Into<toml::Value>) {
        self.values.insert(key, value.into());
    }

    /// This layer with `key` set to `value`.
    pub fn with(mut self, key: &'static str, value: impl Into<toml::Value>) -> Layer {
        self.set(key, value);
        self
    }

    /// Removes `key`.
    pub fn unset(&mut self, key: &str) {
        self.values.remove(key);
    }

    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.values.get(key)
    }

    /// The environment layer, with SPEC's variable names; empty values count as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Layer {
        let mut layer = Layer::default();
        for s in SETTINGS {
            if let Some(v) = get(s.env).filter(|v| !v.is_empty()) {
                layer.set(s.key, v);
            }
        }
        layer
    }

    pub fn from_file(path: &std::path::Path) -> Result<Layer, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
        Layer::from_toml(&src).map_err(|e| bad("--config", format!("{}: {e}", path.display())))
    }

    /// Parses a config file's text. Unknown keys are refused, and `text:` settings must be
    /// TOML strings.
    pub fn from_toml(src: &str) -> Result<Layer, String> {
        let table: toml::Table = toml::from_str(src).map_err(|e: toml::de::Error| e.message().to_string())?;
        let mut layer = Layer::default();
        for (key, value) in table {
            let Some(s) = setting(&key) else {
                let known: Vec<String> = SETTINGS.iter().map(|s| format!("`{}`", s.key)).collect();
                return Err(format!("unknown field `{key}`, expected one of {}", known.join(", ")));
            };
            if s.text_only && !value.is_str() {
                let shown = if s.secret { String::new() } else { format!(" `{value}`") };
                return Err(format!("invalid type for `{key}`: {}{shown}, expected a string", value.type_str()));
            }
            layer.set(s.key, value);
        }
        Ok(layer)
    }

    /// Values of `over` win over those of `self`.
    pub fn overlay(mut self, over: Layer) -> Layer {
        self.values.extend(over.values);
        self
    }

    /// Validates the merged layers into a [`Config`]: each value by its setting's parser,
    /// in the table's order, then the rules between settings.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        for s in SETTINGS {
            if let Some(v) = self.values.get(s.key) {
                (s.apply)(&mut c, v).map_err(|reason| bad(s.env, reason))?;
            }
        }
        check_together(&c)?;
        Ok(c)
    }
}

impl Config {
    /// The client behind a request from `peer`: `peer` itself, or, when `peer` is loopback or
    /// a trusted proxy, the last address of `X-Forwarded-For` that is not a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| ip.is_loopback() || self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else { return peer };
        let mut client = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
        client
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("branchd.db")
    }

    /// `now` in the branch's time zone, as printed on tickets (`2026-11-27 14:05`).
    pub fn local_time(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        const FMT: &str = "%Y-%m-%d %H:%M";
        match self.zone {
            Zone::Named(tz) => now.with_timezone(&tz).format(FMT).to_string(),
            Zone::System => now.with_timezone(&chrono::Local).format(FMT).to_string(),
        }
    }

    /// The business day (for order numbers) at `now`.
    pub fn business_day(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        match self.zone {
            Zone::Named(tz) => crate::orders::business_day(now, &tz, self.day_start),
            Zone::System => crate::orders::business_day(now, &chrono::Local, self.day_start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `doctor`, `check-config` and `/api/system/effective` show: readable values,
    /// secrets only as set/unset.
    #[test]
    fn values_read_as_a_person_writes_them_and_secrets_never_show() {
        let c = Layer::default()
            .with("mdns", "off")
            .with("role", "hub")
            .with("jwt_secret", "a-secret-of-enough-length")
            .with("upstream_url", "https://hq.example.com")
            .with("mdns_interfaces", "eth0,wlan0")
            .resolve()
            .unwrap();
        let v = |key: &str| setting(key).unwrap().value(&c);
        assert_eq!(v("mdns"), "off");
        assert_eq!(v("tls"), "on");
        assert_eq!(v("role"), "hub");
        assert_eq!(v("port"), "3001");
        assert_eq!(v("data_dir"), "./data");
        assert_eq!(v("upstream_url"), "https://hq.example.com");
        assert_eq!(v("update_url"), "unset");
        assert_eq!(v("jwt_secret"), "set");
        assert_eq!(v("upstream_token"), "unset");
        assert_eq!(v("mdns_interfaces"), r#"["eth0", "wlan0"]"#);
        for s in SETTINGS {
            assert!(!s.value(&c).contains("a-secret-of-enough-length"), "{}", s.key);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Layer {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Layer::from_env(|k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()))
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let file = Layer::from_toml("port = 4000\nrole = \"hub\"\nmdns = false").unwrap();
        let flags = Layer::default().with("port", 5000);
        let c = file.overlay(env(&[("PORT", "4500"), ("BRANCHD_MDNS", "on")])).overlay(flags).resolve().unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.role, ApplianceRole::Hub);
        assert!(c.mdns);
        assert_eq!(c.print_timeout, Duration::from_secs(15));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = env(&[("PORT", "http")]).resolve().unwrap_err();
        assert_eq!(e.setting, "PORT");
        let e = env(&[("BRANCHD_MAX_PAYLOAD", "-1")]).resolve().unwrap_err();
        assert_eq!(e.setting, "BRANCHD_MAX_PAYLOAD");
        let e = env(&[("BRANCHD_DAY_START", "25:00")]).resolve().unwrap_err();
        assert_eq!(e.setting, "BRANCHD_DAY_START");
    }

    #[test]
    fn secrets_never_print() {
        let c = env(&[("JWT_SECRET", "sixteen-chars-secret"), ("BRANCHD_UPSTREAM_TOKEN", "uplink-credential")]).resolve().unwrap();
        assert_eq!(c.jwt_secret.as_ref().map(Secret::expose), Some("sixteen-chars-secret"));
        let shown = format!("{c:?} {c:#?} {}", c.upstream_token.as_ref().unwrap());
        assert!(!shown.contains("sixteen-chars-secret") && !shown.contains("uplink-credential"), "{shown}");
        assert!(shown.contains("jwt_secret: Some(<redacted>)"), "{shown}");
        let layer = env(&[("JWT_SECRET", "sixteen-chars-secret"), ("PORT", "4000")]);
        let shown = format!("{layer:?}");
        assert!(!shown.contains("sixteen-chars-secret") && shown.contains("4000"), "{shown}");
        // Not in the config file's type error either.
        let e = Layer::from_toml("jwt_secret = 12345678901234567").unwrap_err();
        assert!(e.contains("expected a string") && !e.contains("12345678901234567"), "{e}");
    }

    #[test]
    fn debug_shows_every_field() {
        let shown = format!("{:?}", Config::default());
        for s in SETTINGS {
            let field = match s.key {
                "print_timeout_ms" => "print_timeout",
                "timezone" => "zone",
                k => k,
            };
            assert!(shown.contains(&format!("{field}: ")), "{field} missing from {shown}");
        }
        for internal in ["demo", "tls_check", "printer_timeouts", "license_check", "realtime"] {
            assert!(shown.contains(&format!("{internal}: ")), "{internal} missing from {shown}");
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let mut keys = std::collections::HashSet::new();
        let mut envs = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(keys.insert(s.key) && envs.insert(s.env), "{} / {} declared twice", s.key, s.env);
            assert!(!s.meaning().is_empty(), "{} has no doc", s.key);
            if s.secret {
                assert!(s.flag == Flag::None, "{}: secrets have no flag (it would show in `ps`)", s.key);
            }
        }
    }

    #[test]
    fn config_file_values_are_checked_like_the_environment() {
        let e = Layer::from_toml("colour = \"blue\"").unwrap_err();
        assert!(e.starts_with("unknown field `colour`, expected one of `port`"), "{e}");
        let e = Layer::from_toml("bind = 5").unwrap_err();
        assert!(e.contains("`bind`") && e.contains("expected a string"), "{e}");
        let c = Layer::from_toml("cors_origins = [\"https://a.example\", \"*\"]\nbackup_interval_hours = 0.5").unwrap().resolve().unwrap();
        assert_eq!(c.cors_origins, ["https://a.example", "*"]);
        assert_eq!(c.backup_interval_hours, 0.5);
        let e = Layer::from_toml("tls_key = \"/k.pem\"").unwrap().resolve().unwrap_err();
        assert_eq!(e.setting, "BRANCHD_TLS_CERT");
        let e = env(&[("BRANCHD_UPSTREAM_URL", "ftp://x")]).resolve().unwrap_err();
        assert_eq!(e.to_string(), "BRANCHD_UPSTREAM_URL: ftp://x is not an http(s) URL");
        let c = env(&[("BRANCHD_UPSTREAM_URL", "https://hq.example/"), ("TZ", ":/etc/localtime")]).resolve().unwrap();
        assert_eq!(c.upstream_url.as_deref(), Some("https://hq.example"));
        assert!(matches!(c.zone, Zone::System));
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_last_untrusted_forwarded_address() {
        let c = Layer::from_toml("trusted_proxies = [\"10.0.1.0/24\", \"10.0.0.5\"]").unwrap().resolve().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Not a proxy: its own address, whatever it claims.
        assert_eq!(c.client_address(ip("192.168.1.9"), Some("1.2.3.4")), ip("192.168.1.9"));
        // A trusted proxy: the client it names; a chain of trusted proxies is walked back.
        assert_eq!(c.client_address(ip("10.0.0.5"), Some("192.168.1.9")), ip("192.168.1.9"));
        assert_eq!(c.client_address(ip("10.0.1.7"), Some("6.6.6.6, 192.168.1.9, 10.0.0.5")), ip("192.168.1.9"));
        assert_eq!(c.client_address(ip("127.0.0.1"), Some("192.168.1.9")), ip("192.168.1.9"));
        // No header, or garbage in it: the last trusted hop.
        assert_eq!(c.client_address(ip("10.0.0.5"), None), ip("10.0.0.5"));
        assert_eq!(c.client_address(ip("10.0.0.5"), Some("not-an-ip")), ip("10.0.0.5"));
        assert!(Layer::from_toml("trusted_proxies = [\"10.0.0.0/33\"]").unwrap().resolve().is_err());
    }
}
