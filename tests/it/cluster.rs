//! A hub cluster (issue 15, SPEC §1): several real hub processes on one real PostgreSQL
//! database, real branch appliances syncing through a fault-injecting load balancer, and
//! python-socketio clients on every process. Skipped (saying so) where PostgreSQL is missing;
//! `.ci/run` installs it.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::TestServer;
use common::lb::{FaultLb, LbConfig};
use common::postgres::PgDb;
use common::process::{BIN, ServerProcess};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// One hub process of the cluster, with its own data directory (logs, staged updates).
struct Hub {
    proc: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn start(db: &PgDb) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let url = db.url();
        let proc = ServerProcess::start(dir.path(), &[("BRANCHD_ROLE", "hub"), ("BRANCHD_DATABASE_URL", &url)]);
        Hub { proc, _dir: dir }
    }

    fn base(&self) -> String {
        self.proc.base.clone()
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.proc.base.trim_start_matches("http://").parse().unwrap()
    }
}

/// An admin command against the cluster's database (from a data directory of its own).
fn admin(db: &PgDb, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    common::process::run_env(dir.path(), args, &[("BRANCHD_ROLE", "hub"), ("BRANCHD_DATABASE_URL", &db.url())])
}

fn admin_ok(db: &PgDb, args: &[&str]) -> String {
    common::process::ok(&admin(db, args)).trim().to_string()
}

/// co-1 with br-1 and br-2; returns an uplink credential for each branch.
fn directory(db: &PgDb) -> (String, String) {
    admin_ok(db, &["company", "add", "co-1", "--name", "Company One"]);
    admin_ok(db, &["branch", "add", "br-1", "--company", "co-1", "--name", "One North"]);
    admin_ok(db, &["branch", "add", "br-2", "--company", "co-1", "--name", "One South"]);
    let credential = |b: &str| admin_ok(db, &["uplink", "create", "--company", "co-1", "--branch", b]).lines().last().unwrap().to_string();
    (credential("br-1"), credential("br-2"))
}

fn owner() -> String {
    common::token_for_secret("company_owner", Some("co-1"), None)
}

/// Runs tests/python/cluster_check.py with `config`; its JSON answer.
async fn python(config: Value) -> Value {
    let out = tokio::process::Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/cluster_check.py"))
        .env("CLUSTER", config.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "cluster_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn rows(db: &PgDb, sql: &str) -> Vec<Vec<String>> {
    db.psql(sql).lines().filter(|l| !l.is_empty()).map(|l| l.split('|').map(str::to_string).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_starting_together_on_an_empty_database_migrate_it_once_and_a_newer_one_is_refused_unless_additive() {
    let Some(db) = common::postgres::database("migrate_once") else { return };
    let hubs: Vec<Hub> = std::thread::scope(|s| {
        let started: Vec<_> = (0..3).map(|_| s.spawn(|| Hub::start(&db))).collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for h in &hubs {
        let body: Value = reqwest::get(format!("{}/health", h.base())).await.unwrap().json().await.unwrap();
        assert_eq!((body["role"].as_str(), body["db"].as_str()), (Some("hub"), Some("ok")), "{body}");
    }
    assert_eq!(
        rows(&db, "SELECT version, name, floor FROM schema_migrations ORDER BY version"),
        [["1", "0001_init", "1"], ["2", "0002_login_failures", "1"]],
        "each migration once, with the floor it leaves (the second only adds a table)"
    );
    drop(hubs);

    // A database a newer branchd migrated: refused, saying what to do, and left as it was.
    db.psql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (3, '0003_future', 'now')");
    let out = admin(&db, &["migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("newer than this binary"), "{err}");
    assert_eq!(db.psql("SELECT count(*) FROM schema_migrations"), "3");
    // One whose newer migration only added things (its floor is a schema this binary
    // knows): a process of the older release still starts, as in a rolling update.
    db.psql("UPDATE schema_migrations SET floor = 1 WHERE version = 3");
    let older = Hub::start(&db);
    let body: Value = reqwest::get(format!("{}/health", older.base())).await.unwrap().json().await.unwrap();
    assert_eq!(body["db"], "ok", "{body}");
    assert_eq!(db.psql("SELECT count(*) FROM schema_migrations"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_posted_on_one_process_reaches_the_clients_of_every_process_once_and_in_order() {
    let Some(db) = common::postgres::database("fan_out") else { return };
    directory(&db);
    let (a, b) = (Hub::start(&db), Hub::start(&db));
    // The dashboard offers no database download: PostgreSQL's tools back it up.
    let admin_token = common::token_for_secret("super_admin", None, None);
    let system: Value = reqwest::Client::new()
        .get(format!("{}/api/system", a.base()))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(system["mayBackup"], false, "{system}");
    assert!(system["backupRefusal"].as_str().unwrap_or("").contains("pg_dump"), "{system}");
    // Long-polling clients through the documented nginx config (sticky), when nginx is here.
    let nginx = common::nginx::start(&[a.addr(), b.addr()], common::nginx::Balance::Sticky);
    let mut clients =
        vec![json!([a.base(), "websocket"]), json!([b.base(), "websocket"]), json!([a.base(), "polling"]), json!([b.base(), "polling"])];
    if let Some(n) = &nginx {
        clients.extend([json!([n.base, "polling"]), json!([n.base, "websocket"])]);
    }
    let out = python(json!({"token": owner(), "branch": "br-1", "clients": clients, "post": [a.base(), b.base()], "orders": 30})).await;

    let posted: Vec<String> = serde_json::from_value(out["posted"].clone()).unwrap();
    assert_eq!(posted.len(), 30);
    let mut ids_seen: Option<Vec<i64>> = None;
    for c in out["clients"].as_array().unwrap() {
        let events: Vec<(i64, String)> = serde_json::from_value(c["events"].clone()).unwrap();
        let orders: Vec<&String> = events.iter().map(|e| &e.1).collect();
        assert_eq!(orders, posted.iter().collect::<Vec<_>>(), "client {} got every order once, in the order posted", c);
        let ids: Vec<i64> = events.iter().map(|e| e.0).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "event ids increase: {ids:?}");
        match &ids_seen {
            None => ids_seen = Some(ids),
            Some(first) => assert_eq!(first, &ids, "every process gives an event the same id"),
        }
    }
}

/// A branch appliance syncing with the cluster through `lb`.
async fn branch_on(lb: &FaultLb, credential: String) -> TestServer {
    let url = lb.base.clone();
    TestServer::start_with(move |c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(credential.into());
    })
    .await
}

/// (stream seq, event uuid) the branch wrote for HQ.
fn branch_stream(s: &TestServer, branch: &str) -> Vec<(i64, String)> {
    let c = common::sql(s);
    let mut st =
        c.prepare("SELECT stream_seq, event_uuid FROM events WHERE branch_id = ?1 AND stream_seq IS NOT NULL ORDER BY stream_seq").unwrap();
    st.query_map([branch], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<Vec<_>, _>>().unwrap()
}

/// The hub has exactly the branch's events 1..N, each applied once, under the same ids.
fn assert_hub_has_exactly(db: &PgDb, branch: &str, expected: &[(i64, String)]) {
    let hub = rows(db, &format!("SELECT stream_seq, event_uuid, status FROM hub_events WHERE branch_id = '{branch}' ORDER BY stream_seq"));
    assert_eq!(hub.len(), expected.len(), "{branch}: the hub holds each event once");
    for ((seq, uuid), row) in expected.iter().zip(&hub) {
        assert_eq!((seq.to_string(), uuid.as_str(), "applied"), (row[0].clone(), row[1].as_str(), row[2].as_str()), "{branch}");
    }
    assert_eq!(db.psql(&format!("SELECT high_water FROM hub_streams WHERE branch_id = '{branch}'")), expected.len().to_string());
}

async fn until_synced(branch: &TestServer, id: &str) {
    common::eventually_every("the branch to be synced with the cluster", WAIT, Duration::from_millis(100), || async {
        let last = branch_stream(branch, id).last().map(|e| e.0).unwrap_or(0);
        let (_, h) = branch.req(Method::GET, "/health", None, None).await;
        if last > 0 && h["sync"]["acked"] == last && h["sync"]["pending"] == 0 {
            return Ok(());
        }
        branch.state.sync().wake();
        Err(format!("branch at {last}, health {}", h["sync"]))
    })
    .await
}

/// Orders on `branch` until its stream holds at least `events` events, `parallel` at a time.
async fn orders_until(branch: &TestServer, id: &str, events: i64, parallel: usize) {
    let token = branch.token("cashier", Some("co-1"), Some(id));
    let client = reqwest::Client::new();
    while branch_stream(branch, id).len() < events as usize {
        let posts = (0..parallel)
            .map(|_| client.post(format!("{}/api/orders", branch.base)).bearer_auth(&token).json(&common::order_body(id)).send());
        let mut set = tokio::task::JoinSet::new();
        for p in posts {
            set.spawn(p);
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap().unwrap().status(), 201);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_branches_push_5000_events_each_through_a_balancer_that_splits_and_replays_batches() {
    let Some(db) = common::postgres::database("sync_lb") else { return };
    let (c1, c2) = directory(&db);
    let hubs = [Hub::start(&db), Hub::start(&db), Hub::start(&db)];
    let addrs: Vec<_> = hubs.iter().map(Hub::addr).collect();
    // Consecutive requests go to different processes; a fifth of the sync POSTs are sent
    // again to the next process too (a retry across the balancer).
    let lb = FaultLb::start(&addrs, LbConfig { replay_fraction: 0.2, ..LbConfig::default() }).await;
    let (b1, b2) = (branch_on(&lb, c1.clone()).await, branch_on(&lb, c2).await);
    // An HQ change for br-1, made through one process: the feed down to the branch.
    let r = reqwest::Client::new()
        .put(format!("{}/api/availability/br-1/product/falafel", hubs[0].base()))
        .bearer_auth(owner())
        .json(&json!({"available": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::join!(orders_until(&b1, "br-1", 5000, 16), orders_until(&b2, "br-2", 5000, 16));
    tokio::join!(until_synced(&b1, "br-1"), until_synced(&b2, "br-2"));

    assert!(lb.replayed() > 0, "batches were replayed");
    assert!(lb.served().iter().all(|n| *n > 0), "every process served: {:?}", lb.served());
    for (branch, id) in [(&b1, "br-1"), (&b2, "br-2")] {
        let expected = branch_stream(branch, id);
        assert!(expected.len() >= 5000);
        assert_hub_has_exactly(&db, id, &expected);
        let orders: i64 = common::sql(branch).query_row("SELECT count(*) FROM orders WHERE branch_id = ?1", [id], |r| r.get(0)).unwrap();
        assert_eq!(db.psql(&format!("SELECT count(*) FROM orders WHERE branch_id = '{id}'")), orders.to_string(), "{id}: every order once");
    }
    // The feed to a branch is the same from every process.
    let mut feeds = Vec::new();
    for h in &hubs {
        let r = reqwest::Client::new().get(format!("{}/sync/v1/feed?after=0", h.base())).bearer_auth(&c1).send().await.unwrap();
        assert_eq!(r.status(), 200);
        feeds.push(r.json::<Value>().await.unwrap());
    }
    assert!(feeds[0].to_string().contains("falafel"), "{}", feeds[0]);
    assert!(feeds.iter().all(|f| f == &feeds[0]), "{feeds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_process_loses_nothing_acknowledged_and_clients_and_uplinks_recover() {
    let Some(db) = common::postgres::database("kill_one") else { return };
    let (c1, _) = directory(&db);
    let (a, b) = (Hub::start(&db), Hub::start(&db));
    let lb = FaultLb::start(&[a.addr(), b.addr()], LbConfig::default()).await;
    let branch = branch_on(&lb, c1).await;
    let token = owner();
    let client = reqwest::Client::new();

    // HQ takes orders for br-2 through the balancer (retrying a failed POST, as a client
    // would; the order id makes the retry safe) while br-1's appliance pushes its own; process
    // A dies midway. (br-2 has no appliance here: an HQ order for a syncing branch comes back
    // once more, numbered by the branch, by design.)
    let ids: Vec<String> = (0..60).map(|i| format!("hq-order-{i:03}")).collect();
    let before_kill = {
        let out = python(json!({"token": token, "branch": "br-2", "catchUpFrom": a.base(), "since": 0})).await;
        out["events"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(before_kill, 0);
    let mut a = Some(a);
    let mut acknowledged = Vec::new();
    let mut last_seen_on_a = 0i64;
    for (i, id) in ids.iter().enumerate() {
        if i == 30 {
            // What a client on A had seen, then A is gone without a word.
            let out = python(json!({"token": token, "branch": "br-2", "catchUpFrom": a.as_ref().unwrap().base(), "since": 0})).await;
            last_seen_on_a = out["events"].as_array().unwrap().iter().map(|e| e[0].as_i64().unwrap()).max().unwrap_or(0);
            a.take().unwrap().proc.kill_9();
        }
        if i % 5 == 0 {
            orders_until(&branch, "br-1", (branch_stream(&branch, "br-1").len() + 3) as i64, 3).await;
        }
        let mut body = common::order_body("br-2");
        body["id"] = json!(id);
        let created = common::eventually("the order to be accepted by a live process", Duration::from_secs(30), || async {
            let r = client.post(format!("{}/api/orders", lb.base)).bearer_auth(&token).json(&body).send().await.ok()?;
            matches!(r.status().as_u16(), 200 | 201).then_some(())
        })
        .await;
        let () = created;
        acknowledged.push(id.clone());
    }

    // Nothing acknowledged is lost, and nothing doubled.
    for id in &acknowledged {
        let (st, o) = common::eventually("the order on the surviving process", Duration::from_secs(10), || async {
            let r = client.get(format!("{}/api/orders/{id}", b.base())).bearer_auth(&token).send().await.ok()?;
            let st = r.status().as_u16();
            Some((st, r.json::<Value>().await.ok()?))
        })
        .await;
        assert_eq!(st, 200, "{id}: {o}");
    }
    assert_eq!(db.psql("SELECT count(*) FROM orders WHERE id LIKE 'hq-order-%'"), acknowledged.len().to_string());

    // A client of the dead process reconnects to the other and catches up on what it missed.
    let out = python(json!({"token": token, "branch": "br-2", "catchUpFrom": b.base(), "since": last_seen_on_a})).await;
    let missed: Vec<(i64, String)> = serde_json::from_value(out["events"].clone()).unwrap();
    assert!(missed.windows(2).all(|w| w[0].0 < w[1].0), "in order: {missed:?}");
    for id in &acknowledged[30..] {
        assert_eq!(missed.iter().filter(|e| &e.1 == id).count(), 1, "{id} is in the catch-up once: {missed:?}");
    }

    // The branch's uplink found the surviving process through the balancer: every event once.
    orders_until(&branch, "br-1", (branch_stream(&branch, "br-1").len() + 5) as i64, 5).await;
    until_synced(&branch, "br-1").await;
    assert_hub_has_exactly(&db, "br-1", &branch_stream(&branch, "br-1"));
}

#[test]
fn a_database_url_needs_the_hub_role_and_a_shared_secret_and_backups_point_to_postgres_tools() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--data-dir").arg(dir.path()).env("BRANCHD_CONFIG", "").env_remove("JWT_SECRET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let url = ("BRANCHD_DATABASE_URL", "postgres://postgres@127.0.0.1:1/none");
    let (code, err) = run(&[url, ("JWT_SECRET", common::SECRET)], &["check-config"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("BRANCHD_DATABASE_URL") && err.contains("hub"), "a branch keeps SQLite: {err}");
    let (code, err) = run(&[url, ("BRANCHD_ROLE", "hub")], &["check-config"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("JWT_SECRET"), "every process must share the secret: {err}");
    let (code, err) =
        run(&[("BRANCHD_DATABASE_URL", "mysql://x"), ("BRANCHD_ROLE", "hub"), ("JWT_SECRET", common::SECRET)], &["check-config"]);
    assert_eq!(code, Some(2), "{err}");

    let Some(db) = common::postgres::database("backup_tools") else { return };
    let out = admin(&db, &["backup", dir.path().join("copy.db").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pg_dump"), "{err}");
    assert!(!dir.path().join("copy.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_by_postgres_are_made_again_without_a_failed_request() {
    let Some(db) = common::postgres::database("reconnect") else { return };
    directory(&db);
    let (a, b) = (Hub::start(&db), Hub::start(&db));
    let token = owner();
    let client = reqwest::Client::new();
    let list = |base: String| client.get(format!("{base}/api/orders?branchId=br-2")).bearer_auth(&token).send();
    assert_eq!(list(a.base()).await.unwrap().status(), 200);
    assert_eq!(list(b.base()).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A PostgreSQL restart or failover, as the hub processes see it: every connection cut.
    let cut = db.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert!(cut.parse::<i64>().unwrap() >= 4, "the writers, readers and listeners of both processes: {cut}");

    let r = client.post(format!("{}/api/orders", b.base())).bearer_auth(&token).json(&common::order_body("br-2")).send().await.unwrap();
    assert_eq!(r.status(), 201, "the first write after the cut: {}", r.text().await.unwrap());
    assert_eq!(list(a.base()).await.unwrap().status(), 200, "the first read after the cut");
    // Broadcasts cross processes again (each process's listener reconnected).
    let out = python(json!({"token": token, "branch": "br-2", "clients": [[a.base(), "websocket"], [b.base(), "websocket"]], "post": [b.base(), a.base()], "orders": 6})).await;
    let posted: Vec<String> = serde_json::from_value(out["posted"].clone()).unwrap();
    for c in out["clients"].as_array().unwrap() {
        // (The order written right after the cut may arrive too: A's listener delivered it
        // after reconnecting, once, in order.)
        let events: Vec<(i64, String)> = serde_json::from_value(c["events"].clone()).unwrap();
        let of_run: Vec<&String> = events.iter().map(|e| &e.1).filter(|id| posted.contains(id)).collect();
        assert_eq!(of_run, posted.iter().collect::<Vec<_>>(), "{c}");
        assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "{c}");
    }
}

/// A burst of reads (a reconnect storm: every connect reads its user's state) shares the
/// process's few pooled connections instead of opening one per blocking thread, which on
/// PostgreSQL would run into `max_connections` (100) and fail requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reads_shares_a_few_database_connections() {
    let Some(db) = common::postgres::database("a_burst_of_reads_shares") else { return };
    let url = db.url();
    let hub = TestServer::start_with(move |c| {
        c.role = branchd::config::ApplianceRole::Hub;
        c.database_url = Some(url.into());
    })
    .await;
    let count = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()";
    let idle: usize = db.psql(count).trim().parse().unwrap();
    let reads: Vec<_> = (0..300)
        .map(|_| {
            let store = hub.state.db().clone();
            tokio::spawn(async move {
                store
                    .read(|r| {
                        std::thread::sleep(Duration::from_millis(5));
                        r.ping()
                    })
                    .await
            })
        })
        .collect();
    let sampler = tokio::task::spawn_blocking(move || {
        let mut most = 0usize;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            most = most.max(db.psql(count).trim().parse().unwrap());
        }
        most
    });
    for r in reads {
        r.await.unwrap().expect("every read of the burst succeeds");
    }
    let most = sampler.await.unwrap();
    // The pool holds at most 8 read connections; psql itself is one more.
    assert!(most <= idle + 8, "at most 8 more connections during the burst: {idle} before, {most} at the most");
    assert!(most > idle, "the burst was seen reading ({idle} before, {most} at the most)");
}

/// A push's first stage (its events stored under the branch's own lock) does not hold up the
/// other processes: a write with a broadcast commits on process B while process A's staged
/// write waits in stage one; once A takes the write-order lock, B's next write waits for A's
/// commit, and the event ids follow commit order. A broadcast in stage one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_write_holds_up_other_processes_only_from_its_second_stage() {
    use std::sync::mpsc;
    let Some(db) = common::postgres::database("a_staged_write_holds_up") else { return };
    let start = |url: String| {
        TestServer::start_with(move |c| {
            c.role = branchd::config::ApplianceRole::Hub;
            c.database_url = Some(url.into());
        })
    };
    let (a, b) = (start(db.url()).await, start(db.url()).await);
    let emit_on = |s: &TestServer, name: &'static str| {
        let store = s.state.db().clone();
        async move {
            store
                .write(move |tx| tx.emit("/orders", name, ("co-x", "br-x"), json!({})))
                .await
                .map(|d| d["eventId"].as_str().unwrap_or_default().parse::<i64>().unwrap())
        }
    };
    // Phase 1: A waits in stage one; B's write commits meanwhile.
    let (at, at_rx) = mpsc::channel::<&'static str>();
    let (go, go_rx) = mpsc::channel::<()>();
    let staged = {
        let store = a.state.db().clone();
        tokio::spawn(async move {
            store
                .write_staged(move |tx| {
                    let refused = tx.emit("/orders", "staged-early", ("co-x", "br-x"), json!({})).is_err();
                    at.send("stage one").unwrap();
                    go_rx.recv_timeout(Duration::from_secs(30)).expect("go for stage two");
                    tx.order_writes()?;
                    at.send("stage two").unwrap();
                    go_rx.recv_timeout(Duration::from_secs(30)).expect("go for commit");
                    tx.emit("/orders", "staged-late", ("co-x", "br-x"), json!({}))?;
                    Ok::<_, branchd::store::StoreError>(refused)
                })
                .await
        })
    };
    assert_eq!(at_rx.recv_timeout(Duration::from_secs(10)).unwrap(), "stage one");
    let first = tokio::time::timeout(Duration::from_secs(10), emit_on(&b, "during-stage-one"))
        .await
        .expect("B commits while A is in stage one")
        .unwrap();
    // Phase 2: A holds the write-order lock; B's next write waits for A's commit.
    go.send(()).unwrap();
    let at_rx = tokio::task::spawn_blocking(move || {
        assert_eq!(at_rx.recv_timeout(Duration::from_secs(10)).unwrap(), "stage two");
        at_rx
    })
    .await
    .unwrap();
    let second = tokio::spawn(emit_on(&b, "during-stage-two"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!second.is_finished(), "B's write waits while A holds the write-order lock");
    go.send(()).unwrap();
    let refused = staged.await.unwrap().expect("the staged write commits");
    assert!(refused, "a broadcast before order_writes is refused");
    let second = tokio::time::timeout(Duration::from_secs(10), second).await.expect("B commits after A").unwrap().unwrap();
    drop(at_rx);
    let ids = rows(&db, "SELECT name, seq FROM events WHERE company_id = 'co-x' ORDER BY seq");
    let names: Vec<&str> = ids.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["during-stage-one", "staged-late", "during-stage-two"], "ids follow commit order: {ids:?}");
    assert!(first < second);
}

/// The hub reaches PostgreSQL over TLS as its URL says, the way libpq reads `sslmode` and
/// `sslrootcert`: a database that refuses plain TCP is reached with `require`, `verify-ca`
/// and `verify-full` against the right CA and name; a wrong CA, a name the certificate does
/// not carry (verify-full), a missing CA file or `disable` is refused with a message that
/// says what to check; a client certificate signs in where the server asks for one; a hub
/// process's connections are all encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_connection_uses_tls_as_the_url_says() {
    let Some((db, cert_only)) = common::postgres::tls_databases() else { return };
    let url = |query: &str| format!("{}?{query}", db.url());
    let run = |url: &str, args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        common::process::run_env(dir.path(), args, &[("BRANCHD_ROLE", "hub"), ("BRANCHD_DATABASE_URL", url)])
    };
    let ca = db.ca_file().display().to_string();
    // The server's certificate names `localhost`, not 127.0.0.1: reached as `localhost`
    // (hostaddr keeps it on IPv4), the name matches.
    let by_name = format!("{}?hostaddr=127.0.0.1&", db.url().replacen("127.0.0.1", "localhost", 1));
    let ok = |url: &str, id: &str| common::process::ok(&run(url, &["company", "add", id, "--name", id]));
    ok(&url("sslmode=require"), "co-require");
    ok(&format!("{by_name}sslmode=verify-full&sslrootcert={ca}"), "co-verify-full");
    ok(&url(&format!("sslmode=verify-ca&sslrootcert={ca}")), "co-verify-ca"); // the chain only
    ok(&db.url(), "co-prefer"); // the default, prefer: TLS when offered

    let refused = |url: &str| {
        let out = run(url, &["company", "add", "co-never", "--name", "never"]);
        assert!(!out.status.success(), "{url}: refused");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let plain = refused(&url("sslmode=disable"));
    assert!(plain.contains("pg_hba.conf") && plain.contains("check sslmode"), "plain TCP is refused, saying what to check: {plain}");
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(other_ca.path(), stranger.cert.pem()).unwrap();
    let wrong = refused(&url(&format!("sslmode=verify-full&sslrootcert={}", other_ca.path().display())));
    assert!(wrong.contains("certificate") && wrong.contains("check sslmode"), "an untrusted server certificate is refused: {wrong}");
    let wrong_name = refused(&url(&format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(wrong_name.contains("certificate") && wrong_name.contains("check sslmode"), "verify-full checks the name: {wrong_name}");
    let missing = refused(&url("sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem"));
    assert!(missing.contains("sslrootcert /nonexistent/ca.pem"), "{missing}");
    assert!(!missing.contains(&db.url()), "errors do not echo the database URL: {missing}");
    let companies = rows(&db, "SELECT id FROM companies ORDER BY id");
    assert_eq!(companies, [["co-prefer"], ["co-require"], ["co-verify-ca"], ["co-verify-full"]]);
    // doctor says how the connection is made.
    let doctor = |url: &str| String::from_utf8_lossy(&run(url, &["doctor"]).stdout).to_string();
    let verified = doctor(&format!("{by_name}sslmode=verify-full&sslrootcert={ca}"));
    assert!(verified.contains("over TLS, server certificate verified"), "{verified}");
    let unchecked = doctor(&url("sslmode=require"));
    assert!(unchecked.contains("over TLS, server certificate not checked"), "{unchecked}");
    assert!(!unchecked.contains("is on another machine"), "no warning for a server on this machine: {unchecked}");

    // A server that signs in only by client certificate: refused without one, taken with it.
    let (client_cert, client_key) = db.client_cert();
    let no_cert = format!("{}?sslmode=require", cert_only.url());
    let err = String::from_utf8_lossy(&run(&no_cert, &["company", "add", "co-cert", "--name", "c"]).stderr).to_string();
    assert!(err.contains("certificate"), "no client certificate, no connection: {err}");
    let with_cert = format!("{no_cert}&sslcert={}&sslkey={}", client_cert.display(), client_key.display());
    ok(&with_cert, "co-cert");
    // (psql has no certificate here: the company is seen through branchd again.)
    common::process::ok(&run(&with_cert, &["branch", "add", "br-cert", "--company", "co-cert", "--name", "b"]));
    let unknown = run(&with_cert, &["branch", "add", "br-x", "--company", "co-none", "--name", "x"]);
    assert!(!unknown.status.success(), "the check can fail: an unknown company is refused");

    // A hub process: every connection it holds (writer, fan-out listener, readers) is TLS.
    let dir = tempfile::tempdir().unwrap();
    let verified = format!("{by_name}sslmode=verify-full&sslrootcert={ca}");
    let hub = ServerProcess::start(dir.path(), &[("BRANCHD_ROLE", "hub"), ("BRANCHD_DATABASE_URL", &verified)]);
    let health = reqwest::get(format!("{}/health", hub.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    let sessions = rows(
        &db,
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'",
    );
    assert!(sessions.len() >= 2, "the hub holds its connections: {sessions:?}");
    assert!(sessions.iter().all(|s| s[0] == "t"), "every one is encrypted: {sessions:?}");
}

/// Wrong passwords for one email count across the processes of a cluster: a success on
/// one clears failures made on the other; three wrong on A and three on B lock the email on
/// both (each process alone would have allowed five), even for the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_count_across_processes() {
    let Some(db) = common::postgres::database("login_failures") else { return };
    admin_ok(&db, &["company", "add", "co-1", "--name", "Company One"]);
    let user = ["user", "add", "--email", "owner@one.test", "--password", "right-password-1", "--role", "company_owner"];
    admin_ok(&db, &[&user[..], &["--company", "co-1"]].concat());
    let (a, b) = (Hub::start(&db), Hub::start(&db));
    let http = reqwest::Client::new();
    let login = |hub: &Hub, password: &str| {
        let req = http.post(format!("{}/auth/login", hub.base())).json(&json!({"email": "Owner@one.test", "password": password}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let failures = || rows(&db, "SELECT failures, locked_until_ms IS NOT NULL FROM login_failures");

    assert_eq!((login(&a, "wrong-1").await, login(&a, "wrong-2").await), (401, 401));
    assert_eq!(failures(), [["2", "f"]], "counted in the database, under the email as typed in any case");
    assert_eq!(login(&b, "right-password-1").await, 200);
    assert!(failures().is_empty(), "a success on the other process clears the count");

    for i in 0..6 {
        let hub = if i % 2 == 0 { &a } else { &b };
        assert_eq!(login(hub, &format!("wrong-{i}")).await, 401, "failure {i}");
    }
    assert_eq!(failures(), [["6", "t"]], "the sixth failure, across both processes, started a lockout");
    assert_eq!(login(&a, "right-password-1").await, 429, "locked on A");
    assert_eq!(login(&b, "right-password-1").await, 429, "and on B");
}
