//! A process killed in the middle of sagas and restarted on the same data; and the
//! checks that must catch a violation when there is one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::common::{ADMIN, Store, at_most, get_json, seat, seats, spawn_app, start_binary};

/// Starts the real binary on `store`; returns it and its base URL once it is healthy.
async fn start(store: &Store) -> (Child, String) {
    let mut args: Vec<String> =
        ["--payment-latency-ms", "50..400", "--payment-success-rate", "0.7", "--sweep-interval-ms", "100"]
            .map(str::to_owned)
            .to_vec();
    args.extend(store.serve_args());
    start_binary(&args).await
}

/// Holds and orders one seat as its own buyer; the order id if it was accepted.
async fn purchase(
    http: reqwest::Client,
    url: String,
    event_id: i64,
    seat: i64,
    accepted: Arc<AtomicUsize>,
) -> Option<(String, i64)> {
    let buyer = format!("crash-buyer-{event_id}-{seat}");
    let hold = serde_json::json!({ "eventId": event_id, "seatId": seat, "holdSeconds": 60 });
    let r = http.post(format!("{url}/ticketing/api/reservations")).bearer_auth(&buyer).json(&hold).send().await.ok()?;
    if r.status() != StatusCode::CREATED {
        return None;
    }
    let order = serde_json::json!({ "eventId": event_id, "seatIds": [seat] });
    let r = http
        .post(format!("{url}/ticketing/api/orders"))
        .bearer_auth(&buyer)
        .header("Idempotency-Key", format!("k-{seat}"))
        .json(&order)
        .send()
        .await
        .ok()?;
    if r.status() != StatusCode::CREATED {
        return None;
    }
    accepted.fetch_add(1, Ordering::SeqCst);
    let body: Value = r.json().await.ok()?;
    Some((buyer, body["orderId"].as_i64()?))
}

/// Orders the dead process left in CREATED, read straight from its database.
async fn orders_in_flight(store: &Store) -> i64 {
    let db = store.connect("order").await;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'CREATED'").fetch_one(&db).await.unwrap();
    db.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_saga_finishes_every_saga_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::new(data.path());
    let http = reqwest::Client::new();
    let mut accepted = Vec::new();
    let mut in_flight_at_kill = 0;
    let (mut child, mut url) = start(&store).await;
    for round in 0..2i64 {
        // Buyers keep coming while the process is killed under them.
        let event_id = round + 1;
        let so_far = Arc::new(AtomicUsize::new(0));
        let buyers: Vec<_> = (1..=60)
            .map(|n| tokio::spawn(purchase(http.clone(), url.clone(), event_id, seat(event_id, n), so_far.clone())))
            .collect();
        // Kill once some orders are in, with payments (50–400 ms) surely still running.
        let some = 10 + 10 * round as usize;
        at_most(Duration::from_secs(5), || async { so_far.load(Ordering::SeqCst) >= some }).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        in_flight_at_kill += orders_in_flight(&store).await;
        for b in buyers {
            accepted.extend(b.await.unwrap());
        }
        (child, url) = start(&store).await;
    }
    assert!(!accepted.is_empty(), "some purchases were accepted before the kills");
    assert!(in_flight_at_kill > 0, "the kills came while sagas were in flight");

    let report = audit::audit(&url, ADMIN, Duration::from_secs(30)).await.unwrap();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    for (buyer, order_id) in &accepted {
        let order = get_json(&http, &format!("{url}/ticketing/api/orders/{order_id}"), buyer).await;
        assert!(order["status"] == "CONFIRMED" || order["status"] == "CANCELLED", "{order}");
        // The number it was given before the kills is still its own.
        assert_eq!(order["orderId"], *order_id, "{order}");
    }
    child.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_violations_are_reported_by_the_checks_and_the_audit() {
    let app = spawn_app().await;
    let buyer = app.buyer("honest");
    let order_id = buyer.buy(1, &seats(1, [98])).await;
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    app.assert_audit_passes().await;
    let r = app.operations("/actuator/consistency").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Someone edits the reservation database by hand: a seat sold to nobody, and one
    // sold to an order that does not exist (seats 295 and 289: show 1's 99th and 97th).
    assert_eq!(seats(1, [99, 97]), [295, 289]);
    let db = app.store.connect("reservation").await;
    sqlx::query("UPDATE seats SET status = 'SOLD', order_id = NULL WHERE event_id = 1 AND seat_id = 295")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE seats SET status = 'SOLD', order_id = 'forged-order' WHERE event_id = 1 AND seat_id = 289")
        .execute(&db)
        .await
        .unwrap();

    let r = app.operations("/actuator/consistency").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "DOWN");
    let failing: Vec<&str> = body["modules"]["reservation"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failing.contains(&"sold_seats_have_an_order"), "{failing:?}");

    let report = audit::audit(&app.url, ADMIN, Duration::from_millis(500)).await.unwrap();
    let found = |needle: &str| report.violations.iter().any(|v| v.contains(needle));
    assert!(found("seat 1/289 is SOLD to no known order"), "{:#?}", report.violations);
    assert!(found("seat 1/295"), "{:#?}", report.violations);

    // The command names them and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["audit", "--url", &app.url, "--admin-token", ADMIN, "--settle-seconds", "1"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("VIOLATION: seat 1/289 is SOLD to no known order"), "{stdout}");
    assert!(stdout.contains("audit FAILED"), "{stdout}");
}
