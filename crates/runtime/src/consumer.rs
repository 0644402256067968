//! A module's event loop on one topic.
//!
//! Each delivered event is applied in the module's transaction together with an inbox
//! record of its id; an id already in the inbox is skipped, so redelivery (after a crash,
//! a republished outbox row, a replayed topic) changes nothing. The group's offset is
//! committed only after that transaction, never before.

use std::collections::HashSet;
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

    /// The rows an event locks, as a key. A batch is applied in the order of its events'
    /// keys (one key's events in the order they came), so that two transactions of a
    /// module — two consumers, two replicas — take their row locks in the same order and
    /// never deadlock: PostgreSQL breaks a deadlock only after `deadlock_timeout` (1 s),
    /// and then the batch is applied again one event at a time. Events of different
    /// keys have no order between them anyway: on Kafka they may be in different
    /// partitions. By default the event's aggregate, which is its message key.
    fn lock_key(&self, event: &Envelope) -> String {
        event.aggregate_id.clone()
    }

    /// Whether events of this type have any effect here; others are passed over
    /// without a transaction or an inbox record.
    fn wants(&self, _kind: &str) -> bool {
        true
    }

    /// Called in a batch's transaction after its events were applied, just before the
    /// commit: for what is done once per batch rather than once per event.
    async fn finish(&self, _tx: &mut Tx) -> anyhow::Result<()> {
        Ok(())
    }

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
        let db = self.db.background();
        let this = Consumer { db: db.clone(), ..self };
        db.on_writer(this.consume()).await
    }

    async fn consume(self) {
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
        if batch.is_empty() {
            return Ok(());
        }
        let events = self.decode(&batch);
        if let Err(error) = self.apply(&events).await {
            // One bad event must not hold back the rest: apply them one at a time.
            tracing::warn!(topic = self.topic, error = format!("{error:#}"), "batch failed; applying one by one");
            for event in &events {
                self.apply_alone(event).await;
            }
        }
        subscription.commit(&batch).await
    }

    /// The envelopes of the batch this module wants; undecodable ones are logged and
    /// skipped, never retried forever.
    fn decode(&self, batch: &[Delivery]) -> Vec<Envelope> {
        batch
            .iter()
            .filter_map(|delivery| match serde_json::from_str::<Envelope>(&delivery.body) {
                Ok(e) => Some(e),
                Err(error) => {
                    tracing::error!(topic = self.topic, offset = delivery.offset, %error, "undecodable event skipped");
                    None
                }
            })
            .filter(|e| self.handler.wants(&e.kind))
            .collect()
    }

    async fn apply(&self, events: &[Envelope]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut tx = self.db.begin().await?;
            let fresh = self.record_in_inbox(&mut tx, events).await?;
            let mut fresh: Vec<(String, &Envelope)> = events
                .iter()
                .filter(|e| fresh.contains(&e.id.to_string()))
                .map(|e| (self.handler.lock_key(e), e))
                .collect();
            // Stable: one key's events stay in their order.
            fresh.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, event) in fresh {
                self.apply_event(&mut tx, event).await?;
            }
            self.handler.finish(&mut tx).await?;
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

    /// Applies one event, retrying; sets it aside only after it failed `ATTEMPTS` times
    /// while the database answered. An outage is waited out, however long: it is no
    /// fault of the event's, and setting the event aside would lose it.
    async fn apply_alone(&self, event: &Envelope) {
        let (mut attempt, mut outage) = (0, 0);
        while attempt < ATTEMPTS {
            match self.apply(std::slice::from_ref(event)).await {
                Ok(()) => return,
                Err(error) if !self.db.ping().await => {
                    tracing::warn!(topic = self.topic, event_id = %event.id, error = format!("{error:#}"), "database unreachable; waiting");
                    crate::backoff_sleep(outage).await;
                    outage += 1;
                }
                Err(error) => {
                    tracing::warn!(topic = self.topic, event_id = %event.id, attempt, error = format!("{error:#}"), "event failed");
                    crate::backoff_sleep(attempt).await;
                    attempt += 1;
                }
            }
        }
        tracing::error!(topic = self.topic, event_id = %event.id, event_type = %event.kind, "event set aside after repeated failures");
    }

    /// Records the events' ids in the inbox; returns the ids not seen before — the
    /// events to apply. One statement per 300 events.
    async fn record_in_inbox(&self, tx: &mut Tx, events: &[Envelope]) -> anyhow::Result<HashSet<String>> {
        let now = contract::now_millis();
        let mut fresh = HashSet::new();
        for chunk in events.chunks(300) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, $1, $2)", i + 3)).collect();
            let sql = format!(
                "INSERT INTO inbox (event_id, topic, applied_at) VALUES {} ON CONFLICT DO NOTHING RETURNING event_id",
                values.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(self.topic).bind(now);
            for e in chunk {
                query = query.bind(e.id.to_string());
            }
            fresh.extend(query.fetch_all(&mut **tx).await?);
        }
        if fresh.len() < events.len() {
            tracing::debug!(duplicates = events.len() - fresh.len(), "duplicate events skipped");
        }
        Ok(fresh)
    }

    async fn apply_event(&self, tx: &mut Tx, envelope: &Envelope) -> anyhow::Result<()> {
        let parent = envelope.traceparent.as_deref().and_then(TraceContext::from_traceparent);
        let (ctx, span) = TraceContext::start(parent, |ctx| {
            tracing::info_span!(
                "consume",
                otel.name = format!("{} {}", self.group, envelope.kind),
                module = self.group,
                topic = self.topic,
                event_type = %envelope.kind,
                event_id = %envelope.id,
                trace_id = ctx.trace_id.as_str(),
                span_id = ctx.span_id.as_str(),
            )
        });
        ctx.scope(self.handler.apply(tx, envelope)).instrument(span).await?;
        // How long after it happened the event took effect here: the saga's steps.
        let labels =
            [("topic", self.topic.to_owned()), ("group", self.group.to_owned()), ("type", envelope.kind.clone())];
        let age = (contract::now_millis() - envelope.occurred_at).max(0) as f64 / 1000.0;
        metrics::histogram!(crate::metrics::EVENT_LAG, &labels).record(age);
        Ok(())
    }
}
