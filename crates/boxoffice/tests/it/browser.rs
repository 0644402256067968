//! The web page end to end, in a real headless Chromium driven by Playwright
//! (web/e2e): two buyers, a failed payment, a phone and a keyboard, the operator; and the
//! demo venue: best available, standing tickets, zoom and pan on a phone, its sales; the
//! waiting room: two visitors let through in the recorded order, one buys, the operator;
//! and the door's scanner page reading a ticket from a fake camera.

use std::path::PathBuf;

use crate::common::{self, ADMIN, spawn_with};

/// Node, Chromium and the e2e dependencies; under CI they must be there.
fn ready(e2e: &std::path::Path) -> bool {
    let has = |cmd: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let found = has("node") && has("chromium") && e2e.join("node_modules/playwright-core").exists();
    runtime::testing::require(found, "node, chromium and web/e2e/node_modules (.ci/run installs them)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_in_a_real_browser() {
    let e2e = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/e2e");
    if !ready(&e2e) {
        return;
    }
    let mut paying = common::args();
    paying.payment_latency_ms = (300, 300);
    let app = spawn_with(paying).await;
    let mut declining = common::args();
    declining.payment_success_rate = 0.0;
    declining.payment_latency_ms = (300, 300);
    let failing = spawn_with(declining).await;
    let mut node = tokio::process::Command::new("node");
    node.args([
        "--test",
        "--test-concurrency=1",
        "buyers.test.mjs",
        "venue.test.mjs",
        "queue.test.mjs",
        "door.test.mjs",
    ])
    .current_dir(&e2e)
    .env("BOXOFFICE_URL", &app.url)
    .env("BOXOFFICE_SCANNER", common::scanner_token(&app, "north-3", Some(3)))
    .env("BOXOFFICE_FAILING_URL", &failing.url)
    .env("BOXOFFICE_ADMIN", ADMIN);
    if let Ok(dir) = std::env::var("SCREENSHOTS_DIR") {
        node.env("SCREENSHOTS_DIR", dir);
    }
    let out = node.output().await.unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser tests failed:\n{report}");
    assert!(report.contains("# pass 12"), "{report}");
}
