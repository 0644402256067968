//! `GET /actuator/health` (public, for load balancers), the operational data — metrics,
//! consistency, backlog — for operators only (their token, or their own listener), and
//! the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use runtime::http::{ApiResult, Operations};
use serde_json::{Value, json};

use crate::modules::Modules;

pub const OPENAPI: &str = include_str!("../openapi.yaml");

pub fn router(modules: Modules) -> Router {
    Router::new()
        .route("/actuator/health", get(health))
        .route("/actuator/consistency", get(consistency))
        .route("/actuator/prometheus", get(prometheus))
        .route("/actuator/info", get(info))
        .route("/actuator/backlog", get(backlog))
        .route("/ticketing/api/openapi.yaml", get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }))
        .with_state(modules)
}

fn up(ok: bool) -> &'static str {
    if ok { "UP" } else { "DOWN" }
}

async fn health(State(m): State<Modules>) -> impl IntoResponse {
    let (database, bus) = tokio::join!(m.databases_up(), m.bus.ping());
    let status = if database && bus { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": up(database && bus),
        "components": { "database": { "status": up(database) }, "bus": { "status": up(bus) } },
    });
    (status, Json(body))
}

/// What is running: a trivial answer, also the load tool's ceiling endpoint.
async fn info() -> Json<Value> {
    Json(json!({ "name": "boxoffice", "version": env!("CARGO_PKG_VERSION"), "mode": "embedded" }))
}

/// Work still in flight: unpublished events, unapplied events, orders not final, gateway
/// calls to make. All zero once the system has drained.
async fn backlog(State(m): State<Modules>, _: Operations) -> ApiResult<Json<Value>> {
    let mut outbox = serde_json::Map::new();
    let mut total = 0;
    for (module, relay) in m.relays() {
        let (n, _) = relay.backlog().await?;
        total += n;
        outbox.insert(module.to_owned(), json!(n));
    }
    let mut consumers = serde_json::Map::new();
    for (topic, group) in m.subscriptions.iter() {
        let lag = m.bus.lag(topic, group).await?;
        total += lag;
        consumers.insert(format!("{group}<-{topic}"), json!(lag));
    }
    let mut body = serde_json::Map::new();
    for (key, n) in m.backlog().await? {
        total += n;
        body.insert(key.to_owned(), json!(n));
    }
    body.insert("total".to_owned(), json!(total));
    body.insert("outbox".to_owned(), Value::Object(outbox));
    body.insert("consumers".to_owned(), Value::Object(consumers));
    Ok(Json(Value::Object(body)))
}

/// Metrics in the Prometheus text format.
async fn prometheus(_: Operations) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], runtime::telemetry::prometheus().render())
}

/// Each module's own checks of DESIGN.md's invariants; 503 when any fails.
async fn consistency(State(m): State<Modules>, _: Operations) -> ApiResult<impl IntoResponse> {
    let mut modules = Vec::new();
    for (name, checks) in m.consistency().await {
        modules.push((name, checks?));
    }
    let all_ok = modules.iter().all(|(_, checks)| checks.iter().all(|c| c.ok));
    let body: serde_json::Map<String, Value> = modules
        .into_iter()
        .map(|(name, checks)| {
            let ok = checks.iter().all(|c| c.ok);
            (name.to_owned(), json!({ "status": up(ok), "checks": checks }))
        })
        .collect();
    let status = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok((status, Json(json!({ "status": up(all_ok), "modules": body }))))
}
