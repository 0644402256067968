//! The waiting room's routes: joining, one's place (and its live stream), and the
//! operator's switch of a show's room.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use contract::Millis;
use contract::room::RoomSwitch;
use runtime::http::{Admin, ApiError, ApiJson, ApiPath, ApiResult, Auth, Buyer, ClientAddr, KnownBuyer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::WaitingRoom;
use crate::queue::{Rate, Settings, Status, View};
use crate::token;

/// How often a place's stream says where the visitor is.
const STREAM_EVERY: Duration = Duration::from_secs(1);

pub fn router(room: WaitingRoom) -> Router {
    Router::new()
        .route("/ticketing/api/queue/{event_id}/join", post(join))
        .route("/ticketing/api/queue/{event_id}/me", get(me))
        .route("/ticketing/api/queue/{event_id}/me/stream", get(me_stream))
        .route("/ticketing/api/admin/events/{event_id}/room", get(audit).patch(configure))
        // The path for the same settings.
        .route("/ticketing/api/admin/events/{event_id}", patch(configure))
        .with_state(room)
}

/// A visitor's place as the API tells it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Place {
    status: Status,
    position: Option<u64>,
    ahead: Option<u64>,
    estimated_wait_seconds: Option<u64>,
    on_sale_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admission_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admission_expires_at: Option<String>,
}

fn iso(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn valid_event(event_id: i64) -> ApiResult<i64> {
    if event_id < 1 {
        return Err(ApiError::validation("eventId must be a positive show id"));
    }
    Ok(event_id)
}

fn no_room(event_id: i64) -> ApiError {
    ApiError::not_found(format!("show {event_id} has no waiting room"))
}

/// The answer for `view`: the place, and an admitted visitor's token in the body and as
/// a cookie.
fn answer(
    room: &WaitingRoom,
    auth: &Auth,
    https: bool,
    event_id: i64,
    buyer: &str,
    view: &View,
) -> (Option<[(header::HeaderName, HeaderValue); 1]>, Json<Place>) {
    let on_sale_at = room.known_settings(event_id).and_then(|s| s.on_sale_at).map(iso);
    let admission_token = room.token(&token::key_from(&auth.cookie_key), event_id, buyer, view);
    let cookie = admission_token.as_ref().zip(view.admitted_until).map(|(t, until)| {
        let max_age = ((until - room.now()).max(0) / 1000).max(1);
        let secure = if auth.secure_cookies || https { "; Secure" } else { "" };
        let name = token::cookie_name(event_id);
        let value = format!("{name}={t}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
        [(header::SET_COOKIE, HeaderValue::from_str(&value).expect("a token is ascii"))]
    });
    let place = Place {
        status: view.status,
        position: view.position,
        ahead: view.ahead,
        estimated_wait_seconds: view.estimated_wait_secs,
        on_sale_at,
        admission_expires_at: admission_token.as_ref().and(view.admitted_until).map(iso),
        admission_token,
    };
    (cookie, Json(place))
}

async fn join(
    State(room): State<WaitingRoom>,
    Extension(auth): Extension<Arc<Auth>>,
    client: ClientAddr,
    ApiPath(event_id): ApiPath<i64>,
    buyer: Buyer,
) -> ApiResult<Response> {
    let event_id = valid_event(event_id)?;
    let joined = room.join(event_id, &buyer.id).await?.ok_or_else(|| no_room(event_id))?;
    let status = if joined.created { StatusCode::CREATED } else { StatusCode::OK };
    let (token_cookie, body) = answer(&room, &auth, client.https, event_id, &buyer.id, &joined.view);
    Ok((status, buyer.set_cookie(), token_cookie, body).into_response())
}

fn not_in_queue(event_id: i64) -> ApiError {
    ApiError::not_found(format!("not in the queue of show {event_id}: join it first"))
}

async fn me(
    State(room): State<WaitingRoom>,
    Extension(auth): Extension<Arc<Auth>>,
    client: ClientAddr,
    ApiPath(event_id): ApiPath<i64>,
    KnownBuyer(buyer): KnownBuyer,
) -> ApiResult<Response> {
    let event_id = valid_event(event_id)?;
    let view = room.me(event_id, &buyer).ok_or_else(|| not_in_queue(event_id))?;
    Ok(answer(&room, &auth, client.https, event_id, &buyer, &view).into_response())
}

/// The place, every second, until the visitor is let through or has lost it; listening
/// keeps the place as polling does.
async fn me_stream(
    State(room): State<WaitingRoom>,
    Extension(auth): Extension<Arc<Auth>>,
    ApiPath(event_id): ApiPath<i64>,
    KnownBuyer(buyer): KnownBuyer,
) -> ApiResult<Response> {
    let event_id = valid_event(event_id)?;
    room.me(event_id, &buyer).ok_or_else(|| not_in_queue(event_id))?;
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(4);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STREAM_EVERY);
        loop {
            every.tick().await;
            let Some(view) = room.me(event_id, &buyer) else { break };
            let (_, Json(place)) = answer(&room, &auth, false, event_id, &buyer, &view);
            let event = SseEvent::default().event("place").data(serde_json::to_string(&place).expect("serializes"));
            if tx.send(Ok(event)).await.is_err() || matches!(view.status, Status::Admitted | Status::Expired) {
                break;
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// `PATCH …/admin/events/{id}` (or `…/{id}/room`): what is sent changes, the rest stays.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoomPatch {
    /// Absent: unchanged; `null`: no on-sale time.
    #[serde(default, deserialize_with = "contract::room::present")]
    on_sale_at: Option<Value>,
    waiting_room: Option<RoomSwitch>,
}

fn room_body(event_id: i64, s: &Settings) -> Value {
    let rate = match s.rate {
        Rate::PerMinute(n) => json!(n),
        Rate::Auto => json!("auto"),
    };
    json!({
        "eventId": event_id,
        "onSaleAt": s.on_sale_at.map(iso),
        "waitingRoom": { "enabled": s.enabled, "ratePerMinute": rate },
    })
}

async fn configure(
    State(room): State<WaitingRoom>,
    _: Admin,
    ApiPath(event_id): ApiPath<i64>,
    ApiJson(patch): ApiJson<RoomPatch>,
) -> ApiResult<Json<Value>> {
    let event_id = valid_event(event_id)?;
    let settings = room.settings(event_id).await?.unwrap_or_default();
    let settings =
        settings.changed(patch.on_sale_at.as_ref(), patch.waiting_room.as_ref()).map_err(ApiError::validation)?;
    let settings = room.configure(event_id, settings).await?;
    Ok(Json(room_body(event_id, &settings)))
}

/// A room as the operator checks it: its settings, the recorded seed and pre-queue, the
/// queue order (entry ids), the counter, and the figures the operator watches.
async fn audit(State(room): State<WaitingRoom>, _: Admin, ApiPath(event_id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let event_id = valid_event(event_id)?;
    room.settings(event_id).await?.ok_or_else(|| no_room(event_id))?;
    let audit = room.audit(event_id).ok_or_else(|| no_room(event_id))?;
    let mut body = room_body(event_id, &audit.settings);
    body["draw"] = audit.draw.map_or(
        Value::Null,
        |d| json!({ "seed": d.seed.to_string(), "prequeueLastEntry": d.prequeue_last, "drawnAt": iso(d.drawn_at) }),
    );
    body["order"] = json!(audit.order);
    body["served"] = json!(audit.served);
    body["waiting"] = json!(audit.waiting);
    body["admitted"] = json!(audit.figures.admitted);
    body["admittedLastMinute"] = json!(audit.figures.admitted_last_minute);
    body["noShows"] = json!(audit.figures.no_shows);
    body["medianWaitSeconds"] = json!(audit.figures.median_wait_ms.map(|ms| ms as f64 / 1000.0));
    Ok(Json(body))
}
