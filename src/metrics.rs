//! Process metrics in Prometheus text format: connections per namespace, events emitted,
//! HTTP requests and latency, Socket.IO messages. Counters are atomics; rendering is cheap.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::domain::NAMESPACES;

const BUCKETS_MS: [f64; 12] = [0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }
}

/// Protective limits (SPEC §6: every limit hit is counted in `/metrics`).
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// A login from a source address that failed too often (refused without a check).
    LoginSourceLocked,
    /// A login for an email that failed too often.
    LoginEmailLocked,
    /// More logins at once from one source address than allowed.
    LoginSourceBusy,
    /// The password-check queue was full.
    LoginQueueFull,
    /// A request body refused before it was read (no valid credential for that route).
    BodyUnauthenticated,
    /// A new Socket.IO session refused: too many from one source address.
    SessionRate,
}

impl Limit {
    const ALL: [Limit; 6] = [
        Limit::LoginSourceLocked,
        Limit::LoginEmailLocked,
        Limit::LoginSourceBusy,
        Limit::LoginQueueFull,
        Limit::BodyUnauthenticated,
        Limit::SessionRate,
    ];
    fn label(self) -> &'static str {
        match self {
            Limit::LoginSourceLocked => "login_source_locked",
            Limit::LoginEmailLocked => "login_email_locked",
            Limit::LoginSourceBusy => "login_source_busy",
            Limit::LoginQueueFull => "login_queue_full",
            Limit::BodyUnauthenticated => "body_unauthenticated",
            Limit::SessionRate => "socketio_session_rate",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    limits: [AtomicU64; 6],
    connections: [AtomicI64; 3],
    connects_refused: AtomicU64,
    events_emitted: [AtomicU64; 3],
    deliveries_dropped: [AtomicU64; 3],
    messages_received: [AtomicU64; 3],
    message_errors: [AtomicU64; 3],
    http_by_class: [AtomicU64; 5],
    http_latency: Histogram,
    db_write_errors: AtomicU64,
    print_retries: AtomicU64,
    print_alerts: AtomicU64,
}

fn ns_index(ns: &str) -> usize {
    NAMESPACES.iter().position(|n| *n == ns).unwrap_or(0)
}

impl Metrics {
    pub fn connected(&self, ns: &str, delta: i64) {
        self.connections[ns_index(ns)].fetch_add(delta, Relaxed);
    }
    pub fn connections(&self, ns: &str) -> i64 {
        self.connections[ns_index(ns)].load(Relaxed)
    }
    pub fn refused(&self) {
        self.connects_refused.fetch_add(1, Relaxed);
    }
    pub fn emitted(&self, ns: &str) {
        self.events_emitted[ns_index(ns)].fetch_add(1, Relaxed);
    }
    /// Deliveries of a broadcast skipped because a client's queue was full.
    pub fn dropped(&self, ns: &str, n: u64) {
        self.deliveries_dropped[ns_index(ns)].fetch_add(n, Relaxed);
    }
    pub fn message(&self, ns: &str, ok: bool) {
        self.messages_received[ns_index(ns)].fetch_add(1, Relaxed);
        if !ok {
            self.message_errors[ns_index(ns)].fetch_add(1, Relaxed);
        }
    }
    pub fn http(&self, status: u16, took: Duration) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.http_by_class[class].fetch_add(1, Relaxed);
        self.http_latency.observe(took);
    }
    pub fn limit_hit(&self, limit: Limit) {
        self.limits[limit as usize].fetch_add(1, Relaxed);
    }
    pub fn limit_hits(&self, limit: Limit) -> u64 {
        self.limits[limit as usize].load(Relaxed)
    }
    pub fn db_write_error(&self) {
        self.db_write_errors.fetch_add(1, Relaxed);
    }
    /// A print attempt that will be retried later (printer not ready, delivery failed, or
    /// the queue could not record its work): counted here instead of logged each time.
    pub fn print_retry(&self) {
        self.print_retries.fetch_add(1, Relaxed);
    }
    /// A `printer_stalled` alert raised.
    pub fn print_stalled(&self) {
        self.print_alerts.fetch_add(1, Relaxed);
    }

    /// Renders every metric; `db_ok` and `uptime` are read by the caller.
    pub fn render(&self, db_ok: bool, uptime: Duration) -> String {
        let mut out = String::with_capacity(4096);
        self.render_socketio(&mut out);
        self.render_http(&mut out);
        let _ = writeln!(
            out,
            "# HELP branchd_db_up Whether the database answers.\n# TYPE branchd_db_up gauge\nbranchd_db_up {}",
            u8::from(db_ok)
        );
        let _ = writeln!(
            out,
            "# HELP branchd_db_write_errors_total Failed database writes.\n# TYPE branchd_db_write_errors_total counter\nbranchd_db_write_errors_total {}",
            self.db_write_errors.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP branchd_limit_hits_total Requests refused by a protective limit.\n# TYPE branchd_limit_hits_total counter"
        );
        for l in Limit::ALL {
            let _ = writeln!(out, "branchd_limit_hits_total{{limit=\"{}\"}} {}", l.label(), self.limit_hits(l));
        }
        let _ = writeln!(
            out,
            "# HELP branchd_print_retries_total Print attempts put off to retry (not ready, failed, or not recorded).\n# TYPE branchd_print_retries_total counter\nbranchd_print_retries_total {}",
            self.print_retries.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP branchd_printer_stalled_total printer_stalled alerts raised.\n# TYPE branchd_printer_stalled_total counter\nbranchd_printer_stalled_total {}",
            self.print_alerts.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP branchd_uptime_seconds Seconds since start.\n# TYPE branchd_uptime_seconds gauge\nbranchd_uptime_seconds {}",
            uptime.as_secs()
        );
        out
    }

    /// The Socket.IO series, per namespace.
    fn render_socketio(&self, out: &mut String) {
        let ns_series = |out: &mut String, name: &str, help: &str, kind: &str, vals: &dyn Fn(usize) -> i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (i, ns) in NAMESPACES.iter().enumerate() {
                let _ = writeln!(out, "{name}{{namespace=\"{ns}\"}} {}", vals(i));
            }
        };
        ns_series(out, "branchd_socketio_connections", "Connected Socket.IO clients.", "gauge", &|i| self.connections[i].load(Relaxed));
        ns_series(out, "branchd_events_emitted_total", "Broadcast events emitted.", "counter", &|i| {
            self.events_emitted[i].load(Relaxed) as i64
        });
        ns_series(
            out,
            "branchd_broadcast_deliveries_dropped_total",
            "Deliveries skipped because a client's queue was full (it fell more than the queue behind).",
            "counter",
            &|i| self.deliveries_dropped[i].load(Relaxed) as i64,
        );
        ns_series(out, "branchd_socketio_messages_total", "Client-to-server events received.", "counter", &|i| {
            self.messages_received[i].load(Relaxed) as i64
        });
        ns_series(out, "branchd_socketio_message_errors_total", "Client events answered with an error.", "counter", &|i| {
            self.message_errors[i].load(Relaxed) as i64
        });
        let _ = writeln!(
            out,
            "# HELP branchd_socketio_connects_refused_total Handshakes refused.\n# TYPE branchd_socketio_connects_refused_total counter"
        );
        let _ = writeln!(out, "branchd_socketio_connects_refused_total {}", self.connects_refused.load(Relaxed));
    }

    /// The HTTP series: requests by status class and the latency histogram.
    fn render_http(&self, out: &mut String) {
        let _ =
            writeln!(out, "# HELP branchd_http_requests_total HTTP requests by status class.\n# TYPE branchd_http_requests_total counter");
        for (i, c) in self.http_by_class.iter().enumerate() {
            let _ = writeln!(out, "branchd_http_requests_total{{class=\"{}xx\"}} {}", i + 1, c.load(Relaxed));
        }
        let h = &self.http_latency;
        let _ = writeln!(
            out,
            "# HELP branchd_http_request_duration_seconds HTTP request latency.\n# TYPE branchd_http_request_duration_seconds histogram"
        );
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(out, "branchd_http_request_duration_seconds_bucket{{le=\"{}\"}} {}", b / 1000.0, h.buckets[i].load(Relaxed));
        }
        let count = h.count.load(Relaxed);
        let _ = writeln!(out, "branchd_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "branchd_http_request_duration_seconds_sum {}", h.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "branchd_http_request_duration_seconds_count {count}");
    }
}
