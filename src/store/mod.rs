//! The only code that touches SQLite.
//!
//! One writer thread owns the single read-write connection and commits queued writes in
//! groups (one `BEGIN IMMEDIATE … COMMIT`, one fsync, for every write that arrived together;
//! each write in its own savepoint so one failure rolls back only itself). Readers use a small
//! pool of read-only connections on the blocking thread pool. Nothing here runs on the async
//! worker threads, and nothing here knows about HTTP or Socket.IO.
//!
//! The interface: read functions take a [`Reader`], functions that change rows a [`Tx`];
//! neither lets the connection out of this module (ARCHITECTURE.md, "The store boundary").
//!
//! Durability: WAL with `synchronous = FULL`, so a write is on disk before its caller hears
//! "ok" and survives `kill -9` and power loss (SPEC §6).

pub mod availability;
pub mod backup;
pub mod db;
pub mod directory;
pub mod events;
pub mod fanout;
pub mod health;
pub mod meta;
pub mod migrate;
pub mod orders;
pub mod pg_tls;
pub mod print_alerts;
pub mod print_jobs;
pub mod printers;
pub mod setup;
pub mod sql;
pub mod sync;

pub use db::{Db, Direct, Reader, Tx};
pub use events::Event;

/// Store failures. Domain refusals raised inside a transaction are `Conflict`/`NotFound`/
/// `Invalid` so that the HTTP and Socket.IO layers can map them to SPEC's codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// Any other database error (PostgreSQL's, or a query that gave no row where one was due).
    #[error("database error: {0}")]
    Database(String),
    /// A UNIQUE, FOREIGN KEY, NOT NULL or CHECK constraint refused the change.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The disk is full: nothing of the write was stored (SPEC §3 `STORAGE_FULL`).
    #[error("the data disk is full")]
    Full,
    /// SQLite's I/O errors, a read-only or vanished file, a locked database
    /// (SPEC §3 `STORAGE_UNAVAILABLE`).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A file the store writes or reads beside the database (a backup, its directory)
    /// failed; a full disk is [`StoreError::Full`].
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A database thread could not start, or a read task failed.
    #[error("database thread failed: {0}")]
    Thread(String),
    /// SQLite found damage in the file (or stored JSON no longer parses).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the database writer has stopped")]
    Closed,
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("migration {name} failed: {source}")]
    Migration { name: String, source: rusqlite::Error },
    #[error("PostgreSQL migration {name} failed: {message}")]
    PostgresMigration { name: String, message: String },
    /// The database was migrated by a newer branchd: this binary does not know its schema.
    #[error("the database is at schema version {found}, newer than this binary knows ({known}); run the newer branchd or restore a backup")]
    SchemaTooNew { found: i64, known: i64 },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DiskFull) => StoreError::Full,
            Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt(e.to_string()),
            Some(C::ConstraintViolation) => StoreError::Constraint(e.to_string()),
            Some(
                C::SystemIoFailure
                | C::ReadOnly
                | C::CannotOpen
                | C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
                | C::FileLockingProtocolFailed,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// A failure of the storage itself (not of the request): full, unavailable, damaged.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Full
                | StoreError::Unavailable(_)
                | StoreError::Io { .. }
                | StoreError::Thread(_)
                | StoreError::Corrupt(_)
                | StoreError::Open { .. }
        )
    }

    /// An I/O failure on a file beside the database (`what` names it); a full disk is
    /// [`StoreError::Full`].
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::Full;
        }
        StoreError::Io { what: what.into(), source }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict { code, message: message.into() }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Current time as RFC 3339 UTC with millisecond precision (SPEC: every timestamp).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opaque list cursor: the `seq` of the last row returned, base64url.
pub fn encode_cursor(seq: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seq.to_string())
}

pub fn decode_cursor(cursor: &str) -> Option<i64> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// One page of a list: `{items, nextCursor?}`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows with their seq.
    pub fn from_rows(mut rows: Vec<(i64, T)>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(|(s, _)| encode_cursor(*s)) } else { None };
        Page { items: rows.into_iter().map(|(_, t)| t).collect(), next_cursor }
    }
}

/// Databases in given states, for the unit tests of modules outside `store` (which must not
/// hold SQL themselves).
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    /// A migrated database at `path` holding one company.
    pub fn database_with_a_company(path: &Path) {
        let conn = super::db::open_rw(path).unwrap();
        conn.execute_batch("INSERT INTO companies (id, name, created_at) VALUES ('c', 'C', '2026-01-01T00:00:00Z')").unwrap();
    }

    /// Sets `PRAGMA user_version` and, when given, the recorded schema floor (as a newer
    /// binary would have left them).
    pub fn set_schema(path: &Path, version: i64, floor: Option<i64>) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
        if let Some(floor) = floor {
            conn.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_floor'", [floor.to_string()]).unwrap();
        }
    }

    /// Damage `PRAGMA quick_check` finds: a NULL in a column declared NOT NULL (table
    /// `damaged`, column `x`).
    pub fn plant_not_null_damage(path: &Path) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE damaged (x); INSERT INTO damaged VALUES (NULL);
                 PRAGMA writable_schema = ON;
                 UPDATE sqlite_master SET sql = 'CREATE TABLE damaged (x NOT NULL)' WHERE name = 'damaged';",
            )
            .unwrap();
    }

    /// A SQLite database that is not branchd's.
    pub fn foreign_database(path: &Path) {
        rusqlite::Connection::open(path).unwrap().execute_batch("CREATE TABLE other (x)").unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn io_failures_are_not_corruption() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(matches!(StoreError::io("backup directory /x", full), StoreError::Full));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = StoreError::io("backup directory /x", denied);
        assert!(matches!(e, StoreError::Io { .. }) && e.is_storage_failure(), "{e:?}");
        assert!(e.to_string().starts_with("backup directory /x: "), "{e}");
    }
}
