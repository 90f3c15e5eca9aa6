//! `/api/availability/{branchId}`: item state, single and bulk updates, with stock alerts.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{Auth, JsonBody};
use crate::availability;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::availability as store;
use crate::validate;

pub async fn list(State(st): State<AppState>, Auth(p): Auth, Path(branch): Path<String>) -> Result<Json<Value>, ApiError> {
    st.authorize_branch(&p, &branch).await?;
    let b = branch.clone();
    let items = st.db().read(move |c| store::list(c, &b)).await?;
    Ok(Json(json!({"branchId": branch, "items": items})))
}

pub async fn put(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((branch, item_type, item_id)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    validate::id(&branch, "branchId")?;
    let company = st.authorize_branch(&p, &branch).await?;
    let change = availability::parse_change(&item_type, &item_id, &body)?;
    Ok(Json(st.db().write(move |tx| store::put(tx, &company, &branch, &change)).await.map_err(ApiError::from)?))
}

pub async fn bulk(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(branch): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let company = st.authorize_branch(&p, &branch).await?;
    let changes = availability::parse_bulk(&body)?;
    Ok(Json(st.db().write(move |tx| store::bulk(tx, &company, &branch, &changes)).await.map_err(ApiError::from)?))
}
