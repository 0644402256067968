//! Payment: charging the buyer for an order, and refunding when the order cannot stand.
//!
//! `OrderCreated` records a REQUESTED payment; a worker pool then calls the gateway for
//! many payments at once (the original called it one order at a time, once a second),
//! each call claimed with a lease so a crash or a second replica retries it rather than
//! losing it. The gateway is asked with the payment id as its idempotency key, so a
//! retry never charges twice. The simulated gateway has the original's knobs: latency
//! and success rate.

mod consume;
mod gateway;
mod http;
pub mod metrics;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use contract::events::ORDER_TOPIC;
use runtime::consumer::Consumer;
use runtime::db::Migrations;
use runtime::health::{Check, outbox_check};
use runtime::outbox::Relay;
use runtime::{Db, bus::Bus};
use tokio::sync::Notify;

pub use gateway::{Gateway, SimulatedGateway};
pub use http::router;

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

#[derive(Clone)]
pub struct Payments {
    db: Db,
    relay: Relay,
    gateway: Arc<dyn Gateway>,
    /// Woken when new payments are requested.
    work: Arc<Notify>,
}

/// How long a claimed gateway call may take before another worker may retry it.
const LEASE: Duration = Duration::from_secs(30);

impl Payments {
    pub fn new(db: Db, bus: Arc<dyn Bus>, gateway: Arc<dyn Gateway>) -> Self {
        let relay = Relay::new("payment", db.clone(), bus);
        Payments { db, relay, gateway, work: Arc::new(Notify::new()) }
    }

    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// True when the module's database answers.
    pub async fn ping(&self) -> bool {
        self.db.ping().await
    }

    pub fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        vec![Consumer {
            db: self.db.clone(),
            bus,
            topic: ORDER_TOPIC,
            group: "payment",
            handler: Arc::new(consume::Saga { payments: self.clone() }),
        }]
    }

    /// Gateway calls still to make: payments to charge, refunds to give.
    pub async fn pending(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE status = 'REQUESTED' OR (status = 'SUCCEEDED' AND cancel_requested = 1)",
        )
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
        let stuck_before = contract::now_millis() - 60_000;
        let stuck: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE status = 'REQUESTED' AND created_at < $1")
                .bind(stuck_before)
                .fetch_one(self.db.reader())
                .await?;
        Ok(vec![
            Check::count("payments_reach_a_final_state", stuck, "payments still REQUESTED after 60 s"),
            outbox_check(&self.relay).await?,
        ])
    }
}
