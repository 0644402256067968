//! The states of the reservation module's rows, and how SQL spells them: the one place
//! that does.
//!
//! Statements name a state by the constants below, composed into the statement at
//! compile time (`const_format::formatcp!`, or `format!` where the statement is built
//! anyway): a statement's text stays one constant, as before — prepared once, and the
//! partial indexes whose conditions name a state (`WHERE status = 'HELD'`) still serve it.

pub use contract::api::SeatStatus;

contract::text_enum! {
    /// Where a pin is in its life (`pins.state`): made for a lease when an order pins the
    /// buyer's holds, kept once the order exists, and sold or let go.
    pub enum PinState {
        /// Made, waiting for its order to be written; lapses when the lease runs out.
        Leased = "LEASED",
        /// Its order was written (`OrderCreated`): it holds until paid or cancelled.
        Confirmed = "CONFIRMED",
        /// Paid: its seats are SOLD.
        Sold = "SOLD",
        /// Its order was not seen within the lease: its seats were freed.
        Lapsed = "LAPSED",
        /// Its order was cancelled, or its show reset: its seats were freed.
        Released = "RELEASED",
        /// Paid, but its seats could not all be sold (`SeatsSaleFailed`).
        Failed = "FAILED",
    }
}

contract::text_enum! {
    /// How a seat's last hold ended (`seats.last_how`), remembered for its holder until
    /// `last_until` (the cool-down, and the rest of the hold's life).
    pub enum HoldEnd {
        /// The holder released it.
        Released = "RELEASED",
        /// It ran out of time.
        Expired = "EXPIRED",
    }
}

/// `seats.status` in SQL.
pub const AVAILABLE: &str = SeatStatus::Available.quoted();
pub const HELD: &str = SeatStatus::Held.quoted();
pub const SOLD: &str = SeatStatus::Sold.quoted();

/// `pins.state` in SQL.
pub const PIN_LEASED: &str = PinState::Leased.quoted();
pub const PIN_CONFIRMED: &str = PinState::Confirmed.quoted();
pub const PIN_SOLD: &str = PinState::Sold.quoted();
pub const PIN_LAPSED: &str = PinState::Lapsed.quoted();
pub const PIN_RELEASED: &str = PinState::Released.quoted();
pub const PIN_FAILED: &str = PinState::Failed.quoted();

/// `seats.last_how` in SQL.
pub const HOLD_RELEASED: &str = HoldEnd::Released.quoted();
pub const HOLD_EXPIRED: &str = HoldEnd::Expired.quoted();

#[cfg(test)]
mod tests {
    use super::*;

    /// Each state reads back from its text, and SQL spells it as it always has.
    #[test]
    fn every_state_round_trips_its_text() {
        for state in PinState::ALL {
            assert_eq!(PinState::parse(state.as_str()), Some(*state));
        }
        for end in HoldEnd::ALL {
            assert_eq!(HoldEnd::parse(end.as_str()), Some(*end));
        }
        assert_eq!([AVAILABLE, HELD, SOLD], ["'AVAILABLE'", "'HELD'", "'SOLD'"]);
        assert_eq!(
            [PIN_LEASED, PIN_CONFIRMED, PIN_SOLD, PIN_LAPSED, PIN_RELEASED, PIN_FAILED],
            ["'LEASED'", "'CONFIRMED'", "'SOLD'", "'LAPSED'", "'RELEASED'", "'FAILED'"]
        );
        assert_eq!([HOLD_RELEASED, HOLD_EXPIRED], ["'RELEASED'", "'EXPIRED'"]);
    }
}
