//! The modules this process runs, as the application built them: what the actuator
//! reports on (health, backlog, consistency) and what tests look inside.

use std::sync::Arc;

use catalog::Catalog;
use order::Orders;
use payment::Payments;
use reservation::Reservation;
use runtime::bus::Bus;
use runtime::outbox::Relay;

/// The modules this process runs (all four in the embedded mode, one with `--module`),
/// for the actuator and for tests that look inside.
#[derive(Clone)]
pub struct Modules {
    pub catalog: Option<Catalog>,
    pub reservation: Option<Reservation>,
    pub orders: Option<Orders>,
    pub payments: Option<Payments>,
    pub bus: Arc<dyn Bus>,
    /// Every consumer group's subscription, `(topic, group)`.
    pub subscriptions: Arc<Vec<(&'static str, &'static str)>>,
}

impl Modules {
    pub fn relays(&self) -> Vec<(&'static str, &Relay)> {
        let mut relays = Vec::new();
        if let Some(m) = &self.catalog {
            relays.push(("catalog", m.relay()));
        }
        if let Some(m) = &self.reservation {
            relays.push(("reservation", m.relay()));
        }
        if let Some(m) = &self.orders {
            relays.push(("order", m.relay()));
        }
        if let Some(m) = &self.payments {
            relays.push(("payment", m.relay()));
        }
        relays
    }

    /// The catalog module; panics in a process that does not run it (tests only).
    pub fn catalog(&self) -> &Catalog {
        self.catalog.as_ref().expect("this process runs the catalog module")
    }

    /// True when every database this process uses answers.
    pub async fn databases_up(&self) -> bool {
        // All at once: each may take the probe's whole timeout when its server is gone.
        let checks = tokio::join!(
            async { if let Some(m) = &self.catalog { m.ping().await } else { true } },
            async { if let Some(m) = &self.reservation { m.ping().await } else { true } },
            async { if let Some(m) = &self.orders { m.ping().await } else { true } },
            async { if let Some(m) = &self.payments { m.ping().await } else { true } },
        );
        checks.0 && checks.1 && checks.2 && checks.3
    }

    /// The consistency checks of every module this process runs.
    pub async fn consistency(&self) -> Vec<(&'static str, anyhow::Result<Vec<runtime::health::Check>>)> {
        let mut out = Vec::new();
        if let Some(m) = &self.catalog {
            out.push(("catalog", m.consistency().await));
        }
        if let Some(m) = &self.reservation {
            out.push(("reservation", m.consistency().await));
        }
        if let Some(m) = &self.orders {
            out.push(("order", m.consistency().await));
        }
        if let Some(m) = &self.payments {
            out.push(("payment", m.consistency().await));
        }
        out
    }
}
