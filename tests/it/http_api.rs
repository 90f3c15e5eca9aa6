//! HTTP contract of SPEC §3 against a real server on an ephemeral port.

use crate::common;

use common::{TestServer, order_body, token_with};
use reqwest::Method;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn login_health_metrics_and_unknown_routes() {
    let s = TestServer::start().await;
    let (st, body) = s.req(Method::POST, "/auth/login", None, Some(json!({"email": "owner@co1.test", "password": "owner-password"}))).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["user"]["role"], "company_owner");
    assert_eq!(body["user"]["companyId"], "co-1");
    let token = body["accessToken"].as_str().unwrap().to_string();
    let (st, _) = s.get("/api/orders", &token).await;
    assert_eq!(st, 200, "a login token works on the API");

    let (st, body) = s.req(Method::POST, "/auth/login", None, Some(json!({"email": "owner@co1.test", "password": "nope"}))).await;
    assert_eq!((st, code(&body)), (401, "INVALID_CREDENTIALS"));
    let (st, body) = s.req(Method::POST, "/auth/login", None, Some(json!({"email": 5}))).await;
    assert_eq!((st, code(&body)), (400, "VALIDATION_ERROR"));

    let (st, h) = s.req(Method::GET, "/health", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["db"], "ok");
    assert_eq!(h["role"], "branch");
    assert_eq!(h["upstream"], "disabled");
    for ns in ["/printing-ws", "/orders", "/availability"] {
        assert_eq!(h["connections"][ns], 0, "{ns}");
    }
    assert!(h["uptimeSeconds"].is_u64() && h["version"].is_string());

    let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    for name in [
        "branchd_socketio_connections{namespace=\"/orders\"}",
        "branchd_events_emitted_total",
        "branchd_http_request_duration_seconds_bucket",
        "branchd_db_up 1",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }

    let (st, body) = s.req(Method::GET, "/api/nope", Some(&token), None).await;
    assert_eq!((st, code(&body)), (404, "NOT_FOUND"));
    let dash = reqwest::get(format!("{}/", s.base)).await.unwrap();
    assert_eq!(dash.status(), 200);
    assert!(dash.text().await.unwrap().contains("<title>branchd</title>"));
}

#[tokio::test]
async fn tokens_are_checked() {
    let s = TestServer::start().await;
    let (st, body) = s.req(Method::GET, "/api/orders", None, None).await;
    assert_eq!((st, code(&body)), (401, "AUTH_REQUIRED"));
    let (st, body) = s.get("/api/orders", "not.a.token").await;
    assert_eq!((st, code(&body)), (401, "TOKEN_INVALID"));
    let expired = token_with(&s.state, "company_owner", Some("co-1"), None, -600);
    let (st, body) = s.get("/api/orders", &expired).await;
    assert_eq!((st, code(&body)), (401, "TOKEN_EXPIRED"));
    let other = branchd::auth::jwt::Keys::new(b"another-secret-of-enough-length").issue(&branchd::auth::jwt::Claims {
        sub: "x".into(),
        role: "super_admin".into(),
        company_id: None,
        branch_id: None,
        email: None,
        exp: chrono::Utc::now().timestamp() + 600,
        iat: None,
    });
    let (st, body) = s.get("/api/orders", &other).await;
    assert_eq!((st, code(&body)), (401, "TOKEN_INVALID"));
}

#[tokio::test]
async fn order_lifecycle_and_idempotency() {
    let s = TestServer::start().await;
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let (st, o) = s.post("/api/orders", &cashier, order_body("br-1")).await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(o["number"], 1);
    assert_eq!(o["status"], "pending");
    assert_eq!(o["subtotal"], 2 * 650 + 300);
    assert_eq!(o["total"], o["subtotal"]);
    assert_eq!(o["companyId"], "co-1");
    assert_eq!(o["items"][1]["notes"], "no ice");
    for key in ["id", "createdAt", "updatedAt", "customer", "notes", "type", "branchId", "items"] {
        assert!(o.get(key).is_some(), "order lacks {key}");
    }
    let (_, o2) = s.post("/api/orders", &cashier, order_body("br-1")).await;
    assert_eq!(o2["number"], 2);

    // Idempotent by client id: same body → same order, 200; different body → 409.
    let mut body = order_body("br-1");
    body["id"] = json!("client-order-1");
    let (st, first) = s.post("/api/orders", &cashier, body.clone()).await;
    assert_eq!(st, 201);
    let (st, again) = s.post("/api/orders", &cashier, body.clone()).await;
    assert_eq!(st, 200);
    assert_eq!(first, again);
    body["notes"] = json!("changed");
    let (st, err) = s.post("/api/orders", &cashier, body).await;
    assert_eq!((st, code(&err)), (409, "IDEMPOTENCY_CONFLICT"));

    let id = o["id"].as_str().unwrap();
    let patch = |status: &str| json!({"status": status});
    let path = format!("/api/orders/{id}/status");
    let (st, _) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch("ready"))).await;
    assert_eq!(st, 409, "skipping states is refused");
    let (st, err) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch("flying"))).await;
    assert_eq!((st, code(&err)), (400, "VALIDATION_ERROR"));
    for next in ["confirmed", "preparing", "ready"] {
        let (st, o) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch(next))).await;
        assert_eq!((st, o["status"].as_str().unwrap()), (200, next));
    }
    let (st, _) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch("ready"))).await;
    assert_eq!(st, 409, "the same status again is a conflict");
    let (st, _) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch("out_for_delivery"))).await;
    assert_eq!(st, 409, "out_for_delivery only for delivery orders");
    let (st, _) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch("cancelled"))).await;
    assert_eq!(st, 409, "cancel has its own call");
    let (st, _) = s.req(Method::PATCH, &path, Some(&cashier), Some(patch("completed"))).await;
    assert_eq!(st, 200);
    let (st, _) = s.post(&format!("/api/orders/{id}/cancel"), &cashier, json!({"reason": "late"})).await;
    assert_eq!(st, 409, "a completed order cannot be cancelled");

    let id2 = o2["id"].as_str().unwrap();
    let (st, c) = s.post(&format!("/api/orders/{id2}/cancel"), &cashier, json!({"reason": "customer left"})).await;
    assert_eq!((st, c["status"].as_str().unwrap()), (200, "cancelled"));
    let (st, d) =
        s.req(Method::PUT, &format!("/api/orders/{id2}/driver"), Some(&cashier), Some(json!({"driverId": "d1", "name": "Sam"}))).await;
    assert_eq!(st, 409, "no driver on a cancelled order: {d}");

    // Delivery orders may go out for delivery, and take a driver.
    let mut body = order_body("br-1");
    body["type"] = json!("delivery");
    let (_, del) = s.post("/api/orders", &cashier, body).await;
    let did = del["id"].as_str().unwrap();
    let (st, d) = s
        .req(
            Method::PUT,
            &format!("/api/orders/{did}/driver"),
            Some(&cashier),
            Some(json!({"driverId": "d1", "name": "Sam", "etaMinutes": 12})),
        )
        .await;
    assert_eq!((st, d["driver"]["etaMinutes"].as_i64()), (200, Some(12)));
    let dpath = format!("/api/orders/{did}/status");
    for next in ["confirmed", "preparing", "ready", "out_for_delivery", "completed"] {
        let (st, _) = s.req(Method::PATCH, &dpath, Some(&cashier), Some(patch(next))).await;
        assert_eq!(st, 200, "{next}");
    }

    let (_, live) = s.get("/api/orders?branchId=br-1", &cashier).await;
    let live_ids: Vec<&str> = live["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(live_ids, vec!["client-order-1"], "live = not completed or cancelled");
    let (_, all) = s.get("/api/orders?branchId=br-1&status=all", &cashier).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    let (st, got) = s.get(&format!("/api/orders/{id}"), &cashier).await;
    assert_eq!((st, got["status"].as_str().unwrap()), (200, "completed"));
}

#[tokio::test]
async fn orders_respect_the_role_table_and_validation() {
    let s = TestServer::start().await;
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let owner2 = s.token("company_owner", Some("co-2"), None);
    let admin = s.token("super_admin", None, None);
    let (st, e) = s.post("/api/orders", &cashier, order_body("br-2")).await;
    assert_eq!((st, code(&e)), (403, "FORBIDDEN"), "cashier of br-1 may not order for br-2");
    let (st, e) = s.post("/api/orders", &owner2, order_body("br-1")).await;
    assert_eq!((st, code(&e)), (403, "FORBIDDEN"));
    let (st, e) = s.post("/api/orders", &admin, order_body("br-unknown")).await;
    assert_eq!((st, code(&e)), (404, "NOT_FOUND"), "unknown branches are refused to everyone");

    let bad_bodies = [
        json!([1, 2]),
        json!({"branchId": "br-1", "type": "picnic", "items": [{"name": "x", "quantity": 1, "unitPrice": 1}]}),
        json!({"branchId": "br-1", "type": "dine_in", "items": []}),
        json!({"branchId": "br-1", "type": "dine_in", "items": [{"name": "x", "quantity": 0, "unitPrice": 1}]}),
        json!({"branchId": "br-1", "type": "dine_in", "items": [{"name": "x", "quantity": 1, "unitPrice": 1.5}]}),
        json!({"branchId": "br-1", "type": "dine_in", "items": [{"name": "", "quantity": 1, "unitPrice": 1}]}),
        json!({"branchId": "br-1", "type": "dine_in", "items": [{"name": "x", "quantity": 1, "unitPrice": 1}], "customer": "bob"}),
        json!({"branchId": 7, "type": "dine_in", "items": []}),
    ];
    for b in bad_bodies {
        let (st, e) = s.post("/api/orders", &cashier, b.clone()).await;
        assert_eq!((st, code(&e)), (400, "VALIDATION_ERROR"), "{b}");
    }
    let raw =
        reqwest::Client::new().post(format!("{}/api/orders", s.base)).bearer_auth(&cashier).body("{\"branchId\": ").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    let big = "x".repeat(2 << 20);
    let raw = reqwest::Client::new().post(format!("{}/api/orders", s.base)).bearer_auth(&cashier).body(big).send().await.unwrap();
    assert_eq!(raw.status(), 413);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE");

    // Nothing above changed anything.
    let (_, all) = s.get("/api/orders?status=all", &admin).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 0);

    // Lists: limit bounds, cursors, visibility per company.
    for _ in 0..5 {
        s.post("/api/orders", &cashier, order_body("br-1")).await;
    }
    s.post("/api/orders", &owner2, order_body("br-3")).await;
    let (st, e) = s.get("/api/orders?limit=1001", &admin).await;
    assert_eq!((st, code(&e)), (400, "VALIDATION_ERROR"));
    let (st, _) = s.get("/api/orders?cursor=%%%", &admin).await;
    assert_eq!(st, 400);
    let (_, page1) = s.get("/api/orders?limit=2", &cashier).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["nextCursor"].as_str().expect("a next cursor");
    let (_, page2) = s.get(&format!("/api/orders?limit=10&cursor={cursor}"), &cashier).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 3);
    assert!(page2.get("nextCursor").is_none());
    assert_eq!(page2["items"][0]["number"], 3);
    let (_, o2) = s.get("/api/orders", &owner2).await;
    assert_eq!(o2["items"].as_array().unwrap().len(), 1, "co-2 sees only its own order");
    let id = page1["items"][0]["id"].as_str().unwrap();
    let (st, _) = s.get(&format!("/api/orders/{id}"), &owner2).await;
    assert_eq!(st, 404, "another company's order does not exist for you");
    let (st, _) = s.get("/api/orders?since=yesterday", &cashier).await;
    assert_eq!(st, 400);
    let (_, none) = s.get("/api/orders?since=2999-01-01T00:00:00Z", &cashier).await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let (_, some) = s.get("/api/orders?since=2000-01-01T00:00:00%2B02:00", &cashier).await;
    assert_eq!(some["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn concurrent_writes_all_succeed_with_distinct_numbers() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let (s, t) = (s.clone(), cashier.clone());
        tasks.push(tokio::spawn(async move { s.post("/api/orders", &t, order_body("br-1")).await }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        let (st, o) = t.await.unwrap();
        assert_eq!(st, 201, "{o}");
        numbers.push(o["number"].as_i64().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=60).collect::<Vec<_>>());
}

#[tokio::test]
async fn availability_state_and_validation() {
    let s = TestServer::start().await;
    let cashier = s.token("cashier", Some("co-1"), Some("br-1"));
    let (st, item) = s
        .req(
            Method::PUT,
            "/api/availability/br-1/product/falafel",
            Some(&cashier),
            Some(json!({"available": true, "stock": 10, "lowStockThreshold": 3})),
        )
        .await;
    assert_eq!(st, 200, "{item}");
    assert_eq!(item["stock"], 10);
    assert_eq!(item["lowStockThreshold"], 3);
    assert!(item["updatedAt"].is_string());
    // Omitted threshold is kept.
    let (_, item) =
        s.req(Method::PUT, "/api/availability/br-1/product/falafel", Some(&cashier), Some(json!({"available": true, "stock": 2}))).await;
    assert_eq!(item["lowStockThreshold"], 3);
    let (st, bulk) = s
        .post(
            "/api/availability/br-1/bulk",
            &cashier,
            json!({"items": [{"itemType": "modifier", "itemId": "extra-cheese", "available": false}, {"itemType": "product", "itemId": "tea", "available": true, "stock": 0}]}),
        )
        .await;
    assert_eq!(st, 200, "{bulk}");
    assert_eq!(bulk["items"].as_array().unwrap().len(), 2);
    let (st, all) = s.get("/api/availability/br-1", &cashier).await;
    assert_eq!(st, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 3);

    let bad = [
        ("/api/availability/br-1/dish/x", json!({"available": true})),
        ("/api/availability/br-1/product/x", json!({"available": "yes"})),
        ("/api/availability/br-1/product/x", json!({"available": true, "stock": -1})),
        ("/api/availability/br-1/product/x", json!({"available": true, "lowStockThreshold": "3"})),
    ];
    for (path, body) in bad {
        let (st, e) = s.req(Method::PUT, path, Some(&cashier), Some(body.clone())).await;
        assert_eq!((st, code(&e)), (400, "VALIDATION_ERROR"), "{path} {body}");
    }
    let (st, _) = s
        .post(
            "/api/availability/br-1/bulk",
            &cashier,
            json!({"items": [{"itemType": "product", "itemId": "a", "available": true}, {"itemType": "product"}]}),
        )
        .await;
    assert_eq!(st, 400, "a bulk update is all or nothing");
    let (_, after) = s.get("/api/availability/br-1", &cashier).await;
    assert_eq!(after["items"].as_array().unwrap().len(), 3, "nothing changed by refused requests");
    let (st, e) = s.get("/api/availability/br-2", &cashier).await;
    assert_eq!((st, code(&e)), (403, "FORBIDDEN"));
    let (st, e) = s.get("/api/availability/nowhere", &cashier).await;
    assert_eq!((st, code(&e)), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn printers_crud_status_and_tests() {
    let s = TestServer::start().await;
    let manager = s.token("branch_manager", Some("co-1"), Some("br-1"));
    let owner2 = s.token("company_owner", Some("co-2"), None);
    let (st, v) = s.post("/api/printers", &manager, json!({"branchId": "br-1", "name": "Pass", "connection": {"type": "virtual"}})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["status"], "online");
    assert_eq!(v["paperWidth"], 80);
    let (st, n) = s
        .post(
            "/api/printers",
            &manager,
            json!({"branchId": "br-1", "name": "Grill", "role": "kitchen", "stations": ["grill"], "paperWidth": 58, "connection": {"type": "network", "host": "127.0.0.1", "port": 9}}),
        )
        .await;
    assert_eq!(st, 201, "{n}");
    assert_eq!(n["connection"]["port"], 9);
    let (_, dflt) = s
        .post(
            "/api/printers",
            &manager,
            json!({"branchId": "br-1", "name": "Default port", "connection": {"type": "network", "host": "127.0.0.1"}}),
        )
        .await;
    assert_eq!(dflt["connection"]["port"], 9100, "port defaults to 9100");
    let (st, _) = s.req(Method::DELETE, &format!("/api/printers/{}", dflt["id"].as_str().unwrap()), Some(&manager), None).await;
    assert_eq!(st, 204);
    assert_eq!(n["status"], "unknown", "never online by default");
    let (st, d) = s
        .post(
            "/api/printers",
            &manager,
            json!({"branchId": "br-1", "name": "Desk", "connection": {"type": "desktop", "deviceId": "dev-1", "localId": "EPSON"}}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!((d["deviceId"].as_str(), d["localId"].as_str()), (Some("dev-1"), Some("EPSON")));
    let (st, e) = s
        .post(
            "/api/printers",
            &manager,
            json!({"branchId": "br-1", "name": "Desk again", "connection": {"type": "desktop", "deviceId": "dev-1", "localId": "EPSON"}}),
        )
        .await;
    assert_eq!((st, code(&e)), (409, "CONFLICT"));
    for bad in [
        json!({"branchId": "br-1", "name": "X", "connection": {"type": "carrier-pigeon"}}),
        json!({"branchId": "br-1", "name": "X", "paperWidth": 72, "connection": {"type": "virtual"}}),
        json!({"branchId": "br-1", "connection": {"type": "virtual"}}),
        json!({"branchId": "br-1", "name": "X", "connection": {"type": "network"}}),
    ] {
        let (st, e) = s.post("/api/printers", &manager, bad.clone()).await;
        assert_eq!((st, code(&e)), (400, "VALIDATION_ERROR"), "{bad}");
    }

    let vid = v["id"].as_str().unwrap();
    let (st, r) = s.post(&format!("/api/printers/{vid}/test"), &manager, json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(r["success"], true, "{r}");
    assert!(r["correlationId"].is_string() && r["durationMs"].is_u64());
    let page = s.data_dir().join("virtual").join(vid).join(format!("{}.txt", r["correlationId"].as_str().unwrap()));
    let preview = std::fs::read_to_string(&page).expect("the virtual printer wrote its page");
    assert!(preview.contains("Pass"), "{preview}");

    let (st, r) = s.post(&format!("/api/printers/{}/test", d["id"].as_str().unwrap()), &manager, json!({})).await;
    assert_eq!(st, 200);
    assert_eq!((r["success"].as_bool(), code(&r)), (Some(false), "DESKTOP_OFFLINE"));
    let (_, r) = s.post(&format!("/api/printers/{}/test", n["id"].as_str().unwrap()), &manager, json!({})).await;
    assert_eq!((r["success"].as_bool(), code(&r)), (Some(false), "PRINTER_ERROR"), "nothing listens on port 9: {r}");

    let nid = n["id"].as_str().unwrap();
    let (st, upd) = s
        .req(
            Method::PATCH,
            &format!("/api/printers/{nid}"),
            Some(&manager),
            Some(json!({"name": "Grill 2", "stations": ["grill", "fryer"]})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(upd["stations"], json!(["grill", "fryer"]));
    let (st, _) = s.req(Method::PATCH, &format!("/api/printers/{nid}"), Some(&manager), Some(json!({"paperWidth": 99, "name": "Z"}))).await;
    assert_eq!(st, 400);
    let (_, still) = s.get(&format!("/api/printers/{nid}"), &manager).await;
    assert_eq!(still["name"], "Grill 2", "a refused PATCH changes nothing");
    let (st, status) = s.get(&format!("/api/printers/{nid}/status"), &manager).await;
    assert_eq!(st, 200);
    assert_ne!(status["status"], "online", "a printer nobody answers for is never online");
    assert!(status["checkedAt"].is_string());

    let (st, _) = s.get(&format!("/api/printers/{nid}"), &owner2).await;
    assert_eq!(st, 404);
    let (_, list) = s.get("/api/printers", &manager).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let (_, list2) = s.get("/api/printers", &owner2).await;
    assert_eq!(list2["items"].as_array().unwrap().len(), 0);
    let (st, _) = s.req(Method::DELETE, &format!("/api/printers/{nid}"), Some(&manager), None).await;
    assert_eq!(st, 204);
    let (st, _) = s.get(&format!("/api/printers/{nid}"), &manager).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn cors_allows_configured_origins_on_the_api_and_socket_io() {
    let s = TestServer::start_with(|c| c.cors_origins = vec!["https://pos.example.com".into()]).await;
    let http = reqwest::Client::new();
    let allowed =
        |res: &reqwest::Response| res.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_string);
    for path in ["/health", "/socket.io/?EIO=4&transport=polling"] {
        let res = http.get(format!("{}{path}", s.base)).header("Origin", "https://pos.example.com").send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(allowed(&res).as_deref(), Some("https://pos.example.com"), "{path}");
        let res = http.get(format!("{}{path}", s.base)).header("Origin", "https://evil.example").send().await.unwrap();
        assert_eq!(allowed(&res), None, "{path}: an origin not listed gets no CORS header");
        // A browser's preflight (the client sends an Authorization header).
        let res = http
            .request(Method::OPTIONS, format!("{}{path}", s.base))
            .header("Origin", "https://pos.example.com")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: preflight answered {}", res.status());
        assert_eq!(allowed(&res).as_deref(), Some("https://pos.example.com"), "{path}: preflight");
    }

    // Unset: same-origin only, no CORS headers anywhere.
    let plain = TestServer::start().await;
    for path in ["/health", "/socket.io/?EIO=4&transport=polling"] {
        let res = http.get(format!("{}{path}", plain.base)).header("Origin", "https://pos.example.com").send().await.unwrap();
        assert_eq!(allowed(&res), None, "{path}");
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_pause_logins_for_that_email_only() {
    let s = TestServer::start().await;
    let login = |email: &str, password: &str| {
        let body = json!({"email": email, "password": password});
        let s = &s;
        async move { s.req(Method::POST, "/auth/login", None, Some(body)).await }
    };
    for i in 0..6 {
        let (st, e) = login("owner@co1.test", "wrong").await;
        assert_eq!((st, code(&e)), (401, "INVALID_CREDENTIALS"), "attempt {i}");
    }
    // Paused now, even with the right password, and said so.
    let (st, e) = login("Owner@co1.test", "owner-password").await;
    assert_eq!((st, code(&e)), (429, "TOO_MANY_ATTEMPTS"), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("try again in"), "{e}");
    // Another email is not affected.
    let (st, e) = login("nobody@co1.test", "whatever").await;
    assert_eq!((st, code(&e)), (401, "INVALID_CREDENTIALS"));
}
