//! Copies of the database and their checks, for `branchd backup`, the scheduled backups,
//! `branchd restore` and `branchd doctor`.
//!
//! A copy is made with `VACUUM INTO` inside one read transaction, so it is a consistent
//! snapshot even while the server writes (WAL readers never block the writer).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Writes a consistent, compacted copy of the database behind `conn` to `file` (which must
/// not exist), then flushes it to disk.
pub fn vacuum_into(conn: &Connection, file: &Path) -> Result<(), StoreError> {
    conn.execute("VACUUM INTO ?1", [file.to_string_lossy().as_ref()])?;
    let f = std::fs::File::open(file).map_err(|e| StoreError::Corrupt(format!("cannot reopen {}: {e}", file.display())))?;
    f.sync_all().map_err(|e| StoreError::Corrupt(format!("cannot flush {}: {e}", file.display())))?;
    Ok(())
}

/// `PRAGMA integrity_check`: `Ok(())` when SQLite answers `ok`, else the problems it lists
/// (at most 20).
pub fn integrity(conn: &Connection) -> Result<Result<(), Vec<String>>, StoreError> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
    if rows.len() == 1 && rows[0] == "ok" { Ok(Ok(())) } else { Ok(Err(rows)) }
}

/// Checks that the write lock can be taken (nothing is changed).
pub fn probe_write(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
    Ok(())
}

/// What a database file holds, as far as restore needs to know.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// `PRAGMA user_version`: the schema version (migrations applied).
    pub schema_version: i64,
    /// The oldest schema that can use it (see `migrate::schema_floor`).
    pub schema_floor: i64,
    pub orders: i64,
    pub branches: i64,
    /// `None` when `PRAGMA integrity_check` answered `ok`.
    pub problems: Option<Vec<String>>,
}

/// Opens `path` read-only (never creating it) and checks it: integrity, schema version, and
/// that it is a branchd database at all.
pub fn inspect(path: &Path) -> Result<FileReport, StoreError> {
    let open = |e| StoreError::Open { path: path.display().to_string(), source: e };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(open)?;
    let problems = integrity(&conn)?.err();
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let schema_floor = super::migrate::schema_floor(&conn).unwrap_or(schema_version);
    let count = |table: &str| -> Result<i64, StoreError> {
        let exists: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))?;
        if exists == 0 {
            return Err(StoreError::Invalid(format!("{} is not a branchd database (it has no {table} table)", path.display())));
        }
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    };
    if problems.is_some() {
        return Ok(FileReport { schema_version, schema_floor, orders: 0, branches: 0, problems });
    }
    Ok(FileReport { schema_version, schema_floor, orders: count("orders")?, branches: count("branches")?, problems })
}

/// Folds the write-ahead log of `path` into the main file so that the file alone holds
/// everything (best effort: a damaged database may refuse).
pub fn checkpoint_file(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StoreError::Open { path: path.display().to_string(), source: e })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_of_a_live_database_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("branchd.db");
        let conn = super::super::db::open_rw(&db).unwrap();
        conn.execute("INSERT INTO companies (id, name, created_at) VALUES ('c', 'C', '2026-01-01T00:00:00Z')", []).unwrap();
        probe_write(&conn).unwrap();
        assert_eq!(integrity(&conn).unwrap(), Ok(()));
        let copy = dir.path().join("copy.db");
        vacuum_into(&conn, &copy).unwrap();
        let report = inspect(&copy).unwrap();
        assert!(report.problems.is_none());
        assert_eq!(report.schema_version, super::super::migrate::latest());
        std::fs::write(dir.path().join("junk.db"), b"not a database at all, just text that is long enough").unwrap();
        assert!(inspect(&dir.path().join("junk.db")).is_err());
        checkpoint_file(&db).unwrap();
    }
}
