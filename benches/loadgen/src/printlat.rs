//! `branchd-loadgen print-latency`: order POST → last byte of its kitchen ticket at a TCP
//! ESC/POS printer emulator (issues 3 and 7: p99 ≤ 25 ms).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::clock::now_ns;
use crate::escpos::{self, EmuStats, Job};
use crate::proto::Layout;
use crate::server::{self, Kind, Server, Setup};

const MAX_ORDERS: usize = 100_000;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "branchd-loadgen print-latency",
    about = "Order POST → last kitchen-ticket byte at a TCP ESC/POS printer emulator",
    long_about = "Starts branchd (one company, one branch) and an ESC/POS printer emulator on \
127.0.0.1:0, adds the emulator as a catch-all kitchen printer (POST /api/printers), then POSTs \
--orders orders at --rate orders/s (open loop). Each order's notes carry a unique marker that \
the kitchen ticket prints; the emulator finds it in each job it confirms (GS r 1) and the \
latency is from just before the POST to the arrival of the job's last byte. Reports p50/p99/max \
and checks that every order printed exactly once. Writes OUT/print-latency.json.\n\n\
Example:\n  branchd-loadgen print-latency --orders 1000 --rate 20 --scratch /dev/shm"
)]
pub struct PrintArgs {
    /// The branchd binary (a release build).
    #[arg(long, default_value = "target/release/branchd")]
    pub branchd: PathBuf,
    /// Orders to post.
    #[arg(long, default_value_t = 1000)]
    pub orders: usize,
    /// Orders per second (open loop).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// At most this many seconds to wait for outstanding tickets after the last POST.
    #[arg(long, default_value_t = 60.0)]
    pub grace_secs: f64,
    /// Where branchd's data directory goes (default: OUT/scratch); e.g. /dev/shm.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Output directory: print-latency.json and the server log.
    #[arg(long, default_value = "target/loadgen-print")]
    pub out: PathBuf,
    #[arg(long, default_value = "loadgen-secret-0123456789abcdef")]
    pub jwt_secret: String,
    /// Exit 1 unless every order printed exactly once with p99 within --check-p99-ms.
    #[arg(long)]
    pub check: bool,
    #[arg(long, default_value_t = 25.0)]
    pub check_p99_ms: f64,
}

/// The marker in an order's notes (the kitchen ticket prints the notes).
fn marker(seq: usize) -> String {
    format!("PLX{seq:06}Y")
}

fn find_marker(text: &str) -> Option<usize> {
    let at = text.find("PLX")?;
    let tail = &text[at + 3..];
    let end = tail.find('Y')?;
    tail[..end].parse().ok()
}

pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub async fn run(a: PrintArgs) -> ExitCode {
    match run_inner(a).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("branchd-loadgen print-latency: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(a: PrintArgs) -> Result<ExitCode, String> {
    if a.orders == 0 || a.orders > MAX_ORDERS || a.rate <= 0.0 || a.rate > 10_000.0 {
        return Err(format!("--orders must be 1..={MAX_ORDERS} and --rate in (0, 10000]"));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let scratch = a.scratch.clone().unwrap_or_else(|| a.out.join("scratch"));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;

    let stats = Arc::new(EmuStats::default());
    let (jtx, mut jrx) = mpsc::unbounded_channel::<Job>();
    let (emu_port, emu) = escpos::start(jtx, stats.clone()).await?;
    let layout = Layout { branches: 1, companies: 1, owner_every: 0, polling_every: 0 };
    let setup = Setup {
        branchd: &a.branchd,
        reference_dir: &a.out,
        node: "node",
        secret: &a.jwt_secret,
        layout,
        scratch: &scratch,
        log_dir: &a.out,
        tag: "print".into(),
        serve_args: Vec::new(),
        env: Vec::new(),
        port: None,
        data_dir: None,
    };
    let (mut srv, _) = Server::start(Kind::Branchd, &setup).await?;
    let res = measure(&a, &srv, emu_port, &stats, &mut jrx).await;
    srv.stop().await;
    emu.abort();
    let (summary, ok) = res?;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    let path = a.out.join("print-latency.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap_or_default()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("print-latency: wrote {}", path.display());
    if a.check && !ok {
        eprintln!("print-latency check FAILED");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    a: &PrintArgs,
    srv: &Server,
    emu_port: u16,
    stats: &EmuStats,
    jobs: &mut mpsc::UnboundedReceiver<Job>,
) -> Result<(Value, bool), String> {
    let http =
        reqwest::Client::builder().tcp_nodelay(true).timeout(Duration::from_secs(30)).build().map_err(|e| format!("http client: {e}"))?;
    let base = format!("http://{}", srv.addr());
    let branch = Layout::branch_id(0);
    let token = crate::jwt::sign(&a.jwt_secret, "lg-print", "company_owner", &Layout::company_id(0), None, 86_400);
    let printer = json!({
        "branchId": branch, "name": "Bench kitchen", "role": "kitchen", "stations": [],
        "connection": {"type": "network", "host": "127.0.0.1", "port": emu_port}
    });
    let r = http
        .post(format!("{base}/api/printers"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(printer.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let st = r.status();
    let body: Value = r.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    if !st.is_success() {
        return Err(format!("POST /api/printers: {st} {body}"));
    }
    let pid = body["id"].as_str().ok_or(format!("POST /api/printers answered {body}"))?.to_string();
    // Wait (bounded) until branchd has seen the emulator online.
    let mut status = Value::Null;
    for _ in 0..100 {
        let r = http.get(format!("{base}/api/printers/{pid}/status")).bearer_auth(&token).send().await;
        if let Ok(r) = r {
            status = r.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            if status["status"] == "online" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("print-latency: printer {pid} on 127.0.0.1:{emu_port}: {status}");
    // Drain status-check jobs (none expected) before the orders.
    while jobs.try_recv().is_ok() {}

    let n = a.orders;
    let t0: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let post_ms: Arc<std::sync::Mutex<Vec<f64>>> = Arc::default();
    let mut set: JoinSet<bool> = JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let start = tokio::time::Instant::now();
    let mut printed: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut foreign = 0u64;
    let mut dup_banners = 0u64;
    let mut take = |j: Job, printed: &mut BTreeMap<usize, Vec<u64>>| {
        if j.text.contains("DUPLICATE") || j.text.contains("REPRINT") {
            dup_banners += 1;
        }
        match find_marker(&j.text) {
            Some(seq) if seq < n => printed.entry(seq).or_default().push(j.last_byte_ns),
            _ => foreign += 1,
        }
    };
    let cpu0 = server::cpu_ms(srv.pid);
    let wall0 = Instant::now();
    for seq in 0..n {
        tokio::time::sleep_until(start + period.mul_f64(seq as f64)).await;
        while let Ok(j) = jobs.try_recv() {
            take(j, &mut printed);
        }
        let body = json!({
            "branchId": branch,
            "type": "takeaway",
            "items": [
                {"name": "Chicken shawarma", "quantity": 2, "unitPrice": 650},
                {"name": "Fattoush", "quantity": 1, "unitPrice": 450, "notes": "no onions"}
            ],
            "notes": marker(seq),
        })
        .to_string();
        let req = http.post(format!("{base}/api/orders")).bearer_auth(&token).header("content-type", "application/json").body(body);
        let (t0, post_ms) = (t0.clone(), post_ms.clone());
        set.spawn(async move {
            let t = now_ns();
            t0[seq].store(t, Relaxed);
            let ok = match req.send().await {
                Ok(r) => {
                    let ok = r.status().as_u16() == 201;
                    let _ = r.bytes().await;
                    ok
                }
                Err(_) => false,
            };
            if let Ok(mut v) = post_ms.lock() {
                v.push((now_ns() - t) as f64 / 1e6);
            }
            ok
        });
    }
    let mut posted = 0u64;
    let mut post_failed = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        if matches!(r, Ok(true)) {
            posted += 1;
        } else {
            post_failed += 1;
        }
    }
    post_failed += set.len() as u64;
    set.abort_all();
    // Wait for the outstanding tickets, then 2 s more for any second copy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(a.grace_secs);
    while (printed.len() as u64) < posted {
        match tokio::time::timeout_at(deadline, jobs.recv()).await {
            Ok(Some(j)) => take(j, &mut printed),
            _ => break,
        }
    }
    let settle = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(j)) = tokio::time::timeout_at(settle, jobs.recv()).await {
        take(j, &mut printed);
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = server::cpu_ms(srv.pid) - cpu0;
    let (rss, hwm) = server::rss_kib(srv.pid);

    let mut lat: Vec<f64> = printed
        .iter()
        .filter_map(|(&seq, ts)| {
            let t = t0[seq].load(Relaxed);
            (t > 0).then(|| ts[0].saturating_sub(t) as f64 / 1e6)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let twice = printed.values().filter(|v| v.len() > 1).count();
    let mut post = post_ms.lock().map(|v| v.clone()).unwrap_or_default();
    post.sort_by(f64::total_cmp);
    let p99 = quantile(&lat, 0.99);
    let ok = post_failed == 0 && printed.len() == n && twice == 0 && p99 <= a.check_p99_ms;
    let summary = json!({
        "orders": n,
        "rate": a.rate,
        "posted": posted,
        "post_failed": post_failed,
        "printed_distinct": printed.len(),
        "printed_more_than_once": twice,
        "jobs_without_marker": foreign,
        "duplicate_or_reprint_banners": dup_banners,
        "print_p50_ms": quantile(&lat, 0.5),
        "print_p90_ms": quantile(&lat, 0.9),
        "print_p99_ms": p99,
        "print_max_ms": lat.last().copied().unwrap_or(0.0),
        "print_mean_ms": if lat.is_empty() { 0.0 } else { lat.iter().sum::<f64>() / lat.len() as f64 },
        "post_p50_ms": quantile(&post, 0.5),
        "post_p99_ms": quantile(&post, 0.99),
        "post_max_ms": post.last().copied().unwrap_or(0.0),
        "emulator": {
            "connections": stats.connections.load(Relaxed),
            "status_requests": stats.status_requests.load(Relaxed),
            "jobs": stats.jobs.load(Relaxed),
            "bytes": stats.bytes.load(Relaxed),
        },
        "server_cpu_pct": cpu / (wall * 1e3) * 100.0,
        "server_rss_kib": rss,
        "server_rss_hwm_kib": hwm,
        "scratch": a.scratch.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "OUT/scratch".into()),
        "ok": ok,
    });
    Ok((summary, ok))
}

#[cfg(test)]
mod tests {
    #[test]
    fn markers_round_trip() {
        let t = format!("KITCHEN\n#12\nORDER NOTES\n{}\n", super::marker(42));
        assert_eq!(super::find_marker(&t), Some(42));
        assert_eq!(super::find_marker("no marker"), None);
        assert_eq!(super::quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(super::quantile(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
    }
}
