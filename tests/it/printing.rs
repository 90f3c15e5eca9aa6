//! The print path end to end: orders routed to printers, a real TCP ESC/POS emulator and a
//! pseudo-terminal serial printer, the durable queue through power loss, paper-out, broken
//! connections, restarts and expiry (SPEC §3 printing, §6 guarantees).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use branchd::printing::drivers::Timeouts;
use common::emulator::{Emulator, Paper, Printed, SerialEmulator, contains, decode, lines};
use common::{TestServer, eventually, eventually_every, test_config};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

fn fast(c: &mut branchd::Config) {
    c.printer_timeouts = Timeouts {
        connect: Duration::from_millis(500),
        write: Duration::from_secs(2),
        read: Duration::from_millis(500),
        confirm: Duration::from_millis(1500),
        poll: Duration::from_millis(200),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        ..Timeouts::default()
    };
    c.print_timeout = Duration::from_secs(5);
}

async fn server() -> TestServer {
    TestServer::start_with(fast).await
}

fn manager(s: &TestServer) -> String {
    s.token("branch_manager", Some("co-1"), Some("br-1"))
}

async fn add_printer(s: &TestServer, name: &str, role: &str, stations: &[&str], connection: Value) -> String {
    add_printer_of(s, name, role, stations, connection, "generic").await
}

/// `profile`: "generic" (polled, a connection per job) or an Epson TM (one connection held,
/// status pushed).
async fn add_printer_of(s: &TestServer, name: &str, role: &str, stations: &[&str], connection: Value, profile: &str) -> String {
    let body = json!({"branchId": "br-1", "name": name, "role": role, "stations": stations, "connection": connection, "profile": profile});
    let (st, p) = s.post("/api/printers", &manager(s), body).await;
    assert_eq!(st, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

fn net(emu: &Emulator) -> Value {
    json!({"type": "network", "host": "127.0.0.1", "port": emu.addr.port()})
}

async fn order(s: &TestServer, items: Value) -> Value {
    let (st, o) = s.post("/api/orders", &manager(s), json!({"branchId": "br-1", "type": "dine_in", "items": items})).await;
    assert_eq!(st, 201, "{o}");
    o
}

async fn jobs(s: &TestServer, query: &str) -> Vec<Value> {
    let (_, list) = s.get(&format!("/api/print-jobs{query}"), &manager(s)).await;
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Waits (bounded) until `check` holds for the job list of `query`.
async fn until(s: &TestServer, query: &str, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    eventually(what, WAIT, || async {
        let js = jobs(s, query).await;
        if check(&js) { Ok(js) } else { Err(format!("{js:?}")) }
    })
    .await
}

async fn printer_status(s: &TestServer, id: &str) -> String {
    let (_, st) = s.get(&format!("/api/printers/{id}/status"), &manager(s)).await;
    st["status"].as_str().unwrap_or_default().to_string()
}

async fn until_status(s: &TestServer, id: &str, want: &str) {
    eventually(&format!("printer {id} to be {want}"), WAIT, || async { (printer_status(s, id).await == want).then_some(()) }).await
}

async fn events_named(s: &TestServer, name: &'static str) -> Vec<Value> {
    let c = common::sql(s);
    let mut stmt = c.prepare("SELECT data FROM events WHERE name = ?1 ORDER BY seq").unwrap();
    let rows = stmt.query_map([name], |r| r.get::<_, String>(0)).unwrap();
    rows.filter_map(Result::ok).filter_map(|d| serde_json::from_str(&d).ok()).collect()
}

fn all_printed(n: usize) -> impl Fn(&[Value]) -> bool {
    move |js| js.len() == n && js.iter().all(|j| j["status"] == "printed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_order_prints_one_ticket_per_station_and_a_receipt() {
    let s = server().await;
    let (grill, bar, front) = (Emulator::start(), Emulator::start(), Emulator::start());
    add_printer(&s, "Grill", "kitchen", &["grill"], net(&grill)).await;
    add_printer(&s, "Bar", "kitchen", &["bar"], net(&bar)).await;
    add_printer(&s, "Front", "receipt", &[], net(&front)).await;
    let o = order(
        &s,
        json!([
            {"name": "Mixed grill", "quantity": 2, "unitPrice": 1250, "station": "grill", "notes": "well done"},
            {"name": "Mint lemonade", "quantity": 1, "unitPrice": 450, "station": "bar"},
            {"name": "Kunafa", "quantity": 1, "unitPrice": 600, "station": "dessert"}
        ]),
    )
    .await;
    until(&s, "", "three printed jobs", all_printed(3)).await;
    let g = grill.wait_jobs(1, WAIT);
    let b = bar.wait_jobs(1, WAIT);
    let r = front.wait_jobs(1, WAIT);
    assert_eq!((g.len(), b.len(), r.len()), (1, 1, 1), "each printed exactly once");
    assert!(contains(&g[0], "Mixed grill") && contains(&g[0], "well done"));
    assert!(!contains(&g[0], "Mint lemonade"), "the grill ticket has only grill items");
    assert!(contains(&b[0], "Mint lemonade") && !contains(&b[0], "Mixed grill"));
    assert!(contains(&r[0], "Mixed grill") && contains(&r[0], "Kunafa") && contains(&r[0], "35.50"), "receipt with total");
    assert!(r[0].windows(5).any(|w| w == [0x1b, 0x70, 0x00, 0x19, 0xfa]), "receipt kicks the cash drawer");
    let number = o["number"].to_string();
    assert!(contains(&g[0], &number));
    // What the receipt printer did, in order: text lines, a QR code with the order id, the
    // cut, then the cash drawer.
    let receipt = decode(&r[0]);
    let text = lines(&r[0]);
    assert!(text.iter().any(|l| l.contains("Mixed grill")), "{text:?}");
    assert!(text.iter().any(|l| l.contains("35.50")), "{text:?}");
    assert!(receipt.contains(&Printed::Qr(o["id"].as_str().unwrap().to_string())), "{receipt:?}");
    let cut = receipt.iter().position(|p| *p == Printed::Cut).expect("a cut");
    let drawer = receipt.iter().position(|p| *p == Printed::Drawer).expect("a drawer kick");
    assert!(cut < drawer, "{receipt:?}");
    let grill_text = lines(&g[0]);
    assert!(grill_text.iter().any(|l| l.contains("well done")), "{grill_text:?}");
    assert!(!decode(&g[0]).contains(&Printed::Drawer), "kitchen tickets never open the drawer");
    // One alert, sent to the printing screens and the order screens (SPEC §4).
    let alerts = events_named(&s, "printAlert").await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["id"], alerts[1]["id"], "{alerts:?}");
    assert_eq!(alerts[0]["type"], "no_printer_for_station");
    assert_eq!(alerts[0]["station"], "dessert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_that_is_off_prints_the_job_once_when_it_returns() {
    let s = server().await;
    let emu = Emulator::start();
    let pid = add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    emu.power_off();
    order(&s, json!([{"name": "Falafel plate", "quantity": 1, "unitPrice": 900}])).await;
    until(&s, "", "a failed attempt", |js| js.len() == 1 && js[0]["lastError"].is_string()).await;
    until_status(&s, &pid, "offline").await;
    assert_eq!(jobs(&s, "?status=queued").await.len(), 1, "kept in the queue");
    emu.power_on();
    until(&s, "", "printed", all_printed(1)).await;
    let printed = emu.wait_jobs(1, WAIT);
    assert_eq!(printed.len(), 1);
    assert!(contains(&printed[0], "Falafel plate"));
    assert!(!contains(&printed[0], "DUPLICATE"), "nothing reached the printer before: a normal copy");
    until_status(&s, &pid, "online").await;
    let updates = events_named(&s, "printerStatusUpdate").await;
    assert!(updates.iter().any(|u| u["status"] == "offline") && updates.iter().any(|u| u["status"] == "online"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_out_holds_the_job_until_paper_is_loaded() {
    let s = server().await;
    let emu = Emulator::start();
    emu.set_paper(Paper::Out);
    let pid = add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    order(&s, json!([{"name": "Hummus", "quantity": 1, "unitPrice": 500}])).await;
    until_status(&s, &pid, "paper_out").await;
    until(&s, "", "a held job", |js| js.len() == 1 && js[0]["lastError"].as_str().is_some_and(|e| e.contains("paper"))).await;
    assert!(emu.jobs().is_empty(), "nothing sent into a printer without paper");
    emu.set_paper(Paper::Ok);
    until(&s, "", "printed", all_printed(1)).await;
    assert_eq!(emu.wait_jobs(1, WAIT).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_broken_mid_job_is_reprinted_with_a_banner() {
    broken_mid_job("generic").await;
    broken_mid_job("epson-tm-m30").await;
}

async fn broken_mid_job(profile: &str) {
    let s = server().await;
    let emu = Emulator::start();
    emu.cut_after(40);
    add_printer_of(&s, "Kitchen", "kitchen", &[], net(&emu), profile).await;
    order(&s, json!([{"name": "Lentil soup", "quantity": 3, "unitPrice": 400}])).await;
    let js = until(&s, "", "printed", all_printed(1)).await;
    assert_eq!(js[0]["attempts"], 2);
    assert_eq!(js[0]["uncertain"], true);
    let printed = emu.wait_jobs(1, WAIT);
    assert_eq!(printed.len(), 1, "the broken first copy never completed");
    assert!(contains(&printed[0], "POSSIBLE DUPLICATE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_job_is_reprinted_with_a_banner_not_silently() {
    unconfirmed("generic").await;
    unconfirmed("epson-tm-m30").await;
}

async fn unconfirmed(profile: &str) {
    let s = server().await;
    let emu = Emulator::start();
    emu.set_mute(true);
    add_printer_of(&s, "Kitchen", "kitchen", &[], net(&emu), profile).await;
    order(&s, json!([{"name": "Tabbouleh", "quantity": 1, "unitPrice": 450}])).await;
    until(&s, "", "an unconfirmed attempt", |js| js.len() == 1 && js[0]["uncertain"] == true).await;
    emu.set_mute(false);
    until(&s, "", "printed", all_printed(1)).await;
    let printed = emu.wait_jobs(2, WAIT);
    assert!(!contains(&printed[0], "DUPLICATE"));
    assert!(contains(&printed[printed.len() - 1], "POSSIBLE DUPLICATE"), "the copy after an uncertain delivery says so");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_survive_a_restart_and_interrupted_ones_print_as_possible_duplicates() {
    let emu = Emulator::start();
    emu.power_off();
    let s = server().await;
    add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    add_printer(&s, "Front", "receipt", &[], net(&emu)).await;
    order(&s, json!([{"name": "Shish tawook", "quantity": 1, "unitPrice": 1100}])).await;
    assert_eq!(jobs(&s, "").await.len(), 2);
    let dir = s.stop().await;
    // Simulate a power cut in the middle of printing the receipt.
    let db = rusqlite::Connection::open(dir.path().join("branchd.db")).unwrap();
    db.execute("UPDATE print_jobs SET status = 'printing' WHERE kind = 'receipt'", []).unwrap();
    drop(db);
    let mut config = test_config(dir.path());
    fast(&mut config);
    let s = TestServer::start_in(dir, config).await;
    emu.power_on();
    until(&s, "", "both printed", all_printed(2)).await;
    let printed = emu.wait_jobs(2, WAIT);
    assert_eq!(printed.len(), 2);
    let receipt = printed.iter().find(|j| contains(j, "11.00")).expect("the receipt");
    assert!(contains(receipt, "POSSIBLE DUPLICATE"), "interrupted mid-print: the copy is marked");
    let ticket = printed.iter().find(|j| !contains(j, "11.00")).expect("the ticket");
    assert!(!contains(ticket, "DUPLICATE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_kitchen_ticket_raises_an_alert_instead_of_printing_late() {
    let s = server().await;
    let emu = Emulator::start();
    emu.power_off();
    add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    order(&s, json!([{"name": "Mansaf", "quantity": 1, "unitPrice": 1800}])).await;
    common::sql(&s).execute("UPDATE print_jobs SET expires_at_ms = 1", []).unwrap();
    emu.power_on();
    let js = until(&s, "", "expired", |js| js.len() == 1 && js[0]["status"] == "expired").await;
    let alerts = events_named(&s, "printAlert").await;
    assert!(alerts.iter().any(|a| a["type"] == "job_expired" && a["jobId"] == js[0]["id"]), "{alerts:?}");
    assert!(emu.jobs().is_empty(), "not printed late");

    // Staff reprint it explicitly: it prints, marked REPRINT.
    let (st, r) = s.post(&format!("/api/print-jobs/{}/reprint", js[0]["id"].as_str().unwrap()), &manager(&s), json!({})).await;
    assert_eq!(st, 202, "{r}");
    until(&s, "?status=printed", "the reprint", |js| js.len() == 1).await;
    let printed = emu.wait_jobs(1, WAIT);
    assert!(contains(&printed[0], "REPRINT") && contains(&printed[0], "Mansaf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_jobs_api_validates_and_prints_raw_jobs() {
    let s = server().await;
    let emu = Emulator::start();
    let pid = add_printer(&s, "Label", "label", &[], net(&emu)).await;
    let m = manager(&s);
    let raw = base64_encode(b"HELLO RAW\n");
    let (st, r) = s.post("/api/print-jobs", &m, json!({"printerId": pid, "kind": "raw", "data": raw})).await;
    assert_eq!((st, r["status"].as_str()), (202, Some("queued")));
    until(&s, "", "printed", all_printed(1)).await;
    assert!(contains(&emu.wait_jobs(1, WAIT)[0], "HELLO RAW"));
    for (body, code) in [
        (json!({"printerId": pid, "kind": "poster"}), 400),
        (json!({"printerId": pid, "kind": "raw"}), 400),
        (json!({"printerId": pid, "kind": "raw", "data": "%%%"}), 400),
        (json!({"printerId": pid, "kind": "receipt"}), 400),
        (json!({"printerId": pid, "kind": "receipt", "orderId": "nope"}), 404),
        (json!({"printerId": "nope", "kind": "raw", "data": raw}), 404),
    ] {
        let (st, e) = s.post("/api/print-jobs", &m, body.clone()).await;
        assert_eq!(st, code, "{body} → {e}");
    }
    let other = s.token("company_owner", Some("co-2"), None);
    let (st, _) = s.post("/api/print-jobs", &other, json!({"printerId": pid, "kind": "raw", "data": raw})).await;
    assert_eq!(st, 404, "another company's printer does not exist for you");
    assert_eq!(jobs(&s, "").await.len(), 1, "refused requests queued nothing");
    let (st, _) = s.req(Method::GET, "/api/print-jobs?status=lost", Some(&m), None).await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_history_pages_newest_first_on_request() {
    let s = server().await;
    let pid = add_printer(&s, "Virtual", "receipt", &[], json!({"type": "virtual"})).await;
    let m = manager(&s);
    let mut ids = Vec::new();
    for i in 0..5 {
        let data = base64_encode(format!("JOB {i}\n").as_bytes());
        let (st, r) = s.post("/api/print-jobs", &m, json!({"printerId": pid, "kind": "raw", "data": data})).await;
        assert_eq!(st, 202, "{r}");
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    let page_ids = |v: &Value| v["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (_, first) = s.get("/api/print-jobs?order=newest&limit=2", &m).await;
    assert_eq!(page_ids(&first), [ids[4].clone(), ids[3].clone()]);
    let cursor = first["nextCursor"].as_str().expect("more pages");
    let (_, second) = s.get(&format!("/api/print-jobs?order=newest&limit=2&cursor={cursor}"), &m).await;
    assert_eq!(page_ids(&second), [ids[2].clone(), ids[1].clone()]);
    let cursor = second["nextCursor"].as_str().expect("one more page");
    let (_, last) = s.get(&format!("/api/print-jobs?order=newest&limit=2&cursor={cursor}"), &m).await;
    assert_eq!(page_ids(&last), [ids[0].clone()]);
    assert!(last.get("nextCursor").is_none_or(Value::is_null), "{last}");
    let (_, oldest) = s.get("/api/print-jobs?limit=2", &m).await;
    assert_eq!(page_ids(&oldest), [ids[0].clone(), ids[1].clone()], "oldest first stays the default");
    let (st, e) = s.req(Method::GET, "/api/print-jobs?order=sideways", Some(&m), None).await;
    assert_eq!(st, 400, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_prints_on_local_printers_report_success_and_failure() {
    let s = server().await;
    let emu = Emulator::start();
    let pid = add_printer(&s, "Front", "receipt", &[], net(&emu)).await;
    let (st, r) = s.post(&format!("/api/printers/{pid}/test"), &manager(&s), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(r["success"], true, "{r}");
    assert!(r["correlationId"].is_string() && r["durationMs"].is_u64());
    assert!(contains(&emu.wait_jobs(1, WAIT)[0], "Front"));
    emu.power_off();
    let (st, r) = s.post(&format!("/api/printers/{pid}/test"), &manager(&s), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!((r["success"].as_bool(), r["error"]["code"].as_str()), (Some(false), Some("PRINTER_ERROR")), "{r}");
    emu.power_on();
    // The failed test page is not printed later.
    until_status(&s, &pid, "online").await;
    assert_eq!(emu.jobs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_printers_are_polled_and_changes_broadcast() {
    let s = server().await;
    let emu = Emulator::start();
    let pid = add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    until_status(&s, &pid, "online").await;
    emu.set_cover_open(true);
    until_status(&s, &pid, "cover_open").await;
    emu.set_paper(Paper::Low);
    emu.set_cover_open(false);
    until_status(&s, &pid, "paper_low").await;
    let (_, st) = s.get(&format!("/api/printers/{pid}/status"), &manager(&s)).await;
    assert!(st["detail"].as_str().is_some_and(|d| d.contains("low")), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_printer_on_a_pseudo_terminal_prints() {
    let s = server().await;
    let emu = SerialEmulator::start();
    add_printer(&s, "Serial kitchen", "kitchen", &[], json!({"type": "serial", "path": emu.path, "baudRate": 19200})).await;
    order(&s, json!([{"name": "Fattoush", "quantity": 1, "unitPrice": 650}])).await;
    until(&s, "", "printed", all_printed(1)).await;
    assert!(contains(&emu.wait_jobs(1, WAIT)[0], "Fattoush"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_printers_keep_bytes_and_a_preview() {
    let s = server().await;
    let pid = add_printer(&s, "Virtual", "receipt", &[], json!({"type": "virtual"})).await;
    order(&s, json!([{"name": "Manakish", "quantity": 2, "unitPrice": 300}])).await;
    let js = until(&s, "", "printed", all_printed(1)).await;
    let id = js[0]["id"].as_str().unwrap();
    let dir = s.data_dir().join("virtual").join(&pid);
    let preview = std::fs::read_to_string(dir.join(format!("{id}.txt"))).unwrap();
    assert!(preview.contains("Manakish") && preview.contains("6.00"), "{preview}");
    assert!(std::fs::metadata(dir.join(format!("{id}.bin"))).unwrap().len() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_orders_print_in_order_exactly_once() {
    let s = Arc::new(server().await);
    let emu = Emulator::start();
    add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    for i in 0..15 {
        order(&s, json!([{"name": format!("Dish {i:02}"), "quantity": 1, "unitPrice": 100}])).await;
    }
    until(&s, "", "all printed", all_printed(15)).await;
    let printed = emu.wait_jobs(15, WAIT);
    assert_eq!(printed.len(), 15);
    for (i, job) in printed.iter().enumerate() {
        assert!(contains(job, &format!("Dish {i:02}")), "FIFO order: job {i}");
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_a_printer_by_scan_and_adding_it_is_one_call() {
    let s = server().await;
    let emu = Emulator::start();
    let m = manager(&s);
    let scan = json!({"mdns": false, "scan": {"hosts": ["127.0.0.1"], "port": emu.addr.port()}});
    let (st, r) = s.post("/api/printers/discover", &m, scan.clone()).await;
    assert_eq!(st, 200, "{r}");
    let found: Vec<&Value> = r["candidates"].as_array().unwrap().iter().filter(|c| c["source"] == "scan").collect();
    assert_eq!(found.len(), 1, "{r}");
    assert_eq!(found[0]["alreadyAdded"], false);
    let mut body = json!({"branchId": "br-1", "name": "Found", "role": "kitchen"});
    body["connection"] = found[0]["connection"].clone();
    let (st, _) = s.post("/api/printers", &m, body).await;
    assert_eq!(st, 201);
    let (_, again) = s.post("/api/printers/discover", &m, scan).await;
    assert!(again["candidates"].as_array().unwrap().iter().any(|c| c["source"] == "scan" && c["alreadyAdded"] == true));

    // A port that is open but not a printer is not a candidate.
    let not_printer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = not_printer.local_addr().unwrap().port();
    let (_, none) = s.post("/api/printers/discover", &m, json!({"mdns": false, "scan": {"hosts": ["127.0.0.1"], "port": port}})).await;
    assert!(none["candidates"].as_array().unwrap().iter().all(|c| c["source"] != "scan"), "{none}");

    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let (st, _) = s.post("/api/printers/discover", &cashier, json!({"mdns": false})).await;
    assert_eq!(st, 403);
    let (st, _) = s.post("/api/printers/discover", &m, json!({"mdns": false, "scan": {"cidr": "10.0.0.0/8"}})).await;
    assert_eq!(st, 400, "no scans wider than a /24");
}

async fn add_printer_at(base: &str, token: &str, emu: &Emulator) {
    let body = json!({"branchId": "br-1", "name": "Kitchen", "role": "kitchen", "connection": net(emu)});
    let r = reqwest::Client::new().post(format!("{base}/api/printers")).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
}

async fn jobs_at(base: &str, token: &str) -> Vec<Value> {
    let r = reqwest::Client::new().get(format!("{base}/api/print-jobs")).bearer_auth(token).send().await.unwrap();
    r.json::<Value>().await.unwrap()["items"].as_array().cloned().unwrap_or_default()
}

async fn until_all_printed(base: &str, token: &str, n: usize) {
    eventually_every(&format!("{n} jobs printed"), WAIT, Duration::from_millis(50), || async {
        let js = jobs_at(base, token).await;
        if js.len() == n && js.iter().all(|j| j["status"] == "printed") { Ok(()) } else { Err(format!("{js:?}")) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_with_jobs_queued_loses_nothing_and_doubles_nothing_unmarked() {
    use common::process::{ServerProcess, cli};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-1", "--name", "One"]);
    cli(d, &["branch", "add", "br-1", "--company", "co-1", "--name", "North"]);
    let token = cli(d, &["token", "issue", "--sub", "m", "--role", "branch_manager", "--company", "co-1", "--branch", "br-1"]);
    let http = reqwest::Client::new();

    // 1. The printer is off: five orders are acknowledged, then the power goes (SIGKILL).
    let emu = Emulator::start();
    emu.power_off();
    let server = ServerProcess::start(d, &[]);
    add_printer_at(&server.base, &token, &emu).await;
    for i in 0..5 {
        let body =
            json!({"branchId": "br-1", "type": "dine_in", "items": [{"name": format!("Dish {i}"), "quantity": 1, "unitPrice": 100}]});
        let r = http.post(format!("{}/api/orders", server.base)).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    server.kill_9();
    emu.power_on();
    let server = ServerProcess::start(d, &[]);
    until_all_printed(&server.base, &token, 5).await;
    let printed = emu.wait_jobs(5, WAIT);
    assert_eq!(printed.len(), 5, "every ticket once");
    for i in 0..5 {
        assert_eq!(printed.iter().filter(|j| contains(j, &format!("Dish {i}"))).count(), 1);
    }
    assert!(printed.iter().all(|j| !contains(j, "DUPLICATE")), "nothing had reached the printer: no banner");

    // 2. The power goes while a ticket is being printed (sent, not yet confirmed).
    emu.set_mute(true);
    let body = json!({"branchId": "br-1", "type": "dine_in", "items": [{"name": "Mid-print", "quantity": 1, "unitPrice": 100}]});
    let r = http.post(format!("{}/api/orders", server.base)).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    eventually_every("the job to start printing", WAIT, Duration::from_millis(10), || async {
        jobs_at(&server.base, &token).await.iter().any(|j| j["status"] == "printing").then_some(())
    })
    .await;
    emu.wait_jobs(6, WAIT); // the bytes reached the printer
    server.kill_9();
    emu.set_mute(false);
    let server = ServerProcess::start(d, &[]);
    until_all_printed(&server.base, &token, 6).await;
    let printed = emu.wait_jobs(7, WAIT);
    let copies: Vec<&Vec<u8>> = printed.iter().filter(|j| contains(j, "Mid-print")).collect();
    assert_eq!(copies.len(), 2, "printed again after the power cut");
    assert!(!contains(copies[0], "DUPLICATE") && contains(copies[1], "POSSIBLE DUPLICATE"), "the second copy says so");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_that_stops_answering_holds_its_jobs_instead_of_printing_blind() {
    let s = server().await;
    let emu = Emulator::start();
    let pid = add_printer(&s, "Kitchen", "kitchen", &[], net(&emu)).await;
    order(&s, json!([{"name": "Mansaf", "quantity": 1, "unitPrice": 1800}])).await;
    until(&s, "", "the first ticket", all_printed(1)).await;
    emu.wait_jobs(1, WAIT);

    // The firmware hangs: the port still accepts connections, nothing answers. This printer
    // answered before, so it is not mistaken for a model without status.
    emu.set_hung(true);
    order(&s, json!([{"name": "Kunafa", "quantity": 2, "unitPrice": 500}])).await;
    let held = until(&s, "?status=queued", "the ticket held", |js| {
        js.len() == 1 && js[0]["lastError"].as_str().is_some_and(|e| e.contains("stopped answering"))
    })
    .await;
    assert_eq!(held[0]["uncertain"], false, "nothing of it was sent");
    until_status(&s, &pid, "unknown").await;
    assert_eq!(emu.jobs().len(), 1);

    emu.set_hung(false);
    until(&s, "", "both printed", all_printed(2)).await;
    let printed = emu.wait_jobs(2, WAIT);
    assert!(contains(&printed[1], "Kunafa") && !contains(&printed[1], "DUPLICATE"), "printed once, no banner");
    until_status(&s, &pid, "online").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(emu.jobs().len(), 2, "no second copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printers_that_cannot_confirm_print_each_ticket_once() {
    let s = server().await;
    // A clone without a status channel, and a Star printer (no ESC/POS status at all; its
    // ASB says how it is, not that a job printed).
    let (dumb, star) = (Emulator::start(), Emulator::start_star());
    dumb.set_dumb(true);
    add_printer(&s, "Dumb clone", "kitchen", &["grill"], net(&dumb)).await;
    let body = json!({"branchId": "br-1", "name": "Star", "role": "kitchen", "stations": ["bar"], "profile": "star-tsp650", "connection": net(&star)});
    let (st, _) = s.post("/api/printers", &manager(&s), body).await;
    assert_eq!(st, 201);
    for i in 0..3 {
        order(&s, json!([{"name": format!("Grill {i}"), "quantity": 1, "unitPrice": 100, "station": "grill"}, {"name": format!("Bar {i}"), "quantity": 1, "unitPrice": 100, "station": "bar"}])).await;
    }
    let js = until(&s, "", "all printed", all_printed(6)).await;
    assert!(js.iter().all(|j| j["lastError"].as_str().is_some_and(|e| e.contains("cannot confirm"))), "said honestly: {js:?}");
    let (d, t) = (dumb.wait_jobs(3, WAIT), star.wait_jobs(3, WAIT));
    // Bounded wait for any (wrong) second copies, then count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((dumb.jobs().len(), star.jobs().len()), (3, 3), "each ticket once, no retries");
    assert!(d.iter().all(|j| !contains(j, "DUPLICATE")) && t.iter().all(|j| !contains(j, "DUPLICATE")));
    assert!(!t.iter().any(|j| j.windows(3).any(|w| w == [0x1d, 0x72, 0x01])), "no ESC/POS status request sent to a Star printer");
}
