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
use contract::venue::{PlacedSeat, Point, SectionFocus, VenueLayout};
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

/// The section and category of a grid show's seats, as best available knows them.
pub const GRID_SECTION: &str = "Main";
pub const GRID_CATEGORY: &str = "standard";

/// A show's seats as the catalog records and announces them.
pub(crate) struct Layout {
    /// v1's size: a grid's; a venue's rows in all and its longest row.
    pub rows: i64,
    pub cols: i64,
    pub seats: Vec<SeatSpec>,
    pub sections: Vec<SectionFocus>,
}

impl Layout {
    /// A grid: the seat `seat_id(index)` at row r, column c (index `(r - 1) × cols + (c - 1)`),
    /// costing `base_price + c × column_step`.
    pub(crate) fn grid(spec: &CreateEvent, seat_id: impl Fn(i64) -> i64) -> Layout {
        let mut seats = Vec::with_capacity((spec.rows * spec.cols) as usize);
        for r in 1..=spec.rows {
            for c in 1..=spec.cols {
                // A grid is a venue of one section, the stage before its first row: so
                // best available serves it too (the map itself stays v1's).
                let place = PlacedSeat {
                    section: 0,
                    row: (r - 1) as u32,
                    position: (c - 1) as u32,
                    label: c.to_string(),
                    category: GRID_CATEGORY.to_owned(),
                    x: c as f64,
                    y: r as f64,
                    accessible: false,
                    companion: false,
                    restricted_view: false,
                };
                seats.push(SeatSpec {
                    seat_id: seat_id((r - 1) * spec.cols + (c - 1)),
                    r,
                    c,
                    price: spec.base_price + c * spec.column_step,
                    place: Some(place),
                    area_id: None,
                });
            }
        }
        let stage = Point { x: (spec.cols + 1) as f64 / 2.0, y: 0.0 };
        let sections = vec![SectionFocus { name: GRID_SECTION.to_owned(), focal: stage }];
        Layout { rows: spec.rows, cols: spec.cols, seats, sections }
    }

    /// A venue: its seats numbered from 1 in layout order (v1's `r` counts rows across
    /// the venue, `c` is the seat's position in its row), then each standing area's
    /// places, priced by their category.
    fn venue(venue: &VenueLayout) -> Layout {
        let price = |key: &str| venue.categories.iter().find(|c| c.key == key).map_or(0, |c| c.price);
        let row_number = |section: u32, row: u32| -> i64 {
            let before: usize = venue.sections[..section as usize].iter().map(|s| s.rows.len()).sum();
            (before + row as usize + 1) as i64
        };
        let mut seats: Vec<SeatSpec> = (1..)
            .zip(venue.placed_seats())
            .map(|(seat_id, p)| SeatSpec {
                seat_id,
                r: row_number(p.section, p.row),
                c: p.position as i64 + 1,
                price: price(&p.category),
                place: Some(p),
                area_id: None,
            })
            .collect();
        for (area_id, area) in (1..).zip(&venue.areas) {
            for c in 1..=area.capacity {
                let seat_id = seats.len() as i64 + 1;
                seats.push(SeatSpec {
                    seat_id,
                    r: 0,
                    c,
                    price: price(&area.category),
                    place: None,
                    area_id: Some(area_id),
                });
            }
        }
        let rows = venue.sections.iter().map(|s| s.rows.len() as i64).sum();
        let cols = venue.sections.iter().flat_map(|s| &s.rows).map(|r| r.seats.len() as i64).max().unwrap_or(0);
        let sections =
            venue.sections.iter().map(|s| SectionFocus { name: s.name.clone(), focal: s.focal_point() }).collect();
        Layout { rows, cols, seats, sections }
    }
}

/// A show's standing areas, each with the first and last id of its places.
type AreaRanges = Arc<Vec<(i64, i64, i64)>>;

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
    /// Each show's standing areas as runs of place ids, read once (a show's areas never
    /// change); empty for a grid show.
    area_ranges: Arc<std::sync::Mutex<std::collections::HashMap<i64, AreaRanges>>>,
}

impl Catalog {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        let relay = Relay::new("catalog", db.clone(), bus);
        Catalog {
            db,
            relay,
            streams: Arc::new(stream::Hub::default()),
            open_test_reset: false,
            seed_demo: false,
            area_ranges: Arc::default(),
        }
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

    /// A show's standing areas and the runs of their places' ids.
    pub(crate) async fn area_ranges(&self, tx: &mut runtime::Tx, event_id: i64) -> anyhow::Result<AreaRanges> {
        if let Some(known) = self.area_ranges.lock().expect("area ranges lock").get(&event_id) {
            return Ok(known.clone());
        }
        let ranges = Arc::new(store::area_ranges(tx, event_id).await?);
        self.area_ranges.lock().expect("area ranges lock").insert(event_id, ranges.clone());
        Ok(ranges)
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

    /// Puts a show on sale: the event, its seats (a grid's numbered 1 to rows × cols, row
    /// by row; a venue's in layout order, then its standing places), and `EventCreated`,
    /// in one transaction.
    pub async fn create_event(&self, spec: &CreateEvent) -> anyhow::Result<contract::api::Event> {
        let layout = match &spec.venue {
            Some(venue) => Layout::venue(venue),
            None => Layout::grid(spec, |index| index + 1),
        };
        self.create_event_laid_out(spec, layout).await
    }

    async fn create_event_laid_out(&self, spec: &CreateEvent, layout: Layout) -> anyhow::Result<contract::api::Event> {
        let mut tx = self.db.begin().await?;
        let id = store::insert_event(&mut tx, spec, &layout).await?;
        store::insert_seats(&mut tx, id, &layout.seats, spec.venue.as_ref()).await?;
        // Validated with the request: a show made here (the demo) asks for no room.
        let room = spec.room_plan().ok().flatten();
        for part in layout.seats.chunks(SEATS_PER_EVENT) {
            let created = EventCreated {
                event_id: id,
                seats: part.to_vec(),
                sections: layout.sections.clone(),
                room,
                title: Some(spec.title.clone()),
                date_time: Some(spec.date_time.clone()),
            };
            outbox::append(&mut tx, &created).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        tracing::info!(
            event_id = id,
            rows = layout.rows,
            cols = layout.cols,
            places = layout.seats.len(),
            "event created"
        );
        Ok(contract::api::Event {
            id,
            title: spec.title.clone(),
            date_time: spec.date_time.clone(),
            description: spec.description.clone(),
            rows: layout.rows,
            cols: layout.cols,
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
                venue: None,
                on_sale_at: None,
                waiting_room: None,
            };
            let layout = Layout::grid(&spec, |index| demo_seat_id(show, index));
            self.create_event_laid_out(&spec, layout).await?;
        }
        let venue = venue_demo::demo_venue();
        let spec = CreateEvent {
            title: "Carmen at the Grand Theatre".to_owned(),
            date_time: "2026-03-14T19:30:00".to_owned(),
            description: "Bizet's opera in a theatre of stalls, a circle, a balcony and a standing floor.".to_owned(),
            rows: 0,
            cols: 0,
            base_price: 0,
            column_step: 0,
            venue: Some(venue.clone()),
            on_sale_at: None,
            waiting_room: None,
        };
        self.create_event_laid_out(&spec, Layout::venue(&venue)).await?;
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
                "areas_hold_their_capacity",
                store::areas_with_wrong_capacity(self.db.reader()).await?,
                "standing areas whose places are not as many as their capacity",
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
