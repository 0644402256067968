//! The payment module's metrics (the original's names first).

pub const SUCCESS: &str = "payment_success_total";
pub const FAIL: &str = "payment_fail_total";
pub const REFUND: &str = "payment_refund_total";
/// Seconds a gateway call took, by operation.
pub const GATEWAY: &str = "payment_gateway_seconds";
/// Gateway calls that did not answer within the call timeout.
pub const TIMEOUT: &str = "payment_gateway_timeout_total";
/// Gateway calls that answered with an error.
pub const ERROR: &str = "payment_gateway_error_total";
/// Gateway calls scheduled again (after back-off) because one timed out or failed.
pub const RETRY: &str = "payment_gateway_retry_total";
/// Payments FAILED because the gateway gave no answer before the deadline.
pub const DEADLINE: &str = "payment_deadline_exceeded_total";
/// Approvals that arrived after their payment had FAILED; their charge is voided.
pub const LATE: &str = "payment_late_success_total";

pub fn describe() {
    runtime::metrics::counters_from_zero(&[
        (SUCCESS, "Payments the gateway approved"),
        (FAIL, "Payments that failed: declined, or no answer from the gateway before the deadline"),
        (REFUND, "Payments refunded because their order was cancelled"),
        (TIMEOUT, "Gateway calls that did not answer within the call timeout"),
        (ERROR, "Gateway calls that answered with an error"),
        (RETRY, "Gateway calls retried after back-off because one timed out or failed"),
        (DEADLINE, "Payments failed because the gateway gave no answer before the deadline"),
        (LATE, "Approvals that arrived after their payment had failed (the charge is voided)"),
    ]);
    metrics::describe_histogram!(GATEWAY, metrics::Unit::Seconds, "Gateway call duration by operation");
}
