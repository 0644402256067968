//! Holding, extending, releasing, pinning and sweeping seats.
//!
//! Each operation is one conditional UPDATE that takes exactly the seats it may take,
//! or rolls back; only then, to say why, does it look at the seats. So the decision is
//! made by the database under its row locks, never by a read racing a write.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::Context;
use async_trait::async_trait;
use contract::ErrorCode;
use contract::api::MyHold;
use contract::events::{SeatVersion, SeatsHeld, SeatsReleased};
use contract::holds::{Holds, PinRefused, PinRequest, Pinned, PinnedSeat};
use runtime::outbox;
use sqlx::Row;

use crate::Reservation;
use crate::consume::free_seats;

/// A buyer's live holds (for `max_held_per_buyer`).
pub(crate) const HELD_BY_BUYER: &str = "SELECT COUNT(*) FROM seats WHERE holder = $1 AND status = 'HELD' \
     AND (expires_at IS NULL OR expires_at >= $2)";

/// A buyer's live holds and bought seats in one show `$3` (for
/// `max_seats_per_buyer_per_event`).
pub(crate) const IN_EVENT_BY_BUYER: &str = "SELECT COUNT(*) FROM seats WHERE holder = $1 AND status IN ('HELD', 'SOLD') \
     AND event_id = $3 AND (status = 'SOLD' OR expires_at IS NULL OR expires_at >= $2)";

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

/// Why the seats could not be taken by `buyer`: unknown, sold, someone else's, or gone.
async fn why_not(
    db: &runtime::db::Reader,
    buyer: &str,
    event_id: i64,
    seat_ids: &[i64],
    now: i64,
) -> anyhow::Result<PinRefused> {
    let sql = format!(
        "SELECT seat_id, status, holder, expires_at, order_id FROM seats WHERE event_id = $1 AND seat_id IN ({})",
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
    for row in &rows {
        let seat_id: i64 = row.get("seat_id");
        let status: String = row.get("status");
        if status == "SOLD" {
            return Ok(refused(ErrorCode::SeatSold, format!("seat {seat_id} is sold")));
        }
        let live = status == "HELD" && row.get::<Option<i64>, _>("expires_at").is_none_or(|e| e >= now);
        let mine = row.get::<Option<String>, _>("holder").as_deref() == Some(buyer);
        let pinned = row.get::<Option<String>, _>("order_id").is_some();
        if live && (!mine || pinned) {
            let whose = if mine { "pinned to your order" } else { "held by another buyer" };
            return Ok(refused(ErrorCode::ReservationConflict, format!("seat {seat_id} is {whose}")));
        }
        if !(live && mine) {
            expired.get_or_insert(seat_id);
        }
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
    /// Holds all of `seat_ids` for `buyer`, or none of them.
    pub async fn hold(
        &self,
        buyer: &str,
        event_id: i64,
        seat_ids: &[i64],
        hold_secs: i64,
    ) -> anyhow::Result<Result<HoldOutcome, PinRefused>> {
        // Most refusals in a rush are plain to see: answer them from a reader, here,
        // without going to the writer. A seat freed a moment ago may still be refused —
        // as if the buyer had come a moment earlier; every grant is decided by the write.
        let now = contract::now_millis();
        let seen = self.explain(buyer, event_id, seat_ids, now).await?;
        if matches!(seen.code, ErrorCode::NotFound | ErrorCode::SeatSold | ErrorCode::ReservationConflict) {
            return Ok(Err(seen));
        }
        let (this, buyer, seat_ids) = (self.clone(), buyer.to_owned(), seat_ids.to_vec());
        self.db.on_writer(async move { this.take_seats(&buyer, event_id, &seat_ids, hold_secs, now).await }).await
    }

    /// The hold's write: takes exactly the seats the buyer may take, or none.
    async fn take_seats(
        &self,
        buyer: &str,
        event_id: i64,
        seat_ids: &[i64],
        hold_secs: i64,
        now: i64,
    ) -> anyhow::Result<Result<HoldOutcome, PinRefused>> {
        let hold_secs = self.policy.clamp(hold_secs);
        let expires_at = now + hold_secs * 1000;
        let sql = format!(
            "UPDATE seats SET status = 'HELD', holder = $1, expires_at = $2, order_id = NULL, version = version + 1 \
             WHERE event_id = $3 AND seat_id IN ({}) AND (status = 'AVAILABLE' OR (status = 'HELD' AND order_id IS NULL \
             AND (holder = $1 OR expires_at < $4))) RETURNING event_id, seat_id, version",
            placeholders(5, seat_ids.len())
        );
        let mut query = sqlx::query(&sql).bind(buyer).bind(expires_at).bind(event_id).bind(now);
        for id in seat_ids {
            query = query.bind(*id);
        }
        let mut tx = self.db.begin().await?;
        let rows = query.fetch_all(&mut *tx).await.context("failed to hold seats")?;
        if rows.len() != seat_ids.len() {
            tx.rollback().await?;
            let mut why = self.explain(buyer, event_id, seat_ids, now).await?;
            if why.code == ErrorCode::ReservationExpired {
                // A lapsed pin not swept yet: the seat is not free for a moment more.
                why = refused(ErrorCode::ReservationConflict, "the seat is being released; try again shortly");
            }
            return Ok(Err(why));
        }
        if let Some(refusal) = self.over_limits(&mut tx, buyer, event_id, now).await? {
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
        let seats = by_event(&rows).remove(&event_id).unwrap_or_default();
        outbox::append(&mut tx, &SeatsHeld { event_id, seats, expires_at }).await?;
        tx.commit().await.context("failed to commit hold")?;
        self.relay.wake();
        Ok(Ok(HoldOutcome { expires_at, hold_secs }))
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
    /// now; a hold that already ends later keeps its expiry, so an extend never shortens
    /// one. Returns the new expiry.
    pub async fn extend(
        &self,
        buyer: &str,
        event_id: i64,
        seat_id: i64,
        secs: i64,
    ) -> anyhow::Result<Result<i64, PinRefused>> {
        let now = contract::now_millis();
        let longest = now + self.policy.max_secs * 1000;
        let mut tx = self.db.begin().await?;
        // min(expires_at + added, max(expires_at, longest)), written with CASE so that the
        // one statement runs on SQLite and PostgreSQL alike.
        let extended: Option<i64> = sqlx::query_scalar(
            "UPDATE seats SET expires_at = CASE WHEN expires_at + $1 <= $2 THEN expires_at + $1 \
             WHEN expires_at > $2 THEN expires_at ELSE $2 END \
             WHERE event_id = $3 AND seat_id = $4 AND status = 'HELD' AND holder = $5 AND order_id IS NULL \
             AND expires_at >= $6 RETURNING expires_at",
        )
        .bind(secs * 1000)
        .bind(longest)
        .bind(event_id)
        .bind(seat_id)
        .bind(buyer)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context("failed to extend hold")?;
        let Some(expires_at) = extended else {
            tx.rollback().await?;
            return Ok(Err(self.explain(buyer, event_id, &[seat_id], now).await?));
        };
        tx.commit().await?;
        Ok(Ok(expires_at))
    }

    /// Gives up the buyer's live, unpinned hold.
    pub async fn release(&self, buyer: &str, event_id: i64, seat_id: i64) -> anyhow::Result<Result<(), PinRefused>> {
        let now = contract::now_millis();
        let mut tx = self.db.begin().await?;
        let rows = sqlx::query(
            "UPDATE seats SET status = 'AVAILABLE', holder = NULL, expires_at = NULL, version = version + 1 \
             WHERE event_id = $1 AND seat_id = $2 AND status = 'HELD' AND holder = $3 AND order_id IS NULL \
             AND expires_at >= $4 RETURNING event_id, seat_id, version",
        )
        .bind(event_id)
        .bind(seat_id)
        .bind(buyer)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .context("failed to release hold")?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(Err(self.explain(buyer, event_id, &[seat_id], now).await?));
        }
        for (event_id, seats) in by_event(&rows) {
            outbox::append(&mut tx, &SeatsReleased { event_id, seats, reason: "RELEASED".into(), order_id: None })
                .await?;
        }
        tx.commit().await?;
        self.relay.wake();
        Ok(Ok(()))
    }

    /// The buyer's live holds: `(event_id, seat_id, expires_at, order_id)`.
    pub async fn holds_of(&self, buyer: &str) -> anyhow::Result<Vec<MyHold>> {
        let rows = sqlx::query(
            "SELECT s.event_id, s.seat_id, s.expires_at, s.order_id, p.order_no FROM seats s \
             LEFT JOIN pins p ON p.order_id = s.order_id WHERE s.holder = $1 AND s.status = 'HELD' \
             AND (s.expires_at IS NULL OR s.expires_at >= $2) ORDER BY s.event_id, s.seat_id",
        )
        .bind(buyer)
        .bind(contract::now_millis())
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
        let now = contract::now_millis();
        let mut tx = self.db.begin().await?;
        // Pins before seats, the order every other step locks them in (PostgreSQL would
        // otherwise deadlock this sweep with a pin or a payment of the same order).
        let lapsed_orders: Vec<String> = sqlx::query_scalar(
            "UPDATE pins SET state = 'LAPSED' WHERE state = 'LEASED' AND order_id IN \
             (SELECT order_id FROM seats WHERE status = 'HELD' AND expires_at < $1 AND order_id IS NOT NULL LIMIT 2000) \
             RETURNING order_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .context("failed to lapse pins")?;
        let mut lapsed = 0;
        for order_id in &lapsed_orders {
            let filter = "order_id = $1 AND status = 'HELD'";
            lapsed += free_seats(&mut tx, filter, order_id, None, "PIN_LAPSED", Some(order_id)).await?;
        }
        // The outer condition repeats the inner one because PostgreSQL re-checks only the
        // outer one under the row lock: a seat another replica swept, and a buyer held
        // again, in the meantime must not be freed.
        let expired = sqlx::query(
            "UPDATE seats SET status = 'AVAILABLE', holder = NULL, expires_at = NULL, order_id = NULL, version = version + 1 \
             WHERE status = 'HELD' AND expires_at < $1 \
             AND (event_id, seat_id) IN (SELECT event_id, seat_id FROM seats WHERE status = 'HELD' AND expires_at < $1 LIMIT 2000) \
             RETURNING event_id, seat_id, version",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .context("failed to sweep holds")?;
        if lapsed_orders.is_empty() && expired.is_empty() {
            return Ok(0);
        }
        for (event_id, seats) in by_event(&expired) {
            outbox::append(&mut tx, &SeatsReleased { event_id, seats, reason: "EXPIRED".into(), order_id: None })
                .await?;
        }
        tx.commit().await?;
        self.relay.wake();
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
    async fn pin(&self, req: PinRequest) -> anyhow::Result<Result<Pinned, PinRefused>> {
        let this = self.clone();
        self.db.on_writer(async move { this.pin_here(req).await }).await
    }
}

impl Reservation {
    async fn pin_here(&self, req: PinRequest) -> anyhow::Result<Result<Pinned, PinRefused>> {
        let now = contract::now_millis();
        let lease_until = now + self.policy.pin_lease.as_millis() as i64;
        let mut seat_ids = req.seat_ids.clone();
        seat_ids.sort_unstable();
        let wanted = serde_json::to_string(&seat_ids)?;
        let sql = format!(
            "UPDATE seats SET order_id = $1, expires_at = $2 WHERE event_id = $3 AND status = 'HELD' AND holder = $4 \
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
        sqlx::query(
            "INSERT INTO pins (order_id, event_id, buyer, seat_ids, seat_count, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'LEASED', $6)",
        )
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
        Ok(Ok(Pinned { seats: pinned.into_iter().map(|(seat_id, price)| PinnedSeat { seat_id, price }).collect() }))
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
    ) -> anyhow::Result<Result<Pinned, PinRefused>> {
        let reader = self.db.reader();
        let existing = sqlx::query("SELECT event_id, buyer, seat_ids, state FROM pins WHERE order_id = $1")
            .bind(&req.order_id)
            .fetch_optional(reader)
            .await?;
        let Some(pin) = existing else {
            return Ok(Err(why_not(reader, &req.buyer, req.event_id, seat_ids, now).await?));
        };
        let same = pin.get::<i64, _>("event_id") == req.event_id
            && pin.get::<String, _>("buyer") == req.buyer
            && pin.get::<String, _>("seat_ids") == wanted;
        if !same {
            return Ok(Err(refused(ErrorCode::IdempotencyKeyReused, "this order was made for other seats")));
        }
        if matches!(pin.get::<String, _>("state").as_str(), "LAPSED" | "RELEASED" | "FAILED") {
            return Ok(Err(refused(ErrorCode::ReservationExpired, "the holds of this order are gone")));
        }
        let rows =
            sqlx::query_as::<_, (i64, i64)>("SELECT seat_id, price FROM seats WHERE order_id = $1 ORDER BY seat_id")
                .bind(&req.order_id)
                .fetch_all(reader)
                .await
                .context("failed to read prices")?;
        Ok(Ok(Pinned { seats: rows.into_iter().map(|(seat_id, price)| PinnedSeat { seat_id, price }).collect() }))
    }

    /// Why `buyer` could not take the seats, read after the failed write rolled back.
    async fn explain(&self, buyer: &str, event_id: i64, seat_ids: &[i64], now: i64) -> anyhow::Result<PinRefused> {
        why_not(self.db.reader(), buyer, event_id, seat_ids, now).await
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
}
