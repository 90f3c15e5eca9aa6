//! `branchd user list|add|passwd|disable|enable|remove`: the real binary beside a running
//! server (a child process), passwords from standard input, `--password` with its warning,
//! tables and `--json`, one-line errors, and a disable made by the CLI closing the user's
//! socket within 10 s.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::eventually_every;
use common::process::{BIN, ServerProcess, cli, run};
use serde_json::{Value, json};

/// Runs an admin command with `input` on its standard input (a pipe, not a terminal).
fn run_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("JWT_SECRET", common::SECRET)
        .env("BRANCHD_CONFIG", "")
        .env("RUST_LOG", "warn")
        .env_remove("PORT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// The lines of stderr that are not log lines (the binary logs migrations at start).
fn said(o: &Output) -> Vec<String> {
    stderr(o).lines().filter(|l| !l.contains(" INFO ") && !l.contains(" WARN ")).map(str::to_string).collect()
}

async fn login(base: &str, email: &str, password: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn orders_status(base: &str, token: &str) -> u16 {
    reqwest::Client::new().get(format!("{base}/api/orders?branchId=br-7")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Waits (bounded) until a call with `token` gets `want`: a change made by another process
/// reaches the server's user gate within its cache lifetime (2 s).
async fn until_status(base: &str, token: &str, want: u16) {
    eventually_every(&format!("the token to be answered {want}"), Duration::from_secs(5), Duration::from_millis(100), || async {
        (orders_status(base, token).await == want).then_some(())
    })
    .await
}

async fn until_refused(base: &str, token: &str) {
    until_status(base, token, 401).await
}

/// Connects to `/orders` over raw Engine.IO long-polling; returns the session URL.
async fn connect(base: &str, token: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::new();
    let open = http.get(format!("{base}/socket.io/?EIO=4&transport=polling")).send().await.unwrap().text().await.unwrap();
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"].as_str().unwrap().to_string();
    let url = format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}");
    http.post(&url).body(format!("40/orders,{}", json!({"token": token}))).send().await.unwrap();
    for _ in 0..10 {
        let reply = http.get(&url).send().await.unwrap().text().await.unwrap();
        for packet in reply.split('\u{1e}') {
            match packet {
                "2" => assert_eq!(http.post(&url).body("3").send().await.unwrap().status(), 200),
                p if p.starts_with("40/orders,") => return (http, url),
                p if p.starts_with("44/orders,") => panic!("refused: {p}"),
                _ => {}
            }
        }
    }
    panic!("no connect reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = ServerProcess::start(d, &[]);
    let base = server.base.clone();
    cli(d, &["company", "add", "co-7", "--name", "Seven"]);
    cli(d, &["branch", "add", "br-7", "--company", "co-7", "--name", "Seven Main"]);

    // Password from standard input: no warning, and the user can log in.
    let out = run_stdin(
        d,
        &["user", "add", "--email", "cash@seven.test", "--role", "cashier", "--company", "co-7", "--branch", "br-7", "--name", "Cass"],
        "stdin-password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(said(&out).is_empty(), "no warning without --password: {:?}", said(&out));
    let (st, v) = login(&base, "cash@seven.test", "stdin-password").await;
    assert_eq!(st, 200, "{v}");
    // --password still works, with a warning on stderr.
    let out = run(
        d,
        &["user", "add", "--email", "boss@seven.test", "--role", "company_owner", "--company", "co-7", "--password", "script-password"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(said(&out).iter().any(|l| l.starts_with("warning: --password shows in `ps`")), "{:?}", said(&out));
    // The first super_admin, as documented.
    let out = run_stdin(d, &["user", "add", "--email", "root@seven.test", "--role", "super_admin"], "root-password\n");
    assert!(out.status.success(), "{}", stderr(&out));

    // Refusals: one clear line each, nothing said twice.
    for (args, input, word, exit) in [
        (
            vec!["user", "add", "--email", "cash@seven.test", "--role", "kitchen", "--company", "co-7", "--branch", "br-7"],
            "another-pass\n",
            "already exists",
            1,
        ),
        (
            vec!["user", "add", "--email", "k@seven.test", "--role", "kitchen", "--company", "co-7", "--branch", "br-7"],
            "short\n",
            "at least 8",
            2,
        ),
        (
            vec!["user", "add", "--email", "k@seven.test", "--role", "kitchen", "--company", "co-7", "--branch", "br-7"],
            "",
            "no password",
            2,
        ),
        (
            vec!["user", "add", "--email", "k@seven.test", "--role", "kitchen", "--company", "co-7"],
            "a-good-pass\n",
            "--branch is required",
            2,
        ),
        (vec!["user", "passwd", "nobody@seven.test"], "a-good-pass\n", "no user has the email", 2),
        (vec!["user", "disable", "nobody@seven.test"], "", "no user has the email", 2),
    ] {
        let out = run_stdin(d, &args, input);
        let lines = said(&out);
        assert_eq!(out.status.code(), Some(exit), "{args:?}: {lines:?}");
        assert_eq!(lines.len(), 1, "{args:?}: one line: {lines:?}");
        assert!(lines[0].contains(word), "{args:?}: {lines:?}");
        assert_eq!(lines[0].matches(word).count(), 1, "said twice: {}", lines[0]);
    }
    let out = run(d, &["user", "add", "--email", "x@seven.test", "--role", "king", "--password", "whatever-pw"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("super_admin, company_owner, branch_manager, cashier, call_center, kitchen"), "{}", stderr(&out));

    // Listing: a table with headers, or JSON without secrets.
    let table = cli(d, &["user", "list"]);
    let header = table.lines().next().unwrap();
    for h in ["EMAIL", "NAME", "ROLE", "COMPANY", "BRANCH", "STATE"] {
        assert!(header.contains(h), "{table}");
    }
    assert!(
        table.lines().any(|l| l.contains("cash@seven.test") && l.contains("Cass") && l.contains("br-7") && l.contains("active")),
        "{table}"
    );
    let listed: Value = serde_json::from_str(&cli(d, &["user", "list", "--json", "--branch", "br-7"])).unwrap();
    let items = listed.as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["email"], "cash@seven.test");
    assert!(!listed.to_string().contains("argon2") && !listed.to_string().contains("assword"), "{listed}");
    for sub in ["list", "add", "passwd", "disable", "enable", "remove"] {
        let help = cli(d, &["user", sub, "--help"]);
        assert!(!help.lines().next().unwrap_or("").trim().is_empty(), "user {sub} has help: {help}");
    }

    // Disable from the CLI: the user's socket closes within 10 s, its token and logins are refused.
    let token = login(&base, "cash@seven.test", "stdin-password").await.1["accessToken"].as_str().unwrap().to_string();
    let (http, url) = connect(&base, &token).await;
    cli(d, &["user", "disable", "cash@seven.test"]);
    let started = Instant::now();
    loop {
        let left = Duration::from_secs(10).checked_sub(started.elapsed()).expect("socket still open 10 s after `user disable`");
        let res = tokio::time::timeout(left, http.get(&url).send()).await.expect("socket still open 10 s after `user disable`").unwrap();
        if res.status() != 200 {
            break;
        }
        let body = res.text().await.unwrap();
        if body.split('\u{1e}').any(|p| p.starts_with("41/orders") || p == "1") {
            break;
        }
        if body.split('\u{1e}').any(|p| p == "2") {
            http.post(&url).body("3").send().await.unwrap();
        }
    }
    eprintln!("socket closed {:?} after `user disable`", started.elapsed());
    until_refused(&base, &token).await;
    assert_eq!(login(&base, "cash@seven.test", "stdin-password").await.1["error"]["code"], "USER_DISABLED");
    assert!(cli(d, &["user", "list"]).lines().any(|l| l.contains("cash@seven.test") && l.contains("disabled")));
    cli(d, &["user", "enable", "cash@seven.test"]);
    let (st, v) = login(&base, "cash@seven.test", "stdin-password").await;
    assert_eq!(st, 200, "{v}");
    let token = v["accessToken"].as_str().unwrap().to_string();
    until_status(&base, &token, 200).await;

    // passwd from standard input: the old password and older tokens stop working.
    let out = run_stdin(d, &["user", "passwd", "cash@seven.test"], "changed-password\n");
    assert!(out.status.success(), "{}", stderr(&out));
    until_refused(&base, &token).await;
    assert_eq!(login(&base, "cash@seven.test", "stdin-password").await.0, 401);
    let (st, v) = login(&base, "cash@seven.test", "changed-password").await;
    assert_eq!(st, 200, "{v}");
    let token = v["accessToken"].as_str().unwrap().to_string();
    assert_eq!(orders_status(&base, &token).await, 200);

    // remove: gone from the list, cannot log in, and its tokens stay refused.
    cli(d, &["user", "remove", "cash@seven.test"]);
    assert!(!cli(d, &["user", "list"]).contains("cash@seven.test"));
    assert_eq!(login(&base, "cash@seven.test", "changed-password").await.0, 401);
    until_refused(&base, &token).await;
    drop(server);
}
