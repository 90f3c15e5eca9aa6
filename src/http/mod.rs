//! HTTP (SPEC §3): the router, the bearer-token extractor, JSON bodies with SPEC's error
//! shape, request metrics and CORS. Handlers live in one file per resource. The only module
//! that knows axum routing.

mod alerts;
mod availability;
mod dashboard;
mod orders;
mod print_jobs;
mod printers;
mod setup;
mod sync;
mod system;
mod updates;
mod users;

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{AuthError, Principal};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let max_body = state.config().max_body;
    let api = Router::new()
        .route("/orders", post(orders::create).get(orders::list))
        .route("/orders/{id}", get(orders::get_one))
        .route("/orders/{id}/status", axum::routing::patch(orders::set_status))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/driver", put(orders::set_driver))
        .route("/availability/{branch_id}", get(availability::list))
        .route("/availability/{branch_id}/bulk", post(availability::bulk))
        .route("/availability/{branch_id}/{item_type}/{item_id}", put(availability::put))
        .route("/printers", get(printers::list).post(printers::create))
        .route("/printers/discover", post(printers::discover))
        .route("/printers/{id}", get(printers::get_one).patch(printers::update).delete(printers::remove))
        .route("/printers/{id}/status", get(printers::status))
        .route("/printers/{id}/test", post(printers::test))
        .route("/printers/{id}/retry", post(alerts::retry))
        .route("/printers/{id}/move-jobs", post(alerts::move_jobs))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}/ack", post(alerts::ack))
        .route("/print-jobs", post(print_jobs::create).get(print_jobs::list))
        .route("/print-jobs/{id}", get(print_jobs::get_one))
        .route("/print-jobs/{id}/reprint", post(print_jobs::reprint))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", axum::routing::patch(users::update).get(users::get_one))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/branches", get(dashboard::branches))
        .route("/setup", get(setup::get).post(setup::post))
        .route("/connections", get(dashboard::connections))
        .route("/system", get(dashboard::system))
        .route("/system/backup", get(dashboard::backup))
        .route("/system/effective", get(system::effective));
    let router = Router::new()
        .merge(dashboard::static_routes())
        .route("/auth/login", post(system::login))
        .route("/auth/password", post(users::change_own_password))
        .route("/health", get(system::health))
        .route("/ca.crt", get(system::ca_cert))
        .route("/metrics", get(system::metrics))
        .route("/sync/v1/hello", get(sync::hello))
        // A batch carries up to `BATCH_MAX_BYTES` plus one event, and one event can be a whole
        // order of up to `max_body`: room for both, so no acknowledged order is ever too big.
        .route(
            "/sync/v1/events",
            post(sync::events)
                .layer(axum::extract::DefaultBodyLimit::max((4 * max_body).max(crate::sync::BATCH_MAX_BYTES * 4).max(16 << 20))),
        )
        .route("/sync/v1/feed", get(sync::feed))
        .route("/updates/{name}", get(updates::file))
        .nest("/api", api)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed on this route")
        })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked; answered 500");
            axum::response::IntoResponse::into_response(ApiError::internal())
        }));
    router.with_state(state)
}

/// `CORS_ORIGINS`: none means same-origin only (no CORS headers at all). Applied by the app
/// outside the Socket.IO layer too, so browsers on an allowed origin can long-poll.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let took = started.elapsed();
    state.metrics().http(res.status().as_u16(), took);
    tracing::debug!(%method, %path, status = res.status().as_u16(), ms = took.as_secs_f64() * 1000.0, "http");
    res
}

/// The caller, from `Authorization: Bearer JWT`, past the user gate (a disabled user's
/// token, or one older than its user's password, is 401 `TOKEN_INVALID`).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty());
        let token = token.ok_or(AuthError::Required)?;
        let (principal, iat) = state.keys().verify_with_iat(token)?;
        state.user_gate().check(state.db(), &principal, iat).await.map_err(|e| match e {
            crate::auth::gate::GateError::Refused(a) => ApiError::from(a),
            crate::auth::gate::GateError::Store(s) => ApiError::from(s),
        })?;
        Ok(Auth(principal))
    }
}

/// The address a request came from: the TCP peer, or for a peer on loopback or in
/// `trusted_proxies` (nginx in front of a hub cluster) the client `X-Forwarded-For` names
/// (`Config::client_address`).
pub struct ClientAddr(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        Ok(ClientAddr(st.config().client_address(peer, forwarded)))
    }
}

/// A JSON body as raw `Value`, with SPEC errors: 413 too large, 400 malformed.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "request body too large")
            } else {
                ApiError::bad(format!("cannot read body: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return Ok(JsonBody(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "BAD_JSON", format!("malformed JSON body: {e}")))
    }
}

/// `limit` (1..=1000, default 100) and `cursor` of list endpoints.
pub fn paging(limit: Option<&str>, cursor: Option<&str>) -> Result<(usize, i64), ApiError> {
    let limit = match limit {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad("limit must be an integer from 1 to 1000"))?,
    };
    let after = match cursor {
        None => 0,
        Some(c) => crate::store::decode_cursor(c).ok_or_else(|| ApiError::bad("cursor is not valid"))?,
    };
    Ok((limit, after))
}
