//! What the embedded dashboard needs beyond the public API: system facts, connected
//! clients, the branches a caller may see, an online backup download, and the static
//! assets (`web/`, embedded with rust-embed; gzip-compressed, revalidated by ETag) with a
//! strict Content-Security-Policy.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;

use super::Auth;
use crate::auth::{Principal, Role};
use crate::domain::NAMESPACES;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::directory;

/// Static assets are small; anything bigger is served as is (no ETag).
const MAX_ETAG_BODY: usize = 4 * 1024 * 1024;
/// Backups left behind by a crash are removed after this long.
const STALE_BACKUP: Duration = Duration::from_secs(3600);
const BACKUP_PREFIX: &str = ".dashboard-backup-";

/// The dashboard page and its assets, compressed and with caching headers. Socket.IO and
/// the API are not under this router, so they are never compressed by it.
pub fn static_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/assets/{*path}", get(asset))
        .layer(axum::middleware::from_fn(static_headers))
        .layer(CompressionLayer::new().gzip(true))
}

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Assets;

fn serve_asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            // Caching headers are `static_headers`' (every file revalidated by ETag).
            let mime = file.metadata.mimetype().to_string();
            ([(header::CONTENT_TYPE, mime)], file.data.into_owned()).into_response()
        }
        None => ApiError::not_found("no such asset").into_response(),
    }
}

/// `GET /`, `GET /index.html`: the dashboard page.
async fn page() -> Response {
    serve_asset("index.html")
}

/// `GET /assets/{*path}`.
async fn asset(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    serve_asset(&format!("assets/{path}"))
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every static file is revalidated (`no-cache` + a content ETag answered with 304), so a
/// tablet never runs stale code after an update and still downloads nothing unchanged.
async fn static_headers(req: Request, next: Next) -> Response {
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ETAG_BODY).await else {
        return ApiError::internal().into_response();
    };
    // Weak: the gzip and identity encodings of a file share it.
    let etag = format!("W/\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let h = &mut parts.headers;
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let mime = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let textual = mime.starts_with("text/") || mime == "application/javascript" || mime == "image/svg+xml";
    if textual
        && !mime.contains("charset")
        && let Ok(v) = HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
    {
        h.insert(header::CONTENT_TYPE, v);
    }
    if mime.starts_with("text/html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let matches = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == &etag[2..]));
    if matches {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn require_role(p: &Principal, allowed: &[Role]) -> Result<(), ApiError> {
    if allowed.contains(&p.role) { Ok(()) } else { Err(ApiError::forbidden(format!("the {} role may not use this", p.role.as_str()))) }
}

/// The branches the caller may see, with names and currencies: `[{id, name, companyId, companyName, currency, currencyDigits}]`.
async fn branches_of(st: &AppState, p: &Principal) -> Result<Vec<directory::Branch>, ApiError> {
    let visible = st.visible_branches(p).await?;
    Ok(st
        .db()
        .read(move |c| {
            let all = directory::branches(c, None)?;
            Ok(match visible {
                None => all,
                Some(ids) => all.into_iter().filter(|b| ids.contains(&b.id)).collect(),
            })
        })
        .await?)
}

/// `GET /api/branches`: the branches the caller may see (any role).
pub async fn branches(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": branches_of(&st, &p).await?})))
}

/// Interfaces that are not for the LAN: containers, bridges, VPNs.
fn virtual_interface(name: &str) -> bool {
    ["docker", "br-", "veth", "virbr", "lxc", "cni", "flannel", "tun", "tap", "wg", "zt", "tailscale"].iter().any(|p| name.starts_with(p))
}

/// Non-loopback IPv4 addresses of the machine's LAN interfaces (private ranges first).
fn lan_addresses() -> Vec<String> {
    let mut out: Vec<(bool, String)> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !virtual_interface(&i.name))
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified() => Some((!v4.is_private(), v4.to_string())),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(_, a)| a).collect()
}

/// The port clients reach us on: the configured one, or the one in `Host` (port 0 in tests).
fn public_port(st: &AppState, headers: &HeaderMap) -> u16 {
    if st.config().port != 0 {
        return st.config().port;
    }
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| h.rsplit_once(':')).and_then(|(_, p)| p.parse().ok()).unwrap_or(80)
}

/// `GET /api/system`: what the System and "Connect a tablet" pages show.
pub async fn system(State(st): State<AppState>, Auth(p): Auth, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    require_role(&p, &[Role::CompanyOwner, Role::BranchManager, Role::SuperAdmin])?;
    let branches = branches_of(&st, &p).await?;
    let may_backup = may_backup(&st, &p).await?;
    let lan = tokio::task::spawn_blocking(lan_addresses).await.unwrap_or_default();
    Ok(Json(json!({
        "version": crate::VERSION,
        "uptimeSeconds": st.uptime().as_secs(),
        "role": st.config().role.as_str(),
        "dataDir": st.config().data_dir.display().to_string(),
        "lanAddresses": lan,
        "port": public_port(&st, &headers),
        "branches": branches,
        "mayBackup": may_backup.is_ok(),
        "backupRefusal": may_backup.err().map(|e| e.message),
        // The last `branchd update --check` (or automatic check): {current, available, newer, checkedAt, error}.
        "update": crate::ops::update::last_check(&st.config().data_dir),
    })))
}

/// `GET /api/connections`: clients per namespace and the desktop apps of visible branches.
pub async fn connections(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let branches = branches_of(&st, &p).await?;
    // Everyone's clients for a super admin; otherwise only those in the caller's rooms
    // (another company's tablets are not even counted).
    let rooms: Option<Vec<String>> = (p.role != Role::SuperAdmin).then(|| {
        let mut rooms: Vec<String> = branches.iter().map(|b| crate::realtime::room_branch(&b.id)).collect();
        rooms.extend(p.company_id.as_deref().map(crate::realtime::room_company));
        for b in &branches {
            let company = crate::realtime::room_company(&b.company_id);
            if !rooms.contains(&company) {
                rooms.push(company);
            }
        }
        rooms
    });
    let namespaces: serde_json::Map<String, Value> = NAMESPACES
        .iter()
        .map(|ns| {
            let n = match &rooms {
                None => st.metrics().connections(ns),
                Some(r) if r.is_empty() => 0,
                Some(r) => crate::realtime::sockets_in(st.io(), ns, r.clone()),
            };
            (ns.to_string(), json!(n))
        })
        .collect();
    let mut desktops: Vec<Value> = st
        .desktops()
        .connected()
        .into_iter()
        .filter_map(|d| {
            let b = branches.iter().find(|b| b.id == d.branch_id)?;
            Some(json!({"deviceId": d.device_id, "branchId": d.branch_id, "branchName": b.name}))
        })
        .collect();
    desktops.sort_by_key(|d| d.to_string());
    Ok(Json(json!({"namespaces": namespaces, "desktopApps": desktops})))
}

/// Whether `p` may download the whole database (`Ok(Err(why))` when not). It holds every
/// company's data, so a company owner may only while the appliance holds no other company.
async fn may_backup(st: &AppState, p: &Principal) -> Result<Result<(), ApiError>, ApiError> {
    if let Err(e) = require_role(p, &[Role::CompanyOwner, Role::SuperAdmin]) {
        return Ok(Err(e));
    }
    if st.config().database_url.is_some() {
        return Ok(Err(ApiError::new(StatusCode::CONFLICT, "CONFLICT", crate::store::backup::POSTGRES_BACKUP)));
    }
    if p.role == Role::CompanyOwner {
        let own = p.company_id.clone().unwrap_or_default();
        let others = st.db().read(move |c| Ok(directory::branches(c, None)?.into_iter().any(|b| b.company_id != own))).await?;
        if others {
            return Ok(Err(ApiError::forbidden(
                "this appliance also holds other companies' data; only a super_admin may download its backup",
            )));
        }
    }
    Ok(Ok(()))
}

/// Removes backup files a crash left behind in the data directory.
fn remove_stale_backups(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(BACKUP_PREFIX)
            && e.metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_BACKUP);
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// `GET /api/system/backup`: a consistent copy of the database (`VACUUM INTO` a temporary
/// file in the data directory, unlinked once opened), streamed as an attachment.
pub async fn backup(State(st): State<AppState>, Auth(p): Auth) -> Result<Response, ApiError> {
    may_backup(&st, &p).await??;
    let dir = st.config().data_dir.clone();
    let file = dir.join(format!("{BACKUP_PREFIX}{}.db", uuid::Uuid::new_v4()));
    let target = file.clone();
    let made = st
        .db()
        .read(move |c| {
            remove_stale_backups(&dir);
            crate::store::backup::vacuum_into(c, &target)
        })
        .await;
    if let Err(e) = made {
        let _ = tokio::fs::remove_file(&file).await;
        return Err(e.into());
    }
    let opened = tokio::fs::File::open(&file).await;
    // Unlinked at once: the open handle keeps the data until the download ends or breaks.
    let _ = tokio::fs::remove_file(&file).await;
    let f = opened.map_err(|e| {
        tracing::error!(error = %e, "cannot open the backup file");
        ApiError::internal()
    })?;
    let len = f.metadata().await.map(|m| m.len()).ok();
    let name = format!("branchd-backup-{}.db", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    tracing::info!(sub = %p.sub, bytes = len.unwrap_or(0), "database backup downloaded");
    let mut res = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(f)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.sqlite3"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_interfaces_skip_containers_and_vpns() {
        assert!(virtual_interface("docker0"));
        assert!(virtual_interface("br-1a2b"));
        assert!(virtual_interface("wg0"));
        assert!(!virtual_interface("eth0"));
        assert!(!virtual_interface("wlan0"));
        assert!(!virtual_interface("enp3s0"));
        for a in lan_addresses() {
            let ip: std::net::Ipv4Addr = a.parse().expect("an IPv4 address");
            assert!(!ip.is_loopback());
        }
    }
}
