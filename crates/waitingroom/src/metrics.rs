//! The waiting room's metrics.

/// Visitors waiting in every room right now (the pre-queue included).
pub const WAITING: &str = "waiting_room_visitors";
/// Visitors waiting in one show's room right now (label `event_id`; the pre-queue
/// included).
pub const QUEUE_LENGTH: &str = "waiting_room_queue_length";
/// 1 while a show's room admits (on, and past its on-sale), else 0 (label `event_id`).
pub const OPEN: &str = "waiting_room_open";
pub const JOINS: &str = "waiting_room_joins_total";
/// Visitors let through (label `event_id`).
pub const ADMITTED: &str = "waiting_room_admitted_total";
pub const NO_SHOWS: &str = "waiting_room_no_shows_total";
/// From joining (or the on-sale, for the pre-queue) to being let through.
pub const TIME_IN_QUEUE: &str = "waiting_room_wait_seconds_long";
/// Admission tokens refused, by `reason` and by the `module` that refused them.
pub use runtime::door::TOKENS_REFUSED;
/// The rate a room in `auto` lets visitors through at, a minute.
pub const AUTO_RATE: &str = "waiting_room_auto_rate_per_minute";

pub fn describe() {
    metrics::describe_gauge!(WAITING, "Visitors waiting in the waiting rooms");
    metrics::describe_gauge!(QUEUE_LENGTH, "Visitors waiting in a show's waiting room (pre-queue included)");
    metrics::describe_gauge!(OPEN, "1 while a show's waiting room admits visitors (on, and past its on-sale)");
    metrics::describe_gauge!(AUTO_RATE, "Visitors a minute a waiting room in auto lets through");
    metrics::describe_counter!(ADMITTED, "Visitors let through a waiting room");
    metrics::describe_counter!(
        TOKENS_REFUSED,
        "Holds and orders refused for want of a valid admission token, by reason and refusing module"
    );
    metrics::describe_histogram!(
        TIME_IN_QUEUE,
        metrics::Unit::Seconds,
        "Time from joining a waiting room (or its on-sale, for the pre-queue) to being let through"
    );
    runtime::metrics::counters_from_zero(&[
        (JOINS, "Visitors who joined a waiting room"),
        (NO_SHOWS, "Visitors who lost their place by leaving for longer than the grace period"),
    ]);
    metrics::gauge!(WAITING).set(0.0);
}
