//! A slow, failing gateway: every order still ends CONFIRMED or CANCELLED, a cancelled
//! order's seats are free again, and no money is kept for it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{self, ADMIN, eventually, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_flaky_gateway_every_order_ends_and_cancelled_seats_are_free_again() {
    let mut args = common::args();
    args.payment_success_rate = 0.7;
    args.payment_latency_ms = (0, 20);
    // Half the calls fail or are carried out and never answered.
    args.payment_error_rate = 0.25;
    args.payment_hang_rate = 0.25;
    args.payment_timeout_ms = 100;
    args.payment_deadline_ms = 1_200;
    let app = spawn_with(args).await;

    let purchases = (0..30i64).map(|i| {
        let buyer = app.buyer(&format!("flaky-{i}"));
        async move {
            let seats = common::seats(1, [2 * i + 1, 2 * i + 2]);
            let order_id = buyer.buy(1, &seats).await;
            let order = buyer.final_order(order_id).await;
            (seats, order)
        }
    });
    let done: Vec<([i64; 2], Value)> = futures_util::future::join_all(purchases).await;

    let mut confirmed = 0;
    for (seats, order) in &done {
        match order["status"].as_str() {
            Some("CONFIRMED") => {
                confirmed += 1;
                for seat in seats {
                    app.wait_seat(1, *seat, "SOLD").await;
                }
            }
            Some("CANCELLED") => {
                assert_eq!(order["cancelReason"], "PAYMENT_FAILED", "{order}");
                for seat in seats {
                    app.wait_seat(1, *seat, "AVAILABLE").await;
                }
            }
            other => panic!("order did not end: {other:?} {order}"),
        }
    }
    // Both ends were reached (each all but certain: 30 orders, 30% declined).
    assert!(confirmed > 0, "no order got through the retries");
    assert!(confirmed < done.len(), "no order was cancelled");

    // The gateway was retried, and its books agree with the payments (checked by the audit).
    let metrics = app.operations("/actuator/prometheus").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    let value =
        |name: &str| -> f64 { text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0) };
    assert!(value("payment_gateway_retry_total") > 0.0, "{text}");
    assert!(value("payment_gateway_timeout_total") > 0.0, "{text}");
    assert!(value("payment_gateway_error_total") > 0.0, "{text}");
    // Voids of unanswered calls may still be under way (retried like any gateway call).
    let audit = eventually(Duration::from_secs(40), "the voids of unanswered calls are done", || async {
        let audit = common::get_json(&app.http, &app.api("/admin/audit/payment"), ADMIN).await;
        audit["payments"].as_array().unwrap().iter().all(|p| p["voidRequested"] == false).then_some(audit)
    })
    .await;
    let payments = audit["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 30);
    // The simulator knows every payment it answered or voided: the audit compares them.
    assert!(payments.iter().all(|p| p["gatewayKept"].is_i64()), "{audit}");
    app.assert_audit_passes().await;
}
