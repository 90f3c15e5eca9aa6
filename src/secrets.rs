//! Secrets kept in the data directory: the JWT secret (generated on first start, 0600) when
//! `JWT_SECRET` is not configured. A secret is made only for a data directory without a
//! database: once tokens may have been issued, a missing secret is an error (SPEC §1), and
//! only `branchd secret rotate` replaces it on purpose. "Once tokens may have been issued"
//! means: a server has run on the database with the kept secret (`store::meta`).

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

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The database exists, so tokens signed with the lost secret may be in use.
    #[error(
        "{path} is missing but the database {db} exists: a new secret would make every token in use fail. \
         Restore the file from a backup, set JWT_SECRET, or run `branchd secret rotate` to make a new one on purpose"
    )]
    Missing { path: String, db: String },
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl SecretError {
    /// Whether this is a configuration problem (exit code 2) rather than an I/O failure.
    pub fn is_config(&self) -> bool {
        matches!(self, SecretError::Missing { .. })
    }
}

/// The configured secret, or the one kept in the data directory (made on first use, when
/// there is no database yet).
pub fn jwt_secret(config: &Config) -> Result<String, SecretError> {
    if let Some(s) = &config.jwt_secret {
        return Ok(s.expose().to_string());
    }
    let path = config.data_dir.join(JWT_SECRET_FILE);
    let io = |source| SecretError::Io { path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let db = config.db_path();
    // A database that was served with the kept secret: tokens signed with it may be in use.
    // (Unreadable counts as served: refusing is recoverable, a silent new secret is not.)
    if crate::store::meta::secret_was_kept(&db).unwrap_or(true) {
        return Err(SecretError::Missing { path: path.display().to_string(), db: db.display().to_string() });
    }
    let secret = fresh();
    match write_private(&path, &secret) {
        Ok(()) => Ok(secret),
        // Another process (the CLI next to a starting server) made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read_to_string(&path).map_err(io)?.trim().to_string()),
        Err(e) => Err(io(e)),
    }
}

fn fresh() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `branchd secret rotate`: replaces the kept secret with a new one (atomically, 0600).
/// Every token signed with the old one stops working once the server restarts.
pub fn rotate(config: &Config) -> Result<std::path::PathBuf, SecretError> {
    let path = config.data_dir.join(JWT_SECRET_FILE);
    let io = |source| SecretError::Io { path: path.display().to_string(), source };
    std::fs::create_dir_all(&config.data_dir).map_err(io)?;
    let tmp = config.data_dir.join(format!(".{JWT_SECRET_FILE}.new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, &fresh()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    crate::fsutil::sync_dir(&config.data_dir);
    Ok(path)
}
