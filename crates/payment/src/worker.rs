//! The gateway workers: claim pending payments and refunds with a lease, call the
//! gateway for all of them at once, and record each answer with its event.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use contract::events::{PaymentFailed, PaymentRefunded, PaymentSucceeded};
use runtime::trace::TraceContext;
use runtime::{Tx, outbox};
use sqlx::Row;
use tokio::sync::Semaphore;
use tracing::Instrument;

use runtime::db::Backend;

use crate::{LEASE, Payments};

/// Gateway calls in flight at once.
const CONCURRENCY: usize = 2048;
/// A gateway call that takes longer is abandoned; the lease then lets it be retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Marks the order's payment to be refunded (or, if still at the gateway, refunded as
/// soon as it succeeds). Runs in the consumer's transaction; the worker does the call.
pub async fn cancel(tx: &mut Tx, order_id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE payments SET cancel_requested = 1 WHERE order_id = $1 AND status IN ('REQUESTED', 'SUCCEEDED')",
    )
    .bind(order_id)
    .execute(&mut **tx)
    .await
    .context("failed to request refund")?;
    Ok(())
}

/// A gateway call, bounded by [`CALL_TIMEOUT`] and timed.
async fn timed<T>(operation: &'static str, call: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(CALL_TIMEOUT, call).await.context("gateway timed out")?;
    metrics::histogram!(crate::metrics::GATEWAY, "operation" => operation).record(started.elapsed().as_secs_f64());
    result
}

struct Claimed {
    payment_id: String,
    order_id: String,
    amount: i64,
    status: String,
    traceparent: Option<String>,
}

impl Payments {
    /// Runs the workers until dropped; picks up after a crash whatever was claimed and
    /// never finished, once its lease runs out.
    pub async fn run_workers(self) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let mut failures = 0;
        loop {
            let free = slots.available_permits().min(512);
            let claimed = if free == 0 { Ok(Vec::new()) } else { self.claim(free as i64).await };
            match claimed {
                Ok(batch) if batch.is_empty() => {
                    failures = 0;
                    let _ = tokio::time::timeout(Duration::from_millis(500), self.work.notified()).await;
                }
                Ok(batch) => {
                    failures = 0;
                    for payment in batch {
                        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                        let this = self.clone();
                        let span = tracing::info_span!(
                            "payment",
                            otel.name = "payment gateway",
                            module = "payment",
                            order_id = %payment.order_id,
                            trace_id = tracing::field::Empty,
                            span_id = tracing::field::Empty,
                        );
                        let parent = payment.traceparent.as_deref().and_then(TraceContext::from_traceparent);
                        let ctx = TraceContext::start(&span, parent);
                        tokio::spawn(
                            ctx.scope(
                                async move {
                                    if let Err(error) = this.process(&payment).await {
                                        tracing::warn!(
                                            error = format!("{error:#}"),
                                            "payment attempt failed; will retry after the lease"
                                        );
                                    }
                                    drop(permit);
                                }
                                .instrument(span),
                            ),
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "claiming payments failed");
                    runtime::backoff_sleep(failures).await;
                    failures += 1;
                }
            }
        }
    }

    async fn claim(&self, limit: i64) -> anyhow::Result<Vec<Claimed>> {
        let now = contract::now_millis();
        // Several workers (replicas) on PostgreSQL each claim rows no other is claiming.
        let skip_locked = if self.db.backend() == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows = sqlx::query(&format!(
            "UPDATE payments SET lease_until = $1, attempts = attempts + 1 \
             WHERE (lease_until IS NULL OR lease_until < $2) AND payment_id IN \
             (SELECT payment_id FROM payments WHERE (status = 'REQUESTED' OR (status = 'SUCCEEDED' AND cancel_requested = 1)) \
              AND (lease_until IS NULL OR lease_until < $2) ORDER BY created_at LIMIT $3{skip_locked}) \
             RETURNING payment_id, order_id, amount, status, traceparent",
        ))
        .bind(now + LEASE.as_millis() as i64)
        .bind(now)
        .bind(limit)
        .fetch_all(self.db.writer())
        .await
        .context("failed to claim payments")?;
        Ok(rows
            .iter()
            .map(|r| Claimed {
                payment_id: r.get("payment_id"),
                order_id: r.get("order_id"),
                amount: r.get("amount"),
                status: r.get("status"),
                traceparent: r.get("traceparent"),
            })
            .collect())
    }

    async fn process(&self, p: &Claimed) -> anyhow::Result<()> {
        let refund_now = if p.status == "REQUESTED" {
            let approved = timed("authorize", self.gateway.authorize(&p.payment_id, p.amount)).await?;
            self.settle(p, approved).await?
        } else {
            true
        };
        if refund_now {
            timed("refund", self.gateway.refund(&p.payment_id)).await?;
            self.refunded(p).await?;
        }
        Ok(())
    }

    /// Records the gateway's answer; true when the order was cancelled meanwhile and the
    /// money must go back.
    async fn settle(&self, p: &Claimed, approved: bool) -> anyhow::Result<bool> {
        let status = if approved { "SUCCEEDED" } else { "FAILED" };
        let mut tx = self.db.begin().await?;
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE payments SET status = $1, lease_until = NULL, updated_at = $2 WHERE payment_id = $3 AND status = 'REQUESTED' \
             RETURNING cancel_requested",
        )
        .bind(status)
        .bind(contract::now_millis())
        .bind(&p.payment_id)
        .fetch_optional(&mut *tx)
        .await
        .context("failed to record payment")?;
        let Some(cancel) = cancel else {
            return Ok(false);
        };
        if approved {
            let e =
                PaymentSucceeded { payment_id: p.payment_id.clone(), order_id: p.order_id.clone(), amount: p.amount };
            outbox::append(&mut tx, &e).await?;
        } else {
            let e = PaymentFailed {
                payment_id: p.payment_id.clone(),
                order_id: p.order_id.clone(),
                reason: "DECLINED".into(),
            };
            outbox::append(&mut tx, &e).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        tracing::info!(order_id = %p.order_id, status, "payment settled");
        metrics::counter!(if approved { crate::metrics::SUCCESS } else { crate::metrics::FAIL }).increment(1);
        Ok(approved && cancel == 1)
    }

    async fn refunded(&self, p: &Claimed) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE payments SET status = 'REFUNDED', lease_until = NULL, updated_at = $1 WHERE payment_id = $2 AND status = 'SUCCEEDED'",
        )
        .bind(contract::now_millis())
        .bind(&p.payment_id)
        .execute(&mut *tx)
        .await
        .context("failed to record refund")?
        .rows_affected();
        if moved == 1 {
            let e =
                PaymentRefunded { payment_id: p.payment_id.clone(), order_id: p.order_id.clone(), amount: p.amount };
            outbox::append(&mut tx, &e).await?;
            tx.commit().await?;
            self.relay.wake();
            tracing::info!(order_id = %p.order_id, "payment refunded");
            metrics::counter!(crate::metrics::REFUND).increment(1);
        }
        Ok(())
    }
}
