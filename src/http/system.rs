//! Login, health, metrics and the embedded dashboard assets.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::JsonBody;
use crate::app::AppState;
use crate::auth::jwt::Claims;
use crate::auth::password;
use crate::error::ApiError;
use crate::realtime::NAMESPACES;
use crate::store::directory;
use crate::validate;

/// Lifetime of tokens issued by `/auth/login`.
const LOGIN_TTL_SECS: i64 = 12 * 3600;

pub async fn login(State(st): State<AppState>, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    let m = validate::object(&body, "body")?;
    let (email, pw) = match (m.get("email").and_then(Value::as_str), m.get("password").and_then(Value::as_str)) {
        (Some(e), Some(p)) if e.len() <= 320 && p.len() <= 1024 => (e.to_string(), p.to_string()),
        _ => return Err(ApiError::bad("email and password are required strings")),
    };
    let lookup = email.clone();
    let user = st.db().read(move |c| directory::user_by_email(c, &lookup)).await?;
    let verified = tokio::task::spawn_blocking(move || match user {
        Some(u) if password::verify(&pw, &u.password_hash) => Some(u),
        Some(_) => None,
        None => {
            password::burn(&pw);
            None
        }
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let Some(u) = verified else {
        tracing::info!(email = %email, "login refused");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "wrong email or password"));
    };
    let claims = Claims {
        sub: u.id.clone(),
        role: u.role.clone(),
        company_id: u.company_id.clone(),
        branch_id: u.branch_id.clone(),
        email: Some(u.email.clone()),
        exp: chrono::Utc::now().timestamp() + LOGIN_TTL_SECS,
    };
    let token = st.keys().issue(&claims);
    Ok(Json(json!({
        "accessToken": token,
        "user": {"id": u.id, "email": u.email, "role": u.role, "companyId": u.company_id, "branchId": u.branch_id},
    })))
}

async fn db_ok(st: &AppState) -> bool {
    st.db().read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await.is_ok()
}

pub async fn health(State(st): State<AppState>) -> Response {
    let db = db_ok(&st).await;
    let connections: serde_json::Map<String, Value> =
        NAMESPACES.iter().map(|ns| (ns.to_string(), json!(st.metrics().connections(ns)))).collect();
    let upstream = if st.config().upstream_url.is_some() { "offline" } else { "disabled" };
    let body = json!({
        "status": if db { "ok" } else { "degraded" },
        "version": crate::VERSION,
        "role": st.config().role.as_str(),
        "uptimeSeconds": st.uptime().as_secs(),
        "db": if db { "ok" } else { "error" },
        "upstream": upstream,
        "connections": connections,
        "desktopApps": st.desktops().connected().len(),
    });
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    let db = db_ok(&st).await;
    let text = st.metrics().render(db, st.uptime());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Assets;

fn serve_asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            let cache = if path == "index.html" { "no-cache" } else { "public, max-age=3600" };
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, cache.to_string())], file.data.into_owned()).into_response()
        }
        None => ApiError::not_found("no such asset").into_response(),
    }
}

pub async fn dashboard() -> Response {
    serve_asset("index.html")
}

pub async fn asset(Path(path): Path<String>) -> Response {
    serve_asset(&format!("assets/{path}"))
}
