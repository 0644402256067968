//! Reservation's part of the saga.
//!
//! - `EventCreated`: the show's seats become holdable.
//! - `EventReset`: every hold and sale of the show is void.
//! - `OrderCreated`: the order exists, so its pin holds for good (no more lease).
//! - `PaymentSucceeded`: the order's pinned holds become SOLD — all of them, or, if any
//!   was lost, none (`SeatsSaleFailed`, and the order is cancelled and refunded).
//! - `OrderCancelled`: the order's seats are freed.
//! - `OrderNumbered`: a pin of an order from before order numbers learns its number.
//! - `RoomSettingsChanged`: a show's on-sale time and waiting room, which holds must pass
//!   (a show created with them has them from its `EventCreated`).

use std::sync::LazyLock;

use anyhow::Context;
use const_format::formatcp;
use contract::events::{
    EventCreated, EventReset, OrderCancelled, OrderCreated, OrderNumbered, PaymentSucceeded, RoomSettingsChanged,
    SEATS_PER_EVENT, SeatVersion, SeatsReleased, SeatsSaleFailed, SeatsSold,
};
use contract::reasons::{ReleaseReason, SaleFailReason};
use runtime::consumer::{Cx, Handlers, Reactor};
use runtime::db::Backend;
use runtime::{Tx, outbox};
use sqlx::Row;

use crate::Reservation;
use crate::states::{AVAILABLE, HELD, PIN_CONFIRMED, PIN_FAILED, PIN_LEASED, PIN_RELEASED, PIN_SOLD, PinState, SOLD};

pub struct Saga {
    pub reservation: Reservation,
}

/// The saga's consumers: one handler per event type it reacts to.
pub fn handlers(reservation: Reservation) -> Handlers<Saga> {
    Handlers::new(Saga { reservation })
        .on::<EventCreated>(event_created)
        .on::<EventReset>(event_reset)
        .on::<OrderCreated>(order_created)
        .on::<PaymentSucceeded>(payment_succeeded)
        .on::<OrderCancelled>(order_cancelled)
        .on::<OrderNumbered>(order_numbered)
        .on::<RoomSettingsChanged>(room_settings_changed)
}

/// A show's on-sale time or waiting room changed: holds are checked against it.
async fn room_settings_changed(s: &Saga, tx: &mut Tx, e: RoomSettingsChanged, _: Cx<'_, Freed>) -> anyhow::Result<()> {
    s.reservation.doors.apply(tx, &e).await
}

/// The seats a transaction of events freed, by show: offered to best available once
/// it commits.
pub type Freed = Vec<(i64, Vec<i64>)>;

impl Reactor for Saga {
    type Batch = Freed;

    fn committed(&self, freed: Freed) {
        self.reservation.relay.wake();
        for (event_id, seat_ids) in freed {
            self.reservation.indexes.freed(event_id, &seat_ids);
        }
    }
}

async fn order_numbered(_: &Saga, tx: &mut Tx, e: OrderNumbered, _: Cx<'_, Freed>) -> anyhow::Result<()> {
    sqlx::query("UPDATE pins SET order_no = $1 WHERE order_id = $2")
        .bind(e.order_no)
        .bind(&e.order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn event_created(s: &Saga, tx: &mut Tx, e: EventCreated, _: Cx<'_, Freed>) -> anyhow::Result<()> {
    // Created with an on-sale time or a room: no seat is holdable before the door is known.
    if let Some(door) = e.door() {
        s.reservation.doors.apply(tx, &door).await?;
    }
    const COLUMNS: usize = 5;
    for chunk in e.seats.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let params: Vec<String> = (1..=COLUMNS).map(|k| format!("${}", COLUMNS * i + k)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO seats (event_id, seat_id, price, area_id, place) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for s in chunk {
            let place = s.place.as_ref().map(|p| serde_json::to_string(p).expect("a place serializes"));
            query = query.bind(e.event_id).bind(s.seat_id).bind(s.price).bind(s.area_id).bind(place);
        }
        query.execute(&mut **tx).await.context("failed to add seats")?;
    }
    // Every part of a large show names the sections again.
    for (idx, section) in (0i64..).zip(&e.sections) {
        sqlx::query(
            "INSERT INTO venue_sections (event_id, idx, name, focal_x, focal_y) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(e.event_id)
        .bind(idx)
        .bind(&section.name)
        .bind(section.focal.x)
        .bind(section.focal.y)
        .execute(&mut **tx)
        .await
        .context("failed to add a venue's sections")?;
    }
    Ok(())
}

fn versions(rows: &[sqlx::any::AnyRow]) -> Vec<SeatVersion> {
    rows.iter().map(|r| SeatVersion { seat_id: r.get("seat_id"), version: r.get("version") }).collect()
}

/// Frees the seats matched by `filter` (binding `$1`) and announces it; returns them,
/// with their show (`event_id`, or the first seat's).
pub(crate) async fn free_seats(
    tx: &mut Tx,
    filter: &str,
    bind: &str,
    event_id: Option<i64>,
    reason: ReleaseReason,
    order_id: Option<&str>,
) -> anyhow::Result<(i64, Vec<i64>)> {
    let sql = format!(
        "UPDATE seats SET status = {AVAILABLE}, holder = NULL, expires_at = NULL, order_id = NULL, version = version + 1 \
         WHERE {filter} RETURNING event_id, seat_id, version"
    );
    let rows = sqlx::query(&sql).bind(bind).fetch_all(&mut **tx).await.context("failed to free seats")?;
    let Some(first) = rows.first() else {
        return Ok((event_id.unwrap_or_default(), Vec::new()));
    };
    let event_id = event_id.unwrap_or_else(|| first.get("event_id"));
    for part in versions(&rows).chunks(SEATS_PER_EVENT) {
        let released = SeatsReleased {
            event_id,
            seats: part.to_vec(),
            reason: reason.clone(),
            order_id: order_id.map(str::to_owned),
        };
        outbox::append(tx, &released).await?;
    }
    Ok((event_id, rows.iter().map(|r| r.get("seat_id")).collect()))
}

async fn event_reset(_: &Saga, tx: &mut Tx, e: EventReset, cx: Cx<'_, Freed>) -> anyhow::Result<()> {
    let id = e.event_id.to_string();
    sqlx::query(formatcp!(
        "UPDATE pins SET state = {PIN_RELEASED} WHERE event_id = CAST($1 AS BIGINT) \
         AND state IN ({PIN_LEASED}, {PIN_CONFIRMED}, {PIN_SOLD})"
    ))
    .bind(&id)
    .execute(&mut **tx)
    .await?;
    let filter = formatcp!("event_id = CAST($1 AS BIGINT) AND status <> {AVAILABLE}");
    cx.batch.push(free_seats(tx, filter, &id, Some(e.event_id), ReleaseReason::Reset, None).await?);
    Ok(())
}

async fn order_created(_: &Saga, tx: &mut Tx, e: OrderCreated, _: Cx<'_, Freed>) -> anyhow::Result<()> {
    if tx.backend() == Backend::Postgres {
        // The same two steps in one round trip; the pin's row is still locked first (the
        // seats are updated only for the pin's row the first step returns).
        sqlx::query(formatcp!(
            "WITH pin AS (UPDATE pins SET state = {PIN_CONFIRMED}, order_no = $2 WHERE order_id = $1 \
             AND state = {PIN_LEASED} RETURNING order_id) \
             UPDATE seats SET expires_at = NULL FROM pin WHERE seats.order_id = pin.order_id AND seats.status = {HELD}"
        ))
        .bind(&e.order_id)
        .bind(e.order_no)
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    let confirmed = sqlx::query(formatcp!(
        "UPDATE pins SET state = {PIN_CONFIRMED}, order_no = $2 WHERE order_id = $1 AND state = {PIN_LEASED}"
    ))
    .bind(&e.order_id)
    .bind(e.order_no)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if confirmed == 1 {
        sqlx::query(formatcp!("UPDATE seats SET expires_at = NULL WHERE order_id = $1 AND status = {HELD}"))
            .bind(&e.order_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The usual case: the pin is live and every one of its seats is still held for it, so
/// it is sold. Like the long way, it takes the pin's row first.
const SELL_PIN: &str = formatcp!(
    "UPDATE pins SET state = {PIN_SOLD} WHERE order_id = $1 AND state IN ({PIN_LEASED}, {PIN_CONFIRMED}) \
     AND seat_count = (SELECT COUNT(*) FROM seats WHERE seats.order_id = pins.order_id AND seats.status = {HELD}) \
     RETURNING order_id, event_id, seat_count"
);

/// Marks the held seats of the orders `orders` names (`$1`, or a subquery) SOLD,
/// returning them with their new versions.
fn sell_seats_sql(orders: &str) -> String {
    format!(
        "UPDATE seats SET status = {SOLD}, expires_at = NULL, version = version + 1 \
         WHERE order_id IN ({orders}) AND status = {HELD} RETURNING event_id, seat_id, version"
    )
}

static SELL_SEATS: LazyLock<String> = LazyLock::new(|| sell_seats_sql("$1"));

/// PostgreSQL: the pin and its seats sold in one round trip, each seat's row with the
/// pin's (one row with no seat when the pin sold but no seat did).
static SELL_PIN_AND_SEATS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH pin AS ({SELL_PIN}), sold AS ({}) \
         SELECT sold.event_id, sold.seat_id, sold.version, pin.event_id AS pin_event_id, pin.seat_count \
         FROM pin LEFT JOIN sold ON true",
        sell_seats_sql("SELECT order_id FROM pin")
    )
});

async fn payment_succeeded(_: &Saga, tx: &mut Tx, e: PaymentSucceeded, _: Cx<'_, Freed>) -> anyhow::Result<()> {
    let sold_at_once: Option<(i64, i64, Vec<sqlx::any::AnyRow>)> = if tx.backend() == Backend::Postgres {
        let rows = sqlx::query(&SELL_PIN_AND_SEATS).bind(&e.order_id).fetch_all(&mut **tx).await?;
        rows.first().map(|pin| (pin.get("pin_event_id"), pin.get("seat_count"))).map(|(event_id, pinned)| {
            let seats = rows.iter().filter(|r| r.get::<Option<i64>, _>("seat_id").is_some()).cloned().collect();
            (event_id, pinned, seats)
        })
    } else {
        match sqlx::query(SELL_PIN).bind(&e.order_id).fetch_optional(&mut **tx).await? {
            Some(pin) => Some((pin.get("event_id"), pin.get("seat_count"), sell_seats(tx, &e.order_id).await?)),
            None => None,
        }
    };
    if let Some((event_id, pinned, rows)) = sold_at_once {
        anyhow::ensure!(rows.len() as i64 == pinned, "order {} lost seats while it sold", e.order_id);
        return seats_sold(tx, event_id, e.order_id, &rows).await;
    }
    let Some(event_id) = pin_the_long_way(tx, &e).await? else {
        return Ok(());
    };
    let rows = sell_seats(tx, &e.order_id).await?;
    let sold = formatcp!("UPDATE pins SET state = {PIN_SOLD} WHERE order_id = $1");
    sqlx::query(sold).bind(&e.order_id).execute(&mut **tx).await?;
    seats_sold(tx, event_id, e.order_id, &rows).await
}

/// A paid order whose pin was not sold at once: a seat lost, the pin gone or already
/// sold, or a pin made before `seat_count`. Returns the show to sell the seats of, or
/// `None` when there is nothing to sell (the failure, if any, is announced).
async fn pin_the_long_way(tx: &mut Tx, e: &PaymentSucceeded) -> anyhow::Result<Option<i64>> {
    // The pin and how many of its seats are still held for it, in one round trip. The
    // pin's row is locked first, as every other step on an order (its creation, its
    // cancellation) takes the pin before the seats: taken the other way round here, this
    // consumer and the orders' one deadlocked on PostgreSQL, a second lost each time.
    let Some(pin) = sqlx::query(formatcp!(
        "UPDATE pins SET state = state WHERE order_id = $1 RETURNING event_id, seat_ids, state, \
         (SELECT COUNT(*) FROM seats WHERE seats.order_id = pins.order_id AND seats.status = {HELD}) AS still_pinned"
    ))
    .bind(&e.order_id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        tracing::error!(order_id = %e.order_id, "payment for an order that pinned nothing here");
        let failed = SeatsSaleFailed { event_id: 0, order_id: e.order_id.clone(), reason: SaleFailReason::NoPin };
        outbox::append(tx, &failed).await?;
        return Ok(None);
    };
    let event_id: i64 = pin.get("event_id");
    let state: String = pin.get("state");
    let known = PinState::parse(&state);
    if known == Some(PinState::Sold) {
        return Ok(None);
    }
    let wanted: Vec<i64> = serde_json::from_str(&pin.get::<String, _>("seat_ids"))?;
    let still_pinned: i64 = pin.get("still_pinned");
    let holdable = matches!(known, Some(PinState::Leased | PinState::Confirmed));
    if !holdable || still_pinned != wanted.len() as i64 {
        sqlx::query(formatcp!("UPDATE pins SET state = {PIN_FAILED} WHERE order_id = $1"))
            .bind(&e.order_id)
            .execute(&mut **tx)
            .await?;
        tracing::warn!(order_id = %e.order_id, state, still_pinned, "paid order lost its seats");
        let reason = if holdable { SaleFailReason::SeatsLost } else { SaleFailReason::HoldsGone };
        metrics::counter!(crate::metrics::CONFIRM_FAILED).increment(1);
        let failed = SeatsSaleFailed { event_id, order_id: e.order_id.clone(), reason };
        outbox::append(tx, &failed).await?;
        return Ok(None);
    }
    Ok(Some(event_id))
}

/// Announces the order's seats sold.
async fn seats_sold(tx: &mut Tx, event_id: i64, order_id: String, rows: &[sqlx::any::AnyRow]) -> anyhow::Result<()> {
    metrics::counter!(crate::metrics::CONFIRM_SUCCESS).increment(1);
    outbox::append(tx, &SeatsSold { event_id, order_id, seats: versions(rows) }).await
}

/// Marks the order's held seats SOLD; returns them with their new versions.
async fn sell_seats(tx: &mut Tx, order_id: &str) -> anyhow::Result<Vec<sqlx::any::AnyRow>> {
    sqlx::query(&SELL_SEATS).bind(order_id).fetch_all(&mut **tx).await.context("failed to sell seats")
}

async fn order_cancelled(_: &Saga, tx: &mut Tx, e: OrderCancelled, cx: Cx<'_, Freed>) -> anyhow::Result<()> {
    sqlx::query(formatcp!(
        "UPDATE pins SET state = {PIN_RELEASED} WHERE order_id = $1 \
         AND state IN ({PIN_LEASED}, {PIN_CONFIRMED}, {PIN_SOLD})"
    ))
    .bind(&e.order_id)
    .execute(&mut **tx)
    .await?;
    let filter = formatcp!("order_id = $1 AND status <> {AVAILABLE}");
    let reason = ReleaseReason::OrderCancelled;
    cx.batch.push(free_seats(tx, filter, &e.order_id, Some(e.event_id), reason, Some(&e.order_id)).await?);
    Ok(())
}
