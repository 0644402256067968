//! Admission: how many of this process's orders may be settling at once.
//!
//! The original team's lesson was that answering fast and settling fast are two numbers:
//! their saga fell behind, and the backlog outlived every load test. Here an order is
//! accepted only while fewer than `limit` of the orders this process accepted are still
//! waiting for their final state; the next one waits at the door, in arrival order, so
//! that `POST /orders` takes longer instead of the order's settling. The limit adapts,
//! once per window of the target's length: a tenth less when more than one order in 20
//! took longer than the target, a twentieth more (and one) when the limit was reached
//! and they settled in time. Orders are counted settled when this process hears so: its
//! own saga's commit, or another replica's `NOTIFY` (see `Orders::listen_for_settlements`);
//! one never heard of stops counting after `FORGET_AFTER`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::metrics;

/// The fewest orders allowed to settle at once, however slow settling is.
const MIN_LIMIT: f64 = 8.0;
const MAX_LIMIT: f64 = 10_000.0;
const INITIAL_LIMIT: f64 = 64.0;
/// The fewest orders a window needs to move the limit.
const WINDOW_MIN: usize = 20;
/// An order this process never hears settle stops counting against the limit after this.
const FORGET_AFTER: Duration = Duration::from_secs(30);

pub struct Admission {
    /// Settling within this keeps the limit growing; over it shrinks it.
    target: Duration,
    /// The longest an order waits at the door before it is turned away (503).
    max_wait: Duration,
    /// One permit per order that may begin to settle now.
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    limit: f64,
    /// The limit as permits: those free, those of settling orders, and `debt`.
    granted: usize,
    /// Permits to take back as settling orders return them (the limit shrank below the
    /// orders already settling).
    debt: usize,
    settling: HashMap<String, Settling>,
    window: Window,
    last_sweep: Instant,
    /// Orders heard settled within the target since [`Admission::capacity`] last asked.
    in_time: usize,
}

/// An order counted against the limit.
struct Settling {
    /// When it was let in.
    since: Instant,
    /// The tickets for it: two requests with one idempotency key are one order, and
    /// the one that loses the race to write it gives its place back alone.
    tickets: usize,
}

/// The orders heard settled since `began`: the limit moves once per window.
struct Window {
    began: Instant,
    seen: usize,
    /// Those that took longer than the target.
    slow: usize,
    /// Whether the limit was reached in it.
    full: bool,
}

impl Window {
    fn new(began: Instant) -> Window {
        Window { began, seen: 0, slow: 0, full: false }
    }
}

/// Why an order was not let in.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Admission {
    pub fn new(target: Duration, max_wait: Duration) -> Arc<Admission> {
        let granted = INITIAL_LIMIT as usize;
        metrics::admission_limit(granted);
        let now = Instant::now();
        Arc::new(Admission {
            target,
            max_wait,
            permits: Semaphore::new(granted),
            state: Mutex::new(State {
                limit: INITIAL_LIMIT,
                granted,
                debt: 0,
                settling: HashMap::new(),
                window: Window::new(now),
                last_sweep: now,
                in_time: 0,
            }),
        })
    }

    /// Waits, in arrival order, until one more order may settle; `Busy` after `max_wait`.
    pub async fn admit(self: &Arc<Self>) -> Result<Ticket, Busy> {
        self.sweep();
        let started = Instant::now();
        let permit = tokio::time::timeout(self.max_wait, self.permits.acquire()).await;
        ::metrics::histogram!(metrics::ADMISSION_WAIT).record(started.elapsed().as_secs_f64());
        match permit {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(Ticket { admission: Some(self.clone()), order_id: None })
            }
            _ => {
                ::metrics::counter!(metrics::ADMISSION_REFUSED).increment(1);
                Err(Busy)
            }
        }
    }

    /// Orders heard settled: their permits return, and their time moves the limit.
    pub fn settled<'a>(&self, order_ids: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("admission lock");
        let mut returned = 0;
        for id in order_ids {
            let Some(order) = state.settling.remove(id) else { continue };
            returned += order.tickets;
            state.window.seen += 1;
            state.window.slow += usize::from(now - order.since > self.target);
            state.in_time += usize::from(now - order.since <= self.target);
        }
        // Only while the limit holds orders back may it grow: idle, it would grow unchecked.
        state.window.full |= returned > 0 && self.permits.available_permits() == 0;
        if now - state.window.began >= self.target && state.window.seen >= WINDOW_MIN {
            let window = std::mem::replace(&mut state.window, Window::new(now));
            if window.slow * 20 > window.seen {
                state.limit = (state.limit * 0.9).max(MIN_LIMIT);
            } else if window.full {
                state.limit = (state.limit * 1.05 + 1.0).min(MAX_LIMIT);
            }
        }
        self.give_back(&mut state, returned);
        self.resize(&mut state);
    }

    /// How many orders a second this process can settle within the target by its limit
    /// (Little's law: `limit` at once, each within the target), and how many it heard
    /// settled in time since the last call: what a waiting room in `auto` follows.
    pub fn capacity(&self) -> (f64, usize) {
        let mut state = self.state.lock().expect("admission lock");
        let per_second = state.limit / self.target.as_secs_f64().max(0.001);
        (per_second, std::mem::take(&mut state.in_time))
    }

    /// Forgets orders accepted longer ago than `FORGET_AFTER` (checked at most once a
    /// second, by whoever asks to be let in).
    fn sweep(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("admission lock");
        if now - state.last_sweep < Duration::from_secs(1) {
            return;
        }
        state.last_sweep = now;
        let mut forgotten = 0;
        state.settling.retain(|_, order| {
            let keep = now - order.since < FORGET_AFTER;
            forgotten += if keep { 0 } else { order.tickets };
            keep
        });
        self.give_back(&mut state, forgotten);
    }

    fn give_back(&self, state: &mut State, permits: usize) {
        let repaid = permits.min(state.debt);
        state.debt -= repaid;
        self.permits.add_permits(permits - repaid);
        metrics::settling(state.settling.len());
    }

    /// Makes the permits match the limit.
    fn resize(&self, state: &mut State) {
        let want = state.limit as usize;
        if want > state.granted {
            let more = want - state.granted;
            let repaid = more.min(state.debt);
            state.debt -= repaid;
            self.permits.add_permits(more - repaid);
        } else if want < state.granted {
            let fewer = state.granted - want;
            state.debt += fewer - self.permits.forget_permits(fewer);
        }
        if want != state.granted {
            state.granted = want;
            metrics::admission_limit(want);
        }
    }

    #[cfg(test)]
    fn limit(&self) -> usize {
        self.state.lock().expect("admission lock").granted
    }
}

/// One order let in. It counts against the limit from `for_order` until the order is
/// heard settled; dropped before `accepted` (the order was refused, or failed), it
/// lets the next one in.
pub struct Ticket {
    admission: Option<Arc<Admission>>,
    order_id: Option<String>,
}

impl Ticket {
    /// A ticket for a process without admission control.
    pub fn unlimited() -> Ticket {
        Ticket { admission: None, order_id: None }
    }

    /// The order this ticket is for, counted from now: before the order is written, so
    /// that a saga quicker than the writer's answer is heard all the same.
    pub fn for_order(&mut self, order_id: &str) {
        if let Some(admission) = &self.admission {
            let mut state = admission.state.lock().expect("admission lock");
            state
                .settling
                .entry(order_id.to_owned())
                .or_insert(Settling { since: Instant::now(), tickets: 0 })
                .tickets += 1;
            metrics::settling(state.settling.len());
            self.order_id = Some(order_id.to_owned());
        }
    }

    /// The order was accepted: it counts until it is heard settled.
    pub fn accepted(mut self) {
        self.admission = None;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(admission) = self.admission.take() else { return };
        let mut state = admission.state.lock().expect("admission lock");
        // Unless it was heard settled (or forgotten) already, which gave its place back.
        let counted = match &self.order_id {
            None => true,
            Some(id) => match state.settling.get_mut(id) {
                None => false,
                Some(order) if order.tickets > 1 => {
                    order.tickets -= 1;
                    true
                }
                Some(_) => state.settling.remove(id).is_some(),
            },
        };
        if counted {
            admission.give_back(&mut state, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(target_ms: u64, max_wait_ms: u64) -> Arc<Admission> {
        Admission::new(Duration::from_millis(target_ms), Duration::from_millis(max_wait_ms))
    }

    trait Accept {
        fn settling(self, order_id: &str);
    }

    impl Accept for Ticket {
        fn settling(mut self, order_id: &str) {
            self.for_order(order_id);
            self.accepted();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn orders_beyond_the_limit_wait_for_one_to_settle_and_then_go_in_arrival_order() {
        let a = admission(1_000, 60_000);
        fill(&a, "o", 64).await;
        let (first, second) = (a.clone(), a.clone());
        let first = tokio::spawn(async move { first.admit().await.map(|t| t.settling("late-1")) });
        tokio::task::yield_now().await;
        let second = tokio::spawn(async move { second.admit().await.map(|t| t.settling("late-2")) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!first.is_finished() && !second.is_finished(), "the limit holds both back");
        a.settled(["o3"]);
        first.await.unwrap().expect("the first to come goes in");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!second.is_finished(), "one settled order lets one in");
        a.settled(["o4"]);
        second.await.unwrap().expect("then the second");
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_that_waits_too_long_is_turned_away_and_takes_no_place() {
        let a = admission(1_000, 500);
        fill(&a, "o", 64).await;
        assert_eq!(a.admit().await.err(), Some(Busy));
        a.settled(["o0"]);
        a.admit().await.expect("the settled order's place is free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_dropped_before_its_order_was_accepted_lets_the_next_in() {
        let a = admission(1_000, 500);
        let mut tickets: Vec<Ticket> = futures_util::future::join_all((0..64).map(|_| a.admit()))
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        tickets[0].for_order("refused-after-its-id");
        assert_eq!(a.admit().await.err(), Some(Busy));
        drop(tickets);
        assert_eq!(a.state.lock().unwrap().settling.len(), 0);
        fill(&a, "o", 64).await; // refused orders do not count
        assert_eq!(a.admit().await.err(), Some(Busy), "and each place is given back once");
    }

    #[tokio::test(start_paused = true)]
    async fn two_requests_for_one_order_count_once_each_until_it_settles() {
        let a = admission(1_000, 500);
        let (mut winner, mut loser) = (a.admit().await.unwrap(), a.admit().await.unwrap());
        winner.for_order("same");
        loser.for_order("same");
        drop(loser); // lost the race to write the order
        winner.accepted();
        fill(&a, "o", 63).await;
        assert_eq!(a.admit().await.err(), Some(Busy), "the winner still counts");
        a.settled(["same"]);
        a.admit().await.expect("its place is free once it settles").settling("next");
        assert_eq!(a.admit().await.err(), Some(Busy), "and given back once");
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_heard_settled_before_its_answer_gives_its_place_back_once() {
        let a = admission(1_000, 500);
        let mut early = a.admit().await.unwrap();
        early.for_order("early");
        a.settled(["early"]);
        early.accepted();
        let mut failed = a.admit().await.unwrap();
        failed.for_order("failed");
        a.settled(["failed"]);
        drop(failed);
        for i in 0..64 {
            a.admit().await.expect("both places free").settling(&format!("o{i}"));
        }
        assert_eq!(a.admit().await.err(), Some(Busy), "and no more than the limit");
    }

    /// Lets in `n` orders, named `{prefix}0` on (64 `o`s: the initial limit).
    async fn fill(a: &Arc<Admission>, prefix: &str, n: usize) {
        for i in 0..n {
            a.admit().await.expect("within the limit").settling(&format!("{prefix}{i}"));
        }
    }

    fn settle(a: &Admission, ids: std::ops::Range<usize>) {
        let ids: Vec<String> = ids.map(|i| format!("o{i}")).collect();
        a.settled(ids.iter().map(String::as_str));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_settling_shrinks_the_limit_once_per_window() {
        let a = admission(100, 500);
        fill(&a, "o", 64).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        settle(&a, 0..20);
        assert_eq!(a.limit(), 57, "a tenth less, rounded down");
        settle(&a, 20..40);
        assert_eq!(a.limit(), 57, "not again within the window");
        tokio::time::sleep(Duration::from_millis(150)).await;
        settle(&a, 40..60);
        assert_eq!(a.limit(), 51);
        fill(&a, "n", 47).await;
        assert_eq!(a.admit().await.err(), Some(Busy), "4 + 47 settling: the limit");
    }

    #[tokio::test(start_paused = true)]
    async fn the_capacity_follows_the_limit_and_counts_orders_settled_in_time() {
        let a = admission(100, 500);
        let (per_second, in_time) = a.capacity();
        assert!((per_second - 640.0).abs() < 1e-6 && in_time == 0, "64 at once, each within 0.1 s: {per_second}");
        fill(&a, "o", 64).await;
        settle(&a, 0..10);
        tokio::time::sleep(Duration::from_millis(150)).await;
        settle(&a, 10..30);
        // The slow ones shrank the limit: a tenth less.
        let (per_second, in_time) = a.capacity();
        assert!((per_second - 576.0).abs() < 1e-6, "{per_second}");
        assert_eq!(in_time, 10);
        assert_eq!(a.capacity().1, 0, "counted once");
    }

    #[tokio::test(start_paused = true)]
    async fn fast_settling_grows_the_limit_only_while_it_holds_orders_back() {
        let a = admission(1_000, 500);
        // Idle: fast orders leave the limit as it is.
        for i in 0..300 {
            let id = format!("idle{i}");
            a.admit().await.unwrap().settling(&id);
            tokio::time::sleep(Duration::from_millis(10)).await;
            a.settled([id.as_str()]);
        }
        assert_eq!(a.limit(), 64);
        // Full, and settling in time: it grows once per window.
        let mut next = 0;
        let mut oldest = 0;
        for _ in 0..300 {
            while a.permits.available_permits() > 0 {
                a.admit().await.unwrap().settling(&format!("o{next}"));
                next += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            settle(&a, oldest..oldest + 1);
            oldest += 1;
        }
        assert!(a.limit() > 64 + 3, "grew: {}", a.limit());
        while a.permits.available_permits() > 0 {
            a.admit().await.unwrap().settling(&format!("o{next}"));
            next += 1;
        }
        assert_eq!(next - oldest, a.limit(), "as many settling as the limit");
        assert_eq!(a.admit().await.err(), Some(Busy));
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_never_heard_settling_stops_counting_after_a_while() {
        let a = admission(1_000, 100);
        fill(&a, "o", 64).await;
        assert_eq!(a.admit().await.err(), Some(Busy));
        tokio::time::sleep(FORGET_AFTER).await;
        a.admit().await.expect("forgotten orders free their places");
    }
}
