//! Live seat maps: one broadcast channel per show, fed by the projection after each
//! commit, read by every SSE client of that show.

use std::collections::HashMap;
use std::sync::Mutex;

use contract::api::SeatUpdate;
use contract::venue::AreaUpdate;
use tokio::sync::broadcast;

/// A change of a show's map: a seat's, or a standing area's count.
#[derive(Debug, Clone)]
pub enum MapChange {
    Seat(SeatUpdate),
    Area(AreaUpdate),
}

/// Updates a slow client may fall behind by before it is sent the whole map again.
const BUFFER: usize = 4096;

#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<i64, broadcast::Sender<MapChange>>>,
}

impl Hub {
    pub fn subscribe(&self, event_id: i64) -> broadcast::Receiver<MapChange> {
        let mut channels = self.channels.lock().expect("hub lock");
        // Channels whose clients have all gone are dropped here.
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.entry(event_id).or_insert_with(|| broadcast::channel(BUFFER).0).subscribe()
    }

    pub fn send(&self, event_id: i64, update: MapChange) {
        let channels = self.channels.lock().expect("hub lock");
        if let Some(tx) = channels.get(&event_id) {
            let _ = tx.send(update);
        }
    }

    /// Clients streaming any show right now.
    pub fn total_clients(&self) -> usize {
        let channels = self.channels.lock().expect("hub lock");
        channels.values().map(|tx| tx.receiver_count()).sum()
    }

    /// Clients streaming a show right now.
    pub fn clients(&self, event_id: i64) -> usize {
        let channels = self.channels.lock().expect("hub lock");
        channels.get(&event_id).map_or(0, |tx| tx.receiver_count())
    }
}
