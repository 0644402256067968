//! A data directory written by the build before order numbers (tests/fixtures/upgrade,
//! made by its make.sh): the new build takes it over, numbers its orders in the order
//! they were created, announces the numbers to the modules that keep them, and every
//! order — settled or caught in flight by a SIGKILL — is served by its number.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN, Store, at_most, eventually, get_json, start_binary};

const FIXTURE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/upgrade/data-before-order-numbers.tar.gz");

/// The fixture's buyers: buyer n ordered seat n of show 1, in that order; 6's payment
/// failed; 7, 8 and 9 were in flight when the old process was killed.
const BUYERS: i64 = 9;

fn buyer(n: i64) -> String {
    format!("upgrade-buyer-{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_of_an_earlier_build_keep_working_under_their_new_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let untar = std::process::Command::new("tar").arg("-xzf").arg(FIXTURE).arg("-C").arg(dir.path()).status().unwrap();
    assert!(untar.success(), "the fixture unpacks");
    // The earlier build wrote its secrets 0644, and tar keeps modes: this build refuses
    // secrets that others may read, so they are tightened first, as its refusal tells an
    // operator to (chmod 600).
    for secret in ["auth-secret", "cookie-key"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join(secret), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let store = Store::sqlite(dir.path());
    let args: Vec<String> =
        // The payments in flight in the fixture were asked for long ago: a deadline that
        // has not passed lets them succeed now (past it they fail, as they should).
        ["--payment-latency-ms", "0..0", "--payment-success-rate", "1.0", "--payment-deadline-ms", "3000000000000"]
            .map(str::to_owned)
            .to_vec();
    let args = [args, store.serve_args()].concat();
    let (mut child, url) = start_binary(&args).await;
    let http = reqwest::Client::new();
    let api = format!("{url}/ticketing/api");

    // Numbered in creation order; each settles (the three in flight too) and is its buyer's.
    for n in 1..=BUYERS {
        let (path, owner) = (format!("{api}/orders/{n}"), buyer(n));
        let order = || get_json(&http, &path, &owner);
        let settled = at_most(Duration::from_secs(15), || async {
            let order = order().await;
            (order["status"] != "CREATED").then_some(order)
        });
        let order = match settled.await {
            Some(order) => order,
            None => order().await,
        };
        assert_eq!(order["orderId"], n, "{order}");
        assert_eq!(order["seatIds"], json!([n]), "{order}");
        assert_eq!(order["status"], if n == 6 { "CANCELLED" } else { "CONFIRMED" }, "{order}");
        let mine = get_json(&http, &format!("{api}/orders"), &buyer(n)).await;
        assert_eq!(mine[0]["orderId"], n, "{mine}");
        // Another buyer's order is not found.
        let r = http.get(format!("{api}/orders/{n}")).bearer_auth(buyer(n % BUYERS + 1)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    // The payment module learnt the numbers of orders it had from before (OrderNumbered).
    for n in 1..=BUYERS {
        let paid = eventually(Duration::from_secs(10), format!("a payment is found for order {n}"), || async {
            let answer = http
                .post(format!("{api}/payments/authorize"))
                .bearer_auth(buyer(n))
                .json(&json!({ "orderId": n }))
                .send()
                .await
                .unwrap();
            match answer.status() == StatusCode::OK {
                true => Some(answer.json::<Value>().await.unwrap()),
                false => None,
            }
        })
        .await;
        assert_eq!(paid["orderId"], n);
        assert_eq!(paid["status"], if n == 6 { "fail" } else { "success" }, "{paid}");
    }

    // The next order takes the next number.
    let next = buyer(BUYERS + 1);
    let hold = json!({ "eventId": 1, "seatId": 50, "holdSeconds": 30 });
    let r = http.post(format!("{api}/reservations")).bearer_auth(&next).json(&hold).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = http
        .post(format!("{api}/orders"))
        .bearer_auth(&next)
        .header("Idempotency-Key", "after-the-upgrade")
        .json(&json!({ "eventId": 1, "seatIds": [50] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["orderId"], BUYERS + 1);

    let report = audit::audit(&url, ADMIN, Duration::from_secs(30)).await.unwrap();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.orders, BUYERS as usize + 1);

    // Announced once: a restart finds nothing left to announce.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let db = store.connect("order").await;
    let unannounced: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE number_unannounced = 1").fetch_one(&db).await.unwrap();
    assert_eq!(unannounced, 0);
}
