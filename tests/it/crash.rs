//! The crash matrix of issue #8: `kill -9` at random points under mixed load (orders, status
//! changes, availability bulk updates, print jobs), `CRASH_ROUNDS` times (default 10 here;
//! docs/RELIABILITY.md records runs with 100). After each restart every acknowledged write is
//! present and the print queue matches its rows; at the end `PRAGMA integrity_check` is ok.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{ServerProcess, cli};
use serde_json::{Value, json};

/// What the server acknowledged, so must be found after any crash.
#[derive(Default, Clone)]
struct Acked {
    orders: Vec<String>,
    /// Orders whose move to `confirmed` was acknowledged.
    confirmed: Vec<String>,
    /// The highest stock value acknowledged for the bulk item.
    stock: i64,
    jobs: Vec<String>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn load(
    base: String,
    token: String,
    printer: String,
    round: usize,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let orders = {
        let (http, base, token, acked, stop) = (http.clone(), base.clone(), token.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Relaxed) {
                    break;
                }
                let mut body = common::order_body("br-c");
                let id = format!("r{round}-o{i}");
                body["id"] = json!(id);
                let Ok(r) = http.post(format!("{base}/api/orders")).bearer_auth(&token).json(&body).send().await else { break };
                if r.status() == 201 {
                    acked.lock().unwrap().orders.push(id.clone());
                    let r = http
                        .patch(format!("{base}/api/orders/{id}/status"))
                        .bearer_auth(&token)
                        .json(&json!({"status": "confirmed"}))
                        .send()
                        .await;
                    if r.is_ok_and(|r| r.status() == 200) {
                        acked.lock().unwrap().confirmed.push(id);
                    }
                }
            }
        })
    };
    let bulk = {
        let (http, base, token, acked, stop) = (http.clone(), base.clone(), token.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                if stop.load(Relaxed) {
                    break;
                }
                let stock = acked.lock().unwrap().stock + 1;
                let items: Vec<Value> =
                    (0..20).map(|k| json!({"itemType": "product", "itemId": format!("p{k}"), "available": true, "stock": stock})).collect();
                let Ok(r) =
                    http.post(format!("{base}/api/availability/br-c/bulk")).bearer_auth(&token).json(&json!({"items": items})).send().await
                else {
                    break;
                };
                if r.status() == 200 {
                    let mut a = acked.lock().unwrap();
                    a.stock = a.stock.max(stock);
                }
            }
        })
    };
    let jobs = tokio::spawn(async move {
        loop {
            if stop.load(Relaxed) {
                break;
            }
            let body = json!({"printerId": printer, "kind": "raw", "data": "SGVsbG8K"});
            let Ok(r) = http.post(format!("{base}/api/print-jobs")).bearer_auth(&token).json(&body).send().await else { break };
            if r.status() == 202
                && let Ok(v) = r.json::<Value>().await
            {
                acked.lock().unwrap().jobs.push(v["id"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let _ = tokio::join!(orders, bulk, jobs);
}

async fn check(base: &str, token: &str, acked: &Acked) {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http.get(format!("{base}{path}")).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for id in &acked.orders {
        assert_eq!(get(format!("/api/orders/{id}")).await.0, 200, "acknowledged order {id} lost");
    }
    for id in &acked.confirmed {
        let (_, o) = get(format!("/api/orders/{id}")).await;
        assert_eq!(o["status"], "confirmed", "acknowledged status change of {id} lost");
    }
    let (_, avail) = get("/api/availability/br-c".into()).await;
    for item in avail["items"].as_array().unwrap() {
        assert!(item["stock"].as_i64().unwrap() >= acked.stock, "acknowledged stock {} lost: {item}", acked.stock);
    }
    if acked.stock > 0 {
        assert_eq!(avail["items"].as_array().unwrap().len(), 20, "a bulk update is all or nothing");
        let stocks: std::collections::HashSet<i64> =
            avail["items"].as_array().unwrap().iter().map(|i| i["stock"].as_i64().unwrap()).collect();
        assert_eq!(stocks.len(), 1, "a bulk update is all or nothing: {stocks:?}");
    }
    for id in &acked.jobs {
        let (code, job) = get(format!("/api/print-jobs/{id}")).await;
        assert_eq!(code, 200, "acknowledged print job {id} lost");
        let status = job["status"].as_str().unwrap_or_default();
        assert!(["queued", "printing", "printed"].contains(&status), "job {id} in state {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_under_mixed_load_loses_nothing_acknowledged() {
    let rounds: usize = std::env::var("CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("crash matrix: {rounds} rounds, seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-c", "--name", "C"]);
    cli(d, &["branch", "add", "br-c", "--company", "co-c", "--name", "C"]);
    let token = common::token_for_secret("branch_manager", Some("co-c"), Some("br-c"));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let printer = {
        let mut server = ServerProcess::start(d, &[]);
        let r = reqwest::Client::new()
            .post(format!("{}/api/printers", server.base))
            .bearer_auth(&token)
            .json(&json!({"name": "Pass", "branchId": "br-c", "role": "label", "connection": {"type": "virtual"}}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(server.stop().code(), Some(0));
        v["id"].as_str().unwrap().to_string()
    };
    let started = Instant::now();
    for round in 0..rounds {
        let mut server = ServerProcess::start(d, &[]);
        let snapshot = acked.lock().unwrap().clone();
        check(&server.base, &token, &snapshot).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = tokio::spawn(load(server.base.clone(), token.clone(), printer.clone(), round, acked.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(50 + rng.next(700))).await;
        let _ = server.child.kill(); // SIGKILL mid-load
        let _ = server.child.wait();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = load.await;
    }
    let mut server = ServerProcess::start(d, &[]);
    let a = acked.lock().unwrap().clone();
    check(&server.base, &token, &a).await;
    eprintln!(
        "crash matrix: {rounds} kills in {:?}; acknowledged and found: {} orders, {} status changes, stock {}, {} print jobs",
        started.elapsed(),
        a.orders.len(),
        a.confirmed.len(),
        a.stock,
        a.jobs.len()
    );
    assert!(a.orders.len() >= rounds, "the load did run");
    assert_eq!(server.stop().code(), Some(0));
    let conn = rusqlite::Connection::open(d.join("branchd.db")).unwrap();
    let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(result, "ok");
}
