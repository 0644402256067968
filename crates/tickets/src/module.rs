//! The tickets module as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use runtime::bus::Bus;
use runtime::consumer::Consumer;
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::Tickets;

pub static SPEC: Spec = Spec {
    name: "tickets",
    migrations: &crate::store::MIGRATIONS,
    produces: crate::TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    paths: &["tickets", "checkin"],
    backlog: &[],
    describe_metrics: crate::metrics::describe,
};

#[async_trait]
impl Module for Tickets {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        Tickets::consumers(self, bus)
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Tickets::consistency(self).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
