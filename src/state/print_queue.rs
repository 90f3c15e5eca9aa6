//! The print queue's handle (in `AppState`): the worker running for each printer, the
//! "retry now" kick, the timeouts, and the broadcast of finished jobs (test prints wait on
//! it). The workers themselves are `printing::queue`'s, which starts them through
//! [`PrintQueue::wake_or_start`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Timeouts;

/// A finished job, for callers waiting on one (test prints).
#[derive(Debug, Clone)]
pub struct Finished {
    pub job_id: String,
    pub status: String,
    pub error: Option<String>,
}

struct Worker {
    wake: Arc<Notify>,
    /// Set by "retry now": the next attempt is not held back.
    kick: Arc<AtomicBool>,
    stop: CancellationToken,
    task: JoinHandle<()>,
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

    /// Tells the subscribers that a job finished.
    pub fn finished(&self, f: Finished) {
        if let Some(tx) = self.finished.lock().ok().and_then(|g| g.clone()) {
            let _ = tx.send(f);
        }
    }

    /// Wakes the printer's running worker, or starts one with `start` (given its wake-up,
    /// its kick and its stop token, a child of `shutdown`) when none runs.
    pub fn wake_or_start(
        &self,
        printer_id: &str,
        shutdown: &CancellationToken,
        start: impl FnOnce(Arc<Notify>, Arc<AtomicBool>, CancellationToken) -> JoinHandle<()>,
    ) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = workers.get(printer_id)
            && !w.stop.is_cancelled()
        {
            w.wake.notify_one();
            return;
        }
        let (wake, stop) = (Arc::new(Notify::new()), shutdown.child_token());
        let kick = Arc::new(AtomicBool::new(false));
        let task = start(wake.clone(), kick.clone(), stop.clone());
        workers.insert(printer_id.to_string(), Worker { wake, kick, stop, task });
    }

    /// Marks the printer's next attempt as not to be held back ("retry now"; the caller
    /// wakes the worker).
    pub fn kick(&self, printer_id: &str) {
        if let Some(w) = self.workers.lock().ok().as_ref().and_then(|ws| ws.get(printer_id)) {
            w.kick.store(true, Ordering::SeqCst);
        }
    }

    /// The printers with a running worker, sorted.
    pub fn workers(&self) -> Vec<String> {
        let ws = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> =
            ws.iter().filter(|(_, w)| !w.stop.is_cancelled() && !w.task.is_finished()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
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
