//! The seat map follows `reservation.events`.

use contract::api::{SeatStatus, SeatUpdate};
use contract::events::{SeatVersion, SeatsHeld, SeatsReleased, SeatsSold};
use runtime::Tx;
use runtime::consumer::{Cx, Handlers, Reactor};

use crate::{Catalog, store};

pub struct SeatProjection {
    pub catalog: Catalog,
}

/// Changes applied in a transaction, streamed once it commits.
type Batch = Vec<(i64, SeatUpdate)>;

/// The projection's consumer: one handler per seat event.
pub fn handlers(catalog: Catalog) -> Handlers<SeatProjection> {
    Handlers::new(SeatProjection { catalog })
        .on::<SeatsHeld>(seats_held)
        .on::<SeatsReleased>(seats_released)
        .on::<SeatsSold>(seats_sold)
}

async fn seats_held(_: &SeatProjection, tx: &mut Tx, e: SeatsHeld, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    apply_seats(tx, cx.batch, e.event_id, &e.seats, SeatStatus::Held).await
}

async fn seats_released(_: &SeatProjection, tx: &mut Tx, e: SeatsReleased, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    apply_seats(tx, cx.batch, e.event_id, &e.seats, SeatStatus::Available).await
}

async fn seats_sold(_: &SeatProjection, tx: &mut Tx, e: SeatsSold, cx: Cx<'_, Batch>) -> anyhow::Result<()> {
    apply_seats(tx, cx.batch, e.event_id, &e.seats, SeatStatus::Sold).await
}

async fn apply_seats(
    tx: &mut Tx,
    batch: &mut Batch,
    event_id: i64,
    seats: &[SeatVersion],
    status: SeatStatus,
) -> anyhow::Result<()> {
    for seat in seats {
        if let Some(version) = store::apply_seat_change(tx, event_id, seat.seat_id, status, seat.version).await? {
            batch.push((event_id, SeatUpdate { seat_id: seat.seat_id, status, version }));
        }
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
