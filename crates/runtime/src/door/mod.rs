//! The door in front of a show's seats: what the reservation and order modules know of
//! each show's on-sale time and waiting room, and the check of a hold or an order
//! against it.
//!
//! The waiting room announces a show's settings (`RoomSettingsChanged` on its own
//! topic); each module that checks keeps them in its own database (the table
//! `room_settings`, which its migrations create) and in memory. A check reads only
//! memory and an HMAC: no database, no call to the waiting room.

pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::http::HeaderMap;
use contract::events::RoomSettingsChanged;
use contract::{ErrorCode, Millis};

use crate::db::{Reader, Tx};
use crate::http::{ApiError, Auth};

/// Admission tokens refused (or missing), by `reason` and by the `module` that refused.
pub const TOKENS_REFUSED: &str = "waiting_room_tokens_refused_total";

/// A show's door as last announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Door {
    pub on_sale_at: Option<Millis>,
    /// The waiting room is on: a valid admission token is required.
    pub enabled: bool,
    pub version: i64,
}

/// Every show's door, as one module knows them.
#[derive(Clone)]
pub struct Doors {
    module: &'static str,
    shows: Arc<RwLock<HashMap<i64, Door>>>,
}

impl Doors {
    /// The doors module `module` checks (it names the refusals it counts).
    pub fn new(module: &'static str) -> Doors {
        Doors { module, shows: Arc::default() }
    }

    /// Reads what the module's database holds (at start).
    pub async fn load(&self, db: &Reader) -> anyhow::Result<()> {
        let rows: Vec<(i64, Option<i64>, i64, i64)> =
            sqlx::query_as("SELECT event_id, on_sale_at, enabled, version FROM room_settings")
                .fetch_all(db)
                .await
                .context("failed to read the shows' waiting rooms")?;
        for (event_id, on_sale_at, enabled, version) in rows {
            self.learn(event_id, Door { on_sale_at, enabled: enabled != 0, version });
        }
        Ok(())
    }

    /// Keeps an announcement in `tx` (an older one than known changes nothing).
    pub async fn apply(&self, tx: &mut Tx, e: &RoomSettingsChanged) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO room_settings (event_id, on_sale_at, enabled, version) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id) DO UPDATE SET on_sale_at = $2, enabled = $3, version = $4 \
             WHERE room_settings.version < $4",
        )
        .bind(e.event_id)
        .bind(e.on_sale_at)
        .bind(i64::from(e.enabled))
        .bind(e.version)
        .execute(&mut **tx)
        .await
        .context("failed to keep a show's waiting room")?;
        // Known before the commit: a rolled-back announcement comes again, the same.
        self.learn(e.event_id, Door { on_sale_at: e.on_sale_at, enabled: e.enabled, version: e.version });
        Ok(())
    }

    fn learn(&self, event_id: i64, door: Door) {
        let mut shows = self.shows.write().expect("doors lock");
        let known = shows.entry(event_id).or_insert(door);
        if known.version < door.version {
            *known = door;
        }
    }

    /// A show's door, if it has one.
    pub fn of(&self, event_id: i64) -> Option<Door> {
        self.shows.read().expect("doors lock").get(&event_id).copied()
    }

    /// Whether `buyer` may hold seats of (or order) show `event_id` at `now`: 403
    /// `NOT_ON_SALE` before its on-sale, 403 `QUEUE_REQUIRED` while its room is on and
    /// the request carries no valid admission token (the `Admission-Token` header or
    /// the show's `admission_{id}` cookie).
    pub fn check(
        &self,
        auth: &Auth,
        headers: &HeaderMap,
        buyer: &str,
        event_id: i64,
        now: Millis,
    ) -> Result<(), ApiError> {
        let Some(door) = self.of(event_id) else { return Ok(()) };
        if let Some(at) = door.on_sale_at.filter(|&at| now < at) {
            let when = chrono::DateTime::from_timestamp_millis(at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            return Err(ApiError::new(ErrorCode::NotOnSale, format!("show {event_id} goes on sale at {when}")));
        }
        if !door.enabled {
            return Ok(());
        }
        let reason = match presented(headers, event_id) {
            None => "missing",
            Some(t) => match token::verify(&token::key_from(&auth.cookie_key), t, buyer, event_id, now) {
                token::Verdict::Valid => return Ok(()),
                token::Verdict::Expired => "expired",
                token::Verdict::WrongBuyer => "other_buyer",
                token::Verdict::WrongShow => "other_show",
                token::Verdict::BadSignature => "forged",
            },
        };
        metrics::counter!(TOKENS_REFUSED, "reason" => reason, "module" => self.module).increment(1);
        let message = format!(
            "show {event_id} has a waiting room: join it (POST /ticketing/api/queue/{event_id}/join) and send the \
             admission token you are given ({} header or the {} cookie); this one is {reason}",
            token::HEADER,
            token::cookie_name(event_id)
        );
        Err(ApiError::new(ErrorCode::QueueRequired, message))
    }
}

/// The admission token a request carries: the header, else the show's cookie.
fn presented(headers: &HeaderMap, event_id: i64) -> Option<&str> {
    let header = headers.get(token::HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty());
    header.or_else(|| crate::http::cookie(headers, &token::cookie_name(event_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    fn auth() -> Auth {
        Auth { cookie_key: b"cookie key".to_vec(), ..Auth::default() }
    }

    fn doors(on_sale_at: Option<Millis>, enabled: bool) -> Doors {
        let doors = Doors::new("test");
        doors.learn(3, Door { on_sale_at, enabled, version: 1 });
        doors
    }

    fn with(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        headers
    }

    fn code(r: Result<(), ApiError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn a_show_without_a_room_is_open() {
        assert_eq!(code(doors(None, true).check(&auth(), &HeaderMap::new(), "user:a", 4, NOW)), None);
        assert_eq!(code(doors(Some(NOW - 1), false).check(&auth(), &HeaderMap::new(), "user:a", 3, NOW)), None);
    }

    #[test]
    fn before_the_on_sale_nothing_is_held() {
        let doors = doors(Some(NOW + 1), false);
        assert_eq!(code(doors.check(&auth(), &HeaderMap::new(), "user:a", 3, NOW)), Some(ErrorCode::NotOnSale));
    }

    #[test]
    fn a_room_on_wants_a_valid_token_in_the_header_or_the_cookie() {
        let doors = doors(Some(NOW - 1), true);
        let key = token::key_from(&auth().cookie_key);
        let t = token::issue(&key, "user:a", 3, NOW + 1_000);
        assert_eq!(code(doors.check(&auth(), &HeaderMap::new(), "user:a", 3, NOW)), Some(ErrorCode::QueueRequired));
        assert_eq!(code(doors.check(&auth(), &with(token::HEADER, &t), "user:a", 3, NOW)), None);
        assert_eq!(
            code(doors.check(&auth(), &with("cookie", &format!("x=1; admission_3={t}")), "user:a", 3, NOW)),
            None
        );
        for (buyer, at) in [("user:b", NOW), ("user:a", NOW + 1_000)] {
            let refused = doors.check(&auth(), &with(token::HEADER, &t), buyer, 3, at);
            assert_eq!(code(refused), Some(ErrorCode::QueueRequired), "{buyer} at {at}");
        }
        let other_show = token::issue(&key, "user:a", 4, NOW + 1_000);
        assert_eq!(
            code(doors.check(&auth(), &with(token::HEADER, &other_show), "user:a", 3, NOW)),
            Some(ErrorCode::QueueRequired)
        );
    }

    #[test]
    fn an_older_announcement_changes_nothing() {
        let doors = doors(None, true);
        doors.learn(3, Door { on_sale_at: None, enabled: false, version: 0 });
        assert!(doors.of(3).unwrap().enabled);
        doors.learn(3, Door { on_sale_at: None, enabled: false, version: 2 });
        assert!(!doors.of(3).unwrap().enabled);
    }
}
