//! The one trait a module implements, and what it is before it runs.
//!
//! The binary keeps a list of modules (their [`Spec`]s and how to build each from the
//! command line); `serve`, `--module`, `migrate`, `replay`, health, readiness, the
//! gauges and the actuator iterate that list and know no module by name.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use futures_util::future::BoxFuture;

use crate::bus::Bus;
use crate::consumer::Consumer;
use crate::db::Migrations;
use crate::health::Check;
use crate::outbox::Relay;

/// What a module is before it runs: its name, its database, its place on the bus.
pub struct Spec {
    /// Its name: `--module NAME`, its database (`NAME.db`, `PREFIX_NAME`), the `module`
    /// label of its metrics and logs.
    pub name: &'static str,
    pub migrations: &'static Migrations,
    /// The topic its outbox is published to.
    pub produces: &'static str,
    /// Its consumer group, and the topics it reads.
    pub group: &'static str,
    pub consumes: &'static [&'static str],
    /// The first segment of its routes' paths (after `/ticketing/api/`, `admin/` and
    /// `audit/`), which names the module in a request's span; or a whole path after
    /// `/ticketing/api/` (`*` for any one segment), which wins over a first segment —
    /// for a route under another module's segment (`admin/events/*/room`).
    pub paths: &'static [&'static str],
    /// The work in flight it reports in `/actuator/backlog`, by key (zero when the
    /// module runs in another process).
    pub backlog: &'static [&'static str],
    /// Describes its metrics to the Prometheus recorder.
    pub describe_metrics: fn(),
}

/// A running module, as the binary composes it.
#[async_trait]
pub trait Module: Send + Sync + 'static {
    fn spec(&self) -> &'static Spec;

    /// Its HTTP routes (the contract's, its audit view, its internal calls).
    fn router(&self) -> Router;

    /// Its event consumers, one per topic it reads.
    fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer>;

    /// The relay that publishes its outbox.
    fn relay(&self) -> &Relay;

    /// Its background tasks besides the relay and the consumers (sweepers, workers).
    fn tasks(&self) -> Vec<BoxFuture<'static, ()>> {
        Vec::new()
    }

    /// What it does before anything of it runs (recovering what a crash left).
    async fn prepare(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// What it does once it runs, before the listener answers (demo data, announcements).
    async fn started(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Whether its database answers.
    async fn ping(&self) -> bool;

    /// Its own checks of DESIGN.md's invariants.
    async fn consistency(&self) -> anyhow::Result<Vec<Check>>;

    /// Its work in flight, by the keys of [`Spec::backlog`].
    async fn backlog(&self) -> anyhow::Result<Vec<(&'static str, i64)>> {
        Ok(Vec::new())
    }

    /// Sets its own gauges (called every couple of seconds).
    fn gauges(&self) {}

    /// For tests that look inside a module of a known type.
    fn as_any(&self) -> &dyn Any;
}

/// Which module serves a route, from the modules' [`Spec::paths`]: for spans and logs.
#[derive(Clone, Default)]
pub struct RouteOwners(Arc<Vec<(&'static str, &'static str)>>);

impl RouteOwners {
    pub fn new<'a>(specs: impl IntoIterator<Item = &'a Spec>) -> Self {
        RouteOwners(Arc::new(
            specs.into_iter().flat_map(|spec| spec.paths.iter().map(|path| (*path, spec.name))).collect(),
        ))
    }

    /// The module a route (its pattern, such as `/ticketing/api/events/{id}/seats`)
    /// belongs to; `boxoffice` for the binary's own routes and unmatched paths.
    pub fn of(&self, route: &str) -> &'static str {
        let rest = ["/ticketing/api/", "/ticketing/", "/"].iter().find_map(|p| route.strip_prefix(p)).unwrap_or(route);
        let whole = |path: &str| {
            path.contains('/')
                && path.split('/').count() == rest.split('/').count()
                && path.split('/').zip(rest.split('/')).all(|(p, r)| p == "*" || p == r)
        };
        if let Some((_, name)) = self.0.iter().find(|(path, _)| whole(path)) {
            return name;
        }
        let rest = rest.strip_prefix("admin/").unwrap_or(rest);
        let rest = rest.strip_prefix("audit/").unwrap_or(rest);
        let first = rest.split('/').next().unwrap_or_default();
        self.0.iter().find(|(path, _)| *path == first).map_or("boxoffice", |(_, name)| name)
    }
}
