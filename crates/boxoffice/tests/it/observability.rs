//! The deploy/ files against the real tools: promtool checks the config and alert rules,
//! a real Prometheus scrapes a running boxoffice, and every metric the Grafana dashboard
//! queries is one boxoffice exports.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use regex_lite::Regex;
use serde_json::Value;
use tokio::process::Command;

use crate::common::{ADMIN, TestApp, eventually, seats, spawn_app};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Whether a tool is installed; under CI it must be (`.ci/run` installs it).
fn tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    runtime::testing::require(found, &format!("{name} (apt-get install prometheus)"))
}

async fn metrics_after_a_purchase(app: &TestApp) -> String {
    let buyer = app.buyer("observed");
    let order_id = buyer.buy(2, &seats(2, [50])).await;
    buyer.final_order(order_id).await;
    app.operations("/actuator/prometheus").await.text().await.unwrap()
}

/// Metric names a PromQL expression reads (label names and functions removed).
fn metric_names(expr: &str) -> Vec<String> {
    let without = Regex::new(r#"\{[^}]*\}|\[[^\]]*\]|by \([^)]*\)|"[^"]*""#).unwrap().replace_all(expr, " ");
    let functions = ["histogram_quantile", "rate", "sum", "max", "min", "avg", "deriv", "increase"];
    Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
        .unwrap()
        .find_iter(&without)
        .map(|m| m.as_str().to_owned())
        .filter(|t| t.contains('_') && !functions.contains(&t.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let app = spawn_app().await;
    let exported = metrics_after_a_purchase(&app).await;
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy().join("grafana/boxoffice.json")).unwrap()).unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                let present =
                    exported.lines().any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
                assert!(present, "panel {:?} queries {name}, which boxoffice does not export", panel["title"]);
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "the dashboard's queries were read ({checked} metric uses)");
    // The original's panels are there.
    let titles: Vec<&str> =
        dashboard["panels"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap()).collect();
    for panel in ["Payments", "Orders", "Holds", "SLA 2", "Outbox lag", "Consumer lag"] {
        assert!(titles.iter().any(|t| t.starts_with(panel)), "no {panel} panel");
    }
}

#[test]
fn metric_names_skip_labels_and_functions() {
    let expr = r#"histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{route=~"/a_b"}[5m]))) / order_request_total"#;
    assert_eq!(metric_names(expr), ["http_request_duration_seconds_bucket", "order_request_total"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_config_and_the_alerts_behave() {
    if !tool("promtool") {
        return;
    }
    // The config reads the operator's token from a file beside it.
    let dir = tempfile::tempdir().unwrap();
    for file in ["prometheus.yml", "alerts.yml", "alerts_test.yml"] {
        std::fs::copy(deploy().join("prometheus").join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(dir.path().join("admin-token"), ADMIN).unwrap();
    let dir = dir.path();
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new("promtool").args(args).current_dir(dir).output().await.unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_boxoffice_and_loads_the_alerts() {
    if !tool("prometheus") {
        return;
    }
    let app = spawn_app().await;
    metrics_after_a_purchase(&app).await;
    let work = tempfile::tempdir().unwrap();
    let target = app.url.trim_start_matches("http://");
    let config = std::fs::read_to_string(deploy().join("prometheus/prometheus.yml"))
        .unwrap()
        .replace("127.0.0.1:8080", target)
        .replace("scrape_interval: 5s", "scrape_interval: 1s");
    std::fs::write(work.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(deploy().join("prometheus/alerts.yml"), work.path().join("alerts.yml")).unwrap();
    std::fs::write(work.path().join("admin-token"), ADMIN).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", work.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", work.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let query = |q: &str| {
        let (http, url) = (app.http.clone(), format!("{api}/query"));
        let q = q.to_owned();
        async move {
            let r = http.get(url).query(&[("query", q)]).send().await.ok()?;
            let body: Value = r.json().await.ok()?;
            body["data"]["result"].as_array().cloned()
        }
    };
    let orders = eventually(Duration::from_secs(40), "Prometheus scraped boxoffice", || async {
        let up = query("up{job=\"boxoffice\"}").await.unwrap_or_default();
        let orders = query("order_request_total").await.unwrap_or_default();
        (up.first().is_some_and(|s| s["value"][1] == "1") && !orders.is_empty()).then_some(orders)
    })
    .await;
    assert!(orders[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 1.0);
    let p99 = query("histogram_quantile(0.99, sum by (le) (order_final_state_seconds_bucket))").await.unwrap();
    assert_eq!(p99.len(), 1, "the SLA query answers");
    let rules: Value = app.http.get(format!("{api}/rules")).send().await.unwrap().json().await.unwrap();
    let loaded: usize =
        rules["data"]["groups"].as_array().unwrap().iter().map(|g| g["rules"].as_array().unwrap().len()).sum();
    let written = include_str!("../../../../deploy/prometheus/alerts.yml").matches("- alert:").count();
    assert!(written >= 8);
    assert_eq!(loaded, written, "every alert rule loaded");
    prometheus.start_kill().unwrap();
}
