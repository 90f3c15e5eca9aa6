//! Printing: test prints and everything between a job and paper.
//!
//! Owns rendering (`render`, pure bytes), the durable per-printer queue (`queue`), drivers
//! for network, serial, USB, virtual and desktop printers (`drivers`), finding printers
//! (`discovery`) and test prints (through the print queue or a desktop app). What a
//! "printer" is and which printers an order prints on are `domain::printer` and
//! `domain::routing` (beneath the store, which stores and routes them).
//! Must not know Socket.IO: desktop apps are reached through the [`DesktopHub`] in
//! `AppState` (`state::desktops`), which realtime gives a [`DesktopLink`] per app.
//!
//! [`DesktopHub`]: crate::state::desktops::DesktopHub
//! [`DesktopLink`]: crate::state::desktops::DesktopLink

pub mod discovery;
pub mod drivers;
pub mod queue;
pub mod render;

use std::time::Instant;

use serde_json::{Value, json};

use crate::domain::printer::{Connection, Printer};
use crate::state::print_queue::Finished;
use crate::state::{AppState, desktops};
use crate::store::print_jobs::{self, NewJob};

/// The outcome of a test print: the `printer:test:result` payload plus an error code.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub correlation_id: String,
    pub printer: Printer,
    pub success: bool,
    pub message: String,
    pub code: Option<&'static str>,
    pub duration_ms: u64,
}

impl TestOutcome {
    /// `printer:test:result` `{correlationId, printerId, success, message, ...}`.
    pub fn result_payload(&self) -> Value {
        let mut v = json!({
            "correlationId": self.correlation_id,
            "printerId": self.printer.id,
            "branchId": self.printer.branch_id,
            "success": self.success,
            "message": self.message,
            "durationMs": self.duration_ms,
        });
        if let Some((d, l)) = self.printer.connection.desktop_ids() {
            v["deviceId"] = json!(d);
            v["localId"] = json!(l);
        }
        if let Some(code) = self.code {
            v["error"] = json!({"code": code, "message": self.message});
        }
        v
    }

    pub fn timed_out(&self) -> bool {
        self.code == Some(desktops::PRINT_TIMEOUT)
    }
}

/// Runs a test print on `printer` and waits for its outcome (bounded by the print timeout).
/// Desktop printers are asked through their app (`printer:test`); the others get a `test`
/// job through their queue, so it never interleaves with a ticket being printed.
pub async fn test_print(state: &AppState, printer: Printer) -> TestOutcome {
    start_test(state, printer).await.outcome(state).await
}

/// A test print that has been asked for (the desktop app has the request, or the test job
/// is queued) and not yet answered.
pub struct StartedTest {
    printer: Printer,
    started: Instant,
    how: Started,
}

enum Started {
    Desktop { correlation_id: String, sent: Result<desktops::Sent, desktops::Answer> },
    Local { job: Result<String, String>, finished: tokio::sync::broadcast::Receiver<Finished> },
}

/// The first half of [`test_print`]: sends the request to the desktop app (or queues the
/// test job) and returns without waiting for the outcome, so a caller can let its later
/// requests go on while this one waits (SPEC §6).
pub async fn start_test(state: &AppState, printer: Printer) -> StartedTest {
    let started = Instant::now();
    let how = match &printer.connection {
        Connection::Desktop { device_id, local_id } => {
            let correlation_id = uuid::Uuid::new_v4().to_string();
            let payload = json!({
                "printerId": printer.id,
                "correlationId": correlation_id,
                "deviceId": device_id,
                "localId": local_id,
                "printerName": printer.name,
                "branchId": printer.branch_id,
                "timestamp": crate::store::now_rfc3339(),
            });
            let sent = state.desktops().send(device_id, &printer.branch_id, &correlation_id, "printer:test", &payload);
            Started::Desktop { correlation_id, sent }
        }
        _ => {
            let finished = state.print_queue().subscribe();
            Started::Local { job: queue_test_page(state, &printer).await, finished }
        }
    };
    StartedTest { printer, started, how }
}

impl StartedTest {
    /// The second half of [`test_print`]: waits for the outcome (bounded by the print timeout).
    pub async fn outcome(self, state: &AppState) -> TestOutcome {
        let StartedTest { printer, started, how } = self;
        let (correlation_id, success, message, code) = match how {
            Started::Desktop { correlation_id, sent } => {
                let a = match sent {
                    Ok(sent) => state.desktops().wait(sent, state.config().print_timeout).await,
                    Err(a) => a,
                };
                (correlation_id, a.success, a.message, a.code)
            }
            Started::Local { job: Ok(job), finished } => wait_test_page(state, &printer, job, finished).await,
            Started::Local { job: Err(message), .. } => (uuid::Uuid::new_v4().to_string(), false, message, Some("PRINTER_ERROR")),
        };
        TestOutcome { correlation_id, printer, success, message, code, duration_ms: started.elapsed().as_millis() as u64 }
    }
}

/// Queues a test page and wakes the printer's worker; the job id is the correlation id.
async fn queue_test_page(state: &AppState, printer: &Printer) -> Result<String, String> {
    let (pid, bid, cid) = (printer.id.clone(), printer.branch_id.clone(), printer.company_id.clone());
    let job = state
        .db()
        .write(move |tx| {
            let new = NewJob {
                company_id: &cid,
                branch_id: &bid,
                printer_id: &pid,
                kind: "test",
                order_id: None,
                station: None,
                data: None,
                reprint_of: None,
            };
            print_jobs::enqueue(tx, new)
        })
        .await
        .map_err(|e| format!("cannot queue the test page: {e}"))?;
    queue::wake(state, &printer.id);
    Ok(job.id)
}

/// Waits for the test job `job` to finish (bounded by the print timeout); a job still
/// queued at the timeout is cancelled.
async fn wait_test_page(
    state: &AppState,
    printer: &Printer,
    job: String,
    mut finished: tokio::sync::broadcast::Receiver<Finished>,
) -> (String, bool, String, Option<&'static str>) {
    let wait = async {
        loop {
            match finished.recv().await {
                Ok(f) if f.job_id == job => return Some(f),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    };
    match tokio::time::timeout(state.config().print_timeout, wait).await {
        Ok(Some(f)) if f.status == "printed" => (job, true, format!("test page printed on {}", printer.name), None),
        Ok(Some(f)) => (job, false, f.error.unwrap_or_else(|| "the printer failed".into()), Some("PRINTER_ERROR")),
        Ok(None) => (job, false, "the print queue stopped".into(), Some("PRINTER_ERROR")),
        Err(_) => {
            let id = job.clone();
            let _ = state.db().write(move |tx| print_jobs::cancel_if_queued(tx, &id, "test print timed out")).await;
            (job, false, "timeout".into(), Some(desktops::PRINT_TIMEOUT))
        }
    }
}
