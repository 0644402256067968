//! Order: a buyer's order for held seats, and the saga that settles it.
//!
//! Creating an order pins the buyer's holds in the reservation module (the one
//! synchronous call between modules) and then writes the order with `OrderCreated` in
//! one transaction. From there events drive it: a failed payment or lost seats cancel
//! it, sold seats confirm it. Idempotency keys make a retried request return the first
//! answer, even across a crash between the pin and the write.

mod admission;
mod consume;
mod http;
pub mod metrics;
mod module;
mod refund;
pub mod states;
mod store;
mod waiters;

use std::sync::Arc;
use std::time::Duration;

use contract::ErrorCode;
use contract::api::{CreateOrder, Order};
use contract::events::{
    CATALOG_TOPIC, OrderCreated, OrderNumbered, PAYMENT_TOPIC, RESERVATION_TOPIC, WAITINGROOM_TOPIC,
};
use contract::holds::{Holds, PinError, PinRefused, PinRequest};
use runtime::clock::Clock;
use runtime::consumer::Consumer;
use runtime::db::Backend;
use runtime::health::{Check, outbox_check};
use runtime::outbox::{self, Relay};
use runtime::{Db, bus::Bus};
use sha2::Digest;

pub use http::router;
pub use module::SPEC;
pub use store::MIGRATIONS;

/// The consumer group of this module, and the topics it reads (also what `boxoffice
/// replay` rewinds).
pub const GROUP: &str = "order";
pub const CONSUMES: [&str; 4] = [PAYMENT_TOPIC, RESERVATION_TOPIC, CATALOG_TOPIC, WAITINGROOM_TOPIC];

/// Where the replicas of this module (on PostgreSQL) hear of each other's settled orders.
const SETTLED_CHANNEL: &str = "boxoffice_order_settled";

/// An order whose seats are pinned, yet to be recorded under its key.
struct Accepted {
    order_id: String,
    /// Which use of the key this is (a key may make a new order once it expired).
    generation: i64,
    /// The request's hash, to tell a repeat of the key from another body under it.
    hash: String,
    amount: i64,
}

#[derive(Clone)]
pub struct Orders {
    db: Db,
    relay: Relay,
    holds: Arc<dyn Holds>,
    /// An order still CREATED after this long counts as stuck.
    stuck_after: Duration,
    max_seats: usize,
    /// How long an idempotency key is remembered.
    key_ttl: Duration,
    waiters: Arc<waiters::Waiters>,
    /// Keeps the saga's backlog short (see `admission`); None lets every order in.
    admission: Option<Arc<admission::Admission>>,
    /// What orders and their keys are timed by (a key's life, an order's age).
    clock: Clock,
    /// Each show's on-sale time and waiting room, as the waiting room announced them.
    doors: runtime::door::Doors,
}

/// How often the admission control's capacity is reported (`OrderCapacity`).
const CAPACITY_EVERY: Duration = Duration::from_secs(5);

/// The longest an order waits to be let in before it is turned away with 503.
const ADMISSION_MAX_WAIT: Duration = Duration::from_secs(10);

/// What a key's earlier use says about a request: answer as before, or make a new order.
enum Replay {
    Answer(Result<Created, PinRefused>),
    Fresh { generation: i64 },
}

/// What `create` did: made the order, or found the one the same key made before.
pub enum Created {
    New(Order),
    Replayed(Order),
}

impl Orders {
    pub fn new(db: Db, bus: Arc<dyn Bus>, holds: Arc<dyn Holds>, max_seats: usize, key_ttl: Duration) -> Self {
        let relay = Relay::new("order", db.clone(), bus);
        Orders {
            db,
            relay,
            holds,
            stuck_after: Duration::from_secs(60),
            max_seats,
            key_ttl,
            waiters: Default::default(),
            admission: None,
            clock: Clock::system(),
            doors: runtime::door::Doors::new("order"),
        }
    }

    /// Times orders and idempotency keys by `clock` (a manual one in tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Lets orders in only while those settling settle within `target` (see `admission`).
    pub fn with_settle_target(mut self, target: Duration) -> Self {
        self.admission = Some(admission::Admission::new(target, ADMISSION_MAX_WAIT));
        self
    }

    /// Every few seconds, the admission control's capacity on the bus (`OrderCapacity`),
    /// which a waiting room in `auto` lets visitors through by; nothing without a settle
    /// target.
    pub fn report_capacity(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let admission = self.admission.clone()?;
        let (db, relay, clock) = (self.db.clone(), self.relay.clone(), self.clock.clone());
        let reporter = uuid::Uuid::new_v4().simple().to_string();
        Some(async move {
            let mut every = tokio::time::interval(CAPACITY_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = tokio::time::Instant::now();
            loop {
                every.tick().await;
                let (per_second, in_time) = admission.capacity();
                let span = last.elapsed().as_secs_f64().max(0.001);
                last = tokio::time::Instant::now();
                let report = contract::events::OrderCapacity {
                    reporter: reporter.clone(),
                    per_second,
                    settled_per_second: in_time as f64 / span,
                    reported_at: clock.now_millis(),
                };
                let sent = async {
                    let mut tx = db.begin().await?;
                    outbox::append(&mut tx, &report).await?;
                    tx.commit().await?;
                    anyhow::Ok(())
                };
                match sent.await {
                    Ok(()) => relay.wake(),
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "capacity report failed"),
                }
            }
        })
    }

    /// On PostgreSQL, a task that wakes this process's waiting requests when any replica
    /// settles their order, and all of them whenever it begins to listen (settlements
    /// may have gone unheard before). None on SQLite, where this process settles every
    /// order.
    pub fn listen_for_settlements(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (waiters, admission) = (self.waiters.clone(), self.admission.clone());
        self.db.listen(SETTLED_CHANNEL, move |order_id| match order_id {
            Some(order_id) => {
                waiters.wake(order_id);
                if let Some(admission) = &admission {
                    admission.settled([order_id]);
                }
            }
            None => waiters.wake_all(),
        })
    }

    pub fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        let handler = Arc::new(consume::handlers(self.clone()));
        CONSUMES
            .into_iter()
            .map(|topic| Consumer {
                db: self.db.clone(),
                bus: bus.clone(),
                topic,
                group: GROUP,
                handler: handler.clone(),
            })
            .collect()
    }

    /// The order id a buyer's idempotency key stands for, in the key's `generation`
    /// (the next one each time the key expires). Deriving it (rather than drawing it)
    /// makes a retry after a crash pin and write the very same order.
    fn order_id(buyer: &str, key: &str, generation: i64) -> String {
        let name = match generation {
            0 => format!("boxoffice-order\n{buyer}\n{key}"),
            n => format!("boxoffice-order\n{buyer}\n{key}\n{n}"),
        };
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
    }

    fn request_hash(req: &CreateOrder) -> String {
        let mut seats = req.seat_ids.clone();
        seats.sort_unstable();
        hex::encode(sha2::Sha256::digest(format!("{}:{seats:?}", req.event_id)))
    }

    pub async fn create(&self, buyer: &str, key: &str, req: &CreateOrder) -> Result<Created, PinError> {
        let hash = Self::request_hash(req);
        let generation = match self.replay(buyer, key, &hash).await? {
            Replay::Answer(answer) => return Ok(answer?),
            Replay::Fresh { generation } => generation,
        };
        let mut ticket = match &self.admission {
            None => admission::Ticket::unlimited(),
            Some(admission) => match admission.admit().await {
                Ok(ticket) => ticket,
                Err(admission::Busy) => {
                    return Err(PinRefused { code: ErrorCode::Unavailable, message: BUSY.into() }.into());
                }
            },
        };
        let order_id = Self::order_id(buyer, key, generation);
        ticket.for_order(&order_id);
        let pin = PinRequest {
            order_id: order_id.clone(),
            buyer: buyer.to_owned(),
            event_id: req.event_id,
            seat_ids: req.seat_ids.clone(),
        };
        let pinned = self.holds.pin(pin).await?;
        let amount: i64 = pinned.seats.iter().map(|s| s.price).sum();
        let accepted = Accepted { order_id, generation, hash, amount };
        let (this, buyer, key, req) = (self.clone(), buyer.to_owned(), key.to_owned(), req.clone());
        let created = self.db.on_writer(async move { this.record(&buyer, &key, &req, accepted).await }).await?;
        if let Created::New(_) = created {
            ticket.accepted();
        }
        Ok(created)
    }

    /// Records the pinned order and its `OrderCreated` event.
    async fn record(&self, buyer: &str, key: &str, req: &CreateOrder, accepted: Accepted) -> Result<Created, PinError> {
        let Accepted { order_id, generation, hash, amount } = accepted;
        let mut seat_ids = req.seat_ids.clone();
        seat_ids.sort_unstable();
        let now = self.clock.now_millis();
        let mut row = store::NewOrder {
            order_id: &order_id,
            order_no: 0,
            buyer,
            event_id: req.event_id,
            seat_ids: &seat_ids,
            amount,
            key,
            key_generation: generation,
            hash: &hash,
            now,
        };
        let mut created = OrderCreated {
            order_id: order_id.clone(),
            order_no: None,
            event_id: req.event_id,
            seat_ids: seat_ids.clone(),
            amount,
            buyer: buyer.to_owned(),
            created_at: now,
        };
        let inserted = if self.db.backend() == Backend::Postgres {
            row.order_no = store::draw_number(self.db.writer()).await?;
            created.order_no = Some(row.order_no);
            store::insert_announced(self.db.writer(), &row, outbox::OutboxRow::of(&created)?).await?
        } else {
            let mut tx = self.db.begin().await?;
            row.order_no = store::next_number(&mut tx).await?;
            created.order_no = Some(row.order_no);
            let inserted = store::insert(&mut tx, &row).await?;
            if inserted {
                outbox::append(&mut tx, &created).await?;
                tx.commit().await?;
            }
            inserted
        };
        if !inserted {
            // The same key raced us and won: answer as it did.
            return match self.replay(buyer, key, &hash).await? {
                Replay::Answer(answer) => Ok(answer?),
                Replay::Fresh { .. } => {
                    Err(anyhow::anyhow!("order {order_id} collided with an expired key's order").into())
                }
            };
        }
        self.relay.wake();
        let order_no = row.order_no;
        tracing::info!(order_id, order_no, event_id = req.event_id, seats = seat_ids.len(), amount, "order created");
        let order = Order {
            order_id: order_no,
            status: contract::api::OrderStatus::Created,
            event_id: req.event_id,
            seat_ids,
            created_at: contract::rfc3339(now),
            amount,
            cancel_reason: None,
        };
        Ok(Created::New(order))
    }

    /// The first answer of a key still remembered (or its refusal: another body under
    /// the same key), else the generation a new order of this key takes.
    async fn replay(&self, buyer: &str, key: &str, hash: &str) -> anyhow::Result<Replay> {
        // Readers see every committed order: enough to find the first answer.
        let Some(used) = store::by_key(self.db.reader(), buyer, key).await? else {
            return Ok(Replay::Fresh { generation: 0 });
        };
        if used.created_at < self.clock.now_millis() - self.key_ttl.as_millis() as i64 {
            return Ok(Replay::Fresh { generation: used.generation + 1 });
        }
        if used.request_hash != hash {
            return Ok(Replay::Answer(Err(PinRefused {
                code: ErrorCode::IdempotencyKeyReused,
                message: "this Idempotency-Key was used with a different request".into(),
            })));
        }
        Ok(Replay::Answer(Ok(Created::Replayed(first_answer(used.order)))))
    }

    /// The order numbered `order_no`, if `buyer` owns it. Another buyer's order is not
    /// found either: its number tells a prober nothing.
    async fn owned(&self, buyer: &str, order_no: i64) -> anyhow::Result<Option<store::Stored>> {
        Ok(store::get(self.db.reader(), order_no).await?.filter(|s| s.buyer == buyer))
    }

    pub async fn get(&self, buyer: &str, order_no: i64) -> anyhow::Result<Option<Order>> {
        Ok(self.owned(buyer, order_no).await?.map(|s| s.order))
    }

    /// Like `get`, but an order not final yet is read again when it settles, until it is
    /// final or `wait` has passed.
    pub async fn wait_final(&self, buyer: &str, order_no: i64, wait: Duration) -> anyhow::Result<Option<Order>> {
        let deadline = tokio::time::Instant::now() + wait;
        let Some(first) = self.owned(buyer, order_no).await? else { return Ok(None) };
        if first.order.status != contract::api::OrderStatus::Created {
            return Ok(Some(first.order));
        }
        let watch = self.waiters.watch(&first.order_ref);
        let mut recheck = waiters::RECHECK;
        loop {
            let notified = watch.notified();
            let found = self.get(buyer, order_no).await?;
            let pending = match &found {
                Some(o) if o.status == contract::api::OrderStatus::Created => o,
                _ => return Ok(found),
            };
            if tokio::time::Instant::now() >= deadline {
                return Ok(found);
            }
            let until = deadline.min(tokio::time::Instant::now() + recheck);
            recheck = (recheck * 2).min(waiters::RECHECK_MAX);
            let _ = tokio::time::timeout_at(until, notified).await;
            // Settled here: the rest of the order is as read, and the buyer's.
            if let Some(settled) = watch.settled() {
                let order = Order { status: settled.status, cancel_reason: settled.cancel_reason, ..pending.clone() };
                return Ok(Some(order));
            }
        }
    }

    /// Announces, once, the numbers the upgrade that brought them gave to orders written
    /// before (`OrderNumbered`), so that the modules keeping numbers learn them. Returns
    /// how many it announced.
    pub async fn announce_numbers(&self) -> anyhow::Result<usize> {
        let mut announced = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let batch = store::unannounced_numbers(&mut tx).await?;
            if batch.is_empty() {
                tx.rollback().await?;
                break;
            }
            for (order_id, order_no) in &batch {
                outbox::append(&mut tx, &OrderNumbered { order_id: order_id.clone(), order_no: *order_no }).await?;
                store::number_announced(&mut tx, order_id).await?;
            }
            tx.commit().await?;
            self.relay.wake();
            announced += batch.len();
        }
        if announced > 0 {
            tracing::info!(orders = announced, "numbers of orders from before the upgrade announced");
        }
        Ok(announced)
    }

    /// Orders not final yet.
    pub async fn in_flight(&self) -> anyhow::Result<i64> {
        store::in_flight(self.db.reader()).await
    }

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        let stuck_before = self.clock.now_millis() - self.stuck_after.as_millis() as i64;
        Ok(vec![
            Check::count(
                "orders_reach_a_final_state",
                store::stuck(self.db.reader(), stuck_before).await?,
                "orders still CREATED after 60 s",
            ),
            Check::count(
                "confirmed_orders_are_paid",
                store::confirmed_unpaid(self.db.reader()).await?,
                "CONFIRMED orders without a payment",
            ),
            outbox_check(&self.relay).await?,
        ])
    }
}

/// Why an order waited in vain to be let in.
const BUSY: &str = "too many orders are settling; retry shortly";

/// The answer `POST /orders` gave: the order as it was when accepted.
fn first_answer(mut order: Order) -> Order {
    order.status = contract::api::OrderStatus::Created;
    order.cancel_reason = None;
    order
}
