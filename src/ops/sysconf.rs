//! Where an installed appliance keeps its settings, so that admin commands typed on the box
//! (`sudo branchd user add …`) see what the service sees:
//! - the config file: `--config FILE`, else `BRANCHD_CONFIG` (empty: none), else
//!   `/etc/branchd/config.toml` when it exists (the Debian package installs it);
//! - `/etc/default/branchd` (the unit's `EnvironmentFile`): read as extra environment when
//!   the system config file is in use; the real environment wins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const SYSTEM_CONFIG: &str = "/etc/branchd/config.toml";
pub const SYSTEM_ENV: &str = "/etc/default/branchd";

/// The config file to read, if any.
pub fn config_path(flag: Option<&Path>, env: Option<String>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    if let Some(v) = env {
        return (!v.is_empty()).then(|| PathBuf::from(v));
    }
    let system = Path::new(SYSTEM_CONFIG);
    system.is_file().then(|| system.to_path_buf())
}

/// Parses an `EnvironmentFile` the way systemd does for the simple cases: `KEY=VALUE` lines,
/// `#`/`;` comments, optional `export `, values optionally in single or double quotes.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else { continue };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.insert(k.to_string(), v.to_string());
    }
    out
}

/// Environment lookups for resolving the configuration: the process environment, then
/// `/etc/default/branchd` when `config` is the system config file.
pub fn env_lookup(config: Option<&Path>) -> impl Fn(&str) -> Option<String> {
    let extra = match config {
        Some(p) if p == Path::new(SYSTEM_CONFIG) => std::fs::read_to_string(SYSTEM_ENV).map(|t| parse_env_file(&t)).unwrap_or_default(),
        _ => HashMap::new(),
    };
    move |k: &str| std::env::var(k).ok().or_else(|| extra.get(k).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let m = parse_env_file("# comment\nJWT_SECRET=abc\nexport PORT=3002\nBRANCHD_UPSTREAM_TOKEN=\"x y\"\nbad line\n; other\nE=\n");
        assert_eq!(m["JWT_SECRET"], "abc");
        assert_eq!(m["PORT"], "3002");
        assert_eq!(m["BRANCHD_UPSTREAM_TOKEN"], "x y");
        assert_eq!(m["E"], "");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn config_path_order() {
        assert_eq!(config_path(Some(Path::new("/a.toml")), Some("/b.toml".into())), Some(PathBuf::from("/a.toml")));
        assert_eq!(config_path(None, Some("/b.toml".into())), Some(PathBuf::from("/b.toml")));
        assert_eq!(config_path(None, Some(String::new())), None);
    }
}
