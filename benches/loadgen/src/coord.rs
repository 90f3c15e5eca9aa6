//! The coordinator: for each N and each server, start the server, spawn the workers, measure
//! the connect phase, hold idle, drive orders, optionally saturate, stop everything; then
//! print the table and write result.json and plot.svg.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::RunArgs;
use crate::clock::now_ns;
use crate::hist::{AtomicHist, Snap};
use crate::proto::{self, Layout};
use crate::report::{Case, Orders, SatStep, Saturation, TargetLat};
use crate::server::{self, Kind, Server, Setup};

const MAX_CLIENTS: usize = 200_000;
const MAX_ORDERS_PER_PHASE: u64 = 2_000_000;

struct Worker {
    /// Index of the address (in [`Target::addrs`]) its clients connect to.
    target: usize,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn read(&mut self, t: Duration) -> Result<Value, String> {
        match tokio::time::timeout(t, self.lines.next_line()).await {
            Ok(Ok(Some(l))) => serde_json::from_str(&l).map_err(|e| format!("worker said {l:?}: {e}")),
            Ok(Ok(None)) => Err("worker exited".into()),
            Ok(Err(e)) => Err(format!("worker pipe: {e}")),
            Err(_) => Err(format!("worker did not answer within {t:?}")),
        }
    }

    async fn cmd(&mut self, v: Value, t: Duration) -> Result<Value, String> {
        let line = format!("{v}\n");
        self.stdin.write_all(line.as_bytes()).await.map_err(|e| format!("worker pipe: {e}"))?;
        self.stdin.flush().await.map_err(|e| format!("worker pipe: {e}"))?;
        self.read(t).await
    }

    async fn exit(mut self) {
        let _ = self.stdin.write_all(b"{\"cmd\":\"exit\"}\n").await;
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Aggregated worker statistics for one phase.
#[derive(Default)]
struct Stats {
    delivered: u64,
    poll_delivered: u64,
    stale: u64,
    live: u64,
    ws_lat: Snap,
    poll_lat: Snap,
    errors: BTreeMap<String, u64>,
    /// WebSocket + polling latency and deliveries per target address.
    by_target: BTreeMap<usize, (u64, Snap)>,
}

fn merge_errors(into: &mut BTreeMap<String, u64>, v: &Value) {
    if let Some(m) = v.as_object() {
        for (k, n) in m {
            *into.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
}

fn snap(v: &Value) -> Snap {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

async fn stats(workers: &mut [Worker]) -> Result<Stats, String> {
    let mut s = Stats::default();
    for w in workers.iter_mut() {
        let v = w.cmd(json!({"cmd": "stats"}), Duration::from_secs(30)).await?;
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        s.delivered += n("delivered");
        s.poll_delivered += n("poll_delivered");
        s.stale += n("stale");
        s.live += n("live");
        s.ws_lat.merge(&snap(&v["ws_lat"]));
        s.poll_lat.merge(&snap(&v["poll_lat"]));
        let t = s.by_target.entry(w.target).or_default();
        t.0 += n("delivered");
        t.1.merge(&snap(&v["ws_lat"]));
        t.1.merge(&snap(&v["poll_lat"]));
        merge_errors(&mut s.errors, &v["errors"]);
    }
    Ok(s)
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().map(|&p| server::cpu_ms(p)).sum()
}

pub async fn run(a: RunArgs) -> ExitCode {
    match run_inner(a).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("branchd-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(a: RunArgs) -> Result<ExitCode, String> {
    let kinds: Vec<Kind> = a.servers.iter().map(|s| Kind::parse(s).ok_or(format!("unknown server {s:?}"))).collect::<Result<_, _>>()?;
    if a.clients.is_empty() || a.clients.iter().any(|&n| n == 0 || n > MAX_CLIENTS) {
        return Err(format!("--clients: each value must be 1..={MAX_CLIENTS}"));
    }
    if a.branches == 0 || a.companies == 0 || a.companies > a.branches {
        return Err("--branches and --companies must be >= 1, companies <= branches".into());
    }
    if a.rate.iter().any(|r| !(0.0..=100_000.0).contains(r)) || !(0.0..=3_600.0).contains(&a.duration) {
        return Err("--rate must be 0..=100000 and --duration 0..=3600".into());
    }
    if a.clients_per_worker == 0 || a.clients_per_worker > 19_000 {
        return Err("--clients-per-worker must be 1..=19000 (20,000 open files per process)".into());
    }
    if a.tls && (kinds.contains(&Kind::Reference) || a.polling_fraction > 0.0) {
        return Err("--tls: branchd only (--servers branchd) and WebSocket only (--polling-fraction 0)".into());
    }
    let kinds = if a.cluster.is_empty() { kinds } else { Vec::new() };
    if !a.cluster.is_empty() && (a.tls || !a.cluster_pids.iter().all(|&p| server::pid_alive(p))) {
        return Err("--cluster: no --tls, and every --cluster-pids must be a running process".into());
    }
    if kinds.contains(&Kind::Branchd) && !a.branchd.is_file() {
        return Err(format!("{} not found: cargo build --release first", a.branchd.display()));
    }
    if kinds.contains(&Kind::Reference) && !a.reference_dir.join("node_modules").is_dir() {
        return Err(format!("{}/node_modules missing: copy shared/reference-server there and run npm ci", a.reference_dir.display()));
    }
    let scratch = a.scratch.clone().unwrap_or_else(|| a.out.join("scratch")).join(format!("loadgen-{}", std::process::id()));
    for d in [&a.out, &scratch] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let layout = Layout {
        branches: a.branches,
        companies: a.companies,
        owner_every: Layout::every(a.owner_fraction),
        polling_every: Layout::every(a.polling_fraction),
    };
    let machine = crate::report::machine(&a);
    eprintln!("loadgen: {}", machine["summary"].as_str().unwrap_or(""));
    let mut phase = 0u64;
    let mut cases = Vec::new();
    if !a.cluster.is_empty() {
        let target = Target { name: a.cluster_name.clone(), addrs: a.cluster.clone(), pids: a.cluster_pids.clone(), db_pid: a.db_pid };
        for (idx, &n) in a.clients.iter().enumerate() {
            eprintln!("loadgen: {} ({} addresses) with {n} clients ...", target.name, target.addrs.len());
            let mut workers = Vec::new();
            let case = match measure(&a, &target, n, a.rate_for(idx), layout, 0.0, &mut phase, &mut workers).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("loadgen: {} at {n} clients failed: {e}", target.name);
                    Case { server: target.name.clone(), clients: n, failure: Some(e), ..Case::default() }
                }
            };
            for w in workers {
                w.exit().await;
            }
            eprintln!("loadgen: {}", crate::report::one_line(&case));
            cases.push(case);
        }
    }
    for (idx, &n) in a.clients.iter().enumerate() {
        for &kind in &kinds {
            eprintln!("loadgen: {} with {n} clients ...", kind.name());
            let case = match run_case(&a, kind, n, a.rate_for(idx), layout, &scratch, &mut phase).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("loadgen: {} at {n} clients failed: {e}", kind.name());
                    Case { server: kind.name().into(), clients: n, failure: Some(e), ..Case::default() }
                }
            };
            eprintln!("loadgen: {}", crate::report::one_line(&case));
            cases.push(case);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let table = crate::report::table(&cases);
    println!("{table}");
    let result = json!({"label": a.label, "machine": machine, "args": format!("{a:?}"), "cases": cases});
    let json_path = a.out.join("result.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result).unwrap_or_default())
        .map_err(|e| format!("{}: {e}", json_path.display()))?;
    let svg_path = a.out.join("plot.svg");
    std::fs::write(&svg_path, crate::report::svg(&cases)).map_err(|e| format!("{}: {e}", svg_path.display()))?;
    eprintln!("loadgen: wrote {} and {}", json_path.display(), svg_path.display());
    if a.check {
        let problems =
            crate::report::check(&cases, a.check_p99_ms, a.rate.iter().any(|r| *r > 0.0) && a.duration > 0.0, a.order_probes > 0.0);
        if !problems.is_empty() {
            for p in &problems {
                eprintln!("loadgen check FAILED: {p}");
            }
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("loadgen check passed");
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_case(a: &RunArgs, kind: Kind, n: usize, rate: f64, layout: Layout, scratch: &Path, phase: &mut u64) -> Result<Case, String> {
    let setup = Setup {
        branchd: &a.branchd,
        reference_dir: &a.reference_dir,
        node: &a.node,
        secret: &a.jwt_secret,
        layout,
        scratch,
        log_dir: &a.out,
        tag: format!("{n}"),
        // The same binary either way: HTTPS on (the default) only when the clients use it.
        serve_args: if a.tls { Vec::new() } else { vec!["--tls".into(), "off".into()] },
        env: Vec::new(),
        port: None,
        data_dir: None,
    };
    let (mut srv, cold) = Server::start(kind, &setup).await?;
    let mut workers = Vec::new();
    let target = Target { name: kind.name().into(), addrs: vec![srv.addr()], pids: vec![srv.pid], db_pid: a.db_pid };
    let res = measure(a, &target, n, rate, layout, cold, phase, &mut workers).await;
    for w in workers {
        w.exit().await;
    }
    srv.stop().await;
    res
}

/// branchd's own CA (`GET /ca.crt` over plain HTTP on the same port), saved for the workers.
async fn fetch_ca(a: &RunArgs, addr: std::net::SocketAddr) -> Result<PathBuf, String> {
    let pem = reqwest::get(format!("http://{addr}/ca.crt"))
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET /ca.crt: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("GET /ca.crt: {e}"))?;
    let path = a.out.join(format!("ca-{}.pem", addr.port()));
    std::fs::write(&path, &pem).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[allow(clippy::too_many_arguments)]
fn spawn_worker(
    a: &RunArgs,
    (target, addr): (usize, std::net::SocketAddr),
    first: usize,
    count: usize,
    layout: Layout,
    w: usize,
    source_ips: usize,
    tls_ca: Option<&Path>,
) -> Result<Worker, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut c = Command::new(exe);
    if let Some(ca) = tls_ca {
        c.arg("__worker").arg("--tls-ca").arg(ca);
    } else {
        c.arg("__worker");
    }
    c.args(["--addr", &addr.to_string()])
        .args(["--first", &first.to_string(), "--count", &count.to_string()])
        .args(["--branches", &layout.branches.to_string(), "--companies", &layout.companies.to_string()])
        .args(["--owner-every", &layout.owner_every.to_string(), "--polling-every", &layout.polling_every.to_string()])
        .args(["--namespaces", &a.namespaces.join(",")])
        .args(["--concurrency", &a.concurrency.to_string()])
        .args(["--connect-rate", &(a.connect_rate / w as f64).to_string()])
        .args(["--source-ips", &source_ips.to_string()])
        .args(["--connect-timeout-ms", &((a.connect_timeout * 1e3) as u64).to_string()])
        .args(["--threads", &a.worker_threads.to_string()])
        .args(["--probe-every", &Layout::every(a.order_probes).to_string()])
        .env("LOADGEN_JWT_SECRET", &a.jwt_secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|e| format!("cannot start a worker: {e}"))?;
    let stdin = child.stdin.take().ok_or("worker stdin")?;
    let stdout = child.stdout.take().ok_or("worker stdout")?;
    Ok(Worker { target, child, stdin, lines: BufReader::new(stdout).lines() })
}

struct Joined {
    per_branch: Vec<u64>,
    per_company: Vec<u64>,
}

impl Joined {
    fn expected(&self, layout: &Layout, branch: usize) -> u64 {
        self.per_branch[branch] + self.per_company[layout.company_of(branch)]
    }
}

/// What the clients connect to: the server this run started, or already-running servers
/// (--cluster). RSS and CPU are summed over `pids`.
struct Target {
    name: String,
    addrs: Vec<std::net::SocketAddr>,
    pids: Vec<u32>,
    db_pid: Option<u32>,
}

impl Target {
    fn rss_kib(&self) -> (u64, u64) {
        self.pids.iter().map(|&p| server::rss_kib(p)).fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    }
    fn cpu_ms(&self) -> f64 {
        cpu_of(&self.pids)
    }
    fn db_cpu_ms(&self) -> f64 {
        self.db_pid.map(server::cpu_tree_ms).unwrap_or(0.0)
    }
    fn alive(&self) -> bool {
        self.pids.iter().all(|&p| server::pid_alive(p))
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    a: &RunArgs,
    srv: &Target,
    n: usize,
    rate: f64,
    layout: Layout,
    cold: f64,
    phase: &mut u64,
    workers: &mut Vec<Worker>,
) -> Result<Case, String> {
    let mut case = Case { server: srv.name.clone(), clients: n, cold_start_ms: cold, ..Case::default() };
    tokio::time::sleep(Duration::from_secs_f64(a.settle_secs)).await;
    case.rss_idle_kib = srv.rss_kib().0;

    // Connect phase.
    // At least one worker per server address, so that every server gets clients.
    let nw =
        a.workers.unwrap_or_else(|| n.div_ceil(a.clients_per_worker).max(if n >= 2000 { 2 } else { 1 })).max(srv.addrs.len()).clamp(1, n);
    if n.div_ceil(nw) > 19_000 {
        return Err(format!("{n} clients over {nw} workers exceeds 19,000 per process"));
    }
    let source_ips = if a.source_ips == 0 { n.div_ceil(25_000) } else { a.source_ips };
    case.workers = nw;
    let tls_ca = if a.tls { Some(fetch_ca(a, srv.addrs[0]).await?) } else { None };
    let cpu0 = srv.cpu_ms();
    let t0 = Instant::now();
    let mut first = 0;
    for w in 0..nw {
        let count = n / nw + usize::from(w < n % nw);
        let t = w % srv.addrs.len();
        workers.push(spawn_worker(a, (t, srv.addrs[t]), first, count, layout, nw, source_ips, tls_ca.as_deref())?);
        first += count;
    }
    let ready_timeout = Duration::from_secs_f64(60.0 + a.connect_timeout + n as f64 / 100.0);
    let mut joined = Joined { per_branch: vec![0; layout.branches], per_company: vec![0; layout.companies] };
    let mut connect = Snap::default();
    let mut wall_ms: f64 = 0.0;
    for w in workers.iter_mut() {
        let v = w.read(ready_timeout).await?;
        if v["type"] != "ready" {
            return Err(format!("worker said {v}"));
        }
        let u = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        case.held += u("connected");
        case.failed += u("failed");
        case.orders_joined += u("orders_joined");
        case.order_probes += u("probes");
        case.order_probes_ok += u("probes_ok");
        wall_ms = wall_ms.max(v["wall_ms"].as_f64().unwrap_or(0.0));
        connect.merge(&snap(&v["connect"]));
        for (k, dst) in [("per_branch", &mut joined.per_branch), ("per_company", &mut joined.per_company)] {
            for (i, x) in v[k].as_array().into_iter().flatten().enumerate() {
                if let Some(d) = dst.get_mut(i) {
                    *d += x.as_u64().unwrap_or(0);
                }
            }
        }
        merge_errors(&mut case.errors, &v["errors"]);
        if case.first_refusal.is_none() {
            case.first_refusal = v["first_refusal"].as_str().map(str::to_string);
        }
    }
    let cpu1 = srv.cpu_ms();
    case.connect_secs = wall_ms / 1e3;
    case.connect_total_secs = t0.elapsed().as_secs_f64();
    case.connect_rate = if wall_ms > 0.0 { case.held as f64 / (wall_ms / 1e3) } else { 0.0 };
    case.connect_p50_ms = connect.quantile(0.5) as f64 / 1e3;
    case.connect_p99_ms = connect.quantile(0.99) as f64 / 1e3;
    case.cpu_connect_ms = cpu1 - cpu0;
    case.cpu_ms_per_connect = if case.held > 0 { case.cpu_connect_ms / case.held as f64 } else { 0.0 };

    tokio::time::sleep(Duration::from_secs_f64(a.idle_secs)).await;
    case.rss_connected_kib = srv.rss_kib().0;
    case.bytes_per_connection =
        if case.held > 0 { (case.rss_connected_kib as f64 - case.rss_idle_kib as f64) * 1024.0 / case.held as f64 } else { 0.0 };
    case.health =
        server::health(srv.addrs[0].port()).await.and_then(|b| serde_json::from_str::<Value>(&b).ok()).map(|v| v["connections"].clone());

    // Orders.
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(a.max_inflight_posts)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let tokens: Vec<String> = (0..layout.companies)
        .map(|c| crate::jwt::sign(&a.jwt_secret, "lg-poster", "company_owner", &Layout::company_id(c), None, 86_400))
        .collect();
    let poster = Poster { http, url: format!("http://{}/api/orders", srv.addrs[0]), tokens, layout, max_inflight: a.max_inflight_posts };
    let wpids: Vec<u32> = workers.iter().filter_map(Worker::pid).collect();
    if rate > 0.0 && a.duration > 0.0 {
        *phase += 1;
        case.orders = Some(order_phase(a, srv, workers, &wpids, &poster, &joined, *phase, rate, a.duration).await?);
    }
    if a.saturate {
        let mut sat = Saturation::default();
        let mut rate = a.sat_start;
        let mut failures = 0;
        for _ in 0..a.sat_max_steps {
            *phase += 1;
            let o = order_phase(a, srv, workers, &wpids, &poster, &joined, *phase, rate, a.sat_step_secs).await?;
            let ok = o.expected > 0 && o.delivered == o.expected && o.post_failed == 0 && o.lat_p99_ms <= a.sat_p99_ms;
            eprintln!(
                "loadgen:   saturation {:.0} orders/s: {:.0} deliveries/s, p99 {:.1} ms, delivered {}/{}{}",
                rate,
                o.deliveries_per_s,
                o.lat_p99_ms,
                o.delivered,
                o.expected,
                if ok { "" } else { "  <- limit" }
            );
            if ok && o.deliveries_per_s > sat.best_deliveries_per_s {
                sat.best_deliveries_per_s = o.deliveries_per_s;
                sat.best_rate = rate;
                sat.best_p99_ms = o.lat_p99_ms;
            }
            sat.steps.push(SatStep { rate, ok, orders: o });
            // One failed step may be noise on a shared machine; two in a row is the limit.
            failures = if ok { 0 } else { failures + 1 };
            if failures >= 2 || !srv.alive() {
                break;
            }
            rate *= a.sat_factor;
        }
        case.saturation = Some(sat);
    }
    let (rss, hwm) = srv.rss_kib();
    case.rss_end_kib = rss;
    case.rss_hwm_kib = hwm;
    let end = stats(workers).await?;
    case.live_at_end = end.live;
    merge_errors(&mut case.errors, &serde_json::to_value(&end.errors).unwrap_or_default());
    case.server_alive = srv.alive();
    Ok(case)
}

struct Poster {
    http: reqwest::Client,
    url: String,
    tokens: Vec<String>,
    layout: Layout,
    max_inflight: usize,
}

struct Driven {
    /// Branch of each order the server accepted.
    ok_branches: Vec<usize>,
    failed: u64,
    secs: f64,
    post_lat: Snap,
}

fn order_body(branch: usize, notes: &str) -> String {
    json!({
        "branchId": Layout::branch_id(branch),
        "type": "takeaway",
        "items": [
            {"name": "Chicken shawarma", "quantity": 2, "unitPrice": 650, "station": "grill"},
            {"name": "Fattoush", "quantity": 1, "unitPrice": 450, "station": "cold", "notes": "no onions"}
        ],
        "customer": {"name": "Loadgen", "phone": "+96100000000"},
        "notes": notes,
    })
    .to_string()
}

/// Posts `rate` orders/s for `secs` seconds, open loop (each POST on its own task at its
/// scheduled instant; beyond `max_inflight` a POST is skipped and counted as failed).
async fn drive(p: &Poster, phase: u64, rate: f64, secs: f64) -> Driven {
    let total = ((rate * secs).round() as u64).min(MAX_ORDERS_PER_PHASE);
    let period = Duration::from_secs_f64(1.0 / rate);
    let sem = Arc::new(Semaphore::new(p.max_inflight));
    let post_lat = Arc::new(AtomicHist::default());
    let mut set: JoinSet<(usize, bool)> = JoinSet::new();
    let mut out = Driven { ok_branches: Vec::new(), failed: 0, secs: 0.0, post_lat: Snap::default() };
    let start = tokio::time::Instant::now();
    let take = |r: Result<(usize, bool), tokio::task::JoinError>, out: &mut Driven| match r {
        Ok((b, true)) => out.ok_branches.push(b),
        _ => out.failed += 1,
    };
    for seq in 0..total {
        tokio::time::sleep_until(start + period.mul_f64(seq as f64)).await;
        while let Some(r) = set.try_join_next() {
            take(r, &mut out);
        }
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            out.failed += 1;
            continue;
        };
        let branch = seq as usize % p.layout.branches;
        let req = p.http.post(&p.url).bearer_auth(&p.tokens[p.layout.company_of(branch)]).header("content-type", "application/json");
        let lat = post_lat.clone();
        set.spawn(async move {
            let t = now_ns();
            let body = order_body(branch, &proto::notes_tag(phase, seq, t));
            let ok = match req.body(body).send().await {
                Ok(r) => {
                    let created = r.status().as_u16() == 201;
                    let _ = r.bytes().await;
                    created
                }
                Err(_) => false,
            };
            lat.record(now_ns().saturating_sub(t) / 1_000);
            drop(permit);
            (branch, ok)
        });
    }
    out.secs = start.elapsed().as_secs_f64().max(secs.min(total as f64 / rate));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !set.is_empty() {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(r)) => take(r, &mut out),
            Ok(None) => break,
            Err(_) => {
                out.failed += set.len() as u64;
                set.abort_all();
                break;
            }
        }
    }
    out.post_lat = post_lat.snapshot();
    out
}

#[allow(clippy::too_many_arguments)]
async fn order_phase(
    a: &RunArgs,
    srv: &Target,
    workers: &mut [Worker],
    wpids: &[u32],
    poster: &Poster,
    joined: &Joined,
    phase: u64,
    rate: f64,
    secs: f64,
) -> Result<Orders, String> {
    for w in workers.iter_mut() {
        let v = w.cmd(json!({"cmd": "phase", "id": phase}), Duration::from_secs(30)).await?;
        if v["type"] != "ok" {
            return Err(format!("worker said {v}"));
        }
    }
    let (cpu0, db0, wcpu0, t0) = (srv.cpu_ms(), srv.db_cpu_ms(), cpu_of(wpids), Instant::now());
    let d = drive(poster, phase, rate, secs).await;
    let expected: u64 = d.ok_branches.iter().map(|&b| joined.expected(&poster.layout, b)).sum();
    let deadline = Instant::now() + Duration::from_secs_f64(a.grace_secs);
    let mut s = stats(workers).await?;
    while s.delivered < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s = stats(workers).await?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (cpu1, db1, wcpu1) = (srv.cpu_ms(), srv.db_cpu_ms(), cpu_of(wpids));
    let ms = |us: u64| us as f64 / 1e3;
    Ok(Orders {
        rate,
        duration_s: secs,
        posted: d.ok_branches.len() as u64,
        post_failed: d.failed,
        expected,
        delivered: s.delivered,
        stale: s.stale,
        lat_p50_ms: ms(s.ws_lat_all().quantile(0.5)),
        lat_p99_ms: ms(s.ws_lat_all().quantile(0.99)),
        lat_max_ms: ms(s.ws_lat_all().max),
        lat_mean_ms: s.ws_lat_all().mean() / 1e3,
        ws_p99_ms: ms(s.ws_lat.quantile(0.99)),
        poll_delivered: s.poll_delivered,
        poll_p50_ms: ms(s.poll_lat.quantile(0.5)),
        poll_p99_ms: ms(s.poll_lat.quantile(0.99)),
        deliveries_per_s: s.delivered as f64 / d.secs,
        post_p50_ms: ms(d.post_lat.quantile(0.5)),
        post_p99_ms: ms(d.post_lat.quantile(0.99)),
        server_cpu_pct: (cpu1 - cpu0) / (elapsed * 1e3) * 100.0,
        client_cpu_pct: (wcpu1 - wcpu0) / (elapsed * 1e3) * 100.0,
        db_cpu_pct: (db1 - db0) / (elapsed * 1e3) * 100.0,
        by_target: s
            .by_target
            .iter()
            .map(|(&t, (delivered, lat))| TargetLat {
                addr: srv.addrs[t].to_string(),
                posted_here: t == 0,
                delivered: *delivered,
                p50_ms: ms(lat.quantile(0.5)),
                p99_ms: ms(lat.quantile(0.99)),
                max_ms: ms(lat.max),
            })
            .collect(),
        live_after: s.live,
        errors: s.errors,
    })
}

impl Stats {
    /// Latency over every delivery, WebSocket and polling.
    fn ws_lat_all(&self) -> Snap {
        let mut all = self.ws_lat.clone();
        all.merge(&self.poll_lat);
        all
    }
}
