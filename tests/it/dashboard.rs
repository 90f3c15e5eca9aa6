//! The embedded dashboard: its HTTP side (assets, caching, compression, the dashboard
//! endpoints and their authorisation) with reqwest, and the whole UI end to end in headless
//! Debian Chromium driven by playwright-core (tests/dashboard, `node --test`).
//!
//! The browser test needs `/usr/bin/chromium` (Debian package `chromium`); without it, it
//! is skipped with a message. Screenshots go to `target/dashboard-artifacts/`; with
//! `BRANCHD_UPDATE_SCREENSHOTS=1` they are also copied to `docs/screenshots/`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{SECRET, TestServer, add_login_user, ensure_dashboard_deps};
use reqwest::header;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";

async fn get(s: &TestServer, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = reqwest::Client::new().get(format!("{}{path}", s.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.expect("request sent")
}

fn header_of(res: &reqwest::Response, name: header::HeaderName) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_cached_compressed_and_secret_free() {
    let s = TestServer::start().await;

    let index = get(&s, "/", None, &[]).await;
    assert_eq!(index.status(), 200);
    assert_eq!(header_of(&index, header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header_of(&index, header::CACHE_CONTROL), "no-cache");
    assert!(header_of(&index, header::CONTENT_SECURITY_POLICY).contains("default-src 'self'"));
    assert_eq!(header_of(&index, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let etag = header_of(&index, header::ETAG);
    assert!(etag.starts_with("W/\""), "an ETag: {etag}");
    let html = index.text().await.unwrap();
    assert!(!html.contains(SECRET) && !html.contains("eyJ"), "no secret or token in the HTML");
    assert!(html.contains("/assets/app.js"));

    let again = get(&s, "/", None, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304, "unchanged files are revalidated, not downloaded");

    for (path, mime) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/vendor/socket.io.esm.min.js", "text/javascript"),
        ("/assets/vendor/qrcode-generator.mjs", "javascript"),
        ("/assets/pages/orders.js", "text/javascript"),
    ] {
        let res = get(&s, path, None, &[("accept-encoding", "gzip")]).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(header_of(&res, header::CONTENT_TYPE).contains(mime), "{path}: {}", header_of(&res, header::CONTENT_TYPE));
        assert_eq!(header_of(&res, header::CONTENT_ENCODING), "gzip", "{path} is compressed");
        assert_eq!(header_of(&res, header::CACHE_CONTROL), "no-cache");
        assert!(!header_of(&res, header::ETAG).is_empty());
        let plain = get(&s, path, None, &[]).await;
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), "", "{path}: identity without accept-encoding");
    }
    let vendor_license = get(&s, "/assets/vendor/socket.io-client.LICENSE.txt", None, &[]).await;
    assert!(vendor_license.text().await.unwrap().contains("MIT License"));
    assert_eq!(get(&s, "/assets/no-such-file.js", None, &[]).await.status(), 404);

    // Socket.IO is not behind the compression layer.
    let poll = get(&s, "/socket.io/?EIO=4&transport=polling", None, &[("accept-encoding", "gzip")]).await;
    assert_eq!(poll.status(), 200);
    assert_eq!(header_of(&poll, header::CONTENT_ENCODING), "");
    // Nor is the API.
    let health = get(&s, "/health", None, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header_of(&health, header::CONTENT_ENCODING), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_endpoints_follow_the_role_table() {
    let s = TestServer::start().await;
    let owner1 = s.token("company_owner", Some("co-1"), None);
    let owner2 = s.token("company_owner", Some("co-2"), None);
    let manager = s.token("branch_manager", Some("co-1"), Some("br-1"));
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let admin = s.token("super_admin", None, None);

    // /api/system
    assert_eq!(s.req(reqwest::Method::GET, "/api/system", None, None).await.0, 401);
    let (st, body) = s.get("/api/system", &cashier).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    let (st, body) = s.get("/api/system", &owner1).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["version"], branchd::VERSION);
    assert_eq!(body["role"], "branch");
    assert_eq!(body["port"], s.addr.port());
    assert_eq!(body["dataDir"], s.data_dir().display().to_string());
    assert!(body["uptimeSeconds"].is_u64());
    assert!(body["lanAddresses"].is_array());
    for a in body["lanAddresses"].as_array().unwrap() {
        let ip: std::net::Ipv4Addr = a.as_str().unwrap().parse().expect("IPv4");
        assert!(!ip.is_loopback());
    }
    assert_eq!(
        body["branches"],
        json!([{"id": "br-1", "name": "One North", "companyId": "co-1", "companyName": "Company One", "currency": "USD", "currencyDigits": 2}, {"id": "br-2", "name": "One South", "companyId": "co-1", "companyName": "Company One", "currency": "USD", "currencyDigits": 2}])
    );
    let (_, body) = s.get("/api/system", &manager).await;
    assert_eq!(
        body["branches"],
        json!([{"id": "br-1", "name": "One North", "companyId": "co-1", "companyName": "Company One", "currency": "USD", "currencyDigits": 2}])
    );
    assert_eq!(body["mayBackup"], false);
    let (_, body) = s.get("/api/system", &admin).await;
    assert_eq!(body["branches"].as_array().unwrap().len(), 3);
    assert_eq!(body["mayBackup"], true);
    let (_, body) = s.get("/api/system", &owner1).await;
    assert_eq!(body["mayBackup"], false, "the appliance also holds co-2");

    // /api/branches: any role, own branches only
    let (st, body) = s.get("/api/branches", &owner2).await;
    assert_eq!(st, 200);
    assert_eq!(
        body["items"],
        json!([{"id": "br-3", "name": "Two Central", "companyId": "co-2", "companyName": "Company Two", "currency": "USD", "currencyDigits": 2}])
    );
    let (_, body) = s.get("/api/branches", &cashier).await;
    assert_eq!(
        body["items"],
        json!([{"id": "br-1", "name": "One North", "companyId": "co-1", "companyName": "Company One", "currency": "USD", "currencyDigits": 2}])
    );

    // /api/connections: counts per namespace, desktop apps of visible branches only
    let (st, body) = s.get("/api/connections", &cashier).await;
    assert_eq!(st, 200, "{body}");
    for ns in ["/orders", "/availability", "/printing-ws"] {
        assert!(body["namespaces"][ns].is_i64(), "{body}");
    }
    assert_eq!(body["desktopApps"], json!([]));
    assert_eq!(s.req(reqwest::Method::GET, "/api/connections", None, None).await.0, 401);

    // /api/system/backup
    for t in [&cashier, &manager] {
        let (st, _) = s.get("/api/system/backup", t).await;
        assert_eq!(st, 403);
    }
    let (st, body) = s.get("/api/system/backup", &owner1).await;
    assert_eq!(st, 403, "the database also holds co-2: {body}");
    let res = get(&s, "/api/system/backup", Some(&admin), &[("accept-encoding", "gzip")]).await;
    assert_eq!(res.status(), 200);
    let cd = header_of(&res, header::CONTENT_DISPOSITION);
    assert!(cd.starts_with("attachment; filename=\"branchd-backup-") && cd.ends_with(".db\""), "{cd}");
    assert_eq!(header_of(&res, header::CACHE_CONTROL), "no-store");
    let len: usize = header_of(&res, header::CONTENT_LENGTH).parse().expect("a length");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(bytes.len(), len);
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let leftovers: Vec<_> = std::fs::read_dir(s.data_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("backup"))
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "no backup file is left in the data directory: {leftovers:?}");

    // The copy is a complete database: open it and find the fixtures.
    let copy = s.data_dir().join("check-copy.sqlite");
    std::fs::write(&copy, &bytes).unwrap();
    drop(branchd::store::Direct::open(&copy).expect("the backup opens"));
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM branches", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3);
}

fn artifacts_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = if target.is_absolute() { target } else { Path::new(env!("CARGO_MANIFEST_DIR")).join(target) };
    dir.join("dashboard-artifacts")
}

/// Runs `node --test FILE` in tests/dashboard against `s`; fails when any of its tests fails.
async fn run_suite(dir: &Path, file: &str, s: &TestServer, fixtures: &serde_json::Value) {
    let artifacts = artifacts_dir();
    let mut cmd = tokio::process::Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", "--test-concurrency=1", file])
        .current_dir(dir)
        .env("BRANCHD_URL", &s.base)
        .env("BRANCHD_FIXTURES", fixtures.to_string())
        .env("CHROMIUM", CHROMIUM)
        .env("DASHBOARD_ARTIFACTS", &artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if std::env::var("BRANCHD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        cmd.env("DASHBOARD_SCREENSHOTS", Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"));
    }
    let out =
        tokio::time::timeout(Duration::from_secs(300), cmd.output()).await.expect("dashboard suite finished in time").expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- {file} (headless Chromium) ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    println!("screenshots: {}", artifacts.display());
    assert!(out.status.success(), "dashboard suite {file} failed");
    assert!(stdout.contains("pass") && !stdout.contains("ℹ pass 0"), "the suite ran no test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        println!("SKIPPED dashboard_in_headless_chromium: {CHROMIUM} is missing (install the Debian package `chromium`)");
        return;
    }
    let _one = common::browser().await; // two Chromiums on a small machine make each other's timeouts
    let dir = ensure_dashboard_deps();
    let s = TestServer::start_with(|c| {
        c.printer_timeouts.poll = Duration::from_millis(300);
        c.printer_timeouts.connect = Duration::from_millis(500);
        // A stalled printer's banner within seconds, not the real 30 s.
        c.printer_timeouts.stall = Duration::from_secs(2);
        c.printer_timeouts.backoff_max = Duration::from_secs(1);
    })
    .await;
    add_login_user(&s, "owner2@co2.test", "owner2-password", "company_owner", Some("co-2"), None).await;
    add_login_user(&s, "admin@branchd.test", "admin-password", "super_admin", None, None).await;
    // A second appliance whose HQ is configured but unreachable (a port nothing listens on).
    let (_held, closed) = common::closed_port();
    let offline = TestServer::start_with(|c| {
        c.upstream_url = Some(format!("http://{closed}"));
        c.upstream_token = Some("branch-uplink-credential".into());
    })
    .await;
    let fixtures = json!({
        "syncUrl": offline.base,
        "users": {
            "owner1": {"email": "owner@co1.test", "password": "owner-password"},
            "owner2": {"email": "owner2@co2.test", "password": "owner2-password"},
            "admin": {"email": "admin@branchd.test", "password": "admin-password"},
        },
        "tokens": {
            "owner1": s.token("company_owner", Some("co-1"), None),
            "owner2": s.token("company_owner", Some("co-2"), None),
        },
        "jwtSecret": SECRET,
    });
    run_suite(&dir, "dashboard.test.mjs", &s, &fixtures).await;
}

/// Every page at 1280×800, 1024×768, 768×1024 and 390×844: no sideways scroll, no clipped
/// control, 44 px touch targets on the two small sizes; the Users page end to end
/// (tests/dashboard/responsive.test.mjs). Screenshots `<page>-<w>x<h>.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_fits_every_screen() {
    if !Path::new(CHROMIUM).exists() {
        println!("SKIPPED dashboard_fits_every_screen: {CHROMIUM} is missing (install the Debian package `chromium`)");
        return;
    }
    let _one = common::browser().await; // two Chromiums on a small machine make each other's timeouts
    let dir = ensure_dashboard_deps();
    // A stalled printer's banner (on every page) within seconds, not the real 30 s.
    let s = TestServer::start_with(|c| {
        c.printer_timeouts.poll = Duration::from_millis(300);
        c.printer_timeouts.connect = Duration::from_millis(500);
        c.printer_timeouts.stall = Duration::from_secs(2);
        c.printer_timeouts.backoff_max = Duration::from_secs(1);
    })
    .await;
    // A manager created at HQ: it reaches this branch through the feed and is read-only here.
    let hq = json!({"id": "u-hq-manager", "email": "hq-manager@co1.test", "passwordHash": branchd::auth::password::hash("hq-password-1"),
        "role": "branch_manager", "companyId": "co-1", "branchId": "br-1", "name": "Maya (HQ)", "disabled": false});
    s.state.db().write(move |tx| branchd::store::directory::replicate_user(tx, &hq)).await.expect("HQ user");
    let fixtures = json!({
        "users": {"owner1": {"email": "owner@co1.test", "password": "owner-password"}},
        "tokens": {"owner1": s.token("company_owner", Some("co-1"), None)},
    });
    run_suite(&dir, "responsive.test.mjs", &s, &fixtures).await;
}
