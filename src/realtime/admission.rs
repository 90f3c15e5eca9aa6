//! Admission of new Engine.IO sessions (SPEC §6: no request from the network can make memory
//! grow without bound). A session costs memory from its handshake until its heartbeat lapses
//! (45 s) even if it never connects a namespace, so new sessions are rate-limited per source
//! address (a token bucket: a burst for a screen of tablets behind one address, then a steady
//! rate; both are set where `AppState` makes the limiter); a refused handshake gets 429 and
//! is counted in `/metrics`. Requests of existing sessions (`sid=`) pass untouched. The
//! appliance itself (loopback without a forwarding proxy) is not limited: it is where the
//! operator's own tools and benchmarks run.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::throttle::Source;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn limit_new_sessions(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/socket.io") || req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("sid="))) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    // Loopback with no forwarded client is this machine's own tooling: not limited.
    let source = match peer {
        Some(p) if p.is_loopback() && forwarded.is_none() => None,
        Some(p) => Some(st.config().client_address(p, forwarded)),
        None => None,
    };
    if let Some(ip) = source
        && !st.session_limiter().allow(Source::from(ip), std::time::Instant::now())
    {
        st.metrics().limit_hit(crate::metrics::Limit::SessionRate);
        return ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "too many new Socket.IO sessions from this address; try again shortly",
        )
        .into_response();
    }
    next.run(req).await
}
