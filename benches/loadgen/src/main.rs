//! branchd-loadgen: the load harness of issue 7. See `--help` and docs/BENCHMARKS.md.

mod clock;
mod coord;
mod escpos;
mod hist;
mod jwt;
mod printlat;
mod proto;
mod report;
mod server;
mod sync;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

const LONG_ABOUT: &str = "\
Opens N authenticated Socket.IO v4 clients (WebSocket; a fraction on HTTP long-polling), each \
multiplexing the namespaces on one Engine.IO connection the way staff tablets do, against branchd \
AND the reference Node server (one after the other, same parameters, fresh server per N). For each \
server and each N it measures cold start, idle RSS, connect rate, server CPU per connect, RSS per \
connection, then posts orders over REST at a fixed rate and measures fan-out latency (POST to \
`newOrder` receipt) and delivered versus expected. With --saturate it then raises the order rate \
step by step and reports the highest deliveries/s with p99 within --sat-p99-ms.

Clients are split over worker processes (this binary re-executed) so that no process holds more \
than --clients-per-worker sockets (the open-file limit here is 20,000 per process). Every loop is \
bounded in count and time; all traffic stays on 127.0.0.0/8.

Layout: K branches lg-br-0..K-1 spread over C companies lg-co-0..C-1. Client i is a company_owner \
of one company every 1/--owner-fraction clients, otherwise a cashier of branch i mod K. Order j goes \
to branch j mod K; it should reach the cashiers of that branch and the owners of its company.

Output: a table with reference/branchd ratios on stdout, DIR/result.json, DIR/plot.svg (latency and \
memory against N), and the servers' logs in DIR.

Examples:
  branchd-loadgen --clients 500 --rate 20 --duration 10 --polling-fraction 0.02 --check
  branchd-loadgen --clients 2000,10000 --rate 20,10 --duration 10   # 20 orders/s at 2,000, 10 at 10,000
  branchd-loadgen --clients 1000,5000,10000,19500 --rate 0          # idle memory only
  branchd-loadgen --clients 10000 --branches 20 --owner-fraction 0 --rate 0 --saturate --scratch /dev/shm
  branchd-loadgen --cluster 127.0.0.1:8001,127.0.0.1:8002 --cluster-pids 101,102 --clients 2000  # running hub cluster

Other modes (each has its own --help):
  branchd-loadgen print-latency ...   # order POST -> last kitchen-ticket byte at a printer emulator
  branchd-loadgen sync ...            # branch(es)->hub drain rate and online latency
  benches/run-cluster.sh              # hub cluster on PostgreSQL vs the SQLite hub (issue 15)

See docs/BENCHMARKS.md for the figures and how they were taken.";

#[derive(Parser, Debug, Clone)]
#[command(name = "branchd-loadgen", version, about = "Side-by-side Socket.IO load harness: branchd vs the reference Node server", long_about = LONG_ABOUT)]
pub struct RunArgs {
    /// Servers to run, in order (branchd, reference).
    #[arg(long, value_delimiter = ',', default_value = "branchd,reference")]
    pub servers: Vec<String>,
    /// The branchd binary (a release build).
    #[arg(long, default_value = "target/release/branchd")]
    pub branchd: PathBuf,
    /// A copy of shared/reference-server with node_modules installed (`npm ci`).
    #[arg(long, default_value = "target/reference-server")]
    pub reference_dir: PathBuf,
    /// The Node.js executable.
    #[arg(long, default_value = "node")]
    pub node: String,
    /// Numbers of clients (Engine.IO connections), comma-separated: one case per value.
    #[arg(long, value_delimiter = ',', default_value = "2000")]
    pub clients: Vec<usize>,
    /// Branches (K).
    #[arg(long, default_value_t = 10)]
    pub branches: usize,
    /// Companies (C); branch b belongs to company b mod C.
    #[arg(long, default_value_t = 2)]
    pub companies: usize,
    /// Fraction of clients that are company_owners (room company:C) instead of cashiers.
    #[arg(long, default_value_t = 0.02)]
    pub owner_fraction: f64,
    /// Fraction of clients on HTTP long-polling instead of WebSocket.
    #[arg(long, default_value_t = 0.0)]
    pub polling_fraction: f64,
    /// Fraction of clients that run the in-order probe (SPEC §6) right after connecting:
    /// six acked events on `/orders` with handlers of different speeds (leave, catchUp,
    /// join, requestLiveOrders, leave, join of its branch), sent in one go; the acks must
    /// come back in order, and the client must end up in its room. Adds to the connect
    /// phase's time and CPU, so the figures of record run without it (0).
    #[arg(long, default_value_t = 0.0)]
    pub order_probes: f64,
    /// Namespaces each client connects, multiplexed on its one connection.
    #[arg(long, value_delimiter = ',', default_value = "/orders,/availability,/printing-ws")]
    pub namespaces: Vec<String>,
    /// Orders per second during the fixed-rate phase (0: no order phase). One value for
    /// every N, or one per --clients value (e.g. --clients 2000,10000 --rate 20,10).
    #[arg(long, value_delimiter = ',', default_value = "20")]
    pub rate: Vec<f64>,
    /// Seconds of the fixed-rate phase.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds between the server's start and the idle RSS reading.
    #[arg(long, default_value_t = 1.0)]
    pub settle_secs: f64,
    /// Seconds to hold the connections idle before reading the connected RSS.
    #[arg(long, default_value_t = 3.0)]
    pub idle_secs: f64,
    /// At most this many seconds to wait for outstanding deliveries after the last POST.
    #[arg(long, default_value_t = 5.0)]
    pub grace_secs: f64,
    /// At most this many clients per worker process.
    #[arg(long, default_value_t = 5000)]
    pub clients_per_worker: usize,
    /// Worker processes (default: from --clients-per-worker, at least 2 from 2,000 clients).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Tokio threads per worker process.
    #[arg(long, default_value_t = 1)]
    pub worker_threads: usize,
    /// Handshakes in flight per worker.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Total connections per second (0: as fast as --concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// Client source addresses 127.0.0.1..=127.0.0.N (0: one per 25,000 clients).
    #[arg(long, default_value_t = 0)]
    pub source_ips: usize,
    /// Seconds a client may take to connect (TCP, WebSocket, every namespace).
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,
    /// POSTs in flight at most (beyond: counted as errors, not sent).
    #[arg(long, default_value_t = 512)]
    pub max_inflight_posts: usize,
    /// After the fixed-rate phase, raise the order rate step by step until two steps in a row
    /// miss: p99 over --sat-p99-ms, or a delivery missing, or a POST failing.
    #[arg(long)]
    pub saturate: bool,
    /// First saturation rate, orders/s.
    #[arg(long, default_value_t = 10.0)]
    pub sat_start: f64,
    /// Each saturation step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    pub sat_factor: f64,
    /// Seconds per saturation step.
    #[arg(long, default_value_t = 5.0)]
    pub sat_step_secs: f64,
    /// At most this many saturation steps.
    #[arg(long, default_value_t = 14)]
    pub sat_max_steps: usize,
    /// The p99 bound of a passing saturation step.
    #[arg(long, default_value_t = 50.0)]
    pub sat_p99_ms: f64,
    /// Shared HS256 secret given to both servers; tokens are signed with it here.
    #[arg(long, default_value = "loadgen-secret-0123456789abcdef")]
    pub jwt_secret: String,
    /// Where branchd's data directories go (default: OUT/scratch). Put it on tmpfs
    /// (/dev/shm) to take the disk's fsync out of the POST latency.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Output directory: result.json, plot.svg, server logs.
    #[arg(long, default_value = "target/loadgen")]
    pub out: PathBuf,
    /// Exit 1 unless branchd held every client, delivered exactly what was expected, each
    /// client's broadcasts in event order and once, answered every order probe in order, and
    /// kept p99 within --check-p99-ms (for CI).
    #[arg(long)]
    pub check: bool,
    #[arg(long, default_value_t = 1000.0)]
    pub check_p99_ms: f64,
    /// WebSocket clients connect over TLS (wss://), trusting branchd's own CA (fetched from
    /// its /ca.crt); branchd runs with HTTPS on. Without it branchd runs with `--tls off`.
    /// branchd only, WebSocket only (--polling-fraction 0).
    #[arg(long)]
    pub tls: bool,
    /// Already-running servers (host:port, comma-separated) instead of starting any: a hub
    /// cluster on one database, or one server. Worker w connects its clients to address
    /// w mod len; orders are POSTed to the first address only, so the clients of the others
    /// measure cross-process delivery (reported per address). The servers must already have
    /// the layout's companies and branches (admin CLI) and --jwt-secret; --servers, --tls and
    /// cold start do not apply.
    #[arg(long, value_delimiter = ',')]
    pub cluster: Vec<std::net::SocketAddr>,
    /// With --cluster: the server processes' pids, for RSS and CPU readings (summed).
    #[arg(long, value_delimiter = ',')]
    pub cluster_pids: Vec<u32>,
    /// With --cluster: the name of the case in the table.
    #[arg(long, default_value = "cluster")]
    pub cluster_name: String,
    /// A database server's pid (PostgreSQL's postmaster): its CPU and its children's (live
    /// backends and exited ones) during the order phase is reported as db_cpu_pct.
    #[arg(long)]
    pub db_pid: Option<u32>,
    /// Free-form label stored in result.json (e.g. the git commit).
    #[arg(long, default_value = "")]
    pub label: String,
}

impl RunArgs {
    /// The order rate of the case with `idx`-th --clients value.
    pub fn rate_for(&self, idx: usize) -> f64 {
        if self.rate.len() == self.clients.len() { self.rate[idx] } else { self.rate.first().copied().unwrap_or(0.0) }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__worker") {
        args.remove(1);
        return worker::main(worker::WorkerArgs::parse_from(args));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("branchd-loadgen: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.get(1).map(String::as_str) {
        Some("print-latency") => {
            args.remove(1);
            rt.block_on(printlat::run(printlat::PrintArgs::parse_from(args)))
        }
        Some("sync") => {
            args.remove(1);
            rt.block_on(sync::run(sync::SyncArgs::parse_from(args)))
        }
        _ => rt.block_on(coord::run(RunArgs::parse_from(args))),
    }
}
