//! The reservation module as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use contract::events::RESERVATION_TOPIC;
use futures_util::future::BoxFuture;
use runtime::bus::Bus;
use runtime::consumer::Consumer;
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::Reservation;

pub static SPEC: Spec = Spec {
    name: "reservation",
    migrations: &crate::MIGRATIONS,
    produces: RESERVATION_TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    paths: &["reservations", "reservation"],
    backlog: &[],
    describe_metrics: crate::metrics::describe,
};

#[async_trait]
impl Module for Reservation {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        Reservation::consumers(self, bus)
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    fn tasks(&self) -> Vec<BoxFuture<'static, ()>> {
        vec![Box::pin(self.clone().run_sweeper())]
    }

    async fn prepare(&self) -> anyhow::Result<()> {
        // The shows' doors, before the first hold.
        self.doors.load(self.db.reader()).await
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Reservation::consistency(self).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
