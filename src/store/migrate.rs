//! Applies the embedded `migrations/NNNN_*.sql` files in order, once each.

use rusqlite::Connection;

use super::StoreError;

/// The migrations, in order. Append only: never edit one that has shipped.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    ("0002_print_queue", include_str!("../../migrations/0002_print_queue.sql")),
    ("0003_sync", include_str!("../../migrations/0003_sync.sql")),
    ("0004_printer_status_capability", include_str!("../../migrations/0004_printer_status_capability.sql")),
];

/// Applies every migration not yet recorded in `PRAGMA user_version`; returns how many ran.
pub fn apply(conn: &Connection) -> Result<usize, StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut applied = 0;
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
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
    Ok(applied)
}

/// The schema version the binary expects.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
