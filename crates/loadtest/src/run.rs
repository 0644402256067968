//! Running the virtual users.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::best::{BestAvailableSummary, GROUP_SIZES, Group, SeatMap, mostly_sold, stranded_seats};
use crate::report::{Report, Threshold};
use crate::stats::{Stats, summarize};
use crate::token::TokenSigner;
use crate::{LoadArgs, OUTBOX_LAG_METRIC, Scenario};

/// Where each module answers: replicas' base URLs per module.
#[derive(Clone)]
pub(crate) struct Targets {
    pub catalog: Vec<String>,
    pub reservation: Vec<String>,
    pub order: Vec<String>,
    pub payment: Vec<String>,
}

impl Targets {
    pub fn new(args: &LoadArgs) -> Self {
        let url = args.url.trim_end_matches('/').to_owned();
        let or_url = |list: &Vec<String>| {
            let list: Vec<String> =
                list.iter().map(|u| u.trim_end_matches('/').to_owned()).filter(|u| !u.is_empty()).collect();
            if list.is_empty() { vec![url.clone()] } else { list }
        };
        Targets {
            catalog: or_url(&args.catalog_url),
            reservation: or_url(&args.reservation_url),
            order: or_url(&args.order_url),
            payment: or_url(&args.payment_url),
        }
    }

    /// Every distinct process.
    fn all(&self) -> Vec<&String> {
        let mut all: Vec<&String> =
            self.catalog.iter().chain(&self.reservation).chain(&self.order).chain(&self.payment).collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn modules(&self) -> audit::ModuleUrls {
        audit::ModuleUrls {
            catalog: self.catalog[0].clone(),
            reservation: self.reservation[0].clone(),
            order: self.order[0].clone(),
            payment: self.payment[0].clone(),
            tickets: None,
        }
    }
}

fn pick(replicas: &[String], user: usize) -> &str {
    &replicas[user % replicas.len()]
}

/// What every virtual user shares.
pub(crate) struct Shared {
    pub(crate) http: reqwest::Client,
    targets: Targets,
    pub(crate) scenario: Scenario,
    pub(crate) event_id: i64,
    seats: i64,
    next_seat: AtomicI64,
    /// `best-available`: purchases held and not yet final, whose seats may come back.
    pub(crate) in_flight: AtomicUsize,
    /// Users with an id below this keep going.
    desired: AtomicUsize,
    final_timeout: Duration,
    think: Duration,
    /// The share of CONFIRMED purchases whose tickets are read (`--tickets-share`).
    tickets_share: f64,
    /// The seed of the `best-available` users' group sizes.
    seed: u64,
    pub(crate) start: Instant,
    pub(crate) run_id: String,
    /// Signs the users' bearer tokens, when the server wants signed ones.
    auth: Option<TokenSigner>,
    pub(crate) stats: Mutex<Stats>,
}

impl Shared {
    pub(crate) fn record(&self, step: &'static str, status: u16, due: Instant) {
        let latency = due.elapsed();
        self.stats.lock().expect("stats").request(step, status, latency, due - self.start);
    }

    /// The bearer token of virtual user `name`: signed for a whole day, or the plain name.
    pub(crate) fn credential(&self, name: String) -> String {
        match &self.auth {
            Some(auth) => auth.issue(&name, false, Duration::from_secs(86_400)),
            None => name,
        }
    }

    pub(crate) fn check(&self, name: &'static str, ok: bool) {
        self.stats.lock().expect("stats").check(name, ok);
    }
}

pub(crate) fn status(r: &reqwest::Result<reqwest::Response>) -> u16 {
    r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0)
}

/// The demo venue's show, which `best-available` buys from unless told otherwise.
pub const DEMO_VENUE_EVENT: i64 = 4;

/// The show of a run: its id and its seats.
struct Show {
    event_id: i64,
    seats: i64,
}

/// Creates the run's show (none for the ceiling; `best-available` buys from an existing
/// show unless given `--venue`) and waits until its seats can be held.
async fn prepare(http: &reqwest::Client, args: &LoadArgs, targets: &Targets) -> anyhow::Result<Show> {
    let title = format!("load test ({:?})", args.scenario);
    let (show, seats) = match args.scenario {
        Scenario::Ceiling => return Ok(Show { event_id: 0, seats: 0 }),
        Scenario::Door => anyhow::bail!("the door scenario is run by door::run"),
        Scenario::Original | Scenario::Spinning | Scenario::QueueJoin => grid_show(&title, 10, 10),
        Scenario::Throughput => grid_show(&title, args.rows, args.cols),
        Scenario::BestAvailable | Scenario::Onsale => match &args.venue {
            None => {
                let event_id = args.event_id.unwrap_or(DEMO_VENUE_EVENT);
                let seats = seat_map(http, targets, &args.admin_token, event_id).await?.seats.len() as i64;
                return Ok(Show { event_id, seats });
            }
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading the venue {}", path.display()))?;
                let venue: Value =
                    serde_json::from_str(&text).with_context(|| format!("the venue {} is not JSON", path.display()))?;
                (venue_show(&title, venue), None)
            }
        },
    };
    let event_id = create_show(http, args, targets, &show).await?;
    let seats = match seats {
        Some(seats) => seats,
        None => seat_map(http, targets, &args.admin_token, event_id).await?.seats.len() as i64,
    };
    Ok(Show { event_id, seats })
}

/// A grid show to create, and its seats.
fn grid_show(title: &str, rows: i64, cols: i64) -> (Value, Option<i64>) {
    (json!({ "title": title, "dateTime": "2026-12-31T20:00:00", "rows": rows, "cols": cols }), Some(rows * cols))
}

/// The show to create from a venue file: a whole show (`{title, dateTime, venue}`) as it
/// is, or a bare `VenueLayout` wrapped in one.
fn venue_show(title: &str, venue: Value) -> Value {
    if venue.get("venue").is_some() {
        let mut show = venue;
        for (key, default) in [("title", title), ("dateTime", "2026-12-31T20:00:00")] {
            if show.get(key).is_none() {
                show[key] = json!(default);
            }
        }
        show
    } else {
        json!({ "title": title, "dateTime": "2026-12-31T20:00:00", "venue": venue })
    }
}

/// `GET /events/{id}/seats`.
async fn seat_map(http: &reqwest::Client, targets: &Targets, token: &str, event_id: i64) -> anyhow::Result<SeatMap> {
    let url = format!("{}/ticketing/api/events/{event_id}/seats", targets.catalog[0]);
    let r = http.get(&url).bearer_auth(token).send().await.with_context(|| format!("reading {url}"))?;
    anyhow::ensure!(r.status().as_u16() == 200, "reading {url}: {}", r.status());
    r.json().await.with_context(|| format!("reading {url}: not a seat map"))
}

/// Creates `show` and waits until its seat 1 can be held.
pub(crate) async fn create_show(
    http: &reqwest::Client,
    args: &LoadArgs,
    targets: &Targets,
    show: &Value,
) -> anyhow::Result<i64> {
    let api = format!("{}/ticketing/api", targets.catalog[0]);
    let holds = format!("{}/ticketing/api", targets.reservation[0]);
    let r = http
        .post(format!("{api}/admin/events"))
        .bearer_auth(&args.admin_token)
        .json(show)
        .send()
        .await
        .context("creating the show")?;
    anyhow::ensure!(
        r.status().as_u16() == 201,
        "creating the show: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    let event_id = r.json::<Value>().await?["id"].as_i64().context("the show has an id")?;
    for _ in 0..600 {
        let probe = json!({ "eventId": event_id, "seatId": 1, "holdSeconds": 5 });
        let r = http.post(format!("{holds}/reservations")).bearer_auth(&args.admin_token).json(&probe).send().await?;
        if r.status().as_u16() == 201 {
            http.delete(format!("{holds}/reservations/{event_id}/1")).bearer_auth(&args.admin_token).send().await?;
            return Ok(event_id);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the show's seats never became holdable")
}

/// A virtual user: purchase after purchase, `think` apart. Each request is due when the
/// user means to send it — `think` after the last purchase ended, or as soon as the
/// previous step answered — and its latency counts from then, not from when the
/// generator got round to sending it: a generator that falls behind, or a server that
/// stalls the user's previous step, shows up in the numbers instead of thinning them.
///
/// A request that got no answer at all (connection refused or reset: the server is
/// down, as in the fault-injection suite) counts as a failed request with status 0, and
/// the user pauses [`UNREACHABLE_PAUSE`] before its next purchase instead of spinning.
async fn user(id: usize, s: Arc<Shared>) {
    let buyer = s.credential(format!("load-{}-{id}", s.run_id));
    // Each user's own sequence of group sizes, from the run's seed.
    let mut sizes = StdRng::seed_from_u64(s.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut due = Instant::now();
    while id < s.desired.load(Ordering::Relaxed) {
        tokio::time::sleep_until(due.into()).await;
        let answered = match s.scenario {
            Scenario::Ceiling => {
                let r = s.http.get(format!("{}/actuator/info", pick(&s.targets.catalog, id))).send().await;
                s.record("info", status(&r), due);
                s.check("info answered 200", status(&r) == 200);
                r.is_ok()
            }
            Scenario::Original | Scenario::Spinning => {
                let seat = rand::rng().random_range(1..=s.seats);
                purchase(&s, id, &buyer, seat, due).await
            }
            Scenario::Throughput => {
                let seat = s.next_seat.fetch_add(1, Ordering::Relaxed);
                if seat > s.seats {
                    return; // sold out
                }
                purchase(&s, id, &buyer, seat, due).await
            }
            // Visitors of the waiting room's scenarios come once each (`crate::room`).
            Scenario::Onsale | Scenario::QueueJoin | Scenario::Door => return,
            Scenario::BestAvailable => {
                let quantity = sizes.random_range(GROUP_SIZES);
                match best_available(&s, id, &buyer, quantity, due).await {
                    Some(answered) => answered,
                    None => return, // sold out
                }
            }
        };
        due = Instant::now() + if answered { s.think } else { s.think.max(UNREACHABLE_PAUSE) };
    }
}

/// How long one `GET /orders/{id}` may wait on the server for the order to settle.
const ORDER_WAIT_SECONDS: u64 = 10;

/// How long a user waits after a request that got no answer.
pub(crate) const UNREACHABLE_PAUSE: Duration = Duration::from_millis(100);

/// Hold → order → wait for the final state, with k6-like checks. False when a request
/// got no answer (the server unreachable).
async fn purchase(s: &Shared, user: usize, buyer: &str, seat: i64, due: Instant) -> bool {
    let (code, _) =
        hold(s, user, buyer, None, json!({ "eventId": s.event_id, "seatId": seat, "holdSeconds": 60 }), due).await;
    if code != 201 {
        return code != 0;
    }
    order_and_settle(s, user, buyer, None, &[seat], due).await.answered
}

/// What the server calls a best-available hold it cannot fit (docs/VENUES.md).
pub(crate) const NOT_ENOUGH_SEATS: &str = "NOT_ENOUGH_SEATS";

/// How long a user refused `NOT_ENOUGH_SEATS` waits before asking again (for another
/// size, or while other users' purchases are in flight: a cancelled one gives its seats
/// back).
pub(crate) const SOLD_OUT_RETRY: Duration = Duration::from_millis(100);

/// Counts a purchase in flight for as long as it lives.
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    pub(crate) fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A best-available purchase of `quantity` seats: hold the best, then order and pay for
/// those the server picked. `None` when the show is sold out: the smallest group
/// refused `NOT_ENOUGH_SEATS` for a while with no purchase in flight
/// ([`Stats::smallest_refused`]; a user refused asks again a little later, with another
/// size); else whether the server answered.
async fn best_available(s: &Shared, user: usize, buyer: &str, quantity: usize, due: Instant) -> Option<bool> {
    let body = json!({ "eventId": s.event_id, "bestAvailable": { "quantity": quantity }, "holdSeconds": 60 });
    let (code, answer) = hold(s, user, buyer, None, body, due).await;
    let answer = answer.unwrap_or_default();
    if code != 201 && code != 0 {
        let refusal = format!("{code} {}", answer["code"].as_str().unwrap_or("(no code)"));
        *s.stats.lock().expect("stats").refused.entry(refusal).or_default() += 1;
    }
    if code == 409 && answer["code"] == NOT_ENOUGH_SEATS {
        if quantity == *GROUP_SIZES.start() {
            let in_flight = s.in_flight.load(Ordering::Relaxed) > 0;
            if s.stats.lock().expect("stats").smallest_refused(due - s.start, in_flight) {
                return None;
            }
        }
        tokio::time::sleep(SOLD_OUT_RETRY).await;
        return Some(true);
    }
    if code != 201 {
        return Some(code != 0);
    }
    let _in_flight = InFlight::new(&s.in_flight);
    let seats: Vec<i64> = answer["seatIds"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect();
    s.check("best available held the seats asked for", seats.len() == quantity);
    s.stats.lock().expect("stats").groups.push(Group { seats: seats.len(), adjacent: answer["adjacent"] == true });
    Some(order_and_settle(s, user, buyer, None, &seats, due).await.answered)
}

/// The header an admitted visitor's holds and orders carry (the waiting room's).
const ADMISSION_TOKEN: &str = "Admission-Token";

/// A request of `buyer`, with the admission token when there is one.
fn as_buyer(request: reqwest::RequestBuilder, buyer: &str, admission: Option<&str>) -> reqwest::RequestBuilder {
    let request = request.bearer_auth(buyer);
    match admission {
        Some(token) => request.header(ADMISSION_TOKEN, token),
        None => request,
    }
}

/// `POST /reservations` with `body`, recorded as the step `hold` (or `hold refused`):
/// the status (0 without an answer) and the answer's JSON.
pub(crate) async fn hold(
    s: &Shared,
    user: usize,
    buyer: &str,
    admission: Option<&str>,
    body: Value,
    due: Instant,
) -> (u16, Option<Value>) {
    let reservations = pick(&s.targets.reservation, user);
    let request = s.http.post(format!("{reservations}/ticketing/api/reservations"));
    let r = as_buyer(request, buyer, admission).json(&body).send().await;
    let code = status(&r);
    s.record(if code == 201 { "hold" } else { "hold refused" }, code, due);
    s.check("hold answered 201, 409 or 422", matches!(code, 201 | 409 | 422));
    let answer = match r {
        Ok(r) => r.json::<Value>().await.ok(),
        Err(_) => None,
    };
    (code, answer)
}

/// How a purchase ended: whether the server answered every request, and whether the
/// order was CONFIRMED.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settled {
    pub(crate) answered: bool,
    pub(crate) confirmed: bool,
}

/// Order the seats held (the hold was due at `hold_due`) and wait for the order's final
/// state.
pub(crate) async fn order_and_settle(
    s: &Shared,
    user: usize,
    buyer: &str,
    admission: Option<&str>,
    seats: &[i64],
    hold_due: Instant,
) -> Settled {
    let orders = pick(&s.targets.order, user);
    let due = Instant::now();
    let order = json!({ "eventId": s.event_id, "seatIds": seats });
    let request = s.http.post(format!("{orders}/ticketing/api/orders"));
    let r = as_buyer(request, buyer, admission)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&order)
        .send()
        .await;
    let code = status(&r);
    s.record("order", code, due);
    s.check("order answered 201", code == 201);
    let Some(order_id) = (match r {
        Ok(r) if code == 201 => r.json::<Value>().await.ok().and_then(|o| o["orderId"].as_i64()),
        _ => None,
    }) else {
        return Settled { answered: code != 0, confirmed: false };
    };
    let accepted = Instant::now();
    // The server holds each request until the order settles (`waitSeconds`); a server
    // that answers at once (an older one, or one restarting) is polled with back-off.
    let mut pause = Duration::ZERO;
    loop {
        tokio::time::sleep(pause).await;
        let due = Instant::now();
        let r = s
            .http
            .get(format!("{orders}/ticketing/api/orders/{order_id}?waitSeconds={ORDER_WAIT_SECONDS}"))
            .bearer_auth(buyer)
            .send()
            .await;
        pause = if due.elapsed() < Duration::from_millis(50) {
            (pause * 2).clamp(Duration::from_millis(10), Duration::from_millis(100))
        } else {
            Duration::ZERO
        };
        let code = status(&r);
        s.record("order status (waits to settle)", code, due);
        let state = match r {
            Ok(r) if code == 200 => r.json::<Value>().await.ok().and_then(|o| o["status"].as_str().map(str::to_owned)),
            _ => None,
        };
        match state.as_deref() {
            Some("CONFIRMED") | Some("CANCELLED") => {
                let confirmed = state.as_deref() == Some("CONFIRMED");
                {
                    let mut stats = s.stats.lock().expect("stats");
                    stats.duration("final state (seen by client)", accepted.elapsed());
                    // Wherever the wait was (an order let in late, a slow saga), the buyer's.
                    stats.duration("purchase (hold due to final state seen)", hold_due.elapsed());
                    stats.check("order reached a final state", true);
                    if confirmed {
                        stats.purchase(accepted - s.start);
                    }
                }
                let read_tickets = confirmed && s.tickets_share > 0.0 && rand::rng().random_bool(s.tickets_share);
                if read_tickets {
                    await_tickets(s, orders, buyer, order_id, seats.len()).await;
                }
                return Settled { answered: true, confirmed };
            }
            _ if accepted.elapsed() > s.final_timeout => {
                s.check("order reached a final state", false);
                return Settled { answered: code != 0, confirmed: false };
            }
            // The server is away (killed, restarting): keep asking, a little less often.
            _ if code == 0 => pause = pause.max(UNREACHABLE_PAUSE),
            _ => {}
        }
    }
}

/// How often a buyer reads an order's tickets again while they are not all there.
const TICKETS_POLL: Duration = Duration::from_millis(5);

/// Reads a CONFIRMED order's tickets until there is one per seat (or the final-state
/// timeout), recording how long after the CONFIRMED answer that was.
async fn await_tickets(s: &Shared, orders: &str, buyer: &str, order_id: i64, seats: usize) {
    let confirmed = Instant::now();
    let url = format!("{orders}/ticketing/api/orders/{order_id}/tickets");
    loop {
        let due = Instant::now();
        let r = s.http.get(&url).bearer_auth(buyer).send().await;
        let code = status(&r);
        s.record("tickets read", code, due);
        let issued = match r {
            Ok(r) if code == 200 => r.json::<Value>().await.ok().and_then(|t| t.as_array().map(Vec::len)),
            _ => None,
        };
        if issued.is_some_and(|n| n >= seats) {
            let mut stats = s.stats.lock().expect("stats");
            // When the read that found them all was sent: about 0 when the first did.
            stats.duration("tickets after CONFIRMED", due - confirmed);
            stats.check("a CONFIRMED order's tickets were issued", true);
            return;
        }
        if confirmed.elapsed() > s.final_timeout {
            s.check("a CONFIRMED order's tickets were issued", false);
            return;
        }
        tokio::time::sleep(TICKETS_POLL).await;
    }
}

/// Where the run is `elapsed` into the stages: the stage's number (from 1) and the users
/// wanted then, on a linear ramp within each stage, as k6 does.
pub fn stage_at(stages: &[crate::Stage], elapsed: Duration) -> Option<(usize, usize)> {
    let mut from = 0usize;
    let mut t = Duration::ZERO;
    for (number, stage) in (1..).zip(stages) {
        if elapsed < t + stage.duration {
            let f = (elapsed - t).as_secs_f64() / stage.duration.as_secs_f64().max(1e-9);
            return Some((number, (from as f64 + (stage.target as f64 - from as f64) * f).round() as usize));
        }
        t += stage.duration;
        from = stage.target;
    }
    None
}

/// What is still in flight in every process: orders not final, events not published
/// or not applied, gateway calls to make.
async fn backlog(http: &reqwest::Client, targets: &Targets, admin_token: &str) -> Option<i64> {
    let mut total = 0;
    for url in targets.all() {
        let r = http.get(format!("{url}/actuator/backlog")).bearer_auth(admin_token).send().await.ok()?;
        let body: Value = r.json().await.ok()?;
        total += body["total"].as_i64()?;
    }
    Some(total)
}

/// The p99 in ms of a Prometheus histogram, its buckets summed over every process.
async fn scraped_p99(http: &reqwest::Client, targets: &Targets, admin_token: &str, metric: &str) -> Option<f64> {
    let mut texts = Vec::new();
    for url in targets.all() {
        let r = http.get(format!("{url}/actuator/prometheus")).bearer_auth(admin_token).send().await.ok()?;
        texts.push(r.text().await.ok()?);
    }
    p99_of(&texts, metric)
}

/// The p99 in ms (the upper bound of its bucket) of `metric`'s histogram, summed over
/// several Prometheus text expositions.
fn p99_of(texts: &[String], metric: &str) -> Option<f64> {
    let prefix = format!("{metric}_bucket{{");
    let mut buckets: BTreeMap<u64, f64> = BTreeMap::new(); // le in µs → cumulative count
    for line in texts.iter().flat_map(|t| t.lines()).filter(|l| l.starts_with(&prefix)) {
        // The `le` label, not the end of another label's name (`module="…"`).
        let le = line.split(",le=\"").nth(1).or_else(|| line.split("{le=\"").nth(1))?.split('"').next()?;
        let le = if le == "+Inf" { u64::MAX } else { (le.parse::<f64>().ok()? * 1e6).round() as u64 };
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        *buckets.entry(le).or_default() += count;
    }
    let total = *buckets.get(&u64::MAX)?;
    let le = buckets.iter().find(|(_, n)| **n >= 0.99 * total && total > 0.0).map(|(le, _)| *le)?;
    Some(if le == u64::MAX { f64::INFINITY } else { le as f64 / 1000.0 })
}

pub async fn run(args: &LoadArgs) -> anyhow::Result<Report> {
    let url = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(2048).timeout(Duration::from_secs(30)).build()?;
    let targets = Targets::new(args);
    let Show { event_id, seats } = prepare(&http, args, &targets).await?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let free_at_start = match args.scenario {
        Scenario::BestAvailable => seat_map(&http, &targets, &args.admin_token, event_id).await?.free(),
        _ => 0,
    };
    let shared = Arc::new(Shared {
        http: http.clone(),
        targets: targets.clone(),
        scenario: args.scenario,
        event_id,
        seats,
        next_seat: AtomicI64::new(1),
        in_flight: AtomicUsize::new(0),
        auth: args.auth_secret.as_ref().map(|key| TokenSigner::new(key.trim().as_bytes())),
        desired: AtomicUsize::new(0),
        final_timeout: Duration::from_secs(args.final_timeout_secs),
        tickets_share: args.tickets_share.clamp(0.0, 1.0),
        think: Duration::from_millis(
            args.think_ms.unwrap_or(if matches!(args.scenario, Scenario::Original | Scenario::Spinning) {
                1000
            } else {
                0
            }),
        ),
        seed,
        start: Instant::now(),
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        stats: Mutex::new(Stats::default()),
    });
    // Ctrl-C (SIGINT) ends the stages early — the run still drains, audits and reports,
    // as k6 does; a second one ends the process.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_interrupt = interrupted.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.store(true, Ordering::Relaxed);
            eprintln!("\ninterrupted: ending the stages; draining and auditing (Ctrl-C again to quit)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let bot = (args.scenario == Scenario::Spinning).then(|| tokio::spawn(spin(shared.clone())));
    // The waiting room's scenarios: visitors arrive over a window instead of stages.
    let queued = matches!(args.scenario, Scenario::Onsale | Scenario::QueueJoin);
    let waiting_room = if queued { Some(crate::room::drive(&shared, args, &interrupted).await?) } else { None };
    let mut users: Vec<Option<JoinHandle<()>>> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last_print = (Instant::now(), 0u64, 0u64);
    let mut max_users = waiting_room.as_ref().map_or(0, |r| r.visitors);
    // `best-available`: the seats stranded once 90% is sold, read while the users buy.
    let mut stranded_at_90: Option<JoinHandle<Option<usize>>> = None;
    while let Some((stage, wanted)) = stage_at(&args.stages, shared.start.elapsed()).filter(|_| !queued) {
        tick.tick().await;
        if shared.stats.lock().expect("stats").sold_out_at.is_some() {
            break; // sold out: nobody can be given the smallest group
        }
        shared.desired.store(wanted, Ordering::Relaxed);
        if users.len() < wanted {
            users.resize_with(wanted, || None);
        }
        for (id, slot) in users.iter_mut().enumerate().take(wanted) {
            if slot.as_ref().is_none_or(|h| h.is_finished()) {
                *slot = Some(tokio::spawn(user(id, shared.clone())));
            }
        }
        let active = users.iter().filter(|h| h.as_ref().is_some_and(|h| !h.is_finished())).count();
        max_users = max_users.max(active);
        shared.stats.lock().expect("stats").users(shared.start.elapsed(), active);
        if last_print.0.elapsed() >= Duration::from_secs(1) {
            let (requests, errors, purchases) = {
                let stats = shared.stats.lock().expect("stats");
                let requests: u64 = stats.timeline.iter().map(|s| s.requests).sum();
                let errors: u64 = stats.timeline.iter().map(|s| s.errors).sum();
                (requests, errors, stats.purchases)
            };
            if !args.quiet {
                let secs = last_print.0.elapsed().as_secs_f64();
                eprint!(
                    "\r{:>5.1}s  stage {stage}/{}  users {active:>4}/{wanted:<4} req/s {:>7.0}  purchases/s {:>6.0}  errors {errors}   ",
                    shared.start.elapsed().as_secs_f64(),
                    args.stages.len(),
                    (requests - last_print.1) as f64 / secs,
                    (purchases - last_print.2) as f64 / secs,
                );
                let _ = std::io::stderr().flush();
            }
            last_print = (Instant::now(), requests, purchases);
        }
        if args.scenario == Scenario::Throughput && shared.next_seat.load(Ordering::Relaxed) > seats {
            break; // sold out
        }
        if args.scenario == Scenario::BestAvailable
            && stranded_at_90.is_none()
            && mostly_sold(&shared.stats.lock().expect("stats").groups, free_at_start)
        {
            let (http, targets, token) = (http.clone(), targets.clone(), args.admin_token.clone());
            stranded_at_90 = Some(tokio::spawn(async move {
                let map = seat_map(&http, &targets, &token, event_id).await.ok()?;
                Some(stranded_seats(&map.seats))
            }));
        }
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
    }
    let stranded_at_90 = match stranded_at_90 {
        Some(read) => read.await.ok().flatten(),
        None => None,
    };
    shared.desired.store(0, Ordering::Relaxed);
    for handle in users.into_iter().flatten() {
        let _ = handle.await;
    }
    let bot = match bot {
        Some(handle) => Some(handle.await?),
        None => None,
    };
    let load_seconds = shared.start.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!();
    }

    // How long until nothing is in flight any more.
    let stopped = Instant::now();
    let mut drained = None;
    while stopped.elapsed() < Duration::from_secs(args.drain_timeout_secs) {
        if backlog(&http, &targets, &args.admin_token).await == Some(0) {
            drained = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let audit = if args.scenario == Scenario::Ceiling {
        None
    } else {
        Some(audit::audit_modules(&targets.modules(), &args.admin_token, Duration::from_secs(30)).await?)
    };
    let snapshot = if args.scenario == Scenario::Ceiling {
        None
    } else {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Some(audit::snapshot_modules(&client, &targets.modules(), &args.admin_token).await?)
    };
    let mut server_final = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut seats_sold = 0;
    if let Some(snap) = &snapshot {
        for o in snap.orders.iter().filter(|o| o.event_id == event_id && o.status != "CREATED") {
            server_final.saturating_record(((o.updated_at - o.created_at).max(0) as u64 * 1000).max(1));
        }
        seats_sold = snap.reserved.iter().filter(|x| x.event_id == event_id && x.status == "SOLD").count();
    }

    // The seats left: stranded singles on the final seat map.
    let final_map = match args.scenario {
        Scenario::BestAvailable => match seat_map(&http, &targets, &args.admin_token, event_id).await {
            Ok(map) => Some(map),
            Err(error) => {
                eprintln!("could not read the final seat map: {error:#}");
                None
            }
        },
        _ => None,
    };

    interrupt.abort();
    let outbox_lag_p99_ms = scraped_p99(&http, &targets, &args.admin_token, OUTBOX_LAG_METRIC).await;
    let stats = shared.stats.lock().expect("stats");
    let steps: BTreeMap<String, _> = stats.steps.iter().map(|(k, h)| (k.to_string(), summarize(h))).collect();
    let requests: u64 = stats.timeline.iter().map(|s| s.requests).sum();
    let passes: u64 = stats.checks.values().map(|c| c.passes).sum();
    let fails: u64 = stats.checks.values().map(|c| c.fails).sum();
    let check_rate = if passes + fails == 0 { 1.0 } else { passes as f64 / (passes + fails) as f64 };
    let mut thresholds = vec![Threshold::new(
        "checks pass",
        check_rate >= args.min_check_rate,
        format!("{:.2}% ≥ {:.2}%", check_rate * 100.0, args.min_check_rate * 100.0),
    )];
    if let Some(max) = args.max_api_p99_ms {
        for step in ["hold", "order"] {
            if let Some(s) = steps.get(step) {
                thresholds.push(Threshold::new(
                    "API p99",
                    s.p99_ms <= max,
                    format!("{step} p99 {:.1} ms ≤ {max} ms", s.p99_ms),
                ));
            }
        }
    }
    if let Some(audit) = &audit {
        let detail = if audit.violations.is_empty() { "no violation".to_owned() } else { audit.violations.join("; ") };
        thresholds.push(Threshold::new("audit", audit.violations.is_empty(), detail));
    }
    if args.scenario != Scenario::Ceiling {
        thresholds.push(Threshold::new(
            "drained",
            drained.is_some(),
            drained.map_or_else(
                || format!("not within {} s", args.drain_timeout_secs),
                |d| format!("in {} ms", d.as_millis()),
            ),
        ));
    }
    if let (Some(bot), Some(cap)) = (&bot, args.bot_cap) {
        thresholds.push(Threshold::new(
            "bot held at most its cap",
            bot.held_max <= cap,
            format!("{} seats at most ≤ {cap}", bot.held_max),
        ));
    }
    if args.scenario == Scenario::Original {
        thresholds.push(Threshold::new(
            "sold out",
            seats_sold as i64 == seats,
            format!("{seats_sold} of {seats} seats sold"),
        ));
    }
    let best_available = (args.scenario == Scenario::BestAvailable).then(|| BestAvailableSummary {
        refused: stats.refused.clone(),
        sold_out_seconds: stats.sold_out_at.map(|at| at.as_secs_f64()),
        free_at_end: final_map.as_ref().map(SeatMap::free),
        stranded_seats: final_map.as_ref().map(|map| stranded_seats(&map.seats)),
        stranded_at_90,
        ..BestAvailableSummary::new(seed, free_at_start, &stats.groups)
    });
    if let Some(room) = &waiting_room {
        thresholds.extend(room.thresholds());
    }
    let passed = thresholds.iter().all(|t| t.ok);
    Ok(Report {
        scenario: args.scenario,
        url,
        stages: args.stages.clone(),
        event_id,
        seats,
        seats_sold,
        max_users,
        load_seconds,
        requests,
        requests_per_second: requests as f64 / load_seconds,
        purchases: stats.purchases,
        purchases_per_second: stats.purchases as f64 / load_seconds,
        steps,
        final_state_server: (!server_final.is_empty()).then(|| summarize(&server_final)),
        drain_ms: drained.map(|d| d.as_millis() as u64),
        outbox_lag_p99_ms,
        statuses: stats.statuses.clone(),
        checks: stats.checks.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        check_rate,
        audit_violations: audit.map(|a| a.violations).unwrap_or_default(),
        thresholds,
        passed,
        timeline: stats.timeline(),
        bot,
        best_available,
        waiting_room,
    })
}

/// Seats a spinning bot asks for at once, and how long it asks to hold them.
const BOT_SEATS: usize = 4;
const BOT_HOLD_SECONDS: u64 = 120;

/// What the spinning bot achieved.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BotSummary {
    pub requests: u64,
    pub granted: u64,
    /// The most seats it held at once (counting each grant until its expiry).
    pub held_max: u64,
}

/// The bot of the `spinning` scenario: no credentials (a new anonymous buyer each time),
/// random seats, as fast as answered, until the users stop.
async fn spin(s: Arc<Shared>) -> BotSummary {
    let url = format!("{}/ticketing/api/reservations", s.targets.reservation[0]);
    let mut summary = BotSummary::default();
    let mut held: Vec<(Instant, u64)> = Vec::new();
    // The users start at the first stage's first tick.
    while s.desired.load(Ordering::Relaxed) == 0 && s.start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while s.desired.load(Ordering::Relaxed) > 0 {
        let seats: Vec<i64> = {
            let mut rng = rand::rng();
            let mut seats: Vec<i64> = (0..BOT_SEATS).map(|_| rng.random_range(1..=s.seats)).collect();
            seats.sort_unstable();
            seats.dedup();
            seats
        };
        let due = Instant::now();
        let body = json!({ "eventId": s.event_id, "seatIds": seats, "holdSeconds": BOT_HOLD_SECONDS });
        let r = s.http.post(&url).json(&body).send().await;
        let code = status(&r);
        s.record(if code == 201 { "bot hold" } else { "bot hold refused" }, code, due);
        summary.requests += 1;
        if code == 201 {
            summary.granted += 1;
            held.push((Instant::now() + Duration::from_secs(BOT_HOLD_SECONDS), seats.len() as u64));
        }
        held.retain(|(until, _)| *until > Instant::now());
        summary.held_max = summary.held_max.max(held.iter().map(|(_, n)| n).sum());
        if code == 0 || code == 429 {
            tokio::time::sleep(UNREACHABLE_PAUSE).await;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_stages;

    #[test]
    fn a_p99_comes_from_the_summed_buckets() {
        let a = "x_bucket{module=\"a\",le=\"0.001\"} 50\nx_bucket{m=\"a\",le=\"0.01\"} 99\nx_bucket{m=\"a\",le=\"+Inf\"} 100\n".to_owned();
        let b =
            "x_bucket{m=\"b\",le=\"0.001\"} 0\nx_bucket{m=\"b\",le=\"0.01\"} 0\nx_bucket{m=\"b\",le=\"+Inf\"} 100\n"
                .to_owned();
        assert_eq!(p99_of(std::slice::from_ref(&a), "x"), Some(10.0));
        assert_eq!(p99_of(&[a, b], "x"), Some(f64::INFINITY));
        assert_eq!(p99_of(&["y 1".to_owned()], "x"), None);
    }

    #[test]
    fn a_venue_file_is_a_whole_show_or_a_bare_layout() {
        let layout = json!({ "categories": [], "sections": [] });
        let show = venue_show("load test", layout.clone());
        assert_eq!(show["venue"], layout);
        assert_eq!(show["title"], "load test");
        assert!(show["dateTime"].is_string());
        let show = venue_show("load test", json!({ "title": "Carmen", "venue": layout }));
        assert_eq!(show["title"], "Carmen");
        assert!(show["dateTime"].is_string());
        assert!(show["venue"]["sections"].is_array());
        // The example venue of docs/LOAD_TESTING.md is a whole show.
        let example: Value = serde_json::from_str(include_str!("../venues/small-hall.json")).unwrap();
        let show = venue_show("load test", example.clone());
        assert_eq!(show, example);
        assert_eq!(show["venue"]["sections"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn users_ramp_linearly_through_the_stages() {
        let stages = parse_stages("10s:50,20s:100,10s:100").unwrap();
        assert_eq!(stage_at(&stages, Duration::ZERO), Some((1, 0)));
        assert_eq!(stage_at(&stages, Duration::from_secs(5)), Some((1, 25)));
        assert_eq!(stage_at(&stages, Duration::from_secs(20)), Some((2, 75)));
        assert_eq!(stage_at(&stages, Duration::from_secs(35)), Some((3, 100)));
        assert_eq!(stage_at(&stages, Duration::from_secs(40)), None);
    }
}
