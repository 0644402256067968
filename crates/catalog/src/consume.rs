//! The seat map follows `reservation.events`.

use std::sync::Mutex;

use async_trait::async_trait;
use contract::api::{SeatStatus, SeatUpdate};
use contract::events::{DomainEvent, Envelope, SeatVersion, SeatsHeld, SeatsReleased, SeatsSold};
use runtime::Tx;
use runtime::consumer::Handler;

use crate::{Catalog, store};

pub struct SeatProjection {
    pub catalog: Catalog,
    /// Changes applied in the open transaction, streamed once it commits.
    pub pending: Mutex<Vec<(i64, SeatUpdate)>>,
}

impl SeatProjection {
    async fn apply_seats(
        &self,
        tx: &mut Tx,
        event_id: i64,
        seats: &[SeatVersion],
        status: SeatStatus,
    ) -> anyhow::Result<()> {
        for seat in seats {
            if let Some(version) = store::apply_seat_change(tx, event_id, seat.seat_id, status, seat.version).await? {
                let update = SeatUpdate { seat_id: seat.seat_id, status, version };
                self.pending.lock().expect("pending lock").push((event_id, update));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for SeatProjection {
    async fn apply(&self, tx: &mut Tx, event: &Envelope) -> anyhow::Result<()> {
        if let Some(e) = event.decode::<SeatsHeld>() {
            let e = e?;
            self.apply_seats(tx, e.event_id, &e.seats, SeatStatus::Held).await
        } else if let Some(e) = event.decode::<SeatsReleased>() {
            let e = e?;
            self.apply_seats(tx, e.event_id, &e.seats, SeatStatus::Available).await
        } else if let Some(e) = event.decode::<SeatsSold>() {
            let e = e?;
            self.apply_seats(tx, e.event_id, &e.seats, SeatStatus::Sold).await
        } else {
            Ok(())
        }
    }

    fn wants(&self, kind: &str) -> bool {
        [SeatsHeld::TYPE, SeatsReleased::TYPE, SeatsSold::TYPE].contains(&kind)
    }

    fn committed(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
        metrics::counter!(crate::metrics::SEAT_UPDATES).increment(pending.len() as u64);
        for (event_id, update) in pending {
            self.catalog.streams.send(event_id, update);
        }
    }

    fn aborted(&self) {
        self.pending.lock().expect("pending lock").clear();
    }
}
