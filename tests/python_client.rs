//! Runs the python-socketio client checks (tests/python) against a real server over both
//! transports: a second, independent Socket.IO implementation.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, client_fixtures};

/// A virtualenv under target/ with the pinned client, made once per test process.
fn python() -> PathBuf {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/py-venv");
    let py = venv.join("bin/python");
    let marker = venv.join(".branchd-requirements");
    let reqs = std::fs::read_to_string(root.join("tests/python/requirements.txt")).expect("requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(reqs.as_str()) {
        let st = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 must be installed");
        assert!(st.success(), "python3 -m venv failed (Debian: apt-get install python3-venv)");
        let st = std::process::Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root.join("tests/python/requirements.txt"))
            .status()
            .expect("pip runs");
        assert!(st.success(), "pip install of the python client failed");
        std::fs::write(&marker, reqs).expect("write marker");
    }
    py
}

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
