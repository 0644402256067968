//! A page on another site cannot make its visitors' browsers hold seats: a browser's
//! write (no bearer token) must be JSON, and from this site or an allowed origin.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{self, assert_error, seat, spawn_app, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_site_holds_nothing() {
    let app = spawn_app().await;
    let wanted = seat(1, 31);
    let body = json!({ "eventId": 1, "seatId": wanted, "holdSeconds": 60 }).to_string();
    // A "simple" request, as a form or a no-cors fetch sends it: no pre-flight.
    let r = app.http.post(app.api("/reservations")).header("content-type", "text/plain").body(body.clone());
    let r = r.send().await.unwrap();
    assert!(r.headers().get("set-cookie").is_none(), "no buyer made");
    assert_error(r, 415, "VALIDATION_FAILED").await;
    // The same with a visitor's cookie.
    let mut visitor = app.anonymous();
    assert_eq!(visitor.post("/reservations", json!({ "eventId": 1, "seatId": seat(1, 32) })).await.status(), 201);
    let cookie = visitor.cookie.clone().unwrap();
    let r = app.http.post(app.api("/reservations")).header("cookie", &cookie).header("content-type", "text/plain");
    assert_error(r.body(body.clone()).send().await.unwrap(), 415, "VALIDATION_FAILED").await;
    // JSON, but from a foreign page (a CORS-allowed fetch would name its origin).
    let r = app
        .http
        .post(app.api("/reservations"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(body.clone());
    assert_error(r.send().await.unwrap(), 403, "FORBIDDEN").await;
    let r = app.http.delete(app.api(&format!("/reservations/1/{}", seat(1, 32))));
    let r = r.header("cookie", &cookie).header("origin", "https://evil.example").send().await.unwrap();
    assert_error(r, 403, "FORBIDDEN").await;
    // The seat map follows the holds through the bus (on Kafka a moment later).
    app.wait_seat(1, seat(1, 32), "HELD").await;
    assert_eq!(app.seat_status(1, wanted).await, "AVAILABLE", "nothing held");

    // From this site's own page: the same request goes through.
    let own = app.url.clone();
    let r = app
        .http
        .post(app.api("/reservations"))
        .header("cookie", &cookie)
        .header("origin", &own)
        .header("content-type", "application/json; charset=utf-8")
        .body(body);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED);
    // A write without a body needs no content type: an extend, a release.
    let r = app.http.post(app.api(&format!("/reservations/1/{wanted}/extend"))).header("cookie", &cookie);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    let r = app.http.delete(app.api(&format!("/reservations/1/{wanted}"))).header("cookie", &cookie);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_may_write_and_api_clients_are_not_browsers() {
    let mut args = common::args();
    args.cors_origins = vec!["https://shop.example".into()];
    let app = spawn_with(args).await;
    let r = app
        .http
        .post(app.api("/reservations"))
        .header("origin", "https://shop.example")
        .json(&json!({ "eventId": 2, "seatId": seat(2, 1) }));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED);
    // A bearer token cannot ride along from another site: its requests are API clients',
    // whatever they send (curl's -d is a form type).
    let r = app
        .http
        .post(app.api("/reservations"))
        .bearer_auth("curl-user")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({ "eventId": 2, "seatId": seat(2, 2) }).to_string());
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED);
}
