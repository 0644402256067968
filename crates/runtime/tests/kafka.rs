//! The Kafka bus against a real Kafka-protocol broker (`BOXOFFICE_TEST_KAFKA`, started by
//! `.ci/run`): topics created with partitions, one key's messages in order, offsets
//! committed only when asked, and what was not committed delivered again to the group.

use std::collections::HashMap;
use std::time::Duration;

use runtime::bus::kafka::KafkaBus;
use runtime::bus::{Bus, Delivery, Outgoing};

fn brokers() -> Option<String> {
    runtime::testing::require_env("BOXOFFICE_TEST_KAFKA", "a Kafka broker")
}

async fn poll_all(bus: &KafkaBus, group: &str, want: usize) -> (Box<dyn runtime::bus::Subscription>, Vec<Delivery>) {
    let mut sub = bus.subscribe("t.events", group).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..60 {
        got.extend(sub.poll(100, Duration::from_millis(500)).await.unwrap());
        if got.len() >= want {
            break;
        }
    }
    (sub, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_keep_their_order_and_uncommitted_ones_come_back() {
    let Some(brokers) = brokers() else { return };
    let namespace = format!("rt_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let bus = KafkaBus::connect(&brokers, &namespace, &["t.events"], 3).await.unwrap();
    let messages: Vec<Outgoing> = (0..30)
        .map(|i| Outgoing { topic: "t.events".into(), key: format!("k{}", i % 3), body: i.to_string() })
        .collect();
    bus.publish(&messages).await.unwrap();

    let (sub, got) = poll_all(&bus, "g", 30).await;
    assert_eq!(got.len(), 30, "every message delivered");
    let mut by_key: HashMap<String, Vec<i32>> = HashMap::new();
    for d in &got {
        by_key.entry(d.key.clone()).or_default().push(d.body.parse().unwrap());
    }
    for (key, values) in &by_key {
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{key} out of order: {values:?}");
    }
    assert!(
        got.iter().map(|d| d.partition).collect::<std::collections::HashSet<_>>().len() > 1,
        "keys spread over partitions"
    );
    // tansu reports a partition's high watermark per record batch, not per record, so
    // the lag is only known to be positive here.
    assert!(bus.lag("t.events", "g").await.unwrap() > 0);
    drop(sub); // died before committing

    let (mut again, got) = poll_all(&bus, "g", 30).await;
    assert_eq!(got.len(), 30, "uncommitted messages are delivered again");
    again.commit(&got).await.unwrap();
    // The commit is sent without waiting for the broker's answer: the lag reaches 0
    // once the broker has it.
    let mut lag = bus.lag("t.events", "g").await.unwrap();
    for _ in 0..50 {
        if lag == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        lag = bus.lag("t.events", "g").await.unwrap();
    }
    assert_eq!(lag, 0);
    drop(again);

    let mut after = bus.subscribe("t.events", "g").await.unwrap();
    let mut late = Vec::new();
    for _ in 0..8 {
        late.extend(after.poll(100, Duration::from_millis(500)).await.unwrap());
    }
    assert!(late.is_empty(), "committed messages are not delivered again: {late:?}");
}

/// `boxoffice replay` on Kafka: a group that read and committed everything, once its
/// consumers have left, is rewound to the start and reads every message again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewound_group_reads_every_message_again() {
    let Some(brokers) = brokers() else { return };
    let namespace = format!("rt_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let bus = KafkaBus::connect(&brokers, &namespace, &["t.events"], 3).await.unwrap();
    let messages: Vec<Outgoing> = (0..20)
        .map(|i| Outgoing { topic: "t.events".into(), key: format!("k{}", i % 4), body: i.to_string() })
        .collect();
    bus.publish(&messages).await.unwrap();
    let (mut sub, got) = poll_all(&bus, "g", 20).await;
    assert_eq!(got.len(), 20);
    sub.commit(&got).await.unwrap();
    drop(sub); // the consumer leaves the group
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut rewound = None;
    for _ in 0..20 {
        // The group may still be settling its last member's departure.
        match bus.rewind("t.events", "g").await {
            Ok(n) => {
                rewound = Some(n);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    assert!(rewound.expect("the broker took the rewind") > 0, "there is something to read again");
    let (_sub, again) = poll_all(&bus, "g", 20).await;
    let mut bodies: Vec<i32> = again.iter().map(|d| d.body.parse().unwrap()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, (0..20).collect::<Vec<_>>(), "every message read again");
}
