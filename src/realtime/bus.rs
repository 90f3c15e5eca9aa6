//! The broadcast emitter: one task that takes committed events in commit order and sends
//! each to `branch:{id}` and `company:{id}` of its namespace (a socket in both rooms gets it
//! once). The payload is serialised once per event, not per client.

use socketioxide::{BroadcastError, SocketError};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{room_branch, room_company};
use crate::state::AppState;
use crate::store::Event;

pub async fn run(state: AppState, mut rx: UnboundedReceiver<Vec<Event>>) {
    while let Some(batch) = rx.recv().await {
        for ev in batch {
            let Some(ns) = state.io().of(ev.namespace.as_str()) else { continue };
            let rooms = [room_branch(&ev.branch_id), room_company(&ev.company_id)];
            if let Err(e) = ns.to(rooms).emit(ev.name.as_str(), &ev.data).await {
                let full = match &e {
                    BroadcastError::Socket(errs) => errs.iter().filter(|e| matches!(e, SocketError::InternalChannelFull)).count(),
                    _ => 0,
                };
                state.metrics().dropped(&ev.namespace, full as u64);
                tracing::error!(
                    event = %ev.name,
                    namespace = %ev.namespace,
                    event_id = ev.seq,
                    clients_full = full,
                    error = %e,
                    "broadcast not delivered to some clients (their queue is full); they get it through catchUp"
                );
            }
            state.metrics().emitted(&ev.namespace);
            wake_printing(&state, &ev);
            if crate::store::events::syncable(&ev.name) {
                state.sync().wake();
            }
            tracing::debug!(event = %ev.name, namespace = %ev.namespace, branch = %ev.branch_id, seq = ev.seq, "broadcast");
        }
    }
}

/// The print queue follows the committed events: new jobs and changed printers wake their
/// worker; a removed printer's worker stops.
fn wake_printing(state: &AppState, ev: &Event) {
    let id = match ev.name.as_str() {
        "printJobUpdate" if ev.data["status"] == "queued" => ev.data["printerId"].as_str(),
        "printer:added" | "printerUpdate" => ev.data["id"].as_str(),
        "printerRemoved" => {
            if let Some(id) = ev.data["printerId"].as_str() {
                state.print_queue().forget(id);
            }
            None
        }
        _ => None,
    };
    if let Some(id) = id {
        crate::printing::queue::wake(state, id);
    }
}
