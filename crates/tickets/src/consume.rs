//! What the tickets module does with the events it reads.
//!
//! - `EventCreated`: the show's signing key (if it has none), its title and date, and its
//!   seats' labels.
//! - `EventReset`: every ticket of the show issued before the reset is REVOKED.
//! - `OrderCreated`: the order's owner and seats, kept for its tickets.
//! - `OrderNumbered`: an order from before order numbers learns its number.
//! - `OrderConfirmed`: one ticket per seat or standing place, signed, once.
//! - `OrderCancelled`: the order's tickets are REVOKED (a refund, a reset, …).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use contract::events::{
    EventCreated, EventReset, OrderCancelled, OrderConfirmed, OrderCreated, OrderNumbered, SeatSpec,
};
use runtime::Tx;
use runtime::consumer::{Cx, Handlers, Reactor};

use crate::store::{self, NewOrder};
use crate::{Tickets, token};

pub struct Saga {
    pub tickets: Tickets,
}

pub fn handlers(tickets: Tickets) -> Handlers<Saga> {
    Handlers::new(Saga { tickets })
        .on::<EventCreated>(event_created)
        .on::<EventReset>(event_reset)
        .on::<OrderCreated>(order_created)
        .on::<OrderNumbered>(order_numbered)
        .on::<OrderConfirmed>(order_confirmed)
        .on::<OrderCancelled>(order_cancelled)
}

impl Reactor for Saga {
    type Batch = ();
}

/// What a ticket says its place is.
pub fn label(seat: &SeatSpec, sections: &[contract::venue::SectionFocus]) -> String {
    match (&seat.place, seat.area_id) {
        (Some(place), _) => match sections.get(place.section as usize) {
            Some(section) => format!("{}, row {}, seat {}", section.name, place.row + 1, place.label),
            None => format!("Row {}, seat {}", place.row + 1, place.label),
        },
        (None, Some(area)) => format!("Standing (area {area})"),
        (None, None) => format!("Row {}, seat {}", seat.r, seat.c),
    }
}

async fn event_created(s: &Saga, tx: &mut Tx, e: EventCreated, _: Cx<'_, ()>) -> anyhow::Result<()> {
    store::signing_key(tx, e.event_id, s.tickets.now()).await?;
    if let (Some(title), Some(date_time)) = (&e.title, &e.date_time) {
        store::add_show(tx, e.event_id, title, date_time).await?;
    }
    let seats: Vec<(i64, String)> = e.seats.iter().map(|seat| (seat.seat_id, label(seat, &e.sections))).collect();
    store::add_seats(tx, e.event_id, &seats).await
}

async fn event_reset(s: &Saga, tx: &mut Tx, e: EventReset, _: Cx<'_, ()>) -> anyhow::Result<()> {
    let n = store::revoke_show(tx, e.event_id, e.reset_at, s.tickets.now()).await?;
    metrics::counter!(crate::metrics::REVOKED).increment(n);
    Ok(())
}

async fn order_created(s: &Saga, tx: &mut Tx, e: OrderCreated, _: Cx<'_, ()>) -> anyhow::Result<()> {
    let order = NewOrder {
        order_id: &e.order_id,
        order_no: e.order_no,
        event_id: e.event_id,
        buyer: &e.buyer,
        seat_ids: &e.seat_ids,
    };
    store::add_order(tx, &order, s.tickets.now()).await
}

async fn order_numbered(_: &Saga, tx: &mut Tx, e: OrderNumbered, _: Cx<'_, ()>) -> anyhow::Result<()> {
    store::number_order(tx, &e.order_id, e.order_no).await
}

async fn order_confirmed(s: &Saga, tx: &mut Tx, e: OrderConfirmed, _: Cx<'_, ()>) -> anyhow::Result<()> {
    let now = s.tickets.now();
    let Some((event_id, seat_ids)) = store::confirm_order(tx, &e.order_id, e.order_no, now).await? else {
        // Confirmed before (a redelivery), or never heard of: nothing to issue.
        tracing::debug!(order_id = %e.order_id, "no order to issue tickets for");
        return Ok(());
    };
    let (kid, key) = store::signing_key(tx, event_id, now).await?;
    let mut issued = 0;
    for seat in seat_ids {
        let ticket_id = B64.encode(rand::random::<[u8; 9]>());
        let claims = token::Claims { tid: ticket_id.clone(), ev: event_id, seat, nbf: now / 1000 };
        let signed = token::sign(&key, &kid, &claims);
        if store::add_ticket(tx, (&ticket_id, &e.order_id), (event_id, seat), (&kid, &signed), now).await? {
            issued += 1;
        }
    }
    tracing::debug!(order_id = %e.order_id, issued, "tickets issued");
    metrics::counter!(crate::metrics::ISSUED).increment(issued);
    Ok(())
}

async fn order_cancelled(s: &Saga, tx: &mut Tx, e: OrderCancelled, _: Cx<'_, ()>) -> anyhow::Result<()> {
    let n = store::cancel_order(tx, &e.order_id, s.tickets.now()).await?;
    metrics::counter!(crate::metrics::REVOKED).increment(n);
    Ok(())
}
