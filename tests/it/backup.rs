//! Backups of the real binary: `branchd backup` under write load, `branchd restore` (refused
//! while the server runs, refused for a damaged file, keeps the old database), and the
//! scheduled backups inside `serve` with rotation.

use crate::common;

use common::process::{ServerProcess, ok, run};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

fn order_ids(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c.prepare("SELECT id FROM orders").unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_write_load_restores_every_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    ok(&run(&d, &["company", "add", "co-b", "--name", "B"]));
    ok(&run(&d, &["branch", "add", "br-b", "--company", "co-b", "--name", "B"]));
    let token = ok(&run(&d, &["token", "issue", "--sub", "u", "--role", "cashier", "--company", "co-b", "--branch", "br-b"]));
    let token = token.trim().to_string();
    let mut server = ServerProcess::start(&d, &[]);

    // Four writers create orders as fast as the server acknowledges them.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (acked, stop, base, token) = (acked.clone(), stop.clone(), server.base.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5000 {
                let id = format!("w{w}-{i}");
                let body = json!({"id": id, "branchId": "br-b", "type": "takeaway",
                                  "items": [{"name": "Falafel", "quantity": 1, "unitPrice": 450}]});
                let r = http.post(format!("{base}/api/orders")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201);
                acked.lock().unwrap().push(id);
                i += 1;
            }
        }));
    }
    common::eventually_every(
        "100 acknowledged writes (the writers are too slow)",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { (acked.lock().unwrap().len() >= 100).then_some(()) },
    )
    .await;

    // The backup runs while the writers go on.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let file = dir.path().join("under-load.db");
    let (d2, f2) = (d.clone(), file.clone());
    let out = tokio::task::spawn_blocking(move || run(&d2, &["backup", f2.to_str().unwrap()])).await.unwrap();
    ok(&out);
    let during = acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let total = acked.lock().unwrap().len();
    assert!(total > during || during > before.len(), "writes went on during the backup");

    assert_eq!(integrity(&file), "ok");
    let in_backup: std::collections::HashSet<String> = order_ids(&file).into_iter().collect();
    for id in &before {
        assert!(in_backup.contains(id), "order {id} was acknowledged before the backup started but is missing from it");
    }
    assert!(in_backup.len() <= total);

    // Restore is refused while the server runs, and for a damaged file.
    let refused = run(&d, &["restore", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert_eq!(server.stop().code(), Some(0), "a clean exit on SIGTERM");
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&file).unwrap();
    for b in bytes.iter_mut().skip(4096).take(8192) {
        *b = 0xA5;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    let live_before = order_ids(&d.join("branchd.db")).len();
    let out = run(&d, &["restore", damaged.to_str().unwrap()]);
    assert!(!out.status.success(), "a damaged backup must be refused");
    assert_eq!(order_ids(&d.join("branchd.db")).len(), live_before, "a refused restore changes nothing");
    assert!(!d.join("branchd.db.before-restore").exists());

    // The real restore: the old database is kept, the backup's orders are served again.
    let out = ok(&run(&d, &["restore", file.to_str().unwrap()]));
    assert!(out.contains("before-restore"), "{out}");
    assert_eq!(order_ids(&d.join("branchd.db.before-restore")).len(), live_before);
    assert_eq!(integrity(&d.join("branchd.db")), "ok");
    let server = ServerProcess::start(&d, &[]);
    let http = reqwest::Client::new();
    let listed: serde_json::Value = http
        .get(format!("{}/api/orders?branchId=br-b&status=all&limit=1000", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["items"].as_array().is_some_and(|a| !a.is_empty()));
    for id in before.iter().step_by(7) {
        let r = http.get(format!("{}/api/orders/{id}", server.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200, "order {id} must be back after the restore");
    }
}

#[test]
fn scheduled_backups_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let bk = dir.path().join("bk");
    // 0.0003 h ≈ 1.1 s between backups; keep 2.
    let _server = ServerProcess::start(
        &d,
        &[("BRANCHD_BACKUP_DIR", bk.to_str().unwrap()), ("BRANCHD_BACKUP_INTERVAL_HOURS", "0.0003"), ("BRANCHD_BACKUP_KEEP", "2")],
    );
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names: Vec<String> = std::fs::read_dir(&bk)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("branchd-") && n.ends_with(".db"))
            .collect();
        assert!(names.len() <= 2, "rotation keeps 2: {names:?}");
        seen.extend(names);
        if seen.len() >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "saw only {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut now: Vec<_> =
        std::fs::read_dir(&bk).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "db")).collect();
    now.sort();
    assert_eq!(integrity(now.last().unwrap()), "ok");
    // doctor reports the newest backup (it exits 1 here because no printer is configured).
    let out = run(&d, &["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✔ backup"), "{text}");
}
