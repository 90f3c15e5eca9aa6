//! `/availability`: `ping` → ack `{success, timestamp}` and a `pong` event (plus the shared
//! join/leave/catchUp). Broadcasts come from the store through the bus.

use serde_json::{Value, json};

use super::{Ctx, Registrar};
use crate::error::ApiError;

pub fn register(r: &Registrar) {
    r.on(&["ping"], ping);
}

async fn ping(ctx: Ctx, _data: Value) -> Result<Value, ApiError> {
    let timestamp = crate::store::now_rfc3339();
    let _ = ctx.socket.emit("pong", &json!({"timestamp": timestamp}));
    Ok(json!({"timestamp": timestamp}))
}
