//! The modules the binary knows — one line each in [`MODULES`] — and the ones this
//! process runs, as the application built them: what the actuator reports on (health,
//! backlog, consistency), what the gauges read, and what tests look inside.

use std::sync::Arc;

use futures_util::future::join_all;
use runtime::bus::Bus;
use runtime::db::Db;
use runtime::module::{Module, Spec};
use runtime::outbox::Relay;

use crate::cli::ServeArgs;

/// What a module is built from: the command line, and what the process opened for it.
pub struct Setup<'a> {
    pub args: &'a ServeArgs,
    /// Its own database, opened and migrated.
    pub db: Db,
    pub bus: Arc<dyn Bus>,
    pub admin_token: &'a str,
    /// The modules built before it in this process.
    pub built: &'a [Arc<dyn Module>],
}

/// Builds a module from its setup (see `compose`).
pub type Build = fn(Setup<'_>) -> anyhow::Result<Arc<dyn Module>>;

/// Every module, in the order they are built and started. A new module is one line here
/// (and its crate).
pub const MODULES: [(&Spec, Build); 6] = [
    (&catalog::SPEC, crate::compose::catalog),
    (&reservation::SPEC, crate::compose::reservation),
    (&order::SPEC, crate::compose::order),
    (&payment::SPEC, crate::compose::payment),
    (&waitingroom::SPEC, crate::compose::waitingroom),
    (&tickets::SPEC, crate::compose::tickets),
];

/// The modules a sale can go without (`--without`): the purchase needs the others.
pub const OPTIONAL: [&str; 2] = [waitingroom::SPEC.name, tickets::SPEC.name];

/// The modules' names, for `--module`.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(spec, _)| spec.name)
}

/// The modules this process runs (all in the embedded mode, one with `--module`).
#[derive(Clone)]
pub struct Modules {
    pub running: Vec<Arc<dyn Module>>,
    pub bus: Arc<dyn Bus>,
    /// Every consumer group's subscription, `(topic, group)`.
    pub subscriptions: Arc<Vec<(&'static str, &'static str)>>,
}

impl Modules {
    /// The running module of type `M`, if this process runs it.
    pub fn get<M: Module>(&self) -> Option<&M> {
        self.running.iter().find_map(|m| m.as_any().downcast_ref::<M>())
    }

    /// The catalog module; panics in a process that does not run it (tests only).
    pub fn catalog(&self) -> &catalog::Catalog {
        self.get().expect("this process runs the catalog module")
    }

    pub fn relays(&self) -> Vec<(&'static str, &Relay)> {
        self.running.iter().map(|m| (m.spec().name, m.relay())).collect()
    }

    /// True when every database this process uses answers.
    pub async fn databases_up(&self) -> bool {
        // All at once: each may take the probe's whole timeout when its server is gone.
        join_all(self.running.iter().map(|m| m.ping())).await.into_iter().all(|up| up)
    }

    /// The consistency checks of every module this process runs.
    pub async fn consistency(&self) -> Vec<(&'static str, anyhow::Result<Vec<runtime::health::Check>>)> {
        let mut out = Vec::new();
        for m in &self.running {
            out.push((m.spec().name, m.consistency().await));
        }
        out
    }

    /// Every module's work in flight by its key, zero for modules in other processes.
    pub async fn backlog(&self) -> anyhow::Result<Vec<(&'static str, i64)>> {
        let mut counts: Vec<(&'static str, i64)> =
            MODULES.iter().flat_map(|(spec, _)| spec.backlog.iter().map(|key| (*key, 0))).collect();
        for m in &self.running {
            for (key, n) in m.backlog().await? {
                if let Some(count) = counts.iter_mut().find(|(k, _)| *k == key) {
                    count.1 = n;
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use runtime::module::RouteOwners;

    use super::MODULES;

    #[test]
    fn routes_name_their_module() {
        let owners = RouteOwners::new(MODULES.iter().map(|(spec, _)| *spec));
        assert_eq!(owners.of("/ticketing/api/events/{id}/seats"), "catalog");
        assert_eq!(owners.of("/ticketing/api/admin/events/{id}/reset"), "catalog");
        assert_eq!(owners.of("/admin/test-reset"), "catalog");
        assert_eq!(owners.of("/ticketing/admin/test-reset"), "catalog");
        assert_eq!(owners.of("/ticketing/api/reservations/{event_id}/{seat_id}/extend"), "reservation");
        assert_eq!(owners.of("/ticketing/api/admin/audit/order"), "order");
        assert_eq!(owners.of("/ticketing/api/payments/authorize"), "payment");
        assert_eq!(owners.of("/ticketing/api/admin/events/{event_id}/room"), "waitingroom");
        assert_eq!(owners.of("/ticketing/api/admin/events/{event_id}"), "waitingroom");
        assert_eq!(owners.of("/ticketing/api/events/{id}"), "catalog");
        assert_eq!(owners.of("/ticketing/api/queue/{event_id}/join"), "waitingroom");
        assert_eq!(owners.of("/ticketing/api/checkin"), "tickets");
        assert_eq!(owners.of("/ticketing/api/admin/audit/tickets"), "tickets");
        assert_eq!(owners.of("/actuator/health"), "boxoffice");
        assert_eq!(owners.of("unmatched"), "boxoffice");
    }

    #[test]
    fn module_names_are_unique() {
        let names: std::collections::HashSet<_> = super::names().collect();
        assert_eq!(names.len(), MODULES.len());
    }
}
