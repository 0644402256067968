//! The bus on Kafka, for the distributed mode.
//!
//! Topics are created at start-up with the configured partition count (no reliance on
//! broker auto-creation). Messages are keyed by aggregate, so one key's events stay in
//! one partition, in order, while different keys run in parallel. The producer is
//! idempotent with acks from all replicas; `publish` returns only once every message
//! is acknowledged. Consumers join consumer groups with auto-commit off: offsets are
//! committed only after the module has committed the events' effects and inbox records.
//! A namespace prefixes every topic and group, so several deployments (or tests) can
//! share a broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::{Bus, Delivery, Outgoing, Subscription};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct KafkaBus {
    brokers: String,
    namespace: String,
    producer: FutureProducer,
    /// A topic of ours, whose metadata a ping asks for (not the whole cluster's).
    probe_topic: String,
    /// One idle member per group (by Kafka group id), to read and set its committed
    /// offsets for `lag` and `rewind`.
    observers: Arc<Mutex<HashMap<String, Arc<BaseConsumer>>>>,
    /// How long a consumer's fetch may wait for messages (`fetch.wait.max.ms`).
    fetch_wait: Duration,
}

/// The default `fetch.wait.max.ms` of boxoffice's consumers. The broker used here (tansu)
/// holds a fetch for the whole wait even when messages arrive meanwhile, so the wait is
/// a floor on every saga hop: librdkafka's default, 500 ms, made a purchase's events take
/// about 490 ms end to end at a light load, 100 ms about 120 ms, at no measurable cost
/// under a heavy one.
pub const FETCH_WAIT: Duration = Duration::from_millis(100);

impl KafkaBus {
    /// Connects to `brokers` and makes sure `topics` exist with `partitions` partitions.
    pub async fn connect(brokers: &str, namespace: &str, topics: &[&str], partitions: i32) -> anyhow::Result<Self> {
        let bus = KafkaBus {
            brokers: brokers.to_owned(),
            namespace: namespace.to_owned(),
            producer: ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "1")
                .set("message.timeout.ms", "30000")
                .create()
                .context("failed to create the Kafka producer")?,
            observers: Arc::default(),
            probe_topic: String::new(),
            fetch_wait: FETCH_WAIT,
        };
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .context("failed to create the Kafka admin client")?;
        let names: Vec<String> = topics.iter().map(|t| bus.topic(t)).collect();
        let mut bus = bus;
        bus.probe_topic = names.first().cloned().unwrap_or_default();
        let wanted: Vec<NewTopic> =
            names.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
        let results = admin.create_topics(&wanted, &AdminOptions::new().operation_timeout(Some(TIMEOUT))).await?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("failed to create topic {topic}: {code}"),
            }
        }
        Ok(bus)
    }

    /// Sets how long a consumer's fetch may wait for messages (for consumers created
    /// from now on).
    pub fn with_fetch_wait(mut self, wait: Duration) -> Self {
        self.fetch_wait = wait;
        self
    }

    fn topic(&self, topic: &str) -> String {
        if self.namespace.is_empty() { topic.to_owned() } else { format!("{}.{topic}", self.namespace) }
    }

    /// The Kafka group of a module's consumers of one topic: a group per topic, so that
    /// each group's members all subscribe to the same topic. (One group for a module's
    /// several topics is allowed by Kafka, but every member's join then rebalances the
    /// consumers of every topic, and tansu at times left such a group behind after its
    /// offsets were rewound.)
    fn group(&self, group: &str, topic: &str) -> String {
        self.topic(&format!("{group}.{topic}"))
    }

    fn consumer_config(&self, group: &str, topic: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", self.group(group, topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", self.fetch_wait.as_millis().to_string());
        config
    }

    fn observer(&self, group: &str, topic: &str) -> anyhow::Result<Arc<BaseConsumer>> {
        let mut observers = self.observers.lock().expect("observers lock");
        let id = self.group(group, topic);
        if let Some(c) = observers.get(&id) {
            return Ok(c.clone());
        }
        let consumer: BaseConsumer =
            self.consumer_config(group, topic).create().context("failed to create a Kafka observer")?;
        let consumer = Arc::new(consumer);
        observers.insert(id, consumer.clone());
        Ok(consumer)
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, messages: &[Outgoing]) -> anyhow::Result<()> {
        let topics: Vec<String> = messages.iter().map(|m| self.topic(&m.topic)).collect();
        let sends = messages.iter().zip(&topics).map(|(m, topic)| {
            self.producer.send(FutureRecord::to(topic).key(&m.key).payload(&m.body), Timeout::After(TIMEOUT))
        });
        for result in futures_util::future::join_all(sends).await {
            result.map_err(|(error, _)| error).context("the broker did not acknowledge a message")?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> anyhow::Result<Box<dyn Subscription>> {
        let consumer: StreamConsumer =
            self.consumer_config(group, topic).create().context("failed to create a Kafka consumer")?;
        consumer.subscribe(&[&self.topic(topic)]).context("failed to subscribe")?;
        Ok(Box::new(KafkaSubscription { consumer: Some(Arc::new(consumer)), topic: self.topic(topic) }))
    }

    async fn ping(&self) -> bool {
        let producer = self.producer.clone();
        let topic = self.probe_topic.clone();
        let topic = (!topic.is_empty()).then_some(topic);
        tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(topic.as_deref(), Duration::from_secs(2)).is_ok()
        })
        .await
        .unwrap_or(false)
    }

    async fn lag(&self, topic: &str, group: &str) -> anyhow::Result<i64> {
        let observer = self.observer(group, topic)?;
        let topic = self.topic(topic);
        tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
            let metadata = observer.fetch_metadata(Some(&topic), TIMEOUT)?;
            let partitions: Vec<i32> =
                metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition(&topic, *p);
            }
            let committed = observer.committed_offsets(tpl, TIMEOUT)?;
            let mut lag = 0;
            for p in partitions {
                let (low, high) = observer.fetch_watermarks(&topic, p, TIMEOUT)?;
                let done = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => low,
                };
                lag += (high - done).max(0);
            }
            Ok(lag)
        })
        .await?
    }

    async fn prune(&self, _before: i64) -> anyhow::Result<u64> {
        Ok(0) // the broker's retention does this
    }

    async fn rewind(&self, topic: &str, group: &str) -> anyhow::Result<i64> {
        let observer = self.observer(group, topic)?;
        let full = self.topic(topic);
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let metadata = observer.fetch_metadata(Some(&full), TIMEOUT)?;
            let mut start = TopicPartitionList::new();
            for p in metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())) {
                let (low, _) = observer.fetch_watermarks(&full, p, TIMEOUT)?;
                start.add_partition_offset(&full, p, Offset::Offset(low))?;
            }
            // An empty group takes offsets from a client outside it.
            observer.commit(&start, CommitMode::Sync).context("the broker refused the group's new offsets")
        })
        .await??;
        self.lag(topic, group).await
    }
}

struct KafkaSubscription {
    /// Taken only by `drop`.
    consumer: Option<Arc<StreamConsumer>>,
    topic: String,
}

impl KafkaSubscription {
    fn consumer(&self) -> &Arc<StreamConsumer> {
        self.consumer.as_ref().expect("a subscription's consumer lives until it is dropped")
    }
}

/// Closing a consumer leaves its group, so that its partitions go to the others at once
/// rather than after the session times out. But librdkafka's close can also block for
/// good (seen here: its rebalance callback waiting on the group thread, at a test
/// runtime's shutdown), and whoever drops the subscription — a task being aborted on a
/// tokio worker — must not hang with it: the close runs on a thread of its own, and is
/// waited for only so long.
impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        const CLOSE_WAIT: Duration = Duration::from_secs(2);
        let Some(consumer) = self.consumer.take() else { return };
        let (closed, wait) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("kafka-close".into()).spawn(move || {
            drop(consumer);
            let _ = closed.send(());
        });
        match spawned {
            Ok(_) => {
                if wait.recv_timeout(CLOSE_WAIT).is_err() {
                    tracing::warn!("a Kafka consumer did not close in time; left closing in the background");
                }
            }
            Err(error) => tracing::warn!(%error, "could not close a Kafka consumer on a thread of its own"),
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> anyhow::Result<Vec<Delivery>> {
        let mut batch = Vec::new();
        let mut wait = wait;
        while batch.len() < max {
            let message = match tokio::time::timeout(wait, self.consumer().recv()).await {
                Err(_) => break,
                Ok(Err(KafkaError::PartitionEOF(_))) => continue,
                Ok(Err(error)) => return Err(error).context("failed to receive"),
                Ok(Ok(m)) => m,
            };
            batch.push(Delivery {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
                body: message.payload().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
            });
            // Take what is already there, without waiting for more.
            wait = Duration::from_millis(1);
        }
        Ok(batch)
    }

    async fn commit(&mut self, applied: &[Delivery]) -> anyhow::Result<()> {
        let mut next: HashMap<i32, i64> = HashMap::new();
        for d in applied {
            let n = next.entry(d.partition).or_default();
            *n = (*n).max(d.offset + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next {
            tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        }
        // Sent, not waited for: the events' effects are committed already, and a commit
        // that is lost only delivers them again, which the inbox absorbs. Waiting for the
        // broker's answer held every batch of the saga up by a round trip.
        self.consumer().commit(&tpl, CommitMode::Async).context("failed to commit offsets")?;
        Ok(())
    }
}
