//! The states of the catalog's seats (`seats.status`, `seat_changes.status`), and how SQL
//! spells them: the one place that does.
//!
//! The seat map shows the reservation module's statuses, the API's [`SeatStatus`]; the
//! catalog binds them as parameters, and names one in a statement by the constant below,
//! composed into the statement at compile time (`const_format::formatcp!`).

pub use contract::api::SeatStatus;

/// `seats.status` in SQL.
pub const AVAILABLE: &str = SeatStatus::Available.quoted();
