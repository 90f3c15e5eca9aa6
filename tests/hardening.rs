//! Issue #8: what someone on the restaurant Wi-Fi could do with `curl` must not exhaust,
//! lock out or spin the appliance. Real server, real sockets.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

async fn login(s: &TestServer, email: &str, password: &str, source: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}/auth/login", s.base)).json(&json!({"email": email, "password": password}));
    if let Some(ip) = source {
        // From loopback the appliance trusts X-Forwarded-For (a reverse proxy on the same
        // machine): this is how a test plays several devices.
        req = req.header("x-forwarded-for", ip);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_address_is_refused_cheaply_while_staff_elsewhere_log_in_and_a_lockout_holds() {
    let s = TestServer::start().await;
    common::add_login_user(&s, "owner@example.com", "owner-password-1", "company_owner", Some("co-1"), None).await;
    common::add_login_user(&s, "cook@example.com", "cook-password-1", "kitchen", Some("co-1"), Some("br-1")).await;

    // The owner's account is locked by someone guessing from another device.
    for _ in 0..6 {
        login(&s, "owner@example.com", "guess", Some("192.0.2.50")).await;
    }
    assert_eq!(login(&s, "owner@example.com", "owner-password-1", Some("192.0.2.51")).await.0, 429, "locked");

    // A flood of distinct emails from one guest phone, 64 at a time.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..64 {
        let base = s.base.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut codes = Vec::new();
            for i in 0..12 {
                let res = client
                    .post(format!("{base}/auth/login"))
                    .header("x-forwarded-for", "192.0.2.66")
                    .json(&json!({"email": format!("guess{worker}-{i}@example.com"), "password": "x"}))
                    .send()
                    .await
                    .unwrap();
                codes.push(res.status().as_u16());
            }
            codes
        }));
    }
    // Meanwhile the cook logs in from the kitchen tablet.
    let (code, body) = login(&s, "cook@example.com", "cook-password-1", Some("192.0.2.20")).await;
    assert_eq!(code, 200, "staff on another device get in during the flood: {body}");
    let mut codes = Vec::new();
    for t in tasks {
        codes.extend(t.await.unwrap());
    }
    let refused = codes.iter().filter(|c| **c == 429).count();
    let checked = codes.iter().filter(|c| **c == 401).count();
    assert_eq!(refused + checked, codes.len(), "only 401 and 429: {codes:?}");
    // At most the free failures plus the ones already in flight got a password check.
    assert!(checked <= 20 + 64, "{checked} password checks for one address");
    assert!(refused >= codes.len() - 84, "{refused} of {} refused cheaply", codes.len());
    eprintln!("flood of {} answered in {:?}: {checked} checked, {refused} refused", codes.len(), started.elapsed());

    // The lockout held through it, and the limits were counted.
    assert_eq!(login(&s, "owner@example.com", "owner-password-1", Some("192.0.2.52")).await.0, 429, "still locked");
    let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    let count = |label: &str| -> u64 {
        let prefix = format!("branchd_limit_hits_total{{limit=\"{label}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    assert!(count("login_source_locked") + count("login_source_busy") >= refused as u64 - 2, "{metrics}");
    assert!(count("login_email_locked") >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_managers_configure_printers_staff_may_see_and_test_them() {
    let s = TestServer::start().await;
    let manager = s.token("branch_manager", Some("co-1"), Some("br-1"));
    let printer = json!({"name": "Bar", "branchId": "br-1", "role": "kitchen", "connection": {"type": "virtual"}});
    let (code, created) = s.post("/api/printers", &manager, printer.clone()).await;
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    for role in ["kitchen", "cashier"] {
        let t = s.token(role, Some("co-1"), Some("br-1"));
        let lan_host = json!({"name": "x", "branchId": "br-1", "connection": {"type": "network", "host": "127.0.0.1", "port": 22}});
        let (code, body) = s.post("/api/printers", &t, lan_host).await;
        assert_eq!((code, body["error"]["code"].as_str()), (403, Some("FORBIDDEN")), "{role} create: {body}");
        let (code, _) = s
            .req(
                Method::PATCH,
                &format!("/api/printers/{id}"),
                Some(&t),
                Some(json!({"connection": {"type": "network", "host": "127.0.0.1", "port": 22}})),
            )
            .await;
        assert_eq!(code, 403, "{role} patch");
        let (code, _) = s.req(Method::DELETE, &format!("/api/printers/{id}"), Some(&t), None).await;
        assert_eq!(code, 403, "{role} delete");
        let (code, _) = s.post("/api/printers/discover", &t, json!({})).await;
        assert_eq!(code, 403, "{role} discover");
        // Seeing and testing stay allowed.
        assert_eq!(s.get(&format!("/api/printers/{id}"), &t).await.0, 200);
        assert_eq!(s.get(&format!("/api/printers/{id}/status"), &t).await.0, 200);
        assert_eq!(s.post(&format!("/api/printers/{id}/test"), &t, json!({})).await.0, 200);
    }
    let call_center = s.token("call_center", Some("co-1"), None);
    assert_eq!(s.post("/api/printers", &call_center, printer).await.0, 403);
    let (_, after) = s.get(&format!("/api/printers/{id}"), &manager).await;
    assert_eq!(after["connection"], json!({"type": "virtual"}), "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_refuses_unauthenticated_sync_bodies_before_reading_them() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| c.role = branchd::config::Role::Hub).await;
    // Announce 16 MiB, send only the headers: the answer comes without the body.
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /sync/v1/events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: Bearer nope\r\n\r\n",
        s.addr,
        16 << 20
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&[b' '; 4096]).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("answered before the body").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("UPLINK_INVALID"), "{text}");
    // No credential at all: the same.
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!("POST /sync/v1/events HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", s.addr, 16 << 20);
    conn.write_all(head.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("answered before the body").unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
}
