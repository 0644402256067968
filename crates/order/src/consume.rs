//! The order's side of the saga: settle each order from what the other modules report.
//!
//! - `PaymentSucceeded`: noted; the order waits for its seats to be sold.
//! - `PaymentFailed`: CANCELLED (the seats are then freed by Reservation).
//! - `SeatsSold`: CONFIRMED.
//! - `SeatsSaleFailed`, or its pin lapsing (`SeatsReleased` with `PIN_LAPSED`):
//!   CANCELLED (and Payment refunds what it took).
//! - `EventReset`: every order of the show made before the reset is CANCELLED.
//! - `RoomSettingsChanged`: a show's on-sale time and waiting room, which orders must pass;
//!   `EventCreated` of a show created with them, the same.

use async_trait::async_trait;
use contract::api::OrderStatus;
use contract::events::{
    Envelope, EventCreated, EventReset, OrderCancelled, OrderConfirmed, PaymentFailed, PaymentSucceeded,
    RoomSettingsChanged, SeatsReleased, SeatsSaleFailed, SeatsSold,
};
use contract::reasons::{CancelReason, ReleaseReason};
use runtime::consumer::{Cx, Handlers, Reactor};
use runtime::{Tx, outbox};

use crate::waiters::Settled;
use crate::{Orders, store};

pub struct Saga {
    pub orders: Orders,
}

/// Orders made final in a transaction; their waiters are handed the final state once it
/// commits.
type Batch = Vec<(String, Settled)>;

/// The saga's consumer: one handler per event type it reacts to.
pub fn handlers(orders: Orders) -> Handlers<Saga> {
    Handlers::new(Saga { orders })
        .on::<PaymentSucceeded>(payment_succeeded)
        .on::<PaymentFailed>(payment_failed)
        .on::<SeatsSold>(seats_sold)
        .on::<SeatsSaleFailed>(seats_sale_failed)
        .on::<SeatsReleased>(seats_released)
        .on::<EventReset>(event_reset)
        .on::<RoomSettingsChanged>(room_settings_changed)
        .on::<EventCreated>(event_created)
}

/// A show created with an on-sale time or a room: orders are checked against it.
async fn event_created(s: &Saga, tx: &mut Tx, e: EventCreated, _: Cx<'_, Batch>) -> anyhow::Result<()> {
    match e.door() {
        Some(door) => s.orders.doors.apply(tx, &door).await,
        None => Ok(()),
    }
}

/// A show's on-sale time or waiting room changed: orders are checked against it.
async fn room_settings_changed(s: &Saga, tx: &mut Tx, e: RoomSettingsChanged, _: Cx<'_, Batch>) -> anyhow::Result<()> {
    s.orders.doors.apply(tx, &e).await
}

/// Seconds since an order was accepted, into the final-state SLA histogram.
fn settled(status: OrderStatus, created_at: i64) {
    let seconds = (contract::now_millis() - created_at).max(0) as f64 / 1000.0;
    metrics::histogram!(crate::metrics::FINAL_STATE, "status" => status.as_str()).record(seconds);
}

async fn payment_succeeded(_: &Saga, tx: &mut Tx, e: PaymentSucceeded, _: Cx<'_, Batch>) -> anyhow::Result<()> {
    store::mark_paid(tx, &e.order_id).await
}

async fn payment_failed(_: &Saga, tx: &mut Tx, e: PaymentFailed, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    cancel(tx, cx.batch, &e.order_id, CancelReason::PaymentFailed, false).await
}

async fn seats_sold(_: &Saga, tx: &mut Tx, e: SeatsSold, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    if let Some((event_id, created_at, order_no)) = store::confirm(tx, &e.order_id).await? {
        tracing::info!(order_id = %e.order_id, order_no, "order confirmed");
        metrics::counter!(crate::metrics::CONFIRMED).increment(1);
        settled(OrderStatus::Confirmed, created_at);
        let state = Settled { status: OrderStatus::Confirmed, cancel_reason: None };
        cx.batch.push((e.order_id.clone(), state));
        outbox::append(tx, &OrderConfirmed { order_id: e.order_id, order_no: Some(order_no), event_id }).await?;
    }
    Ok(())
}

async fn seats_sale_failed(_: &Saga, tx: &mut Tx, e: SeatsSaleFailed, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    cancel(tx, cx.batch, &e.order_id, CancelReason::SeatsLost, false).await
}

async fn seats_released(_: &Saga, tx: &mut Tx, e: SeatsReleased, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    match e {
        SeatsReleased { reason: ReleaseReason::PinLapsed, order_id: Some(order_id), .. } => {
            cancel(tx, cx.batch, &order_id, CancelReason::HoldsLapsed, false).await
        }
        _ => Ok(()),
    }
}

async fn event_reset(_: &Saga, tx: &mut Tx, e: EventReset, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    for order_id in store::live_orders_of_event(tx, e.event_id, e.reset_at).await? {
        cancel(tx, cx.batch, &order_id, CancelReason::EventReset, true).await?;
    }
    Ok(())
}

/// Cancels the order, noting in `batch` that the transaction makes it final: this
/// process's waiters are woken once it commits, and other replicas' by a notification
/// sent with it (see `finish` and `Orders::listen_for_settlements`).
async fn cancel(
    tx: &mut Tx,
    batch: &mut Batch,
    order_id: &str,
    reason: CancelReason,
    also_confirmed: bool,
) -> anyhow::Result<()> {
    if let Some((event_id, created_at, order_no)) = store::cancel(tx, order_id, &reason, also_confirmed).await? {
        tracing::info!(order_id, order_no, reason = reason.as_str(), "order cancelled");
        metrics::counter!(crate::metrics::CANCELLED, "reason" => reason.to_string()).increment(1);
        settled(OrderStatus::Cancelled, created_at);
        let state = Settled { status: OrderStatus::Cancelled, cancel_reason: Some(reason.clone()) };
        batch.push((order_id.to_owned(), state));
        let cancelled = OrderCancelled { order_id: order_id.to_owned(), order_no: Some(order_no), event_id, reason };
        outbox::append(tx, &cancelled).await?;
    }
    Ok(())
}

/// The order an event is about, or else its aggregate.
fn order_of(event: &Envelope) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct About {
        order_id: Option<String>,
    }
    match serde_json::from_str::<About>(event.payload.get()) {
        Ok(About { order_id: Some(order_id) }) => order_id,
        _ => event.aggregate_id.clone(),
    }
}

#[async_trait]
impl Reactor for Saga {
    type Batch = Batch;

    /// Every event here settles one order: its row is the lock. (The seats' events are
    /// keyed by show, so the default would order this consumer's locks by show and the
    /// payments' consumer's by order, and the two could deadlock.)
    fn lock_key(&self, event: &Envelope) -> String {
        order_of(event)
    }

    /// Tells the other replicas of the batch's settled orders, in one statement.
    async fn finish(&self, tx: &mut Tx, batch: &Batch) -> anyhow::Result<()> {
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        self.orders.db.notify(tx, crate::SETTLED_CHANNEL, &ids).await
    }

    fn committed(&self, settled: Batch) {
        self.orders.relay.wake();
        if let Some(admission) = &self.orders.admission {
            admission.settled(settled.iter().map(|(id, _)| id.as_str()));
        }
        self.orders.waiters.settled(settled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_locks_its_orders_row_whatever_its_aggregate() {
        let sold = SeatsSold { event_id: 7, order_id: "o-1".into(), seats: vec![] };
        let envelope = Envelope::wrap(&sold, 0, None);
        assert_eq!(envelope.aggregate_id, "7");
        assert_eq!(order_of(&envelope), "o-1");
        let reset = Envelope::wrap(&EventReset { event_id: 7, reset_at: 0 }, 0, None);
        assert_eq!(order_of(&reset), "7");
    }
}
