//! Results: the per-case record (serialised into result.json), the side-by-side table with
//! reference/branchd ratios, the SVG plot, the machine description and the CI check.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::RunArgs;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Orders {
    pub rate: f64,
    pub duration_s: f64,
    pub posted: u64,
    pub post_failed: u64,
    pub expected: u64,
    pub delivered: u64,
    pub stale: u64,
    pub lat_p50_ms: f64,
    pub lat_p99_ms: f64,
    pub lat_max_ms: f64,
    pub lat_mean_ms: f64,
    pub ws_p99_ms: f64,
    pub poll_delivered: u64,
    pub poll_p50_ms: f64,
    pub poll_p99_ms: f64,
    pub deliveries_per_s: f64,
    pub post_p50_ms: f64,
    pub post_p99_ms: f64,
    pub server_cpu_pct: f64,
    pub client_cpu_pct: f64,
    /// CPU of --db-pid and its children (PostgreSQL), when given.
    pub db_cpu_pct: f64,
    pub live_after: u64,
    pub errors: BTreeMap<String, u64>,
    /// Latency per server address the clients were connected to (--cluster).
    pub by_target: Vec<TargetLat>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetLat {
    pub addr: String,
    /// The orders were POSTed to this address; the others received them across processes.
    pub posted_here: bool,
    pub delivered: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SatStep {
    pub rate: f64,
    pub ok: bool,
    pub orders: Orders,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Saturation {
    pub best_deliveries_per_s: f64,
    pub best_rate: f64,
    pub best_p99_ms: f64,
    pub steps: Vec<SatStep>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Case {
    pub server: String,
    pub clients: usize,
    pub workers: usize,
    pub failure: Option<String>,
    pub cold_start_ms: f64,
    pub rss_idle_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_end_kib: u64,
    pub rss_hwm_kib: u64,
    pub bytes_per_connection: f64,
    pub held: u64,
    pub failed: u64,
    pub orders_joined: u64,
    /// In-order probes run (--order-probes) and answered in order.
    pub order_probes: u64,
    pub order_probes_ok: u64,
    pub live_at_end: u64,
    pub connect_secs: f64,
    pub connect_total_secs: f64,
    pub connect_rate: f64,
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    pub cpu_connect_ms: f64,
    pub cpu_ms_per_connect: f64,
    pub health: Option<Value>,
    pub orders: Option<Orders>,
    pub saturation: Option<Saturation>,
    pub errors: BTreeMap<String, u64>,
    pub first_refusal: Option<String>,
    pub server_alive: bool,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn machine(a: &RunArgs) -> Value {
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0);
    let uname = sh("uname", &["-a"]);
    let node = sh(&a.node, &["--version"]);
    let branchd_size = std::fs::metadata(&a.branchd).map(|m| m.len()).unwrap_or(0);
    let summary =
        format!("{nproc} cores, {:.1} GiB, node {node}, branchd binary {:.1} MB", mem_kib as f64 / 1048576.0, branchd_size as f64 / 1e6);
    json!({"nproc": nproc, "mem_total_kib": mem_kib, "uname": uname, "node": node, "branchd_binary_bytes": branchd_size, "summary": summary})
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn one_line(c: &Case) -> String {
    if let Some(f) = &c.failure {
        return format!("{} N={}: FAILED: {f}", c.server, c.clients);
    }
    let mut s = format!(
        "{} N={}: held {}/{} in {:.2} s ({:.0}/s), cold start {:.0} ms, RSS {:.1} -> {:.1} MB ({:.1} KB/conn), CPU {:.3} ms/connect",
        c.server,
        c.clients,
        c.held,
        c.clients,
        c.connect_secs,
        c.connect_rate,
        c.cold_start_ms,
        mb(c.rss_idle_kib),
        mb(c.rss_connected_kib),
        c.bytes_per_connection / 1024.0,
        c.cpu_ms_per_connect
    );
    if let Some(o) = &c.orders {
        let _ = write!(
            s,
            "; orders {:.0}/s x {:.0} s: delivered {}/{}, p50 {:.2} p99 {:.2} max {:.1} ms, {:.0} deliveries/s, server CPU {:.0}%",
            o.rate, o.duration_s, o.delivered, o.expected, o.lat_p50_ms, o.lat_p99_ms, o.lat_max_ms, o.deliveries_per_s, o.server_cpu_pct
        );
    }
    for t in c.orders.iter().flat_map(|o| &o.by_target) {
        let _ = write!(
            s,
            "; clients on {}{}: {} delivered, p50 {:.2} p99 {:.2} max {:.1} ms",
            t.addr,
            if t.posted_here { " (POSTed here)" } else { "" },
            t.delivered,
            t.p50_ms,
            t.p99_ms,
            t.max_ms
        );
    }
    if let Some(sat) = &c.saturation {
        let _ = write!(s, "; saturation: {:.0} deliveries/s with p99 {:.1} ms", sat.best_deliveries_per_s, sat.best_p99_ms);
    }
    let errs: u64 = c.errors.iter().filter(|(k, _)| k.as_str() != "disconnected").map(|(_, v)| v).sum();
    if errs > 0 {
        let _ = write!(s, "; errors {:?}", c.errors);
    }
    s
}

fn ratio(r: f64, b: f64) -> String {
    if b > 0.0 && r > 0.0 { format!("{:.1}x", r / b) } else { "-".into() }
}

fn errors_total(c: &Case) -> u64 {
    c.failed + c.orders.as_ref().map(|o| o.post_failed + o.expected.abs_diff(o.delivered)).unwrap_or(0)
}

/// A Markdown table: one row per case, and a ratio row (reference / branchd) per N.
pub fn table(cases: &[Case]) -> String {
    let mut t = String::new();
    t.push_str("| N | server | held | connects/s | CPU ms/connect | RSS idle MB | RSS connected MB | KB/conn | orders/s | p50 ms | p99 ms | max ms | deliveries/s | delivered/expected | cold start ms | errors |\n");
    t.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mut ns: Vec<usize> = cases.iter().map(|c| c.clients).collect();
    ns.dedup();
    for n in ns {
        let row = cases.iter().filter(|c| c.clients == n);
        for c in row.clone() {
            if let Some(f) = &c.failure {
                let _ = writeln!(t, "| {n} | {} | failed: {} |||||||||||||||", c.server, f.replace('|', "/"));
                continue;
            }
            let o = c.orders.clone().unwrap_or_default();
            let has = c.orders.is_some();
            let opt = |v: String| if has { v } else { "-".into() };
            let _ = writeln!(
                t,
                "| {n} | {} | {} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                c.server,
                c.held,
                c.connect_rate,
                c.cpu_ms_per_connect,
                mb(c.rss_idle_kib),
                mb(c.rss_connected_kib),
                c.bytes_per_connection / 1024.0,
                opt(format!("{:.0}", o.rate)),
                opt(format!("{:.2}", o.lat_p50_ms)),
                opt(format!("{:.2}", o.lat_p99_ms)),
                opt(format!("{:.1}", o.lat_max_ms)),
                opt(format!("{:.0}", o.deliveries_per_s)),
                opt(format!("{}/{}", o.delivered, o.expected)),
                c.cold_start_ms,
                errors_total(c),
            );
        }
        let b = row.clone().find(|c| c.server == "branchd" && c.failure.is_none());
        let r = row.clone().find(|c| c.server == "reference" && c.failure.is_none());
        if let (Some(b), Some(r)) = (b, r) {
            let (bo, ro) = (b.orders.clone().unwrap_or_default(), r.orders.clone().unwrap_or_default());
            let _ = writeln!(
                t,
                "| {n} | **reference / branchd** | | {} | {} | {} | {} | {} | | {} | {} | {} | {} | | {} | |",
                ratio(r.connect_rate, b.connect_rate),
                ratio(r.cpu_ms_per_connect, b.cpu_ms_per_connect),
                ratio(r.rss_idle_kib as f64, b.rss_idle_kib as f64),
                ratio(r.rss_connected_kib as f64, b.rss_connected_kib as f64),
                ratio(r.bytes_per_connection, b.bytes_per_connection),
                ratio(ro.lat_p50_ms, bo.lat_p50_ms),
                ratio(ro.lat_p99_ms, bo.lat_p99_ms),
                ratio(ro.lat_max_ms, bo.lat_max_ms),
                ratio(ro.deliveries_per_s, bo.deliveries_per_s),
                ratio(r.cold_start_ms, b.cold_start_ms),
            );
        }
    }
    let sats: Vec<&Case> = cases.iter().filter(|c| c.saturation.is_some()).collect();
    if !sats.is_empty() {
        t.push_str("\n| N | server | max deliveries/s with p99 within bound | at orders/s | p99 ms | steps (orders/s: deliveries/s, p99 ms) |\n|---|---|---|---|---|---|\n");
        for c in sats {
            let Some(s) = &c.saturation else { continue };
            let steps: Vec<String> = s
                .steps
                .iter()
                .map(|st| {
                    format!(
                        "{:.0}: {:.0}, {:.1}{}",
                        st.rate,
                        st.orders.deliveries_per_s,
                        st.orders.lat_p99_ms,
                        if st.ok { "" } else { " ✗" }
                    )
                })
                .collect();
            let _ = writeln!(
                t,
                "| {} | {} | {:.0} | {:.0} | {:.1} | {} |",
                c.clients,
                c.server,
                s.best_deliveries_per_s,
                s.best_rate,
                s.best_p99_ms,
                steps.join("; ")
            );
        }
    }
    t
}

/// Problems that fail `--check` (branchd only).
pub fn check(cases: &[Case], p99_bound_ms: f64, orders_expected: bool, probes_expected: bool) -> Vec<String> {
    let mut p = Vec::new();
    for c in cases.iter().filter(|c| c.server == "branchd") {
        if let Some(f) = &c.failure {
            p.push(format!("branchd at {} clients: {f}", c.clients));
            continue;
        }
        if c.held != c.clients as u64 {
            p.push(format!("branchd held {} of {} clients", c.held, c.clients));
        }
        if !c.server_alive {
            p.push("branchd died".into());
        }
        if c.order_probes_ok != c.order_probes {
            p.push(format!("branchd answered {} of {} in-order probes out of order", c.order_probes - c.order_probes_ok, c.order_probes));
        }
        for bad in [
            "order_probe_misordered",
            "closed_during_probe",
            "poll_probe_rounds",
            "delivery_misordered_or_doubled",
            "delivery_without_event_id",
        ] {
            if let Some(n) = c.errors.get(bad).filter(|n| **n > 0) {
                p.push(format!("branchd at {} clients: {bad} × {n}", c.clients));
            }
        }
        if probes_expected && c.order_probes == 0 {
            p.push(format!("branchd at {} clients: no in-order probe ran", c.clients));
        }
        match (&c.orders, orders_expected) {
            (Some(o), _) => {
                if o.expected == 0 || o.delivered != o.expected {
                    p.push(format!(
                        "branchd at {} clients delivered {} of {} expected newOrder events",
                        c.clients, o.delivered, o.expected
                    ));
                }
                if o.post_failed > 0 {
                    p.push(format!("{} order POSTs failed", o.post_failed));
                }
                if o.lat_p99_ms > p99_bound_ms {
                    p.push(format!("branchd fan-out p99 {:.1} ms > {p99_bound_ms} ms", o.lat_p99_ms));
                }
            }
            (None, true) => p.push("no order phase ran".into()),
            (None, false) => {}
        }
    }
    if !cases.iter().any(|c| c.server == "branchd") {
        p.push("branchd was not run".into());
    }
    p
}

// ---- SVG --------------------------------------------------------------------------------

struct Series {
    label: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * e {
            return m * e;
        }
    }
    10.0 * e
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[allow(clippy::too_many_arguments)]
fn panel(out: &mut String, x0: f64, y0: f64, w: f64, h: f64, title: &str, ylabel: &str, log_y: bool, series: &[Series]) {
    let (l, r, t, b) = (60.0, 15.0, 30.0, 45.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let xmax = nice_ceil(all.iter().map(|p| p.0).fold(0.0, f64::max));
    let ymax_raw = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let ymin_pos = all.iter().map(|p| p.1).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let (ylo, yhi) = if log_y {
        let lo = if ymin_pos.is_finite() { 10f64.powf(ymin_pos.log10().floor()) } else { 0.1 };
        let hi = 10f64.powf(ymax_raw.max(lo * 10.0).log10().ceil());
        (lo, hi)
    } else {
        (0.0, nice_ceil(ymax_raw))
    };
    let sx = |x: f64| x0 + l + x / xmax * pw;
    let sy = |y: f64| {
        let f = if log_y { (y.max(ylo).log10() - ylo.log10()) / (yhi.log10() - ylo.log10()) } else { (y - ylo) / (yhi - ylo) };
        y0 + t + ph - f * ph
    };
    let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#, x0 + l, y0 + 18.0, esc(title));
    let _ = writeln!(out, r##"<rect x="{:.1}" y="{:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#888"/>"##, x0 + l, y0 + t);
    // y grid
    let yticks: Vec<f64> = if log_y {
        let mut v = Vec::new();
        let mut y = ylo;
        while y <= yhi * 1.0001 {
            v.push(y);
            y *= 10.0;
        }
        v
    } else {
        (0..=5).map(|i| yhi * i as f64 / 5.0).collect()
    };
    for y in yticks {
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + l,
            sy(y),
            x0 + l + pw,
            sy(y),
            x0 + l - 5.0,
            sy(y) + 4.0,
            if y >= 1.0 || y == 0.0 { format!("{y:.0}") } else { format!("{y}") }
        );
    }
    for i in 0..=5 {
        let x = xmax * i as f64 / 5.0;
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{x:.0}</text>"#, sx(x), y0 + t + ph + 15.0);
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">clients (N)</text>"#,
        x0 + l + pw / 2.0,
        y0 + h - 8.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        x0 + 14.0,
        y0 + t + ph / 2.0,
        x0 + 14.0,
        y0 + t + ph / 2.0,
        esc(ylabel)
    );
    for (k, s) in series.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let dash = if s.dashed { r#" stroke-dasharray="5,4""# } else { "" };
        let _ = writeln!(out, r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#, pts.join(" "), s.color);
        for &(x, y) in &s.points {
            let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#, sx(x), sy(y), s.color);
        }
        let ly = y0 + t + 14.0 + k as f64 * 15.0;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            x0 + l + 10.0,
            x0 + l + 35.0,
            s.color,
            x0 + l + 40.0,
            ly + 4.0,
            esc(&s.label)
        );
    }
}

fn color(server: &str) -> &'static str {
    if server == "branchd" { "#d9480f" } else { "#1c7ed6" }
}

/// Memory and fan-out latency against N, one line per server.
pub fn svg(cases: &[Case]) -> String {
    let mut servers: Vec<&str> = cases.iter().map(|c| c.server.as_str()).collect();
    servers.sort();
    servers.dedup();
    fn ok<'a>(cases: &'a [Case], s: &'a str) -> impl Iterator<Item = &'a Case> + Clone {
        cases.iter().filter(move |c| c.server == s && c.failure.is_none())
    }
    let mut mem = Vec::new();
    let mut per = Vec::new();
    let mut lat = Vec::new();
    for s in &servers {
        mem.push(Series {
            label: format!("{s} RSS connected"),
            color: color(s),
            dashed: false,
            points: ok(cases, s).map(|c| (c.clients as f64, mb(c.rss_connected_kib))).collect(),
        });
        per.push(Series {
            label: format!("{s} KB per connection"),
            color: color(s),
            dashed: false,
            points: ok(cases, s).map(|c| (c.clients as f64, c.bytes_per_connection / 1024.0)).collect(),
        });
        let with =
            |f: fn(&Orders) -> f64| ok(cases, s).filter_map(|c| c.orders.as_ref().map(|o| (c.clients as f64, f(o)))).collect::<Vec<_>>();
        lat.push(Series { label: format!("{s} p99"), color: color(s), dashed: false, points: with(|o| o.lat_p99_ms) });
        lat.push(Series { label: format!("{s} p50"), color: color(s), dashed: true, points: with(|o| o.lat_p50_ms) });
    }
    let has_lat = lat.iter().any(|s| !s.points.is_empty());
    let (w, h) = (420.0, 340.0);
    let panels = if has_lat { 3.0 } else { 2.0 };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{h:.0}" font-family="sans-serif" viewBox="0 0 {:.0} {h:.0}">"#,
        w * panels,
        w * panels
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    out.push('\n');
    panel(&mut out, 0.0, 0.0, w, h, "Server RSS with N idle connections", "MB", false, &mem);
    panel(&mut out, w, 0.0, w, h, "RSS per connection", "KB", false, &per);
    if has_lat {
        panel(&mut out, 2.0 * w, 0.0, w, h, "Fan-out latency, POST to newOrder", "ms (log)", true, &lat);
    }
    out.push_str("</svg>\n");
    out
}
