//! Sync tables: the branch's outbox cursor and parked events, the hub's uplink credentials,
//! received events and per-branch high-water marks, and the hub's feed.

use super::sql::params;

use super::{Reader, StoreError, Tx, now_rfc3339};

/// An event in a push batch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WireEvent {
    pub seq: i64,
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub data: serde_json::Value,
}

pub fn state_get(r: &Reader<'_>, key: &str) -> Result<Option<String>, StoreError> {
    let conn = r.conn;
    conn.query_opt("SELECT value FROM sync_state WHERE key = ?1", params![key], |r| r.get(0))
}

pub fn state_set(tx: &Tx<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn state_int(r: &Reader<'_>, key: &str) -> Result<i64, StoreError> {
    Ok(state_get(r, key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

// ---- branch side ---------------------------------------------------------------------------

/// The highest stream number the hub confirmed for `branch`.
pub fn acked(r: &Reader<'_>, branch: &str) -> Result<i64, StoreError> {
    state_int(r, &format!("acked:{branch}"))
}

pub fn set_acked(tx: &Tx<'_>, branch: &str, n: i64) -> Result<(), StoreError> {
    state_set(tx, &format!("acked:{branch}"), &n.to_string())
}

/// The last stream number written for `branch`.
pub fn stream_last(r: &Reader<'_>, branch: &str) -> Result<i64, StoreError> {
    state_int(r, &format!("stream:{branch}"))
}

/// The hub holds numbers this appliance never wrote (a replaced appliance with the same
/// credential, or one restored from an older backup, with nothing waiting): continue the
/// stream after them.
pub fn skip_to(tx: &Tx<'_>, branch: &str, hub_high_water: i64) -> Result<(), StoreError> {
    if stream_last(tx, branch)? < hub_high_water {
        state_set(tx, &format!("stream:{branch}"), &hub_high_water.to_string())?;
    }
    set_acked(tx, branch, hub_high_water)
}

/// The hub holds other events under numbers this appliance used from `from` on (it was
/// restored from a backup, or replaced, after the hub had received them): renumber this
/// appliance's events from `from` on, in their order, to follow both its own last number
/// and the hub's `hub_high_water`. Returns how many moved and the first new number.
pub fn rebase(tx: &Tx<'_>, branch: &str, from: i64, hub_high_water: i64) -> Result<(i64, i64), StoreError> {
    let conn = tx.conn;
    let last = stream_last(tx, branch)?;
    let first_new = last.max(hub_high_water) + 1;
    let shift = first_new - from;
    // Every new number is above every old one, so the unique index never sees a clash.
    let moved = conn
        .execute("UPDATE events SET stream_seq = stream_seq + ?3 WHERE branch_id = ?1 AND stream_seq >= ?2", params![branch, from, shift])?
        as i64;
    state_set(tx, &format!("stream:{branch}"), &(last + shift).to_string())?;
    set_acked(tx, branch, from - 1)?;
    Ok((moved, first_new))
}

/// The next events to push: in stream order after `after`, at most `max` events and about
/// `max_bytes` of payload (always at least one event).
pub fn outbox(r: &Reader<'_>, branch: &str, after: i64, max: usize, max_bytes: usize) -> Result<Vec<WireEvent>, StoreError> {
    let conn = r.conn;
    let sql = "SELECT stream_seq, event_uuid, namespace, name, data FROM events
         WHERE branch_id = ?1 AND stream_seq > ?2 ORDER BY stream_seq LIMIT ?3";
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    conn.each(sql, params![branch, after, max as i64], |r| {
        let data: String = r.get(4)?;
        if !out.is_empty() && bytes + data.len() > max_bytes {
            return Ok(false);
        }
        bytes += data.len();
        out.push(WireEvent { seq: r.get(0)?, id: r.get(1)?, namespace: r.get(2)?, name: r.get(3)?, data: serde_json::from_str(&data)? });
        Ok(true)
    })?;
    Ok(out)
}

/// Events waiting for the hub: how many, and when the oldest was written (epoch ms).
pub fn pending(r: &Reader<'_>, branch: &str) -> Result<(i64, Option<i64>), StoreError> {
    let conn = r.conn;
    let acked = acked(r, branch)?;
    conn.query_row("SELECT COUNT(*), MIN(created_ms) FROM events WHERE branch_id = ?1 AND stream_seq > ?2", params![branch, acked], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

pub fn park(tx: &Tx<'_>, branch: &str, seq: i64, code: &str, message: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    conn.execute(
        "INSERT INTO sync_parked (branch_id, stream_seq, code, message, parked_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![branch, seq, code, message, now_rfc3339()],
    )?;
    Ok(())
}

pub fn parked_count(r: &Reader<'_>) -> Result<i64, StoreError> {
    let conn = r.conn;
    conn.query_row("SELECT COUNT(*) FROM sync_parked", params![], |r| r.get(0))
}

// ---- hub side ------------------------------------------------------------------------------

/// Stores a branch credential's hash, replacing (revoking) any earlier one for the branch.
pub fn uplink_create(tx: &Tx<'_>, branch: &str, company: &str, token_hash: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    match super::directory::branch(tx, branch)? {
        Some(b) if b.company_id == company => {}
        Some(_) => return Err(StoreError::Invalid(format!("branch {branch} does not belong to company {company}"))),
        None => return Err(StoreError::NotFound(format!("branch {branch} does not exist on this hub; add it first"))),
    }
    conn.execute(
        "INSERT INTO uplinks (branch_id, company_id, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(branch_id) DO UPDATE SET company_id = excluded.company_id, token_hash = excluded.token_hash,
                                              created_at = excluded.created_at, revoked_at = NULL",
        params![branch, company, token_hash, now_rfc3339()],
    )?;
    Ok(())
}

pub fn uplink_revoke(tx: &Tx<'_>, branch: &str) -> Result<bool, StoreError> {
    let conn = tx.conn;
    Ok(conn.execute("UPDATE uplinks SET revoked_at = ?2 WHERE branch_id = ?1 AND revoked_at IS NULL", params![branch, now_rfc3339()])? == 1)
}

/// The (branch, company) of an active credential.
pub fn uplink_by_hash(r: &Reader<'_>, hash: &str) -> Result<Option<(String, String)>, StoreError> {
    let conn = r.conn;
    conn.query_opt("SELECT branch_id, company_id FROM uplinks WHERE token_hash = ?1 AND revoked_at IS NULL", params![hash], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

/// Serializes the pushes of `branch` across a hub cluster's processes, to COMMIT: the
/// first stage of a [`super::Db::write_staged`] push (its high-water mark and stored
/// events) runs outside the write-order lock, so it needs one of its own. SQLite has one
/// writer; nothing to do.
pub fn lock_branch(tx: &Tx<'_>, branch: &str) -> Result<(), StoreError> {
    let conn = tx.conn;
    if conn.backend() == super::sql::Backend::Postgres {
        // The two-key form: its keys never meet the one-key write-order lock's.
        conn.query_row(
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock(CAST(?1 AS INTEGER), hashtext(?2))) AS l",
            params![BRANCH_LOCK_CLASS, branch],
            |r| r.get::<i64>(0),
        )?;
    }
    Ok(())
}

/// The first key of [`lock_branch`]'s advisory locks ("brnc").
const BRANCH_LOCK_CLASS: i64 = 0x6272_6e63;

pub fn high_water(r: &Reader<'_>, branch: &str) -> Result<i64, StoreError> {
    let conn = r.conn;
    Ok(conn.query_opt("SELECT high_water FROM hub_streams WHERE branch_id = ?1", params![branch], |r| r.get(0))?.unwrap_or(0))
}

/// What happened to one pushed event at the hub.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    New,
    Duplicate,
    /// Same sequence number, different event id: the branch's history diverged.
    Conflict,
}

/// Stores a push's events under their unique key (branch, seq), many rows per statement;
/// says what happened to each, in the order given. A number already taken is the same
/// event again (its id matches) or another one (the branch's history diverged); so is a
/// number given twice in one push.
/// `status(seq)`: what each new row is stored as (`applied` for those the caller applies in
/// the same transaction, so that they need no second write).
pub fn hub_receive(
    tx: &Tx<'_>,
    branch: &str,
    events: &[WireEvent],
    status: impl Fn(i64) -> &'static str,
) -> Result<Vec<Received>, StoreError> {
    let conn = tx.conn;
    let now = now_rfc3339();
    let data: Vec<(String, &str)> = events.iter().map(|e| (e.data.to_string(), status(e.seq))).collect();
    let mut p: Vec<&dyn super::sql::Param> = Vec::with_capacity(events.len() * 8);
    for (e, (d, st)) in events.iter().zip(&data) {
        p.extend([&branch as &dyn super::sql::Param, &e.seq, &e.id, &e.namespace, &e.name, d, st, &now]);
    }
    use super::sql::Ty::{Int, Text};
    let rows = super::sql::Rows {
        head: "INSERT INTO hub_events (branch_id, stream_seq, event_uuid, namespace, name, data, status, received_at)",
        cols: &[Text, Int, Text, Text, Text, Text, Text, Text],
        tail: "ON CONFLICT (branch_id, stream_seq) DO NOTHING RETURNING stream_seq",
    };
    let stored: std::collections::HashSet<i64> = conn.insert_rows(&rows, &p, |r| r.get::<i64>(0))?.into_iter().collect();
    // Numbers that were taken already: what holds them (one range read; rare, on replays).
    let taken: Vec<i64> = events.iter().map(|e| e.seq).filter(|s| !stored.contains(s)).collect();
    let mut holders = std::collections::HashMap::new();
    if let (Some(lo), Some(hi)) = (taken.iter().min(), taken.iter().max()) {
        holders.extend(conn.query_map(
            "SELECT stream_seq, event_uuid FROM hub_events WHERE branch_id = ?1 AND stream_seq >= ?2 AND stream_seq <= ?3",
            params![branch, lo, hi],
            |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
        )?);
    }
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let verdict = match seen.get(&e.seq) {
            // The push itself gave this number before: compare with that event.
            Some(first) => {
                if *first == e.id.as_str() {
                    Received::Duplicate
                } else {
                    Received::Conflict
                }
            }
            None if stored.contains(&e.seq) => Received::New,
            None => {
                if holders.get(&e.seq) == Some(&e.id) {
                    Received::Duplicate
                } else {
                    Received::Conflict
                }
            }
        };
        seen.entry(e.seq).or_insert(e.id.as_str());
        out.push(verdict);
    }
    Ok(out)
}

/// The stored-but-not-yet-applied event right after the high-water mark, if it arrived.
pub fn next_pending(r: &Reader<'_>, branch: &str, seq: i64) -> Result<Option<WireEvent>, StoreError> {
    let conn = r.conn;
    let row = conn.query_opt(
        "SELECT stream_seq, event_uuid, namespace, name, data FROM hub_events WHERE branch_id = ?1 AND stream_seq = ?2 AND status = 'pending'",
        params![branch, seq],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<String>(4)?)),
    )?;
    match row {
        Some((seq, id, namespace, name, data)) => Ok(Some(WireEvent { seq, id, namespace, name, data: serde_json::from_str(&data)? })),
        None => Ok(None),
    }
}

/// Records that an event could not be applied (it is kept, parked).
pub fn settle_parked(tx: &Tx<'_>, branch: &str, seq: i64) -> Result<(), StoreError> {
    tx.conn.execute("UPDATE hub_events SET status = 'parked' WHERE branch_id = ?1 AND stream_seq = ?2", params![branch, seq])?;
    Ok(())
}

/// Records that the events after `from` up to `to` were applied (those not parked) and moves
/// the high-water mark to `to`.
/// `stored_pending`: whether any of them was stored `pending` by an earlier push (else they
/// were stored `applied` already and only the mark moves).
pub fn settle_applied(tx: &Tx<'_>, branch: &str, from: i64, to: i64, stored_pending: bool) -> Result<(), StoreError> {
    let conn = tx.conn;
    if stored_pending {
        conn.execute(
            "UPDATE hub_events SET status = 'applied' WHERE branch_id = ?1 AND stream_seq > ?2 AND stream_seq <= ?3 AND status = 'pending'",
            params![branch, from, to],
        )?;
    }
    conn.execute(
        "INSERT INTO hub_streams (branch_id, high_water) VALUES (?1, ?2) ON CONFLICT(branch_id) DO UPDATE SET high_water = excluded.high_water",
        params![branch, to],
    )?;
    Ok(())
}

/// A change made at the hub for a branch, as the feed serves it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FeedEvent {
    pub cursor: i64,
    pub namespace: String,
    pub name: String,
    pub data: serde_json::Value,
}

/// The hub's own (HQ-made) events for `branch` after `after`, in order.
/// Company-wide records (users of the whole company) have an empty branch id.
/// The newest position the feed ever had (events' AUTOINCREMENT counter: it never goes back,
/// except when the database itself is restored from an older copy).
pub fn feed_head(r: &Reader<'_>) -> Result<i64, StoreError> {
    let sql = match r.backend() {
        super::sql::Backend::Sqlite => "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
        super::sql::Backend::Postgres => {
            "SELECT COALESCE(pg_sequence_last_value(CAST(pg_get_serial_sequence('events', 'seq') AS regclass)), 0)"
        }
    };
    r.conn.query_row(sql, params![], |r| r.get(0))
}

pub fn feed(r: &Reader<'_>, company: &str, branch: &str, after: i64, limit: usize) -> Result<Vec<FeedEvent>, StoreError> {
    let conn = r.conn;
    let rows = conn.query_map(
        "SELECT seq, namespace, name, data FROM events
         WHERE (branch_id = ?1 OR (branch_id = '' AND company_id = ?4)) AND origin = 'local' AND seq > ?2 ORDER BY seq LIMIT ?3",
        params![branch, after, limit as i64, company],
        |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?, r.get::<String>(3)?)),
    )?;
    let mut out = Vec::new();
    for (cursor, namespace, name, data) in rows {
        out.push(FeedEvent { cursor, namespace, name, data: serde_json::from_str(&data)? });
    }
    Ok(out)
}
