//! The operator's refund of a confirmed order: the order CANCELLED with `REFUNDED`, told
//! to the others in the same transaction (`OrderCancelled`), so the payment module gives
//! the money back once, the reservation module frees the seats and the tickets module
//! revokes the tickets — the same saga as any cancellation of a paid order.

use axum::Json;
use axum::extract::State;
use contract::api::{Order, OrderStatus};
use contract::events::OrderCancelled;
use contract::reasons::CancelReason;
use runtime::http::{Admin, ApiError, ApiPath, ApiResult};
use runtime::outbox;

use crate::{Orders, store};

/// `POST /ticketing/api/admin/orders/{id}/refund`: the order as it is after the refund. A
/// refunded order is answered the same again; an order not CONFIRMED is refused (422).
pub async fn refund(State(o): State<Orders>, _: Admin, ApiPath(order_no): ApiPath<i64>) -> ApiResult<Json<Order>> {
    let not_found = || ApiError::not_found(format!("order {order_no} not found"));
    let stored = store::get(o.db.reader(), order_no).await?.ok_or_else(not_found)?;
    match (&stored.order.status, &stored.order.cancel_reason) {
        (OrderStatus::Confirmed, _) => {
            let mut tx = o.db.begin().await?;
            let reason = CancelReason::Refunded;
            if let Some((event_id, _, order_no)) = store::cancel(&mut tx, &stored.order_ref, &reason, true).await? {
                let order_id = stored.order_ref.clone();
                let cancelled = OrderCancelled { order_id, order_no: Some(order_no), event_id, reason };
                outbox::append(&mut tx, &cancelled).await?;
            }
            tx.commit().await?;
            o.relay.wake();
            tracing::info!(order_no, "order refunded by the operator");
            metrics::counter!(crate::metrics::CANCELLED, "reason" => CancelReason::Refunded.to_string()).increment(1);
        }
        (OrderStatus::Cancelled, Some(CancelReason::Refunded)) => {}
        (status, _) => {
            return Err(ApiError::validation(format!(
                "order {order_no} is {}; only a CONFIRMED order can be refunded",
                status.as_str()
            )));
        }
    }
    let after = store::get(o.db.reader(), order_no).await?.ok_or_else(not_found)?;
    Ok(Json(after.order))
}
