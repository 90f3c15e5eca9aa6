//! Runs the python-socketio client checks (tests/python) against a real server over both
//! transports: a second, independent Socket.IO implementation.

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, client_fixtures, python};

async fn run(transport: &str) {
    let s = TestServer::start().await;
    let fixtures = client_fixtures(&s, 15_000, 1 << 20);
    python_checks(&s.base, None, &fixtures, transport).await;
}

/// Runs the python-socketio checks against `base` over `transport`; with `ca`, over HTTPS
/// trusting only that CA (nothing from the environment).
pub(crate) async fn python_checks(base: &str, ca: Option<&std::path::Path>, fixtures: &serde_json::Value, transport: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_check.py");
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(script)
        .env("BRANCHD_URL", base)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("CURL_CA_BUNDLE")
        .env("BRANCHD_FIXTURES", fixtures.to_string())
        .env("TRANSPORT", transport)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ca) = ca {
        cmd.env("BRANCHD_CA", ca);
    }
    let how = if ca.is_some() { format!("https/{transport}") } else { transport.to_string() };
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("python checks finished").expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- python-socketio ({how}) ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python-socketio checks failed over {how}");
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
