//! The hub-cluster test harness on its own (issue 15): the real PostgreSQL of
//! `common::postgres`, the real nginx of `common::nginx` running the documented
//! `packaging/nginx/branchd-hub-cluster.conf`, and the fault-injecting load balancer of
//! `common::lb`, in front of tiny axum backends that answer their own name and record what
//! reached them.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;
use crate::common::lb::{FaultLb, LbConfig};
use crate::common::nginx::{self, Balance};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    forwarded_for: Option<String>,
    body: String,
    at: Instant,
}

/// An HTTP server on 127.0.0.1 that answers every request with its name (POSTs after
/// `post_delay`) and records them.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn backend(name: &'static str, post_delay: Duration) -> Backend {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        async move {
            let at = Instant::now();
            let (parts, body) = req.into_parts();
            let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            log.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                path: parts.uri.to_string(),
                auth: header("authorization"),
                forwarded_for: header("x-forwarded-for"),
                body: String::from_utf8_lossy(&body).into(),
                at,
            });
            if parts.method == axum::http::Method::POST {
                tokio::time::sleep(post_delay).await;
            }
            name
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Backend { addr, seen, task }
}

/// A client whose connections come from `from` (any 127.x.y.z works on Linux's loopback).
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().local_address(IpAddr::from(from)).build().unwrap()
}

async fn name_of(client: &reqwest::Client, url: &str) -> String {
    let res = client.get(url).send().await.expect("request through the load balancer");
    assert_eq!(res.status(), 200, "through the load balancer: {url}");
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gives_each_test_a_database_of_its_own() {
    let Some(a) = common::postgres::database("harness one") else { return };
    let b = common::postgres::database("harness one").expect("the server is up");
    assert_ne!(a.name(), b.name(), "the same name asked twice gives two databases");
    assert_eq!(a.port(), b.port(), "one server per test process");
    assert!(a.url().starts_with("postgres://postgres@127.0.0.1:"), "{}", a.url());
    assert!(a.url().ends_with(&format!("/{}", a.name())), "{}", a.url());
    assert_eq!(a.psql("SELECT current_database()"), a.name());

    a.psql("CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two')");
    assert_eq!(a.psql("SELECT id, v FROM t ORDER BY id"), "1|one\n2|two");
    let err = b.try_psql("SELECT * FROM t").expect_err("b has no table t");
    assert!(err.contains("does not exist"), "{err}");
    let err = a.try_psql("INSERT INTO t VALUES (1, 'again')").expect_err("primary key");
    assert!(err.contains("duplicate key"), "{err}");

    // Durable and sized as documented.
    assert_eq!(a.psql("SHOW fsync"), "on");
    assert_eq!(a.psql("SHOW synchronous_commit"), "on");
    assert_eq!(a.psql("SHOW max_connections"), "200");
    assert_eq!(a.psql("SHOW listen_addresses"), "127.0.0.1");

    // The server process is not root, even when the tests are: its data directory (which the
    // server must own) is not root's. (A backend's pid from psql is gone once psql exits.)
    let data = a.psql("SELECT current_setting('data_directory')");
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).expect("the data directory is on this machine"));
    assert_ne!(uid, 0, "PostgreSQL runs unprivileged");

    // The other programs of the same installation, e.g. for pg_dump in a backup test.
    let ready = std::process::Command::new(common::postgres::tool("pg_isready").expect("pg_isready"))
        .args(["-h", "127.0.0.1", "-p", &a.port().to_string()])
        .output()
        .unwrap();
    assert!(ready.status.success(), "{ready:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_round_robin_alternates_and_passes_requests_on() {
    let (a, b) = (backend("a", Duration::ZERO).await, backend("b", Duration::ZERO).await);
    let Some(lb) = nginx::start(&[a.addr, b.addr], Balance::RoundRobin) else { return };
    let config = lb.config();
    assert!(!config.lines().any(|l| l.trim().starts_with("hash ")), "{config}");
    assert!(config.contains(&format!("server {} max_fails=3 fail_timeout=10s;", a.addr)), "{config}");
    let client = client_from([127, 0, 0, 1]);
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(name_of(&client, &format!("{}/health", lb.base)).await);
    }
    assert!(names.windows(2).all(|w| w[0] != w[1]), "round robin alternates: {names:?}\n{}", lb.access_log());
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 5, "{names:?}");

    // Method, path, query, Authorization and body arrive; the client's address in X-Forwarded-For.
    let res = client.post(format!("{}/sync/push?x=1", lb.base)).bearer_auth("tok-1").body("batch-1").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let posted: Vec<Seen> = a.seen().into_iter().chain(b.seen()).filter(|s| s.method == "POST").collect();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(
        (posted[0].path.as_str(), posted[0].auth.as_deref(), posted[0].body.as_str()),
        ("/sync/push?x=1", Some("Bearer tok-1"), "batch-1")
    );
    assert_eq!(posted[0].forwarded_for.as_deref(), Some("127.0.0.1"));

    let addr = lb.addr;
    lb.stop();
    assert!(std::net::TcpStream::connect(addr).is_err(), "stopped nginx no longer listens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_sticky_keeps_each_client_address_on_one_backend() {
    let (a, b) = (backend("a", Duration::ZERO).await, backend("b", Duration::ZERO).await);
    let Some(lb) = nginx::start(&[a.addr, b.addr], Balance::Sticky) else { return };
    let mut by_client = Vec::new();
    for last in 2..=21u8 {
        let client = client_from([127, 0, 0, last]);
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(name_of(&client, &format!("{}/socket.io/?EIO=4&transport=polling", lb.base)).await);
        }
        assert!(names.iter().all(|n| *n == names[0]), "127.0.0.{last} sticks to one backend: {names:?}\n{}", lb.access_log());
        by_client.push(names[0].clone());
    }
    // Whole addresses are hashed: clients of one /24 spread over the backends.
    assert!(by_client.contains(&"a".to_string()) && by_client.contains(&"b".to_string()), "{by_client:?}");

    // The documented rolling update: a marks `down`, everyone on b; back up, everyone back
    // where they were (the hash keeps its places).
    let names = async || {
        let mut names = Vec::new();
        for last in 2..=21u8 {
            names.push(name_of(&client_from([127, 0, 0, last]), &lb.base).await);
        }
        names
    };
    lb.set_down(&[0]);
    assert!(lb.config().contains(&format!("server {} max_fails=3 fail_timeout=10s down;", a.addr)), "{}", lb.config());
    assert!(names().await.iter().all(|n| n == "b"), "{}", lb.access_log());
    lb.set_down(&[]);
    assert_eq!(names().await, by_client, "{}", lb.access_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ip_hash_sticks_by_the_first_three_octets() {
    let (a, b) = (backend("a", Duration::ZERO).await, backend("b", Duration::ZERO).await);
    let Some(lb) = nginx::start(&[a.addr, b.addr], Balance::IpHash) else { return };
    assert!(lb.config().contains("ip_hash;"), "{}", lb.config());
    let first = name_of(&client_from([127, 0, 0, 2]), &lb.base).await;
    for last in 2..=11u8 {
        let client = client_from([127, 0, 0, last]);
        for _ in 0..3 {
            // Why the documented config hashes whole addresses instead: one /24, one backend.
            assert_eq!(name_of(&client, &lb.base).await, first, "127.0.0.{last}\n{}", lb.access_log());
        }
    }
}

/// A backend that takes a WebSocket upgrade and then echoes bytes; it answers 400 when the
/// upgrade headers did not arrive.
async fn upgrade_echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut conn).await.to_ascii_lowercase();
                if head.contains("\r\nupgrade: websocket\r\n") && head.contains("\r\nconnection: upgrade\r\n") {
                    conn.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await.unwrap();
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                } else {
                    let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                }
            });
        }
    });
    (addr, task)
}

/// Reads an HTTP head, up to and with its blank line.
async fn read_head(conn: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        if conn.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_websocket_upgrades_through() {
    let (backend, task) = upgrade_echo().await;
    let Some(lb) = nginx::start(&[backend], Balance::Sticky) else { return };
    let mut conn = tokio::net::TcpStream::connect(lb.addr).await.unwrap();
    conn.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: hq.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}\n{}", lb.error_log());
    for word in ["ping", "pong, both ways"] {
        conn.write_all(word.as_bytes()).await.unwrap();
        let mut back = vec![0u8; word.len()];
        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut back)).await.expect("echo in time").unwrap();
        assert_eq!(back, word.as_bytes());
    }
    task.abort();
}

async fn post(client: &reqwest::Client, url: String, body: &str) -> String {
    let res = client.post(url).bearer_auth("uplink-secret").body(body.to_string()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_lb_alternates_and_replays_sync_posts() {
    let (a, b) = (backend("a", Duration::ZERO).await, backend("b", Duration::ZERO).await);
    let lb = FaultLb::start(&[a.addr, b.addr], LbConfig { replay_fraction: 1.0, ..LbConfig::default() }).await;
    assert!(lb.addr.ip().is_loopback() && lb.base.ends_with(&lb.addr.port().to_string()));
    let client = client_from([127, 0, 0, 1]);
    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(name_of(&client, &format!("{}/sync/feed?after=0", lb.base)).await);
    }
    assert_eq!(names, ["a", "b", "a", "b", "a", "b"], "round robin per request; GETs are not replayed");
    assert_eq!((lb.forwarded(), lb.replayed()), (6, 0));

    // A replayed POST reaches both backends unchanged; the client gets the replay's answer.
    let answer = post(&client, format!("{}/sync/push", lb.base), "batch-1").await;
    assert_eq!(answer, "b", "the first went to a (its turn), the replay to b");
    for s in [&a, &b] {
        let posts: Vec<Seen> = s.seen().into_iter().filter(|s| s.method == "POST").collect();
        assert_eq!(posts.len(), 1, "{posts:?}");
        assert_eq!(
            (posts[0].path.as_str(), posts[0].auth.as_deref(), posts[0].body.as_str()),
            ("/sync/push", Some("Bearer uplink-secret"), "batch-1")
        );
    }
    assert_eq!((lb.forwarded(), lb.replayed()), (7, 1));
    // Outside the prefix nothing is replayed.
    post(&client, format!("{}/api/orders", lb.base), "order").await;
    assert_eq!((lb.forwarded(), lb.replayed()), (8, 1));
    assert_eq!(lb.served(), [4, 5]);

    // A fraction, the same for the same seed.
    lb.set_replay_fraction(0.3);
    for i in 0..100 {
        post(&client, format!("{}/sync/push", lb.base), &format!("batch-{i}")).await;
    }
    let replayed = lb.replayed() - 1;
    assert!((15..=45).contains(&replayed), "about 30 of 100 replayed: {replayed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_lb_replays_after_the_answer_or_at_once() {
    let delay = Duration::from_millis(300);
    for concurrent in [false, true] {
        let (a, b) = (backend("a", delay).await, backend("b", delay).await);
        let lb = FaultLb::start(&[a.addr, b.addr], LbConfig { replay_fraction: 1.0, concurrent, ..LbConfig::default() }).await;
        post(&client_from([127, 0, 0, 1]), format!("{}/sync/push", lb.base), "batch").await;
        let (first, second) = (a.seen()[0].at, b.seen()[0].at);
        if concurrent {
            assert!(second.duration_since(first) < delay && first.duration_since(second) < delay, "both at once");
        } else {
            assert!(second >= first + delay, "the replay after the first answer: {:?}", second.duration_since(first));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_lb_skips_backends_down_or_refusing() {
    let (a, b) = (backend("a", Duration::ZERO).await, backend("b", Duration::ZERO).await);
    let (_held, refusing) = common::closed_port();
    let lb = FaultLb::start(&[a.addr, refusing, b.addr], LbConfig::default()).await;
    let client = client_from([127, 0, 0, 1]);
    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(name_of(&client, &lb.base).await);
    }
    // Turns: a, (refused → b), b, a, (refused → b), b.
    assert_eq!(names, ["a", "b", "b", "a", "b", "b"]);

    lb.set_down(2, true);
    lb.set_backend(1, a.addr); // the refusing one "restarted" as a
    for _ in 0..4 {
        assert_eq!(name_of(&client, &lb.base).await, "a");
    }
    lb.set_down(0, true);
    lb.set_down(1, true);
    let res = client.get(&lb.base).send().await.unwrap();
    assert_eq!(res.status(), 502, "no backend left");
    assert_eq!(lb.forwarded(), 10);
}

/// A Socket.IO connect to `/orders` over Engine.IO long-polling alone: `Err` with the HTTP
/// status and body when a request of the session is refused.
async fn polling_connect(client: &reqwest::Client, base: &str, token: &str) -> Result<(), String> {
    let open = client.get(format!("{base}/socket.io/?EIO=4&transport=polling")).send().await.unwrap().text().await.unwrap();
    let sid = serde_json::from_str::<serde_json::Value>(&open[1..]).unwrap()["sid"].as_str().unwrap().to_string();
    let url = format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}");
    let refused = |status: reqwest::StatusCode, body: String| format!("HTTP {status}: {body}");
    let res = client.post(&url).body(format!("40/orders,{{\"token\":\"{token}\"}}")).send().await.unwrap();
    if res.status() != 200 {
        return Err(refused(res.status(), res.text().await.unwrap()));
    }
    for _ in 0..5 {
        let res = client.get(&url).send().await.unwrap();
        let (status, reply) = (res.status(), res.text().await.unwrap());
        if status != 200 {
            return Err(refused(status, reply));
        }
        if reply.split('\u{1e}').any(|p| p.starts_with("40/orders,")) {
            return Ok(());
        }
    }
    Err("no connect reply".into())
}

/// A WebSocket text frame from the client (masked, as clients must).
fn ws_frame(text: &str) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![0x81u8];
    match text.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend((n as u16).to_be_bytes());
        }
    }
    f.extend(mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The next text frame from the server (unmasked, not fragmented: Engine.IO's packets).
async fn ws_read(conn: &mut tokio::net::TcpStream) -> String {
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).await.expect("a frame");
    let len = match head[1] & 0x7f {
        126 => usize::from(conn.read_u16().await.unwrap()),
        127 => conn.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.unwrap();
    String::from_utf8_lossy(&body).into()
}

/// A Socket.IO connect to `/orders` over WebSocket alone (no polling first).
async fn websocket_connect(addr: SocketAddr, token: &str) -> Result<(), String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: hq.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut conn).await;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(head);
    }
    let open = ws_read(&mut conn).await;
    if !open.starts_with("0{") {
        return Err(format!("no open packet: {open}"));
    }
    conn.write_all(&ws_frame(&format!("40/orders,{{\"token\":\"{token}\"}}"))).await.unwrap();
    for _ in 0..5 {
        let packet = tokio::time::timeout(Duration::from_secs(10), ws_read(&mut conn)).await.map_err(|_| "no reply in 10 s".to_string())?;
        if packet.starts_with("40/orders,") {
            return Ok(());
        }
    }
    Err("no connect reply".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_config_carries_socket_io_to_two_branchd_processes() {
    // Two real branchd servers with the same secret: what the cluster's processes look like
    // from nginx (each keeps its own Engine.IO sessions).
    let (s1, s2) = (common::TestServer::start().await, common::TestServer::start().await);
    let token = s1.token("company_owner", Some("co-1"), None);
    let Some(sticky) = nginx::start(&[s1.addr, s2.addr], Balance::Sticky) else { return };
    let round_robin = nginx::start(&[s1.addr, s2.addr], Balance::RoundRobin).expect("nginx is installed");

    // Long-polling works with sticky sessions, from any client address...
    for last in 2..=5u8 {
        let client = client_from([127, 0, 0, last]);
        polling_connect(&client, &sticky.base, &token).await.unwrap_or_else(|e| panic!("127.0.0.{last}: {e}\n{}", sticky.access_log()));
    }
    // ...and breaks without them: the session's next request reaches the other process.
    let err = polling_connect(&client_from([127, 0, 0, 1]), &round_robin.base, &token).await.expect_err("round robin breaks long-polling");
    assert!(err.starts_with("HTTP 400"), "{err}\n{}", round_robin.access_log());

    // WebSocket-only clients need no stickiness: one connection for the whole session, on
    // either process.
    let before = round_robin.access_log().len();
    for _ in 0..4 {
        websocket_connect(round_robin.addr, &token).await.unwrap_or_else(|e| panic!("{e}\n{}", round_robin.error_log()));
    }
    // (nginx logs a WebSocket when it closes.)
    common::eventually("WebSockets logged on both processes", Duration::from_secs(10), || async {
        let log = round_robin.access_log()[before..].to_string();
        if log.contains(&s1.addr.to_string()) && log.contains(&s2.addr.to_string()) { Ok(()) } else { Err(log) }
    })
    .await;
    websocket_connect(sticky.addr, &token).await.expect("WebSocket through the sticky config");
}
