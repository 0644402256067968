//! The gateway workers: claim pending payments and refunds with a lease, call the
//! gateway for all of them at once, and record each answer with its event.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use const_format::formatcp;
use contract::events::{PaymentFailed, PaymentRefunded, PaymentSucceeded};
use contract::reasons::PaymentFailReason;
use runtime::trace::TraceContext;
use runtime::{Tx, outbox};
use sqlx::Row;
use tokio::sync::Semaphore;
use tracing::Instrument;

use runtime::db::Backend;

use crate::states::{FAILED, PaymentStatus, REFUNDED, REQUESTED, SUCCEEDED};
use crate::{PENDING, Payments};

/// Gateway calls in flight at once.
const CONCURRENCY: usize = 2048;

/// Marks the order's payment to be refunded (or, if still at the gateway, refunded as
/// soon as it succeeds). Runs in the consumer's transaction; the worker does the call.
pub async fn cancel(tx: &mut Tx, order_id: &str) -> anyhow::Result<()> {
    sqlx::query(formatcp!(
        "UPDATE payments SET cancel_requested = 1 WHERE order_id = $1 AND status IN ({REQUESTED}, {SUCCEEDED})"
    ))
    .bind(order_id)
    .execute(&mut **tx)
    .await
    .context("failed to request refund")?;
    Ok(())
}

/// A gateway call, bounded by `timeout`, timed and counted.
async fn call<T>(
    operation: &'static str,
    timeout: Duration,
    call: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => {
            metrics::counter!(crate::metrics::TIMEOUT).increment(1);
            anyhow::bail!("the gateway did not answer {operation} within {} ms", timeout.as_millis());
        }
    };
    metrics::histogram!(crate::metrics::GATEWAY, "operation" => operation).record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(crate::metrics::ERROR).increment(1);
    }
    result
}

/// What is left to do after an answer was recorded.
#[derive(Debug, PartialEq, Eq)]
enum Then {
    Nothing,
    /// The order was cancelled meanwhile: refund.
    Refund,
    /// The payment had already FAILED: void the charge.
    Void,
}

/// Leases up to `$3` pending payments, the oldest first, until `$1` (now `$2`).
pub(crate) fn claim_sql(backend: Backend) -> String {
    // Several workers (replicas) on PostgreSQL each claim rows no other is claiming.
    let skip_locked = if backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    format!(
        "UPDATE payments SET lease_until = $1, attempts = attempts + 1 \
         WHERE (lease_until IS NULL OR lease_until < $2) AND payment_id IN \
         (SELECT payment_id FROM payments WHERE {PENDING} \
          AND (lease_until IS NULL OR lease_until < $2) ORDER BY created_at LIMIT $3{skip_locked}) \
         RETURNING payment_id, order_id, amount, status, traceparent, created_at, attempts"
    )
}

pub(crate) struct Claimed {
    pub(crate) payment_id: String,
    order_id: String,
    pub(crate) amount: i64,
    status: String,
    traceparent: Option<String>,
    created_at: i64,
    /// Gateway calls claimed for it so far, this one included.
    attempts: i64,
}

impl Payments {
    /// Runs the workers until dropped; picks up after a crash whatever was claimed and
    /// never finished, once its lease runs out.
    pub async fn run_workers(self) {
        // Each step is a short write transaction: on SQLite, beside the writer.
        self.db.clone().on_writer(self.work_until_dropped()).await
    }

    async fn work_until_dropped(self) {
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
                        let parent = payment.traceparent.as_deref().and_then(TraceContext::from_traceparent);
                        let (ctx, span) = TraceContext::start(parent, |ctx| {
                            tracing::info_span!(
                                "payment",
                                otel.name = "payment gateway",
                                module = "payment",
                                order_id = %payment.order_id,
                                trace_id = ctx.trace_id.as_str(),
                                span_id = ctx.span_id.as_str(),
                            )
                        });
                        tokio::spawn(
                            ctx.scope(
                                async move {
                                    if let Err(error) = this.process(&payment).await {
                                        tracing::warn!(
                                            error = format!("{error:#}"),
                                            "payment step failed; will retry after the lease"
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

    pub(crate) async fn claim(&self, limit: i64) -> anyhow::Result<Vec<Claimed>> {
        let now = contract::now_millis();
        // Through the background connections, which search a queue's partial index (here
        // `payments_pending`) by a plain index scan (see `Db::background`).
        let rows = sqlx::query(&claim_sql(self.db.backend()))
            .bind(now + self.policy.lease().as_millis() as i64)
            .bind(now)
            .bind(limit)
            .fetch_all(self.db.background().writer())
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
                created_at: r.get("created_at"),
                attempts: r.get("attempts"),
            })
            .collect())
    }

    /// One claimed step: a charge, a refund or a void.
    pub(crate) async fn process(&self, p: &Claimed) -> anyhow::Result<()> {
        match PaymentStatus::parse(&p.status) {
            Some(PaymentStatus::Requested) => self.charge(p).await,
            Some(PaymentStatus::Succeeded) => self.give_back(p, Then::Refund).await,
            _ => self.give_back(p, Then::Void).await,
        }
    }

    /// Asks the gateway to charge; a timeout or an error is retried after back-off until
    /// the deadline, when the payment fails.
    async fn charge(&self, p: &Claimed) -> anyhow::Result<()> {
        let deadline_at = p.created_at + self.policy.deadline.as_millis() as i64;
        let left = deadline_at - contract::now_millis();
        if left <= 0 {
            return self.give_up(p).await;
        }
        let timeout = self.policy.call_timeout.min(Duration::from_millis(left as u64));
        match call("authorize", timeout, self.gateway.authorize(&p.payment_id, p.amount)).await {
            Ok(approved) => self.answer(p, approved).await,
            Err(error) => {
                let wait = self.policy.backoff(p.attempts);
                if contract::now_millis() + wait.as_millis() as i64 >= deadline_at {
                    tracing::warn!(error = format!("{error:#}"), attempts = p.attempts, "payment deadline reached");
                    self.give_up(p).await
                } else {
                    tracing::info!(
                        error = format!("{error:#}"),
                        attempts = p.attempts,
                        retry_in_ms = wait.as_millis() as u64,
                        "gateway call failed; retrying"
                    );
                    self.retry_later(p, wait).await
                }
            }
        }
    }

    /// Records the gateway's answer and refunds or voids the charge when it cannot be kept.
    pub(crate) async fn answer(&self, p: &Claimed, approved: bool) -> anyhow::Result<()> {
        match self.settle(p, approved).await? {
            Then::Nothing => Ok(()),
            then => self.give_back(p, then).await,
        }
    }

    /// Refunds (the order was cancelled) or voids (the payment failed) at the gateway;
    /// retried after back-off, without a deadline, until the gateway confirms.
    async fn give_back(&self, p: &Claimed, what: Then) -> anyhow::Result<()> {
        match call("refund", self.policy.call_timeout, self.gateway.refund(&p.payment_id)).await {
            Ok(()) if what == Then::Void => self.voided(p).await,
            Ok(()) => self.refunded(p).await,
            Err(error) => {
                let wait = self.policy.backoff(p.attempts);
                tracing::info!(
                    error = format!("{error:#}"),
                    retry_in_ms = wait.as_millis() as u64,
                    "gateway refund failed; retrying"
                );
                self.retry_later(p, wait).await
            }
        }
    }

    /// Leaves the payment claimed until `wait` has passed, then wakes the workers.
    async fn retry_later(&self, p: &Claimed, wait: Duration) -> anyhow::Result<()> {
        metrics::counter!(crate::metrics::RETRY).increment(1);
        sqlx::query("UPDATE payments SET lease_until = $1 WHERE payment_id = $2")
            .bind(contract::now_millis() + wait.as_millis() as i64)
            .bind(&p.payment_id)
            .execute(self.db.writer())
            .await
            .context("failed to schedule the retry")?;
        let work = self.work.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait + Duration::from_millis(2)).await;
            work.notify_one();
        });
        Ok(())
    }

    /// The deadline passed without an answer: the payment FAILED (so its order is
    /// cancelled), and whatever the gateway may have charged is voided.
    pub(crate) async fn give_up(&self, p: &Claimed) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(formatcp!(
            "UPDATE payments SET status = {FAILED}, void_requested = 1, updated_at = $1 \
             WHERE payment_id = $2 AND status = {REQUESTED}"
        ))
        .bind(contract::now_millis())
        .bind(&p.payment_id)
        .execute(&mut *tx)
        .await
        .context("failed to record payment")?
        .rows_affected();
        if moved == 0 {
            return Ok(());
        }
        let e = PaymentFailed {
            payment_id: p.payment_id.clone(),
            order_id: p.order_id.clone(),
            reason: PaymentFailReason::GatewayTimeout,
        };
        outbox::append(&mut tx, &e).await?;
        tx.commit().await?;
        self.relay.wake();
        tracing::warn!(order_id = %p.order_id, attempts = p.attempts, "payment failed: no answer from the gateway before the deadline");
        metrics::counter!(crate::metrics::FAIL).increment(1);
        metrics::counter!(crate::metrics::DEADLINE).increment(1);
        self.give_back(p, Then::Void).await
    }

    /// Records the gateway's answer, once: a second answer for the same payment changes
    /// nothing and publishes nothing.
    async fn settle(&self, p: &Claimed, approved: bool) -> anyhow::Result<Then> {
        let status = if approved { PaymentStatus::Succeeded } else { PaymentStatus::Failed };
        let mut tx = self.db.begin().await?;
        let cancel: Option<i64> = sqlx::query_scalar(formatcp!(
            "UPDATE payments SET status = $1, lease_until = NULL, updated_at = $2 WHERE payment_id = $3 AND status = {REQUESTED} \
             RETURNING cancel_requested"
        ))
        .bind(status.as_str())
        .bind(contract::now_millis())
        .bind(&p.payment_id)
        .fetch_optional(&mut *tx)
        .await
        .context("failed to record payment")?;
        let Some(cancel) = cancel else {
            drop(tx);
            return self.answered_late(p, approved).await;
        };
        if approved {
            let e =
                PaymentSucceeded { payment_id: p.payment_id.clone(), order_id: p.order_id.clone(), amount: p.amount };
            outbox::append(&mut tx, &e).await?;
        } else {
            let e = PaymentFailed {
                payment_id: p.payment_id.clone(),
                order_id: p.order_id.clone(),
                reason: PaymentFailReason::Declined,
            };
            outbox::append(&mut tx, &e).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        tracing::info!(order_id = %p.order_id, status = status.as_str(), "payment settled");
        metrics::counter!(if approved { crate::metrics::SUCCESS } else { crate::metrics::FAIL }).increment(1);
        Ok(if approved && cancel == 1 { Then::Refund } else { Then::Nothing })
    }

    /// An answer for a payment no longer REQUESTED: a duplicate (nothing to do), or an
    /// approval after the payment FAILED, whose charge must not be kept.
    async fn answered_late(&self, p: &Claimed, approved: bool) -> anyhow::Result<Then> {
        if !approved {
            return Ok(Then::Nothing);
        }
        let moved = sqlx::query(formatcp!(
            "UPDATE payments SET void_requested = 1, updated_at = $1 WHERE payment_id = $2 AND status = {FAILED}"
        ))
        .bind(contract::now_millis())
        .bind(&p.payment_id)
        .execute(self.db.writer())
        .await
        .context("failed to request a void")?
        .rows_affected();
        if moved == 0 {
            return Ok(Then::Nothing);
        }
        // On disk before the void is asked for: a power cut must not forget the charge.
        self.db.durable().await?;
        tracing::warn!(order_id = %p.order_id, "the gateway approved a payment that had already failed; voiding it");
        metrics::counter!(crate::metrics::LATE).increment(1);
        Ok(Then::Void)
    }

    /// The gateway confirmed the void of a FAILED payment.
    async fn voided(&self, p: &Claimed) -> anyhow::Result<()> {
        sqlx::query(formatcp!(
            "UPDATE payments SET void_requested = 0, lease_until = NULL, updated_at = $1 \
             WHERE payment_id = $2 AND status = {FAILED}"
        ))
        .bind(contract::now_millis())
        .bind(&p.payment_id)
        .execute(self.db.writer())
        .await
        .context("failed to record the void")?;
        Ok(())
    }

    async fn refunded(&self, p: &Claimed) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(formatcp!(
            "UPDATE payments SET status = {REFUNDED}, lease_until = NULL, updated_at = $1 WHERE payment_id = $2 AND status = {SUCCEEDED}"
        ))
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
