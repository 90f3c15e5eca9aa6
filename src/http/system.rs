//! Login, health, metrics and the appliance CA download.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ClientAddr, JsonBody};
use crate::auth::jwt::Claims;
use crate::auth::throttle::{Source, SourceRefusal};
use crate::domain::NAMESPACES;
use crate::error::ApiError;
use crate::metrics::Limit;
use crate::state::AppState;
use crate::store::directory;
use crate::validate;

/// Lifetime of tokens issued by `/auth/login`.
const LOGIN_TTL_SECS: i64 = 12 * 3600;

/// `POST /auth/login`. Cheap refusals come first (a locked source address, a locked email,
/// too many logins at once from one address, a full check queue), so a flood is answered
/// with 429s without an argon2 check each; then the password is checked on the dedicated
/// checker threads.
pub async fn login(State(st): State<AppState>, ClientAddr(ip): ClientAddr, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    let m = validate::object(&body, "body")?;
    let (email, pw) = match (m.get("email").and_then(Value::as_str), m.get("password").and_then(Value::as_str)) {
        (Some(e), Some(p)) if e.len() <= 320 && p.len() <= 1024 => (e.to_string(), p.to_string()),
        _ => return Err(ApiError::bad("email and password are required strings")),
    };
    let now = std::time::Instant::now();
    let source = Source::from(ip);
    let _slot = match st.source_throttle().enter(source, now) {
        Ok(slot) => slot,
        Err(SourceRefusal::Locked(wait)) => {
            st.metrics().limit_hit(Limit::LoginSourceLocked);
            return Err(too_many_attempts("from this device", wait));
        }
        Err(SourceRefusal::Busy) => {
            st.metrics().limit_hit(Limit::LoginSourceBusy);
            return Err(busy());
        }
    };
    if let Err(wait) = st.login_throttle().check_email(&email, now).await? {
        st.metrics().limit_hit(Limit::LoginEmailLocked);
        return Err(too_many_attempts("for this email", wait));
    }
    let lookup = email.clone();
    let user = st.db().read(move |c| directory::user_by_email(c, &lookup)).await?;
    let pending = st.password_checker().verify(pw, user.as_ref().map(|u| u.password_hash.clone())).map_err(|_| {
        st.metrics().limit_hit(Limit::LoginQueueFull);
        busy()
    })?;
    let verified = pending.await.map_err(|_| ApiError::internal())?;
    let Some(u) = user.filter(|_| verified) else {
        let shown = crate::validate::loggable(&email);
        tracing::info!(email = %shown, source = %ip, "login refused");
        // The source first: it counts in memory, whatever happens to the email's count.
        if let Some(lock) = st.source_throttle().failed(source, now) {
            tracing::warn!(source = %ip, lock_s = lock.as_secs(), "repeated wrong passwords from one address: its logins paused");
        }
        match st.login_throttle().failed_email(&email, now).await {
            Ok(Some(lock)) => {
                tracing::warn!(email = %shown, lock_s = lock.as_secs(), "repeated wrong passwords: logins for this email paused")
            }
            Ok(None) => {}
            // The answer is the same: a wrong password stays a wrong password.
            Err(e) => tracing::error!(email = %shown, error = %e, "could not count a wrong password for this email"),
        }
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "wrong email or password"));
    };
    if let Err(e) = st.login_throttle().succeeded_email(&email).await {
        tracing::warn!(error = %e, "could not clear this email's wrong-password count");
    }
    if u.disabled {
        tracing::info!(email = %crate::validate::loggable(&email), "login refused: the user is disabled");
        return Err(ApiError::new(StatusCode::FORBIDDEN, "USER_DISABLED", "this user is disabled; ask a manager to enable it"));
    }
    let token = issue_for(&st, &u);
    Ok(Json(json!({
        "accessToken": token,
        "user": {"id": u.id, "email": u.email, "name": u.name, "role": u.role, "companyId": u.company_id, "branchId": u.branch_id},
    })))
}

/// A login token for a stored user (with `iat`, so a later password change refuses it).
pub(super) fn issue_for(st: &AppState, u: &directory::User) -> String {
    let now = chrono::Utc::now().timestamp();
    st.keys().issue(&Claims {
        sub: u.id.clone(),
        role: u.role.clone(),
        company_id: u.company_id.clone(),
        branch_id: u.branch_id.clone(),
        email: Some(u.email.clone()),
        exp: now + LOGIN_TTL_SECS,
        iat: Some(crate::auth::jwt::now_iat()),
    })
}

fn busy() -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "too many logins at once; try again shortly")
}

async fn db_ok(st: &AppState) -> bool {
    st.db().ping().await
}

/// What needs a person (SPEC §3 `degraded`): the storage's problems and an uplink failing
/// for over an hour.
fn problems(st: &AppState, sync: &crate::state::relay::Status) -> Vec<crate::store::health::Problem> {
    let mut out = st.db().health().problems();
    if sync.enabled && !sync.online {
        let last = sync.last_success_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let failing_for = match last {
            Some(t) => (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0) as u64,
            None => st.uptime().as_secs(),
        };
        if failing_for >= 3600 {
            out.push(crate::store::health::Problem {
                code: "UPLINK_FAILING",
                message: format!("HQ has not been reached for {} minutes; events wait here and nothing is lost", failing_for / 60),
            });
        }
    }
    out
}

pub async fn health(State(st): State<AppState>) -> Response {
    let db = db_ok(&st).await;
    let connections: serde_json::Map<String, Value> =
        NAMESPACES.iter().map(|ns| (ns.to_string(), json!(st.metrics().connections(ns)))).collect();
    let sync = st.sync().status();
    let upstream = match (st.config().upstream_url.is_some() || sync.enabled, sync.online) {
        (false, _) => "disabled",
        (true, true) => "online",
        (true, false) => "offline",
    };
    let mut problems = serde_json::to_value(problems(&st, &sync)).unwrap_or_default().as_array().cloned().unwrap_or_default();
    problems.extend(super::alerts::health_problems(&st).await);
    let status = match (db, problems.is_empty()) {
        (false, _) => "unavailable",
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
        "tls": {"enabled": st.tls().enabled(), "caFingerprint": st.tls().ca_fingerprint()},
    });
    if !problems.is_empty() {
        body["problems"] = json!(problems);
    }
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// `GET /api/system/effective` (super admin: the CLI's `doctor` and `check-config` on the
/// appliance): what this running server uses and does — every setting's effective value
/// (secrets only as set/unset), mDNS, TLS, role, uplink and sync, the print workers, version,
/// pid and uptime. The files may say otherwise until a restart.
pub async fn effective(State(st): State<AppState>, super::Auth(p): super::Auth) -> Result<Json<Value>, ApiError> {
    if p.role != crate::auth::Role::SuperAdmin {
        return Err(ApiError::forbidden("only a super admin may read the running server's settings"));
    }
    let config = st.config();
    let settings: serde_json::Map<String, Value> =
        crate::config::SETTINGS.iter().map(|s| (s.key.to_string(), json!(s.value(config)))).collect();
    let started = chrono::Utc::now() - chrono::Duration::from_std(st.uptime()).unwrap_or_default();
    Ok(Json(json!({
        "version": crate::VERSION,
        "pid": std::process::id(),
        "uptimeSeconds": st.uptime().as_secs(),
        "startedAt": started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "role": config.role.as_str(),
        // Absolute: the CLI asking may have another working directory.
        "dataDir": std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()).display().to_string(),
        "settings": settings,
        "mdns": st.mdns(),
        "tls": {"enabled": st.tls().enabled(), "caFingerprint": st.tls().ca_fingerprint(), "host": st.tls().host()},
        "upstream": {"url": config.upstream_url, "tokenSet": config.upstream_token.is_some()},
        "sync": st.sync().status(),
        "printWorkers": st.print_queue().workers(),
    })))
}

#[derive(serde::Deserialize)]
pub struct CaQuery {
    format: Option<String>,
}

/// `GET /ca.crt` (no auth): the appliance's own CA, so devices can trust its HTTPS — PEM, or
/// `?format=der`, or `?format=mobileconfig` (an iOS/macOS profile).
pub async fn ca_cert(State(st): State<AppState>, axum::extract::Query(q): axum::extract::Query<CaQuery>) -> Response {
    let tls = st.tls();
    let (Some(der), Some(pem), Some(fp)) = (tls.ca_der(), tls.ca_pem(), tls.ca_fingerprint()) else {
        let why = if tls.enabled() { "HTTPS uses a configured certificate; there is no appliance CA" } else { "HTTPS is off" };
        return ApiError::not_found(why).into_response();
    };
    let (body, mime, file): (Vec<u8>, &str, &str) = match q.format.as_deref().unwrap_or("pem") {
        "pem" => (pem.as_bytes().to_vec(), "application/x-pem-file", "branchd-ca.crt"),
        "der" => (der.to_vec(), "application/x-x509-ca-cert", "branchd-ca.cer"),
        "mobileconfig" => (
            crate::tls::profile::mobileconfig(der, tls.ca_name().unwrap_or("branchd CA"), fp).into_bytes(),
            "application/x-apple-aspen-config",
            "branchd-ca.mobileconfig",
        ),
        other => return ApiError::bad(format!("format {other} is not pem, der or mobileconfig")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response()
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    let db = db_ok(&st).await;
    let mut text = st.metrics().render(db, st.uptime());
    text.push_str(&sync_metrics(&st.sync().status()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

fn sync_metrics(s: &crate::state::relay::Status) -> String {
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

fn too_many_attempts(whose: &str, wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS", format!("too many wrong passwords {whose}: try again in {secs} s"))
}
