//! A module's event loop on one topic.
//!
//! Each delivered event is applied in the module's transaction together with an inbox
//! record of its id; an id already in the inbox is skipped, so redelivery (after a crash,
//! a republished outbox row, a replayed topic) changes nothing. The group's offset is
//! committed only after that transaction, never before.
//!
//! A module says what it does with events in [`Handlers`]: one async fn per event type,
//! given the module's state, the transaction, the decoded event and a [`Cx`] — the
//! envelope, and the transaction's [`Reactor::Batch`], where a handler notes what is to be
//! done once the transaction commits ([`Reactor::committed`]) or just before
//! ([`Reactor::finish`]). Which events a consumer takes follows from what is registered;
//! a batch that rolls back is dropped, and what it noted with it.

use std::collections::HashSet;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::events::{DomainEvent, Envelope};
use futures_util::future::BoxFuture;
use tracing::Instrument;

use crate::bus::{Bus, Delivery, Subscription};
use crate::db::{Db, Tx};
use crate::trace::TraceContext;

/// What a consumer runs: which events it takes, how it orders their locks, and a
/// [`Batch`] per transaction. A module builds one with [`Handlers`].
pub trait Handler: Send + Sync + 'static {
    /// Whether events of this type have any effect here; others are passed over
    /// without a transaction or an inbox record.
    fn wants(&self, kind: &str) -> bool;

    /// The rows an event locks, as a key. A batch is applied in the order of its events'
    /// keys (one key's events in the order they came), so that two transactions of a
    /// module — two consumers, two replicas — take their row locks in the same order and
    /// never deadlock: PostgreSQL breaks a deadlock only after `deadlock_timeout` (1 s),
    /// and then the batch is applied again one event at a time. Events of different
    /// keys have no order between them anyway: on Kafka they may be in different
    /// partitions.
    fn lock_key(&self, event: &Envelope) -> String;

    /// A new transaction's worth of events: what it notes belongs to it alone.
    fn batch(&self) -> Box<dyn Batch + '_>;
}

/// One transaction of a consumer's events, and what its events noted for after it. A
/// batch that rolled back is dropped, and what it noted with it.
pub trait Batch: Send {
    /// Applies one event inside `tx`; the events it causes go to the outbox in `tx` too.
    /// Errors are for infrastructure failures only: the event is retried.
    fn apply<'a>(&'a mut self, tx: &'a mut Tx, event: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Called in the transaction after its events were applied, just before the commit.
    fn finish<'a>(&'a mut self, tx: &'a mut Tx) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Called once the transaction has committed.
    fn committed(self: Box<Self>);
}

/// A module's side of its consumers: its state, which every handler it registers in
/// [`Handlers`] is given, and what is done once per transaction of events.
#[async_trait]
pub trait Reactor: Send + Sync + 'static {
    /// What a transaction's handlers note for after it (say, the orders it settled);
    /// a new one for each transaction, handed to `finish` and `committed`.
    type Batch: Default + Send + Sync + 'static;

    /// The rows an event locks (see [`Handler::lock_key`]). By default the event's
    /// aggregate, which is its message key.
    fn lock_key(&self, event: &Envelope) -> String {
        event.aggregate_id.clone()
    }

    /// Called in a transaction after its events were applied, just before the commit:
    /// for what is done once per transaction rather than once per event.
    async fn finish(&self, _tx: &mut Tx, _batch: &Self::Batch) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called after a transaction of events has committed (wake the relay, notify
    /// watchers).
    fn committed(&self, _batch: Self::Batch) {}
}

/// What a handler is given besides the module, its transaction and its event.
pub struct Cx<'a, B> {
    /// The event's envelope (its id, its trace).
    pub envelope: &'a Envelope,
    /// What the open transaction notes for after it.
    pub batch: &'a mut B,
}

/// A handler of events of type `E`: an `async fn(&S, &mut Tx, E, Cx<'_, S::Batch>) ->
/// anyhow::Result<()>`.
pub trait HandlerFn<'a, S: Reactor, E>: Send + Sync + 'static {
    type Future: Future<Output = anyhow::Result<()>> + Send + 'a;
    fn call(&self, module: &'a S, tx: &'a mut Tx, event: E, cx: Cx<'a, S::Batch>) -> Self::Future;
}

impl<'a, S, E, F, Fut> HandlerFn<'a, S, E> for F
where
    S: Reactor,
    F: Fn(&'a S, &'a mut Tx, E, Cx<'a, S::Batch>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, module: &'a S, tx: &'a mut Tx, event: E, cx: Cx<'a, S::Batch>) -> Fut {
        self(module, tx, event, cx)
    }
}

/// A handler with its event type erased: decodes the envelope's payload and calls it.
trait Route<S: Reactor>: Send + Sync {
    fn apply<'a>(
        &'a self,
        module: &'a S,
        tx: &'a mut Tx,
        envelope: &'a Envelope,
        batch: &'a mut S::Batch,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

struct Typed<E, F>(F, PhantomData<fn() -> E>);

impl<S, E, F> Route<S> for Typed<E, F>
where
    S: Reactor,
    E: DomainEvent + Send + 'static,
    F: for<'a> HandlerFn<'a, S, E>,
{
    fn apply<'a>(
        &'a self,
        module: &'a S,
        tx: &'a mut Tx,
        envelope: &'a Envelope,
        batch: &'a mut S::Batch,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        match serde_json::from_str::<E>(envelope.payload.get()) {
            Ok(event) => Box::pin(self.0.call(module, tx, event, Cx { envelope, batch })),
            Err(error) => Box::pin(std::future::ready(Err(
                anyhow::Error::new(error).context(format!("undecodable {} {}", envelope.kind, envelope.id))
            ))),
        }
    }
}

/// A module's handlers, one per event type it consumes: what a consumer takes follows
/// from them, events of other types are passed over.
///
/// ```text
/// Handlers::new(Saga { .. }).on::<PaymentSucceeded>(payment_succeeded).on::<SeatsSold>(seats_sold)
/// ```
pub struct Handlers<S: Reactor> {
    module: S,
    routes: Vec<(&'static str, Box<dyn Route<S>>)>,
}

impl<S: Reactor> Handlers<S> {
    pub fn new(module: S) -> Self {
        Handlers { module, routes: Vec::new() }
    }

    /// Registers the handler of events of type `E`. One handler per type.
    pub fn on<E>(mut self, handler: impl for<'a> HandlerFn<'a, S, E>) -> Self
    where
        E: DomainEvent + Send + 'static,
    {
        assert!(!self.wants(E::TYPE), "a second handler of {}", E::TYPE);
        self.routes.push((E::TYPE, Box::new(Typed(handler, PhantomData))));
        self
    }

    /// The event types handled, in the order they were registered.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.iter().map(|(kind, _)| *kind)
    }
}

impl<S: Reactor> Handler for Handlers<S> {
    fn wants(&self, kind: &str) -> bool {
        self.routes.iter().any(|(k, _)| *k == kind)
    }

    fn lock_key(&self, event: &Envelope) -> String {
        self.module.lock_key(event)
    }

    fn batch(&self) -> Box<dyn Batch + '_> {
        Box::new(Open { handlers: self, batch: S::Batch::default() })
    }
}

/// A transaction's batch of a module's events.
struct Open<'h, S: Reactor> {
    handlers: &'h Handlers<S>,
    batch: S::Batch,
}

impl<S: Reactor> Batch for Open<'_, S> {
    fn apply<'a>(&'a mut self, tx: &'a mut Tx, event: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        let handlers = self.handlers;
        match handlers.routes.iter().find(|(kind, _)| *kind == event.kind) {
            Some((_, route)) => route.apply(&handlers.module, tx, event, &mut self.batch),
            None => Box::pin(std::future::ready(Ok(()))),
        }
    }

    fn finish<'a>(&'a mut self, tx: &'a mut Tx) -> BoxFuture<'a, anyhow::Result<()>> {
        self.handlers.module.finish(tx, &self.batch)
    }

    fn committed(self: Box<Self>) {
        self.handlers.module.committed(self.batch)
    }
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
        let mut batch = self.handler.batch();
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
                self.apply_event(&mut tx, &mut *batch, event).await?;
            }
            batch.finish(&mut tx).await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        // A batch that rolled back is dropped with what its events noted.
        if result.is_ok() {
            batch.committed();
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

    async fn apply_event(&self, tx: &mut Tx, batch: &mut dyn Batch, envelope: &Envelope) -> anyhow::Result<()> {
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
        ctx.scope(batch.apply(tx, envelope)).instrument(span).await?;
        // How long after it happened the event took effect here: the saga's steps.
        let labels =
            [("topic", self.topic.to_owned()), ("group", self.group.to_owned()), ("type", envelope.kind.clone())];
        let age = (contract::now_millis() - envelope.occurred_at).max(0) as f64 / 1000.0;
        metrics::histogram!(crate::metrics::EVENT_LAG, &labels).record(age);
        Ok(())
    }
}
