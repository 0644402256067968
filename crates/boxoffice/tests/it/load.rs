//! `boxoffice load` against a real server: it buys, reports, and judges.

use std::time::Duration;

use serde_json::Value;

use crate::common::{ADMIN, TestApp, spawn_app};

/// `boxoffice load --quiet` against `app` as its operator, with `args`.
async fn load(app: &TestApp, args: &[&str], json: Option<&std::path::Path>) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    command.args(["load", "--quiet", "--url", &app.url, "--admin-token", ADMIN]).args(args);
    if let Some(json) = json {
        command.arg("--json").arg(json);
    }
    let out = command.output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_throughput_run_buys_reports_and_passes() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (dir.path().join("report.json"), dir.path().join("report.html"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["load", "--quiet", "--url", &app.url, "--admin-token", ADMIN, "--scenario", "throughput"])
        .args(["--stages", "1s:8,1s:8", "--rows", "20", "--cols", "50", "--tickets-share", "1"])
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("load test passed"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["purchases"].as_u64().unwrap() > 0);
    assert_eq!(report["purchases"].as_u64().unwrap() as usize, report["seatsSold"].as_u64().unwrap() as usize);
    assert!(report["steps"]["hold"]["p99Ms"].as_f64().is_some());
    // Every CONFIRMED purchase read its tickets until they were all there.
    assert_eq!(report["steps"]["tickets after CONFIRMED"]["count"], report["purchases"], "{stdout}");
    assert!(report["finalStateServer"]["count"].as_u64().unwrap() > 0);
    assert!(report["drainMs"].is_u64());
    assert_eq!(report["auditViolations"], serde_json::json!([]));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_breaks_a_threshold_exits_non_zero() {
    let app = spawn_app().await;
    // Nobody can hold in 1 ms at the 99th percentile on this machine, let alone order.
    let args =
        ["--scenario", "throughput", "--stages", "1s:4", "--rows", "10", "--cols", "10", "--max-api-p99-ms", "0.001"];
    let (code, out) = load(&app, &args, None).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL API p99"), "{out}");
}

/// Seat spinning as the load tool plays it: a bot without credentials holding seats of
/// the show the users buy; the per-address cap keeps it to a handful of seats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_bot_holds_at_most_its_cap_while_users_buy() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["load", "--quiet", "--url", &app.url, "--admin-token", ADMIN, "--scenario", "spinning"])
        .args(["--stages", "2s:10,1s:10", "--think-ms", "50", "--bot-cap", "12"])
        .arg("--json")
        .arg(&json)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let bot = &report["bot"];
    assert!(bot["requests"].as_u64().unwrap() > 20, "the bot kept asking: {bot}");
    assert!((1..=12).contains(&bot["heldMax"].as_u64().unwrap()), "{bot}");
    assert!(report["purchases"].as_u64().unwrap() > 0);
    assert_eq!(report["auditViolations"], serde_json::json!([]));
}

/// The load tool signs its users' tokens and names the outbox-lag metric without the
/// server's code: the server takes its tokens, and the name is the one it exposes.
#[test]
fn the_load_tools_tokens_and_metric_name_are_the_servers() {
    let server = runtime::http::Auth { token_key: b"the key".to_vec(), ..Default::default() };
    let signer = loadtest::token::TokenSigner::new(b"the key");
    let buyer = server.verify_token(&signer.issue("alice", false, Duration::from_secs(60))).expect("accepted");
    assert_eq!((buyer.sub.as_str(), buyer.role), ("alice", None));
    let operator = server.verify_token(&signer.issue("ops", true, Duration::from_secs(60))).expect("accepted");
    assert_eq!(operator.role.as_deref(), Some(runtime::http::ADMIN_ROLE));
    let foreign = loadtest::token::TokenSigner::new(b"another key").issue("mallory", false, Duration::from_secs(60));
    assert!(server.verify_token(&foreign).is_none());
    assert_eq!(loadtest::OUTBOX_LAG_METRIC, runtime::metrics::OUTBOX_LAG);
}

/// The waiting room's scenarios: a short on-sale of the demo venue (visitors join before
/// and after it, are let through in queue order, buy with their tokens), and joins only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_onsale_run_lets_visitors_through_in_order_and_they_buy() {
    let app = spawn_app().await;
    app.wait_for_seats(4).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let onsale = [
        "--scenario",
        "onsale",
        "--visitors",
        "200",
        "--window-secs",
        "4",
        "--before-share",
        "0.5",
        "--room-rate",
        "6000",
    ];
    let (code, out) = load(&app, &onsale, Some(&json)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("time in queue: p50"), "{out}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let room = &report["waitingRoom"];
    assert_eq!(room["joined"], 200, "{room}");
    assert!(room["joinedBeforeOnSale"].as_u64().unwrap() > 50, "{room}");
    assert_eq!(room["admitted"], 200, "{room}");
    assert_eq!(room["orderInversions"], 0, "{room}");
    assert!(room["bought"].as_u64().unwrap() > 0, "{room}");
    assert!(room["timeInQueue"]["p99Ms"].as_f64().is_some(), "{room}");
    assert!(report["steps"]["hold"]["p99Ms"].as_f64().is_some());
    assert!(report["finalStateServer"]["count"].as_u64().unwrap() > 0);
    assert_eq!(report["auditViolations"], serde_json::json!([]));
    // The run turns the room off again.
    let audit: Value =
        app.http.get(app.api("/admin/events/4/room")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(audit["waitingRoom"]["enabled"], false, "{audit}");

    let (code, out) =
        load(&app, &["--scenario", "queue-join", "--visitors", "500", "--window-secs", "1"], Some(&json)).await;
    assert_eq!(code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["waitingRoom"]["joined"], 500);
    assert_eq!(report["steps"]["join"]["count"], 500);
    assert_eq!(report["steps"]["position read"]["count"], 500);
    assert_eq!(report["checkRate"], 1.0, "{out}");
    // The server's memory, before and after, from its process_resident_memory_bytes.
    let memory = &report["waitingRoom"]["serverMemoryMb"];
    assert!(memory[0].as_f64().unwrap() > 1.0 && memory[1].as_f64().unwrap() > 1.0, "{memory}");
}
