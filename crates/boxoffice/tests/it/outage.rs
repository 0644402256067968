//! A database out of reach: readiness goes DOWN, the API answers 503 with the contract's
//! body at once (no hang), and both come back by themselves when the database does.
//! The outage is real: the modules reach PostgreSQL through a TCP proxy that the test
//! cuts, connections and all, and then restores.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{ADMIN, assert_error, eventually, free_port, seats, spawn_with};

/// The PostgreSQL server of the tests; `None` (skip) outside CI, a failure in CI.
fn postgres() -> Option<String> {
    runtime::testing::require_env("BOXOFFICE_TEST_POSTGRES", "PostgreSQL")
}

/// Forwards `port` to `upstream` until aborted; aborting drops every connection.
fn proxy(port: u16, upstream: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("proxy port");
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (mut client, _) = listener.accept().await.expect("accept");
            let upstream = upstream.clone();
            conns.spawn(async move {
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}

async fn wait_status(http: &reqwest::Client, url: &str, want: StatusCode) -> Duration {
    let started = Instant::now();
    eventually(Duration::from_secs(30), format!("{url} answers {want}"), || async {
        http.get(url).send().await.is_ok_and(|r| r.status() == want)
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_the_api_answers_503_meanwhile() {
    let Some(server) = postgres() else { return };
    let upstream = server.trim_end_matches('/').rsplit('@').next().unwrap().to_owned();
    let port = free_port();
    let mut link = proxy(port, upstream.clone());
    let user = server.trim_start_matches("postgres://").split('@').next().unwrap().to_owned();
    let mut args = crate::common::args();
    args.postgres = Some(format!("postgres://{user}@127.0.0.1:{port}"));
    args.database_prefix = format!("bt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    args.postgres_pool = crate::common::TEST_POOL;
    let app = spawn_with(args).await;
    let health = format!("{}/actuator/health", app.url);
    let buyer = app.buyer("patient");
    assert_eq!(buyer.hold(1, &seats(1, [5])).await.status(), StatusCode::CREATED);

    // The database goes away: within a few seconds readiness is DOWN and the API says 503.
    link.abort();
    let _ = link.await;
    let took = wait_status(&app.http, &health, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(took < Duration::from_secs(10), "noticed after {took:?}");
    let body: serde_json::Value = app.http.get(&health).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["components"]["database"]["status"], "DOWN", "{body}");
    // A few failed probes later the API turns requests away: 503 at once, Retry-After.
    let cut = Instant::now();
    let r = loop {
        let asked = Instant::now();
        let r = buyer.hold(1, &seats(1, [6])).await;
        if r.headers().contains_key("retry-after") && asked.elapsed() < Duration::from_secs(1) {
            break r;
        }
        // Before that, requests fail on the dead connections, still with a 503.
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "a hold while the database is away");
        assert!(cut.elapsed() < Duration::from_secs(30), "the API never turned requests away");
    };
    assert_eq!(r.headers()["retry-after"], "1");
    assert_error(r, 503, "UNAVAILABLE").await;
    let r = app.http.get(app.api("/orders/whatever")).bearer_auth("patient").send().await.unwrap();
    assert_error(r, 503, "UNAVAILABLE").await;

    // It comes back: so do readiness and the API, without a restart.
    link = proxy(port, upstream);
    let took = wait_status(&app.http, &health, StatusCode::OK).await;
    assert!(took < Duration::from_secs(15), "recovered after {took:?}");
    // Readiness is probed every second: a client that honours Retry-After gets through.
    let mut held = buyer.hold(1, &seats(1, [6])).await.status();
    for _ in 0..5 {
        if held != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        held = buyer.hold(1, &seats(1, [6])).await.status();
    }
    assert_eq!(held, StatusCode::CREATED);
    let order = buyer.buy(1, &seats(1, [7])).await;
    assert_eq!(buyer.final_order(order).await["status"], "CONFIRMED");
    let report = audit::audit(&app.url, ADMIN, Duration::from_secs(15)).await.unwrap();
    assert!(report.violations.is_empty(), "audit failed: {:#?}", report.violations);
    link.abort();
}
