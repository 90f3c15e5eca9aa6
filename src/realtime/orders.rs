//! `/orders`: `requestLiveOrders` (plus the shared join/leave/catchUp). Broadcasts
//! (`newOrder`, `orderStatusUpdate`, `orderCancelled`, `driverUpdate`) come from the store
//! through the bus.

use serde_json::{Value, json};

use super::{Ctx, Registrar};
use crate::error::ApiError;
use crate::store::orders::{self, Filter};

/// `requestLiveOrders` returns at most this many orders.
const LIVE_MAX: usize = 1000;

pub fn register(r: &Registrar) {
    r.on(&["requestLiveOrders"], request_live_orders);
}

async fn request_live_orders(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    let branch = match &data {
        Value::Null => None,
        Value::Object(m) => match m.get("branchId") {
            None | Some(Value::Null) => None,
            Some(Value::String(b)) => Some(crate::validate::id(b, "branchId")?),
            Some(_) => return Err(ApiError::bad("branchId must be a string")),
        },
        _ => return Err(ApiError::bad("payload must be an object {branchId?}")),
    };
    let branches = ctx.state.branch_scope(&ctx.principal, branch.as_deref()).await?;
    let filter = Filter { branches, live_only: true, since: None, after_seq: 0, limit: LIVE_MAX };
    let page = ctx.state.db().read(move |c| orders::list(c, &filter)).await?;
    Ok(json!({"orders": page.items}))
}
