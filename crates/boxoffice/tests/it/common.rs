//! Starting boxoffice for a test, and a buyer to drive it.

use std::fmt::Display;
use std::time::Duration;

use boxoffice::app::{Application, Modules};
use boxoffice::cli::{Durability, Role, ServeArgs, TokenArgs};
use reqwest::{Response, StatusCode};
use runtime::clock::Clock;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN: &str = "test-admin-token";

/// What [`eventually`] waits for: a `true`, or a `Some` whose value it returns.
pub trait Arrived {
    type Value;
    fn arrived(self) -> Option<Self::Value>;
}

impl Arrived for bool {
    type Value = ();
    fn arrived(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Arrived for Option<T> {
    type Value = T;
    fn arrived(self) -> Option<T> {
        self
    }
}

/// Asks `probe` every 20 ms until it answers `true` or `Some(value)`, for at most
/// `within`; returns the value, or panics saying `what` never happened.
pub async fn eventually<A: Arrived, F: Future<Output = A>>(
    within: Duration,
    what: impl Display,
    probe: impl FnMut() -> F,
) -> A::Value {
    match at_most(within, probe).await {
        Some(value) => value,
        None => panic!("never happened within {within:?}: {what}"),
    }
}

/// [`eventually`] for a wait that may end either way: `None` once `within` is over.
pub async fn at_most<A: Arrived, F: Future<Output = A>>(
    within: Duration,
    mut probe: impl FnMut() -> F,
) -> Option<A::Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await.arrived() {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The id of demo show `event_id`'s `n`th seat (1 to 100, row by row): the original's
/// database numbered the demo shows' seats together, so show e's are e, e + 3, e + 6, …
/// (a show made through the API numbers its seats 1, 2, 3, …).
/// The demo shows: the original's three grids and the demo venue.
pub const DEMO_EVENTS: usize = 4;

pub fn seat(event_id: i64, n: i64) -> i64 {
    assert!((1..=100).contains(&n), "the demo shows have 100 seats");
    catalog::demo_seat_id(event_id, n - 1)
}

/// [`seat`] for several seats of one demo show.
pub fn seats<const N: usize>(event_id: i64, ns: [i64; N]) -> [i64; N] {
    ns.map(|n| seat(event_id, n))
}

/// Connections per PostgreSQL database in tests: the test processes together must stay
/// under the server's `max_connections` (100 by default).
pub const TEST_POOL: u32 = 4;

/// Where a test's module databases live: SQLite files in its data directory, or — with
/// `BOXOFFICE_TEST_DB=postgres` and `BOXOFFICE_TEST_POSTGRES` naming a server —
/// PostgreSQL databases of its own, under a fresh prefix. The whole suite runs against
/// either.
#[derive(Clone)]
pub struct Store {
    pub data: std::path::PathBuf,
    pub postgres: Option<(String, String)>,
    /// With `BOXOFFICE_TEST_BUS=kafka` (and `BOXOFFICE_TEST_KAFKA` naming the broker): the
    /// bus is Kafka, under a namespace of the test's own.
    pub kafka: Option<(String, String)>,
}

impl Store {
    pub fn new(data: &std::path::Path) -> Store {
        let postgres = (std::env::var("BOXOFFICE_TEST_DB").as_deref() == Ok("postgres")).then(|| {
            let server = std::env::var("BOXOFFICE_TEST_POSTGRES")
                .expect("BOXOFFICE_TEST_DB=postgres needs BOXOFFICE_TEST_POSTGRES");
            let prefix = format!("bt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            (server, prefix)
        });
        let kafka = (std::env::var("BOXOFFICE_TEST_BUS").as_deref() == Ok("kafka")).then(|| {
            std::env::var("BOXOFFICE_TEST_KAFKA").expect("BOXOFFICE_TEST_BUS=kafka needs BOXOFFICE_TEST_KAFKA")
        });
        let namespace = format!("bt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Store { data: data.to_path_buf(), postgres, kafka: kafka.map(|k| (k, namespace)) }
    }

    /// Embedded databases in `data`, whatever engine the run tests.
    pub fn sqlite(data: &std::path::Path) -> Store {
        Store { data: data.to_path_buf(), postgres: None, kafka: None }
    }

    /// The `serve` arguments that put a process's databases here.
    pub fn serve_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.data.display().to_string()];
        if let Some((server, prefix)) = &self.postgres {
            args.extend(["--postgres".to_owned(), server.clone(), "--database-prefix".to_owned(), prefix.clone()]);
            args.extend(["--postgres-pool".to_owned(), TEST_POOL.to_string()]);
        }
        if let Some((brokers, namespace)) = &self.kafka {
            args.extend(["--kafka".to_owned(), brokers.clone(), "--kafka-namespace".to_owned(), namespace.clone()]);
        }
        args
    }

    /// A connection pool to one module's database, to look at it or tamper with it.
    pub async fn connect(&self, module: &str) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new().max_connections(2).connect(&self.url(module)).await.unwrap()
    }

    /// The internal reference (pins, payments and events name orders by it) of the order
    /// numbered `order_no`.
    pub async fn order_ref(&self, order_no: i64) -> String {
        let db = self.connect("order").await;
        sqlx::query_scalar("SELECT order_id FROM orders WHERE order_no = $1")
            .bind(order_no)
            .fetch_one(&db)
            .await
            .unwrap()
    }

    /// The URL of one module's database.
    pub fn url(&self, module: &str) -> String {
        match &self.postgres {
            Some((server, prefix)) => format!("{}/{prefix}_{module}", server.trim_end_matches('/')),
            None => format!("sqlite://{}", self.data.join(format!("{module}.db")).display()),
        }
    }
}

pub struct TestApp {
    pub url: String,
    /// What the app times holds, expiries, idempotency keys and tokens by: a manual
    /// clock the test may [`Clock::advance`] instead of sleeping.
    pub clock: Clock,
    /// The operator's listener (`--admin-addr`), when the test asked for one.
    pub admin_url: Option<String>,
    pub store: Store,
    pub modules: Modules,
    /// Kept for as long as the app runs.
    _data: TempDir,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Arguments for a fast test server: instant payments that always succeed, demo data,
/// buyers named by plain bearer tokens, no rate limits (tests of those set their own).
pub fn args() -> ServeArgs {
    ServeArgs {
        addr: "127.0.0.1:0".parse().unwrap(),
        admin_token: Some(ADMIN.into()),
        open_bearer: true,
        rate_limit_buyer: 0,
        rate_limit_address: 0,
        payment_success_rate: 1.0,
        payment_latency_ms: (0, 0),
        sweep_interval_ms: 100,
        durability: Durability::Normal,
        ..ServeArgs::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(args()).await
}

pub async fn spawn_with(mut args: ServeArgs) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let store = Store::new(data.path());
    args.data_dir = data.path().to_path_buf();
    if let (Some((server, prefix)), None) = (&store.postgres, &args.postgres) {
        args.postgres = Some(server.clone());
        args.database_prefix = prefix.clone();
        args.postgres_pool = TEST_POOL;
    }
    if let Some((brokers, namespace)) = &store.kafka {
        args.kafka = Some(brokers.clone());
        args.kafka_namespace = namespace.clone();
    }
    if let Clock::System = args.clock {
        args.clock = Clock::manual();
    }
    let clock = args.clock.clone();
    let app = Application::build(args).await.expect("app builds");
    let url = format!("http://{}", app.addr());
    let admin_url = app.admin_addr().map(|a| format!("http://{a}"));
    let modules = app.modules.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let test =
        TestApp { url, clock, admin_url, store, modules, _data: data, http: reqwest::Client::new(), _stop: stop };
    // The demo seats reach the reservation module through the bus.
    for event_id in 1..=3 {
        test.wait_for_seats(event_id).await;
    }
    test
}

/// A scanner's token at the door of `app` (`boxoffice token --role scanner`), for one
/// show or all.
pub fn scanner_token(app: &TestApp, sub: &str, event: Option<i64>) -> String {
    let args = TokenArgs {
        sub: sub.into(),
        admin: false,
        role: Some(Role::Scanner),
        event,
        ttl_secs: 3600,
        auth_secret: None,
        data_dir: app.store.data.clone(),
    };
    boxoffice::app::token(&args).unwrap()
}

impl TestApp {
    pub fn api(&self, path: &str) -> String {
        format!("{}/ticketing/api{path}", self.url)
    }

    pub fn buyer(&self, name: &str) -> Buyer {
        Buyer { app_url: self.url.clone(), http: self.http.clone(), token: Some(name.to_owned()), cookie: None }
    }

    /// A buyer without a token, identified by the cookie the first hold sets.
    pub fn anonymous(&self) -> Buyer {
        Buyer { app_url: self.url.clone(), http: self.http.clone(), token: None, cookie: None }
    }

    /// An operator's read of operational data (`/actuator/prometheus`, `…/consistency`,
    /// `…/backlog`), with the operator's token.
    pub async fn operations(&self, path: &str) -> Response {
        self.http.get(format!("{}{path}", self.url)).bearer_auth(ADMIN).send().await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Response {
        self.http.post(self.api(path)).bearer_auth(ADMIN).json(&body).send().await.unwrap()
    }

    /// Waits until the reservation module knows the seats of `event_id`.
    pub async fn wait_for_seats(&self, event_id: i64) {
        // A buyer named by a plain bearer token, or — where only signed tokens name one —
        // an anonymous buyer (its cookie kept for the release).
        let probe = tokio::sync::Mutex::new(self.buyer("seat-probe"));
        let first = self.first_seat(event_id).await;
        let body = json!({ "eventId": event_id, "seatIds": [first], "holdSeconds": 60 });
        // Kafka consumer groups take a few seconds to form.
        let status = eventually(Duration::from_secs(40), format!("the seats of event {event_id} arrive"), || async {
            let mut probe = probe.lock().await;
            let status = probe.post("/reservations", body.clone()).await.status();
            if status == StatusCode::UNAUTHORIZED && probe.token.take().is_some() {
                return None;
            }
            // A test of the rate limits: start-up counts against them too.
            (status != StatusCode::NOT_FOUND && !rate_limited(status).await).then_some(status)
        })
        .await;
        if status == StatusCode::CREATED {
            let probe = probe.into_inner();
            let released = || async { !rate_limited(probe.release(event_id, first).await.status()).await };
            eventually(Duration::from_secs(20), "the seat probe's hold is released", released).await;
            // Leave the seat map as it was before the probe: both changes applied.
            self.wait_map_version(event_id, 2).await;
        }
    }

    /// The id of the first seat of `event_id`'s map (1 for a show made through the API;
    /// the demo shows keep the original's ids, see [`seat`]).
    async fn first_seat(&self, event_id: i64) -> i64 {
        let map = self.seat_map(event_id, Duration::from_secs(20)).await;
        map["seats"][0]["id"].as_i64().expect("the show has seats")
    }

    /// The seat map of `event_id`, asked again while the rate limits refuse it.
    async fn seat_map(&self, event_id: i64, within: Duration) -> Value {
        let url = self.api(&format!("/events/{event_id}/seats"));
        eventually(within, format!("the seat map of event {event_id} answers"), || async {
            let r = self.http.get(&url).send().await.unwrap();
            match rate_limited(r.status()).await {
                true => None,
                false => Some(r.json::<Value>().await.unwrap()),
            }
        })
        .await
    }

    /// Waits until the seat map of `event_id` has applied at least `version` changes.
    pub async fn wait_map_version(&self, event_id: i64, version: i64) {
        let what = format!("the seat map of event {event_id} reaches version {version}");
        eventually(Duration::from_secs(20), what, || async {
            self.seat_map(event_id, Duration::from_secs(20)).await["version"].as_i64().unwrap_or(0) >= version
        })
        .await
    }

    pub async fn seat_status(&self, event_id: i64, seat_id: i64) -> String {
        let map: Value =
            self.http.get(self.api(&format!("/events/{event_id}/seats"))).send().await.unwrap().json().await.unwrap();
        let seat = map["seats"].as_array().unwrap().iter().find(|s| s["id"] == seat_id).unwrap().clone();
        seat["status"].as_str().unwrap().to_owned()
    }

    /// Waits until the seat map shows `status` for the seat.
    pub async fn wait_seat(&self, event_id: i64, seat_id: i64, status: &str) {
        let last = std::sync::Mutex::new(String::new());
        let what = Later(|| format!("seat {event_id}/{seat_id} becomes {status}; it is {}", last.lock().unwrap()));
        eventually(Duration::from_secs(10), what, || async {
            let now = self.seat_status(event_id, seat_id).await;
            let arrived = now == status;
            *last.lock().unwrap() = now;
            arrived
        })
        .await
    }

    pub async fn audit(&self) -> audit::Report {
        audit::audit(&self.url, ADMIN, Duration::from_secs(15)).await.unwrap()
    }

    pub async fn assert_audit_passes(&self) {
        let report = self.audit().await;
        assert!(report.violations.is_empty(), "audit failed: {:#?}", report.violations);
    }
}

#[derive(Clone)]
pub struct Buyer {
    app_url: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub cookie: Option<String>,
}

impl Buyer {
    fn with_identity(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        match &self.cookie {
            Some(c) => rb.header("cookie", c),
            None => rb,
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/ticketing/api{path}", self.app_url)
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Response {
        let r = self.with_identity(self.http.post(self.api(path)).json(&body)).send().await.unwrap();
        if let Some(set) = r.headers().get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        r
    }

    pub async fn get(&self, path: &str) -> Response {
        self.with_identity(self.http.get(self.api(path))).send().await.unwrap()
    }

    /// A request to `path` (under `/ticketing/api`) as this buyer, to add to.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.with_identity(self.http.request(method, self.api(path)))
    }

    pub async fn hold(&self, event_id: i64, seats: &[i64]) -> Response {
        let body = json!({ "eventId": event_id, "seatIds": seats, "holdSeconds": 60 });
        self.with_identity(self.http.post(self.api("/reservations")).json(&body)).send().await.unwrap()
    }

    pub async fn hold_for(&self, event_id: i64, seat_id: i64, secs: i64) -> Response {
        let body = json!({ "eventId": event_id, "seatId": seat_id, "holdSeconds": secs });
        self.with_identity(self.http.post(self.api("/reservations")).json(&body)).send().await.unwrap()
    }

    pub async fn release(&self, event_id: i64, seat_id: i64) -> Response {
        self.with_identity(self.http.delete(self.api(&format!("/reservations/{event_id}/{seat_id}"))))
            .send()
            .await
            .unwrap()
    }

    pub async fn extend(&self, event_id: i64, seat_id: i64, seconds: i64) -> Response {
        let url = self.api(&format!("/reservations/{event_id}/{seat_id}/extend"));
        self.with_identity(self.http.post(url).json(&json!({ "seconds": seconds }))).send().await.unwrap()
    }

    pub async fn order(&self, key: &str, event_id: i64, seats: &[i64]) -> Response {
        let body = json!({ "eventId": event_id, "seatIds": seats });
        let rb = self.http.post(self.api("/orders")).header("Idempotency-Key", key).json(&body);
        self.with_identity(rb).send().await.unwrap()
    }

    /// Polls the order until it leaves CREATED; returns it.
    pub async fn final_order(&self, order_id: i64) -> Value {
        self.order_until(order_id, |s| s != "CREATED").await
    }

    /// Polls the order until its status passes `done`; returns it.
    pub async fn order_until(&self, order_id: i64, done: impl Fn(&str) -> bool) -> Value {
        let last = std::sync::Mutex::new(Value::Null);
        let what = Later(|| format!("order {order_id} gets where expected; it is {}", last.lock().unwrap()));
        eventually(Duration::from_secs(20), what, || async {
            let order: Value = self.get(&format!("/orders/{order_id}")).await.json().await.unwrap();
            let arrived = done(order["status"].as_str().unwrap_or_default());
            *last.lock().unwrap() = order.clone();
            arrived.then_some(order)
        })
        .await
    }

    /// Holds and orders the seats; returns the order id (its number).
    pub async fn buy(&self, event_id: i64, seats: &[i64]) -> i64 {
        let r = self.hold(event_id, seats).await;
        assert_eq!(r.status(), StatusCode::CREATED, "hold: {}", r.text().await.unwrap());
        let r = self.order(&uuid::Uuid::new_v4().to_string(), event_id, seats).await;
        assert_eq!(r.status(), StatusCode::CREATED, "order: {}", r.text().await.unwrap());
        let order: Value = r.json().await.unwrap();
        order["orderId"].as_i64().unwrap()
    }
}

/// A message of [`eventually`] made only if it is shown (from what the probe saw last).
pub struct Later<F: Fn() -> String>(pub F);

impl<F: Fn() -> String> Display for Later<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

/// Whether the rate limits refused a request (a test of them: start-up and waits count
/// against them too); if so, after a pause that lets them refill.
async fn rate_limited(status: StatusCode) -> bool {
    let limited = status == StatusCode::TOO_MANY_REQUESTS;
    if limited {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    limited
}

/// Asserts the response is the contract's error with this status and code; returns it.
pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    let trace_header = r.headers().get("trace-id").expect("Trace-Id header").to_str().unwrap().to_owned();
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "message: {body}");
    assert_eq!(body["traceId"], trace_header.as_str(), "traceId matches the header");
    body
}

/// GETs `url` as `token` and reads the JSON answer.
pub async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the real binary as `boxoffice serve --addr 127.0.0.1:PORT ARGS…` and returns
/// it with its base URL once `/actuator/health` answers 200.
pub async fn start_binary(args: &[String]) -> (tokio::process::Child, String) {
    start_binary_on(free_port(), args, None).await
}

/// [`start_binary`] on a given port (a process restarted where its clients expect it),
/// its output appended to `log` if given.
pub async fn start_binary_on(
    port: u16,
    args: &[String],
    log: Option<&std::path::Path>,
) -> (tokio::process::Child, String) {
    let output = || match log {
        Some(path) => std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().into(),
        None => std::process::Stdio::null(),
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--admin-token", ADMIN])
        .args(["--open-bearer", "--rate-limit-buyer", "0", "--rate-limit-address", "0"])
        .args(args)
        .stdout(output())
        .stderr(output())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    until_healthy(&url, format!("boxoffice {args:?}")).await;
    (child, url)
}

/// Waits until the boxoffice at `url` (`who`) answers `/actuator/health` with 200.
pub async fn until_healthy(url: &str, who: impl Display) {
    let http = reqwest::Client::new();
    let health = format!("{url}/actuator/health");
    eventually(Duration::from_secs(30), format!("{who} becomes healthy"), || async {
        http.get(&health).send().await.is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}
