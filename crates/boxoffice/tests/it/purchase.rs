//! The purchase flow: hold → order → payment → SOLD, and every way it can end.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, assert_error, at_most, eventually, seat, seats, spawn_app, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_ends_confirmed_with_its_seats_sold() {
    let app = spawn_app().await;
    let buyer = app.buyer("alice");
    let r = buyer.hold(1, &seats(1, [12, 13])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().contains_key("trace-id"));
    let hold: Value = r.json().await.unwrap();
    assert_eq!(hold["eventId"], 1);
    assert_eq!(hold["seatId"], seat(1, 12));
    assert_eq!(hold["holdSeconds"], 60);
    assert!(hold["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(hold["traceId"].as_str().unwrap().len(), 32);
    app.wait_seat(1, seat(1, 12), "HELD").await;

    let r = buyer.order("key-1", 1, &seats(1, [12, 13])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.unwrap();
    assert_eq!(order["status"], "CREATED");
    assert_eq!(order["seatIds"], json!(seats(1, [12, 13])));
    // Column 2 and 3 of row 2: 50000 + c × 1000 each.
    assert_eq!(order["amount"], 52_000 + 53_000);
    let order_id = order["orderId"].as_i64().expect("orderId is an integer");

    let done = buyer.final_order(order_id).await;
    assert_eq!(done["status"], "CONFIRMED");
    app.wait_seat(1, seat(1, 12), "SOLD").await;
    app.wait_seat(1, seat(1, 13), "SOLD").await;

    // The contract's authorize endpoint reports the saga's payment.
    let r = buyer
        .http
        .post(app.api("/payments/authorize"))
        .bearer_auth("alice")
        .json(&json!({ "orderId": order_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let paid: Value = r.json().await.unwrap();
    assert_eq!(paid["status"], "success");
    assert_eq!(paid["paymentStatus"], "SUCCEEDED");
    assert_eq!(paid["orderId"], order_id);
    // Another buyer's order has no payment to show them.
    let r = buyer
        .http
        .post(app.api("/payments/authorize"))
        .bearer_auth("mallory")
        .json(&json!({ "orderId": order_id }))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NOT_FOUND").await;

    // A sold seat cannot be held again.
    assert_error(app.buyer("bob").hold(1, &seats(1, [12])).await, 422, "SEAT_SOLD").await;
    let mine: Value = buyer.get("/orders").await.json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_buyer_is_known_by_the_cookie_of_its_first_hold() {
    let app = spawn_app().await;
    let mut buyer = app.anonymous();
    let r = buyer.post("/reservations", json!({ "eventId": 2, "seatId": seat(2, 7), "holdSeconds": 30 })).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookie = buyer.cookie.clone().expect("the first hold sets the buyer cookie");
    assert!(cookie.starts_with("boxoffice_buyer="));
    // The cookie is the buyer: it can order the hold; a forged one cannot.
    let order_id = {
        let r = buyer.order("k", 2, &seats(2, [7])).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap()
    };
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    let mut forged = app.anonymous();
    forged.cookie = Some(format!("{}0", cookie));
    assert_error(forged.get(&format!("/orders/{order_id}")).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payment_cancels_the_order_and_frees_its_seats() {
    let mut args = common::args();
    args.payment_success_rate = 0.0;
    let app = spawn_with(args).await;
    let buyer = app.buyer("carol");
    let order_id = buyer.buy(1, &seats(1, [40, 41])).await;
    let done = buyer.final_order(order_id).await;
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancelReason"], "PAYMENT_FAILED");
    // Freed for real: another buyer can take them (as soon as the reservation module has
    // seen the cancellation; on Kafka that may be a moment after the order's).
    let dave = app.buyer("dave");
    let status = at_most(Duration::from_secs(10), || async {
        let status = dave.hold(1, &seats(1, [40, 41])).await.status();
        (status != StatusCode::CONFLICT).then_some(status)
    })
    .await;
    assert_eq!(status, Some(StatusCode::CREATED));
    app.wait_seat(1, seat(1, 40), "HELD").await;
    let r = buyer
        .http
        .post(app.api("/payments/authorize"))
        .bearer_auth("carol")
        .json(&json!({ "orderId": order_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "fail");
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_expires_and_the_seat_is_free_again() {
    let mut args = common::args();
    args.hold_seconds = (1, 120);
    let app = spawn_with(args).await;
    let first = app.buyer("erin");
    let r = first.hold_for(1, seat(1, 30), 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["holdSeconds"], 1);
    assert_error(app.buyer("frank").hold(1, &seats(1, [30])).await, 409, "RESERVATION_CONFLICT").await;
    app.wait_seat(1, seat(1, 30), "HELD").await;
    app.clock.advance(Duration::from_millis(1300));
    app.wait_seat(1, seat(1, 30), "AVAILABLE").await;
    // The expired holder can neither extend, release nor order it.
    assert_error(first.extend(1, seat(1, 30), 60).await, 410, "RESERVATION_EXPIRED").await;
    assert_error(first.release(1, seat(1, 30)).await, 410, "RESERVATION_EXPIRED").await;
    assert_error(first.order("late", 1, &seats(1, [30])).await, 410, "RESERVATION_EXPIRED").await;
    assert_eq!(app.buyer("frank").hold(1, &seats(1, [30])).await.status(), StatusCode::CREATED);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_clamp_their_time_extend_and_release() {
    let app = spawn_app().await;
    let buyer = app.buyer("gina");
    // Clamped into the default 5..120 range.
    let r = buyer.hold_for(3, seat(3, 1), 2).await;
    assert_eq!(r.json::<Value>().await.unwrap()["holdSeconds"], 5);
    buyer.release(3, seat(3, 1)).await;
    let r = buyer.hold_for(3, seat(3, 1), 3600).await;
    assert_eq!(r.json::<Value>().await.unwrap()["holdSeconds"], 120);
    let r = buyer.extend(3, seat(3, 1), 30).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.json::<Value>().await.unwrap()["expiresAt"].is_string());
    let holds: Value = buyer.get("/reservations").await.json().await.unwrap();
    assert_eq!(holds.as_array().unwrap().len(), 1);
    // Another buyer can neither extend nor release it.
    let other = app.buyer("hank");
    assert_error(other.extend(3, seat(3, 1), 30).await, 409, "RESERVATION_CONFLICT").await;
    assert_error(other.release(3, seat(3, 1)).await, 409, "RESERVATION_CONFLICT").await;
    assert_eq!(buyer.release(3, seat(3, 1)).await.status(), StatusCode::NO_CONTENT);
    assert_error(buyer.release(3, seat(3, 1)).await, 410, "RESERVATION_EXPIRED").await;
    app.wait_seat(3, seat(3, 1), "AVAILABLE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_seat_hold_takes_all_or_none() {
    let app = spawn_app().await;
    assert_eq!(app.buyer("ivy").hold(2, &seats(2, [22])).await.status(), StatusCode::CREATED);
    assert_error(app.buyer("jack").hold(2, &seats(2, [21, 22, 23])).await, 409, "RESERVATION_CONFLICT").await;
    // Neither of the free seats was taken by the refused hold.
    assert_eq!(app.buyer("kim").hold(2, &seats(2, [21, 23])).await.status(), StatusCode::CREATED);
    assert_error(app.buyer("lee").hold(2, &[seat(2, 24), 9999]).await, 404, "NOT_FOUND").await;
    assert_eq!(app.buyer("lee").hold(2, &seats(2, [24])).await.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_can_order_and_only_the_owner_can_read_the_order() {
    let app = spawn_app().await;
    let owner = app.buyer("mia");
    let thief = app.buyer("ned");
    assert_eq!(owner.hold(1, &seats(1, [50])).await.status(), StatusCode::CREATED);
    assert_error(thief.order("t1", 1, &seats(1, [50])).await, 409, "RESERVATION_CONFLICT").await;
    assert_error(thief.order("t2", 1, &seats(1, [51])).await, 410, "RESERVATION_EXPIRED").await;
    let order_id = owner.buy(1, &seats(1, [52])).await;
    // Another buyer's order is as good as absent: its number tells a prober nothing.
    assert_error(thief.get(&format!("/orders/{order_id}")).await, 404, "NOT_FOUND").await;
    assert_error(app.anonymous().get(&format!("/orders/{order_id}")).await, 401, "UNAUTHORIZED").await;
    assert_error(owner.get("/orders/00000000-0000-0000-0000-000000000000").await, 404, "NOT_FOUND").await;
    // A pinned hold cannot be released or re-held from under its order.
    assert_eq!(owner.final_order(order_id).await["status"], "CONFIRMED");
    assert_error(owner.hold(1, &seats(1, [52])).await, 422, "SEAT_SOLD").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_first_answer() {
    let app = spawn_app().await;
    let buyer = app.buyer("olga");
    assert_eq!(buyer.hold(1, &seats(1, [60, 61])).await.status(), StatusCode::CREATED);
    let first = buyer.order("same-key", 1, &seats(1, [60, 61])).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(buyer.final_order(first["orderId"].as_i64().unwrap()).await["status"], "CONFIRMED");

    // After the order is confirmed, a replay still answers as the first time.
    let again = buyer.order("same-key", 1, &seats(1, [61, 60])).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_error(buyer.order("same-key", 1, &seats(1, [60])).await, 422, "IDEMPOTENCY_KEY_REUSED").await;
    // The key is the buyer's own: another buyer's same key is another request.
    assert_error(app.buyer("pia").order("same-key", 1, &seats(1, [60, 61])).await, 422, "SEAT_SOLD").await;
    let mine: Value = buyer.get("/orders").await.json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_one_key_make_one_order() {
    let app = spawn_app().await;
    let buyer = app.buyer("quinn");
    assert_eq!(buyer.hold(1, &seats(1, [70])).await.status(), StatusCode::CREATED);
    let wanted = seats(1, [70]);
    let attempts = (0..16).map(|_| buyer.order("racing-key", 1, &wanted));
    let answers = futures_util::future::join_all(attempts).await;
    let mut ids = Vec::new();
    for r in answers {
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key");
    let mine: Value = buyer.get("/orders").await.json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_and_resets_an_event_and_its_buyers_are_refunded() {
    let mut args = common::args();
    args.payment_latency_ms = (800, 800);
    let app = spawn_with(args).await;
    let r = app
        .admin_post("/admin/events", json!({ "title": "Matinee", "dateTime": "2026-12-01T14:00:00", "rows": 2, "cols": 3, "basePrice": 1000, "columnStep": 10 }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let event: Value = r.json().await.unwrap();
    let id = event["id"].as_i64().unwrap();
    assert_eq!(event["rows"], 2);
    let map: Value = app.http.get(app.api(&format!("/events/{id}/seats"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(map["seats"].as_array().unwrap().len(), 6);
    assert_eq!(map["seats"][5]["price"], 1030);
    app.wait_for_seats(id).await;

    let buyer = app.buyer("rita");
    let confirmed = buyer.buy(id, &[1]).await;
    assert_eq!(buyer.final_order(confirmed).await["status"], "CONFIRMED");
    // This one's payment is still at the gateway when the show is reset.
    let in_flight = buyer.buy(id, &[2]).await;
    let r = app.admin_post(&format!("/admin/events/{id}/reset"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for order_id in [confirmed, in_flight] {
        let done = buyer.order_until(order_id, |s| s == "CANCELLED").await;
        assert_eq!(done["cancelReason"], "EVENT_RESET");
    }
    app.wait_seat(id, 1, "AVAILABLE").await;
    app.wait_seat(id, 2, "AVAILABLE").await;
    // The audit holds only once both payments are refunded.
    app.assert_audit_passes().await;
    let payments = common::get_json(&app.http, &app.api("/admin/audit/payment"), common::ADMIN).await;
    let statuses: Vec<&str> =
        payments["payments"].as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["REFUNDED", "REFUNDED"]);
    // And the show sells again.
    assert_eq!(buyer.final_order(buyer.buy(id, &[1]).await).await["status"], "CONFIRMED");
}

/// A pin made before pins kept their seat count (a database from an earlier version) is
/// sold the long way (its pin read and checked, then marked SOLD) once its order is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_without_a_seat_count_is_still_sold() {
    let mut args = common::args();
    args.payment_latency_ms = (1000, 1000);
    let app = spawn_with(args).await;
    let buyer = app.buyer("upgraded");
    let order_id = buyer.buy(1, &seats(1, [78, 79])).await;
    let order_ref = app.store.order_ref(order_id).await;
    let db = app.store.connect("reservation").await;
    let forgotten = sqlx::query("UPDATE pins SET seat_count = NULL WHERE order_id = $1 AND state <> 'SOLD'")
        .bind(&order_ref)
        .execute(&db)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(forgotten, 1, "the pin is not sold while the payment is at the gateway");
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    let state: String =
        sqlx::query_scalar("SELECT state FROM pins WHERE order_id = $1").bind(&order_ref).fetch_one(&db).await.unwrap();
    assert_eq!(state, "SOLD");
    app.wait_seat(1, seat(1, 78), "SOLD").await;
    app.wait_seat(1, seat(1, 79), "SOLD").await;
    app.assert_audit_passes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_seats_that_were_lost_is_refunded_and_the_order_cancelled() {
    let mut args = common::args();
    args.payment_latency_ms = (1000, 1000);
    let app = spawn_with(args).await;
    let buyer = app.buyer("unlucky");
    let order_id = buyer.buy(1, &seats(1, [77])).await;
    let order_ref = app.store.order_ref(order_id).await;

    // While the payment is at the gateway, the hold is lost (as if an operator or a
    // bug freed it) and another buyer takes the seat.
    let db = app.store.connect("reservation").await;
    at_most(Duration::from_secs(1), || async {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM pins WHERE order_id = $1")
            .bind(&order_ref)
            .fetch_optional(&db)
            .await
            .unwrap();
        state.as_deref() == Some("CONFIRMED")
    })
    .await;
    sqlx::query("UPDATE seats SET status = 'AVAILABLE', holder = NULL, order_id = NULL, expires_at = NULL WHERE event_id = 1 AND seat_id = $1")
        .bind(seat(1, 77))
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(app.buyer("lucky").hold(1, &seats(1, [77])).await.status(), StatusCode::CREATED);

    let done = buyer.final_order(order_id).await;
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancelReason"], "SEATS_LOST");
    app.wait_seat(1, seat(1, 77), "HELD").await;
    // The money went back, and nothing is inconsistent.
    app.assert_audit_passes().await;
    let payments = common::get_json(&app.http, &app.api("/admin/audit/payment"), common::ADMIN).await;
    assert_eq!(payments["payments"][0]["status"], "REFUNDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_may_wait_for_the_order_to_settle_in_one_request() {
    let mut args = common::args();
    args.payment_latency_ms = (1500, 1500);
    let app = spawn_with(args).await;
    let buyer = app.buyer("patient");
    let order_id = buyer.buy(1, &seats(1, [88])).await;
    let path = format!("/orders/{order_id}");

    // Without waitSeconds (or with 0) the answer is at once: still at the gateway.
    assert_eq!(buyer.get(&path).await.json::<Value>().await.unwrap()["status"], "CREATED");
    assert_eq!(buyer.get(&format!("{path}?waitSeconds=0")).await.json::<Value>().await.unwrap()["status"], "CREATED");
    // A wait that ends first answers with the order as it is then.
    let started = std::time::Instant::now();
    let r = buyer.get(&format!("{path}?waitSeconds=1")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "CREATED");
    assert!(started.elapsed() >= Duration::from_millis(990), "the request waited its second");
    // One request, answered when the saga confirms the order: no polling.
    let done: Value = buyer.get(&format!("{path}?waitSeconds=10")).await.json().await.unwrap();
    assert_eq!(done["status"], "CONFIRMED");
    assert!(started.elapsed() < Duration::from_secs(10), "answered when the order settled, before the wait was over");
    // The woken request answers with the order as a read of it gives it.
    assert_eq!(done, buyer.get(&path).await.json::<Value>().await.unwrap());
    // A final order is answered at once; so are refusals, which never wait.
    assert_eq!(
        buyer.get(&format!("{path}?waitSeconds=30")).await.json::<Value>().await.unwrap()["status"],
        "CONFIRMED"
    );
    assert_error(app.buyer("nosy").get(&format!("{path}?waitSeconds=30")).await, 404, "NOT_FOUND").await;
    assert_error(buyer.get("/orders/no-such-order?waitSeconds=30").await, 404, "NOT_FOUND").await;
    for bad in ["31", "-1", "soon", "1.5"] {
        assert_error(buyer.get(&format!("{path}?waitSeconds={bad}")).await, 422, "VALIDATION_FAILED").await;
    }

    // A declined payment cancels the order, and that wakes a waiting request too.
    let mut args = common::args();
    args.payment_latency_ms = (400, 400);
    args.payment_success_rate = 0.0;
    let app = spawn_with(args).await;
    let buyer = app.buyer("declined");
    let order_id = buyer.buy(1, &seats(1, [89])).await;
    let done: Value = buyer.get(&format!("/orders/{order_id}?waitSeconds=5")).await.json().await.unwrap();
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancelReason"], "PAYMENT_FAILED");
    assert_eq!(done, buyer.get(&format!("/orders/{order_id}")).await.json::<Value>().await.unwrap());
}

/// A pin whose order is never written lapses: its seats are freed and announced, and the
/// seat can be held again. On PostgreSQL the sweep takes the pin's row lock before the
/// seats', like every other step: a transaction that holds the pin and then touches its
/// seats (as applying `OrderCreated` does) is not made a deadlock victim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_whose_order_never_arrives_lapses_without_deadlocking() {
    use contract::holds::{Holds, PinRequest};
    let mut args = common::args();
    args.pin_lease_seconds = 1;
    let app = spawn_with(args).await;
    let buyer = app.buyer("lapsing");
    assert_eq!(buyer.hold(2, &seats(2, [33])).await.status(), StatusCode::CREATED);
    // The seat map has the hold before the lapse is awaited on it below.
    app.wait_seat(2, seat(2, 33), "HELD").await;
    let order_id = uuid::Uuid::now_v7().to_string();
    let reservation = app.modules.get::<reservation::Reservation>().cloned().unwrap();
    let pin = PinRequest {
        order_id: order_id.clone(),
        buyer: "user:lapsing".into(),
        event_id: 2,
        seat_ids: vec![seat(2, 33)],
    };
    let pinned = reservation.pin(pin).await.expect("the hold is pinned");
    assert_eq!(pinned.seats.len(), 1);
    // The lease runs out.
    app.clock.advance(Duration::from_millis(1_100));

    if app.store.postgres.is_some() {
        let db = app.store.connect("reservation").await;
        let mut tx = db.begin().await.unwrap();
        sqlx::query("SELECT state FROM pins WHERE order_id = $1 FOR UPDATE")
            .bind(&order_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        // The sweeper waits for the pin longer than PostgreSQL's deadlock_timeout (1 s,
        // real time), so that a cycle would now be broken by aborting us.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        sqlx::query("UPDATE seats SET version = version WHERE order_id = $1")
            .bind(&order_id)
            .execute(&mut *tx)
            .await
            .expect("the sweep does not hold the seats while it waits for the pin");
        tx.commit().await.unwrap();
    }

    app.wait_seat(2, seat(2, 33), "AVAILABLE").await;
    let db = app.store.connect("reservation").await;
    let state: String =
        sqlx::query_scalar("SELECT state FROM pins WHERE order_id = $1").bind(&order_id).fetch_one(&db).await.unwrap();
    assert_eq!(state, "LAPSED");
    let announced: Vec<String> = sqlx::query_scalar("SELECT envelope FROM outbox WHERE envelope LIKE '%PIN_LAPSED%'")
        .fetch_all(&db)
        .await
        .unwrap();
    assert!(announced.iter().any(|e| e.contains(&order_id)), "announced as lapsed: {announced:?}");
    assert_eq!(app.buyer("next").hold(2, &seats(2, [33])).await.status(), StatusCode::CREATED);
    app.assert_audit_passes().await;
}

/// A buyer's list of holds says which are pinned to an order, and names the order by
/// the number the buyer was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_holds_name_their_order_by_its_number() {
    let mut args = common::args();
    args.payment_latency_ms = (3000, 3000);
    let app = spawn_with(args).await;
    let buyer = app.buyer("lister");
    assert_eq!(buyer.hold(2, &seats(2, [5])).await.status(), StatusCode::CREATED);
    let free: Value = buyer.get("/reservations").await.json().await.unwrap();
    assert_eq!(free[0]["pinned"], false, "{free}");
    assert_eq!(free[0]["orderId"], Value::Null, "{free}");
    let r = buyer.order("list-key", 2, &seats(2, [5])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order_id = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();
    let holds = eventually(Duration::from_secs(5), "the buyer's hold names its order", || async {
        let holds: Value = buyer.get("/reservations").await.json().await.unwrap();
        (holds[0]["orderId"] == order_id).then_some(holds)
    })
    .await;
    assert_eq!(holds[0]["orderId"], order_id, "{holds}");
    assert_eq!(holds[0]["pinned"], true, "{holds}");
}
