//! Operational data is the operator's, guessing the operator's token gets nowhere, and
//! the buyer cookie can be kept to https.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{self, ADMIN, assert_error, at_most, seat, spawn_app, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_consistency_and_backlog_need_the_operators_token_and_health_does_not() {
    let app = spawn_app().await;
    for path in ["/actuator/prometheus", "/actuator/consistency", "/actuator/backlog"] {
        let url = format!("{}{path}", app.url);
        assert_error(app.http.get(&url).send().await.unwrap(), 401, "UNAUTHORIZED").await;
        assert_error(app.http.get(&url).bearer_auth("a-buyer").send().await.unwrap(), 403, "FORBIDDEN").await;
        assert_eq!(app.http.get(&url).bearer_auth(ADMIN).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
    // Load balancers ask without credentials.
    let health = app.http.get(format!("{}/actuator/health", app.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// On the operator's own listener, operational data needs no token; the public one still
/// wants it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_listener_serves_operational_data_without_a_token() {
    let mut args = common::args();
    args.admin_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn_with(args).await;
    let admin = app.admin_url.clone().expect("an operator's listener");
    for path in ["/actuator/prometheus", "/actuator/consistency", "/actuator/backlog"] {
        let r = app.http.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let r = app.http.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_error(r, 401, "UNAUTHORIZED").await;
    }
    // It is the same service, nothing more: an operator's write still needs the token.
    let r = app.http.post(format!("{admin}/ticketing/api/admin/events")).json(&json!({})).send().await.unwrap();
    assert_error(r, 401, "UNAUTHORIZED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_guessing_the_operators_token_is_turned_away() {
    // Bearer tokens must be signed here (no --open-bearer), as in production.
    let mut args = common::args();
    args.open_bearer = false;
    let app = spawn_with(args).await;
    let summary = app.api("/admin/orders/summary");
    // Without a token at all there is nothing guessed: not counted.
    for _ in 0..20 {
        assert_error(app.http.get(&summary).send().await.unwrap(), 401, "UNAUTHORIZED").await;
    }
    for guess in 0..10 {
        let r = app.http.get(&summary).bearer_auth(format!("eyJ.guess-{guess}.x")).send().await.unwrap();
        assert_error(r, 401, "UNAUTHORIZED").await;
    }
    let r = app.http.get(&summary).bearer_auth("eyJ.guess-11.x").send().await.unwrap();
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_error(r, 429, "RATE_LIMITED").await;
    // Even a right guess now is refused; so is the real operator from that address, for
    // the rest of the window — and nothing was done.
    let r = app
        .admin_post("/admin/events", json!({ "title": "x", "dateTime": "2030-01-01T20:00:00", "rows": 1, "cols": 1 }));
    assert_error(r.await, 429, "RATE_LIMITED").await;
    let events: serde_json::Value = app.http.get(app.api("/events")).send().await.unwrap().json().await.unwrap();
    assert_eq!(events.as_array().unwrap().len(), common::DEMO_EVENTS, "no show created");
    // Buyers are not affected (once the demo seats have reached the reservation module).
    let hold = json!({ "eventId": 1, "seatId": seat(1, 1) });
    let status = at_most(std::time::Duration::from_secs(40), || async {
        let status = app.http.post(app.api("/reservations")).json(&hold).send().await.unwrap().status();
        (status != StatusCode::NOT_FOUND).then_some(status)
    })
    .await;
    assert_eq!(status, Some(StatusCode::CREATED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buyer_cookie_is_kept_to_https_when_asked() {
    let hold = json!({ "eventId": 3, "seatId": seat(3, 1) });
    let app = spawn_app().await;
    let r = app.http.post(app.api("/reservations")).json(&hold).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && !cookie.contains("Secure"), "{cookie}");

    let mut args = common::args();
    args.secure_cookies = true;
    let app = spawn_with(args).await;
    let r = app.http.post(app.api("/reservations")).json(&hold).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
