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
/// Holds whose seats the module chose: `kind` best or standing, and for best available
/// whether the seats were side by side (`adjacent`).
pub const CHOSEN: &str = "reservation_chosen_holds_total";
/// Proposals made for one chosen hold (1 unless other buyers took proposed seats first).
pub const CHOOSE_ROUNDS: &str = "reservation_choose_rounds";

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
    metrics::describe_counter!(CHOSEN, "Holds of best-available seats or standing places, by kind");
    metrics::describe_histogram!(CHOOSE_ROUNDS, "Proposals made for one best-available or standing hold");
}
