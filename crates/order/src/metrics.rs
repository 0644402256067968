//! The order module's metrics (the original's names first).

pub const REQUEST: &str = "order_request_total";
pub const CONFIRMED: &str = "order_confirmed_total";
pub const CANCELLED: &str = "order_cancelled_total";
/// Seconds to answer `POST /orders`.
pub const LATENCY: &str = "order_latency";
/// Seconds from an order's acceptance to its final state: the second SLA.
pub const FINAL_STATE: &str = "order_final_state_seconds";
/// Seconds an order waited to be let in (see `admission`).
pub const ADMISSION_WAIT: &str = "order_admission_wait_seconds";
/// Orders turned away after waiting the longest allowed (503).
pub const ADMISSION_REFUSED: &str = "order_admission_refused_total";
const ADMISSION_LIMIT: &str = "order_admission_limit";
const SETTLING: &str = "order_settling";

pub fn admission_limit(limit: usize) {
    metrics::gauge!(ADMISSION_LIMIT).set(limit as f64);
}

pub fn settling(orders: usize) {
    metrics::gauge!(SETTLING).set(orders as f64);
}

pub fn describe() {
    runtime::metrics::counters_from_zero(&[
        (REQUEST, "Order requests received"),
        (CONFIRMED, "Orders confirmed: paid and their seats sold"),
        (CANCELLED, "Orders cancelled, by reason"),
        (ADMISSION_REFUSED, "Orders turned away after waiting the longest allowed to be let in (503)"),
    ]);
    metrics::describe_gauge!(ADMISSION_LIMIT, "How many of this process's orders may be settling at once");
    metrics::describe_gauge!(SETTLING, "This process's accepted orders not yet heard settled");
    metrics::describe_histogram!(ADMISSION_WAIT, metrics::Unit::Seconds, "Time an order waited to be let in");
    metrics::describe_histogram!(LATENCY, metrics::Unit::Seconds, "Time to answer POST /orders");
    metrics::describe_histogram!(
        FINAL_STATE,
        metrics::Unit::Seconds,
        "Time from order accepted to CONFIRMED or CANCELLED"
    );
}
