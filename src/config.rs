//! Typed configuration (SPEC §1): defaults < config file (TOML) < environment < flags,
//! validated once at start. A bad value is a [`ConfigError`] naming the setting; the binary
//! prints it on one line and exits 2. Secrets never appear in `Debug` output.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveTime;
use serde::Deserialize;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn bad(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.into(), reason: reason.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Branch,
    Hub,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Branch => "branch",
            Role::Hub => "hub",
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

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    pub port: u16,
    pub bind: IpAddr,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<String>,
    pub cors_origins: Vec<String>,
    pub role: Role,
    pub upstream_url: Option<String>,
    pub upstream_token: Option<String>,
    pub mdns: bool,
    /// Interfaces to advertise on; empty: every LAN interface (no container/VPN/bridge).
    pub mdns_interfaces: Vec<String>,
    pub max_payload: u64,
    pub max_body: usize,
    pub print_timeout: Duration,
    pub day_start: NaiveTime,
    pub zone: Zone,
    pub log_format: LogFormat,
    pub demo: bool,
    /// HTTPS/WSS on the same port (SPEC §1 `BRANCHD_TLS`); `tls_cert`/`tls_key`: PEM files
    /// served instead of the appliance's own CA (both or neither); `upstream_ca`: a PEM file of
    /// CA certificates the uplink trusts besides the system's roots.
    pub tls: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub upstream_ca: Option<PathBuf>,
    /// How often the served certificate is checked (addresses, expiry, changed files); not a
    /// user setting, tests shorten it.
    pub tls_check: Duration,
    /// Scheduled backups (issue #6): directory (None: `DATA_DIR/backups`), interval in
    /// hours (0: off), how many to keep.
    pub backup_dir: Option<PathBuf>,
    pub backup_interval_hours: f64,
    pub backup_keep: usize,
    /// `branchd update`: manifest URL and the release public key (base64) overriding the built-in one.
    pub update_url: Option<String>,
    pub update_public_key: Option<String>,
    /// Printer I/O timeouts and the idle status-poll interval (not user settings; tests
    /// shorten them).
    pub printer_timeouts: crate::printing::drivers::Timeouts,
    /// How often connected desktop apps are checked for a revoked license (not a user
    /// setting; tests shorten it).
    pub license_check: Duration,
    /// Engine.IO heartbeat and per-client queue (not user settings; tests shorten them).
    pub realtime: crate::realtime::Tuning,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("cors_origins", &self.cors_origins)
            .field("role", &self.role)
            .field("upstream_url", &self.upstream_url)
            .field("upstream_token", &self.upstream_token.as_ref().map(|_| "<redacted>"))
            .field("mdns", &self.mdns)
            .field("mdns_interfaces", &self.mdns_interfaces)
            .field("max_payload", &self.max_payload)
            .field("max_body", &self.max_body)
            .field("print_timeout", &self.print_timeout)
            .field("day_start", &self.day_start)
            .field("zone", &self.zone)
            .field("log_format", &self.log_format)
            .field("tls", &self.tls)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("upstream_ca", &self.upstream_ca)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 3001,
            bind: IpAddr::from([0, 0, 0, 0]),
            data_dir: PathBuf::from("./data"),
            jwt_secret: None,
            cors_origins: vec![],
            role: Role::Branch,
            upstream_url: None,
            upstream_token: None,
            mdns: true,
            mdns_interfaces: vec![],
            max_payload: 1 << 20,
            max_body: 1 << 20,
            print_timeout: Duration::from_millis(15_000),
            day_start: NaiveTime::from_hms_opt(4, 0, 0).unwrap_or(NaiveTime::MIN),
            zone: Zone::System,
            log_format: LogFormat::Text,
            demo: true,
            tls: true,
            tls_cert: None,
            tls_key: None,
            upstream_ca: None,
            tls_check: Duration::from_secs(5),
            backup_dir: None,
            backup_interval_hours: 24.0,
            backup_keep: 7,
            update_url: None,
            update_public_key: None,
            printer_timeouts: crate::printing::drivers::Timeouts::default(),
            license_check: Duration::from_secs(10),
            realtime: crate::realtime::Tuning::default(),
        }
    }
}

/// Raw values of one layer (file, environment or flags), all optional strings.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub port: Option<toml::Value>,
    pub bind: Option<String>,
    pub data_dir: Option<String>,
    pub jwt_secret: Option<String>,
    pub cors_origins: Option<toml::Value>,
    pub role: Option<String>,
    pub upstream_url: Option<String>,
    pub upstream_token: Option<String>,
    pub mdns: Option<toml::Value>,
    pub mdns_interfaces: Option<toml::Value>,
    pub max_payload: Option<toml::Value>,
    pub max_body: Option<toml::Value>,
    pub print_timeout_ms: Option<toml::Value>,
    pub day_start: Option<String>,
    pub timezone: Option<String>,
    pub log_format: Option<String>,
    pub backup_dir: Option<String>,
    pub backup_interval_hours: Option<toml::Value>,
    pub backup_keep: Option<toml::Value>,
    pub update_url: Option<String>,
    pub update_public_key: Option<String>,
    pub tls: Option<toml::Value>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub upstream_ca: Option<String>,
}

fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Layer {
    /// The environment layer, with SPEC's variable names.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Layer {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let s = |k: &str| get(k).map(toml::Value::String);
        Layer {
            port: s("PORT"),
            bind: get("BRANCHD_BIND"),
            data_dir: get("BRANCHD_DATA_DIR"),
            jwt_secret: get("JWT_SECRET"),
            cors_origins: s("CORS_ORIGINS"),
            role: get("BRANCHD_ROLE"),
            upstream_url: get("BRANCHD_UPSTREAM_URL"),
            upstream_token: get("BRANCHD_UPSTREAM_TOKEN"),
            mdns: s("BRANCHD_MDNS"),
            mdns_interfaces: s("BRANCHD_MDNS_INTERFACES"),
            max_payload: s("BRANCHD_MAX_PAYLOAD"),
            max_body: s("BRANCHD_MAX_BODY"),
            print_timeout_ms: s("BRANCHD_PRINT_TIMEOUT_MS"),
            day_start: get("BRANCHD_DAY_START"),
            timezone: get("TZ"),
            log_format: get("BRANCHD_LOG_FORMAT"),
            backup_dir: get("BRANCHD_BACKUP_DIR"),
            backup_interval_hours: s("BRANCHD_BACKUP_INTERVAL_HOURS"),
            backup_keep: s("BRANCHD_BACKUP_KEEP"),
            update_url: get("BRANCHD_UPDATE_URL"),
            update_public_key: get("BRANCHD_UPDATE_PUBLIC_KEY"),
            tls: s("BRANCHD_TLS"),
            tls_cert: get("BRANCHD_TLS_CERT"),
            tls_key: get("BRANCHD_TLS_KEY"),
            upstream_ca: get("BRANCHD_UPSTREAM_CA"),
        }
    }

    pub fn from_file(path: &std::path::Path) -> Result<Layer, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
        Layer::from_toml(&src).map_err(|e| bad("--config", format!("{}: {e}", path.display())))
    }

    /// Parses a config file's text; the error is the TOML parser's message.
    pub fn from_toml(src: &str) -> Result<Layer, String> {
        toml::from_str(src).map_err(|e: toml::de::Error| e.message().to_string())
    }

    /// Values of `over` win over those of `self`.
    pub fn overlay(self, over: Layer) -> Layer {
        Layer {
            port: over.port.or(self.port),
            bind: over.bind.or(self.bind),
            data_dir: over.data_dir.or(self.data_dir),
            jwt_secret: over.jwt_secret.or(self.jwt_secret),
            cors_origins: over.cors_origins.or(self.cors_origins),
            role: over.role.or(self.role),
            upstream_url: over.upstream_url.or(self.upstream_url),
            upstream_token: over.upstream_token.or(self.upstream_token),
            mdns: over.mdns.or(self.mdns),
            mdns_interfaces: over.mdns_interfaces.or(self.mdns_interfaces),
            max_payload: over.max_payload.or(self.max_payload),
            max_body: over.max_body.or(self.max_body),
            print_timeout_ms: over.print_timeout_ms.or(self.print_timeout_ms),
            day_start: over.day_start.or(self.day_start),
            timezone: over.timezone.or(self.timezone),
            log_format: over.log_format.or(self.log_format),
            backup_dir: over.backup_dir.or(self.backup_dir),
            backup_interval_hours: over.backup_interval_hours.or(self.backup_interval_hours),
            backup_keep: over.backup_keep.or(self.backup_keep),
            update_url: over.update_url.or(self.update_url),
            update_public_key: over.update_public_key.or(self.update_public_key),
            tls: over.tls.or(self.tls),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            upstream_ca: over.upstream_ca.or(self.upstream_ca),
        }
    }

    /// Validates the merged layers into a [`Config`].
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(v) = &self.port {
            // 0 asks the OS for a free port (tests, benchmarks); the address is logged.
            c.port = text(v).parse().map_err(|_| bad("PORT", format!("{} is not a port number (0-65535)", text(v))))?;
        }
        if let Some(v) = &self.bind {
            c.bind = v.parse().map_err(|_| bad("BRANCHD_BIND", format!("{v} is not an IP address")))?;
        }
        if let Some(v) = self.data_dir {
            c.data_dir = PathBuf::from(v);
        }
        if let Some(v) = self.jwt_secret {
            if v.len() < 16 {
                return Err(bad("JWT_SECRET", "must be at least 16 characters"));
            }
            c.jwt_secret = Some(v);
        }
        if let Some(v) = &self.cors_origins {
            c.cors_origins = match v {
                toml::Value::Array(a) => a.iter().map(text).collect(),
                other => text(other).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            };
            if let Some(o) = c.cors_origins.iter().find(|o| *o != "*" && !o.starts_with("http://") && !o.starts_with("https://")) {
                return Err(bad("CORS_ORIGINS", format!("{o} is not an origin like https://pos.example.com")));
            }
        }
        if let Some(v) = &self.role {
            c.role = match v.as_str() {
                "branch" => Role::Branch,
                "hub" => Role::Hub,
                _ => return Err(bad("BRANCHD_ROLE", format!("{v} is not branch or hub"))),
            };
        }
        if let Some(v) = self.upstream_url {
            if !v.starts_with("http://") && !v.starts_with("https://") {
                return Err(bad("BRANCHD_UPSTREAM_URL", format!("{v} is not an http(s) URL")));
            }
            c.upstream_url = Some(v.trim_end_matches('/').to_string());
        }
        c.upstream_token = self.upstream_token;
        if let Some(v) = &self.mdns {
            c.mdns = match text(v).as_str() {
                "on" | "true" => true,
                "off" | "false" => false,
                other => return Err(bad("BRANCHD_MDNS", format!("{other} is not on or off"))),
            };
        }
        if let Some(v) = &self.mdns_interfaces {
            c.mdns_interfaces = match v {
                toml::Value::Array(a) => a.iter().map(text).collect(),
                other => text(other).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            };
        }
        let size = |v: &Option<toml::Value>, name: &str| -> Result<Option<u64>, ConfigError> {
            v.as_ref()
                .map(|v| {
                    text(v)
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1024..=64 << 20).contains(n))
                        .ok_or_else(|| bad(name, format!("{} is not a size in bytes from 1024 to 67108864", text(v))))
                })
                .transpose()
        };
        if let Some(n) = size(&self.max_payload, "BRANCHD_MAX_PAYLOAD")? {
            c.max_payload = n;
        }
        if let Some(n) = size(&self.max_body, "BRANCHD_MAX_BODY")? {
            c.max_body = n as usize;
        }
        if let Some(v) = &self.print_timeout_ms {
            let ms = text(v).parse::<u64>().ok().filter(|n| (100..=600_000).contains(n));
            c.print_timeout = Duration::from_millis(
                ms.ok_or_else(|| bad("BRANCHD_PRINT_TIMEOUT_MS", format!("{} is not milliseconds from 100 to 600000", text(v))))?,
            );
        }
        if let Some(v) = &self.day_start {
            c.day_start =
                NaiveTime::parse_from_str(v, "%H:%M").map_err(|_| bad("BRANCHD_DAY_START", format!("{v} is not a time like 04:00")))?;
        }
        if let Some(v) = &self.timezone {
            // TZ may also be a POSIX rule or a file path; those mean "the system's zone".
            c.zone = match v.trim_start_matches(':').parse::<chrono_tz::Tz>() {
                Ok(tz) => Zone::Named(tz),
                Err(_) if v.starts_with(':') || v.starts_with('/') => Zone::System,
                Err(_) => return Err(bad("TZ", format!("{v} is not a time zone like Europe/Berlin"))),
            };
        }
        if let Some(v) = &self.log_format {
            c.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(bad("BRANCHD_LOG_FORMAT", format!("{v} is not text or json"))),
            };
        }
        c.backup_dir = self.backup_dir.map(PathBuf::from);
        if let Some(v) = &self.backup_interval_hours {
            c.backup_interval_hours = text(v).parse::<f64>().ok().filter(|h| (0.0..=8760.0).contains(h)).ok_or_else(|| {
                bad("BRANCHD_BACKUP_INTERVAL_HOURS", format!("{} is not a number of hours from 0 (off) to 8760", text(v)))
            })?;
        }
        if let Some(v) = &self.backup_keep {
            c.backup_keep = text(v)
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad("BRANCHD_BACKUP_KEEP", format!("{} is not a count from 1 to 1000", text(v))))?;
        }
        if let Some(v) = self.update_url {
            if !["http://", "https://", "file://", "/"].iter().any(|p| v.starts_with(p)) {
                return Err(bad("BRANCHD_UPDATE_URL", format!("{v} is not an http(s) URL or an absolute path")));
            }
            c.update_url = Some(v);
        }
        if let Some(v) = self.update_public_key {
            crate::ops::update::parse_public_key(&v).map_err(|e| bad("BRANCHD_UPDATE_PUBLIC_KEY", e))?;
            c.update_public_key = Some(v);
        }
        if let Some(v) = &self.tls {
            c.tls = match text(v).as_str() {
                "on" | "true" => true,
                "off" | "false" => false,
                other => return Err(bad("BRANCHD_TLS", format!("{other} is not on or off"))),
            };
        }
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                c.tls_cert = Some(PathBuf::from(cert));
                c.tls_key = Some(PathBuf::from(key));
            }
            (Some(_), None) => return Err(bad("BRANCHD_TLS_KEY", "must be set with BRANCHD_TLS_CERT")),
            (None, Some(_)) => return Err(bad("BRANCHD_TLS_CERT", "must be set with BRANCHD_TLS_KEY")),
            (None, None) => {}
        }
        c.upstream_ca = self.upstream_ca.map(PathBuf::from);
        Ok(c)
    }
}

impl Config {
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

    fn env(pairs: &[(&str, &str)]) -> Layer {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Layer::from_env(|k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()))
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let file: Layer = toml::from_str("port = 4000\nrole = \"hub\"\nmdns = false").unwrap();
        let flags = Layer { port: Some(toml::Value::Integer(5000)), ..Layer::default() };
        let c = file.overlay(env(&[("PORT", "4500"), ("BRANCHD_MDNS", "on")])).overlay(flags).resolve().unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.role, Role::Hub);
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
}
