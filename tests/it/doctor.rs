//! `branchd doctor`, `check-config` and `doctor --bundle` against the real binary: doctor
//! reports what the running server uses (not what the files say), check-config names where
//! they differ, the support bundle has its members, is 0600 and holds no secret, and with no
//! server doctor says so and exits 1.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::process::BIN;

const UPLINK_TOKEN: &str = "uplink-credential-never-in-bundles-42";

/// The environment both the server and the CLI see: no config file, no `JWT_SECRET` (the
/// server makes `DATA_DIR/jwt_secret`, the CLI reads it), an uplink with a credential.
fn env(cmd: &mut Command, hub: &str) {
    cmd.env("BRANCHD_CONFIG", "")
        .env_remove("JWT_SECRET")
        .env_remove("PORT")
        .env("BRANCHD_BACKUP_INTERVAL_HOURS", "0")
        .env("BRANCHD_UPSTREAM_URL", hub)
        .env("BRANCHD_UPSTREAM_TOKEN", UPLINK_TOKEN);
}

fn branchd(data: &Path, hub: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(data);
    env(&mut cmd, hub);
    let out: Output = cmd.output().expect("binary runs");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every file under `dir`, with its content.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn doctor_reports_the_running_server_and_bundles_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A hub that is not there: the uplink fails, its credential is still configured.
    let (_closed, hub_addr) = common::closed_port();
    let hub = format!("http://{hub_addr}");

    // The server runs with mDNS off; the files (none) say on.
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--port", "0", "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"]).arg(&data);
    env(&mut cmd, &hub);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _ = lines.by_ref().find(|l| l.as_ref().is_ok_and(|l| l.starts_with("branchd listening on ")));
    std::thread::spawn(move || for _ in lines {});

    // doctor: what the server does, not what the files say.
    let (code, out, err) = branchd(&data, &hub, &["doctor"]);
    assert!(out.contains("✔ running") && out.contains(&format!("pid {}", child.id())), "{out}{err}");
    assert!(out.contains("✔ mdns") && out.contains("off in the running server"), "{out}{err}");
    assert!(!out.contains("advertised"), "doctor must not claim mDNS is advertised:\n{out}");
    assert!(out.contains("running server uses mdns=off; the files say on"), "{out}");
    assert!(out.contains("✘ uplink"), "the hub is not there:\n{out}");
    assert_eq!(code, Some(1), "{out}{err}");

    // The same as JSON.
    let (_, out, err) = branchd(&data, &hub, &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let mdns = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "mdns").expect("an mdns check").clone();
    assert_eq!(mdns["result"], "ok");
    assert!(mdns["detail"].as_str().unwrap().contains("off in the running server"), "{mdns}");

    // check-config checks the files and names each difference with the running server.
    let (code, out, err) = branchd(&data, &hub, &["check-config"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("configuration ok"), "{out}");
    for line in [
        "running server uses mdns=off; the files say on: restart to apply",
        "running server uses port=0; the files say 3001: restart to apply",
        "running server uses bind=127.0.0.1; the files say 0.0.0.0: restart to apply",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?}:\n{out}");
    }
    assert_eq!(out.lines().filter(|l| l.starts_with("running server uses")).count(), 3, "only what differs:\n{out}");

    // The bundle.
    let bundle = dir.path().join("support.tar.gz");
    let (code, out, err) = branchd(&data, &hub, &["doctor", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(bundle.to_str().unwrap()) && out.contains("print-queue.json"), "{out}");
    assert_eq!(std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777, 0o600);
    let again = branchd(&data, &hub, &["doctor", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(again.0, Some(2), "an existing file is not overwritten: {again:?}");

    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&bundle).unwrap()));
    let names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().file_name().unwrap().to_string_lossy().into_owned()).collect();
    for member in [
        "README.txt",
        "doctor.txt",
        "doctor.json",
        "version.json",
        "settings-files.toml",
        "settings-running.json",
        "health.json",
        "metrics.txt",
        "print-queue.json",
        "sync.json",
        "journal.txt",
    ] {
        assert!(names.iter().any(|n| n == member), "{member} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.ends_with(".db") || n.contains("secret") || n.contains("credentials")), "{names:?}");

    let unpacked = dir.path().join("unpacked");
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&bundle).unwrap())).unpack(&unpacked).unwrap();
    let contents = files(&unpacked);
    let all: Vec<u8> = contents.iter().flat_map(|(_, b)| b.clone()).collect();
    // What the bundle is for.
    assert!(contains(&all, "off in the running server"), "the doctor report");
    assert!(contains(&all, "branchd_http_requests_total") || contains(&all, "# TYPE"), "the metrics");
    assert!(contains(&all, "openAlerts") && contains(&all, "queued"), "the print queue");
    assert!(contains(&all, "journalctl") || contains(&all, "no log"), "the logs, or why there are none");
    // What it must never hold.
    let jwt = std::fs::read_to_string(data.join("jwt_secret")).unwrap().trim().to_string();
    let creds = std::fs::read_to_string(data.join("demo-credentials.txt")).unwrap();
    let password = creds.split("with password ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let license = creds.split("(shown once): ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    for (what, secret) in
        [("JWT secret", jwt.as_str()), ("demo password", &password), ("license key", &license), ("uplink credential", UPLINK_TOKEN)]
    {
        assert!(secret.len() >= 16, "{what} read from the data directory: {secret:?}");
        for (file, bytes) in &contents {
            assert!(!contains(bytes, secret), "the {what} is in {file}");
        }
    }
    assert!(!contains(&all, "$argon2"), "a password hash is in the bundle");
    assert!(!contains(&all, "SQLite format 3"), "a database is in the bundle");

    // SIGTERM; then doctor says the server is not running, reads the files, exits 1 as before.
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let (code, out, err) = branchd(&data, &hub, &["doctor"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("✘ server") && out.contains("server not running"), "{out}");
    assert!(out.contains("sudo systemctl start branchd"), "what to do:\n{out}");
    assert!(out.contains("✔ mdns") && out.contains("the files say"), "falls back to the files:\n{out}");
    assert!(!out.contains("✔ running"), "{out}");
    let (code, out, _) = branchd(&data, &hub, &["check-config"]);
    assert_eq!(code, Some(0));
    assert!(!out.contains("running server"), "no server, no differences:\n{out}");
    // A bundle without a server says why it lacks the server's part.
    let bundle = dir.path().join("offline.tar.gz");
    let (code, out, err) = branchd(&data, &hub, &["doctor", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("the server is not running"), "{out}");
}

/// `GET /api/system/effective`: a super admin's only, and no secret in it.
#[tokio::test]
async fn effective_settings_are_for_super_admins_and_hold_no_secret() {
    let s = common::TestServer::start_with(|c| c.upstream_token = Some(UPLINK_TOKEN.into())).await;
    let (status, _) = s.req(reqwest::Method::GET, "/api/system/effective", None, None).await;
    assert_eq!(status, 401);
    for (role, company, branch) in [("company_owner", Some("co-1"), None), ("branch_manager", Some("co-1"), Some("br-1"))] {
        let (status, body) = s.get("/api/system/effective", &s.token(role, company, branch)).await;
        assert_eq!(status, 403, "{role}: {body}");
        assert_eq!(body["error"]["code"], "FORBIDDEN", "{body}");
    }
    let (status, body) = s.get("/api/system/effective", &s.token("super_admin", None, None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["mdns"], "off");
    assert_eq!(body["settings"]["port"], "0");
    assert_eq!(body["settings"]["jwt_secret"], "set");
    assert_eq!(body["settings"]["upstream_token"], "set");
    assert_eq!(body["settings"]["upstream_url"], "unset");
    assert_eq!(body["mdns"]["advertised"], false);
    assert_eq!(body["pid"], std::process::id());
    assert!(body["printWorkers"].is_array() && body["sync"].is_object() && body["tls"]["enabled"].is_boolean(), "{body}");
    let text = body.to_string();
    assert!(!text.contains(common::SECRET) && !text.contains(UPLINK_TOKEN), "{text}");
}
