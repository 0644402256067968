//! Each module its own process, two replicas of reservation and order, on PostgreSQL and
//! Kafka (`BOXOFFICE_TEST_POSTGRES`, `BOXOFFICE_TEST_KAFKA`): buyers race across
//! replicas, one replica of each is killed mid-way, and the audit passes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use audit::{ModuleUrls, audit_modules};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Child;

use crate::common::{ADMIN, at_most, eventually, get_json, seat, start_binary};

pub struct Services {
    pub postgres: String,
    pub kafka: String,
}

pub fn services() -> Option<Services> {
    let get = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
    match (get("BOXOFFICE_TEST_POSTGRES"), get("BOXOFFICE_TEST_KAFKA")) {
        (Some(postgres), Some(kafka)) => Some(Services { postgres, kafka }),
        _ => {
            runtime::testing::require(false, "PostgreSQL and Kafka (BOXOFFICE_TEST_POSTGRES and BOXOFFICE_TEST_KAFKA)");
            None
        }
    }
}

/// Starts one module replica; returns it and its URL once healthy.
async fn replica(
    s: &Services,
    prefix: &str,
    data: &std::path::Path,
    module: &str,
    extra: &[String],
) -> (Child, String) {
    start_binary(&replica_args(s, prefix, data, module, extra)).await
}

/// The `serve` arguments of one module replica: its module on the services under
/// `prefix`, a data directory of its own under `data`.
pub fn replica_args(s: &Services, prefix: &str, data: &std::path::Path, module: &str, extra: &[String]) -> Vec<String> {
    let dir = data.join(format!("{module}-{}", uuid::Uuid::new_v4().simple()));
    let mut args: Vec<String> = vec!["--module".into(), module.into(), "--data-dir".into(), dir.display().to_string()];
    for (flag, value) in [
        ("--postgres", s.postgres.as_str()),
        ("--database-prefix", prefix),
        ("--postgres-pool", "4"),
        ("--kafka", s.kafka.as_str()),
        ("--kafka-namespace", prefix),
        ("--payment-latency-ms", "50..300"),
        ("--payment-success-rate", "0.8"),
        ("--sweep-interval-ms", "200"),
    ] {
        args.extend([flag.to_owned(), value.to_owned()]);
    }
    args.extend_from_slice(extra);
    args
}

/// Sends to the first replica that answers.
async fn send(
    http: &reqwest::Client,
    urls: &[String],
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Option<reqwest::Response> {
    for url in urls {
        if let Ok(r) = build(url).send().await {
            return Some(r);
        }
    }
    let _ = http;
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_in_their_own_processes_with_replicas_survive_a_killed_replica() {
    let Some(s) = services() else { return };
    let prefix = format!("bt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let data = tempfile::tempdir().unwrap();
    let (_catalog, catalog) = replica(&s, &prefix, data.path(), "catalog", &[]).await;
    let (_payment, payment) = replica(&s, &prefix, data.path(), "payment", &[]).await;
    let (_res1, res1) = replica(&s, &prefix, data.path(), "reservation", &[]).await;
    let (mut res2_child, res2) = replica(&s, &prefix, data.path(), "reservation", &[]).await;
    let pin_via = |url: &str| vec!["--reservation-url".to_owned(), url.to_owned()];
    let (_ord1, ord1) = replica(&s, &prefix, data.path(), "order", &pin_via(&res1)).await;
    let (mut ord2_child, ord2) = replica(&s, &prefix, data.path(), "order", &pin_via(&res1)).await;
    let (_tickets, tickets) = replica(&s, &prefix, data.path(), "tickets", &[]).await;
    let http = reqwest::Client::new();

    // The demo shows reach the reservation replicas through Kafka, each show's seats on
    // its own partition: wait for both shows the test buys from (seat 100 of each is
    // not bought below).
    for event in [1, 3] {
        let what = format!("the seats of event {event} reached the reservation module");
        eventually(Duration::from_secs(30), what, || async {
            let r = http
                .post(format!("{res1}/ticketing/api/reservations"))
                .bearer_auth("probe")
                .json(&json!({ "eventId": event, "seatId": seat(event, 100), "holdSeconds": 5 }))
                .send()
                .await
                .unwrap();
            r.status() == StatusCode::CREATED
        })
        .await;
    }

    // Two replicas never hold one seat twice: 120 buyers race for 6 seats through both.
    let races = (0..120).map(|i| {
        let url = if i % 2 == 0 { res1.clone() } else { res2.clone() };
        let http = http.clone();
        async move {
            let seat = seat(3, 91 + (i % 6));
            let r = http
                .post(format!("{url}/ticketing/api/reservations"))
                .bearer_auth(format!("racer-{i}"))
                .json(&json!({ "eventId": 3, "seatId": seat, "holdSeconds": 60 }))
                .send()
                .await
                .unwrap();
            (seat, r.status())
        }
    });
    let mut winners: HashMap<i64, usize> = HashMap::new();
    for (seat, status) in futures_util::future::join_all(races).await {
        assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT, "{status}");
        if status == StatusCode::CREATED {
            *winners.entry(seat).or_default() += 1;
        }
    }
    assert_eq!(winners.len(), 6);
    assert!(winners.values().all(|n| *n == 1), "one holder per seat across replicas: {winners:?}");

    // Purchases through every replica; one replica of reservation and of order dies mid-way.
    let reservations = Arc::new(vec![res1.clone(), res2.clone()]);
    let orders = Arc::new(vec![ord1.clone(), ord2.clone()]);
    let accepted = Arc::new(AtomicUsize::new(0));
    let buyers: Vec<_> = (1..=60i64)
        .map(|n| {
            let seat = seat(1, n);
            let (http, reservations, orders, accepted) =
                (http.clone(), reservations.clone(), orders.clone(), accepted.clone());
            tokio::spawn(async move {
                let buyer = format!("buyer-{seat}");
                let mut res: Vec<String> = reservations.to_vec();
                let mut ord: Vec<String> = orders.to_vec();
                if seat % 2 == 0 {
                    res.reverse();
                    ord.reverse();
                }
                let hold = json!({ "eventId": 1, "seatId": seat, "holdSeconds": 60 });
                let r = send(&http, &res, |u| {
                    http.post(format!("{u}/ticketing/api/reservations")).bearer_auth(&buyer).json(&hold)
                })
                .await?;
                if r.status() != StatusCode::CREATED {
                    return None;
                }
                let order = json!({ "eventId": 1, "seatIds": [seat] });
                let key = format!("key-{seat}");
                let r = send(&http, &ord, |u| {
                    http.post(format!("{u}/ticketing/api/orders"))
                        .bearer_auth(&buyer)
                        .header("Idempotency-Key", &key)
                        .json(&order)
                })
                .await?;
                if r.status() != StatusCode::CREATED {
                    return None;
                }
                accepted.fetch_add(1, Ordering::SeqCst);
                let id = r.json::<Value>().await.ok()?["orderId"].as_i64()?;
                Some((buyer, id))
            })
        })
        .collect();
    at_most(Duration::from_secs(5), || async { accepted.load(Ordering::SeqCst) >= 15 }).await;
    res2_child.start_kill().unwrap();
    ord2_child.start_kill().unwrap();
    let mut done = Vec::new();
    for b in buyers {
        done.extend(b.await.unwrap());
    }
    assert!(done.len() >= 15, "purchases went through ({})", done.len());
    // Both order replicas numbered orders at once, from one sequence: no number twice.
    let numbers: std::collections::HashSet<i64> = done.iter().map(|(_, id)| *id).collect();
    assert_eq!(numbers.len(), done.len(), "order numbers given twice: {done:?}");

    // The survivors take over the dead replicas' partitions; every saga finishes.
    // The tickets process issued one ticket per seat of every CONFIRMED order (the audit
    // judges them).
    let urls = ModuleUrls { catalog, reservation: res1, order: ord1.clone(), payment, tickets: Some(tickets) };
    let report = audit_modules(&urls, ADMIN, Duration::from_secs(60)).await.unwrap();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.tickets.is_some_and(|t| t >= report.confirmed), "tickets judged: {report:?}");
    assert!(report.orders >= done.len());
    for (buyer, id) in &done {
        let order = get_json(&http, &format!("{ord1}/ticketing/api/orders/{id}"), buyer).await;
        assert!(order["status"] == "CONFIRMED" || order["status"] == "CANCELLED", "{order}");
    }
}
