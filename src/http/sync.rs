//! `/sync/v1/*` (hub role only): `hello`, `events` (push) and `feed` (pull), authenticated
//! with a branch's uplink credential. Shapes are documented in docs/API.md ("Sync").

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};

use super::JsonBody;
use crate::config::ApplianceRole;
use crate::error::ApiError;
use crate::state::AppState;
use crate::sync::{FEED_MAX, hub};

async fn uplink(st: &AppState, headers: &HeaderMap) -> Result<hub::Uplink, ApiError> {
    if st.config().role != ApplianceRole::Hub {
        return Err(ApiError::not_found("this appliance is not a hub (BRANCHD_ROLE=hub)"));
    }
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    hub::authenticate(st, bearer).await
}

/// The branch calling, authenticated from its headers alone: as an extractor it runs
/// before the body is read, so a caller without a valid credential is refused (401)
/// before it can make the hub buffer a batch of up to 16 MiB.
pub struct Uplink(hub::Uplink);

impl axum::extract::FromRequestParts<AppState> for Uplink {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, st: &AppState) -> Result<Self, ApiError> {
        uplink(st, &parts.headers).await.map(Uplink).inspect_err(|e| {
            if e.status == axum::http::StatusCode::UNAUTHORIZED {
                st.metrics().limit_hit(crate::metrics::Limit::BodyUnauthenticated);
            }
        })
    }
}

pub async fn hello(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<crate::sync::Hello>, ApiError> {
    let up = uplink(&st, &headers).await?;
    Ok(Json(hub::hello(&st, &up).await?))
}

pub async fn events(
    State(st): State<AppState>,
    Uplink(up): Uplink,
    JsonBody(body): JsonBody,
) -> Result<Json<crate::sync::PushResponse>, ApiError> {
    Ok(Json(hub::push(&st, &up, &body).await?))
}

pub async fn feed(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<crate::sync::FeedResponse>, ApiError> {
    let up = uplink(&st, &headers).await?;
    let after = match q.get("after") {
        None => 0,
        Some(a) => a.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::bad("after must be a cursor from a previous page"))?,
    };
    let limit = match q.get("limit") {
        None => FEED_MAX,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=FEED_MAX).contains(n))
            .ok_or_else(|| ApiError::bad(format!("limit must be 1 to {FEED_MAX}")))?,
    };
    Ok(Json(hub::feed(&st, &up, after, limit).await?))
}
