//! Payment's side of the saga.
//!
//! - `OrderCreated`: a REQUESTED payment, which the worker pool takes to the gateway.
//! - `OrderCancelled`: a SUCCEEDED payment is refunded; one still at the gateway is
//!   marked so that it is refunded the moment it succeeds.
//! - `OrderNumbered`: the payment of an order from before the upgrade that brought order
//!   numbers learns its order's number.

use async_trait::async_trait;
use contract::events::{DomainEvent, Envelope, OrderCancelled, OrderCreated, OrderNumbered};
use runtime::consumer::Handler;
use runtime::{Tx, trace};

use crate::{Payments, worker};

pub struct Saga {
    pub payments: Payments,
}

#[async_trait]
impl Handler for Saga {
    async fn apply(&self, tx: &mut Tx, event: &Envelope) -> anyhow::Result<()> {
        if let Some(e) = event.decode::<OrderCreated>() {
            let e = e?;
            let now = contract::now_millis();
            sqlx::query(
                "INSERT INTO payments (payment_id, order_id, order_no, buyer, amount, status, traceparent, created_at, \
                 updated_at) VALUES ($1, $2, $7, $3, $4, 'REQUESTED', $5, $6, $6) ON CONFLICT DO NOTHING",
            )
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
        } else if let Some(e) = event.decode::<OrderCancelled>() {
            worker::cancel(tx, &e?.order_id).await
        } else if let Some(e) = event.decode::<OrderNumbered>() {
            let e = e?;
            sqlx::query("UPDATE payments SET order_no = $1 WHERE order_id = $2")
                .bind(e.order_no)
                .bind(&e.order_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        } else {
            Ok(())
        }
    }

    fn wants(&self, kind: &str) -> bool {
        [OrderCreated::TYPE, OrderCancelled::TYPE, OrderNumbered::TYPE].contains(&kind)
    }

    fn committed(&self) {
        self.payments.work.notify_one();
        self.payments.relay.wake();
    }
}
