//! A fault-injecting HTTP load balancer for the hub-cluster sync tests (issue 15): it
//! forwards each request to the next backend in turn (round robin per request, so a branch's
//! consecutive batches land on different hub processes), and replays a chosen fraction of the
//! POSTs under a path prefix (default `/sync/`) to a second backend — after the first answered
//! (a retry whose answer was lost) or at the same time (two processes racing on one batch) —
//! answering the client with the replay's answer. A backend can be marked down or swapped for
//! a restarted process; a backend that refuses connections is skipped for the next one.
//!
//! Requests and answers pass unchanged (method, path and query, headers such as
//! `Authorization`, body) but for hop-by-hop headers. Plain HTTP only: no WebSocket (nginx,
//! `common::nginx`, is the load balancer for Socket.IO).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};

/// Which requests are replayed, and how.
#[derive(Debug, Clone)]
pub struct LbConfig {
    /// Share of the POSTs under `replay_prefix` sent to a second backend too (0.0 to 1.0).
    pub replay_fraction: f64,
    pub replay_prefix: String,
    /// Replay at the same time as the first request instead of after its answer.
    pub concurrent: bool,
    /// Seed of the choice of replayed requests (the same seed, the same choices).
    pub seed: u64,
}

impl Default for LbConfig {
    fn default() -> LbConfig {
        LbConfig { replay_fraction: 0.0, replay_prefix: "/sync/".into(), concurrent: false, seed: 1 }
    }
}

struct Backend {
    addr: SocketAddr,
    down: bool,
    served: u64,
}

struct Shared {
    backends: Mutex<Vec<Backend>>,
    next: AtomicUsize,
    config: Mutex<(LbConfig, rand::rngs::StdRng)>,
    forwarded: AtomicU64,
    replayed: AtomicU64,
    client: reqwest::Client,
}

pub struct FaultLb {
    /// Where clients connect (127.0.0.1, a port chosen by the OS).
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, for `BRANCHD_UPSTREAM_URL`.
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultLb {
    /// Starts listening at once; stops when dropped.
    pub async fn start(backends: &[SocketAddr], config: LbConfig) -> FaultLb {
        assert!(!backends.is_empty(), "the load balancer needs at least one backend");
        let rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let shared = Arc::new(Shared {
            backends: Mutex::new(backends.iter().map(|&addr| Backend { addr, down: false, served: 0 }).collect()),
            next: AtomicUsize::new(0),
            config: Mutex::new((config, rng)),
            forwarded: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            client: reqwest::Client::builder().no_proxy().build().expect("http client"),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind load balancer");
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultLb { addr, base: format!("http://{addr}"), shared, task }
    }

    /// Takes backend `i` out of (or back into) the rotation.
    pub fn set_down(&self, i: usize, down: bool) {
        self.shared.backends.lock().unwrap()[i].down = down;
    }

    /// Points backend `i` at a new address (a restarted process on a new port).
    pub fn set_backend(&self, i: usize, addr: SocketAddr) {
        self.shared.backends.lock().unwrap()[i].addr = addr;
    }

    /// Changes the share of replayed POSTs from now on.
    pub fn set_replay_fraction(&self, fraction: f64) {
        self.shared.config.lock().unwrap().0.replay_fraction = fraction;
    }

    /// Client requests answered by a backend.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Replays that reached a second backend.
    pub fn replayed(&self) -> u64 {
        self.shared.replayed.load(Ordering::SeqCst)
    }

    /// Requests each backend answered (forwarded and replayed), in backend order.
    pub fn served(&self) -> Vec<u64> {
        self.shared.backends.lock().unwrap().iter().map(|b| b.served).collect()
    }
}

impl Drop for FaultLb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A backend's answer, whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self.body));
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers;
        res
    }
}

/// Hop-by-hop headers (and the ones the client library sets itself), not passed on.
fn strip(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    for name in
        [header::CONNECTION, header::TRANSFER_ENCODING, header::TE, header::TRAILER, header::UPGRADE, header::HOST, header::CONTENT_LENGTH]
    {
        h.remove(name);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
    h
}

struct Forward {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Shared {
    /// Sends `req` to backend `i`; `None` when the backend is down or refuses the connection.
    async fn send(&self, i: usize, req: &Forward) -> Option<Answer> {
        let addr = {
            let b = &self.backends.lock().unwrap()[i];
            if b.down {
                return None;
            }
            b.addr
        };
        let sent = self
            .client
            .request(req.method.clone(), format!("http://{addr}{}", req.path))
            .headers(req.headers.clone())
            .body(req.body.clone())
            .send()
            .await;
        let answer = match sent {
            Err(e) if e.is_connect() => return None,
            Err(e) => Answer { status: StatusCode::BAD_GATEWAY, headers: HeaderMap::new(), body: format!("load balancer: {e}").into() },
            Ok(res) => {
                let (status, headers) = (res.status(), strip(res.headers()));
                match res.bytes().await {
                    Ok(body) => Answer { status, headers, body },
                    Err(e) => {
                        Answer { status: StatusCode::BAD_GATEWAY, headers: HeaderMap::new(), body: format!("load balancer: {e}").into() }
                    }
                }
            }
        };
        self.backends.lock().unwrap()[i].served += 1;
        Some(answer)
    }

    /// Sends `req` to backend `first` or, when that one does not take it, the ones after it.
    async fn send_from(&self, first: usize, req: &Forward) -> Option<(usize, Answer)> {
        let n = self.backends.lock().unwrap().len();
        for k in 0..n {
            let i = (first + k) % n;
            if let Some(a) = self.send(i, req).await {
                return Some((i, a));
            }
        }
        None
    }
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 256 << 20).await else {
        return (StatusCode::BAD_REQUEST, "load balancer: unreadable body").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let replay = parts.method == Method::POST && {
        let (config, rng) = &mut *s.config.lock().unwrap();
        path.starts_with(&config.replay_prefix) && rng.r#gen::<f64>() < config.replay_fraction
    };
    let concurrent = s.config.lock().unwrap().0.concurrent;
    let req = Forward { method: parts.method, path, headers: strip(&parts.headers), body };
    let n = s.backends.lock().unwrap().len();
    let first = s.next.fetch_add(1, Ordering::SeqCst) % n;
    let (primary, second) = if replay && concurrent {
        // The replay goes to the backend after the one chosen first (not knowing yet
        // whether that one takes it).
        let (p, r) = tokio::join!(s.send_from(first, &req), s.send_from(first + 1, &req));
        (p, r.map(|(_, a)| a))
    } else {
        let p = s.send_from(first, &req).await;
        let r = match &p {
            Some((i, _)) if replay => s.send_from(i + 1, &req).await.map(|(_, a)| a),
            _ => None,
        };
        (p, r)
    };
    let Some((_, primary)) = primary else {
        return (StatusCode::BAD_GATEWAY, "load balancer: no backend took the request").into_response();
    };
    s.forwarded.fetch_add(1, Ordering::SeqCst);
    match second {
        Some(answer) => {
            s.replayed.fetch_add(1, Ordering::SeqCst);
            answer.into_response()
        }
        None => primary.into_response(),
    }
}
