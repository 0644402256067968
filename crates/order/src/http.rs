//! Order routes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::api::{CreateOrder, IDEMPOTENCY_KEY, Order};
use runtime::http::{Admin, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth, KnownBuyer};
use serde_json::json;

use crate::{Created, Orders, store};

pub fn router(orders: Orders) -> Router {
    Router::new()
        .route("/ticketing/api/orders", post(create).get(mine))
        .route("/ticketing/api/orders/{id}", get(get_order))
        .route("/ticketing/api/admin/audit/order", get(audit))
        .route("/ticketing/api/admin/orders/{id}/refund", post(crate::refund::refund))
        .route("/ticketing/api/admin/orders/summary", get(summary))
        .with_state(orders)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::validation("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| ApiError::validation("Idempotency-Key must be printable ASCII"))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::validation("Idempotency-Key must be 1 to 255 characters"));
    }
    Ok(key.to_owned())
}

async fn create(
    State(o): State<Orders>,
    Extension(auth): Extension<Arc<Auth>>,
    KnownBuyer(buyer): KnownBuyer,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateOrder>,
) -> ApiResult<Response> {
    let started = std::time::Instant::now();
    metrics::counter!(crate::metrics::REQUEST).increment(1);
    // The show's door: its on-sale time, and its waiting room's admission token.
    o.doors.check(&auth, &headers, &buyer, req.event_id, o.clock.now_millis())?;
    let result = create_order(&o, &buyer, &headers, req).await;
    metrics::histogram!(crate::metrics::LATENCY).record(started.elapsed().as_secs_f64());
    result
}

async fn create_order(o: &Orders, buyer: &str, headers: &HeaderMap, req: CreateOrder) -> ApiResult<Response> {
    let key = idempotency_key(headers)?;
    if req.seat_ids.is_empty() || req.seat_ids.len() > o.max_seats {
        return Err(ApiError::validation(format!("order 1 to {} seats", o.max_seats)));
    }
    let mut unique = req.seat_ids.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != req.seat_ids.len() {
        return Err(ApiError::validation("seatIds must not repeat a seat"));
    }
    match o.create(buyer, &key, &req).await? {
        Created::New(order) => Ok((StatusCode::CREATED, Json(order)).into_response()),
        Created::Replayed(order) => {
            Ok((StatusCode::CREATED, [("idempotent-replayed", "true")], Json(order)).into_response())
        }
    }
}

/// The longest a `GET /orders/{id}` may wait for the order to settle.
const MAX_WAIT_SECONDS: u64 = 30;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetOrderQuery {
    /// Extension: wait up to this long for the order to be CONFIRMED or CANCELLED.
    wait_seconds: Option<u64>,
}

async fn get_order(
    State(o): State<Orders>,
    KnownBuyer(buyer): KnownBuyer,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<GetOrderQuery>,
) -> ApiResult<Json<Order>> {
    let wait = query.wait_seconds.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::validation(format!("waitSeconds must be 0 to {MAX_WAIT_SECONDS}")));
    }
    let found =
        if wait == 0 { o.get(&buyer, id).await? } else { o.wait_final(&buyer, id, Duration::from_secs(wait)).await? };
    // Another buyer's order is answered as one that does not exist.
    found.map(Json).ok_or_else(|| ApiError::not_found(format!("order {id} not found")))
}

/// Extension: the caller's orders, newest first ("my tickets").
async fn mine(State(o): State<Orders>, KnownBuyer(buyer): KnownBuyer) -> ApiResult<Json<Vec<Order>>> {
    Ok(Json(store::of_buyer(o.db.reader(), &buyer).await?))
}

/// Operator: orders by state, per show.
async fn summary(State(o): State<Orders>, _: Admin) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(store::summary(o.db.reader()).await?)))
}

async fn audit(State(o): State<Orders>, _: Admin) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!({ "orders": store::all(o.db.reader()).await? })))
}
