//! The payment module's metrics (the original's names first).

pub const SUCCESS: &str = "payment_success_total";
pub const FAIL: &str = "payment_fail_total";
pub const REFUND: &str = "payment_refund_total";
/// Seconds a gateway call took, by operation.
pub const GATEWAY: &str = "payment_gateway_seconds";

pub fn describe() {
    runtime::metrics::counters_from_zero(&[
        (SUCCESS, "Payments the gateway approved"),
        (FAIL, "Payments the gateway declined"),
        (REFUND, "Payments refunded because their order was cancelled"),
    ]);
    metrics::describe_histogram!(GATEWAY, metrics::Unit::Seconds, "Gateway call duration by operation");
}
