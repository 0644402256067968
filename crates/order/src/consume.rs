//! The order's side of the saga: settle each order from what the other modules report.
//!
//! - `PaymentSucceeded`: noted; the order waits for its seats to be sold.
//! - `PaymentFailed`: CANCELLED (the seats are then freed by Reservation).
//! - `SeatsSold`: CONFIRMED.
//! - `SeatsSaleFailed`, or its pin lapsing (`SeatsReleased` with `PIN_LAPSED`):
//!   CANCELLED (and Payment refunds what it took).
//! - `EventReset`: every order of the show made before the reset is CANCELLED.

use std::sync::Mutex;

use async_trait::async_trait;
use contract::api::OrderStatus;
use contract::events::{
    DomainEvent, Envelope, EventReset, OrderCancelled, OrderConfirmed, PaymentFailed, PaymentSucceeded, SeatsReleased,
    SeatsSaleFailed, SeatsSold,
};
use runtime::consumer::Handler;
use runtime::{Tx, outbox};

use crate::waiters::Settled;
use crate::{Orders, store};

/// One per consumer: `settled` belongs to that consumer's open transaction.
pub struct Saga {
    pub orders: Orders,
    /// Orders made final in the open transaction; their waiters are handed the final
    /// state once it commits.
    pub settled: Mutex<Vec<(String, Settled)>>,
}

/// Seconds since an order was accepted, into the final-state SLA histogram.
fn settled(status: &'static str, created_at: i64) {
    let seconds = (contract::now_millis() - created_at).max(0) as f64 / 1000.0;
    metrics::histogram!(crate::metrics::FINAL_STATE, "status" => status).record(seconds);
}

impl Saga {
    /// Notes that the open transaction makes the order final: this process's waiters are
    /// woken once it commits, and other replicas' by a notification sent with it (see
    /// `finish` and `Orders::listen_for_settlements`).
    fn settle(&self, order_id: &str, settled: Settled) {
        self.settled.lock().expect("settled lock").push((order_id.to_owned(), settled));
    }

    async fn cancel(&self, tx: &mut Tx, order_id: &str, reason: &str, also_confirmed: bool) -> anyhow::Result<()> {
        if let Some((event_id, created_at, order_no)) = store::cancel(tx, order_id, reason, also_confirmed).await? {
            tracing::info!(order_id, order_no, reason, "order cancelled");
            metrics::counter!(crate::metrics::CANCELLED, "reason" => reason.to_owned()).increment(1);
            settled("CANCELLED", created_at);
            let state = Settled { status: OrderStatus::Cancelled, cancel_reason: Some(reason.to_owned()) };
            self.settle(order_id, state);
            let cancelled = OrderCancelled {
                order_id: order_id.to_owned(),
                order_no: Some(order_no),
                event_id,
                reason: reason.to_owned(),
            };
            outbox::append(tx, &cancelled).await?;
        }
        Ok(())
    }
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
impl Handler for Saga {
    /// Every event here settles one order: its row is the lock. (The seats' events are
    /// keyed by show, so the default would order this consumer's locks by show and the
    /// payments' consumer's by order, and the two could deadlock.)
    fn lock_key(&self, event: &Envelope) -> String {
        order_of(event)
    }

    async fn apply(&self, tx: &mut Tx, event: &Envelope) -> anyhow::Result<()> {
        if let Some(e) = event.decode::<PaymentSucceeded>() {
            store::mark_paid(tx, &e?.order_id).await
        } else if let Some(e) = event.decode::<PaymentFailed>() {
            self.cancel(tx, &e?.order_id, "PAYMENT_FAILED", false).await
        } else if let Some(e) = event.decode::<SeatsSold>() {
            let e = e?;
            if let Some((event_id, created_at, order_no)) = store::confirm(tx, &e.order_id).await? {
                tracing::info!(order_id = %e.order_id, order_no, "order confirmed");
                metrics::counter!(crate::metrics::CONFIRMED).increment(1);
                settled("CONFIRMED", created_at);
                let state = Settled { status: OrderStatus::Confirmed, cancel_reason: None };
                self.settle(&e.order_id, state);
                outbox::append(tx, &OrderConfirmed { order_id: e.order_id, order_no: Some(order_no), event_id })
                    .await?;
            }
            Ok(())
        } else if let Some(e) = event.decode::<SeatsSaleFailed>() {
            self.cancel(tx, &e?.order_id, "SEATS_LOST", false).await
        } else if let Some(e) = event.decode::<SeatsReleased>() {
            match e? {
                SeatsReleased { reason, order_id: Some(order_id), .. } if reason == "PIN_LAPSED" => {
                    self.cancel(tx, &order_id, "HOLDS_LAPSED", false).await
                }
                _ => Ok(()),
            }
        } else if let Some(e) = event.decode::<EventReset>() {
            let e = e?;
            for order_id in store::live_orders_of_event(tx, e.event_id, e.reset_at).await? {
                self.cancel(tx, &order_id, "EVENT_RESET", true).await?;
            }
            Ok(())
        } else {
            Ok(())
        }
    }

    fn wants(&self, kind: &str) -> bool {
        [
            PaymentSucceeded::TYPE,
            PaymentFailed::TYPE,
            SeatsSold::TYPE,
            SeatsSaleFailed::TYPE,
            SeatsReleased::TYPE,
            EventReset::TYPE,
        ]
        .contains(&kind)
    }

    /// Tells the other replicas of the batch's settled orders, in one statement.
    async fn finish(&self, tx: &mut Tx) -> anyhow::Result<()> {
        let ids: Vec<String> = self.settled.lock().expect("settled lock").iter().map(|(id, _)| id.clone()).collect();
        self.orders.db.notify(tx, crate::SETTLED_CHANNEL, &ids).await
    }

    fn committed(&self) {
        self.orders.relay.wake();
        let settled = std::mem::take(&mut *self.settled.lock().expect("settled lock"));
        if let Some(admission) = &self.orders.admission {
            admission.settled(settled.iter().map(|(id, _)| id.as_str()));
        }
        self.orders.waiters.settled(settled);
    }

    fn aborted(&self) {
        self.settled.lock().expect("settled lock").clear();
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
