//! `/availability`: `ping` → ack `{success, timestamp}` and a `pong` event (plus the shared
//! join/leave/catchUp). Broadcasts come from the store through the bus.

use serde_json::{Value, json};
use socketioxide::extract::SocketRef;

use super::{Ctx, on};
use crate::app::AppState;
use crate::error::ApiError;

const NS: &str = "/availability";

pub fn register(s: &SocketRef, state: &AppState) {
    on(s, state, NS, &["ping"], ping);
}

async fn ping(ctx: Ctx, _data: Value) -> Result<Value, ApiError> {
    let timestamp = crate::store::now_rfc3339();
    let _ = ctx.socket.emit("pong", &json!({"timestamp": timestamp}));
    Ok(json!({"timestamp": timestamp}))
}
