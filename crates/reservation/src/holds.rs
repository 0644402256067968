//! Holding, extending, releasing, pinning and sweeping seats.
//!
//! Each operation is one conditional UPDATE that takes exactly the seats it may take,
//! or rolls back; only then, to say why, does it look at the seats. So the decision is
//! made by the database under its row locks, never by a read racing a write.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::Context;
use async_trait::async_trait;
use const_format::formatcp;
use contract::ErrorCode;
use contract::api::MyHold;
use contract::events::{SeatVersion, SeatsHeld, SeatsReleased};
use contract::holds::{Holds, PinError, PinRefused, PinRequest, Pinned, PinnedSeat};
use contract::reasons::ReleaseReason;
use runtime::outbox;
use sqlx::Row;

use crate::Reservation;
use crate::consume::free_seats;
use crate::states::{
    AVAILABLE, HELD, HOLD_EXPIRED, HOLD_RELEASED, HoldEnd, PIN_LAPSED, PIN_LEASED, PinState, SOLD, SeatStatus,
};

/// A buyer's live holds (for `max_held_per_buyer`).
pub(crate) const HELD_BY_BUYER: &str = formatcp!(
    "SELECT COUNT(*) FROM seats WHERE holder = $1 AND status = {HELD} AND (expires_at IS NULL OR expires_at >= $2)"
);

/// A buyer's live holds and bought seats in one show `$3` (for
/// `max_seats_per_buyer_per_event`).
pub(crate) const IN_EVENT_BY_BUYER: &str = formatcp!(
    "SELECT COUNT(*) FROM seats WHERE holder = $1 AND status IN ({HELD}, {SOLD}) \
     AND event_id = $3 AND (status = {SOLD} OR expires_at IS NULL OR expires_at >= $2)"
);

/// The seats held at once by the anonymous buyers of one address (`$1`, at `$2` now),
/// for `max_held_per_address`.
pub(crate) const HELD_BY_ADDRESS: &str = formatcp!(
    "SELECT COUNT(*) FROM seats WHERE holder_addr = $1 AND status = {HELD} \
     AND (expires_at IS NULL OR expires_at >= $2)"
);

/// Both counts in one statement (`$1` the buyer, `$2` now, `$3` the show).
static LIMIT_COUNTS: LazyLock<String> = LazyLock::new(|| format!("SELECT ({HELD_BY_BUYER}), ({IN_EVENT_BY_BUYER})"));
/// The same with only the first limit on (the default): the show's count is not read.
static HELD_COUNT: LazyLock<String> = LazyLock::new(|| format!("SELECT ({HELD_BY_BUYER}), CAST(0 AS BIGINT)"));
/// The same with only the show's limit on.
static IN_EVENT_COUNT: LazyLock<String> = LazyLock::new(|| format!("SELECT CAST(0 AS BIGINT), ({IN_EVENT_BY_BUYER})"));

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A refusal in the contract's terms.
pub fn refused(code: ErrorCode, message: impl Into<String>) -> PinRefused {
    PinRefused { code, message: message.into() }
}

/// What a hold asks beyond the seats: the anonymous holder's address key (`""` for a
/// buyer named by a bearer token), and the rules of the hold's life and cool-down.
pub(crate) struct Holding<'a> {
    pub addr: &'a str,
    pub policy: &'a crate::HoldPolicy,
}

/// Seconds from `now` to `until`, rounded up, at least 1.
fn secs_until(until: i64, now: i64) -> i64 {
    ((until - now + 999) / 1000).max(1)
}

impl Holding<'_> {
    /// Whether this buyer (or address) is kept from holding the seat of `row`, which is
    /// free, or held by someone whose hold expired, or live and `mine`.
    fn refusal(&self, row: &sqlx::any::AnyRow, buyer: &str, now: i64, live: bool, mine: bool) -> Option<PinRefused> {
        let seat_id: i64 = row.get("seat_id");
        let same = |holder: Option<String>, addr: Option<String>| {
            holder.as_deref() == Some(buyer) || (!self.addr.is_empty() && addr.as_deref() == Some(self.addr))
        };
        let life_ms = self.policy.life_ms();
        let life = |since: i64| (since + life_ms <= now).then_some(self.policy.max_life_secs);
        let lapsed = |wait: i64| {
            let message = format!(
                "you let your hold on seat {seat_id} expire: you may hold it again in {wait} s (other buyers may hold it now)"
            );
            refused(ErrorCode::ReservationConflict, message)
        };
        let too_long = |life: i64, wait: Option<i64>| {
            let when = wait.map_or("order it or let it go".to_owned(), |w| format!("you may hold it again in {w} s"));
            let message = format!("you have held seat {seat_id} for the longest a hold may last ({life} s): {when}");
            refused(ErrorCode::ReservationConflict, message)
        };
        let status = SeatStatus::parse(&row.get::<String, _>("status"));
        let pinned = row.get::<Option<String>, _>("order_id").is_some();
        if live {
            let since = row.get::<Option<i64>, _>("held_since").unwrap_or(now);
            return (mine && !pinned).then(|| life(since)).flatten().map(|life| too_long(life, None));
        }
        if status == Some(SeatStatus::Held)
            && !pinned
            && self.policy.cooldown_secs > 0
            && same(row.get("holder"), row.get("holder_addr"))
        {
            // Expired, not swept yet: the cool-down starts when it is.
            return Some(lapsed(self.policy.cooldown_secs));
        }
        let until = row.get::<Option<i64>, _>("last_until").filter(|until| *until >= now)?;
        if !same(row.get("last_holder"), row.get("last_addr")) {
            return None;
        }
        match row.get::<Option<String>, _>("last_how").as_deref().and_then(HoldEnd::parse)? {
            HoldEnd::Expired => Some(lapsed(secs_until(until, now))),
            HoldEnd::Released => {
                let since = row.get::<Option<i64>, _>("last_held_since").unwrap_or(now);
                life(since).map(|life| too_long(life, Some(secs_until(until, now))))
            }
        }
    }
}

/// Why the seats could not be taken by `buyer`: unknown, sold, someone else's, kept from
/// this buyer for a while (`holding`, for a hold), or gone.
async fn why_not(
    db: &runtime::db::Reader,
    buyer: &str,
    event_id: i64,
    seat_ids: &[i64],
    now: i64,
    holding: Option<&Holding<'_>>,
) -> anyhow::Result<PinRefused> {
    let sql = format!(
        "SELECT seat_id, status, holder, expires_at, order_id, holder_addr, held_since, last_holder, last_addr, \
         last_held_since, last_until, last_how FROM seats WHERE event_id = $1 AND seat_id IN ({})",
        placeholders(2, seat_ids.len())
    );
    let mut query = sqlx::query(&sql).bind(event_id);
    for id in seat_ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(db).await.context("failed to read seats")?;
    if rows.len() < seat_ids.len() {
        let found: Vec<i64> = rows.iter().map(|r| r.get("seat_id")).collect();
        let missing = seat_ids.iter().find(|id| !found.contains(id)).copied().unwrap_or_default();
        return Ok(refused(ErrorCode::NotFound, format!("seat {missing} of event {event_id} not found")));
    }
    let mut expired = None;
    let mut kept = None;
    for row in &rows {
        let seat_id: i64 = row.get("seat_id");
        let status = SeatStatus::parse(&row.get::<String, _>("status"));
        if status == Some(SeatStatus::Sold) {
            return Ok(refused(ErrorCode::SeatSold, format!("seat {seat_id} is sold")));
        }
        let live = status == Some(SeatStatus::Held) && row.get::<Option<i64>, _>("expires_at").is_none_or(|e| e >= now);
        let mine = row.get::<Option<String>, _>("holder").as_deref() == Some(buyer);
        let pinned = row.get::<Option<String>, _>("order_id").is_some();
        if live && (!mine || pinned) {
            let whose = if mine { "pinned to your order" } else { "held by another buyer" };
            return Ok(refused(ErrorCode::ReservationConflict, format!("seat {seat_id} is {whose}")));
        }
        if kept.is_none()
            && let Some(holding) = holding
        {
            kept = holding.refusal(row, buyer, now, live, mine);
        }
        if !(live && mine) {
            expired.get_or_insert(seat_id);
        }
    }
    if let Some(kept) = kept {
        return Ok(kept);
    }
    let seat_id = expired.unwrap_or(seat_ids[0]);
    Ok(refused(ErrorCode::ReservationExpired, format!("your hold on seat {seat_id} is gone (expired or released)")))
}

/// Groups `(event_id, seat_id, version)` rows by event, for one event per show.
fn by_event(rows: &[sqlx::any::AnyRow]) -> BTreeMap<i64, Vec<SeatVersion>> {
    let mut out: BTreeMap<i64, Vec<SeatVersion>> = BTreeMap::new();
    for r in rows {
        out.entry(r.get("event_id"))
            .or_default()
            .push(SeatVersion { seat_id: r.get("seat_id"), version: r.get("version") });
    }
    out
}

pub struct HoldOutcome {
    pub expires_at: i64,
    pub hold_secs: i64,
}

impl Reservation {
    /// Holds all of `seat_ids` for `buyer`, or none of them. `addr` is the client
    /// address key of an anonymous buyer (see [`crate::address_key`]), `None` for one
    /// named by a bearer token.
    pub async fn hold(
        &self,
        buyer: &str,
        addr: Option<&str>,
        event_id: i64,
        seat_ids: &[i64],
        hold_secs: i64,
    ) -> Result<HoldOutcome, PinError> {
        // Most refusals in a rush are plain to see: answer them from a reader, here,
        // without going to the writer. A seat freed a moment ago may still be refused —
        // as if the buyer had come a moment earlier; every grant is decided by the write.
        let now = self.clock.now_millis();
        let addr = addr.unwrap_or_default().to_owned();
        let holding = Holding { addr: &addr, policy: &self.policy };
        let seen = why_not(self.db.reader(), buyer, event_id, seat_ids, now, Some(&holding)).await?;
        if matches!(seen.code, ErrorCode::NotFound | ErrorCode::SeatSold | ErrorCode::ReservationConflict) {
            return Err(seen.into());
        }
        let (this, buyer, seat_ids) = (self.clone(), buyer.to_owned(), seat_ids.to_vec());
        self.db
            .on_writer(async move { this.take_seats(&buyer, &addr, event_id, &seat_ids, hold_secs, now).await })
            .await
    }

    /// The hold's write: takes exactly the seats the buyer may take, or none.
    ///
    /// A seat may be taken when it is free, or held (unpinned) by this buyer, or held by
    /// someone whose hold expired — but not by this buyer (or address) when the hold that
    /// expired, or that the sweep freed within the cool-down, was theirs. The hold begins
    /// now, or when this buyer's hold of it began if it holds it still or released it
    /// within the cool-down; it ends at the time asked, but never past its longest life.
    async fn take_seats(
        &self,
        buyer: &str,
        addr: &str,
        event_id: i64,
        seat_ids: &[i64],
        hold_secs: i64,
        now: i64,
    ) -> Result<HoldOutcome, PinError> {
        let hold_secs = self.policy.clamp(hold_secs);
        let wanted = now + hold_secs * 1000;
        // $1 buyer, $2 the expiry asked, $3 show, $4 now, $5 address key, $6 life in ms.
        let began = formatcp!(
            "(CASE WHEN status = {HELD} AND holder = $1 AND order_id IS NULL AND expires_at >= $4 \
             THEN COALESCE(held_since, $4) \
             WHEN last_how = {HOLD_RELEASED} AND last_until >= $4 AND (last_holder = $1 OR last_addr = $5) \
             THEN COALESCE(last_held_since, $4) ELSE $4 END)"
        );
        let lapsed_by_others = if self.policy.cooldown_secs > 0 {
            "holder <> $1 AND (holder_addr IS NULL OR holder_addr <> $5)"
        } else {
            "1 = 1"
        };
        let sql = format!(
            "UPDATE seats SET status = {HELD}, holder = $1, holder_addr = NULLIF($5, ''), held_since = {began}, \
             expires_at = CASE WHEN $2 <= {began} + $6 THEN $2 ELSE {began} + $6 END, order_id = NULL, \
             version = version + 1 \
             WHERE event_id = $3 AND seat_id IN ({}) AND (status = {AVAILABLE} OR (status = {HELD} AND order_id IS NULL \
             AND ((holder = $1 AND expires_at >= $4) OR (expires_at < $4 AND {lapsed_by_others})))) \
             AND (last_until IS NULL OR last_until < $4 OR last_how <> {HOLD_EXPIRED} \
             OR (last_holder <> $1 AND (last_addr IS NULL OR last_addr <> $5))) \
             AND {began} + $6 > $4 \
             RETURNING event_id, seat_id, version, expires_at",
            placeholders(7, seat_ids.len())
        );
        let mut query =
            sqlx::query(&sql).bind(buyer).bind(wanted).bind(event_id).bind(now).bind(addr).bind(self.policy.life_ms());
        for id in seat_ids {
            query = query.bind(*id);
        }
        let mut tx = self.db.begin().await?;
        let rows = query.fetch_all(&mut *tx).await.context("failed to hold seats")?;
        if rows.len() != seat_ids.len() {
            tx.rollback().await?;
            let holding = Holding { addr, policy: &self.policy };
            let mut why = why_not(self.db.reader(), buyer, event_id, seat_ids, now, Some(&holding)).await?;
            if why.code == ErrorCode::ReservationExpired {
                // A lapsed pin not swept yet: the seat is not free for a moment more.
                why = refused(ErrorCode::ReservationConflict, "the seat is being released; try again shortly");
            }
            return Err(why.into());
        }
        if let Some(refusal) = self.over_limits(&mut tx, buyer, event_id, now).await? {
            tx.rollback().await?;
            return Err(refusal.into());
        }
        if let Some(refusal) = self.over_address_limit(&mut tx, addr, rows.len(), now).await? {
            tx.rollback().await?;
            return Err(refusal.into());
        }
        // Seats held on from before end when their life does, maybe before the rest.
        let expires_at = rows.iter().map(|r| r.get::<i64, _>("expires_at")).min().unwrap_or(wanted);
        let hold_secs = if expires_at < wanted { secs_until(expires_at, now) } else { hold_secs };
        let seats = by_event(&rows).remove(&event_id).unwrap_or_default();
        outbox::append(&mut tx, &SeatsHeld { event_id, seats, expires_at }).await?;
        tx.commit().await.context("failed to commit hold")?;
        self.relay.wake();
        self.indexes.taken(event_id, seat_ids);
        Ok(HoldOutcome { expires_at, hold_secs })
    }

    /// Whether the anonymous buyers of address `addr`, counting the `taken` seats just
    /// taken in `tx`, now hold more seats than one address may. On PostgreSQL one
    /// address's holds are counted one at a time (SQLite's single writer does so anyway),
    /// so that two at once cannot both pass the count.
    async fn over_address_limit(
        &self,
        tx: &mut runtime::Tx,
        addr: &str,
        taken: usize,
        now: i64,
    ) -> anyhow::Result<Option<PinRefused>> {
        let max = self.policy.max_held_per_address;
        if max == 0 || addr.is_empty() {
            return Ok(None);
        }
        if self.db.backend() == runtime::db::Backend::Postgres {
            // The two-key lock space: apart from the buyers' one-key locks, taken before.
            sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext($1))").bind(addr).execute(&mut **tx).await?;
        }
        let held: i64 = sqlx::query_scalar(HELD_BY_ADDRESS)
            .bind(addr)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .context("failed to count the address's seats")?;
        if held > max as i64 {
            let before = (held - taken as i64).max(0);
            let message = format!(
                "this address holds {before} seats already, and buyers without a sign-in may hold at most {max} \
                 from one address at once; release or buy some first, or sign in (a bearer token)"
            );
            return Ok(Some(refused(ErrorCode::ValidationFailed, message)));
        }
        Ok(None)
    }

    /// Whether `buyer`, counting the seats just taken in `tx`, now holds more seats than
    /// allowed, or holds and owns more of one show's. Checked inside the hold's write
    /// transaction, so a buyer racing themselves cannot slip past the limit.
    async fn over_limits(
        &self,
        tx: &mut runtime::Tx,
        buyer: &str,
        event_id: i64,
        now: i64,
    ) -> anyhow::Result<Option<PinRefused>> {
        let (max_held, max_in_event) = (self.policy.max_held_per_buyer, self.policy.max_seats_per_buyer_per_event);
        if max_held == 0 && max_in_event == 0 {
            return Ok(None);
        }
        if self.db.backend() == runtime::db::Backend::Postgres {
            // One buyer's holds one at a time, as SQLite's single writer does anyway.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(buyer).execute(&mut **tx).await?;
        }
        // Each count reads one range of `seats_by_holder`: the buyer's live holds, or the
        // buyer's seats in one show, never every seat the buyer ever bought. Only the
        // limits that are on are counted, both in one statement when both are.
        let counts = match (max_held > 0, max_in_event > 0) {
            (true, false) => sqlx::query_as(&HELD_COUNT).bind(buyer).bind(now),
            (true, true) => sqlx::query_as(&LIMIT_COUNTS).bind(buyer).bind(now).bind(event_id),
            (false, _) => sqlx::query_as(&IN_EVENT_COUNT).bind(buyer).bind(now).bind(event_id),
        };
        let (held, in_event): (i64, i64) =
            counts.fetch_one(&mut **tx).await.context("failed to count the buyer's seats")?;
        if max_held > 0 && held > max_held as i64 {
            let message = format!("you may hold at most {max_held} seats at once; release or buy some first");
            return Ok(Some(refused(ErrorCode::ValidationFailed, message)));
        }
        if max_in_event > 0 && in_event > max_in_event as i64 {
            let message = format!("at most {max_in_event} seats of this show per buyer");
            return Ok(Some(refused(ErrorCode::ValidationFailed, message)));
        }
        Ok(None)
    }

    /// Adds `secs` to the time the buyer's live, unpinned hold has left, as the original
    /// did (its Redis script set the TTL to `TTL + seconds`), up to the longest hold from
    /// now and — as that is — clamped to the end of the hold's life (its longest life from
    /// when it began); a hold that already ends later keeps its expiry, so an extend never
    /// shortens one. Returns the new expiry.
    pub async fn extend(&self, buyer: &str, event_id: i64, seat_id: i64, secs: i64) -> Result<i64, PinError> {
        let now = self.clock.now_millis();
        let longest = now + self.policy.max_secs * 1000;
        let mut tx = self.db.begin().await?;
        // min(expires_at + added, max(expires_at, longest)), then the same against the end
        // of the hold's life, written with CASE so that the one statement runs on SQLite
        // and PostgreSQL alike. A hold from before its start was kept starts now.
        let added =
            "CASE WHEN expires_at + $1 <= $2 THEN expires_at + $1 WHEN expires_at > $2 THEN expires_at ELSE $2 END";
        let end_of_life = "COALESCE(held_since, $6) + $7";
        let sql = format!(
            "UPDATE seats SET held_since = COALESCE(held_since, $6), expires_at = CASE WHEN {added} <= {end_of_life} \
             THEN {added} WHEN expires_at > {end_of_life} THEN expires_at ELSE {end_of_life} END \
             WHERE event_id = $3 AND seat_id = $4 AND status = {HELD} AND holder = $5 AND order_id IS NULL \
             AND expires_at >= $6 RETURNING expires_at"
        );
        let extended: Option<i64> = sqlx::query_scalar(&sql)
            .bind(secs * 1000)
            .bind(longest)
            .bind(event_id)
            .bind(seat_id)
            .bind(buyer)
            .bind(now)
            .bind(self.policy.life_ms())
            .fetch_optional(&mut *tx)
            .await
            .context("failed to extend hold")?;
        let Some(expires_at) = extended else {
            tx.rollback().await?;
            return Err(self.explain(buyer, event_id, &[seat_id], now).await?.into());
        };
        tx.commit().await?;
        Ok(expires_at)
    }

    /// Gives up the buyer's live, unpinned hold.
    pub async fn release(&self, buyer: &str, event_id: i64, seat_id: i64) -> Result<(), PinError> {
        let now = self.clock.now_millis();
        let mut tx = self.db.begin().await?;
        let rows = sqlx::query(formatcp!(
            "UPDATE seats SET status = {AVAILABLE}, last_holder = holder, last_addr = holder_addr, \
             last_held_since = held_since, last_until = $5, last_how = {HOLD_RELEASED}, holder = NULL, holder_addr = NULL, \
             held_since = NULL, expires_at = NULL, version = version + 1 \
             WHERE event_id = $1 AND seat_id = $2 AND status = {HELD} AND holder = $3 AND order_id IS NULL \
             AND expires_at >= $4 RETURNING event_id, seat_id, version"
        ))
        .bind(event_id)
        .bind(seat_id)
        .bind(buyer)
        .bind(now)
        .bind(self.policy.cooldown_until(now))
        .fetch_all(&mut *tx)
        .await
        .context("failed to release hold")?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Err(self.explain(buyer, event_id, &[seat_id], now).await?.into());
        }
        for (event_id, seats) in by_event(&rows) {
            let reason = ReleaseReason::Released;
            outbox::append(&mut tx, &SeatsReleased { event_id, seats, reason, order_id: None }).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        self.indexes.freed(event_id, &[seat_id]);
        Ok(())
    }

    /// The buyer's live holds: `(event_id, seat_id, expires_at, order_id)`.
    pub async fn holds_of(&self, buyer: &str) -> anyhow::Result<Vec<MyHold>> {
        let rows = sqlx::query(formatcp!(
            "SELECT s.event_id, s.seat_id, s.expires_at, s.order_id, p.order_no FROM seats s \
             LEFT JOIN pins p ON p.order_id = s.order_id WHERE s.holder = $1 AND s.status = {HELD} \
             AND (s.expires_at IS NULL OR s.expires_at >= $2) ORDER BY s.event_id, s.seat_id"
        ))
        .bind(buyer)
        .bind(self.clock.now_millis())
        .fetch_all(self.db.reader())
        .await
        .context("failed to list holds")?;
        Ok(rows
            .iter()
            .map(|r| MyHold {
                event_id: r.get("event_id"),
                seat_id: r.get("seat_id"),
                expires_at: r.get::<Option<i64>, _>("expires_at").map(contract::rfc3339),
                pinned: r.get::<Option<String>, _>("order_id").is_some(),
                order_id: r.get("order_no"),
            })
            .collect())
    }

    /// Frees pins whose lease lapsed and holds past their expiry; one batch.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let now = self.clock.now_millis();
        let mut tx = self.db.begin().await?;
        // Pins before seats, the order every other step locks them in (PostgreSQL would
        // otherwise deadlock this sweep with a pin or a payment of the same order).
        let lapsed_orders: Vec<String> = sqlx::query_scalar(formatcp!(
            "UPDATE pins SET state = {PIN_LAPSED} WHERE state = {PIN_LEASED} AND order_id IN \
             (SELECT order_id FROM seats WHERE status = {HELD} AND expires_at < $1 AND order_id IS NOT NULL LIMIT 2000) \
             RETURNING order_id"
        ))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .context("failed to lapse pins")?;
        let mut freed = Vec::new();
        for order_id in &lapsed_orders {
            let filter = formatcp!("order_id = $1 AND status = {HELD}");
            freed.push(free_seats(&mut tx, filter, order_id, None, ReleaseReason::PinLapsed, Some(order_id)).await?);
        }
        let lapsed: usize = freed.iter().map(|(_, seats)| seats.len()).sum();
        // The outer condition repeats the inner one because PostgreSQL re-checks only the
        // outer one under the row lock: a seat another replica swept, and a buyer held
        // again, in the meantime must not be freed.
        let expired = sqlx::query(formatcp!(
            "UPDATE seats SET status = {AVAILABLE}, last_holder = holder, last_addr = holder_addr, \
             last_held_since = held_since, last_until = CASE WHEN order_id IS NULL THEN $2 ELSE 0 END, \
             last_how = {HOLD_EXPIRED}, holder = NULL, holder_addr = NULL, held_since = NULL, expires_at = NULL, \
             order_id = NULL, version = version + 1 \
             WHERE status = {HELD} AND expires_at < $1 \
             AND (event_id, seat_id) IN (SELECT event_id, seat_id FROM seats WHERE status = {HELD} AND expires_at < $1 LIMIT 2000) \
             RETURNING event_id, seat_id, version"
        ))
        .bind(now)
        .bind(self.policy.cooldown_until(now))
        .fetch_all(&mut *tx)
        .await
        .context("failed to sweep holds")?;
        if lapsed_orders.is_empty() && expired.is_empty() {
            return Ok(0);
        }
        for (event_id, seats) in by_event(&expired) {
            freed.push((event_id, seats.iter().map(|s| s.seat_id).collect()));
            let reason = ReleaseReason::Expired;
            outbox::append(&mut tx, &SeatsReleased { event_id, seats, reason, order_id: None }).await?;
        }
        tx.commit().await?;
        self.relay.wake();
        for (event_id, seat_ids) in &freed {
            self.indexes.freed(*event_id, seat_ids);
        }
        metrics::counter!(crate::metrics::HOLD_EXPIRED).increment(expired.len() as u64);
        metrics::counter!(crate::metrics::PIN_LAPSED).increment(lapsed as u64);
        let n = expired.len() + lapsed;
        tracing::info!(expired = expired.len(), lapsed, "holds swept");
        Ok(n)
    }
}

#[async_trait]
impl Holds for Reservation {
    /// Pins the buyer's live holds on `seat_ids` to the order, for a lease; idempotent on
    /// the order id.
    async fn pin(&self, req: PinRequest) -> Result<Pinned, PinError> {
        let this = self.clone();
        self.db.on_writer(async move { this.pin_here(req).await }).await
    }
}

impl Reservation {
    async fn pin_here(&self, req: PinRequest) -> Result<Pinned, PinError> {
        let now = self.clock.now_millis();
        let lease_until = now + self.policy.pin_lease.as_millis() as i64;
        let mut seat_ids = req.seat_ids.clone();
        seat_ids.sort_unstable();
        let wanted = serde_json::to_string(&seat_ids).context("failed to write the seat ids")?;
        let sql = format!(
            "UPDATE seats SET order_id = $1, expires_at = $2 WHERE event_id = $3 AND status = {HELD} AND holder = $4 \
             AND order_id IS NULL AND expires_at >= $5 AND seat_id IN ({}) RETURNING seat_id, price",
            placeholders(6, seat_ids.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql)
            .bind(&req.order_id)
            .bind(lease_until)
            .bind(req.event_id)
            .bind(&req.buyer)
            .bind(now);
        for id in &seat_ids {
            query = query.bind(*id);
        }
        let mut tx = self.db.begin().await?;
        let mut pinned = query.fetch_all(&mut *tx).await.context("failed to pin holds")?;
        if pinned.len() != seat_ids.len() {
            tx.rollback().await?;
            return self.pinned_before(&req, &wanted, &seat_ids, now).await;
        }
        sqlx::query(formatcp!(
            "INSERT INTO pins (order_id, event_id, buyer, seat_ids, seat_count, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, {PIN_LEASED}, $6)"
        ))
        .bind(&req.order_id)
        .bind(req.event_id)
        .bind(&req.buyer)
        .bind(&wanted)
        .bind(seat_ids.len() as i64)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("failed to record pin")?;
        tx.commit().await?;
        pinned.sort_unstable();
        Ok(Pinned { seats: pinned.into_iter().map(|(seat_id, price)| PinnedSeat { seat_id, price }).collect() })
    }
}

impl Reservation {
    /// A pin that could not be made: the same order pinned them before (a retry), or
    /// here is why not.
    async fn pinned_before(
        &self,
        req: &PinRequest,
        wanted: &str,
        seat_ids: &[i64],
        now: i64,
    ) -> Result<Pinned, PinError> {
        let reader = self.db.reader();
        let existing = sqlx::query("SELECT event_id, buyer, seat_ids, state FROM pins WHERE order_id = $1")
            .bind(&req.order_id)
            .fetch_optional(reader)
            .await
            .context("failed to read the pin")?;
        let Some(pin) = existing else {
            return Err(why_not(reader, &req.buyer, req.event_id, seat_ids, now, None).await?.into());
        };
        let same = pin.get::<i64, _>("event_id") == req.event_id
            && pin.get::<String, _>("buyer") == req.buyer
            && pin.get::<String, _>("seat_ids") == wanted;
        if !same {
            return Err(refused(ErrorCode::IdempotencyKeyReused, "this order was made for other seats").into());
        }
        let state = PinState::parse(&pin.get::<String, _>("state"));
        if matches!(state, Some(PinState::Lapsed | PinState::Released | PinState::Failed)) {
            return Err(refused(ErrorCode::ReservationExpired, "the holds of this order are gone").into());
        }
        let rows =
            sqlx::query_as::<_, (i64, i64)>("SELECT seat_id, price FROM seats WHERE order_id = $1 ORDER BY seat_id")
                .bind(&req.order_id)
                .fetch_all(reader)
                .await
                .context("failed to read prices")?;
        Ok(Pinned { seats: rows.into_iter().map(|(seat_id, price)| PinnedSeat { seat_id, price }).collect() })
    }

    /// Why `buyer` could not take the seats, read after the failed write rolled back.
    async fn explain(&self, buyer: &str, event_id: i64, seat_ids: &[i64], now: i64) -> anyhow::Result<PinRefused> {
        why_not(self.db.reader(), buyer, event_id, seat_ids, now, None).await
    }
}

#[cfg(test)]
mod tests {
    use runtime::db::{Db, Durability};

    use super::{HELD_BY_BUYER, IN_EVENT_BY_BUYER};

    /// Every hold counts the buyer's seats, and a buyer's sold seats keep their holder
    /// for good: the counts must search the buyer's live holds (or one show's seats) in
    /// the index, not visit every seat the buyer ever bought.
    #[tokio::test]
    async fn the_limits_count_only_the_seats_they_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("r.db"), Durability::Normal, &crate::MIGRATIONS).await.unwrap();
        let held = db.sqlite_plan(HELD_BY_BUYER).await.unwrap();
        let by_holder = "INDEX seats_by_holder (holder=? AND status=?)";
        assert!(held.iter().any(|s| s.contains(by_holder)), "{held:?}");
        let in_event = db.sqlite_plan(IN_EVENT_BY_BUYER).await.unwrap();
        let by_show = "INDEX seats_by_holder (holder=? AND status=? AND event_id=?)";
        assert!(in_event.iter().any(|s| s.contains(by_show)), "{in_event:?}");
        // Asked together, each count still reads its range and nothing else.
        let both = db.sqlite_plan(&super::LIMIT_COUNTS).await.unwrap();
        assert!(both.iter().any(|s| s.contains(by_show)), "{both:?}");
        assert!(both.iter().any(|s| s.contains(by_holder) && !s.contains("event_id")), "{both:?}");
        assert!(!both.iter().any(|s| s.contains("SCAN seats")), "{both:?}");
        // With only the first limit on (the default), the show's seats are not read.
        let held_only = db.sqlite_plan(&super::HELD_COUNT).await.unwrap();
        assert!(held_only.iter().any(|s| s.contains(by_holder)), "{held_only:?}");
        assert!(!held_only.iter().any(|s| s.contains("event_id") || s.contains("SCAN seats")), "{held_only:?}");
        let show_only = db.sqlite_plan(&super::IN_EVENT_COUNT).await.unwrap();
        assert!(show_only.iter().any(|s| s.contains(by_show)), "{show_only:?}");
        assert!(!show_only.iter().any(|s| s.contains("SCAN seats")), "{show_only:?}");
    }

    /// The consistency checks run every few seconds for as long as the process runs:
    /// those that count violating seats read an index of such seats alone.
    #[tokio::test]
    async fn the_seat_checks_read_only_violations() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("r.db"), Durability::Normal, &crate::MIGRATIONS).await.unwrap();
        for (sql, index) in [
            (crate::SOLD_WITHOUT_ORDER, "seats_sold_without_order"),
            (crate::HELD_WITHOUT_HOLDER, "seats_held_without_holder"),
        ] {
            let steps = db.sqlite_plan(sql).await.unwrap();
            assert!(steps.iter().any(|s| s.contains(index)), "{sql}: {steps:?}");
        }
    }

    /// The address cap counts one address's held seats from an index of held seats by
    /// address, never the show's or every seat ever held.
    #[tokio::test]
    async fn the_address_count_reads_only_that_addresses_held_seats() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("r.db"), Durability::Normal, &crate::MIGRATIONS).await.unwrap();
        let steps = db.sqlite_plan(super::HELD_BY_ADDRESS).await.unwrap();
        assert!(steps.iter().any(|s| s.contains("INDEX seats_held_by_addr (holder_addr=?)")), "{steps:?}");
        assert!(!steps.iter().any(|s| s.contains("SCAN seats")), "{steps:?}");
    }

    mod spinning {
        use std::sync::Arc;

        use const_format::formatcp;
        use contract::ErrorCode;
        use contract::holds::{PinError, PinRefused};
        use runtime::bus::embedded::EmbeddedBus;
        use runtime::db::{Db, Durability};

        use crate::states::{HELD, HOLD_EXPIRED};
        use crate::{HoldPolicy, Reservation};

        const SHOW: i64 = 1;

        /// A reservation module on SQLite with 100 free seats in show 1.
        async fn module(policy: HoldPolicy) -> (Reservation, Db, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open_sqlite(&dir.path().join("r.db"), Durability::Normal, &crate::MIGRATIONS).await.unwrap();
            let bus = EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap();
            for seat in 1..=100 {
                exec(&db, "INSERT INTO seats (event_id, seat_id, price) VALUES ($1, $2, 1000)", &[SHOW, seat]).await;
            }
            (Reservation::new(db.clone(), Arc::new(bus), policy), db, dir)
        }

        /// The refusal of a call that must be refused.
        fn refusal<T>(result: Result<T, PinError>) -> PinRefused {
            match result {
                Ok(_) => panic!("not refused"),
                Err(PinError::Refused(refused)) => refused,
                Err(PinError::Failed(error)) => panic!("failed: {error:#}"),
            }
        }

        fn policy() -> HoldPolicy {
            HoldPolicy { max_held_per_buyer: 0, ..HoldPolicy::default() }
        }

        /// Runs one statement binding `args`, and commits it.
        async fn exec(db: &Db, sql: &str, args: &[i64]) {
            let mut tx = db.begin().await.unwrap();
            let mut query = sqlx::query(sql);
            for arg in args {
                query = query.bind(*arg);
            }
            query.execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }

        async fn held(db: &Db) -> i64 {
            let sql = formatcp!("SELECT COUNT(*) FROM seats WHERE status = {HELD}");
            sqlx::query_scalar(sql).fetch_one(db.reader()).await.unwrap()
        }

        /// Makes the seat's hold end in the past, as if its time had run out.
        async fn run_out(db: &Db, seat: i64) {
            let past = contract::now_millis() - 1;
            exec(db, "UPDATE seats SET expires_at = $1 WHERE event_id = $2 AND seat_id = $3", &[past, SHOW, seat])
                .await;
        }

        #[tokio::test]
        async fn anonymous_buyers_of_one_address_hold_at_most_its_cap_together() {
            let (r, db, _dir) = module(HoldPolicy { max_held_per_address: 12, ..policy() }).await;
            let bot = Some("192.0.2.7");
            let seats: Vec<i64> = (1..=10).collect();
            r.hold("anon:a", bot, SHOW, &seats, 60).await.unwrap();
            // Another made-up buyer of the same address: 10 + 5 > 12, refused, nothing held.
            let refused = refusal(r.hold("anon:b", bot, SHOW, &[11, 12, 13, 14, 15], 60).await);
            assert_eq!(refused.code, ErrorCode::ValidationFailed);
            assert!(refused.message.contains("this address holds 10 seats already"), "{}", refused.message);
            assert_eq!(held(&db).await, 10);
            r.hold("anon:c", bot, SHOW, &[11, 12], 60).await.unwrap();
            assert!(matches!(r.hold("anon:d", bot, SHOW, &[13], 60).await, Err(PinError::Refused(_))));
            // Holding one's own seats again counts them once.
            r.hold("anon:c", bot, SHOW, &[11, 12], 60).await.unwrap();
            // Another address, and a buyer named by a token, are not counted with it.
            r.hold("anon:e", Some("198.51.100.1"), SHOW, &(20..32).collect::<Vec<_>>(), 60).await.unwrap();
            r.hold("user:alice", None, SHOW, &(40..60).collect::<Vec<_>>(), 60).await.unwrap();
            // A release frees the address's room.
            r.release("anon:a", SHOW, 1).await.unwrap();
            r.hold("anon:d", bot, SHOW, &[13], 60).await.unwrap();
            assert_eq!(held(&db).await, 12 + 12 + 20);
        }

        #[tokio::test]
        async fn holds_expire_and_are_swept_by_the_injected_clock() {
            let (r, db, _dir) = module(HoldPolicy { min_secs: 1, ..policy() }).await;
            let clock = runtime::clock::Clock::manual();
            let r = r.with_clock(clock.clone());
            let hold = r.hold("user:ann", None, SHOW, &[1], 2).await.unwrap();
            assert!(hold.expires_at - clock.now_millis() <= 2_000);
            assert_eq!(r.sweep().await.unwrap(), 0, "not expired yet");
            clock.advance(std::time::Duration::from_millis(2_100));
            assert_eq!(refusal(r.extend("user:ann", SHOW, 1, 60).await).code, ErrorCode::ReservationExpired);
            assert_eq!(r.sweep().await.unwrap(), 1);
            assert_eq!(held(&db).await, 0);
            // Let expire: kept from its buyer for the cool-down, by the same clock.
            refusal(r.hold("user:ann", None, SHOW, &[1], 60).await);
            clock.advance(std::time::Duration::from_secs(61));
            r.hold("user:ann", None, SHOW, &[1], 60).await.unwrap();
        }

        #[tokio::test]
        async fn no_extend_and_no_new_hold_keeps_a_seat_past_its_life() {
            let (r, db, _dir) = module(HoldPolicy { min_secs: 1, max_life_secs: 3, ..policy() }).await;
            let before = contract::now_millis();
            let held = r.hold("user:ann", None, SHOW, &[1], 2).await.unwrap();
            assert_eq!(held.hold_secs, 2);
            let end_of_life = |since: i64| since + 3_000;
            let since: i64 = sqlx::query_scalar("SELECT held_since FROM seats WHERE seat_id = 1")
                .fetch_one(db.reader())
                .await
                .unwrap();
            assert!(since >= before);
            let extended = r.extend("user:ann", SHOW, 1, 30).await.unwrap();
            assert_eq!(extended, end_of_life(since), "clamped to the end of the hold's life");
            assert_eq!(r.extend("user:ann", SHOW, 1, 30).await.unwrap(), end_of_life(since));
            // Holding it again does not start its life again.
            let again = r.hold("user:ann", None, SHOW, &[1], 120).await.unwrap();
            assert_eq!(again.expires_at, end_of_life(since));
            assert!(again.hold_secs <= 3);
            // A hold asking for longer than a life gets one life.
            let long = r.hold("user:bob", None, SHOW, &[2], 120).await.unwrap();
            assert!(long.expires_at - contract::now_millis() <= 3_000 && long.hold_secs == 3);
        }

        #[tokio::test]
        async fn a_seat_let_expire_is_kept_from_its_buyer_and_address_for_the_cooldown() {
            let (r, db, _dir) = module(HoldPolicy { cooldown_secs: 60, ..policy() }).await;
            let bot = Some("192.0.2.7");
            r.hold("anon:a", bot, SHOW, &[1, 2], 60).await.unwrap();
            r.hold("user:ann", None, SHOW, &[3], 60).await.unwrap();
            for seat in [1, 2, 3] {
                run_out(&db, seat).await;
            }
            // Before the sweep: neither the buyer nor its address may take it over.
            let early = refusal(r.hold("anon:b", bot, SHOW, &[1], 60).await);
            assert_eq!(early.code, ErrorCode::ReservationConflict, "{}", early.message);
            r.sweep().await.unwrap();
            for (buyer, addr, seat) in [("anon:a", bot, 1), ("anon:b", bot, 2), ("user:ann", None, 3)] {
                let refused = refusal(r.hold(buyer, addr, SHOW, &[seat], 60).await);
                assert_eq!(refused.code, ErrorCode::ReservationConflict);
                assert!(refused.message.contains("you may hold it again in"), "{}", refused.message);
            }
            // Others may hold them at once, a token's buyer from the bot's address too.
            r.hold("anon:c", Some("198.51.100.1"), SHOW, &[1], 60).await.unwrap();
            r.hold("user:bob", None, SHOW, &[2, 3], 60).await.unwrap();
            // Once the cool-down is over, it may.
            r.release("user:bob", SHOW, 2).await.unwrap();
            let sql = formatcp!(
                "UPDATE seats SET last_how = {HOLD_EXPIRED}, last_holder = 'anon:a', last_addr = '192.0.2.7', \
                 last_until = $1"
            );
            exec(&db, sql, &[contract::now_millis() - 1]).await;
            r.hold("anon:a", bot, SHOW, &[2], 60).await.unwrap();
        }

        #[tokio::test]
        async fn a_release_and_a_new_hold_do_not_start_the_life_again() {
            let (r, db, _dir) = module(HoldPolicy { max_life_secs: 600, cooldown_secs: 60, ..policy() }).await;
            let bot = Some("192.0.2.7");
            r.hold("anon:a", bot, SHOW, &[1], 60).await.unwrap();
            // As if held for 550 s already.
            let since = contract::now_millis() - 550_000;
            exec(&db, "UPDATE seats SET held_since = $1 WHERE seat_id = 1", &[since]).await;
            r.release("anon:a", SHOW, 1).await.unwrap();
            // Another made-up buyer of the same address gets what is left of the life.
            let again = r.hold("anon:b", bot, SHOW, &[1], 60).await.unwrap();
            assert_eq!(again.expires_at, since + 600_000);
            r.release("anon:b", SHOW, 1).await.unwrap();
            // With the life used up, not at all until the cool-down is over.
            exec(&db, "UPDATE seats SET last_held_since = $1 WHERE seat_id = 1", &[since - 100_000]).await;
            let refused = refusal(r.hold("anon:a", bot, SHOW, &[1], 60).await);
            assert_eq!(refused.code, ErrorCode::ReservationConflict);
            assert!(refused.message.contains("the longest a hold may last (600 s)"), "{}", refused.message);
            // A buyer who released a seat a moment ago holds it again as before.
            r.hold("user:gina", None, SHOW, &[5], 5).await.unwrap();
            r.release("user:gina", SHOW, 5).await.unwrap();
            assert_eq!(r.hold("user:gina", None, SHOW, &[5], 120).await.unwrap().hold_secs, 120);
            // Others hold it at once, with a life of their own.
            let other = r.hold("anon:c", Some("198.51.100.1"), SHOW, &[1], 60).await.unwrap();
            assert_eq!(other.hold_secs, 60);
        }

        #[test]
        fn an_ipv6_address_counts_by_its_64_prefix() {
            let key = |s: &str| crate::address_key(s.parse().unwrap());
            assert_eq!(key("192.0.2.7"), "192.0.2.7");
            assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
            assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
            assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
            assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        }
    }
}
