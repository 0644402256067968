//! The transactional outbox and its relay.
//!
//! A module appends the events a state change causes in the same transaction as the
//! change, so either both happen or neither. The relay then publishes unpublished rows
//! in order and marks them published only after the bus acknowledged them; a crash in
//! between publishes them again, which the consumers' inboxes absorb.
//!
//! On the embedded bus the outbox is itself the log its consumers read (see
//! `Db::outbox_as_log`): a row is published by its commit, and the relay has nothing to
//! do but wake the readers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use contract::events::{DomainEvent, Envelope};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use tokio::sync::Notify;

use crate::bus::{Bus, Outgoing};
use crate::db::{Backend, Db, Tx};
use crate::trace;

/// Appends `event` to the outbox inside `tx`, carrying the current trace.
///
/// Call it after the statements that change the event's aggregate (the seats, the
/// order, the payment): their row locks make two transactions about the same aggregate
/// take turns, so its rows get `seq` numbers in commit order, and the relay, which
/// publishes unpublished rows by `seq`, publishes them in that order. Transactions about
/// different aggregates do not wait for each other here. (On SQLite there is one writer
/// anyway.)
pub async fn append<E: DomainEvent>(tx: &mut Tx, event: &E) -> anyhow::Result<()> {
    let row = OutboxRow::of(event)?;
    let is_log = tx.outbox_log.is_some();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (id, topic, msg_key, envelope, created_at, slot, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
    )
    .bind(row.id)
    .bind(row.topic)
    .bind(row.key)
    .bind(row.envelope)
    .bind(row.created_at)
    .bind(row.slot)
    .bind(is_log.then_some(row.created_at))
    .fetch_one(&mut **tx)
    .await
    .context("failed to append to the outbox")?;
    if let Some((_, last)) = &mut tx.outbox_log {
        *last = seq;
    }
    Ok(())
}

/// An event's outbox row, carrying the current trace: what `append` inserts, for a
/// PostgreSQL statement that inserts it together with the change it announces (see
/// [`OutboxRow::COLUMNS`]). Not for an outbox that is the embedded bus's log.
pub struct OutboxRow {
    pub id: String,
    pub topic: &'static str,
    pub key: String,
    pub envelope: String,
    pub created_at: i64,
    pub slot: i64,
}

impl OutboxRow {
    /// The columns the fields fill, in their order.
    pub const COLUMNS: &str = "id, topic, msg_key, envelope, created_at, slot";

    pub fn of<E: DomainEvent>(event: &E) -> anyhow::Result<OutboxRow> {
        let now = contract::now_millis();
        let envelope = Envelope::wrap(event, now, trace::current_traceparent());
        Ok(OutboxRow {
            id: envelope.id.to_string(),
            topic: E::TOPIC,
            slot: slot(&envelope.aggregate_id),
            envelope: serde_json::to_string(&envelope)?,
            key: envelope.aggregate_id,
            created_at: now,
        })
    }
}

/// Slots the relay's work is split into; each key always falls in the same one.
const SLOTS: i64 = 16;
/// Advisory lock keys (per database), one per relay slot.
const SLOT_LOCKS: i64 = 0x626f_786f_0001;

fn slot(key: &str) -> i64 {
    let hash = key.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    i64::from(hash) % SLOTS
}

/// The relay's read of unpublished rows in commit order, of the given slots only (all
/// without), at most `$1`. Public for the tests of its plan.
#[doc(hidden)]
pub fn unpublished_sql(slots: Option<&[i64]>) -> String {
    // Slot numbers are our own integers, safe to write into the statement.
    let by_slot =
        slots.map(|s| format!("AND slot IN ({})", s.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")));
    format!(
        "SELECT seq, topic, msg_key, envelope, created_at FROM outbox WHERE published_at IS NULL {} ORDER BY seq LIMIT $1",
        by_slot.unwrap_or_default()
    )
}

/// Publishes a module's outbox to the bus.
#[derive(Clone)]
pub struct Relay {
    module: &'static str,
    db: Db,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
}

const BATCH: i64 = 512;

impl Relay {
    pub fn new(module: &'static str, db: Db, bus: Arc<dyn Bus>) -> Self {
        Relay { module, db: db.background(), bus, wake: Arc::new(Notify::new()) }
    }

    /// The module whose outbox this is.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// Tells the relay that a transaction with outbox rows has committed. (Where the
    /// outbox is the bus's log, the commit itself told the log's readers.)
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes until the task is dropped; polls every `idle` when not woken. Returns at
    /// once where the outbox is the bus's log: its rows are published as they commit.
    pub async fn run(self, idle: Duration) {
        if self.db.outbox_log().is_some() {
            return;
        }
        self.db.clone().on_writer(self.publish_until_dropped(idle)).await
    }

    async fn publish_until_dropped(self, idle: Duration) {
        let mut failures = 0;
        loop {
            match self.publish_batch().await {
                Ok(0) => {
                    failures = 0;
                    let _ = tokio::time::timeout(idle, self.wake.notified()).await;
                }
                Ok(_) => failures = 0,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "outbox relay failed; retrying");
                    crate::backoff_sleep(failures).await;
                    failures += 1;
                }
            }
        }
    }

    /// Publishes one batch of unpublished rows; returns how many.
    ///
    /// SQLite has a single relay per database: it reads from a reader and marks with the
    /// writer. On PostgreSQL every replica runs a relay; in one transaction a relay takes
    /// every slot no other relay holds (an advisory lock per slot, until its commit),
    /// publishes those slots' rows as one batch, and marks them. So a row is published
    /// once and one key's rows in order, and a relay that dies mid-batch frees its slots
    /// for the others.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        match self.db.backend() {
            Backend::Sqlite => {
                let rows = self.unpublished(self.db.reader(), None).await?;
                self.send(&rows).await?;
                self.mark(&rows, self.db.writer()).await
            }
            Backend::Postgres => {
                let mut tx = self.db.begin().await?;
                let slots: Vec<i64> = sqlx::query_scalar(
                    "SELECT s FROM generate_series(0::BIGINT, $1::BIGINT - 1) AS s WHERE pg_try_advisory_xact_lock($2 + s)",
                )
                .bind(SLOTS)
                .bind(SLOT_LOCKS)
                .fetch_all(&mut *tx)
                .await
                .context("failed to take outbox slots")?;
                if slots.is_empty() {
                    return Ok(0);
                }
                // Holding every slot (one relay, as usual), it reads the rows in order and
                // stops at the batch's end, rather than collecting each slot's to sort.
                let slots = (slots.len() < SLOTS as usize).then_some(slots.as_slice());
                let rows = self.unpublished(&mut *tx, slots).await?;
                self.send(&rows).await?;
                let published = self.mark(&rows, &mut *tx).await?;
                tx.commit().await?;
                Ok(published)
            }
        }
    }

    /// Unpublished rows in commit order, of the given slots only (all without).
    async fn unpublished<'c>(
        &self,
        conn: impl Executor<'c, Database = Any>,
        slots: Option<&[i64]>,
    ) -> anyhow::Result<Vec<AnyRow>> {
        sqlx::query(&unpublished_sql(slots)).bind(BATCH).fetch_all(conn).await.context("failed to read the outbox")
    }

    /// Publishes `rows`; returns once the bus has them all.
    async fn send(&self, rows: &[AnyRow]) -> anyhow::Result<()> {
        let messages: Vec<Outgoing> = rows
            .iter()
            .map(|r| Outgoing { topic: r.get("topic"), key: r.get("msg_key"), body: r.get("envelope") })
            .collect();
        if messages.is_empty() {
            return Ok(());
        }
        let sent = std::time::Instant::now();
        self.bus.publish(&messages).await.context("failed to publish")?;
        metrics::histogram!(crate::metrics::OUTBOX_ACK, "module" => self.module).record(sent.elapsed().as_secs_f64());
        Ok(())
    }

    /// Marks exactly the published `rows` as published.
    async fn mark<'c>(&self, rows: &[AnyRow], conn: impl Executor<'c, Database = Any>) -> anyhow::Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let now = contract::now_millis();
        let seqs: Vec<i64> = rows.iter().map(|r| r.get("seq")).collect();
        let sql = format!(
            "UPDATE outbox SET published_at = $1 WHERE seq IN ({})",
            (2..seqs.len() + 2).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        );
        let mut mark = sqlx::query(&sql).bind(now);
        for seq in &seqs {
            mark = mark.bind(*seq);
        }
        mark.execute(conn).await.context("failed to mark outbox rows published")?;
        let lag = metrics::histogram!(crate::metrics::OUTBOX_LAG, "module" => self.module);
        for row in rows {
            lag.record((now - row.get::<i64, _>("created_at")).max(0) as f64 / 1000.0);
        }
        Ok(rows.len())
    }

    /// Forgets published rows older than `before` (ms), and inbox records older than
    /// `inbox_before`, which must be older still: an id may be forgotten only once no
    /// copy of its event can be delivered again. Where the outbox is the bus's log, the
    /// bus prunes it, as only the bus knows what its consumers have read.
    pub async fn prune(&self, before: i64, inbox_before: i64) -> anyhow::Result<u64> {
        let outbox = match self.db.outbox_log() {
            Some(_) => 0,
            None => sqlx::query("DELETE FROM outbox WHERE published_at < $1")
                .bind(before)
                .execute(self.db.writer())
                .await
                .context("failed to prune the outbox")?
                .rows_affected(),
        };
        let inbox = sqlx::query("DELETE FROM inbox WHERE applied_at < $1")
            .bind(inbox_before)
            .execute(self.db.writer())
            .await
            .context("failed to prune the inbox")?;
        Ok(outbox + inbox.rows_affected())
    }

    /// Unpublished rows and the age in milliseconds of the oldest.
    pub async fn backlog(&self) -> anyhow::Result<(i64, i64)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL")
            .fetch_one(self.db.reader())
            .await
            .context("failed to measure the outbox backlog")?;
        let n: i64 = row.get("n");
        let oldest: Option<i64> = row.get("oldest");
        Ok((n, oldest.map(|o| contract::now_millis() - o).unwrap_or(0)))
    }
}
