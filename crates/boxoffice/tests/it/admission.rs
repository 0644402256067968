//! Admission control (`--settle-target-ms`): beyond the limit of orders settling at once,
//! an order waits at the door until one settles, and one that waits too long is turned
//! away with 503, having changed nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{self, TestApp, assert_error, seat, spawn_with};

/// The limit a process starts with (`admission::INITIAL_LIMIT`).
const INITIAL_LIMIT: usize = 64;

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.operations("/actuator/prometheus").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// Holds one seat each (the first, the second, …) of demo show `show` for `buyers` buyers.
async fn hold_seats(app: &TestApp, show: i64, buyers: usize) -> Vec<common::Buyer> {
    let mut held = Vec::new();
    for i in 0..buyers {
        let buyer = app.buyer(&format!("door-{show}-{i}"));
        let r = buyer.hold(show, &[seat(show, i as i64 + 1)]).await;
        assert_eq!(r.status(), StatusCode::CREATED, "hold: {}", r.text().await.unwrap());
        held.push(buyer);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_beyond_the_limit_wait_until_earlier_ones_settle_and_then_all_go_in() {
    const PAYMENT_MS: u64 = 3_000;
    let mut args = common::args();
    // A target no order misses: the limit stays where it starts.
    args.settle_target_ms = 120_000;
    args.payment_latency_ms = (PAYMENT_MS, PAYMENT_MS);
    let app = spawn_with(args).await;
    let buyers = hold_seats(&app, 1, INITIAL_LIMIT + 8).await;

    let started = Instant::now();
    let orders = buyers.iter().enumerate().map(|(i, buyer)| async move {
        let r = buyer.order(&format!("door-key-{i}"), 1, &[seat(1, i as i64 + 1)]).await;
        assert_eq!(r.status(), StatusCode::CREATED, "order: {}", r.text().await.unwrap());
        started.elapsed()
    });
    let mut answered: Vec<Duration> = futures_util::future::join_all(orders).await;
    answered.sort();

    // No order settles before its payment: the limit's orders were let in before any
    // did, and the rest only after.
    let payment = Duration::from_millis(PAYMENT_MS);
    assert!(answered[INITIAL_LIMIT - 1] < payment, "the first {INITIAL_LIMIT} went in at once: {answered:?}");
    assert!(answered[INITIAL_LIMIT] >= payment, "the next waited for a settlement: {answered:?}");
    for (i, buyer) in buyers.iter().enumerate() {
        let mine: Value = buyer.get("/orders").await.json().await.unwrap();
        let order_id = mine[0]["orderId"].as_i64().unwrap();
        assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED", "buyer {i}");
    }

    // Every settlement was heard, so nothing counts against the limit any more: as many
    // orders as the limit go in at once again (on another show's seats).
    let buyers = hold_seats(&app, 2, INITIAL_LIMIT).await;
    let started = Instant::now();
    futures_util::future::join_all(buyers.iter().enumerate().map(|(i, buyer)| async move {
        let r = buyer.order(&format!("again-key-{i}"), 2, &[seat(2, i as i64 + 1)]).await;
        assert_eq!(r.status(), StatusCode::CREATED, "order: {}", r.text().await.unwrap());
    }))
    .await;
    assert!(started.elapsed() < payment, "let in before any of them settled");
    app.assert_audit_passes().await;
}

/// A server whose payments are never answered, so that no order settles, with as many
/// orders settling as it lets in; returns it, the accepted orders, and one more buyer,
/// who holds the seat `LAST_SEAT` of show 1.
async fn door_full() -> (TestApp, Vec<i64>, common::Buyer) {
    let mut args = common::args();
    args.settle_target_ms = 120_000;
    args.payment_hang_rate = 1.0;
    args.payment_deadline_ms = 300_000;
    let app = spawn_with(args).await;
    let mut buyers = hold_seats(&app, 1, INITIAL_LIMIT + 1).await;
    let last = buyers.pop().unwrap();
    let orders = buyers.iter().enumerate().map(|(i, buyer)| async move {
        let r = buyer.order(&format!("door-key-{i}"), 1, &[seat(1, i as i64 + 1)]).await;
        assert_eq!(r.status(), StatusCode::CREATED, "order: {}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap()
    });
    let accepted = futures_util::future::join_all(orders).await;
    (app, accepted, last)
}

/// The `INITIAL_LIMIT + 1`th seat of show 1.
const LAST_SEAT: i64 = catalog::demo_seat_id(1, INITIAL_LIMIT as i64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_cannot_be_let_in_in_time_is_turned_away_and_changes_nothing() {
    let (app, _, last) = door_full().await;
    let r = last.order("door-key-last", 1, &[LAST_SEAT]).await;
    assert_eq!(r.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    assert_error(r, 503, "UNAVAILABLE").await;
    // (The recorder is the process's: no other test turns orders away.)
    assert_eq!(metric(&app, "order_admission_refused_total").await, 1.0);
    assert!(metric(&app, "order_admission_limit").await >= 8.0, "the limit is exported");
    // Nothing was written: no order, the seat still held by its buyer.
    let mine: Value = last.get("/orders").await.json().await.unwrap();
    assert_eq!(mine, serde_json::json!([]));
    assert_eq!(app.seat_status(1, LAST_SEAT).await, "HELD");
}

/// On PostgreSQL a replica hears of orders another replica's saga settled through
/// `NOTIFY`; here the notification is sent as that replica would send it. (SQLite has
/// no other replica: this process's saga settles every order, as the tests above show.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_heard_from_another_replica_lets_the_next_order_in() {
    if std::env::var("BOXOFFICE_TEST_DB").as_deref() != Ok("postgres") {
        runtime::testing::skip("not applicable: the integration suite runs on SQLite (BOXOFFICE_TEST_DB unset)");
        return;
    }
    let (app, accepted, last) = door_full().await;
    let waiting = tokio::spawn(async move { last.order("door-key-last", 1, &[LAST_SEAT]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the limit holds the order back");
    let db = app.store.connect("order").await;
    // The notification names the order by its internal reference, as the saga sends it.
    let settled = app.store.order_ref(accepted[0]).await;
    sqlx::query("SELECT pg_notify('boxoffice_order_settled', $1)").bind(&settled).execute(&db).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("let in once one settled").unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
}
