//! The waiting room as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use runtime::bus::Bus;
use runtime::consumer::Consumer;
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::WaitingRoom;

pub static SPEC: Spec = Spec {
    name: "waitingroom",
    migrations: &crate::store::MIGRATIONS,
    produces: crate::TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    paths: &["queue"],
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

    fn consumers(&self, _bus: Arc<dyn Bus>) -> Vec<Consumer> {
        Vec::new()
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    fn tasks(&self) -> Vec<BoxFuture<'static, ()>> {
        vec![Box::pin(self.clone().run())]
    }

    async fn prepare(&self) -> anyhow::Result<()> {
        // Every place and counter, before the first visitor asks.
        self.tick().await
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        WaitingRoom::consistency(self).await
    }

    fn gauges(&self) {
        metrics::gauge!(crate::metrics::WAITING).set(self.waiting() as f64);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
