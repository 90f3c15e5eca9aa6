//! Printers: their model, test prints and the desktop-app request/answer correlation.
//!
//! Owns what a "printer" is and how a test print reaches it. Local ESC/POS drivers
//! (network, serial, USB), rendering, the durable queue and discovery belong here too and
//! arrive with the printing issue; until then `network`/`serial`/`usb` printers are stored
//! and listed but a test print answers `PRINTER_UNSUPPORTED` (never a fake success).
//! Must not know Socket.IO: desktop apps are reached through [`desktop::DesktopLink`].

pub mod desktop;
pub mod model;

use std::time::Instant;

use serde_json::{Value, json};

use crate::app::AppState;
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
pub async fn test_print(state: &AppState, printer: Printer) -> TestOutcome {
    let started = Instant::now();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let (success, message, code) = match &printer.connection {
        Connection::Virtual => match write_virtual_test(state, &printer, &correlation_id).await {
            Ok(path) => (true, format!("printed to virtual printer ({path})"), None),
            Err(e) => (false, format!("cannot write virtual print: {e}"), Some("PRINTER_ERROR")),
        },
        Connection::Desktop { device_id, local_id } => {
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
            (a.success, a.message, a.code)
        }
        other => (
            false,
            format!("{} printers are not driven by this version of branchd yet; use a desktop app or a virtual printer", other.kind()),
            Some("PRINTER_UNSUPPORTED"),
        ),
    };
    TestOutcome { correlation_id, printer, success, message, code, duration_ms: started.elapsed().as_millis() as u64 }
}

/// A virtual printer's output: a text page in `DATA_DIR/virtual/PRINTER_ID/`.
async fn write_virtual_test(state: &AppState, p: &Printer, correlation_id: &str) -> std::io::Result<String> {
    let dir = state.config().data_dir.join("virtual").join(&p.id);
    tokio::fs::create_dir_all(&dir).await?;
    let file = dir.join(format!("test-{correlation_id}.txt"));
    let page = format!(
        "TEST PRINT\n{}\nprinter {} ({} mm)\n{}\ncorrelation {}\n",
        p.name,
        p.id,
        p.paper_width,
        crate::store::now_rfc3339(),
        correlation_id
    );
    tokio::fs::write(&file, page).await?;
    Ok(file.display().to_string())
}
