//! The catalog's SQL.

use anyhow::Context;
use const_format::formatcp;
use contract::api::{CreateEvent, Event, Seat, SeatMap, SeatStatus, SeatUpdate};
use contract::events::SeatSpec;
use contract::venue::{AreaStatus, Category, PlacedSeat, SeatMapVenue, SeatPlace, VenueLayout};
use runtime::Tx;
use runtime::db::Migrations;
use runtime::db::Reader;
use sqlx::Row;

use crate::states::AVAILABLE;

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

pub async fn insert_event(tx: &mut Tx, spec: &CreateEvent, layout: &crate::Layout) -> anyhow::Result<i64> {
    let categories = match &spec.venue {
        Some(venue) => Some(serde_json::to_string(&venue.categories)?),
        None => None,
    };
    sqlx::query_scalar(
        "INSERT INTO events (title, date_time, description, rows_count, cols_count, created_at, categories, places) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&spec.title)
    .bind(&spec.date_time)
    .bind(&spec.description)
    .bind(layout.rows)
    .bind(layout.cols)
    .bind(contract::now_millis())
    .bind(categories)
    .bind(layout.seats.len() as i64)
    .fetch_one(&mut **tx)
    .await
    .context("failed to insert event")
}

/// A show's seats; a venue's with their places (section, row, label, category, drawing
/// position, flags), named from its layout.
pub async fn insert_seats(
    tx: &mut Tx,
    event_id: i64,
    seats: &[SeatSpec],
    venue: Option<&VenueLayout>,
) -> anyhow::Result<()> {
    // Multi-row inserts: one statement per 200 seats instead of one per seat.
    const COLUMNS: usize = 9;
    for chunk in seats.chunks(200) {
        let mut sql = String::from(
            "INSERT INTO seats (event_id, seat_id, r, c, price, area_id, section, category, place) VALUES ",
        );
        for i in 0..chunk.len() {
            let p = i * COLUMNS;
            if i > 0 {
                sql.push(',');
            }
            let params: Vec<String> = (1..=COLUMNS).map(|k| format!("${}", p + k)).collect();
            sql.push_str(&format!("({})", params.join(", ")));
        }
        let mut query = sqlx::query(&sql);
        for s in chunk {
            let place = s.place.as_ref().zip(venue).map(|(p, venue)| seat_place(venue, p));
            query = query
                .bind(event_id)
                .bind(s.seat_id)
                .bind(s.r)
                .bind(s.c)
                .bind(s.price)
                .bind(s.area_id)
                .bind(place.as_ref().and_then(|p| p.section.clone()))
                .bind(place.as_ref().and_then(|p| p.category.clone()))
                .bind(place.as_ref().map(|p| serde_json::to_string(p).expect("a place serializes")));
        }
        query.execute(&mut **tx).await.context("failed to insert seats")?;
    }
    if let Some(venue) = venue {
        let mut first = seats.iter().filter(|s| s.area_id.is_some()).map(|s| s.seat_id);
        for (area_id, area) in (1..).zip(&venue.areas) {
            let _ = first.next();
            let price = venue.categories.iter().find(|c| c.key == area.category).map_or(0, |c| c.price);
            sqlx::query(
                "INSERT INTO areas (event_id, area_id, name, capacity, category, price) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(event_id)
            .bind(area_id)
            .bind(&area.name)
            .bind(area.capacity)
            .bind(&area.category)
            .bind(price)
            .execute(&mut **tx)
            .await
            .context("failed to insert a standing area")?;
        }
    }
    Ok(())
}

/// A venue seat as the seat map shows it.
fn seat_place(venue: &VenueLayout, p: &PlacedSeat) -> SeatPlace {
    let section = venue.sections.get(p.section as usize);
    let flag = |set: bool| set.then_some(true);
    SeatPlace {
        section: section.map(|s| s.name.clone()),
        row: section.and_then(|s| s.rows.get(p.row as usize)).map(|r| r.label.clone()),
        label: Some(p.label.clone()),
        category: Some(p.category.clone()),
        x: Some(p.x),
        y: Some(p.y),
        accessible: flag(p.accessible),
        companion: flag(p.companion),
        restricted_view: flag(p.restricted_view),
    }
}

fn event_from(row: &sqlx::any::AnyRow) -> Event {
    Event {
        id: row.get("id"),
        title: row.get("title"),
        date_time: row.get("date_time"),
        description: row.get("description"),
        rows: row.get("rows_count"),
        cols: row.get("cols_count"),
    }
}

const EVENT_COLUMNS: &str = "id, title, date_time, description, rows_count, cols_count";

pub async fn events(db: &Reader) -> anyhow::Result<Vec<Event>> {
    let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY id"))
        .fetch_all(db)
        .await
        .context("failed to list events")?;
    Ok(rows.iter().map(event_from).collect())
}

pub async fn event(db: &Reader, id: i64) -> anyhow::Result<Option<Event>> {
    let row = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
        .context("failed to read event")?;
    Ok(row.as_ref().map(event_from))
}

pub async fn count_events(db: &Reader) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(db).await.context("failed to count events")
}

/// The whole map at one version, read in one transaction so the two agree: the seats
/// (a venue's with their places), and a venue's categories and standing areas' counts.
pub async fn seat_map(db: &Reader, event_id: i64) -> anyhow::Result<Option<SeatMap>> {
    let mut tx = db.begin().await?;
    let Some(head) = sqlx::query("SELECT rows_count, cols_count, version, categories FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let seats = sqlx::query(
        "SELECT seat_id, r, c, price, status, place FROM seats WHERE event_id = $1 AND area_id IS NULL ORDER BY seat_id",
    )
    .bind(event_id)
    .fetch_all(&mut *tx)
    .await
    .context("failed to read seats")?;
    let categories: Option<String> = head.get("categories");
    let venue = match categories {
        Some(categories) => SeatMapVenue {
            categories: serde_json::from_str::<Vec<Category>>(&categories)?,
            areas: area_counts(&mut tx, event_id).await?,
        },
        None => SeatMapVenue::default(),
    };
    tx.commit().await?;
    Ok(Some(SeatMap {
        rows: head.get("rows_count"),
        cols: head.get("cols_count"),
        event_id,
        version: head.get("version"),
        seats: seats
            .iter()
            .map(|s| Seat {
                id: s.get("seat_id"),
                r: s.get("r"),
                c: s.get("c"),
                price: s.get("price"),
                status: SeatStatus::parse(&s.get::<String, _>("status")).unwrap_or(SeatStatus::Available),
                place: s
                    .get::<Option<String>, _>("place")
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
            })
            .collect(),
        venue,
    }))
}

/// A show's standing areas with the places still available in each.
pub async fn area_counts(tx: &mut Tx, event_id: i64) -> anyhow::Result<Vec<AreaStatus>> {
    let rows = sqlx::query(formatcp!(
        "SELECT a.area_id, a.name, a.capacity, a.price, \
         (SELECT COUNT(*) FROM seats s WHERE s.event_id = a.event_id AND s.area_id = a.area_id AND s.status = {AVAILABLE}) AS available \
         FROM areas a WHERE a.event_id = $1 ORDER BY a.area_id"
    ))
    .bind(event_id)
    .fetch_all(&mut **tx)
    .await
    .context("failed to count standing places")?;
    Ok(rows
        .iter()
        .map(|r| AreaStatus {
            id: r.get("area_id"),
            name: r.get("name"),
            capacity: r.get("capacity"),
            available: r.get("available"),
            price: r.get("price"),
        })
        .collect())
}

/// A standing area's places still available.
pub async fn area_available(tx: &mut Tx, event_id: i64, area_id: i64) -> anyhow::Result<i64> {
    sqlx::query_scalar(formatcp!(
        "SELECT COUNT(*) FROM seats WHERE event_id = $1 AND area_id = $2 AND status = {AVAILABLE}"
    ))
    .bind(event_id)
    .bind(area_id)
    .fetch_one(&mut **tx)
    .await
    .context("failed to count a standing area's places")
}

/// Each standing area of a show with the first and last id of its places (an area's
/// places are numbered in one run).
pub async fn area_ranges(tx: &mut Tx, event_id: i64) -> anyhow::Result<Vec<(i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT area_id, MIN(seat_id) AS lo, MAX(seat_id) AS hi FROM seats \
         WHERE event_id = $1 AND area_id IS NOT NULL GROUP BY area_id",
    )
    .bind(event_id)
    .fetch_all(&mut **tx)
    .await
    .context("failed to read standing areas")?;
    Ok(rows.iter().map(|r| (r.get("area_id"), r.get("lo"), r.get("hi"))).collect())
}

/// A show's seats by state, per section, per category and per standing area.
pub async fn sales(db: &Reader, event_id: i64) -> anyhow::Result<Option<contract::venue::Sales>> {
    use contract::venue::{AreaSales, CategorySales, Sales, SectionSales, Tally};
    let Some(categories) = sqlx::query_scalar::<_, Option<String>>("SELECT categories FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let categories: Vec<Category> = match categories {
        Some(c) => serde_json::from_str(&c)?,
        None => Vec::new(),
    };
    let rows = sqlx::query(
        "SELECT COALESCE(section, '') AS section, COALESCE(category, '') AS category, area_id, status, COUNT(*) AS n \
         FROM seats WHERE event_id = $1 GROUP BY section, category, area_id, status",
    )
    .bind(event_id)
    .fetch_all(db)
    .await
    .context("failed to count sales")?;
    let add = |tally: &mut Tally, status: &str, n: i64| {
        tally.seats += n;
        match SeatStatus::parse(status) {
            Some(SeatStatus::Held) => tally.held += n,
            Some(SeatStatus::Sold) => tally.sold += n,
            _ => tally.available += n,
        }
    };
    let mut sales = Sales { event_id, ..Sales::default() };
    let areas = sqlx::query("SELECT area_id, name, capacity FROM areas WHERE event_id = $1 ORDER BY area_id")
        .bind(event_id)
        .fetch_all(db)
        .await?;
    sales.areas = areas
        .iter()
        .map(|a| AreaSales {
            id: a.get("area_id"),
            name: a.get("name"),
            capacity: a.get("capacity"),
            tally: Tally::default(),
        })
        .collect();
    sales.categories = categories
        .into_iter()
        .map(|c| CategorySales { key: c.key, name: c.name, price: c.price, colour: c.colour, tally: Tally::default() })
        .collect();
    for row in &rows {
        let (section, category): (String, String) = (row.get("section"), row.get("category"));
        let (area, status, n): (Option<i64>, String, i64) = (row.get("area_id"), row.get("status"), row.get("n"));
        if let Some(area) = area {
            if let Some(a) = sales.areas.iter_mut().find(|a| a.id == area) {
                add(&mut a.tally, &status, n);
            }
            continue;
        }
        if !section.is_empty() {
            let at = match sales.sections.iter().position(|s| s.name == section) {
                Some(at) => at,
                None => {
                    sales.sections.push(SectionSales { name: section.clone(), tally: Tally::default() });
                    sales.sections.len() - 1
                }
            };
            add(&mut sales.sections[at].tally, &status, n);
        }
        if let Some(c) = sales.categories.iter_mut().find(|c| c.key == category) {
            add(&mut c.tally, &status, n);
        }
    }
    Ok(Some(sales))
}

/// What a seat map's validator and its stream need without reading the seats: its seat
/// count, version and creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapHead {
    /// Its seats and standing places.
    pub seats: i64,
    pub version: i64,
    pub created_at: i64,
    /// Whether it has standing areas.
    pub areas: bool,
}

pub async fn map_head(db: &Reader, event_id: i64) -> anyhow::Result<Option<MapHead>> {
    let row = sqlx::query(
        "SELECT places, version, created_at, (SELECT COUNT(*) FROM areas a WHERE a.event_id = e.id) AS areas \
         FROM events e WHERE id = $1",
    )
    .bind(event_id)
    .fetch_optional(db)
    .await
    .context("failed to read a map's version")?;
    Ok(row.map(|r| MapHead {
        seats: r.get("places"),
        version: r.get("version"),
        created_at: r.get("created_at"),
        areas: r.get::<i64, _>("areas") > 0,
    }))
}

/// What changes whenever the list of events does (events are only ever added): their
/// count, the highest id and the latest creation time.
pub async fn events_head(db: &Reader) -> anyhow::Result<(i64, i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last_id, COALESCE(MAX(created_at), 0) AS last_created FROM events",
    )
    .fetch_one(db)
    .await
    .context("failed to read the events' version")?;
    Ok((row.get("n"), row.get("last_id"), row.get("last_created")))
}

/// At most `limit` changes of a map after version `after` and up to `until`, oldest
/// first. Versions are contiguous, and pruning removes only the oldest, so a first
/// change other than `after + 1` means the ones between are no longer kept.
pub async fn changes_between(
    db: &Reader,
    event_id: i64,
    after: i64,
    until: i64,
    limit: i64,
) -> anyhow::Result<Vec<SeatUpdate>> {
    let rows = sqlx::query(
        "SELECT version, seat_id, status FROM seat_changes WHERE event_id = $1 AND version > $2 AND version <= $3 \
         ORDER BY version LIMIT $4",
    )
    .bind(event_id)
    .bind(after)
    .bind(until)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("failed to read seat changes")?;
    Ok(rows
        .iter()
        .map(|r| SeatUpdate {
            seat_id: r.get("seat_id"),
            version: r.get("version"),
            status: SeatStatus::parse(&r.get::<String, _>("status")).unwrap_or(SeatStatus::Available),
        })
        .collect())
}

/// A show's history is pruned once every this many changes.
pub const PRUNE_EVERY: i64 = 256;

/// Forgets the changes of a show that a reconnecting client would never be sent: all
/// but its last `rows × cols` (missing more than that, a client gets `INIT` instead,
/// which costs less). Always keeps the latest change.
pub async fn prune_changes(tx: &mut Tx, event_id: i64, version: i64) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM seat_changes WHERE event_id = $1 \
         AND version < $2 - (SELECT rows_count * cols_count FROM events WHERE id = $1)",
    )
    .bind(event_id)
    .bind(version)
    .execute(&mut **tx)
    .await
    .context("failed to prune seat changes")?
    .rows_affected())
}

/// Applies a seat change from the reservation module if it is newer than what the map
/// has; returns the map version it got, or `None` for a stale or unknown seat. Every
/// [`PRUNE_EVERY`] versions, the show's history is pruned ([`prune_changes`]).
pub async fn apply_seat_change(
    tx: &mut Tx,
    event_id: i64,
    seat_id: i64,
    status: SeatStatus,
    source_version: i64,
) -> anyhow::Result<Option<i64>> {
    let version = record_seat_change(tx, event_id, seat_id, status, source_version).await?;
    if let Some(version) = version.filter(|v| v % PRUNE_EVERY == 0) {
        prune_changes(tx, event_id, version).await?;
    }
    Ok(version)
}

async fn record_seat_change(
    tx: &mut Tx,
    event_id: i64,
    seat_id: i64,
    status: SeatStatus,
    source_version: i64,
) -> anyhow::Result<Option<i64>> {
    if tx.backend() == runtime::db::Backend::Postgres {
        // The same three steps in one round trip: on PostgreSQL each statement is one, and
        // the catalog takes two seat changes per purchase.
        return sqlx::query_scalar(
            "WITH changed AS (UPDATE seats SET status = $1, source_version = $2 \
             WHERE event_id = $3 AND seat_id = $4 AND source_version < $2 RETURNING seat_id), \
             bumped AS (UPDATE events SET version = version + 1 WHERE id = $3 AND EXISTS (SELECT 1 FROM changed) \
             RETURNING version) \
             INSERT INTO seat_changes (event_id, version, seat_id, status) \
             SELECT $3::BIGINT, version, $4::BIGINT, $1::TEXT FROM bumped RETURNING version",
        )
        .bind(status.as_str())
        .bind(source_version)
        .bind(event_id)
        .bind(seat_id)
        .fetch_optional(&mut **tx)
        .await
        .context("failed to apply a seat change");
    }
    let changed = sqlx::query(
        "UPDATE seats SET status = $1, source_version = $2 WHERE event_id = $3 AND seat_id = $4 AND source_version < $2",
    )
    .bind(status.as_str())
    .bind(source_version)
    .bind(event_id)
    .bind(seat_id)
    .execute(&mut **tx)
    .await
    .context("failed to update seat")?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    let version: i64 = sqlx::query_scalar("UPDATE events SET version = version + 1 WHERE id = $1 RETURNING version")
        .bind(event_id)
        .fetch_one(&mut **tx)
        .await
        .context("failed to bump map version")?;
    sqlx::query("INSERT INTO seat_changes (event_id, version, seat_id, status) VALUES ($1, $2, $3, $4)")
        .bind(event_id)
        .bind(version)
        .bind(seat_id)
        .bind(status.as_str())
        .execute(&mut **tx)
        .await
        .context("failed to record seat change")?;
    Ok(Some(version))
}

pub async fn events_with_wrong_seat_count(db: &Reader) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e WHERE places <> (SELECT COUNT(*) FROM seats s WHERE s.event_id = e.id)",
    )
    .fetch_one(db)
    .await
    .context("failed to check seat counts")
}

/// Standing areas whose places are not as many as their capacity: what keeps an area from
/// ever selling more than it holds.
pub async fn areas_with_wrong_capacity(db: &Reader) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM areas a WHERE capacity <> \
         (SELECT COUNT(*) FROM seats s WHERE s.event_id = a.event_id AND s.area_id = a.area_id)",
    )
    .fetch_one(db)
    .await
    .context("failed to check standing areas")
}

pub async fn events_with_version_drift(db: &Reader) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e WHERE version <> COALESCE((SELECT MAX(version) FROM seat_changes c WHERE c.event_id = e.id), 0)",
    )
    .fetch_one(db)
    .await
    .context("failed to check map versions")
}

/// Seats that are not AVAILABLE, for the cross-module audit.
pub async fn taken_seats(db: &Reader) -> anyhow::Result<Vec<(i64, i64, String)>> {
    let rows = sqlx::query(formatcp!(
        "SELECT event_id, seat_id, status FROM seats WHERE status <> {AVAILABLE} ORDER BY event_id, seat_id"
    ))
    .fetch_all(db)
    .await
    .context("failed to read taken seats")?;
    Ok(rows.iter().map(|r| (r.get("event_id"), r.get("seat_id"), r.get("status"))).collect())
}

#[cfg(test)]
mod tests {
    use contract::api::{CreateEvent, SeatStatus};
    use runtime::db::{Db, Durability};

    use super::{PRUNE_EVERY, apply_seat_change, changes_between, insert_event, insert_seats, map_head};

    /// A seat change takes effect only when newer than the map's, and each change that
    /// does gets the next map version and a line in the history — on both engines (on
    /// PostgreSQL the steps are one statement).
    async fn seat_changes_apply_once_and_in_order(db: Db) {
        let spec = CreateEvent {
            title: "t".into(),
            date_time: "2026-12-01T20:00:00".into(),
            description: String::new(),
            rows: 1,
            cols: 2,
            base_price: 1,
            column_step: 0,
            venue: None,
            on_sale_at: None,
            waiting_room: None,
        };
        let mut tx = db.begin().await.unwrap();
        let show = insert_event(&mut tx, &spec, &crate::Layout::grid(&spec, |i| i + 1)).await.unwrap();
        let seats = (1..=2).map(|seat_id| contract::events::SeatSpec {
            seat_id,
            r: 1,
            c: seat_id,
            price: 1,
            place: None,
            area_id: None,
        });
        insert_seats(&mut tx, show, &seats.collect::<Vec<_>>(), None).await.unwrap();
        let mut applied = Vec::new();
        for (seat, status, source_version) in [
            (1, SeatStatus::Held, 1),
            (1, SeatStatus::Held, 1),      // the same change again
            (1, SeatStatus::Available, 0), // older than the map's
            (2, SeatStatus::Held, 5),
            (1, SeatStatus::Sold, 2),
            (9, SeatStatus::Sold, 1), // no such seat
        ] {
            applied.push(apply_seat_change(&mut tx, show, seat, status, source_version).await.unwrap());
        }
        tx.commit().await.unwrap();
        assert_eq!(applied, [Some(1), None, None, Some(2), Some(3), None]);
        let history: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT version, seat_id, status FROM seat_changes WHERE event_id = $1 ORDER BY version")
                .bind(show)
                .fetch_all(db.reader())
                .await
                .unwrap();
        assert_eq!(history, [(1, 1, "HELD".into()), (2, 2, "HELD".into()), (3, 1, "SOLD".into())]);
        let map: Vec<(i64, String)> =
            sqlx::query_as("SELECT seat_id, status FROM seats WHERE event_id = $1 ORDER BY seat_id")
                .bind(show)
                .fetch_all(db.reader())
                .await
                .unwrap();
        assert_eq!(map, [(1, "SOLD".into()), (2, "HELD".into())]);
    }

    /// A show's history keeps what a reconnecting client can be sent — its last rows × cols
    /// changes at least, and the latest — and no more than a pruning period beyond that;
    /// it is read a bounded page at a time.
    async fn the_history_stays_bounded(db: Db) {
        let spec = CreateEvent {
            title: "t".into(),
            date_time: "2026-12-01T20:00:00".into(),
            description: String::new(),
            rows: 2,
            cols: 5,
            base_price: 1,
            column_step: 0,
            venue: None,
            on_sale_at: None,
            waiting_room: None,
        };
        let seats = 10;
        let mut tx = db.begin().await.unwrap();
        let show = insert_event(&mut tx, &spec, &crate::Layout::grid(&spec, |i| i + 1)).await.unwrap();
        let specs = (1..=seats).map(|seat_id| contract::events::SeatSpec {
            seat_id,
            r: 1,
            c: seat_id,
            price: 1,
            place: None,
            area_id: None,
        });
        insert_seats(&mut tx, show, &specs.collect::<Vec<_>>(), None).await.unwrap();
        tx.commit().await.unwrap();
        let changes = 3 * PRUNE_EVERY + 7;
        let kept = async || -> (i64, i64, i64) {
            sqlx::query_as("SELECT COUNT(*), MIN(version), MAX(version) FROM seat_changes WHERE event_id = $1")
                .bind(show)
                .fetch_one(db.reader())
                .await
                .unwrap()
        };
        for version in 1..=changes {
            let mut tx = db.begin().await.unwrap();
            let status = if version % 2 == 1 { SeatStatus::Held } else { SeatStatus::Available };
            let applied = apply_seat_change(&mut tx, show, 1 + version % seats, status, version).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(applied, Some(version));
            let (count, oldest, latest) = kept().await;
            assert_eq!(latest, version);
            assert!(count <= seats + PRUNE_EVERY + 1, "{count} changes kept after {version}");
            assert!(oldest <= (version - seats).max(1), "change {} pruned too early at {version}", version - seats);
        }
        let (count, oldest, _) = kept().await;
        assert_eq!((count, oldest), (changes - 3 * PRUNE_EVERY + seats + 1, 3 * PRUNE_EVERY - seats));
        let head = map_head(db.reader(), show).await.unwrap().unwrap();
        assert_eq!((head.seats, head.version), (seats, changes));
        // A bounded page, oldest first, up to the version asked for.
        let page = changes_between(db.reader(), show, changes - 8, changes - 2, 4).await.unwrap();
        assert_eq!(page.iter().map(|u| u.version).collect::<Vec<_>>(), (changes - 7..=changes - 4).collect::<Vec<_>>());
        let rest = changes_between(db.reader(), show, changes - 4, changes - 2, 4).await.unwrap();
        assert_eq!(rest.iter().map(|u| u.version).collect::<Vec<_>>(), [changes - 3, changes - 2]);
    }

    async fn postgres(name: &str) -> Option<Db> {
        let server = runtime::testing::require_env("BOXOFFICE_TEST_POSTGRES", "PostgreSQL")?;
        let name = format!("catalog_{name}_{}", uuid::Uuid::new_v4().simple());
        Some(Db::open_postgres(&server, &name, 2, &crate::MIGRATIONS).await.unwrap())
    }

    async fn sqlite(dir: &tempfile::TempDir) -> Db {
        Db::open_sqlite(&dir.path().join("c.db"), Durability::Normal, &crate::MIGRATIONS).await.unwrap()
    }

    #[tokio::test]
    async fn history_bounded_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        the_history_stays_bounded(sqlite(&dir).await).await;
    }

    #[tokio::test]
    async fn history_bounded_on_postgres() {
        if let Some(db) = postgres("history").await {
            the_history_stays_bounded(db).await;
        }
    }

    #[tokio::test]
    async fn seat_changes_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("c.db"), Durability::Normal, &crate::MIGRATIONS).await.unwrap();
        seat_changes_apply_once_and_in_order(db).await;
    }

    #[tokio::test]
    async fn seat_changes_on_postgres() {
        let Some(server) = runtime::testing::require_env("BOXOFFICE_TEST_POSTGRES", "PostgreSQL") else { return };
        let name = format!("catalog_unit_{}", uuid::Uuid::new_v4().simple());
        let db = Db::open_postgres(&server, &name, 2, &crate::MIGRATIONS).await.unwrap();
        seat_changes_apply_once_and_in_order(db).await;
    }
}
