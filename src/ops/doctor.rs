//! `branchd healthcheck` (exit code only, for scripts) and `branchd doctor`, the installer's
//! troubleshooting page: one line per check, ✔ or ✘, and for each ✘ what to do.

use crate::store::health::{disk_space as disk, disk_tight};
use std::time::Duration;

use serde_json::Value;

use super::fail;
use crate::commands::CommandError;
use crate::config::Config;

fn http(timeout: Duration) -> Result<reqwest::Client, CommandError> {
    reqwest::Client::builder().timeout(timeout).build().map_err(|e| CommandError::Server(format!("cannot make an HTTP client: {e}")))
}

/// SPEC §3: `ok` and `degraded` (serving, but something needs a person) both count as up.
pub fn is_up(status: reqwest::StatusCode, body: &Value) -> bool {
    status.is_success() && (body["status"] == "ok" || body["status"] == "degraded")
}

/// `branchd healthcheck`: exit 0 when the local server answers `/health` as up.
pub async fn healthcheck(config: &Config) -> Result<(), CommandError> {
    let base = super::local_base(config);
    let res = http(Duration::from_secs(5))?
        .get(format!("{base}/health"))
        .send()
        .await
        .map_err(|e| CommandError::Server(format!("unhealthy: nothing answers at {base} ({e})")))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or_default();
    if is_up(status, &body) {
        println!(
            "healthy: branchd {} at {base}, up {} s, {}",
            body["version"].as_str().unwrap_or("?"),
            body["uptimeSeconds"],
            body["status"].as_str().unwrap_or("?")
        );
        Ok(())
    } else {
        fail(format!("unhealthy: {base}/health answered {status}, status {}, db {}", body["status"], body["db"]))
    }
}

struct Report {
    failed: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("✔ {what:<10} {}", detail.as_ref());
    }
    /// Shown, but not counted as a failure (SPEC §3: `degraded` problems are warnings).
    fn warn(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("! {what:<10} {}", detail.as_ref());
    }
    fn bad(&mut self, what: &str, detail: impl AsRef<str>, todo: impl AsRef<str>) {
        self.failed += 1;
        println!("✘ {what:<10} {}", detail.as_ref());
        println!("  {:<10} → {}", "", todo.as_ref());
    }
}

fn mb(b: u64) -> String {
    if b >= 10 << 30 { format!("{:.0} GB", b as f64 / 1e9) } else { format!("{:.0} MB", b as f64 / 1e6) }
}

/// `branchd doctor`.
pub async fn run(config: &Config) -> Result<(), CommandError> {
    let mut r = Report { failed: 0 };
    let base = super::local_base(config);
    let client = http(Duration::from_secs(5))?;
    println!("branchd {} doctor — data directory {}, server {base}", crate::VERSION, config.data_dir.display());

    // Server and /health.
    let health: Option<Value> = match client.get(format!("{base}/health")).send().await {
        Ok(res) => {
            let code = res.status();
            let body: Value = res.json().await.unwrap_or_default();
            if is_up(code, &body) {
                for p in body["problems"].as_array().into_iter().flatten() {
                    r.warn("server", format!("{}: {}", p["code"].as_str().unwrap_or("?"), p["message"].as_str().unwrap_or("")));
                }
                r.ok(
                    "server",
                    format!(
                        "answers at {base}: branchd {}, role {}, up {} s",
                        body["version"].as_str().unwrap_or("?"),
                        body["role"].as_str().unwrap_or("?"),
                        body["uptimeSeconds"]
                    ),
                );
            } else {
                r.bad(
                    "server",
                    format!("answers at {base} but reports {code} {}", body["status"]),
                    "see the log: journalctl -u branchd -n 100",
                );
            }
            Some(body)
        }
        Err(e) => {
            r.bad(
                "server",
                format!("nothing answers at {base} ({})", e.without_url()),
                "start it: sudo systemctl start branchd; why it stopped: journalctl -u branchd -n 100; is another program on the port? sudo ss -ltnp",
            );
            None
        }
    };

    // Database: writable and intact.
    let db = config.db_path();
    if !db.exists() {
        r.bad(
            "database",
            format!("{} does not exist yet", db.display()),
            "start the server once (it creates the database): sudo systemctl start branchd",
        );
    } else {
        let checked = (|| -> Result<Result<(), Vec<String>>, crate::store::StoreError> {
            let db = crate::store::Direct::open(&db)?;
            db.probe_write()?;
            db.integrity()
        })();
        let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        match checked {
            Ok(Ok(())) => r.ok("database", format!("{} writable, integrity_check ok ({})", db.display(), mb(size))),
            Ok(Err(problems)) => r.bad(
                "database",
                format!("integrity_check found: {}", problems.join("; ")),
                "restore the newest backup: sudo systemctl stop branchd; sudo branchd restore /var/lib/branchd/backups/branchd-….db",
            ),
            Err(e) => r.bad(
                "database",
                format!("{e}"),
                "check ownership and space: ls -l /var/lib/branchd (files must belong to branchd); run doctor with sudo",
            ),
        }
    }

    // Printers, through the running server's API.
    let mut desktop_printers = 0usize;
    let token = match super::admin_token(config) {
        Ok(t) => Some(t),
        Err(e) => {
            r.bad("printers", format!("cannot sign a token to ask the server: {e}"), "run doctor as root: sudo branchd doctor");
            None
        }
    };
    if let (Some(_), Some(token)) = (&health, token) {
        match client.get(format!("{base}/api/printers?limit=1000")).bearer_auth(&token).send().await {
            Ok(res) if res.status() == reqwest::StatusCode::UNAUTHORIZED => r.bad(
                "printers",
                "the server refused this command's token: its JWT secret differs",
                "run doctor as root (sudo branchd doctor) so it reads /etc/default/branchd, or set JWT_SECRET as the service has it",
            ),
            Ok(res) if res.status().is_success() => {
                let list: Value = res.json().await.unwrap_or_default();
                let printers = list["items"].as_array().cloned().unwrap_or_default();
                if printers.is_empty() {
                    r.bad("printers", "none configured", "find them: sudo branchd printer discover; then branchd printer add …");
                }
                for p in &printers {
                    let id = p["id"].as_str().unwrap_or("");
                    let name = p["name"].as_str().unwrap_or(id);
                    let kind = p["connection"]["type"].as_str().unwrap_or("?");
                    if kind == "desktop" {
                        desktop_printers += 1;
                    }
                    let st: Value = match client.get(format!("{base}/api/printers/{id}/status")).bearer_auth(&token).send().await {
                        Ok(res) => res.json().await.unwrap_or_default(),
                        Err(_) => Value::Null,
                    };
                    let status = st["status"].as_str().unwrap_or("unknown");
                    let what = format!(
                        "printer {name} ({kind}) is {status}{}",
                        st["detail"].as_str().map(|d| format!(": {d}")).unwrap_or_default()
                    );
                    match status {
                        "online" | "paper_low" => r.ok("printer", what),
                        "paper_out" => r.bad("printer", what, "load paper; queued jobs print when it is back"),
                        "cover_open" => r.bad("printer", what, "close the cover"),
                        _ if kind == "desktop" => {
                            r.bad("printer", what, "start the desktop print app (PrinterMaster) on the PC this printer is attached to")
                        }
                        _ => r.bad(
                            "printer",
                            what,
                            format!("check power, cable and paper; then: branchd printer test {id}; journalctl -u branchd | grep {id}"),
                        ),
                    }
                }
            }
            Ok(res) => r.bad("printers", format!("GET /api/printers answered {}", res.status()), "see journalctl -u branchd -n 100"),
            Err(e) => r.bad("printers", format!("cannot ask the server: {}", e.without_url()), "see journalctl -u branchd -n 100"),
        }
    }

    if let Some(h) = &health {
        // Desktop apps.
        let apps = h["desktopApps"].as_u64().unwrap_or(0);
        if apps > 0 {
            r.ok("desktop", format!("{apps} desktop print app(s) connected"));
        } else if desktop_printers > 0 {
            r.bad(
                "desktop",
                format!("no desktop print app connected, but {desktop_printers} printer(s) need one"),
                "start PrinterMaster on the POS PC; check its server address and license key; journalctl -u branchd | grep -i desktop",
            );
        } else {
            r.ok("desktop", "no desktop print app connected (none needed: no desktop printers)");
        }

        // Uplink and backlog.
        let sync = &h["sync"];
        match &config.upstream_url {
            None => r.ok("uplink", "sync is off (no upstream_url): this appliance works alone"),
            Some(url) => {
                let pending = sync["pending"].as_i64().unwrap_or(0);
                let age = sync["oldestPendingAgeSeconds"].as_i64();
                let backlog = format!("{pending} event(s) waiting{}", age.map(|a| format!(", oldest {a} s")).unwrap_or_default());
                let hub = client.get(format!("{url}/health")).send().await;
                if let Some(stopped) = sync["stopped"].as_str() {
                    r.bad(
                        "uplink",
                        format!("sync stopped: {stopped}; {backlog}"),
                        "see journalctl -u branchd | grep -i sync; check BRANCHD_UPSTREAM_TOKEN",
                    );
                } else if h["upstream"] == "online" {
                    r.ok("uplink", format!("{url} online; {backlog}"));
                } else {
                    let reach = match &hub {
                        Ok(res) => format!("the hub answers ({}) but sync is offline", res.status()),
                        Err(e) => format!("cannot reach {url} ({e})"),
                    };
                    r.bad(
                        "uplink",
                        format!("{reach}; {backlog}; last error: {}", sync["lastError"].as_str().unwrap_or("none")),
                        "check the internet connection and BRANCHD_UPSTREAM_URL / BRANCHD_UPSTREAM_TOKEN in /etc/default/branchd; orders are kept and sent later",
                    );
                }
                if let Ok(res) = &hub
                    && let Some(date) = res.headers().get(reqwest::header::DATE).and_then(|d| d.to_str().ok())
                    && let Ok(t) = chrono::DateTime::parse_from_rfc2822(date)
                {
                    let skew = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().abs();
                    if skew > 120 {
                        r.bad("clock", format!("{skew} s off the hub's clock"), "enable time sync: sudo timedatectl set-ntp true");
                    }
                }
            }
        }
    }

    // mDNS (from the configuration).
    if config.mdns {
        let ifs = if config.mdns_interfaces.is_empty() { "every LAN interface".to_string() } else { config.mdns_interfaces.join(", ") };
        r.ok("mdns", format!("advertised as _branchd._tcp on {ifs} (see it from another machine: branchd discover)"));
    } else {
        r.ok("mdns", "off (mdns = \"off\"): tablets must use the IP address");
    }

    // Clock.
    let now = chrono::Utc::now();
    if chrono::Datelike::year(&now) >= 2024 {
        r.ok("clock", format!("{} UTC", now.format("%Y-%m-%d %H:%M:%S")));
    } else {
        r.bad(
            "clock",
            format!("{} UTC is not a plausible date", now.format("%Y-%m-%d %H:%M:%S")),
            "the clock has no time source (a Pi has no battery clock): connect the network and sudo timedatectl set-ntp true",
        );
    }

    // Disk space.
    match disk(&config.data_dir) {
        Some((free, total)) if disk_tight(free, total) => r.bad(
            "disk",
            format!("only {} free of {} at {}", mb(free), mb(total), config.data_dir.display()),
            "free space: fewer backups (backup_keep), sudo journalctl --vacuum-size=100M, remove old files",
        ),
        Some((free, total)) => r.ok("disk", format!("{} free of {} at {}", mb(free), mb(total), config.data_dir.display())),
        None => r.bad(
            "disk",
            format!("cannot measure free space at {}", config.data_dir.display()),
            "does the data directory exist? sudo branchd check-config",
        ),
    }

    // Backups.
    if config.backup_interval_hours > 0.0 {
        let dir = super::backup::dir(config);
        match super::backup::list(&dir).last() {
            Some(last) => {
                let age_h = std::fs::metadata(last)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map(|d| d.as_secs_f64() / 3600.0);
                match age_h {
                    Some(h) if h > config.backup_interval_hours * 2.0 + 1.0 => r.bad(
                        "backup",
                        format!("newest backup {} is {h:.0} h old", last.display()),
                        "see journalctl -u branchd | grep -i backup (space? permissions?)",
                    ),
                    _ => r.ok("backup", format!("newest {} ({} kept)", last.display(), super::backup::list(&dir).len())),
                }
            }
            None => r.ok("backup", format!("none yet in {} (the first is taken within 10 minutes of start)", dir.display())),
        }
    } else {
        r.ok("backup", "scheduled backups are off (backup_interval_hours = 0)");
    }

    // Updates (what the last check found).
    match super::update::last_check(&config.data_dir) {
        Some(v) if v["newer"] == true => {
            r.ok("update", format!("branchd {} is available: sudo branchd update --apply", v["available"].as_str().unwrap_or("?")))
        }
        Some(v) if v["error"].is_string() => r.ok("update", format!("last check failed: {}", v["error"].as_str().unwrap_or(""))),
        _ => r.ok("update", format!("running {}", crate::VERSION)),
    }

    if r.failed > 0 {
        return fail(format!("{} check(s) failed", r.failed));
    }
    println!("all checks passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn disk_space_is_judged_by_what_branchd_needs() {
        const GB: u64 = 1 << 30;
        assert!(!super::disk_tight(11 * GB, 271 * GB), "a big disk with 11 GB free");
        assert!(super::disk_tight(GB, 32 * GB), "an SD card with 1 GB left");
        assert!(super::disk_tight(100 << 20, 8 * GB), "under 200 MB is always tight");
        assert!(!super::disk_tight(10 * GB, 32 * GB));
    }
}
