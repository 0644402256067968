//! The event envelope and every event the modules exchange.
//!
//! Events travel in an [`Envelope`] written to the producing module's outbox in the
//! same transaction as the state change. Each event type names its topic and its key:
//! the show's event id for seat events, the order id for order and payment events, so
//! one key's events stay in order while different keys run in parallel.
//!
//! An order's `order_id` in events is its internal reference (a UUID derived from the
//! buyer's idempotency key, known before the order is written, so a retried request pins
//! the same order); its public number, the API's integer `orderId`, is `order_no`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::Millis;
use crate::reasons::{CancelReason, PaymentFailReason, ReleaseReason, SaleFailReason};

pub const CATALOG_TOPIC: &str = "catalog.events";
pub const RESERVATION_TOPIC: &str = "reservation.events";
pub const ORDER_TOPIC: &str = "order.events";
pub const PAYMENT_TOPIC: &str = "payment.events";
pub const WAITINGROOM_TOPIC: &str = "waitingroom.events";

/// `{ id (UUIDv7), type, version, aggregateId, occurredAt, traceparent, payload }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub aggregate_id: String,
    pub occurred_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The event's JSON as it was written: kept as text, so that a consumer parses it
    /// once, straight into the event type it wants.
    pub payload: Box<RawValue>,
}

/// An event type: its topic, its name in the envelope, and the key that orders it.
pub trait DomainEvent: Serialize + DeserializeOwned {
    const TOPIC: &'static str;
    const TYPE: &'static str;
    fn key(&self) -> String;
}

impl Envelope {
    pub fn wrap<E: DomainEvent>(event: &E, occurred_at: Millis, traceparent: Option<String>) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            kind: E::TYPE.to_owned(),
            version: 1,
            aggregate_id: event.key(),
            occurred_at,
            traceparent,
            payload: serde_json::value::to_raw_value(event).expect("events serialize"),
        }
    }

    /// Decodes the payload as `E` when the envelope carries that type.
    pub fn decode<E: DomainEvent>(&self) -> Option<Result<E, serde_json::Error>> {
        (self.kind == E::TYPE).then(|| serde_json::from_str(self.payload.get()))
    }
}

macro_rules! event {
    ($name:ident, $topic:expr, |$e:ident| $key:expr) => {
        impl DomainEvent for $name {
            const TOPIC: &'static str = $topic;
            const TYPE: &'static str = stringify!($name);
            fn key(&self) -> String {
                let $e = self;
                $key
            }
        }
    };
}

// ---- catalog.events -------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatSpec {
    pub seat_id: i64,
    pub r: i64,
    pub c: i64,
    pub price: i64,
    /// A venue seat's place (for best available); absent for a grid show's seats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<crate::venue::PlacedSeat>,
    /// The standing area this place belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_id: Option<i64>,
}

/// Most seats one event carries, so that an event stays well under a broker's message
/// size limit (Kafka's default is 1 MB); a large show is announced in several events.
pub const SEATS_PER_EVENT: usize = 2_000;

/// A show was put on sale with (part of) this seat layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCreated {
    pub event_id: i64,
    pub seats: Vec<SeatSpec>,
    /// A venue's sections, by the index `SeatSpec::place` names: their names and the
    /// points "best" is measured from. Empty for a grid show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<crate::venue::SectionFocus>,
    /// The on-sale time and waiting room the show was created with, if any: the modules
    /// that check holds and orders keep it from the moment they know the seats (as a
    /// `RoomSettingsChanged` of version 0, which any announcement of the waiting room
    /// supersedes), and the waiting room sets up the room from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<crate::room::RoomPlan>,
    /// The show's title and date, as created (for what is printed on its tickets);
    /// absent in events of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
}

impl EventCreated {
    /// The door the show was created with, as the checking modules keep it.
    pub fn door(&self) -> Option<RoomSettingsChanged> {
        let room = self.room?;
        Some(RoomSettingsChanged {
            event_id: self.event_id,
            on_sale_at: room.on_sale_at,
            enabled: room.enabled,
            version: 0,
        })
    }
}
event!(EventCreated, CATALOG_TOPIC, |e| e.event_id.to_string());

/// An operator reset a show: every hold and sale of it is void, its orders cancelled
/// and refunded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReset {
    pub event_id: i64,
    pub reset_at: Millis,
}
event!(EventReset, CATALOG_TOPIC, |e| e.event_id.to_string());

// ---- reservation.events ---------------------------------------------------------

/// A seat's new state and the reservation module's version of that seat, so a
/// projection can apply changes idempotently and in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatVersion {
    pub seat_id: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatsHeld {
    pub event_id: i64,
    pub seats: Vec<SeatVersion>,
    pub expires_at: Millis,
}
event!(SeatsHeld, RESERVATION_TOPIC, |e| e.event_id.to_string());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatsReleased {
    pub event_id: i64,
    pub seats: Vec<SeatVersion>,
    pub reason: ReleaseReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}
event!(SeatsReleased, RESERVATION_TOPIC, |e| e.event_id.to_string());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatsSold {
    pub event_id: i64,
    pub order_id: String,
    pub seats: Vec<SeatVersion>,
}
event!(SeatsSold, RESERVATION_TOPIC, |e| e.event_id.to_string());

/// A payment succeeded but the order's seats could not be sold (its holds were lost).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatsSaleFailed {
    pub event_id: i64,
    pub order_id: String,
    pub reason: SaleFailReason,
}
event!(SeatsSaleFailed, RESERVATION_TOPIC, |e| e.event_id.to_string());

// ---- order.events ---------------------------------------------------------------

/// How many orders one order process can settle a second within its settle target, by
/// its admission control (`limit / target`), and how many it settled in time over the
/// last report's span: the signal a waiting room in `auto` lets visitors through by.
/// Sent every few seconds by each process running the order module (`reporter`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCapacity {
    pub reporter: String,
    pub per_second: f64,
    pub settled_per_second: f64,
    pub reported_at: Millis,
}
event!(OrderCapacity, ORDER_TOPIC, |e| e.reporter.clone());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub order_id: String,
    /// The order's public number (`orderId` in the API). Absent only in events written
    /// before orders had numbers; `OrderNumbered` announces theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_no: Option<i64>,
    pub event_id: i64,
    pub seat_ids: Vec<i64>,
    pub amount: i64,
    pub buyer: String,
    pub created_at: Millis,
}
event!(OrderCreated, ORDER_TOPIC, |e| e.order_id.clone());

/// The public number of an order created before orders had numbers, announced once
/// after the upgrade that numbered them, so that the modules that keep it learn it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderNumbered {
    pub order_id: String,
    pub order_no: i64,
}
event!(OrderNumbered, ORDER_TOPIC, |e| e.order_id.clone());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderConfirmed {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_no: Option<i64>,
    pub event_id: i64,
}
event!(OrderConfirmed, ORDER_TOPIC, |e| e.order_id.clone());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_no: Option<i64>,
    pub event_id: i64,
    pub reason: CancelReason,
}
event!(OrderCancelled, ORDER_TOPIC, |e| e.order_id.clone());

// ---- payment.events -------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceeded {
    pub payment_id: String,
    pub order_id: String,
    pub amount: i64,
}
event!(PaymentSucceeded, PAYMENT_TOPIC, |e| e.order_id.clone());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub payment_id: String,
    pub order_id: String,
    pub reason: PaymentFailReason,
}
event!(PaymentFailed, PAYMENT_TOPIC, |e| e.order_id.clone());

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub payment_id: String,
    pub order_id: String,
    pub amount: i64,
}
event!(PaymentRefunded, PAYMENT_TOPIC, |e| e.order_id.clone());

// ---- waitingroom.events ---------------------------------------------------------

/// A show's on-sale time or waiting room changed (or the room announces itself again):
/// the modules that hold seats and take orders refuse them before `on_sale_at` and,
/// while `enabled`, without an admission token. `version` grows with every change of
/// the room, so a consumer keeps the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSettingsChanged {
    pub event_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_sale_at: Option<Millis>,
    pub enabled: bool,
    pub version: i64,
}
event!(RoomSettingsChanged, WAITINGROOM_TOPIC, |e| e.event_id.to_string());
