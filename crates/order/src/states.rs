//! The states of an order (`orders.status`), and how SQL spells them: the one place that
//! does.
//!
//! An order's status is the API's [`OrderStatus`]. Statements name a status by the
//! constants below, composed into the statement at compile time
//! (`const_format::formatcp!`): a statement's text stays one constant — prepared once,
//! and the partial indexes whose conditions name a status (`orders_unsettled`,
//! `orders_confirmed_unpaid`) still serve it.

pub use contract::api::OrderStatus;

/// `orders.status` in SQL.
pub const CREATED: &str = OrderStatus::Created.quoted();
pub const CONFIRMED: &str = OrderStatus::Confirmed.quoted();
pub const CANCELLED: &str = OrderStatus::Cancelled.quoted();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_spells_each_status_as_it_always_has() {
        assert_eq!([CREATED, CONFIRMED, CANCELLED], ["'CREATED'", "'CONFIRMED'", "'CANCELLED'"]);
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(*status));
        }
    }
}
