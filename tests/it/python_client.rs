//! Runs the python-socketio client checks (tests/python) against a real server over both
//! transports: a second, independent Socket.IO implementation.

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, client_fixtures, python};

async fn run(transport: &str) {
    let py = python();
    let s = TestServer::start().await;
    let fixtures = client_fixtures(&s, 15_000, 1 << 20);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_check.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .env("BRANCHD_URL", &s.base)
        .env("BRANCHD_FIXTURES", fixtures.to_string())
        .env("TRANSPORT", transport)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out).await.expect("python checks finished").expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- python-socketio ({transport}) ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python-socketio checks failed over {transport}");
    assert!(stdout.contains(" passed, 0 failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_over_websocket() {
    run("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_over_polling() {
    run("polling").await;
}
