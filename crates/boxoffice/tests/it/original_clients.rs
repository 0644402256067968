//! What the original's own clients rely on (issue 19): an extend adds to the time a hold
//! has left, as the original's Redis script did; the demo shows keep the original's seat
//! ids, which its k6 scripts hard-code; and its `POST /admin/test-reset?eventId=N`.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, ADMIN, Buyer, TestApp, assert_error, seat, spawn_app, spawn_with};

/// The instant an RFC 3339 answer names, in ms.
fn millis(at: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at.as_str().expect("a timestamp")).expect("RFC 3339").timestamp_millis()
}

/// Holds `seat_id` of show 3 for `secs`; the hold's expiry in ms.
async fn hold_secs(buyer: &Buyer, seat_id: i64, secs: i64) -> i64 {
    let r = buyer.hold_for(3, seat_id, secs).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    millis(&r.json::<Value>().await.unwrap()["expiresAt"])
}

/// Extends `seat_id` of show 3 with this raw body (`None`: no body at all).
async fn extend_raw(app: &TestApp, who: &str, seat_id: i64, body: Option<&'static str>) -> Response {
    let rb = app.http.post(app.api(&format!("/reservations/3/{seat_id}/extend"))).bearer_auth(who);
    let rb = match body {
        Some(body) => rb.header("content-type", "application/json").body(body),
        None => rb,
    };
    rb.send().await.unwrap()
}

/// The new expiry an extend answered, in ms.
async fn extended(r: Response) -> i64 {
    assert_eq!(r.status(), StatusCode::OK);
    millis(&r.json::<Value>().await.unwrap()["expiresAt"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extend_adds_to_the_time_left_up_to_the_longest_hold_and_never_shortens() {
    let app = spawn_app().await;
    let buyer = app.buyer("extender");

    // A 20 s hold extended by 30 ends 30 s later than it did: 50 s out, not 30.
    let held = hold_secs(&buyer, seat(3, 1), 20).await;
    let first = extended(buyer.extend(3, seat(3, 1), 30).await).await;
    assert_eq!(first - held, 30_000);
    // Again: 80 s out; then 110 s; then no further than the longest hold (120 s) from now.
    let second = extended(buyer.extend(3, seat(3, 1), 30).await).await;
    assert_eq!(second - first, 30_000);
    let third = extended(buyer.extend(3, seat(3, 1), 30).await).await;
    assert_eq!(third - second, 30_000);
    let before = contract::now_millis();
    let clamped = extended(buyer.extend(3, seat(3, 1), 30).await).await;
    let after = contract::now_millis();
    assert!((before + 120_000..=after + 120_000).contains(&clamped), "clamped to 120 s from now");
    assert!(clamped >= third, "never shortened");

    // A 120 s hold extended by 30 still ends about 120 s out: clamped, not shortened.
    let full = hold_secs(&buyer, seat(3, 2), 120).await;
    let again = extended(buyer.extend(3, seat(3, 2), 30).await).await;
    assert!(again >= full, "an extend never shortens a hold ({again} < {full})");
    assert!(again - full < 5_000, "and adds no more than the time since the hold ({} ms)", again - full);
    // One that ends later still (made under a longer maximum) keeps its expiry.
    let later = contract::now_millis() + 600_000;
    let db = app.store.connect("reservation").await;
    sqlx::query("UPDATE seats SET expires_at = $1 WHERE event_id = 3 AND seat_id = $2")
        .bind(later)
        .bind(seat(3, 2))
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(extended(buyer.extend(3, seat(3, 2), 30).await).await, later);
    assert_eq!(extended(buyer.extend(3, seat(3, 2), 86_400).await).await, later);
    db.close().await;
    assert_eq!(buyer.release(3, seat(3, 2)).await.status(), StatusCode::NO_CONTENT);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extend_without_seconds_adds_30_and_a_bad_one_changes_nothing() {
    let app = spawn_app().await;
    let buyer = app.buyer("defaults");

    // No body at all, an empty body, `{}`, or `seconds: null`: 30 s more.
    for (n, body) in [None, Some(""), Some("{}"), Some(r#"{"seconds":null}"#)].into_iter().enumerate() {
        let seat_id = seat(3, 11 + n as i64);
        let held = hold_secs(&buyer, seat_id, 20).await;
        let until = extended(extend_raw(&app, "defaults", seat_id, body).await).await;
        assert_eq!(until - held, 30_000, "body {body:?}");
    }

    // Out of range, not an integer, an unknown field or not JSON: 422, and the hold is
    // as it was (the next extend of 1 s ends 1 s after the hold did).
    let seat_id = seat(3, 20);
    let held = hold_secs(&buyer, seat_id, 20).await;
    for body in [
        r#"{"seconds":0}"#,
        r#"{"seconds":-5}"#,
        r#"{"seconds":86401}"#,
        r#"{"seconds":1.5}"#,
        r#"{"seconds":"30"}"#,
        r#"{"seconds":30,"extra":true}"#,
        "{",
        "30",
    ] {
        let r = extend_raw(&app, "defaults", seat_id, Some(body)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "body {body}");
        assert_error(r, 422, "VALIDATION_FAILED").await;
    }
    assert_eq!(extended(buyer.extend(3, seat_id, 1).await).await, held + 1_000);

    // What was refused before still is: another buyer's hold, a seat never held.
    assert_error(extend_raw(&app, "stranger", seat_id, None).await, 409, "RESERVATION_CONFLICT").await;
    assert_error(extend_raw(&app, "defaults", seat(3, 30), None).await, 410, "RESERVATION_EXPIRED").await;
}

/// The seat ids of event 3 that the original's k6 script hard-codes, read from it.
fn k6_seat_ids() -> Vec<i64> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/original-clients/k6/reservation_order_load_09_12.js");
    let script = std::fs::read_to_string(script).unwrap();
    let list = script.split("const seatIds = [").nth(1).and_then(|rest| rest.split("];").next()).unwrap();
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect()
}

async fn seat_map(app: &TestApp, event_id: i64) -> Value {
    app.http.get(app.api(&format!("/events/{event_id}/seats"))).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_keep_the_originals_seat_ids_and_new_shows_number_from_1() {
    let app = spawn_app().await;
    let mut k6 = k6_seat_ids();
    assert_eq!(k6.len(), 100);
    k6.sort_unstable();
    // Event 3's map has exactly the ids of the k6 list (3, 6, …, 300), row by row.
    let map = seat_map(&app, 3).await;
    let seats = map["seats"].as_array().unwrap();
    let ids: Vec<i64> = seats.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, k6);
    for s in seats {
        let (r, c) = (s["r"].as_i64().unwrap(), s["c"].as_i64().unwrap());
        assert_eq!(s["id"].as_i64().unwrap(), 3 + 3 * ((r - 1) * 10 + (c - 1)), "{s}");
    }
    // Events 1 and 2 are interleaved with it, as the original's database numbered them.
    for event_id in [1, 2] {
        let map = seat_map(&app, event_id).await;
        let ids: Vec<i64> = map["seats"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, (0..100).map(|i| event_id + 3 * i).collect::<Vec<_>>());
    }

    // Each of the original's ids is a seat of event 3 that can be held, and no other show's.
    let mut buyer = app.anonymous();
    let r = buyer.post("/reservations", json!({ "eventId": 3, "seatId": 300, "holdSeconds": 30 })).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = buyer.post("/reservations", json!({ "eventId": 1, "seatId": 300, "holdSeconds": 30 })).await;
    assert_error(r, 404, "NOT_FOUND").await;

    // A show made through the API numbers its seats 1 to rows × cols, row by row.
    let r = app
        .admin_post(
            "/admin/events",
            json!({ "title": "Encore", "dateTime": "2027-02-01T20:00:00", "rows": 2, "cols": 3 }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let map = seat_map(&app, id).await;
    let layout: Vec<(i64, i64, i64)> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_i64().unwrap(), s["r"].as_i64().unwrap(), s["c"].as_i64().unwrap()))
        .collect();
    assert_eq!(layout, [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 1), (5, 2, 2), (6, 2, 3)]);
    // The catalog's check of seat counts holds for both numberings.
    let r = app.operations("/actuator/consistency").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

/// `POST {path}?{query}` outside /ticketing/api, with the operator's token or another.
async fn test_reset(app: &TestApp, path: &str, query: &str, token: Option<&str>) -> Response {
    let rb = app.http.post(format!("{}{path}?{query}", app.url));
    let rb = match token {
        Some(token) => rb.bearer_auth(token),
        None => rb,
    };
    rb.send().await.unwrap()
}

/// A seat of show 3 held and another sold, for a reset to void.
async fn hold_and_sell(app: &TestApp) -> (i64, i64) {
    let buyer = app.buyer("resettable");
    let (held, sold) = (seat(3, 50), seat(3, 51));
    assert_eq!(buyer.hold(3, &[held]).await.status(), StatusCode::CREATED);
    let order_id = buyer.buy(3, &[sold]).await;
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    app.wait_seat(3, held, "HELD").await;
    app.wait_seat(3, sold, "SOLD").await;
    (held, sold)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_reset_wants_the_operator_by_default() {
    let app = spawn_app().await;
    let (held, sold) = hold_and_sell(&app).await;
    // Without a token, or with a buyer's: refused, with the contract's body; nothing reset.
    assert_error(test_reset(&app, "/admin/test-reset", "eventId=3", None).await, 401, "UNAUTHORIZED").await;
    assert_error(test_reset(&app, "/ticketing/admin/test-reset", "eventId=3", None).await, 401, "UNAUTHORIZED").await;
    assert_error(test_reset(&app, "/admin/test-reset", "eventId=3", Some("buyer")).await, 403, "FORBIDDEN").await;
    assert_eq!(app.seat_status(3, sold).await, "SOLD");
    // Bad or missing eventId: 422; an unknown event: 404.
    for query in ["", "eventId=", "eventId=three", "eventId=1.5", "event=3"] {
        let r = test_reset(&app, "/admin/test-reset", query, Some(ADMIN)).await;
        assert_error(r, 422, "VALIDATION_FAILED").await;
    }
    assert_error(test_reset(&app, "/admin/test-reset", "eventId=424242", Some(ADMIN)).await, 404, "NOT_FOUND").await;

    // The operator's token resets the show, through the same layers as every route.
    let r = test_reset(&app, "/admin/test-reset", "eventId=3", Some(ADMIN)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("trace-id"));
    assert_eq!(r.json::<Value>().await.unwrap()["eventId"], 3);
    app.wait_seat(3, held, "AVAILABLE").await;
    app.wait_seat(3, sold, "AVAILABLE").await;
    // Under /ticketing too.
    let r = test_reset(&app, "/ticketing/admin/test-reset", "eventId=2", Some(ADMIN)).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_allow_test_reset_anyone_may_reset_a_show() {
    let app = spawn_with(boxoffice::cli::ServeArgs { allow_test_reset: true, ..common::args() }).await;
    let (held, sold) = hold_and_sell(&app).await;
    let r = test_reset(&app, "/admin/test-reset", "eventId=3", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["eventId"], 3);
    // Every seat of the show is AVAILABLE again: the hold and the sale are void.
    app.wait_seat(3, held, "AVAILABLE").await;
    app.wait_seat(3, sold, "AVAILABLE").await;
    let map = seat_map(&app, 3).await;
    assert!(map["seats"].as_array().unwrap().iter().all(|s| s["status"] == "AVAILABLE"), "{map}");
    // The validation still applies.
    assert_error(test_reset(&app, "/admin/test-reset", "", None).await, 422, "VALIDATION_FAILED").await;
    assert_error(test_reset(&app, "/admin/test-reset", "eventId=424242", None).await, 404, "NOT_FOUND").await;
    app.assert_audit_passes().await;
}
