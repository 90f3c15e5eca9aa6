//! Scheduled backups with rotation (inside `serve`) and `branchd restore FILE`.
//!
//! A scheduled backup is `VACUUM INTO` a hidden `.partial` file in the backup directory,
//! flushed, then renamed to `branchd-YYYYMMDDTHHMMSSZ.db`, so a listed backup is always
//! whole. Rotation deletes the oldest such files beyond `backup_keep`, never anything else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::OpsError;
use crate::config::Config;
use crate::state::AppState;
use crate::store::StoreError;

const PREFIX: &str = "branchd-";
const SUFFIX: &str = ".db";
const PARTIAL: &str = ".partial";

/// Where scheduled backups go: `backup_dir`, else `DATA_DIR/backups`.
pub fn dir(config: &Config) -> PathBuf {
    config.backup_dir.clone().unwrap_or_else(|| config.data_dir.join("backups"))
}

/// Backups made by the schedule in `dir`, oldest first (their names sort by time).
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(PREFIX) && n.ends_with(SUFFIX) && n.len() == PREFIX.len() + 16 + SUFFIX.len()
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn stamp(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%dT%H%M%SZ").to_string()
}

/// When the newest backup in `dir` was taken (from its name).
fn newest(dir: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    let last = list(dir).pop()?;
    let name = last.file_name()?.to_string_lossy().to_string();
    let ts = &name[PREFIX.len()..name.len() - SUFFIX.len()];
    chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

/// Takes one backup now and rotates; returns the new file.
pub async fn take(state: &AppState) -> Result<PathBuf, StoreError> {
    let dir = dir(state.config());
    let keep = state.config().backup_keep.max(1);
    let io = |e: std::io::Error| StoreError::io(format!("backup directory {}", dir.display()), e);
    std::fs::create_dir_all(&dir).map_err(io)?;
    // Two backups within one second share a name: wait for the next second.
    let mut now = chrono::Utc::now();
    while dir.join(format!("{PREFIX}{}{SUFFIX}", stamp(now))).exists() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = chrono::Utc::now();
    }
    let name = format!("{PREFIX}{}{SUFFIX}", stamp(now));
    let partial = dir.join(format!(".{name}{PARTIAL}"));
    let target = dir.join(&name);
    let _ = std::fs::remove_file(&partial);
    let p = partial.clone();
    let made = state.db().read(move |c| crate::store::backup::vacuum_into(c, &p)).await;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    // The new copy is complete and on disk before an old one goes, and the oldest go before
    // it takes its name: the directory never shows more than `keep` backups.
    std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(io)?;
    let all = list(&dir);
    for old in all.iter().take((all.len() + 1).saturating_sub(keep)) {
        match std::fs::remove_file(old) {
            Ok(()) => tracing::info!(file = %old.display(), "removed old backup"),
            Err(e) => tracing::warn!(file = %old.display(), error = %e, "cannot remove old backup"),
        }
    }
    std::fs::rename(&partial, &target).map_err(io)?;
    crate::fsutil::sync_dir(&dir);
    Ok(target)
}

/// The schedule: the first backup one interval after the newest existing one (at most ten
/// minutes after start when there is none), then every interval. Failures are logged and
/// retried at the next slot.
pub async fn scheduled(state: AppState) {
    let hours = state.config().backup_interval_hours;
    if hours <= 0.0 {
        return;
    }
    if state.config().database_url.is_some() {
        tracing::info!("scheduled backups are off: this hub keeps its data in PostgreSQL (back it up with pg_dump or a replica)");
        return;
    }
    let every = Duration::from_secs_f64(hours * 3600.0).max(Duration::from_secs(1));
    let dir = dir(state.config());
    // Leftovers of a backup interrupted by a crash or shutdown.
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(PARTIAL) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let first = match newest(&dir) {
        Some(t) => (t + chrono::Duration::from_std(every).unwrap_or_default() - chrono::Utc::now()).to_std().unwrap_or_default(),
        None => every.min(Duration::from_secs(600)),
    };
    tracing::info!(dir = %dir.display(), every_hours = hours, keep = state.config().backup_keep, "scheduled backups on");
    tokio::time::sleep(first).await;
    loop {
        let started = std::time::Instant::now();
        match take(&state).await {
            Ok(file) => tracing::info!(file = %file.display(), ms = started.elapsed().as_millis() as u64, "backup taken"),
            Err(e) => tracing::error!(error = %e, dir = %dir.display(), "scheduled backup failed; check free space and permissions"),
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

/// The database files that belong with `db` (`-wal`, `-shm`).
fn sidecars(db: &Path) -> [PathBuf; 2] {
    let s = db.as_os_str().to_string_lossy();
    [PathBuf::from(format!("{s}-wal")), PathBuf::from(format!("{s}-shm"))]
}

/// Gives `path` the owner of `like` (when run as root for a service user); best effort.
fn same_owner(path: &Path, like: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(like) {
        let _ = std::os::unix::fs::chown(path, Some(m.uid()), Some(m.gid()));
    }
}

/// Whether `file` can be restored: readable, undamaged, of a schema this branchd can use.
fn check_backup(file: &Path) -> Result<crate::store::backup::FileReport, OpsError> {
    let usage = |m: String| OpsError::Usage(m);
    let report = crate::store::backup::inspect(file).map_err(|e| usage(format!("{} cannot be restored: {e}", file.display())))?;
    if let Some(problems) = &report.problems {
        return Err(usage(format!(
            "{} is damaged (PRAGMA integrity_check: {}); nothing was changed — pick an older backup",
            file.display(),
            problems.join("; ")
        )));
    }
    if !crate::store::migrate::usable(report.schema_version, report.schema_floor) {
        return Err(usage(format!(
            "{} was made by a newer branchd (schema {} > {}); update branchd first",
            file.display(),
            report.schema_version,
            crate::store::migrate::latest()
        )));
    }
    Ok(report)
}

fn stop_first(why: String) -> OpsError {
    OpsError::Usage(format!("{why}; stop it first (sudo systemctl stop branchd), then run restore again"))
}

/// Refuses while a server uses the data directory (its lock file, or an answer on the port).
async fn refuse_while_served(config: &Config) -> Result<(), OpsError> {
    let running = || -> Option<String> {
        if let Some(info) = super::lock::running(&config.data_dir) {
            let pid = info.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            return Some(format!("a branchd server is using {}{pid}", config.data_dir.display()));
        }
        None
    };
    if let Some(why) = running() {
        return Err(stop_first(why));
    }
    let base = super::local_base(config);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| OpsError::Failed(format!("cannot make an HTTP client: {e}")))?;
    if client.get(format!("{base}/health")).send().await.is_ok() {
        return Err(stop_first(format!("a server answers at {base}")));
    }
    Ok(())
}

/// Moves the current database (with its log files) aside as `branchd.db.before-restore`;
/// the name it got, if there was one.
fn set_aside(config: &Config, db: &Path) -> Result<Option<PathBuf>, OpsError> {
    if db.exists() {
        // Fold the log in, so the kept file is whole on its own; a damaged database may
        // refuse, and then its log files are kept beside it under the same new name.
        if let Err(e) = crate::store::backup::checkpoint_file(db) {
            eprintln!("note: could not checkpoint the current database ({e}); keeping its -wal/-shm files with it");
        }
        let mut old = config.data_dir.join("branchd.db.before-restore");
        if old.exists() {
            old = config.data_dir.join(format!("branchd.db.before-restore-{}", stamp(chrono::Utc::now())));
        }
        std::fs::rename(db, &old)?;
        for (side, new_side) in sidecars(db).iter().zip(sidecars(&old).iter()) {
            if side.exists() {
                std::fs::rename(side, new_side)?;
            }
        }
        return Ok(Some(old));
    }
    for side in sidecars(db) {
        let _ = std::fs::remove_file(side);
    }
    Ok(None)
}

/// `branchd restore FILE`: checks the backup, refuses while a server uses the data
/// directory, keeps the current database as `branchd.db.before-restore`, and puts the
/// backup in its place.
pub async fn restore(config: &Config, file: &Path) -> Result<(), OpsError> {
    let usage = |m: String| OpsError::Usage(m);
    if !file.is_file() {
        return Err(usage(format!("{} is not a file", file.display())));
    }
    let report = check_backup(file)?;
    refuse_while_served(config).await?;
    std::fs::create_dir_all(&config.data_dir)?;
    let _lock = super::lock::exclusive(&config.data_dir).map_err(|e| stop_first(e.to_string()))?;

    let db = config.db_path();
    let incoming = config.data_dir.join("branchd.db.restoring");
    let _ = std::fs::remove_file(&incoming);
    std::fs::copy(file, &incoming)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&incoming, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(&incoming)?.sync_all()?;

    let kept = set_aside(config, &db)?;
    std::fs::rename(&incoming, &db)?;
    crate::fsutil::sync_dir(&config.data_dir);
    // Bring the schema up to date and switch the copy to WAL now, not at the next start.
    drop(crate::store::Direct::open(&db)?);
    for p in std::iter::once(db.clone()).chain(sidecars(&db)) {
        if p.exists() {
            same_owner(&p, &config.data_dir);
        }
    }
    println!(
        "restored {} into {} ({} orders, {} branches, schema {}).",
        file.display(),
        db.display(),
        report.orders,
        report.branches,
        report.schema_version
    );
    if let Some(old) = kept {
        println!("the previous database is kept as {}", old.display());
    }
    println!("start the server again: sudo systemctl start branchd");
    Ok(())
}
