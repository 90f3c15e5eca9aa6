//! After an install: the restart, the health gate (the new version must report healthy in
//! time, else the previous binary is put back), `--confirm` and `--rollback`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::install::binary_paths;
use super::{PENDING_FILE, Pending, UNIT, UpdateArgs, UpdateError};
use crate::config::Config;

pub(super) fn restart_command(args: &UpdateArgs) -> Option<String> {
    args.restart_command.clone().or_else(|| crate::ops::systemd::unit_active(UNIT).then(|| format!("systemctl restart {UNIT}")))
}

pub(super) async fn restart(cmd: &str) -> Result<(), UpdateError> {
    eprintln!("restarting: {cmd}");
    let run = tokio::process::Command::new("sh").args(["-c", cmd]).stdin(std::process::Stdio::null()).kill_on_drop(true).status();
    match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => {
            eprintln!("`{cmd}` exited with {s}; waiting for the health check anyway");
            Ok(())
        }
        Ok(Err(source)) => Err(UpdateError::Restart { command: cmd.into(), source }),
        Err(_) => Err(UpdateError::RestartTimedOut(cmd.into())),
    }
}

/// Waits until a server started after `since_ms` answers `/health` with `status: ok`.
async fn healthy_since(config: &Config, since_ms: i64, timeout: Duration) -> Result<Value, String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last = "no answer".to_string();
    while Instant::now() < deadline {
        let base = crate::ops::local_base(config);
        match client.get(format!("{base}/health")).send().await {
            Ok(res) => {
                let status = res.status();
                let body: Value = res.json().await.unwrap_or_default();
                let age_ms = chrono::Utc::now().timestamp_millis() - since_ms;
                let fresh = body["uptimeSeconds"].as_i64().is_some_and(|up| up * 1000 <= age_ms + 1000);
                if crate::ops::doctor::is_up(status, &body) && fresh {
                    return Ok(body);
                }
                last = if fresh {
                    format!("{base}/health answered {status} {}", body["status"])
                } else {
                    "the old process still answers".into()
                };
            }
            Err(e) => last = format!("{base}/health: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

pub(super) async fn gate_or_rollback(config: &Config, args: &UpdateArgs, p: &Pending, cmd: Option<&str>) -> Result<(), UpdateError> {
    let timeout = Duration::from_secs(args.health_timeout);
    eprintln!("waiting up to {} s for branchd {} to report healthy…", args.health_timeout, p.to);
    match healthy_since(config, p.installed_at_ms, timeout).await {
        Ok(h) => {
            let _ = std::fs::remove_file(config.data_dir.join(PENDING_FILE));
            println!("branchd {} is running and healthy (reports version {}); update done", p.to, h["version"].as_str().unwrap_or("?"));
            tracing::info!(version = %p.to, "update confirmed healthy");
            Ok(())
        }
        Err(why) => {
            eprintln!("branchd {} did not report healthy within {} s ({why}): rolling back to {}", p.to, args.health_timeout, p.from);
            tracing::error!(version = %p.to, reason = %why, "update failed its health check; rolling back");
            put_back(p)?;
            let _ = std::fs::remove_file(config.data_dir.join(PENDING_FILE));
            let Some(cmd) = cmd else {
                return Err(UpdateError::RolledBackRestartNeeded(p.from.clone()));
            };
            let since = chrono::Utc::now().timestamp_millis();
            restart(cmd).await?;
            let after = match healthy_since(config, since, timeout).await {
                Ok(_) => format!("branchd {} is running and healthy again", p.from),
                Err(e) => format!("branchd {} does not report healthy either ({e}): see journalctl -u branchd -n 100", p.from),
            };
            Err(UpdateError::RolledBack { to: p.to.clone(), after })
        }
    }
}

fn put_back(p: &Pending) -> Result<(), UpdateError> {
    if !p.previous.is_file() {
        return Err(UpdateError::NoPrevious { previous: p.previous.clone() });
    }
    std::fs::rename(&p.previous, &p.binary).map_err(|source| UpdateError::PutBack {
        previous: p.previous.clone(),
        binary: p.binary.clone(),
        source,
    })?;
    if let Some(dir) = p.binary.parent() {
        crate::fsutil::sync_dir(dir);
    }
    println!("put {} back as {}", p.previous.display(), p.binary.display());
    Ok(())
}

fn read_pending(config: &Config) -> Option<Pending> {
    serde_json::from_str(&std::fs::read_to_string(config.data_dir.join(PENDING_FILE)).ok()?).ok()
}

pub(super) async fn confirm_cmd(config: &Config, args: &UpdateArgs) -> Result<(), UpdateError> {
    let Some(p) = read_pending(config) else {
        println!("no update is waiting for confirmation");
        return Ok(());
    };
    let cmd = restart_command(args);
    gate_or_rollback(config, args, &p, cmd.as_deref()).await
}

pub(super) async fn rollback_cmd(config: &Config, args: &UpdateArgs) -> Result<(), UpdateError> {
    let (bin, previous) = binary_paths(args)?;
    let p = read_pending(config).unwrap_or(Pending {
        from: "the previous version".into(),
        to: crate::VERSION.into(),
        binary: bin,
        previous,
        installed_at_ms: 0,
    });
    put_back(&p)?;
    let _ = std::fs::remove_file(config.data_dir.join(PENDING_FILE));
    match restart_command(args) {
        Some(cmd) => {
            let since = chrono::Utc::now().timestamp_millis();
            restart(&cmd).await?;
            healthy_since(config, since, Duration::from_secs(args.health_timeout)).await.map_err(UpdateError::UnhealthyAfterRollback)?;
            println!("rolled back; branchd is running and healthy");
        }
        None => println!("rolled back; restart branchd to run it"),
    }
    Ok(())
}
