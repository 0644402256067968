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

/// The topic of this module's outbox (it announces nothing yet).
pub const TOPIC: &str = "waitingroom.events";
/// Its consumer group; it reads no topic.
pub const GROUP: &str = "waitingroom";
pub const CONSUMES: [&str; 0] = [];

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
    /// The rate of a room in `auto` until it follows the order module's settle target.
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
}

impl WaitingRoom {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        let relay = Relay::new("waitingroom", db.clone(), bus);
        WaitingRoom { db, relay, clock: Clock::system(), policy: Policy::default(), rooms: Arc::default() }
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
            Rate::Auto => f64::from(self.policy.auto_per_minute),
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
    pub async fn configure(&self, event_id: i64, settings: Settings) -> anyhow::Result<Settings> {
        let mut tx = self.db.begin().await?;
        store::save_settings(&mut tx, event_id, &settings).await?;
        tx.commit().await?;
        self.reload(event_id).await?;
        tracing::info!(event_id, ?settings, "waiting room set");
        Ok(settings)
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
            ::metrics::counter!(crate::metrics::ADMITTED).increment(done.admitted.len() as u64);
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

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Ok(vec![runtime::health::outbox_check(&self.relay).await?])
    }
}
