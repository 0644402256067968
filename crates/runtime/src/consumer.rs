//! A module's event loop on one topic.
//!
//! Each delivered event is applied in the module's transaction together with an inbox
//! record of its id; an id already in the inbox is skipped, so redelivery (after a crash,
//! a republished outbox row, a replayed topic) changes nothing. The group's offset is
//! committed only after that transaction, never before.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::events::Envelope;
use tracing::Instrument;

use crate::bus::{Bus, Delivery, Subscription};
use crate::db::{Db, Tx};
use crate::trace::TraceContext;

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies one event inside `tx`; the events it causes go to the outbox in `tx` too.
    /// Errors are for infrastructure failures only: the event is retried.
    async fn apply(&self, tx: &mut Tx, event: &Envelope) -> anyhow::Result<()>;

    /// Called after a batch of events has committed (wake the relay, notify watchers).
    fn committed(&self) {}

    /// Called when a transaction of events rolled back (forget what `apply` noted).
    fn aborted(&self) {}
}

pub struct Consumer {
    pub db: Db,
    pub bus: Arc<dyn Bus>,
    pub topic: &'static str,
    pub group: &'static str,
    pub handler: Arc<dyn Handler>,
}

const BATCH: usize = 256;
/// Attempts at one event, alone in its transaction, before it is set aside.
const ATTEMPTS: u32 = 5;

impl Consumer {
    pub async fn run(self) {
        let mut failures = 0;
        let mut subscription = loop {
            match self.bus.subscribe(self.topic, self.group).await {
                Ok(s) => break s,
                Err(error) => {
                    tracing::warn!(topic = self.topic, error = format!("{error:#}"), "subscribe failed; retrying");
                    crate::backoff_sleep(failures).await;
                    failures += 1;
                }
            }
        };
        loop {
            match self.step(&mut *subscription).await {
                Ok(()) => failures = 0,
                Err(error) => {
                    tracing::warn!(topic = self.topic, error = format!("{error:#}"), "consumer failed; retrying");
                    crate::backoff_sleep(failures).await;
                    failures += 1;
                }
            }
        }
    }

    async fn step(&self, subscription: &mut dyn Subscription) -> anyhow::Result<()> {
        let batch = subscription.poll(BATCH, Duration::from_secs(1)).await?;
        let Some(last) = batch.last().map(|d| d.offset) else {
            return Ok(());
        };
        if let Err(error) = self.apply(&batch).await {
            // One bad event must not hold back the rest: apply them one at a time.
            tracing::warn!(topic = self.topic, error = format!("{error:#}"), "batch failed; applying one by one");
            for delivery in &batch {
                self.apply_alone(delivery).await;
            }
        }
        subscription.commit(last).await
    }

    async fn apply(&self, batch: &[Delivery]) -> anyhow::Result<()> {
        let result = async {
            let mut tx = self.db.begin().await?;
            for delivery in batch {
                self.apply_one(&mut tx, delivery).await?;
            }
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        match &result {
            Ok(()) => self.handler.committed(),
            Err(_) => self.handler.aborted(),
        }
        result
    }

    async fn apply_alone(&self, delivery: &Delivery) {
        for attempt in 0..ATTEMPTS {
            let result = async {
                let mut tx = self.db.begin().await?;
                self.apply_one(&mut tx, delivery).await?;
                tx.commit().await?;
                anyhow::Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    self.handler.committed();
                    return;
                }
                Err(error) => {
                    self.handler.aborted();
                    tracing::warn!(
                        topic = self.topic,
                        offset = delivery.offset,
                        attempt,
                        error = format!("{error:#}"),
                        "event failed"
                    );
                    crate::backoff_sleep(attempt).await;
                }
            }
        }
        tracing::error!(topic = self.topic, offset = delivery.offset, body = %delivery.body, "event set aside after repeated failures");
    }

    async fn apply_one(&self, tx: &mut Tx, delivery: &Delivery) -> anyhow::Result<()> {
        let envelope: Envelope = match serde_json::from_str(&delivery.body) {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(topic = self.topic, offset = delivery.offset, %error, "undecodable event skipped");
                return Ok(());
            }
        };
        let fresh =
            sqlx::query("INSERT INTO inbox (event_id, topic, applied_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(envelope.id.to_string())
                .bind(self.topic)
                .bind(contract::now_millis())
                .execute(&mut **tx)
                .await?
                .rows_affected()
                == 1;
        if !fresh {
            tracing::debug!(event_id = %envelope.id, "duplicate event skipped");
            return Ok(());
        }
        let span = tracing::info_span!(
            "consume",
            otel.name = format!("{} {}", self.group, envelope.kind),
            module = self.group,
            topic = self.topic,
            event_type = %envelope.kind,
            event_id = %envelope.id,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let ctx = TraceContext::start(&span, envelope.traceparent.as_deref().and_then(TraceContext::from_traceparent));
        ctx.scope(self.handler.apply(tx, &envelope)).instrument(span).await?;
        // How long after it happened the event took effect here: the saga's steps.
        let labels =
            [("topic", self.topic.to_owned()), ("group", self.group.to_owned()), ("type", envelope.kind.clone())];
        let age = (contract::now_millis() - envelope.occurred_at).max(0) as f64 / 1000.0;
        metrics::histogram!(crate::metrics::EVENT_LAG, &labels).record(age);
        Ok(())
    }
}
