//! `/api/printers`: CRUD, status and test prints (with the correlation-id result shape).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Auth, JsonBody, paging};
use crate::auth::Principal;
use crate::domain::printer::{self as model, Printer};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Page, StoreError, printers as store};
use crate::validate;

async fn load(st: &AppState, p: &Principal, id: &str) -> Result<Printer, ApiError> {
    let lookup = id.to_string();
    let printer = st.db().read(move |c| store::get(c, &lookup)).await?;
    printer
        .filter(|x| p.may_access(&x.branch_id, Some(&x.company_id)))
        .ok_or_else(|| ApiError::not_found(format!("printer {id} not found")))
}

pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Printer>>, ApiError> {
    let (limit, after) = paging(q.get("limit").map(String::as_str), q.get("cursor").map(String::as_str))?;
    let branches = st.branch_scope(&p, q.get("branchId").map(String::as_str)).await?;
    Ok(Json(st.db().read(move |c| store::list(c, branches.as_deref(), after, limit)).await?))
}

/// SPEC §2: creating, changing and deleting printers needs a manager; staff may list,
/// see status, test and reprint.
fn may_configure(p: &crate::auth::Principal) -> Result<(), ApiError> {
    if p.role.configures() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("a {} may not add, change or remove printers; ask a branch manager", p.role.as_str())))
    }
}

pub async fn create(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Printer>), ApiError> {
    let m = validate::object(&body, "body")?;
    let branch = validate::id(&validate::string(m, "branchId", 128)?, "branchId")?;
    let company = st.authorize_branch(&p, &branch).await?;
    may_configure(&p)?;
    let fields = model::parse_fields(&body)?;
    if fields.name.is_none() || fields.connection.is_none() {
        return Err(ApiError::bad("name and connection are required"));
    }
    let printer = st.db().write(move |tx| store::add(tx, &company, &branch, fields)).await.map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(printer)))
}

pub async fn get_one(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Printer>, ApiError> {
    Ok(Json(load(&st, &p, &id).await?))
}

pub async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Printer>, ApiError> {
    let printer = load(&st, &p, &id).await?;
    may_configure(&p)?;
    if body.get("branchId").is_some_and(|b| b.as_str() != Some(&printer.branch_id)) {
        return Err(ApiError::bad("a printer cannot move to another branch; remove it and add it there"));
    }
    let fields = model::parse_fields(&body)?;
    let updated = st
        .db()
        .write(move |tx| {
            // Re-read inside the transaction so a concurrent change is not overwritten.
            let current = store::get(tx, &printer.id)?.ok_or_else(|| StoreError::NotFound(format!("printer {} not found", printer.id)))?;
            store::update(tx, current, fields)
        })
        .await
        .map_err(ApiError::from)?;
    Ok(Json(updated))
}

pub async fn remove(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let printer = load(&st, &p, &id).await?;
    may_configure(&p)?;
    st.db().write(move |tx| store::remove(tx, &printer)).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn status(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let printer = load(&st, &p, &id).await?;
    let pid = printer.id.clone();
    let detail = st.db().read(move |c| store::status_detail(c, &pid)).await?;
    let mut body = json!({"status": printer.status, "checkedAt": printer.checked_at});
    if let Some(d) = detail {
        body["detail"] = json!(d);
    }
    Ok(Json(body))
}

pub async fn test(State(st): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    if st.config().role == crate::config::ApplianceRole::Hub {
        return Err(ApiError::hub_does_not_print());
    }
    let printer = load(&st, &p, &id).await?;
    let outcome = crate::printing::test_print(&st, printer).await;
    let status = if outcome.timed_out() { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::OK };
    Ok((status, Json(outcome.result_payload())))
}

/// `POST /api/printers/discover` `{mdns?, mdnsSeconds?, serial?, scan?: {cidr?|hosts?, port?}}`
/// → `{candidates: [{source, name, connection, detail, alreadyAdded}]}`.
pub async fn discover(State(st): State<AppState>, Auth(p): Auth, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    use crate::printing::discovery;
    if !p.role.configures() {
        return Err(ApiError::forbidden("only managers may search the network for printers"));
    }
    let empty = serde_json::Map::new();
    let m = match &body {
        Value::Null => &empty,
        v => validate::object(v, "body")?,
    };
    let flag = |k: &str, default: bool| match m.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad(format!("{k} must be a boolean"))),
    };
    let mdns_secs = validate::opt_int(m, "mdnsSeconds", 1, 10)?.unwrap_or(2) as u64;
    let mut req = discovery::Request {
        mdns: (flag("mdns", st.config().mdns)?).then(|| std::time::Duration::from_secs(mdns_secs)),
        mdns_interfaces: st.config().mdns_interfaces.clone(),
        probe_serial: flag("serial", false)?,
        scan_hosts: vec![],
        scan_port: 9100,
    };
    if let Some(scan) = m.get("scan").filter(|v| !v.is_null()) {
        let s = validate::object(scan, "scan")?;
        req.scan_port = validate::opt_int(s, "port", 1, 65535)?.unwrap_or(9100) as u16;
        if let Some(cidr) = validate::opt_string(s, "cidr", 64)? {
            req.scan_hosts =
                discovery::hosts_of(&cidr).ok_or_else(|| ApiError::bad("scan.cidr must be an IPv4 network of /24 or smaller"))?;
        }
        if let Some(Value::Array(hosts)) = s.get("hosts") {
            for h in hosts {
                let ip = h.as_str().and_then(|h| h.parse().ok()).ok_or_else(|| ApiError::bad("scan.hosts must be IP addresses"))?;
                req.scan_hosts.push(ip);
            }
        }
        if req.scan_hosts.is_empty() || req.scan_hosts.len() > discovery::MAX_SCAN_HOSTS {
            return Err(ApiError::bad(format!("scan needs a cidr or 1 to {} hosts", discovery::MAX_SCAN_HOSTS)));
        }
    }
    let found = discovery::discover(req).await;
    let branches = st.visible_branches(&p).await?;
    let known = st.db().read(move |c| store::list(c, branches.as_deref(), 0, 10_000)).await?.items;
    let candidates: Vec<Value> = found
        .into_iter()
        .map(|c| {
            let added = known.iter().any(|k| serde_json::to_value(&k.connection).ok().as_ref() == Some(&c.connection));
            let mut v = serde_json::to_value(&c).unwrap_or(Value::Null);
            v["alreadyAdded"] = json!(added);
            v
        })
        .collect();
    Ok(Json(json!({"candidates": candidates})))
}
