//! The states of a payment (`payments.status`), and how SQL spells them: the one place
//! that does.
//!
//! Statements name a status by the constants below, composed into the statement at
//! compile time (`const_format::formatcp!`, or `format!` where the statement is built
//! anyway): a statement's text stays one constant — prepared once, and the partial index
//! whose condition names a status (`payments_pending`) still serves it.

contract::text_enum! {
    /// Where a payment is: asked of the gateway, then charged or not, and charged money
    /// given back. Also the API's `paymentStatus`.
    pub enum PaymentStatus {
        /// Recorded from `OrderCreated`; the workers take it to the gateway.
        Requested = "REQUESTED",
        /// The gateway charged it (`PaymentSucceeded`).
        Succeeded = "SUCCEEDED",
        /// Declined, or no answer before the deadline (`PaymentFailed`); a charge the
        /// gateway made all the same is voided (`void_requested`).
        Failed = "FAILED",
        /// Charged, then given back: its order was cancelled (`PaymentRefunded`).
        Refunded = "REFUNDED",
    }
}

/// `payments.status` in SQL.
pub const REQUESTED: &str = PaymentStatus::Requested.quoted();
pub const SUCCEEDED: &str = PaymentStatus::Succeeded.quoted();
pub const FAILED: &str = PaymentStatus::Failed.quoted();
pub const REFUNDED: &str = PaymentStatus::Refunded.quoted();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_its_text() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!([REQUESTED, SUCCEEDED, FAILED, REFUNDED], ["'REQUESTED'", "'SUCCEEDED'", "'FAILED'", "'REFUNDED'"]);
    }
}
