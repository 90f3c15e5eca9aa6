//! `/printing-ws`: web clients ask for test prints; desktop apps report their printers and
//! status and answer correlated requests. Desktop apps are registered with the
//! [`DesktopHub`](crate::state::desktops::DesktopHub) through a [`DesktopLink`] that wraps
//! their socket.
//!
//! `printer:test` waits on another party (the desktop app or the printer): it is registered
//! in the requester's order ([`Registrar::on_waiting`]) and waits beside it.

use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::SocketRef;

use super::{Ctx, Later, Registrar};
use crate::auth::Principal;
use crate::domain::printer::{Connection, Fields, STATUSES};
use crate::error::ApiError;
use crate::state::AppState;
use crate::state::desktops::DesktopLink;
use crate::store::{StoreError, printers};
use crate::validate;

const MAX_REPORTED: usize = 256;

struct SocketLink(SocketRef);

impl DesktopLink for SocketLink {
    fn send(&self, event: &str, payload: &Value) -> bool {
        self.0.connected() && self.0.emit(event, payload).is_ok()
    }
    fn close(&self) {
        let _ = self.0.clone().disconnect();
    }
}

pub fn register(r: &Registrar) {
    r.on_waiting(&["printer:test"], printer_test);
    r.on(&["printer:test:result"], test_result);
    r.on(&["printer:discovered"], discovered);
    r.on(&["desktop:status"], desktop_status);
}

/// A desktop app is connected: make it reachable and greet it with `desktop:connected`.
pub fn desktop_connected(s: &SocketRef, state: &AppState, p: &Principal) {
    if let (Some(device), Some(branch)) = (&p.device_id, &p.branch_id) {
        state.desktops().register(device, &s.id.to_string(), branch, Arc::new(SocketLink(s.clone())));
        tracing::info!(device_id = %device, branch_id = %branch, app_version = ?p.app_version, "desktop app connected");
        let _ = s.emit("desktop:connected", &json!({"deviceId": device, "branchId": branch, "serverTime": crate::store::now_rfc3339()}));
    }
}

fn desktop_only(ctx: &Ctx, what: &str) -> Result<(String, String, String), ApiError> {
    match (&ctx.principal.device_id, &ctx.principal.branch_id, &ctx.principal.company_id) {
        (Some(d), Some(b), Some(c)) => Ok((d.clone(), b.clone(), c.clone())),
        _ => Err(ApiError::forbidden(format!("only desktop apps {what}"))),
    }
}

/// In the requester's order: validates, looks the printer up and sends the request (or
/// queues the test page). The outcome is waited for beside the queue.
async fn printer_test(ctx: Ctx, data: Value) -> Result<Later, ApiError> {
    let m = validate::object(&data, "payload")?;
    let id = validate::string(m, "printerId", 128)?;
    let lookup = id.clone();
    let printer = ctx.state.db().read(move |c| printers::get(c, &lookup)).await?;
    let printer = match printer {
        Some(p) if ctx.principal.may_access(&p.branch_id, Some(&p.company_id)) => p,
        _ => return Err(ApiError::not_found(format!("printer {id} not found"))),
    };
    let started = crate::printing::start_test(&ctx.state, printer).await;
    Ok(Box::pin(async move {
        let outcome = started.outcome(&ctx.state).await;
        let result = outcome.result_payload();
        if ctx.socket.connected() {
            let _ = ctx.socket.emit("printer:test:result", &result);
        }
        // The ack carries the outcome, with `success: false` and `error` when it failed.
        Ok(result)
    }))
}

async fn test_result(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    desktop_only(&ctx, "answer printer tests")?;
    let m = validate::object(&data, "payload")?;
    let correlation = validate::string(m, "correlationId", 128)?;
    let success = validate::bool(m, "success")?;
    let message = validate::opt_string(m, "message", 1000)?.unwrap_or_else(|| if success { "ok" } else { "failed" }.into());
    let accepted = ctx.state.desktops().answer(&ctx.socket.id.to_string(), &correlation, success, message);
    Ok(json!({"accepted": accepted}))
}

async fn discovered(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    let (device, branch, company) = desktop_only(&ctx, "report discoveries")?;
    let m = validate::object(&data, "payload")?;
    let list = match m.get("printers") {
        Some(Value::Array(a)) if a.len() <= MAX_REPORTED => a.clone(),
        _ => return Err(ApiError::bad(format!("printers must be an array of at most {MAX_REPORTED}"))),
    };
    let mut reported = Vec::with_capacity(list.len());
    for (i, x) in list.iter().enumerate() {
        let o = validate::object(x, &format!("printers[{i}]"))?;
        let local = validate::string(o, "localId", 256).map_err(|e| ApiError::bad(format!("printers[{i}].{}", e.0)))?;
        let name = validate::opt_string(o, "name", 200).map_err(|e| ApiError::bad(format!("printers[{i}].{}", e.0)))?;
        // A printer an app reports gets no automatic tickets until someone gives it a role
        // (an OS "Save as PDF" printer must not become the receipt printer), unless the app
        // says which role it has.
        let role = match o.get("role").and_then(Value::as_str) {
            None => "label".to_string(),
            Some(r @ ("receipt" | "kitchen" | "label")) => r.to_string(),
            Some(_) => return Err(ApiError::bad(format!("printers[{i}].role must be receipt, kitchen or label"))),
        };
        reported.push((local, name, role));
    }
    let count = reported.len();
    let (added, updated) = ctx
        .state
        .db()
        .write(move |tx| {
            let (mut added, mut updated) = (vec![], vec![]);
            for (local, name, role) in reported {
                match printers::by_desktop(tx, &branch, &device, &local)? {
                    None => {
                        let fields = Fields {
                            name: Some(name.unwrap_or_else(|| local.clone())),
                            role: Some(role),
                            connection: Some(Connection::Desktop { device_id: device.clone(), local_id: local }),
                            ..Fields::default()
                        };
                        added.push(printers::add(tx, &company, &branch, fields)?.id);
                    }
                    Some(known) if name.as_ref().is_some_and(|n| *n != known.name) => {
                        let fields = Fields { name, ..Fields::default() };
                        updated.push(printers::update(tx, known, fields)?.id);
                    }
                    Some(_) => {}
                }
            }
            Ok::<_, StoreError>((added, updated))
        })
        .await?;
    Ok(json!({"count": count, "added": added, "updated": updated}))
}

async fn desktop_status(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    let (device, branch, _) = desktop_only(&ctx, "report status")?;
    let m = validate::object(&data, "payload")?;
    let list = match m.get("printers") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) if a.len() <= MAX_REPORTED => a.clone(),
        _ => return Err(ApiError::bad(format!("printers must be an array of at most {MAX_REPORTED}"))),
    };
    let mut reported = Vec::with_capacity(list.len());
    for x in &list {
        let local = x.get("localId").and_then(Value::as_str);
        let status = x.get("status").and_then(Value::as_str).filter(|s| STATUSES.contains(s));
        match (local, status) {
            (Some(l), Some(s)) if !l.is_empty() => reported.push((l.to_string(), s.to_string())),
            _ => return Err(ApiError::bad(format!("each printer needs a localId and a status of {}", STATUSES.join("|")))),
        }
    }
    let changed = ctx
        .state
        .db()
        .write(move |tx| {
            let mut changed = 0;
            for (local, status) in reported {
                if let Some(p) = printers::by_desktop(tx, &branch, &device, &local)?
                    && printers::set_status(tx, &p, &status, None, false)?.is_some()
                {
                    changed += 1;
                }
            }
            Ok::<_, StoreError>(changed)
        })
        .await?;
    Ok(json!({"changed": changed}))
}
