//! One trace from hold to SOLD, exported over real OTLP, and the metrics it leaves.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::common::{ADMIN, at_most, eventually, seat, seats, spawn_app};

/// A span as received: its trace id, name, and `module` attribute.
#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    name: String,
    module: String,
}

/// An OTLP/HTTP receiver that decodes the protobuf export requests it is sent.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP protobuf export");
                let mut sink = sink.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let module = span
                                .attributes
                                .iter()
                                .find(|kv| kv.key == "module")
                                .and_then(|kv| kv.value.as_ref()?.value.clone())
                                .map(|v| match v {
                                    AnyValue::StringValue(s) => s,
                                    other => format!("{other:?}"),
                                })
                                .unwrap_or_default();
                            sink.push(Received { trace_id: hex(&span.trace_id), name: span.name, module });
                        }
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_purchase_is_one_trace_across_every_module_and_in_the_logs() {
    let (collector, spans) = otlp_receiver().await;
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(data.path().join("boxoffice.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--admin-token", ADMIN, "--payment-latency-ms", "0..0"])
        .args(["--open-bearer", "--rate-limit-buyer", "0", "--rate-limit-address", "0"])
        .args(["--payment-success-rate", "1"])
        .args(crate::common::Store::new(data.path()).serve_args())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/ticketing/api");
    let http = reqwest::Client::new();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    let hold = json!({ "eventId": 1, "seatId": seat(1, 9), "holdSeconds": 60 });
    let held = eventually(Duration::from_secs(20), "boxoffice started and held the seat", || async {
        let sent = http
            .post(format!("{url}/reservations"))
            .bearer_auth("tracer")
            .header("traceparent", &traceparent)
            .json(&hold)
            .send()
            .await;
        sent.ok().filter(|r| r.status() == StatusCode::CREATED)
    })
    .await;
    assert_eq!(held.headers()["trace-id"], trace);
    let r = http
        .post(format!("{url}/orders"))
        .bearer_auth("tracer")
        .header("traceparent", &traceparent)
        .header("Idempotency-Key", "traced")
        .json(&json!({ "eventId": 1, "seatIds": [seat(1, 9)] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let order_no = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();

    let wanted: BTreeSet<&str> = ["catalog", "reservation", "order", "payment"].into();
    let seen = || {
        let received = spans.lock().unwrap().clone();
        let modules =
            received.iter().filter(|s| s.trace_id == trace).map(|s| s.module.clone()).collect::<BTreeSet<_>>();
        let sold = received.iter().any(|s| s.trace_id == trace && s.name == "order SeatsSold");
        (sold, modules)
    };
    at_most(Duration::from_secs(15), || async {
        let (sold, modules) = seen();
        sold && wanted.iter().all(|m| modules.contains(*m))
    })
    .await;
    let (_, modules) = seen();
    let modules: BTreeSet<&str> = modules.iter().map(String::as_str).collect();
    assert!(wanted.is_subset(&modules), "modules in trace {trace}: {modules:?}, spans: {:#?}", spans.lock().unwrap());
    // Every span of the purchase is in this one trace.
    let received = spans.lock().unwrap().clone();
    let purchase: Vec<_> =
        received.iter().filter(|s| s.name.ends_with("SeatsSold") || s.name.contains("/orders")).collect();
    assert!(purchase.iter().all(|s| s.trace_id == trace), "{purchase:#?}");

    // The logs of every module carry the same id.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let logs = std::fs::read_to_string(data.path().join("boxoffice.log")).unwrap();
    // Logs name the order by its internal reference (with its number where the order
    // module logs it): the reference of the order numbered `order_no`.
    let created = logs
        .lines()
        .filter(|l| l.contains("order created"))
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON log lines"))
        .find(|l| l["fields"]["order_no"] == order_no)
        .unwrap_or_else(|| panic!("no log line of order {order_no} created"));
    let order_id = created["fields"]["order_id"].as_str().expect("the order's reference").to_owned();
    for message in ["order created", "payment settled", "order confirmed"] {
        let line = logs
            .lines()
            .find(|l| l.contains(message) && l.contains(&order_id))
            .unwrap_or_else(|| panic!("no log line {message}"));
        let parsed: Value = serde_json::from_str(line).expect("JSON log lines");
        assert_eq!(parsed["span"]["trace_id"], trace, "{line}");
        assert!(parsed["span"]["span_id"].as_str().is_some_and(|s| s.len() == 16), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_carry_the_originals_names_and_the_lag() {
    let app = spawn_app().await;
    let buyer = app.buyer("metered");
    let order_id = buyer.buy(1, &seats(1, [3])).await;
    assert_eq!(buyer.final_order(order_id).await["status"], "CONFIRMED");
    assert_eq!(app.buyer("metered-2").hold(1, &seats(1, [4])).await.status(), StatusCode::CREATED);
    assert_eq!(app.buyer("metered-3").hold(1, &seats(1, [4])).await.status(), StatusCode::CONFLICT);
    let r = app.operations("/actuator/prometheus").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series}"))
    };
    // Other tests share this process's recorder, so counters are at least ours.
    for counter in [
        "order_request_total",
        "order_confirmed_total",
        "payment_success_total",
        "reservation_hold_success_total",
        "reservation_hold_conflict_total",
        "reservation_confirm_success_total",
    ] {
        assert!(value(counter) >= 1.0, "{counter}");
    }
    for always in [
        "order_cancelled_total",
        "payment_fail_total",
        "reservation_confirm_failed_total",
        "reservation_hold_expired_total",
    ] {
        value(always);
    }
    for histogram in [
        "order_latency_count",
        "order_final_state_seconds_count{status=\"CONFIRMED\"}",
        "outbox_publish_lag_seconds_count{module=\"order\"}",
        "consumer_event_lag_seconds_count{topic=\"order.events\",group=\"payment\",type=\"OrderCreated\"}",
        "http_request_duration_seconds_count{method=\"POST\",route=\"/ticketing/api/orders\",status=\"201\"}",
        "payment_gateway_seconds_count{operation=\"authorize\"}",
    ] {
        assert!(value(histogram) >= 1.0, "{histogram}");
    }
    // Every SLA target is a bucket bound, so a p99 read from the buckets says met or not.
    for le in ["0.025", "0.05", "0.1", "0.3"] {
        let bucket = format!("order_final_state_seconds_bucket{{status=\"CONFIRMED\",le=\"{le}\"}}");
        assert!(text.contains(&bucket), "{bucket}");
    }
    // Routes, never raw paths, label the HTTP metrics.
    assert!(!text.contains(&format!("/orders/{order_id}")));
}
