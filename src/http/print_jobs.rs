//! `/api/print-jobs`: queue a job (202 once it is durable), list the queue and history,
//! reprint.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};

use super::{Auth, JsonBody, paging};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::print_jobs::{self as store, Filter, Job, NewJob};
use crate::store::{Page, StoreError, orders, printers};
use crate::validate;

const MAX_RAW: usize = 512 * 1024;

pub async fn create(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Value>), ApiError> {
    if st.config().role == crate::config::ApplianceRole::Hub {
        return Err(ApiError::hub_does_not_print());
    }
    let m = validate::object(&body, "body")?;
    let printer_id = validate::string(m, "printerId", 128)?;
    let kind = match m.get("kind").and_then(Value::as_str) {
        Some(k @ ("receipt" | "kitchen" | "raw")) => k.to_string(),
        _ => return Err(ApiError::bad("kind must be receipt, kitchen or raw")),
    };
    let order_id = validate::opt_string(m, "orderId", 128)?;
    let station = validate::opt_string(m, "station", 64)?;
    let data = match (kind.as_str(), m.get("data")) {
        ("raw", Some(Value::String(b64))) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| ApiError::bad("data must be base64"))?;
            if bytes.is_empty() || bytes.len() > MAX_RAW {
                return Err(ApiError::bad(format!("data must be 1 to {MAX_RAW} bytes")));
            }
            Some(bytes)
        }
        ("raw", _) => return Err(ApiError::bad("raw jobs need data (base64)")),
        (_, _) if order_id.is_none() => return Err(ApiError::bad(format!("{kind} jobs need an orderId"))),
        _ => None,
    };
    let lookup = printer_id.clone();
    let printer = st.db().read(move |c| printers::get(c, &lookup)).await?;
    let printer = printer
        .filter(|x| p.may_access(&x.branch_id, Some(&x.company_id)))
        .ok_or_else(|| ApiError::not_found(format!("printer {printer_id} not found")))?;
    let job = st
        .db()
        .write(move |tx| {
            if let Some(oid) = &order_id {
                let order = orders::get(tx, oid)?;
                if order.is_none_or(|o| o.branch_id != printer.branch_id) {
                    return Err(StoreError::NotFound(format!("order {oid} not found in this printer's branch")));
                }
            }
            let new = NewJob {
                company_id: &printer.company_id,
                branch_id: &printer.branch_id,
                printer_id: &printer.id,
                kind: &kind,
                order_id: order_id.as_deref(),
                station: station.as_deref(),
                data: data.as_deref(),
                reprint_of: None,
            };
            store::enqueue(tx, new)
        })
        .await
        .map_err(ApiError::from)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": job.id, "status": job.status}))))
}

pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Job>>, ApiError> {
    let (limit, after_seq) = paging(q.get("limit").map(String::as_str), q.get("cursor").map(String::as_str))?;
    let status = match q.get("status").map(String::as_str) {
        None => None,
        Some(s @ ("queued" | "printing" | "printed" | "failed" | "expired" | "cancelled")) => Some(s.to_string()),
        Some(_) => return Err(ApiError::bad("status must be queued, printing, printed, failed, expired or cancelled")),
    };
    let newest_first = match q.get("order").map(String::as_str) {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(_) => return Err(ApiError::bad("order must be oldest (the default) or newest")),
    };
    let branches = st.branch_scope(&p, q.get("branchId").map(String::as_str)).await?;
    let filter = Filter { branches, status, printer_id: q.get("printerId").cloned(), after_seq, limit, newest_first };
    Ok(Json(st.db().read(move |c| store::list(c, &filter)).await?))
}

async fn load(st: &AppState, p: &Principal, id: &str) -> Result<Job, ApiError> {
    let lookup = id.to_string();
    let job = st.db().read(move |c| store::get(c, &lookup)).await?;
    job.filter(|j| p.may_access(&j.branch_id, Some(&j.company_id))).ok_or_else(|| ApiError::not_found(format!("print job {id} not found")))
}

pub async fn get_one(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    Ok(Json(load(&st, &p, &id).await?))
}

/// An explicit reprint: a new job, printed with a `REPRINT` banner.
pub async fn reprint(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    if st.config().role == crate::config::ApplianceRole::Hub {
        return Err(ApiError::hub_does_not_print());
    }
    let old = load(&st, &p, &id).await?;
    if old.kind == "test" {
        return Err(ApiError::bad("test pages are not reprinted; run a new test"));
    }
    let job = st
        .db()
        .write(move |tx| {
            let new = NewJob {
                company_id: &old.company_id,
                branch_id: &old.branch_id,
                printer_id: &old.printer_id,
                kind: &old.kind,
                order_id: old.order_id.as_deref(),
                station: old.station.as_deref(),
                data: old.data.as_deref(),
                reprint_of: Some(&old.id),
            };
            let job = store::enqueue(tx, new)?;
            crate::store::print_alerts::resolve_for_job(tx, &old.id)?;
            Ok::<_, StoreError>(job)
        })
        .await
        .map_err(ApiError::from)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": job.id, "status": job.status, "reprintOf": id}))))
}
