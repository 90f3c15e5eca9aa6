//! Small facts about the database itself, kept in its `meta` table: whether the data
//! directory's JWT secret has been used with it (so that a lost secret file is noticed
//! instead of silently replaced, SPEC §1).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::sql::{Conn, params};

const SECRET_KEPT: &str = "jwt_secret_kept";

fn get(conn: Conn<'_>, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))
}

/// Whether the database at `path` was served with a secret kept in the data directory.
/// `false` for a database that does not exist or predates the record.
pub fn secret_was_kept(path: &Path) -> Result<bool, StoreError> {
    if !path.exists() {
        return Ok(false);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let conn = Conn::Sqlite(&conn);
    let has_meta: bool =
        conn.query_row("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", params![], |r| r.get(0))?;
    Ok(has_meta && get(conn, SECRET_KEPT)?.is_some())
}

/// The appliance's stable id (made once, kept in the database).
pub async fn appliance_id(db: &super::Db) -> Result<String, StoreError> {
    db.write(|tx| appliance_id_in(tx)).await
}

fn appliance_id_in(tx: &super::Tx<'_>) -> Result<String, StoreError> {
    let conn = tx.conn;
    if let Ok(Some(id)) = get(conn, "appliance_id") {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    conn.execute("INSERT INTO meta (key, value) VALUES ('appliance_id', ?1)", params![&id])?;
    Ok(id)
}

/// Records that this database is served with the data directory's secret file.
pub async fn note_secret_kept(db: &super::Db) -> Result<(), StoreError> {
    db.write(|tx| {
        tx.conn.execute("INSERT INTO meta (key, value) VALUES (?1, '1') ON CONFLICT(key) DO NOTHING", params![SECRET_KEPT])?;
        Ok::<_, StoreError>(())
    })
    .await
}
