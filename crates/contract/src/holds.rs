//! The one synchronous call between modules: Order asks Reservation to pin the
//! caller's holds to a new order before it accepts the order.
//!
//! A pin is idempotent on the order id. It starts as a lease: if the order is never
//! written (a crash between the pin and the order's commit), Reservation lets the pin
//! lapse and frees the seats; once Reservation sees `OrderCreated`, the pin holds until
//! the order is paid or cancelled.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinRequest {
    pub order_id: String,
    pub buyer: String,
    pub event_id: i64,
    pub seat_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedSeat {
    pub seat_id: i64,
    pub price: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pinned {
    pub seats: Vec<PinnedSeat>,
}

/// Why a pin was refused, as the contract's code and a message for the buyer.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct PinRefused {
    pub code: ErrorCode,
    pub message: String,
}

/// Reservation's side of the pin call; in one process it is called directly, across
/// processes over HTTP.
#[async_trait]
pub trait Holds: Send + Sync + 'static {
    async fn pin(&self, request: PinRequest) -> anyhow::Result<Result<Pinned, PinRefused>>;
}
