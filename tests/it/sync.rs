//! Branch ↔ hub sync through a fault-injecting proxy (SPEC §6): effectively once, in order,
//! across lost responses, duplicates, reordering, outages, a hub restored from backup,
//! invalid events, and HQ changes flowing down.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use branchd::config::ApplianceRole;
use branchd::store::StoreError;
use common::process::{ServerProcess, cli};
use common::proxy::{Fate, Proxy};
use common::{TestServer, eventually_every, order_body};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
/// How often a wait asks again.
const POLL: Duration = Duration::from_millis(50);

struct Pair {
    hub: TestServer,
    branch: TestServer,
    proxy: Arc<Proxy>,
    /// The hub's PostgreSQL database (a hub cluster's store), when it has one.
    pg: Option<common::postgres::PgDb>,
}

async fn pair() -> Pair {
    pair_on(None).await
}

/// A branch syncing through a fault-injecting proxy to a hub on SQLite, or on the PostgreSQL
/// database `pg` (the same tests run against both stores).
async fn pair_on(pg: Option<common::postgres::PgDb>) -> Pair {
    let url = pg.as_ref().map(|db| db.url());
    let hub = TestServer::start_with(move |c| {
        c.role = ApplianceRole::Hub;
        c.database_url = url.map(Into::into);
    })
    .await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)).await.unwrap();
    let proxy = Proxy::start(hub.addr).await;
    let url = proxy.url();
    let branch = TestServer::start_with(move |c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(credential.into());
    })
    .await;
    Pair { hub, branch, proxy, pg }
}

fn cashier(s: &TestServer) -> String {
    s.token("cashier", Some("co-1"), Some("br-1"))
}

/// (stream seq, event uuid) of every event the branch wrote for br-1.
async fn branch_stream(s: &TestServer) -> Vec<(i64, String)> {
    let c = common::sql(s);
    let mut st = c
        .prepare("SELECT stream_seq, event_uuid FROM events WHERE branch_id = 'br-1' AND stream_seq IS NOT NULL ORDER BY stream_seq")
        .unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<Result<Vec<_>, _>>().unwrap()
}

/// (stream seq, event uuid, status) of every event the hub stored for br-1.
async fn pair_hub_stream(p: &Pair) -> Vec<(i64, String, String)> {
    hub_stream_on(&p.hub, p.pg.as_ref()).await
}

async fn hub_stream_on(hub: &TestServer, pg: Option<&common::postgres::PgDb>) -> Vec<(i64, String, String)> {
    let Some(pg) = pg else { return hub_stream(hub).await };
    let out = pg.psql("SELECT stream_seq, event_uuid, status FROM hub_events WHERE branch_id = 'br-1' ORDER BY stream_seq");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0].trim().parse().unwrap(), f[1].trim().to_string(), f[2].trim().to_string())
        })
        .collect()
}

async fn hub_stream(s: &TestServer) -> Vec<(i64, String, String)> {
    let c = common::sql(s);
    let mut st = c.prepare("SELECT stream_seq, event_uuid, status FROM hub_events WHERE branch_id = 'br-1' ORDER BY stream_seq").unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    rows.collect::<Result<Vec<_>, _>>().unwrap()
}

/// The last number of a branch process's sync stream: how many events it wrote for HQ (an order
/// is its `newOrder` plus, on a branch without printers for its stations, print alerts).
fn stream_len(dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("branchd.db")).unwrap();
    db.query_row("SELECT COALESCE(MAX(CAST(value AS INTEGER)), 0) FROM sync_state WHERE key = 'stream:br-1'", [], |r| r.get(0)).unwrap()
}

async fn health(s: &TestServer) -> Value {
    s.req(Method::GET, "/health", None, None).await.1
}

/// Waits (bounded) until the hub has acknowledged everything the branch wrote.
async fn until_synced(p: &Pair) {
    eventually_every("the branch to be synced", WAIT, POLL, || async {
        let last = branch_stream(&p.branch).await.last().map(|e| e.0).unwrap_or(0);
        let h = health(&p.branch).await;
        if last > 0 && h["sync"]["acked"] == last && h["sync"]["pending"] == 0 {
            return Ok(());
        }
        p.branch.state.sync().wake();
        Err(format!("branch at {last}, health {h}"))
    })
    .await
}

async fn make_traffic(s: &TestServer, orders: usize) -> Vec<String> {
    let t = cashier(s);
    let mut ids = Vec::new();
    for i in 0..orders {
        let (st, o) = s.post("/api/orders", &t, order_body("br-1")).await;
        assert_eq!(st, 201);
        let id = o["id"].as_str().unwrap().to_string();
        if i % 3 == 0 {
            s.req(Method::PATCH, &format!("/api/orders/{id}/status"), Some(&t), Some(json!({"status": "confirmed"}))).await;
        }
        if i % 5 == 0 {
            s.post(&format!("/api/orders/{id}/cancel"), &t, json!({"reason": "test"})).await;
        }
        if i % 4 == 0 {
            let body = json!({"available": i % 8 == 0, "stock": i});
            s.req(Method::PUT, &format!("/api/availability/br-1/product/item-{i}"), Some(&t), Some(body)).await;
        }
        ids.push(id);
    }
    ids
}

fn assert_exactly_once(branch: &[(i64, String)], hub: &[(i64, String, String)]) {
    let n = branch.len() as i64;
    assert!(n > 0);
    let seqs: Vec<i64> = hub.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "the hub has exactly events 1..N: no gap, no duplicate, in order");
    for ((bs, bid), (hs, hid, status)) in branch.iter().zip(hub) {
        assert_eq!((bs, bid), (hs, hid), "same event under the same number");
        assert_eq!(status, "applied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effectively_once_through_lost_responses_duplicates_and_reordering() {
    effectively_once(None).await;
}

/// The same against a hub on PostgreSQL (a hub cluster's store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effectively_once_through_lost_responses_duplicates_and_reordering_on_postgres() {
    if let Some(db) = common::postgres::database("effectively_once_through_lost_") {
        effectively_once(Some(db)).await;
    }
}

async fn effectively_once(pg: Option<common::postgres::PgDb>) {
    let p = pair_on(pg).await;
    p.proxy.chaos(
        0x9e37_79b9_7f4a_7c15,
        vec![
            (30, Fate::Pass),
            (25, Fate::LoseResponse),
            (15, Fate::Duplicate),
            (10, Fate::Drop),
            (15, Fate::ReplayLater),
            (5, Fate::Delay(200)),
        ],
    );
    let ids = make_traffic(&p.branch, 40).await;
    until_synced(&p).await;
    // Let late replays of old batches arrive, then settle without chaos.
    p.proxy.calm();
    make_traffic(&p.branch, 1).await;
    until_synced(&p).await;
    assert!(p.proxy.count("LoseResponse") > 0 && p.proxy.count("Duplicate") > 0 && p.proxy.count("ReplayLater") > 0, "faults happened");
    assert!(health(&p.branch).await["sync"]["duplicates"].as_u64().unwrap() > 0, "duplicated batches were reported as duplicates");
    assert_exactly_once(&branch_stream(&p.branch).await, &pair_hub_stream(&p).await);

    // The hub's own view: every order once, in its final state.
    let admin = p.hub.token("super_admin", None, None);
    let (_, listed) = p.hub.get("/api/orders?branchId=br-1&status=all&limit=1000", &admin).await;
    let hub_orders = listed["items"].as_array().unwrap();
    assert_eq!(hub_orders.len(), ids.len() + 1);
    let t = cashier(&p.branch);
    for id in &ids {
        let (_, b) = p.branch.get(&format!("/api/orders/{id}"), &t).await;
        let (st, h) = p.hub.get(&format!("/api/orders/{id}"), &admin).await;
        assert_eq!(st, 200, "order {id} reached the hub");
        assert_eq!((h["status"].clone(), h["number"].clone()), (b["status"].clone(), b["number"].clone()));
    }
    let (_, av) = p.hub.get("/api/availability/br-1", &admin).await;
    assert_eq!(av["items"].as_array().unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_is_caught_up_and_visible_meanwhile() {
    long_outage(None).await;
}

/// The same against a hub on PostgreSQL (a hub cluster's store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_is_caught_up_and_visible_meanwhile_on_postgres() {
    if let Some(db) = common::postgres::database("a_long_outage_is_caught_up_and") {
        long_outage(Some(db)).await;
    }
}

async fn long_outage(pg: Option<common::postgres::PgDb>) {
    let p = pair_on(pg).await;
    make_traffic(&p.branch, 1).await;
    until_synced(&p).await;
    assert_eq!(health(&p.branch).await["upstream"], "online");
    p.proxy.set_down(true);
    make_traffic(&p.branch, 12).await;
    let h = eventually_every("the outage to be reported", WAIT, POLL, || async {
        let h = health(&p.branch).await;
        if h["upstream"] == "offline" && h["sync"]["pending"].as_i64().unwrap_or(0) > 0 { Ok(h) } else { Err(h.to_string()) }
    })
    .await;
    assert!(h["sync"]["lastError"].is_string());
    let metrics = reqwest::get(format!("{}/metrics", p.branch.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("branchd_sync_online 0") && metrics.contains("branchd_sync_pending_events"), "{metrics}");
    p.proxy.set_down(false);
    // No new local write: the relay must notice the uplink by itself.
    eventually_every("the branch to catch up after the outage", Duration::from_secs(20), Duration::from_millis(100), || async {
        let h = health(&p.branch).await;
        if h["upstream"] == "online" && h["sync"]["pending"] == 0 { Ok(()) } else { Err(h.to_string()) }
    })
    .await;
    assert_exactly_once(&branch_stream(&p.branch).await, &pair_hub_stream(&p).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restored_from_backup_is_noticed_and_refilled() {
    let p = pair().await;
    make_traffic(&p.branch, 10).await;
    until_synced(&p).await;
    let total = branch_stream(&p.branch).await.len() as i64;
    // The hub loses everything after event 5 (restored from an older backup).
    common::sql(&p.hub)
        .execute_batch(
            "BEGIN IMMEDIATE;
             DELETE FROM hub_events WHERE branch_id = 'br-1' AND stream_seq > 5;
             UPDATE hub_streams SET high_water = 5 WHERE branch_id = 'br-1';
             COMMIT;",
        )
        .unwrap();
    assert!(total > 5);
    make_traffic(&p.branch, 1).await;
    until_synced(&p).await;
    assert_exactly_once(&branch_stream(&p.branch).await, &pair_hub_stream(&p).await);
    let h = health(&p.branch).await;
    assert!(h["sync"]["divergences"].as_u64().unwrap() >= 1, "the divergence was noticed: {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_restored_from_an_older_backup_renumbers_its_new_events_and_loses_none() {
    let p = pair().await;
    make_traffic(&p.branch, 10).await;
    until_synced(&p).await;
    let hub_before = pair_hub_stream(&p).await;
    assert!(hub_before.len() > 8);
    // The branch goes back to the moment after its event 5 (restored from an older backup):
    // what it writes next reuses numbers the hub already holds for other events.
    // (What `store::sync::state_set` and `set_acked` would write, in the same transaction.)
    common::sql(&p.branch)
        .execute_batch(
            "BEGIN IMMEDIATE;
             DELETE FROM events WHERE branch_id = 'br-1' AND stream_seq > 5;
             INSERT INTO sync_state (key, value) VALUES ('stream:br-1', '5'), ('acked:br-1', '5')
               ON CONFLICT(key) DO UPDATE SET value = excluded.value;
             COMMIT;",
        )
        .unwrap();
    let new_orders = make_traffic(&p.branch, 3).await;
    until_synced(&p).await;

    let (branch, hub) = (branch_stream(&p.branch).await, pair_hub_stream(&p).await);
    let seqs: Vec<i64> = hub.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=hub.len() as i64).collect::<Vec<_>>(), "the hub's stream has no gap");
    assert!(hub.iter().all(|e| e.2 == "applied"), "{hub:?}");
    assert_eq!(&hub[..hub_before.len()], &hub_before[..], "what the hub had is kept as it was");
    for (seq, id) in &branch {
        assert!(hub.iter().any(|(hs, hid, _)| hs == seq && hid == id), "branch event {seq} {id} reached the hub under its number");
    }
    let owner = p.hub.token("company_owner", Some("co-1"), None);
    for id in &new_orders {
        let (st, o) = p.hub.req(Method::GET, &format!("/api/orders/{id}"), Some(&owner), None).await;
        assert_eq!(st, 200, "order {id} written after the restore reached HQ: {o}");
    }
    let h = health(&p.branch).await;
    assert!(h["sync"]["divergences"].as_u64().unwrap() >= 1, "the renumbering was reported: {h}");
    assert_eq!(h["sync"]["parked"], 0, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_is_parked_and_does_not_block_the_rest() {
    invalid_event_parked(None).await;
}

/// The same against a hub on PostgreSQL (a hub cluster's store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_is_parked_and_does_not_block_the_rest_on_postgres() {
    if let Some(db) = common::postgres::database("an_invalid_event_is_parked_and") {
        invalid_event_parked(Some(db)).await;
    }
}

async fn invalid_event_parked(pg: Option<common::postgres::PgDb>) {
    let p = pair_on(pg).await;
    make_traffic(&p.branch, 1).await;
    until_synced(&p).await;
    // A corrupt outbox row (as a bug might write): a newOrder without an order.
    let mut c = common::sql(&p.branch);
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    let seq: i64 = tx
        .query_row(
            "UPDATE sync_state SET value = CAST(value AS INTEGER) + 1 WHERE key = 'stream:br-1' RETURNING CAST(value AS INTEGER)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    tx.execute(
        "INSERT INTO events (namespace, name, company_id, branch_id, data, created_ms, stream_seq, event_uuid, origin)
         VALUES ('/orders', 'newOrder', 'co-1', 'br-1', '{\"id\": 5}', 0, ?1, 'corrupt-1', 'local')",
        [seq],
    )
    .unwrap();
    tx.commit().unwrap();
    let after = make_traffic(&p.branch, 3).await;
    until_synced(&p).await;
    let hub = pair_hub_stream(&p).await;
    assert_eq!(hub.iter().filter(|e| e.2 == "parked").count(), 1);
    assert_eq!(health(&p.branch).await["sync"]["parked"], 1);
    let admin = p.hub.token("super_admin", None, None);
    for id in after {
        let (st, _) = p.hub.get(&format!("/api/orders/{id}"), &admin).await;
        assert_eq!(st, 200, "events behind the parked one arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_limit_in_front_of_the_hub_shrinks_batches_and_parks_what_never_fits() {
    let p = pair().await;
    // HQ sits behind a reverse proxy that takes at most 24 KiB per request. The uplink is
    // down during the rush, so the backlog goes in one batch once it is back.
    p.proxy.limit_body(Some(24 * 1024));
    p.proxy.set_down(true);
    let t = cashier(&p.branch);
    let note = "x".repeat(1900);
    let mut body = order_body("br-1");
    body["notes"] = json!(note);
    let mut ids = Vec::new();
    for _ in 0..30 {
        let (st, o) = p.branch.post("/api/orders", &t, body.clone()).await;
        assert_eq!(st, 201);
        ids.push(o["id"].as_str().unwrap().to_string());
    }
    // One order larger than the proxy lets through at all.
    let mut huge = order_body("br-1");
    let item = json!({"name": "Mezze platter", "quantity": 1, "unitPrice": 900, "notes": "y".repeat(1000)});
    huge["items"] = json!(vec![item; 40]);
    let (st, big) = p.branch.post("/api/orders", &t, huge).await;
    assert_eq!(st, 201);
    let (st, after) = p.branch.post("/api/orders", &t, body.clone()).await;
    assert_eq!(st, 201);
    p.proxy.set_down(false);
    p.branch.state.sync().wake();
    until_synced(&p).await;

    let admin = p.hub.token("super_admin", None, None);
    for id in ids.iter().chain([after["id"].as_str().unwrap().to_string()].iter()) {
        let (st, _) = p.hub.get(&format!("/api/orders/{id}"), &admin).await;
        assert_eq!(st, 200, "order {id} reached HQ in smaller batches");
    }
    let (st, _) = p.hub.get(&format!("/api/orders/{}", big["id"].as_str().unwrap()), &admin).await;
    assert_eq!(st, 404, "the order that can never pass is parked, not applied half");
    let h = health(&p.branch).await;
    assert_eq!(h["sync"]["parked"], 1, "and reported: {h}");
    assert!(p.proxy.count("TooLarge") >= 2, "batches were refused and shrunk");
    let hub = pair_hub_stream(&p).await;
    let seqs: Vec<i64> = hub.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=hub.len() as i64).collect::<Vec<_>>(), "gap-free all the same");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_changes_flow_down_to_the_branch() {
    hq_changes_flow_down(None).await;
}

/// The same against a hub on PostgreSQL (a hub cluster's store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_changes_flow_down_to_the_branch_on_postgres() {
    if let Some(db) = common::postgres::database("hq_changes_flow_down_to_the_br") {
        hq_changes_flow_down(Some(db)).await;
    }
}

async fn hq_changes_flow_down(pg: Option<common::postgres::PgDb>) {
    let p = pair_on(pg).await;
    let owner = p.hub.token("company_owner", Some("co-1"), None);
    // The branch's receipt printer, copied to the hub before HQ takes an order.
    let manager = p.branch.token("branch_manager", Some("co-1"), Some("br-1"));
    let body = json!({"branchId": "br-1", "name": "Front", "role": "receipt", "connection": {"type": "virtual"}});
    let (st, printer) = p.branch.post("/api/printers", &manager, body).await;
    assert_eq!(st, 201, "{printer}");
    until_synced(&p).await;
    let (st, _) = p.hub.get(&format!("/api/printers/{}", printer["id"].as_str().unwrap()), &owner).await;
    assert_eq!(st, 200, "the hub knows the branch's printer");
    // HQ sets availability and takes a call-centre order for br-1.
    let (st, _) = p
        .hub
        .req(Method::PUT, "/api/availability/br-1/product/shawarma", Some(&owner), Some(json!({"available": false, "stock": 0})))
        .await;
    assert_eq!(st, 200);
    let (st, hq_order) = p.hub.post("/api/orders", &owner, order_body("br-1")).await;
    assert_eq!(st, 201);
    let id = hq_order["id"].as_str().unwrap().to_string();
    // And adds a user for the branch at HQ.
    let hash = branchd::auth::password::hash("hq-made-password");
    p.hub
        .state
        .db()
        .write(move |tx| {
            branchd::store::events::append_internal(
                tx,
                "directory:user",
                "co-1",
                "br-1",
                json!({"id": "u-hq", "email": "manager@hq.test", "passwordHash": hash, "role": "branch_manager", "companyId": "co-1", "branchId": "br-1"}),
            )
        })
        .await
        .unwrap();
    p.branch.state.sync().wake();
    let t = cashier(&p.branch);
    let local = eventually_every("the HQ order to reach the branch", WAIT, POLL, || async {
        let (st, o) = p.branch.get(&format!("/api/orders/{id}"), &t).await;
        (st == 200).then_some(o)
    })
    .await;
    assert_eq!(local["items"], hq_order["items"]);
    let (_, av) = p.branch.get("/api/availability/br-1", &t).await;
    assert_eq!(av["items"][0]["itemId"], "shawarma");
    assert_eq!(av["items"][0]["available"], false);
    // The user was added after the order, so it may come in a later feed page.
    let login = eventually_every("an HQ user to log in at the branch offline", WAIT, POLL, || async {
        let creds = json!({"email": "manager@hq.test", "password": "hq-made-password"});
        let (st, login) = p.branch.req(Method::POST, "/auth/login", None, Some(creds)).await;
        if st == 200 {
            return Ok(login);
        }
        p.branch.state.sync().wake();
        Err(login.to_string())
    })
    .await;
    assert_eq!(login["user"]["role"], "branch_manager");
    // The branch numbers HQ orders itself and reports that back.
    until_synced(&p).await;
    let admin = p.hub.token("super_admin", None, None);
    let (_, at_hub) = p.hub.get(&format!("/api/orders/{id}"), &admin).await;
    assert_eq!(at_hub["number"], local["number"]);
    // Applied once even when the feed is read again.
    p.branch.state.db().write(|tx| branchd::store::sync::state_set(tx, "feed:cursor", "0")).await.unwrap();
    p.branch.state.sync().wake();
    until_synced(&p).await;
    let (_, all) = p.branch.get("/api/orders?status=all", &t).await;
    assert_eq!(all["items"].as_array().unwrap().iter().filter(|o| o["id"] == id.as_str()).count(), 1);

    // The receipt printed at the branch, once; the hub printed nothing on its copy of the
    // printer, and refuses to.
    let jobs = eventually_every("the HQ order's receipt to print at the branch", WAIT, POLL, || async {
        let (_, jobs) = p.branch.get("/api/print-jobs", &manager).await;
        let jobs = jobs["items"].as_array().cloned().unwrap_or_default();
        if jobs.iter().any(|j| j["orderId"] == id.as_str() && j["status"] == "printed") { Ok(jobs) } else { Err(format!("{jobs:?}")) }
    })
    .await;
    assert_eq!(jobs.iter().filter(|j| j["orderId"] == id.as_str()).count(), 1, "{jobs:?}");
    let (_, hub_jobs) = p.hub.get("/api/print-jobs", &admin).await;
    assert_eq!(hub_jobs["items"], json!([]), "the hub queued nothing");
    let raw = json!({"printerId": printer["id"], "kind": "raw", "data": "SGk="});
    let (st, e) = p.hub.post("/api/print-jobs", &admin, raw).await;
    assert_eq!((st, e["error"]["code"].as_str()), (409, Some("CONFLICT")), "{e}");

    // An HQ change the branch cannot apply is parked and counted, and the feed goes on.
    p.hub
        .state
        .db()
        .write(|tx| {
            branchd::store::events::append_internal(tx, "directory:user", "co-1", "br-1", json!({"id": "u-broken"}))?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let (st, _) =
        p.hub.req(Method::PUT, "/api/availability/br-1/product/kunafa", Some(&owner), Some(json!({"available": false, "stock": 0}))).await;
    assert_eq!(st, 200);
    eventually_every("the broken HQ change parked and the next one applied", WAIT, POLL, || async {
        p.branch.state.sync().wake();
        let h = health(&p.branch).await;
        let (_, av) = p.branch.get("/api/availability/br-1", &t).await;
        let behind = av["items"].as_array().unwrap().iter().any(|i| i["itemId"] == "kunafa");
        if h["sync"]["parked"] == 1 && behind { Ok(()) } else { Err(h.to_string()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_protocol_are_enforced() {
    credentials_and_protocol(None).await;
}

/// The same against a hub on PostgreSQL (a hub cluster's store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_protocol_are_enforced_on_postgres() {
    if let Some(db) = common::postgres::database("credentials_and_protocol_are_e") {
        credentials_and_protocol(Some(db)).await;
    }
}

async fn credentials_and_protocol(pg: Option<common::postgres::PgDb>) {
    let p = pair_on(pg).await;
    let hub = &p.hub;
    let post = |token: Option<&str>, body: Value| {
        let mut r = reqwest::Client::new().post(format!("{}/sync/v1/events", hub.base)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let ok_body = json!({"protocol": 1, "branchId": "br-1", "events": []});
    assert_eq!(post(None, ok_body.clone()).await.unwrap().status(), 401);
    assert_eq!(post(Some("bdu_nope"), ok_body.clone()).await.unwrap().status(), 401);
    let cred = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&cred);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-3", "co-2", &hash)).await.unwrap();
    let r = post(Some(&cred), ok_body.clone()).await.unwrap();
    assert_eq!(r.status(), 403, "a branch cannot push for another branch");
    let r = post(Some(&cred), json!({"protocol": 2, "branchId": "br-3", "events": []})).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PROTOCOL_UNSUPPORTED");
    let r = post(Some(&cred), json!({"protocol": 1, "branchId": "br-3", "events": []})).await.unwrap();
    assert_eq!(r.status(), 200);
    // A branch server answers 404 on the sync endpoints.
    let r = reqwest::get(format!("{}/sync/v1/hello", p.branch.base)).await.unwrap();
    assert_eq!(r.status(), 404);

    // Revoking the branch's credential stops its relay loudly, with no retry loop.
    make_traffic(&p.branch, 1).await;
    until_synced(&p).await;
    hub.state.db().write(|tx| branchd::store::sync::uplink_revoke(tx, "br-1")).await.unwrap();
    make_traffic(&p.branch, 1).await;
    let h = eventually_every("the relay to stop", WAIT, POLL, || async {
        let h = health(&p.branch).await;
        if h["sync"]["stopped"].is_string() { Ok(h) } else { Err(h.to_string()) }
    })
    .await;
    assert!(h["sync"]["stopped"].as_str().unwrap().contains("credential"), "{h}");
    let seen = p.proxy.count("Pass");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(p.proxy.count("Pass"), seen, "no requests after a refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_status_command_reports_the_backlog() {
    let p = pair().await;
    make_traffic(&p.branch, 3).await;
    until_synced(&p).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_branchd"))
        .args(["sync", "status", "--data-dir"])
        .arg(p.branch.data_dir())
        .env("BRANCHD_UPSTREAM_URL", p.proxy.url())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let last = branch_stream(&p.branch).await.len();
    assert!(text.contains("branch:         br-1"), "{text}");
    assert!(text.contains(&format!("acknowledged:   {last} of {last} events")), "{text}");
    assert!(text.contains("pending:        0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_killed_between_the_hubs_commit_and_its_own_ack_converges() {
    let hub = TestServer::start_with(|c| c.role = ApplianceRole::Hub).await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)).await.unwrap();
    let proxy = Proxy::start(hub.addr).await;
    proxy.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-1", "--name", "One"]);
    cli(d, &["branch", "add", "br-1", "--company", "co-1", "--name", "North"]);
    let token = cli(d, &["token", "issue", "--sub", "u", "--role", "cashier", "--company", "co-1", "--branch", "br-1"]);
    let uplink = [("BRANCHD_UPSTREAM_URL", proxy.url()), ("BRANCHD_UPSTREAM_TOKEN", credential.clone())];
    let env: Vec<(&str, &str)> = uplink.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let branch = ServerProcess::start(d, &env);
    let http = reqwest::Client::new();
    for _ in 0..8 {
        let r = http.post(format!("{}/api/orders", branch.base)).bearer_auth(&token).json(&order_body("br-1")).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    // The uplink comes back for exactly one push: the hub commits all 8, the answer is lost,
    // and the branch is cut off again before it can learn anything.
    proxy.lose_ack_then_isolate();
    proxy.set_down(false);
    // Wait until the hub committed all 8 orders' events, while the branch still thinks they
    // are pending.
    let n = stream_len(d);
    assert!(n >= 8);
    eventually_every("the hub to get the events", WAIT, POLL, || async { (hub_stream(&hub).await.len() as i64 >= n).then_some(()) }).await;
    let h: Value = http.get(format!("{}/health", branch.base)).send().await.unwrap().json().await.unwrap();
    assert!(h["sync"]["acked"].as_i64().unwrap_or(0) < n, "the branch has not heard the acks: {h}");
    branch.kill_9();
    proxy.calm();
    let branch = ServerProcess::start(d, &env);
    eventually_every("the restarted branch to converge", WAIT, POLL, || async {
        let h: Value = http.get(format!("{}/health", branch.base)).send().await.unwrap().json().await.unwrap();
        if h["sync"]["acked"] == n && h["sync"]["pending"] == 0 { Ok(()) } else { Err(h.to_string()) }
    })
    .await;
    let hub_events = hub_stream(&hub).await;
    assert_eq!(hub_events.iter().map(|e| e.0).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>(), "nothing doubled, nothing lost");
    let admin = hub.token("super_admin", None, None);
    let (_, listed) = hub.get("/api/orders?branchId=br-1&status=all", &admin).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 8);
}

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_clock_moved_back_days_and_forward_a_year_changes_nothing() {
    if !std::path::Path::new(FAKETIME_LIB).exists() {
        eprintln!("SKIPPED: libfaketime is not installed (apt-get install faketime libfaketime)");
        return;
    }
    let hub = TestServer::start_with(|c| c.role = ApplianceRole::Hub).await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-1", "--name", "One"]);
    cli(d, &["branch", "add", "br-1", "--company", "co-1", "--name", "North"]);
    let token = cli(d, &["token", "issue", "--sub", "u", "--role", "cashier", "--company", "co-1", "--branch", "br-1", "--ttl", "1000d"]);
    let http = reqwest::Client::new();
    let mut total = 0;
    // The wall clock (not the monotonic one) of the branch jumps between runs.
    for shift in ["-3d", "+1y", "-2d"] {
        let upstream = hub.base.clone();
        let env = [
            ("LD_PRELOAD", FAKETIME_LIB),
            ("FAKETIME", shift),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("BRANCHD_UPSTREAM_URL", upstream.as_str()),
            ("BRANCHD_UPSTREAM_TOKEN", credential.as_str()),
        ];
        let branch = ServerProcess::start(d, &env);
        for _ in 0..4 {
            let r = http.post(format!("{}/api/orders", branch.base)).bearer_auth(&token).json(&order_body("br-1")).send().await.unwrap();
            assert_eq!(r.status(), 201, "clock {shift}");
            total += 1;
        }
        eventually_every(&format!("clock {shift}: synced"), WAIT, POLL, || async {
            let h: Value = http.get(format!("{}/health", branch.base)).send().await.unwrap().json().await.unwrap();
            if h["sync"]["acked"] == stream_len(d) && h["sync"]["pending"] == 0 { Ok(()) } else { Err(h.to_string()) }
        })
        .await;
        branch.kill_9();
    }
    // Exactly events 1..N at the hub, and they are the branch's events in its order.
    let db = rusqlite::Connection::open(d.join("branchd.db")).unwrap();
    let mut st = db.prepare("SELECT stream_seq, event_uuid FROM events WHERE stream_seq IS NOT NULL ORDER BY stream_seq").unwrap();
    let branch_events: Vec<(i64, String)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let at_hub = hub_stream(&hub).await;
    let events = branch_events.last().map(|e| e.0).unwrap_or(0);
    assert!(events >= total);
    assert_eq!(at_hub.iter().map(|e| e.0).collect::<Vec<_>>(), (1..=events).collect::<Vec<_>>(), "1..N, in order, once");
    assert!(at_hub.iter().all(|e| e.2 == "applied"));
    // The branch pruned the acknowledged events that look a year old; the rest match.
    assert!(!branch_events.is_empty());
    for (seq, id) in &branch_events {
        assert_eq!(&at_hub[(*seq - 1) as usize].1, id);
    }
    let admin = hub.token("super_admin", None, None);
    let (_, listed) = hub.get("/api/orders?branchId=br-1&status=all", &admin).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), total as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_that_never_reached_its_hub_still_reports_its_backlog() {
    let hub = TestServer::start_with(|c| c.role = ApplianceRole::Hub).await;
    let proxy = Proxy::start(hub.addr).await;
    proxy.set_down(true);
    let url = proxy.url();
    // The appliance knows one branch (br-1) among the fixtures' three: use a fresh one.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-1", "--name", "One"]);
    cli(d, &["branch", "add", "br-1", "--company", "co-1", "--name", "North"]);
    let token = cli(d, &["token", "issue", "--sub", "u", "--role", "cashier", "--company", "co-1", "--branch", "br-1"]);
    let branch = ServerProcess::start(d, &[("BRANCHD_UPSTREAM_URL", url.as_str()), ("BRANCHD_UPSTREAM_TOKEN", "bdu_unused")]);
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http.post(format!("{}/api/orders", branch.base)).bearer_auth(&token).json(&order_body("br-1")).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let h = eventually_every("the backlog to be reported", WAIT, POLL, || async {
        let h: Value = http.get(format!("{}/health", branch.base)).send().await.unwrap().json().await.unwrap();
        let n = stream_len(d);
        if n >= 3 && h["sync"]["pending"] == n { Ok(h) } else { Err(h.to_string()) }
    })
    .await;
    assert_eq!(h["upstream"], "offline");
    assert_eq!(h["sync"]["branchId"], "br-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_for_a_branch_the_appliance_does_not_have_is_reported() {
    let hub = TestServer::start_with(|c| c.role = ApplianceRole::Hub).await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state
        .db()
        .write(move |tx| {
            branchd::store::directory::add_branch(tx, "br-9", "co-1", "Airport")?;
            branchd::store::sync::uplink_create(tx, "br-9", "co-1", &hash)
        })
        .await
        .unwrap();
    let url = hub.base.clone();
    let branch = TestServer::start_with(move |c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(credential.into());
    })
    .await;
    let w = eventually_every("a sync warning", WAIT, POLL, || async {
        branch.state.sync().wake();
        let h = health(&branch).await;
        h["sync"]["warning"].as_str().map(str::to_string).ok_or_else(|| h.to_string())
    })
    .await;
    assert!(w.contains("br-9") && w.contains("branchd branch add"), "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_feed_went_back_is_read_again_from_the_start() {
    let p = pair().await;
    let owner = p.hub.token("company_owner", Some("co-1"), None);
    let t = cashier(&p.branch);
    // The branch has read the hub's feed further than the hub now goes (the hub was restored
    // from an older backup after the branch had read it).
    p.branch.state.db().write(|tx| branchd::store::sync::state_set(tx, "feed:cursor", "1000000")).await.unwrap();
    let (st, _) =
        p.hub.req(Method::PUT, "/api/availability/br-1/product/kibbeh", Some(&owner), Some(json!({"available": false, "stock": 0}))).await;
    assert_eq!(st, 200);
    eventually_every("the HQ change made after the hub's restore to reach the branch", WAIT, POLL, || async {
        p.branch.state.sync().wake();
        let (_, av) = p.branch.get("/api/availability/br-1", &t).await;
        av["items"].as_array().unwrap().iter().any(|i| i["itemId"] == "kibbeh" && i["available"] == false).then_some(())
    })
    .await;
    let h = health(&p.branch).await;
    assert!(h["sync"]["divergences"].as_u64().unwrap() >= 1, "and it was reported: {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_sees_a_branch_stuck_printer_its_ack_and_the_orders_print_state() {
    use branchd::printing::drivers::Timeouts;
    use common::emulator::Emulator;
    let hub = TestServer::start_with(|c| c.role = ApplianceRole::Hub).await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)).await.unwrap();
    let url = hub.base.clone();
    let branch = TestServer::start_with(move |c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(credential.into());
        c.printer_timeouts = Timeouts {
            connect: Duration::from_millis(500),
            read: Duration::from_millis(500),
            confirm: Duration::from_millis(1500),
            poll: Duration::from_millis(200),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            stall: Duration::from_secs(1),
            ..Timeouts::default()
        };
    })
    .await;
    let emu = Emulator::start();
    emu.power_off();
    let manager = branch.token("branch_manager", Some("co-1"), Some("br-1"));
    let conn = json!({"type": "network", "host": "127.0.0.1", "port": emu.addr.port()});
    let (st, p) =
        branch.post("/api/printers", &manager, json!({"branchId": "br-1", "name": "Bar", "role": "kitchen", "connection": conn})).await;
    assert_eq!(st, 201, "{p}");
    let (st, o) = branch.post("/api/orders", &cashier(&branch), order_body("br-1")).await;
    assert_eq!(st, 201, "{o}");
    let oid = o["id"].as_str().unwrap().to_string();
    let owner = hub.token("company_owner", Some("co-1"), None);
    let alert = eventually_every("HQ to see the stalled printer", WAIT, POLL, || async {
        let (_, list) = hub.get("/api/alerts?open=true", &owner).await;
        list["items"].as_array().and_then(|l| l.iter().find(|a| a["type"] == "printer_stalled").cloned()).ok_or_else(|| list.to_string())
    })
    .await;
    assert_eq!(alert["printerId"], p["id"]);
    assert_eq!(alert["branchId"], "br-1");
    let (_, ho) = hub.get(&format!("/api/orders/{oid}"), &owner).await;
    assert_eq!(ho["printing"]["state"], "attention", "HQ's copy of the order: {ho}");
    let (_, h) = branch.req(Method::GET, "/health", None, None).await;
    assert_eq!(h["status"], "degraded", "the branch's own printer: {h}");
    let (_, h) = hub.req(Method::GET, "/health", None, None).await;
    assert_eq!(h["status"], "ok", "a branch's printer is not the hub's health: {h}");

    // Acked at the branch: HQ sees it acked.
    let id = alert["id"].as_str().unwrap();
    let (st, _) = branch.post(&format!("/api/alerts/{id}/ack"), &manager, json!({})).await;
    assert_eq!(st, 200);
    eventually_every("HQ to see the ack", WAIT, POLL, || async {
        let (_, list) = hub.get("/api/alerts?open=true", &owner).await;
        if list["items"].as_array().unwrap().iter().any(|a| a["id"] == id && a["ackedAt"].is_string()) {
            Ok(())
        } else {
            Err(list.to_string())
        }
    })
    .await;

    // The printer comes back: HQ sees the alert closed and the order printed.
    emu.power_on();
    eventually_every("HQ to see the recovery", WAIT, POLL, || async {
        let (_, list) = hub.get("/api/alerts?open=true", &owner).await;
        let (_, ho) = hub.get(&format!("/api/orders/{oid}"), &owner).await;
        if list["items"].as_array().unwrap().is_empty() && ho["printing"]["state"] == "printed" {
            Ok(())
        } else {
            Err(format!("{list} {ho}"))
        }
    })
    .await;
    let parked = hub_stream(&hub).await.into_iter().filter(|e| e.2 != "applied").count();
    assert_eq!(parked, 0, "every print event applied at the hub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_refused_and_repeated_events_parks_those_alone_and_applies_the_rest() {
    refused_and_repeated(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_refused_and_repeated_events_parks_those_alone_and_applies_the_rest_on_postgres() {
    if let Some(db) = common::postgres::database("a_push_with_refused_and_repeated") {
        refused_and_repeated(Some(db)).await;
    }
}

/// The hub applies a push in one piece and, only when something in it is refused, event by
/// event: what it refuses is parked with its reason and leaves no trace, everything else
/// in the same push is applied, and numbers given twice are told apart.
async fn refused_and_repeated(pg: Option<common::postgres::PgDb>) {
    let url = pg.as_ref().map(|db| db.url());
    let hub = TestServer::start_with(move |c| {
        c.role = ApplianceRole::Hub;
        c.database_url = url.map(Into::into);
    })
    .await;
    let mut creds = Vec::new();
    for branch in ["br-1", "br-2"] {
        let cred = branchd::sync::hub::new_credential();
        let hash = branchd::auth::license::hash(&cred);
        hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, branch, "co-1", &hash)).await.unwrap();
        creds.push(cred);
    }
    let order = |id: &str, branch: &str| {
        json!({"id": id, "number": 7, "companyId": "co-1", "branchId": branch, "type": "takeaway", "status": "pending",
               "items": [{"name": "Tea", "quantity": 1, "unitPrice": 100}], "subtotal": 100, "total": 100,
               "customer": null, "notes": null, "driver": null,
               "createdAt": "2026-12-05T10:00:00Z", "updatedAt": "2026-12-05T10:00:00Z"})
    };
    let ev =
        |seq: i64, id: &str, name: &str, data: Value| json!({"seq": seq, "id": id, "namespace": "/orders", "name": name, "data": data});
    let push = |cred: &str, branch: &str, events: Vec<Value>| {
        let body = json!({"protocol": 1, "branchId": branch, "events": events});
        let req = reqwest::Client::new().post(format!("{}/sync/v1/events", hub.base)).bearer_auth(cred).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let r = push(&creds[1], "br-2", vec![ev(1, "e-x1", "newOrder", order("o-shared", "br-2"))]).await;
    assert_eq!(r["highWater"], 1, "{r}");

    let status = |id: &str, s: &str| json!({"orderId": id, "status": s, "updatedAt": "2026-12-05T10:05:00Z"});
    let batch = vec![
        ev(1, "e-1", "newOrder", order("o-a", "br-1")),
        ev(1, "e-1", "newOrder", order("o-a", "br-1")), // the same event twice in one push
        ev(2, "e-2", "newOrder", order("o-shared", "br-1")), // another branch's order id
        ev(3, "e-3", "orderStatusUpdate", status("o-a", "preparing")),
        ev(3, "e-3b", "orderStatusUpdate", status("o-a", "ready")), // a number taken by another event
        ev(4, "e-4", "orderStatusUpdate", status("o-missing", "ready")),
        ev(5, "e-5", "driverUpdate", json!({"orderId": "o-shared", "driver": {"name": "Sam"}})),
        ev(6, "e-6", "orderStatusUpdate", status("o-a", "ready")),
    ];
    let r = push(&creds[0], "br-1", batch.clone()).await;
    assert_eq!(r["highWater"], 6, "{r}");
    assert_eq!(r["duplicates"], 1, "{r}");
    let parked: Vec<(i64, String)> =
        r["parked"].as_array().unwrap().iter().map(|p| (p["seq"].as_i64().unwrap(), p["code"].as_str().unwrap().to_string())).collect();
    let mut sorted = parked.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            (2, "WRONG_BRANCH".to_string()),
            (3, "SEQ_CONFLICT".to_string()),
            (4, "UNKNOWN_ORDER".to_string()),
            (5, "UNKNOWN_ORDER".to_string())
        ],
        "{r}"
    );

    let owner = hub.token("company_owner", Some("co-1"), None);
    let get = |id: &str| {
        let req = reqwest::Client::new().get(format!("{}/api/orders/{id}", hub.base)).bearer_auth(&owner);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let a = get("o-a").await;
    assert_eq!(a["status"], "ready", "the events around the refused ones were applied, in order: {a}");
    let shared = get("o-shared").await;
    assert_eq!(shared["branchId"], "br-2", "{shared}");
    assert_eq!(shared["driver"], Value::Null, "a refused event leaves no trace: {shared}");
    let stream = hub_stream_on(&hub, pg.as_ref()).await;
    let of_br1: Vec<_> = stream.iter().filter(|e| e.2 == "parked").map(|e| e.0).collect();
    assert_eq!(of_br1, vec![2, 4, 5], "parked rows kept (the conflicting one was never stored): {stream:?}");

    // The whole push again (a retry after a lost answer): nothing new, nothing changed.
    let r = push(&creds[0], "br-1", batch).await;
    assert_eq!(r["highWater"], 6, "{r}");
    assert_eq!(r["duplicates"], 7, "{r}");
    assert_eq!(get("o-a").await["status"], "ready");

    // Item states: the last one a push reports for an item is what the hub keeps.
    let item = |branch: &str, t: &str, id: &str, available: bool, stock: Option<i64>| {
        json!({"branchId": branch, "itemType": t, "itemId": id, "available": available, "stock": stock,
               "lowStockThreshold": null, "updatedAt": "2026-12-05T10:10:00Z"})
    };
    let avail = |seq: i64, name: &str, data: Value| json!({"seq": seq, "id": format!("e-{seq}"), "namespace": "/availability", "name": name, "data": data});
    let r = push(
        &creds[0],
        "br-1",
        vec![
            avail(7, "availabilityUpdate", item("br-1", "product", "p-1", false, Some(3))),
            avail(
                8,
                "bulkAvailabilityUpdate",
                json!({"branchId": "br-1", "items": [
                item("br-1", "product", "p-1", true, Some(5)), item("br-1", "modifier", "m-1", false, None)]}),
            ),
            avail(9, "availabilityUpdate", item("br-2", "product", "p-2", false, None)),
        ],
    )
    .await;
    assert_eq!(r["highWater"], 9, "{r}");
    assert_eq!(r["parked"].as_array().unwrap().iter().map(|p| p["seq"].as_i64().unwrap()).collect::<Vec<_>>(), vec![9], "{r}");
    let items = hub.state.db().read(|c| branchd::store::availability::list(c, "br-1")).await.unwrap();
    let items = serde_json::to_value(items).unwrap();
    let find = |id: &str| items.as_array().unwrap().iter().find(|i| i["itemId"] == id).cloned();
    let p1 = find("p-1").expect("p-1 stored");
    assert_eq!((p1["available"].clone(), p1["stock"].clone()), (json!(true), json!(5)), "{items}");
    assert_eq!(find("m-1").expect("m-1 stored")["available"], false, "{items}");
    assert!(find("p-2").is_none(), "another branch's item is refused: {items}");
}
