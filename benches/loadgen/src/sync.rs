//! `branchd-loadgen sync`: branch → hub sync (issue 4). (a) Drain: the branch builds a backlog
//! of --events events while its hub is down, then the hub starts and the time until the
//! branch's `/health` shows `sync.pending == 0` gives the drain rate. (b) Online latency: order
//! POSTed at the branch → `newOrder` received by a company_owner's Socket.IO client on the hub.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::clock::now_ns;
use crate::printlat::quantile;
use crate::proto::{self, Layout, NsAnswer};
use crate::server::{self, Kind, Server, Setup};

const MAX_EVENTS: usize = 2_000_000;
const MAX_ORDERS: usize = 100_000;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "branchd-loadgen sync",
    about = "Branch → hub sync: backlog drain rate and online POST → newOrder-at-hub latency",
    long_about = "Makes a hub data directory (company, branch, `uplink create`), starts the branch \
with BRANCHD_UPSTREAM_URL pointing at a closed port, creates --events events on the branch \
(PUT /api/availability/B/product/item-N, --concurrency in flight) while the hub is down and \
records the branch's RSS and /health latency meanwhile, then starts the hub on that port and \
polls the branch's /health every 100 ms until sync.pending == 0. Then a company_owner's \
Socket.IO client connects to the hub's /orders namespace and --orders orders are POSTed to the \
branch at --rate orders/s; the latency is from just before the POST to `newOrder` at the hub \
client. Writes OUT/sync.json.\n\n\
Example:\n  branchd-loadgen sync --events 100000 --orders 500 --rate 10"
)]
pub struct SyncArgs {
    /// The branchd binary (a release build).
    #[arg(long, default_value = "target/release/branchd")]
    pub branchd: PathBuf,
    /// Events to create on the branch while the hub is down (0: skip the drain).
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// PUTs in flight while creating the backlog.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// At most this many seconds for the drain.
    #[arg(long, default_value_t = 900.0)]
    pub drain_timeout_secs: f64,
    /// Orders for the online-latency phase (0: skip it).
    #[arg(long, default_value_t = 500)]
    pub orders: usize,
    /// Orders per second in the online-latency phase.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// At most this many seconds to wait for outstanding newOrders after the last POST.
    #[arg(long, default_value_t = 30.0)]
    pub grace_secs: f64,
    /// Where the data directories go (default: OUT/scratch); e.g. /dev/shm.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Output directory: sync.json and both servers' logs.
    #[arg(long, default_value = "target/loadgen-sync")]
    pub out: PathBuf,
    #[arg(long, default_value = "loadgen-secret-0123456789abcdef")]
    pub jwt_secret: String,
}

pub async fn run(a: SyncArgs) -> ExitCode {
    match run_inner(a).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("branchd-loadgen sync: {e}");
            ExitCode::from(2)
        }
    }
}

async fn health_json(port: u16) -> Option<Value> {
    server::health(port).await.and_then(|b| serde_json::from_str(&b).ok())
}

async fn pending(port: u16) -> Option<i64> {
    health_json(port).await.and_then(|v| v["sync"]["pending"].as_i64())
}

async fn run_inner(a: SyncArgs) -> Result<ExitCode, String> {
    if a.events > MAX_EVENTS || a.orders > MAX_ORDERS || a.concurrency == 0 || a.concurrency > 4096 || a.rate <= 0.0 {
        return Err(format!("--events ≤ {MAX_EVENTS}, --orders ≤ {MAX_ORDERS}, --concurrency 1..=4096, --rate > 0"));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let scratch = a.scratch.clone().unwrap_or_else(|| a.out.join("scratch"));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let layout = Layout { branches: 1, companies: 1, owner_every: 0, polling_every: 0 };
    let (company, branch) = (Layout::company_id(0), Layout::branch_id(0));
    let setup = |tag: &str| Setup {
        branchd: &a.branchd,
        reference_dir: &a.out,
        node: "node",
        secret: &a.jwt_secret,
        layout,
        scratch: &scratch,
        log_dir: &a.out,
        tag: tag.into(),
        serve_args: Vec::new(),
        env: Vec::new(),
        port: None,
        data_dir: None,
    };

    // The hub's data directory and the uplink credential, before anything runs.
    let mut hub_setup = setup("hub");
    let hub_dir = server::prepare_branchd_dir(&hub_setup)?;
    let out = server::admin(&a.branchd, &hub_dir, &a.jwt_secret, &["uplink", "create", "--company", &company, "--branch", &branch])?;
    let credential = out.lines().rev().map(str::trim).find(|l| !l.is_empty()).ok_or("uplink create printed nothing")?.to_string();
    let hub_port = server::free_port().map_err(|e| format!("no free port: {e}"))?;
    hub_setup.data_dir = Some(hub_dir);
    hub_setup.port = Some(hub_port);
    hub_setup.serve_args = vec!["--role".into(), "hub".into()];

    let mut br_setup = setup("branch");
    br_setup.env =
        vec![("BRANCHD_UPSTREAM_URL".into(), format!("http://127.0.0.1:{hub_port}")), ("BRANCHD_UPSTREAM_TOKEN".into(), credential)];
    let (mut br, _) = Server::start(Kind::Branchd, &br_setup).await?;
    let mut hub: Option<Server> = None;
    let res = measure(&a, &mut br, &mut hub, &hub_setup).await;
    if let Some(mut h) = hub {
        h.stop().await;
    }
    br.stop().await;
    let summary = res?;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    let path = a.out.join("sync.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap_or_default()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("sync: wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

async fn measure(a: &SyncArgs, br: &mut Server, hub_slot: &mut Option<Server>, hub_setup: &Setup<'_>) -> Result<Value, String> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(a.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let (company, branch) = (Layout::company_id(0), Layout::branch_id(0));
    let token = crate::jwt::sign(&a.jwt_secret, "lg-sync", "company_owner", &company, None, 86_400);
    let base = format!("http://{}", br.addr());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = json!({"events": a.events, "concurrency": a.concurrency});
    out["branch_rss_start_kib"] = server::rss_kib(br.pid).0.into();
    out["branch_health_start"] = health_json(br.port).await.map(|v| v["sync"].clone()).unwrap_or_default();

    if a.events > 0 {
        // First contact: until the branch has reached its hub once it does not know its
        // stream (`/health` shows `sync.pending: 0` however many events wait), so start the
        // hub, wait for the hello, and stop it again (keeping its data).
        let (mut hub, _) = Server::start(Kind::Branchd, hub_setup).await?;
        let t = Instant::now();
        let mut contact = None;
        for _ in 0..300 {
            if health_json(br.port).await.is_some_and(|v| v["sync"]["branchId"].is_string()) {
                contact = Some(t.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        hub.keep_data_dir();
        hub.stop().await;
        out["first_contact_s"] = contact.into();
        if contact.is_none() {
            return Err("the branch did not reach the hub within 30 s".into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;

        // (a) Backlog while the hub is down, with a monitor of RSS and /health latency.
        let stop = Arc::new(AtomicBool::new(false));
        let (bpid, bport) = (br.pid, br.port);
        let mon = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut rss_max, mut h_lat, mut h_fail) = (0u64, Vec::new(), 0u64);
                for _ in 0..36_000 {
                    if stop.load(Relaxed) {
                        break;
                    }
                    rss_max = rss_max.max(server::rss_kib(bpid).0);
                    let t = Instant::now();
                    if server::health_ok(bport).await {
                        h_lat.push(t.elapsed().as_secs_f64() * 1e3);
                    } else {
                        h_fail += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                (rss_max, h_lat, h_fail)
            })
        };
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let put_ms: Arc<std::sync::Mutex<Vec<f64>>> = Arc::default();
        let t0 = Instant::now();
        let mut set: JoinSet<()> = JoinSet::new();
        for i in 0..a.events {
            while set.len() >= a.concurrency {
                let _ = set.join_next().await;
            }
            let req = http
                .put(format!("{base}/api/availability/{branch}/product/item-{i}"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(json!({"available": i % 2 == 0}).to_string());
            let (ok, failed, put_ms) = (ok.clone(), failed.clone(), put_ms.clone());
            set.spawn(async move {
                let t = Instant::now();
                let good = match req.send().await {
                    Ok(r) => {
                        let s = r.status().is_success();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => false,
                };
                if good {
                    ok.fetch_add(1, Relaxed)
                } else {
                    failed.fetch_add(1, Relaxed)
                };
                if i % 10 == 0
                    && let Ok(mut v) = put_ms.lock()
                {
                    v.push(t.elapsed().as_secs_f64() * 1e3);
                }
            });
            if i % 20_000 == 0 && i > 0 {
                eprintln!("sync: {i} events created, {:.0}/s", i as f64 / t0.elapsed().as_secs_f64());
            }
        }
        while set.join_next().await.is_some() {}
        let create_secs = t0.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        let (rss_max, mut h_lat, h_fail) = mon.await.map_err(|e| e.to_string())?;
        h_lat.sort_by(f64::total_cmp);
        let mut put = put_ms.lock().map(|v| v.clone()).unwrap_or_default();
        put.sort_by(f64::total_cmp);
        let backlog = pending(br.port).await.unwrap_or(-1);
        out["create"] = json!({
            "ok": ok.load(Relaxed), "failed": failed.load(Relaxed), "secs": create_secs,
            "events_per_s": ok.load(Relaxed) as f64 / create_secs,
            "put_p50_ms": quantile(&put, 0.5), "put_p99_ms": quantile(&put, 0.99), "put_max_ms": put.last().copied().unwrap_or(0.0),
            "health_probes_ok": h_lat.len(), "health_probes_failed": h_fail,
            "health_p50_ms": quantile(&h_lat, 0.5), "health_max_ms": h_lat.last().copied().unwrap_or(0.0),
            "branch_rss_max_during_kib": rss_max,
        });
        out["backlog_pending"] = backlog.into();
        out["branch_rss_after_backlog_kib"] = server::rss_kib(br.pid).0.into();
        out["branch_health_before_hub"] =
            health_json(br.port).await.map(|v| json!({"upstream": v["upstream"], "sync": v["sync"]})).unwrap_or_default();
        eprintln!("sync: backlog {backlog} events in {create_secs:.1} s; starting the hub on {}", hub_setup.port.unwrap_or(0));

        // Drain.
        let t_spawn = Instant::now();
        let (hub, hub_cold) = Server::start(Kind::Branchd, hub_setup).await?;
        let hub_pid = hub.pid;
        *hub_slot = Some(hub);
        let t_ready = Instant::now();
        let mut first_progress: Option<f64> = None;
        let mut done: Option<f64> = None;
        let (mut br_rss_max, mut hub_rss_max) = (0u64, 0u64);
        let mut trace = Vec::new();
        let polls = (a.drain_timeout_secs * 10.0).ceil() as u64;
        for k in 0..polls {
            let p = pending(br.port).await;
            let t = t_spawn.elapsed().as_secs_f64();
            br_rss_max = br_rss_max.max(server::rss_kib(br.pid).0);
            hub_rss_max = hub_rss_max.max(server::rss_kib(hub_pid).0);
            if let Some(p) = p {
                if first_progress.is_none() && p < backlog {
                    first_progress = Some(t);
                }
                if k % 10 == 0 {
                    trace.push(json!([(t * 10.0).round() / 10.0, p]));
                }
                if p == 0 {
                    done = Some(t);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready_at = t_ready.duration_since(t_spawn).as_secs_f64();
        out["drain"] = json!({
            "hub_cold_start_ms": hub_cold,
            "hub_ready_s": ready_at,
            "first_progress_s": first_progress,
            "pending_zero_s_from_hub_spawn": done,
            "events_per_s_from_hub_spawn": done.map(|d| backlog as f64 / d),
            "events_per_s_from_first_progress": match (done, first_progress) { (Some(d), Some(f)) if d > f => Some(backlog as f64 / (d - f)), _ => None },
            "branch_rss_max_kib": br_rss_max,
            "hub_rss_max_kib": hub_rss_max,
            "branch_rss_end_kib": server::rss_kib(br.pid).0,
            "hub_rss_end_kib": server::rss_kib(hub_pid).0,
            "branch_sync_after": health_json(br.port).await.map(|v| v["sync"].clone()).unwrap_or_default(),
            "trace_s_pending": trace,
        });
        eprintln!("sync: drained {backlog} in {done:?} s from hub spawn (first progress {first_progress:?} s)");
        if done.is_none() {
            return Ok(out);
        }
    }

    if a.orders > 0 {
        if hub_slot.is_none() {
            let (hub, _) = Server::start(Kind::Branchd, hub_setup).await?;
            *hub_slot = Some(hub);
            // Let the relay notice the hub (it probes the port every 2 s).
            for _ in 0..100 {
                if health_json(br.port).await.is_some_and(|v| v["sync"]["online"] == true) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let hub_addr = hub_slot.as_ref().map(Server::addr).ok_or("no hub")?;
        let hub_pid = hub_slot.as_ref().map(|h| h.pid).unwrap_or(0);
        out["online"] = online_latency(a, &http, &base, hub_addr, &token, &branch).await?;
        out["online"]["branch_rss_end_kib"] = server::rss_kib(br.pid).0.into();
        out["online"]["hub_rss_end_kib"] = server::rss_kib(hub_pid).0.into();
    }
    Ok(out)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A Socket.IO v4 client on `/orders` of `addr` (WebSocket transport).
async fn sio_connect(addr: std::net::SocketAddr, token: &str) -> Result<Ws, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("hub connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.map_err(|e| format!("hub websocket: {e}"))?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
        other => return Err(format!("no Engine.IO open from the hub: {other:?}")),
    }
    ws.send(Message::text(format!("40/orders,{{\"token\":\"{token}\"}}"))).await.map_err(|e| e.to_string())?;
    for _ in 0..10 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match proto::ns_answer(&t) {
                Some(NsAnswer::Accepted(_)) => return Ok(ws),
                Some(NsAnswer::Refused(_, body)) => return Err(format!("hub refused /orders: {body}")),
                None if t.as_str() == "2" => ws.send(Message::text("3")).await.map_err(|e| e.to_string())?,
                None => {}
            },
            other => return Err(format!("hub /orders handshake: {other:?}")),
        }
    }
    Err("hub /orders: no answer to CONNECT".into())
}

async fn online_latency(
    a: &SyncArgs,
    http: &reqwest::Client,
    base: &str,
    hub: std::net::SocketAddr,
    token: &str,
    branch: &str,
) -> Result<Value, String> {
    let mut ws = tokio::time::timeout(Duration::from_secs(10), sio_connect(hub, token)).await.map_err(|_| "hub handshake timed out")??;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, u64)>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let s = t.as_str();
                if s == "2" {
                    if ws.send(Message::text("3")).await.is_err() {
                        break;
                    }
                } else if let Some((phase, seq, t0)) = proto::new_order(s)
                    && phase == 1
                {
                    let _ = tx.send((seq, now_ns().saturating_sub(t0)));
                }
            }
        }
    });
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let start = tokio::time::Instant::now();
    let mut set: JoinSet<bool> = JoinSet::new();
    for seq in 0..a.orders as u64 {
        tokio::time::sleep_until(start + period.mul_f64(seq as f64)).await;
        let req = http.post(format!("{base}/api/orders")).bearer_auth(token).header("content-type", "application/json");
        let branch = branch.to_string();
        set.spawn(async move {
            let t = now_ns();
            let body = json!({
                "branchId": branch, "type": "takeaway",
                "items": [{"name": "Chicken shawarma", "quantity": 2, "unitPrice": 650}],
                "notes": proto::notes_tag(1, seq, t),
            });
            match req.body(body.to_string()).send().await {
                Ok(r) => {
                    let ok = r.status().as_u16() == 201;
                    let _ = r.bytes().await;
                    ok
                }
                Err(_) => false,
            }
        });
    }
    let (mut posted, mut failed) = (0u64, 0u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        if matches!(r, Ok(true)) { posted += 1 } else { failed += 1 }
    }
    failed += set.len() as u64;
    set.abort_all();
    let mut seen = std::collections::BTreeSet::new();
    let mut lat = Vec::new();
    let mut dup = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(a.grace_secs);
    while (seen.len() as u64) < posted {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((seq, ns))) => {
                if seen.insert(seq) {
                    lat.push(ns as f64 / 1e6);
                } else {
                    dup += 1;
                }
            }
            _ => break,
        }
    }
    while let Ok((seq, _)) = rx.try_recv() {
        if !seen.insert(seq) {
            dup += 1;
        }
    }
    reader.abort();
    lat.sort_by(f64::total_cmp);
    Ok(json!({
        "orders": a.orders, "rate": a.rate, "posted": posted, "post_failed": failed,
        "received_at_hub": seen.len(), "received_twice": dup,
        "p50_ms": quantile(&lat, 0.5), "p90_ms": quantile(&lat, 0.9), "p99_ms": quantile(&lat, 0.99),
        "max_ms": lat.last().copied().unwrap_or(0.0),
    }))
}
