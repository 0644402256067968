//! The in-process bus: a durable log of messages in its own SQLite file, with the
//! committed offset of each consumer group beside it. It behaves like a single-partition
//! Kafka topic per topic name — ordered, replayable, offsets committed by the consumer —
//! so modules and their tests do not know which bus they run on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::migrate::Migrator;
use tokio::sync::watch;

use super::{Bus, Delivery, Outgoing, Subscription};
use crate::db::{Db, Durability, Migrations};

static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/bus"),
    // The embedded bus lives in SQLite only.
    postgres: Migrator::DEFAULT,
};

#[derive(Clone)]
pub struct EmbeddedBus {
    db: Db,
    /// The highest offset of each topic, so waiting consumers wake when it grows.
    heads: Arc<Mutex<HashMap<String, watch::Sender<i64>>>>,
}

impl EmbeddedBus {
    pub async fn open(path: &Path, durability: Durability) -> anyhow::Result<Self> {
        let db = Db::open_sqlite(path, durability, &MIGRATIONS).await?;
        Ok(EmbeddedBus { db, heads: Default::default() })
    }

    fn head(&self, topic: &str) -> watch::Receiver<i64> {
        let mut heads = self.heads.lock().expect("heads lock");
        heads.entry(topic.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Appends `messages` to the log in one transaction and wakes their topics' consumers.
    async fn append(&self, messages: &[Outgoing]) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let mut last: HashMap<String, i64> = HashMap::new();
        let now = contract::now_millis();
        // One statement per 200 messages.
        for chunk in messages.chunks(200) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("(${}, ${}, ${}, $1)", 3 * i + 2, 3 * i + 3, 3 * i + 4)).collect();
            let sql = format!(
                "INSERT INTO messages (topic, msg_key, body, appended_at) VALUES {} RETURNING id, topic",
                values.join(", ")
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql).bind(now);
            for m in chunk {
                query = query.bind(&m.topic).bind(&m.key).bind(&m.body);
            }
            for (offset, topic) in query.fetch_all(&mut *tx).await.context("failed to append to the bus log")? {
                let head = last.entry(topic).or_default();
                *head = (*head).max(offset);
            }
        }
        tx.commit().await.context("failed to commit to the bus log")?;
        for (topic, offset) in last {
            self.advance(&topic, offset);
        }
        Ok(())
    }

    fn advance(&self, topic: &str, offset: i64) {
        let mut heads = self.heads.lock().expect("heads lock");
        let head = heads.entry(topic.to_owned()).or_insert_with(|| watch::channel(0).0);
        head.send_if_modified(|h| {
            let grew = offset > *h;
            *h = (*h).max(offset);
            grew
        });
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn publish(&self, messages: &[Outgoing]) -> anyhow::Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let (bus, messages) = (self.clone(), messages.to_vec());
        self.db.on_writer(async move { bus.append(&messages).await }).await
    }

    async fn rewind(&self, topic: &str, group: &str) -> anyhow::Result<i64> {
        sqlx::query(
            "INSERT INTO consumer_offsets (topic, grp, committed) VALUES ($1, $2, 0) \
             ON CONFLICT (topic, grp) DO UPDATE SET committed = 0",
        )
        .bind(topic)
        .bind(group)
        .execute(self.db.writer())
        .await
        .context("failed to rewind the group")?;
        self.lag(topic, group).await
    }

    async fn subscribe(&self, topic: &str, group: &str) -> anyhow::Result<Box<dyn Subscription>> {
        let committed: Option<i64> =
            sqlx::query_scalar("SELECT committed FROM consumer_offsets WHERE topic = $1 AND grp = $2")
                .bind(topic)
                .bind(group)
                .fetch_optional(self.db.reader())
                .await
                .context("failed to read the group's offset")?;
        // Joining registers the group, so pruning waits for it from now on.
        sqlx::query("INSERT INTO consumer_offsets (topic, grp, committed) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
            .bind(topic)
            .bind(group)
            .execute(self.db.writer())
            .await
            .context("failed to register the group")?;
        Ok(Box::new(EmbeddedSubscription {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            position: committed.unwrap_or(0),
            head: self.head(topic),
        }))
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn prune(&self, before: i64) -> anyhow::Result<u64> {
        let pruned = sqlx::query(
            "DELETE FROM messages WHERE appended_at < $1 AND id <= \
             (SELECT COALESCE(MIN(committed), 0) FROM consumer_offsets o WHERE o.topic = messages.topic)",
        )
        .bind(before)
        .execute(self.db.writer())
        .await
        .context("failed to prune the bus log")?;
        Ok(pruned.rows_affected())
    }

    async fn lag(&self, topic: &str, group: &str) -> anyhow::Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE topic = $1 AND id > \
             COALESCE((SELECT committed FROM consumer_offsets WHERE topic = $1 AND grp = $2), 0)",
        )
        .bind(topic)
        .bind(group)
        .fetch_one(self.db.reader())
        .await
        .context("failed to measure consumer lag")
    }
}

struct EmbeddedSubscription {
    bus: EmbeddedBus,
    topic: String,
    group: String,
    /// The offset of the last message handed out.
    position: i64,
    head: watch::Receiver<i64>,
}

impl EmbeddedSubscription {
    async fn fetch(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let rows =
            sqlx::query("SELECT id, msg_key, body FROM messages WHERE topic = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(&self.topic)
                .bind(self.position)
                .bind(max as i64)
                .fetch_all(self.bus.db.reader())
                .await
                .context("failed to read the bus log")?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery { partition: 0, offset: r.get("id"), key: r.get("msg_key"), body: r.get("body") })
            .collect())
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> anyhow::Result<Vec<Delivery>> {
        self.head.mark_unchanged();
        let mut batch = self.fetch(max).await?;
        if batch.is_empty() {
            // Published after the fetch? The head will have moved; else wait for it.
            let _ = tokio::time::timeout(wait, self.head.changed()).await;
            batch = self.fetch(max).await?;
        }
        if let Some(last) = batch.last() {
            self.position = last.offset;
        }
        Ok(batch)
    }

    async fn commit(&mut self, applied: &[Delivery]) -> anyhow::Result<()> {
        let Some(offset) = applied.iter().map(|d| d.offset).max() else { return Ok(()) };
        sqlx::query(
            "INSERT INTO consumer_offsets (topic, grp, committed) VALUES ($1, $2, $3) \
             ON CONFLICT (topic, grp) DO UPDATE SET committed = excluded.committed",
        )
        .bind(&self.topic)
        .bind(&self.group)
        .bind(offset)
        .execute(self.bus.db.writer())
        .await
        .context("failed to commit the group's offset")?;
        Ok(())
    }
}
