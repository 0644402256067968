//! The seat map follows `reservation.events`.

use contract::api::{SeatStatus, SeatUpdate};
use contract::events::{SeatVersion, SeatsHeld, SeatsReleased, SeatsSold};
use contract::venue::AreaUpdate;
use runtime::Tx;
use runtime::consumer::{Cx, Handlers, Reactor};

use crate::stream::MapChange;
use crate::{Catalog, store};

pub struct SeatProjection {
    pub catalog: Catalog,
}

/// Changes applied in a transaction, streamed once it commits.
type Batch = Vec<(i64, MapChange)>;

/// The projection's consumer: one handler per seat event.
pub fn handlers(catalog: Catalog) -> Handlers<SeatProjection> {
    Handlers::new(SeatProjection { catalog })
        .on::<SeatsHeld>(seats_held)
        .on::<SeatsReleased>(seats_released)
        .on::<SeatsSold>(seats_sold)
}

async fn seats_held(p: &SeatProjection, tx: &mut Tx, e: SeatsHeld, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    apply_seats(&p.catalog, tx, cx.batch, e.event_id, &e.seats, SeatStatus::Held).await
}

async fn seats_released(p: &SeatProjection, tx: &mut Tx, e: SeatsReleased, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    apply_seats(&p.catalog, tx, cx.batch, e.event_id, &e.seats, SeatStatus::Available).await
}

async fn seats_sold(p: &SeatProjection, tx: &mut Tx, e: SeatsSold, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    apply_seats(&p.catalog, tx, cx.batch, e.event_id, &e.seats, SeatStatus::Sold).await
}

async fn apply_seats(
    catalog: &Catalog,
    tx: &mut Tx,
    batch: &mut Batch,
    event_id: i64,
    seats: &[SeatVersion],
    status: SeatStatus,
) -> anyhow::Result<()> {
    let areas = catalog.area_ranges(tx, event_id).await?;
    let mut touched: Vec<i64> = Vec::new();
    let mut last = 0;
    for seat in seats {
        if let Some(version) = store::apply_seat_change(tx, event_id, seat.seat_id, status, seat.version).await? {
            batch.push((event_id, MapChange::Seat(SeatUpdate { seat_id: seat.seat_id, status, version })));
            last = version;
            if let Some(&(area, _, _)) = areas.iter().find(|(_, lo, hi)| (*lo..=*hi).contains(&seat.seat_id))
                && !touched.contains(&area)
            {
                touched.push(area);
            }
        }
    }
    // A standing area's count, once per area and event rather than once per place.
    for area_id in touched {
        let available = store::area_available(tx, event_id, area_id).await?;
        batch.push((event_id, MapChange::Area(AreaUpdate { area_id, available, version: last })));
    }
    Ok(())
}

impl Reactor for SeatProjection {
    type Batch = Batch;

    fn committed(&self, pending: Batch) {
        metrics::counter!(crate::metrics::SEAT_UPDATES).increment(pending.len() as u64);
        for (event_id, update) in pending {
            self.catalog.streams.send(event_id, update);
        }
    }
}
