//! The waiting room as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use contract::events::{EventCreated, OrderCapacity};
use futures_util::future::BoxFuture;
use runtime::Tx;
use runtime::bus::Bus;
use runtime::consumer::{Consumer, Cx, Handlers, Reactor};
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::WaitingRoom;

/// What the room hears on the bus: the order processes' capacity, and the shows
/// created with a room.
struct Signal {
    room: WaitingRoom,
}

impl Reactor for Signal {
    type Batch = ();

    fn committed(&self, _: ()) {
        self.room.relay.wake();
    }
}

async fn capacity(s: &Signal, _: &mut Tx, e: OrderCapacity, _: Cx<'_, ()>) -> anyhow::Result<()> {
    s.room.heard_capacity(&e);
    Ok(())
}

/// A show created with an on-sale time or a room gets its room, announced as any change
/// is; the next refresh brings it into memory. A room the operator set already (a part
/// of a large show read again, a replay) is left as it is.
async fn event_created(_: &Signal, tx: &mut Tx, e: EventCreated, _: Cx<'_, ()>) -> anyhow::Result<()> {
    let Some(plan) = e.room else { return Ok(()) };
    if let Some(version) = crate::store::create_settings(tx, e.event_id, &plan).await? {
        runtime::outbox::append(tx, &crate::announcement(e.event_id, &plan, version)).await?;
    }
    Ok(())
}

pub static SPEC: Spec = Spec {
    name: "waitingroom",
    migrations: &crate::store::MIGRATIONS,
    produces: crate::TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    paths: &["queue", "admin/events/*/room", "admin/events/*"],
    backlog: &[],
    describe_metrics: crate::metrics::describe,
};

#[async_trait]
impl Module for WaitingRoom {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        let handler = Arc::new(
            Handlers::new(Signal { room: self.clone() })
                .on::<OrderCapacity>(capacity)
                .on::<EventCreated>(event_created),
        );
        crate::CONSUMES
            .into_iter()
            .map(|topic| Consumer {
                db: self.db.clone(),
                bus: bus.clone(),
                topic,
                group: crate::GROUP,
                handler: handler.clone(),
            })
            .collect()
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    fn tasks(&self) -> Vec<BoxFuture<'static, ()>> {
        vec![Box::pin(self.clone().run())]
    }

    async fn prepare(&self) -> anyhow::Result<()> {
        // Every place and counter, before the first visitor asks; every room announced
        // to the modules that check holds and orders against it.
        self.tick().await?;
        self.announce().await
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        WaitingRoom::consistency(self).await
    }

    fn gauges(&self) {
        WaitingRoom::gauges(self);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
