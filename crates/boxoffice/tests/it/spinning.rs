//! Seat spinning (issue 20): one host without credentials, each of its requests a new
//! anonymous buyer, holding every seat of a show and holding them again as they lapse.
//! The seats its anonymous buyers hold at once are capped per address, a hold has a
//! longest life that no extend or new hold goes past, a seat let expire is kept from its
//! buyer and address for a cool-down, and an on-sale may admit signed buyers only.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, args, assert_error, seat, spawn_app, spawn_with};

/// A client whose requests come from `ip` (a loopback address of its own, so that the
/// test's own requests from 127.0.0.1 are not counted with it), sending no credentials.
fn host(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse().ok()).build().unwrap()
}

/// An anonymous hold from `client` (no cookie: a new anonymous buyer each time); the
/// request is made at once, so the future borrows nothing.
fn anonymous_hold(
    app: &TestApp,
    client: &reqwest::Client,
    event_id: i64,
    seats: &[i64],
) -> impl Future<Output = reqwest::Response> + use<> {
    let body = json!({ "eventId": event_id, "seatIds": seats, "holdSeconds": 60 });
    let sent = client.post(app.api("/reservations")).json(&body).send();
    async move { sent.await.unwrap() }
}

/// Seats HELD in the show, read from the reservation module's database.
async fn held(app: &TestApp, event_id: i64) -> i64 {
    let db = app.store.connect("reservation").await;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM seats WHERE event_id = $1 AND status = 'HELD'")
        .bind(event_id)
        .fetch_one(&db)
        .await
        .unwrap();
    db.close().await;
    n
}

/// The instant an RFC 3339 answer names, in ms.
fn millis(at: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at.as_str().expect("a timestamp")).expect("RFC 3339").timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_without_credentials_gets_at_most_its_cap_and_buyers_still_get_seats() {
    let app = spawn_app().await; // the defaults: 12 seats per address
    let bot = host("127.0.0.2");
    // 50 requests at once, 20 seats each, over the show's 100 seats; and as many small
    // ones, which alone could fit under the cap.
    let all: Vec<i64> = (1..=100).map(|n| seat(1, n)).collect();
    let big = (0..50).map(|i| {
        let start = (i % 5) * 20;
        anonymous_hold(&app, &bot, 1, &all[start..start + 20])
    });
    let small = (0..50).map(|i| anonymous_hold(&app, &bot, 1, &all[(i * 2) % 100..(i * 2) % 100 + 2]));
    let (big, small) = tokio::join!(join_all(big), join_all(small));
    let mut granted = 0;
    for r in big.into_iter().chain(small) {
        match r.status() {
            StatusCode::CREATED => granted += 1,
            StatusCode::CONFLICT => {}
            _ => {
                let body = assert_error(r, 422, "VALIDATION_FAILED").await;
                assert!(body["message"].as_str().unwrap().contains("this address holds"), "{body}");
            }
        }
    }
    let taken = held(&app, 1).await;
    assert!(taken <= 12, "the bot holds {taken} seats");
    assert!(granted >= 1 && taken > 0, "the bot's first holds under the cap were granted");
    // A buyer with a token, and an anonymous buyer at another address, get a free seat at
    // the first try.
    let map: Value = app.http.get(app.api("/events/1/seats")).send().await.unwrap().json().await.unwrap();
    let free: Vec<i64> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "AVAILABLE")
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert!(free.len() >= 88, "{} seats free", free.len());
    assert_eq!(app.buyer("fan").hold(1, &free[..4]).await.status(), StatusCode::CREATED);
    assert_eq!(anonymous_hold(&app, &host("127.0.0.3"), 1, &free[4..8]).await.status(), StatusCode::CREATED);
    // The bot is still refused, and nothing of a refused request is held.
    let r = anonymous_hold(&app, &bot, 1, &free[8..9 + (12 - taken as usize)]).await;
    assert_error(r, 422, "VALIDATION_FAILED").await;
    assert_eq!(held(&app, 1).await, taken + 8);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_cap_holds_when_its_buyers_come_all_at_once() {
    let app = spawn_with(boxoffice::cli::ServeArgs { max_held_seats_per_address: 7, ..args() }).await;
    // Distinct seats: nothing but the cap can refuse them. From three addresses at once,
    // each its own burst, so that PostgreSQL's transactions of one address overlap.
    let bursts = (1..=3).map(|event_id| {
        let bot = host(&format!("127.0.0.{}", event_id + 1));
        let holds: Vec<_> = (1..=100).map(|n| anonymous_hold(&app, &bot, event_id, &[seat(event_id, n)])).collect();
        join_all(holds)
    });
    for (event_id, answers) in (1..=3).zip(join_all(bursts).await) {
        let codes: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(codes.iter().filter(|c| **c == 201).count(), 7, "{codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == 422).count(), 93, "{codes:?}");
        assert_eq!(held(&app, event_id).await, 7);
    }
    let bot = host("127.0.0.2");
    // Turned off, the address is not counted.
    let app = spawn_with(boxoffice::cli::ServeArgs { max_held_seats_per_address: 0, ..args() }).await;
    let holds = (1..=30).map(|n| anonymous_hold(&app, &bot, 2, &[seat(2, n)]));
    assert!(join_all(holds).await.iter().all(|r| r.status() == StatusCode::CREATED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_extend_keeps_a_hold_past_its_life() {
    let app =
        spawn_with(boxoffice::cli::ServeArgs { hold_seconds: (1, 120), max_hold_life_seconds: 3, ..args() }).await;
    let buyer = app.buyer("extender");
    let before = app.clock.now_millis();
    let r = buyer.hold_for(3, seat(3, 5), 2).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let after = app.clock.now_millis();
    let first = millis(&r.json::<Value>().await.unwrap()["expiresAt"]);
    assert!(first <= after + 2_000);
    // 30 s more would go past the life's end (3 s from the hold): clamped to it.
    let r = buyer.extend(3, seat(3, 5), 30).await;
    assert_eq!(r.status(), StatusCode::OK);
    let extended = millis(&r.json::<Value>().await.unwrap()["expiresAt"]);
    assert!(extended > first && (before + 3_000..=after + 3_000).contains(&extended), "{extended}");
    // Neither another extend nor holding it again goes further.
    let r = buyer.extend(3, seat(3, 5), 120).await;
    assert_eq!(millis(&r.json::<Value>().await.unwrap()["expiresAt"]), extended);
    let r = buyer.hold_for(3, seat(3, 5), 120).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let again: Value = r.json().await.unwrap();
    assert_eq!(millis(&again["expiresAt"]), extended);
    assert!(again["holdSeconds"].as_i64().unwrap() <= 3, "{again}");
    // A new hold asking for more than a life gets one life.
    let r = app.buyer("other").hold_for(3, seat(3, 6), 120).await;
    assert_eq!(r.json::<Value>().await.unwrap()["holdSeconds"], 3);
    // A pinned hold (its order being paid) is not bound by it.
    let order_id = buyer.buy(3, &[seat(3, 5)]).await;
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_let_expire_is_kept_from_its_buyer_and_address_for_the_cooldown() {
    let app = spawn_with(boxoffice::cli::ServeArgs { hold_seconds: (1, 120), ..args() }).await; // 60 s cool-down
    let bot = host("127.0.0.2");
    let (spun, dropped) = (seat(1, 70), seat(1, 71));
    let mut first = app.anonymous();
    first.http = bot.clone();
    let r = first.post("/reservations", json!({ "eventId": 1, "seatId": spun, "holdSeconds": 1 })).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let erin = app.buyer("erin");
    assert_eq!(erin.hold_for(1, dropped, 1).await.status(), StatusCode::CREATED);
    // The seat map has the holds before their expiry is awaited on it below.
    app.wait_seat(1, spun, "HELD").await;
    app.wait_seat(1, dropped, "HELD").await;
    app.clock.advance(Duration::from_millis(1_100));
    app.wait_seat(1, spun, "AVAILABLE").await;
    app.wait_seat(1, dropped, "AVAILABLE").await;
    // The buyer who let it expire, and any new anonymous buyer of its address: 409, wait.
    for r in
        [first.hold(1, &[spun]).await, anonymous_hold(&app, &bot, 1, &[spun]).await, erin.hold(1, &[dropped]).await]
    {
        let body = assert_error(r, 409, "RESERVATION_CONFLICT").await;
        assert!(body["message"].as_str().unwrap().contains("you may hold it again in"), "{body}");
    }
    assert_eq!(app.seat_status(1, spun).await, "AVAILABLE");
    // Anyone else holds them at once.
    assert_eq!(anonymous_hold(&app, &host("127.0.0.3"), 1, &[spun]).await.status(), StatusCode::CREATED);
    assert_eq!(app.buyer("frank").hold(1, &[dropped]).await.status(), StatusCode::CREATED);
    // A seat released rather than let expire its buyer may hold again at once.
    let gina = app.buyer("gina");
    assert_eq!(gina.hold(1, &[seat(1, 72)]).await.status(), StatusCode::CREATED);
    assert_eq!(gina.release(1, seat(1, 72)).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(gina.hold(1, &[seat(1, 72)]).await.status(), StatusCode::CREATED);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_sale_for_signed_buyers_refuses_anonymous_holds() {
    let app = spawn_with(boxoffice::cli::ServeArgs { require_signed_buyers: true, ..args() }).await;
    let r = anonymous_hold(&app, &app.http, 1, &[seat(1, 1)]).await;
    assert!(r.headers().get("set-cookie").is_none(), "no anonymous buyer is made");
    let body = assert_error(r, 401, "UNAUTHORIZED").await;
    assert!(body["message"].as_str().unwrap().contains("bearer token"), "{body}");
    assert_eq!(app.seat_status(1, seat(1, 1)).await, "AVAILABLE");
    assert_eq!(app.buyer("member").hold(1, &[seat(1, 1)]).await.status(), StatusCode::CREATED);
}
