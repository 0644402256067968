//! Bad input gets the contract's error body with a 4xx, and changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, ADMIN, assert_error, seat, seats, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_absurd_holds_are_refused_and_hold_nothing() {
    let app = spawn_app().await;
    let url = app.api("/reservations");
    let post = |body: &'static str| {
        app.http.post(&url).bearer_auth("mallory").header("content-type", "application/json").body(body).send()
    };
    for body in [
        "{",
        "null",
        "[]",
        r#"{"eventId":"one","seatId":1}"#,
        r#"{"eventId":1,"seatId":1.5}"#,
        r#"{"eventId":1}"#,
        r#"{"eventId":1,"seatId":1,"holdSeconds":0}"#,
        r#"{"eventId":1,"seatId":1,"holdSeconds":-30}"#,
        r#"{"eventId":1,"seatId":1,"holdSeconds":999999999}"#,
        r#"{"eventId":1,"seatIds":[]}"#,
        r#"{"eventId":1,"seatIds":[1,1]}"#,
        r#"{"eventId":1,"seatIds":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21]}"#,
        r#"{"eventId":1,"seatId":3,"seatIds":[1,2]}"#,
        r#"{"eventId":1,"seatId":1,"extra":true}"#,
        r#"{"eventId":99999999999999999999,"seatId":1}"#,
    ] {
        assert_error(post(body).await.unwrap(), 422, "VALIDATION_FAILED").await;
    }
    assert_error(post(r#"{"eventId":424242,"seatId":1}"#).await.unwrap(), 404, "NOT_FOUND").await;
    assert_error(post(r#"{"eventId":1,"seatId":101}"#).await.unwrap(), 404, "NOT_FOUND").await;
    // Nothing was held by any of it.
    let holds: Value = app.buyer("mallory").get("/reservations").await.json().await.unwrap();
    assert_eq!(holds, json!([]));
    // (The seat map may still be catching up with the start-up probe of seat 1.)
    app.wait_seat(1, seat(1, 1), "AVAILABLE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app().await;
    let huge = format!(r#"{{"eventId":1,"seatId":1,"pad":"{}"}}"#, "x".repeat(200_000));
    let r = app.http.post(app.api("/reservations")).bearer_auth("big").body(huge).send().await.unwrap();
    assert_error(r, 413, "VALIDATION_FAILED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_are_refused_and_create_nothing() {
    let app = spawn_app().await;
    let buyer = app.buyer("oscar");
    assert_eq!(buyer.hold(1, &seats(1, [44])).await.status(), StatusCode::CREATED);
    let url = app.api("/orders");
    // No key, an empty key, and malformed bodies.
    let r = app
        .http
        .post(&url)
        .bearer_auth("oscar")
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 44)] }))
        .send()
        .await
        .unwrap();
    assert_error(r, 422, "VALIDATION_FAILED").await;
    let r = app
        .http
        .post(&url)
        .bearer_auth("oscar")
        .header("Idempotency-Key", "")
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 44)] }))
        .send()
        .await
        .unwrap();
    assert_error(r, 422, "VALIDATION_FAILED").await;
    for body in [
        json!({ "eventId": 1 }),
        json!({ "eventId": 1, "seatIds": [] }),
        json!({ "eventId": 1, "seatIds": ["44"] }),
        json!({ "eventId": 1, "seatIds": [seat(1, 44), seat(1, 44)] }),
    ] {
        let r =
            app.http.post(&url).bearer_auth("oscar").header("Idempotency-Key", "k").json(&body).send().await.unwrap();
        assert_error(r, 422, "VALIDATION_FAILED").await;
    }
    // Without any identity.
    let r = app
        .http
        .post(&url)
        .header("Idempotency-Key", "k")
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 44)] }))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "UNAUTHORIZED").await;
    // Unknown seats.
    assert_error(buyer.order("k2", 1, &[4444]).await, 404, "NOT_FOUND").await;
    let mine: Value = buyer.get("/orders").await.json().await.unwrap();
    assert_eq!(mine, json!([]));
    // The hold is still there to be ordered properly.
    assert_eq!(buyer.order("k3", 1, &seats(1, [44])).await.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_ids_and_methods_get_contract_errors() {
    let app = spawn_app().await;
    let get = |path: String| app.http.get(path).send();
    assert_error(get(app.api("/events/424242")).await.unwrap(), 404, "NOT_FOUND").await;
    assert_error(get(app.api("/events/abc")).await.unwrap(), 404, "NOT_FOUND").await;
    assert_error(get(app.api("/events/424242/seats")).await.unwrap(), 404, "NOT_FOUND").await;
    assert_error(get(app.api("/nowhere")).await.unwrap(), 404, "NOT_FOUND").await;
    let r = app.http.delete(app.api("/events")).send().await.unwrap();
    assert_error(r, 405, "VALIDATION_FAILED").await;
    let r = app
        .http
        .post(app.api("/payments/authorize"))
        .bearer_auth("x")
        .json(&json!({ "orderId": "nope" }))
        .send()
        .await
        .unwrap();
    // The contract's orderId is an integer.
    assert_error(r, 422, "VALIDATION_FAILED").await;
    let r = app
        .http
        .post(app.api("/payments/authorize"))
        .bearer_auth("x")
        .json(&json!({ "orderId": 424242 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NOT_FOUND").await;
    let r = app
        .http
        .post(app.api("/reservations/1/abc/extend"))
        .bearer_auth("x")
        .json(&json!({ "seconds": 5 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_the_admin_token_and_valid_layouts() {
    let app = spawn_app().await;
    let url = app.api("/admin/events");
    let event = json!({ "title": "Late show", "dateTime": "2026-12-31T23:00:00", "rows": 5, "cols": 5 });
    assert_error(app.http.post(&url).json(&event).send().await.unwrap(), 401, "UNAUTHORIZED").await;
    assert_error(app.http.post(&url).bearer_auth("buyer").json(&event).send().await.unwrap(), 403, "FORBIDDEN").await;
    assert_error(
        app.http.post(app.api("/admin/events/1/reset")).bearer_auth("buyer").send().await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(app.http.get(app.api("/admin/audit/order")).send().await.unwrap(), 401, "UNAUTHORIZED").await;
    for bad in [
        json!({ "title": "", "dateTime": "2026-12-31T23:00:00", "rows": 5, "cols": 5 }),
        json!({ "title": "x", "dateTime": "tomorrow", "rows": 5, "cols": 5 }),
        json!({ "title": "x", "dateTime": "2026-12-31T23:00:00", "rows": 0, "cols": 5 }),
        json!({ "title": "x", "dateTime": "2026-12-31T23:00:00", "rows": 1000, "cols": 1000 }),
        json!({ "title": "x", "dateTime": "2026-12-31T23:00:00", "rows": 5, "cols": 5, "basePrice": -1 }),
    ] {
        assert_error(app.http.post(&url).bearer_auth(ADMIN).json(&bad).send().await.unwrap(), 422, "VALIDATION_FAILED")
            .await;
    }
    assert_error(app.admin_post("/admin/events/424242/reset", json!({})).await, 404, "NOT_FOUND").await;
    let events: Value = app.http.get(app.api("/events")).send().await.unwrap().json().await.unwrap();
    assert_eq!(events.as_array().unwrap().len(), common::DEMO_EVENTS, "only the demo events exist");
    assert_eq!(app.admin_post("/admin/events", event).await.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_comes_from_traceparent_or_trace_id_and_is_always_answered() {
    let app = spawn_app().await;
    let url = app.api("/events");
    let r = app
        .http
        .get(&url)
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["trace-id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let r = app.http.get(&url).header("trace-id", "k6-run-7").send().await.unwrap();
    assert_eq!(r.headers()["trace-id"], "k6-run-7");
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["trace-id"].len(), 32);
    // The hold answer's traceId is the request's.
    let r = app
        .http
        .post(app.api("/reservations"))
        .bearer_auth("tracy")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .json(&json!({ "eventId": 1, "seatId": seat(1, 88) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["traceId"], "0af7651916cd43dd8448eb211c80319c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let r = app.http.get(app.api("/openapi.yaml")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let spec = r.text().await.unwrap();
    for path in [
        "/ticketing/api/events:",
        "/ticketing/api/events/{id}:",
        "/ticketing/api/events/{id}/seats:",
        "/ticketing/api/events/{id}/seats/stream:",
        "/ticketing/api/reservations:",
        "/ticketing/api/reservations/{eventId}/{seatId}/extend:",
        "/ticketing/api/reservations/{eventId}/{seatId}:",
        "/ticketing/api/orders:",
        "/ticketing/api/orders/{id}:",
        "/ticketing/api/payments/authorize:",
        "/ticketing/api/admin/events:",
        "/ticketing/api/admin/events/{id}/reset:",
        "/ticketing/api/admin/events/{id}:",
        "/ticketing/api/admin/events/{id}/room:",
        "/ticketing/api/queue/{eventId}/join:",
        "/ticketing/api/queue/{eventId}/me:",
        "/ticketing/api/queue/{eventId}/me/stream:",
        "/admin/test-reset:",
        "/ticketing/admin/test-reset:",
        "/actuator/health:",
        "/actuator/consistency:",
        "/ticketing/api/orders/{id}/tickets:",
        "/ticketing/api/orders/{id}/tickets.pdf:",
        "/ticketing/api/orders/{id}/tickets/{ticketId}/qr.svg:",
        "/ticketing/api/events/{id}/ticket-keys:",
        "/ticketing/api/checkin:",
        "/ticketing/api/checkin/batch:",
        "/ticketing/api/admin/events/{id}/scanner-bundle:",
        "/ticketing/api/admin/events/{id}/checkins/conflicts:",
        "/ticketing/api/admin/events/{id}/ticket-keys/rotate:",
        "/ticketing/api/admin/audit/tickets:",
        "/ticketing/api/admin/orders/{id}/refund:",
    ] {
        assert!(spec.contains(path), "the OpenAPI document lacks {path}");
    }
}

/// Found by schemathesis: a hold's optional fields may be `null` (as a Jackson client
/// sends them), which is the same as leaving them out; the document says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_optional_field_of_a_hold_is_the_same_as_none() {
    let app = spawn_app().await;
    let post = |body: &'static str| {
        app.http
            .post(app.api("/reservations"))
            .bearer_auth("nully")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Seats 13 and 16: the fifth and sixth of show 1 (see `common::seat`).
    assert_eq!(seats(1, [5, 6]), [13, 16]);
    let r = post(r#"{"eventId":1,"seatId":13,"seatIds":null,"holdSeconds":null}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold: Value = r.json().await.unwrap();
    assert_eq!((hold["seatIds"].clone(), hold["holdSeconds"].clone()), (json!([13]), json!(60)));
    let r = post(r#"{"eventId":1,"seatId":null,"seatIds":[16],"areaId":null,"quantity":null}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let best = r#"{"eventId":1,"bestAvailable":{"quantity":1,"categories":null,"sections":null},"areaId":null}"#;
    assert_eq!(post(best).await.unwrap().status(), StatusCode::CREATED);
    assert_error(post(r#"{"eventId":1,"seatId":null,"seatIds":null}"#).await.unwrap(), 422, "VALIDATION_FAILED").await;
    let spec = app.http.get(app.api("/openapi.yaml")).send().await.unwrap().text().await.unwrap();
    let hold_request = &spec[spec.find("    HoldRequest:").unwrap()..spec.find("    HoldResponse:").unwrap()];
    // seatId, seatIds, holdSeconds, areaId, quantity, bestAvailable's categories and sections.
    assert_eq!(hold_request.matches("nullable: true").count(), 7, "{hold_request}");
}
