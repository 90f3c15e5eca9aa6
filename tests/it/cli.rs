//! The real binary: configuration errors, the admin CLI next to a running server, graceful
//! shutdown, and durability across `kill -9`.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::process::{BIN, ServerProcess, ok, run};

/// A Socket.IO handshake over raw Engine.IO long-polling: `Ok(())` when `ns` accepts
/// `auth`, `Err(message)` with the connect_error message otherwise.
async fn socketio_connect(base: &str, ns: &str, auth: Value) -> Result<(), String> {
    let http = reqwest::Client::new();
    let open = http.get(format!("{base}/socket.io/?EIO=4&transport=polling")).send().await.unwrap().text().await.unwrap();
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"].as_str().unwrap().to_string();
    let url = format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}");
    http.post(&url).body(format!("40{ns},{auth}")).send().await.unwrap();
    // Packets of one poll are separated by 0x1e; skip pings (answering them) until ours comes.
    for _ in 0..10 {
        let reply = http.get(&url).send().await.unwrap().text().await.unwrap();
        for packet in reply.split('\u{1e}') {
            if packet == "2" {
                http.post(&url).body("3").send().await.unwrap();
            } else if packet.starts_with(&format!("40{ns},")) {
                return Ok(());
            } else if let Some(body) = packet.strip_prefix(&format!("44{ns},")) {
                return Err(serde_json::from_str::<Value>(body).unwrap()["message"].as_str().unwrap().to_string());
            }
        }
    }
    panic!("no connect reply from {ns}")
}

#[test]
fn bad_configuration_exits_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args).arg("--data-dir").arg(dir.path()).env_remove("PORT");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    for (envs, setting) in [
        (vec![("PORT", "eighty")], "PORT"),
        (vec![("BRANCHD_ROLE", "boss")], "BRANCHD_ROLE"),
        (vec![("BRANCHD_MAX_PAYLOAD", "lots")], "BRANCHD_MAX_PAYLOAD"),
        (vec![("BRANCHD_PRINT_TIMEOUT_MS", "0")], "BRANCHD_PRINT_TIMEOUT_MS"),
        (vec![("TZ", "Mars/Olympus")], "TZ"),
        (vec![("JWT_SECRET", "short")], "JWT_SECRET"),
    ] {
        let out = run(&envs, &["serve"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{setting}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(setting), "{err}");
    }
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "port = 3001\ncolour = \"blue\"\n").unwrap();
    let out = run(&[], &["serve", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // Flags beat the environment.
    let out = run(&[("PORT", "nope")], &["--port", "4000", "version"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn version_json() {
    let dir = tempfile::tempdir().unwrap();
    let v: Value = serde_json::from_str(&ok(&run(dir.path(), &["version", "--json"]))).unwrap();
    for k in ["version", "commit", "buildDate", "target"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_works_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = ServerProcess::start(d, &[]);
    ok(&run(d, &["company", "add", "co-9", "--name", "Nine"]));
    ok(&run(d, &["branch", "add", "br-9", "--company", "co-9", "--name", "Nine Main"]));
    let dup = run(d, &["branch", "add", "br-9", "--company", "co-9", "--name", "again"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    ok(&run(
        d,
        &[
            "user",
            "add",
            "--email",
            "m@nine.test",
            "--password",
            "manager-pw",
            "--role",
            "branch_manager",
            "--company",
            "co-9",
            "--branch",
            "br-9",
        ],
    ));
    let bad_role = run(d, &["user", "add", "--email", "x@nine.test", "--password", "manager-pw", "--role", "king", "--company", "co-9"]);
    assert!(!bad_role.status.success());

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/auth/login", server.base))
        .json(&json!({"email": "m@nine.test", "password": "manager-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["accessToken"].as_str().expect("login works for a user added by the CLI");
    let created =
        http.post(format!("{}/api/orders", server.base)).bearer_auth(token).json(&common::order_body("br-9")).send().await.unwrap();
    assert_eq!(created.status(), 201);

    let issued = ok(&run(d, &["token", "issue", "--sub", "hq-user", "--role", "company_owner", "--company", "co-9", "--ttl", "10m"]));
    let res = http.get(format!("{}/api/orders", server.base)).bearer_auth(issued.trim()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let out = ok(&run(d, &["license", "create", "--company", "co-9", "--branch", "br-9"]));
    let key = out.trim().lines().last().unwrap().to_string();
    let auth = json!({"userRole": "desktop_app", "deviceId": "d9", "branchId": "br-9", "companyId": "co-9", "licenseKey": key});
    socketio_connect(&server.base, "/printing-ws", auth.clone()).await.expect("the new license is accepted");
    let db = rusqlite::Connection::open(d.join("branchd.db")).unwrap();
    let stored: i64 = db.query_row("SELECT COUNT(*) FROM licenses WHERE key_hash = ?1", [&key], |r| r.get(0)).unwrap();
    assert_eq!(stored, 0, "the key itself is never stored");
    ok(&run(d, &["license", "revoke", &key]));
    assert_eq!(socketio_connect(&server.base, "/printing-ws", auth).await, Err("LICENSE_INVALID".into()));
    assert!(!run(d, &["license", "revoke", &key]).status.success(), "revoking twice says so");

    let backup = d.join("backup.db");
    ok(&run(d, &["backup", backup.to_str().unwrap()]));
    let copy = rusqlite::Connection::open(&backup).unwrap();
    let orders: i64 = copy.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0)).unwrap();
    assert_eq!(orders, 1);
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let migrate = ok(&run(d, &["migrate"]));
    let latest = branchd::store::migrate::latest();
    assert!(migrate.contains(&format!("schema version {latest} (latest {latest})")), "{migrate}");

    // SIGTERM: a clean exit 0.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// Under systemd stderr is the journal, not a terminal: escape codes there are noise
/// (`journalctl` shows them as `ESC[2m…`), so a piped stderr gets plain text.
#[test]
fn server_logs_in_a_pipe_have_no_colour_codes() {
    use std::io::{BufRead, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--no-demo", "--port", "0", "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"])
        .arg(dir.path())
        .env("JWT_SECRET", common::SECRET)
        .env("BRANCHD_CONFIG", "")
        .env("BRANCHD_BACKUP_INTERVAL_HOURS", "0")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("BRANCHD_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while !lines.next().expect("server started").unwrap().starts_with("branchd listening on ") {}
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    for _ in lines {}
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let logs = logs.join().unwrap();
    assert!(logs.contains("branchd serving") && logs.contains("stopped"), "the server logged: {logs}");
    assert!(!logs.contains("\x1b["), "ANSI escape codes in piped logs: {logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(d, &["company", "add", "co-k", "--name", "K"]));
    ok(&run(d, &["branch", "add", "br-k", "--company", "co-k", "--name", "K"]));
    let token = ok(&run(d, &["token", "issue", "--sub", "u", "--role", "cashier", "--company", "co-k", "--branch", "br-k"]));
    let token = token.trim();
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    {
        let mut server = ServerProcess::start(d, &[]);
        for i in 0..20 {
            let mut body = common::order_body("br-k");
            body["id"] = json!(format!("k-{i}"));
            let r = http.post(format!("{}/api/orders", server.base)).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 201);
            ids.push(format!("k-{i}"));
        }
        let r = http
            .put(format!("{}/api/availability/br-k/product/soup", server.base))
            .bearer_auth(token)
            .json(&json!({"available": false, "stock": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        server.child.kill().unwrap(); // SIGKILL, right after the last acknowledgement
        server.child.wait().unwrap();
    }
    let server = ServerProcess::start(d, &[]);
    for id in &ids {
        let r = http.get(format!("{}/api/orders/{id}", server.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200, "order {id} was acknowledged and must survive kill -9");
    }
    let avail: Value =
        http.get(format!("{}/api/availability/br-k", server.base)).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(avail["items"][0]["available"], false);
}

#[test]
fn a_lost_jwt_secret_is_refused_not_made_anew_and_rotate_makes_one_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN).args(args).arg("--data-dir").arg(dir.path()).env_remove("JWT_SECRET").env("BRANCHD_CONFIG", "").output().unwrap()
    };
    // Admin commands before the first start may make the secret; the server then marks the
    // database as served with it.
    ok(&run(&["migrate"]));
    ok(&run(&["token", "issue", "--sub", "u", "--role", "super_admin"]));
    let mut server = ServerProcess::start_logging(dir.path(), &[("JWT_SECRET", "")], None);
    assert_eq!(server.stop().code(), Some(0));
    let secret_file = dir.path().join("jwt_secret");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(dir.path().join("branchd.db")).unwrap().permissions().mode() & 0o777,
        0o600,
        "the database is private too"
    );

    // Gone while the database exists: neither serve nor an admin command makes a new one.
    std::fs::remove_file(&secret_file).unwrap();
    for args in [&["serve", "--no-demo", "--port", "0", "--mdns", "off"][..], &["token", "issue", "--sub", "u", "--role", "super_admin"]] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("jwt_secret") && err.contains("secret rotate"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!secret_file.exists(), "no secret was made silently");
    }

    // On purpose: a new one, different from the old.
    let out = ok(&run(&["secret", "rotate"]));
    assert!(out.contains("jwt_secret"), "{out}");
    let new = std::fs::read_to_string(&secret_file).unwrap();
    assert_ne!(new.trim(), secret.trim());
    assert_eq!(std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777, 0o600);
    ok(&run(&["token", "issue", "--sub", "u", "--role", "super_admin"]));
}

#[tokio::test]
async fn a_second_serve_on_a_data_directory_in_use_exits_2_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ServerProcess::start(dir.path(), &[]);
    let out = Command::new(BIN)
        .args(["serve", "--no-demo", "--port", "0", "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"])
        .arg(dir.path())
        .env("JWT_SECRET", common::SECRET)
        .env("BRANCHD_CONFIG", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("pid {}", first.pid())), "names the process holding it: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The first one is untouched.
    let health = reqwest::get(format!("{}/health", first.base)).await.unwrap();
    assert!(health.status().is_success());
    assert_eq!(first.stop().code(), Some(0));
}
