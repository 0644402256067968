//! `boxoffice replay`: every consumer group rewound to the start of its topics, on the
//! embedded bus or on Kafka (with the modules' databases on SQLite or PostgreSQL). Every
//! consumer reads every event again, and nothing changes: no state, no inbox record, no
//! seat map.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{ADMIN, Store, at_most, eventually, get_json, seat, start_binary};
use crate::faults::fingerprint;

async fn backlog(url: &str) -> Value {
    get_json(&reqwest::Client::new(), &format!("{url}/actuator/backlog"), ADMIN).await
}

async fn drained(url: &str) {
    eventually(Duration::from_secs(60), "the backlog drains", || async { backlog(url).await["total"] == 0 }).await;
}

/// SIGTERM, so that Kafka consumers leave their groups before the rewind.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("stops on SIGTERM").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_topic_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::new(data.path());
    let mut args = store.serve_args();
    args.extend(
        ["--payment-latency-ms", "0..0", "--payment-success-rate", "0.7", "--durability", "normal"].map(String::from),
    );
    let (child, url) = start_binary(&args).await;
    let http = reqwest::Client::new();
    let api = format!("{url}/ticketing/api");
    let mut orders = Vec::new();
    for n in 61..69 {
        let seat = seat(1, n);
        let buyer = format!("replayer-{seat}");
        let hold = json!({ "eventId": 1, "seatId": seat });
        // The seats reach the reservation module through the bus: retry until they have.
        at_most(Duration::from_secs(10), || async {
            let r = http.post(format!("{api}/reservations")).bearer_auth(&buyer).json(&hold).send().await.unwrap();
            r.status() == 201
        })
        .await;
        let r = http
            .post(format!("{api}/orders"))
            .bearer_auth(&buyer)
            .header("Idempotency-Key", "k")
            .json(&json!({ "eventId": 1, "seatIds": [seat] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        orders.push((buyer, r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap()));
    }
    for (buyer, id) in &orders {
        let settled = || async { get_json(&http, &format!("{api}/orders/{id}"), buyer).await["status"] != "CREATED" };
        at_most(Duration::from_secs(15), settled).await;
    }
    drained(&url).await;
    let before = fingerprint(&url, &store).await;
    stop(child).await;

    let replay = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .arg("replay")
        .args(store.serve_args())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&replay.stdout).to_string();
    assert!(replay.status.success(), "{said}{}", String::from_utf8_lossy(&replay.stderr));
    for group in ["catalog <- reservation.events", "order <- payment.events", "payment <- order.events"] {
        assert!(said.contains(group), "{group} rewound: {said}");
    }
    let again: i64 = said.lines().filter_map(|l| l.split(", ").nth(1)?.split(' ').next()?.parse::<i64>().ok()).sum();
    assert!(again > 0, "messages to read again: {said}");

    let (_child, url) = start_binary(&args).await;
    drained(&url).await;
    assert_eq!(fingerprint(&url, &store).await, before, "the replay changed nothing");
    let report = audit::audit(&url, ADMIN, Duration::from_secs(15)).await.unwrap();
    assert!(report.violations.is_empty(), "audit failed: {:#?}", report.violations);
}
