//! Why things happened, as the events between modules say it: every reason a module
//! writes in an event's `reason`, and what each one means.
//!
//! Each is written as the text it has always had, so events already stored decode as
//! they were. A reader meets reasons it does not know when a newer module writes them
//! (modules are upgraded one at a time): such a reason decodes as `Other`, with its text,
//! and the reader acts on the event as on any reason it has no special rule for.

crate::text_enum! {
    /// Why seats were freed ([`SeatsReleased`](crate::events::SeatsReleased)).
    pub enum ReleaseReason {
        /// The holder released the hold (`DELETE /reservations/…`).
        Released = "RELEASED",
        /// The hold ran out of time and the sweep freed it.
        Expired = "EXPIRED",
        /// The order the seats were pinned to was cancelled (`OrderCancelled`).
        OrderCancelled = "ORDER_CANCELLED",
        /// The seats were pinned to an order that was never written within the pin's
        /// lease: the pin lapsed. The event names the order, which is cancelled if it
        /// exists after all (`HOLDS_LAPSED`).
        PinLapsed = "PIN_LAPSED",
        /// An operator reset the show (`EventReset`): every hold and sale is void.
        Reset = "RESET",
        _ => Other(String),
    }
}

crate::text_enum! {
    /// Why a paid order's seats could not be sold
    /// ([`SeatsSaleFailed`](crate::events::SeatsSaleFailed)); the order is cancelled
    /// (`SEATS_LOST`) and its payment refunded.
    pub enum SaleFailReason {
        /// Reservation has no pin for the order: it pinned nothing there.
        NoPin = "NO_PIN",
        /// The pin still held, but some of its seats were no longer held for it.
        SeatsLost = "SEATS_LOST",
        /// The pin was gone already: lapsed, released (the order cancelled, the show
        /// reset) or failed before.
        HoldsGone = "HOLDS_GONE",
        _ => Other(String),
    }
}

crate::text_enum! {
    /// Why an order was cancelled ([`OrderCancelled`](crate::events::OrderCancelled),
    /// and the order's `cancelReason` in the API).
    pub enum CancelReason {
        /// Its payment failed (`PaymentFailed`: declined, or no answer from the gateway
        /// in time).
        PaymentFailed = "PAYMENT_FAILED",
        /// It was paid, but its seats could not be sold (`SeatsSaleFailed`); the payment
        /// is refunded.
        SeatsLost = "SEATS_LOST",
        /// Its pin lapsed before Reservation saw the order (`SeatsReleased` with
        /// `PIN_LAPSED`): its seats were freed.
        HoldsLapsed = "HOLDS_LAPSED",
        /// An operator reset its show (`EventReset`); a paid order is refunded.
        EventReset = "EVENT_RESET",
        /// An operator refunded it after it was CONFIRMED
        /// (`POST /ticketing/api/admin/orders/{id}/refund`): the payment is refunded, the
        /// seats freed, the tickets revoked.
        Refunded = "REFUNDED",
        _ => Other(String),
    }
}

crate::text_enum! {
    /// Why a payment failed ([`PaymentFailed`](crate::events::PaymentFailed)); its order
    /// is cancelled (`PAYMENT_FAILED`).
    pub enum PaymentFailReason {
        /// The gateway declined the charge.
        Declined = "DECLINED",
        /// The gateway gave no answer (or only errors) before the payment's deadline; any
        /// charge it made after all is voided.
        GatewayTimeout = "GATEWAY_TIMEOUT",
        _ => Other(String),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{OrderCancelled, PaymentFailed, SeatsReleased, SeatsSaleFailed};

    /// Every reason is written as its text, and read back from it.
    #[test]
    fn every_reason_round_trips_its_text() {
        fn round_trip<R>(all: &[R], text: fn(&R) -> &str, parse: fn(&str) -> R)
        where
            R: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            for reason in all {
                let json = serde_json::to_string(reason).unwrap();
                assert_eq!(json, format!("\"{}\"", text(reason)));
                assert_eq!(&serde_json::from_str::<R>(&json).unwrap(), reason);
                assert_eq!(&parse(text(reason)), reason);
            }
        }
        round_trip(ReleaseReason::ALL, ReleaseReason::as_str, ReleaseReason::parse);
        round_trip(SaleFailReason::ALL, SaleFailReason::as_str, SaleFailReason::parse);
        round_trip(CancelReason::ALL, CancelReason::as_str, CancelReason::parse);
        round_trip(PaymentFailReason::ALL, PaymentFailReason::as_str, PaymentFailReason::parse);
        let texts: Vec<&str> = ReleaseReason::ALL.iter().map(ReleaseReason::as_str).collect();
        assert_eq!(texts, ["RELEASED", "EXPIRED", "ORDER_CANCELLED", "PIN_LAPSED", "RESET"]);
        let texts: Vec<&str> = SaleFailReason::ALL.iter().map(SaleFailReason::as_str).collect();
        assert_eq!(texts, ["NO_PIN", "SEATS_LOST", "HOLDS_GONE"]);
        let texts: Vec<&str> = CancelReason::ALL.iter().map(CancelReason::as_str).collect();
        assert_eq!(texts, ["PAYMENT_FAILED", "SEATS_LOST", "HOLDS_LAPSED", "EVENT_RESET", "REFUNDED"]);
        let texts: Vec<&str> = PaymentFailReason::ALL.iter().map(PaymentFailReason::as_str).collect();
        assert_eq!(texts, ["DECLINED", "GATEWAY_TIMEOUT"]);
    }

    /// Events as they are stored today decode, and are written again byte for byte.
    #[test]
    fn stored_events_decode_and_are_written_the_same() {
        let released = r#"{"eventId":2,"seats":[{"seatId":33,"version":4}],"reason":"PIN_LAPSED","orderId":"o-1"}"#;
        let e: SeatsReleased = serde_json::from_str(released).unwrap();
        assert_eq!(e.reason, ReleaseReason::PinLapsed);
        assert_eq!(serde_json::to_string(&e).unwrap(), released);

        let failed = r#"{"eventId":0,"orderId":"o-2","reason":"NO_PIN"}"#;
        let e: SeatsSaleFailed = serde_json::from_str(failed).unwrap();
        assert_eq!(e.reason, SaleFailReason::NoPin);
        assert_eq!(serde_json::to_string(&e).unwrap(), failed);

        let cancelled = r#"{"orderId":"o-3","orderNo":7,"eventId":1,"reason":"HOLDS_LAPSED"}"#;
        let e: OrderCancelled = serde_json::from_str(cancelled).unwrap();
        assert_eq!(e.reason, CancelReason::HoldsLapsed);
        assert_eq!(serde_json::to_string(&e).unwrap(), cancelled);

        let declined = r#"{"paymentId":"p-1","orderId":"o-4","reason":"GATEWAY_TIMEOUT"}"#;
        let e: PaymentFailed = serde_json::from_str(declined).unwrap();
        assert_eq!(e.reason, PaymentFailReason::GatewayTimeout);
        assert_eq!(serde_json::to_string(&e).unwrap(), declined);
    }

    /// A reason from a newer writer decodes, keeps its text, and matches no rule.
    #[test]
    fn an_unknown_reason_decodes_as_other_and_keeps_its_text() {
        let newer = r#"{"eventId":2,"seats":[],"reason":"MOVED_TO_ANOTHER_SEAT","orderId":"o-1"}"#;
        let e: SeatsReleased = serde_json::from_str(newer).unwrap();
        assert_eq!(e.reason, ReleaseReason::Other("MOVED_TO_ANOTHER_SEAT".into()));
        assert_ne!(e.reason, ReleaseReason::PinLapsed);
        assert_eq!(serde_json::to_string(&e).unwrap(), newer);
        assert_eq!(e.reason.to_string(), "MOVED_TO_ANOTHER_SEAT");
        // Escaped text (not borrowed from the input) too.
        let escaped: CancelReason = serde_json::from_str(r#""FRAUD\u0021""#).unwrap();
        assert_eq!(escaped, CancelReason::Other("FRAUD!".into()));
        let known: CancelReason = serde_json::from_str(r#""EVENT\u005fRESET""#).unwrap();
        assert_eq!(known, CancelReason::EventReset);
        // Not a text at all is still an error.
        assert!(serde_json::from_str::<CancelReason>("7").is_err());
    }
}
