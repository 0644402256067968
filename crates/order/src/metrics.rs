//! The order module's metrics (the original's names first).

pub const REQUEST: &str = "order_request_total";
pub const CONFIRMED: &str = "order_confirmed_total";
pub const CANCELLED: &str = "order_cancelled_total";
/// Seconds to answer `POST /orders`.
pub const LATENCY: &str = "order_latency";
/// Seconds from an order's acceptance to its final state: the second SLA.
pub const FINAL_STATE: &str = "order_final_state_seconds";

pub fn describe() {
    runtime::metrics::counters_from_zero(&[
        (REQUEST, "Order requests received"),
        (CONFIRMED, "Orders confirmed: paid and their seats sold"),
        (CANCELLED, "Orders cancelled, by reason"),
    ]);
    metrics::describe_histogram!(LATENCY, metrics::Unit::Seconds, "Time to answer POST /orders");
    metrics::describe_histogram!(
        FINAL_STATE,
        metrics::Unit::Seconds,
        "Time from order accepted to CONFIRMED or CANCELLED"
    );
}
