//! Many buyers at once: exactly one winner per seat, nothing oversold.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{seat, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buyers_racing_for_a_seat_get_one_hold() {
    let app = spawn_app().await;
    for n in 80..90 {
        let (a, b) = (app.buyer("racer-a"), app.buyer("racer-b"));
        let wanted = [seat(1, n)];
        let (ra, rb) = tokio::join!(a.hold(1, &wanted), b.hold(1, &wanted));
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "seat {}", wanted[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_holds_on_a_few_seats_have_one_winner_each() {
    let app = spawn_app().await;
    const BUYERS: usize = 400;
    let seats = [91, 92, 93, 94, 95].map(|n| seat(1, n));
    let attempts = (0..BUYERS).map(|i| {
        let buyer = app.buyer(&format!("crowd-{i}"));
        // Most want one seat; every fifth wants two at once, all or none.
        let wanted: Vec<i64> = if i % 5 == 0 { vec![seats[i % 5], seats[(i + 1) % 5]] } else { vec![seats[i % 5]] };
        async move {
            let status = buyer.hold(1, &wanted).await.status();
            (buyer, wanted, status)
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut holder_of: HashMap<i64, usize> = HashMap::new();
    let mut winners = Vec::new();
    for (i, (buyer, wanted, status)) in results.into_iter().enumerate() {
        match status {
            StatusCode::CREATED => {
                for seat in &wanted {
                    assert!(holder_of.insert(*seat, i).is_none(), "seat {seat} held twice");
                }
                winners.push((buyer, wanted));
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!winners.is_empty());
    assert!(holder_of.len() <= seats.len());

    // Every winner buys; each seat is sold once, to its holder.
    let orders =
        futures_util::future::join_all(winners.iter().map(|(b, w)| async move { (b.buy(1, w).await, b) })).await;
    // Orders made at once get numbers of their own.
    let numbers: std::collections::HashSet<i64> = orders.iter().map(|(id, _)| *id).collect();
    assert_eq!(numbers.len(), orders.len(), "an order number given twice");
    let mut sold = 0;
    for (order_id, buyer) in &orders {
        let order: Value = buyer.final_order(*order_id).await;
        assert_eq!(order["status"], "CONFIRMED");
        sold += order["seatIds"].as_array().unwrap().len();
    }
    assert_eq!(sold, holder_of.len());
    let report = app.audit().await;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.seats_sold, holder_of.len());
}
