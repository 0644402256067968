//! Reservation routes: hold, extend, release, the caller's holds, the audit snapshot.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use const_format::formatcp;
use contract::api::{DEFAULT_EXTEND_SECONDS, ExtendRequest, ExtendResponse, HoldRequest, HoldResponse, MyHold};
use contract::holds::{PinError, PinRequest, Pinned};
use runtime::http::{
    Admin, ApiError, ApiJson, ApiPath, ApiResult, Auth, Buyer, ClientAddr, KnownBuyer, OptionalApiJson,
};
use runtime::trace;
use serde_json::json;
use sqlx::Row;

use crate::Reservation;
use crate::best::BestRequest;
use crate::choose::Chosen;
use crate::states::AVAILABLE;

pub fn router(reservation: Reservation) -> Router {
    Router::new()
        .route("/ticketing/api/reservations", post(hold).get(my_holds))
        .route("/ticketing/api/reservations/{event_id}/{seat_id}/extend", post(extend))
        .route("/ticketing/api/reservations/{event_id}/{seat_id}", axum::routing::delete(release))
        .route("/ticketing/api/admin/audit/reservation", get(audit))
        .route("/ticketing/api/internal/pins", post(pin))
        .with_state(reservation)
}

/// Longest hold time a request may name before it is refused rather than clamped.
const ABSURD_SECS: i64 = 86_400;

fn seconds(value: i64, field: &str) -> Result<i64, ApiError> {
    if !(1..=ABSURD_SECS).contains(&value) {
        return Err(ApiError::validation(format!("{field} must be 1 to {ABSURD_SECS}")));
    }
    Ok(value)
}

async fn hold(
    State(r): State<Reservation>,
    Extension(auth): Extension<Arc<Auth>>,
    headers: HeaderMap,
    buyer: Buyer,
    client: ClientAddr,
    ApiJson(req): ApiJson<HoldRequest>,
) -> ApiResult<Response> {
    // Anonymous buyers cost nothing to make, so their address stands for them: it is
    // counted, and remembered for the cool-down. A bearer token's buyer is counted alone.
    let anonymous = crate::is_anonymous(&buyer.id);
    if anonymous && r.policy.require_signed_buyers {
        // Answered without the cookie of a new anonymous buyer.
        let message = "this on-sale admits only signed-in buyers: send a bearer token (Authorization: Bearer …)";
        return Err(ApiError::new(contract::ErrorCode::Unauthorized, message));
    }
    // The show's door: its on-sale time, and its waiting room's admission token.
    r.doors.check(&auth, &headers, &buyer.id, req.event_id, r.clock.now_millis())?;
    let addr = anonymous.then(|| crate::address_key(client.ip));
    let secs = seconds(req.hold_seconds.unwrap_or(r.policy.default_secs), "holdSeconds")?;
    let outcome = match what_to_hold(&req, r.policy.max_seats)? {
        Wanted::Seats(seat_ids) => {
            let mut sorted = seat_ids.clone();
            sorted.sort_unstable();
            r.hold(&buyer.id, addr.as_deref(), req.event_id, &sorted, secs).await.map(|outcome| Chosen {
                seat_ids,
                adjacent: None,
                outcome,
            })
        }
        Wanted::Area { area_id, quantity } => {
            r.hold_area(&buyer.id, addr.as_deref(), req.event_id, area_id, quantity, secs).await
        }
        Wanted::Best(best) => r.hold_best(&buyer.id, addr.as_deref(), req.event_id, &best, secs).await,
    };
    match &outcome {
        Ok(_) => metrics::counter!(crate::metrics::HOLD_SUCCESS).increment(1),
        Err(PinError::Refused(refused)) if refused.code == contract::ErrorCode::ReservationConflict => {
            metrics::counter!(crate::metrics::HOLD_CONFLICT).increment(1)
        }
        Err(PinError::Refused(refused)) => {
            let code =
                serde_json::to_value(refused.code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            metrics::counter!(crate::metrics::HOLD_REFUSED, "code" => code).increment(1)
        }
        Err(PinError::Failed(_)) => {}
    }
    let Chosen { seat_ids, adjacent, outcome } = outcome?;
    let body = HoldResponse {
        event_id: req.event_id,
        seat_id: seat_ids[0],
        seat_ids,
        hold_seconds: outcome.hold_secs,
        expires_at: contract::rfc3339(outcome.expires_at),
        trace_id: trace::current_trace_id(),
        adjacent,
    };
    Ok((StatusCode::CREATED, buyer.set_cookie(), Json(body)).into_response())
}

/// What a hold request asks for: seats it names, places of a standing area, or the best
/// seats available.
enum Wanted {
    Seats(Vec<i64>),
    Area { area_id: i64, quantity: usize },
    Best(BestRequest),
}

/// The one thing a hold request asks for, checked: 422 for a request that names none, or
/// more than one, or too many seats.
fn what_to_hold(req: &HoldRequest, max_seats: usize) -> Result<Wanted, ApiError> {
    let quantity = |n: i64, what: &str| match usize::try_from(n) {
        Ok(n) if (1..=max_seats).contains(&n) => Ok(n),
        _ => Err(ApiError::validation(format!("{what} must be 1 to {max_seats}"))),
    };
    let names_seats = req.seat_id.is_some() || req.seat_ids.is_some();
    match (names_seats, req.area_id, &req.best_available) {
        (false, Some(area_id), None) => {
            let n = req.quantity.ok_or_else(|| ApiError::validation("quantity is required with areaId"))?;
            Ok(Wanted::Area { area_id, quantity: quantity(n, "quantity")? })
        }
        (false, None, Some(best)) => {
            if req.quantity.is_some() {
                return Err(ApiError::validation("quantity goes inside bestAvailable"));
            }
            let names = |list: &Option<Vec<String>>, what: &str| match list {
                Some(list) if list.is_empty() || list.len() > 100 || list.iter().any(|n| n.len() > 64) => {
                    Err(ApiError::validation(format!(
                        "bestAvailable.{what} must name 1 to 100, each at most 64 characters"
                    )))
                }
                _ => Ok(list.clone()),
            };
            Ok(Wanted::Best(BestRequest {
                quantity: quantity(best.quantity, "bestAvailable.quantity")?,
                categories: names(&best.categories, "categories")?,
                sections: names(&best.sections, "sections")?,
                accessible: best.accessible,
            }))
        }
        (true, None, None) if req.quantity.is_none() => {
            let seat_ids = match (&req.seat_ids, req.seat_id) {
                (Some(ids), first) => {
                    if first.is_some_and(|f| !ids.contains(&f)) {
                        return Err(ApiError::validation("seatId must be one of seatIds"));
                    }
                    ids.clone()
                }
                (None, Some(id)) => vec![id],
                (None, None) => unreachable!("names_seats"),
            };
            if seat_ids.is_empty() || seat_ids.len() > max_seats {
                return Err(ApiError::validation(format!("hold 1 to {max_seats} seats at once")));
            }
            let mut sorted = seat_ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != seat_ids.len() {
                return Err(ApiError::validation("seatIds must not repeat a seat"));
            }
            Ok(Wanted::Seats(seat_ids))
        }
        (false, None, None) => Err(ApiError::validation("seatId or seatIds is required")),
        _ => Err(ApiError::validation(
            "name seats (seatId, seatIds), a standing area (areaId, quantity) or bestAvailable: one of them",
        )),
    }
}

/// Adds `seconds` to the time the hold has left, up to the longest hold from now; never
/// shortens it. Answers the new expiry.
async fn extend(
    State(r): State<Reservation>,
    KnownBuyer(buyer): KnownBuyer,
    ApiPath((event_id, seat_id)): ApiPath<(i64, i64)>,
    OptionalApiJson(req): OptionalApiJson<ExtendRequest>,
) -> ApiResult<Json<ExtendResponse>> {
    // As the original: no body, or none of `seconds`, adds 30 s.
    let secs = seconds(req.and_then(|r| r.seconds).unwrap_or(DEFAULT_EXTEND_SECONDS), "seconds")?;
    let expires_at = r.extend(&buyer, event_id, seat_id, secs).await?;
    Ok(Json(ExtendResponse { expires_at: contract::rfc3339(expires_at) }))
}

async fn release(
    State(r): State<Reservation>,
    KnownBuyer(buyer): KnownBuyer,
    ApiPath((event_id, seat_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    r.release(&buyer, event_id, seat_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Extension: the caller's live holds, so a page can show its countdowns after a reload.
async fn my_holds(State(r): State<Reservation>, KnownBuyer(buyer): KnownBuyer) -> ApiResult<Json<Vec<MyHold>>> {
    Ok(Json(r.holds_of(&buyer).await?))
}

/// The order module's pin call, when it runs in another process (operator token).
async fn pin(State(r): State<Reservation>, _: Admin, ApiJson(req): ApiJson<PinRequest>) -> ApiResult<Json<Pinned>> {
    use contract::holds::Holds;
    if req.seat_ids.is_empty() || req.seat_ids.len() > r.policy.max_seats || req.order_id.is_empty() {
        return Err(ApiError::validation("a pin names an order and 1 to the allowed number of seats"));
    }
    Ok(Json(r.pin(req).await?))
}

async fn audit(State(r): State<Reservation>, _: Admin) -> ApiResult<Json<serde_json::Value>> {
    let rows = sqlx::query(formatcp!(
        "SELECT event_id, seat_id, status, order_id, expires_at FROM seats WHERE status <> {AVAILABLE} \
         ORDER BY event_id, seat_id"
    ))
    .fetch_all(r.db.reader())
    .await
    .map_err(anyhow::Error::from)?;
    let seats: Vec<_> = rows
        .iter()
        .map(|s| {
            json!({
                "eventId": s.get::<i64, _>("event_id"),
                "seatId": s.get::<i64, _>("seat_id"),
                "status": s.get::<String, _>("status"),
                "orderRef": s.get::<Option<String>, _>("order_id"),
                "expiresAt": s.get::<Option<i64>, _>("expires_at"),
            })
        })
        .collect();
    Ok(Json(json!({ "seats": seats, "sweepIntervalMs": r.policy.sweep_interval.as_millis() as i64 })))
}
