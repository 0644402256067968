//! The waiting room's SQL (the same on SQLite and PostgreSQL).

use anyhow::Context;
use contract::Millis;
use runtime::Tx;
use runtime::db::{Migrations, Reader};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::queue::{Counter, Draw, Entry, Rate, Settings};

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

/// A room as stored.
pub struct RoomRow {
    pub event_id: i64,
    pub settings: Settings,
    pub draw: Option<Draw>,
    pub counter: Counter,
    pub version: i64,
}

const ROOM: &str = "SELECT event_id, enabled, rate_per_minute, on_sale_at, seed, prequeue_last, drawn_at, served, carry, \
                    served_at, version FROM rooms";
const ENTRY: &str = "SELECT id, buyer, joined_at, seen_at, admitted_at, no_show FROM entries";

fn room_row(row: &AnyRow) -> anyhow::Result<RoomRow> {
    let rate: Option<i64> = row.try_get("rate_per_minute")?;
    let seed: Option<String> = row.try_get("seed")?;
    let draw = match seed {
        Some(seed) => Some(Draw {
            seed: seed.parse().context("a recorded seed is a u64")?,
            prequeue_last: row.try_get::<Option<i64>, _>("prequeue_last")?.unwrap_or(0),
            drawn_at: row.try_get::<Option<i64>, _>("drawn_at")?.unwrap_or(0),
        }),
        None => None,
    };
    Ok(RoomRow {
        event_id: row.try_get("event_id")?,
        settings: Settings {
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            rate: rate.map_or(Rate::Auto, |r| Rate::PerMinute(r.clamp(0, u32::MAX as i64) as u32)),
            on_sale_at: row.try_get("on_sale_at")?,
        },
        draw,
        counter: Counter {
            served: row.try_get::<i64, _>("served")?.max(0) as u64,
            carry: row.try_get("carry")?,
            served_at: row.try_get("served_at")?,
        },
        version: row.try_get("version")?,
    })
}

fn entry_row(row: &AnyRow) -> anyhow::Result<Entry> {
    Ok(Entry {
        id: row.try_get("id")?,
        buyer: row.try_get("buyer")?,
        joined_at: row.try_get("joined_at")?,
        seen_at: row.try_get("seen_at")?,
        admitted_at: row.try_get("admitted_at")?,
        no_show: row.try_get::<i64, _>("no_show")? != 0,
    })
}

pub async fn rooms(db: &Reader) -> anyhow::Result<Vec<RoomRow>> {
    let rows = sqlx::query(ROOM).fetch_all(db).await.context("failed to read the rooms")?;
    rows.iter().map(room_row).collect()
}

pub async fn room(db: &Reader, event_id: i64) -> anyhow::Result<Option<RoomRow>> {
    let row = sqlx::query(&format!("{ROOM} WHERE event_id = $1"))
        .bind(event_id)
        .fetch_optional(db)
        .await
        .context("failed to read a room")?;
    row.as_ref().map(room_row).transpose()
}

/// A show's entries after id `after`.
pub async fn entries(db: &Reader, event_id: i64, after: i64) -> anyhow::Result<Vec<Entry>> {
    let rows = sqlx::query(&format!("{ENTRY} WHERE event_id = $1 AND id > $2 ORDER BY id"))
        .bind(event_id)
        .bind(after)
        .fetch_all(db)
        .await
        .context("failed to read the queue")?;
    rows.iter().map(entry_row).collect()
}

pub async fn entry(db: &Reader, event_id: i64, buyer: &str) -> anyhow::Result<Option<Entry>> {
    let row = sqlx::query(&format!("{ENTRY} WHERE event_id = $1 AND buyer = $2"))
        .bind(event_id)
        .bind(buyer)
        .fetch_optional(db)
        .await
        .context("failed to read a place")?;
    row.as_ref().map(entry_row).transpose()
}

/// When the entries `ids` were last seen, and whether they lost their place.
pub async fn seen(db: &Reader, ids: &[i64]) -> anyhow::Result<Vec<(i64, Millis, bool)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (1..=ids.len()).map(|k| format!("${k}")).collect();
    let sql = format!("SELECT id, seen_at, no_show FROM entries WHERE id IN ({})", list.join(", "));
    let mut query = sqlx::query_as::<_, (i64, Millis, i64)>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(db).await.context("failed to read when visitors were seen")?;
    Ok(rows.into_iter().map(|(id, seen_at, no_show)| (id, seen_at, no_show != 0)).collect())
}

/// Sets a room's settings (creating it), bumping its version; returns the version.
pub async fn save_settings(tx: &mut Tx, event_id: i64, s: &Settings) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO rooms (event_id, enabled, rate_per_minute, on_sale_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (event_id) DO UPDATE SET enabled = $2, rate_per_minute = $3, on_sale_at = $4, \
         version = rooms.version + 1 RETURNING version",
    )
    .bind(event_id)
    .bind(i64::from(s.enabled))
    .bind(rate_column(s.rate))
    .bind(s.on_sale_at)
    .fetch_one(&mut **tx)
    .await
    .context("failed to save a room")
}

/// The rate as stored: visitors a minute, NULL for `auto`.
fn rate_column(rate: Rate) -> Option<i64> {
    match rate {
        Rate::PerMinute(r) => Some(i64::from(r)),
        Rate::Auto => None,
    }
}

/// A new room with `s`, unless the show has one; its version, when it was made.
pub async fn create_settings(tx: &mut Tx, event_id: i64, s: &Settings) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO rooms (event_id, enabled, rate_per_minute, on_sale_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (event_id) DO NOTHING RETURNING version",
    )
    .bind(event_id)
    .bind(i64::from(s.enabled))
    .bind(rate_column(s.rate))
    .bind(s.on_sale_at)
    .fetch_optional(&mut **tx)
    .await
    .context("failed to make a room")
}

/// A join: one write. `None` when the buyer already has a place.
pub async fn insert_entry(tx: &mut Tx, event_id: i64, buyer: &str, now: Millis) -> anyhow::Result<Option<Entry>> {
    let row = sqlx::query(
        "INSERT INTO entries (event_id, buyer, joined_at, seen_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (event_id, buyer) DO NOTHING \
         RETURNING id, buyer, joined_at, seen_at, admitted_at, no_show",
    )
    .bind(event_id)
    .bind(buyer)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .context("failed to join a queue")?;
    row.as_ref().map(entry_row).transpose()
}

/// Records the pre-queue's shuffle, unless another replica recorded one first.
pub async fn record_draw(tx: &mut Tx, event_id: i64, draw: &Draw) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE rooms SET seed = $2, prequeue_last = $3, drawn_at = $4, served = 0, carry = 0, served_at = $4, \
         version = version + 1 WHERE event_id = $1 AND seed IS NULL",
    )
    .bind(event_id)
    .bind(draw.seed.to_string())
    .bind(draw.prequeue_last)
    .bind(draw.drawn_at)
    .execute(&mut **tx)
    .await
    .context("failed to record a draw")?;
    Ok(done.rows_affected() == 1)
}

/// Moves the counter from `version`; false when another replica moved it first.
pub async fn record_counter(tx: &mut Tx, event_id: i64, counter: &Counter, version: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE rooms SET served = $2, carry = $3, served_at = $4, version = version + 1 \
         WHERE event_id = $1 AND version = $5",
    )
    .bind(event_id)
    .bind(counter.served as i64)
    .bind(counter.carry)
    .bind(counter.served_at)
    .bind(version)
    .execute(&mut **tx)
    .await
    .context("failed to move a serving counter")?;
    Ok(done.rows_affected() == 1)
}

/// Sets `set` (an assignment of `$1`) on the entries `ids`, 500 a statement.
async fn update_entries(tx: &mut Tx, set: &str, value: i64, ids: &[i64]) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (2..chunk.len() + 2).map(|k| format!("${k}")).collect();
        let sql = format!("UPDATE entries SET {set} WHERE id IN ({})", list.join(", "));
        let mut query = sqlx::query(&sql).bind(value);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await.context("failed to update places")?;
    }
    Ok(())
}

pub async fn mark_admitted(tx: &mut Tx, ids: &[i64], at: Millis) -> anyhow::Result<()> {
    update_entries(tx, "admitted_at = $1", at, ids).await
}

pub async fn mark_no_shows(tx: &mut Tx, ids: &[i64]) -> anyhow::Result<()> {
    update_entries(tx, "no_show = $1", 1, ids).await
}

pub async fn mark_seen(tx: &mut Tx, ids: &[i64], at: Millis) -> anyhow::Result<()> {
    update_entries(tx, "seen_at = $1", at, ids).await
}
