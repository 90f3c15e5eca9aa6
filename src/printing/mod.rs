//! Printers: their model, test prints and the desktop-app request/answer correlation.
//!
//! Owns what a "printer" is and everything between a job and paper: rendering (`render`,
//! pure bytes), routing a new order to printers (`routing`), the durable per-printer queue
//! (`queue`), drivers for network, serial, USB, virtual and desktop printers (`drivers`),
//! and the request/answer correlation with desktop apps (`desktop`).
//! Must not know Socket.IO: desktop apps are reached through [`desktop::DesktopLink`].

pub mod desktop;
pub mod discovery;
pub mod drivers;
pub mod model;
pub mod queue;
pub mod render;
pub mod routing;

use std::time::Instant;

use serde_json::{Value, json};

use crate::app::AppState;
use crate::store::print_jobs::{self, NewJob};
use model::{Connection, Printer};

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
        self.code == Some(desktop::PRINT_TIMEOUT)
    }
}

/// Runs a test print on `printer` and waits for its outcome (bounded by the print timeout).
/// Desktop printers are asked through their app (`printer:test`); the others get a `test`
/// job through their queue, so it never interleaves with a ticket being printed.
pub async fn test_print(state: &AppState, printer: Printer) -> TestOutcome {
    let started = Instant::now();
    let (correlation_id, success, message, code) = match &printer.connection {
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
            let a = state
                .desktops()
                .request(device_id, &printer.branch_id, &correlation_id, "printer:test", payload, state.config().print_timeout)
                .await;
            (correlation_id, a.success, a.message, a.code)
        }
        _ => local_test(state, &printer).await,
    };
    TestOutcome { correlation_id, printer, success, message, code, duration_ms: started.elapsed().as_millis() as u64 }
}

/// Queues a test page; the job id is the correlation id.
async fn local_test(state: &AppState, printer: &Printer) -> (String, bool, String, Option<&'static str>) {
    let mut finished = state.print_queue().subscribe();
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
        .await;
    let job = match job {
        Ok(j) => j,
        Err(e) => return (uuid::Uuid::new_v4().to_string(), false, format!("cannot queue the test page: {e}"), Some("PRINTER_ERROR")),
    };
    state.print_queue().wake(state, &printer.id);
    let wait = async {
        loop {
            match finished.recv().await {
                Ok(f) if f.job_id == job.id => return Some(f),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    };
    match tokio::time::timeout(state.config().print_timeout, wait).await {
        Ok(Some(f)) if f.status == "printed" => (job.id, true, format!("test page printed on {}", printer.name), None),
        Ok(Some(f)) => (job.id, false, f.error.unwrap_or_else(|| "the printer failed".into()), Some("PRINTER_ERROR")),
        Ok(None) => (job.id, false, "the print queue stopped".into(), Some("PRINTER_ERROR")),
        Err(_) => {
            let id = job.id.clone();
            let _ = state.db().write(move |tx| print_jobs::cancel_if_queued(tx, &id, "test print timed out")).await;
            (job.id, false, "timeout".into(), Some(desktop::PRINT_TIMEOUT))
        }
    }
}
