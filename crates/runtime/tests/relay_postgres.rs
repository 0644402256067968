//! Relays in several replicas on one PostgreSQL database (`BOXOFFICE_TEST_POSTGRES`):
//! every event published exactly once, each key's events in the order they committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use contract::events::{Envelope, EventReset};
use runtime::bus::Bus;
use runtime::bus::embedded::EmbeddedBus;
use runtime::db::{Db, Durability, Migrations};
use runtime::outbox::{self, Relay};

static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./tests/migrations/sqlite"),
    postgres: sqlx::migrate!("./tests/migrations/postgres"),
};

/// A new database on `BOXOFFICE_TEST_POSTGRES`; None (the test skips) without it,
/// which CI does not allow.
async fn database(what: &str, pool: u32) -> Option<Db> {
    let server = runtime::testing::require_env("BOXOFFICE_TEST_POSTGRES", "PostgreSQL")?;
    let name = format!("bt_{what}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    Some(Db::open_postgres(&server, &name, pool, &MIGRATIONS).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_publish_each_event_once_and_each_key_in_order() {
    let Some(db) = database("relay", 8).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap());

    // Three replicas' relays running while four writers append: writer w owns the key
    // (event id) w and appends its events 0, 1, 2, … one transaction at a time.
    let relays: Vec<_> = (0..3)
        .map(|_| tokio::spawn(Relay::new("test", db.clone(), bus.clone()).run(Duration::from_millis(20))))
        .collect();
    let writers: Vec<_> = (0..4i64)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..60i64 {
                    let mut tx = db.begin().await.unwrap();
                    outbox::append(&mut tx, &EventReset { event_id: w, reset_at: i }).await.unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let probe = Relay::new("test", db.clone(), bus.clone());
    for _ in 0..200 {
        if probe.backlog().await.unwrap().0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(probe.backlog().await.unwrap().0, 0, "everything published");
    for r in relays {
        r.abort();
    }

    let mut sub = bus.subscribe("catalog.events", "check").await.unwrap();
    let mut got = Vec::new();
    loop {
        let batch = sub.poll(1000, Duration::from_millis(200)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    assert_eq!(got.len(), 240, "each event published once");
    let mut by_key: HashMap<i64, Vec<i64>> = HashMap::new();
    for d in &got {
        let e: EventReset = serde_json::from_str::<Envelope>(&d.body).unwrap().decode().unwrap().unwrap();
        by_key.entry(e.event_id).or_default().push(e.reset_at);
    }
    for (key, order) in by_key {
        assert_eq!(order, (0..60).collect::<Vec<_>>(), "key {key} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_reaches_every_listener_when_its_transaction_commits() {
    let Some(db) = database("notify", 4).await else { return };
    // Two replicas listening.
    let (heard, mut hearing) = tokio::sync::mpsc::unbounded_channel::<(usize, Option<String>)>();
    let listeners: Vec<_> = (0..2)
        .map(|replica| {
            let heard = heard.clone();
            tokio::spawn(db.listen("bt_channel", move |p| drop(heard.send((replica, p.map(str::to_owned))))).unwrap())
        })
        .collect();
    // Each says when it listens: what was sent before may have been missed.
    let mut listening = Vec::new();
    for _ in 0..2 {
        listening.push(tokio::time::timeout(Duration::from_secs(5), hearing.recv()).await.unwrap().unwrap());
    }
    listening.sort();
    assert_eq!(listening, [(0, None), (1, None)]);
    let mut tx = db.begin().await.unwrap();
    db.notify(&mut tx, "bt_channel", &["rolled back".to_owned()]).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    // Several in one statement, each heard on its own.
    db.notify(&mut tx, "bt_channel", &["o-1".to_owned(), "o-2".to_owned()]).await.unwrap();
    db.notify(&mut tx, "bt_channel", &[]).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(200), hearing.recv()).await;
    assert!(early.is_err(), "heard before the commit: {early:?}");
    tx.commit().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(tokio::time::timeout(Duration::from_secs(5), hearing.recv()).await.unwrap().unwrap());
    }
    got.sort();
    let heard = |replica, id: &str| (replica, Some(id.to_owned()));
    assert_eq!(got, [heard(0, "o-1"), heard(0, "o-2"), heard(1, "o-1"), heard(1, "o-2")]);
    assert!(tokio::time::timeout(Duration::from_millis(200), hearing.recv()).await.is_err());
    listeners.iter().for_each(|l| l.abort());

    // SQLite has one process: nothing to listen to, nothing sent.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::open_sqlite(&dir.path().join("m.db"), Durability::Normal, &MIGRATIONS).await.unwrap();
    assert!(sqlite.listen("bt_channel", |_| ()).is_none());
}

/// On a new database, before PostgreSQL has statistics of the outbox, the relay reads the
/// unpublished rows by a plain index scan, which marks the dead entries of published rows
/// as it passes them — not by a bitmap scan, which reads every one of them each time.
/// Holding every slot, it reads them in order and stops at the batch's end (no sort).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_reads_the_outbox_by_a_plain_index_scan() {
    use sqlx::Row;
    let Some(db) = database("plan", 2).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap());
    let relay = Relay::new("test", db.clone(), bus);
    for round in 0..2 {
        let mut tx = db.begin().await.unwrap();
        for i in 0..300 {
            outbox::append(&mut tx, &EventReset { event_id: i, reset_at: round }).await.unwrap();
        }
        tx.commit().await.unwrap();
        if round == 0 {
            while relay.publish_batch().await.unwrap() > 0 {}
        }
    }
    let background = db.background();
    for (slots, sorted) in [(None, false), (Some(&[1i64, 2][..]), true)] {
        let sql = format!("EXPLAIN {}", outbox::unpublished_sql(slots));
        let rows = sqlx::query(&sql).bind(512i64).fetch_all(background.reader()).await.unwrap();
        let steps: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        assert!(steps.iter().any(|s| s.contains("Index")), "{steps:?}");
        assert!(!steps.iter().any(|s| s.contains("Bitmap")), "{steps:?}");
        assert_eq!(steps.iter().any(|s| s.contains("Sort")), sorted, "{steps:?}");
    }
}
