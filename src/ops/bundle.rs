//! `branchd doctor --bundle FILE`: one tar.gz for a support ticket (like Pi-hole's
//! `pihole -d`): the doctor's report (text and JSON), the last day of the service's journal,
//! the settings with secrets only as set/unset, `/health`, `/metrics`, the print queue (jobs
//! not printed, open alerts), sync state and `version --json`. Written 0600 (it may hold
//! order data); never holds the JWT secret, the uplink credential, license keys, password
//! hashes or the database.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::OpsError;
use super::doctor::{Doctor, Found};
use crate::config::{Config, SETTINGS};

/// One member of the archive.
struct Member {
    name: &'static str,
    bytes: Vec<u8>,
}

/// What went in, and what could not (for the README and the summary).
#[derive(Default)]
struct Contents {
    members: Vec<Member>,
    missing: Vec<String>,
}

impl Contents {
    fn add(&mut self, name: &'static str, bytes: impl Into<Vec<u8>>) {
        self.members.push(Member { name, bytes: bytes.into() });
    }
    fn json(&mut self, name: &'static str, v: &Value) {
        self.add(name, serde_json::to_string_pretty(v).unwrap_or_default() + "\n");
    }
}

/// `branchd doctor --bundle FILE`.
pub async fn write(config: &Config, file: &Path) -> Result<(), OpsError> {
    if file.exists() {
        return Err(OpsError::Usage(format!("{} already exists; choose a new file name", file.display())));
    }
    let doctor = Doctor::new(config)?;
    let (report, found) = doctor.examine(false).await;
    let mut c = Contents::default();
    c.add("doctor.txt", report.text());
    c.json("doctor.json", &report.json());
    c.json("version.json", &crate::version_info());
    c.add("settings-files.toml", settings_text(config));
    gather_server(&doctor, &found, &mut c).await;
    let log = journal(&mut c.missing);
    c.add("journal.txt", log);
    c.add("README.txt", readme(&c, report.failed()));
    let secrets = secrets(config);
    for m in &mut c.members {
        scrub(&mut m.bytes, &secrets);
    }
    write_archive(file, &c.members).map_err(|e| OpsError::Failed(format!("cannot write {}: {e}", file.display())))?;
    println!("support bundle written to {} (mode 0600; it may hold order data: send it to support only):", file.display());
    for m in &c.members {
        println!("  {:<22} {:>9} bytes", m.name, m.bytes.len());
    }
    for why in &c.missing {
        println!("  not in it: {why}");
    }
    println!("never in it: the JWT secret, the uplink credential, license keys, password hashes, the database");
    println!(
        "doctor: {}",
        if report.failed() == 0 { "all checks passed".to_string() } else { format!("{} check(s) failed", report.failed()) }
    );
    Ok(())
}

/// What the running server gives: its settings, `/health`, `/metrics`, the print queue and
/// sync state; a line in `missing` for each it did not.
async fn gather_server(d: &Doctor<'_>, found: &Found, c: &mut Contents) {
    let Some(health) = &found.health else {
        c.missing.push("the server's health, metrics, settings, print queue and sync state: the server is not running".into());
        return;
    };
    c.json("health.json", health);
    match d.client.get(format!("{}/metrics", d.base)).send().await {
        Ok(res) => c.add("metrics.txt", res.text().await.unwrap_or_default()),
        Err(e) => c.missing.push(format!("metrics: {}", e.without_url())),
    }
    match &found.running {
        Some(running) => {
            c.json("settings-running.json", running);
            c.json("sync.json", &json!({"running": running["sync"], "health": health["sync"], "upstream": running["upstream"]}));
        }
        None => {
            c.missing.push("the running server's settings (it did not answer GET /api/system/effective)".into());
            c.json("sync.json", &json!({"health": health["sync"], "upstream": health["upstream"]}));
        }
    }
    let mut queue = serde_json::Map::new();
    for status in ["queued", "printing", "failed"] {
        match d.get(&format!("/api/print-jobs?status={status}&limit=1000")).await {
            Ok((s, v)) if s.is_success() => drop(queue.insert(status.to_string(), v["items"].clone())),
            Ok((s, _)) => c.missing.push(format!("print jobs {status}: the server answered {s}")),
            Err(e) => c.missing.push(format!("print jobs {status}: {e}")),
        }
    }
    match d.get("/api/alerts?open=true").await {
        Ok((s, v)) if s.is_success() => drop(queue.insert("openAlerts".into(), v["items"].clone())),
        Ok((s, _)) => c.missing.push(format!("open print alerts: the server answered {s}")),
        Err(e) => c.missing.push(format!("open print alerts: {e}")),
    }
    c.json("print-queue.json", &Value::Object(queue));
}

/// The settings as the files (and this command's environment) give them, every secret only
/// as `set` or `unset`.
fn settings_text(config: &Config) -> String {
    let mut out = String::from("# branchd settings as the files and environment give them (secrets only as set/unset)\n");
    for s in SETTINGS {
        out += &format!("{} = {:?}\n", s.key, s.value(config));
    }
    out
}

/// The service's journal of the last 24 hours, or why there is none (into `missing`).
fn journal(missing: &mut Vec<String>) -> String {
    let known = std::process::Command::new("systemctl")
        .args(["list-unit-files", "branchd.service", "--no-legend", "--no-pager"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("branchd.service"))
        .unwrap_or(false);
    let why = if !known {
        "the systemd unit branchd.service is not installed here (a server started by hand logs to its terminal)"
    } else {
        match std::process::Command::new("journalctl").args(["-u", "branchd", "--since", "-24h", "--no-pager", "-n", "50000"]).output() {
            Ok(o) if o.status.success() => return String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(_) => "journalctl could not read the log (run as root: sudo branchd doctor --bundle …)",
            Err(_) => "journalctl is not installed",
        }
    };
    missing.push(format!("recent logs: {why}"));
    format!("no log: {why}\n")
}

fn readme(c: &Contents, failed: usize) -> String {
    let mut out = format!(
        "branchd {} support bundle, made {}\n\n\
         doctor.txt / doctor.json   the doctor's report ({})\n\
         version.json               branchd version --json\n\
         settings-files.toml        the settings the files and environment give (secrets only as set/unset)\n\
         settings-running.json      what the running server uses and does (GET /api/system/effective)\n\
         health.json, metrics.txt   GET /health and GET /metrics\n\
         print-queue.json           print jobs not printed (queued, printing, failed) and open print alerts\n\
         sync.json                  the uplink and sync state\n\
         journal.txt                journalctl -u branchd --since -24h\n\n\
         Never in it: the JWT secret, the uplink credential, license keys, password hashes, the database.\n\
         It may hold order data (print jobs): keep it private.\n",
        crate::VERSION,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        if failed == 0 { "all checks passed".to_string() } else { format!("{failed} check(s) failed") },
    );
    if !c.missing.is_empty() {
        out += "\nNot in this bundle:\n";
        for m in &c.missing {
            out += &format!("- {m}\n");
        }
    }
    out
}

/// The secret values this command can know, to be sure none slipped into a member.
fn secrets(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = config.upstream_token.iter().map(|t| t.expose().to_string()).collect();
    out.extend(config.jwt_secret.as_ref().map(|s| s.expose().to_string()));
    if config.jwt_secret.is_none()
        && let Ok(s) = std::fs::read_to_string(config.data_dir.join(crate::secrets::JWT_SECRET_FILE))
    {
        out.push(s.trim().to_string());
    }
    out.retain(|s| s.len() >= 8);
    out
}

/// Replaces every occurrence of a secret with `<redacted>`.
fn scrub(bytes: &mut Vec<u8>, secrets: &[String]) {
    for s in secrets {
        let s = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(s) {
                out.extend_from_slice(b"<redacted>");
                i += s.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        *bytes = out;
    }
}

/// The tar.gz, created 0600 (never over an existing file), members under one folder.
fn write_archive(file: &Path, members: &[Member]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file)?;
    out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let folder = format!("branchd-bundle-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(out, flate2::Compression::default()));
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    for m in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(m.bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now);
        header.set_cksum();
        tar.append_data(&mut header, format!("{folder}/{}", m.name), m.bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn scrub_replaces_every_occurrence() {
        let mut b = b"a secret-value-1234 b secret-value-1234".to_vec();
        super::scrub(&mut b, &["secret-value-1234".into()]);
        assert_eq!(b, b"a <redacted> b <redacted>");
    }
}
