//! The cross-tenant abuse walk (issue #10): every REST route (src/http/mod.rs) and every
//! Socket.IO event (src/realtime/*) tried on branch br-1 of company co-1 by every role of
//! ANOTHER branch (br-2 of co-1) and ANOTHER company (co-2, br-3; its desktop app too):
//! each is refused 403/404 (never 2xx), the error names nothing of the victim, the victim's
//! state is unchanged, and the attackers' sockets receive none of the victim's events while
//! the victim's own client gets them all. Then floods: polling sessions, handshakes, events
//! and joins from one socket, answered cheaply with memory and `/health` latency bounded.
//!
//! The Socket.IO clients speak Engine.IO v4 long-polling by hand (as tests/it/slow_client.rs),
//! so dozens of sessions cost nothing. Figures: `cargo test --test it abuse:: -- --nocapture`.

use crate::common;

use std::time::{Duration, Instant};

use branchd::realtime::Tuning;
use common::{TestServer, order_body};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// One Engine.IO long-polling session connected to one namespace.
struct Polling {
    http: reqwest::Client,
    url: String,
    ns: &'static str,
    /// Every packet received so far.
    seen: Vec<String>,
    ack: u64,
}

impl Polling {
    async fn open(base: &str) -> (reqwest::Client, String) {
        Self::open_with(reqwest::Client::new(), base).await
    }

    async fn open_with(http: reqwest::Client, base: &str) -> (reqwest::Client, String) {
        let open = http.get(format!("{base}/socket.io/?EIO=4&transport=polling")).send().await.unwrap().text().await.unwrap();
        let hs: Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = hs["sid"].as_str().unwrap().to_string();
        (http, format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"))
    }

    /// Connects with `auth`; `Err(message)` on CONNECT_ERROR.
    async fn connect(base: &str, ns: &'static str, auth: Value) -> Result<Polling, String> {
        let (http, url) = Self::open(base).await;
        let mut p = Polling { http, url, ns, seen: vec![], ack: 0 };
        p.send(&format!("40{ns},{auth}")).await;
        let deadline = Instant::now() + WAIT;
        loop {
            for pk in p.poll().await {
                if pk.starts_with(&format!("40{ns},")) {
                    return Ok(p);
                }
                if let Some(e) = pk.strip_prefix(&format!("44{ns},")) {
                    let v: Value = serde_json::from_str(e).unwrap();
                    return Err(v["message"].as_str().unwrap_or_default().to_string());
                }
            }
            assert!(Instant::now() < deadline, "no answer to CONNECT on {ns}");
        }
    }

    async fn send(&self, packet: &str) {
        let st = self.http.post(&self.url).body(packet.to_string()).send().await.unwrap().status();
        assert_eq!(st, 200, "POST {packet}");
    }

    /// One poll (answering pings); the packets are also kept in `seen`.
    async fn poll(&mut self) -> Vec<String> {
        let res = self.http.get(&self.url).send().await.unwrap();
        assert_eq!(res.status(), 200, "the session is open");
        let packets: Vec<String> = res.text().await.unwrap().split('\u{1e}').map(str::to_string).collect();
        if packets.iter().any(|p| p == "2") {
            self.send("3").await;
        }
        self.seen.extend(packets.iter().filter(|p| p.starts_with('4')).cloned());
        packets
    }

    /// Emits `event` with an ack id and returns the ack's first argument.
    async fn call(&mut self, event: &str, data: Value) -> Value {
        self.ack += 1;
        let id = self.ack;
        self.send(&format!("42{},{id}{}", self.ns, json!([event, data]))).await;
        let want = format!("43{},{id}[", self.ns);
        let deadline = Instant::now() + WAIT;
        loop {
            for pk in self.poll().await {
                if let Some(rest) = pk.strip_prefix(&want[..want.len() - 1]) {
                    let v: Value = serde_json::from_str(rest).unwrap();
                    return v[0].clone();
                }
            }
            assert!(Instant::now() < deadline, "no ack for {event}");
        }
    }

    /// The server→client events (`42`) received so far: `(name, data)`.
    fn events(&self) -> Vec<(String, Value)> {
        let prefix = format!("42{},", self.ns);
        self.seen
            .iter()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter_map(|j| serde_json::from_str::<Value>(j).ok())
            .map(|v| (v[0].as_str().unwrap_or_default().to_string(), v[1].clone()))
            .collect()
    }

    /// Polls until an event satisfies `f`.
    async fn until(&mut self, what: &str, f: impl Fn(&str, &Value) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !self.events().iter().any(|(n, d)| f(n, d)) {
            assert!(Instant::now() < deadline, "{} on {} never got {what}; got {:?}", self.url, self.ns, self.events());
            self.poll().await;
        }
    }
}

struct Attacker {
    who: &'static str,
    token: String,
    /// Where a marker event for this attacker can be made (its own branch).
    own_branch: &'static str,
    /// Whether it may configure printers (`branch_manager` and above).
    configures: bool,
}

fn attackers(s: &TestServer) -> Vec<Attacker> {
    let a = |who, role: &str, company: &str, branch: Option<&str>, own_branch, configures| Attacker {
        who,
        token: s.token(role, Some(company), branch),
        own_branch,
        configures,
    };
    vec![
        a("br-2 branch_manager", "branch_manager", "co-1", Some("br-2"), "br-2", true),
        a("br-2 cashier", "cashier", "co-1", Some("br-2"), "br-2", false),
        a("br-2 kitchen", "kitchen", "co-1", Some("br-2"), "br-2", false),
        a("co-2 company_owner", "company_owner", "co-2", None, "br-3", true),
        a("co-2 call_center", "call_center", "co-2", None, "br-3", false),
        a("br-3 branch_manager", "branch_manager", "co-2", Some("br-3"), "br-3", true),
        a("br-3 cashier", "cashier", "co-2", Some("br-3"), "br-3", false),
        a("br-3 kitchen", "kitchen", "co-2", Some("br-3"), "br-3", false),
    ]
}

/// Victim data every attacker goes after.
struct Victim {
    order: String,
    printer: String,
    job: String,
}

async fn victim(s: &TestServer) -> Victim {
    let admin = s.token("super_admin", None, None);
    let (st, o) = s.post("/api/orders", &admin, order_body("br-1")).await;
    assert_eq!(st, 201, "{o}");
    let (st, p) = s
        .post(
            "/api/printers",
            &admin,
            json!({"name": "Victim printer", "branchId": "br-1", "role": "label", "connection": {"type": "virtual"}}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let printer = p["id"].as_str().unwrap().to_string();
    let (st, j) = s.post("/api/print-jobs", &admin, json!({"printerId": printer, "kind": "raw", "data": "G0BoaQo="})).await;
    assert_eq!(st, 202, "{j}");
    let (st, _) =
        s.req(Method::PUT, "/api/availability/br-1/product/p-victim", Some(&admin), Some(json!({"available": true, "stock": 9}))).await;
    assert_eq!(st, 200);
    Victim { order: o["id"].as_str().unwrap().to_string(), printer, job: j["id"].as_str().unwrap().to_string() }
}

/// What an error must never contain: the victim's ids and names. A co-1 branch may know
/// its own company; another company may not even learn co-1's name.
fn leak_markers(v: &Victim, a: &Attacker) -> Vec<String> {
    let mut m = vec![v.order.clone(), v.printer.clone(), v.job.clone(), "One North".into(), "Victim printer".into(), "p-victim".into()];
    if a.own_branch == "br-3" {
        m.extend(["co-1".to_string(), "Company One".to_string(), "One South".to_string()]);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_refuses_another_branch_and_another_company() {
    let s = TestServer::start().await;
    let v = victim(&s).await;
    let (o, p, j) = (v.order.clone(), v.printer.clone(), v.job.clone());
    // (method, path, body): every route of src/http/mod.rs that names the victim.
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, "/api/orders".into(), Some(order_body("br-1"))),
        (Method::GET, "/api/orders?branchId=br-1".into(), None),
        (Method::GET, "/api/orders?branchId=br-1&status=all".into(), None),
        (Method::GET, format!("/api/orders/{o}"), None),
        (Method::PATCH, format!("/api/orders/{o}/status"), Some(json!({"status": "confirmed"}))),
        (Method::POST, format!("/api/orders/{o}/cancel"), Some(json!({"reason": "abuse"}))),
        (Method::PUT, format!("/api/orders/{o}/driver"), Some(json!({"driverId": "d", "name": "Mallory"}))),
        (Method::GET, "/api/availability/br-1".into(), None),
        (
            Method::POST,
            "/api/availability/br-1/bulk".into(),
            Some(json!({"items": [{"itemType": "product", "itemId": "p-victim", "available": false, "stock": 0}]})),
        ),
        (Method::PUT, "/api/availability/br-1/product/p-victim".into(), Some(json!({"available": false, "stock": 0}))),
        (Method::GET, "/api/printers?branchId=br-1".into(), None),
        (
            Method::POST,
            "/api/printers".into(),
            Some(json!({"name": "Evil", "branchId": "br-1", "role": "receipt", "connection": {"type": "virtual"}})),
        ),
        (Method::GET, format!("/api/printers/{p}"), None),
        (Method::PATCH, format!("/api/printers/{p}"), Some(json!({"name": "Owned"}))),
        (Method::DELETE, format!("/api/printers/{p}"), None),
        (Method::GET, format!("/api/printers/{p}/status"), None),
        (Method::POST, format!("/api/printers/{p}/test"), None),
        (Method::POST, "/api/print-jobs".into(), Some(json!({"printerId": p, "kind": "raw", "data": "aGk="}))),
        (Method::POST, "/api/print-jobs".into(), Some(json!({"printerId": p, "kind": "receipt", "orderId": o}))),
        (Method::GET, "/api/print-jobs?branchId=br-1".into(), None),
        (Method::GET, format!("/api/print-jobs?printerId={p}&branchId=br-1"), None),
        (Method::GET, format!("/api/print-jobs/{j}"), None),
        (Method::POST, format!("/api/print-jobs/{j}/reprint"), None),
        (Method::GET, "/api/system/backup".into(), None),
        (Method::GET, "/sync/v1/hello".into(), None),
        (Method::POST, "/sync/v1/events".into(), Some(json!({"protocol": 1, "branchId": "br-1", "events": []}))),
        (Method::GET, "/sync/v1/feed?after=0".into(), None),
    ];
    // Routes that list the caller's own scope: 200 is right, but nothing of the victim.
    let scoped =
        ["/api/orders", "/api/orders?status=all", "/api/printers", "/api/print-jobs", "/api/branches", "/api/connections", "/api/system"];
    let mut refused = 0;
    for a in attackers(&s) {
        let markers = leak_markers(&v, &a);
        for (method, path, body) in &routes {
            let (st, answer) = s.req(method.clone(), path, Some(&a.token), body.clone()).await;
            assert!(matches!(st, 401 | 403 | 404), "{} {method} {path}: {st} {answer}", a.who);
            let text = answer.to_string();
            // The caller's own words (an id it sent) may come back; nothing else of the victim.
            let asked = format!("{path} {}", body.clone().unwrap_or_default());
            for m in markers.iter().filter(|m| !asked.contains(m.as_str())) {
                assert!(!text.contains(m.as_str()), "{} {method} {path}: the error names {m}: {text}", a.who);
            }
            assert!(answer["error"]["code"].is_string(), "{} {method} {path}: SPEC's error shape: {text}", a.who);
            refused += 1;
        }
        let (st, answer) = s.post("/api/printers/discover", &a.token, json!({"mdns": false})).await;
        if a.configures {
            assert_eq!(st, 200, "{}: discovery is of the appliance's own LAN, not of a branch", a.who);
        } else {
            assert_eq!(st, 403, "{} may not run discovery: {answer}", a.who);
            refused += 1;
        }
        for path in scoped {
            let (st, answer) = s.get(path, &a.token).await;
            let text = answer.to_string();
            for m in &markers {
                assert!(!text.contains(m.as_str()), "{} GET {path} ({st}) shows {m}: {text}", a.who);
            }
            if path.starts_with("/api/branches") {
                assert!(!text.contains("\"br-1\""), "{} sees br-1 in {path}: {text}", a.who);
            }
        }
    }
    // Nothing changed for the victim.
    let admin = s.token("super_admin", None, None);
    let (_, order) = s.get(&format!("/api/orders/{o}"), &admin).await;
    assert_eq!(order["status"], "pending", "{order}");
    assert!(order["driver"].is_null() || order["driver"]["name"] != "Mallory", "{order}");
    let (st, printer) = s.get(&format!("/api/printers/{p}"), &admin).await;
    assert_eq!((st, printer["name"].as_str()), (200, Some("Victim printer")));
    let (_, avail) = s.get("/api/availability/br-1", &admin).await;
    assert_eq!(avail["items"][0]["stock"], 9, "{avail}");
    let (_, printers) = s.get("/api/printers?branchId=br-1", &admin).await;
    assert_eq!(printers["items"].as_array().unwrap().len(), 1, "no printer was added to br-1: {printers}");
    let (_, jobs) = s.get("/api/print-jobs?branchId=br-1", &admin).await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 1, "no job was queued or reprinted in br-1: {jobs}");
    println!("abuse walk REST: {refused} cross-tenant requests refused (8 roles × {} routes + discovery), 0 leaks", routes.len());
}

fn fast_heartbeat(c: &mut branchd::Config) {
    c.realtime = Tuning { ping_interval: Duration::from_millis(250), ping_timeout: Duration::from_secs(20), socket_buffer: 1024 };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socketio_event_refuses_another_branch_and_another_company_and_they_hear_nothing() {
    let s = TestServer::start_with(fast_heartbeat).await;
    let v = victim(&s).await;
    let admin = s.token("super_admin", None, None);
    let nss: [&'static str; 3] = ["/orders", "/availability", "/printing-ws"];
    let mut refused = 0;
    // Every attacker on every namespace, plus co-2's desktop app on /printing-ws.
    let mut socks: Vec<(String, &'static str, Polling)> = vec![];
    for a in attackers(&s) {
        for ns in nss {
            let p = Polling::connect(&s.base, ns, json!({"token": a.token, "branchId": "br-1", "companyId": "co-1"})).await.unwrap();
            socks.push((a.who.to_string(), a.own_branch, p));
        }
    }
    let desktop = json!({"userRole": "desktop_app", "deviceId": "dev-evil", "branchId": "br-3", "companyId": "co-2",
        "licenseKey": s.fixtures.license_br3, "appVersion": "1", "instanceId": "i"});
    socks.push(("br-3 desktop app".into(), "br-3", Polling::connect(&s.base, "/printing-ws", desktop).await.unwrap()));
    // A license of co-2 with br-1 hints, and co-1's license on another company: refused.
    let hinted = json!({"userRole": "desktop_app", "deviceId": "dev-evil", "branchId": "br-1", "companyId": "co-1",
        "licenseKey": s.fixtures.license_br3, "appVersion": "1", "instanceId": "i"});
    assert_eq!(Polling::connect(&s.base, "/printing-ws", hinted).await.err().as_deref(), Some("LICENSE_INVALID"));
    let desktop_on_orders = json!({"userRole": "desktop_app", "deviceId": "d", "licenseKey": s.fixtures.license_br3});
    assert_eq!(Polling::connect(&s.base, "/orders", desktop_on_orders).await.err().as_deref(), Some("FORBIDDEN"));
    refused += 2;

    // The victim's own clients.
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let mut vorders = Polling::connect(&s.base, "/orders", json!({"token": cashier})).await.unwrap();
    let mut vavail = Polling::connect(&s.base, "/availability", json!({"token": cashier})).await.unwrap();
    let mut vprint = Polling::connect(&s.base, "/printing-ws", json!({"token": cashier})).await.unwrap();

    for (who, _, p) in socks.iter_mut() {
        let markers = [v.order.as_str(), v.printer.as_str(), "One North", "Victim printer", "p-victim"];
        let mut tries: Vec<(&str, Value)> = vec![
            ("joinBranch", json!({"branchId": "br-1"})),
            ("join:branch", json!({"branchId": "br-1"})),
            ("joinBranch", json!({"branchId": "br-nowhere"})),
        ];
        match p.ns {
            "/orders" => tries.push(("requestLiveOrders", json!({"branchId": "br-1"}))),
            "/printing-ws" => tries.push(("printer:test", json!({"printerId": v.printer}))),
            _ => {}
        }
        for (event, data) in tries {
            let ack = p.call(event, data.clone()).await;
            assert_eq!(ack["success"], false, "{who} {} {event} {data}: {ack}", p.ns);
            let code = ack["error"]["code"].as_str().unwrap_or_default();
            assert!(matches!(code, "FORBIDDEN" | "NOT_FOUND"), "{who} {} {event}: {ack}", p.ns);
            let (text, asked) = (ack.to_string(), data.to_string());
            assert!(!markers.iter().any(|m| text.contains(m) && !asked.contains(m)), "{who} {event}: the error names the victim: {text}");
            refused += 1;
        }
        // What the caller may ask freely never includes the victim.
        let caught = p.call("catchUp", json!({"since": "0"})).await;
        assert_eq!(caught["success"], true, "{who}: {caught}");
        assert!(!caught.to_string().contains("br-1"), "{who} {}: catchUp shows br-1: {caught}", p.ns);
        if p.ns == "/orders" {
            let live = p.call("requestLiveOrders", json!({})).await;
            assert!(!live.to_string().contains(&v.order), "{who}: {live}");
        }
        // Leaving is always allowed (and changes nothing).
        assert_eq!(p.call("leaveBranch", json!({"branchId": "br-1"})).await["success"], true);
    }

    // Victim traffic on every namespace, seen by the victim's clients.
    let (st, o2) = s.post("/api/orders", &cashier, order_body("br-1")).await;
    assert_eq!(st, 201);
    let o2 = o2["id"].as_str().unwrap().to_string();
    let (st, _) = s.req(Method::PATCH, &format!("/api/orders/{o2}/status"), Some(&cashier), Some(json!({"status": "confirmed"}))).await;
    assert_eq!(st, 200);
    let (st, _) =
        s.req(Method::PUT, &format!("/api/orders/{o2}/driver"), Some(&admin), Some(json!({"driverId": "d", "name": "Dan"}))).await;
    assert_eq!(st, 200);
    let (st, _) = s.post(&format!("/api/orders/{o2}/cancel"), &cashier, json!({"reason": "test"})).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .req(
            Method::PUT,
            "/api/availability/br-1/product/p-victim",
            Some(&cashier),
            Some(json!({"available": true, "stock": 1, "lowStockThreshold": 2})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .post(
            "/api/availability/br-1/bulk",
            &cashier,
            json!({"items": [{"itemType": "modifier", "itemId": "m-v", "available": false, "stock": 0}]}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) =
        s.req(Method::PATCH, &format!("/api/printers/{}", v.printer), Some(&admin), Some(json!({"name": "Victim printer 2"}))).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .post(
            "/api/printers",
            &admin,
            json!({"name": "Victim two", "branchId": "br-1", "role": "label", "connection": {"type": "virtual"}}),
        )
        .await;
    assert_eq!(st, 201);
    vorders.until("orderCancelled", |n, d| n == "orderCancelled" && d["orderId"] == o2.as_str()).await;
    for name in ["newOrder", "orderStatusUpdate", "driverUpdate"] {
        assert!(vorders.events().iter().any(|(n, _)| n == name), "the victim got {name}");
    }
    vavail.until("bulkAvailabilityUpdate", |n, _| n == "bulkAvailabilityUpdate").await;
    assert!(vavail.events().iter().any(|(n, _)| n == "stockAlert"), "the victim got the low-stock alert");
    vprint.until("printer:added", |n, d| n == "printer:added" && d["name"] == "Victim two").await;
    let victim_events = vorders.events().len() + vavail.events().len() + vprint.events().len();

    // A marker in each attacker's own branch, on each namespace: once an attacker's socket
    // has it, anything about br-1 (emitted earlier, in commit order) would have arrived.
    for b in ["br-2", "br-3"] {
        let (st, _) = s.post("/api/orders", &admin, order_body(b)).await;
        assert_eq!(st, 201);
        let (st, _) =
            s.req(Method::PUT, &format!("/api/availability/{b}/product/marker"), Some(&admin), Some(json!({"available": true}))).await;
        assert_eq!(st, 200);
        let (st, _) = s
            .post("/api/printers", &admin, json!({"name": "Marker", "branchId": b, "role": "label", "connection": {"type": "virtual"}}))
            .await;
        assert_eq!(st, 201);
    }
    let mut heard = 0;
    for (who, own, p) in socks.iter_mut() {
        let own = own.to_string();
        let marker = match p.ns {
            "/orders" => "newOrder",
            "/availability" => "availabilityUpdate",
            _ => "printer:added",
        };
        p.until(&format!("its own {marker}"), |n, d| n == marker && d["branchId"] == own.as_str()).await;
        for (name, data) in p.events() {
            let text = data.to_string();
            assert!(
                !text.contains("br-1") && !text.contains(&v.order) && !text.contains(&o2) && !text.contains(&v.printer),
                "{who} on {} received the victim's {name}: {text}",
                p.ns
            );
            heard += 1;
        }
    }
    println!(
        "abuse walk Socket.IO: {refused} cross-tenant events and handshakes refused across {} attacker sockets; the victim's clients got {victim_events} events, the attackers 0 of them ({heard} of their own)",
        socks.len()
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

async fn health_ms(http: &reqwest::Client, base: &str) -> f64 {
    let t = Instant::now();
    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert!(r.status().is_success());
    let _ = r.bytes().await;
    t.elapsed().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_sessions_handshakes_events_and_joins_are_answered_cheaply() {
    let s = TestServer::start_with(fast_heartbeat).await;
    let http = reqwest::Client::new();
    let idle_health = health_ms(&http, &s.base).await;
    let rss0 = rss_kib();
    let started = Instant::now();

    // 1. Polling sessions that never connect a namespace, and refused handshakes.
    const SESSIONS: usize = 1000;
    let mut opened = Vec::new();
    for chunk in 0..SESSIONS / 50 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (base, http) = (s.base.clone(), http.clone());
            set.spawn(async move { Polling::open_with(http, &base).await.1 });
        }
        while let Some(url) = set.join_next().await {
            opened.push(url.unwrap());
        }
        if chunk % 5 == 0 {
            let ms = health_ms(&http, &s.base).await;
            assert!(ms < 1000.0, "/health took {ms:.0} ms during the session flood");
        }
    }
    let mut worst_health: f64 = 0.0;
    const BAD_HANDSHAKES: usize = 300;
    for i in 0..BAD_HANDSHAKES {
        let auth =
            if i % 2 == 0 { json!({"token": "x.y.z"}) } else { json!({"userRole": "desktop_app", "licenseKey": format!("nope-{i}")}) };
        let err = Polling::connect(&s.base, "/printing-ws", auth).await.err();
        assert!(matches!(err.as_deref(), Some("TOKEN_INVALID" | "LICENSE_INVALID")), "{err:?}");
        if i % 50 == 0 {
            worst_health = worst_health.max(health_ms(&http, &s.base).await);
        }
    }
    let rss_sessions = rss_kib();

    // 2. One socket floods events: bogus names, foreign joins, own joins, pings.
    let cashier = s.token("cashier", Some("co-2"), Some("br-3"));
    let mut p = Polling::connect(&s.base, "/availability", json!({"token": cashier})).await.unwrap();
    const EVENTS: usize = 3000;
    let mut batch = Vec::new();
    for i in 0..EVENTS {
        let (event, data) = match i % 4 {
            0 => ("joinBranch", json!({"branchId": "br-1"})),
            1 => ("joinBranch", json!({"branchId": "br-3"})),
            2 => ("nonsense", json!({"x": i})),
            _ => ("ping", json!({})),
        };
        batch.push(format!("42/availability,{}{}", i + 1, json!([event, data])));
    }
    let t = Instant::now();
    for chunk in batch.chunks(100) {
        p.send(&chunk.join("\u{1e}")).await;
        p.poll().await;
        worst_health = worst_health.max(health_ms(&http, &s.base).await);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        p.poll().await;
        let acks = p.seen.iter().filter(|x| x.starts_with("43/availability,")).count();
        if acks == EVENTS {
            break;
        }
        assert!(Instant::now() < deadline, "only {acks} of {EVENTS} events answered");
    }
    let events_per_s = EVENTS as f64 / t.elapsed().as_secs_f64();
    let foreign_ok =
        p.seen.iter().filter_map(|x| x.strip_prefix("43/availability,")).filter(|x| x.contains("\"room\":\"branch:br-1\"")).count();
    assert_eq!(foreign_ok, 0, "a flood of joins never gets another company's room");
    let rss_end = rss_kib();
    let (_, metrics) = s.req(Method::GET, "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("branchd_socketio_connects_refused_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(refused >= BAD_HANDSHAKES as u64, "every refused handshake is counted in /metrics: {refused}");
    let grow_mb = (rss_end.saturating_sub(rss0)) as f64 / 1024.0;
    println!(
        "floods: {SESSIONS} idle polling sessions + {BAD_HANDSHAKES} refused handshakes + {EVENTS} events from one socket ({events_per_s:.0}/s) in {:.1} s; RSS +{:.1} MB after sessions, +{grow_mb:.1} MB at the end; /health idle {idle_health:.1} ms, worst under flood {worst_health:.1} ms; branchd_socketio_connects_refused_total {refused}",
        started.elapsed().as_secs_f64(),
        (rss_sessions.saturating_sub(rss0)) as f64 / 1024.0,
    );
    assert!(worst_health < 1000.0, "/health stayed answerable: worst {worst_health:.0} ms");
    // The test process holds the server, its clients and 1,300 sessions' worth of buffers.
    assert!(grow_mb < 64.0, "memory grew {grow_mb:.1} MB");
    // The sessions that never connected are closed when their heartbeat lapses.
    let _ = opened;
}
