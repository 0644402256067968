//! Which index the saga's statements search, on statistics like an on-sale's: taken while
//! every seat was AVAILABLE, and stale once thousands are held.

use sqlx::{AnyPool, Row};

use crate::common::spawn_app;

/// The lines of the database's plan for `sql`, its `$1` bound to `value`.
async fn plan<T>(db: &AnyPool, postgres: bool, sql: &str, value: T) -> Vec<String>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
{
    let explain = if postgres { format!("EXPLAIN {sql}") } else { format!("EXPLAIN QUERY PLAN {sql}") };
    let rows = sqlx::query(&explain).bind(value).fetch_all(db).await.unwrap();
    let column = if postgres { "QUERY PLAN" } else { "detail" };
    rows.iter().map(|r| r.get::<String, _>(column)).collect()
}

/// A paid order's seats are found by its order id — a few entries — and not by reading
/// every held seat's entry in `seats_expiring` beside them, which PostgreSQL did while
/// that index held every HELD seat (see the reservation module's migration 0104).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_seats_are_searched_by_order_not_among_every_held_seat() {
    let app = spawn_app().await;
    let db = app.store.connect("reservation").await;
    let postgres = app.store.postgres.is_some();
    if postgres {
        // A big show analyzed while all its seats were free, then 3,000 held, 2,000 of
        // them pinned by orders (their expiry cleared), as in a run of the load tool.
        sqlx::query(
            "INSERT INTO seats (event_id, seat_id, price) SELECT 9000, s, 100 FROM generate_series(1, 40000) AS s",
        )
        .execute(&db)
        .await
        .unwrap();
        sqlx::query("ANALYZE seats").execute(&db).await.unwrap();
        sqlx::query(
            "UPDATE seats SET status = 'HELD', holder = 'b' || seat_id, expires_at = 4102444800000 \
             WHERE event_id = 9000 AND seat_id <= 3000",
        )
        .execute(&db)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE seats SET order_id = 'o' || seat_id, expires_at = NULL WHERE event_id = 9000 AND seat_id <= 2000",
        )
        .execute(&db)
        .await
        .unwrap();
    }
    for sql in [
        "SELECT COUNT(*) FROM seats WHERE seats.order_id = $1 AND seats.status = 'HELD'",
        "UPDATE seats SET expires_at = NULL WHERE order_id = $1 AND status = 'HELD'",
        "UPDATE seats SET status = 'SOLD', expires_at = NULL, version = version + 1 WHERE order_id IN ($1) AND status = 'HELD'",
    ] {
        let steps = plan(&db, postgres, sql, "o5".to_owned()).await;
        assert!(steps.iter().any(|s| s.contains("seats_by_order")), "{sql}: {steps:?}");
        assert!(!steps.iter().any(|s| s.contains("seats_expiring")), "{sql}: {steps:?}");
    }
    // The sweep of expired holds still searches the expiring seats alone.
    let sweep = "SELECT order_id FROM seats WHERE status = 'HELD' AND expires_at < $1 AND order_id IS NOT NULL";
    let steps = plan(&db, postgres, sweep, 0i64).await;
    assert!(steps.iter().any(|s| s.contains("seats_expiring")), "{steps:?}");
}

/// Confirming or cancelling an order finds it by its id, on a new database too, where
/// PostgreSQL has no statistics yet: it had searched an index of orders by status
/// instead, reading every unsettled order for each one (see the order module's migration
/// 0103).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_settled_by_its_id_on_a_new_database() {
    let app = spawn_app().await;
    let db = app.store.connect("order").await;
    let postgres = app.store.postgres.is_some();
    for sql in [
        "UPDATE orders SET status = 'CONFIRMED', updated_at = 1 WHERE order_id = $1 AND status = 'CREATED'",
        "UPDATE orders SET status = 'CANCELLED', updated_at = 1 WHERE order_id = $1 AND status IN ('CREATED', 'CONFIRMED')",
    ] {
        let steps = plan(&db, postgres, sql, "o5".to_owned()).await;
        let by_id = if postgres { "orders_pkey" } else { "sqlite_autoindex_orders_1" };
        assert!(steps.iter().any(|s| s.contains(by_id)), "{sql}: {steps:?}");
        assert!(!steps.iter().any(|s| s.contains("orders_unsettled")), "{sql}: {steps:?}");
    }
}
