//! Tickets and the door: a ticket per seat of a confirmed order, signed so that a
//! scanner can check it offline, and its check-in at the gates, redeemed once.
//!
//! The module keeps its own database: each show's Ed25519 keys (made when it first
//! hears of the show; the private key is read by nobody else), the orders as the order
//! events tell them (who owns them, which seats), the tickets and every scan. It is fed
//! by events only: `EventCreated` (the show's key and seat labels), `OrderCreated` (the
//! owner and the seats), `OrderConfirmed` (one ticket per seat, once), `OrderCancelled`
//! and `EventReset` (the tickets REVOKED). A check-in is one conditional UPDATE of the
//! ticket (VALID → USED) in the transaction that records the scan by its id, so two gates
//! at one moment get one ADMITTED, and the same scan sent again gets the same answer.

mod consume;
mod http;
pub mod metrics;
mod module;
pub mod pdf;
mod store;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use contract::Millis;
use contract::events::{CATALOG_TOPIC, ORDER_TOPIC};
use ed25519_dalek::VerifyingKey;
use runtime::bus::Bus;
use runtime::clock::Clock;
use runtime::consumer::Consumer;
use runtime::health::{Check, outbox_check};
use runtime::outbox::Relay;
use runtime::{Db, Tx};
use serde::{Deserialize, Serialize};

pub use http::router;
pub use module::SPEC;
pub use store::MIGRATIONS;

/// The topic of this module's outbox (it announces nothing yet).
pub const TOPIC: &str = "tickets.events";
/// Its consumer group, and the topics it reads.
pub const GROUP: &str = "tickets";
pub const CONSUMES: [&str; 2] = [CATALOG_TOPIC, ORDER_TOPIC];

/// A ticket's status.
pub const VALID: &str = "VALID";
pub const USED: &str = "USED";
pub const REVOKED: &str = "REVOKED";

/// What a scan is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanResult {
    Admitted,
    AlreadyUsed,
    Revoked,
    WrongEvent,
    Invalid,
    NotYetValid,
    /// Offline: the scanner let the ticket in and nobody else had (the admission stands).
    Stood,
    /// Offline: the scanner let in a ticket already let in elsewhere.
    Conflict,
}

impl ScanResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanResult::Admitted => "ADMITTED",
            ScanResult::AlreadyUsed => "ALREADY_USED",
            ScanResult::Revoked => "REVOKED",
            ScanResult::WrongEvent => "WRONG_EVENT",
            ScanResult::Invalid => "INVALID",
            ScanResult::NotYetValid => "NOT_YET_VALID",
            ScanResult::Stood => "STOOD",
            ScanResult::Conflict => "CONFLICT",
        }
    }
}

/// A ticket as buyers and scanners see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub ticket_id: String,
    pub event_id: i64,
    pub seat_id: i64,
    pub label: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// What a check-in is answered (and, for the same scan id, answered again).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_id: Option<String>,
    pub result: ScanResult,
    pub ticket: Option<Ticket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_gate: Option<String>,
}

/// One scan, online or uploaded from an offline scanner.
pub struct Scan<'a> {
    pub scan_id: &'a str,
    pub token: &'a str,
    pub gate: &'a str,
    /// When it was scanned (offline scans say; online ones are now).
    pub at: Millis,
    pub offline: bool,
    /// The show the scanner is bound to, if it is bound to one.
    pub scanner_event: Option<i64>,
}

/// A public key as scanners read it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    pub kid: String,
    pub alg: &'static str,
    pub public_key: String,
    pub active: bool,
}

/// The tickets module.
#[derive(Clone)]
pub struct Tickets {
    db: Db,
    relay: Relay,
    clock: Clock,
    /// Public keys already read, by kid: their show, whether they still sign, and when
    /// they were read (a rotation by another replica is seen within [`KEY_CACHE`]).
    keys: Arc<RwLock<HashMap<String, KnownKey>>>,
}

/// How long a public key read from the database is trusted as it was.
const KEY_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone, Copy)]
struct KnownKey {
    event_id: i64,
    key: VerifyingKey,
    active: bool,
    read: std::time::Instant,
}

/// A millisecond time as the API writes it.
pub fn iso(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Tickets {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        let relay = Relay::new("tickets", db.clone(), bus);
        Tickets { db, relay, clock: Clock::system(), keys: Arc::default() }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn consumers(&self, bus: Arc<dyn Bus>) -> Vec<Consumer> {
        CONSUMES
            .iter()
            .map(|topic| Consumer {
                db: self.db.clone(),
                bus: bus.clone(),
                topic,
                group: GROUP,
                handler: Arc::new(consume::handlers(self.clone())),
            })
            .collect()
    }

    /// The public key `kid` names and its show, from memory or the database.
    async fn public_key(&self, kid: &str) -> anyhow::Result<Option<KnownKey>> {
        if let Some(known) = self.keys.read().expect("keys lock").get(kid)
            && known.read.elapsed() < KEY_CACHE
        {
            return Ok(Some(*known));
        }
        let Some((event_id, key, active)) = store::public_key(self.db.reader(), kid).await? else {
            return Ok(None);
        };
        let known = KnownKey { event_id, key, active, read: std::time::Instant::now() };
        self.keys.write().expect("keys lock").insert(kid.to_owned(), known);
        Ok(Some(known))
    }

    /// What a token is, short of the ticket's state: its claims if genuine and meant for
    /// this scanner now, else the refusal.
    async fn check_token(&self, scan: &Scan<'_>) -> anyhow::Result<Result<token::Claims, ScanResult>> {
        let Some(parsed) = token::parse(scan.token) else { return Ok(Err(ScanResult::Invalid)) };
        // An unknown key, or one retired by a rotation (its tickets were signed again).
        let Some(KnownKey { event_id, key, active: true, .. }) = self.public_key(&parsed.kid).await? else {
            return Ok(Err(ScanResult::Invalid));
        };
        let Some(claims) = parsed.verify(&key) else { return Ok(Err(ScanResult::Invalid)) };
        if claims.ev != event_id {
            return Ok(Err(ScanResult::Invalid));
        }
        if scan.scanner_event.is_some_and(|bound| bound != event_id) {
            return Ok(Err(ScanResult::WrongEvent));
        }
        if claims.nbf.saturating_mul(1000) > scan.at {
            return Ok(Err(ScanResult::NotYetValid));
        }
        Ok(Ok(claims))
    }

    /// Checks a scan in: online, ADMITTED or a refusal; offline (an upload), STOOD,
    /// CONFLICT or a refusal. The same scan id again is answered as the first time, and
    /// counted once.
    pub async fn check_in(&self, scan: &Scan<'_>) -> anyhow::Result<Answer> {
        let started = std::time::Instant::now();
        if let Some(answer) = store::scan_answer(self.db.reader(), scan.scan_id).await? {
            return Ok(answer);
        }
        let checked = self.check_token(scan).await?;
        let mut tx = self.db.begin().await?;
        if !store::claim_scan(&mut tx, scan).await? {
            // The same scan, answered meanwhile (another request, another replica).
            tx.rollback().await?;
            return store::scan_answer(self.db.reader(), scan.scan_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("scan {} recorded but not found", scan.scan_id));
        }
        let answer = match checked {
            Err(refused) => {
                Answer { scan_id: None, result: refused, ticket: None, first_used_at: None, first_gate: None }
            }
            Ok(claims) => redeem(&mut tx, scan, &claims).await?,
        };
        let answer = Answer { scan_id: Some(scan.scan_id.to_owned()), ..answer };
        let event_id = answer.ticket.as_ref().map(|t| t.event_id);
        store::record_scan(&mut tx, scan.scan_id, &answer, event_id).await?;
        tx.commit().await?;
        let gate = ::metrics::SharedString::from(scan.gate.to_owned());
        ::metrics::counter!(crate::metrics::CHECKINS, "result" => answer.result.as_str(), "gate" => gate).increment(1);
        ::metrics::histogram!(crate::metrics::SCAN_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(answer)
    }

    /// A buyer's tickets of the order numbered `order_no`; `None` when it is not theirs.
    pub async fn of_order(&self, buyer: &str, order_no: i64) -> anyhow::Result<Option<Vec<Ticket>>> {
        let Some(order_id) = store::order_of(self.db.reader(), buyer, order_no).await? else { return Ok(None) };
        Ok(Some(store::tickets_of_order(self.db.reader(), &order_id).await?))
    }

    /// A show's public keys, newest first.
    pub async fn public_keys(&self, event_id: i64) -> anyhow::Result<Vec<PublicKey>> {
        store::public_keys(self.db.reader(), event_id).await
    }

    /// A show's keys as scanners read them: `{keys, retired}` — the key that signs (the
    /// ones scanners accept), and the ids of the keys a rotation retired; `None` for a
    /// show without keys.
    pub async fn key_set(&self, event_id: i64) -> anyhow::Result<Option<serde_json::Value>> {
        let all = self.public_keys(event_id).await?;
        if all.is_empty() {
            return Ok(None);
        }
        let (active, retired): (Vec<PublicKey>, Vec<PublicKey>) = all.into_iter().partition(|k| k.active);
        let retired: Vec<String> = retired.into_iter().map(|k| k.kid).collect();
        Ok(Some(serde_json::json!({ "keys": active, "retired": retired })))
    }

    /// Rotates a show's signing key: a new one signs from now on and every ticket not
    /// revoked is signed again with it (buyers fetch their tickets again); the old keys
    /// are kept, retired, and tokens signed with them are refused. Returns the new key's id.
    pub async fn rotate_key(&self, event_id: i64) -> anyhow::Result<String> {
        let mut tx = self.db.begin().await?;
        let kid = store::rotate_key(&mut tx, event_id, self.clock.now_millis()).await?;
        tx.commit().await?;
        self.keys.write().expect("keys lock").retain(|_, known| known.event_id != event_id);
        Ok(kid)
    }

    /// What an offline scanner needs: the public keys, the tickets revoked and those in.
    pub async fn bundle(&self, event_id: i64) -> anyhow::Result<serde_json::Value> {
        let keys = self.key_set(event_id).await?.unwrap_or_else(|| serde_json::json!({ "keys": [], "retired": [] }));
        let (revoked, used) = store::bundle(self.db.reader(), event_id).await?;
        Ok(serde_json::json!({
            "eventId": event_id,
            "generatedAt": iso(self.clock.now_millis()),
            "keys": keys["keys"],
            "retiredKeys": keys["retired"],
            "revoked": revoked,
            "used": used,
        }))
    }

    pub async fn conflicts(&self, event_id: i64) -> anyhow::Result<Vec<serde_json::Value>> {
        store::conflicts(self.db.reader(), event_id).await
    }

    /// Every ticket and check-in, for the audit.
    pub async fn audit_view(&self) -> anyhow::Result<serde_json::Value> {
        store::audit_view(self.db.reader()).await
    }

    pub async fn consistency(&self) -> anyhow::Result<Vec<Check>> {
        let mut checks = store::consistency(self.db.reader()).await?;
        checks.push(outbox_check(&self.relay).await?);
        Ok(checks)
    }

    pub fn now(&self) -> Millis {
        self.clock.now_millis()
    }
}

/// The ticket's side of a genuine scan, in the scan's transaction: the one conditional
/// UPDATE (VALID → USED) that lets a ticket in once, or why not.
async fn redeem(tx: &mut Tx, scan: &Scan<'_>, claims: &token::Claims) -> anyhow::Result<Answer> {
    let admitted = store::use_ticket(tx, &claims.tid, scan.at, scan.gate).await?;
    let refused = |result| Answer { scan_id: None, result, ticket: None, first_used_at: None, first_gate: None };
    // Signed by us for a ticket we do not have: nothing to let in.
    let Some((ticket, first)) = store::ticket(tx, &claims.tid).await? else { return Ok(refused(ScanResult::Invalid)) };
    let result = match (admitted, ticket.status.as_str()) {
        (true, _) if scan.offline => ScanResult::Stood,
        (true, _) => ScanResult::Admitted,
        (false, REVOKED) => ScanResult::Revoked,
        (false, USED) if scan.offline => ScanResult::Conflict,
        (false, USED) => ScanResult::AlreadyUsed,
        (false, _) => ScanResult::Invalid,
    };
    let (first_used_at, first_gate) = match first {
        Some((at, gate)) if !admitted => (Some(iso(at)), Some(gate)),
        _ => (None, None),
    };
    Ok(Answer { scan_id: None, result, ticket: Some(ticket), first_used_at, first_gate })
}
