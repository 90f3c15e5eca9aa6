//! Handshake authentication, run as connect middleware so that a refused client never
//! joins a room or receives an event. A refusal's `connect_error` message is exactly one of
//! SPEC's codes; clients branch on it.

use serde_json::Value;
use socketioxide::extract::SocketRef;

use super::{room_branch, room_company};
use crate::auth::gate::GateError;
use crate::auth::{AuthError, Principal, Role, license};
use crate::state::AppState;
use crate::store::directory;

/// A refused handshake; displays as the bare code.
#[derive(Debug)]
pub struct Refusal(pub &'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Rooms computed at handshake, joined when the connection is accepted.
#[derive(Debug, Clone)]
pub struct AutoRooms(pub Vec<String>);

fn str_field<'a>(auth: &'a Value, key: &str) -> Option<&'a str> {
    auth.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub async fn authenticate(ns: &'static str, state: &AppState, s: &SocketRef, auth: Option<Value>) -> Result<(), Refusal> {
    let auth = auth.filter(Value::is_object).unwrap_or(Value::Null);
    let mut license_hash = None;
    let mut token_iat = None;
    let result = match str_field(&auth, "userRole") {
        Some("desktop_app") => desktop(ns, state, &auth).await.map(|(p, hash)| {
            license_hash = Some(hash);
            p
        }),
        _ => match str_field(&auth, "token") {
            Some(t) => match state.keys().verify_with_iat(t) {
                Ok((p, iat)) => match state.user_gate().check(state.db(), &p, iat).await {
                    Ok(()) => {
                        token_iat = iat;
                        Ok(p)
                    }
                    Err(GateError::Refused(e)) => Err(e.code()),
                    Err(GateError::Store(_)) => Err("INTERNAL_ERROR"),
                },
                Err(e) => Err(e.code()),
            },
            None => Err(AuthError::Required.code()),
        },
    };
    let principal = match result {
        Ok(p) => p,
        Err(code) => {
            state.metrics().refused();
            tracing::info!(namespace = ns, code, "handshake refused");
            return Err(Refusal(code));
        }
    };
    let rooms = auto_rooms(ns, state, &principal).await.map_err(|_| Refusal("INTERNAL_ERROR"))?;
    s.extensions.insert(AutoRooms(rooms));
    s.extensions.insert(principal);
    if let Some(hash) = license_hash {
        s.extensions.insert(LicenseHash(hash));
    }
    s.extensions.insert(TokenIat(token_iat));
    Ok(())
}

/// The `iat` (Unix ms) of the token a user's socket connected with (to close it once the user's
/// password changes).
#[derive(Clone, Copy)]
pub struct TokenIat(pub Option<i64>);

/// The hash of the license a desktop app connected with (to disconnect it once revoked).
#[derive(Clone)]
pub struct LicenseHash(pub String);

async fn desktop(ns: &str, state: &AppState, auth: &Value) -> Result<(Principal, String), &'static str> {
    if ns != "/printing-ws" {
        return Err("FORBIDDEN");
    }
    let key = str_field(auth, "licenseKey").ok_or("AUTH_REQUIRED")?;
    let hash = license::hash(key);
    let lookup = hash.clone();
    let lic = state.db().read(move |c| directory::license(c, &lookup)).await.map_err(|_| "INTERNAL_ERROR")?;
    let lic = lic.ok_or("LICENSE_INVALID")?;
    let hint_mismatch = |k: &str, actual: &str| str_field(auth, k).is_some_and(|v| v != actual);
    if hint_mismatch("branchId", &lic.branch_id) || hint_mismatch("companyId", &lic.company_id) {
        return Err("LICENSE_INVALID");
    }
    // Printable only: the id goes to the log, the dashboard and other clients' events.
    let printable = |d: &&str| {
        !d.is_empty() && d.len() <= 128 && !d.chars().any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202e}'))
    };
    let device = str_field(auth, "deviceId").filter(printable).ok_or("LICENSE_INVALID")?;
    let principal = Principal {
        sub: device.to_string(),
        role: Role::DesktopApp,
        company_id: Some(lic.company_id),
        branch_id: Some(lic.branch_id),
        email: None,
        device_id: Some(device.to_string()),
        app_version: str_field(auth, "appVersion").map(|v| crate::validate::loggable(&v.chars().take(64).collect::<String>())),
    };
    Ok((principal, hash))
}

/// Disconnects desktop apps whose license was revoked (by `branchd license revoke`, from
/// another process, or through the hub's feed) and sockets of users who were disabled or
/// whose password changed after their token was issued, within `every` (at most 5 s; at once when the
/// change was made through this server's API). Their reconnection is then refused with
/// `LICENSE_INVALID` / `TOKEN_INVALID`.
pub async fn disconnect_revoked(state: AppState, every: std::time::Duration) {
    let stop = state.shutdown_token().clone();
    // Half the period at most, so a change made elsewhere (the CLI, HQ's feed) closes
    // sockets well within SPEC's 10 s.
    let every = every.min(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = state.user_gate().changed() => {}
            _ = stop.cancelled() => return,
        }
        disconnect_revoked_desktops(&state).await;
        disconnect_refused_users(&state).await;
    }
}

async fn disconnect_revoked_desktops(state: &AppState) {
    let Some(ns) = state.io().of("/printing-ws") else { return };
    let desktops: Vec<_> = ns.sockets().into_iter().filter_map(|s| s.extensions.get::<LicenseHash>().map(|h| (s, h.0))).collect();
    if desktops.is_empty() {
        return;
    }
    let revoked = match state.db().read(directory::revoked_licenses).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read revoked licenses");
            return;
        }
    };
    for (s, hash) in desktops {
        if revoked.contains(&hash) {
            let device = s.extensions.get::<Principal>().and_then(|p| p.device_id).unwrap_or_default();
            tracing::warn!(device_id = %device, "desktop app disconnected: its license was revoked");
            let _ = s.disconnect();
        }
    }
}

async fn disconnect_refused_users(state: &AppState) {
    let sockets: Vec<_> = super::NAMESPACES
        .iter()
        .filter_map(|ns| state.io().of(*ns))
        .flat_map(|ns| ns.sockets())
        .filter_map(|s| {
            let p = s.extensions.get::<Principal>().filter(|p| !p.is_desktop())?;
            let iat = s.extensions.get::<TokenIat>().and_then(|t| t.0);
            Some((s, p.sub, iat))
        })
        .collect();
    if sockets.is_empty() {
        return;
    }
    let restricted = match state.db().read(directory::users_with_restrictions).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read disabled users");
            return;
        }
    };
    for (s, sub, iat) in sockets {
        if let Err(why) = crate::auth::gate::verdict(restricted.get(&sub).copied(), iat) {
            tracing::info!(user = %sub, reason = %why, "socket closed: its user was disabled or changed password");
            let _ = s.disconnect();
        }
    }
}

/// SPEC §4: branch-scoped identities get their branch room only; company-scoped ones get
/// `company:` (and, on `/orders` and `/printing-ws`, the branch their token names).
async fn auto_rooms(ns: &str, state: &AppState, p: &Principal) -> Result<Vec<String>, crate::error::ApiError> {
    let branch_ok = match &p.branch_id {
        Some(b) => state.branch_company(b).await?.is_some_and(|c| p.may_access(b, Some(&c))),
        None => false,
    };
    if p.role.branch_scoped() {
        return Ok(p.branch_id.as_deref().filter(|_| branch_ok).map(room_branch).into_iter().collect());
    }
    let mut rooms: Vec<String> = p.company_id.as_deref().map(room_company).into_iter().collect();
    if ns != "/availability"
        && branch_ok
        && let Some(b) = &p.branch_id
    {
        rooms.push(room_branch(b));
    }
    Ok(rooms)
}
