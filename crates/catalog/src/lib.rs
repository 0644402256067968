//! Catalog: the shows on sale and their seat maps.
//!
//! It owns the events and their seat layouts and prices (created by an operator, or the
//! demo data on first start), announces them on `catalog.events`, and keeps the map that
//! buyers see — a projection of `reservation.events` — streaming every change to
//! browsers over SSE.

mod consume;
mod http;
pub mod metrics;
mod module;
pub mod states;
mod store;
mod stream;
pub mod venue_demo;

use std::sync::Arc;

use contract::api::CreateEvent;
use contract::events::{EventCreated, EventReset, RESERVATION_TOPIC, SEATS_PER_EVENT, SeatSpec};
use runtime::consumer::Consumer;
use runtime::health::{Check, outbox_check};
use runtime::outbox::{self, Relay};
use runtime::{Db, bus::Bus};

pub use http::router;
pub use module::SPEC;
pub use store::MIGRATIONS;

/// The consumer group of this module, and the topics it reads (also what `boxoffice
/// replay` rewinds).
pub const GROUP: &str = "catalog";
pub const CONSUMES: [&str; 1] = [RESERVATION_TOPIC];

/// Shows in the demo data.
pub const DEMO_SHOWS: i64 = 3;

/// The id of the demo show `show`'s seat `index` (row by row from 0): the original's
/// database numbered its seats across shows, the demo shows' interleaved, so show e's
/// seats are e, e + 3, …, e + 297 (show 3's are the 3, 6, …, 300 of its k6 scripts).
pub const fn demo_seat_id(show: i64, index: i64) -> i64 {
    show + DEMO_SHOWS * index
}

/// The catalog module: its database, its relay, and the live seat-map streams.
#[derive(Clone)]
pub struct Catalog {
    db: Db,
    relay: Relay,
    streams: Arc<stream::Hub>,
    /// Whether the original's `POST /admin/test-reset` may be called without the
    /// operator's token (`serve --allow-test-reset`, for test set-ups).
    open_test_reset: bool,
    /// Whether the demo data is seeded on a first start.
    seed_demo: bool,
}

impl Catalog {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        let relay = Relay::new("catalog", db.clone(), bus);
        Catalog { db, relay, streams: Arc::new(stream::Hub::default()), open_test_reset: false, seed_demo: false }
    }

    /// Lets anyone call the original's `POST /admin/test-reset`, as the original did (its
    /// k6 smoke script resets a show between runs); with `false`, only operators.
    pub fn with_open_test_reset(mut self, open: bool) -> Self {
        self.open_test_reset = open;
        self
    }

    /// Seeds the demo data when it starts with no shows (`serve` without `--no-demo`).
    pub fn with_demo(mut self, seed: bool) -> Self {
        self.seed_demo = seed;
        self
    }

    /// Browsers streaming any seat map right now.
    pub fn all_stream_clients(&self) -> usize {
        self.streams.total_clients()
    }

    /// Browsers streaming a show's seat map right now.
    pub fn stream_clients(&self, event_id: i64) -> usize {
        self.streams.clients(event_id)
    }

    /// The consumers this module runs: the seat map follows the reservation module.
    pub fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        let [topic] = CONSUMES;
        vec![Consumer {
            db: self.db.clone(),
            bus,
            topic,
            group: GROUP,
            handler: Arc::new(consume::handlers(self.clone())),
        }]
    }

    /// Puts a show on sale: the event, its seats (numbered 1 to rows × cols, row by row),
    /// and `EventCreated`, in one transaction.
    pub async fn create_event(&self, spec: &CreateEvent) -> anyhow::Result<contract::api::Event> {
        self.create_event_numbered(spec, |index| index + 1).await
    }

    /// [`Catalog::create_event`] with the seat ids `seat_id(index)`, `index` counting the
    /// seats row by row from 0 (`(r - 1) × cols + (c - 1)`).
    async fn create_event_numbered(
        &self,
        spec: &CreateEvent,
        seat_id: impl Fn(i64) -> i64,
    ) -> anyhow::Result<contract::api::Event> {
        let mut tx = self.db.begin().await?;
        let id = store::insert_event(&mut tx, spec).await?;
        let mut seats = Vec::with_capacity((spec.rows * spec.cols) as usize);
        for r in 1..=spec.rows {
            for c in 1..=spec.cols {
                seats.push(SeatSpec {
                    seat_id: seat_id((r - 1) * spec.cols + (c - 1)),
                    r,
                    c,
                    price: spec.base_price + c * spec.column_step,
                });
            }
        }
        store::insert_seats(&mut tx, id, &seats).await?;
        for part in seats.chunks(SEATS_PER_EVENT) {
            outbox::append(&mut tx, &EventCreated { event_id: id, seats: part.to_vec() }).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        tracing::info!(event_id = id, rows = spec.rows, cols = spec.cols, "event created");
        Ok(contract::api::Event {
            id,
            title: spec.title.clone(),
            date_time: spec.date_time.clone(),
            description: spec.description.clone(),
            rows: spec.rows,
            cols: spec.cols,
        })
    }

    /// Voids every hold and sale of a show: the reservation module frees its seats and
    /// the order module cancels (and so refunds) its orders made before now.
    pub async fn reset_event(&self, event_id: i64) -> anyhow::Result<Option<i64>> {
        if store::event(self.db.reader(), event_id).await?.is_none() {
            return Ok(None);
        }
        let reset_at = contract::now_millis();
        let mut tx = self.db.begin().await?;
        outbox::append(&mut tx, &EventReset { event_id, reset_at }).await?;
        tx.commit().await?;
        self.relay.wake();
        tracing::info!(event_id, "event reset");
        Ok(Some(reset_at))
    }

    /// Seeds the original's demo data on a first start: 3 shows of 10×10 seats, a seat in
    /// column c costing 50000 + c × 1000, with the original's seat ids (see
    /// [`demo_seat_id`]), which its k6 scripts hard-code.
    pub async fn seed_demo(&self) -> anyhow::Result<()> {
        if store::count_events(self.db.reader()).await? > 0 {
            return Ok(());
        }
        let shows: [(&str, &str, &str); DEMO_SHOWS as usize] = [
            ("Aurora Live in Seoul", "2025-10-01T19:00:00", "An evening of synth-pop under the northern lights."),
            ("The Nutcracker", "2025-12-20T17:00:00", "The holiday ballet, full orchestra."),
            ("Jazz at the Riverside", "2025-11-08T20:00:00", "A quartet and a long night."),
        ];
        for (show, (title, date_time, description)) in (1..).zip(shows) {
            let spec = CreateEvent {
                title: title.to_owned(),
                date_time: date_time.to_owned(),
                description: description.to_owned(),
                rows: 10,
                cols: 10,
                base_price: 50_000,
                column_step: 1_000,
            };
            self.create_event_numbered(&spec, |index| demo_seat_id(show, index)).await?;
        }
        Ok(())
    }

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        Ok(vec![
            Check::count(
                "seat_count_matches_layout",
                store::events_with_wrong_seat_count(self.db.reader()).await?,
                "events whose seat count differs from rows × cols",
            ),
            Check::count(
                "map_version_matches_changes",
                store::events_with_version_drift(self.db.reader()).await?,
                "events whose version differs from their last seat change",
            ),
            outbox_check(&self.relay).await?,
        ])
    }
}
