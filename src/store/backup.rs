//! Copies of the database and their checks, for `branchd backup`, the scheduled backups,
//! `branchd restore` and `branchd doctor`.
//!
//! A copy is made with `VACUUM INTO` inside one read transaction, so it is a consistent
//! snapshot even while the server writes (WAL readers never block the writer).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{Reader, StoreError};

/// What `backup` says on a hub cluster: PostgreSQL is backed up with its own tools.
pub const POSTGRES_BACKUP: &str =
    "this hub keeps its data in PostgreSQL: back it up with PostgreSQL's own tools (pg_dump, pg_basebackup, a replica)";

/// Writes a consistent, compacted copy of the database behind `conn` to `file` (which must
/// not exist), then flushes it to disk.
pub fn vacuum_into(r: &Reader<'_>, file: &Path) -> Result<(), StoreError> {
    let conn = r.conn.sqlite().ok_or_else(|| StoreError::Invalid(POSTGRES_BACKUP.into()))?;
    conn.execute("VACUUM INTO ?1", [file.to_string_lossy().as_ref()])?;
    let f = std::fs::File::open(file).map_err(|e| StoreError::io(format!("cannot reopen {}", file.display()), e))?;
    f.sync_all().map_err(|e| StoreError::io(format!("cannot flush {}", file.display()), e))?;
    Ok(())
}

/// `PRAGMA integrity_check`: `Ok(())` when SQLite answers `ok`, else the problems it lists
/// (at most 20).
/// PostgreSQL checks its own pages (and `pg_amcheck` does the rest): `Ok(())`.
pub fn integrity(r: &Reader<'_>) -> Result<Result<(), Vec<String>>, StoreError> {
    let rows = check(r, "PRAGMA integrity_check(20)")?;
    if rows.is_empty() { Ok(Ok(())) } else { Ok(Err(rows)) }
}

/// `PRAGMA quick_check`: the problems SQLite lists (at most 20; empty: none).
pub fn quick_problems(r: &Reader<'_>) -> Result<Vec<String>, StoreError> {
    check(r, "PRAGMA quick_check(20)")
}

fn check(r: &Reader<'_>, pragma: &str) -> Result<Vec<String>, StoreError> {
    let Some(conn) = r.conn.sqlite() else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare(pragma)?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
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
    let problems = integrity(&Reader { conn: super::sql::Conn::Sqlite(&conn) })?.err();
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let schema_floor = super::migrate::schema_floor(&conn).unwrap_or(schema_version);
    let count = |table: &str| -> Result<i64, StoreError> {
        if !has_table(&conn, table)? {
            return Err(StoreError::Invalid(format!("{} is not a branchd database (it has no {table} table)", path.display())));
        }
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    };
    if problems.is_some() {
        return Ok(FileReport { schema_version, schema_floor, orders: 0, branches: 0, problems });
    }
    Ok(FileReport { schema_version, schema_floor, orders: count("orders")?, branches: count("branches")?, problems })
}

/// What `check-config` learns about an existing database (see [`quick_inspect`]).
#[derive(Debug, Clone)]
pub struct QuickReport {
    /// `PRAGMA user_version`: the schema version (migrations applied).
    pub schema_version: i64,
    /// The oldest schema that can use it (see `migrate::schema_floor`).
    pub schema_floor: i64,
    /// What `PRAGMA quick_check` listed (at most 20); empty when it answered `ok`.
    pub problems: Vec<String>,
    /// A table every branchd database has that this file lacks (looked for only when
    /// `problems` is empty): it is not a branchd database.
    pub missing_table: Option<&'static str>,
}

/// Opens `path` read-only and checks it with `PRAGMA quick_check`, not `integrity_check`
/// (which [`inspect`] runs): the quick one is cheap enough for every service start.
/// `Err` is what SQLite said.
pub fn quick_inspect(path: &Path) -> Result<QuickReport, String> {
    quick_inspect_sql(path).map_err(|e| e.to_string())
}

fn quick_inspect_sql(path: &Path) -> rusqlite::Result<QuickReport> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut stmt = conn.prepare("PRAGMA quick_check(20)")?;
    let mut problems: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
    if problems.len() == 1 && problems[0] == "ok" {
        problems.clear();
    }
    let schema_version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let schema_floor = super::migrate::schema_floor(&conn).unwrap_or(schema_version);
    let mut missing_table = None;
    if problems.is_empty() {
        for table in ["orders", "branches"] {
            if !has_table(&conn, table)? {
                missing_table = Some(table);
                break;
            }
        }
    }
    Ok(QuickReport { schema_version, schema_floor, problems, missing_table })
}

fn has_table(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))?;
    Ok(n > 0)
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
        super::super::Direct::open(&db).unwrap().probe_write().unwrap();
        let r = Reader { conn: super::super::sql::Conn::Sqlite(&conn) };
        assert_eq!(integrity(&r).unwrap(), Ok(()));
        let copy = dir.path().join("copy.db");
        vacuum_into(&r, &copy).unwrap();
        let report = inspect(&copy).unwrap();
        assert!(report.problems.is_none());
        assert_eq!(report.schema_version, super::super::migrate::latest());
        std::fs::write(dir.path().join("junk.db"), b"not a database at all, just text that is long enough").unwrap();
        assert!(inspect(&dir.path().join("junk.db")).is_err());
        checkpoint_file(&db).unwrap();
    }
}
