//! The catalog as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use contract::events::CATALOG_TOPIC;
use runtime::bus::Bus;
use runtime::consumer::Consumer;
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::Catalog;

pub static SPEC: Spec = Spec {
    name: "catalog",
    migrations: &crate::store::MIGRATIONS,
    produces: CATALOG_TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    // `test-reset`: the original's `/admin/test-reset`, outside /ticketing/api.
    paths: &["events", "catalog", "test-reset"],
    backlog: &[],
    describe_metrics: crate::metrics::describe,
};

#[async_trait]
impl Module for Catalog {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        Catalog::consumers(self, bus)
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    async fn started(&self) -> anyhow::Result<()> {
        if self.seed_demo {
            use anyhow::Context;
            self.seed_demo().await.context("failed to seed the demo data")?;
        }
        Ok(())
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Catalog::consistency(self).await
    }

    fn gauges(&self) {
        metrics::gauge!(crate::metrics::STREAM_CLIENTS).set(self.all_stream_clients() as f64);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
