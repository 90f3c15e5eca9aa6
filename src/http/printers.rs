//! `/api/printers`: CRUD, status and test prints (with the correlation-id result shape).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Auth, JsonBody, paging};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::printing::model::{self, Printer};
use crate::store::{Page, StoreError, printers as store};
use crate::validate;

async fn load(st: &AppState, p: &Principal, id: &str) -> Result<Printer, ApiError> {
    let lookup = id.to_string();
    let printer = st.db().read(move |c| store::get(c, &lookup)).await?;
    printer
        .filter(|x| p.may_access(&x.branch_id, Some(&x.company_id)))
        .ok_or_else(|| ApiError::not_found(format!("printer {id} not found")))
}

pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Printer>>, ApiError> {
    let (limit, after) = paging(q.get("limit").map(String::as_str), q.get("cursor").map(String::as_str))?;
    let branches = match q.get("branchId") {
        Some(b) => {
            st.authorize_branch(&p, b).await?;
            Some(vec![b.clone()])
        }
        None => st.visible_branches(&p).await?,
    };
    Ok(Json(st.db().read(move |c| store::list(c, branches.as_deref(), after, limit)).await?))
}

pub async fn create(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Printer>), ApiError> {
    let m = validate::object(&body, "body")?;
    let branch = validate::id(&validate::string(m, "branchId", 128)?, "branchId")?;
    let company = st.authorize_branch(&p, &branch).await?;
    let fields = model::parse_fields(&body)?;
    if fields.name.is_none() || fields.connection.is_none() {
        return Err(ApiError::bad("name and connection are required"));
    }
    let printer = st.db().write(move |tx| store::add(tx, &company, &branch, fields)).await.map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(printer)))
}

pub async fn get_one(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Printer>, ApiError> {
    Ok(Json(load(&st, &p, &id).await?))
}

pub async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Printer>, ApiError> {
    let printer = load(&st, &p, &id).await?;
    if body.get("branchId").is_some_and(|b| b.as_str() != Some(&printer.branch_id)) {
        return Err(ApiError::bad("a printer cannot move to another branch; remove it and add it there"));
    }
    let fields = model::parse_fields(&body)?;
    let updated = st
        .db()
        .write(move |tx| {
            // Re-read inside the transaction so a concurrent change is not overwritten.
            let current =
                store::get(tx.conn, &printer.id)?.ok_or_else(|| StoreError::NotFound(format!("printer {} not found", printer.id)))?;
            store::update(tx, current, fields)
        })
        .await
        .map_err(ApiError::from)?;
    Ok(Json(updated))
}

pub async fn remove(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let printer = load(&st, &p, &id).await?;
    st.db().write(move |tx| store::remove(tx, &printer)).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn status(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let printer = load(&st, &p, &id).await?;
    let pid = printer.id.clone();
    let detail = st.db().read(move |c| store::status_detail(c, &pid)).await?;
    let mut body = json!({"status": printer.status, "checkedAt": printer.checked_at});
    if let Some(d) = detail {
        body["detail"] = json!(d);
    }
    Ok(Json(body))
}

pub async fn test(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let printer = load(&st, &p, &id).await?;
    let outcome = crate::printing::test_print(&st, printer).await;
    let status = if outcome.timed_out() { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::OK };
    Ok((status, Json(outcome.result_payload())))
}
