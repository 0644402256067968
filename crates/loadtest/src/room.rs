//! The waiting room's scenarios. `onsale`: visitors arrive over a window spanning a
//! show's on-sale (a share of them before it), each joins the show's queue, waits
//! (asking for its place), and once let through buys 1–4 best-available seats with its
//! admission token, and leaves. `queue-join`: visitors only join and read their place
//! once — what a place in line costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::best::Group;
use crate::report::Threshold;
use crate::run::{
    InFlight, NOT_ENOUGH_SEATS, SOLD_OUT_RETRY, Shared, UNREACHABLE_PAUSE, hold, order_and_settle, status,
};
use crate::stats::{Summary, summarize};
use crate::{LoadArgs, Scenario};

/// Seats one visitor buys at most; each picks 1 to this many.
const MOST_SEATS: usize = 4;
/// The longest a waiting visitor goes without asking for its place (the server's grace
/// period is 60 s).
const LONGEST_POLL: Duration = Duration::from_secs(15);
const SHORTEST_POLL: Duration = Duration::from_millis(250);
/// Failed requests in a row after which a visitor gives up.
const GIVE_UP_AFTER: usize = 30;
/// The most queue requests in flight at once: the generator's connections (beyond a few
/// thousand from one address the server closes new ones). A request waiting for one
/// counts its wait in its latency.
const CONNECTIONS: usize = 512;

/// What a run of the waiting room's scenarios found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub visitors: usize,
    pub window_seconds: f64,
    /// When the sale opened, from the first arrival.
    pub on_sale_after_seconds: f64,
    pub rate_per_minute: Value,
    pub joined: usize,
    pub joined_before_on_sale: usize,
    pub admitted: usize,
    /// Visitors with a confirmed order.
    pub bought: usize,
    /// Visitors who joined and left without a ticket (the show sold out, their place
    /// lapsed, or their purchase failed).
    pub got_nothing: usize,
    /// Visitors told EXPIRED while waiting.
    pub lost_place: usize,
    /// Visitors still waiting when the show sold out, who then left.
    pub left_sold_out: usize,
    /// From the on-sale (or one's join, if later) to being let through, as the visitors
    /// saw it (they ask more often as their turn nears).
    pub time_in_queue: Option<Summary>,
    /// Pairs of admitted visitors let through in the other order than their places in
    /// the queue (by the time their admissions end; 0 is perfect).
    pub order_inversions: u64,
    /// The mean distance between a visitor's rank in the admission order and in the
    /// queue order (0 is perfect).
    pub mean_displacement: f64,
    /// Seconds from the on-sale to the show selling out.
    pub sold_out_seconds: Option<f64>,
    /// Confirmed purchases a second from the on-sale to the sell-out (or the last visitor).
    pub purchases_per_second: f64,
    /// The resident memory of the process at `--url` before the visitors came and once
    /// they were done, in MB (its `process_resident_memory_bytes`).
    pub server_memory_mb: Option<(f64, f64)>,
}

impl RoomSummary {
    pub fn thresholds(&self) -> Vec<Threshold> {
        let mut out = vec![Threshold::new(
            "every visitor joined",
            self.joined == self.visitors,
            format!("{} of {}", self.joined, self.visitors),
        )];
        if self.admitted > 0 {
            out.push(Threshold::new(
                "admitted in queue order",
                self.order_inversions == 0,
                format!("{} inversions, mean displacement {:.2}", self.order_inversions, self.mean_displacement),
            ));
        }
        out
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "  waiting room: {} visitors over {:.0} s, on-sale at {:.1} s, rate {}; {} joined ({} before the on-sale)\n",
            self.visitors,
            self.window_seconds,
            self.on_sale_after_seconds,
            self.rate_per_minute,
            self.joined,
            self.joined_before_on_sale,
        );
        if let Some((before, after)) = self.server_memory_mb {
            out += &format!("  server memory (resident): {before:.1} MB before, {after:.1} MB after\n");
        }
        if self.admitted > 0 || self.bought > 0 || self.got_nothing > 0 {
            out += &format!(
                "  admitted {}, bought {}, got nothing {} (lost their place {}, left when sold out {})\n",
                self.admitted, self.bought, self.got_nothing, self.lost_place, self.left_sold_out
            );
        }
        if let Some(t) = &self.time_in_queue {
            out += &format!(
                "  time in queue: p50 {:.1} s, p95 {:.1} s, p99 {:.1} s (max {:.1} s)\n",
                t.p50_ms / 1e3,
                t.p95_ms / 1e3,
                t.p99_ms / 1e3,
                t.max_ms / 1e3
            );
            out += &format!(
                "  admission order vs queue order: {} inversions, mean displacement {:.2}\n",
                self.order_inversions, self.mean_displacement
            );
            let sold_out =
                self.sold_out_seconds.map_or("not sold out".to_owned(), |s| format!("sold out {s:.1} s after it"));
            out += &format!("  {:.1} purchases/s from the on-sale; {sold_out}\n", self.purchases_per_second);
        }
        out
    }
}

/// What the visitors share beside [`Shared`].
struct Room {
    /// Where the waiting room answers: `--url`.
    url: String,
    connections: tokio::sync::Semaphore,
    on_sale: Instant,
    joins_only: bool,
    seed: u64,
    sold_out: AtomicBool,
    joined: AtomicUsize,
    admitted: AtomicUsize,
    done: AtomicUsize,
}

/// How one visitor fared.
#[derive(Debug, Default)]
struct Outcome {
    joined: bool,
    before_on_sale: bool,
    /// Their place in the queue and when their admission ends (RFC 3339: sorts as time).
    admitted: Option<(u64, String)>,
    waited: Option<Duration>,
    bought: bool,
    lost_place: bool,
    left_sold_out: bool,
}

/// The operator's switch of the show's room.
async fn set_room(s: &Shared, args: &LoadArgs, body: Value) -> anyhow::Result<Value> {
    let url = format!("{}/ticketing/api/admin/events/{}/room", args.url.trim_end_matches('/'), s.event_id);
    let r = s.http.patch(&url).bearer_auth(&args.admin_token).json(&body).send().await.context("setting the room")?;
    let code = r.status();
    let text = r.text().await.unwrap_or_default();
    anyhow::ensure!(code.as_u16() == 200, "setting the room of show {}: {code} {text}", s.event_id);
    Ok(serde_json::from_str(&text)?)
}

/// `--room-rate`: a number of visitors a minute, or `auto`.
fn rate(args: &LoadArgs) -> anyhow::Result<Value> {
    match args.room_rate.as_str() {
        "auto" => Ok(json!("auto")),
        n => Ok(json!(n.parse::<u64>().with_context(|| format!("--room-rate {n}: a number a minute, or auto"))?)),
    }
}

/// Runs the visitors: the room set (on, its rate, its on-sale `--before-share` of the
/// window after the first arrival), every visitor to the end, the room turned off again.
pub(crate) async fn drive(s: &Arc<Shared>, args: &LoadArgs, interrupted: &AtomicBool) -> anyhow::Result<RoomSummary> {
    let joins_only = s.scenario == Scenario::QueueJoin;
    let visitors = args.visitors.unwrap_or(if joins_only { 100_000 } else { 20_000 });
    let window = Duration::from_secs_f64(args.window_secs.unwrap_or(if joins_only { 10.0 } else { 60.0 }).max(0.001));
    let before = window.mul_f64(args.before_share.clamp(0.0, 1.0));
    let rate = rate(args)?;
    // A moment to spawn the visitors before the first one comes.
    let start = Instant::now() + Duration::from_millis(500);
    let on_sale = start + before;
    let on_sale_at = std::time::SystemTime::now() + (on_sale - Instant::now());
    let on_sale_at =
        chrono::DateTime::<chrono::Utc>::from(on_sale_at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    set_room(s, args, json!({ "onSaleAt": on_sale_at, "waitingRoom": { "enabled": true, "ratePerMinute": rate } }))
        .await?;
    let memory_before = server_memory(s, args).await;
    let room = Arc::new(Room {
        url: args.url.trim_end_matches('/').to_owned(),
        connections: tokio::sync::Semaphore::new(CONNECTIONS),
        on_sale,
        joins_only,
        seed: args.seed.unwrap_or_else(rand::random),
        sold_out: AtomicBool::new(false),
        joined: AtomicUsize::new(0),
        admitted: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    });
    let handles: Vec<_> = (0..visitors)
        .map(|i| {
            let arrival = start + window.mul_f64((i as f64 + 0.5) / visitors as f64);
            tokio::spawn(visitor(i, arrival, s.clone(), room.clone()))
        })
        .collect();
    // Progress, and the sell-out told to those still waiting.
    let mut last = Instant::now();
    while !handles.iter().all(tokio::task::JoinHandle::is_finished) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.stats.lock().expect("stats").sold_out_at.is_some() || interrupted.load(Ordering::Relaxed) {
            room.sold_out.store(true, Ordering::Relaxed);
        }
        if !args.quiet && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let (purchases, errors) = {
                let stats = s.stats.lock().expect("stats");
                (stats.purchases, stats.timeline.iter().map(|x| x.errors).sum::<u64>())
            };
            eprint!(
                "\r{:>6.1}s  joined {:>6}  admitted {:>6}  done {:>6}/{visitors}  purchases {purchases:>6}  errors {errors}   ",
                s.start.elapsed().as_secs_f64(),
                room.joined.load(Ordering::Relaxed),
                room.admitted.load(Ordering::Relaxed),
                room.done.load(Ordering::Relaxed),
            );
        }
    }
    let mut outcomes = Vec::with_capacity(visitors);
    for handle in handles {
        outcomes.push(handle.await?);
    }
    if !args.quiet {
        eprintln!();
    }
    // The gauge is refreshed every 2 s: one refresh after the last visitor.
    tokio::time::sleep(MEMORY_REFRESH).await;
    let server_memory_mb = memory_before.zip(server_memory(s, args).await);
    // The show is left as other scenarios expect it: no room in front.
    set_room(s, args, json!({ "waitingRoom": { "enabled": false } })).await?;
    let since_on_sale = on_sale.saturating_duration_since(s.start);
    let (purchases, sold_out_at) = {
        let stats = s.stats.lock().expect("stats");
        (stats.purchases, stats.sold_out_at)
    };
    let sold_out_seconds = sold_out_at.map(|at| at.saturating_sub(since_on_sale).as_secs_f64());
    let selling = sold_out_seconds.unwrap_or_else(|| s.start.elapsed().saturating_sub(since_on_sale).as_secs_f64());
    let mut summary =
        summarize_room(&outcomes, window, before, rate, sold_out_seconds, purchases as f64 / selling.max(1e-3));
    summary.server_memory_mb = server_memory_mb;
    Ok(summary)
}

/// How often the server refreshes its memory gauge, and a little more.
const MEMORY_REFRESH: Duration = Duration::from_millis(2_200);

/// The resident memory of the process at `--url`, in MB, from its metrics.
async fn server_memory(s: &Shared, args: &LoadArgs) -> Option<f64> {
    let url = format!("{}/actuator/prometheus", args.url.trim_end_matches('/'));
    let text = s.http.get(url).bearer_auth(&args.admin_token).send().await.ok()?.text().await.ok()?;
    let line = text.lines().find(|l| l.starts_with("process_resident_memory_bytes "))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1e6)
}

fn summarize_room(
    outcomes: &[Outcome],
    window: Duration,
    before: Duration,
    rate: Value,
    sold_out_seconds: Option<f64>,
    purchases_per_second: f64,
) -> RoomSummary {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let mut waited = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for w in outcomes.iter().filter_map(|o| o.waited) {
        waited.saturating_record((w.as_micros() as u64).max(1));
    }
    let admitted: Vec<(u64, String)> = outcomes.iter().filter_map(|o| o.admitted.clone()).collect();
    let (order_inversions, mean_displacement) = stray(&admitted);
    RoomSummary {
        visitors: outcomes.len(),
        window_seconds: window.as_secs_f64(),
        on_sale_after_seconds: before.as_secs_f64(),
        rate_per_minute: rate,
        joined: count(|o| o.joined),
        joined_before_on_sale: count(|o| o.before_on_sale),
        admitted: admitted.len(),
        bought: count(|o| o.bought),
        got_nothing: count(|o| o.joined && !o.bought),
        lost_place: count(|o| o.lost_place),
        left_sold_out: count(|o| o.left_sold_out),
        time_in_queue: (!waited.is_empty()).then(|| summarize(&waited)),
        order_inversions,
        mean_displacement,
        sold_out_seconds,
        purchases_per_second,
        server_memory_mb: None,
    }
}

/// How far the admission order strays from the queue order, for visitors known by their
/// place and when their admission ends: the pairs let through the other way round, and
/// the mean distance between a visitor's two ranks. Visitors let through in one round
/// (the same end) count in queue order.
fn stray(admitted: &[(u64, String)]) -> (u64, f64) {
    if admitted.is_empty() {
        return (0, 0.0);
    }
    let mut by_time: Vec<(&str, u64)> = admitted.iter().map(|(p, at)| (at.as_str(), *p)).collect();
    by_time.sort_unstable();
    let positions: Vec<u64> = by_time.iter().map(|(_, p)| *p).collect();
    let mut in_queue_order = positions.clone();
    in_queue_order.sort_unstable();
    let displacement: usize =
        positions.iter().enumerate().map(|(rank, p)| rank.abs_diff(in_queue_order.partition_point(|q| q < p))).sum();
    (inversions(&mut positions.clone()), displacement as f64 / positions.len() as f64)
}

/// Pairs out of order in `xs` (sorting it, by merging).
fn inversions(xs: &mut [u64]) -> u64 {
    if xs.len() < 2 {
        return 0;
    }
    let mid = xs.len() / 2;
    let mut count = inversions(&mut xs[..mid]) + inversions(&mut xs[mid..]);
    let mut merged = Vec::with_capacity(xs.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < xs.len() {
        if xs[j] < xs[i] {
            count += (mid - i) as u64;
            merged.push(xs[j]);
            j += 1;
        } else {
            merged.push(xs[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&xs[i..mid]);
    merged.extend_from_slice(&xs[j..]);
    xs.copy_from_slice(&merged);
    count
}

/// `POST …/join` or `GET …/me`, recorded as the step `join` or `position read`: the
/// place, when answered.
async fn ask(s: &Shared, room: &Room, buyer: &str, join: bool) -> (u16, Option<Value>) {
    let base = format!("{}/ticketing/api/queue/{}", room.url, s.event_id);
    let due = Instant::now();
    let _connection = room.connections.acquire().await.expect("never closed");
    let r = if join {
        s.http.post(format!("{base}/join")).bearer_auth(buyer).json(&json!({})).send().await
    } else {
        s.http.get(format!("{base}/me")).bearer_auth(buyer).send().await
    };
    let code = status(&r);
    let ok = if join { matches!(code, 200 | 201) } else { code == 200 };
    s.record(if join { "join" } else { "position read" }, code, due);
    s.check(if join { "join answered 201 or 200" } else { "position read answered 200" }, ok);
    let place = match r {
        Ok(r) if ok => r.json::<Value>().await.ok(),
        _ => None,
    };
    (code, place)
}

/// When to ask again: a quarter of the wait told (half of the time to the on-sale),
/// within [`SHORTEST_POLL`] and [`LONGEST_POLL`], spread a little.
fn next_poll(place: &Value, rng: &mut StdRng) -> Duration {
    let wait = place["estimatedWaitSeconds"].as_f64().unwrap_or(1.0);
    let share = if place["status"] == "PREQUEUE" { 0.5 } else { 0.25 };
    Duration::from_secs_f64(wait * share).clamp(SHORTEST_POLL, LONGEST_POLL).mul_f64(rng.random_range(0.8..1.2))
}

async fn visitor(i: usize, arrival: Instant, s: Arc<Shared>, room: Arc<Room>) -> Outcome {
    let outcome = visit(i, arrival, &s, &room).await;
    room.done.fetch_add(1, Ordering::Relaxed);
    outcome
}

async fn visit(i: usize, arrival: Instant, s: &Shared, room: &Room) -> Outcome {
    let mut out = Outcome::default();
    let mut rng = StdRng::seed_from_u64(room.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    tokio::time::sleep_until(arrival.into()).await;
    let buyer = s.credential(format!("visitor-{}-{i}", s.run_id));
    let (_, Some(mut place)) = ask(s, room, &buyer, true).await else { return out };
    let joined = Instant::now();
    out.joined = true;
    out.before_on_sale = joined < room.on_sale;
    room.joined.fetch_add(1, Ordering::Relaxed);
    if room.joins_only {
        ask(s, room, &buyer, false).await;
        return out;
    }
    let mut failed = 0;
    loop {
        match place["status"].as_str() {
            Some("ADMITTED") => break,
            Some("EXPIRED") => {
                out.lost_place = true;
                return out;
            }
            _ => {}
        }
        if room.sold_out.load(Ordering::Relaxed) {
            out.left_sold_out = true;
            return out;
        }
        tokio::time::sleep(next_poll(&place, &mut rng)).await;
        match ask(s, room, &buyer, false).await {
            (_, Some(p)) => (place, failed) = (p, 0),
            (code, None) => {
                failed += 1;
                if failed >= GIVE_UP_AFTER {
                    return out;
                }
                if code == 0 {
                    tokio::time::sleep(UNREACHABLE_PAUSE).await;
                }
            }
        }
    }
    room.admitted.fetch_add(1, Ordering::Relaxed);
    out.waited = Some(joined.max(room.on_sale).elapsed());
    let position = place["position"].as_u64().unwrap_or(0);
    out.admitted = Some((position, place["admissionExpiresAt"].as_str().unwrap_or_default().to_owned()));
    let token = place["admissionToken"].as_str().map(str::to_owned);
    s.check("an admitted visitor has a token", token.is_some());
    out.bought = buy(i, s, room, &buyer, token.as_deref(), rng.random_range(1..=MOST_SEATS)).await;
    out
}

/// Best-available seats for an admitted visitor, `quantity` of them or fewer when that
/// many no longer fit; true when the order was confirmed.
async fn buy(i: usize, s: &Shared, room: &Room, buyer: &str, token: Option<&str>, quantity: usize) -> bool {
    let mut quantity = quantity;
    let mut failed = 0;
    loop {
        if room.sold_out.load(Ordering::Relaxed) {
            return false;
        }
        let due = Instant::now();
        let body = json!({ "eventId": s.event_id, "bestAvailable": { "quantity": quantity }, "holdSeconds": 60 });
        let (code, answer) = hold(s, i, buyer, token, body, due).await;
        let answer = answer.unwrap_or_default();
        match code {
            201 => {
                let _in_flight = InFlight::new(&s.in_flight);
                let seats: Vec<i64> =
                    answer["seatIds"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect();
                s.stats
                    .lock()
                    .expect("stats")
                    .groups
                    .push(Group { seats: seats.len(), adjacent: answer["adjacent"] == true });
                return order_and_settle(s, i, buyer, token, &seats, due).await.confirmed;
            }
            409 if answer["code"] == NOT_ENOUGH_SEATS && quantity > 1 => quantity -= 1,
            409 if answer["code"] == NOT_ENOUGH_SEATS => {
                // Purchases in flight may give seats back: sold out once it lasts.
                let in_flight = s.in_flight.load(Ordering::Relaxed) > 0;
                if s.stats.lock().expect("stats").smallest_refused(due - s.start, in_flight) {
                    return false;
                }
                tokio::time::sleep(SOLD_OUT_RETRY).await;
            }
            // No answer, or beaten to the seats picked: again.
            0 | 409 | 429 | 500.. if failed < GIVE_UP_AFTER => {
                failed += 1;
                tokio::time::sleep(UNREACHABLE_PAUSE).await;
            }
            // Refused (a token not taken, …): the check of `hold` says so.
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u32) -> String {
        format!("2026-12-07T10:00:{:02}.{:03}Z", ms / 1000, ms % 1000)
    }

    #[test]
    fn admission_in_queue_order_strays_by_nothing() {
        let admitted: Vec<(u64, String)> = (1..=6).map(|p| (p, at(p as u32 * 100))).collect();
        assert_eq!(stray(&admitted), (0, 0.0));
        // Let through in one round: their order within it is the queue's.
        let same: Vec<(u64, String)> = [3, 1, 2].iter().map(|&p| (p, at(500))).collect();
        assert_eq!(stray(&same), (0, 0.0));
        // Positions with gaps (no-shows) count by rank.
        let gaps: Vec<(u64, String)> = [(2, at(100)), (5, at(200)), (9, at(300))].into_iter().collect();
        assert_eq!(stray(&gaps), (0, 0.0));
    }

    #[test]
    fn a_visitor_let_through_early_shows_as_inversions_and_displacement() {
        // Position 4 first, then 1, 2, 3.
        let admitted = vec![(4, at(100)), (1, at(200)), (2, at(300)), (3, at(400))];
        let (inv, displacement) = stray(&admitted);
        assert_eq!(inv, 3);
        assert!((displacement - 1.5).abs() < 1e-9, "{displacement}");
        assert_eq!(inversions(&mut [5, 4, 3, 2, 1]), 10);
        assert_eq!(inversions(&mut []), 0);
    }

    #[test]
    fn visitors_ask_more_often_as_their_turn_nears() {
        let mut rng = StdRng::seed_from_u64(1);
        let far = next_poll(&json!({ "status": "WAITING", "estimatedWaitSeconds": 3600 }), &mut rng);
        assert!(far <= LONGEST_POLL.mul_f64(1.2), "{far:?}");
        let near = next_poll(&json!({ "status": "WAITING", "estimatedWaitSeconds": 2 }), &mut rng);
        assert!(near <= Duration::from_millis(600), "{near:?}");
        let prequeue = next_poll(&json!({ "status": "PREQUEUE", "estimatedWaitSeconds": 8 }), &mut rng);
        assert!((Duration::from_millis(3200)..=Duration::from_millis(4800)).contains(&prequeue), "{prequeue:?}");
    }
}
