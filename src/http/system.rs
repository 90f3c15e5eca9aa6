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
    let now = std::time::Instant::now();
    if let Err(wait) = st.login_throttle().check(&email, now) {
        return Err(too_many_attempts(wait));
    }
    let lookup = email.clone();
    let user = st.db().read(move |c| directory::user_by_email(c, &lookup)).await?;
    // Queue for a slot rather than hash many passwords at once; a long queue is refused.
    let slot = tokio::time::timeout(std::time::Duration::from_secs(10), st.password_checks().acquire())
        .await
        .map_err(|_| ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "too many logins at once; try again shortly"))?
        .map_err(|_| ApiError::internal())?;
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
    drop(slot);
    let Some(u) = verified else {
        tracing::info!(email = %email, "login refused");
        if let Some(lock) = st.login_throttle().failed(&email, now) {
            tracing::warn!(email = %email, lock_s = lock.as_secs(), "repeated wrong passwords: logins for this email paused");
        }
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "wrong email or password"));
    };
    st.login_throttle().succeeded(&email);
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
    let sync = st.sync().status();
    let upstream = match (st.config().upstream_url.is_some(), sync.online) {
        (false, _) => "disabled",
        (true, true) => "online",
        (true, false) => "offline",
    };
    let problems = super::alerts::health_problems(&st).await;
    let status = match (db, problems.is_empty()) {
        (false, _) => "degraded",
        (true, true) => "ok",
        (true, false) => "degraded",
    };
    let mut body = json!({
        "status": status,
        "version": crate::VERSION,
        "role": st.config().role.as_str(),
        "uptimeSeconds": st.uptime().as_secs(),
        "db": if db { "ok" } else { "error" },
        "upstream": upstream,
        "sync": sync,
        "connections": connections,
        "desktopApps": st.desktops().connected().len(),
    });
    if !problems.is_empty() {
        body["problems"] = json!(problems);
    }
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    let db = db_ok(&st).await;
    let mut text = st.metrics().render(db, st.uptime());
    text.push_str(&sync_metrics(&st.sync().status()));
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

fn sync_metrics(s: &crate::sync::relay::Status) -> String {
    let last = s.last_success_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp()).unwrap_or(0);
    let rows = [
        ("branchd_sync_enabled", "gauge", "Whether this branch syncs with a hub.", u8::from(s.enabled) as i64),
        ("branchd_sync_online", "gauge", "Whether the last exchange with the hub succeeded.", u8::from(s.online) as i64),
        ("branchd_sync_pending_events", "gauge", "Events waiting for the hub.", s.pending),
        (
            "branchd_sync_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest event waiting for the hub.",
            s.oldest_pending_age_seconds.unwrap_or(0),
        ),
        ("branchd_sync_last_success_timestamp_seconds", "gauge", "When the hub last answered.", last),
        ("branchd_sync_acknowledged", "gauge", "Highest stream number the hub confirmed.", s.acked),
        ("branchd_sync_parked_events", "gauge", "Events the hub refused as invalid.", s.parked),
        ("branchd_sync_divergences_total", "counter", "Times the hub had lost acknowledged events.", s.divergences as i64),
        ("branchd_sync_pushed_events_total", "counter", "Events the hub acknowledged.", s.pushed as i64),
        ("branchd_sync_feed_applied_total", "counter", "Hub changes applied here.", s.feed_applied as i64),
    ];
    rows.iter().map(|(n, k, h, v)| format!("# HELP {n} {h}\n# TYPE {n} {k}\n{n} {v}\n")).collect()
}

fn too_many_attempts(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_ATTEMPTS",
        format!("too many wrong passwords for this email: try again in {secs} s"),
    )
}
