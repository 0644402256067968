//! The payment module as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use contract::events::PAYMENT_TOPIC;
use futures_util::future::BoxFuture;
use runtime::bus::Bus;
use runtime::consumer::Consumer;
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::Payments;

pub static SPEC: Spec = Spec {
    name: "payment",
    migrations: &crate::MIGRATIONS,
    produces: PAYMENT_TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    paths: &["payments", "payment"],
    backlog: &["gatewayCallsPending"],
    describe_metrics: crate::metrics::describe,
};

#[async_trait]
impl Module for Payments {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        Payments::consumers(self, bus)
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    fn tasks(&self) -> Vec<BoxFuture<'static, ()>> {
        vec![Box::pin(self.clone().run_workers())]
    }

    async fn prepare(&self) -> anyhow::Result<()> {
        if self.sole_worker {
            self.reclaim_abandoned_calls().await?;
        }
        Ok(())
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Payments::consistency(self).await
    }

    async fn backlog(&self) -> anyhow::Result<Vec<(&'static str, i64)>> {
        Ok(vec![("gatewayCallsPending", self.pending().await?)])
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
