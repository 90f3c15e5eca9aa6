//! The print queue: one worker task per printer, FIFO, durable (jobs live in SQLite, see
//! `store::print_jobs`). A worker checks the printer is ready, marks the job `printing`,
//! sends it, and marks it `printed` only once the printer confirmed it. Failures go back to
//! the queue with exponential backoff; a delivery that may have printed partly is reprinted
//! with a `POSSIBLE DUPLICATE` banner; kitchen tickets past their expiry raise an alert
//! instead of printing late. Idle workers poll printer status and broadcast changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::drivers::status::{Report, Status};
use super::drivers::{Driver, DriverError, Timeouts};
use super::model::Printer;
use super::render::{self, Rendered};
use crate::app::AppState;
use crate::store::print_jobs::{self, Job};
use crate::store::{StoreError, directory, orders, printers};

const MAX_BACKOFF_MS: i64 = 30_000;

/// A finished job, for callers waiting on one (test prints).
#[derive(Debug, Clone)]
pub struct Finished {
    pub job_id: String,
    pub status: String,
    pub error: Option<String>,
}

struct Worker {
    wake: Arc<Notify>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct PrintQueue {
    workers: Mutex<HashMap<String, Worker>>,
    finished: Mutex<Option<broadcast::Sender<Finished>>>,
    pub timeouts: Timeouts,
}

impl PrintQueue {
    pub fn with_timeouts(timeouts: Timeouts) -> PrintQueue {
        PrintQueue { timeouts, ..PrintQueue::default() }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Finished> {
        let mut guard = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        guard.get_or_insert_with(|| broadcast::channel(256).0).subscribe()
    }

    fn finished(&self, f: Finished) {
        if let Some(tx) = self.finished.lock().ok().and_then(|g| g.clone()) {
            let _ = tx.send(f);
        }
    }

    /// Recovers jobs interrupted by a crash and starts a worker for every printer.
    pub async fn start(state: &AppState) -> Result<(), StoreError> {
        let recovered = state.db().write(|tx| print_jobs::recover_interrupted(tx.conn)).await?;
        if recovered > 0 {
            tracing::warn!(
                jobs = recovered,
                "print jobs were interrupted mid-print; they will print again with a POSSIBLE DUPLICATE banner"
            );
        }
        let all = state.db().read(|c| printers::list(c, None, 0, 100_000)).await?;
        for p in all.items {
            state.print_queue().wake(state, &p.id);
        }
        Ok(())
    }

    /// Wakes the printer's worker (starting it if needed). A hub drives no printer: the ones
    /// it knows are copies of its branches' printers.
    pub fn wake(&self, state: &AppState, printer_id: &str) {
        if state.config().role == crate::config::Role::Hub {
            return;
        }
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = workers.get(printer_id)
            && !w.stop.is_cancelled()
        {
            w.wake.notify_one();
            return;
        }
        let (wake, stop) = (Arc::new(Notify::new()), state.shutdown_token().child_token());
        let task = tokio::spawn(run(state.clone(), printer_id.to_string(), wake.clone(), stop.clone()));
        workers.insert(printer_id.to_string(), Worker { wake, stop, task });
    }

    /// On shutdown: lets jobs being printed finish (up to `limit`), then stops every worker.
    pub async fn drain(&self, limit: Duration) {
        let tasks: Vec<_> = match self.workers.lock() {
            Ok(mut ws) => ws.drain().map(|(_, w)| w.task).collect(),
            Err(_) => vec![],
        };
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("print jobs still running at shutdown; they will be reprinted as possible duplicates");
        }
    }

    /// Stops the worker of a removed printer.
    pub fn forget(&self, printer_id: &str) {
        if let Some(w) = self.workers.lock().ok().and_then(|mut ws| ws.remove(printer_id)) {
            w.stop.cancel();
        }
    }
}

fn backoff_ms(attempts: i64) -> i64 {
    let base = 1000i64.saturating_mul(1 << attempts.clamp(1, 6).saturating_sub(1)).min(MAX_BACKOFF_MS);
    base + rand::thread_rng().gen_range(0..=base / 4)
}

async fn run(state: AppState, printer_id: String, wake: Arc<Notify>, stop: CancellationToken) {
    let poll = state.print_queue().timeouts.poll;
    let mut last_poll = tokio::time::Instant::now() - poll;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let pid = printer_id.clone();
        let printer = match state.db().read(move |c| printers::get(c, &pid)).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                state.print_queue().forget(&printer_id);
                return;
            }
            Err(e) => {
                tracing::warn!(printer_id, error = %e, "cannot read printer");
                sleep_or_wake(&wake, &stop, poll).await;
                continue;
            }
        };
        let driver = Driver::for_printer(
            &printer,
            &state.config().data_dir,
            state.desktops_arc(),
            state.print_queue().timeouts,
            state.config().print_timeout,
        );
        let pid = printer_id.clone();
        let next = state.db().read(move |c| print_jobs::next_for_printer(c, &pid)).await.ok().flatten();
        let now = print_jobs::now_ms();
        match next {
            Some(job) if job.next_attempt_ms <= now => {
                last_poll = tokio::time::Instant::now();
                work_on(&state, &printer, &driver, job).await;
            }
            Some(job) => {
                let wait = Duration::from_millis((job.next_attempt_ms - now) as u64);
                sleep_or_wake(&wake, &stop, wait.min(poll)).await;
            }
            None => {
                if last_poll.elapsed() >= poll {
                    last_poll = tokio::time::Instant::now();
                    if let Some(report) = driver.status().await {
                        record_status(&state, &printer, &report).await;
                    }
                }
                sleep_or_wake(&wake, &stop, poll).await;
            }
        }
    }
}

async fn sleep_or_wake(wake: &Notify, stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}

async fn record_status(state: &AppState, printer: &Printer, report: &Report) {
    let (p, r) = (printer.clone(), report.clone());
    let res = state.db().write(move |tx| printers::set_status(tx, &p, r.status.as_str(), r.detail.as_deref(), r.answered)).await;
    match res {
        Ok(Some(_)) => {
            tracing::info!(printer_id = %printer.id, status = report.status.as_str(), detail = ?report.detail, "printer status changed")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(printer_id = %printer.id, error = %e, "cannot record printer status"),
    }
}

/// Prints one job, or decides it must wait, expire or fail.
async fn work_on(state: &AppState, printer: &Printer, driver: &Driver, job: Job) {
    if job.kind == "kitchen" && job.reprint_of.is_none() && job.expires_at_ms.is_some_and(|e| e < print_jobs::now_ms()) {
        expire(state, &job).await;
        return;
    }
    // Never send into a printer that says it cannot print: it could buffer the job and print
    // it much later, after we gave up on it.
    let mut answers_status = true;
    if let Some(report) = driver.status().await {
        record_status(state, printer, &report).await;
        if !report.printable() {
            let why = report.detail.clone().unwrap_or_else(|| report.status.as_str().to_string());
            retry(state, &job, false, &format!("printer not ready: {why}")).await;
            return;
        }
        if !report.answered && printer.answers_status {
            // It answered before: silence now means busy, jammed or hung, not a status-less
            // model. Sending could print the job much later, or never, with nobody told.
            let why = "printer stopped answering status requests (it answered before): check it is on and not jammed; \
                       if it was replaced by a model without status, edit the printer";
            record_status(state, printer, &Report::new(Status::Unknown, why)).await;
            retry(state, &job, false, why).await;
            return;
        }
        answers_status = report.answered;
    }
    // Only a printer that speaks ESC/POS status can confirm a job; asking one that cannot
    // would make every ticket look uncertain and print again and again.
    let confirm = answers_status && render::profile_for(printer.profile.as_deref()).speaks_escpos();
    let rendered = match render_job(state, printer, &job).await {
        Ok(r) => r,
        Err(why) => {
            finish(state, &job, "failed", &why).await;
            return;
        }
    };
    let id = job.id.clone();
    if let Err(e) = state.db().write(move |tx| print_jobs::mark_printing(tx, &id)).await {
        tracing::error!(job_id = %job.id, error = %e, "cannot mark job printing; not sending it");
        return;
    }
    tracing::info!(job_id = %job.id, printer_id = %printer.id, kind = %job.kind, attempt = job.attempts + 1, "printing");
    match driver.print(&job.id, &rendered, confirm).await {
        Ok(report) if report.status == Status::PaperOut => {
            record_status(state, printer, &report).await;
            retry(state, &job, true, "paper ran out during the job").await;
        }
        Ok(report) => {
            let (id, note) = (job.id.clone(), (!confirm).then_some("sent in full; this printer cannot confirm jobs"));
            match state.db().write(move |tx| print_jobs::mark_printed(tx, &id, note)).await {
                Ok(_) => tracing::info!(job_id = %job.id, printer_id = %printer.id, confirmed = confirm, "printed"),
                Err(e) => tracing::error!(job_id = %job.id, error = %e, "printed, but cannot record it"),
            }
            record_status(state, printer, &report).await;
            state.print_queue().finished(Finished { job_id: job.id.clone(), status: "printed".into(), error: None });
        }
        Err(DriverError::Unreachable(why)) => {
            record_status(state, printer, &Report::new(Status::Offline, why.clone())).await;
            retry(state, &job, false, &why).await;
        }
        Err(DriverError::Broken(why) | DriverError::Unconfirmed(why)) => retry(state, &job, true, &why).await,
        Err(DriverError::Refused(why)) => retry(state, &job, false, &why).await,
    }
}

async fn retry(state: &AppState, job: &Job, uncertain: bool, why: &str) {
    // A test print is answered once: no retries, so it never prints long after it was asked for.
    if job.kind == "test" {
        finish(state, job, "failed", why).await;
        return;
    }
    let next = print_jobs::now_ms() + backoff_ms(job.attempts + 1);
    let (id, why_s) = (job.id.clone(), why.to_string());
    if let Err(e) = state.db().write(move |tx| print_jobs::mark_retry(tx, &id, uncertain, &why_s, next)).await {
        tracing::error!(job_id = %job.id, error = %e, "cannot record retry");
    }
    tracing::warn!(job_id = %job.id, uncertain, reason = why, "print job will be retried");
}

async fn finish(state: &AppState, job: &Job, status: &'static str, why: &str) {
    let (id, why_s) = (job.id.clone(), why.to_string());
    if let Err(e) = state.db().write(move |tx| print_jobs::mark_final(tx, &id, status, &why_s)).await {
        tracing::error!(job_id = %job.id, error = %e, "cannot record job outcome");
    }
    state.print_queue().finished(Finished { job_id: job.id.clone(), status: status.into(), error: Some(why.into()) });
}

async fn expire(state: &AppState, job: &Job) {
    let j = job.clone();
    let res = state
        .db()
        .write(move |tx| {
            print_jobs::mark_final(tx, &j.id, "expired", "kitchen ticket expired before it could print")?;
            let msg = "a kitchen ticket could not be printed in time; reprint it when the printer is back";
            let extra = json!({"jobId": j.id, "printerId": j.printer_id, "orderId": j.order_id, "station": j.station});
            print_jobs::alert(tx, &j.company_id, &j.branch_id, "job_expired", msg, extra)
        })
        .await;
    if let Err(e) = res {
        tracing::error!(job_id = %job.id, error = %e, "cannot expire job");
    }
    tracing::warn!(job_id = %job.id, "kitchen ticket expired; alert raised");
}

fn banner(job: &Job) -> Option<&'static str> {
    if job.reprint_of.is_some() {
        Some("REPRINT")
    } else if job.uncertain {
        Some("POSSIBLE DUPLICATE")
    } else {
        None
    }
}

async fn render_job(state: &AppState, printer: &Printer, job: &Job) -> Result<Rendered, String> {
    let profile = render::profile_for(printer.profile.as_deref());
    let now = state.config().local_time(chrono::Utc::now());
    match job.kind.as_str() {
        "raw" => Ok(render::raw_with_banner(job.data.as_deref().unwrap_or_default(), banner(job), printer.paper_width, &profile)),
        "test" => Ok(render::test_page(&printer.name, printer.paper_width, &profile, &job.id, &now)),
        kind => {
            let (oid, bid) = (job.order_id.clone().ok_or_else(|| "the job names no order".to_string())?, job.branch_id.clone());
            let (order, names) = state
                .db()
                .read(move |c| Ok::<_, StoreError>((orders::get(c, &oid)?, directory::names(c, &bid)?)))
                .await
                .map_err(|e| e.to_string())?;
            let order = order.ok_or_else(|| "its order no longer exists".to_string())?;
            // Tickets show when the order was taken (a late or repeated copy must not look new).
            let when = chrono::DateTime::parse_from_rfc3339(&order.created_at)
                .map(|t| state.config().local_time(t.with_timezone(&chrono::Utc)))
                .unwrap_or(now);
            if kind == "receipt" {
                let (company, branch) = names.unwrap_or_else(|| (order.company_id.clone(), order.branch_id.clone()));
                let shop = render::Shop { company: &company, branch: &branch };
                return Ok(render::receipt(&order, &shop, printer.paper_width, &profile, banner(job), &when));
            }
            // A station ticket has that station's items; a catch-all ticket has them all.
            let items: Vec<_> = order.items.iter().filter(|i| job.station.is_none() || i.station == job.station).cloned().collect();
            Ok(render::kitchen_ticket(&order, job.station.as_deref(), &items, printer.paper_width, &profile, banner(job), &when))
        }
    }
}
