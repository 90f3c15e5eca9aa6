//! branchd: one binary for a restaurant branch's appliance.
//!
//! Crate map (see ARCHITECTURE.md):
//! - [`state`]: `AppState`, shared by every feature; [`app`]: the `App` that `main` and the
//!   tests start (wiring only).
//! - [`config`], [`cli`], [`commands`]: settings of SPEC §1 and the admin CLI.
//! - [`auth`]: JWT and license identity, the role table of SPEC §2.
//! - [`http`]: REST of SPEC §3; [`realtime`]: Socket.IO of SPEC §4.
//! - [`orders`], [`availability`], [`domain`]: domain rules and types, no I/O.
//! - [`printing`]: rendering, the print queue's workers, drivers, discovery, test prints.
//! - [`mdns`]: mDNS advertisement and browsing.
//! - [`sync`]: branch ↔ hub event exchange (outbox relay, hub endpoints, feed).
//! - [`store`]: the only code that touches SQLite.
//! - The modules form layers with no import cycle (ARCHITECTURE.md, "Import graph").

pub mod app;
pub mod auth;
pub mod availability;
pub mod cli;
pub mod commands;
pub mod config;
pub mod currency;
pub mod domain;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod mdns;
pub mod metrics;
pub mod ops;
pub mod orders;
pub mod printing;
pub mod realtime;
pub mod secrets;
pub mod state;
pub mod store;
pub mod sync;
pub mod tls;
pub mod validate;

pub use app::App;
pub use config::Config;
pub use state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `branchd version --json`.
pub fn version_info() -> serde_json::Value {
    serde_json::json!({
        "version": VERSION,
        "commit": env!("BRANCHD_GIT_COMMIT"),
        "buildDate": env!("BRANCHD_BUILD_DATE"),
        "target": env!("BRANCHD_TARGET"),
    })
}
