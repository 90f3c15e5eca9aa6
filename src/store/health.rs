//! How the storage is doing, for `/health` and for bounded logging: whether writes fail
//! because the disk is full (seen at COMMIT by the writer thread, cleared by the next
//! successful commit or when the space monitor sees room again), whether the disk is
//! nearly full, and whether SQLite found damage (at start with `PRAGMA quick_check`, or
//! later as `SQLITE_CORRUPT`). Each change of state is logged once, never per request.
//! Knows nothing of HTTP.

use std::path::Path;
use std::sync::Mutex;

/// Below this much free space writes are about to fail: reported as nearly full.
const NEARLY_FULL_BYTES: u64 = 200 << 20;

/// Tight in absolute terms, or nearly full and not roomy: 11 GB free on a 270 GB disk is
/// plenty for branchd, 1 GB free on a 32 GB SD card is not.
pub fn disk_tight(free: u64, total: u64) -> bool {
    free < NEARLY_FULL_BYTES || (free * 20 < total && free < 2 << 30)
}

/// Free (for unprivileged users) and total bytes of the filesystem holding `dir`.
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some((st.f_bavail.saturating_mul(st.f_frsize), st.f_blocks.saturating_mul(st.f_frsize)))
}

/// One problem for `/health` (`{code, message}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

#[derive(Default)]
struct State {
    /// Writes fail with "disk full" (since when).
    full: bool,
    full_since: Option<std::time::Instant>,
    /// Free and total bytes at the last look, when nearly full.
    tight: Option<(u64, u64)>,
    /// What SQLite reported as damage.
    damaged: Option<String>,
    /// When an "unavailable" write failure was last logged.
    unavailable_logged: Option<std::time::Instant>,
}

#[derive(Default)]
pub struct StorageHealth {
    state: Mutex<State>,
}

impl StorageHealth {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A write failed because the disk is full.
    pub fn write_failed_full(&self) {
        let now = std::time::Instant::now();
        if self.with(|s| {
            s.full_since = Some(now);
            !std::mem::replace(&mut s.full, true)
        }) {
            tracing::error!("disk full: writes are refused with STORAGE_FULL until space is freed; reads and Socket.IO go on");
        }
    }

    /// A write failed for another storage reason (I/O error, locked by another process,
    /// read-only): logged at most once a minute.
    pub fn write_unavailable(&self, what: &str) {
        let now = std::time::Instant::now();
        let log = self.with(|s| {
            let due = s.unavailable_logged.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(60));
            if due {
                s.unavailable_logged = Some(now);
            }
            due
        });
        if log {
            tracing::error!(error = %what, "database writes fail (logged at most once a minute)");
        }
    }

    /// A write committed: the disk takes writes again.
    pub fn write_succeeded(&self) {
        if self.with(|s| std::mem::replace(&mut s.full, false)) {
            tracing::info!("disk space is back: writes are accepted again");
        }
    }

    /// The space monitor's look at the data directory's filesystem, taken at `taken`: a look
    /// taken before the last failed write cannot clear "full".
    pub fn observed_space(&self, free: u64, total: u64, taken: std::time::Instant) {
        let tight = disk_tight(free, total);
        let (was_tight, cleared_full) = self.with(|s| {
            let was = s.tight.is_some();
            s.tight = tight.then_some((free, total));
            // Room for a few pages again: let writes try (the next COMMIT tells for sure).
            let cleared = s.full && free >= 1 << 20 && s.full_since.is_none_or(|f| taken > f);
            if cleared {
                s.full = false;
            }
            (was, cleared)
        });
        if tight && !was_tight {
            tracing::warn!(free_mb = free >> 20, "the data disk is nearly full; free space before writes fail (`branchd doctor` says how)");
        } else if !tight && was_tight {
            tracing::info!(free_mb = free >> 20, "the data disk has room again");
        }
        if cleared_full {
            tracing::info!(free_mb = free >> 20, "disk space freed: writes are accepted again");
        }
    }

    /// SQLite reported damage (quick_check at start, or `SQLITE_CORRUPT` later).
    pub fn damaged(&self, what: &str) {
        let what: String = what.chars().take(300).collect();
        if self.with(|s| s.damaged.replace(what.clone()).is_none()) {
            tracing::error!(problem = %what, "the database is damaged: restore a backup (`branchd restore FILE`) or see `branchd doctor`");
        }
    }

    pub fn is_full(&self) -> bool {
        self.with(|s| s.full)
    }

    pub fn problems(&self) -> Vec<Problem> {
        self.with(|s| {
            let mut out = Vec::new();
            if s.full {
                out.push(Problem {
                    code: "STORAGE_FULL",
                    message: "the data disk is full: new orders and changes are refused until space is freed".into(),
                });
            } else if let Some((free, total)) = s.tight {
                out.push(Problem {
                    code: "STORAGE_NEARLY_FULL",
                    message: format!("the data disk is nearly full: {} MB free of {} MB", free >> 20, total >> 20),
                });
            }
            if let Some(d) = &s.damaged {
                out.push(Problem {
                    code: "DB_DAMAGED",
                    message: format!("the database is damaged ({d}): restore a backup with `branchd restore FILE`"),
                });
            }
            out
        })
    }
}

/// Looks at the data directory's free space every `every` until `stop` is cancelled.
pub async fn monitor(db: super::Db, dir: std::path::PathBuf, every: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
    loop {
        let d = dir.clone();
        let look = tokio::task::spawn_blocking(move || (std::time::Instant::now(), disk_space(&d))).await;
        if let Ok((taken, Some((free, total)))) = look {
            db.health().observed_space(free, total, taken);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_change_once_and_clear() {
        let h = StorageHealth::default();
        assert!(h.problems().is_empty());
        h.write_failed_full();
        h.write_failed_full();
        assert_eq!(h.problems().len(), 1);
        assert_eq!(h.problems()[0].code, "STORAGE_FULL");
        let now = std::time::Instant::now;
        h.observed_space(10 << 10, 1 << 30, now());
        assert!(h.is_full(), "10 KB free: still full");
        let stale = now() - std::time::Duration::from_secs(1);
        h.observed_space(50 << 20, 1 << 30, stale);
        assert!(h.is_full(), "a look from before the failure clears nothing");
        h.observed_space(50 << 20, 1 << 30, now());
        assert!(!h.is_full());
        assert_eq!(h.problems()[0].code, "STORAGE_NEARLY_FULL");
        h.observed_space(5 << 30, 10 << 30, now());
        assert!(h.problems().is_empty());
        h.damaged("page 7: btree");
        assert_eq!(h.problems()[0].code, "DB_DAMAGED");
    }

    #[test]
    fn tight_means_small_for_the_disk() {
        assert!(disk_tight(100 << 20, 300 << 30));
        assert!(!disk_tight(11 << 30, 270 << 30));
        assert!(disk_tight(1 << 30, 32 << 30));
    }

    #[test]
    fn space_of_a_real_directory() {
        let (free, total) = disk_space(Path::new(".")).unwrap();
        assert!(total > 0 && free <= total);
    }
}
