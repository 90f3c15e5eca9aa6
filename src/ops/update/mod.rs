//! `branchd update --check|--apply|--confirm|--rollback` (SPEC §7): signed releases,
//! atomic install, restart through systemd, and rollback when the new version does not
//! report healthy in time.
//!
//! A release manifest is JSON:
//! ```json
//! {"signed": {"version": "0.2.0", "releasedAt": "…", "notes": "…",
//!             "artifacts": {"aarch64-unknown-linux-gnu": {"url": "branchd-0.2.0-aarch64-unknown-linux-gnu",
//!                                                         "sha256": "…", "size": 123, "signature": "…"}}},
//!  "signature": "base64 ed25519 over b\"branchd-manifest-v1\\n\" + the exact bytes of `signed`"}
//! ```
//! Each artefact's `signature` is ed25519 over `branchd-artifact-v1\n{version}\n{target}\n{sha256}\n`,
//! so a binary is accepted only if the release key vouched for exactly those bytes, for this
//! target, in this version. `url` may be relative to the manifest's URL (a hub serves
//! `DATA_DIR/updates/` at `/updates/`), absolute, or a local path (a USB stick).
//!
//! Nothing is replaced before the manifest signature, the version (strictly newer, semver),
//! the artefact's size, sha256 and signature, and a trial run of the new binary
//! (`version --json` must name the manifest's version) all pass. The install renames the new
//! binary over the old one (same directory, flushed) and keeps the old one as
//! `branchd.previous`.
//!
//! The parts: `manifest` (the signed manifest and artefact signatures), `fetch` (reading a
//! manifest or artefact from a URL or a file), `install` (download, verify, trial run,
//! install), `health` (the health gate after the restart, confirm and rollback).

mod error;
mod fetch;
mod health;
mod install;
mod manifest;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::state::AppState;
pub use error::UpdateError;
use fetch::fetch_manifest;
use health::{confirm_cmd, rollback_cmd};
use install::apply;
pub use manifest::{
    Artifact, Manifest, artifact_message, manifest_url, parse_public_key, public_key, sign_artifact, sign_manifest, verify_artifact,
    verify_manifest,
};

/// The release public key built into this binary (base64 of 32 bytes). Release builds set
/// their own with `BRANCHD_RELEASE_PUBLIC_KEY=… cargo build --release`; `update_public_key`
/// overrides it at run time.
pub const BUILTIN_PUBLIC_KEY: &str = match option_env!("BRANCHD_RELEASE_PUBLIC_KEY") {
    Some(k) => k,
    None => "I+2b7g3rKzbk/UQlGUspt+GCcDAI0927VyMJvRM04xA=",
};

/// The target triple this binary was built for: the artefact it asks for.
pub const TARGET: &str = env!("BRANCHD_TARGET");

const STATUS_FILE: &str = "update-status.json";
const PENDING_FILE: &str = "update-pending.json";
const UNIT: &str = "branchd";

#[derive(Debug, Default, clap::Args)]
pub struct UpdateArgs {
    /// Report whether a newer signed release is available (the default)
    #[arg(long, conflicts_with_all = ["apply", "confirm", "rollback"])]
    pub check: bool,
    /// Download, verify and install the newer release, restart, and roll back unless it reports healthy
    #[arg(long, conflicts_with_all = ["confirm", "rollback"])]
    pub apply: bool,
    /// Wait for the running (new) version to report healthy; roll back if it does not
    #[arg(long, conflicts_with = "rollback")]
    pub confirm: bool,
    /// Put branchd.previous back and restart
    #[arg(long)]
    pub rollback: bool,
    /// Manifest URL or file (default: update_url, else {upstream_url}/updates/manifest.json)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Seconds the new version has to report healthy
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub health_timeout: u64,
    /// Command that restarts the server (default under systemd: systemctl restart branchd)
    #[arg(long, value_name = "CMD")]
    pub restart_command: Option<String>,
    /// The installed binary to replace (default: this program)
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
}

fn newer(m: &Manifest) -> Result<std::cmp::Ordering, UpdateError> {
    let offered = semver::Version::parse(&m.version).map_err(|e| UpdateError::BadVersion(e.to_string()))?;
    let current = semver::Version::parse(crate::VERSION).map_err(|e| UpdateError::OwnVersion(e.to_string()))?;
    Ok(offered.cmp(&current))
}

/// What the last check found, kept in `DATA_DIR/update-status.json` for the dashboard:
/// `{checkedAt, current, available, newer, source, error}`.
pub fn last_check(data_dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?).ok()
}

fn record_check(config: &Config, source: Option<&str>, result: &Result<Manifest, String>) {
    let (available, is_newer, error) = match result {
        Ok(m) => (Some(m.version.clone()), newer(m).map(|o| o.is_gt()).unwrap_or(false), None),
        Err(e) => (None, false, Some(e.clone())),
    };
    let v = json!({"checkedAt": crate::store::now_rfc3339(), "current": crate::VERSION, "available": available,
                   "newer": is_newer, "source": source, "error": error});
    let _ = crate::fsutil::write_atomic(&config.data_dir.join(STATUS_FILE), v.to_string().as_bytes());
}

/// Inside `serve`: checks for a newer release a minute after start and every six hours,
/// when an update source is configured, and records the result for the dashboard.
pub async fn periodic_check(state: AppState) {
    let config = state.config().clone();
    let Some(url) = manifest_url(&config, None) else { return };
    tokio::time::sleep(Duration::from_secs(60)).await;
    loop {
        let result = fetch_manifest(&config, None).await.map(|(_, m)| m).map_err(|e| e.to_string());
        match &result {
            Ok(m) if newer(m).is_ok_and(|o| o.is_gt()) => {
                tracing::info!(available = %m.version, current = crate::VERSION, "a newer branchd is available: sudo branchd update --apply")
            }
            Ok(_) => tracing::debug!("branchd is up to date"),
            Err(e) => tracing::debug!(error = %e, url = %url, "update check failed"),
        }
        record_check(&config, Some(&url), &result);
        tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
    }
}

/// The pending update (written before the restart, removed once it is confirmed).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pending {
    from: String,
    to: String,
    binary: PathBuf,
    previous: PathBuf,
    installed_at_ms: i64,
}

pub async fn run(config: &Config, args: UpdateArgs) -> Result<(), UpdateError> {
    if args.rollback {
        return rollback_cmd(config, &args).await;
    }
    if args.confirm {
        return confirm_cmd(config, &args).await;
    }
    if !args.apply && manifest_url(config, args.url.as_deref()).is_none() {
        // Checking is the default: with nowhere to check, that is an answer, not a failure.
        println!(
            "updates: not configured (set update_url / BRANCHD_UPDATE_URL, or upstream_url, or pass --url); running {}",
            crate::VERSION
        );
        return Ok(());
    }
    let (src, m) = match fetch_manifest(config, args.url.as_deref()).await {
        Ok(x) => x,
        Err(e) => {
            record_check(config, manifest_url(config, args.url.as_deref()).as_deref(), &Err(e.to_string()));
            return Err(e);
        }
    };
    record_check(config, Some(&src.show()), &Ok(m.clone()));
    let order = newer(&m)?;
    if !args.apply {
        match order {
            std::cmp::Ordering::Greater => {
                println!(
                    "update available: branchd {} (running {}); install it with: sudo branchd update --apply",
                    m.version,
                    crate::VERSION
                )
            }
            _ => println!("up to date: running {}, the newest signed release is {}", crate::VERSION, m.version),
        }
        if let Some(notes) = &m.notes {
            println!("release notes: {notes}");
        }
        return Ok(());
    }
    match order {
        std::cmp::Ordering::Equal => {
            println!("already up to date (branchd {}); nothing installed", crate::VERSION);
            return Ok(());
        }
        std::cmp::Ordering::Less => {
            return Err(UpdateError::Downgrade { offered: m.version.clone(), running: crate::VERSION.into() });
        }
        std::cmp::Ordering::Greater => {}
    }
    apply(config, &args, &src, &m).await
}
