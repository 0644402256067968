//! The topic log between modules.
//!
//! A [`Bus`] takes batches of keyed messages and hands them to consumer groups, each
//! group reading a topic from its committed offset. Delivery is at least once: a
//! consumer that dies before committing sees the same messages again, and the inbox
//! makes applying them idempotent. `embedded` keeps the log in SQLite for the
//! one-process mode; the distributed mode puts Kafka behind the same trait.

pub mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;

use async_trait::async_trait;

/// A message to publish: the topic, the key that orders it, the envelope as JSON.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub body: String,
}

/// A message delivered to a consumer group.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The partition of the topic (always 0 on the embedded bus).
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub body: String,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Appends the messages; returns once the bus has them durably.
    async fn publish(&self, messages: &[Outgoing]) -> anyhow::Result<()>;

    /// Joins `group` on `topic`, starting after the group's committed offset.
    async fn subscribe(&self, topic: &str, group: &str) -> anyhow::Result<Box<dyn Subscription>>;

    /// True when the bus answers.
    async fn ping(&self) -> bool;

    /// Messages of `topic` that `group` has not committed yet.
    async fn lag(&self, topic: &str, group: &str) -> anyhow::Result<i64>;

    /// Forgets messages every group has committed that are older than `before` (ms);
    /// returns how many. A broker with its own retention does nothing here.
    async fn prune(&self, before: i64) -> anyhow::Result<u64>;

    /// Moves `group`'s committed offsets on `topic` back to the oldest message kept, so
    /// its consumers read every event again (their inboxes apply none twice). Run it
    /// while the group's consumers are stopped; returns the messages to be re-read.
    async fn rewind(&self, topic: &str, group: &str) -> anyhow::Result<i64>;
}

#[async_trait]
pub trait Subscription: Send {
    /// The next messages after the last delivered one, waiting up to `wait` for at least
    /// one; empty when none came.
    async fn poll(&mut self, max: usize, wait: std::time::Duration) -> anyhow::Result<Vec<Delivery>>;

    /// Records that everything up to and including these deliveries has been applied.
    async fn commit(&mut self, applied: &[Delivery]) -> anyhow::Result<()>;
}
