//! Secrets kept in the data directory: the JWT secret (generated on first start, 0600) when
//! `JWT_SECRET` is not configured.

use std::io::Write;
use std::path::Path;

use rand::RngCore;

use crate::config::Config;

pub const JWT_SECRET_FILE: &str = "jwt_secret";

/// Writes `contents` to `path` readable by the owner only, failing if it exists.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// The configured secret, or the one kept in the data directory (made on first use).
pub fn jwt_secret(config: &Config) -> std::io::Result<String> {
    if let Some(s) = &config.jwt_secret {
        return Ok(s.clone());
    }
    let path = config.data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    match write_private(&path, &secret) {
        Ok(()) => Ok(secret),
        // Another process (the CLI next to a starting server) made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read_to_string(&path)?.trim().to_string()),
        Err(e) => Err(e),
    }
}
