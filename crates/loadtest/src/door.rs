//! The `door` scenario (docs/TICKETS.md): a show is sold out, then `--scanners` gates
//! check every ticket in at once — each real ticket once, then a share of them again
//! (re-entry attempts), with a share of forged codes among them. It reports check-ins
//! per second and their latency, what each kind of scan was answered, and whether every
//! real ticket got in exactly once; then the audit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::LoadArgs;
use crate::run::{Targets, create_show};
use crate::stats::{Summary, summarize};
use crate::token::TokenSigner;

/// Seats bought per order while selling the show out.
const SEATS_PER_ORDER: i64 = 4;
/// Buyers selling the show out at once.
const SELLERS: usize = 32;

/// What a scan is, and so what the door must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// A real ticket's first scan: `ADMITTED`.
    First,
    /// A real ticket scanned again: `ALREADY_USED`.
    Again,
    /// A real ticket's code with one character of its signature changed: `INVALID`.
    Forged,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::First => "ADMITTED",
            Kind::Again => "ALREADY_USED",
            Kind::Forged => "INVALID",
        }
    }
}

struct Scan {
    kind: Kind,
    ticket: usize,
    token: String,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DoorReport {
    pub event_id: i64,
    pub tickets: usize,
    pub scanners: usize,
    pub scans: usize,
    pub seconds: f64,
    pub checkins_per_second: f64,
    pub latency: Summary,
    /// `kind → result → count`.
    pub answers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Real tickets let in exactly once.
    pub admitted_once: usize,
    pub audit_violations: Vec<String>,
    pub passed: bool,
}

impl DoorReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "door: show {} · {} tickets · {} scanners · {} scans in {:.1} s\n\
             check-ins/s {:.0} · latency p50 {:.1} ms · p95 {:.1} ms · p99 {:.1} ms · max {:.1} ms\n",
            self.event_id,
            self.tickets,
            self.scanners,
            self.scans,
            self.seconds,
            self.checkins_per_second,
            self.latency.p50_ms,
            self.latency.p95_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
        );
        for (kind, results) in &self.answers {
            let line: Vec<String> = results.iter().map(|(r, n)| format!("{r} {n}")).collect();
            out += &format!("  {kind:<7} {}\n", line.join(" · "));
        }
        out += &format!(
            "every real ticket let in once: {} ({} of {})\naudit: {}\n{}\n",
            self.admitted_once == self.tickets,
            self.admitted_once,
            self.tickets,
            if self.audit_violations.is_empty() { "no violation".to_owned() } else { self.audit_violations.join("; ") },
            if self.passed { "PASSED" } else { "FAILED" },
        );
        out
    }
}

/// A ticket to scan: its id and its code.
struct Ticket {
    id: String,
    token: String,
}

pub async fn run(args: &LoadArgs) -> anyhow::Result<DoorReport> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).timeout(Duration::from_secs(30)).build()?;
    let targets = Targets::new(args);
    let signer = args.auth_secret.as_ref().map(|key| TokenSigner::new(key.trim().as_bytes()));
    let cols = 50.min(args.tickets.max(1));
    let rows = (args.tickets.max(1) as u64).div_ceil(cols as u64) as i64;
    let show = json!({ "title": "door run", "dateTime": "2026-12-31T20:00:00", "rows": rows, "cols": cols });
    let event_id = create_show(&http, args, &targets, &show).await?;
    let seats = rows * cols;
    eprintln!("door: selling out show {event_id} ({seats} seats)");
    let tickets = sell_out(&http, &targets, signer.as_ref(), event_id, seats).await?;
    anyhow::ensure!(tickets.len() as i64 == seats, "sold {seats} seats but found {} tickets", tickets.len());
    let distinct: std::collections::HashSet<&str> = tickets.iter().map(|t| t.id.as_str()).collect();
    anyhow::ensure!(distinct.len() == tickets.len(), "two seats were given one ticket id");

    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut first: Vec<Scan> = Vec::new();
    for (i, t) in tickets.iter().enumerate() {
        first.push(Scan { kind: Kind::First, ticket: i, token: t.token.clone() });
        if rng.random_bool(args.forged_share) {
            first.push(Scan { kind: Kind::Forged, ticket: i, token: forge(&t.token) });
        }
    }
    first.shuffle(&mut rng);
    let mut again: Vec<Scan> = tickets
        .iter()
        .enumerate()
        .filter(|_| rng.random_bool(args.rescan_share))
        .map(|(i, t)| Scan { kind: Kind::Again, ticket: i, token: t.token.clone() })
        .collect();
    again.shuffle(&mut rng);

    let scanner_token = |gate: usize| {
        let sub = format!("gate-{gate}");
        match &signer {
            Some(s) => s.issue_with_role(&sub, "scanner", Duration::from_secs(86_400)),
            None => args.admin_token.clone(),
        }
    };
    let tokens: Vec<String> = (0..args.scanners).map(scanner_token).collect();
    let api = format!("{}/ticketing/api", targets.catalog[0]);
    let started = Instant::now();
    let outcome = Outcome::new(tickets.len());
    // Re-scans only once every first scan was answered: each is then a re-entry.
    for phase in [first, again] {
        scan_all(&http, &api, &tokens, phase, args.scan_rate, &outcome).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let audit = audit::audit_modules(&targets.modules(), &args.admin_token, Duration::from_secs(30)).await?;
    let outcome = Arc::try_unwrap(outcome.0).ok().expect("every gate has stopped").into_inner().expect("outcome");
    let scans: u64 = outcome.answers.values().flat_map(|r| r.values()).sum();
    let admitted_once = outcome.admitted.iter().filter(|n| **n == 1).count();
    let wrong: u64 = outcome
        .answers
        .iter()
        .map(|(kind, results)| {
            results.iter().filter(|(r, _)| r.as_str() != kind.expected()).map(|(_, n)| n).sum::<u64>()
        })
        .sum();
    let answers =
        outcome.answers.into_iter().map(|(kind, results)| (format!("{kind:?}").to_lowercase(), results)).collect();
    Ok(DoorReport {
        event_id,
        tickets: tickets.len(),
        scanners: args.scanners,
        scans: scans as usize,
        seconds,
        checkins_per_second: scans as f64 / seconds.max(1e-9),
        latency: summarize(&outcome.latency),
        answers,
        admitted_once,
        passed: wrong == 0 && admitted_once == tickets.len() && audit.violations.is_empty(),
        audit_violations: audit.violations,
    })
}

/// The token with one character of its signature changed: a forgery only the signature
/// can tell from the real one.
fn forge(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("base64url stays ASCII")
}

struct Counts {
    answers: BTreeMap<Kind, BTreeMap<String, u64>>,
    /// Per real ticket, how many scans were `ADMITTED`.
    admitted: Vec<u32>,
    latency: Histogram<u64>,
}

#[derive(Clone)]
struct Outcome(Arc<Mutex<Counts>>);

impl Outcome {
    fn new(tickets: usize) -> Self {
        let latency = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        Outcome(Arc::new(Mutex::new(Counts { answers: BTreeMap::new(), admitted: vec![0; tickets], latency })))
    }
}

/// Sends every scan of `phase` from `tokens.len()` gates at once, each at most `rate`
/// scans a second (0: as fast as answered).
async fn scan_all(http: &reqwest::Client, api: &str, tokens: &[String], phase: Vec<Scan>, rate: f64, out: &Outcome) {
    let phase = Arc::new(phase);
    let next = Arc::new(AtomicUsize::new(0));
    let gates: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(gate, token)| {
            let (http, url, token, phase, next, out) =
                (http.clone(), format!("{api}/checkin"), token.clone(), phase.clone(), next.clone(), out.clone());
            tokio::spawn(async move {
                let pace = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scan) = phase.get(i) else { break };
                    let due = Instant::now();
                    let body =
                        json!({ "token": scan.token, "gate": format!("gate-{gate}"), "scanId": uuid::Uuid::new_v4() });
                    let answer = http.post(&url).bearer_auth(&token).json(&body).send().await;
                    let result = match answer {
                        Ok(r) if r.status().is_success() => r
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|v| v["result"].as_str().map(str::to_owned))
                            .unwrap_or_else(|| "UNREADABLE".to_owned()),
                        Ok(r) => format!("HTTP {}", r.status().as_u16()),
                        Err(_) => "NO ANSWER".to_owned(),
                    };
                    {
                        let mut c = out.0.lock().expect("outcome");
                        c.latency.saturating_record(due.elapsed().as_micros() as u64);
                        if scan.kind != Kind::Forged && result == "ADMITTED" {
                            c.admitted[scan.ticket] += 1;
                        }
                        *c.answers.entry(scan.kind).or_default().entry(result).or_default() += 1;
                    }
                    if let Some(pace) = pace {
                        tokio::time::sleep_until((due + pace).into()).await;
                    }
                }
            })
        })
        .collect();
    for gate in gates {
        let _ = gate.await;
    }
}

/// Buys every seat of the show, `SEATS_PER_ORDER` to an order, and reads each order's
/// tickets once it is CONFIRMED.
async fn sell_out(
    http: &reqwest::Client,
    targets: &Targets,
    signer: Option<&TokenSigner>,
    event_id: i64,
    seats: i64,
) -> anyhow::Result<Vec<Ticket>> {
    let next = Arc::new(std::sync::atomic::AtomicI64::new(1));
    let found = Arc::new(Mutex::new(Vec::new()));
    let sellers: Vec<_> = (0..SELLERS)
        .map(|n| {
            let name = format!("door-buyer-{n}-{}", uuid::Uuid::new_v4().simple());
            let buyer = signer.map_or(name.clone(), |s| s.issue(&name, false, Duration::from_secs(86_400)));
            let (http, next, found) = (http.clone(), next.clone(), found.clone());
            let reservations = format!("{}/ticketing/api", targets.reservation[0]);
            let orders = format!("{}/ticketing/api", targets.order[0]);
            tokio::spawn(async move {
                loop {
                    let from = next.fetch_add(SEATS_PER_ORDER, Ordering::Relaxed);
                    if from > seats {
                        return anyhow::Ok(());
                    }
                    let ids: Vec<i64> = (from..(from + SEATS_PER_ORDER).min(seats + 1)).collect();
                    let tickets = buy(&http, &reservations, &orders, &buyer, event_id, &ids).await?;
                    found.lock().expect("tickets").extend(tickets);
                }
            })
        })
        .collect();
    for seller in sellers {
        seller.await.context("a seller stopped")??;
    }
    Ok(std::mem::take(&mut *found.lock().expect("tickets")))
}

async fn buy(
    http: &reqwest::Client,
    reservations: &str,
    orders: &str,
    buyer: &str,
    event_id: i64,
    ids: &[i64],
) -> anyhow::Result<Vec<Ticket>> {
    let hold = json!({ "eventId": event_id, "seatIds": ids, "holdSeconds": 120 });
    let r = http.post(format!("{reservations}/reservations")).bearer_auth(buyer).json(&hold).send().await?;
    anyhow::ensure!(r.status().as_u16() == 201, "hold of {ids:?}: {} {}", r.status(), r.text().await?);
    let order = json!({ "eventId": event_id, "seatIds": ids });
    let key = uuid::Uuid::new_v4().to_string();
    let r = http
        .post(format!("{orders}/orders"))
        .bearer_auth(buyer)
        .header("Idempotency-Key", key)
        .json(&order)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "order of {ids:?}: {} {}", r.status(), r.text().await?);
    let order_id = r.json::<Value>().await?["orderId"].as_i64().context("the order's number")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let order: Value =
            http.get(format!("{orders}/orders/{order_id}")).bearer_auth(buyer).send().await?.json().await?;
        match order["status"].as_str() {
            Some("CONFIRMED") => {
                let list: Value = http
                    .get(format!("{orders}/orders/{order_id}/tickets"))
                    .bearer_auth(buyer)
                    .send()
                    .await?
                    .json()
                    .await?;
                let tickets: Vec<Ticket> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        Some(Ticket { id: t["ticketId"].to_string(), token: t["token"].as_str()?.to_owned() })
                    })
                    .collect();
                if tickets.len() == ids.len() {
                    return Ok(tickets);
                }
            }
            Some("CANCELLED") => anyhow::bail!("order {order_id} was cancelled: {order}"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("order {order_id} had no tickets within 60 s")
}
