//! Payment's side of the saga.
//!
//! - `OrderCreated`: a REQUESTED payment, which the worker pool takes to the gateway.
//! - `OrderCancelled`: a SUCCEEDED payment is refunded; one still at the gateway is
//!   marked so that it is refunded the moment it succeeds.
//! - `OrderNumbered`: the payment of an order from before the upgrade that brought order
//!   numbers learns its order's number.

use const_format::formatcp;
use contract::events::{OrderCancelled, OrderCreated, OrderNumbered};
use runtime::consumer::{Cx, Handlers, Reactor};
use runtime::{Tx, trace};

use crate::states::REQUESTED;
use crate::{Payments, worker};

pub struct Saga {
    pub payments: Payments,
}

/// The saga's consumer: one handler per event type it reacts to.
pub fn handlers(payments: Payments) -> Handlers<Saga> {
    Handlers::new(Saga { payments })
        .on::<OrderCreated>(order_created)
        .on::<OrderCancelled>(order_cancelled)
        .on::<OrderNumbered>(order_numbered)
}

async fn order_created(_: &Saga, tx: &mut Tx, e: OrderCreated, _: Cx<'_, ()>) -> anyhow::Result<()> {
    let now = contract::now_millis();
    sqlx::query(formatcp!(
        "INSERT INTO payments (payment_id, order_id, order_no, buyer, amount, status, traceparent, created_at, \
         updated_at) VALUES ($1, $2, $7, $3, $4, {REQUESTED}, $5, $6, $6) ON CONFLICT DO NOTHING"
    ))
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&e.order_id)
    .bind(&e.buyer)
    .bind(e.amount)
    .bind(trace::current_traceparent())
    .bind(now)
    .bind(e.order_no)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn order_cancelled(_: &Saga, tx: &mut Tx, e: OrderCancelled, _: Cx<'_, ()>) -> anyhow::Result<()> {
    worker::cancel(tx, &e.order_id).await
}

async fn order_numbered(_: &Saga, tx: &mut Tx, e: OrderNumbered, _: Cx<'_, ()>) -> anyhow::Result<()> {
    sqlx::query("UPDATE payments SET order_no = $1 WHERE order_id = $2")
        .bind(e.order_no)
        .bind(&e.order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Reactor for Saga {
    type Batch = ();

    fn committed(&self, _: ()) {
        self.payments.work.notify_one();
        self.payments.relay.wake();
    }
}
