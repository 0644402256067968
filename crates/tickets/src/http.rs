//! The tickets module's routes: a buyer's tickets (JSON, QR code, PDF), the shows'
//! public keys, the door (check-in, offline uploads and bundles) and the operator's view.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::Millis;
use runtime::http::{Admin, ApiError, ApiJson, ApiPath, ApiResult, KnownBuyer, Scanner};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Answer, Scan, Ticket, Tickets};

/// Longest token, gate name and scan id a scan may carry, and most scans in an upload.
const MAX_TOKEN: usize = 2_048;
const MAX_NAME: usize = 128;
const MAX_BATCH: usize = 1_000;

pub fn router(tickets: Tickets) -> Router {
    Router::new()
        .route("/ticketing/api/orders/{id}/tickets", get(order_tickets))
        .route("/ticketing/api/orders/{id}/tickets.pdf", get(order_pdf))
        .route("/ticketing/api/orders/{id}/tickets/{ticket_id}/qr.svg", get(qr_svg))
        .route("/ticketing/api/events/{id}/ticket-keys", get(ticket_keys))
        .route("/ticketing/api/checkin", post(check_in))
        .route("/ticketing/api/checkin/batch", post(check_in_batch))
        .route("/ticketing/api/admin/events/{id}/scanner-bundle", get(bundle))
        .route("/ticketing/api/admin/events/{id}/checkins/conflicts", get(conflicts))
        .route("/ticketing/api/admin/events/{id}/ticket-keys/rotate", post(rotate))
        .route("/ticketing/api/admin/audit/tickets", get(audit))
        .with_state(tickets)
}

fn positive(id: i64, what: &str) -> ApiResult<i64> {
    if id > 0 { Ok(id) } else { Err(ApiError::not_found(format!("{what} {id} not found"))) }
}

/// The caller's tickets of an order; another buyer's order is one that does not exist.
async fn tickets_of(t: &Tickets, buyer: &str, order_no: i64) -> ApiResult<Vec<Ticket>> {
    positive(order_no, "order")?;
    t.of_order(buyer, order_no).await?.ok_or_else(|| ApiError::not_found(format!("order {order_no} not found")))
}

async fn order_tickets(
    State(t): State<Tickets>,
    KnownBuyer(buyer): KnownBuyer,
    ApiPath(order_no): ApiPath<i64>,
) -> ApiResult<Json<Vec<Ticket>>> {
    Ok(Json(tickets_of(&t, &buyer, order_no).await?))
}

fn qr(token: &str) -> ApiResult<qrcode::QrCode> {
    qrcode::QrCode::with_error_correction_level(token.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::from(anyhow::anyhow!("a token makes no QR code: {e}")))
}

async fn qr_svg(
    State(t): State<Tickets>,
    KnownBuyer(buyer): KnownBuyer,
    ApiPath((order_no, ticket_id)): ApiPath<(i64, String)>,
) -> ApiResult<impl IntoResponse> {
    let tickets = tickets_of(&t, &buyer, order_no).await?;
    let ticket = tickets
        .into_iter()
        .find(|ticket| ticket.ticket_id == ticket_id)
        .ok_or_else(|| ApiError::not_found(format!("ticket {ticket_id} not found")))?;
    let code = qr(ticket.token.as_deref().unwrap_or_default())?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, no-store")], svg))
}

/// A show's date and time as printed: `2026-03-14 19:30` (what was given, if it does
/// not parse).
fn when(date_time: &str) -> String {
    let local = chrono::NaiveDateTime::parse_from_str(date_time, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(date_time, "%Y-%m-%dT%H:%M"));
    match (local, chrono::DateTime::parse_from_rfc3339(date_time)) {
        (Ok(t), _) => t.format("%Y-%m-%d %H:%M").to_string(),
        (_, Ok(t)) => t.format("%Y-%m-%d %H:%M %:z").to_string(),
        _ => date_time.to_owned(),
    }
}

async fn order_pdf(
    State(t): State<Tickets>,
    KnownBuyer(buyer): KnownBuyer,
    ApiPath(order_no): ApiPath<i64>,
) -> ApiResult<impl IntoResponse> {
    let tickets = tickets_of(&t, &buyer, order_no).await?;
    let mut pages = Vec::with_capacity(tickets.len());
    let mut shows = std::collections::HashMap::new();
    for ticket in &tickets {
        if let std::collections::hash_map::Entry::Vacant(slot) = shows.entry(ticket.event_id) {
            slot.insert(crate::store::show(t.db.reader(), ticket.event_id).await?);
        }
        let (title, date) = match &shows[&ticket.event_id] {
            Some((title, date_time)) => (title.clone(), when(date_time)),
            None => (format!("Show {}", ticket.event_id), String::new()),
        };
        let code = qr(ticket.token.as_deref().unwrap_or_default())?;
        pages.push(crate::pdf::TicketPage {
            title,
            date,
            order: format!("Order {order_no}"),
            seat: ticket.label.clone(),
            status: ticket.status.clone(),
            ticket_id: ticket.ticket_id.clone(),
            qr: code,
        });
    }
    let disposition = format!("inline; filename=\"order-{order_no}-tickets.pdf\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        crate::pdf::render(&pages),
    ))
}

async fn ticket_keys(State(t): State<Tickets>, ApiPath(event_id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    t.key_set(positive(event_id, "event")?)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("event {event_id} has no ticket keys")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckIn {
    token: String,
    gate: String,
    scan_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OfflineScan {
    scan_id: String,
    token: String,
    gate: String,
    /// When the scanner let the ticket in (RFC 3339).
    scanned_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    scans: Vec<OfflineScan>,
}

fn check_fields(token: &str, gate: &str, scan_id: &str) -> ApiResult<()> {
    let name = |value: &str, what: &str| {
        if value.trim().is_empty() || value.len() > MAX_NAME {
            Err(ApiError::validation(format!("{what} must be 1 to {MAX_NAME} characters")))
        } else {
            Ok(())
        }
    };
    name(gate, "gate")?;
    name(scan_id, "scanId")?;
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(ApiError::validation(format!("token must be 1 to {MAX_TOKEN} characters")));
    }
    Ok(())
}

async fn check_in(
    State(t): State<Tickets>,
    scanner: Scanner,
    ApiJson(body): ApiJson<CheckIn>,
) -> ApiResult<Json<Answer>> {
    check_fields(&body.token, &body.gate, &body.scan_id)?;
    let scan = Scan {
        scan_id: &body.scan_id,
        token: body.token.trim(),
        gate: &body.gate,
        at: t.now(),
        offline: false,
        scanner_event: scanner.event,
    };
    Ok(Json(t.check_in(&scan).await?))
}

fn parse_time(text: &str) -> ApiResult<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::validation(format!("scannedAt must be an RFC 3339 time, not {text:?}")))
}

async fn check_in_batch(
    State(t): State<Tickets>,
    scanner: Scanner,
    ApiJson(body): ApiJson<Batch>,
) -> ApiResult<Json<Value>> {
    if body.scans.len() > MAX_BATCH {
        return Err(ApiError::validation(format!("at most {MAX_BATCH} scans an upload")));
    }
    // Every scan checked before any is applied: a bad one refuses the whole upload.
    let mut times = Vec::with_capacity(body.scans.len());
    for s in &body.scans {
        check_fields(&s.token, &s.gate, &s.scan_id)?;
        times.push(parse_time(&s.scanned_at)?);
    }
    let mut results = Vec::with_capacity(body.scans.len());
    for (s, at) in body.scans.iter().zip(times) {
        let scan = Scan {
            scan_id: &s.scan_id,
            token: s.token.trim(),
            gate: &s.gate,
            at,
            offline: true,
            scanner_event: scanner.event,
        };
        results.push(t.check_in(&scan).await?);
    }
    Ok(Json(json!({ "results": results })))
}

/// A scanner of another show has no business with this one's bundle.
fn scanner_of(scanner: &Scanner, event_id: i64) -> ApiResult<()> {
    match scanner.event {
        Some(bound) if bound != event_id => Err(ApiError::new(
            contract::ErrorCode::Forbidden,
            format!("this scanner is for event {bound}, not {event_id}"),
        )),
        _ => Ok(()),
    }
}

async fn bundle(State(t): State<Tickets>, scanner: Scanner, ApiPath(event_id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    scanner_of(&scanner, positive(event_id, "event")?)?;
    Ok(Json(t.bundle(event_id).await?))
}

async fn conflicts(State(t): State<Tickets>, _: Admin, ApiPath(event_id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "conflicts": t.conflicts(positive(event_id, "event")?).await? })))
}

async fn rotate(State(t): State<Tickets>, _: Admin, ApiPath(event_id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let event_id = positive(event_id, "event")?;
    if t.public_keys(event_id).await?.is_empty() {
        return Err(ApiError::not_found(format!("event {event_id} has no ticket keys")));
    }
    let kid = t.rotate_key(event_id).await?;
    Ok(Json(json!({ "kid": kid })))
}

async fn audit(State(t): State<Tickets>, _: Admin) -> ApiResult<Json<Value>> {
    Ok(Json(t.audit_view().await?))
}
