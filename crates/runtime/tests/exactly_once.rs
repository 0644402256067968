//! The outbox → bus → inbox path delivers at least once and applies exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use contract::events::{Envelope, EventReset};
use runtime::bus::embedded::EmbeddedBus;
use runtime::bus::{Bus, Outgoing};
use runtime::consumer::{Consumer, Cx, Handlers, Reactor};
use runtime::db::Migrations;
use runtime::db::{Db, Durability};
use runtime::outbox::{self, Relay};
use runtime::{Tx, trace::TraceContext};

static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./tests/migrations/sqlite"),
    postgres: sqlx::migrate!("./tests/migrations/postgres"),
};

const TOPIC: &str = "catalog.events";

struct Recorder {
    /// Fail this many first attempts, as a locked database or a crash would.
    fail_first: AtomicU32,
}

impl Reactor for Recorder {
    type Batch = ();
}

async fn record(recorder: &Recorder, tx: &mut Tx, _: EventReset, cx: Cx<'_, ()>) -> anyhow::Result<()> {
    let event = cx.envelope;
    sqlx::query("INSERT INTO applied (event_id, topic) VALUES ($1, $2)")
        .bind(event.id.to_string())
        .bind(event.traceparent.clone().unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    if recorder.fail_first.load(Ordering::SeqCst) > 0 {
        recorder.fail_first.fetch_sub(1, Ordering::SeqCst);
        anyhow::bail!("injected failure");
    }
    Ok(())
}

async fn setup() -> (tempfile::TempDir, Arc<dyn Bus>, Db) {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap());
    let db = Db::open_sqlite(&dir.path().join("module.db"), Durability::Normal, &MIGRATIONS).await.unwrap();
    (dir, bus, db)
}

fn message(envelope: &Envelope) -> Outgoing {
    Outgoing { topic: TOPIC.into(), key: envelope.aggregate_id.clone(), body: serde_json::to_string(envelope).unwrap() }
}

async fn applied(db: &Db) -> Vec<(String, String)> {
    sqlx::query_as("SELECT event_id, topic FROM applied ORDER BY rowid").fetch_all(db.reader()).await.unwrap()
}

async fn drain(bus: &Arc<dyn Bus>) {
    for _ in 0..200 {
        if bus.lag(TOPIC, "test").await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("consumer never caught up");
}

fn consumer(db: &Db, bus: &Arc<dyn Bus>, fail_first: u32) -> Consumer {
    Consumer {
        db: db.clone(),
        bus: bus.clone(),
        topic: TOPIC,
        group: "test",
        handler: Arc::new(Handlers::new(Recorder { fail_first: AtomicU32::new(fail_first) }).on::<EventReset>(record)),
    }
}

#[tokio::test]
async fn a_redelivered_event_is_applied_once_and_a_failed_one_is_retried() {
    let (_dir, bus, db) = setup().await;
    let first = Envelope::wrap(&EventReset { event_id: 1, reset_at: 0 }, 0, None);
    let second = Envelope::wrap(&EventReset { event_id: 2, reset_at: 0 }, 0, None);
    // The relay published `first` twice (it crashed before marking it), then `second`.
    bus.publish(&[message(&first), message(&first), message(&second)]).await.unwrap();
    let task = tokio::spawn(consumer(&db, &bus, 2).run());
    drain(&bus).await;
    let ids: Vec<String> = applied(&db).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [first.id.to_string(), second.id.to_string()]);
    task.abort();

    // A new consumer of the same group starts after the committed offset: nothing again.
    bus.publish(&[message(&first)]).await.unwrap();
    let task = tokio::spawn(consumer(&db, &bus, 0).run());
    drain(&bus).await;
    assert_eq!(applied(&db).await.len(), 2);
    task.abort();
}

#[tokio::test]
async fn a_batch_is_applied_in_the_order_of_its_keys_and_one_keys_events_in_theirs() {
    let (_dir, bus, db) = setup().await;
    // Shows 2, 1, 2, 1: two consumers taking their locks in arrival order could deadlock.
    let events: Vec<Envelope> = [(2, 1), (1, 1), (2, 2), (1, 2)]
        .into_iter()
        .map(|(event_id, reset_at)| Envelope::wrap(&EventReset { event_id, reset_at }, 0, None))
        .collect();
    bus.publish(&events.iter().map(message).collect::<Vec<_>>()).await.unwrap();
    let task = tokio::spawn(consumer(&db, &bus, 0).run());
    drain(&bus).await;
    let ids: Vec<String> = applied(&db).await.into_iter().map(|(id, _)| id).collect();
    let expected: Vec<String> = [1, 3, 0, 2].iter().map(|&i| events[i].id.to_string()).collect();
    assert_eq!(ids, expected);
    task.abort();
}

#[tokio::test]
async fn uncommitted_deliveries_come_again_to_the_group() {
    let (_dir, bus, _db) = setup().await;
    let e = Envelope::wrap(&EventReset { event_id: 1, reset_at: 0 }, 0, None);
    bus.publish(&[message(&e)]).await.unwrap();
    let mut sub = bus.subscribe(TOPIC, "g").await.unwrap();
    let got = sub.poll(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(got.len(), 1);
    drop(sub); // died before committing
    let mut again = bus.subscribe(TOPIC, "g").await.unwrap();
    let got = again.poll(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(got.len(), 1, "redelivered");
    again.commit(&got[..1]).await.unwrap();
    let mut after = bus.subscribe(TOPIC, "g").await.unwrap();
    assert!(after.poll(10, Duration::from_millis(50)).await.unwrap().is_empty());
    // Another group reads the topic from the start.
    let mut other = bus.subscribe(TOPIC, "other").await.unwrap();
    assert_eq!(other.poll(10, Duration::from_millis(50)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_relay_publishes_only_committed_events_with_their_trace() {
    let (_dir, bus, db) = setup().await;
    let relay = Relay::new("test", db.clone(), bus.clone());
    let ctx = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    ctx.scope(async {
        let mut tx = db.begin().await.unwrap();
        outbox::append(&mut tx, &EventReset { event_id: 7, reset_at: 0 }).await.unwrap();
        tx.rollback().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        outbox::append(&mut tx, &EventReset { event_id: 8, reset_at: 0 }).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    assert_eq!(relay.backlog().await.unwrap().0, 1);
    assert_eq!(relay.publish_batch().await.unwrap(), 1);
    assert_eq!(relay.backlog().await.unwrap().0, 0);
    assert_eq!(relay.publish_batch().await.unwrap(), 0, "published once");

    let task = tokio::spawn(consumer(&db, &bus, 0).run());
    drain(&bus).await;
    let rows = applied(&db).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].1.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "trace carried: {}", rows[0].1);
    task.abort();
}

#[tokio::test]
async fn pruning_keeps_what_a_group_has_not_committed() {
    let (_dir, bus, _db) = setup().await;
    let mut fast = bus.subscribe(TOPIC, "fast").await.unwrap();
    let mut slow = bus.subscribe(TOPIC, "slow").await.unwrap();
    let events: Vec<Outgoing> =
        (0..3).map(|i| message(&Envelope::wrap(&EventReset { event_id: i, reset_at: 0 }, 0, None))).collect();
    bus.publish(&events).await.unwrap();
    let got = fast.poll(10, Duration::from_millis(50)).await.unwrap();
    fast.commit(&got[..3]).await.unwrap();
    let got = slow.poll(1, Duration::from_millis(50)).await.unwrap();
    slow.commit(&got[..1]).await.unwrap();
    let far_future = contract::now_millis() + 60_000;
    assert_eq!(bus.prune(far_future).await.unwrap(), 1, "only what both groups committed");
    assert_eq!(bus.lag(TOPIC, "slow").await.unwrap(), 2);
    assert_eq!(slow.poll(10, Duration::from_millis(50)).await.unwrap().len(), 2);
    assert_eq!(bus.prune(0).await.unwrap(), 0, "nothing younger than the cutoff");
}
