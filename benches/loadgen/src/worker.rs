//! A worker process: opens its share of the clients (WebSocket, or long-polling for a
//! fraction), reports `ready`, then records every `newOrder` it receives. It obeys JSON
//! commands on stdin (`phase`, `stats`, `exit`) and answers with one JSON line on stdout.
//! It exits when stdin closes or after `--max-lifetime-secs`, whichever comes first.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::clock::now_ns;
use crate::hist::AtomicHist;
use crate::proto::{self, Kind, Layout, NsAnswer, RS};

#[derive(Parser, Debug, Clone)]
#[command(name = "branchd-loadgen __worker", about = "internal: one worker process of a load run")]
pub struct WorkerArgs {
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long)]
    pub first: usize,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub branches: usize,
    #[arg(long)]
    pub companies: usize,
    #[arg(long, default_value_t = 0)]
    pub owner_every: usize,
    #[arg(long, default_value_t = 0)]
    pub polling_every: usize,
    /// Comma-separated namespaces, e.g. /orders,/availability,/printing-ws
    #[arg(long)]
    pub namespaces: String,
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Connections per second for this worker (0: as fast as the concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// Client source addresses 127.0.0.1 ..= 127.0.0.N (1: let the kernel choose).
    #[arg(long, default_value_t = 1)]
    pub source_ips: usize,
    #[arg(long, default_value_t = 15_000)]
    pub connect_timeout_ms: u64,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, default_value_t = 3_600)]
    pub max_lifetime_secs: u64,
    /// Every this-many-th client runs the in-order probe right after connecting (0: none).
    #[arg(long, default_value_t = 0)]
    pub probe_every: usize,
    /// Connect over TLS, trusting only the CA certificate (PEM) in this file.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
}

struct Ctx {
    args: WorkerArgs,
    layout: Layout,
    secret: String,
    namespaces: Vec<String>,
    phase: AtomicU64,
    ws_lat: AtomicHist,
    poll_lat: AtomicHist,
    connect: AtomicHist,
    delivered: AtomicU64,
    poll_delivered: AtomicU64,
    stale: AtomicU64,
    live: AtomicU64,
    orders_joined: AtomicU64,
    probes: AtomicU64,
    probes_ok: AtomicU64,
    per_branch: Vec<AtomicU64>,
    per_company: Vec<AtomicU64>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    first_refusal: Mutex<Option<String>>,
    http: reqwest::Client,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Ctx {
    fn error(&self, what: &'static str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(what).or_default() += 1;
        }
    }

    fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.errors.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn deliver(&self, (phase, _seq, t_ns): (u64, u64, u64), polling: bool) {
        if phase != self.phase.load(Relaxed) {
            self.stale.fetch_add(1, Relaxed);
            return;
        }
        let us = now_ns().saturating_sub(t_ns) / 1_000;
        if polling {
            self.poll_lat.record(us);
            self.poll_delivered.fetch_add(1, Relaxed);
        } else {
            self.ws_lat.record(us);
        }
        self.delivered.fetch_add(1, Relaxed);
    }

    /// Counts a client whose `/orders` namespace was accepted in the rooms it sits in.
    fn joined(&self, i: usize) {
        if !self.namespaces.iter().any(|n| n == "/orders") {
            return;
        }
        self.orders_joined.fetch_add(1, Relaxed);
        match self.layout.kind(i) {
            Kind::Cashier { branch } => self.per_branch[branch].fetch_add(1, Relaxed),
            Kind::Owner { company } => self.per_company[company].fetch_add(1, Relaxed),
        };
    }

    fn refused(&self, ns: &str, body: &str) {
        self.error("namespace_refused");
        if let Ok(mut f) = self.first_refusal.lock()
            && f.is_none()
        {
            *f = Some(format!("{ns}: {}", body.chars().take(200).collect::<String>()));
        }
    }

    fn asked(&self, ns: &str) -> bool {
        self.namespaces.iter().any(|n| n == ns)
    }

    /// The in-order probe's packets for client `i`, if it runs one.
    fn probe(&self, i: usize) -> Option<Vec<String>> {
        let every = self.args.probe_every;
        (every > 0 && i.is_multiple_of(every) && self.asked("/orders")).then(|| proto::order_probe(&self.layout.probe_branch(i)))
    }

    /// Checks the probe's acks (ids in arrival order); counts the outcome.
    fn probe_done(&self, acks: &[u64]) -> Result<(), &'static str> {
        self.probes.fetch_add(1, Relaxed);
        if acks.iter().copied().eq(1..=acks.len() as u64) {
            self.probes_ok.fetch_add(1, Relaxed);
            Ok(())
        } else {
            Err("order_probe_misordered")
        }
    }

    /// A client's broadcasts must come in the server's event order, each once: counts a
    /// `newOrder` whose eventId is not above the previous one's.
    fn in_order(&self, last: &mut u64, packet: &str) {
        match proto::event_seq(packet) {
            Some(seq) if seq > *last => *last = seq,
            Some(_) => self.error("delivery_misordered_or_doubled"),
            None => self.error("delivery_without_event_id"),
        }
    }

    fn connect_packets(&self, i: usize) -> Vec<String> {
        let token = self.layout.token(&self.secret, i);
        self.namespaces.iter().map(|ns| format!("40{ns},{{\"token\":\"{token}\"}}")).collect()
    }
}

fn println_json(v: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub fn main(args: WorkerArgs) -> std::process::ExitCode {
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    match rt {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("loadgen worker: cannot start runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: WorkerArgs) -> std::process::ExitCode {
    let layout =
        Layout { branches: args.branches, companies: args.companies, owner_every: args.owner_every, polling_every: args.polling_every };
    let namespaces = args.namespaces.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(70)).tcp_nodelay(true).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen worker: http client: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let tls = match args.tls_ca.as_deref().map(tls_connector).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadgen worker: --tls-ca: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ctx = Arc::new(Ctx {
        tls,
        layout,
        secret: std::env::var("LOADGEN_JWT_SECRET").unwrap_or_default(),
        namespaces,
        phase: AtomicU64::new(u64::MAX),
        ws_lat: AtomicHist::default(),
        poll_lat: AtomicHist::default(),
        connect: AtomicHist::default(),
        delivered: AtomicU64::new(0),
        poll_delivered: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        live: AtomicU64::new(0),
        orders_joined: AtomicU64::new(0),
        probes: AtomicU64::new(0),
        probes_ok: AtomicU64::new(0),
        per_branch: (0..args.branches.max(1)).map(|_| AtomicU64::new(0)).collect(),
        per_company: (0..args.companies.max(1)).map(|_| AtomicU64::new(0)).collect(),
        errors: Mutex::new(BTreeMap::new()),
        first_refusal: Mutex::new(None),
        http,
        args,
    });
    let lifetime = Duration::from_secs(ctx.args.max_lifetime_secs);
    tokio::spawn(connect_all(ctx.clone()));
    let commands = async {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            match cmd.get("cmd").and_then(|c| c.as_str()) {
                Some("phase") => {
                    ctx.phase.store(cmd.get("id").and_then(|v| v.as_u64()).unwrap_or(u64::MAX), Relaxed);
                    ctx.ws_lat.reset();
                    ctx.poll_lat.reset();
                    ctx.delivered.store(0, Relaxed);
                    ctx.poll_delivered.store(0, Relaxed);
                    ctx.stale.store(0, Relaxed);
                    println_json(json!({"type": "ok"}));
                }
                Some("stats") => println_json(json!({
                    "type": "stats",
                    "delivered": ctx.delivered.load(Relaxed),
                    "poll_delivered": ctx.poll_delivered.load(Relaxed),
                    "stale": ctx.stale.load(Relaxed),
                    "live": ctx.live.load(Relaxed),
                    "ws_lat": ctx.ws_lat.snapshot(),
                    "poll_lat": ctx.poll_lat.snapshot(),
                    "errors": ctx.errors(),
                })),
                Some("exit") => break,
                _ => println_json(json!({"type": "error", "message": "unknown command"})),
            }
        }
    };
    let _ = tokio::time::timeout(lifetime, commands).await;
    std::process::ExitCode::SUCCESS
}

/// Opens every client of this worker (bounded concurrency and rate), then prints `ready`.
async fn connect_all(ctx: Arc<Ctx>) {
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(ctx.args.concurrency.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel::<bool>();
    let period = (ctx.args.connect_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / ctx.args.connect_rate));
    let t0 = tokio::time::Instant::now();
    for (k, i) in (ctx.args.first..ctx.args.first + ctx.args.count).enumerate() {
        if let Some(p) = period {
            tokio::time::sleep_until(t0 + p * k as u32).await;
        }
        let Ok(permit) = sem.clone().acquire_owned().await else { break };
        let ctx = ctx.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            if ctx.layout.polling(i) {
                polling_client(ctx, i, permit, tx).await;
            } else {
                ws_client(ctx, i, permit, tx).await;
            }
        });
    }
    drop(tx);
    let (mut ok, mut failed) = (0u64, 0u64);
    while let Some(r) = rx.recv().await {
        if r { ok += 1 } else { failed += 1 }
    }
    let wall = started.elapsed();
    let load = |v: &Vec<AtomicU64>| v.iter().map(|a| a.load(Relaxed)).collect::<Vec<_>>();
    let refusal = ctx.first_refusal.lock().ok().and_then(|f| f.clone());
    println_json(json!({
        "type": "ready",
        "connected": ok,
        "failed": failed,
        "orders_joined": ctx.orders_joined.load(Relaxed),
        "probes": ctx.probes.load(Relaxed),
        "probes_ok": ctx.probes_ok.load(Relaxed),
        "wall_ms": wall.as_secs_f64() * 1e3,
        "connect": ctx.connect.snapshot(),
        "per_branch": load(&ctx.per_branch),
        "per_company": load(&ctx.per_company),
        "errors": ctx.errors(),
        "first_refusal": refusal,
    }));
}

async fn tcp_connect(addr: SocketAddr, src: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    let stream = match src {
        None => TcpStream::connect(addr).await?,
        Some(ip) => {
            let s = TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
            s.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn source_ip(ctx: &Ctx, i: usize) -> Option<Ipv4Addr> {
    (ctx.args.source_ips > 1).then(|| Ipv4Addr::new(127, 0, 0, 1 + (i % ctx.args.source_ips.min(250)) as u8))
}

/// A client connection: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

type Ws = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

fn tls_connector(ca: &std::path::Path) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(ca).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn ws_client(ctx: Arc<Ctx>, i: usize, permit: tokio::sync::OwnedSemaphorePermit, done: mpsc::UnboundedSender<bool>) {
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_millis(ctx.args.connect_timeout_ms), ws_handshake(&ctx, i)).await;
    drop(permit);
    let mut ws = match r {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            ctx.error(e);
            let _ = done.send(false);
            return;
        }
        Err(_) => {
            ctx.error("connect_timeout");
            let _ = done.send(false);
            return;
        }
    };
    ctx.connect.record(t.elapsed().as_micros() as u64);
    ctx.joined(i);
    ctx.live.fetch_add(1, Relaxed);
    let _ = done.send(true);
    drop(done);
    let why = ws_loop(&ctx, &mut ws).await;
    ctx.live.fetch_sub(1, Relaxed);
    ctx.error(why);
}

async fn ws_handshake(ctx: &Ctx, i: usize) -> Result<Ws, &'static str> {
    let tcp = tcp_connect(ctx.args.addr, source_ip(ctx, i)).await.map_err(|_| "tcp_connect")?;
    let (stream, scheme): (Box<dyn Io>, &str) = match &ctx.tls {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::IpAddress(ctx.args.addr.ip().into());
            (Box::new(tls.connect(name, tcp).await.map_err(|_| "tls_handshake")?), "wss")
        }
        None => (Box::new(tcp), "ws"),
    };
    let url = format!("{scheme}://{}/socket.io/?EIO=4&transport=websocket", ctx.args.addr);
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await.map_err(|_| "ws_handshake")?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
        _ => return Err("eio_open"),
    }
    for p in ctx.connect_packets(i) {
        ws.feed(Message::text(p)).await.map_err(|_| "ws_send")?;
    }
    ws.flush().await.map_err(|_| "ws_send")?;
    let mut pending = ctx.namespaces.len();
    while pending > 0 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match proto::ns_answer(&t) {
                Some(NsAnswer::Accepted(ns)) if ctx.asked(ns) => pending -= 1,
                Some(NsAnswer::Accepted(_)) => {}
                Some(NsAnswer::Refused(ns, body)) => {
                    ctx.refused(ns, body);
                    return Err("namespace_refused");
                }
                None if t.as_str() == "2" => ws.send(Message::text("3")).await.map_err(|_| "ws_send")?,
                None => {}
            },
            Some(Ok(Message::Close(_))) | None => return Err("closed_during_handshake"),
            Some(Ok(_)) => {}
            Some(Err(_)) => return Err("ws_error"),
        }
    }
    if let Some(probe) = ctx.probe(i) {
        let n = probe.len();
        for p in probe {
            ws.feed(Message::text(p)).await.map_err(|_| "ws_send")?;
        }
        ws.flush().await.map_err(|_| "ws_send")?;
        let mut acks = Vec::with_capacity(n);
        while acks.len() < n {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await.map_err(|_| "ws_send")?,
                Some(Ok(Message::Text(t))) => acks.extend(proto::ack_id(&t, "/orders")),
                Some(Ok(Message::Close(_))) | None => return Err("closed_during_probe"),
                Some(Ok(_)) => {}
                Some(Err(_)) => return Err("ws_error"),
            }
        }
        ctx.probe_done(&acks)?;
    }
    Ok(ws)
}

/// Reads until the connection ends; returns why it ended.
async fn ws_loop(ctx: &Ctx, ws: &mut Ws) -> &'static str {
    let mut last = 0;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let s = t.as_str();
                if s == "2" {
                    if ws.send(Message::text("3")).await.is_err() {
                        return "ws_send";
                    }
                } else if let Some(d) = proto::new_order(s) {
                    ctx.deliver(d, false);
                    ctx.in_order(&mut last, s);
                } else if s.starts_with('1') {
                    return "server_closed";
                }
            }
            Some(Ok(Message::Close(_))) | None => return "disconnected",
            Some(Ok(_)) => {}
            Some(Err(_)) => return "ws_error",
        }
    }
}

async fn polling_client(ctx: Arc<Ctx>, i: usize, permit: tokio::sync::OwnedSemaphorePermit, done: mpsc::UnboundedSender<bool>) {
    let t = Instant::now();
    let base = format!("http://{}/socket.io/?EIO=4&transport=polling", ctx.args.addr);
    let r = tokio::time::timeout(Duration::from_millis(ctx.args.connect_timeout_ms), poll_handshake(&ctx, i, &base)).await;
    drop(permit);
    let url = match r {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => {
            ctx.error(e);
            let _ = done.send(false);
            return;
        }
        Err(_) => {
            ctx.error("connect_timeout");
            let _ = done.send(false);
            return;
        }
    };
    ctx.connect.record(t.elapsed().as_micros() as u64);
    ctx.joined(i);
    ctx.live.fetch_add(1, Relaxed);
    let _ = done.send(true);
    drop(done);
    let why = poll_loop(&ctx, &url).await;
    ctx.live.fetch_sub(1, Relaxed);
    ctx.error(why);
}

async fn poll_get(ctx: &Ctx, url: &str) -> Result<String, &'static str> {
    let r = ctx.http.get(url).send().await.map_err(|_| "poll_get")?;
    if !r.status().is_success() {
        return Err("poll_status");
    }
    r.text().await.map_err(|_| "poll_get")
}

async fn poll_post(ctx: &Ctx, url: &str, body: String) -> Result<(), &'static str> {
    let r = ctx.http.post(url).header("content-type", "text/plain;charset=UTF-8").body(body).send().await.map_err(|_| "poll_post")?;
    if !r.status().is_success() {
        return Err("poll_status");
    }
    let _ = r.bytes().await;
    Ok(())
}

async fn poll_handshake(ctx: &Ctx, i: usize, base: &str) -> Result<String, &'static str> {
    let open = poll_get(ctx, base).await?;
    let sid = open.split(RS).find_map(proto::open_sid).ok_or("eio_open")?;
    let url = format!("{base}&sid={sid}");
    poll_post(ctx, &url, ctx.connect_packets(i).join(&RS.to_string())).await?;
    let mut pending = ctx.namespaces.len();
    let mut rounds = 0;
    while pending > 0 {
        rounds += 1;
        if rounds > 50 {
            return Err("poll_handshake_rounds");
        }
        let body = poll_get(ctx, &url).await?;
        for p in body.split(RS) {
            match proto::ns_answer(p) {
                Some(NsAnswer::Accepted(ns)) if ctx.asked(ns) => pending = pending.saturating_sub(1),
                Some(NsAnswer::Accepted(_)) => {}
                Some(NsAnswer::Refused(ns, b)) => {
                    ctx.refused(ns, b);
                    return Err("namespace_refused");
                }
                None if p == "2" => poll_post(ctx, &url, "3".into()).await?,
                None if p.starts_with('1') => return Err("closed_during_handshake"),
                None => {}
            }
        }
    }
    if let Some(probe) = ctx.probe(i) {
        let n = probe.len();
        // One POST with every packet, as socket.io-client batches them.
        poll_post(ctx, &url, probe.join(&RS.to_string())).await?;
        let mut acks = Vec::with_capacity(n);
        let mut rounds = 0;
        while acks.len() < n {
            rounds += 1;
            if rounds > 50 {
                return Err("poll_probe_rounds");
            }
            let body = poll_get(ctx, &url).await?;
            for p in body.split(RS) {
                if p == "2" {
                    poll_post(ctx, &url, "3".into()).await?;
                } else {
                    acks.extend(proto::ack_id(p, "/orders"));
                }
            }
        }
        ctx.probe_done(&acks)?;
    }
    Ok(url)
}

async fn poll_loop(ctx: &Ctx, url: &str) -> &'static str {
    let mut last = 0;
    loop {
        let body = match poll_get(ctx, url).await {
            Ok(b) => b,
            Err(e) => return e,
        };
        for p in body.split(RS) {
            if p == "2" {
                if let Err(e) = poll_post(ctx, url, "3".into()).await {
                    return e;
                }
            } else if let Some(d) = proto::new_order(p) {
                ctx.deliver(d, true);
                ctx.in_order(&mut last, p);
            } else if p.starts_with('1') {
                return "server_closed";
            }
        }
    }
}
