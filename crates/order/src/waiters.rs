//! Buyers waiting for their order to settle (`GET /orders/{id}?waitSeconds=N`).
//!
//! Polling an order every few milliseconds costs a request each time and still answers
//! late; a waiting request is woken the moment this process's saga commits the order's
//! final state, and is handed that state, so that it answers without reading the order
//! again (the rest of the order does not change once it is made). An order settled by
//! another replica (distributed mode) wakes it through PostgreSQL's NOTIFY
//! (`Orders::listen_for_settlements`), and it reads the order again; notifications sent
//! while the listener reconnects are lost, so every waiting request is woken once it
//! listens again. The order is also re-read `RECHECK` after the first read, and then at
//! doubling intervals up to `RECHECK_MAX`, should a wake-up go astray all the same.
//! (Re-reading from 250 ms on, as this did before the wake on reconnecting, read each
//! order about four times under load on PostgreSQL.)

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::api::OrderStatus;
use contract::reasons::CancelReason;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// When a waiting request first reads its order again without being woken.
pub const RECHECK: Duration = Duration::from_secs(1);
/// The longest it then goes without reading it again.
pub const RECHECK_MAX: Duration = Duration::from_secs(2);

/// The final state an order was given, as its waiters are told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub status: OrderStatus,
    pub cancel_reason: Option<CancelReason>,
}

/// What the requests waiting for one order share: their wake-up, and the final state
/// the order was given, when it was given here.
#[derive(Default)]
struct Slot {
    notify: Notify,
    settled: Mutex<Option<Settled>>,
}

/// Order id → the requests waiting for it.
#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Waiters {
    /// The wake-up of `order_id`'s waiters, shared by all of them while any waits.
    pub fn watch(self: &Arc<Self>, order_id: &str) -> Watch {
        let slot = self.waiting.lock().expect("waiters lock").entry(order_id.to_owned()).or_default().clone();
        Watch { waiters: self.clone(), order_id: order_id.to_owned(), slot }
    }

    /// Hands whoever waits for these orders the final state each was given (committed
    /// by now), and wakes them.
    pub fn settled(&self, orders: impl IntoIterator<Item = (String, Settled)>) {
        let waiting = self.waiting.lock().expect("waiters lock");
        for (id, settled) in orders {
            if let Some(slot) = waiting.get(&id) {
                *slot.settled.lock().expect("settled lock") = Some(settled);
                slot.notify.notify_waiters();
            }
        }
    }

    /// Wakes whoever waits for this order, to read it again (settled elsewhere).
    pub fn wake(&self, order_id: &str) {
        if let Some(slot) = self.waiting.lock().expect("waiters lock").get(order_id) {
            slot.notify.notify_waiters();
        }
    }

    /// Wakes every waiting request, to read its order again.
    pub fn wake_all(&self) {
        for slot in self.waiting.lock().expect("waiters lock").values() {
            slot.notify.notify_waiters();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.lock().expect("waiters lock").len()
    }
}

/// One request's registration; dropping it forgets the order once nobody waits for it.
pub struct Watch {
    waiters: Arc<Waiters>,
    order_id: String,
    slot: Arc<Slot>,
}

impl Watch {
    /// The next wake-up. Create it before reading the order, so that a settlement
    /// committed between the read and the wait is not missed.
    pub fn notified(&self) -> Pin<Box<Notified<'_>>> {
        let mut notified = Box::pin(self.slot.notify.notified());
        notified.as_mut().enable();
        notified
    }

    /// The final state this process gave the order since the watch began, if it did.
    pub fn settled(&self) -> Option<Settled> {
        self.slot.settled.lock().expect("settled lock").clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut waiting = self.waiters.waiting.lock().expect("waiters lock");
        // Ours and the map's are the last two references: nobody else waits.
        if Arc::strong_count(&self.slot) == 2 {
            waiting.remove(&self.order_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmed(id: &str) -> (String, Settled) {
        (id.to_owned(), Settled { status: OrderStatus::Confirmed, cancel_reason: None })
    }

    #[tokio::test]
    async fn a_settlement_wakes_a_waiter_registered_before_it_with_the_final_state() {
        let waiters = Arc::new(Waiters::default());
        let watch = waiters.watch("o1");
        let notified = watch.notified();
        let cancelled = Settled { status: OrderStatus::Cancelled, cancel_reason: Some(CancelReason::PaymentFailed) };
        waiters.settled([confirmed("o2")]);
        waiters.settled([("o1".to_owned(), cancelled.clone())]);
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("woken by the settlement");
        assert_eq!(watch.settled(), Some(cancelled));
    }

    #[tokio::test]
    async fn another_order_does_not_wake_a_waiter() {
        let waiters = Arc::new(Waiters::default());
        let watch = waiters.watch("o1");
        let notified = watch.notified();
        waiters.settled([confirmed("o2")]);
        assert!(tokio::time::timeout(Duration::from_millis(50), notified).await.is_err());
        assert_eq!(watch.settled(), None);
    }

    #[tokio::test]
    async fn a_wake_without_a_state_leaves_the_order_to_be_read() {
        let waiters = Arc::new(Waiters::default());
        let watch = waiters.watch("o1");
        let notified = watch.notified();
        waiters.wake("o1");
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("woken");
        assert_eq!(watch.settled(), None);
    }

    #[tokio::test]
    async fn waking_all_wakes_every_waiter() {
        let waiters = Arc::new(Waiters::default());
        let (a, b) = (waiters.watch("o1"), waiters.watch("o2"));
        let (a, b) = (a.notified(), b.notified());
        waiters.wake_all();
        tokio::time::timeout(Duration::from_secs(1), a).await.expect("o1's waiter woken");
        tokio::time::timeout(Duration::from_secs(1), b).await.expect("o2's waiter woken");
    }

    #[test]
    fn the_last_watch_dropped_forgets_the_order() {
        let waiters = Arc::new(Waiters::default());
        let a = waiters.watch("o1");
        let b = waiters.watch("o1");
        drop(a);
        assert_eq!(waiters.len(), 1);
        drop(b);
        assert_eq!(waiters.len(), 0);
    }
}
