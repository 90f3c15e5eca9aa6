//! Applies the embedded `migrations/NNNN_*.sql` files in order, once each, and records the
//! schema floor: the oldest schema a branchd binary must know to use the database, so that
//! rolling back an update over a migration that only added things keeps the appliance
//! running. The same for PostgreSQL (`migrations/postgres/`, a hub cluster), where it also
//! lets older processes restart during a rolling update.

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;
use super::sql::{Conn, PgConn, params};

pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
    /// Binaries that know only the schema before it keep working on the result (it adds a
    /// table, an index or a column with a default, and they need not write it).
    pub additive: bool,
}

/// The migrations, in order. Append only: never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration { name: "0001_init", sql: include_str!("../../migrations/0001_init.sql"), additive: false },
    Migration { name: "0002_print_queue", sql: include_str!("../../migrations/0002_print_queue.sql"), additive: true },
    // Not additive: a binary without it would write events without their sync numbers.
    Migration { name: "0003_sync", sql: include_str!("../../migrations/0003_sync.sql"), additive: false },
    Migration {
        name: "0004_printer_status_capability",
        sql: include_str!("../../migrations/0004_printer_status_capability.sql"),
        additive: true,
    },
    // A table, an index and columns with defaults: older binaries ignore them (they neither
    // move jobs nor raise stall alerts).
    Migration { name: "0005_print_alerts", sql: include_str!("../../migrations/0005_print_alerts.sql"), additive: true },
    Migration { name: "0006_users", sql: include_str!("../../migrations/0006_users.sql"), additive: true },
    Migration { name: "0007_branch_currency", sql: include_str!("../../migrations/0007_branch_currency.sql"), additive: true },
];

/// The oldest schema a binary must know to use a database at schema `version`.
pub fn floor_after(version: i64) -> i64 {
    floor_in(MIGRATIONS, version)
}

/// [`floor_after`] for the migrations `list` (SQLite's or PostgreSQL's).
fn floor_in(list: &[Migration], version: i64) -> i64 {
    list.iter().zip(1..=version).filter(|(m, _)| !m.additive).map(|(_, v)| v).max().unwrap_or(1)
}

/// The database's schema floor (written by the binary that migrated it). A database from
/// before floors were recorded needs its own schema version.
pub(in crate::store) fn schema_floor(conn: &Connection) -> Result<i64, StoreError> {
    let recorded: Option<String> = conn.query_row("SELECT value FROM meta WHERE key = 'schema_floor'", [], |r| r.get(0)).optional()?;
    match recorded.and_then(|v| v.parse().ok()) {
        Some(f) => Ok(f),
        None => user_version(conn),
    }
}

/// `PRAGMA user_version`: the schema version (migrations applied).
pub(in crate::store) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Whether this binary may run on a database at `schema_version` with `floor`.
pub fn usable(schema_version: i64, floor: i64) -> bool {
    schema_version <= latest() || floor <= latest()
}

/// Applies every migration not yet recorded in `PRAGMA user_version`; returns how many ran.
pub(in crate::store) fn apply(conn: &Connection) -> Result<usize, StoreError> {
    let current = user_version(conn)?;
    let mut applied = 0;
    for (i, Migration { name, sql, .. }) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        let run = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", version)?;
            conn.execute_batch("COMMIT")
        };
        if let Err(source) = run() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Migration { name: (*name).to_string(), source });
        }
        tracing::info!(migration = name, "applied migration");
        applied += 1;
    }
    // A newer binary's database keeps the floor that binary recorded.
    if current <= latest() {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_floor', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [floor_after(latest()).to_string()],
        )?;
    }
    Ok(applied)
}

/// The schema version the binary expects.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The PostgreSQL migrations (a hub cluster), in order; numbered on their own. Append only.
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration { name: "0001_init", sql: include_str!("../../migrations/postgres/0001_init.sql"), additive: false },
    // A table only this binary's logins use: older processes keep counting in memory.
    Migration { name: "0002_login_failures", sql: include_str!("../../migrations/postgres/0002_login_failures.sql"), additive: true },
];

/// The advisory lock under which PostgreSQL migrations run: processes starting together
/// wait for the first one, then find nothing left to do.
const MIGRATION_LOCK: i64 = 0x0062_7261_6e63_6801;

/// The PostgreSQL schema version the binary expects.
pub fn latest_postgres() -> i64 {
    POSTGRES_MIGRATIONS.len() as i64
}

/// The PostgreSQL database's schema version (0: none yet).
pub(in crate::store) fn postgres_version(conn: &PgConn) -> Result<i64, StoreError> {
    let c = Conn::Postgres(conn);
    let exists = c.query_row("SELECT to_regclass('schema_migrations') IS NOT NULL", params![], |r| r.get::<bool>(0))?;
    if !exists {
        c.batch("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL, floor BIGINT)")?;
    }
    c.query_row("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations", params![], |r| r.get::<i64>(0))
}

/// The PostgreSQL schema floor: the oldest schema a binary must know to use the database,
/// as the binary that applied its newest migration recorded it (none recorded: the version
/// itself).
fn postgres_floor(conn: &PgConn, version: i64) -> Result<i64, StoreError> {
    let c = Conn::Postgres(conn);
    let floor = c.query_opt("SELECT floor FROM schema_migrations WHERE version = ?1", params![version], |r| r.get::<Option<i64>>(0))?;
    Ok(floor.flatten().unwrap_or(version))
}

/// Applies the PostgreSQL migrations not yet recorded in `schema_migrations`, each in its own
/// transaction, under an advisory lock; refuses a database newer than this binary. Returns
/// how many ran.
pub(in crate::store) fn apply_postgres(conn: &PgConn) -> Result<usize, StoreError> {
    let c = Conn::Postgres(conn);
    c.query_row("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_lock(?1)) AS l", params![MIGRATION_LOCK], |r| r.get::<i64>(0))?;
    let out = apply_postgres_locked(conn);
    let _ = c.query_row("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_unlock(?1)) AS l", params![MIGRATION_LOCK], |r| r.get::<i64>(0));
    out
}

fn apply_postgres_locked(conn: &PgConn) -> Result<usize, StoreError> {
    let c = Conn::Postgres(conn);
    let current = postgres_version(conn)?;
    // Databases from before floors were recorded lack the column (asked first: `ADD COLUMN
    // IF NOT EXISTS` would print a notice at every start).
    let has_floor = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'schema_migrations' AND column_name = 'floor')",
        params![],
        |r| r.get::<bool>(0),
    )?;
    if !has_floor {
        c.batch("ALTER TABLE schema_migrations ADD COLUMN floor BIGINT")?;
    }
    if current > latest_postgres() {
        // A newer binary migrated it (a rolling update under way, or a rollback): this one
        // runs on it only if every newer migration merely added things.
        let floor = postgres_floor(conn, current)?;
        if floor > latest_postgres() {
            return Err(StoreError::SchemaTooNew { found: current, known: latest_postgres() });
        }
        tracing::warn!(
            schema = current,
            known = latest_postgres(),
            floor,
            "the PostgreSQL schema is newer than this binary; its newer migrations only added things, so this binary runs on it (update it soon)"
        );
        return Ok(0);
    }
    let mut applied = 0;
    for (i, m) in POSTGRES_MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        let run = || -> Result<(), StoreError> {
            c.batch("BEGIN")?;
            c.batch(m.sql)?;
            c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at, floor) VALUES (?1, ?2, ?3, ?4)",
                params![version, m.name, super::now_rfc3339(), floor_in(POSTGRES_MIGRATIONS, version)],
            )?;
            c.batch("COMMIT")
        };
        if let Err(e) = run() {
            let _ = c.batch("ROLLBACK");
            return Err(StoreError::PostgresMigration { name: m.name.to_string(), message: e.to_string() });
        }
        tracing::info!(migration = m.name, "applied PostgreSQL migration");
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_last_migration_older_binaries_cannot_live_with() {
        assert_eq!(floor_after(1), 1);
        assert_eq!(floor_after(2), 1, "the print queue only added tables");
        assert_eq!(floor_after(3), 3, "sync changed how events are written");
        assert_eq!(floor_after(latest()), 3);
        let conn = Connection::open_in_memory().unwrap();
        apply(&conn).unwrap();
        assert_eq!(schema_floor(&conn).unwrap(), floor_after(latest()));
        assert!(usable(latest() + 1, latest()), "a newer, additive schema");
        assert!(!usable(latest() + 1, latest() + 1));
    }
}
