//! The waiting room: a fair door in front of a show's on-sale.
//!
//! Visitors join a show's queue (a pre-queue before the on-sale, shuffled at the
//! on-sale from a recorded seed; arrival order after), are let through in queue order at
//! the room's rate, and get a signed admission token bound to them and the show. Places
//! and the serving counter live in memory, refreshed from the module's own database by
//! one background task: a join is one write, and asking for one's place reads no
//! database.

mod http;
pub mod metrics;
mod module;
pub mod queue;
mod store;
#[cfg(test)]
mod tests;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use contract::Millis;
use runtime::bus::Bus;
use runtime::clock::Clock;
use runtime::outbox::Relay;
use runtime::{Db, health::Check};

pub use http::router;
pub use module::SPEC;
pub use store::MIGRATIONS;

use queue::{Rate, Room, Settings, Timing, View};

/// The topic of this module's outbox: each show's settings (`RoomSettingsChanged`), which
/// the reservation and order modules check holds and orders against.
pub const TOPIC: &str = contract::events::WAITINGROOM_TOPIC;
/// Its consumer group; it reads the order module's capacity (`OrderCapacity`), the
/// signal of a room in `auto`, and the shows created with an on-sale time or a room
/// (`EventCreated`).
pub const GROUP: &str = "waitingroom";
pub const CONSUMES: [&str; 2] = [contract::events::ORDER_TOPIC, contract::events::CATALOG_TOPIC];

/// The slowest and the fastest a room in `auto` lets visitors through, a minute.
pub const AUTO_FLOOR_PER_MINUTE: f64 = 60.0;
pub const AUTO_CEILING_PER_MINUTE: f64 = 600_000.0;
/// A capacity report older than this is no longer counted (its process may be gone).
const REPORT_STALE_MS: Millis = 30_000;

/// Visitors who look gone checked against storage in one round, at most.
const SUSPECTS: usize = 500;

/// How the room behaves.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How long a visitor may neither poll nor listen before losing the place.
    pub grace: Duration,
    /// How long an admission (and its token) lasts.
    pub token_window: Duration,
    /// How often places and counters are refreshed from storage and moved on.
    pub refresh: Duration,
    /// The rate of a room in `auto` while no order process reports its capacity (none
    /// runs with `--settle-target-ms`).
    pub auto_per_minute: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            grace: Duration::from_secs(60),
            token_window: Duration::from_secs(600),
            refresh: Duration::from_millis(250),
            auto_per_minute: 600,
        }
    }
}

/// What the modules that check holds and orders are told of a show's room.
fn announcement(event_id: i64, s: &Settings, version: i64) -> contract::events::RoomSettingsChanged {
    contract::events::RoomSettingsChanged { event_id, on_sale_at: s.on_sale_at, enabled: s.enabled, version }
}

/// A room as the operator checks it.
pub struct Audit {
    pub settings: Settings,
    /// The recorded shuffle of the pre-queue.
    pub draw: Option<queue::Draw>,
    /// Entry ids in queue order.
    pub order: Vec<i64>,
    /// Positions the serving counter has passed.
    pub served: u64,
    pub waiting: usize,
    pub figures: queue::Figures,
}

/// A join's outcome.
pub struct Joined {
    pub view: View,
    /// False for a repeat.
    pub created: bool,
}

/// The waiting room module.
#[derive(Clone)]
pub struct WaitingRoom {
    db: Db,
    relay: Relay,
    clock: Clock,
    policy: Policy,
    rooms: Arc<Mutex<HashMap<i64, Room>>>,
    /// The order processes' last capacity reports, by reporter: orders a second.
    capacity: Arc<Mutex<HashMap<String, (f64, Millis)>>>,
}

impl WaitingRoom {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        let relay = Relay::new("waitingroom", db.clone(), bus);
        WaitingRoom {
            db,
            relay,
            clock: Clock::system(),
            policy: Policy::default(),
            rooms: Arc::default(),
            capacity: Arc::default(),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    fn timing(&self) -> Timing {
        Timing {
            grace_ms: self.policy.grace.as_millis() as Millis,
            window_ms: self.policy.token_window.as_millis() as Millis,
        }
    }

    fn per_minute(&self, rate: Rate) -> f64 {
        match rate {
            Rate::PerMinute(n) => f64::from(n),
            Rate::Auto => self.auto_per_minute(),
        }
    }

    /// The rate of a room in `auto`: as many visitors a minute as the order processes
    /// say they can settle orders within their settle target (their admission control's
    /// limit over the target, summed over the processes reporting), within the floor
    /// and the ceiling; the policy's rate while none reports.
    pub fn auto_per_minute(&self) -> f64 {
        let now = self.clock.now_millis();
        let mut reports = self.capacity.lock().expect("capacity lock");
        reports.retain(|_, (_, at)| now - *at <= REPORT_STALE_MS);
        if reports.is_empty() {
            return f64::from(self.policy.auto_per_minute);
        }
        let per_second: f64 = reports.values().map(|(per_second, _)| per_second).sum();
        (per_second * 60.0).clamp(AUTO_FLOOR_PER_MINUTE, AUTO_CEILING_PER_MINUTE)
    }

    /// An order process's capacity report (the newest of each reporter counts).
    pub fn heard_capacity(&self, report: &contract::events::OrderCapacity) {
        if !report.per_second.is_finite() || report.per_second < 0.0 {
            return;
        }
        let mut reports = self.capacity.lock().expect("capacity lock");
        let known = reports.entry(report.reporter.clone()).or_insert((report.per_second, report.reported_at));
        if known.1 <= report.reported_at {
            *known = (report.per_second, report.reported_at);
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Room>> {
        self.rooms.lock().expect("rooms lock")
    }

    /// A show's settings, if it has a room (read from storage when this replica has not
    /// seen it yet).
    pub async fn settings(&self, event_id: i64) -> anyhow::Result<Option<Settings>> {
        if let Some(room) = self.rooms().get(&event_id) {
            return Ok(Some(room.settings));
        }
        self.reload(event_id).await?;
        Ok(self.rooms().get(&event_id).map(|r| r.settings))
    }

    /// A show's settings as this replica knows them (no storage read).
    pub fn known_settings(&self, event_id: i64) -> Option<Settings> {
        self.rooms().get(&event_id).map(|r| r.settings)
    }

    /// The time the room goes by.
    pub fn now(&self) -> Millis {
        self.clock.now_millis()
    }

    /// Sets a show's room; returns it as it now is.
    /// The reservation and order modules hear of it (`RoomSettingsChanged`).
    pub async fn configure(&self, event_id: i64, settings: Settings) -> anyhow::Result<Settings> {
        let mut tx = self.db.begin().await?;
        let version = store::save_settings(&mut tx, event_id, &settings).await?;
        runtime::outbox::append(&mut tx, &announcement(event_id, &settings, version)).await?;
        tx.commit().await?;
        self.relay.wake();
        self.reload(event_id).await?;
        tracing::info!(event_id, ?settings, "waiting room set");
        Ok(settings)
    }

    /// Announces every room again (at start: one set before the modules that check it
    /// listened, or before they kept it, is known to them after this).
    pub async fn announce(&self) -> anyhow::Result<()> {
        let rows = store::rooms(self.db.reader()).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for row in &rows {
            runtime::outbox::append(&mut tx, &announcement(row.event_id, &row.settings, row.version)).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        Ok(())
    }

    /// Reads a room and all its places from storage.
    async fn reload(&self, event_id: i64) -> anyhow::Result<()> {
        let Some(row) = store::room(self.db.reader(), event_id).await? else { return Ok(()) };
        let entries = store::entries(self.db.reader(), event_id, 0).await?;
        let mut rooms = self.rooms();
        let room = rooms.entry(event_id).or_default();
        room.load(row.settings, row.draw, row.counter, row.version, entries);
        Ok(())
    }

    /// Joins `buyer` to a show's queue: one place per buyer, a repeat answers it again.
    /// `None` when the show has no room.
    pub async fn join(&self, event_id: i64, buyer: &str) -> anyhow::Result<Option<Joined>> {
        if self.settings(event_id).await?.is_none() {
            return Ok(None);
        }
        if let Some(view) = self.me(event_id, buyer) {
            return Ok(Some(Joined { view, created: false }));
        }
        let now = self.clock.now_millis();
        let mut tx = self.db.begin().await?;
        let inserted = store::insert_entry(&mut tx, event_id, buyer, now).await?;
        tx.commit().await?;
        let (entry, created) = match inserted {
            Some(entry) => (entry, true),
            // Joined on another replica a moment ago.
            None => {
                (store::entry(self.db.reader(), event_id, buyer).await?.context("a place taken cannot be read")?, false)
            }
        };
        ::metrics::counter!(crate::metrics::JOINS).increment(u64::from(created));
        self.rooms().entry(event_id).or_default().add(entry);
        Ok(self.me(event_id, buyer).map(|view| Joined { view, created }))
    }

    /// What `buyer` is told about their place now, from memory; notes that they asked.
    pub fn me(&self, event_id: i64, buyer: &str) -> Option<View> {
        let now = self.clock.now_millis();
        let timing = self.timing();
        let mut rooms = self.rooms();
        let room = rooms.get_mut(&event_id)?;
        if !room.touch(buyer, now, timing) {
            return None;
        }
        room.view(buyer, now, self.per_minute(room.settings.rate), timing)
    }

    /// The admission token of an admitted visitor's view.
    pub fn token(&self, key: &[u8], event_id: i64, buyer: &str, view: &View) -> Option<String> {
        let until = view.admitted_until.filter(|_| view.status == queue::Status::Admitted)?;
        Some(token::issue(key, buyer, event_id, until))
    }

    /// A room's audit: its settings, its recorded draw and its queue order.
    pub fn audit(&self, event_id: i64) -> Option<Audit> {
        let rooms = self.rooms();
        let room = rooms.get(&event_id)?;
        Some(Audit {
            settings: room.settings,
            draw: room.draw,
            order: room.order(),
            served: room.counter.served,
            waiting: room.waiting(),
            figures: room.figures(self.clock.now_millis()),
        })
    }

    /// One round of the background task: every room refreshed from storage, its
    /// pre-queue shuffled when the on-sale has come, and its counter moved on.
    pub async fn tick(&self) -> anyhow::Result<()> {
        let now = self.clock.now_millis();
        let timing = self.timing();
        for row in store::rooms(self.db.reader()).await? {
            let event_id = row.event_id;
            self.flush_news(event_id, now).await?;
            let (known, last) = match self.rooms().get(&event_id) {
                Some(room) => (room.version == row.version, room.last_id()),
                None => (false, 0),
            };
            if known {
                // Only joins since: look back a little for ids committed out of order.
                let fresh = store::entries(self.db.reader(), event_id, (last - 256).max(0)).await?;
                let mut rooms = self.rooms();
                let room = rooms.entry(event_id).or_default();
                for entry in fresh {
                    room.add(entry);
                }
            } else {
                self.reload(event_id).await?;
            }
            self.draw_if_due(event_id, now).await?;
            self.advance(event_id, now, timing).await?;
        }
        Ok(())
    }

    /// Writes who was seen and who lost their place since the last round.
    async fn flush_news(&self, event_id: i64, now: Millis) -> anyhow::Result<()> {
        let Some((seen, lost)) = self.rooms().get_mut(&event_id).map(Room::take_news) else { return Ok(()) };
        if seen.is_empty() && lost.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        store::mark_seen(&mut tx, &seen, now).await?;
        store::mark_no_shows(&mut tx, &lost).await?;
        tx.commit().await?;
        ::metrics::counter!(crate::metrics::NO_SHOWS).increment(lost.len() as u64);
        Ok(())
    }

    async fn draw_if_due(&self, event_id: i64, now: Millis) -> anyhow::Result<()> {
        let draw = match self.rooms().get(&event_id) {
            Some(room) if room.draw_due(now) => room.draw_for(rand::random(), now),
            _ => return Ok(()),
        };
        let mut tx = self.db.begin().await?;
        let won = store::record_draw(&mut tx, event_id, &draw).await?;
        tx.commit().await?;
        if won {
            tracing::info!(event_id, seed = draw.seed, prequeue_last = draw.prequeue_last, "pre-queue shuffled");
        }
        // Ours or another replica's: read the room as recorded.
        self.reload(event_id).await
    }

    async fn advance(&self, event_id: i64, now: Millis, timing: Timing) -> anyhow::Result<()> {
        // Before giving up on anyone, what the other replicas saw of them.
        let suspects = match self.rooms().get(&event_id) {
            Some(room) => room.suspects(now, timing, SUSPECTS),
            None => return Ok(()),
        };
        let heard = store::seen(self.db.reader(), &suspects).await?;
        let (done, counter, version) = {
            let mut rooms = self.rooms();
            let Some(room) = rooms.get_mut(&event_id) else { return Ok(()) };
            for (id, seen_at, no_show) in heard {
                room.heard(id, seen_at, no_show);
            }
            let per_minute = self.per_minute(room.settings.rate);
            let done = room.advance(now, per_minute, timing);
            (done, room.counter, room.version)
        };
        if done.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        let moved = store::record_counter(&mut tx, event_id, &counter, version).await?;
        if moved {
            store::mark_admitted(&mut tx, &done.admitted, now).await?;
            store::mark_no_shows(&mut tx, &done.no_shows).await?;
            tx.commit().await?;
            if let Some(room) = self.rooms().get_mut(&event_id) {
                room.version = version + 1;
            }
            let show = event_id.to_string();
            ::metrics::counter!(crate::metrics::ADMITTED, "event_id" => show).increment(done.admitted.len() as u64);
            for wait in &done.waits {
                ::metrics::histogram!(crate::metrics::TIME_IN_QUEUE).record(*wait as f64 / 1000.0);
            }
            ::metrics::counter!(crate::metrics::NO_SHOWS).increment(done.no_shows.len() as u64);
        } else {
            drop(tx);
            // Another replica moved it: take its counter instead of ours.
            self.reload(event_id).await?;
        }
        Ok(())
    }

    /// Runs [`WaitingRoom::tick`] every refresh interval.
    pub async fn run(self) {
        let mut every = tokio::time::interval(self.policy.refresh);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = self.tick().await {
                tracing::warn!(error = format!("{error:#}"), "waiting room round failed");
            }
        }
    }

    /// Visitors waiting in every room (for the gauge).
    pub fn waiting(&self) -> usize {
        self.rooms().values().map(Room::waiting).sum()
    }

    /// Sets the gauges: visitors waiting, in all and per show, which rooms admit, and
    /// the rate of rooms in `auto`.
    pub fn gauges(&self) {
        use crate::metrics::{AUTO_RATE, OPEN, QUEUE_LENGTH, WAITING};
        let mut all = 0;
        for (event_id, room) in self.rooms().iter() {
            let waiting = room.waiting();
            all += waiting;
            ::metrics::gauge!(QUEUE_LENGTH, "event_id" => event_id.to_string()).set(waiting as f64);
            ::metrics::gauge!(OPEN, "event_id" => event_id.to_string()).set(f64::from(u8::from(room.open())));
        }
        ::metrics::gauge!(WAITING).set(all as f64);
        ::metrics::gauge!(AUTO_RATE).set(self.auto_per_minute());
    }

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        let wrong: usize = self.rooms().values().map(Room::out_of_order).sum();
        Ok(vec![
            runtime::health::outbox_check(&self.relay).await?,
            Check::count("admitted_in_queue_order", wrong as i64, "visitors let through out of queue order"),
        ])
    }
}
