//! Background upkeep of a running server: the event log is pruned hourly (older events go,
//! except a hub's own changes for the branches' feed and what a branch's hub has not
//! acknowledged yet: `store::events::Retention`).

use std::time::Duration;

use crate::state::AppState;
use crate::store::events;

/// Background upkeep: prunes the event log hourly.
pub async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let policy = match (state.config().role, state.config().upstream_url.is_some() || state.sync().status().enabled) {
            (crate::config::ApplianceRole::Hub, _) => events::Retention::Hub,
            (_, true) => events::Retention::KeepUnsynced,
            _ => events::Retention::Plain,
        };
        match state.db().write(move |tx| events::prune(tx, policy)).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned old events"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning events failed"),
        }
    }
}
