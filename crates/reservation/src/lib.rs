//! Reservation: who holds which seat, until when, and which seats are sold.
//!
//! It is the one place that decides a seat's fate. Holds are conditional updates — a
//! seat is taken only if it is free, or held by the same buyer, or its hold has expired
//! — so two buyers can never hold or buy one seat, whatever the concurrency. An order
//! pins its holds through [`contract::holds::Holds`]; a payment turns pinned holds into
//! SOLD; a sweeper frees expired holds. Every change is announced on
//! `reservation.events` for the seat map and the order saga.

pub mod best;
mod choose;
mod consume;
mod holds;
mod http;
pub mod metrics;
mod module;
pub mod states;

use std::sync::Arc;
use std::time::Duration;

use const_format::formatcp;
use contract::events::{CATALOG_TOPIC, ORDER_TOPIC, PAYMENT_TOPIC, WAITINGROOM_TOPIC};
use runtime::clock::Clock;
use runtime::consumer::Consumer;
use runtime::db::Migrations;
use runtime::health::{Check, outbox_check};
use runtime::outbox::Relay;
use runtime::{Db, bus::Bus};

pub use http::router;
pub use module::SPEC;

use crate::states::{HELD, PIN_SOLD, SOLD};

/// The consumer group of this module, and the topics it reads (also what `boxoffice
/// replay` rewinds).
pub const GROUP: &str = "reservation";
pub const CONSUMES: [&str; 4] = [CATALOG_TOPIC, ORDER_TOPIC, PAYMENT_TOPIC, WAITINGROOM_TOPIC];

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

/// Consistency checks read from indexes that hold only the seats they count
/// (`seats_sold_without_order`, `seats_held_without_holder`), not from every seat.
pub(crate) const SOLD_WITHOUT_ORDER: &str =
    formatcp!("SELECT COUNT(*) FROM seats WHERE status = {SOLD} AND order_id IS NULL");
pub(crate) const HELD_WITHOUT_HOLDER: &str =
    formatcp!("SELECT COUNT(*) FROM seats WHERE status = {HELD} AND holder IS NULL");

/// The rules of holding seats.
#[derive(Debug, Clone)]
pub struct HoldPolicy {
    /// Requested hold times are clamped into this range (the original: 5–120 s).
    pub min_secs: i64,
    pub max_secs: i64,
    /// Used when a request names no hold time.
    pub default_secs: i64,
    /// Most seats in one hold request.
    pub max_seats: usize,
    /// Most seats one buyer may hold at once, across shows (0: no limit).
    pub max_held_per_buyer: usize,
    /// Most seats one buyer may hold and buy in one show (0: no limit).
    pub max_seats_per_buyer_per_event: usize,
    /// Most seats held at once from one client address by anonymous buyers (those of a
    /// cookie, and new ones), all of them together (0: no limit). Buyers named by a
    /// bearer token are counted per buyer instead.
    pub max_held_per_address: usize,
    /// Longest a buyer may keep one seat held, from the moment the hold began, however
    /// it is extended or held again (0: no limit). Pinned holds (an order being paid) are
    /// not bound by it.
    pub max_life_secs: i64,
    /// How long a buyer, and an anonymous buyer's address, may not hold again a seat
    /// they let expire; a seat they released they may, but the hold's life goes on from
    /// where it was (0: neither).
    pub cooldown_secs: i64,
    /// Only buyers named by a bearer token may hold: anonymous holds are refused (401).
    pub require_signed_buyers: bool,
    /// How long a pin waits for its order to be confirmed written before it lapses.
    pub pin_lease: Duration,
    /// How often expired holds are freed; no hold outlives its expiry by more.
    pub sweep_interval: Duration,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        HoldPolicy {
            min_secs: 5,
            max_secs: 120,
            default_secs: 60,
            max_seats: 20,
            max_held_per_buyer: 20,
            max_seats_per_buyer_per_event: 0,
            max_held_per_address: 12,
            max_life_secs: 600,
            cooldown_secs: 60,
            require_signed_buyers: false,
            pin_lease: Duration::from_secs(120),
            sweep_interval: Duration::from_millis(500),
        }
    }
}

impl HoldPolicy {
    pub fn clamp(&self, secs: i64) -> i64 {
        secs.clamp(self.min_secs, self.max_secs)
    }

    /// The longest life of a hold in ms; "no limit" is a life no hold reaches (about
    /// 35,000 years), so that one statement serves both.
    pub(crate) fn life_ms(&self) -> i64 {
        if self.max_life_secs > 0 { self.max_life_secs.saturating_mul(1000).min(LIFE_OFF_MS) } else { LIFE_OFF_MS }
    }

    /// Until when a seat given up now is remembered for its last holder (0, the past,
    /// with the cool-down off).
    pub(crate) fn cooldown_until(&self, now: i64) -> i64 {
        if self.cooldown_secs > 0 { now + self.cooldown_secs.saturating_mul(1000) } else { 0 }
    }
}

/// See [`HoldPolicy::life_ms`].
const LIFE_OFF_MS: i64 = 1 << 50;

/// Whether a buyer id names an anonymous buyer (a cookie's, or a new one).
pub fn is_anonymous(buyer: &str) -> bool {
    buyer.starts_with("anon:")
}

/// The key under which an anonymous buyer's address is counted: an IPv4 address as it
/// is, an IPv6 address by its /64 prefix (one subscriber's network; a host that has one
/// can take a new address in it at will), an IPv4-mapped IPv6 address as its IPv4.
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

#[derive(Clone)]
pub struct Reservation {
    db: Db,
    relay: Relay,
    policy: Arc<HoldPolicy>,
    /// Venue shows' free seats, ranked for best available.
    indexes: Arc<choose::Indexes>,
    /// What holds, pins and their expiry are timed by.
    clock: Clock,
    /// Each show's on-sale time and waiting room, as the waiting room announced them.
    doors: runtime::door::Doors,
}

impl Reservation {
    pub fn new(db: Db, bus: Arc<dyn Bus>, policy: HoldPolicy) -> Self {
        let relay = Relay::new("reservation", db.clone(), bus);
        Reservation {
            db,
            relay,
            policy: Arc::new(policy),
            indexes: Arc::default(),
            clock: Clock::system(),
            doors: runtime::door::Doors::new("reservation"),
        }
    }

    /// Times holds, pins, cool-downs and the sweep by `clock` (a manual one in tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The consumers this module runs: seat layouts from the catalog, orders created and
    /// cancelled, payments succeeded.
    pub fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        let handler = Arc::new(consume::handlers(self.clone()));
        CONSUMES
            .into_iter()
            .map(|topic| Consumer {
                db: self.db.clone(),
                bus: bus.clone(),
                topic,
                group: GROUP,
                handler: handler.clone(),
            })
            .collect()
    }

    /// Frees expired holds and lapsed pins, every sweep interval, until dropped.
    pub async fn run_sweeper(self) {
        let mut tick = tokio::time::interval(self.policy.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.sweep().await {
                tracing::warn!(error = format!("{error:#}"), "hold sweep failed");
            }
        }
    }

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        let overdue_after = self.clock.now_millis() - self.policy.sweep_interval.as_millis() as i64 - 2_000;
        let r = self.db.reader();
        let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(r).await };
        Ok(vec![
            Check::count("sold_seats_have_an_order", count(SOLD_WITHOUT_ORDER).await?, "SOLD seats without an order"),
            Check::count("held_seats_have_a_holder", count(HELD_WITHOUT_HOLDER).await?, "HELD seats without a holder"),
            Check::count(
                "sold_seats_match_their_pin",
                count(formatcp!(
                    "SELECT COUNT(*) FROM seats s WHERE s.status = {SOLD} AND NOT EXISTS \
                     (SELECT 1 FROM pins p WHERE p.order_id = s.order_id AND p.state = {PIN_SOLD})"
                ))
                .await?,
                "SOLD seats whose order's pin is not SOLD",
            ),
            Check::count(
                "no_hold_outlives_its_expiry",
                sqlx::query_scalar(formatcp!("SELECT COUNT(*) FROM seats WHERE status = {HELD} AND expires_at < $1"))
                    .bind(overdue_after)
                    .fetch_one(r)
                    .await?,
                "holds past their expiry by more than the sweep interval",
            ),
            outbox_check(&self.relay).await?,
        ])
    }
}
