//! The module on storage, on both engines: joins racing, a restart, two replicas.

use std::sync::Arc;
use std::time::Duration;

use runtime::bus::embedded::EmbeddedBus;
use runtime::clock::Clock;
use runtime::db::{Db, Durability};

use crate::queue::{Rate, Settings, Status, shuffle};
use crate::{MIGRATIONS, WaitingRoom};

const SHOW: i64 = 7;

async fn sqlite(dir: &tempfile::TempDir) -> Db {
    Db::open_sqlite(&dir.path().join("waitingroom.db"), Durability::Normal, &MIGRATIONS).await.unwrap()
}

async fn postgres() -> Option<Db> {
    let server = runtime::testing::require_env("BOXOFFICE_TEST_POSTGRES", "PostgreSQL")?;
    let name = format!("waitingroom_unit_{}", uuid_like());
    Some(Db::open_postgres(&server, &name, 4, &MIGRATIONS).await.unwrap())
}

fn uuid_like() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A replica of the module on `db` (each with its own memory).
async fn replica(db: &Db, dir: &tempfile::TempDir, clock: &Clock) -> WaitingRoom {
    let bus = Arc::new(EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap());
    let room = WaitingRoom::new(db.clone(), bus).with_clock(clock.clone());
    room.tick().await.unwrap();
    room
}

fn buyer(n: usize) -> String {
    format!("user:v{n}")
}

/// Everyone in `buyers` polls `room`.
fn poll(room: &WaitingRoom, buyers: &[String]) {
    for b in buyers {
        room.me(SHOW, b);
    }
}

async fn the_queue_keeps_order_across_replicas_and_restarts(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual();
    let a = replica(&db, &dir, &clock).await;
    let on_sale_at = clock.now_millis() + 30_000;
    let settings = Settings { enabled: true, rate: Rate::PerMinute(60), on_sale_at: Some(on_sale_at) };
    a.configure(SHOW, settings).await.unwrap();
    let b = replica(&db, &dir, &clock).await;

    // Joins racing on two replicas, each buyer twice: one place each.
    let buyers: Vec<String> = (0..20).map(buyer).collect();
    let mut joins = Vec::new();
    for (i, who) in buyers.iter().chain(&buyers).enumerate() {
        let (room, who) = (if i % 2 == 0 { a.clone() } else { b.clone() }, who.clone());
        joins.push(tokio::spawn(async move { room.join(SHOW, &who).await.unwrap().unwrap() }));
    }
    let mut created = 0;
    for join in joins {
        let joined = join.await.unwrap();
        assert_eq!(joined.view.status, Status::Prequeue);
        created += usize::from(joined.created);
    }
    assert_eq!(created, buyers.len(), "one place per buyer");
    assert!(a.join(SHOW + 1, &buyers[0]).await.unwrap().is_none(), "a show without a room");

    // The on-sale: the pre-queue shuffled once, from a recorded seed.
    clock.advance(Duration::from_secs(30));
    a.tick().await.unwrap();
    b.tick().await.unwrap();
    let audit = a.audit(SHOW).unwrap();
    let draw = audit.draw.expect("drawn at the on-sale");
    assert_eq!(b.audit(SHOW).unwrap().draw, Some(draw), "one draw for every replica");
    let mut ids = audit.order.clone();
    ids.sort_unstable();
    assert_eq!(audit.order, shuffle(&ids, draw.seed), "the order is recomputed from the seed");
    assert_eq!(b.audit(SHOW).unwrap().order, audit.order);

    // A late arrival queues behind.
    let late = buyer(99);
    let joined = b.join(SHOW, &late).await.unwrap().unwrap();
    assert_eq!((joined.view.status, joined.view.position), (Status::Waiting, Some(21)));

    // Positions unique and gap-free, the same on both replicas.
    let mut positions: Vec<u64> = buyers.iter().map(|w| a.me(SHOW, w).unwrap().position.unwrap()).collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=20).collect::<Vec<u64>>());
    for w in &buyers {
        assert_eq!(a.me(SHOW, w).unwrap().position, b.me(SHOW, w).unwrap().position);
    }

    // Visitors who ask only replica b stay in line while replica a moves the counter.
    let everyone: Vec<String> = buyers.iter().cloned().chain([late.clone()]).collect();
    a.configure(SHOW, Settings { rate: Rate::PerMinute(10), ..settings }).await.unwrap();
    for _ in 0..6 {
        clock.advance(Duration::from_secs(15));
        poll(&b, &everyone);
        a.tick().await.unwrap();
        b.tick().await.unwrap();
    }
    for w in &everyone {
        assert_ne!(b.me(SHOW, w).unwrap().status, Status::Expired, "{w} lost the place");
    }
    a.configure(SHOW, settings).await.unwrap();
    b.tick().await.unwrap();

    // Admission at 60 a minute, in queue order, whichever replica moves the counter.
    for round in 0..25 {
        clock.advance(Duration::from_secs(1));
        poll(&b, &everyone);
        let room = if round % 2 == 0 { &a } else { &b };
        room.tick().await.unwrap();
        let other = if round % 2 == 0 { &b } else { &a };
        other.tick().await.unwrap();
    }
    let admitted_at = |w: &String| {
        let v = a.me(SHOW, w).unwrap();
        assert_eq!(v.status, Status::Admitted, "{w} admitted after 25 s: {v:?}");
        (v.admitted_until.unwrap(), v.position.unwrap())
    };
    let mut by_position: Vec<(u64, i64)> = everyone.iter().map(admitted_at).map(|(t, p)| (p, t)).collect();
    by_position.sort_unstable();
    assert!(by_position.windows(2).all(|w| w[0].1 <= w[1].1), "let through in queue order: {by_position:?}");

    // A restart: a new replica reads every place back.
    let c = replica(&db, &dir, &clock).await;
    assert_eq!(c.audit(SHOW).unwrap().order, a.audit(SHOW).unwrap().order);
    for w in &everyone {
        let (restarted, before) = (c.me(SHOW, w).unwrap(), a.me(SHOW, w).unwrap());
        assert_eq!((restarted.status, restarted.position), (before.status, before.position));
    }
}

#[tokio::test]
async fn the_queue_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_queue_keeps_order_across_replicas_and_restarts(sqlite(&dir).await).await;
}

#[tokio::test]
async fn the_queue_on_postgres() {
    if let Some(db) = postgres().await {
        the_queue_keeps_order_across_replicas_and_restarts(db).await;
    }
}

#[tokio::test]
async fn a_room_in_auto_follows_the_order_capacity() {
    use contract::events::OrderCapacity;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let clock = Clock::manual();
    let room = replica(&db, &dir, &clock).await;
    let settings = Settings { enabled: true, rate: Rate::Auto, on_sale_at: Some(clock.now_millis() + 1_000) };
    room.configure(SHOW, settings).await.unwrap();
    let buyers: Vec<String> = (0..400).map(buyer).collect();
    for b in &buyers {
        room.join(SHOW, b).await.unwrap();
    }
    assert_eq!(room.auto_per_minute(), 600.0, "the policy's rate while no order process reports");
    let report = |reporter: &str, per_second: f64| OrderCapacity {
        reporter: reporter.into(),
        per_second,
        settled_per_second: 0.0,
        reported_at: clock.now_millis(),
    };
    // Two order processes, 10 and 5 orders a second within their target: 900 a minute.
    room.heard_capacity(&report("a", 10.0));
    room.heard_capacity(&report("b", 5.0));
    assert_eq!(room.auto_per_minute(), 900.0);
    clock.advance(Duration::from_secs(1));
    room.tick().await.unwrap();
    assert_eq!(room.audit(SHOW).unwrap().served, 0, "drawn, nobody through yet");
    let rounds = |n: usize| {
        let (room, clock, buyers) = (room.clone(), clock.clone(), buyers.clone());
        async move {
            for _ in 0..n {
                clock.advance(Duration::from_secs(1));
                poll(&room, &buyers);
                room.tick().await.unwrap();
            }
            room.audit(SHOW).unwrap().served
        }
    };
    // (The manual clock goes on with real time between its steps: a little more.)
    let fast = rounds(10).await;
    assert!((150..=165).contains(&fast), "15 a second: {fast}");
    // The processes slow down: one a second in all, and a report below the floor.
    room.heard_capacity(&report("a", 1.0));
    room.heard_capacity(&report("b", 0.0));
    assert_eq!(room.auto_per_minute(), 60.0);
    let slow = rounds(10).await - fast;
    assert!((10..=12).contains(&slow), "one a second: {slow}");
    room.heard_capacity(&report("a", 0.1));
    room.heard_capacity(&report("b", 0.0));
    assert_eq!(room.auto_per_minute(), crate::AUTO_FLOOR_PER_MINUTE, "never below the floor");
    // Reports stop: the policy's rate again.
    clock.advance(Duration::from_secs(31));
    assert_eq!(room.auto_per_minute(), 600.0);
    let checks = room.consistency().await.unwrap();
    assert!(checks.iter().all(|c| c.ok), "{:?}", checks.iter().map(|c| &c.detail).collect::<Vec<_>>());
}
