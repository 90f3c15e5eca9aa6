//! `branchd print-default-config` (the documented TOML: every setting, commented out at its
//! default; or `--markdown`, the docs table; both generated from [`crate::config::SETTINGS`])
//! and `branchd check-config` (the configuration resolves and the data directory is
//! writable; the unit's `ExecStartPre`).

use std::path::Path;

use crate::config::{Config, SETTINGS};

/// The config file's opening lines.
const PREAMBLE: &str = "\
# branchd configuration (TOML).
#
# Precedence: command-line flag > environment variable > this file > built-in default.
# Every setting below is shown commented out at its default; uncomment a line to change it.
# Secrets (jwt_secret, upstream_token) are better kept in /etc/default/branchd as
# JWT_SECRET=… and BRANCHD_UPSTREAM_TOKEN=… (mode 0640, root:branchd).
# After a change: `sudo branchd check-config && sudo systemctl restart branchd`.
";

/// The data directory of the Debian package, set (not commented out) by `--packaged`.
const PACKAGED_DATA_DIR: &str = "\"/var/lib/branchd\"";

/// The documented configuration, generated from [`SETTINGS`]: every setting commented out
/// at its default, grouped; `packaged` sets the data directory of the Debian package.
pub fn default_config(packaged: bool) -> String {
    let mut out = PREAMBLE.to_string();
    let mut group = "";
    for s in SETTINGS {
        if s.group != group {
            group = s.group;
            out += &format!("\n# --- {group} {}\n", "-".repeat(83usize.saturating_sub(group.len())));
        }
        out += "\n";
        for line in s.doc.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            out += &format!("# {line}\n");
        }
        let mut from = format!("env {}", s.env);
        if let Some(flag) = s.flag_name() {
            from += &format!(", flag --{flag}");
        }
        out += &format!("# {from}.\n");
        match s.key {
            "data_dir" if packaged => out += &format!("{} = {PACKAGED_DATA_DIR}\n", s.key),
            key => out += &format!("# {key} = {}\n", s.toml),
        }
    }
    out
}

/// The settings as a Markdown table, generated from [`SETTINGS`]: what `docs/OPERATING.md`
/// shows between its `settings:begin`/`settings:end` markers (a test keeps them equal).
pub fn markdown_table() -> String {
    let mut out = String::from("| key | env | flag | default | meaning |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        let flag = s.flag_name().map(|f| format!("`--{f}`")).unwrap_or_else(|| "—".into());
        out += &format!("| `{}` | `{}` | {flag} | {} | {} |\n", s.key, s.env, s.default_text(), s.meaning().replace('|', "\\|"));
    }
    out
}

pub fn print_default(packaged: bool, markdown: bool) {
    match markdown {
        true => print!("{}", markdown_table()),
        false => print!("{}", default_config(packaged)),
    }
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
    if config.database_url.is_some() {
        // A hub cluster's database is checked by `doctor` (it needs the server reachable).
        return Ok(None);
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
/// When a server is running, one more line per setting it uses differently from the files
/// (they take effect at the next restart).
pub async fn check_config(config: &Config) {
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
    for line in running_differences(config).await {
        println!("{line}");
    }
}

/// What a running server of this data directory uses differently from `config`, one line
/// each; nothing when no server holds the data directory (as before a start).
async fn running_differences(config: &Config) -> Vec<String> {
    if super::lock::running(&config.data_dir).is_none() {
        return Vec::new();
    }
    let doctor = match super::doctor::Doctor::new(config) {
        Ok(d) => d,
        Err(e) => return vec![format!("a server is running, but it cannot be asked what it uses: {e}")],
    };
    match doctor.get("/api/system/effective").await {
        Ok((status, running)) if status.is_success() => {
            let lines = super::doctor::difference_lines(config, &running);
            if lines.is_empty() { vec!["the running server uses these settings".into()] } else { lines }
        }
        Ok((status, _)) => {
            vec![format!("a server is running, but it did not say what it uses ({status}; run as root to use its JWT secret)")]
        }
        Err(e) => vec![format!("a server holds the data directory, but it cannot be asked what it uses: {e}")],
    }
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
        let layer = Layer::from_toml(&text).unwrap();
        let default = format!("{:?}", Config::default());
        for s in SETTINGS {
            assert!(text.lines().any(|l| l.starts_with(&format!("{} = ", s.key))), "setting {} is not in the default config", s.key);
            // Each value the file shows is the default, or (for a setting without one) a
            // placeholder whose default the table says in words.
            let alone = Layer::default().with(s.key, layer.get(s.key).unwrap().clone()).resolve();
            let is_default = alone.as_ref().is_ok_and(|c| format!("{c:?}") == default);
            assert!(is_default || s.shown.is_some(), "{} = {} is not the default: give its `shown`", s.key, s.toml);
        }
        let mut layer = layer;
        for s in SETTINGS.iter().filter(|s| s.toml == "\"\"") {
            layer.unset(s.key); // empty strings stand for "unset"
        }
        layer.unset("backup_dir"); // an example
        assert_eq!(format!("{:?}", layer.resolve().unwrap()), default);
    }

    /// The settings table in docs/OPERATING.md is the generated one.
    #[test]
    fn the_docs_settings_table_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATING.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
        let table = doc.split_once(begin).and_then(|(_, rest)| rest.split_once(end)).map(|(table, _)| table);
        let expected = markdown_table();
        assert!(
            table == Some(expected.as_str()),
            "the settings table in docs/OPERATING.md is stale: put this (`branchd print-default-config --markdown`) \
             between the lines {} and {end}:\n\n{expected}",
            begin.trim_end()
        );
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
        let layer = Layer::from_toml(&default_config(true)).unwrap();
        assert_eq!(layer.get("data_dir").and_then(|v| v.as_str()), Some("/var/lib/branchd"));
        let layer = Layer::from_toml(&default_config(false)).unwrap();
        assert!(layer.get("data_dir").is_none());
    }
}
