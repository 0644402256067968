//! Payment routes. The saga authorizes by itself; `POST /payments/authorize` stays for
//! the contract and answers with the outcome of the order's payment, waiting briefly
//! for one still at the gateway.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::ErrorCode;
use contract::api::{AuthorizeRequest, AuthorizeResponse};
use runtime::http::{Admin, ApiError, ApiJson, ApiResult, KnownBuyer};
use runtime::trace;
use serde_json::json;
use sqlx::Row;

use crate::Payments;
use crate::states::PaymentStatus;

pub fn router(payments: Payments) -> Router {
    Router::new()
        .route("/ticketing/api/payments/authorize", post(authorize))
        .route("/ticketing/api/admin/audit/payment", get(audit))
        .with_state(payments)
}

/// How long `authorize` waits for a payment to settle, and for an order just created
/// to have its payment recorded at all.
const WAIT_SETTLED: Duration = Duration::from_secs(5);
const WAIT_RECORDED: Duration = Duration::from_secs(1);

async fn authorize(
    State(p): State<Payments>,
    KnownBuyer(buyer): KnownBuyer,
    ApiJson(req): ApiJson<AuthorizeRequest>,
) -> ApiResult<Json<AuthorizeResponse>> {
    let start = tokio::time::Instant::now();
    loop {
        let row = sqlx::query("SELECT buyer, status FROM payments WHERE order_no = $1")
            .bind(req.order_id)
            .fetch_optional(p.db.reader())
            .await
            .map_err(anyhow::Error::from)?;
        // Another buyer's order is answered as one that does not exist (its number tells a
        // prober nothing).
        let row = row.filter(|r| r.get::<String, _>("buyer") == buyer);
        let settled = match &row {
            Some(r) => Some(r.get::<String, _>("status")).filter(|s| s != PaymentStatus::Requested.as_str()),
            None => None,
        };
        if let Some(status) = settled {
            let outcome = if status == PaymentStatus::Succeeded.as_str() { "success" } else { "fail" };
            return Ok(Json(AuthorizeResponse {
                order_id: req.order_id,
                status: outcome.to_owned(),
                trace_id: trace::current_trace_id(),
                payment_status: status,
            }));
        }
        let waited = start.elapsed();
        if waited >= WAIT_SETTLED || (row.is_none() && waited >= WAIT_RECORDED) {
            return Err(match row {
                None => ApiError::not_found(format!("no payment for order {}", req.order_id)),
                Some(_) => ApiError::new(ErrorCode::Unavailable, "the payment is still at the gateway; ask again"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn audit(State(p): State<Payments>, _: Admin) -> ApiResult<Json<serde_json::Value>> {
    let rows = sqlx::query(
        "SELECT payment_id, order_id, order_no, amount, status, void_requested FROM payments ORDER BY created_at",
    )
    .fetch_all(p.db.reader())
    .await
    .map_err(anyhow::Error::from)?;
    let payments: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "paymentId": r.get::<String, _>("payment_id"),
                "orderId": r.get::<Option<i64>, _>("order_no"),
                "orderRef": r.get::<String, _>("order_id"),
                "amount": r.get::<i64, _>("amount"),
                "status": r.get::<String, _>("status"),
                "voidRequested": r.get::<i64, _>("void_requested") == 1,
                // What the gateway holds for it, when the gateway can tell (the simulator can).
                "gatewayKept": p.gateway.kept(&r.get::<String, _>("payment_id")),
            })
        })
        .collect();
    Ok(Json(json!({ "payments": payments })))
}
