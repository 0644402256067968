//! Error codes of contract v1 and the body every error response carries.

use serde::{Deserialize, Serialize};

/// The error codes of the contract, each with the HTTP status it is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 409: the seat is held by someone else (or pinned to an order).
    ReservationConflict,
    /// 410: the hold is gone (expired, released, or never the caller's).
    ReservationExpired,
    /// 422: the seat is sold.
    SeatSold,
    /// 422 (413 for an oversized body): the request is malformed or out of range.
    ValidationFailed,
    /// 404: no such resource.
    NotFound,
    /// 401: the caller is not identified.
    Unauthorized,
    /// 403: the caller may not do this.
    Forbidden,
    /// 403: the show is not on sale yet (before its `onSaleAt`): nothing is held.
    NotOnSale,
    /// 403: the show's waiting room is on, and the request carries no valid admission
    /// token (none, forged, expired, or another buyer's or show's): nothing is held.
    QueueRequired,
    /// 422: the idempotency key was used before with a different body.
    IdempotencyKeyReused,
    /// 409: not enough fitting seats (or standing places) remain for the request.
    NotEnoughSeats,
    /// 429: too many requests.
    RateLimited,
    /// 503: a dependency is unavailable.
    Unavailable,
    /// 500: an internal error; no detail is shown.
    InternalError,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::ReservationConflict | ErrorCode::NotEnoughSeats => 409,
            ErrorCode::ReservationExpired => 410,
            ErrorCode::SeatSold | ErrorCode::ValidationFailed | ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::NotFound => 404,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::NotOnSale | ErrorCode::QueueRequired => 403,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::InternalError => 500,
        }
    }
}

/// `{ "code", "message", "traceId" }` — the body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub trace_id: String,
}
