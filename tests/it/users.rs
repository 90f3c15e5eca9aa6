//! Users end to end (SPEC §2/§3) against the real server: who manages whom, validation,
//! duplicate emails, disabled users and password changes refusing older tokens (REST and
//! Socket.IO handshake), sockets of such users closed within 10 s (raw Engine.IO
//! long-polling, as a browser's first transport), and HQ users read-only at a branch.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestServer, eventually_every};
use reqwest::Method;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn login(s: &TestServer, email: &str, password: &str) -> (u16, Value) {
    s.req(Method::POST, "/auth/login", None, Some(json!({"email": email, "password": password}))).await
}

async fn patch(s: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    s.req(Method::PATCH, path, Some(token), Some(body)).await
}

/// Nothing of a password (or its hash) is ever in a user object.
fn assert_no_secret(v: &Value) {
    let text = v.to_string();
    assert!(!text.contains("argon2") && !text.contains("passwordHash") && !text.contains("\"password\""), "{text}");
}

#[tokio::test]
async fn who_manages_whom_and_validation() {
    let s = TestServer::start().await;
    let owner = s.token("company_owner", Some("co-1"), None);
    let owner2 = s.token("company_owner", Some("co-2"), None);
    let manager = s.token("branch_manager", Some("co-1"), Some("br-1"));
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let admin = s.token("super_admin", None, None);
    let pw = "a-good-password";

    // A company owner adds a branch manager; the answer has no password.
    let (st, m1) = s
        .post(
            "/api/users",
            &owner,
            json!({"email": "m1@co1.test", "password": pw, "role": "branch_manager", "branchId": "br-1", "name": "Mona"}),
        )
        .await;
    assert_eq!(st, 201, "{m1}");
    assert_eq!(
        (m1["role"].as_str(), m1["companyId"].as_str(), m1["branchId"].as_str()),
        (Some("branch_manager"), Some("co-1"), Some("br-1"))
    );
    assert_eq!((m1["name"].as_str(), m1["disabled"].as_bool(), m1["readOnly"].as_bool()), (Some("Mona"), Some(false), Some(false)));
    assert_no_secret(&m1);
    // Only a super_admin creates company owners and super admins.
    let (st, v) = s.post("/api/users", &owner, json!({"email": "o@co1.test", "password": pw, "role": "company_owner"})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "{v}");
    let (st, v) = s.post("/api/users", &owner, json!({"email": "sa@x.test", "password": pw, "role": "super_admin"})).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) =
        s.post("/api/users", &admin, json!({"email": "o2@co1.test", "password": pw, "role": "company_owner", "companyId": "co-1"})).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = s.post("/api/users", &admin, json!({"email": "root@x.test", "password": pw, "role": "super_admin"})).await;
    assert_eq!((st, v["companyId"].clone()), (201, Value::Null), "{v}");
    let (st, v) =
        s.post("/api/users", &admin, json!({"email": "n@x.test", "password": pw, "role": "cashier", "branchId": "nowhere"})).await;
    assert_eq!((st, code(&v)), (404, "NOT_FOUND"), "{v}");
    // Another company's branch reads as unknown.
    let (st, v) = s.post("/api/users", &owner, json!({"email": "c@co1.test", "password": pw, "role": "cashier", "branchId": "br-3"})).await;
    assert_eq!((st, code(&v)), (404, "NOT_FOUND"), "{v}");

    // A branch manager adds staff of its own branch (the branch is implied), not managers,
    // not another branch's staff.
    let (st, c1) = s.post("/api/users", &manager, json!({"email": "c1@co1.test", "password": pw, "role": "cashier"})).await;
    assert_eq!((st, c1["branchId"].as_str()), (201, Some("br-1")), "{c1}");
    let (st, v) = s.post("/api/users", &manager, json!({"email": "m2@co1.test", "password": pw, "role": "branch_manager"})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "{v}");
    let (st, v) =
        s.post("/api/users", &manager, json!({"email": "c2@co1.test", "password": pw, "role": "kitchen", "branchId": "br-2"})).await;
    assert_eq!(st, 404, "{v}");
    // Staff manage nobody and list nobody.
    let (st, v) = s.post("/api/users", &cashier, json!({"email": "k@co1.test", "password": pw, "role": "kitchen"})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "{v}");
    assert_eq!(s.get("/api/users", &cashier).await.0, 403);

    // Duplicate email (any case) is 409; bad input is 400 naming the problem.
    let (st, v) =
        s.post("/api/users", &owner, json!({"email": "C1@co1.test", "password": pw, "role": "cashier", "branchId": "br-2"})).await;
    assert_eq!((st, code(&v)), (409, "EMAIL_TAKEN"), "{v}");
    for (body, word) in [
        (json!({"email": "x@co1.test", "password": "short", "role": "cashier", "branchId": "br-1"}), "8 characters"),
        (json!({"email": "x@co1.test", "password": "aaaaaaaaaaaa", "role": "cashier", "branchId": "br-1"}), "repeated"),
        (json!({"email": "not-an-email", "password": pw, "role": "cashier", "branchId": "br-1"}), "email"),
        (json!({"email": "x@co1.test", "password": pw, "role": "wizard", "branchId": "br-1"}), "role must be one of"),
        (json!({"email": "x@co1.test", "password": pw, "role": "cashier"}), "branchId is required"),
        (json!({"email": "x@co1.test", "password": pw, "role": "cashier", "branchId": "br-1", "admin": true}), "unknown field admin"),
        (json!({"email": "x@co1.test", "role": "cashier", "branchId": "br-1"}), "password is required"),
        (json!(["not", "an", "object"]), "must be an object"),
    ] {
        let (st, v) = s.post("/api/users", &owner, body.clone()).await;
        assert_eq!((st, code(&v)), (400, "VALIDATION_ERROR"), "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap_or("").contains(word), "{body}: {v}");
    }

    // Lists are scoped: the manager sees its branch, the owner its company, owner2 none of it.
    let emails =
        |v: &Value| -> Vec<String> { v["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_string()).collect() };
    let (st, v) = s.get("/api/users", &manager).await;
    assert_eq!(st, 200);
    assert_eq!(emails(&v), ["c1@co1.test", "m1@co1.test"]);
    v["items"].as_array().unwrap().iter().for_each(assert_no_secret);
    let (_, v) = s.get("/api/users", &owner).await;
    assert_eq!(emails(&v), ["c1@co1.test", "m1@co1.test", "o2@co1.test", "owner@co1.test"]);
    let (_, v) = s.get("/api/users", &owner2).await;
    assert!(emails(&v).is_empty(), "{v}");
    let (_, v) = s.get("/api/users?branchId=br-2", &owner).await;
    assert!(emails(&v).is_empty(), "{v}");
    assert_eq!(s.get("/api/users?branchId=br-3", &owner).await.0, 403);
    assert_eq!(s.get("/api/users", &admin).await.1["items"].as_array().unwrap().len(), 5);
    let c1_id = c1["id"].as_str().unwrap();
    let m1_id = m1["id"].as_str().unwrap();
    assert_eq!(s.get(&format!("/api/users/{c1_id}"), &owner2).await.0, 404);

    // Changes: within scope and rank only.
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &manager, json!({"name": "Carl"})).await;
    assert_eq!((st, v["name"].as_str()), (200, Some("Carl")), "{v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &manager, json!({"role": "branch_manager"})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "{v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &manager, json!({"branchId": "br-2"})).await;
    assert_eq!(st, 404, "a manager cannot move staff out of its branch: {v}");
    let (st, v) = patch(&s, &format!("/api/users/{m1_id}"), &manager, json!({"disabled": true})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "a manager does not manage its peers: {v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &owner2, json!({"disabled": true})).await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &owner, json!({"role": "kitchen", "branchId": "br-2"})).await;
    assert_eq!((st, v["role"].as_str(), v["branchId"].as_str()), (200, Some("kitchen"), Some("br-2")), "{v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &owner, json!({"branchId": null})).await;
    assert_eq!((st, code(&v)), (400, "VALIDATION_ERROR"), "kitchen staff need a branch: {v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &owner, json!({"disabled": "yes"})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = patch(&s, &format!("/api/users/{c1_id}"), &owner, json!({"password": pw})).await;
    assert_eq!(st, 400, "passwords change through their own endpoint: {v}");
    // A manager resetting a password: weak ones refused, the answer holds no secret.
    let (st, v) = s.post(&format!("/api/users/{m1_id}/password"), &owner, json!({"password": "short"})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = s.post(&format!("/api/users/{m1_id}/password"), &manager, json!({"password": "another-good-one"})).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = s.post(&format!("/api/users/{m1_id}/password"), &owner, json!({"password": "another-good-one"})).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["passwordChangedAt"].is_string(), "{v}");
    assert_no_secret(&v);
    assert_eq!(login(&s, "m1@co1.test", pw).await.0, 401);
    let (st, v) = login(&s, "m1@co1.test", "another-good-one").await;
    assert_eq!(st, 200, "{v}");
    // Oneself: the name may change, not one's role, branch or disabled flag.
    let me = v["accessToken"].as_str().unwrap().to_string();
    let (st, v) = patch(&s, &format!("/api/users/{m1_id}"), &me, json!({"name": "Mona L."})).await;
    assert_eq!((st, v["name"].as_str()), (200, Some("Mona L.")), "{v}");
    let (st, v) = patch(&s, &format!("/api/users/{m1_id}"), &me, json!({"disabled": true})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "{v}");
    let (st, v) = s.post(&format!("/api/users/{m1_id}/password"), &me, json!({"password": "yet-another-one"})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN"), "{v}");
}

/// One Engine.IO long-polling session on `/orders`.
struct Polling {
    http: reqwest::Client,
    url: String,
}

impl Polling {
    /// Connects with `token`: `Ok` when accepted, `Err(connect_error message)` when refused.
    async fn connect(base: &str, token: &str) -> Result<Polling, String> {
        let http = reqwest::Client::new();
        let open = http.get(format!("{base}/socket.io/?EIO=4&transport=polling")).send().await.unwrap().text().await.unwrap();
        let handshake: Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = handshake["sid"].as_str().unwrap();
        let p = Polling { http, url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}") };
        let auth = json!({"token": token});
        p.http.post(&p.url).body(format!("40/orders,{auth}")).send().await.unwrap();
        for _ in 0..10 {
            for packet in p.poll().await.expect("the session is open") {
                if packet.starts_with("40/orders,") {
                    return Ok(p);
                }
                if let Some(body) = packet.strip_prefix("44/orders,") {
                    return Err(serde_json::from_str::<Value>(body).unwrap()["message"].as_str().unwrap().to_string());
                }
            }
        }
        panic!("no connect reply")
    }

    async fn poll(&self) -> Result<Vec<String>, u16> {
        let res = self.http.get(&self.url).send().await.unwrap();
        let status = res.status().as_u16();
        if status != 200 {
            return Err(status);
        }
        let packets: Vec<String> = res.text().await.unwrap().split('\u{1e}').map(str::to_string).collect();
        if packets.iter().any(|p| p == "2") {
            self.http.post(&self.url).body("3").send().await.unwrap();
        }
        Ok(packets)
    }

    /// Polls until the server disconnects `/orders` (or closes the session); how long it took.
    async fn until_disconnected(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let left = limit.checked_sub(started.elapsed()).expect("the socket is still connected after the limit");
            match tokio::time::timeout(left, self.poll()).await.expect("the socket is still connected after the limit") {
                Ok(packets) if packets.iter().any(|p| p.starts_with("41/orders") || p == "1") => return started.elapsed(),
                Ok(_) => {}
                Err(_) => return started.elapsed(),
            }
        }
    }
}

async fn add_cashier(s: &TestServer, email: &str, password: &str) -> String {
    let owner = s.token("company_owner", Some("co-1"), None);
    let (st, v) = s.post("/api/users", &owner, json!({"email": email, "password": password, "role": "cashier", "branchId": "br-1"})).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn disabling_a_user_refuses_its_tokens_and_closes_its_sockets() {
    let s = TestServer::start().await;
    let owner = s.token("company_owner", Some("co-1"), None);
    let id = add_cashier(&s, "dis@co1.test", "cashier-password").await;
    let (st, v) = login(&s, "dis@co1.test", "cashier-password").await;
    assert_eq!(st, 200, "{v}");
    let token = v["accessToken"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/orders?branchId=br-1", &token).await.0, 200);
    let socket = Polling::connect(&s.base, &token).await.expect("connected");

    let (st, v) = patch(&s, &format!("/api/users/{id}"), &owner, json!({"disabled": true})).await;
    assert_eq!((st, v["disabled"].as_bool()), (200, Some(true)), "{v}");
    let took = socket.until_disconnected(Duration::from_secs(10)).await;
    eprintln!("socket of the disabled user closed after {took:?}");
    let (st, v) = s.get("/api/orders?branchId=br-1", &token).await;
    assert_eq!((st, code(&v)), (401, "TOKEN_INVALID"), "{v}");
    assert_eq!(Polling::connect(&s.base, &token).await.err().as_deref(), Some("TOKEN_INVALID"));
    let (st, v) = login(&s, "dis@co1.test", "cashier-password").await;
    assert_eq!((st, code(&v)), (403, "USER_DISABLED"), "{v}");
    // A wrong password says nothing about the account being disabled.
    assert_eq!(code(&login(&s, "dis@co1.test", "not-the-password").await.1), "INVALID_CREDENTIALS");

    // Enabled again: the same token works again (only a password change retires tokens).
    assert_eq!(patch(&s, &format!("/api/users/{id}"), &owner, json!({"disabled": false})).await.0, 200);
    assert_eq!(s.get("/api/orders?branchId=br-1", &token).await.0, 200);
    assert!(Polling::connect(&s.base, &token).await.is_ok());
    // Tokens of subjects that are not local users (HQ's) are still accepted.
    assert_eq!(s.get("/api/orders?branchId=br-1", &s.token("cashier", Some("co-1"), Some("br-1"))).await.0, 200);
}

#[tokio::test]
async fn a_password_change_retires_older_tokens_and_their_sockets() {
    let s = TestServer::start().await;
    let owner = s.token("company_owner", Some("co-1"), None);
    let id = add_cashier(&s, "pw@co1.test", "first-password").await;
    let old = login(&s, "pw@co1.test", "first-password").await.1["accessToken"].as_str().unwrap().to_string();
    let socket = Polling::connect(&s.base, &old).await.expect("connected");

    // One's own password: the current one is checked, weak new ones refused.
    let change = |cur: &str, new: &str| json!({"currentPassword": cur, "newPassword": new});
    let (st, v) = s.post("/auth/password", &old, change("wrong-password", "second-password")).await;
    assert_eq!((st, code(&v)), (403, "INVALID_CREDENTIALS"), "{v}");
    let (st, v) = s.post("/auth/password", &old, change("first-password", "2short")).await;
    assert_eq!((st, code(&v)), (400, "VALIDATION_ERROR"), "{v}");
    let (st, v) = s.post("/auth/password", &old, change("first-password", "second-password")).await;
    assert_eq!(st, 200, "{v}");
    assert_no_secret(&v["user"]);
    let fresh = v["accessToken"].as_str().unwrap().to_string();

    let took = socket.until_disconnected(Duration::from_secs(10)).await;
    eprintln!("socket with the token from before the password change closed after {took:?}");
    let (st, v) = s.get("/api/orders?branchId=br-1", &old).await;
    assert_eq!((st, code(&v)), (401, "TOKEN_INVALID"), "{v}");
    assert_eq!(Polling::connect(&s.base, &old).await.err().as_deref(), Some("TOKEN_INVALID"));
    assert_eq!(s.get("/api/orders?branchId=br-1", &fresh).await.0, 200);
    assert!(Polling::connect(&s.base, &fresh).await.is_ok());
    assert_eq!(login(&s, "pw@co1.test", "first-password").await.0, 401);

    // A manager's reset retires the token the user got from its own change.
    let (st, v) = s.post(&format!("/api/users/{id}/password"), &owner, json!({"password": "third-password"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get("/api/orders?branchId=br-1", &fresh).await.0, 401);
    let (st, v) = login(&s, "pw@co1.test", "third-password").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get("/api/orders?branchId=br-1", v["accessToken"].as_str().unwrap()).await.0, 200);
    // A token for a subject this appliance does not keep cannot change a password here.
    let (st, v) = s.post("/auth/password", &owner, change("x-password", "second-password")).await;
    assert_eq!(st, 404, "{v}");
}

#[tokio::test]
async fn users_from_hq_are_read_only_at_a_branch() {
    let s = TestServer::start().await;
    let owner = s.token("company_owner", Some("co-1"), None);
    // The user as the hub's feed delivers it (sync::apply, `directory:user`).
    let hash = branchd::auth::password::hash("hq-password");
    let d = json!({"id": "hq-user-1", "email": "hq@co1.test", "passwordHash": hash, "role": "cashier",
                   "companyId": "co-1", "branchId": "br-1", "name": "From HQ", "disabled": false});
    s.state.db().write(move |tx| branchd::store::directory::replicate_user(tx, &d)).await.unwrap();

    let (st, v) = s.get("/api/users/hq-user-1", &owner).await;
    assert_eq!((st, v["origin"].as_str(), v["readOnly"].as_bool()), (200, Some("hq"), Some(true)), "{v}");
    assert_no_secret(&v);
    let (st, v) = patch(&s, "/api/users/hq-user-1", &owner, json!({"disabled": true})).await;
    assert_eq!((st, code(&v)), (409, "MANAGED_AT_HQ"), "{v}");
    let (st, v) = s.post("/api/users/hq-user-1/password", &owner, json!({"password": "a-new-password"})).await;
    assert_eq!((st, code(&v)), (409, "MANAGED_AT_HQ"), "{v}");
    let (st, v) = login(&s, "hq@co1.test", "hq-password").await;
    assert_eq!(st, 200, "HQ users log in offline at the branch: {v}");
    let token = v["accessToken"].as_str().unwrap().to_string();
    let (st, v) = s.post("/auth/password", &token, json!({"currentPassword": "hq-password", "newPassword": "another-one"})).await;
    assert_eq!((st, code(&v)), (409, "MANAGED_AT_HQ"), "{v}");

    // HQ disables it: the next feed copy says so, and its token is refused here.
    let d = json!({"id": "hq-user-1", "email": "hq@co1.test", "passwordHash": branchd::auth::password::hash("hq-password"),
                   "role": "cashier", "companyId": "co-1", "branchId": "br-1", "disabled": true});
    s.state.db().write(move |tx| branchd::store::directory::replicate_user(tx, &d)).await.unwrap();
    // The gate caches a user's state for up to 2 s when the change came from elsewhere.
    eventually_every("the token of a user disabled at HQ to be refused", Duration::from_secs(5), Duration::from_millis(200), || async {
        (s.get("/api/orders?branchId=br-1", &token).await.0 == 401).then_some(())
    })
    .await;
    assert_eq!(code(&login(&s, "hq@co1.test", "hq-password").await.1), "USER_DISABLED");
}

/// A hub and a branch syncing directly (no proxy).
async fn hub_and_branch() -> (TestServer, TestServer) {
    let hub = TestServer::start_with(|c| c.role = branchd::config::ApplianceRole::Hub).await;
    let credential = branchd::sync::hub::new_credential();
    let hash = branchd::auth::license::hash(&credential);
    hub.state.db().write(move |tx| branchd::store::sync::uplink_create(tx, "br-1", "co-1", &hash)).await.unwrap();
    let url = hub.base.clone();
    let branch = TestServer::start_with(move |c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(credential.into());
    })
    .await;
    (hub, branch)
}

/// Logs in at `s` until the answer has `want` status (the feed brings changes in its own time).
async fn login_until(s: &TestServer, email: &str, password: &str, want: u16) -> Value {
    eventually_every(&format!("login at the branch to answer {want}"), Duration::from_secs(20), Duration::from_millis(50), || async {
        let (st, v) = login(s, email, password).await;
        if st == want {
            return Ok(v);
        }
        s.state.sync().wake();
        Err(format!("{st}: {v}"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_made_at_hq_reach_the_branch_read_only_with_their_disabled_flag() {
    let (hub, branch) = hub_and_branch().await;
    let hq_owner = hub.token("company_owner", Some("co-1"), None);
    let (st, u) = hub
        .post(
            "/api/users",
            &hq_owner,
            json!({"email": "feed@co1.test", "password": "feed-password", "role": "cashier", "branchId": "br-1"}),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    let id = u["id"].as_str().unwrap();
    assert_eq!(u["readOnly"], false, "managed where it was made: {u}");

    let v = login_until(&branch, "feed@co1.test", "feed-password", 200).await;
    let token = v["accessToken"].as_str().unwrap().to_string();
    let owner = branch.token("company_owner", Some("co-1"), None);
    let (st, at_branch) = branch.get(&format!("/api/users/{id}"), &owner).await;
    assert_eq!((st, at_branch["origin"].as_str(), at_branch["readOnly"].as_bool()), (200, Some("hq"), Some(true)), "{at_branch}");
    let (st, v) = patch(&branch, &format!("/api/users/{id}"), &owner, json!({"name": "renamed here"})).await;
    assert_eq!((st, code(&v)), (409, "MANAGED_AT_HQ"), "{v}");

    // Disabled at HQ: refused at the branch too.
    let (st, v) = patch(&hub, &format!("/api/users/{id}"), &hq_owner, json!({"disabled": true})).await;
    assert_eq!(st, 200, "{v}");
    let v = login_until(&branch, "feed@co1.test", "feed-password", 403).await;
    assert_eq!(code(&v), "USER_DISABLED");
    eventually_every(
        "the branch to refuse the token of a user disabled at HQ",
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async { (branch.get("/api/orders?branchId=br-1", &token).await.0 == 401).then_some(()) },
    )
    .await;
    // A new password at HQ reaches the branch as well.
    assert_eq!(patch(&hub, &format!("/api/users/{id}"), &hq_owner, json!({"disabled": false})).await.0, 200);
    let (st, v) = hub.post(&format!("/api/users/{id}/password"), &hq_owner, json!({"password": "new-feed-password"})).await;
    assert_eq!(st, 200, "{v}");
    login_until(&branch, "feed@co1.test", "new-feed-password", 200).await;
}
