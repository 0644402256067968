//! Catalog routes: events, seat maps, the live stream, and the operator's endpoints.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::api::{CreateEvent, Event, SeatMap, SeatUpdate};
use runtime::http::{Admin, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::stream::MapChange;
use crate::{Catalog, store};

/// The largest body of `POST /admin/events`: a venue of 100,000 places.
const VENUE_BODY_LIMIT: usize = 16 << 20;

pub fn router(catalog: Catalog) -> Router {
    Router::new()
        .route("/ticketing/api/events", get(list_events))
        .route("/ticketing/api/events/{id}", get(get_event))
        .route("/ticketing/api/events/{id}/seats", get(seat_map))
        .route("/ticketing/api/events/{id}/seats/stream", get(seat_stream))
        // A venue's layout is larger than the buyers' requests: up to 100,000 places.
        .route("/ticketing/api/admin/events", post(create_event).layer(DefaultBodyLimit::max(VENUE_BODY_LIMIT)))
        .route("/ticketing/api/admin/events/{id}/sales", get(sales))
        .route("/ticketing/api/admin/events/{id}/reset", post(reset_event))
        // The original's reset, outside /ticketing/api, as its k6 smoke script calls it.
        .route("/admin/test-reset", post(test_reset))
        .route("/ticketing/admin/test-reset", post(test_reset))
        .route("/ticketing/api/admin/audit/catalog", get(audit))
        .with_state(catalog)
}

/// The shows, with a validator: `If-None-Match` with the current `ETag` is answered 304.
async fn list_events(State(c): State<Catalog>, headers: HeaderMap) -> ApiResult<Response> {
    // The validator is read before the list: should an event be added in between, the
    // client holds an older tag with the newer list and is sent the list once more —
    // never a new tag with an old list, which it would keep until the next change.
    let (count, last_id, last_created) = store::events_head(c.db.reader()).await?;
    let tag = format!("W/\"events.{count}.{last_id}.{last_created}\"");
    if matches_if_none_match(&headers, &tag) {
        return Ok(not_modified(&tag));
    }
    Ok(validated(&tag, Json(store::events(c.db.reader()).await?)))
}

async fn get_event(State(c): State<Catalog>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Event>> {
    store::event(c.db.reader(), id).await?.map(Json).ok_or_else(|| ApiError::not_found(format!("event {id} not found")))
}

/// A show's seat map, with a validator: `If-None-Match` with the current `ETag` is
/// answered 304 without reading the seats.
async fn seat_map(State(c): State<Catalog>, ApiPath(id): ApiPath<i64>, headers: HeaderMap) -> ApiResult<Response> {
    let not_found = || ApiError::not_found(format!("event {id} not found"));
    let head = store::map_head(c.db.reader(), id).await?.ok_or_else(not_found)?;
    if matches_if_none_match(&headers, &map_tag(id, head.created_at, head.version)) {
        return Ok(not_modified(&map_tag(id, head.created_at, head.version)));
    }
    let map = store::seat_map(c.db.reader(), id).await?.ok_or_else(not_found)?;
    // The tag of the version read with the seats, which may be newer than the head's.
    Ok(validated(&map_tag(id, head.created_at, map.version), Json(map)))
}

/// A seat map's entity tag: weak, as it names the map's state (the show, its creation
/// and the map's version, bumped by every seat change), not the bytes of one rendering.
fn map_tag(event_id: i64, created_at: i64, version: i64) -> String {
    format!("W/\"seats.{event_id}.{created_at}.{version}\"")
}

/// True when `If-None-Match` names `tag` (by the weak comparison, as RFC 9110 has it
/// for `If-None-Match`) or is `*`.
fn matches_if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(tag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == wanted)
}

/// Clients revalidate each time (`no-cache`) and may keep the body under its tag.
fn cache_headers(tag: &str) -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::ETAG, HeaderValue::from_str(tag).expect("entity tags are ASCII")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

fn validated(tag: &str, body: impl IntoResponse) -> Response {
    (cache_headers(tag), body).into_response()
}

/// 304 Not Modified: no body, the same validator.
fn not_modified(tag: &str) -> Response {
    (StatusCode::NOT_MODIFIED, cache_headers(tag)).into_response()
}

fn init(map: &SeatMap) -> SseEvent {
    SseEvent::default()
        .event("INIT")
        .id(map.version.to_string())
        .data(serde_json::to_string(map).expect("map serializes"))
}

fn update(u: &SeatUpdate) -> SseEvent {
    SseEvent::default()
        .event("SEAT_UPDATE")
        .id(u.version.to_string())
        .data(serde_json::to_string(u).expect("update serializes"))
}

/// `INIT` with the whole map, then every `SEAT_UPDATE`. A client reconnecting with a
/// `Last-Event-ID` it can resume from gets only what it missed; any other id (unknown,
/// from the future, malformed, or older than the kept history) gets `INIT` again, and so
/// does one that missed more changes than the show has seats, for which the whole map
/// costs less than the changes (a 10,000-seat map is about 600 KB, 40,000 changes 3.4 MB).
async fn seat_stream(
    State(c): State<Catalog>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> ApiResult<impl axum::response::IntoResponse> {
    if store::event(c.db.reader(), id).await?.is_none() {
        return Err(ApiError::not_found(format!("event {id} not found")));
    }
    // Subscribe before reading, so nothing committed in between is missed.
    let mut live = c.streams.subscribe(id);
    let last_seen =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let (out, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let result: anyhow::Result<()> = async {
            let resumed = match last_seen.filter(|v| *v >= 0) {
                Some(v) => replay(&c, id, v, &out).await?,
                None => None,
            };
            let mut sent = match resumed {
                Some(sent) => sent,
                None => send_init(&c, id, &out).await?,
            };
            loop {
                tokio::select! {
                    _ = out.closed() => return Ok(()),
                    received = live.recv() => match received {
                        Ok(MapChange::Seat(u)) if u.version <= sent => {}
                        Ok(MapChange::Seat(u)) => {
                            sent = u.version;
                            out.send(Ok(update(&u))).await?;
                        }
                        Ok(MapChange::Area(a)) => out.send(Ok(area_update(&a))).await?,
                        // Fell behind: start the client over from the whole map.
                        Err(broadcast::error::RecvError::Lagged(_)) => sent = send_init(&c, id, &out).await?,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                }
            }
        }
        .await;
        if let Err(error) = result {
            tracing::debug!(event_id = id, error = format!("{error:#}"), "seat stream ended");
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn area_update(a: &contract::venue::AreaUpdate) -> SseEvent {
    SseEvent::default().event("AREA_UPDATE").data(serde_json::to_string(a).expect("update serializes"))
}

/// Changes read from the history at once, at most.
const REPLAY_PAGE: i64 = 500;

/// Sends the changes after version `after` up to the map's current version, a page at a
/// time, and returns the last version sent; `None` when the client must be sent `INIT`
/// instead: `after` is from the future, more changes were missed than the show has seats,
/// or some of them are no longer kept. (Changes committed after the map's version was
/// read reach the stream live, having been subscribed to before.)
async fn replay(
    c: &Catalog,
    id: i64,
    after: i64,
    out: &mpsc::Sender<Result<SseEvent, Infallible>>,
) -> anyhow::Result<Option<i64>> {
    let Some(head) = store::map_head(c.db.reader(), id).await? else { return Ok(None) };
    if after > head.version || head.version - after > head.seats {
        return Ok(None);
    }
    // The history has the places' changes, not the standing areas' counts: a client of a
    // show with standing areas starts again from the whole map.
    if head.areas {
        return Ok(None);
    }
    let mut sent = after;
    while sent < head.version {
        let page = store::changes_between(c.db.reader(), id, sent, head.version, REPLAY_PAGE).await?;
        // Pruned since the head was read: an INIT after some updates starts the map over.
        if page.first().is_none_or(|u| u.version != sent + 1) {
            return Ok(None);
        }
        for u in &page {
            out.send(Ok(update(u))).await?;
        }
        sent = page.last().map_or(sent, |u| u.version);
    }
    Ok(Some(sent))
}

async fn send_init(c: &Catalog, id: i64, out: &mpsc::Sender<Result<SseEvent, Infallible>>) -> anyhow::Result<i64> {
    let map = store::seat_map(c.db.reader(), id).await?.ok_or_else(|| anyhow::anyhow!("event {id} vanished"))?;
    out.send(Ok(init(&map))).await?;
    Ok(map.version)
}

fn validate(spec: &CreateEvent) -> Result<(), ApiError> {
    let title = spec.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::validation("title must be 1 to 200 characters"));
    }
    if spec.description.chars().count() > 2000 {
        return Err(ApiError::validation("description must be at most 2000 characters"));
    }
    let parses = chrono::DateTime::parse_from_rfc3339(&spec.date_time).is_ok()
        || chrono::NaiveDateTime::parse_from_str(&spec.date_time, "%Y-%m-%dT%H:%M:%S").is_ok()
        || chrono::NaiveDateTime::parse_from_str(&spec.date_time, "%Y-%m-%dT%H:%M").is_ok();
    if !parses {
        return Err(ApiError::validation("dateTime must be an ISO 8601 date and time, e.g. 2025-10-01T19:00:00"));
    }
    spec.room_plan().map_err(ApiError::validation)?;
    if let Some(venue) = &spec.venue {
        if spec.rows != 0 || spec.cols != 0 {
            return Err(ApiError::validation("a show has either a venue or rows and cols, not both"));
        }
        return venue.validate().map_err(|fault| ApiError::validation(format!("venue: {fault}")));
    }
    if !(1..=1000).contains(&spec.rows) || !(1..=1000).contains(&spec.cols) || spec.rows * spec.cols > 100_000 {
        return Err(ApiError::validation("rows and cols must be 1 to 1000, with at most 100000 seats"));
    }
    if !(0..=1_000_000_000).contains(&spec.base_price) || !(0..=10_000_000).contains(&spec.column_step) {
        return Err(ApiError::validation("basePrice must be 0 to 1000000000 and columnStep 0 to 10000000"));
    }
    Ok(())
}

async fn create_event(
    State(c): State<Catalog>,
    _: Admin,
    ApiJson(spec): ApiJson<CreateEvent>,
) -> ApiResult<(StatusCode, Json<Event>)> {
    validate(&spec)?;
    Ok((StatusCode::CREATED, Json(c.create_event(&spec).await?)))
}

/// Sales of a show by section, by category and by standing area, for the operator.
async fn sales(
    State(c): State<Catalog>,
    _: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<contract::venue::Sales>> {
    store::sales(c.db.reader(), id).await?.map(Json).ok_or_else(|| ApiError::not_found(format!("event {id} not found")))
}

async fn reset_event(
    State(c): State<Catalog>,
    _: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    Ok((StatusCode::ACCEPTED, reset(&c, id).await?))
}

/// Voids the show's holds and sales: `{ eventId, resetAt }`, or 404.
async fn reset(c: &Catalog, id: i64) -> ApiResult<Json<serde_json::Value>> {
    match c.reset_event(id).await? {
        Some(reset_at) => Ok(Json(json!({ "eventId": id, "resetAt": contract::rfc3339(reset_at) }))),
        None => Err(ApiError::not_found(format!("event {id} not found"))),
    }
}

#[derive(Debug, serde::Deserialize)]
struct TestResetQuery {
    #[serde(rename = "eventId")]
    event_id: i64,
}

/// The original's `POST /admin/test-reset?eventId=N`: what `reset_event` does, answered
/// 200 as the original did. Operators only, unless the server runs with
/// `--allow-test-reset`, when anyone may.
async fn test_reset(
    State(c): State<Catalog>,
    admin: Result<Admin, ApiError>,
    query: Result<ApiQuery<TestResetQuery>, ApiError>,
) -> ApiResult<Json<serde_json::Value>> {
    if !c.open_test_reset {
        admin?;
    }
    let ApiQuery(TestResetQuery { event_id }) = query?;
    reset(&c, event_id).await
}

async fn audit(State(c): State<Catalog>, _: Admin) -> ApiResult<Json<serde_json::Value>> {
    let seats: Vec<_> = store::taken_seats(c.db.reader())
        .await?
        .into_iter()
        .map(|(event_id, seat_id, status)| json!({ "eventId": event_id, "seatId": seat_id, "status": status }))
        .collect();
    Ok(Json(json!({ "seats": seats })))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{map_tag, matches_if_none_match};

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_any() {
        let tag = map_tag(7, 1_700_000_000_000, 42);
        assert_eq!(tag, "W/\"seats.7.1700000000000.42\"");
        let with = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            }
            matches_if_none_match(&headers, &tag)
        };
        assert!(!with(&[]));
        assert!(with(&[&tag]));
        assert!(with(&["\"seats.7.1700000000000.42\""]), "the weak comparison ignores W/");
        assert!(with(&["W/\"seats.7.1700000000000.41\", W/\"seats.7.1700000000000.42\""]));
        assert!(with(&["\"x\"", &tag]));
        assert!(with(&["*"]));
        assert!(!with(&["W/\"seats.7.1700000000000.41\""]));
        assert!(!with(&["W/\"seats.8.1700000000000.42\""]));
    }
}
