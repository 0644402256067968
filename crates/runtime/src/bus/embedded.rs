//! The in-process bus: a durable log per topic, with the committed offset of each
//! consumer group in a SQLite file of its own. It behaves like a single-partition Kafka
//! topic per topic name — ordered, replayable, offsets committed by the consumer — so
//! modules and their tests do not know which bus they run on.
//!
//! A topic whose producer runs in this process on SQLite is read straight from that
//! module's outbox (`read_outbox`): its rows commit in order under the one writer, so the
//! outbox already is such a log, and copying each event into another one — and marking
//! it, and committing both — was a tenth of the embedded mode's CPU. Other topics (a
//! relay publishing a PostgreSQL outbox, in tests) go to a log of messages in the file.

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
use crate::db::{Backend, Db, Durability, Migrations};

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
    /// The topics read from their producer's outbox, and the producer.
    outboxes: Arc<Mutex<HashMap<String, Outbox>>>,
}

/// A module whose outbox is a topic's log.
#[derive(Clone)]
struct Outbox {
    module: &'static str,
    db: Db,
}

impl EmbeddedBus {
    pub async fn open(path: &Path, durability: Durability) -> anyhow::Result<Self> {
        let db = Db::open_sqlite(path, durability, &MIGRATIONS).await?;
        Ok(EmbeddedBus { db, heads: Default::default(), outboxes: Default::default() })
    }

    /// From now on `topic` is read from the outbox of `db`, the SQLite database of
    /// `module`, which produces it; returns `db` with its outbox as the log, for the
    /// module to write through (see `Db::outbox_as_log`).
    pub async fn read_outbox(&self, module: &'static str, topic: &str, db: Db) -> anyhow::Result<Db> {
        anyhow::ensure!(db.backend() == Backend::Sqlite, "only a SQLite outbox is read in place");
        // Rows a relay had yet to publish (written by an older version) are in the log now.
        sqlx::query("UPDATE outbox SET published_at = created_at WHERE published_at IS NULL")
            .execute(db.writer())
            .await
            .context("failed to take over the outbox")?;
        let durable: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
            .fetch_one(db.reader())
            .await
            .context("failed to read the outbox")?;
        let db = db.outbox_as_log(durable);
        self.outboxes.lock().expect("outboxes lock").insert(topic.to_owned(), Outbox { module, db: db.clone() });
        Ok(db)
    }

    /// The module whose outbox `topic` is read from, if it is.
    fn outbox(&self, topic: &str) -> Option<Outbox> {
        self.outboxes.lock().expect("outboxes lock").get(topic).cloned()
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
        if let Some(m) = messages.iter().find(|m| self.outbox(&m.topic).is_some()) {
            anyhow::bail!("{} is read from its producer's outbox; nothing publishes to it", m.topic);
        }
        let (bus, messages) = (self.clone(), messages.to_vec());
        self.db.on_writer(async move { bus.append(&messages).await }).await
    }

    async fn rewind(&self, topic: &str, group: &str) -> anyhow::Result<i64> {
        let offsets = offsets_table(&self.outbox(topic));
        sqlx::query(&format!(
            "INSERT INTO {offsets} (topic, grp, committed) VALUES ($1, $2, 0) \
             ON CONFLICT (topic, grp) DO UPDATE SET committed = 0"
        ))
        .bind(topic)
        .bind(group)
        .execute(self.db.writer())
        .await
        .context("failed to rewind the group")?;
        self.lag(topic, group).await
    }

    async fn subscribe(&self, topic: &str, group: &str) -> anyhow::Result<Box<dyn Subscription>> {
        let outbox = self.outbox(topic);
        let offsets = offsets_table(&outbox);
        let committed: Option<i64> =
            sqlx::query_scalar(&format!("SELECT committed FROM {offsets} WHERE topic = $1 AND grp = $2"))
                .bind(topic)
                .bind(group)
                .fetch_optional(self.db.reader())
                .await
                .context("failed to read the group's offset")?;
        // Joining registers the group, so pruning waits for it from now on.
        sqlx::query(&format!(
            "INSERT INTO {offsets} (topic, grp, committed) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING"
        ))
        .bind(topic)
        .bind(group)
        .execute(self.db.writer())
        .await
        .context("failed to register the group")?;
        let head = match &outbox {
            Some(outbox) => outbox.db.outbox_log().expect("read_outbox made the outbox a log"),
            None => self.head(topic),
        };
        Ok(Box::new(EmbeddedSubscription {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            position: committed.unwrap_or(0),
            head,
            outbox,
        }))
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn prune(&self, before: i64) -> anyhow::Result<u64> {
        let mut pruned = sqlx::query(
            "DELETE FROM messages WHERE appended_at < $1 AND id <= \
             (SELECT COALESCE(MIN(committed), 0) FROM consumer_offsets o WHERE o.topic = messages.topic)",
        )
        .bind(before)
        .execute(self.db.writer())
        .await
        .context("failed to prune the bus log")?
        .rows_affected();
        let outboxes: Vec<(String, Outbox)> =
            self.outboxes.lock().expect("outboxes lock").iter().map(|(t, o)| (t.clone(), o.clone())).collect();
        for (topic, Outbox { db, .. }) in outboxes {
            // Only what every group has read: the outbox is the only copy.
            let read: Option<i64> = sqlx::query_scalar("SELECT MIN(committed) FROM outbox_offsets WHERE topic = $1")
                .bind(&topic)
                .fetch_one(self.db.reader())
                .await
                .context("failed to read the groups' offsets")?;
            pruned += sqlx::query("DELETE FROM outbox WHERE topic = $1 AND published_at < $2 AND seq <= $3")
                .bind(&topic)
                .bind(before)
                .bind(read.unwrap_or(0))
                .execute(db.writer())
                .await
                .context("failed to prune an outbox")?
                .rows_affected();
        }
        Ok(pruned)
    }

    async fn lag(&self, topic: &str, group: &str) -> anyhow::Result<i64> {
        let Some(outbox) = self.outbox(topic) else {
            return sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE topic = $1 AND id > \
                 COALESCE((SELECT committed FROM consumer_offsets WHERE topic = $1 AND grp = $2), 0)",
            )
            .bind(topic)
            .bind(group)
            .fetch_one(self.db.reader())
            .await
            .context("failed to measure consumer lag");
        };
        let committed: Option<i64> =
            sqlx::query_scalar("SELECT committed FROM outbox_offsets WHERE topic = $1 AND grp = $2")
                .bind(topic)
                .bind(group)
                .fetch_optional(self.db.reader())
                .await
                .context("failed to read the group's offset")?;
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE topic = $1 AND seq > $2")
            .bind(topic)
            .bind(committed.unwrap_or(0))
            .fetch_one(outbox.db.reader())
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
    /// The topic's last offset: moves when its log grows (for an outbox, its durable end).
    head: watch::Receiver<i64>,
    /// The producer, when the topic is read from its outbox.
    outbox: Option<Outbox>,
}

/// Where the offsets of groups reading from `outbox` (or from the messages) are kept.
fn offsets_table(outbox: &Option<Outbox>) -> &'static str {
    if outbox.is_some() { "outbox_offsets" } else { "consumer_offsets" }
}

impl EmbeddedSubscription {
    async fn fetch(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let (sql, reader) = match &self.outbox {
            // Up to the durable end only (see `Tx::commit`).
            Some(outbox) => (
                "SELECT seq AS id, msg_key, envelope AS body, created_at FROM outbox \
                 WHERE topic = $1 AND seq > $2 AND seq <= $4 ORDER BY seq LIMIT $3",
                outbox.db.reader(),
            ),
            None => (
                "SELECT id, msg_key, body FROM messages WHERE topic = $1 AND id > $2 ORDER BY id LIMIT $3",
                self.bus.db.reader(),
            ),
        };
        let mut query = sqlx::query(sql).bind(&self.topic).bind(self.position).bind(max as i64);
        if self.outbox.is_some() {
            query = query.bind(*self.head.borrow());
        }
        let rows = query.fetch_all(reader).await.context("failed to read the bus log")?;
        if let Some(outbox) = &self.outbox {
            // What a relay's lag measures elsewhere: an event's wait in the outbox, here
            // until each group reads it.
            let now = contract::now_millis();
            let lag = metrics::histogram!(crate::metrics::OUTBOX_LAG, "module" => outbox.module);
            for row in &rows {
                lag.record((now - row.get::<i64, _>("created_at")).max(0) as f64 / 1000.0);
            }
        }
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
        sqlx::query(&format!(
            "INSERT INTO {} (topic, grp, committed) VALUES ($1, $2, $3) \
             ON CONFLICT (topic, grp) DO UPDATE SET committed = excluded.committed",
            offsets_table(&self.outbox)
        ))
        .bind(&self.topic)
        .bind(&self.group)
        .bind(offset)
        .execute(self.bus.db.writer())
        .await
        .context("failed to commit the group's offset")?;
        Ok(())
    }
}
