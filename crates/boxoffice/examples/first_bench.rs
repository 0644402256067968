//! A first throughput measurement of a running boxoffice: holds per second, then full
//! purchases (hold → order → CONFIRMED) per second, by concurrent buyers on a large show
//! it creates through the admin API so that buyers do not fight over seats.
//!
//! cargo run --release --example first_bench -- URL ADMIN_TOKEN [CONCURRENCY] [SECONDS]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let admin = args.get(2).cloned().unwrap_or_default();
    let concurrency: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;

    for phase in ["holds", "purchases"] {
        let show =
            json!({ "title": format!("bench {phase}"), "dateTime": "2026-12-01T20:00:00", "rows": 300, "cols": 300 });
        let event: Value = http
            .post(format!("{url}/ticketing/api/admin/events"))
            .bearer_auth(&admin)
            .json(&show)
            .send()
            .await?
            .json()
            .await?;
        let event_id = event["id"].as_i64().expect("event created");
        tokio::time::sleep(Duration::from_secs(2)).await; // seats reach the reservation module
        let next_seat = Arc::new(AtomicI64::new(1));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (http, url, next_seat, done, failed) =
                    (http.clone(), url.clone(), next_seat.clone(), done.clone(), failed.clone());
                tokio::spawn(async move {
                    let buyer = format!("bench-{w}");
                    while Instant::now() < deadline {
                        let seat = next_seat.fetch_add(1, Ordering::Relaxed);
                        let ok = if phase == "holds" {
                            hold(&http, &url, &buyer, event_id, seat).await
                        } else {
                            purchase(&http, &url, &buyer, event_id, seat).await
                        };
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed)
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed)
                        };
                    }
                })
            })
            .collect();
        for w in workers {
            w.await?;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed);
        println!(
            "{phase}: {n} in {elapsed:.1} s = {:.0}/s with {concurrency} concurrent buyers ({} failed)",
            n as f64 / elapsed,
            failed.load(Ordering::Relaxed)
        );
    }
    Ok(())
}

async fn hold(http: &reqwest::Client, url: &str, buyer: &str, event_id: i64, seat: i64) -> bool {
    let body = json!({ "eventId": event_id, "seatId": seat, "holdSeconds": 60 });
    let r = http.post(format!("{url}/ticketing/api/reservations")).bearer_auth(buyer).json(&body).send().await;
    r.is_ok_and(|r| r.status() == 201)
}

async fn purchase(http: &reqwest::Client, url: &str, buyer: &str, event_id: i64, seat: i64) -> bool {
    if !hold(http, url, buyer, event_id, seat).await {
        return false;
    }
    let body = json!({ "eventId": event_id, "seatIds": [seat] });
    let Ok(r) = http
        .post(format!("{url}/ticketing/api/orders"))
        .bearer_auth(buyer)
        .header("Idempotency-Key", seat.to_string())
        .json(&body)
        .send()
        .await
    else {
        return false;
    };
    let Ok(order) = r.json::<Value>().await else {
        return false;
    };
    let Some(id) = order["orderId"].as_str() else {
        return false;
    };
    loop {
        let Ok(r) = http.get(format!("{url}/ticketing/api/orders/{id}")).bearer_auth(buyer).send().await else {
            return false;
        };
        let Ok(order) = r.json::<Value>().await else {
            return false;
        };
        match order["status"].as_str() {
            Some("CREATED") => tokio::time::sleep(Duration::from_millis(5)).await,
            Some("CONFIRMED") => return true,
            _ => return false,
        }
    }
}
