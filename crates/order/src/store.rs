//! The order module's SQL.

use std::sync::LazyLock;

use anyhow::Context;
use const_format::formatcp;
use contract::api::{Order, OrderStatus};
use contract::reasons::CancelReason;
use runtime::db::{Migrations, Reader, Writer};
use runtime::{Tx, outbox};
use sqlx::Row;

use crate::states::{CANCELLED, CONFIRMED, CREATED};

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

pub struct NewOrder<'a> {
    pub order_id: &'a str,
    /// The public number (`orderId`), from `next_number`.
    pub order_no: i64,
    pub buyer: &'a str,
    pub event_id: i64,
    pub seat_ids: &'a [i64],
    pub amount: i64,
    pub key: &'a str,
    pub key_generation: i64,
    pub hash: &'a str,
    pub now: i64,
}

/// The order's row (`$1`–`$10`), unless an order with its id or key exists.
const INSERT: &str = formatcp!(
    "INSERT INTO orders (order_id, buyer, event_id, seat_ids, amount, status, idempotency_key, \
     key_generation, request_hash, created_at, updated_at, order_no) \
     VALUES ($1, $2, $3, $4, $5, {CREATED}, $6, $9, $7, $8, $8, $10) ON CONFLICT DO NOTHING"
);

fn bind_order<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    o: &NewOrder<'q>,
) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    Ok(query
        .bind(o.order_id)
        .bind(o.buyer)
        .bind(o.event_id)
        .bind(serde_json::to_string(o.seat_ids)?)
        .bind(o.amount)
        .bind(o.key)
        .bind(o.hash)
        .bind(o.now)
        .bind(o.key_generation)
        .bind(o.order_no))
}

/// The number the next order takes. SQLite: the highest so far plus one, read in the
/// transaction that inserts the order (the one writer makes that unique and in creation
/// order). PostgreSQL: the sequence every replica draws from (gaps where an insert lost
/// a race for its key; never a number twice).
pub async fn next_number(tx: &mut Tx) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(order_no), 0) + 1 FROM orders")
        .fetch_one(&mut **tx)
        .await
        .context("failed to number order")
}

/// PostgreSQL: see `next_number`.
pub async fn draw_number(db: &Writer) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT nextval('orders_order_no_seq')").fetch_one(db).await.context("failed to number order")
}

/// Inserts the order; false when an order with this id or key already exists.
pub async fn insert(tx: &mut Tx, o: &NewOrder<'_>) -> anyhow::Result<bool> {
    let inserted =
        bind_order(sqlx::query(INSERT), o)?.execute(&mut **tx).await.context("failed to insert order")?.rows_affected();
    Ok(inserted == 1)
}

/// PostgreSQL: inserts the order and, if it was inserted, its event's outbox row — one
/// statement, its own transaction (a `BEGIN` and a `COMMIT` are round trips too). False
/// when an order with this id or key already exists.
pub async fn insert_announced(db: &Writer, o: &NewOrder<'_>, event: outbox::OutboxRow) -> anyhow::Result<bool> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH o AS ({INSERT} RETURNING order_id) INSERT INTO outbox ({}) \
             SELECT $11, $12, $13, $14, $15, $16 FROM o RETURNING seq",
            outbox::OutboxRow::COLUMNS
        )
    });
    let announced = bind_order(sqlx::query(&SQL), o)?
        .bind(event.id)
        .bind(event.topic)
        .bind(event.key)
        .bind(event.envelope)
        .bind(event.created_at)
        .bind(event.slot)
        .fetch_optional(db)
        .await
        .context("failed to insert order")?;
    Ok(announced.is_some())
}

const COLUMNS: &str = "order_id, order_no, buyer, event_id, seat_ids, amount, status, cancel_reason, request_hash, \
     created_at, updated_at";

fn order_from(r: &sqlx::any::AnyRow) -> anyhow::Result<Order> {
    Ok(Order {
        order_id: r.get("order_no"),
        status: OrderStatus::parse(&r.get::<String, _>("status")).context("unknown order status")?,
        event_id: r.get("event_id"),
        seat_ids: serde_json::from_str(&r.get::<String, _>("seat_ids"))?,
        created_at: contract::rfc3339(r.get("created_at")),
        amount: r.get("amount"),
        cancel_reason: r.get::<Option<String>, _>("cancel_reason").as_deref().map(CancelReason::parse),
    })
}

/// An order as stored: what the API shows, and what stays inside.
pub struct Stored {
    pub order: Order,
    /// The internal reference events and pins name the order by.
    pub order_ref: String,
    pub buyer: String,
}

/// The order numbered `order_no`.
pub async fn get(db: &Reader, order_no: i64) -> anyhow::Result<Option<Stored>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE order_no = $1"))
        .bind(order_no)
        .fetch_optional(db)
        .await
        .context("failed to read order")?;
    row.map(|r| Ok(Stored { order: order_from(&r)?, order_ref: r.get("order_id"), buyer: r.get("buyer") })).transpose()
}

/// The latest order a buyer's idempotency key made.
pub struct KeyUse {
    pub order: Order,
    pub request_hash: String,
    pub generation: i64,
    /// When the key was used (ms).
    pub created_at: i64,
}

pub async fn by_key(db: &Reader, buyer: &str, key: &str) -> anyhow::Result<Option<KeyUse>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, key_generation FROM orders WHERE buyer = $1 AND idempotency_key = $2 \
         ORDER BY key_generation DESC LIMIT 1"
    ))
    .bind(buyer)
    .bind(key)
    .fetch_optional(db)
    .await
    .context("failed to read order by key")?;
    row.map(|r| {
        Ok(KeyUse {
            order: order_from(&r)?,
            request_hash: r.get("request_hash"),
            generation: r.get("key_generation"),
            created_at: r.get("created_at"),
        })
    })
    .transpose()
}

pub async fn of_buyer(db: &Reader, buyer: &str) -> anyhow::Result<Vec<Order>> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE buyer = $1 ORDER BY created_at DESC LIMIT 200"))
            .bind(buyer)
            .fetch_all(db)
            .await
            .context("failed to list orders")?;
    rows.iter().map(order_from).collect()
}

/// What settling an order needs to announce it: `(event_id, created_at, order_no)`.
pub type Settled = (i64, i64, i64);

/// Moves a CREATED (or, for a reset, CONFIRMED) order to CANCELLED, if it moved.
pub async fn cancel(
    tx: &mut Tx,
    order_id: &str,
    reason: &CancelReason,
    also_confirmed: bool,
) -> anyhow::Result<Option<Settled>> {
    let from =
        if also_confirmed { formatcp!("status IN ({CREATED}, {CONFIRMED})") } else { formatcp!("status = {CREATED}") };
    sqlx::query_as(&format!(
        "UPDATE orders SET status = {CANCELLED}, cancel_reason = $1, updated_at = $2 WHERE order_id = $3 AND {from} \
         RETURNING event_id, created_at, order_no"
    ))
    .bind(reason.as_str())
    .bind(contract::now_millis())
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await
    .context("failed to cancel order")
}

/// Moves a CREATED order to CONFIRMED, if it moved.
pub async fn confirm(tx: &mut Tx, order_id: &str) -> anyhow::Result<Option<Settled>> {
    sqlx::query_as(formatcp!(
        "UPDATE orders SET status = {CONFIRMED}, updated_at = $1 WHERE order_id = $2 AND status = {CREATED} \
         RETURNING event_id, created_at, order_no"
    ))
    .bind(contract::now_millis())
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await
    .context("failed to confirm order")
}

pub async fn mark_paid(tx: &mut Tx, order_id: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE orders SET paid = 1 WHERE order_id = $1").bind(order_id).execute(&mut **tx).await?;
    Ok(())
}

/// Orders of a show made at or before `before` that are not cancelled yet.
pub async fn live_orders_of_event(tx: &mut Tx, event_id: i64, before: i64) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(formatcp!(
        "SELECT order_id FROM orders WHERE event_id = $1 AND created_at <= $2 AND status <> {CANCELLED}"
    ))
    .bind(event_id)
    .bind(before)
    .fetch_all(&mut **tx)
    .await?)
}

/// Orders numbered by the upgrade that brought numbers, whose numbers are not announced
/// yet: `(order_id, order_no)`, a batch.
pub async fn unannounced_numbers(tx: &mut Tx) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT order_id, order_no FROM orders WHERE number_unannounced = 1 ORDER BY order_no LIMIT 500")
        .fetch_all(&mut **tx)
        .await?)
}

pub async fn number_announced(tx: &mut Tx, order_id: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE orders SET number_unannounced = 0 WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Orders not settled yet (CREATED), in the words of the `orders_unsettled` index's
/// condition, so that a statement stating it reads that index.
pub(crate) const UNSETTLED: &str = formatcp!("status <> {CONFIRMED} AND status <> {CANCELLED}");

pub(crate) static STUCK: LazyLock<String> =
    LazyLock::new(|| format!("SELECT COUNT(*) FROM orders WHERE {UNSETTLED} AND created_at < $1"));
pub(crate) static IN_FLIGHT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT COUNT(*) FROM orders WHERE {UNSETTLED}"));

pub async fn stuck(db: &Reader, before: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(&STUCK).bind(before).fetch_one(db).await?)
}

/// Orders not settled yet.
pub async fn in_flight(db: &Reader) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(&IN_FLIGHT).fetch_one(db).await?)
}

/// Read from `orders_confirmed_unpaid`, which holds these orders alone.
pub(crate) const CONFIRMED_UNPAID: &str =
    formatcp!("SELECT COUNT(*) FROM orders WHERE status = {CONFIRMED} AND paid = 0");

pub async fn confirmed_unpaid(db: &Reader) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(CONFIRMED_UNPAID).fetch_one(db).await?)
}

/// Orders per show and state: `[{ eventId, created, confirmed, cancelled }]`.
pub async fn summary(db: &Reader) -> anyhow::Result<Vec<serde_json::Value>> {
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(formatcp!(
        "SELECT event_id, CAST(SUM(CASE WHEN status = {CREATED} THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN status = {CONFIRMED} THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN status = {CANCELLED} THEN 1 ELSE 0 END) AS BIGINT) \
         FROM orders GROUP BY event_id ORDER BY event_id"
    ))
    .fetch_all(db)
    .await
    .context("failed to summarize orders")?;
    Ok(rows
        .into_iter()
        .map(|(event_id, created, confirmed, cancelled)| {
            serde_json::json!({ "eventId": event_id, "created": created, "confirmed": confirmed, "cancelled": cancelled })
        })
        .collect())
}

/// Every order, for the cross-module audit.
pub async fn all(db: &Reader) -> anyhow::Result<Vec<serde_json::Value>> {
    let rows = sqlx::query(
        "SELECT order_id, order_no, event_id, seat_ids, amount, status, created_at, updated_at FROM orders \
         ORDER BY order_no",
    )
    .fetch_all(db)
    .await
    .context("failed to read orders")?;
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({
                "orderId": r.get::<i64, _>("order_no"),
                "orderRef": r.get::<String, _>("order_id"),
                "eventId": r.get::<i64, _>("event_id"),
                "seatIds": serde_json::from_str::<Vec<i64>>(&r.get::<String, _>("seat_ids"))?,
                "amount": r.get::<i64, _>("amount"),
                "status": r.get::<String, _>("status"),
                "createdAt": r.get::<i64, _>("created_at"),
                "updatedAt": r.get::<i64, _>("updated_at"),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use const_format::formatcp;
    use runtime::db::{Backend, Db, Durability, Migrations};
    use sqlx::migrate::Migrator;

    use crate::states::CONFIRMED;

    /// The order module's migrations from before order numbers (up to 0103).
    fn before_numbers() -> Migrations {
        let upto = |m: &Migrator| Migrator {
            migrations: m.migrations.iter().filter(|m| m.version < 104).cloned().collect::<Vec<_>>().into(),
            ..Migrator::DEFAULT
        };
        Migrations { sqlite: upto(&super::MIGRATIONS.sqlite), postgres: upto(&super::MIGRATIONS.postgres) }
    }

    /// Orders written before numbers (created out of their insertion order) are numbered
    /// in creation order, marked to be announced, and the next order takes the next number.
    async fn earlier_orders_are_numbered_in_creation_order(before: Db, reopen: impl AsyncFnOnce() -> Db) {
        let mut tx = before.begin().await.unwrap();
        for (id, created_at) in [("c", 300), ("a", 100), ("b", 200)] {
            sqlx::query(formatcp!(
                "INSERT INTO orders (order_id, buyer, event_id, seat_ids, amount, status, idempotency_key, \
                 request_hash, created_at, updated_at) VALUES ($1, 'x', 1, '[1]', 1, {CONFIRMED}, $1, 'h', $2, $2)"
            ))
            .bind(id)
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        drop(before);
        let db = reopen().await;
        let mut tx = db.begin().await.unwrap();
        let numbered: Vec<(String, i64)> = sqlx::query_as("SELECT order_id, order_no FROM orders ORDER BY order_id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(numbered, [("a".to_owned(), 1), ("b".to_owned(), 2), ("c".to_owned(), 3)]);
        let unannounced: Vec<(String, i64)> = super::unannounced_numbers(&mut tx).await.unwrap();
        assert_eq!(unannounced.len(), 3);
        let next = match db.backend() {
            Backend::Sqlite => super::next_number(&mut tx).await.unwrap(),
            Backend::Postgres => super::draw_number(db.writer()).await.unwrap(),
        };
        assert_eq!(next, 4);
        tx.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn earlier_orders_are_numbered_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let before = Db::open_sqlite(&path, Durability::Normal, &before_numbers()).await.unwrap();
        let reopen = async || Db::open_sqlite(&path, Durability::Normal, &super::MIGRATIONS).await.unwrap();
        earlier_orders_are_numbered_in_creation_order(before, reopen).await;
    }

    #[tokio::test]
    async fn earlier_orders_are_numbered_on_postgres() {
        let Some(server) = runtime::testing::require_env("BOXOFFICE_TEST_POSTGRES", "PostgreSQL") else { return };
        let name = format!("order_unit_{}", uuid::Uuid::new_v4().simple());
        let before = Db::open_postgres(&server, &name, 2, &before_numbers()).await.unwrap();
        let reopen = async || Db::open_postgres(&server, &name, 2, &super::MIGRATIONS).await.unwrap();
        earlier_orders_are_numbered_in_creation_order(before, reopen).await;
    }

    /// The consistency check runs every few seconds for as long as the process runs: it
    /// reads the index of confirmed, unpaid orders alone, not every confirmed order.
    #[tokio::test]
    async fn the_unpaid_check_reads_only_violations() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("o.db"), Durability::Normal, &super::MIGRATIONS).await.unwrap();
        let steps = db.sqlite_plan(super::CONFIRMED_UNPAID).await.unwrap();
        assert!(steps.iter().any(|s| s.contains("orders_confirmed_unpaid")), "{steps:?}");
    }

    /// The counts of unsettled orders read only those, in `orders_unsettled`.
    #[tokio::test]
    async fn the_unsettled_counts_read_only_unsettled_orders() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("o.db"), Durability::Normal, &super::MIGRATIONS).await.unwrap();
        for sql in [&*super::STUCK, &*super::IN_FLIGHT] {
            let steps = db.sqlite_plan(sql).await.unwrap();
            assert!(steps.iter().any(|s| s.contains("orders_unsettled")), "{sql}: {steps:?}");
        }
    }
}
