//! The event log: every broadcast, stored with the change it announces. It serves `catchUp`
//! and is the outbox the sync relay forwards to HQ.

use rusqlite::{Connection, params};
use serde_json::Value;

use super::StoreError;

/// A stored broadcast. `data` already carries `eventId`.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub namespace: String,
    pub name: String,
    pub company_id: String,
    pub branch_id: String,
    pub data: Value,
}

/// Events are kept at least this long for `catchUp` (SPEC §4: at least 24 h).
pub const KEEP_MS: i64 = 48 * 3600 * 1000;
/// `catchUp` answers with at most this many events (and `truncated: true` beyond).
pub const CATCH_UP_MAX: usize = 5000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn append(conn: &Connection, ns: &str, name: &str, company: &str, branch: &str, data: Value) -> Result<Event, StoreError> {
    let mut data = data;
    conn.execute(
        "INSERT INTO events (namespace, name, company_id, branch_id, data, created_ms) VALUES (?1, ?2, ?3, ?4, '', ?5)",
        params![ns, name, company, branch, now_ms()],
    )?;
    let seq = conn.last_insert_rowid();
    if let Value::Object(map) = &mut data {
        map.insert("eventId".into(), Value::String(seq.to_string()));
    }
    conn.execute("UPDATE events SET data = ?1 WHERE seq = ?2", params![data.to_string(), seq])?;
    Ok(Event { seq, namespace: ns.into(), name: name.into(), company_id: company.into(), branch_id: branch.into(), data })
}

/// Result of a catch-up query.
pub struct CatchUp {
    pub events: Vec<Event>,
    pub truncated: bool,
}

/// The events of `ns` after `since` (an eventId) that `visible` accepts, in order.
/// An unknown or expired `since` gives every kept event with `truncated`.
pub fn catch_up(conn: &Connection, ns: &str, since: &str, visible: impl Fn(&str, &str) -> bool) -> Result<CatchUp, StoreError> {
    let max: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let pruned: i64 = conn
        .query_row("SELECT value FROM meta WHERE key = 'events_pruned_through'", [], |r| r.get::<_, String>(0))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let parsed = since.trim().parse::<i64>().ok().filter(|s| *s >= 0 && *s <= max);
    let (after, mut truncated) = match parsed {
        Some(s) if s >= pruned => (s, false),
        _ => (0, true),
    };
    let mut stmt =
        conn.prepare_cached("SELECT seq, name, company_id, branch_id, data FROM events WHERE namespace = ?1 AND seq > ?2 ORDER BY seq")?;
    let mut rows = stmt.query(params![ns, after])?;
    let mut events = Vec::new();
    while let Some(r) = rows.next()? {
        let company: String = r.get(2)?;
        let branch: String = r.get(3)?;
        if !visible(&company, &branch) {
            continue;
        }
        if events.len() == CATCH_UP_MAX {
            truncated = true;
            break;
        }
        let data: String = r.get(4)?;
        events.push(Event {
            seq: r.get(0)?,
            namespace: ns.into(),
            name: r.get(1)?,
            company_id: company,
            branch_id: branch,
            data: serde_json::from_str(&data)?,
        });
    }
    Ok(CatchUp { events, truncated })
}

/// Deletes events older than [`KEEP_MS`]; remembers the highest deleted seq so that a
/// `catchUp` from before it is answered with `truncated`.
pub fn prune(conn: &Connection) -> Result<usize, StoreError> {
    let cutoff = now_ms() - KEEP_MS;
    let through: Option<i64> = conn.query_row("SELECT MAX(seq) FROM events WHERE created_ms < ?1", [cutoff], |r| r.get(0))?;
    let Some(through) = through else { return Ok(0) };
    let n = conn.execute("DELETE FROM events WHERE seq <= ?1", [through])?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [through.to_string()],
    )?;
    Ok(n)
}
