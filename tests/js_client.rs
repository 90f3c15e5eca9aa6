//! Runs the official JavaScript `socket.io-client` suite (tests/js, `node --test`) against a
//! real server, once per transport: long-polling only, and WebSocket only.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, client_fixtures, ensure_js_deps};

const PRINT_TIMEOUT_MS: u64 = 1500;
const MAX_PAYLOAD: u64 = 64 * 1024;

async fn run_suite(transport: &str) {
    let dir = ensure_js_deps();
    let s = TestServer::start_with(|c| {
        c.print_timeout = Duration::from_millis(PRINT_TIMEOUT_MS);
        c.max_payload = MAX_PAYLOAD;
        c.license_check = Duration::from_millis(300);
    })
    .await;
    let fixtures = client_fixtures(&s, PRINT_TIMEOUT_MS, MAX_PAYLOAD);
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec"])
        .current_dir(&dir)
        .env("BRANCHD_URL", &s.base)
        .env("BRANCHD_FIXTURES", fixtures.to_string())
        .env("TRANSPORT", transport)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), out).await.expect("JS suite finished in time").expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- socket.io-client suite ({transport}) ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "socket.io-client suite failed over {transport}");
    assert!(stdout.contains("pass") && !stdout.contains("ℹ pass 0"), "the suite ran no test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_over_websocket() {
    run_suite("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_over_polling() {
    run_suite("polling").await;
}
