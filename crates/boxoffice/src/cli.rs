//! The command line: `boxoffice serve` (the default), `audit`, `load` and the others —
//! only what they take; `main` runs them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// boxoffice — seat ticketing for on-sales: holds, orders, payments, no seat sold twice.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API with all the modules in one process (the default command).
    Serve(ServeArgs),
    /// Check every invariant across all modules of a running boxoffice; exits non-zero
    /// naming each violation.
    Audit(audit::AuditArgs),
    /// Create and migrate the databases (the same storage options as `serve`; `serve`
    /// migrates at start-up too), then exit.
    Migrate(ServeArgs),
    /// Replay: rewind the consumer groups of the chosen module (all without --module) to
    /// the oldest event the bus keeps, so each consumer reads every event again and its
    /// inbox applies none twice. The same bus options as `serve`; run it while those
    /// modules are stopped.
    Replay(ServeArgs),
    /// Run the original's load test (or another scenario) against a running boxoffice,
    /// measuring API latency and time to final state; exits non-zero when a threshold
    /// or the audit fails.
    Load(loadtest::LoadArgs),
    /// Print a signed bearer token for a buyer or an operator, made with the same key as
    /// `serve` uses (--auth-secret, or the one kept in DATA_DIR).
    Token(TokenArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// Every answer waits for an fsync of its commit (commits finishing together share
    /// one): nothing answered is lost on a power cut.
    Full,
    /// fsync at checkpoints: survives a crash of the process, not of the machine.
    Normal,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BOXOFFICE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory of the databases; created if missing.
    #[arg(long, env = "BOXOFFICE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// PostgreSQL server for the modules' databases, e.g. `postgres://user@host:5432`
    /// (one database per module, created if missing); SQLite files in DATA_DIR without it.
    #[arg(long, env = "BOXOFFICE_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
    /// Connections to each PostgreSQL database, at most.
    #[arg(long, env = "BOXOFFICE_POSTGRES_POOL", default_value_t = 16)]
    pub postgres_pool: u32,
    /// Prefix of the PostgreSQL databases: PREFIX_catalog, PREFIX_reservation, …
    #[arg(long, env = "BOXOFFICE_DATABASE_PREFIX", default_value = "boxoffice")]
    pub database_prefix: String,
    /// Run only this module (with any number of replicas, each its own process); needs
    /// --kafka, and --postgres for databases the replicas share. All of them without it.
    #[arg(long, env = "BOXOFFICE_MODULE", value_parser = clap::builder::PossibleValuesParser::new(crate::modules::names()))]
    pub module: Option<String>,
    /// Leave out these optional modules (`waitingroom`, `tickets`), e.g. for a sale that
    /// needs no waiting room, or to measure what one costs; comma-separated.
    #[arg(long, env = "BOXOFFICE_WITHOUT", value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(crate::modules::OPTIONAL))]
    pub without: Vec<String>,
    /// Base URL of the reservation module, for an order module running without it.
    #[arg(long, env = "BOXOFFICE_RESERVATION_URL")]
    pub reservation_url: Option<String>,
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`: the modules' events go through
    /// Kafka instead of the embedded log in DATA_DIR/bus.db.
    #[arg(long, env = "BOXOFFICE_KAFKA")]
    pub kafka: Option<String>,
    /// Partitions of each topic, created at start-up if missing.
    #[arg(long, default_value_t = 6)]
    pub kafka_partitions: i32,
    /// Prefix of topic and consumer-group names (`NS.order.events`), to share a broker.
    #[arg(long, default_value = "")]
    pub kafka_namespace: String,
    /// How long a Kafka consumer's fetch may wait for new messages, in ms: with a broker
    /// that holds a fetch for the whole wait, the floor on each step of the saga.
    #[arg(long, default_value_t = runtime::bus::kafka::FETCH_WAIT.as_millis() as u64)]
    pub kafka_fetch_wait_ms: u64,
    /// Bearer token of the operator. Without it one is generated and written to
    /// DATA_DIR/admin-token.
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Key that signs bearer tokens (HS256 JWTs, see `boxoffice token`); every replica of
    /// a deployment needs the same. Without it one is generated in DATA_DIR/auth-secret.
    #[arg(long, env = "BOXOFFICE_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// Take any bearer token that is not a signed one as the name of its user, as the
    /// original did: for load tests on a trusted network only, never in production.
    #[arg(long, env = "BOXOFFICE_OPEN_BEARER")]
    pub open_bearer: bool,
    /// Origins whose pages may call the API from a browser (CORS), comma-separated, e.g.
    /// `https://tickets.example.com`; none by default (same origin only).
    #[arg(long, env = "BOXOFFICE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Buyer cookies only over https (`Secure`): set it when buyers reach boxoffice over
    /// TLS. Requests that a trusted proxy (--trusted-proxies) says came over https get
    /// `Secure` cookies without it.
    #[arg(long, env = "BOXOFFICE_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// A second listener (e.g. `10.0.0.5:9090`) for the operator's network: it serves the
    /// same routes, and the operational data (`/actuator/prometheus`, `/actuator/consistency`,
    /// `/actuator/backlog`) without a token. On the public listener they need the operator's token.
    #[arg(long, env = "BOXOFFICE_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Requests per second one buyer may make to the API, with bursts of twice as many
    /// (0: no limit); beyond it 429 with Retry-After.
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_BUYER", default_value_t = 20)]
    pub rate_limit_buyer: u32,
    /// Requests per second one client address may make to the API, bursts of twice as
    /// many (0: no limit). High by default, as buyers behind one NAT share an address; it
    /// holds back a single host that floods the API without cookies or tokens.
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT_ADDRESS", default_value_t = 200)]
    pub rate_limit_address: u32,
    /// Share of payments the simulated gateway approves (the original: 0.8).
    #[arg(long, default_value_t = 0.8, value_parser = parse_rate)]
    pub payment_success_rate: f64,
    /// Latency range of the simulated gateway in ms, `MIN..MAX` (the original:
    /// 500..1500; `0..0` for none).
    #[arg(long, default_value = "500..1500", value_parser = parse_range)]
    pub payment_latency_ms: (u64, u64),
    /// Longest wait for one gateway call, in ms; then it is retried (with back-off).
    #[arg(long, default_value_t = 5_000)]
    pub payment_timeout_ms: u64,
    /// How long a payment may be retried, in ms from its request; then it fails and its
    /// order is cancelled.
    #[arg(long, default_value_t = 30_000)]
    pub payment_deadline_ms: u64,
    /// Share of simulated gateway calls that fail (a fault, to test retries).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_error_rate: f64,
    /// Share of simulated gateway calls carried out but never answered (a fault).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_hang_rate: f64,
    /// Allowed hold time in seconds, `MIN..MAX`; requests are clamped into it.
    #[arg(long, default_value = "5..120", value_parser = parse_range)]
    pub hold_seconds: (u64, u64),
    /// Hold time when a request names none.
    #[arg(long, default_value_t = 60)]
    pub default_hold_seconds: u64,
    /// Most seats in one hold or order.
    #[arg(long, default_value_t = 20)]
    pub max_seats_per_hold: usize,
    /// Most seats one buyer may hold at once, across shows (0: no limit).
    #[arg(long, default_value_t = 20)]
    pub max_held_seats_per_buyer: usize,
    /// Most seats one buyer may hold and buy of one show (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_seats_per_buyer_per_event: usize,
    /// Most seats held at once from one client address by buyers without a bearer token
    /// (each request without a cookie is a new anonymous buyer), all together; sized for a
    /// family behind one NAT (0: no limit). Beyond it 422, nothing held.
    #[arg(long, default_value_t = 12)]
    pub max_held_seats_per_address: usize,
    /// Longest a buyer may keep one seat held from the start of its hold, however it is
    /// extended or held again, in seconds (0: no limit). Pinned holds (an order being
    /// paid) are not bound by it.
    #[arg(long, default_value_t = 600)]
    pub max_hold_life_seconds: u64,
    /// How long a buyer, or an anonymous buyer's address, may not hold again a seat whose
    /// hold it let expire, in seconds (others may hold it at once); a seat it released it
    /// may hold again, but the hold's life goes on from where it was (0: neither).
    #[arg(long, default_value_t = 60)]
    pub hold_cooldown_seconds: u64,
    /// Only buyers with a signed bearer token may hold seats: holds without one are
    /// refused with 401 (for on-sales restricted to signed-in buyers).
    #[arg(long)]
    pub require_signed_buyers: bool,
    /// How long an order's Idempotency-Key is remembered, in seconds: a repeat within it
    /// gets the first answer; after it the key may be used for a new order.
    #[arg(long, default_value_t = 86_400)]
    pub idempotency_key_ttl_secs: u64,
    /// Admission control: let an order in only while this process's orders settle (reach
    /// CONFIRMED or CANCELLED) within this many ms; the rest wait at `POST /orders`, up to
    /// 10 s, then 503 with Retry-After. 0: every order goes in at once.
    #[arg(long, default_value_t = 0)]
    pub settle_target_ms: u64,
    /// Waiting room: how long a visitor may neither poll nor listen before losing the
    /// place, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub room_grace_seconds: u64,
    /// Waiting room: how long an admission (its token) lasts, in seconds — time enough
    /// to hold seats and order them.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub room_token_window_seconds: u64,
    /// How often expired holds are freed, in ms.
    #[arg(long, default_value_t = 500)]
    pub sweep_interval_ms: u64,
    /// How long an order's pin on its holds waits for the order to be written, in s.
    #[arg(long, default_value_t = 120)]
    pub pin_lease_seconds: u64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) in bytes; beyond it 431.
    #[arg(long, default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
    /// Most connections open at once; a new one beyond it is closed at once. Default: the
    /// open-file limit (raised to its hard limit at start) less 256 kept for the databases.
    #[arg(long, env = "BOXOFFICE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (trusted proxies excepted);
    /// a new one beyond it is closed at once. Default: a quarter of --max-connections.
    #[arg(long, env = "BOXOFFICE_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// How long a client has to send a request's headers, in ms (for the first request
    /// from connecting, for later ones from their first byte); then the connection is closed.
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Longest pause while a request's body arrives, in ms; then 408.
    #[arg(long, default_value_t = 10_000)]
    pub body_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request, and a client may
    /// leave a response unread, in ms; then the connection is closed. A response being
    /// sent (an SSE stream) is not cut.
    #[arg(long, default_value_t = 75_000)]
    pub idle_timeout_ms: u64,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` (client address) and
    /// `X-Forwarded-Proto` are believed: networks or addresses, comma-separated, e.g.
    /// `10.0.0.0/8,fd00::/8`; none by default (the headers are ignored).
    #[arg(long, env = "BOXOFFICE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::proxy::parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long published events are kept (outboxes, bus log), in hours; inboxes keep
    /// event ids twice as long.
    #[arg(long, default_value_t = 24)]
    pub retention_hours: u64,
    /// How commits reach the disk.
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    pub durability: Durability,
    /// Do not seed the demo shows on first start.
    #[arg(long)]
    pub no_demo: bool,
    /// Let anyone, without the operator's token, call the original's `POST
    /// /admin/test-reset?eventId=N`, which voids a show's holds and sales (its k6 smoke
    /// script does): for test set-ups only, never in production.
    #[arg(long, env = "BOXOFFICE_ALLOW_TEST_RESET")]
    pub allow_test_reset: bool,
    /// What holds, their expiry, idempotency keys and bearer tokens are timed by: the
    /// system clock; not a flag (the tests give a manual one).
    #[arg(skip)]
    pub clock: runtime::clock::Clock,
}

impl Default for ServeArgs {
    fn default() -> Self {
        let cli = Cli::parse_from(["boxoffice", "serve"]);
        match cli.command {
            Some(Command::Serve(args)) => args,
            _ => unreachable!("serve parses"),
        }
    }
}

/// A bearer token's role (`boxoffice token --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Admin,
    Scanner,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Who the token names: the buyer's user id, or the operator's name.
    #[arg(long)]
    pub sub: String,
    /// An operator's token (the admin role) rather than a buyer's.
    #[arg(long, conflicts_with = "role")]
    pub admin: bool,
    /// The token's role: `admin` (as --admin) or `scanner`, a scanner at the door, which
    /// opens only the check-in routes (of one show with --event, else of all).
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// The show a scanner's token is for (with --role scanner).
    #[arg(long, requires = "role")]
    pub event: Option<i64>,
    /// How long the token is valid, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
    #[arg(long, env = "BOXOFFICE_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// The data directory whose auth-secret to use when --auth-secret is not given.
    #[arg(long, env = "BOXOFFICE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err("must be between 0 and 1".into()) }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or("expected MIN..MAX")?;
    let (a, b): (u64, u64) =
        (a.trim().parse().map_err(|e| format!("{e}"))?, b.trim().parse().map_err(|e| format!("{e}"))?);
    if a > b { Err("MIN must not exceed MAX".into()) } else { Ok((a, b)) }
}
