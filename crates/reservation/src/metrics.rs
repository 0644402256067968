//! The reservation module's metrics (the original's names first).

pub const HOLD_SUCCESS: &str = "reservation_hold_success_total";
pub const HOLD_CONFLICT: &str = "reservation_hold_conflict_total";
/// Holds refused for another reason than a conflict, by error code.
pub const HOLD_REFUSED: &str = "reservation_hold_refused_total";
/// Orders whose pinned seats became SOLD after payment.
pub const CONFIRM_SUCCESS: &str = "reservation_confirm_success_total";
/// Paid orders whose seats could not be sold (refunded).
pub const CONFIRM_FAILED: &str = "reservation_confirm_failed_total";
pub const HOLD_EXPIRED: &str = "reservation_hold_expired_total";
pub const PIN_LAPSED: &str = "reservation_pin_lapsed_total";

/// Describes the metrics and exports them at zero from the start.
pub fn describe() {
    runtime::metrics::counters_from_zero(&[
        (HOLD_SUCCESS, "Seat holds granted"),
        (HOLD_CONFLICT, "Seat holds refused because another buyer holds a seat"),
        (CONFIRM_SUCCESS, "Paid orders whose seats were sold"),
        (CONFIRM_FAILED, "Paid orders whose seats were lost, to be refunded"),
        (HOLD_EXPIRED, "Seats freed because their hold expired"),
        (PIN_LAPSED, "Seats freed because their order never arrived"),
    ]);
    metrics::describe_counter!(HOLD_REFUSED, "Seat holds refused for other reasons, by code");
}
