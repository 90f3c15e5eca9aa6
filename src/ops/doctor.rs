//! `branchd healthcheck` (exit code only, for scripts) and `branchd doctor`, the installer's
//! troubleshooting page: one line per check, ✔ or ✘, and for each ✘ what to do.

use crate::store::health::{disk_space as disk, disk_tight};
use std::time::Duration;

use serde_json::Value;

use super::OpsError;
use super::fail;
use crate::config::Config;

fn http(timeout: Duration) -> Result<reqwest::Client, OpsError> {
    reqwest::Client::builder().timeout(timeout).build().map_err(|e| OpsError::Failed(format!("cannot make an HTTP client: {e}")))
}

/// SPEC §3: `ok` and `degraded` (serving, but something needs a person) both count as up.
pub fn is_up(status: reqwest::StatusCode, body: &Value) -> bool {
    status.is_success() && (body["status"] == "ok" || body["status"] == "degraded")
}

/// `branchd healthcheck`: exit 0 when the local server answers `/health` as up.
pub async fn healthcheck(config: &Config) -> Result<(), OpsError> {
    let base = super::local_base(config);
    let res = http(Duration::from_secs(5))?
        .get(format!("{base}/health"))
        .send()
        .await
        .map_err(|e| OpsError::Failed(format!("unhealthy: nothing answers at {base} ({e})")))?;
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

/// One line of the doctor's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    /// `ok`, `warn` (shown, not counted: SPEC §3 `degraded`) or `fail`.
    pub result: &'static str,
    pub check: String,
    pub detail: String,
    /// What to do, for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub todo: Option<String>,
}

/// The report: printed as it is made (`echo`), kept for `--bundle`.
pub struct Report {
    pub title: String,
    pub lines: Vec<Line>,
    echo: bool,
}

impl Report {
    fn new(title: String, echo: bool) -> Report {
        if echo {
            println!("{title}");
        }
        Report { title, lines: Vec::new(), echo }
    }
    fn push(&mut self, result: &'static str, what: &str, detail: String, todo: Option<String>) {
        let line = Line { result, check: what.to_string(), detail, todo };
        if self.echo {
            print!("{}", text_of(&line));
        }
        self.lines.push(line);
    }
    fn ok(&mut self, what: &str, detail: impl AsRef<str>) {
        self.push("ok", what, detail.as_ref().to_string(), None);
    }
    /// Shown, but not counted as a failure (SPEC §3: `degraded` problems are warnings).
    fn warn(&mut self, what: &str, detail: impl AsRef<str>) {
        self.push("warn", what, detail.as_ref().to_string(), None);
    }
    fn bad(&mut self, what: &str, detail: impl AsRef<str>, todo: impl AsRef<str>) {
        self.push("fail", what, detail.as_ref().to_string(), Some(todo.as_ref().to_string()));
    }
    pub fn failed(&self) -> usize {
        self.lines.iter().filter(|l| l.result == "fail").count()
    }
    /// The report as `branchd doctor` prints it.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for l in &self.lines {
            out += &text_of(l);
        }
        out += &self.verdict_line();
        out
    }
    pub fn json(&self) -> Value {
        serde_json::json!({"title": self.title, "failed": self.failed(), "checks": self.lines})
    }
    fn verdict_line(&self) -> String {
        match self.failed() {
            0 => "all checks passed\n".into(),
            n => format!("{n} check(s) failed\n"),
        }
    }
}

fn text_of(l: &Line) -> String {
    let mark = match l.result {
        "ok" => '✔',
        "warn" => '!',
        _ => '✘',
    };
    let mut out = format!("{mark} {:<10} {}\n", l.check, l.detail);
    if let Some(todo) = &l.todo {
        out += &format!("  {:<10} → {todo}\n", "");
    }
    out
}

fn mb(b: u64) -> String {
    if b >= 10 << 30 { format!("{:.0} GB", b as f64 / 1e9) } else { format!("{:.0} MB", b as f64 / 1e6) }
}

/// What the doctor asked the running server, kept for `--bundle`.
#[derive(Default)]
pub struct Found {
    /// `/health`, when the server answered.
    pub health: Option<Value>,
    /// `GET /api/system/effective`, when the server answered it.
    pub running: Option<Value>,
}

/// The doctor's means: the configuration from the files, the local server's address and a
/// short-lived admin token (as the `printer` commands reach the running server).
pub struct Doctor<'a> {
    pub config: &'a Config,
    pub base: String,
    pub client: reqwest::Client,
    pub token: Result<String, String>,
}

impl<'a> Doctor<'a> {
    pub fn new(config: &'a Config) -> Result<Doctor<'a>, OpsError> {
        Ok(Doctor {
            config,
            base: super::local_base(config),
            client: http(Duration::from_secs(5))?,
            token: super::admin_token(config).map_err(|e| e.to_string()),
        })
    }

    /// GET `path` of the local server as the admin; the status and the JSON body.
    pub async fn get(&self, path: &str) -> Result<(reqwest::StatusCode, Value), String> {
        let token = self.token.as_ref().map_err(|e| format!("cannot sign a token to ask the server: {e}"))?;
        let res =
            self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.map_err(|e| e.without_url().to_string())?;
        let status = res.status();
        Ok((status, res.json().await.unwrap_or_default()))
    }

    /// Runs every check, one `check_*` per heading.
    pub async fn examine(&self, echo: bool) -> (Report, Found) {
        let title = format!("branchd {} doctor — data directory {}, server {}", crate::VERSION, self.config.data_dir.display(), self.base);
        let mut r = Report::new(title, echo);
        let mut found = Found { health: self.check_server(&mut r).await, running: None };
        if found.health.is_some() {
            found.running = self.check_running(&mut r).await;
        }
        // The running server's settings where it gave them, else the files'.
        let config = effective_config(self.config, found.running.as_ref());
        check_settings(&mut r, self.config, found.running.as_ref());
        check_database(&mut r, &config);
        let desktop_printers = match &found.health {
            Some(_) => self.check_printers(&mut r).await,
            None => 0,
        };
        if let Some(h) = &found.health {
            check_desktop(&mut r, h, desktop_printers);
            self.check_uplink(&mut r, &config, h).await;
        }
        check_mdns(&mut r, &config, found.running.as_ref());
        check_clock(&mut r);
        check_disk(&mut r, &config);
        check_backup(&mut r, &config);
        check_update(&mut r, &config);
        (r, found)
    }

    /// The server and its `/health`; `None` when nothing answers.
    async fn check_server(&self, r: &mut Report) -> Option<Value> {
        let base = &self.base;
        let res = match self.client.get(format!("{base}/health")).send().await {
            Ok(res) => res,
            Err(e) => {
                let holder = super::lock::running(&self.config.data_dir).and_then(|i| i.pid);
                let what = match holder {
                    Some(pid) => {
                        format!("not answering: pid {pid} holds the data directory but nothing answers at {base} ({})", e.without_url())
                    }
                    None => format!("server not running: nothing answers at {base} ({})", e.without_url()),
                };
                r.bad(
                    "server",
                    what,
                    "start it: sudo systemctl start branchd; why it stopped: journalctl -u branchd -n 100; is another program on the port? sudo ss -ltnp. The checks below read the files",
                );
                return None;
            }
        };
        let code = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        if !is_up(code, &body) {
            r.bad(
                "server",
                format!("answers at {base} but reports {code} {}", body["status"]),
                "see the log: journalctl -u branchd -n 100",
            );
            return Some(body);
        }
        for p in body["problems"].as_array().into_iter().flatten() {
            r.warn("server", format!("{}: {}", p["code"].as_str().unwrap_or("?"), p["message"].as_str().unwrap_or("")));
        }
        let detail = format!(
            "answers at {base}: branchd {}, role {}, up {} s",
            body["version"].as_str().unwrap_or("?"),
            body["role"].as_str().unwrap_or("?"),
            body["uptimeSeconds"]
        );
        r.ok("server", detail);
        Some(body)
    }

    /// What the running server uses (`GET /api/system/effective`); `None` (with a warning:
    /// the checks then read the files) when it does not say.
    async fn check_running(&self, r: &mut Report) -> Option<Value> {
        match self.get("/api/system/effective").await {
            Ok((status, v)) if status.is_success() => {
                let tls = match (v["tls"]["enabled"].as_bool(), v["tls"]["caFingerprint"].as_str()) {
                    (Some(true), Some(fp)) => format!("TLS on (CA SHA-256 {fp})"),
                    (Some(true), None) => "TLS on (configured certificate)".into(),
                    _ => "TLS off".into(),
                };
                let workers = v["printWorkers"].as_array().map_or(0, Vec::len);
                let detail = format!(
                    "pid {}, up {} s, role {}, data directory {}, {tls}, {workers} print worker(s)",
                    v["pid"],
                    v["uptimeSeconds"],
                    v["role"].as_str().unwrap_or("?"),
                    v["dataDir"].as_str().unwrap_or("?")
                );
                r.ok("running", detail);
                Some(v)
            }
            Ok((reqwest::StatusCode::UNAUTHORIZED, _)) => {
                r.warn("running", "the server refused this command's token (its JWT secret differs): the checks below read the files; run doctor as root (sudo branchd doctor) so it reads /etc/default/branchd");
                None
            }
            Ok((status, _)) => {
                r.warn("running", format!("the server does not say what it uses (GET /api/system/effective answered {status}; an older branchd?): the checks below read the files"));
                None
            }
            Err(e) => {
                r.warn("running", format!("cannot ask the server what it uses ({e}): the checks below read the files"));
                None
            }
        }
    }

    /// Printers, through the running server's API; the number of desktop printers.
    async fn check_printers(&self, r: &mut Report) -> usize {
        let printers = match self.get("/api/printers?limit=1000").await {
            Ok((reqwest::StatusCode::UNAUTHORIZED, _)) => {
                r.bad(
                    "printers",
                    "the server refused this command's token: its JWT secret differs",
                    "run doctor as root (sudo branchd doctor) so it reads /etc/default/branchd, or set JWT_SECRET as the service has it",
                );
                return 0;
            }
            Ok((status, list)) if status.is_success() => list["items"].as_array().cloned().unwrap_or_default(),
            Ok((status, _)) => {
                r.bad("printers", format!("GET /api/printers answered {status}"), "see journalctl -u branchd -n 100");
                return 0;
            }
            Err(e) => {
                r.bad(
                    "printers",
                    format!("cannot ask the server: {e}"),
                    "run doctor as root: sudo branchd doctor; see journalctl -u branchd -n 100",
                );
                return 0;
            }
        };
        if printers.is_empty() {
            if self.config.role == crate::config::ApplianceRole::Hub {
                r.ok("printers", "none: a hub does not print (it keeps copies of its branches' printers)");
            } else {
                r.bad("printers", "none configured", "find them: sudo branchd printer discover; then branchd printer add …");
            }
        }
        let mut desktop = 0;
        for p in &printers {
            desktop += usize::from(p["connection"]["type"] == "desktop");
            let id = p["id"].as_str().unwrap_or("");
            let st = self.get(&format!("/api/printers/{id}/status")).await.map(|(_, v)| v).unwrap_or_default();
            judge_printer(r, p, &st);
        }
        desktop
    }

    /// The uplink to HQ and its backlog (and the clock against the hub's).
    async fn check_uplink(&self, r: &mut Report, config: &Config, h: &Value) {
        let Some(url) = &config.upstream_url else {
            r.ok("uplink", "sync is off (no upstream_url): this appliance works alone");
            return;
        };
        let sync = &h["sync"];
        let pending = sync["pending"].as_i64().unwrap_or(0);
        let age = sync["oldestPendingAgeSeconds"].as_i64();
        let backlog = format!("{pending} event(s) waiting{}", age.map(|a| format!(", oldest {a} s")).unwrap_or_default());
        let hub = self.client.get(format!("{url}/health")).send().await;
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

/// `branchd doctor` (`--json`: the report as JSON, same exit code).
pub async fn run(config: &Config, as_json: bool) -> Result<(), OpsError> {
    let (r, _) = Doctor::new(config)?.examine(!as_json).await;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&r.json()).unwrap_or_default());
    }
    if r.failed() > 0 {
        return fail(format!("{} check(s) failed", r.failed()));
    }
    if !as_json {
        println!("all checks passed");
    }
    Ok(())
}

/// The files' configuration with what the running server reported in its place: the
/// settings the checks read (data and backup directories, backups, uplink, mDNS).
pub fn effective_config(files: &Config, running: Option<&Value>) -> Config {
    let mut c = files.clone();
    let Some(v) = running else { return c };
    let set = |key: &str| v["settings"][key].as_str().filter(|s| *s != "unset").map(str::to_string);
    if let Some(d) = v["dataDir"].as_str() {
        c.data_dir = d.into();
    }
    c.backup_dir = set("backup_dir").map(Into::into);
    if let Some(h) = set("backup_interval_hours").and_then(|h| h.parse().ok()) {
        c.backup_interval_hours = h;
    }
    c.upstream_url = v["upstream"]["url"].as_str().map(str::to_string);
    c.mdns = v["mdns"]["advertised"] == true || set("mdns").as_deref() == Some("on");
    c
}

/// The settings where the running server differs from the files: `(key, running, files)`.
pub fn differences(files: &Config, running: &Value) -> Vec<(&'static str, String, String)> {
    crate::config::SETTINGS
        .iter()
        .filter_map(|s| {
            let theirs = running["settings"][s.key].as_str()?;
            let ours = s.value(files);
            (theirs != ours).then(|| (s.key, theirs.to_string(), ours))
        })
        .collect()
}

/// One line per setting the running server uses differently from the files.
pub fn difference_lines(files: &Config, running: &Value) -> Vec<String> {
    differences(files, running)
        .into_iter()
        .map(|(key, theirs, ours)| format!("running server uses {key}={theirs}; the files say {ours}: restart to apply"))
        .collect()
}

/// The running server against the files (a warning per difference: a restart applies them).
fn check_settings(r: &mut Report, files: &Config, running: Option<&Value>) {
    let Some(v) = running else { return };
    let lines = difference_lines(files, v);
    if lines.is_empty() {
        r.ok("settings", "the running server uses what the files say");
    }
    for l in lines {
        r.warn("settings", l);
    }
}

/// Database: writable and intact.
fn check_database(r: &mut Report, config: &Config) {
    if let Some(url) = &config.database_url {
        use crate::store::pg_tls::{self, SslMode};
        let checked = crate::store::Direct::open_postgres(url.expose()).and_then(|db| {
            db.probe_write()?;
            Ok((db.schema_version()?, db.read(pg_tls::encrypted)?.unwrap_or(false)))
        });
        match checked {
            Ok((v, encrypted)) => {
                let target = pg_tls::parse(url.expose()).ok();
                let mode = target.as_ref().map_or(SslMode::Prefer, |t| t.mode);
                let verified = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull);
                let how = match (encrypted, verified) {
                    (false, _) => "unencrypted",
                    (true, false) => "over TLS, server certificate not checked",
                    (true, true) => "over TLS, server certificate verified",
                };
                r.ok("database", format!("PostgreSQL (hub cluster) reachable and writable {how}, schema version {v}"));
                if !verified && !target.is_some_and(|t| t.is_local()) {
                    r.warn(
                        "database",
                        "PostgreSQL is on another machine and its certificate is not checked: add sslmode=verify-full&sslrootcert=/path/to/ca.pem to BRANCHD_DATABASE_URL (docs/HUB-CLUSTER.md, \"TLS to PostgreSQL\")",
                    );
                }
            }
            Err(e) => r.bad(
                "database",
                format!("PostgreSQL: {e}"),
                "check BRANCHD_DATABASE_URL and that PostgreSQL runs and accepts this host (pg_hba.conf): psql \"$BRANCHD_DATABASE_URL\" -c 'SELECT 1'",
            ),
        }
        return;
    }
    let db = config.db_path();
    if !db.exists() {
        r.bad(
            "database",
            format!("{} does not exist yet", db.display()),
            "start the server once (it creates the database): sudo systemctl start branchd",
        );
        return;
    }
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

/// One printer's line from its status.
fn judge_printer(r: &mut Report, p: &Value, st: &Value) {
    let id = p["id"].as_str().unwrap_or("");
    let name = p["name"].as_str().unwrap_or(id);
    let kind = p["connection"]["type"].as_str().unwrap_or("?");
    let status = st["status"].as_str().unwrap_or("unknown");
    let what = format!("printer {name} ({kind}) is {status}{}", st["detail"].as_str().map(|d| format!(": {d}")).unwrap_or_default());
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

/// Desktop print apps, against the printers that need one.
fn check_desktop(r: &mut Report, h: &Value, desktop_printers: usize) {
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
}

/// mDNS: what the running server does, else what the files say it would.
fn check_mdns(r: &mut Report, config: &Config, running: Option<&Value>) {
    let Some(v) = running else {
        if config.mdns {
            let ifs = if config.mdns_interfaces.is_empty() { "every LAN interface".to_string() } else { config.mdns_interfaces.join(", ") };
            r.ok("mdns", format!("the files say: advertise as _branchd._tcp on {ifs} (no running server to ask)"));
        } else {
            r.ok("mdns", "the files say off (mdns = \"off\"): tablets must use the IP address (no running server to ask)");
        }
        return;
    };
    let m = &v["mdns"];
    let list = |k: &str| m[k].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    if m["advertised"] == true {
        let ifs = list("interfaces");
        let ifs = if ifs.is_empty() { "no LAN interface found".to_string() } else { ifs };
        let detail = format!(
            "advertised as \"{}\" (_branchd._tcp) on {ifs} (see it from another machine: branchd discover)",
            m["instance"].as_str().unwrap_or("?")
        );
        r.ok("mdns", detail);
    } else if !config.mdns {
        r.ok("mdns", "off in the running server (mdns = \"off\"): tablets must use the IP address");
    } else {
        r.bad(
            "mdns",
            format!("not advertised by the running server: {}", m["reason"].as_str().unwrap_or("no reason given")),
            "see journalctl -u branchd | grep -i mdns; is UDP port 5353 open? BRANCHD_MDNS_INTERFACES names the LAN interfaces",
        );
    }
}

/// Clock: a plausible date.
fn check_clock(r: &mut Report) {
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
}

/// Disk space at the data directory.
fn check_disk(r: &mut Report, config: &Config) {
    let at = config.data_dir.display();
    match disk(&config.data_dir) {
        Some((free, total)) if disk_tight(free, total) => r.bad(
            "disk",
            format!("only {} free of {} at {at}", mb(free), mb(total)),
            "free space: fewer backups (backup_keep), sudo journalctl --vacuum-size=100M, remove old files",
        ),
        Some((free, total)) => r.ok("disk", format!("{} free of {} at {at}", mb(free), mb(total))),
        None => r.bad("disk", format!("cannot measure free space at {at}"), "does the data directory exist? sudo branchd check-config"),
    }
}

/// Scheduled backups: the newest one's age.
fn check_backup(r: &mut Report, config: &Config) {
    if config.database_url.is_some() {
        r.ok("backup", crate::store::backup::POSTGRES_BACKUP);
        return;
    }
    if config.backup_interval_hours <= 0.0 {
        r.ok("backup", "scheduled backups are off (backup_interval_hours = 0)");
        return;
    }
    let dir = super::backup::dir(config);
    let all = super::backup::list(&dir);
    let Some(last) = all.last() else {
        r.ok("backup", format!("none yet in {} (the first is taken within 10 minutes of start)", dir.display()));
        return;
    };
    let age_h = std::fs::metadata(last).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).map(|d| d.as_secs_f64() / 3600.0);
    match age_h {
        Some(h) if h > config.backup_interval_hours * 2.0 + 1.0 => r.bad(
            "backup",
            format!("newest backup {} is {h:.0} h old", last.display()),
            "see journalctl -u branchd | grep -i backup (space? permissions?)",
        ),
        _ => r.ok("backup", format!("newest {} ({} kept)", last.display(), all.len())),
    }
}

/// Updates: what the last check found.
fn check_update(r: &mut Report, config: &Config) {
    match super::update::last_check(&config.data_dir) {
        Some(v) if v["newer"] == true => {
            r.ok("update", format!("branchd {} is available: sudo branchd update --apply", v["available"].as_str().unwrap_or("?")))
        }
        Some(v) if v["error"].is_string() => r.ok("update", format!("last check failed: {}", v["error"].as_str().unwrap_or(""))),
        _ => r.ok("update", format!("running {}", crate::VERSION)),
    }
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
