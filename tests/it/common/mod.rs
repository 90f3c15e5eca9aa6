//! Test support: a real branchd server on 127.0.0.1 port 0 with a temporary data directory
//! and known fixtures, plus small HTTP helpers. For the hub cluster (issue 15): a real
//! PostgreSQL (`postgres`), nginx running the documented load-balancer config (`nginx`) and a
//! fault-injecting load balancer for sync (`lb`), stopped with the test process (`supervised`).

pub mod emulator;
pub mod lb;
pub mod nginx;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod supervised;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use branchd::auth::jwt::Claims;
use branchd::auth::{license, password};
use branchd::store::{StoreError, directory};
use branchd::{App, AppState, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const SECRET: &str = "test-secret-0123456789abcdef";

/// Ids of the fixtures: company co-1 with branches br-1 and br-2, company co-2 with br-3.
pub struct Fixtures {
    pub license_br1: String,
    pub license_br3: String,
    /// A second br-1 license, for tests that revoke it.
    pub license_revocable: String,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub fixtures: Fixtures,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        port: 0,
        bind: "127.0.0.1".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        jwt_secret: Some(SECRET.into()),
        demo: false,
        mdns: false,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> TestServer {
        let app = App::build(config).await.expect("server builds");
        let addr = app.local_addr();
        let state = app.state().clone();
        let fixtures = seed(&state).await;
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        TestServer { addr, base: format!("http://{addr}"), state, fixtures, dir, shutdown: Some(tx), handle: Some(handle) }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A token signed with the server's secret.
    pub fn token(&self, role: &str, company: Option<&str>, branch: Option<&str>) -> String {
        token_with(&self.state, role, company, branch, 3600)
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn req(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
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

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.req(reqwest::Method::POST, path, Some(token), Some(body)).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn token_with(state: &AppState, role: &str, company: Option<&str>, branch: Option<&str>, ttl: i64) -> String {
    state.keys().issue(&Claims {
        sub: format!("user-{role}"),
        role: role.into(),
        company_id: company.map(Into::into),
        branch_id: branch.map(Into::into),
        email: None,
        exp: chrono::Utc::now().timestamp() + ttl,
        iat: Some(branchd::auth::jwt::now_iat()),
    })
}

/// A token signed with [`SECRET`], for servers run as a child process.
pub fn token_for_secret(role: &str, company: Option<&str>, branch: Option<&str>) -> String {
    branchd::auth::jwt::Keys::new(SECRET.as_bytes()).issue(&Claims {
        sub: format!("user-{role}"),
        role: role.into(),
        company_id: company.map(Into::into),
        branch_id: branch.map(Into::into),
        email: None,
        exp: chrono::Utc::now().timestamp() + 3600,
        iat: Some(branchd::auth::jwt::now_iat()),
    })
}

async fn seed(state: &AppState) -> Fixtures {
    let l1 = license::generate();
    let l3 = license::generate();
    let lr = license::generate();
    let (h1, h3, hr) = (license::hash(&l1), license::hash(&l3), license::hash(&lr));
    let pw = password::hash("owner-password");
    state
        .db()
        .write(move |tx| {
            if directory::company_exists(tx, "co-1")? {
                return Ok(()); // a restarted server on the same data directory
            }
            directory::add_company(tx, "co-1", "Company One")?;
            directory::add_company(tx, "co-2", "Company Two")?;
            directory::add_branch(tx, "br-1", "co-1", "One North")?;
            directory::add_branch(tx, "br-2", "co-1", "One South")?;
            directory::add_branch(tx, "br-3", "co-2", "Two Central")?;
            directory::add_license(tx, &h1, "co-1", "br-1")?;
            directory::add_license(tx, &h3, "co-2", "br-3")?;
            directory::add_license(tx, &hr, "co-1", "br-1")?;
            directory::add_user(
                tx,
                &directory::UserRow {
                    id: "u-owner".into(),
                    email: "owner@co1.test".into(),
                    password_hash: pw,
                    role: "company_owner".into(),
                    company_id: Some("co-1".into()),
                    branch_id: None,
                },
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .expect("fixtures");
    Fixtures { license_br1: l1, license_br3: l3, license_revocable: lr }
}

pub fn order_body(branch: &str) -> Value {
    json!({
        "branchId": branch,
        "type": "dine_in",
        "items": [
            {"name": "Shawarma", "quantity": 2, "unitPrice": 650, "station": "grill"},
            {"name": "Lemonade", "quantity": 1, "unitPrice": 300, "station": "bar", "notes": "no ice"}
        ],
        "notes": "table 4"
    })
}

/// Runs `npm ci` in `tests/js` once per test process when its modules are missing.
pub fn ensure_js_deps() -> PathBuf {
    static ONCE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    npm_ci_once(&ONCE, "tests/js", "socket.io-client")
}

/// `npm ci` in `folder` unless `node_modules/{marker}` is there, at most once per `once`.
fn npm_ci_once(once: &std::sync::Mutex<bool>, folder: &str, marker: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut done = once.lock().unwrap_or_else(|e| e.into_inner());
    if !*done && !dir.join("node_modules").join(marker).exists() {
        let st = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed (see README: test prerequisites)");
        assert!(st.success(), "npm ci in {folder} failed");
    }
    *done = true;
    dir
}

/// Tokens and license keys the client suites use, as JSON.
pub fn client_fixtures(s: &TestServer, print_timeout_ms: u64, max_payload: u64) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims = json!({"sub": "u", "role": "super_admin", "exp": exp});
    let alg_none = format!("{}.{}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#), b64.encode(claims.to_string()));
    let wrong = branchd::auth::jwt::Keys::new(b"a-different-secret-0123456789").issue(&Claims {
        sub: "u".into(),
        role: "company_owner".into(),
        company_id: Some("co-1".into()),
        branch_id: None,
        email: None,
        exp,
        iat: None,
    });
    json!({
        "tokens": {
            "owner1": s.token("company_owner", Some("co-1"), None),
            "owner2": s.token("company_owner", Some("co-2"), None),
            "callcenter1": s.token("call_center", Some("co-1"), None),
            "cashier1": s.token("cashier", Some("co-1"), Some("br-1")),
            "cashier2": s.token("cashier", Some("co-1"), Some("br-2")),
            "kitchen1": s.token("kitchen", Some("co-1"), Some("br-1")),
            "manager1": s.token("branch_manager", Some("co-1"), Some("br-1")),
            "admin": s.token("super_admin", None, None),
            "expired": token_with(&s.state, "company_owner", Some("co-1"), None, -600),
            "unknownRole": token_with(&s.state, "wizard", Some("co-1"), None, 600),
            "wrongSecret": wrong,
            "algNone": alg_none,
        },
        "licenses": {"br1": s.fixtures.license_br1, "br3": s.fixtures.license_br3, "revocable": s.fixtures.license_revocable},
        // The admin CLI on this server's data directory (it works beside the running server).
        "cli": {"bin": env!("CARGO_BIN_EXE_branchd"), "dataDir": s.data_dir()},
        "printTimeoutMs": print_timeout_ms,
        "maxPayload": max_payload,
    })
}

/// A virtualenv under target/ with the pinned Python packages of tests/python, made once.
pub fn python() -> PathBuf {
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
        assert!(st.success(), "pip install of the python test packages failed");
        std::fs::write(&marker, reqs).expect("write marker");
    }
    py
}

/// Runs `npm ci` in `tests/dashboard` once per test process when its modules are missing.
pub fn ensure_dashboard_deps() -> PathBuf {
    static ONCE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    npm_ci_once(&ONCE, "tests/dashboard", "playwright-core")
}

/// Adds a local user who can log in with `password`.
pub async fn add_login_user(s: &TestServer, email: &str, password: &str, role: &str, company: Option<&str>, branch: Option<&str>) {
    let row = directory::UserRow {
        id: format!("u-{email}"),
        email: email.into(),
        password_hash: password::hash(password),
        role: role.into(),
        company_id: company.map(Into::into),
        branch_id: branch.map(Into::into),
    };
    s.state.db().write(move |tx| directory::add_user(tx, &row)).await.expect("user added");
}

/// A local port where nothing listens, held for as long as the returned socket lives: it is
/// bound but not listening, so connections are refused, and no server started meanwhile by
/// a parallel test (nor a connection picking it as its own source port) can take it.
pub fn closed_port() -> (socket2::Socket, std::net::SocketAddr) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
    let addr = sock.local_addr().expect("local addr").as_socket().expect("an IP address");
    (sock, addr)
}

/// A connection of the test's own to the server's database file, for what a test reads or
/// plants behind the server's back (the store offers no raw SQL outside `src/store/`).
pub fn sql(s: &TestServer) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(s.state.db().path()).expect("the database opens");
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c
}

/// What a probe of [`eventually`] answers: `Some(x)`/`Ok(x)` when the awaited state is
/// there, `None` or `Err(what it saw)` when not yet (the last `Err` goes into the failure
/// message).
pub trait Probe {
    type Out;
    fn ready(self) -> Result<Self::Out, Option<String>>;
}

impl<T> Probe for Option<T> {
    type Out = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T> Probe for Result<T, String> {
    type Out = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.map_err(Some)
    }
}

/// Polls `probe` every 25 ms until it is ready and returns what it found; fails naming
/// `what` (and what the probe saw last) once `limit` has passed.
pub async fn eventually<P: Probe, F: std::future::Future<Output = P>>(what: &str, limit: Duration, probe: impl FnMut() -> F) -> P::Out {
    eventually_every(what, limit, Duration::from_millis(25), probe).await
}

/// [`eventually`], polling every `every` (for probes that cost something: a process run, a
/// POST that stores, a query to another server).
pub async fn eventually_every<P: Probe, F: std::future::Future<Output = P>>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> F,
) -> P::Out {
    let deadline = Instant::now() + limit;
    loop {
        let last = match probe().await.ready() {
            Ok(x) => return x,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            match last {
                Some(last) => panic!("timed out after {limit:?} waiting for {what}; last seen: {last}"),
                None => panic!("timed out after {limit:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Held by every test that drives Chromium (`dashboard`, `setup`, `tls`): one browser at a
/// time on a small machine, as when each suite was a process of its own.
pub async fn browser() -> tokio::sync::MutexGuard<'static, ()> {
    static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    BROWSER.lock().await
}
