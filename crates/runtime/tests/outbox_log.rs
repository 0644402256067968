//! The embedded bus reading a topic straight from its producer's outbox: a row is
//! published by its commit, consumers read it in commit order, offsets, rewinds and
//! pruning behave as on the bus's own log.

use std::time::Duration;

use contract::events::{Envelope, EventReset};
use runtime::bus::embedded::EmbeddedBus;
use runtime::bus::{Bus, Outgoing};
use runtime::db::{Db, Durability, Migrations};
use runtime::outbox::{self, Relay};

static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./tests/migrations/sqlite"),
    postgres: sqlx::migrate!("./tests/migrations/postgres"),
};

const TOPIC: &str = "catalog.events";

/// A bus and a module database whose outbox is the topic's log.
async fn setup() -> (tempfile::TempDir, EmbeddedBus, Db) {
    setup_with(Durability::Normal).await
}

async fn setup_with(durability: Durability) -> (tempfile::TempDir, EmbeddedBus, Db) {
    let dir = tempfile::tempdir().unwrap();
    let bus = EmbeddedBus::open(&dir.path().join("bus.db"), durability).await.unwrap();
    let db = Db::open_sqlite(&dir.path().join("module.db"), durability, &MIGRATIONS).await.unwrap();
    let db = bus.read_outbox("test", TOPIC, db).await.unwrap();
    (dir, bus, db)
}

/// Commits one event per show in `shows`, as a module would.
async fn commit(db: &Db, relay: &Relay, shows: impl IntoIterator<Item = i64>) {
    let mut tx = db.begin().await.unwrap();
    for event_id in shows {
        outbox::append(&mut tx, &EventReset { event_id, reset_at: 0 }).await.unwrap();
    }
    tx.commit().await.unwrap();
    relay.wake();
}

fn shows(deliveries: &[runtime::bus::Delivery]) -> Vec<i64> {
    deliveries
        .iter()
        .map(|d| serde_json::from_str::<Envelope>(&d.body).unwrap().decode::<EventReset>().unwrap().unwrap().event_id)
        .collect()
}

#[tokio::test]
async fn committed_rows_are_delivered_in_commit_order_and_rolled_back_ones_never() {
    // With fsyncs: rows are readable once their commit is on disk.
    let (_dir, bus, db) = setup_with(Durability::Full).await;
    let relay = Relay::new("test", db.clone(), std::sync::Arc::new(bus.clone()));
    let mut sub = bus.subscribe(TOPIC, "g").await.unwrap();
    // A reader waiting on an empty log is woken by the commit (nothing else would wake
    // it within the 30 s it waits).
    let waiting = tokio::spawn(async move {
        let got = tokio::time::timeout(Duration::from_secs(10), sub.poll(10, Duration::from_secs(30))).await;
        (sub, got.expect("woken by the commit").unwrap())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    commit(&db, &relay, [3, 1]).await;
    let mut tx = db.begin().await.unwrap();
    outbox::append(&mut tx, &EventReset { event_id: 9, reset_at: 0 }).await.unwrap();
    tx.rollback().await.unwrap();
    commit(&db, &relay, [2]).await;
    let (mut sub, mut got) = waiting.await.unwrap();
    got.extend(sub.poll(10, Duration::from_millis(50)).await.unwrap());
    assert_eq!(shows(&got), [3, 1, 2]);
    // Published as it committed: nothing for a relay to do.
    assert_eq!(relay.backlog().await.unwrap().0, 0);
    tokio::time::timeout(Duration::from_secs(1), relay.clone().run(Duration::from_millis(10)))
        .await
        .expect("a relay of an outbox that is the log has nothing to run");
}

#[tokio::test]
async fn groups_resume_after_their_committed_offset_and_a_rewind_reads_all_again() {
    let (_dir, bus, db) = setup().await;
    let relay = Relay::new("test", db.clone(), std::sync::Arc::new(bus.clone()));
    commit(&db, &relay, [1, 2, 3]).await;
    let mut sub = bus.subscribe(TOPIC, "g").await.unwrap();
    let got = sub.poll(2, Duration::from_millis(50)).await.unwrap();
    assert_eq!(shows(&got), [1, 2]);
    sub.commit(&got[..1]).await.unwrap();
    drop(sub); // died before committing the second
    assert_eq!(bus.lag(TOPIC, "g").await.unwrap(), 2);
    let mut again = bus.subscribe(TOPIC, "g").await.unwrap();
    let got = again.poll(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(shows(&got), [2, 3], "from after the committed offset");
    again.commit(&got).await.unwrap();
    assert_eq!(bus.lag(TOPIC, "g").await.unwrap(), 0);
    // Another group reads the topic from the start.
    let mut other = bus.subscribe(TOPIC, "other").await.unwrap();
    assert_eq!(shows(&other.poll(10, Duration::from_millis(50)).await.unwrap()), [1, 2, 3]);

    assert_eq!(bus.rewind(TOPIC, "g").await.unwrap(), 3);
    let mut rewound = bus.subscribe(TOPIC, "g").await.unwrap();
    assert_eq!(shows(&rewound.poll(10, Duration::from_millis(50)).await.unwrap()), [1, 2, 3]);
}

#[tokio::test]
async fn pruning_deletes_only_rows_every_group_has_read() {
    let (_dir, bus, db) = setup().await;
    let relay = Relay::new("test", db.clone(), std::sync::Arc::new(bus.clone()));
    let mut fast = bus.subscribe(TOPIC, "fast").await.unwrap();
    let mut slow = bus.subscribe(TOPIC, "slow").await.unwrap();
    commit(&db, &relay, [1, 2, 3]).await;
    let got = fast.poll(10, Duration::from_millis(50)).await.unwrap();
    fast.commit(&got).await.unwrap();
    let got = slow.poll(1, Duration::from_millis(50)).await.unwrap();
    slow.commit(&got).await.unwrap();
    let far_future = contract::now_millis() + 60_000;
    // The relay leaves the outbox to the bus, which knows what was read.
    assert_eq!(relay.prune(far_future, 0).await.unwrap(), 0);
    assert_eq!(bus.prune(0).await.unwrap(), 0, "nothing older than the cutoff");
    assert_eq!(bus.prune(far_future).await.unwrap(), 1, "only what both groups committed");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(db.reader()).await.unwrap();
    assert_eq!(left, 2);
    assert_eq!(shows(&slow.poll(10, Duration::from_millis(50)).await.unwrap()), [2, 3]);
}

#[tokio::test]
async fn rows_a_relay_had_not_published_are_in_the_log_and_nothing_publishes_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap();
    let db = Db::open_sqlite(&dir.path().join("module.db"), Durability::Normal, &MIGRATIONS).await.unwrap();
    // Written by a version that relayed its outbox, and not yet published.
    let old_relay = Relay::new("test", db.clone(), std::sync::Arc::new(bus.clone()));
    commit(&db, &old_relay, [7]).await;
    assert_eq!(old_relay.backlog().await.unwrap().0, 1);

    let db = bus.read_outbox("test", TOPIC, db).await.unwrap();
    let relay = Relay::new("test", db.clone(), std::sync::Arc::new(bus.clone()));
    assert_eq!(relay.backlog().await.unwrap().0, 0);
    let mut sub = bus.subscribe(TOPIC, "g").await.unwrap();
    assert_eq!(shows(&sub.poll(10, Duration::from_millis(50)).await.unwrap()), [7]);

    let stray = Outgoing { topic: TOPIC.into(), key: "7".into(), body: "{}".into() };
    assert!(bus.publish(&[stray]).await.is_err(), "the topic's only log is the outbox");
}
