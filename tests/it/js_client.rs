//! Runs the official JavaScript `socket.io-client` suite (tests/js, `node --test`) against a
//! real server, once per transport: long-polling only, and WebSocket only. The in-order test
//! (`ordering.test.mjs`, SPEC §6, many clients at once) runs on its own server, so it can be
//! run alone and repeated: `cargo test --test it js_client::in_order`.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, client_fixtures, ensure_js_deps};

const PRINT_TIMEOUT_MS: u64 = 1500;
const MAX_PAYLOAD: u64 = 64 * 1024;

/// The suite's files except the in-order test, which has its own server.
pub(crate) fn suite_files(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/js")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".test.mjs") && n != ORDERING)
        .collect();
    files.sort();
    files
}

const ORDERING: &str = "ordering.test.mjs";
/// The in-order test's desktop app answers only after a round trip through the requester,
/// for 50 clients at once on a loaded machine: the wait must not end in a timeout first
/// (a server that held the requester's later events fails the test on the ack timeout).
const ORDERING_PRINT_TIMEOUT_MS: u64 = 10_000;

async fn run_suite(transport: &str) {
    let dir = ensure_js_deps();
    let files = suite_files(&dir);
    run_files(transport, &files).await;
}

async fn run_files(transport: &str, files: &[String]) {
    run_with_timeout(transport, files, PRINT_TIMEOUT_MS).await;
}

async fn run_with_timeout(transport: &str, files: &[String], print_timeout_ms: u64) {
    let dir = ensure_js_deps();
    let s = TestServer::start_with(|c| {
        c.print_timeout = Duration::from_millis(print_timeout_ms);
        c.max_payload = MAX_PAYLOAD;
        c.license_check = Duration::from_millis(300);
    })
    .await;
    let fixtures = client_fixtures(&s, print_timeout_ms, MAX_PAYLOAD);
    node_suite(&dir, files, &s.base, None, &fixtures, transport).await;
}

/// Runs `files` of the JS suite in `dir` against `base` over `transport`; with `ca`, over
/// HTTPS trusting only that CA (nothing from the environment).
pub(crate) async fn node_suite(
    dir: &std::path::Path,
    files: &[String],
    base: &str,
    ca: Option<&std::path::Path>,
    fixtures: &serde_json::Value,
    transport: &str,
) {
    let mut cmd = tokio::process::Command::new("node");
    cmd.args(["--test", "--test-reporter=spec"])
        .args(files)
        .current_dir(dir)
        .env("BRANCHD_URL", base)
        .env_remove("NODE_EXTRA_CA_CERTS")
        .env_remove("NODE_TLS_REJECT_UNAUTHORIZED")
        .env("BRANCHD_FIXTURES", fixtures.to_string())
        .env("TRANSPORT", transport)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ca) = ca {
        cmd.env("BRANCHD_CA", ca);
    }
    let how = if ca.is_some() { format!("https/{transport}") } else { transport.to_string() };
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output()).await.expect("JS suite finished in time").expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- socket.io-client suite ({how}) ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "socket.io-client suite failed over {how}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_over_websocket() {
    run_with_timeout("websocket", &[ORDERING.to_string()], ORDERING_PRINT_TIMEOUT_MS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_over_polling() {
    run_with_timeout("polling", &[ORDERING.to_string()], ORDERING_PRINT_TIMEOUT_MS).await;
}
