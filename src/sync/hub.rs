//! The hub's side of sync: branch credentials, storing pushed events once under (branch,
//! number), applying them strictly in stream order (a batch that arrives early waits for
//! the gap to fill), and serving the feed of HQ-made changes for each branch.

use serde_json::Value;

use super::apply::{self, Reject};
use super::{BATCH_MAX_EVENTS, FeedResponse, Hello, PROTOCOL, Parked, PushRequest, PushResponse};
use crate::auth::license;
use crate::domain::NAMESPACES;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sync::{self as store, Received, WireEvent};
use crate::store::{StoreError, Tx};
use axum::http::StatusCode;

/// Branch credentials share the license key format: 256 random bits, shown once.
pub fn new_credential() -> String {
    license::generate().replacen(license::PREFIX, "bdu_", 1)
}

/// The branch a credential was made for.
#[derive(Debug, Clone)]
pub struct Uplink {
    pub branch_id: String,
    pub company_id: String,
}

pub async fn authenticate(state: &AppState, bearer: Option<&str>) -> Result<Uplink, ApiError> {
    let Some(token) = bearer else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "AUTH_REQUIRED", "the uplink credential is missing"));
    };
    let hash = license::hash(token);
    let found = state.db().read(move |c| store::uplink_by_hash(c, &hash)).await?;
    let (branch_id, company_id) =
        found.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "UPLINK_INVALID", "unknown or revoked uplink credential"))?;
    Ok(Uplink { branch_id, company_id })
}

pub async fn hello(state: &AppState, up: &Uplink) -> Result<Hello, ApiError> {
    let b = up.branch_id.clone();
    let (high_water, feed_head, branch, company_name) = state
        .db()
        .read(move |c| {
            let branch = crate::store::directory::branch(c, &b)?;
            let company = match &branch {
                Some(br) => crate::store::directory::company_name(c, &br.company_id)?,
                None => None,
            };
            Ok::<_, StoreError>((store::high_water(c, &b)?, store::feed_head(c)?, branch, company))
        })
        .await?;
    Ok(Hello {
        protocol: PROTOCOL,
        supported: vec![PROTOCOL],
        branch_id: up.branch_id.clone(),
        company_id: up.company_id.clone(),
        high_water,
        feed_head: Some(feed_head),
        company_name,
        currency: branch.as_ref().map(|b| b.currency.clone()),
        branch_name: branch.map(|b| b.name),
    })
}

fn check_protocol(p: u64) -> Result<(), ApiError> {
    if p == u64::from(PROTOCOL) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "PROTOCOL_UNSUPPORTED",
        format!("this hub speaks sync protocol {PROTOCOL}, the branch sent {p}; update the older of the two"),
    ))
}

/// Checks a push body (public for the fuzz suite, tests/it/fuzz.rs).
pub fn parse_push(body: &Value, up: &Uplink) -> Result<PushRequest, ApiError> {
    check_protocol(body.get("protocol").and_then(Value::as_u64).unwrap_or(0))?;
    let req: PushRequest = serde_json::from_value(body.clone()).map_err(|e| ApiError::bad(format!("malformed push: {e}")))?;
    if req.branch_id != up.branch_id {
        return Err(ApiError::forbidden(format!("this credential may push for branch {} only", up.branch_id)));
    }
    if req.events.len() > BATCH_MAX_EVENTS {
        return Err(ApiError::bad(format!("at most {BATCH_MAX_EVENTS} events per batch")));
    }
    for e in &req.events {
        if e.seq < 1 || e.id.is_empty() || e.id.len() > 64 || e.name.is_empty() || e.name.len() > 64 {
            return Err(ApiError::bad(format!("event {} is malformed", e.seq)));
        }
    }
    Ok(req)
}

/// Stores a batch and applies what became contiguous; answers after the commit.
pub async fn push(state: &AppState, up: &Uplink, body: &Value) -> Result<PushResponse, ApiError> {
    let req = parse_push(body, up)?;
    let up = up.clone();
    let (high_water, parked, duplicates) = state
        .db()
        .write_staged(move |tx| {
            let (mut parked, mut duplicates) = (Vec::new(), 0);
            let mut new = std::collections::HashMap::new();
            // Stage one (on a hub cluster, while other processes commit): this branch's
            // pushes one at a time, its events stored under (branch, number). Only pushes
            // write these rows.
            store::lock_branch(tx, &up.branch_id)?;
            // The events that continue the branch's applied stream without a gap are applied
            // below, in this transaction: they are stored as applied at once. The rest wait.
            let start = store::high_water(tx, &up.branch_id)?;
            let seqs: std::collections::HashSet<i64> = req.events.iter().map(|e| e.seq).collect();
            let mut run_end = start;
            while seqs.contains(&(run_end + 1)) {
                run_end += 1;
            }
            let status = |seq: i64| if seq > start && seq <= run_end { "applied" } else { "pending" };
            let received = store::hub_receive(tx, &up.branch_id, &req.events, status)?;
            for (e, r) in req.events.iter().zip(received) {
                match r {
                    Received::New => {
                        new.insert(e.seq, e);
                    }
                    Received::Duplicate => duplicates += 1,
                    Received::Conflict => parked.push(Parked {
                        seq: e.seq,
                        code: "SEQ_CONFLICT".into(),
                        message: "another event already has this number; the branch's history diverged".into(),
                    }),
                }
            }
            // Stage two, under the cluster's write-order lock: orders, availability and
            // broadcasts, which other writes touch too.
            tx.order_writes()?;
            // Only a process of an older release (a rolling update) pushes without the
            // branch's lock: if one applied this branch meanwhile, the batch is sent again.
            if store::high_water(tx, &up.branch_id)? != start {
                return Err(StoreError::Unavailable(
                    "this branch's stream moved meanwhile (an older hub process); send the batch again".into(),
                ));
            }
            let hw = apply_contiguous(tx, &up, start, &new, &mut parked)?;
            Ok::<_, StoreError>((hw, parked, duplicates))
        })
        .await
        .map_err(ApiError::from)?;
    if !parked.is_empty() {
        tracing::warn!(branch_id = %up_branch(body), count = parked.len(), "sync: events parked as invalid");
    }
    if duplicates > 0 {
        tracing::info!(branch_id = %up_branch(body), duplicates, "sync: events received again (ignored)");
    }
    Ok(PushResponse { protocol: PROTOCOL, high_water, parked, duplicates })
}

fn up_branch(body: &Value) -> String {
    body.get("branchId").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Applies stored events from the high-water mark on, in order, while there is no gap.
/// `new`: the events this push stored (read from the request instead of the table).
///
/// First the whole run is applied in one savepoint, set-wise: new orders and the broadcasts
/// are written many rows per statement. Only when an event is refused is that undone and the
/// run applied again event by event, each in its own savepoint, so that the refused one is
/// parked alone. Refusals are rare, and on PostgreSQL every statement is a round trip.
fn apply_contiguous(
    tx: &mut Tx<'_>,
    up: &Uplink,
    start: i64,
    new: &std::collections::HashMap<i64, &WireEvent>,
    parked: &mut Vec<Parked>,
) -> Result<i64, StoreError> {
    let all_applied = tx.isolated(|tx| {
        tx.deferring(|tx| {
            let mut hw = start;
            let mut queued = apply::Queued::default();
            while let Some(e) = next_event(tx, &up.branch_id, new, hw)? {
                check_namespace(&e)?;
                apply::from_branch_queued(tx, &mut queued, &up.company_id, &up.branch_id, &e.namespace, &e.name, &e.data)?;
                hw = e.seq;
            }
            queued.flush(tx, &up.company_id)?;
            Ok::<_, Reject>(hw)
        })
    });
    let hw = match all_applied {
        Ok(hw) => hw,
        Err(r) => {
            tracing::debug!(branch_id = %up.branch_id, code = r.code, "sync: a push is applied event by event after a refusal");
            let mut hw = start;
            while let Some(e) = next_event(tx, &up.branch_id, new, hw)? {
                if let Err(r) = apply::isolated(tx, |tx| apply_one(tx, up, &e)) {
                    tracing::warn!(branch_id = %up.branch_id, seq = e.seq, code = r.code, reason = %r.message, "sync: event parked");
                    parked.push(Parked { seq: e.seq, code: r.code.into(), message: r.message });
                    store::settle_parked(tx, &up.branch_id, e.seq)?;
                }
                hw = e.seq;
            }
            hw
        }
    };
    if hw > start {
        // Events not from this push were stored pending by an earlier one.
        let stored_pending = (start + 1..=hw).any(|seq| !new.contains_key(&seq));
        store::settle_applied(tx, &up.branch_id, start, hw, stored_pending)?;
    }
    Ok(hw)
}

/// The event right after `hw`: from this push if it brought it, else as stored earlier.
fn next_event<'e>(
    tx: &Tx<'_>,
    branch: &str,
    new: &std::collections::HashMap<i64, &'e WireEvent>,
    hw: i64,
) -> Result<Option<std::borrow::Cow<'e, WireEvent>>, StoreError> {
    if let Some(e) = new.get(&(hw + 1)) {
        return Ok(Some(std::borrow::Cow::Borrowed(*e)));
    }
    Ok(store::next_pending(tx, branch, hw + 1)?.map(std::borrow::Cow::Owned))
}

fn check_namespace(e: &WireEvent) -> Result<(), Reject> {
    if !NAMESPACES.contains(&e.namespace.as_str()) {
        return Err(Reject { code: "INVALID_EVENT", message: format!("unknown namespace {}", e.namespace) });
    }
    Ok(())
}

fn apply_one(tx: &mut Tx<'_>, up: &Uplink, e: &WireEvent) -> Result<(), Reject> {
    check_namespace(e)?;
    apply::from_branch(tx, &up.company_id, &up.branch_id, &e.namespace, &e.name, &e.data)
}

pub async fn feed(state: &AppState, up: &Uplink, after: i64, limit: usize) -> Result<FeedResponse, ApiError> {
    let (c, b) = (up.company_id.clone(), up.branch_id.clone());
    let mut events = state.db().read(move |conn| store::feed(conn, &c, &b, after, limit + 1)).await?;
    let more = events.len() > limit;
    events.truncate(limit);
    let next_cursor = events.last().map(|e| e.cursor).unwrap_or(after);
    Ok(FeedResponse { protocol: PROTOCOL, events, next_cursor, more })
}
