//! The tickets module's SQL (the same on SQLite and PostgreSQL).

use anyhow::Context;
use const_format::formatcp;
use contract::Millis;
use ed25519_dalek::{SigningKey, VerifyingKey};
use runtime::Tx;
use runtime::db::{Migrations, Reader};
use runtime::health::Check;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Answer, PublicKey, REVOKED, Scan, Ticket, USED, VALID, iso, token};

pub static MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

/// An order's state as this module keeps it.
pub const CREATED: &str = "CREATED";
pub const CONFIRMED: &str = "CONFIRMED";
pub const CANCELLED: &str = "CANCELLED";

/// A scan being answered (its row claimed, its answer not written yet).
const PENDING: &str = "PENDING";

const TICKET: &str = "SELECT t.ticket_id, t.event_id, t.seat_id, t.status, t.token, t.used_at, t.used_gate, s.label \
                      FROM tickets t LEFT JOIN seats s ON s.event_id = t.event_id AND s.seat_id = t.seat_id";

fn ticket_row(row: &AnyRow) -> anyhow::Result<(Ticket, Option<(Millis, String)>)> {
    let seat_id: i64 = row.try_get("seat_id")?;
    let label: Option<String> = row.try_get("label")?;
    let used_at: Option<Millis> = row.try_get("used_at")?;
    let used_gate: Option<String> = row.try_get("used_gate")?;
    let ticket = Ticket {
        ticket_id: row.try_get("ticket_id")?,
        event_id: row.try_get("event_id")?,
        seat_id,
        label: label.unwrap_or_else(|| format!("Seat {seat_id}")),
        status: row.try_get("status")?,
        token: Some(row.try_get("token")?),
    };
    Ok((ticket, used_at.zip(used_gate)))
}

// ---- keys ---------------------------------------------------------------------

/// The show of key `kid`, the key, and whether it signs (rather than retired).
pub async fn public_key(db: &Reader, kid: &str) -> anyhow::Result<Option<(i64, VerifyingKey, bool)>> {
    let row = sqlx::query("SELECT event_id, public_key, active FROM keys WHERE kid = $1")
        .bind(kid)
        .fetch_optional(db)
        .await
        .context("failed to read a key")?;
    let Some(row) = row else { return Ok(None) };
    let public: String = row.try_get("public_key")?;
    let bytes = token::decode_key(&public).context("a stored public key is 32 bytes")?;
    let active = row.try_get::<i64, _>("active")? != 0;
    Ok(Some((row.try_get("event_id")?, VerifyingKey::from_bytes(&bytes)?, active)))
}

pub async fn public_keys(db: &Reader, event_id: i64) -> anyhow::Result<Vec<PublicKey>> {
    let rows =
        sqlx::query("SELECT kid, public_key, active FROM keys WHERE event_id = $1 ORDER BY created_at DESC, kid")
            .bind(event_id)
            .fetch_all(db)
            .await
            .context("failed to read the keys")?;
    rows.iter()
        .map(|row| {
            Ok(PublicKey {
                kid: row.try_get("kid")?,
                alg: "Ed25519",
                public_key: row.try_get("public_key")?,
                active: row.try_get::<i64, _>("active")? != 0,
            })
        })
        .collect()
}

/// Adds a new key for the show, the one that signs if `active`; none if an active one
/// exists already and this one was to be active.
async fn add_key(tx: &mut Tx, event_id: i64, active: bool, now: Millis) -> anyhow::Result<String> {
    let key = token::generate();
    let kid = token::kid(&key.verifying_key());
    sqlx::query(
        "INSERT INTO keys (kid, event_id, secret_key, public_key, active, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&kid)
    .bind(event_id)
    .bind(token::encode_key(&key.to_bytes()))
    .bind(token::encode_key(key.verifying_key().as_bytes()))
    .bind(i64::from(active))
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("failed to add a key")?;
    Ok(kid)
}

/// The show's signing key, made first if it has none.
/// Signing keys by key id, as made from their stored secrets: a key id names one secret
/// for good, so a key found here is the stored one. Which key is a show's active one is
/// still read in the transaction (a rotation by another replica is seen at once); what
/// this saves is deriving the key (a scalar multiplication) for every order.
static SIGNERS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, SigningKey>>> =
    std::sync::LazyLock::new(Default::default);

pub async fn signing_key(tx: &mut Tx, event_id: i64, now: Millis) -> anyhow::Result<(String, SigningKey)> {
    for _ in 0..2 {
        let row = sqlx::query("SELECT kid, secret_key FROM keys WHERE event_id = $1 AND active = 1")
            .bind(event_id)
            .fetch_optional(&mut **tx)
            .await
            .context("failed to read the signing key")?;
        if let Some(row) = row {
            let kid: String = row.try_get("kid")?;
            if let Some(key) = SIGNERS.lock().expect("signers lock").get(&kid) {
                return Ok((kid, key.clone()));
            }
            let secret: String = row.try_get("secret_key")?;
            let bytes = token::decode_key(&secret).context("a stored secret key is 32 bytes")?;
            let key = SigningKey::from_bytes(&bytes);
            SIGNERS.lock().expect("signers lock").insert(kid.clone(), key.clone());
            return Ok((kid, key));
        }
        // Another transaction may add one at the same moment: the unique index on the
        // active key keeps one, and the read again finds it.
        add_key(tx, event_id, true, now).await?;
    }
    anyhow::bail!("no signing key for show {event_id}")
}

pub async fn rotate_key(tx: &mut Tx, event_id: i64, now: Millis) -> anyhow::Result<String> {
    sqlx::query("UPDATE keys SET active = 0 WHERE event_id = $1 AND active = 1")
        .bind(event_id)
        .execute(&mut **tx)
        .await
        .context("failed to retire a key")?;
    add_key(tx, event_id, true, now).await?;
    let (kid, key) = signing_key(tx, event_id, now).await?;
    let rows = sqlx::query(formatcp!(
        "SELECT ticket_id, seat_id, issued_at FROM tickets WHERE event_id = $1 AND status <> '{REVOKED}'"
    ))
    .bind(event_id)
    .fetch_all(&mut **tx)
    .await
    .context("failed to read the tickets to sign again")?;
    for row in rows {
        let ticket_id: String = row.try_get("ticket_id")?;
        let issued_at: Millis = row.try_get("issued_at")?;
        let claims = token::Claims {
            tid: ticket_id.clone(),
            ev: event_id,
            seat: row.try_get("seat_id")?,
            nbf: issued_at / 1000,
        };
        sqlx::query("UPDATE tickets SET kid = $1, token = $2 WHERE ticket_id = $3")
            .bind(&kid)
            .bind(token::sign(&key, &kid, &claims))
            .bind(&ticket_id)
            .execute(&mut **tx)
            .await
            .context("failed to sign a ticket again")?;
    }
    Ok(kid)
}

// ---- what the events tell ------------------------------------------------------

pub async fn add_seats(tx: &mut Tx, event_id: i64, seats: &[(i64, String)]) -> anyhow::Result<()> {
    for chunk in seats.chunks(300) {
        let values: Vec<String> =
            (0..chunk.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
        let sql =
            format!("INSERT INTO seats (event_id, seat_id, label) VALUES {} ON CONFLICT DO NOTHING", values.join(", "));
        let mut query = sqlx::query(&sql);
        for (seat_id, label) in chunk {
            query = query.bind(event_id).bind(*seat_id).bind(label.as_str());
        }
        query.execute(&mut **tx).await.context("failed to add seat labels")?;
    }
    Ok(())
}

/// A show's title and date, as first announced.
pub async fn add_show(tx: &mut Tx, event_id: i64, title: &str, date_time: &str) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO shows (event_id, title, date_time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(event_id)
        .bind(title)
        .bind(date_time)
        .execute(&mut **tx)
        .await
        .context("failed to add a show")?;
    Ok(())
}

/// A show's title and date, if it was announced with them.
pub async fn show(db: &Reader, event_id: i64) -> anyhow::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT title, date_time FROM shows WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(db)
        .await
        .context("failed to read a show")
}

pub struct NewOrder<'a> {
    pub order_id: &'a str,
    pub order_no: Option<i64>,
    pub event_id: i64,
    pub buyer: &'a str,
    pub seat_ids: &'a [i64],
}

pub async fn add_order(tx: &mut Tx, o: &NewOrder<'_>, now: Millis) -> anyhow::Result<()> {
    sqlx::query(formatcp!(
        "INSERT INTO orders (order_id, order_no, event_id, buyer, seat_ids, status, updated_at) \
         VALUES ($1, $2, $3, $4, $5, '{CREATED}', $6) ON CONFLICT DO NOTHING"
    ))
    .bind(o.order_id)
    .bind(o.order_no)
    .bind(o.event_id)
    .bind(o.buyer)
    .bind(serde_json::to_string(o.seat_ids)?)
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("failed to add an order")?;
    Ok(())
}

pub async fn number_order(tx: &mut Tx, order_id: &str, order_no: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE orders SET order_no = $1 WHERE order_id = $2")
        .bind(order_no)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks the order CONFIRMED; its show and seats if it moved (from CREATED).
pub async fn confirm_order(
    tx: &mut Tx,
    order_id: &str,
    order_no: Option<i64>,
    now: Millis,
) -> anyhow::Result<Option<(i64, Vec<i64>)>> {
    let row = sqlx::query(formatcp!(
        "UPDATE orders SET status = '{CONFIRMED}', order_no = COALESCE(order_no, $1), updated_at = $2 \
         WHERE order_id = $3 AND status = '{CREATED}' RETURNING event_id, seat_ids"
    ))
    .bind(order_no)
    .bind(now)
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await
    .context("failed to confirm an order")?;
    let Some(row) = row else { return Ok(None) };
    let seats: String = row.try_get("seat_ids")?;
    Ok(Some((row.try_get("event_id")?, serde_json::from_str(&seats)?)))
}

/// Writes a ticket; false if the order's seat has one already.
pub async fn add_ticket(
    tx: &mut Tx,
    (ticket_id, order_id): (&str, &str),
    (event_id, seat_id): (i64, i64),
    (kid, token): (&str, &str),
    now: Millis,
) -> anyhow::Result<bool> {
    let n = sqlx::query(formatcp!(
        "INSERT INTO tickets (ticket_id, order_id, event_id, seat_id, kid, token, status, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '{VALID}', $7) ON CONFLICT DO NOTHING"
    ))
    .bind(ticket_id)
    .bind(order_id)
    .bind(event_id)
    .bind(seat_id)
    .bind(kid)
    .bind(token)
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("failed to issue a ticket")?
    .rows_affected();
    Ok(n == 1)
}

/// Marks the order CANCELLED and revokes its tickets; how many were revoked.
pub async fn cancel_order(tx: &mut Tx, order_id: &str, now: Millis) -> anyhow::Result<u64> {
    sqlx::query(formatcp!("UPDATE orders SET status = '{CANCELLED}', updated_at = $1 WHERE order_id = $2"))
        .bind(now)
        .bind(order_id)
        .execute(&mut **tx)
        .await
        .context("failed to cancel an order")?;
    revoke(tx, "order_id = $2", order_id, now).await
}

/// Revokes every ticket of a show issued at or before `before` (a reset).
pub async fn revoke_show(tx: &mut Tx, event_id: i64, before: Millis, now: Millis) -> anyhow::Result<u64> {
    Ok(sqlx::query(formatcp!(
        "UPDATE tickets SET status = '{REVOKED}', revoked_at = $1 WHERE event_id = $2 AND issued_at <= $3 \
         AND status <> '{REVOKED}'"
    ))
    .bind(now)
    .bind(event_id)
    .bind(before)
    .execute(&mut **tx)
    .await
    .context("failed to revoke a show's tickets")?
    .rows_affected())
}

async fn revoke(tx: &mut Tx, filter: &str, value: &str, now: Millis) -> anyhow::Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE tickets SET status = '{REVOKED}', revoked_at = $1 WHERE {filter} AND status <> '{REVOKED}'"
    ))
    .bind(now)
    .bind(value)
    .execute(&mut **tx)
    .await
    .context("failed to revoke tickets")?
    .rows_affected())
}

// ---- buyers -------------------------------------------------------------------

/// The internal reference of the buyer's order numbered `order_no`.
pub async fn order_of(db: &Reader, buyer: &str, order_no: i64) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT order_id FROM orders WHERE order_no = $1 AND buyer = $2")
        .bind(order_no)
        .bind(buyer)
        .fetch_optional(db)
        .await
        .context("failed to read an order")
}

pub async fn tickets_of_order(db: &Reader, order_id: &str) -> anyhow::Result<Vec<Ticket>> {
    let rows = sqlx::query(&format!("{TICKET} WHERE t.order_id = $1 ORDER BY t.seat_id"))
        .bind(order_id)
        .fetch_all(db)
        .await
        .context("failed to read tickets")?;
    rows.iter().map(|row| ticket_row(row).map(|(t, _)| t)).collect()
}

// ---- the door -----------------------------------------------------------------

pub async fn ticket(tx: &mut Tx, ticket_id: &str) -> anyhow::Result<Option<(Ticket, Option<(Millis, String)>)>> {
    let row = sqlx::query(&format!("{TICKET} WHERE t.ticket_id = $1"))
        .bind(ticket_id)
        .fetch_optional(&mut **tx)
        .await
        .context("failed to read a ticket")?;
    row.as_ref()
        .map(ticket_row)
        .transpose()
        .map(|found| found.map(|(ticket, first)| (Ticket { token: None, ..ticket }, first)))
}

/// Lets the ticket in if it is VALID: the one conditional UPDATE that redeems it once.
pub async fn use_ticket(tx: &mut Tx, ticket_id: &str, at: Millis, gate: &str) -> anyhow::Result<bool> {
    let n = sqlx::query(formatcp!(
        "UPDATE tickets SET status = '{USED}', used_at = $1, used_gate = $2 WHERE ticket_id = $3 AND status = '{VALID}'"
    ))
    .bind(at)
    .bind(gate)
    .bind(ticket_id)
    .execute(&mut **tx)
    .await
    .context("failed to check a ticket in")?
    .rows_affected();
    Ok(n == 1)
}

pub async fn scan_answer(db: &Reader, scan_id: &str) -> anyhow::Result<Option<Answer>> {
    let answer: Option<String> =
        sqlx::query_scalar(formatcp!("SELECT answer FROM scans WHERE scan_id = $1 AND result <> '{PENDING}'"))
            .bind(scan_id)
            .fetch_optional(db)
            .await
            .context("failed to read a scan")?;
    answer.map(|a| serde_json::from_str(&a).context("a stored answer decodes")).transpose()
}

/// Claims the scan's id for this transaction; false if it was recorded already.
pub async fn claim_scan(tx: &mut Tx, scan: &Scan<'_>) -> anyhow::Result<bool> {
    let n = sqlx::query(formatcp!(
        "INSERT INTO scans (scan_id, gate, scanned_at, offline, result, answer) VALUES ($1, $2, $3, $4, '{PENDING}', '') \
         ON CONFLICT DO NOTHING"
    ))
    .bind(scan.scan_id)
    .bind(scan.gate)
    .bind(scan.at)
    .bind(i64::from(scan.offline))
    .execute(&mut **tx)
    .await
    .context("failed to record a scan")?
    .rows_affected();
    Ok(n == 1)
}

pub async fn record_scan(tx: &mut Tx, scan_id: &str, answer: &Answer, event_id: Option<i64>) -> anyhow::Result<()> {
    sqlx::query("UPDATE scans SET result = $1, answer = $2, ticket_id = $3, event_id = $4 WHERE scan_id = $5")
        .bind(answer.result.as_str())
        .bind(serde_json::to_string(answer)?)
        .bind(answer.ticket.as_ref().map(|t| t.ticket_id.as_str()))
        .bind(event_id)
        .bind(scan_id)
        .execute(&mut **tx)
        .await
        .context("failed to record a scan's answer")?;
    Ok(())
}

/// A show's tickets revoked, and those in (when, at which gate).
pub async fn bundle(db: &Reader, event_id: i64) -> anyhow::Result<(Vec<String>, Vec<Value>)> {
    let revoked = sqlx::query_scalar(formatcp!(
        "SELECT ticket_id FROM tickets WHERE event_id = $1 AND status = '{REVOKED}' ORDER BY ticket_id"
    ))
    .bind(event_id)
    .fetch_all(db)
    .await
    .context("failed to read revoked tickets")?;
    let rows = sqlx::query(formatcp!(
        "SELECT ticket_id, used_at, used_gate FROM tickets WHERE event_id = $1 AND status = '{USED}' ORDER BY ticket_id"
    ))
    .bind(event_id)
    .fetch_all(db)
    .await
    .context("failed to read used tickets")?;
    let used = rows
        .iter()
        .map(|row| {
            let at: Option<Millis> = row.try_get("used_at")?;
            Ok(json!({
                "ticketId": row.try_get::<String, _>("ticket_id")?,
                "usedAt": at.map(iso),
                "gate": row.try_get::<Option<String>, _>("used_gate")?,
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((revoked, used))
}

/// Offline admissions of tickets let in elsewhere first.
pub async fn conflicts(db: &Reader, event_id: i64) -> anyhow::Result<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT s.scan_id, s.ticket_id, s.gate, s.scanned_at, t.used_at, t.used_gate, t.seat_id FROM scans s \
         JOIN tickets t ON t.ticket_id = s.ticket_id WHERE s.event_id = $1 AND s.result = 'CONFLICT' \
         ORDER BY s.scanned_at, s.scan_id",
    )
    .bind(event_id)
    .fetch_all(db)
    .await
    .context("failed to read conflicts")?;
    rows.iter()
        .map(|row| {
            Ok(json!({
                "scanId": row.try_get::<String, _>("scan_id")?,
                "ticketId": row.try_get::<String, _>("ticket_id")?,
                "seatId": row.try_get::<i64, _>("seat_id")?,
                "gate": row.try_get::<String, _>("gate")?,
                "scannedAt": iso(row.try_get("scanned_at")?),
                "firstGate": row.try_get::<Option<String>, _>("used_gate")?,
                "firstUsedAt": row.try_get::<Option<Millis>, _>("used_at")?.map(iso),
            }))
        })
        .collect()
}

// ---- the audit ----------------------------------------------------------------

pub async fn audit_view(db: &Reader) -> anyhow::Result<Value> {
    let rows = sqlx::query(
        "SELECT t.ticket_id, t.order_id, o.order_no, t.event_id, t.seat_id, t.status FROM tickets t \
         LEFT JOIN orders o ON o.order_id = t.order_id ORDER BY t.order_id, t.seat_id",
    )
    .fetch_all(db)
    .await
    .context("failed to read tickets")?;
    let tickets = rows
        .iter()
        .map(|row| {
            Ok(json!({
                "ticketId": row.try_get::<String, _>("ticket_id")?,
                "orderRef": row.try_get::<String, _>("order_id")?,
                "orderId": row.try_get::<Option<i64>, _>("order_no")?,
                "eventId": row.try_get::<i64, _>("event_id")?,
                "seatId": row.try_get::<i64, _>("seat_id")?,
                "status": row.try_get::<String, _>("status")?,
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rows = sqlx::query(
        "SELECT ticket_id, COUNT(*) AS n FROM scans WHERE result IN ('ADMITTED', 'STOOD') GROUP BY ticket_id",
    )
    .fetch_all(db)
    .await
    .context("failed to read check-ins")?;
    let checkins = rows
        .iter()
        .map(|row| {
            Ok(json!({
                "ticketId": row.try_get::<Option<String>, _>("ticket_id")?,
                "admissions": row.try_get::<i64, _>("n")?,
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({ "tickets": tickets, "checkins": checkins }))
}

pub async fn consistency(db: &Reader) -> anyhow::Result<Vec<Check>> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await.context("failed to run a consistency check")
    };
    let missing = count(formatcp!(
        "SELECT COUNT(*) FROM orders o WHERE o.status = '{CONFIRMED}' AND NOT EXISTS \
         (SELECT 1 FROM tickets t WHERE t.order_id = o.order_id)"
    ))
    .await?;
    let valid_cancelled = count(formatcp!(
        "SELECT COUNT(*) FROM tickets t JOIN orders o ON o.order_id = t.order_id \
         WHERE o.status = '{CANCELLED}' AND t.status <> '{REVOKED}'"
    ))
    .await?;
    let twice = count(
        "SELECT COUNT(*) FROM (SELECT ticket_id FROM scans WHERE result = 'ADMITTED' OR result = 'STOOD' \
         GROUP BY ticket_id HAVING COUNT(*) > 1) x",
    )
    .await?;
    let unknown = count(
        "SELECT COUNT(*) FROM scans s WHERE s.ticket_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM tickets t WHERE t.ticket_id = s.ticket_id)",
    )
    .await?;
    Ok(vec![
        Check::count("confirmed_orders_have_tickets", missing, "confirmed orders without tickets"),
        Check::count(
            "cancelled_orders_have_no_valid_tickets",
            valid_cancelled,
            "tickets of cancelled orders not revoked",
        ),
        Check::count("tickets_admitted_once", twice, "tickets admitted more than once"),
        Check::count("checkins_name_tickets_that_exist", unknown, "scans of tickets that do not exist"),
    ])
}
