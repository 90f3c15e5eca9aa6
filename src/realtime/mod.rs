//! Socket.IO (SPEC §4): the three namespaces, their handshake authentication, rooms, the
//! ack/`exception` reply envelope and the broadcast emitter. The only module that knows
//! socketioxide. One file per namespace; shared handlers (join/leave/catchUp) here.
//!
//! Every client→server event is taken as raw JSON and validated by us, so a wrong payload
//! is answered with an error instead of being dropped; unknown events get `UNKNOWN_EVENT`.
//!
//! Events of one client socket are applied in the order sent (SPEC §6): every handler,
//! the fallback included, goes through the socket's [`Inbox`] here, and nowhere else.
//! A handler that waits on another party registers with [`on_waiting`]: its registration
//! takes its place in the order, its wait runs beside the queue.

pub mod admission;
pub mod availability;
pub mod bus;
pub mod connect;
pub mod orders;
pub mod printing;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value as RawValue};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;

use crate::auth::Principal;
use crate::config::Config;
use crate::domain::NAMESPACES;
use crate::error::ApiError;
use crate::state::AppState;

pub use crate::config::Tuning;

pub fn room_branch(id: &str) -> String {
    format!("branch:{id}")
}
pub fn room_company(id: &str) -> String {
    format!("company:{id}")
}

/// How many sockets of namespace `ns` are in at least one of `rooms` (each counted once).
pub fn sockets_in(io: &SocketIo, ns: &str, rooms: Vec<String>) -> i64 {
    io.of(ns).map_or(0, |io| io.within(rooms).sockets().len() as i64)
}

/// WebSocket read buffer per connection: clients send pings, acks and small events, and
/// tungstenite grows the buffer for a bigger frame (measured: 4 KiB default → 1 KiB saves
/// ~3 KB per connection; docs/BENCHMARKS.md).
const WS_READ_BUFFER: usize = 1024;

/// Builds the Socket.IO layer with SPEC's transport settings and limits.
pub fn build_io(config: &Config) -> (SocketIoLayer, SocketIo) {
    let t = config.realtime;
    SocketIo::builder()
        .ping_interval(t.ping_interval)
        .ping_timeout(t.ping_timeout)
        .max_payload(config.max_payload)
        .ws_max_message_size(config.max_payload as usize)
        .ws_max_frame_size(config.max_payload as usize)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_buffer_size(t.socket_buffer)
        .build_layer()
}

/// Middleware in front of Socket.IO: gives each `/socket.io/` request owned copies of its
/// URI and of the headers Engine.IO uses. Engine.IO keeps the request parts of every
/// session for its whole life, and hyper's header values and URI are slices of the
/// connection's 8 KiB read buffer, so one kept slice pins the whole buffer per connection
/// (heaptrack; docs/BENCHMARKS.md "What a connection holds"). Nothing in branchd reads a
/// session's headers after this point (the client address was taken by admission, auth is
/// in the CONNECT payload), so a browser's other headers (user agent, cookies, `accept-*`,
/// `sec-fetch-*`: often a kilobyte) are not kept either.
pub async fn own_request_parts(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if !req.uri().path().starts_with("/socket.io") {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let mut headers = axum::http::HeaderMap::with_capacity(8);
    for (name, value) in parts.headers.iter().filter(|(n, _)| ENGINE_IO_HEADERS.contains(&n.as_str())) {
        if let (Ok(n), Ok(v)) =
            (axum::http::HeaderName::from_bytes(name.as_str().as_bytes()), axum::http::HeaderValue::from_bytes(value.as_bytes()))
        {
            headers.append(n, v);
        }
    }
    parts.headers = headers;
    if let Ok(uri) = axum::http::Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    // axum's router put a clone of hyper's URI (a slice of that buffer) in the extensions
    // before this middleware ran; Engine.IO keeps the extensions too.
    if parts.extensions.remove::<axum::extract::OriginalUri>().is_some() {
        parts.extensions.insert(axum::extract::OriginalUri(parts.uri.clone()));
    }
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

/// The request headers Engine.IO and hyper look at: the WebSocket handshake, body framing,
/// and the origin and host (kept for the transport's own checks).
const ENGINE_IO_HEADERS: [&str; 11] = [
    "host",
    "origin",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-type",
    "content-length",
    "transfer-encoding",
];

/// Registers the three namespaces. Authentication, room joins and event handlers all happen
/// in the connect middleware: socketioxide sends CONNECT to the client before it spawns the
/// connect handler, so anything set up there could miss the client's first packets.
pub fn attach(state: &AppState) {
    for ns in NAMESPACES {
        let st = state.clone();
        let mw = state.clone();
        let handler = move |s: SocketRef| {
            let st = st.clone();
            async move { on_connected(ns, s, st) }
        };
        let auth = move |s: SocketRef, TryData(auth): TryData<Value>| {
            let st = mw.clone();
            async move {
                connect::authenticate(ns, &st, &s, auth.ok()).await?;
                prepare(ns, &s, &st);
                Ok::<(), connect::Refusal>(())
            }
        };
        state.io().ns(ns, handler.with(auth));
    }
}

/// Joins the auto rooms and registers every handler, before the client hears CONNECT.
fn prepare(ns: &'static str, s: &SocketRef, state: &AppState) {
    let Some(p) = s.extensions.get::<Principal>() else { return };
    if let Some(rooms) = s.extensions.get::<connect::AutoRooms>() {
        s.join(rooms.0);
    }
    state.metrics().connected(ns, 1);
    let inbox = Inbox::new();
    let (st, queue) = (state.clone(), inbox.clone());
    // A desktop app's goodbye takes its place after the events it sent before it: its last
    // answer still resolves its request, its last status report does not undo "offline".
    s.on_disconnect(move |s: SocketRef| {
        st.metrics().connected(ns, -1);
        let st = st.clone();
        queue.admit(async move {
            if let (Some(p), true) = (s.extensions.get::<Principal>(), ns == "/printing-ws")
                && let (Some(device), Some(branch)) = (&p.device_id, &p.branch_id)
            {
                let current = st.desktops().unregister(branch, device, &s.id.to_string());
                tracing::info!(device_id = %device, "desktop app disconnected");
                if current {
                    let (branch, device) = (branch.clone(), device.clone());
                    let res = st.db().write(move |tx| crate::store::printers::desktop_gone(tx, &branch, &device)).await;
                    if let Err(e) = res {
                        tracing::warn!(error = %e, "cannot mark the desktop app's printers offline");
                    }
                }
            }
        })
    });
    let r = Registrar { socket: s, state, ns, inbox: &inbox };
    r.on(&["joinBranch", "join:branch"], join_branch);
    r.on(&["leaveBranch", "leave:branch"], leave_branch);
    r.on(&["catchUp"], catch_up);
    match ns {
        "/orders" => orders::register(&r),
        "/availability" => availability::register(&r),
        _ => printing::register(&r),
    }
    let st = state.clone();
    s.on_fallback(move |s: SocketRef, Event(event): Event, ack: AckSender, AckWanted(wanted): AckWanted| {
        let st = st.clone();
        inbox.admit(async move {
            let shown: String = event.chars().take(64).collect();
            st.metrics().message(ns, false);
            let err = ApiError::new(axum::http::StatusCode::BAD_REQUEST, "UNKNOWN_EVENT", format!("unknown event {shown}"));
            reply(&s, &shown, wanted, ack, Err(err));
        })
    });
    tracing::debug!(namespace = ns, role = p.role.as_str(), "client connected");
}

/// Runs once the client has been told it is connected.
fn on_connected(ns: &'static str, s: SocketRef, state: AppState) {
    if ns == "/printing-ws"
        && let Some(p) = s.extensions.get::<Principal>()
    {
        printing::desktop_connected(&s, &state, &p);
    }
}

/// Whether the client asked for an ack (so errors go through it, not `exception`).
pub struct AckWanted(pub bool);

impl<A: Adapter> FromMessageParts<A> for AckWanted {
    type Error = Infallible;
    fn from_message_parts(_: &Arc<Socket<A>>, _: &mut RawValue, ack_id: &Option<i64>) -> Result<Self, Infallible> {
        Ok(AckWanted(ack_id.is_some()))
    }
}

/// Context handed to every event handler.
pub struct Ctx {
    pub socket: SocketRef,
    pub state: AppState,
    pub principal: Principal,
    pub ns: &'static str,
}

/// Sends the outcome: ack `{success: true, ...}` / `{success: false, error}`, or an
/// `exception` event when the client sent no ack callback and the call failed.
fn reply(s: &SocketRef, event: &str, wanted: bool, ack: AckSender, result: Result<Value, ApiError>) {
    if let Err(e) = &result {
        e.log_cause();
    }
    match result {
        Ok(v) if wanted => {
            let mut body = json!({"success": true});
            if let (Value::Object(b), Value::Object(extra)) = (&mut body, v) {
                b.extend(extra);
            }
            let _ = ack.send(&body);
        }
        Ok(_) => {}
        Err(e) if wanted => {
            let _ = ack.send(&json!({"success": false, "error": e.body()}));
        }
        Err(e) => {
            let _ = s.emit("exception", &json!({"status": "error", "event": event, "code": e.code, "message": e.message}));
        }
    }
}

/// What registers a socket's handlers: every one goes through the socket's [`Inbox`].
pub struct Registrar<'a> {
    socket: &'a SocketRef,
    state: &'a AppState,
    ns: &'static str,
    inbox: &'a Arc<Inbox>,
}

/// A reply that comes later: what a handler registered with [`Registrar::on_waiting`]
/// returns once its request is registered.
pub type Later = Pin<Box<dyn Future<Output = Result<Value, ApiError>> + Send>>;

/// What a handler's turn in the queue produced.
enum Step {
    Done(Result<Value, ApiError>),
    Wait(Later),
}

impl Registrar<'_> {
    /// Registers `f` for each of `events` with the reply envelope. `f` runs in the order
    /// the client sent its events; the next event's handler starts when it has replied.
    pub fn on<F, Fut>(&self, events: &[&'static str], f: F)
    where
        F: Fn(Ctx, Value) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ApiError>> + Send + 'static,
    {
        self.register(events, move |ctx, data| {
            let fut = f(ctx, data);
            async move { Step::Done(fut.await) }
        });
    }

    /// Registers a request that waits on another party: `f` registers it (in the client's
    /// order) and returns the wait, which runs beside the queue; its reply is sent when the
    /// wait ends, while the client's later events go on.
    pub fn on_waiting<F, Fut>(&self, events: &[&'static str], f: F)
    where
        F: Fn(Ctx, Value) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Later, ApiError>> + Send + 'static,
    {
        self.register(events, move |ctx, data| {
            let fut = f(ctx, data);
            async move {
                match fut.await {
                    Ok(later) => Step::Wait(later),
                    Err(e) => Step::Done(Err(e)),
                }
            }
        });
    }

    fn register<F, Fut>(&self, events: &[&'static str], f: F)
    where
        F: Fn(Ctx, Value) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Step> + Send + 'static,
    {
        let ns = self.ns;
        for event in events {
            let event: &'static str = event;
            let st = self.state.clone();
            let f = f.clone();
            let inbox = self.inbox.clone();
            // socketioxide calls this closure in packet order and spawns the future it
            // returns; the inbox keeps the order from there.
            self.socket.on(event, move |s: SocketRef, TryData(data): TryData<Value>, ack: AckSender, AckWanted(wanted): AckWanted| {
                let st = st.clone();
                let f = f.clone();
                inbox.admit(async move {
                    let Some(principal) = s.extensions.get::<Principal>() else { return };
                    let ctx = Ctx { socket: s.clone(), state: st.clone(), principal, ns };
                    match f(ctx, data.unwrap_or(Value::Null)).await {
                        Step::Done(result) => answer(&s, &st, ns, event, wanted, ack, result),
                        Step::Wait(later) => {
                            tokio::spawn(async move {
                                let result = later.await;
                                answer(&s, &st, ns, event, wanted, ack, result);
                            });
                        }
                    }
                })
            });
        }
    }
}

fn answer(
    s: &SocketRef,
    st: &AppState,
    ns: &'static str,
    event: &'static str,
    wanted: bool,
    ack: AckSender,
    result: Result<Value, ApiError>,
) {
    st.metrics().message(ns, result.is_ok());
    if let Err(e) = &result {
        tracing::debug!(namespace = ns, event, code = e.code, "event refused");
    }
    reply(s, event, wanted, ack, result);
}

/// One client socket's events, in the order it sent them (SPEC §6).
///
/// socketioxide spawns each event's handler as its own task, so two events of one client
/// race as soon as a handler awaits. The synchronous part of the handler closure runs in
/// packet order; there each event is admitted here. When nothing of the socket is running,
/// the event's future runs at once as the task socketioxide spawns (no extra task, no
/// allocation) and, once done, drains what arrived meanwhile; otherwise it waits in the
/// queue (boxed). An idle socket holds an empty queue and a flag: no task, no buffer.
pub struct Inbox(Mutex<InboxState>);

#[derive(Default)]
struct InboxState {
    queue: VecDeque<Job>,
    /// A task is running this socket's events (and will drain the queue).
    busy: bool,
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Inbox {
    pub fn new() -> Arc<Inbox> {
        Arc::new(Inbox(Mutex::new(InboxState::default())))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `job`'s place in the order; returns the future for socketioxide to spawn.
    pub fn admit<F>(self: &Arc<Self>, job: F) -> impl Future<Output = ()> + Send + use<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let first = {
            let mut st = self.state();
            if st.busy {
                st.queue.push_back(Box::pin(job));
                None
            } else {
                st.busy = true;
                Some(job)
            }
        };
        let inbox = self.clone();
        async move {
            if let Some(job) = first {
                run_guarded(std::pin::pin!(job)).await;
                inbox.drain().await;
            }
        }
    }

    /// Runs the queued jobs one after the other until the queue is empty.
    async fn drain(&self) {
        loop {
            let mut next = {
                let mut st = self.state();
                match st.queue.pop_front() {
                    Some(job) => job,
                    None => {
                        st.busy = false;
                        return;
                    }
                }
            };
            run_guarded(next.as_mut()).await;
        }
    }
}

/// Runs one handler; a panic in it ends that handler only (it was a bug, and is logged),
/// not the socket's later events.
async fn run_guarded<F: Future<Output = ()> + ?Sized>(mut job: Pin<&mut F>) {
    std::future::poll_fn(|cx| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.as_mut().poll(cx))) {
        Ok(p) => p,
        Err(_) => {
            tracing::error!("a Socket.IO event handler panicked");
            Poll::Ready(())
        }
    })
    .await
}

async fn join_branch(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    let branch = crate::validate::branch_id_payload(&data)?;
    ctx.state.authorize_branch(&ctx.principal, &branch).await?;
    let room = room_branch(&branch);
    ctx.socket.join(room.clone());
    Ok(json!({"branchId": branch, "room": room}))
}

async fn leave_branch(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    let branch = crate::validate::branch_id_payload(&data)?;
    ctx.socket.leave(room_branch(&branch));
    Ok(json!({"branchId": branch}))
}

async fn catch_up(ctx: Ctx, data: Value) -> Result<Value, ApiError> {
    let since = match data.get("since") {
        Some(Value::String(s)) if s.len() <= 64 => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::bad("payload must be {since: eventId}")),
    };
    let rooms: std::collections::HashSet<String> = ctx.socket.rooms().into_iter().map(|r| r.to_string()).collect();
    let ns = ctx.ns;
    let out = ctx
        .state
        .db()
        .read(move |c| {
            crate::store::events::catch_up(c, ns, &since, |company, branch| {
                rooms.contains(&room_branch(branch)) || rooms.contains(&room_company(company))
            })
        })
        .await?;
    let events: Vec<Value> = out.events.into_iter().map(|e| json!({"name": e.name, "data": e.data})).collect();
    Ok(json!({"events": events, "truncated": out.truncated}))
}
