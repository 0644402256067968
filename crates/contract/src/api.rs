//! JSON bodies of the public HTTP API, contract v1 (camelCase on the wire).
//!
//! Fields marked "extension" were added by boxoffice; everything else is the frozen
//! contract and must not change.

use serde::{Deserialize, Serialize};

use crate::reasons::CancelReason;

/// Every path of the API starts with this.
pub const API_PREFIX: &str = "/ticketing/api";

/// The header that carries the key of an idempotent request.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The header that carries the trace id on responses (and on requests without `traceparent`).
pub const TRACE_ID: &str = "trace-id";

/// The cookie that identifies an anonymous buyer.
pub const BUYER_COOKIE: &str = "boxoffice_buyer";

crate::text_enum! {
    /// A seat's status: in the seat map, and in the reservation module's and the catalog's
    /// `seats.status`.
    pub enum SeatStatus {
        /// Nobody holds it.
        Available = "AVAILABLE",
        /// A buyer holds it (pinned to their order, once they order it).
        Held = "HELD",
        /// Sold to a paid order.
        Sold = "SOLD",
    }
}

/// `GET /events` item and `GET /events/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: i64,
    pub title: String,
    pub date_time: String,
    pub description: String,
    /// extension
    pub rows: i64,
    /// extension
    pub cols: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seat {
    pub id: i64,
    pub r: i64,
    pub c: i64,
    pub price: i64,
    pub status: SeatStatus,
    /// extension: where a venue's seat is (absent for a grid show's)
    #[serde(flatten)]
    pub place: crate::venue::SeatPlace,
}

/// `GET /events/{id}/seats`, and the data of the SSE `INIT` message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatMap {
    pub rows: i64,
    pub cols: i64,
    pub seats: Vec<Seat>,
    /// extension: the event id
    pub event_id: i64,
    /// extension: the map's version; `SEAT_UPDATE`s with a higher version follow it
    pub version: i64,
    /// extension: a venue's categories and standing areas (absent for a grid show)
    #[serde(flatten)]
    pub venue: crate::venue::SeatMapVenue,
}

/// Data of the SSE `SEAT_UPDATE` message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatUpdate {
    pub seat_id: i64,
    pub status: SeatStatus,
    pub version: i64,
}

/// Admin: `POST /admin/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEvent {
    pub title: String,
    pub date_time: String,
    #[serde(default)]
    pub description: String,
    /// A grid show's size; absent (0) for a show made from a `venue`.
    #[serde(default)]
    pub rows: i64,
    #[serde(default)]
    pub cols: i64,
    /// Price of a seat in column 0; a seat in column c costs `base_price + c * column_step`.
    #[serde(default = "default_base_price")]
    pub base_price: i64,
    #[serde(default = "default_column_step")]
    pub column_step: i64,
    /// extension: the show's venue — sections, rows, seats, categories, standing areas —
    /// instead of a grid (docs/VENUES.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<crate::venue::VenueLayout>,
    /// extension: when the show goes on sale (RFC 3339); holds before it are 403
    /// `NOT_ON_SALE` (docs/WAITING_ROOM.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_sale_at: Option<serde_json::Value>,
    /// extension: the show's waiting room, as `PATCH /admin/events/{id}` sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<crate::room::RoomSwitch>,
}

impl CreateEvent {
    /// The on-sale time and waiting room asked for, if either was; a fault names itself.
    pub fn room_plan(&self) -> Result<Option<crate::room::RoomPlan>, String> {
        if self.on_sale_at.is_none() && self.waiting_room.is_none() {
            return Ok(None);
        }
        crate::room::RoomPlan::default().changed(self.on_sale_at.as_ref(), self.waiting_room.as_ref()).map(Some)
    }
}

fn default_base_price() -> i64 {
    50_000
}

fn default_column_step() -> i64 {
    1_000
}

/// `POST /reservations`. `seatIds` (extension) holds several seats at once, all or none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldRequest {
    pub event_id: i64,
    #[serde(default)]
    pub seat_id: Option<i64>,
    #[serde(default)]
    pub seat_ids: Option<Vec<i64>>,
    #[serde(default)]
    pub hold_seconds: Option<i64>,
    /// extension: a standing area's places, `quantity` of them
    #[serde(default)]
    pub area_id: Option<i64>,
    #[serde(default)]
    pub quantity: Option<i64>,
    /// extension: the best seats available, picked and held at once
    #[serde(default)]
    pub best_available: Option<BestAvailable>,
}

/// `bestAvailable` of `POST /reservations` (docs/VENUES.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BestAvailable {
    pub quantity: i64,
    /// Category keys to choose from; any when absent.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// Section names to choose from; any when absent.
    #[serde(default)]
    pub sections: Option<Vec<String>>,
    /// Wheelchair spaces with their companion seats.
    #[serde(default)]
    pub accessible: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldResponse {
    pub event_id: i64,
    pub seat_id: i64,
    /// extension: every seat of the hold
    pub seat_ids: Vec<i64>,
    pub hold_seconds: i64,
    pub expires_at: String,
    pub trace_id: String,
    /// extension, best available only: the seats are side by side in one row
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent: Option<bool>,
}

/// `POST /reservations/{eventId}/{seatId}/extend`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendRequest {
    /// Seconds added to the time the hold has left (the original's `TTL + seconds`);
    /// [`DEFAULT_EXTEND_SECONDS`] when absent, as is a request with no body at all.
    #[serde(default)]
    pub seconds: Option<i64>,
}

/// What an extend adds when it names no `seconds` (the original's default).
pub const DEFAULT_EXTEND_SECONDS: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendResponse {
    pub expires_at: String,
}

/// Extension: an item of `GET /reservations`, the caller's live holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MyHold {
    pub event_id: i64,
    pub seat_id: i64,
    /// None once an order has the hold (it no longer expires).
    pub expires_at: Option<String>,
    /// The hold is pinned to an order being made or made.
    pub pinned: bool,
    /// The number of the order the hold is pinned to, once that order is recorded.
    pub order_id: Option<i64>,
}

/// `POST /orders` (with an `Idempotency-Key` header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrder {
    pub event_id: i64,
    pub seat_ids: Vec<i64>,
}

crate::text_enum! {
    /// An order's status: in the API, and in the order module's `orders.status`.
    pub enum OrderStatus {
        /// Accepted (its seats pinned), not settled yet.
        Created = "CREATED",
        /// Paid, and its seats sold to it.
        Confirmed = "CONFIRMED",
        /// Cancelled (see its `cancelReason`): it holds no seat and keeps no money.
        Cancelled = "CANCELLED",
    }
}

/// `POST /orders` answer and `GET /orders/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order's number: an integer, as the original's `Long` (given in creation order).
    pub order_id: i64,
    pub status: OrderStatus,
    pub event_id: i64,
    pub seat_ids: Vec<i64>,
    pub created_at: String,
    /// extension: the sum of the seats' prices
    pub amount: i64,
    /// extension: why the order was cancelled, when it was
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
}

/// `POST /payments/authorize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub order_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeResponse {
    pub order_id: i64,
    /// `success` or `fail`
    pub status: String,
    pub trace_id: String,
    /// extension: REQUESTED | SUCCEEDED | FAILED | REFUNDED
    pub payment_status: String,
}
