//! Print alerts and the actions on a stalled printer (SPEC §4 "Print alerts"):
//! `GET /api/alerts`, `POST /api/alerts/{id}/ack`, `POST /api/printers/{id}/retry`,
//! `POST /api/printers/{id}/move-jobs`, and the `PRINTER_STALLED` problems of `/health`.
//! Anyone who may see the branch may ack, retry and move.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::{Auth, JsonBody};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{StoreError, print_alerts, print_jobs, printers};
use crate::validate;

/// `GET /api/alerts` returns at most this many (newest first).
const LIST_MAX: usize = 500;

/// `GET /api/alerts?branchId=&open=true` → `{items: [...]}`, newest first.
pub async fn list(State(st): State<AppState>, Auth(p): Auth, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>, ApiError> {
    let open = match q.get("open").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad("open must be true or false")),
    };
    let branches = st.branch_scope(&p, q.get("branchId").map(String::as_str)).await?;
    let items = st.db().read(move |c| print_alerts::list(c, branches.as_deref(), open, LIST_MAX)).await?;
    Ok(Json(json!({"items": items})))
}

/// `POST /api/alerts/{id}/ack` → the alert, marked seen (broadcast as `printAlertAck`).
pub async fn ack(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let lookup = id.clone();
    let found = st.db().read(move |c| print_alerts::get(c, &lookup)).await?;
    match found {
        Some((company, branch, _)) if p.may_access(&branch, Some(&company)) => {}
        _ => return Err(ApiError::not_found(format!("alert {id} not found"))),
    }
    let by = p.email.clone().unwrap_or_else(|| p.sub.clone());
    let alert = st.db().write(move |tx| print_alerts::ack(tx, &id, &by)).await.map_err(ApiError::from)?;
    Ok(Json(alert))
}

async fn printer(st: &AppState, p: &crate::auth::Principal, id: &str) -> Result<crate::domain::printer::Printer, ApiError> {
    let lookup = id.to_string();
    let found = st.db().read(move |c| printers::get(c, &lookup)).await?;
    found.filter(|x| p.may_access(&x.branch_id, Some(&x.company_id))).ok_or_else(|| ApiError::not_found(format!("printer {id} not found")))
}

/// `POST /api/printers/{id}/retry` → `{printerId, waitingJobs}`: its waiting tickets are
/// tried at once, whatever the backoff.
pub async fn retry(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if st.config().role == crate::config::ApplianceRole::Hub {
        return Err(ApiError::hub_does_not_print());
    }
    let printer = printer(&st, &p, &id).await?;
    let pid = printer.id.clone();
    let waiting = st.db().write(move |tx| print_jobs::retry_now(tx, &pid)).await.map_err(ApiError::from)?;
    crate::printing::queue::retry_now(&st, &printer.id);
    Ok(Json(json!({"printerId": printer.id, "waitingJobs": waiting})))
}

/// `POST /api/printers/{id}/move-jobs` `{toPrinterId}` → `{moved: [jobId...], toPrinterId}`.
pub async fn move_jobs(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if st.config().role == crate::config::ApplianceRole::Hub {
        return Err(ApiError::hub_does_not_print());
    }
    let m = validate::object(&body, "body")?;
    let to_id = validate::string(m, "toPrinterId", 128)?;
    let from = printer(&st, &p, &id).await?;
    let to = printer(&st, &p, &to_id).await?;
    if to.id == from.id {
        return Err(ApiError::bad("toPrinterId must be another printer"));
    }
    if to.branch_id != from.branch_id {
        return Err(ApiError::bad("tickets move only to a printer of the same branch"));
    }
    let moved = st
        .db()
        .write(move |tx| {
            // Re-read both inside the transaction: either may have gone meanwhile.
            let gone = |id: &str| StoreError::NotFound(format!("printer {id} not found"));
            let from = printers::get(tx, &from.id)?.ok_or_else(|| gone(&from.id))?;
            let to = printers::get(tx, &to.id)?.ok_or_else(|| gone(&to.id))?;
            print_jobs::move_jobs(tx, &from, &to)
        })
        .await
        .map_err(ApiError::from)?;
    tracing::info!(from = %id, to = %to_id, moved = moved.len(), "waiting tickets moved by hand");
    let ids: Vec<&str> = moved.iter().map(|j| j.id.as_str()).collect();
    Ok(Json(json!({"moved": ids, "toPrinterId": to_id})))
}

/// `/health` problems of printing: one `PRINTER_STALLED` per open stall alert of this
/// appliance's own printers (a hub's alerts are copies of its branches': their printers
/// are not the hub's problem to report as its health).
pub async fn health_problems(st: &AppState) -> Vec<Value> {
    if st.config().role == crate::config::ApplianceRole::Hub {
        return vec![];
    }
    let stalls = st.db().read(print_alerts::open_stalls).await.unwrap_or_default();
    stalls
        .into_iter()
        .map(|a| {
            json!({
                "code": "PRINTER_STALLED",
                "message": a["message"],
                "printerId": a["printerId"],
                "branchId": a["branchId"],
                "alertId": a["id"],
            })
        })
        .collect()
}
