//! HTTPS and WSS on the LAN (issue 16): the appliance's own CA and the certificate it serves,
//! plain HTTP and HTTPS on the same port, a configured certificate replaced on disk, an
//! address change, and real clients over TLS — the official socket.io-client (Node, `ca`),
//! python-socketio (`verify` = the CA file) and Debian's Chromium with and without the CA in
//! its NSS certificate store.

use crate::common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::{TestServer, client_fixtures, ensure_dashboard_deps, ensure_js_deps, eventually_every};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};

fn https_base(s: &TestServer) -> String {
    format!("https://{}", s.addr)
}

/// A client that trusts exactly `ca_pem` (no built-in roots), with no connection reuse.
fn client_trusting(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("a PEM certificate"))
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn ca_pem(s: &TestServer) -> String {
    let res = reqwest::get(format!("{}/ca.crt", s.base)).await.expect("GET /ca.crt");
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// Writes the server's CA to a file for the clients that take a path.
async fn ca_file(s: &TestServer) -> PathBuf {
    let path = s.data_dir().join("downloaded-ca.pem");
    std::fs::write(&path, ca_pem(s).await).unwrap();
    path
}

/// A TLS handshake with 127.0.0.1 that verifies the certificate for `name` against `ca`.
async fn handshake(addr: std::net::SocketAddr, ca: &CertificateDer<'static>, name: ServerName<'static>) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_http_share_the_port_and_the_ca_is_offered_in_three_formats() {
    let s = TestServer::start().await;
    let pem = ca_pem(&s).await;
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM parses");

    // HTTPS on the same port, verified against the downloaded CA only: by IP and by name.
    let https = client_trusting(pem.as_bytes());
    let health: serde_json::Value = https.get(format!("{}/health", https_base(&s))).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["tls"]["enabled"], true);
    assert_eq!(health["tls"]["caFingerprint"], hex::encode(Sha256::digest(&der)), "the fingerprint is SHA-256 of the CA's DER");
    let by_name = https.get(format!("https://localhost:{}/health", s.addr.port())).send().await.unwrap();
    assert_eq!(by_name.status(), 200);

    // Plain HTTP keeps working on the same port.
    let plain = reqwest::get(format!("{}/health", s.base)).await.unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.json::<serde_json::Value>().await.unwrap()["tls"]["caFingerprint"], health["tls"]["caFingerprint"]);

    // Nobody else trusts it: a client with only the built-in roots refuses the certificate.
    let err = reqwest::Client::new().get(format!("{}/health", https_base(&s))).send().await.expect_err("untrusted certificate");
    assert!(err.is_connect(), "{err:?}");

    // DER and the iOS/macOS profile carry the same certificate.
    let res = https.get(format!("{}/ca.crt?format=der", https_base(&s))).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/x-x509-ca-cert");
    assert_eq!(res.bytes().await.unwrap().as_ref(), der.as_ref());
    let res = https.get(format!("{}/ca.crt?format=mobileconfig", https_base(&s))).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/x-apple-aspen-config");
    let profile: String = res.text().await.unwrap().split_whitespace().collect();
    assert!(profile.contains("<string>com.apple.security.root</string>"));
    assert!(profile.contains(&base64::engine::general_purpose::STANDARD.encode(&der)), "the profile carries the CA");
    let res = reqwest::get(format!("{}/ca.crt?format=pfx", s.base)).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"]["code"], "VALIDATION_ERROR");

    // A connection that never says anything does not hold up the others.
    let _idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(https.get(format!("{}/health", https_base(&s))).send().await.unwrap().status(), 200);

    // The CA key is private to the service; the CA survives a restart (devices keep trusting it).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data_dir().join("tls/ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let dir = s.stop().await;
    let config = common::test_config(dir.path());
    let s = TestServer::start_in(dir, config).await;
    assert_eq!(ca_pem(&s).await, pem, "the same CA after a restart");
    assert_eq!(https.get(format!("{}/health", https_base(&s))).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_off_serves_plain_http_only() {
    let s = TestServer::start_with(|c| c.tls = false).await;
    let health: serde_json::Value = reqwest::get(format!("{}/health", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(health["tls"]["enabled"], false);
    assert!(health["tls"]["caFingerprint"].is_null());
    assert_eq!(reqwest::get(format!("{}/ca.crt", s.base)).await.unwrap().status(), 404);
    let insecure = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    assert!(insecure.get(format!("{}/health", https_base(&s))).send().await.is_err(), "no TLS with BRANCHD_TLS=off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_change_reissues_the_certificate_without_a_restart() {
    let s = TestServer::start().await;
    let pem = ca_pem(&s).await;
    let ca = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let new: IpAddr = "10.77.0.9".parse().unwrap();
    let as_name = |ip: IpAddr| ServerName::IpAddress(ip.into());

    let before = handshake(s.addr, &ca, as_name(new)).await;
    assert!(before.is_err(), "the certificate does not name an address the appliance does not have yet");
    handshake(s.addr, &ca, as_name("127.0.0.1".parse().unwrap())).await.expect("loopback is always named");

    // The LAN gets a new address: the next check re-issues, and new connections get it.
    let changed = s.state.tls().set_address_source(Arc::new(move || vec![new])).expect("re-issued");
    assert!(changed);
    handshake(s.addr, &ca, as_name(new)).await.expect("the new address is named");
    handshake(s.addr, &ca, ServerName::try_from("localhost").unwrap()).await.expect("localhost still named");
    assert!(!s.state.tls().refresh().unwrap(), "nothing changed: nothing re-issued");

    // The address goes away again: it is no longer vouched for.
    assert!(s.state.tls().set_address_source(Arc::new(Vec::new)).unwrap());
    assert!(handshake(s.addr, &ca, as_name(new)).await.is_err());
}

/// A CA of its own (as a chain's IT would have) and a certificate from it for 127.0.0.1.
fn own_pki(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem() + &ca_cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_file_is_served_without_a_restart() {
    let files = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (files.path().join("server.crt"), files.path().join("server.key"));
    let (ca_a, chain_a, key_a) = own_pki("A");
    let (ca_b, chain_b, key_b) = own_pki("B");
    std::fs::write(&cert_path, &chain_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let s = TestServer::start_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
        c.tls_check = Duration::from_millis(100);
    })
    .await;
    let url = format!("{}/health", https_base(&s));
    let (trusts_a, trusts_b) = (client_trusting(ca_a.as_bytes()), client_trusting(ca_b.as_bytes()));
    let health: serde_json::Value = trusts_a.get(&url).send().await.expect("A's certificate is served").json().await.unwrap();
    assert_eq!(health["tls"]["enabled"], true);
    assert!(health["tls"]["caFingerprint"].is_null(), "no appliance CA with a configured certificate");
    assert_eq!(reqwest::get(format!("{}/ca.crt", s.base)).await.unwrap().status(), 404);
    assert!(trusts_b.get(&url).send().await.is_err());

    // The files are replaced (key first, as an operator's script would): served within the
    // check interval, by the running server.
    std::fs::write(&key_path, &key_b).unwrap();
    std::fs::write(&cert_path, &chain_b).unwrap();
    eventually_every("the new certificate to be served", Duration::from_secs(10), Duration::from_millis(100), || async {
        trusts_b.get(&url).send().await.ok().map(drop)
    })
    .await;
    let old = trusts_a.get(&url).send().await;
    assert!(old.is_err(), "the old certificate is gone: {old:?}");

    // A broken file is refused and the last good certificate stays in use.
    std::fs::write(&cert_path, "not a certificate").unwrap();
    assert!(s.state.tls().refresh().is_err());
    assert_eq!(trusts_b.get(&url).send().await.expect("still served").status(), 200);
}

#[tokio::test]
async fn a_half_configured_certificate_is_a_config_error() {
    let layer = branchd::config::Layer::default().with("tls_cert", "/etc/x.pem");
    let e = layer.resolve().unwrap_err();
    assert_eq!(e.setting, "BRANCHD_TLS_KEY");
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.tls_cert = Some(dir.path().join("missing.crt"));
    config.tls_key = Some(dir.path().join("missing.key"));
    let err = branchd::App::build(config).await.err().expect("a missing certificate file stops the start");
    assert!(err.to_string().contains("missing.crt"), "{err}");
}

async fn js_suite_over_https(transport: &str) {
    let dir = ensure_js_deps();
    let s = TestServer::start_with(|c| {
        c.print_timeout = Duration::from_millis(1500);
        c.max_payload = 64 * 1024;
        c.license_check = Duration::from_millis(300);
    })
    .await;
    let ca = ca_file(&s).await;
    let fixtures = client_fixtures(&s, 1500, 64 * 1024);
    // The contract suite; the in-order test (50 clients, its own long print timeout) runs over
    // plain HTTP in tests/it/js_client.rs: TLS sits below Socket.IO and changes nothing of order.
    let files = crate::js_client::suite_files(&dir);
    crate::js_client::node_suite(&dir, &files, &https_base(&s), Some(&ca), &fixtures, transport).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_over_wss() {
    js_suite_over_https("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_over_https_polling() {
    js_suite_over_https("polling").await;
}

async fn python_over_https(transport: &str) {
    let s = TestServer::start().await;
    let ca = ca_file(&s).await;
    let fixtures = client_fixtures(&s, 15_000, 1 << 20);
    crate::python_client::python_checks(&https_base(&s), Some(&ca), &fixtures, transport).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_over_wss() {
    python_over_https("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_over_https_polling() {
    python_over_https("polling").await;
}

/// Loads `url` in Chromium with `home` as HOME (its NSS store); the script's JSON verdict.
async fn chromium_loads(dir: &Path, home: &Path, url: &str, host_rules: &str, probe: Option<(&str, &str)>) -> serde_json::Value {
    let (probe_from, probe_url) = probe.unwrap_or(("", ""));
    let _one = common::browser().await;
    let out = tokio::process::Command::new("node")
        .arg("tls_trust.mjs")
        .current_dir(dir)
        .env("PROBE_FROM", probe_from)
        .env("PROBE_URL", probe_url)
        .env("HOME", home)
        .env("PAGE_URL", url)
        .env("HOST_RULES", host_rules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out).await.expect("chromium finished").expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tls_trust.mjs failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| panic!("one JSON line: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_trusts_the_dashboard_once_the_ca_is_imported() {
    if !Path::new("/usr/bin/chromium").exists() || !Path::new("/usr/bin/certutil").exists() {
        eprintln!("skipped: needs /usr/bin/chromium and certutil (Debian chromium, libnss3-tools)");
        return;
    }
    let dir = ensure_dashboard_deps();
    let s = TestServer::start().await;
    let ca = ca_file(&s).await;
    let port = s.addr.port();
    let host = s.state.tls().host().expect("TLS on").to_string();
    let by_ip = format!("https://127.0.0.1:{port}/");
    let by_name = format!("https://{host}:{port}/");
    let rules = format!("MAP {host} 127.0.0.1");

    // A fresh HOME: the CA is trusted nowhere, and Chromium says so.
    let untrusted = tempfile::tempdir().unwrap();
    let plain = format!("http://127.0.0.1:{port}/");
    let health = format!("https://127.0.0.1:{port}/health");
    let probe = Some((plain.as_str(), health.as_str()));
    let v = chromium_loads(&dir, untrusted.path(), &by_ip, "", probe).await;
    assert_eq!(v["probe"], false, "the dashboard's trust check fails: {v}");
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("ERR_CERT_AUTHORITY_INVALID"), "{v}");

    // The CA imported as a trusted root into the user's NSS store (what "install the
    // certificate" does on a Linux desktop): the dashboard loads, by IP and by .local name.
    let trusted = tempfile::tempdir().unwrap();
    let db = trusted.path().join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let sql = format!("sql:{}", db.display());
    let st = std::process::Command::new("certutil").args(["-N", "-d", &sql, "--empty-password"]).status().expect("certutil runs");
    assert!(st.success());
    let st = std::process::Command::new("certutil")
        .args(["-A", "-d", &sql, "-t", "C,,", "-n", "branchd", "-i"])
        .arg(&ca)
        .status()
        .expect("certutil runs");
    assert!(st.success());
    for (url, rules, probe) in [(&by_ip, "", probe), (&by_name, rules.as_str(), None)] {
        let v = chromium_loads(&dir, trusted.path(), url, rules, probe).await;
        if probe.is_some() {
            assert_eq!(v["probe"], true, "the dashboard's trust check passes from the http page: {v}");
        }
        assert_eq!(v["ok"], true, "{url}: {v}");
        assert_eq!(v["status"], 200, "{url}: {v}");
        assert_eq!(v["secure"], true, "{url} is a secure context: {v}");
    }
}

/// A branch whose uplink goes to `hub` over HTTPS, trusting `upstream_ca` besides the roots.
async fn branch_of(hub: &TestServer, upstream_ca: Option<PathBuf>) -> TestServer {
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)).await.unwrap();
    let url = https_base(hub);
    TestServer::start_with(move |c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(credential.into());
        c.upstream_ca = upstream_ca;
    })
    .await
}

/// Waits (bounded) until the branch's sync status passes `pred`.
async fn until_sync(s: &TestServer, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    eventually_every(what, Duration::from_secs(30), Duration::from_millis(100), || async {
        let h: serde_json::Value = reqwest::get(format!("{}/health", s.base)).await.unwrap().json().await.unwrap();
        if pred(&h["sync"]) {
            return Ok(h["sync"].clone());
        }
        s.state.sync().wake();
        Err(h.to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uplink_verifies_the_hubs_certificate_against_the_configured_ca() {
    let hub = TestServer::start_with(|c| c.role = branchd::config::ApplianceRole::Hub).await;
    let hub_ca = ca_file(&hub).await;

    // Without the hub's CA the uplink refuses the certificate: sync stays offline.
    let untrusting = branch_of(&hub, None).await;
    let sync = until_sync(&untrusting, "a certificate error", |s| s["lastError"].is_string()).await;
    assert_eq!(sync["online"], false, "{sync}");
    assert!(sync["lastError"].as_str().unwrap().contains("UnknownIssuer"), "the reason is given: {sync}");
    untrusting.stop().await;

    // With BRANCHD_UPSTREAM_CA the same hub is trusted, and orders reach it.
    let branch = branch_of(&hub, Some(hub_ca)).await;
    let (status, _) = branch.post("/api/orders", &branch.token("cashier", Some("co-1"), Some("br-1")), common::order_body("br-1")).await;
    assert_eq!(status, 201);
    let sync =
        until_sync(&branch, "synced over https", |s| s["online"] == true && s["acked"].as_i64() > Some(0) && s["pending"] == 0).await;
    assert!(sync["lastError"].is_null(), "{sync}");

    // A CA file that is not PEM stops sync with the reason.
    let bad = hub.data_dir().join("not-a-ca.pem");
    std::fs::write(&bad, "hello").unwrap();
    let broken = branch_of(&hub, Some(bad)).await;
    let sync = until_sync(&broken, "stopped", |s| s["stopped"].is_string()).await;
    assert!(sync["stopped"].as_str().unwrap().contains("BRANCHD_UPSTREAM_CA"), "{sync}");
}
