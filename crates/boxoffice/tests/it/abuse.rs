//! Abuse: forged and expired credentials, other buyers' orders, admin endpoints without
//! the role, foreign origins, floods of requests, greedy buyers and reused idempotency
//! keys are each refused with the contract's error, and change nothing.

use std::time::Duration;

use boxoffice::cli::TokenArgs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN, TestApp, args, assert_error, seat, seats, spawn_with};

const SECRET: &str = "test-secret-0123456789abcdef";

/// A server that takes only signed bearer tokens (the production default).
async fn signed_only() -> TestApp {
    spawn_with(boxoffice::cli::ServeArgs { open_bearer: false, auth_secret: Some(SECRET.into()), ..args() }).await
}

fn token(sub: &str, admin: bool, ttl_secs: u64, secret: &str) -> String {
    let args = TokenArgs {
        sub: sub.into(),
        admin,
        role: None,
        event: None,
        ttl_secs,
        auth_secret: Some(secret.into()),
        data_dir: std::env::temp_dir(),
    };
    boxoffice::app::token(&args).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_unexpired_tokens_name_a_buyer() {
    let app = signed_only().await;
    let alice = token("alice", false, 600, SECRET);
    let hold = json!({ "eventId": 1, "seatId": seat(1, 11) });
    let post = |token: String| app.http.post(app.api("/reservations")).bearer_auth(token).json(&hold).send();

    // A plain name, a token signed with another key, a tampered one, an expired one: 401.
    assert_error(post("alice".into()).await.unwrap(), 401, "UNAUTHORIZED").await;
    assert_error(post(token("alice", false, 600, "another-secret-0123456789")).await.unwrap(), 401, "UNAUTHORIZED")
        .await;
    let tampered = format!("{}x", &alice[..alice.len() - 1]);
    assert_error(post(tampered).await.unwrap(), 401, "UNAUTHORIZED").await;
    let expired = token("alice", false, 0, SECRET);
    app.clock.advance(Duration::from_millis(6_100)); // past the 5 s leeway
    assert_error(post(expired).await.unwrap(), 401, "UNAUTHORIZED").await;
    assert_eq!(app.seat_status(1, seat(1, 11)).await, "AVAILABLE", "refused requests hold nothing");

    // The genuine token holds and orders; the order is hers alone.
    let r = post(alice.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .http
        .post(app.api("/orders"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "k1")
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 11)] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.unwrap();
    let path = app.api(&format!("/orders/{}", order["orderId"].as_i64().unwrap()));
    let r = app.http.get(&path).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mallory = token("mallory", false, 600, SECRET);
    // Another buyer's order is not found (a 403 would confirm that the number exists).
    assert_error(app.http.get(&path).bearer_auth(&mallory).send().await.unwrap(), 404, "NOT_FOUND").await;
    // Neither a forged anonymous cookie nor none at all reads it.
    let forged = app.http.get(&path).header("cookie", "boxoffice_buyer=alice.deadbeef").send().await.unwrap();
    assert_error(forged, 401, "UNAUTHORIZED").await;
    // Nor can Mallory release Alice's seat.
    let alices = app.api(&format!("/reservations/1/{}", seat(1, 11)));
    let r = app.http.delete(alices).bearer_auth(&mallory).send().await.unwrap();
    assert_ne!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_want_the_admin_role() {
    let app = signed_only().await;
    let show = json!({ "title": "Gala", "dateTime": "2027-01-01T20:00:00", "rows": 2, "cols": 2 });
    let create = |token: Option<String>| {
        let rb = app.http.post(app.api("/admin/events")).json(&show);
        match token {
            Some(t) => rb.bearer_auth(t).send(),
            None => rb.send(),
        }
    };
    assert_error(create(None).await.unwrap(), 401, "UNAUTHORIZED").await;
    assert_error(create(Some("nonsense".into())).await.unwrap(), 401, "UNAUTHORIZED").await;
    assert_error(create(Some(token("alice", false, 600, SECRET))).await.unwrap(), 403, "FORBIDDEN").await;
    let events_before: Vec<Value> = app.http.get(app.api("/events")).send().await.unwrap().json().await.unwrap();
    let r = create(Some(token("ops", true, 600, SECRET))).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let r = create(Some(ADMIN.into())).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "the operator's token still works");
    let events: Vec<Value> = app.http.get(app.api("/events")).send().await.unwrap().json().await.unwrap();
    assert_eq!(events.len(), events_before.len() + 2, "only the two admin requests created shows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_configured_origins_only() {
    let app =
        spawn_with(boxoffice::cli::ServeArgs { cors_origins: vec!["https://tickets.example".into()], ..args() }).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.api("/reservations"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, authorization")
            .send()
    };
    let ok = preflight("https://tickets.example").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://tickets.example");
    assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none(), "no CORS grant for other origins");
    let r = app.http.get(app.api("/events")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_buyer_gets_429_with_retry_after_and_others_do_not() {
    let app = spawn_with(boxoffice::cli::ServeArgs { rate_limit_buyer: 3, ..args() }).await;
    let bot = app.buyer("bot");
    let mut limited = None;
    for _ in 0..40 {
        let r = bot.get("/reservations").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = limited.expect("the flood was limited");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_error(r, 429, "RATE_LIMITED").await;
    // A limited hold changes nothing.
    assert_eq!(bot.hold(1, &seats(1, [21])).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.seat_status(1, seat(1, 21)).await, "AVAILABLE");
    // Another buyer, operators and the actuator are not held back by the bot.
    assert_eq!(app.buyer("fan").hold(1, &seats(1, [22])).await.status(), StatusCode::CREATED);
    let r = app.http.get(app.api("/admin/orders/summary")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.http.get(format!("{}/actuator/health", app.url)).send().await.unwrap().status(), StatusCode::OK);
    // After the wait, the bot may ask again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(bot.get("/reservations").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_limited_whoever_it_claims_to_be() {
    let app = spawn_with(boxoffice::cli::ServeArgs { rate_limit_address: 5, ..args() }).await;
    // The flood comes from another loopback address than the test's own start-up probes.
    let bot_host = reqwest::Client::builder().local_address("127.0.0.2".parse().ok()).build().unwrap();
    let mut codes = Vec::new();
    for i in 0..30 {
        let r = bot_host.get(app.api("/reservations")).bearer_auth(format!("sock-puppet-{i}")).send().await.unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(codes.iter().take(10).all(|c| *c == 200), "the burst passes: {codes:?}");
    assert!(codes.contains(&429), "then the address is limited: {codes:?}");
    let neighbour = reqwest::Client::builder().local_address("127.0.0.3".parse().ok()).build().unwrap();
    let r = neighbour.get(app.api("/reservations")).bearer_auth("neighbour").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "other addresses are not limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_may_hold_and_buy_only_so_many_seats() {
    let app = spawn_with(boxoffice::cli::ServeArgs {
        max_held_seats_per_buyer: 3,
        max_seats_per_buyer_per_event: 4,
        ..args()
    })
    .await;
    let greedy = app.buyer("greedy");
    assert_eq!(greedy.hold(1, &seats(1, [31, 32])).await.status(), StatusCode::CREATED);
    let body = assert_error(greedy.hold(1, &seats(1, [33, 34])).await, 422, "VALIDATION_FAILED").await;
    assert!(body["message"].as_str().unwrap().contains("at most 3"), "{body}");
    assert_eq!(app.seat_status(1, seat(1, 33)).await, "AVAILABLE", "a refused hold takes no seat");
    // Holding the same seats again does not count them twice.
    assert_eq!(greedy.hold(1, &seats(1, [31, 32])).await.status(), StatusCode::CREATED);
    // Bought seats free the hold allowance but count against the show's.
    let order = greedy.order("buy-1", 1, &seats(1, [31, 32])).await.json::<Value>().await.unwrap();
    greedy.final_order(order["orderId"].as_i64().unwrap()).await;
    assert_eq!(greedy.hold(1, &seats(1, [33, 34])).await.status(), StatusCode::CREATED);
    assert_error(greedy.hold(1, &seats(1, [35])).await, 422, "VALIDATION_FAILED").await;
    // Another show has its own allowance (one more seat held makes 3 in all).
    assert_eq!(greedy.hold(2, &seats(2, [1])).await.status(), StatusCode::CREATED);
    assert_error(greedy.hold(2, &seats(2, [2])).await, 422, "VALIDATION_FAILED").await;
    // Many at once from the same buyer: never more than the limit held.
    let racer = app.buyer("racer");
    let racer = &racer;
    let tries = (41..61).map(|n| async move { racer.hold(1, &[seat(1, n)]).await });
    let granted =
        futures_util::future::join_all(tries).await.iter().filter(|r| r.status() == StatusCode::CREATED).count();
    assert_eq!(granted, 3, "exactly the allowance is granted under a race");
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_refuse_and_expire() {
    let app = spawn_with(boxoffice::cli::ServeArgs { idempotency_key_ttl_secs: 2, ..args() }).await;
    let buyer = app.buyer("keyholder");
    assert_eq!(buyer.hold(1, &seats(1, [51, 52])).await.status(), StatusCode::CREATED);
    let first = buyer.order("key-1", 1, &seats(1, [51])).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    // The same key and body: the first answer again, and no second order.
    let again = buyer.order("key-1", 1, &seats(1, [51])).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    // The same key with another body: refused.
    assert_error(buyer.order("key-1", 1, &seats(1, [52])).await, 422, "IDEMPOTENCY_KEY_REUSED").await;
    // Another buyer's same key is theirs alone.
    let other = app.buyer("other");
    assert_eq!(other.hold(1, &seats(1, [53])).await.status(), StatusCode::CREATED);
    assert_eq!(other.order("key-1", 1, &seats(1, [53])).await.status(), StatusCode::CREATED);
    // Once the key expires it makes a new order.
    app.clock.advance(Duration::from_millis(2_300));
    let later = buyer.order("key-1", 1, &seats(1, [52])).await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(later.headers().get("idempotent-replayed").is_none());
    let later: Value = later.json().await.unwrap();
    assert_ne!(later["orderId"], first["orderId"]);
    let mine: Vec<Value> = buyer.get("/orders").await.json().await.unwrap();
    assert_eq!(mine.len(), 2);
    buyer.final_order(later["orderId"].as_i64().unwrap()).await;
    app.assert_audit_passes().await;
}
