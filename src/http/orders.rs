//! `/api/orders`: create (idempotent by client id), list, get, status, cancel, driver.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::{Auth, JsonBody, paging};
use crate::error::ApiError;
use crate::orders::{self, Order, Status};
use crate::state::AppState;
use crate::store::orders::{self as store, Created, Filter};
use crate::store::{Page, StoreError};
use crate::validate;

pub async fn create(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Order>), ApiError> {
    let branch = orders::branch_of(&body)?;
    let company = st.authorize_branch(&p, &branch).await?;
    let new = orders::parse_new(&body)?;
    let day = st.config().business_day(chrono::Utc::now());
    let print = st.config().role == crate::config::ApplianceRole::Branch;
    let created =
        st.db().write(move |tx| store::create(tx, &company, &new, &day, print)).await.inspect_err(|_| st.metrics().db_write_error());
    match created.map_err(ApiError::from)? {
        Created::New(o) => {
            tracing::info!(order_id = %o.id, branch_id = %o.branch_id, number = o.number, "order created");
            Ok((StatusCode::CREATED, Json(o)))
        }
        Created::Existing(o) => Ok((StatusCode::OK, Json(o))),
    }
}

pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Order>>, ApiError> {
    let (limit, after_seq) = paging(q.get("limit").map(String::as_str), q.get("cursor").map(String::as_str))?;
    let live_only = match q.get("status").map(String::as_str) {
        None | Some("live") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::bad("status must be live or all")),
    };
    let since = match q.get("since") {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| ApiError::bad("since must be an RFC 3339 timestamp"))?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    };
    let branches = st.branch_scope(&p, q.get("branchId").map(String::as_str)).await?;
    let filter = Filter { branches, live_only, since, after_seq, limit };
    Ok(Json(st.db().read(move |c| store::list(c, &filter)).await?))
}

pub async fn get_one(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Order>, ApiError> {
    let lookup = id.clone();
    let order = st.db().read(move |c| store::get(c, &lookup)).await?;
    order.filter(visible_to(&p)).map(Json).ok_or_else(|| ApiError::not_found(format!("order {id} not found")))
}

pub async fn set_status(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Order>, ApiError> {
    let m = validate::object(&body, "body")?;
    let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let status = m
        .get("status")
        .and_then(Value::as_str)
        .and_then(Status::parse)
        .ok_or_else(|| ApiError::bad(format!("status must be one of {}", names.join(", "))))?;
    let o = st.db().write(move |tx| store::set_status(tx, &id, status, &visible_to(&p))).await;
    Ok(Json(o.map_err(ApiError::from)?))
}

pub async fn cancel(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Order>, ApiError> {
    let reason = match &body {
        Value::Null => None,
        Value::Object(m) => validate::opt_string(m, "reason", 1000)?,
        _ => return Err(ApiError::bad("body must be an object {reason}")),
    };
    let o = st.db().write(move |tx| store::cancel(tx, &id, reason, &visible_to(&p))).await;
    Ok(Json(o.map_err(ApiError::from)?))
}

pub async fn set_driver(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Order>, ApiError> {
    let driver = orders::parse_driver(&body)?;
    let o = st.db().write(move |tx| store::set_driver(tx, &id, driver, &visible_to(&p))).await;
    Ok(Json(o.map_err(|e: StoreError| ApiError::from(e))?))
}

/// Whether the caller may see an order (used inside write transactions).
fn visible_to(p: &crate::auth::Principal) -> impl Fn(&Order) -> bool + '_ {
    |o| p.may_access(&o.branch_id, Some(&o.company_id))
}
