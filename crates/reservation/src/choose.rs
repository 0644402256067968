//! Holds whose seats the module chooses: the best available of a venue, and places of a
//! standing area (docs/VENUES.md).
//!
//! Choosing and holding are one step for the buyer, two inside: a proposal from memory
//! (the show's [`VenueIndex`], or a few free places read from the database), then the
//! same conditional hold as a hold of chosen seats — which alone decides, so two buyers
//! never get one seat whatever the proposal believed. A proposal another buyer beat is
//! corrected (the seats it lost are marked taken) and made again; a buyer is told
//! `NOT_ENOUGH_SEATS` only when, after reading the show afresh, nothing fitting is free.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use contract::ErrorCode;
use contract::holds::PinError;
use contract::venue::{PlacedSeat, Point};
use rand::seq::IndexedRandom;
use sqlx::Row;

use crate::Reservation;
use crate::best::{BestRequest, Pick, VenueIndex};
use crate::holds::{HoldOutcome, refused};
use crate::states::{AVAILABLE, HELD, SeatStatus};

/// Proposals made for one request before it is answered 409 `RESERVATION_CONFLICT`:
/// each lost round marks at least one seat taken, so only a rush on the very same seats
/// gets that far.
const ROUNDS: usize = 32;

/// How long a show's index is trusted before it is read again, in the background. What
/// this process holds, releases, sweeps and cancels reaches the index at once
/// ([`Indexes::taken`], [`Indexes::freed`]); the reading catches what other replicas did.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// The least time between two readings of one show, when a pick finds nothing.
const REREAD_AFTER: Duration = Duration::from_millis(100);

/// Each venue show's index of free seats, read from the database when first asked for.
#[derive(Default)]
pub struct Indexes {
    shows: Mutex<HashMap<i64, Arc<Mutex<Cached>>>>,
    /// Held while a show's index is first read: the requests arriving meanwhile wait
    /// for that one reading instead of each reading the whole layout (0.5 s of work at
    /// 50,000 seats).
    loading: tokio::sync::Mutex<()>,
}

struct Cached {
    index: VenueIndex,
    read_at: Instant,
    /// A request is reading the seats' states: the others use the index as it is.
    refreshing: bool,
    /// Seats picked by requests whose holds are not decided yet: a refresh that reads
    /// them free (their holds not committed) leaves them taken.
    in_flight: std::collections::HashSet<i64>,
    /// Seats picked since the refresh under way began (and those in flight then): what
    /// the refresh read of them may be older than what the index knows.
    touched: std::collections::HashSet<i64>,
}

impl Indexes {
    /// Seats this process just held: taken in the show's index, if it has one.
    pub(crate) fn taken(&self, event_id: i64, seat_ids: &[i64]) {
        self.update(event_id, seat_ids, false);
    }

    /// Seats this process just made free (a release, an expiry, a cancelled order, a
    /// reset): offered again at once, not after the next reading.
    pub(crate) fn freed(&self, event_id: i64, seat_ids: &[i64]) {
        self.update(event_id, seat_ids, true);
    }

    fn update(&self, event_id: i64, seat_ids: &[i64], free: bool) {
        let Some(show) = self.shows.lock().expect("indexes lock").get(&event_id).cloned() else { return };
        let mut cached = show.lock().expect("index lock");
        for &id in seat_ids {
            // A seat picked by a request still deciding is that request's to settle.
            if cached.in_flight.contains(&id) {
                continue;
            }
            if free {
                cached.index.mark_free(id);
            } else {
                cached.index.mark_taken(id);
            }
            if cached.refreshing {
                cached.touched.insert(id);
            }
        }
    }
}

/// What a chosen hold gives: the seats (in row order when together) and the hold.
pub struct Chosen {
    pub seat_ids: Vec<i64>,
    pub adjacent: Option<bool>,
    pub outcome: HoldOutcome,
}

fn not_enough(message: impl Into<String>) -> PinError {
    PinError::Refused(refused(ErrorCode::NotEnoughSeats, message))
}

impl Reservation {
    /// Picks the best seats for `request` and holds them for `buyer` in one step.
    pub async fn hold_best(
        &self,
        buyer: &str,
        addr: Option<&str>,
        event_id: i64,
        request: &BestRequest,
        hold_secs: i64,
    ) -> Result<Chosen, PinError> {
        let show = self.index(event_id).await.map_err(PinError::Failed)?;
        let Some(show) = show else {
            return Err(PinError::Refused(refused(
                ErrorCode::ValidationFailed,
                format!("event {event_id} has no venue seats to choose from"),
            )));
        };
        let mut reread = false;
        for round in 1..=ROUNDS {
            // Picked and marked taken at once: requests in this process that pick at the
            // same moment pick different seats, and only another replica's buyer (or an
            // index behind the database) can beat this one to them.
            let pick = {
                let mut cached = show.lock().expect("index lock");
                let pick = cached.index.pick(request);
                for id in pick.iter().flat_map(|p| &p.seat_ids) {
                    cached.index.mark_taken(*id);
                    cached.in_flight.insert(*id);
                    if cached.refreshing {
                        cached.touched.insert(*id);
                    }
                }
                pick
            };
            let Pick { seat_ids, adjacent } = match pick {
                Some(pick) => pick,
                None if !reread => {
                    reread = true;
                    self.reread(event_id, &show).await.map_err(PinError::Failed)?;
                    continue;
                }
                None => return Err(not_enough("not enough fitting seats are available")),
            };
            let mut sorted = seat_ids.clone();
            sorted.sort_unstable();
            let outcome = self.hold(buyer, addr, event_id, &sorted, hold_secs).await;
            {
                let mut cached = show.lock().expect("index lock");
                for id in &sorted {
                    cached.in_flight.remove(id);
                }
            }
            let give_back = |ids: &[i64]| {
                let mut cached = show.lock().expect("index lock");
                for id in ids {
                    cached.index.mark_free(*id);
                }
            };
            match outcome {
                Ok(outcome) => {
                    metrics::histogram!(crate::metrics::CHOOSE_ROUNDS).record(round as f64);
                    let adjacent_label = if adjacent { "true" } else { "false" };
                    metrics::counter!(crate::metrics::CHOSEN, "kind" => "best", "adjacent" => adjacent_label)
                        .increment(1);
                    return Ok(Chosen { seat_ids, adjacent: Some(adjacent), outcome });
                }
                Err(PinError::Refused(r)) if matches!(r.code, ErrorCode::ReservationConflict | ErrorCode::SeatSold) => {
                    // The seats someone else has stay taken; the others are free again —
                    // unless none was taken (this buyer's own cool-down), when all stay
                    // out of the index until its next refresh.
                    let lost = self.not_free(event_id, &sorted).await.map_err(PinError::Failed)?;
                    if !lost.is_empty() {
                        give_back(&sorted.iter().copied().filter(|id| !lost.contains(id)).collect::<Vec<_>>());
                    }
                }
                Err(other) => {
                    give_back(&sorted);
                    return Err(other);
                }
            }
        }
        tracing::warn!(event_id, rounds = ROUNDS, "best available: other buyers took every proposal first");
        Err(PinError::Refused(refused(
            ErrorCode::ReservationConflict,
            "the seats were taken as they were chosen; try again",
        )))
    }

    /// Holds `quantity` places of a standing area for `buyer`, all or none.
    pub async fn hold_area(
        &self,
        buyer: &str,
        addr: Option<&str>,
        event_id: i64,
        area_id: i64,
        quantity: usize,
        hold_secs: i64,
    ) -> Result<Chosen, PinError> {
        for round in 1..=ROUNDS {
            let free = self.free_places(event_id, area_id, quantity).await.map_err(PinError::Failed)?;
            if free.len() < quantity {
                return Err(match self.area_exists(event_id, area_id).await.map_err(PinError::Failed)? {
                    true => not_enough(format!("fewer than {quantity} standing places are available")),
                    false => PinError::Refused(refused(ErrorCode::NotFound, format!("area {area_id} not found"))),
                });
            }
            // A random few of the first free places: buyers arriving together rarely
            // propose the same ones.
            let mut seat_ids: Vec<i64> = free.choose_multiple(&mut rand::rng(), quantity).copied().collect();
            seat_ids.sort_unstable();
            match self.hold(buyer, addr, event_id, &seat_ids, hold_secs).await {
                Ok(outcome) => {
                    metrics::histogram!(crate::metrics::CHOOSE_ROUNDS).record(round as f64);
                    metrics::counter!(crate::metrics::CHOSEN, "kind" => "standing").increment(1);
                    return Ok(Chosen { seat_ids, adjacent: None, outcome });
                }
                Err(PinError::Refused(r)) if matches!(r.code, ErrorCode::ReservationConflict | ErrorCode::SeatSold) => {
                }
                Err(other) => return Err(other),
            }
        }
        Err(PinError::Refused(refused(
            ErrorCode::ReservationConflict,
            "the places were taken as they were chosen; try again",
        )))
    }

    /// The show's index, read now if it is unknown, and read again in the background
    /// when older than [`FRESH_FOR`] (no request waits for that); `None` for a show
    /// without venue seats.
    async fn index(&self, event_id: i64) -> anyhow::Result<Option<Arc<Mutex<Cached>>>> {
        let known = self.indexes.shows.lock().expect("indexes lock").get(&event_id).cloned();
        match known {
            Some(show) => {
                if show.lock().expect("index lock").read_at.elapsed() > FRESH_FOR {
                    let (this, stale) = (self.clone(), show.clone());
                    tokio::spawn(async move {
                        if let Err(error) = this.reread(event_id, &stale).await {
                            tracing::warn!(
                                event_id,
                                error = format!("{error:#}"),
                                "best available: reading the seats failed"
                            );
                        }
                    });
                }
                Ok(Some(show))
            }
            None => {
                let _loading = self.indexes.loading.lock().await;
                if let Some(show) = self.indexes.shows.lock().expect("indexes lock").get(&event_id) {
                    return Ok(Some(show.clone()));
                }
                let Some(index) = self.read_index(event_id).await? else { return Ok(None) };
                let show = Arc::new(Mutex::new(Cached {
                    index,
                    read_at: Instant::now(),
                    refreshing: false,
                    in_flight: Default::default(),
                    touched: Default::default(),
                }));
                let mut shows = self.indexes.shows.lock().expect("indexes lock");
                Ok(Some(shows.entry(event_id).or_insert(show).clone()))
            }
        }
    }

    /// Reads which of the show's seats are free again, unless another request just did:
    /// the layout is read once; a refresh reads the seats' states and marks only the
    /// seats whose state the index has wrong.
    async fn reread(&self, event_id: i64, show: &Mutex<Cached>) -> anyhow::Result<()> {
        {
            let mut cached = show.lock().expect("index lock");
            if cached.refreshing || cached.read_at.elapsed() < REREAD_AFTER {
                return Ok(());
            }
            cached.refreshing = true;
            cached.touched = cached.in_flight.clone();
        }
        let states = self.seat_states(event_id).await;
        let mut cached = show.lock().expect("index lock");
        cached.refreshing = false;
        let states = states?;
        for (id, free) in states {
            if free != cached.index.is_free(id) && !cached.in_flight.contains(&id) && !cached.touched.contains(&id) {
                if free {
                    cached.index.mark_free(id);
                } else {
                    cached.index.mark_taken(id);
                }
            }
        }
        cached.touched.clear();
        cached.read_at = Instant::now();
        Ok(())
    }

    /// The show's venue seats, ranked, with which of them may be held now.
    async fn read_index(&self, event_id: i64) -> anyhow::Result<Option<VenueIndex>> {
        let r = self.db.reader();
        let sections: Vec<(String, Point)> =
            sqlx::query("SELECT name, focal_x, focal_y FROM venue_sections WHERE event_id = $1 ORDER BY idx")
                .bind(event_id)
                .fetch_all(r)
                .await
                .context("failed to read a venue's sections")?
                .iter()
                .map(|row| (row.get("name"), Point { x: row.get("focal_x"), y: row.get("focal_y") }))
                .collect();
        if sections.is_empty() {
            return Ok(None);
        }
        let rows = sqlx::query("SELECT seat_id, place FROM seats WHERE event_id = $1 AND place IS NOT NULL")
            .bind(event_id)
            .fetch_all(r)
            .await
            .context("failed to read a venue's seats")?;
        let mut seats = Vec::with_capacity(rows.len());
        let mut categories: Vec<String> = Vec::new();
        for row in &rows {
            let place: PlacedSeat = serde_json::from_str(&row.get::<String, _>("place"))?;
            if !categories.contains(&place.category) {
                categories.push(place.category.clone());
            }
            seats.push((row.get::<i64, _>("seat_id"), place));
        }
        let mut index = VenueIndex::build(&sections, &categories, seats);
        for (id, free) in self.seat_states(event_id).await? {
            if !free {
                index.mark_taken(id);
            }
        }
        Ok(Some(index))
    }

    /// Each venue seat of the show and whether it may be held now: AVAILABLE, or HELD
    /// unpinned past its expiry.
    async fn seat_states(&self, event_id: i64) -> anyhow::Result<Vec<(i64, bool)>> {
        let now = self.clock.now_millis();
        let rows = sqlx::query(
            "SELECT seat_id, status, expires_at, order_id FROM seats WHERE event_id = $1 AND place IS NOT NULL",
        )
        .bind(event_id)
        .fetch_all(self.db.reader())
        .await
        .context("failed to read a venue's seats")?;
        Ok(rows
            .iter()
            .map(|row| {
                let lapsed = row.get::<Option<i64>, _>("expires_at").is_some_and(|at| at < now)
                    && row.get::<Option<String>, _>("order_id").is_none();
                let free = match SeatStatus::parse(&row.get::<String, _>("status")) {
                    Some(SeatStatus::Available) => true,
                    Some(SeatStatus::Held) => lapsed,
                    _ => false,
                };
                (row.get("seat_id"), free)
            })
            .collect())
    }

    /// Which of `seat_ids` are not free now (held unexpired, pinned, or sold).
    async fn not_free(&self, event_id: i64, seat_ids: &[i64]) -> anyhow::Result<Vec<i64>> {
        let now = self.clock.now_millis();
        let list: Vec<String> = seat_ids.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT seat_id FROM seats WHERE event_id = $1 AND seat_id IN ({}) AND status <> {AVAILABLE} \
             AND NOT (status = {HELD} AND order_id IS NULL AND expires_at < $2)",
            list.join(", ")
        );
        let rows = sqlx::query(&sql).bind(event_id).bind(now).fetch_all(self.db.reader()).await?;
        Ok(rows.iter().map(|r| r.get("seat_id")).collect())
    }

    /// Up to four times `quantity` free places of a standing area, lowest ids first.
    async fn free_places(&self, event_id: i64, area_id: i64, quantity: usize) -> anyhow::Result<Vec<i64>> {
        let sql = format!(
            "SELECT seat_id FROM seats WHERE event_id = $1 AND area_id = $2 AND status = {AVAILABLE} \
             ORDER BY seat_id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(event_id)
            .bind(area_id)
            .bind((quantity * 4) as i64)
            .fetch_all(self.db.reader())
            .await
            .context("failed to read a standing area's free places")?;
        Ok(rows.iter().map(|r| r.get("seat_id")).collect())
    }

    async fn area_exists(&self, event_id: i64, area_id: i64) -> anyhow::Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seats WHERE event_id = $1 AND area_id = $2")
            .bind(event_id)
            .bind(area_id)
            .fetch_one(self.db.reader())
            .await?;
        Ok(n > 0)
    }
}
