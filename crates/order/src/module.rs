//! The order module as the binary runs it.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use contract::events::ORDER_TOPIC;
use futures_util::future::BoxFuture;
use runtime::bus::Bus;
use runtime::consumer::Consumer;
use runtime::health::Check;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::Orders;

pub static SPEC: Spec = Spec {
    name: "order",
    migrations: &crate::MIGRATIONS,
    produces: ORDER_TOPIC,
    group: crate::GROUP,
    consumes: &crate::CONSUMES,
    paths: &["orders", "order"],
    backlog: &["ordersInFlight"],
    describe_metrics: crate::metrics::describe,
};

#[async_trait]
impl Module for Orders {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        Orders::consumers(self, bus)
    }

    fn relay(&self) -> &Relay {
        &self.relay
    }

    fn tasks(&self) -> Vec<BoxFuture<'static, ()>> {
        let listen = self.listen_for_settlements().map(|task| Box::pin(task) as BoxFuture<'static, ()>);
        let report = self.report_capacity().map(|task| Box::pin(task) as BoxFuture<'static, ()>);
        listen.into_iter().chain(report).collect()
    }

    async fn prepare(&self) -> anyhow::Result<()> {
        // The shows' doors, before the first order.
        self.doors.load(self.db.reader()).await
    }

    async fn started(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        // Once, after the upgrade that numbered the orders written before.
        self.announce_numbers().await.context("failed to announce the numbers of earlier orders")?;
        Ok(())
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Orders::consistency(self).await
    }

    async fn backlog(&self) -> anyhow::Result<Vec<(&'static str, i64)>> {
        Ok(vec![("ordersInFlight", self.in_flight().await?)])
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
