//! What a slow Socket.IO client gets (`realtime::Tuning::socket_buffer`): everything, late,
//! while nobody else waits for it; a client that stops answering is cut off by the heartbeat
//! and, on reconnect, `catchUp` from its last `eventId` returns exactly what it missed; one
//! that falls more than its queue behind has the overflow counted in `/metrics`. The clients
//! speak Engine.IO v4 long-polling by hand (reqwest), so one can simply stop polling, like a
//! tablet that went to sleep in the middle of a rush.

use crate::common;

use std::time::{Duration, Instant};

use branchd::realtime::Tuning;
use common::{TestServer, eventually_every, order_body};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const ORDERS: usize = 30;

/// One Engine.IO long-polling session on `/orders`.
struct Polling {
    http: reqwest::Client,
    url: String,
}

impl Polling {
    async fn connect(base: &str, token: &str) -> Polling {
        let http = reqwest::Client::new();
        let open = http.get(format!("{base}/socket.io/?EIO=4&transport=polling")).send().await.unwrap().text().await.unwrap();
        let handshake: Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = handshake["sid"].as_str().unwrap();
        let p = Polling { http, url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}") };
        let auth = json!({"token": token, "userRole": "web_client"});
        assert_eq!(p.send(&format!("40/orders,{auth}")).await, 200);
        let deadline = Instant::now() + WAIT;
        loop {
            let packets = p.poll().await.expect("the session is open");
            if packets.iter().any(|x| x.starts_with("40/orders,")) {
                return p;
            }
            assert!(Instant::now() < deadline, "no connect ack");
        }
    }

    async fn send(&self, packet: &str) -> u16 {
        self.http.post(&self.url).body(packet.to_string()).send().await.unwrap().status().as_u16()
    }

    /// One poll: the packets waiting (answering pings), or the HTTP status when the
    /// session is gone.
    async fn poll(&self) -> Result<Vec<String>, u16> {
        let res = self.http.get(&self.url).send().await.unwrap();
        let status = res.status().as_u16();
        if status != 200 {
            return Err(status);
        }
        let packets: Vec<String> = res.text().await.unwrap().split('\u{1e}').map(str::to_string).collect();
        if packets.iter().any(|p| p == "2") {
            self.send("3").await;
        }
        if packets.iter().any(|p| p == "1") {
            return Err(410); // the server closed the session
        }
        Ok(packets)
    }
}

/// `(name, data)` of the `42/orders,[name, data]` packets.
fn events(packets: &[String]) -> Vec<(String, Value)> {
    packets
        .iter()
        .filter_map(|p| p.strip_prefix("42/orders,"))
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .map(|v| (v[0].as_str().unwrap_or_default().to_string(), v[1].clone()))
        .collect()
}

fn new_order_ids(evs: &[(String, Value)]) -> Vec<String> {
    evs.iter().filter(|(n, _)| n == "newOrder").map(|(_, d)| d["id"].as_str().unwrap().to_string()).collect()
}

async fn orders(s: &TestServer, token: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (st, o) = s.post("/api/orders", token, order_body("br-1")).await;
        assert_eq!(st, 201);
        ids.push(o["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Polls `p` (answering pings) until `n` new orders arrived; every event seen, in order.
async fn read_orders(p: &Polling, n: usize) -> Vec<(String, Value)> {
    let (mut got, deadline) = (Vec::new(), Instant::now() + WAIT);
    while new_order_ids(&got).len() < n {
        got.extend(events(&p.poll().await.expect("the session stays open")));
        assert!(Instant::now() < deadline, "only {} of {n} orders arrived", new_order_ids(&got).len());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_gets_everything_late_a_dead_one_is_cut_off_and_catches_up() {
    let s = TestServer::start_with(|c| {
        // Room for the rush and the pings of a slow rush on a busy machine (30 orders plus a ping
        // every 300 ms while the slow client does not read); overflow is the other test's.
        c.realtime = Tuning { ping_interval: Duration::from_millis(300), ping_timeout: Duration::from_secs(4), socket_buffer: 256 };
    })
    .await;
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let fast = Polling::connect(&s.base, &cashier).await;
    let slow = Polling::connect(&s.base, &cashier).await;
    let dead = Polling::connect(&s.base, &cashier).await;

    // A rush while the slow client does not read: the fast one gets every order at once.
    let reader = tokio::spawn(async move { (read_orders(&fast, ORDERS).await, fast) });
    let ids = orders(&s, &cashier, ORDERS).await;
    let (fast_got, fast) = reader.await.unwrap();
    assert_eq!(new_order_ids(&fast_got), ids, "the fast client got every order, in order, while another lagged");

    // The slow client reads again (within the heartbeat): everything is there, in order.
    let slow_got = read_orders(&slow, ORDERS).await;
    assert_eq!(new_order_ids(&slow_got), ids, "late, but nothing missing");

    // The dead client never answered the heartbeat: its session is gone.
    tokio::time::sleep(Duration::from_millis(300 + 4000 + 300)).await;
    let mut dead_got = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        match dead.poll().await {
            Ok(packets) => dead_got.extend(events(&packets)),
            Err(status) => {
                assert!(status == 400 || status == 410, "a closed session answers {status}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server never cut the dead client off");
    }
    // More orders meanwhile; the client comes back and catches up from the last event it saw.
    let later = orders(&s, &cashier, 5).await;
    let since = dead_got.iter().filter_map(|(_, d)| d["eventId"].as_str()).next_back().unwrap_or("0").to_string();
    let seen = new_order_ids(&dead_got);
    let again = Polling::connect(&s.base, &cashier).await;
    assert_eq!(again.send(&format!("42/orders,7[\"catchUp\",{{\"since\":\"{since}\"}}]")).await, 200);
    let (mut ack, deadline) = (None, Instant::now() + WAIT);
    while ack.is_none() {
        for p in again.poll().await.expect("a fresh session") {
            if let Some(json) = p.strip_prefix("43/orders,7") {
                ack = Some(serde_json::from_str::<Value>(json).unwrap()[0].clone());
            }
        }
        assert!(Instant::now() < deadline, "no catchUp answer");
    }
    let ack = ack.unwrap();
    assert_eq!((ack["success"].clone(), ack["truncated"].clone()), (json!(true), json!(false)), "{ack}");
    let missed: Vec<(String, Value)> =
        ack["events"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap().to_string(), e["data"].clone())).collect();
    let all: Vec<String> = ids.iter().chain(&later).cloned().collect();
    assert_eq!(seen, all[..seen.len()], "what it saw before it went silent is the start, in order");
    assert_eq!(new_order_ids(&missed), all[seen.len()..], "catchUp returns exactly what it missed, in order");
    assert!(metric(&s, "branchd_broadcast_deliveries_dropped_total{namespace=\"/orders\"}").await == 0.0, "nothing overflowed");
    drop(fast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_more_than_its_queue_behind_has_the_overflow_counted() {
    let s = TestServer::start_with(|c| {
        c.realtime = Tuning { ping_interval: Duration::from_secs(25), ping_timeout: Duration::from_secs(20), socket_buffer: 8 };
    })
    .await;
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let _lagging = Polling::connect(&s.base, &cashier).await;
    orders(&s, &cashier, 20).await;
    eventually_every("the overflow to be counted", WAIT, Duration::from_millis(50), || async {
        (metric(&s, "branchd_broadcast_deliveries_dropped_total{namespace=\"/orders\"}").await >= 1.0).then_some(())
    })
    .await;
}

async fn metric(s: &TestServer, series: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}
