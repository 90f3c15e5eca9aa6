//! The event log: every broadcast, stored with the change it announces. It serves `catchUp`
//! and is the outbox the sync relay forwards to HQ.

use rusqlite::{Connection, params};
use serde_json::Value;

use super::{Reader, StoreError, Tx};

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

/// Where a change came from. Only `Local` changes of a branch enter its sync stream; changes
/// applied from the other side are never sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Made here (REST, Socket.IO, CLI, printers).
    Local,
    /// At a branch: applied from the hub's feed.
    Hub,
    /// At the hub: applied from a branch's push.
    Branch,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Hub => "hub",
            Origin::Branch => "branch",
        }
    }
}

/// Company-level events: the ones a branch forwards to HQ (print-queue chatter stays local).
pub fn syncable(name: &str) -> bool {
    matches!(
        name,
        "newOrder"
            | "orderStatusUpdate"
            | "orderCancelled"
            | "driverUpdate"
            | "availabilityUpdate"
            | "bulkAvailabilityUpdate"
            | "stockAlert"
            | "newAlert"
            | "printer:added"
            | "printerUpdate"
            | "printerRemoved"
            | "printerStatusUpdate"
            | "printAlert"
            | "printAlertAck"
            | "orderPrintingUpdate"
    )
}

/// The next number of `branch`'s sync stream: gap-free, because it is taken in the same
/// transaction as the event (a rolled-back write takes its number back with it).
fn next_stream_seq(conn: &Connection, branch: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "INSERT INTO sync_state (key, value) VALUES ('stream:' || ?1, '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
         RETURNING CAST(value AS INTEGER)",
        [branch],
        |r| r.get(0),
    )?)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn append(
    conn: &Connection,
    ns: &str,
    name: &str,
    company: &str,
    branch: &str,
    data: Value,
    origin: Origin,
) -> Result<Event, StoreError> {
    let mut data = data;
    // A print alert (and its ack) goes to /printing-ws and /orders; the hub gets it once.
    let copy = ns == crate::store::orders::NS && matches!(name, "printAlert" | "printAlertAck");
    let (stream_seq, uuid) = if origin == Origin::Local && syncable(name) && !copy {
        (Some(next_stream_seq(conn, branch)?), Some(uuid::Uuid::new_v4().to_string()))
    } else {
        (None, None)
    };
    conn.execute(
        "INSERT INTO events (namespace, name, company_id, branch_id, data, created_ms, stream_seq, event_uuid, origin)
         VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?7, ?8)",
        params![ns, name, company, branch, now_ms(), stream_seq, uuid, origin.as_str()],
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
pub fn catch_up(r: &Reader<'_>, ns: &str, since: &str, visible: impl Fn(&str, &str) -> bool) -> Result<CatchUp, StoreError> {
    let conn = r.conn;
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

/// Which old events may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Everything older than [`KEEP_MS`].
    Plain,
    /// A branch with an uplink: also keep what the hub has not acknowledged.
    KeepUnsynced,
    /// The hub: keep its own changes for branches (the feed), however old.
    Hub,
}

/// Deletes events older than [`KEEP_MS`] (as `policy` allows); remembers the highest deleted
/// seq so that a `catchUp` from before it is answered with `truncated`.
pub fn prune(tx: &Tx<'_>, policy: Retention) -> Result<usize, StoreError> {
    let conn = tx.conn;
    let cutoff = now_ms() - KEEP_MS;
    let keep = match policy {
        Retention::Plain => "0",
        Retention::KeepUnsynced => {
            "(stream_seq IS NOT NULL AND stream_seq > COALESCE((SELECT CAST(value AS INTEGER) FROM sync_state
                                                               WHERE key = 'acked:' || events.branch_id), 0))"
        }
        Retention::Hub => "(origin = 'local')",
    };
    let doomed = format!("created_ms < ?1 AND NOT {keep}");
    let through: Option<i64> = conn.query_row(&format!("SELECT MAX(seq) FROM events WHERE {doomed}"), [cutoff], |r| r.get(0))?;
    let Some(through) = through else { return Ok(0) };
    let n = conn.execute(&format!("DELETE FROM events WHERE seq <= ?2 AND {doomed}"), params![cutoff, through])?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [through.to_string()],
    )?;
    Ok(n)
}

/// Records an internal change (no Socket.IO namespace) for the hub's feed to branches, e.g.
/// `directory:user`. `branch` is empty for company-wide records.
pub fn append_internal(tx: &Tx<'_>, name: &str, company: &str, branch: &str, data: Value) -> Result<(), StoreError> {
    let conn = tx.conn;
    append(conn, "", name, company, branch, data, Origin::Local).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::apply(&conn).unwrap();
        conn
    }

    fn order(conn: &Connection, id: &str) -> i64 {
        append(conn, "/orders", "newOrder", "co-1", "br-1", serde_json::json!({"id": id}), Origin::Local).unwrap().seq
    }

    #[test]
    fn catch_up_from_an_expired_event_id_says_truncated_and_gives_what_is_kept() {
        let conn = db();
        let old: Vec<i64> = (0..3).map(|i| order(&conn, &format!("old-{i}"))).collect();
        // The first three are older than the retention window.
        conn.execute("UPDATE events SET created_ms = ?1 WHERE seq <= ?2", params![now_ms() - KEEP_MS - 1000, old[2]]).unwrap();
        let kept: Vec<i64> = (0..2).map(|i| order(&conn, &format!("new-{i}"))).collect();
        assert_eq!(prune(&crate::store::Tx::new(&conn), Retention::Plain).unwrap(), 3);
        let conn = Reader { conn: &conn };

        let all = |_: &str, _: &str| true;
        let expired = catch_up(&conn, "/orders", &old[0].to_string(), all).unwrap();
        assert!(expired.truncated, "events after an expired id are gone: the client must reload");
        assert_eq!(expired.events.iter().map(|e| e.seq).collect::<Vec<_>>(), kept);

        let fresh = catch_up(&conn, "/orders", &old[2].to_string(), all).unwrap();
        assert!(!fresh.truncated, "nothing after the last pruned id was lost");
        assert_eq!(fresh.events.iter().map(|e| e.seq).collect::<Vec<_>>(), kept);

        let latest = catch_up(&conn, "/orders", &kept[1].to_string(), all).unwrap();
        assert!(!latest.truncated && latest.events.is_empty());
    }
}
