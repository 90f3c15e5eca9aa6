//! The event log: every broadcast, stored with the change it announces. It serves `catchUp`
//! and is the outbox the sync relay forwards to HQ.

use serde_json::Value;

use super::sql::{Backend, Conn, params};
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
fn next_stream_seq(conn: Conn<'_>, branch: &str) -> Result<i64, StoreError> {
    conn.query_row(
        "INSERT INTO sync_state (key, value) VALUES ('stream:' || ?1, '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(sync_state.value AS BIGINT) + 1 AS TEXT)
         RETURNING CAST(value AS BIGINT)",
        params![branch],
        |r| r.get(0),
    )
}

/// A broadcast recorded under [`super::Tx::deferring`], written by [`append_all`].
pub(crate) struct Pending {
    ns: String,
    name: String,
    company: String,
    branch: String,
    data: Value,
    origin: Origin,
}

impl Pending {
    pub(crate) fn new(ns: &str, name: &str, scope: (&str, &str), data: Value, origin: Origin) -> Self {
        Pending { ns: ns.into(), name: name.into(), company: scope.0.into(), branch: scope.1.into(), data, origin }
    }

    /// Whether it joins the branch's sync stream (numbered one by one by [`append`]).
    fn streamed(&self) -> bool {
        self.origin == Origin::Local && syncable(&self.name)
    }
}

/// Writes recorded broadcasts in order. On PostgreSQL, events outside the sync stream take
/// their ids as one range and are inserted in one statement; everything else goes through
/// [`append`] one by one.
pub(crate) fn append_all(conn: Conn<'_>, pending: Vec<Pending>) -> Result<Vec<Event>, StoreError> {
    if conn.backend() == Backend::Sqlite || pending.iter().any(Pending::streamed) || pending.len() < 2 {
        return pending.into_iter().map(|p| append(conn, &p.ns, &p.name, &p.company, &p.branch, p.data, p.origin)).collect();
    }
    // The cluster's write-order lock (held since BEGIN, or since `Tx::order_writes`) keeps every other writer of
    // `events` out, so the ids can be taken as one range: the sequence moves past it once.
    let n = pending.len() as i64;
    let last: i64 = conn.query_row(
        "SELECT setval(pg_get_serial_sequence('events', 'seq'), nextval(pg_get_serial_sequence('events', 'seq')) + ?1 - 1)",
        params![n],
        |r| r.get(0),
    )?;
    let now = now_ms();
    let mut events = Vec::with_capacity(pending.len());
    for (mut p, seq) in pending.into_iter().zip(last - n + 1..) {
        if let Value::Object(map) = &mut p.data {
            map.insert("eventId".into(), Value::String(seq.to_string()));
        }
        events.push((seq, p));
    }
    let data: Vec<(String, &str)> = events.iter().map(|(_, p)| (p.data.to_string(), p.origin.as_str())).collect();
    let mut params: Vec<&dyn super::sql::Param> = Vec::with_capacity(events.len() * 8);
    for ((seq, p), (d, origin)) in events.iter().zip(&data) {
        params.extend([seq as &dyn super::sql::Param, &p.ns, &p.name, &p.company, &p.branch, d, &now, origin]);
    }
    use super::sql::Ty::{Int, Text};
    let rows = super::sql::Rows {
        head: "INSERT INTO events (seq, namespace, name, company_id, branch_id, data, created_ms, origin)",
        cols: &[Int, Text, Text, Text, Text, Text, Int, Text],
        tail: "",
    };
    conn.insert_rows(&rows, &params, |_| Ok(()))?;
    Ok(events
        .into_iter()
        .map(|(seq, p)| Event { seq, namespace: p.ns, name: p.name, company_id: p.company, branch_id: p.branch, data: p.data })
        .collect())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn append(
    conn: Conn<'_>,
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
    let seq = match conn.backend() {
        // One round trip: the id comes from the sequence inside the statement, and the
        // payload gets it in place of a marker.
        Backend::Postgres => {
            if let Value::Object(map) = &mut data {
                map.insert("eventId".into(), Value::String(EVENT_ID_MARK.into()));
            }
            let seq: i64 = conn.query_row(
                "WITH n AS (SELECT nextval(pg_get_serial_sequence('events', 'seq')) AS s)
                 INSERT INTO events (seq, namespace, name, company_id, branch_id, data, created_ms, stream_seq, event_uuid, origin)
                 SELECT s, ?1, ?2, ?3, ?4, replace(?9, ?10, '\"eventId\":\"' || s || '\"'), CAST(?5 AS BIGINT), CAST(?6 AS BIGINT), ?7, ?8 FROM n RETURNING seq",
                params![ns, name, company, branch, now_ms(), stream_seq, uuid, origin.as_str(), data.to_string(), EVENT_ID_JSON],
                |r| r.get(0),
            )?;
            if let Value::Object(map) = &mut data {
                map.insert("eventId".into(), Value::String(seq.to_string()));
            }
            seq
        }
        Backend::Sqlite => {
            let seq: i64 = conn.query_row(
                "INSERT INTO events (namespace, name, company_id, branch_id, data, created_ms, stream_seq, event_uuid, origin)
                 VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?7, ?8) RETURNING seq",
                params![ns, name, company, branch, now_ms(), stream_seq, uuid, origin.as_str()],
                |r| r.get(0),
            )?;
            if let Value::Object(map) = &mut data {
                map.insert("eventId".into(), Value::String(seq.to_string()));
            }
            conn.execute("UPDATE events SET data = ?1 WHERE seq = ?2", params![data.to_string(), seq])?;
            seq
        }
    };
    Ok(Event { seq, namespace: ns.into(), name: name.into(), company_id: company.into(), branch_id: branch.into(), data })
}

/// PostgreSQL: every write transaction of the cluster takes this advisory lock first and
/// holds it to COMMIT (`db::begin`), so event ids increase in commit order across processes
/// (`catchUp` and the fan-out read the log forward and must never see a smaller id commit
/// after a larger one). Taking it first, before any row lock, keeps writers deadlock-free.
/// The one exception, a staged write (`Db::write_staged`, a branch's push), takes it after
/// a first stage that only writes rows no holder of this lock ever waits for, and writes no
/// event before it has it (`Tx::check_ordered`).
pub(in crate::store) const WRITE_ORDER_LOCK: i64 = 0x0062_7261_6e63_6802;

/// The `eventId` a payload carries until PostgreSQL hands out the id (see `append`).
const EVENT_ID_MARK: &str = "@@branchd-event-id@@";
/// [`EVENT_ID_MARK`] as the payload's JSON text has it.
const EVENT_ID_JSON: &str = "\"eventId\":\"@@branchd-event-id@@\"";

/// Result of a catch-up query.
pub struct CatchUp {
    pub events: Vec<Event>,
    pub truncated: bool,
}

/// The events of `ns` after `since` (an eventId) that `visible` accepts, in order.
/// An unknown or expired `since` gives every kept event with `truncated`.
pub fn catch_up(r: &Reader<'_>, ns: &str, since: &str, visible: impl Fn(&str, &str) -> bool) -> Result<CatchUp, StoreError> {
    let conn = r.conn;
    let max: i64 = conn.query_row("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events", params![], |r| r.get(0))?;
    let pruned: i64 = conn
        .query_opt("SELECT value FROM meta WHERE key = 'events_pruned_through'", params![], |r| r.get::<String>(0))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let parsed = since.trim().parse::<i64>().ok().filter(|s| *s >= 0 && *s <= max);
    let (after, mut truncated) = match parsed {
        Some(s) if s >= pruned => (s, false),
        _ => (0, true),
    };
    let mut events = Vec::new();
    let sql = "SELECT seq, name, company_id, branch_id, data FROM events WHERE namespace = ?1 AND seq > ?2 ORDER BY seq";
    conn.each(sql, params![ns, after], |r| {
        let company: String = r.get(2)?;
        let branch: String = r.get(3)?;
        if !visible(&company, &branch) {
            return Ok(true);
        }
        if events.len() == CATCH_UP_MAX {
            truncated = true;
            return Ok(false);
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
        Ok(true)
    })?;
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
        Retention::Plain => "(1 = 0)",
        Retention::KeepUnsynced => {
            "(stream_seq IS NOT NULL AND stream_seq > COALESCE((SELECT CAST(value AS INTEGER) FROM sync_state
                                                               WHERE key = 'acked:' || events.branch_id), 0))"
        }
        Retention::Hub => "(origin = 'local')",
    };
    let doomed = format!("created_ms < ?1 AND NOT {keep}");
    let through: Option<i64> = conn.query_row(&format!("SELECT MAX(seq) FROM events WHERE {doomed}"), params![cutoff], |r| r.get(0))?;
    let Some(through) = through else { return Ok(0) };
    let n = conn.execute(&format!("DELETE FROM events WHERE seq <= ?2 AND {doomed}"), params![cutoff, through])?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![through.to_string()],
    )?;
    Ok(n)
}

/// Records an internal change (no Socket.IO namespace) for the hub's feed to branches, e.g.
/// `directory:user`. `branch` is empty for company-wide records.
pub fn append_internal(tx: &Tx<'_>, name: &str, company: &str, branch: &str, data: Value) -> Result<(), StoreError> {
    tx.check_ordered()?;
    let conn = tx.conn;
    append(conn, "", name, company, branch, data, Origin::Local).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate::apply(&conn).unwrap();
        conn
    }

    fn order(conn: &rusqlite::Connection, id: &str) -> i64 {
        append(Conn::Sqlite(conn), "/orders", "newOrder", "co-1", "br-1", serde_json::json!({"id": id}), Origin::Local).unwrap().seq
    }

    #[test]
    fn catch_up_from_an_expired_event_id_says_truncated_and_gives_what_is_kept() {
        let conn = db();
        let old: Vec<i64> = (0..3).map(|i| order(&conn, &format!("old-{i}"))).collect();
        // The first three are older than the retention window.
        conn.execute("UPDATE events SET created_ms = ?1 WHERE seq <= ?2", rusqlite::params![now_ms() - KEEP_MS - 1000, old[2]]).unwrap();
        let kept: Vec<i64> = (0..2).map(|i| order(&conn, &format!("new-{i}"))).collect();
        assert_eq!(prune(&crate::store::Tx::new(Conn::Sqlite(&conn)), Retention::Plain).unwrap(), 3);
        let conn = Reader { conn: Conn::Sqlite(&conn) };

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
