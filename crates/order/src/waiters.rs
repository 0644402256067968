//! Buyers waiting for their order to settle (`GET /orders/{id}?waitSeconds=N`).
//!
//! Polling an order every few milliseconds costs a request each time and still answers
//! late; a waiting request is woken the moment this process's saga commits the order's
//! final state. An order settled by another replica (distributed mode) wakes it through
//! PostgreSQL's NOTIFY (`Orders::listen_for_settlements`); notifications sent while the
//! listener reconnects are lost, so every waiting request is woken once it listens
//! again. The order is also re-read `RECHECK` after the first read, and then at doubling
//! intervals up to `RECHECK_MAX`, should a wake-up go astray all the same. (Re-reading
//! from 250 ms on, as this did before the wake on reconnecting, read each order about
//! four times under load on PostgreSQL.)

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// When a waiting request first reads its order again without being woken.
pub const RECHECK: Duration = Duration::from_secs(1);
/// The longest it then goes without reading it again.
pub const RECHECK_MAX: Duration = Duration::from_secs(2);

/// Order id → the requests waiting for it.
#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    /// The wake-up of `order_id`'s waiters, shared by all of them while any waits.
    pub fn watch(self: &Arc<Self>, order_id: &str) -> Watch {
        let notify = self.waiting.lock().expect("waiters lock").entry(order_id.to_owned()).or_default().clone();
        Watch { waiters: self.clone(), order_id: order_id.to_owned(), notify }
    }

    /// Wakes whoever waits for these orders.
    pub fn settled(&self, order_ids: impl IntoIterator<Item = String>) {
        let waiting = self.waiting.lock().expect("waiters lock");
        for id in order_ids {
            if let Some(notify) = waiting.get(&id) {
                notify.notify_waiters();
            }
        }
    }

    /// Wakes every waiting request, to read its order again.
    pub fn wake_all(&self) {
        for notify in self.waiting.lock().expect("waiters lock").values() {
            notify.notify_waiters();
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
    notify: Arc<Notify>,
}

impl Watch {
    /// The next wake-up. Create it before reading the order, so that a settlement
    /// committed between the read and the wait is not missed.
    pub fn notified(&self) -> Pin<Box<Notified<'_>>> {
        let mut notified = Box::pin(self.notify.notified());
        notified.as_mut().enable();
        notified
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut waiting = self.waiters.waiting.lock().expect("waiters lock");
        // Ours and the map's are the last two references: nobody else waits.
        if Arc::strong_count(&self.notify) == 2 {
            waiting.remove(&self.order_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settlement_wakes_a_waiter_registered_before_it() {
        let waiters = Arc::new(Waiters::default());
        let watch = waiters.watch("o1");
        let notified = watch.notified();
        waiters.settled(["o2".to_owned()]);
        waiters.settled(["o1".to_owned()]);
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("woken by the settlement");
    }

    #[tokio::test]
    async fn another_order_does_not_wake_a_waiter() {
        let waiters = Arc::new(Waiters::default());
        let watch = waiters.watch("o1");
        let notified = watch.notified();
        waiters.settled(["o2".to_owned()]);
        assert!(tokio::time::timeout(Duration::from_millis(50), notified).await.is_err());
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
