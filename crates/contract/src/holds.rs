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

/// Why a pin (or a hold, an extend, a release, an order) did not go through: refused,
/// or not decided at all.
///
/// Deliberately not a `std::error::Error`: `?` in a function that returns an
/// `anyhow::Result` cannot turn a refusal into an internal error by mistake.
#[derive(Debug)]
pub enum PinError {
    /// Refused, in the contract's terms: the caller is told the code and why.
    Refused(PinRefused),
    /// Not decided: the database, or the module called, failed or is out of reach. The
    /// caller is told no detail (500, or 503 when out of reach).
    Failed(anyhow::Error),
}

impl From<PinRefused> for PinError {
    fn from(refused: PinRefused) -> Self {
        PinError::Refused(refused)
    }
}

impl From<anyhow::Error> for PinError {
    fn from(error: anyhow::Error) -> Self {
        PinError::Failed(error)
    }
}

/// Reservation's side of the pin call; in one process it is called directly, across
/// processes over HTTP.
#[async_trait]
pub trait Holds: Send + Sync + 'static {
    async fn pin(&self, request: PinRequest) -> Result<Pinned, PinError>;
}
