//! The sync relay's handle (in `AppState`): its status, shown by `/health`, `/metrics` and
//! the dashboard, and the wake-up new events send. The relay task itself is
//! `sync::relay`'s; the bus wakes it.

use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::Notify;

/// What `/health`, `/metrics` and the dashboard show about sync.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub enabled: bool,
    pub online: bool,
    pub branch_id: Option<String>,
    pub acked: i64,
    pub hub_high_water: i64,
    pub pending: i64,
    pub oldest_pending_age_seconds: Option<i64>,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub stopped: Option<String>,
    pub parked: i64,
    pub divergences: u64,
    pub pushed: u64,
    /// Events the hub said it already had (resent after a lost answer or a restart).
    pub duplicates: u64,
    pub feed_applied: u64,
    /// Something an installer must fix although sync runs (e.g. the credential is for a
    /// branch this appliance does not have).
    pub warning: Option<String>,
}

/// The relay's shared handle (in `AppState`): its status, and the wake-up new events send.
#[derive(Default)]
pub struct Relay {
    status: Mutex<Status>,
    wake: Notify,
}

impl Relay {
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
    /// New local events: push them now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
    /// Resolves at the next [`Relay::wake`] (or at once if one came since the last).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }
    /// Changes the status (the relay task reports what it does).
    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}
