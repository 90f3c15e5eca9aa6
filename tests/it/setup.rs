//! First-run setup (SPEC §3) end to end on real servers with real SQLite files: an appliance
//! started with its demo data, set up standalone (with a JPY branch whose receipt then
//! prints on the TCP printer emulator without a decimal point) or by joining a real hub
//! (ids and names from the hub, an order reaching it, the uplink surviving a restart); the
//! refusals that change nothing; and the first-run screen in headless Chromium.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use branchd::config::ApplianceRole;
use branchd::{App, AppState, Config};
use common::emulator::{Emulator, lines};
use common::{TestServer, test_config};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(60);
const DEMO_EMAIL: &str = "admin@demo.local";

/// An appliance as a fresh install starts it: demo data, no fixtures.
struct Appliance {
    base: String,
    state: AppState,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

fn demo_config(dir: &Path) -> Config {
    Config { demo: true, ..test_config(dir) }
}

impl Appliance {
    async fn start() -> Appliance {
        let dir = tempfile::tempdir().unwrap();
        let config = demo_config(dir.path());
        Self::start_in(dir, config).await
    }

    async fn start_in(dir: tempfile::TempDir, config: Config) -> Appliance {
        let app = App::build(config).await.expect("server builds");
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Appliance { base, state, dir, stop: Some(tx), handle: Some(handle) }
    }

    async fn restart(mut self) -> Appliance {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
        let config = demo_config(self.dir.path());
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::start_in(dir, config).await
    }

    fn credentials_file(&self) -> std::path::PathBuf {
        self.dir.path().join("demo-credentials.txt")
    }

    /// The demo admin's password, from the credentials file the first start wrote.
    fn demo_password(&self) -> String {
        let text = std::fs::read_to_string(self.credentials_file()).expect("the demo credentials file");
        let after = text.split("with password ").nth(1).expect("a password line");
        after.split_whitespace().next().unwrap().to_string()
    }

    async fn req(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut r = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request sent");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn login(&self, email: &str, password: &str) -> (u16, Value) {
        self.req(Method::POST, "/auth/login", None, Some(json!({"email": email, "password": password}))).await
    }

    async fn demo_token(&self) -> String {
        let (st, body) = self.login(DEMO_EMAIL, &self.demo_password()).await;
        assert_eq!(st, 200, "{body}");
        body["accessToken"].as_str().unwrap().to_string()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let c = rusqlite::Connection::open(self.state.db().path()).expect("the database opens");
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn order(branch: &str) -> Value {
    json!({"branchId": branch, "type": "takeaway", "items": [{"name": "Tonkotsu ramen", "quantity": 2, "unitPrice": 750}]})
}

/// Everything first-run setup would replace, as a fingerprint: unchanged means nothing of
/// a refused request was stored.
async fn fingerprint(a: &Appliance) -> Vec<i64> {
    vec![
        a.count("SELECT COUNT(*) FROM companies WHERE id = 'demo-company'").await,
        a.count("SELECT COUNT(*) FROM companies").await,
        a.count("SELECT COUNT(*) FROM branches").await,
        a.count("SELECT COUNT(*) FROM users").await,
        a.count("SELECT COUNT(*) FROM printers").await,
        a.count("SELECT COUNT(*) FROM orders").await,
        a.count("SELECT COUNT(*) FROM licenses WHERE revoked_at IS NULL").await,
        a.count("SELECT COUNT(*) FROM meta WHERE key LIKE 'uplink%'").await,
    ]
}

const PASSWORD: &str = "sakura-owner-2026";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_setup_replaces_the_demo_and_prints_in_the_branchs_currency() {
    let a = Appliance::start().await;
    assert!(a.credentials_file().exists());
    let demo_password = a.demo_password();
    let demo = a.demo_token().await;
    let (st, s) = a.req(Method::GET, "/api/setup", Some(&demo), None).await;
    assert_eq!(st, 200, "{s}");
    assert_eq!(s["needed"], true);
    assert_eq!(s["demo"]["companyId"], "demo-company");
    assert_eq!(s["demo"]["branchId"], "demo-branch");
    assert_eq!(s["demo"]["adminEmail"], DEMO_EMAIL);
    assert_eq!(s["modes"], json!(["standalone", "join"]));
    assert!(s["currencies"].as_array().unwrap().iter().any(|c| c == "JPY"));
    let (_, branches) = a.req(Method::GET, "/api/branches", Some(&demo), None).await;
    assert_eq!(branches["items"][0]["currency"], "USD", "the demo branch prints as before: {branches}");
    // A demo order, to see it go.
    let (st, o) = a.req(Method::POST, "/api/orders", Some(&demo), Some(order("demo-branch"))).await;
    assert_eq!(st, 201, "{o}");
    let before = fingerprint(&a).await;
    assert_eq!(before[4], 1, "the demo's virtual printer");

    // Other tokens: 403, nothing changes.
    let state = &a.state;
    for other in [
        common::token_with(state, "company_owner", Some("demo-company"), None, 600),
        common::token_with(state, "super_admin", None, None, 600),
        common::token_with(state, "branch_manager", Some("demo-company"), Some("demo-branch"), 600),
    ] {
        let (st, e) = a.req(Method::GET, "/api/setup", Some(&other), None).await;
        assert_eq!(st, 403, "{e}");
        assert_eq!(e["error"]["code"], "FORBIDDEN");
        let body = json!({"companyName": "X", "branchName": "Y", "adminEmail": "x@y.test", "adminPassword": PASSWORD});
        let (st, _) = a.req(Method::POST, "/api/setup", Some(&other), Some(body)).await;
        assert_eq!(st, 403);
    }
    let (st, _) = a.req(Method::GET, "/api/setup", None, None).await;
    assert_eq!(st, 401, "no token");

    // Bad input: 400 with SPEC's error shape, nothing changed.
    let good = json!({"companyName": "Sakura Ramen", "branchName": "Shibuya", "adminEmail": "owner@sakura.test",
                      "adminPassword": PASSWORD, "currency": "jpy"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for bad in [
        json!("not an object"),
        json!([]),
        without("companyName"),
        without("branchName"),
        without("adminEmail"),
        without("adminPassword"),
        with("companyName", json!("")),
        with("companyName", json!("   ")),
        with("companyName", json!(42)),
        with("branchName", json!("x".repeat(101))),
        with("currency", json!("XYZ")),
        with("currency", json!("dollars")),
        with("currency", json!(840)),
        with("adminEmail", json!("not-an-email")),
        with("adminEmail", json!(DEMO_EMAIL)),
        with("adminPassword", json!("short")),
        with("adminPassword", json!("aaaaaaaaaaaa")),
        with("unexpected", json!(true)),
        json!({"upstreamUrl": "ftp://hub.example", "uplinkToken": "bdu_x", "adminEmail": "o@s.test", "adminPassword": PASSWORD}),
        json!({"upstreamUrl": "not a url", "uplinkToken": "bdu_x", "adminEmail": "o@s.test", "adminPassword": PASSWORD}),
        json!({"upstreamUrl": "http://127.0.0.1:9", "adminEmail": "o@s.test", "adminPassword": PASSWORD}),
        json!({"upstreamUrl": "http://127.0.0.1:9", "uplinkToken": "bdu_x", "companyName": "mixed", "adminEmail": "o@s.test", "adminPassword": PASSWORD}),
    ] {
        let (st, e) = a.req(Method::POST, "/api/setup", Some(&demo), Some(bad.clone())).await;
        assert_eq!(st, 400, "{bad} → {e}");
        assert!(e["error"]["code"].is_string() && e["error"]["message"].is_string(), "{e}");
        assert_eq!(fingerprint(&a).await, before, "{bad} changed nothing");
    }
    let (st, e) = a.req(Method::POST, "/api/setup", Some(&demo), Some(with("currency", json!("XYZ")))).await;
    assert!(st == 400 && e["error"]["message"].as_str().unwrap().contains("ISO 4217"), "{e}");
    let raw = reqwest::Client::new()
        .post(format!("{}/api/setup", a.base))
        .bearer_auth(&demo)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(fingerprint(&a).await, before);

    // Standalone setup.
    let (st, done) = a.req(Method::POST, "/api/setup", Some(&demo), Some(good.clone())).await;
    assert_eq!(st, 200, "{done}");
    let token = done["accessToken"].as_str().expect("a fresh token").to_string();
    assert_eq!(done["user"]["email"], "owner@sakura.test");
    assert_eq!(done["user"]["role"], "company_owner");
    let (company, branch) =
        (done["setup"]["companyId"].as_str().unwrap().to_string(), done["setup"]["branchId"].as_str().unwrap().to_string());
    assert!(uuid::Uuid::parse_str(&company).is_ok() && uuid::Uuid::parse_str(&branch).is_ok(), "{done}");
    assert_eq!(done["user"]["companyId"], company.as_str());
    assert_eq!(done["setup"]["companyName"], "Sakura Ramen");
    assert_eq!(done["setup"]["branchName"], "Shibuya");
    assert_eq!(done["setup"]["currency"], "JPY");
    assert_eq!(done["setup"]["sync"], "off");

    // The demo is gone: its admin, its token, its printer, its orders, its credentials file.
    let (st, _) = a.req(Method::GET, "/api/branches", Some(&demo), None).await;
    assert_eq!(st, 401, "the demo admin's token is refused");
    let (st, _) = a.login(DEMO_EMAIL, &demo_password).await;
    assert_eq!(st, 401, "the demo admin cannot log in");
    assert!(!a.credentials_file().exists(), "the demo credentials file is deleted");
    assert_eq!(a.count("SELECT COUNT(*) FROM companies WHERE id = 'demo-company'").await, 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM branches WHERE id = 'demo-branch'").await, 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM print_jobs").await, 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM printers").await, 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM events WHERE company_id = 'demo-company'").await, 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM licenses WHERE revoked_at IS NULL").await, 0, "the demo license key is revoked");

    // The new admin logs in and sees its own company.
    let (st, l) = a.login("owner@sakura.test", PASSWORD).await;
    assert_eq!(st, 200, "{l}");
    let fresh = l["accessToken"].as_str().unwrap().to_string();
    let (st, b) = a.req(Method::GET, "/api/branches", Some(&fresh), None).await;
    assert_eq!(st, 200);
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["items"][0]["id"], branch.as_str());
    assert_eq!(b["items"][0]["name"], "Shibuya");
    assert_eq!(b["items"][0]["companyName"], "Sakura Ramen");
    assert_eq!(b["items"][0]["currency"], "JPY");
    assert_eq!(b["items"][0]["currencyDigits"], 0);
    let (_, printers) = a.req(Method::GET, "/api/printers", Some(&token), None).await;
    assert_eq!(printers["items"], json!([]), "the demo printer is gone");
    let (_, orders) = a.req(Method::GET, "/api/orders?status=all", Some(&token), None).await;
    assert_eq!(orders["items"], json!([]), "the demo orders are gone");

    // Setup runs once: 404 for everyone afterwards.
    for t in [&token, &fresh] {
        let (st, e) = a.req(Method::GET, "/api/setup", Some(t), None).await;
        assert_eq!(st, 404, "{e}");
        let (st, _) = a.req(Method::POST, "/api/setup", Some(t), Some(good.clone())).await;
        assert_eq!(st, 404, "a second setup");
    }

    // A JPY branch's receipt prints without a decimal point on a real (emulated) printer.
    let emu = Emulator::start();
    let printer = json!({"branchId": branch, "name": "Front", "role": "receipt",
                         "connection": {"type": "network", "host": "127.0.0.1", "port": emu.addr.port()}});
    let (st, p) = a.req(Method::POST, "/api/printers", Some(&token), Some(printer)).await;
    assert_eq!(st, 201, "{p}");
    let (st, o) = a.req(Method::POST, "/api/orders", Some(&token), Some(order(&branch))).await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(o["total"], 1500);
    let jobs = {
        let emu = emu.clone();
        tokio::task::spawn_blocking(move || emu.wait_jobs(1, Duration::from_secs(20))).await.unwrap()
    };
    assert!(!jobs.is_empty(), "the receipt printed");
    let text = lines(&jobs[0]);
    assert!(text.iter().any(|l| l.contains("Sakura Ramen")), "{text:?}");
    let total = text.iter().find(|l| l.contains("TOTAL")).unwrap_or_else(|| panic!("a total line in {text:?}"));
    assert!(total.trim_end().ends_with("1500"), "{total:?}");
    assert!(text.iter().any(|l| l.contains("@ 750")), "{text:?}");
    let money: Vec<&String> = text.iter().filter(|l| l.contains("1500") || l.contains("750")).collect();
    assert!(money.iter().all(|l| !l.contains("15.00") && !l.contains("7.50")), "no decimal point for JPY: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_hq_takes_ids_and_names_from_the_hub_and_syncs() {
    let hub = TestServer::start_with(|c| c.role = ApplianceRole::Hub).await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state
        .db()
        .write(move |tx| {
            branchd::store::directory::set_branch_currency(tx, "br-1", "KWD")?;
            branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)
        })
        .await
        .unwrap();
    let a = Appliance::start().await;
    let demo = a.demo_token().await;
    let before = fingerprint(&a).await;
    let join = |url: &str, token: &str| json!({"upstreamUrl": url, "uplinkToken": token, "adminEmail": "it@company-one.test", "adminPassword": PASSWORD});

    // The hub refuses a wrong credential; nothing answers on a closed port; a branch is no
    // hub. Each is a clear 502 and changes nothing.
    let (st, e) = a.req(Method::POST, "/api/setup", Some(&demo), Some(join(&hub.base, "bdu_wrong"))).await;
    assert_eq!((st, e["error"]["code"].as_str()), (502, Some("UPLINK_REFUSED")), "{e}");
    let (_held, closed) = common::closed_port();
    let (st, e) = a.req(Method::POST, "/api/setup", Some(&demo), Some(join(&format!("http://{closed}"), &credential))).await;
    assert_eq!((st, e["error"]["code"].as_str()), (502, Some("UPSTREAM_UNREACHABLE")), "{e}");
    let (st, e) = a.req(Method::POST, "/api/setup", Some(&demo), Some(join(&a.base, &credential))).await;
    assert_eq!((st, e["error"]["code"].as_str()), (502, Some("UPSTREAM_NOT_HUB")), "{e}");
    assert_eq!(fingerprint(&a).await, before);
    let (st, _) = a.req(Method::GET, "/api/setup", Some(&demo), None).await;
    assert_eq!(st, 200, "setup is still needed");

    // Joining: ids, names and currency come from the hub; sync starts without a restart.
    let (st, done) = a.req(Method::POST, "/api/setup", Some(&demo), Some(join(&format!("{}/", hub.base), &credential))).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["setup"]["mode"], "join");
    assert_eq!(done["setup"]["companyId"], "co-1");
    assert_eq!(done["setup"]["branchId"], "br-1");
    assert_eq!(done["setup"]["companyName"], "Company One");
    assert_eq!(done["setup"]["branchName"], "One North");
    assert_eq!(done["setup"]["currency"], "KWD");
    assert_eq!(done["setup"]["sync"], "started");
    assert_eq!(done["user"]["companyId"], "co-1");
    let token = done["accessToken"].as_str().unwrap().to_string();
    let (_, b) = a.req(Method::GET, "/api/branches", Some(&token), None).await;
    assert_eq!(
        b["items"],
        json!([{"id": "br-1", "companyId": "co-1", "name": "One North", "companyName": "Company One", "currency": "KWD", "currencyDigits": 3}])
    );
    let (st, _) = a.req(Method::GET, "/api/setup", Some(&token), None).await;
    assert_eq!(st, 404);
    assert!(!a.credentials_file().exists());

    // An order taken at the branch reaches the hub.
    let hub_owner = hub.token("company_owner", Some("co-1"), None);
    let reaches_hub = |id: String| {
        let (hub, t) = (&hub, hub_owner.clone());
        async move {
            common::eventually_every(&format!("order {id} to reach the hub"), WAIT, Duration::from_millis(100), || async {
                let (st, o) = hub.get(&format!("/api/orders/{id}"), &t).await;
                if st == 200 { Ok(o) } else { Err(format!("{st} {o}")) }
            })
            .await
        }
    };
    let (st, o) = a.req(Method::POST, "/api/orders", Some(&token), Some(order("br-1"))).await;
    assert_eq!(st, 201, "{o}");
    let at_hub = reaches_hub(o["id"].as_str().unwrap().to_string()).await;
    assert_eq!(at_hub["branchId"], "br-1");
    assert_eq!(at_hub["total"], 1500);
    let (_, h) = a.req(Method::GET, "/health", None, None).await;
    assert_ne!(h["upstream"], "disabled", "{h}");

    // The uplink survives a restart (the settings name none): the next order syncs too.
    let a = a.restart().await;
    let (_, h) = a.req(Method::GET, "/health", None, None).await;
    assert_ne!(h["upstream"], "disabled", "the persisted uplink is used after a restart: {h}");
    let (st, l) = a.login("it@company-one.test", PASSWORD).await;
    assert_eq!(st, 200, "{l}");
    let token = l["accessToken"].as_str().unwrap().to_string();
    let (st, o) = a.req(Method::POST, "/api/orders", Some(&token), Some(order("br-1"))).await;
    assert_eq!(st, 201, "{o}");
    reaches_hub(o["id"].as_str().unwrap().to_string()).await;
    assert_eq!(a.count("SELECT COUNT(*) FROM users WHERE email = 'admin@demo.local'").await, 0, "no new demo after the restart");
    let status = common::process::cli(a.dir.path(), &["sync", "status"]);
    assert!(status.contains(&hub.base) && status.contains("br-1"), "the CLI knows the joined hub: {status}");
}

/// The first-run screen in headless Chromium (tests/dashboard/setup_walk.mjs): demo login,
/// the setup page with both paths, standalone setup, then the dashboard with the new
/// company's name. `BRANCHD_UPDATE_SCREENSHOTS=1` copies the pictures to docs/screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_screen_in_headless_chromium() {
    const CHROMIUM: &str = "/usr/bin/chromium";
    if !Path::new(CHROMIUM).exists() {
        println!("SKIPPED setup_screen_in_headless_chromium: {CHROMIUM} is missing (install the Debian package `chromium`)");
        return;
    }
    let dir = common::ensure_dashboard_deps();
    let _one = common::browser().await;
    let a = Appliance::start().await;
    let fixtures = json!({"demo": {"email": DEMO_EMAIL, "password": a.demo_password()}});
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-artifacts");
    let mut cmd = tokio::process::Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", "setup_walk.mjs"])
        .current_dir(&dir)
        .env("BRANCHD_URL", &a.base)
        .env("BRANCHD_FIXTURES", fixtures.to_string())
        .env("CHROMIUM", CHROMIUM)
        .env("DASHBOARD_ARTIFACTS", &artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if std::env::var("BRANCHD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        cmd.env("DASHBOARD_SCREENSHOTS", Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"));
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output()).await.expect("the walk finished in time").expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- setup walk (headless Chromium) ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "setup walk failed");
    assert!(stdout.contains("pass") && !stdout.contains("ℹ pass 0"), "the walk ran no test");
    // What the browser did is what the server holds.
    assert_eq!(a.count("SELECT COUNT(*) FROM companies WHERE name = 'Trattoria Verde'").await, 1);
    assert_eq!(a.count("SELECT COUNT(*) FROM branches WHERE currency = 'EUR'").await, 1);
    assert!(!a.credentials_file().exists());
}

/// HQ sets each branch's currency with the CLI (a joining branch takes it from the hub's hello).
#[test]
fn the_cli_sets_a_branchs_currency() {
    use common::process::{cli, run};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-x", "--name", "Sakura"]);
    assert!(cli(d, &["branch", "add", "br-x", "--company", "co-x", "--name", "Shibuya", "--currency", "jpy"]).contains("JPY"));
    cli(d, &["branch", "add", "br-y", "--company", "co-x", "--name", "Umeda"]);
    let bad = run(d, &["branch", "currency", "br-x", "YEN"]);
    assert_eq!(bad.status.code(), Some(2), "an unknown code is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ISO 4217"));
    let bad = run(d, &["branch", "add", "br-z", "--company", "co-x", "--name", "Z", "--currency", "XXX"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!run(d, &["branch", "currency", "br-nope", "EUR"]).status.success(), "an unknown branch");
    cli(d, &["branch", "currency", "br-y", "KWD"]);
    let db = rusqlite::Connection::open(d.join("branchd.db")).unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT id, currency FROM branches ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![("br-x".into(), "JPY".into()), ("br-y".into(), "KWD".into())]);
}
