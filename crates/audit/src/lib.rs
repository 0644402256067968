//! The audit: every invariant of DESIGN.md checked across all modules of a running
//! boxoffice, from the outside, over HTTP.
//!
//! Each module answers only for its own tables (`/actuator/consistency`); only by
//! putting their snapshots side by side (the operator's `/ticketing/api/admin/audit/…`
//! endpoints) can one see a seat sold to an order that was cancelled, or money kept for
//! an order without seats. [`audit`] first waits for in-flight orders to settle, then
//! [`judge`]s a [`Snapshot`]. It depends on the contract and an HTTP client, not on the
//! server: `boxoffice audit` ([`AuditArgs`], [`run`]), the load generator's end-of-run
//! check and the integration tests all call it.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

// The flags of `boxoffice audit` (no doc comment: the subcommand's help is its own).
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Base URL of the boxoffice to audit.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The operator's bearer token.
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Base URL of each module when they run in separate processes (default: --url).
    #[arg(long)]
    pub catalog_url: Option<String>,
    #[arg(long)]
    pub reservation_url: Option<String>,
    #[arg(long)]
    pub order_url: Option<String>,
    #[arg(long)]
    pub payment_url: Option<String>,
    /// The tickets module's process, when it runs alone (default: whichever of the
    /// others runs it; none, and the tickets are not judged).
    #[arg(long)]
    pub tickets_url: Option<String>,
    /// How long to wait for in-flight orders to settle before judging, in seconds.
    #[arg(long, default_value_t = 30)]
    pub settle_seconds: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedSeat {
    pub event_id: i64,
    pub seat_id: i64,
    pub status: String,
    pub order_ref: Option<String>,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSeat {
    pub event_id: i64,
    pub seat_id: i64,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRow {
    /// The public number (`orderId`).
    pub order_id: i64,
    /// The internal reference the modules join on.
    pub order_ref: String,
    pub event_id: i64,
    pub seat_ids: Vec<i64>,
    pub amount: i64,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRow {
    pub order_ref: String,
    /// The order's public number as the payment module knows it.
    #[serde(default)]
    pub order_id: Option<i64>,
    pub amount: i64,
    pub status: String,
    /// A charge of a FAILED payment is still to be voided at the gateway.
    #[serde(default)]
    pub void_requested: bool,
    /// What the gateway holds for the payment, when it can tell.
    #[serde(default)]
    pub gateway_kept: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketRow {
    pub ticket_id: String,
    pub order_ref: String,
    pub event_id: i64,
    pub seat_id: i64,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckInRow {
    pub ticket_id: Option<String>,
    pub admissions: i64,
}

/// The tickets module's view: every ticket, and how often each was let in.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TicketSnapshot {
    pub tickets: Vec<TicketRow>,
    pub checkins: Vec<CheckInRow>,
}

/// What every module reported, at about one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub reserved: Vec<ReservedSeat>,
    pub sweep_interval_ms: i64,
    pub catalog: Vec<CatalogSeat>,
    pub orders: Vec<OrderRow>,
    pub payments: Vec<PaymentRow>,
    /// The tickets module's, when a process the audit reads runs it.
    pub tickets: Option<TicketSnapshot>,
    /// Names of module checks that failed, with their detail.
    pub failed_checks: Vec<String>,
    pub now: i64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub orders: usize,
    pub confirmed: usize,
    pub cancelled: usize,
    pub seats_sold: usize,
    /// The tickets judged; `None` when no process the audit read runs the tickets module.
    pub tickets: Option<usize>,
    pub violations: Vec<String>,
}

/// Judges a snapshot; every string is one violation, naming what it is about.
pub fn judge(s: &Snapshot) -> Report {
    let mut v = Vec::new();
    let orders: HashMap<&str, &OrderRow> = s.orders.iter().map(|o| (o.order_ref.as_str(), o)).collect();
    let mut seats_of: HashMap<&str, Vec<&ReservedSeat>> = HashMap::new();
    for seat in &s.reserved {
        if let Some(order_ref) = &seat.order_ref {
            seats_of.entry(order_ref).or_default().push(seat);
        }
    }
    let mut payments_of: HashMap<&str, Vec<&PaymentRow>> = HashMap::new();
    for p in &s.payments {
        payments_of.entry(&p.order_ref).or_default().push(p);
    }

    // 1. A seat is SOLD to at most one order, and every SOLD seat to a CONFIRMED order.
    for seat in s.reserved.iter().filter(|x| x.status == "SOLD") {
        let at = format!("seat {}/{}", seat.event_id, seat.seat_id);
        match seat.order_ref.as_deref().and_then(|id| orders.get(id)) {
            None => v.push(format!("{at} is SOLD to no known order ({:?})", seat.order_ref)),
            Some(o) if o.status != "CONFIRMED" => {
                v.push(format!("{at} is SOLD to order {} which is {}", o.order_id, o.status))
            }
            Some(o) if !o.seat_ids.contains(&seat.seat_id) || o.event_id != seat.event_id => {
                v.push(format!("{at} is SOLD to order {} which did not ask for it", o.order_id))
            }
            Some(_) => {}
        }
    }
    for o in &s.orders {
        let held: Vec<&&ReservedSeat> =
            seats_of.get(o.order_ref.as_str()).map(|x| x.iter().collect()).unwrap_or_default();
        let paid: Vec<&&PaymentRow> =
            payments_of.get(o.order_ref.as_str()).map(|x| x.iter().collect()).unwrap_or_default();
        let succeeded: Vec<_> = paid.iter().filter(|p| p.status == "SUCCEEDED").collect();
        // The order's number, as the payment module keeps it, is the order's.
        for p in paid.iter().filter(|p| p.order_id.is_some_and(|n| n != o.order_id)) {
            v.push(format!("order {} has a payment filed under order number {:?}", o.order_id, p.order_id));
        }
        match o.status.as_str() {
            // 2. A CONFIRMED order has all its seats SOLD to it and one successful,
            //    unrefunded payment of its amount.
            "CONFIRMED" => {
                let sold: HashSet<i64> = held.iter().filter(|x| x.status == "SOLD").map(|x| x.seat_id).collect();
                let missing: Vec<i64> = o.seat_ids.iter().filter(|id| !sold.contains(id)).copied().collect();
                if !missing.is_empty() {
                    v.push(format!("order {} is CONFIRMED but seats {missing:?} are not SOLD to it", o.order_id));
                }
                if succeeded.len() != 1 {
                    v.push(format!("order {} is CONFIRMED with {} successful payments", o.order_id, succeeded.len()));
                } else if succeeded[0].amount != o.amount {
                    v.push(format!(
                        "order {} is CONFIRMED for {} but paid {}",
                        o.order_id, o.amount, succeeded[0].amount
                    ));
                }
            }
            // 3. A CANCELLED order holds no seat and keeps no money.
            "CANCELLED" => {
                if !held.is_empty() {
                    let ids: Vec<i64> = held.iter().map(|x| x.seat_id).collect();
                    v.push(format!("order {} is CANCELLED but still holds seats {ids:?}", o.order_id));
                }
                if !succeeded.is_empty() {
                    v.push(format!("order {} is CANCELLED but keeps a successful payment", o.order_id));
                }
            }
            // 6. Once load stops, every order reaches a final state.
            _ => v.push(format!(
                "order {} is still {} (created at {})",
                o.order_id,
                o.status,
                contract::rfc3339(o.created_at)
            )),
        }
    }
    // Every order has a number of its own.
    let mut numbers = HashSet::new();
    for o in s.orders.iter().filter(|o| !numbers.insert(o.order_id)) {
        v.push(format!("order number {} is given to more than one order", o.order_id));
    }
    for p in s.payments.iter().filter(|p| !orders.contains_key(p.order_ref.as_str())) {
        if p.status == "SUCCEEDED" {
            v.push(format!("payment for unknown order {} keeps money", p.order_ref));
        }
    }
    // The gateway's books, when it keeps them, agree: money kept for exactly the
    // successful payments (the others may still have a refund or void in flight).
    for p in &s.payments {
        let Some(kept) = p.gateway_kept else { continue };
        let expected = match p.status.as_str() {
            "SUCCEEDED" => p.amount,
            "FAILED" if !p.void_requested => 0,
            "REFUNDED" => 0,
            _ => continue,
        };
        if kept != expected {
            v.push(format!("the gateway keeps {kept} for the {} payment of order {}", p.status, p.order_ref));
        }
    }
    for (order_ref, paid) in &payments_of {
        if paid.len() > 1 {
            v.push(format!("order {order_ref} has {} payments", paid.len()));
        }
    }
    // 4. No hold outlives its expiry by more than the sweep interval (and a little slack).
    let overdue_before = s.now - s.sweep_interval_ms - 2_000;
    for seat in s.reserved.iter().filter(|x| x.status == "HELD") {
        if seat.expires_at.is_some_and(|e| e < overdue_before) {
            v.push(format!(
                "seat {}/{} is HELD {} ms past its expiry",
                seat.event_id,
                seat.seat_id,
                s.now - seat.expires_at.unwrap_or(s.now)
            ));
        }
    }
    // The seat map buyers see agrees with the reservation module.
    let truth: HashMap<(i64, i64), &str> =
        s.reserved.iter().map(|x| ((x.event_id, x.seat_id), x.status.as_str())).collect();
    let shown: HashMap<(i64, i64), &str> =
        s.catalog.iter().map(|x| ((x.event_id, x.seat_id), x.status.as_str())).collect();
    for key in truth.keys().chain(shown.keys()).collect::<HashSet<_>>() {
        let (t, m) = (truth.get(key).copied().unwrap_or("AVAILABLE"), shown.get(key).copied().unwrap_or("AVAILABLE"));
        if t != m {
            v.push(format!("seat {}/{} is {t} but the seat map shows {m}", key.0, key.1));
        }
    }
    if let Some(tickets) = &s.tickets {
        judge_tickets(s, tickets, &mut v);
    }
    // 5. Outboxes published, and each module's own checks.
    v.extend(s.failed_checks.iter().cloned());
    v.sort();
    Report {
        orders: s.orders.len(),
        confirmed: s.orders.iter().filter(|o| o.status == "CONFIRMED").count(),
        cancelled: s.orders.iter().filter(|o| o.status == "CANCELLED").count(),
        seats_sold: s.reserved.iter().filter(|x| x.status == "SOLD").count(),
        tickets: s.tickets.as_ref().map(|t| t.tickets.len()),
        violations: v,
    }
}

/// The tickets' invariants: every CONFIRMED order has exactly one VALID or USED ticket
/// per seat; no ticket of a cancelled order (refunded, reset) is VALID; no ticket is let
/// in twice; check-ins only of tickets that exist.
fn judge_tickets(s: &Snapshot, t: &TicketSnapshot, v: &mut Vec<String>) {
    let mut of_order: HashMap<&str, Vec<&TicketRow>> = HashMap::new();
    for ticket in &t.tickets {
        of_order.entry(ticket.order_ref.as_str()).or_default().push(ticket);
    }
    let orders: HashMap<&str, &OrderRow> = s.orders.iter().map(|o| (o.order_ref.as_str(), o)).collect();
    for o in &s.orders {
        let tickets = of_order.get(o.order_ref.as_str()).map(Vec::as_slice).unwrap_or_default();
        match o.status.as_str() {
            "CONFIRMED" => {
                for seat in &o.seat_ids {
                    let good = tickets
                        .iter()
                        .filter(|t| t.seat_id == *seat && (t.status == "VALID" || t.status == "USED"))
                        .count();
                    if good != 1 {
                        v.push(format!("order {} is CONFIRMED with {good} good tickets for seat {seat}", o.order_id));
                    }
                }
            }
            "CANCELLED" => {
                for ticket in tickets.iter().filter(|t| t.status == "VALID") {
                    v.push(format!("ticket {} of CANCELLED order {} is VALID", ticket.ticket_id, o.order_id));
                }
            }
            _ => {}
        }
        for ticket in tickets.iter().filter(|t| !o.seat_ids.contains(&t.seat_id) || t.event_id != o.event_id) {
            v.push(format!("ticket {} is for a seat order {} did not buy", ticket.ticket_id, o.order_id));
        }
    }
    for ticket in t.tickets.iter().filter(|t| !orders.contains_key(t.order_ref.as_str())) {
        v.push(format!("ticket {} is of unknown order {}", ticket.ticket_id, ticket.order_ref));
    }
    let known: HashSet<&str> = t.tickets.iter().map(|t| t.ticket_id.as_str()).collect();
    for c in &t.checkins {
        match c.ticket_id.as_deref() {
            Some(id) if !known.contains(id) => v.push(format!("ticket {id} was let in but does not exist")),
            None => v.push("a check-in let in no ticket".to_owned()),
            Some(id) if c.admissions > 1 => v.push(format!("ticket {id} was let in {} times", c.admissions)),
            Some(_) => {}
        }
    }
}

/// Base URLs of each module; all the same for the embedded mode.
#[derive(Debug, Clone)]
pub struct ModuleUrls {
    pub catalog: String,
    pub reservation: String,
    pub order: String,
    pub payment: String,
    /// The tickets module's own process; `None`: whichever of the others runs it, if any.
    pub tickets: Option<String>,
}

impl ModuleUrls {
    pub fn all(url: &str) -> Self {
        let url = url.trim_end_matches('/').to_owned();
        ModuleUrls { catalog: url.clone(), reservation: url.clone(), order: url.clone(), payment: url, tickets: None }
    }
}

/// Reads every module's snapshot from a running boxoffice.
pub async fn snapshot(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Snapshot> {
    snapshot_modules(client, &ModuleUrls::all(url), token).await
}

/// Reads every module's snapshot, each from its own process, and each module's own
/// consistency checks.
pub async fn snapshot_modules(client: &reqwest::Client, urls: &ModuleUrls, token: &str) -> anyhow::Result<Snapshot> {
    async fn get(client: &reqwest::Client, url: String, token: &str) -> anyhow::Result<serde_json::Value> {
        let response = client.get(&url).bearer_auth(token).send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.with_context(|| format!("GET {url}: not JSON"))?;
        if !status.is_success() && !url.ends_with("/actuator/consistency") {
            anyhow::bail!("GET {url}: {status} {body}");
        }
        Ok(body)
    }
    let now = contract::now_millis();
    let reservation = get(client, format!("{}/ticketing/api/admin/audit/reservation", urls.reservation), token).await?;
    let catalog = get(client, format!("{}/ticketing/api/admin/audit/catalog", urls.catalog), token).await?;
    let orders = get(client, format!("{}/ticketing/api/admin/audit/order", urls.order), token).await?;
    let payments = get(client, format!("{}/ticketing/api/admin/audit/payment", urls.payment), token).await?;
    let mut failed_checks = Vec::new();
    let mut bases = vec![&urls.catalog, &urls.reservation, &urls.order, &urls.payment];
    bases.extend(&urls.tickets);
    bases.dedup();
    // The tickets module: its own process, or where one of these processes runs it.
    let tickets = match &urls.tickets {
        Some(base) => {
            let view = get(client, format!("{base}/ticketing/api/admin/audit/tickets"), token).await?;
            Some(serde_json::from_value(view).context("not the tickets' view")?)
        }
        None => tickets_among(client, &bases, token).await?,
    };
    for base in bases {
        let consistency = get(client, format!("{base}/actuator/consistency"), token).await?;
        for (module, report) in consistency["modules"].as_object().into_iter().flatten() {
            for check in report["checks"].as_array().into_iter().flatten() {
                if check["ok"] != serde_json::Value::Bool(true) {
                    failed_checks.push(format!(
                        "{module}: {} failed: {}",
                        check["name"].as_str().unwrap_or("?"),
                        check["detail"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    Ok(Snapshot {
        reserved: serde_json::from_value(reservation["seats"].clone())?,
        sweep_interval_ms: reservation["sweepIntervalMs"].as_i64().unwrap_or(1_000),
        catalog: serde_json::from_value(catalog["seats"].clone())?,
        orders: serde_json::from_value(orders["orders"].clone())?,
        payments: serde_json::from_value(payments["payments"].clone())?,
        tickets,
        failed_checks,
        now,
    })
}

/// The tickets module's view from the first of `bases` that runs it, if any does.
async fn tickets_among(
    client: &reqwest::Client,
    bases: &[&String],
    token: &str,
) -> anyhow::Result<Option<TicketSnapshot>> {
    for base in bases {
        let url = format!("{base}/ticketing/api/admin/audit/tickets");
        let response = client.get(&url).bearer_auth(token).send().await.with_context(|| format!("GET {url}"))?;
        if response.status().is_success() {
            return Ok(Some(response.json().await.with_context(|| format!("GET {url}: not the tickets' view"))?));
        }
    }
    Ok(None)
}

/// Waits up to `settle` for the system to go quiet — no order in flight, no refund
/// pending, the seat map caught up — then judges the last snapshot.
pub async fn audit(url: &str, token: &str, settle: Duration) -> anyhow::Result<Report> {
    audit_modules(&ModuleUrls::all(url), token, settle).await
}

/// [`audit`] of a boxoffice whose modules run in separate processes.
pub async fn audit_modules(urls: &ModuleUrls, token: &str, settle: Duration) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        let snap = snapshot_modules(&client, urls, token).await?;
        let report = judge(&snap);
        if report.violations.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `boxoffice audit`: prints the report; exits 0 when it passed, 1 naming each violation,
/// 2 when the audit could not run.
pub async fn run(args: AuditArgs) -> ExitCode {
    let all = ModuleUrls::all(&args.url);
    let urls = ModuleUrls {
        catalog: args.catalog_url.clone().unwrap_or(all.catalog),
        reservation: args.reservation_url.clone().unwrap_or(all.reservation),
        order: args.order_url.clone().unwrap_or(all.order),
        payment: args.payment_url.clone().unwrap_or(all.payment),
        tickets: args.tickets_url.clone(),
    };
    match audit_modules(&urls, &args.admin_token, Duration::from_secs(args.settle_seconds)).await {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                let tickets = report
                    .tickets
                    .map_or("tickets not audited (no tickets module)".to_owned(), |n| format!("{n} tickets"));
                println!(
                    "audited {} orders ({} confirmed, {} cancelled), {} seats sold, {tickets}",
                    report.orders, report.confirmed, report.cancelled, report.seats_sold
                );
                for violation in &report.violations {
                    println!("VIOLATION: {violation}");
                }
                println!("{}", if report.violations.is_empty() { "audit passed" } else { "audit FAILED" });
            }
            if report.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(error) => {
            eprintln!("audit could not run: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(seat_id: i64, status: &str, order: Option<&str>) -> ReservedSeat {
        ReservedSeat { event_id: 1, seat_id, status: status.into(), order_ref: order.map(Into::into), expires_at: None }
    }

    fn shown(seat_id: i64, status: &str) -> CatalogSeat {
        CatalogSeat { event_id: 1, seat_id, status: status.into() }
    }

    fn order(id: &str, seats: &[i64], status: &str) -> OrderRow {
        OrderRow {
            // Orders "a", "b", … are numbered 1, 2, …
            order_id: id.bytes().fold(0, |n, b| n * 256 + i64::from(b - b'a' + 1)),
            order_ref: id.into(),
            event_id: 1,
            seat_ids: seats.to_vec(),
            amount: 100,
            status: status.into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn payment(order_ref: &str, status: &str) -> PaymentRow {
        PaymentRow { order_ref: order_ref.into(), amount: 100, status: status.into(), ..Default::default() }
    }

    /// One confirmed order with its seat sold and paid, one cancelled and refunded.
    fn healthy() -> Snapshot {
        Snapshot {
            reserved: vec![seat(1, "SOLD", Some("a"))],
            catalog: vec![shown(1, "SOLD")],
            orders: vec![order("a", &[1], "CONFIRMED"), order("b", &[2], "CANCELLED")],
            payments: vec![payment("a", "SUCCEEDED"), payment("b", "REFUNDED")],
            sweep_interval_ms: 500,
            now: 10_000,
            ..Default::default()
        }
    }

    fn violations(s: &Snapshot) -> Vec<String> {
        judge(s).violations
    }

    #[test]
    fn a_consistent_snapshot_passes() {
        assert_eq!(violations(&healthy()), Vec::<String>::new());
    }

    fn ticket(id: &str, order: &str, seat_id: i64, status: &str) -> TicketRow {
        TicketRow { ticket_id: id.into(), order_ref: order.into(), event_id: 1, seat_id, status: status.into() }
    }

    #[test]
    fn tickets_one_per_seat_of_confirmed_orders_revoked_with_cancelled_ones_let_in_once() {
        let mut s = healthy();
        s.tickets = Some(TicketSnapshot {
            tickets: vec![ticket("t1", "a", 1, "USED"), ticket("t2", "b", 2, "REVOKED")],
            checkins: vec![CheckInRow { ticket_id: Some("t1".into()), admissions: 1 }],
        });
        assert_eq!(violations(&s), Vec::<String>::new());
        let t = s.tickets.as_mut().unwrap();
        t.tickets[1].status = "VALID".into();
        t.tickets.push(ticket("t3", "a", 1, "VALID"));
        t.tickets.push(ticket("t4", "ghost", 9, "VALID"));
        t.checkins[0].admissions = 2;
        t.checkins.push(CheckInRow { ticket_id: Some("t9".into()), admissions: 1 });
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("order 1 is CONFIRMED with 2 good tickets for seat 1")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("ticket t2 of CANCELLED order 2 is VALID")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("ticket t4 is of unknown order ghost")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("ticket t1 was let in 2 times")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("ticket t9 was let in but does not exist")), "{v:?}");
        s.tickets.as_mut().unwrap().tickets.clear();
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("order 1 is CONFIRMED with 0 good tickets for seat 1")), "{v:?}");
    }

    #[test]
    fn a_seat_sold_to_a_cancelled_or_unknown_order_is_a_violation() {
        let mut s = healthy();
        s.reserved.push(seat(2, "SOLD", Some("b")));
        s.reserved.push(seat(3, "SOLD", Some("ghost")));
        s.catalog.extend([shown(2, "SOLD"), shown(3, "SOLD")]);
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("seat 1/2 is SOLD to order 2 which is CANCELLED")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("seat 1/3 is SOLD to no known order")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("order 2 is CANCELLED but still holds seats [2]")), "{v:?}");
    }

    #[test]
    fn a_confirmed_order_needs_its_seats_and_exactly_one_payment_of_its_amount() {
        let mut s = healthy();
        s.orders.push(order("c", &[4, 5], "CONFIRMED"));
        s.reserved.push(seat(4, "SOLD", Some("c")));
        s.catalog.push(shown(4, "SOLD"));
        s.payments.push(PaymentRow { amount: 99, ..payment("c", "SUCCEEDED") });
        s.payments.push(payment("a", "SUCCEEDED"));
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("order 3 is CONFIRMED but seats [5] are not SOLD to it")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("order 3 is CONFIRMED for 100 but paid 99")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("order 1 is CONFIRMED with 2 successful payments")), "{v:?}");
    }

    #[test]
    fn an_order_number_given_twice_or_filed_wrongly_is_a_violation() {
        let mut s = healthy();
        s.orders[1].order_id = 1;
        s.payments[0].order_id = Some(7);
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("order number 1 is given to more than one order")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("order 1 has a payment filed under order number Some(7)")), "{v:?}");
    }

    #[test]
    fn money_kept_for_a_cancelled_order_and_a_stuck_order_are_violations() {
        let mut s = healthy();
        s.payments[1].status = "SUCCEEDED".into();
        s.orders.push(order("d", &[6], "CREATED"));
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("order 2 is CANCELLED but keeps a successful payment")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("order 4 is still CREATED")), "{v:?}");
    }

    #[test]
    fn money_the_gateway_keeps_for_a_failed_payment_is_a_violation() {
        let mut s = healthy();
        s.payments[0].gateway_kept = Some(100);
        s.payments[1].gateway_kept = Some(0);
        assert!(violations(&s).is_empty());
        s.payments.push(PaymentRow { gateway_kept: Some(100), ..payment("e", "FAILED") });
        // A void still in flight is not judged yet.
        s.payments.push(PaymentRow { gateway_kept: Some(100), void_requested: true, ..payment("f", "FAILED") });
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("the gateway keeps 100 for the FAILED payment of order e")), "{v:?}");
        assert!(!v.iter().any(|x| x.contains("order f")), "{v:?}");
    }

    #[test]
    fn an_overdue_hold_and_a_stale_seat_map_are_violations() {
        let mut s = healthy();
        s.reserved.push(ReservedSeat { expires_at: Some(1_000), ..seat(7, "HELD", None) });
        s.catalog.push(shown(7, "HELD"));
        s.catalog.push(shown(8, "HELD"));
        s.failed_checks.push("order: outbox_published failed: 3 unpublished".into());
        let v = violations(&s);
        assert!(v.iter().any(|x| x.contains("seat 1/7 is HELD 9000 ms past its expiry")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("seat 1/8 is AVAILABLE but the seat map shows HELD")), "{v:?}");
        assert!(v.iter().any(|x| x.contains("outbox_published failed")), "{v:?}");
    }
}
