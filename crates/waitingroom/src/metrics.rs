//! The waiting room's metrics.

/// Visitors waiting in every room right now.
pub const WAITING: &str = "waiting_room_visitors";
pub const JOINS: &str = "waiting_room_joins_total";
pub const ADMITTED: &str = "waiting_room_admitted_total";
pub const NO_SHOWS: &str = "waiting_room_no_shows_total";

pub fn describe() {
    metrics::describe_gauge!(WAITING, "Visitors waiting in the waiting rooms");
    runtime::metrics::counters_from_zero(&[
        (JOINS, "Visitors who joined a waiting room"),
        (ADMITTED, "Visitors let through a waiting room"),
        (NO_SHOWS, "Visitors who lost their place by leaving for longer than the grace period"),
    ]);
    metrics::gauge!(WAITING).set(0.0);
}
