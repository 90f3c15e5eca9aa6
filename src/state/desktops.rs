//! Desktop print agents (a handle in `AppState`, used by `printing` and `realtime`): which
//! app is connected for which device, and the correlation of
//! requests sent to them (SPEC §4). A request carries a fresh `correlationId`; the first
//! answer from the same connection resolves it, later duplicates are ignored; no answer
//! within the print timeout resolves it as a timeout; a disconnect fails its pending
//! requests at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub const PRINT_TIMEOUT: &str = "PRINT_TIMEOUT";
pub const DESKTOP_OFFLINE: &str = "DESKTOP_OFFLINE";

/// How the hub reaches one connected desktop app (implemented by the realtime layer).
pub trait DesktopLink: Send + Sync {
    /// Sends an event; `false` when the connection is gone.
    fn send(&self, event: &str, payload: &Value) -> bool;
    /// Closes the connection (a newer connection of the same device replaced it).
    fn close(&self);
}

/// The answer to a correlated request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub success: bool,
    pub message: String,
    pub code: Option<&'static str>,
    /// The request reached the app: without an answer, whether it acted on it is unknown.
    pub sent: bool,
}

struct Desktop {
    device_id: String,
    conn_id: String,
    branch_id: String,
    link: Arc<dyn DesktopLink>,
}

struct Pending {
    conn_id: String,
    tx: oneshot::Sender<Answer>,
}

/// Desktop apps are keyed by branch and device id: a device id is the app's own claim, so
/// an app of one branch can never displace or answer for an app of another.
fn key(branch_id: &str, device_id: &str) -> String {
    format!("{branch_id}\u{0}{device_id}")
}

/// A request sent to a desktop app and registered for its answer ([`DesktopHub::send`]).
#[derive(Debug)]
pub struct Sent {
    correlation_id: String,
    device_id: String,
    rx: oneshot::Receiver<Answer>,
}

#[derive(Default)]
pub struct DesktopHub {
    desktops: Mutex<HashMap<String, Desktop>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// What a desktop app reports as connected.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesktopInfo {
    pub device_id: String,
    pub branch_id: String,
}

impl DesktopHub {
    /// Registers a connection for `device_id`; a previous connection of the device is closed.
    pub fn register(&self, device_id: &str, conn_id: &str, branch_id: &str, link: Arc<dyn DesktopLink>) {
        let old = self.desktops.lock().ok().and_then(|mut d| {
            d.insert(
                key(branch_id, device_id),
                Desktop { device_id: device_id.into(), conn_id: conn_id.into(), branch_id: branch_id.into(), link },
            )
        });
        if let Some(old) = old
            && old.conn_id != conn_id
        {
            tracing::info!(device_id, "desktop app reconnected; closing its previous connection");
            self.fail_pending(&old.conn_id, "desktop app reconnected");
            old.link.close();
        }
    }

    /// Forgets a connection and fails its pending requests with `DESKTOP_OFFLINE`. `true`
    /// when it was the device's current connection (not one a reconnect already replaced).
    pub fn unregister(&self, branch_id: &str, device_id: &str, conn_id: &str) -> bool {
        let k = key(branch_id, device_id);
        let mut current = false;
        if let Ok(mut d) = self.desktops.lock()
            && d.get(&k).is_some_and(|x| x.conn_id == conn_id)
        {
            d.remove(&k);
            current = true;
        }
        self.fail_pending(conn_id, "desktop app disconnected");
        current
    }

    fn fail_pending(&self, conn_id: &str, why: &str) {
        let failed: Vec<Pending> = match self.pending.lock() {
            Ok(mut p) => {
                let ids: Vec<String> = p.iter().filter(|(_, v)| v.conn_id == conn_id).map(|(k, _)| k.clone()).collect();
                ids.into_iter().filter_map(|k| p.remove(&k)).collect()
            }
            Err(_) => vec![],
        };
        for p in failed {
            let _ = p.tx.send(Answer { success: false, message: why.into(), code: Some(DESKTOP_OFFLINE), sent: true });
        }
    }

    pub fn connected(&self) -> Vec<DesktopInfo> {
        self.desktops
            .lock()
            .map(|d| d.values().map(|v| DesktopInfo { device_id: v.device_id.clone(), branch_id: v.branch_id.clone() }).collect())
            .unwrap_or_default()
    }

    /// Sends `event` with `payload` to the app of `device_id` (which must serve `branch_id`)
    /// and waits for the answer carrying `correlation_id`.
    pub async fn request(
        &self,
        device_id: &str,
        branch_id: &str,
        correlation_id: &str,
        event: &str,
        payload: Value,
        timeout: Duration,
    ) -> Answer {
        match self.send(device_id, branch_id, correlation_id, event, &payload) {
            Ok(sent) => self.wait(sent, timeout).await,
            Err(answer) => answer,
        }
    }

    /// The first half of [`request`](Self::request): registers `correlation_id` and sends
    /// the request, without waiting. From here on an answer resolves it. `Err` is the final
    /// answer when the app is not connected.
    pub fn send(&self, device_id: &str, branch_id: &str, correlation_id: &str, event: &str, payload: &Value) -> Result<Sent, Answer> {
        let target = self.desktops.lock().ok().and_then(|d| d.get(&key(branch_id, device_id)).map(|x| (x.conn_id.clone(), x.link.clone())));
        let Some((conn_id, link)) = target else {
            return Err(Answer { success: false, message: "desktop app not connected".into(), code: Some(DESKTOP_OFFLINE), sent: false });
        };
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(correlation_id.into(), Pending { conn_id, tx });
        }
        tracing::info!(correlation_id, device_id, event, "request sent to desktop app");
        if !link.send(event, payload) {
            self.pending.lock().ok().and_then(|mut p| p.remove(correlation_id));
            return Err(Answer { success: false, message: "desktop app not connected".into(), code: Some(DESKTOP_OFFLINE), sent: false });
        }
        Ok(Sent { correlation_id: correlation_id.into(), device_id: device_id.into(), rx })
    }

    /// The second half of [`request`](Self::request): the answer to a sent request, or a
    /// timeout after `timeout`.
    pub async fn wait(&self, sent: Sent, timeout: Duration) -> Answer {
        let Sent { correlation_id, device_id, rx } = sent;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Answer { success: false, message: "desktop app disconnected".into(), code: Some(DESKTOP_OFFLINE), sent: true },
            Err(_) => {
                self.pending.lock().ok().and_then(|mut p| p.remove(&correlation_id));
                tracing::warn!(correlation_id, device_id, "desktop request timed out");
                Answer { success: false, message: "timeout".into(), code: Some(PRINT_TIMEOUT), sent: true }
            }
        }
    }

    /// An answer from connection `conn_id`. `true` when it resolved a pending request; a
    /// duplicate, late or foreign answer is ignored (`false`).
    pub fn answer(&self, conn_id: &str, correlation_id: &str, success: bool, message: String) -> bool {
        let pending =
            self.pending.lock().ok().and_then(|mut p| {
                if p.get(correlation_id).is_some_and(|x| x.conn_id == conn_id) { p.remove(correlation_id) } else { None }
            });
        let Some(p) = pending else {
            tracing::info!(correlation_id, "ignored duplicate, late or foreign desktop answer");
            return false;
        };
        let code = if success { None } else { Some("PRINTER_ERROR") };
        tracing::info!(correlation_id, success, "desktop request resolved");
        p.tx.send(Answer { success, message, code, sent: true }).is_ok()
    }
}
