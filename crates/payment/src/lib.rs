//! Payment: charging the buyer for an order, and refunding when the order cannot stand.
//!
//! `OrderCreated` records a REQUESTED payment; a worker pool then calls the gateway for
//! many payments at once (the original called it one order at a time, once a second),
//! each call claimed with a lease so a crash or a second replica retries it rather than
//! losing it. The gateway is asked with the payment id as its idempotency key, so a
//! retry never charges twice. The simulated gateway has the original's knobs: latency
//! and success rate, and faults (errors, calls that never answer) for testing.
//!
//! A slow or failing gateway: each call is bounded by [`GatewayPolicy::call_timeout`];
//! a timeout or an error is retried with exponential back-off and jitter while the
//! payment is younger than [`GatewayPolicy::deadline`]. Past it the payment is FAILED
//! (its order is then cancelled and its seats released) and the charge is voided at the
//! gateway, so a call that was carried out but never answered keeps no money; a success
//! that arrives after the payment failed is refunded the same way.

mod consume;
mod gateway;
mod http;
pub mod metrics;
mod module;
pub mod states;
#[cfg(test)]
mod tests;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use const_format::formatcp;
use contract::events::ORDER_TOPIC;
use runtime::consumer::Consumer;
use runtime::db::Migrations;
use runtime::health::{Check, outbox_check};
use runtime::outbox::Relay;
use runtime::{Db, bus::Bus};
use tokio::sync::Notify;

pub use gateway::{Gateway, SimulatedGateway};

pub use http::router;
pub use module::SPEC;

use crate::states::{FAILED, REQUESTED, SUCCEEDED};

/// The consumer group of this module, and the topics it reads (also what `boxoffice
/// replay` rewinds).
pub const GROUP: &str = "payment";
pub const CONSUMES: [&str; 1] = [ORDER_TOPIC];

/// The payments with a gateway call still to make: to charge, to refund, to void. The
/// first term repeats the `payments_pending` index's condition: SQLite cannot prove that
/// the second (an OR of conjunctions) implies it, and would scan every payment ever made
/// instead of searching that partial index.
const PENDING: &str = formatcp!(
    "(status = {REQUESTED} OR cancel_requested = 1 OR void_requested = 1) \
    AND (status = {REQUESTED} OR (status = {SUCCEEDED} AND cancel_requested = 1) OR (status = {FAILED} AND void_requested = 1))"
);

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

#[derive(Clone)]
pub struct Payments {
    db: Db,
    relay: Relay,
    gateway: Arc<dyn Gateway>,
    policy: GatewayPolicy,
    /// Woken when new payments are requested.
    work: Arc<Notify>,
    /// Whether this process is the only worker of its database (the embedded mode), and
    /// so voids every claim on gateway calls as it starts.
    sole_worker: bool,
}

/// How the workers treat a slow or failing gateway.
#[derive(Debug, Clone, Copy)]
pub struct GatewayPolicy {
    /// The longest one gateway call may take; then it counts as failed and is retried.
    pub call_timeout: Duration,
    /// How long after it was requested a payment may still be tried; then it is FAILED.
    pub deadline: Duration,
    /// The wait before the first retry; it doubles with each further one (up to
    /// `backoff_max`), and a random part of it is left out (jitter).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for GatewayPolicy {
    fn default() -> Self {
        GatewayPolicy {
            call_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl GatewayPolicy {
    /// How long a claimed payment is left to its worker before another may take it: two
    /// calls (a charge, then a refund) and some slack.
    fn lease(&self) -> Duration {
        (self.call_timeout * 2 + Duration::from_secs(10)).max(Duration::from_secs(30))
    }

    /// The wait after `attempts` calls of a payment: exponential, with jitter.
    fn backoff(&self, attempts: i64) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
        let full = self.backoff_base.saturating_mul(1 << doublings).min(self.backoff_max);
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// A payment still REQUESTED this long after its creation is stuck: past its deadline
    /// by more than a lease (a worker that died mid-call) and a poll.
    fn stuck_after(&self) -> Duration {
        (self.deadline + self.lease() + Duration::from_secs(30)).max(Duration::from_secs(60))
    }
}

impl Payments {
    pub fn new(db: Db, bus: Arc<dyn Bus>, gateway: Arc<dyn Gateway>) -> Self {
        let relay = Relay::new("payment", db.clone(), bus);
        Payments {
            db,
            relay,
            gateway,
            policy: GatewayPolicy::default(),
            work: Arc::new(Notify::new()),
            sole_worker: false,
        }
    }

    /// The same, with this policy for a slow or failing gateway.
    pub fn with_policy(mut self, policy: GatewayPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same, as the only worker of its database: claims on gateway calls found as it
    /// starts were made by its own previous life, which is dead (see
    /// [`Payments::reclaim_abandoned_calls`]). Replicas instead wait for each other's
    /// leases to run out.
    pub fn as_sole_worker(mut self, sole: bool) -> Self {
        self.sole_worker = sole;
        self
    }

    pub fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        let [topic] = CONSUMES;
        vec![Consumer {
            db: self.db.clone(),
            bus,
            topic,
            group: GROUP,
            handler: Arc::new(consume::handlers(self.clone())),
        }]
    }

    /// Gateway calls still to make: payments to charge, refunds to give.
    pub async fn pending(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) FROM payments WHERE {PENDING}"))
            .fetch_one(self.db.reader())
            .await?)
    }

    /// Voids every claim on gateway calls. Only for a process that is the single worker
    /// of this database (the embedded mode): the claims it finds were made by its own
    /// previous life, which is dead, so their calls are retried now rather than when
    /// the leases run out.
    pub async fn reclaim_abandoned_calls(&self) -> anyhow::Result<u64> {
        let n = sqlx::query("UPDATE payments SET lease_until = NULL WHERE lease_until IS NOT NULL")
            .execute(self.db.writer())
            .await?
            .rows_affected();
        if n > 0 {
            tracing::info!(payments = n, "retrying gateway calls a previous process left unfinished");
        }
        Ok(n)
    }

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        let stuck_before = contract::now_millis() - self.policy.stuck_after().as_millis() as i64;
        let stuck: i64 = sqlx::query_scalar(formatcp!(
            "SELECT COUNT(*) FROM payments WHERE status = {REQUESTED} AND created_at < $1"
        ))
        .bind(stuck_before)
        .fetch_one(self.db.reader())
        .await?;
        Ok(vec![
            Check::count("payments_reach_a_final_state", stuck, "payments still REQUESTED well past their deadline"),
            outbox_check(&self.relay).await?,
        ])
    }
}
