//! Admission tokens: what a visitor let through carries to hold seats and order.
//!
//! `<eventId>.<expiresAt ms>.<buyer, hex>.<HMAC-SHA256 of those three, hex>`, signed with
//! a key derived from the buyer cookies' key (kept in the data directory, or
//! `--auth-secret`), so every replica of the waiting room, reservation and order modules
//! can check it without a database.

use contract::Millis;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a request carries the token in (or the cookie [`cookie_name`]).
pub const HEADER: &str = "Admission-Token";

/// The cookie of a show's admission token.
pub fn cookie_name(event_id: i64) -> String {
    format!("admission_{event_id}")
}

/// What checking a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    WrongBuyer,
    WrongShow,
    Expired,
    BadSignature,
}

/// The admission tokens' key, derived from the buyer cookies' key (a key of its own
/// purpose: a cookie signature is never an admission).
pub fn key_from(cookie_key: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(cookie_key).expect("hmac takes any key");
    mac.update(b"boxoffice waiting room admission tokens");
    mac.finalize().into_bytes().to_vec()
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes any key");
    mac.update(payload.as_bytes());
    mac
}

/// A token admitting `buyer` to show `event_id` until `expires_at`.
pub fn issue(key: &[u8], buyer: &str, event_id: i64, expires_at: Millis) -> String {
    let payload = format!("{event_id}.{expires_at}.{}", hex::encode(buyer));
    let signature = hex::encode(mac(key, &payload).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Whether `token` admits `buyer` to show `event_id` at `now`.
pub fn verify(key: &[u8], token: &str, buyer: &str, event_id: i64, now: Millis) -> Verdict {
    let Some((payload, signature)) = token.rsplit_once('.') else { return Verdict::BadSignature };
    let genuine = hex::decode(signature).is_ok_and(|s| mac(key, payload).verify_slice(&s).is_ok());
    let mut parts = payload.splitn(3, '.');
    let (Some(show), Some(expires), Some(holder), true) = (parts.next(), parts.next(), parts.next(), genuine) else {
        return Verdict::BadSignature;
    };
    let (Ok(show), Ok(expires), Ok(holder)) = (show.parse::<i64>(), expires.parse::<Millis>(), hex::decode(holder))
    else {
        return Verdict::BadSignature;
    };
    if show != event_id {
        Verdict::WrongShow
    } else if holder != buyer.as_bytes() {
        Verdict::WrongBuyer
    } else if now >= expires {
        Verdict::Expired
    } else {
        Verdict::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    fn key() -> Vec<u8> {
        key_from(b"cookie key")
    }

    #[test]
    fn a_token_admits_its_buyer_to_its_show_until_it_expires() {
        let token = issue(&key(), "user:ann", 3, NOW + 600_000);
        assert_eq!(verify(&key(), &token, "user:ann", 3, NOW), Verdict::Valid);
        assert_eq!(verify(&key(), &token, "user:ann", 3, NOW + 599_999), Verdict::Valid);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let token = issue(&key(), "user:ann", 3, NOW + 600_000);
        assert_eq!(verify(&key(), &token, "user:ann", 3, NOW + 600_000), Verdict::Expired);
    }

    #[test]
    fn a_token_of_another_buyer_or_show_is_refused() {
        let token = issue(&key(), "user:ann", 3, NOW + 600_000);
        assert_eq!(verify(&key(), &token, "user:bob", 3, NOW), Verdict::WrongBuyer);
        assert_eq!(verify(&key(), &token, "user:ann", 4, NOW), Verdict::WrongShow);
    }

    #[test]
    fn a_forged_or_mangled_token_is_refused() {
        let token = issue(&key(), "user:ann", 3, NOW + 600_000);
        let other_key = issue(&key_from(b"another key"), "user:ann", 3, NOW + 600_000);
        assert_eq!(verify(&key(), &other_key, "user:ann", 3, NOW), Verdict::BadSignature);
        // A longer life written into a genuine token.
        let (_, rest) = token.split_once('.').unwrap();
        let (_, rest) = rest.split_once('.').unwrap();
        let stretched = format!("3.{}.{rest}", NOW + 6_000_000);
        assert_eq!(verify(&key(), &stretched, "user:ann", 3, NOW), Verdict::BadSignature);
        for junk in ["", ".", "a.b.c.d", "3.x.616e6e.00", &token[..token.len() - 2]] {
            assert_eq!(verify(&key(), junk, "user:ann", 3, NOW), Verdict::BadSignature, "{junk}");
        }
    }
}
