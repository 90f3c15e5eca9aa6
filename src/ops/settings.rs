//! `branchd print-default-config` (the documented TOML: every setting, commented out at its
//! default) and `branchd check-config` (the configuration resolves and the data directory is
//! writable; the unit's `ExecStartPre`).

use std::path::Path;

use crate::config::Config;

/// Every setting of [`crate::config::Layer`], documented, commented out at its default.
/// `{DATA_DIR}` is replaced by `print_default`.
const TEMPLATE: &str = r#"# branchd configuration (TOML).
#
# Precedence: command-line flag > environment variable > this file > built-in default.
# Every setting below is shown commented out at its default; uncomment a line to change it.
# Secrets (jwt_secret, upstream_token) are better kept in /etc/default/branchd as
# JWT_SECRET=… and BRANCHD_UPSTREAM_TOKEN=… (mode 0640, root:branchd).
# After a change: `sudo branchd check-config && sudo systemctl restart branchd`.

# --- Network ----------------------------------------------------------------------------

# HTTP + Socket.IO port (0 picks a free one). env PORT, flag --port.
# port = 3001

# Address to listen on; 0.0.0.0 means every interface. env BRANCHD_BIND, flag --bind.
# bind = "0.0.0.0"

# Browser origins allowed to call the API (CORS), e.g. ["https://pos.example.com"], or
# ["*"] for any. Empty: same-origin only. env CORS_ORIGINS (comma-separated), flag --cors-origins.
# cors_origins = []

# --- Storage ----------------------------------------------------------------------------

# Data directory: the SQLite database branchd.db, the generated JWT secret, virtual printer
# output, staged updates (updates/) and, by default, backups (backups/).
# env BRANCHD_DATA_DIR, flag --data-dir.
{DATA_DIR}

# Scheduled backups: a consistent copy of the database every backup_interval_hours
# (fractions allowed; 0 turns them off) into backup_dir (default DATA_DIR/backups), keeping
# the newest backup_keep. A backup_dir outside the data directory must also be added to the
# unit's ReadWritePaths= (systemctl edit branchd).
# env BRANCHD_BACKUP_DIR, BRANCHD_BACKUP_INTERVAL_HOURS, BRANCHD_BACKUP_KEEP.
# backup_dir = "/var/lib/branchd/backups"
# backup_interval_hours = 24
# backup_keep = 7

# --- Identity and roles -----------------------------------------------------------------

# HS256 secret shared with HQ, at least 16 characters. Unset: generated on first start
# and kept in DATA_DIR/jwt_secret (mode 0600). env JWT_SECRET.
# jwt_secret = ""

# "branch" (a restaurant's appliance) or "hub" (HQ). env BRANCHD_ROLE, flag --role.
# role = "branch"

# --- Sync with HQ -----------------------------------------------------------------------

# HQ (hub) base URL, e.g. "https://hq.example.com". Unset: sync is off.
# env BRANCHD_UPSTREAM_URL, flag --upstream-url.
# upstream_url = ""

# This branch's uplink credential (made on the hub with `branchd uplink create`).
# env BRANCHD_UPSTREAM_TOKEN.
# upstream_token = ""

# --- Discovery --------------------------------------------------------------------------

# Advertise this appliance on the LAN with mDNS (_branchd._tcp): "on" or "off".
# env BRANCHD_MDNS, flag --mdns.
# mdns = "on"

# Interfaces to advertise on, e.g. ["eth0", "wlan0"]. Empty: every LAN interface
# (container, VPN and bridge interfaces excluded). env BRANCHD_MDNS_INTERFACES (comma-separated).
# mdns_interfaces = []

# --- HTTPS ------------------------------------------------------------------------------

# HTTPS and WSS on the same port as HTTP (the first byte of a connection tells them apart),
# with the appliance's own CA (made on first start in DATA_DIR/tls; devices trust it from
# GET /ca.crt): "on" or "off". env BRANCHD_TLS, flag --tls.
# tls = "on"

# Serve this certificate (PEM, full chain) and key (PEM) instead of the appliance's own CA;
# both or neither; reloaded when the files change. env BRANCHD_TLS_CERT, BRANCHD_TLS_KEY.
# tls_cert = ""
# tls_key = ""

# CA certificates (PEM) the uplink to HQ trusts besides the system's roots, for an HQ with
# a private CA. env BRANCHD_UPSTREAM_CA.
# upstream_ca = ""

# --- Limits and timing ------------------------------------------------------------------

# Largest Socket.IO payload in bytes (polling and WebSocket), 1024 to 67108864.
# env BRANCHD_MAX_PAYLOAD.
# max_payload = 1048576

# Largest HTTP request body in bytes, 1024 to 67108864. env BRANCHD_MAX_BODY.
# max_body = 1048576

# How long a print or desktop-app request may take, in milliseconds (100 to 600000).
# env BRANCHD_PRINT_TIMEOUT_MS.
# print_timeout_ms = 15000

# Start of the business day (order numbers restart at 1), HH:MM. env BRANCHD_DAY_START.
# day_start = "04:00"

# IANA time zone for business days and tickets, e.g. "Europe/Berlin". Unset: the system's.
# env TZ.
# timezone = ""

# --- Logs -------------------------------------------------------------------------------

# "text" or "json" (one JSON object per line, for log shippers). The level comes from
# RUST_LOG (default "info"). Logs go to stderr, i.e. the journal: journalctl -u branchd.
# env BRANCHD_LOG_FORMAT.
# log_format = "text"

# --- Updates ----------------------------------------------------------------------------

# Release manifest for `branchd update`. Unset: {upstream_url}/updates/manifest.json when
# an upstream is configured (a hub serves DATA_DIR/updates/ at /updates/).
# env BRANCHD_UPDATE_URL.
# update_url = ""

# Ed25519 public key (base64, 32 bytes) that release manifests must be signed with.
# Unset: the key built into this binary. env BRANCHD_UPDATE_PUBLIC_KEY.
# update_public_key = ""
"#;

/// The documented configuration; `packaged` sets the data directory of the Debian package.
pub fn default_config(packaged: bool) -> String {
    let data_dir = if packaged { "data_dir = \"/var/lib/branchd\"" } else { "# data_dir = \"./data\"" };
    TEMPLATE.replace("{DATA_DIR}", data_dir)
}

pub fn print_default(packaged: bool) {
    print!("{}", default_config(packaged));
}

/// Creates `dir` if needed and proves a file can be written and flushed there.
fn probe_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Made by `sudo branchd check-config`: give it the owner of its parent (the service
        // user's data directory), not root.
        use std::os::unix::fs::MetadataExt;
        if let Some(m) = dir.parent().and_then(|p| std::fs::metadata(p).ok()) {
            let _ = std::os::unix::fs::chown(dir, Some(m.uid()), Some(m.gid()));
        }
    }
    let probe = dir.join(format!(".branchd-write-test-{}", std::process::id()));
    let written = std::fs::File::create(&probe).and_then(|f| f.sync_all());
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| format!("{} is not writable: {e}", dir.display()))
}

/// The problem with `config` beyond what parsing checks, as `(setting, reason)`.
pub fn problems(config: &Config) -> Option<(&'static str, String)> {
    examine(config).err()
}

/// [`problems`] as `Err((setting, reason))`, else `Ok` with a warning when the database's
/// quick check found damage: the service still starts (it may well work, and refusing
/// would take the branch offline); `branchd doctor` runs the full check and says what to do.
fn examine(config: &Config) -> Result<Option<String>, (&'static str, String)> {
    if let Err(e) = probe_dir(&config.data_dir) {
        return Err(("BRANCHD_DATA_DIR", format!("{e} (the service user must own it)")));
    }
    if config.backup_interval_hours > 0.0
        && let Err(e) = probe_dir(&crate::ops::backup::dir(config))
    {
        return Err(("BRANCHD_BACKUP_DIR", format!("{e} (outside the data directory it also needs ReadWritePaths= in the unit)")));
    }
    let db = config.db_path();
    if !db.exists() {
        return Ok(None);
    }
    match quick_inspect(&db) {
        Ok(r) if !crate::store::migrate::usable(r.schema_version, r.schema_floor) => Err((
            "BRANCHD_DATA_DIR",
            format!(
                "{} has schema version {} (usable from {}) but this branchd knows only up to {}: it was made by a newer branchd (run `branchd update --rollback` or restore a backup)",
                db.display(),
                r.schema_version,
                r.schema_floor,
                crate::store::migrate::latest()
            ),
        )),
        Ok(r) if r.problems.is_empty() => Ok(None),
        Ok(r) => Ok(Some(format!(
            "branchd: warning: {} failed PRAGMA quick_check: {} (run `sudo branchd doctor`)",
            db.display(),
            r.problems.join("; ")
        ))),
        Err(e) => Err(("BRANCHD_DATA_DIR", format!("cannot read {}: {e} (see `branchd doctor`)", db.display()))),
    }
}

/// Opens `path` read-only and checks it with `PRAGMA quick_check`, not `integrity_check`:
/// this runs before every service start (`ExecStartPre`), and the full check (which also
/// cross-checks every index against its table) of a large database on an SD card can
/// outlast the unit's start timeout. `branchd doctor` and `branchd restore` run the full one.
fn quick_inspect(path: &Path) -> Result<crate::store::backup::QuickReport, String> {
    let report = crate::store::backup::quick_inspect(path)?;
    match report.missing_table {
        // As `restore` checks: it is a branchd database at all.
        Some(table) => Err(format!("it is not a branchd database (it has no {table} table)")),
        None => Ok(report),
    }
}

/// `branchd check-config`: one line and exit 0, or one line naming the setting and exit 2.
pub fn check_config(config: &Config) {
    match examine(config) {
        Err((setting, reason)) => {
            eprintln!("branchd: bad configuration: {setting}: {reason}");
            std::process::exit(2);
        }
        Ok(Some(warning)) => eprintln!("{warning}"),
        Ok(None) => {}
    }
    println!(
        "configuration ok: data directory {}, port {}, role {}, sync {}, backups {}",
        config.data_dir.display(),
        config.port,
        config.role.as_str(),
        config.upstream_url.as_deref().unwrap_or("off"),
        if config.backup_interval_hours > 0.0 {
            format!("every {} h into {}", config.backup_interval_hours, crate::ops::backup::dir(config).display())
        } else {
            "off".into()
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layer;

    /// The template with every `# key = value` line uncommented.
    fn uncommented() -> String {
        default_config(false)
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) => {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn every_setting_is_documented_and_its_default_parses() {
        let text = uncommented();
        // Unknown keys are refused by Layer, so this also catches typos.
        let mut layer: Layer = toml::from_str(&text).unwrap();
        // Empty strings stand for "unset" in the template.
        layer.jwt_secret = None;
        layer.upstream_url = None;
        layer.upstream_token = None;
        layer.timezone = None;
        layer.update_url = None;
        layer.update_public_key = None;
        layer.tls_cert = None;
        layer.tls_key = None;
        layer.upstream_ca = None;
        let c = layer.resolve().unwrap();
        let d = Config::default();
        assert_eq!((c.port, c.bind, c.mdns, c.max_payload, c.max_body), (d.port, d.bind, d.mdns, d.max_payload, d.max_body));
        assert_eq!((c.print_timeout, c.day_start, c.backup_keep), (d.print_timeout, d.day_start, d.backup_keep));
        assert_eq!(c.backup_interval_hours, d.backup_interval_hours);
        // Every field of Layer appears in the template.
        let src = include_str!("../config.rs");
        let start = src.find("pub struct Layer {").unwrap();
        let body = &src[start..start + src[start..].find('}').unwrap()];
        for line in body.lines().skip(1) {
            if let Some(name) = line.trim().strip_prefix("pub ").and_then(|l| l.split(':').next()) {
                assert!(
                    text.lines().any(|l| l.starts_with(&format!("{name} = "))),
                    "setting {name} is not documented in the default config"
                );
            }
        }
    }

    #[test]
    fn database_check_before_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), backup_interval_hours: 0.0, ..Config::default() };
        let db = config.db_path();
        assert_eq!(examine(&config), Ok(None), "no database yet");

        crate::store::testing::database_with_a_company(&db);
        assert_eq!(examine(&config), Ok(None));

        let newer = crate::store::migrate::latest() + 1;
        // A newer binary that changed the schema in a way this one cannot live with.
        crate::store::testing::set_schema(&db, newer, Some(newer));
        let (setting, reason) = examine(&config).unwrap_err();
        assert_eq!(setting, "BRANCHD_DATA_DIR");
        assert!(reason.contains(&format!("schema version {newer}")), "{reason}");
        // A newer binary that only added things records that this one may still run on it
        // (so rolling back an update keeps the appliance up).
        crate::store::testing::set_schema(&db, newer, Some(crate::store::migrate::latest()));
        assert_eq!(examine(&config), Ok(None), "usable from an older schema");

        // Damage quick_check finds (a NULL in a NOT NULL column): the service still starts,
        // and the journal says what is wrong and where to look. (Damage so bad that SQLite
        // cannot read the file at all is refused, like a file that is no database, below.)
        crate::store::testing::set_schema(&db, newer - 1, None);
        crate::store::testing::plant_not_null_damage(&db);
        let warning = examine(&config).unwrap().expect("a warning");
        assert!(warning.contains("quick_check") && warning.contains("damaged.x") && warning.contains("branchd doctor"), "{warning}");

        // Not a branchd database, or not a database at all: refused.
        std::fs::remove_file(&db).unwrap();
        crate::store::testing::foreign_database(&db);
        assert!(examine(&config).unwrap_err().1.contains("not a branchd database"));
        std::fs::write(&db, b"not a database at all, just text that is long enough to be a header").unwrap();
        assert_eq!(examine(&config).unwrap_err().0, "BRANCHD_DATA_DIR");
    }

    #[test]
    fn packaged_config_sets_the_data_dir() {
        let layer: Layer = toml::from_str(&default_config(true)).unwrap();
        assert_eq!(layer.data_dir.as_deref(), Some("/var/lib/branchd"));
        let layer: Layer = toml::from_str(&default_config(false)).unwrap();
        assert!(layer.data_dir.is_none());
    }
}
