//! `branchd-loadgen sync`: branch → hub sync (issue 4). (a) Drain: each of --branches branch
//! appliances builds a backlog of --events events while its hub is down, then the hub (or
//! --hubs processes on one PostgreSQL database, issue 15) starts and the time until every
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
    /// Events to create on each branch while the hub is down (0: skip the drain).
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Branch appliances (lg-br-0..N-1, one company), each with its own uplink credential
    /// and backlog of --events; they all drain at once.
    #[arg(long, default_value_t = 1)]
    pub branches: usize,
    /// The hub on PostgreSQL: every hub process and the admin CLI get
    /// BRANCHD_DATABASE_URL=this (an empty database). Default: SQLite in the hub's data dir.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Hub processes (more than 1 needs --database-url): branch i's upstream is hub i mod K.
    #[arg(long, default_value_t = 1)]
    pub hubs: usize,
    /// PostgreSQL's postmaster pid: its CPU and its backends' during the drain is reported.
    #[arg(long)]
    pub db_pid: Option<u32>,
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
    if !(1..=200).contains(&a.branches) || !(1..=16).contains(&a.hubs) || (a.hubs > 1 && a.database_url.is_none()) {
        return Err("--branches 1..=200, --hubs 1..=16, and more than one hub needs --database-url".into());
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let scratch = a.scratch.clone().unwrap_or_else(|| a.out.join("scratch"));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let layout = Layout { branches: a.branches, companies: 1, owner_every: 0, polling_every: 0 };
    let company = Layout::company_id(0);
    let db_env: Vec<(String, String)> = match &a.database_url {
        Some(u) => vec![("BRANCHD_ROLE".into(), "hub".into()), ("BRANCHD_DATABASE_URL".into(), u.clone())],
        None => Vec::new(),
    };
    let setup = |tag: String| Setup {
        branchd: &a.branchd,
        reference_dir: &a.out,
        node: "node",
        secret: &a.jwt_secret,
        layout,
        scratch: &scratch,
        log_dir: &a.out,
        tag,
        serve_args: Vec::new(),
        env: Vec::new(),
        port: None,
        data_dir: None,
    };

    // The hub's data (company, branches, one uplink credential per branch), before anything
    // runs; on PostgreSQL through the first hub's admin CLI, the others get empty data dirs.
    let mut hub_setups = Vec::new();
    let mut credentials = Vec::new();
    for h in 0..a.hubs {
        let mut hs = setup(format!("hub{h}"));
        hs.env = db_env.clone();
        let dir = if h == 0 {
            let dir = server::prepare_branchd_dir(&hs)?;
            for b in 0..a.branches {
                let args = ["uplink", "create", "--company", &company, "--branch", &Layout::branch_id(b)];
                let out = server::admin_env(&a.branchd, &dir, &a.jwt_secret, &db_env, &args)?;
                credentials
                    .push(out.lines().rev().map(str::trim).find(|l| !l.is_empty()).ok_or("uplink create printed nothing")?.to_string());
            }
            dir
        } else {
            let dir = scratch.join(format!("branchd-{}-hub{h}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            dir
        };
        hs.data_dir = Some(dir);
        hs.port = Some(server::free_port().map_err(|e| format!("no free port: {e}"))?);
        hs.serve_args = vec!["--role".into(), "hub".into()];
        hub_setups.push(hs);
    }

    let mut brs = Vec::new();
    let mut res = Ok(Value::Null);
    for (b, credential) in credentials.into_iter().enumerate() {
        let mut bs = setup(format!("branch{b}"));
        let started = async {
            bs.data_dir = Some(server::prepare_branch_dir(&bs, b)?);
            let hub_port = hub_setups[b % a.hubs].port.unwrap_or(0);
            bs.env = vec![
                ("BRANCHD_UPSTREAM_URL".into(), format!("http://127.0.0.1:{hub_port}")),
                ("BRANCHD_UPSTREAM_TOKEN".into(), credential),
            ];
            Server::start(Kind::Branchd, &bs).await
        };
        match started.await {
            Ok((br, _)) => brs.push(br),
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    let mut hubs: Vec<Server> = Vec::new();
    if res.is_ok() {
        res = measure(&a, &mut brs, &mut hubs, &hub_setups).await;
    }
    for mut h in hubs {
        h.stop().await;
    }
    for mut br in brs {
        br.stop().await;
    }
    let summary = res?;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    let path = a.out.join("sync.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap_or_default()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("sync: wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

async fn start_hubs(hub_setups: &[Setup<'_>], hubs: &mut Vec<Server>) -> Result<f64, String> {
    let mut cold: f64 = 0.0;
    for hs in hub_setups {
        let (h, c) = Server::start(Kind::Branchd, hs).await?;
        hubs.push(h);
        cold = cold.max(c);
    }
    Ok(cold)
}

async fn stop_hubs(hubs: &mut Vec<Server>) {
    for mut h in hubs.drain(..) {
        h.keep_data_dir();
        h.stop().await;
    }
}

/// Every branch's `sync.pending` (None where `/health` did not answer).
async fn pendings(brs: &[Server]) -> Vec<Option<i64>> {
    futures_util::future::join_all(brs.iter().map(|b| pending(b.port))).await
}

fn pids_cpu(pids: &[u32]) -> f64 {
    pids.iter().map(|&p| server::cpu_ms(p)).sum()
}

fn pids_rss(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| server::rss_kib(p).0).sum()
}

/// Creates `a.events` events on every branch (PUT availability), `a.concurrency` in flight
/// over all branches, while a monitor reads the branches' RSS and times branch 0's /health.
async fn backlog(a: &SyncArgs, http: &reqwest::Client, brs: &[Server], token: &str) -> Result<Value, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (bpids, bport) = (brs.iter().map(|b| b.pid).collect::<Vec<_>>(), brs[0].port);
    let mon = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut rss_max, mut h_lat, mut h_fail) = (0u64, Vec::new(), 0u64);
            for _ in 0..36_000 {
                if stop.load(Relaxed) {
                    break;
                }
                rss_max = rss_max.max(bpids.iter().map(|&p| server::rss_kib(p).0).max().unwrap_or(0));
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
    let total = a.events * brs.len();
    for k in 0..total {
        // Round-robin over the branches: event i of branch b is k = i * N + b.
        let (i, b) = (k / brs.len(), k % brs.len());
        while set.len() >= a.concurrency {
            let _ = set.join_next().await;
        }
        let req = http
            .put(format!("http://{}/api/availability/{}/product/item-{i}", brs[b].addr(), Layout::branch_id(b)))
            .bearer_auth(token)
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
            if k % 10 == 0
                && let Ok(mut v) = put_ms.lock()
            {
                v.push(t.elapsed().as_secs_f64() * 1e3);
            }
        });
        if k % 20_000 == 0 && k > 0 {
            eprintln!("sync: {k} events created, {:.0}/s", k as f64 / t0.elapsed().as_secs_f64());
        }
    }
    while set.join_next().await.is_some() {}
    let create_secs = t0.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    let (rss_max, mut h_lat, h_fail) = mon.await.map_err(|e| e.to_string())?;
    h_lat.sort_by(f64::total_cmp);
    let mut put = put_ms.lock().map(|v| v.clone()).unwrap_or_default();
    put.sort_by(f64::total_cmp);
    Ok(json!({
        "ok": ok.load(Relaxed), "failed": failed.load(Relaxed), "secs": create_secs,
        "events_per_s": ok.load(Relaxed) as f64 / create_secs,
        "put_p50_ms": quantile(&put, 0.5), "put_p99_ms": quantile(&put, 0.99), "put_max_ms": put.last().copied().unwrap_or(0.0),
        "health_probes_ok": h_lat.len(), "health_probes_failed": h_fail,
        "health_p50_ms": quantile(&h_lat, 0.5), "health_max_ms": h_lat.last().copied().unwrap_or(0.0),
        "branch_rss_max_during_kib": rss_max,
    }))
}

async fn measure(a: &SyncArgs, brs: &mut [Server], hubs: &mut Vec<Server>, hub_setups: &[Setup<'_>]) -> Result<Value, String> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(a.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let (company, branch) = (Layout::company_id(0), Layout::branch_id(0));
    let token = crate::jwt::sign(&a.jwt_secret, "lg-sync", "company_owner", &company, None, 86_400);
    let base = format!("http://{}", brs[0].addr());
    let bpids: Vec<u32> = brs.iter().map(|b| b.pid).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = json!({
        "events_per_branch": a.events, "branches": brs.len(), "hubs": hub_setups.len(),
        "database": if a.database_url.is_some() { "postgresql" } else { "sqlite" }, "concurrency": a.concurrency,
    });
    out["branch_rss_start_kib"] = server::rss_kib(brs[0].pid).0.into();
    out["branch_health_start"] = health_json(brs[0].port).await.map(|v| v["sync"].clone()).unwrap_or_default();

    if a.events > 0 {
        // First contact: until a branch has reached its hub once it does not know its
        // stream (`/health` shows `sync.pending: 0` however many events wait), so start the
        // hubs, wait for every branch's hello, and stop them again (keeping their data).
        start_hubs(hub_setups, hubs).await?;
        let t = Instant::now();
        let mut contact = None;
        for _ in 0..600 {
            let all = futures_util::future::join_all(brs.iter().map(|b| health_json(b.port))).await;
            if all.iter().all(|v| v.as_ref().is_some_and(|v| v["sync"]["branchId"].is_string())) {
                contact = Some(t.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out["hub_rss_idle_kib"] = json!(hubs.iter().map(|h| server::rss_kib(h.pid).0).collect::<Vec<_>>());
        stop_hubs(hubs).await;
        out["first_contact_s"] = contact.into();
        if contact.is_none() {
            return Err("not every branch reached its hub within 60 s".into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;

        // (a) Backlog while the hubs are down.
        out["create"] = backlog(a, &http, brs, &token).await?;
        let backlog: i64 = pendings(brs).await.iter().map(|p| p.unwrap_or(-1_000_000_000)).sum();
        out["backlog_pending"] = backlog.into();
        out["branch_rss_after_backlog_kib"] = server::rss_kib(brs[0].pid).0.into();
        out["branch_health_before_hub"] =
            health_json(brs[0].port).await.map(|v| json!({"upstream": v["upstream"], "sync": v["sync"]})).unwrap_or_default();
        eprintln!("sync: backlog {backlog} events on {} branches; starting {} hub(s)", brs.len(), hub_setups.len());
        if backlog < 0 {
            return Err("a branch's /health did not answer after the backlog".into());
        }

        // Drain.
        let (cpu_b0, cpu_db0) = (pids_cpu(&bpids), a.db_pid.map(server::cpu_tree_ms).unwrap_or(0.0));
        let t_spawn = Instant::now();
        let hub_cold = start_hubs(hub_setups, hubs).await?;
        let hpids: Vec<u32> = hubs.iter().map(|h| h.pid).collect();
        let t_ready = Instant::now();
        let cpu_h0 = pids_cpu(&hpids);
        let mut first_progress: Option<f64> = None;
        let mut done: Option<f64> = None;
        let (mut br_rss_max, mut hub_rss_max) = (0u64, 0u64);
        let mut trace = Vec::new();
        let polls = (a.drain_timeout_secs * 5.0).ceil() as u64;
        for k in 0..polls {
            let p = pendings(brs).await;
            let t = t_spawn.elapsed().as_secs_f64();
            br_rss_max = br_rss_max.max(server::rss_kib(brs[0].pid).0);
            hub_rss_max = hub_rss_max.max(hpids.iter().map(|&h| server::rss_kib(h).0).max().unwrap_or(0));
            let known: i64 = p.iter().flatten().sum();
            if first_progress.is_none() && p.iter().all(Option::is_some) && known < backlog {
                first_progress = Some(t);
            }
            if k % 5 == 0 {
                trace.push(json!([(t * 10.0).round() / 10.0, known]));
            }
            if p.iter().all(|v| *v == Some(0)) {
                done = Some(t);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (cpu_b1, cpu_h1, cpu_db1) = (pids_cpu(&bpids), pids_cpu(&hpids), a.db_pid.map(server::cpu_tree_ms).unwrap_or(0.0));
        let per_event_us = |ms: f64| if backlog > 0 { ms * 1e3 / backlog as f64 } else { 0.0 };
        let ready_at = t_ready.duration_since(t_spawn).as_secs_f64();
        let after = futures_util::future::join_all(brs.iter().map(|b| health_json(b.port))).await;
        let sum = |k: &str| after.iter().flatten().map(|v| v["sync"][k].as_i64().unwrap_or(0)).sum::<i64>();
        out["drain"] = json!({
            "hub_cold_start_ms": hub_cold,
            "hub_ready_s": ready_at,
            "first_progress_s": first_progress,
            "pending_zero_s_from_hub_spawn": done,
            "events_per_s_from_hub_spawn": done.map(|d| backlog as f64 / d),
            "events_per_s_from_first_progress": match (done, first_progress) { (Some(d), Some(f)) if d > f => Some(backlog as f64 / (d - f)), _ => None },
            "cpu_ms": {"branches": cpu_b1 - cpu_b0, "hubs": cpu_h1 - cpu_h0, "database": cpu_db1 - cpu_db0},
            "cpu_us_per_event": {"branches": per_event_us(cpu_b1 - cpu_b0), "hubs": per_event_us(cpu_h1 - cpu_h0), "database": per_event_us(cpu_db1 - cpu_db0)},
            "branch0_rss_max_kib": br_rss_max,
            "hub_rss_max_kib": hub_rss_max,
            "branches_rss_end_kib": pids_rss(&bpids),
            "hub_rss_end_kib": hpids.iter().map(|&h| server::rss_kib(h).0).collect::<Vec<_>>(),
            "branches_after": {"answered": after.iter().flatten().count(), "pending": sum("pending"), "acked": sum("acked"),
                "pushed": sum("pushed"), "parked": sum("parked"), "duplicates": sum("duplicates")},
            "branch0_sync_after": after.first().cloned().flatten().map(|v| v["sync"].clone()).unwrap_or_default(),
            "trace_s_pending": trace,
        });
        eprintln!("sync: drained {backlog} in {done:?} s from hub spawn (first progress {first_progress:?} s)");
        if done.is_none() {
            return Ok(out);
        }
    }

    if a.orders > 0 {
        if hubs.is_empty() {
            start_hubs(hub_setups, hubs).await?;
            // Let the relay notice the hub (it probes the port every 2 s).
            for _ in 0..100 {
                if health_json(brs[0].port).await.is_some_and(|v| v["sync"]["online"] == true) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let (hub_addr, hub_pid) = (hubs[0].addr(), hubs[0].pid);
        out["online"] = online_latency(a, &http, &base, hub_addr, &token, &branch).await?;
        out["online"]["branch_rss_end_kib"] = server::rss_kib(brs[0].pid).0.into();
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
