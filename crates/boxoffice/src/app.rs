//! The application: four modules, their databases, the bus between them, their
//! background tasks, and one HTTP router — all in one process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use catalog::Catalog;
use contract::events::{CATALOG_TOPIC, ORDER_TOPIC, PAYMENT_TOPIC, RESERVATION_TOPIC};
use contract::holds::Holds;
use order::Orders;
use payment::{GatewayPolicy, Payments, SimulatedGateway};
use reservation::{HoldPolicy, Reservation};
use runtime::bus::Bus;
use runtime::bus::embedded::EmbeddedBus;
use runtime::bus::kafka::KafkaBus;
use runtime::db::{Backend, Db, Durability};
use runtime::http::Auth;
use runtime::limits::{RateLimitConfig, RateLimits};
use runtime::readiness::Readiness;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::cli::{self, Module, ServeArgs};
pub use crate::modules::Modules;

/// The modules' background tasks, which the application starts.
impl Modules {
    /// Keeps the gauges current: outbox backlogs and consumer lag every 2 s, the
    /// consistency checks every 15 s.
    async fn run_gauges(self) {
        use runtime::metrics::{CONSISTENCY_FAILED, CONSUMER_LAG, OUTBOX_BACKLOG, OUTBOX_OLDEST};
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        for round in 0u64.. {
            tick.tick().await;
            for (module, relay) in self.relays() {
                if let Ok((backlog, oldest_ms)) = relay.backlog().await {
                    metrics::gauge!(OUTBOX_BACKLOG, "module" => module).set(backlog as f64);
                    metrics::gauge!(OUTBOX_OLDEST, "module" => module).set(oldest_ms as f64 / 1000.0);
                }
            }
            for (topic, group) in self.subscriptions.iter() {
                if let Ok(lag) = self.bus.lag(topic, group).await {
                    metrics::gauge!(CONSUMER_LAG, "topic" => *topic, "group" => *group).set(lag as f64);
                }
            }
            if let Some(catalog) = &self.catalog {
                metrics::gauge!(catalog::metrics::STREAM_CLIENTS).set(catalog.all_stream_clients() as f64);
            }
            if round % 8 == 0 {
                for (module, checks) in self.consistency().await {
                    for check in checks.into_iter().flatten() {
                        let failed = if check.ok { 0.0 } else { 1.0 };
                        metrics::gauge!(CONSISTENCY_FAILED, "module" => module, "check" => check.name).set(failed);
                    }
                }
            }
        }
    }

    /// Every ten minutes, forgets events older than `retention` that were delivered.
    async fn run_retention(self, retention: Duration) {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let cutoff = contract::now_millis() - retention.as_millis() as i64;
            let inbox_cutoff = cutoff - retention.as_millis() as i64;
            let mut pruned = self.bus.prune(cutoff).await;
            for (_, relay) in self.relays() {
                pruned = match pruned {
                    Ok(n) => relay.prune(cutoff, inbox_cutoff).await.map(|m| n + m),
                    e => e,
                };
            }
            match pruned {
                Ok(n) => tracing::debug!(rows = n, "old events pruned"),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "pruning old events failed")
                }
            }
        }
    }
}

/// How long open connections (SSE streams) get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

pub struct Application {
    listener: TcpListener,
    /// The operator's own listener (`--admin-addr`), if any.
    admin_listener: Option<TcpListener>,
    router: Router,
    connections: Arc<crate::server::ConnectionLimits>,
    tasks: JoinSet<()>,
    pub modules: Modules,
    pub admin_token: String,
}

/// A secret kept in the data directory: read it (refused when others may read it), or
/// make and keep a new one, mode 0600.
fn secret(dir: &Path, name: &str) -> anyhow::Result<String> {
    crate::secure::secret(dir, name)
}

/// The key of signed bearer tokens: the configured one, or the data directory's.
fn auth_secret(configured: Option<&str>, dir: &Path) -> anyhow::Result<String> {
    match configured.map(str::trim) {
        Some(key) if key.len() >= 16 => Ok(key.to_owned()),
        Some(_) => anyhow::bail!("--auth-secret must be at least 16 characters"),
        None => {
            crate::secure::check_dir(dir)?;
            secret(dir, "auth-secret")
        }
    }
}

/// `boxoffice token`: a signed bearer token, as `serve` with the same key accepts it.
pub fn token(args: &cli::TokenArgs) -> anyhow::Result<String> {
    let key = auth_secret(args.auth_secret.as_deref(), &args.data_dir)?;
    Ok(Auth::token_signer(key.as_bytes()).issue(&args.sub, args.admin, Duration::from_secs(args.ttl_secs)))
}

/// CORS for the configured origins only; without any, browsers keep the same-origin rule.
fn cors(origins: &[String]) -> anyhow::Result<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| HeaderValue::from_str(o).with_context(|| format!("bad CORS origin {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("trace-id"),
            HeaderName::from_static("last-event-id"),
            header::IF_NONE_MATCH,
        ])
        .expose_headers([HeaderName::from_static("trace-id"), header::RETRY_AFTER, header::ETAG])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600)))
}

/// Opens (creating and migrating) one module's database: `PREFIX_name` on PostgreSQL
/// with `--postgres`, else `DATA_DIR/name.db`.
async fn open_database(args: &ServeArgs, name: &str, migrations: &runtime::db::Migrations) -> anyhow::Result<Db> {
    match &args.postgres {
        Some(server) => {
            Db::open_postgres(server, &format!("{}_{name}", args.database_prefix), args.postgres_pool, migrations).await
        }
        None => {
            let path = data_dir(args)?.join(format!("{name}.db"));
            crate::secure::create_private_file(&path)?;
            Db::open_sqlite(&path, durability(args), migrations).await
        }
    }
}

/// DATA_DIR, created (mode 0700) if missing.
fn data_dir(args: &ServeArgs) -> anyhow::Result<&Path> {
    crate::secure::create_dir(&args.data_dir)?;
    Ok(&args.data_dir)
}

fn durability(args: &ServeArgs) -> Durability {
    match args.durability {
        cli::Durability::Full => Durability::Full,
        cli::Durability::Normal => Durability::Normal,
    }
}

/// The bus between the modules: Kafka with `--kafka`, else the embedded one, with its
/// offsets in DATA_DIR/bus.db (returned a second time, for `open_module`).
async fn open_bus(args: &ServeArgs) -> anyhow::Result<(Arc<dyn Bus>, Option<EmbeddedBus>)> {
    Ok(match &args.kafka {
        Some(brokers) => {
            let topics = [CATALOG_TOPIC, RESERVATION_TOPIC, ORDER_TOPIC, PAYMENT_TOPIC];
            let bus = KafkaBus::connect(brokers, &args.kafka_namespace, &topics, args.kafka_partitions).await?;
            (Arc::new(bus.with_fetch_wait(Duration::from_millis(args.kafka_fetch_wait_ms.max(1)))), None)
        }
        None => {
            let path = data_dir(args)?.join("bus.db");
            crate::secure::create_private_file(&path)?;
            let bus = EmbeddedBus::open(&path, durability(args)).await?;
            (Arc::new(bus.clone()), Some(bus))
        }
    })
}

/// Opens a module's database, which produces `topic`; on the embedded bus, a SQLite
/// outbox becomes the topic's log (`EmbeddedBus::read_outbox`).
async fn open_module(
    args: &ServeArgs,
    embedded: Option<&EmbeddedBus>,
    (name, migrations, topic): (&'static str, &runtime::db::Migrations, &str),
) -> anyhow::Result<Db> {
    let db = open_database(args, name, migrations).await?;
    match embedded {
        Some(bus) if db.backend() == Backend::Sqlite => bus.read_outbox(name, topic, db).await,
        _ => Ok(db),
    }
}

/// Each module's database and the topic it produces.
fn databases() -> [(Module, (&'static str, &'static runtime::db::Migrations, &'static str)); 4] {
    [
        (Module::Catalog, ("catalog", &catalog::MIGRATIONS, CATALOG_TOPIC)),
        (Module::Reservation, ("reservation", &reservation::MIGRATIONS, RESERVATION_TOPIC)),
        (Module::Order, ("order", &order::MIGRATIONS, ORDER_TOPIC)),
        (Module::Payment, ("payment", &payment::MIGRATIONS, PAYMENT_TOPIC)),
    ]
}

/// Each module's consumer group and the topics it reads.
const SUBSCRIPTIONS: [(Module, &str, &[&str]); 4] = [
    (Module::Catalog, catalog::GROUP, &catalog::CONSUMES),
    (Module::Reservation, reservation::GROUP, &reservation::CONSUMES),
    (Module::Order, order::GROUP, &order::CONSUMES),
    (Module::Payment, payment::GROUP, &payment::CONSUMES),
];

/// `boxoffice replay`: rewinds the chosen modules' consumer groups; returns each group,
/// topic and how many messages it will read again.
pub async fn replay(args: &ServeArgs) -> anyhow::Result<Vec<(&'static str, &'static str, i64)>> {
    let (bus, embedded) = open_bus(args).await?;
    if let Some(embedded) = &embedded {
        // Which topics are read from an outbox, and where their offsets are.
        for (_, database) in databases() {
            open_module(args, Some(embedded), database).await?;
        }
    }
    let mut done = Vec::new();
    for (module, group, topics) in SUBSCRIPTIONS {
        if args.module.is_none_or(|only| only == module) {
            for topic in topics {
                done.push((group, *topic, bus.rewind(topic, group).await?));
            }
        }
    }
    Ok(done)
}

/// `boxoffice migrate`: brings the databases of the chosen modules (all without
/// `--module`) up to date and returns their names.
pub async fn migrate(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    for (module, (name, migrations, _)) in databases() {
        if args.module.is_none_or(|only| only == module) {
            open_database(args, name, migrations).await?;
            done.push(match &args.postgres {
                Some(_) => format!("{}_{name}", args.database_prefix),
                None => args.data_dir.join(format!("{name}.db")).display().to_string(),
            });
        }
    }
    Ok(done)
}

impl Application {
    /// Opens the databases, starts the modules' background tasks, seeds the demo data on
    /// a first start, and binds the listener (port 0 picks a free one).
    pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
        // Before the modules, so that what they record as they start is kept.
        runtime::telemetry::prometheus();
        // Connections and databases both take file descriptors: as many as allowed.
        let files = crate::server::raise_file_limit();
        let dir = &args.data_dir;
        // 0700 if made now; refused when others may write to it, warned about when read.
        crate::secure::check_dir(dir)?;
        let admin_token = match &args.admin_token {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                let token = secret(dir, "admin-token")?;
                tracing::info!(path = %dir.join("admin-token").display(), "no --admin-token given; using the generated one");
                token
            }
        };
        let auth = Arc::new(Auth {
            admin_token: Some(admin_token.clone()),
            // Replicas given one --auth-secret accept each other's cookies too.
            cookie_key: match &args.auth_secret {
                Some(key) => key.trim().as_bytes().to_vec(),
                None => secret(dir, "cookie-key")?.into_bytes(),
            },
            token_key: auth_secret(args.auth_secret.as_deref(), dir)?.into_bytes(),
            open_bearer: args.open_bearer,
            secure_cookies: args.secure_cookies,
            clock: args.clock.clone(),
            ..Auth::default()
        });
        if args.open_bearer {
            tracing::warn!("--open-bearer: any bearer token names a user; for trusted load tests only");
        }
        if args.allow_test_reset {
            tracing::warn!("--allow-test-reset: anyone may reset a show with POST /admin/test-reset; for tests only");
        }

        let (bus, embedded) = open_bus(&args).await?;
        let [catalog_db, reservation_db, order_db, payment_db] = databases().map(|(_, database)| database);
        let open = |database| open_module(&args, embedded.as_ref(), database);
        let policy = HoldPolicy {
            min_secs: args.hold_seconds.0 as i64,
            max_secs: args.hold_seconds.1 as i64,
            default_secs: args.default_hold_seconds as i64,
            max_seats: args.max_seats_per_hold,
            max_held_per_buyer: args.max_held_seats_per_buyer,
            max_seats_per_buyer_per_event: args.max_seats_per_buyer_per_event,
            max_held_per_address: args.max_held_seats_per_address,
            max_life_secs: args.max_hold_life_seconds.min(i64::MAX as u64) as i64,
            cooldown_secs: args.hold_cooldown_seconds.min(i64::MAX as u64) as i64,
            require_signed_buyers: args.require_signed_buyers,
            pin_lease: Duration::from_secs(args.pin_lease_seconds),
            sweep_interval: Duration::from_millis(args.sweep_interval_ms.max(10)),
        };
        let simulator =
            SimulatedGateway::new(args.payment_success_rate, args.payment_latency_ms.0..args.payment_latency_ms.1)
                .with_faults(args.payment_error_rate, args.payment_hang_rate);
        // With --module, payment may run in replicas, each simulating a gateway of its own.
        let gateway = Arc::new(if args.module.is_some() { simulator.one_of_many() } else { simulator });
        let gateway_policy = GatewayPolicy {
            call_timeout: Duration::from_millis(args.payment_timeout_ms.max(1)),
            deadline: Duration::from_millis(args.payment_deadline_ms),
            ..GatewayPolicy::default()
        };
        let runs = |m: Module| args.module.is_none_or(|only| only == m);
        anyhow::ensure!(
            args.module.is_none() || args.kafka.is_some(),
            "--module needs --kafka: modules in separate processes talk through Kafka"
        );
        let catalog = match runs(Module::Catalog) {
            true => {
                let catalog = Catalog::new(open(catalog_db).await?, bus.clone());
                Some(catalog.with_open_test_reset(args.allow_test_reset))
            }
            false => None,
        };
        let reservation = match runs(Module::Reservation) {
            true => {
                Some(Reservation::new(open(reservation_db).await?, bus.clone(), policy).with_clock(args.clock.clone()))
            }
            false => None,
        };
        let orders = match runs(Module::Order) {
            true => {
                // Pins go to the reservation module: in this process, or over HTTP.
                let holds: Arc<dyn Holds> = match (&reservation, &args.reservation_url) {
                    (Some(r), _) => Arc::new(r.clone()),
                    (None, Some(url)) => Arc::new(crate::remote::HttpHolds::new(url, &admin_token)),
                    (None, None) => {
                        anyhow::bail!("the order module needs --reservation-url when reservation runs elsewhere")
                    }
                };
                let db = open(order_db).await?;
                let key_ttl = Duration::from_secs(args.idempotency_key_ttl_secs);
                let orders = Orders::new(db, bus.clone(), holds, args.max_seats_per_hold, key_ttl)
                    .with_clock(args.clock.clone());
                Some(match args.settle_target_ms {
                    0 => orders,
                    ms => orders.with_settle_target(Duration::from_millis(ms)),
                })
            }
            false => None,
        };
        let payments = match runs(Module::Payment) {
            true => Some(Payments::new(open(payment_db).await?, bus.clone(), gateway).with_policy(gateway_policy)),
            false => None,
        };
        let mut modules =
            Modules { catalog, reservation, orders, payments, bus: bus.clone(), subscriptions: Arc::default() };

        if let (Some(payments), None) = (&modules.payments, args.module) {
            // In one process this is the only payment worker of its database; replicas
            // instead wait for each other's leases to run out.
            payments.reclaim_abandoned_calls().await?;
        }

        for describe in [
            runtime::metrics::describe,
            catalog::metrics::describe,
            reservation::metrics::describe,
            order::metrics::describe,
            payment::metrics::describe,
            crate::server::describe_metrics,
        ] {
            describe();
        }
        let mut tasks = JoinSet::new();
        for (_, relay) in modules.relays() {
            // A commit wakes its own process's relay; on PostgreSQL another replica's
            // commit may wake none, so shared databases are polled more often.
            let idle = Duration::from_millis(if args.postgres.is_some() { 50 } else { 250 });
            tasks.spawn(relay.clone().run(idle));
        }
        let mut consumers = Vec::new();
        let mut router = Router::new();
        if let Some(m) = &modules.catalog {
            consumers.extend(m.consumers(bus.clone()));
            router = router.merge(catalog::router(m.clone()));
        }
        if let Some(m) = &modules.reservation {
            consumers.extend(m.consumers(bus.clone()));
            router = router.merge(reservation::router(m.clone()));
            tasks.spawn(m.clone().run_sweeper());
        }
        if let Some(m) = &modules.orders {
            consumers.extend(m.consumers(bus.clone()));
            router = router.merge(order::router(m.clone()));
            if let Some(listener) = m.listen_for_settlements() {
                tasks.spawn(listener);
            }
        }
        if let Some(m) = &modules.payments {
            consumers.extend(m.consumers(bus.clone()));
            router = router.merge(payment::router(m.clone()));
            tasks.spawn(m.clone().run_workers());
        }
        let mut subscriptions = Vec::new();
        for consumer in consumers {
            subscriptions.push((consumer.topic, consumer.group));
            tasks.spawn(consumer.run());
        }
        modules.subscriptions = Arc::new(subscriptions);
        tasks.spawn(modules.clone().run_gauges());
        tasks.spawn(modules.clone().run_retention(Duration::from_secs(args.retention_hours * 3600)));

        if let (Some(catalog), false) = (&modules.catalog, args.no_demo) {
            catalog.seed_demo().await.context("failed to seed the demo data")?;
        }
        if let Some(orders) = &modules.orders {
            // Once, after the upgrade that numbered the orders written before.
            orders.announce_numbers().await.context("failed to announce the numbers of earlier orders")?;
        }

        let readiness = Readiness::new();
        let probed = modules.clone();
        tasks.spawn(readiness.clone().run(move || {
            let m = probed.clone();
            async move {
                let (databases, bus) = tokio::join!(m.databases_up(), m.bus.ping());
                databases && bus
            }
        }));
        let trusted = crate::proxy::TrustedProxies::new(args.trusted_proxies.clone());
        let limits =
            RateLimits::new(RateLimitConfig { per_buyer: args.rate_limit_buyer, per_address: args.rate_limit_address });
        tasks.spawn(limits.clone().run_cleanup());

        // The middleware, outermost first: trace; the Host check; CORS (pre-flights
        // answered before anything else); readiness; the Auth extension; the client's
        // address (behind a trusted proxy, the one it forwards), before the rate limits
        // count it; the rate limits; the refusal of cross-site browser writes; the body
        // limit. One stack, applied once: each `Router::layer` boxes the routes again, and
        // every layer clones the stack inside it on each request, so ten separate layers
        // cost each request dozens of allocations (bench/ab.sh: 10% more CPU a purchase).
        let middleware = tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(runtime::http::trace_middleware))
            .layer(axum::middleware::from_fn(crate::server::require_host))
            .layer(cors(&args.cors_origins)?)
            .layer(axum::middleware::from_fn_with_state(readiness, runtime::readiness::gate))
            .layer(axum::Extension(auth))
            .layer(axum::middleware::from_fn_with_state(trusted.clone(), crate::proxy::client_addr))
            .layer(axum::middleware::from_fn_with_state(limits, runtime::limits::rate_limit))
            .layer(axum::middleware::from_fn_with_state(
                runtime::same_site::AllowedOrigins(Arc::new(args.cors_origins.clone())),
                runtime::same_site::guard,
            ))
            .layer(DefaultBodyLimit::max(args.max_body_bytes));
        let router = router
            .merge(crate::actuator::router(modules.clone()))
            .merge(crate::web::router())
            .fallback(runtime::http::not_found)
            .layer(middleware);

        let listener =
            TcpListener::bind(args.addr).await.with_context(|| format!("failed to listen on {}", args.addr))?;
        let admin_listener = match args.admin_addr {
            Some(addr) => Some(
                TcpListener::bind(addr).await.with_context(|| format!("failed to listen on --admin-addr {addr}"))?,
            ),
            None => None,
        };
        let connections = Arc::new(crate::server::ConnectionLimits::new(&args, files, trusted));
        tracing::info!(
            max_connections = connections.max_connections,
            max_connections_per_address = connections.max_per_address,
            "connection limits"
        );
        Ok(Application { listener, admin_listener, router, connections, tasks, modules, admin_token })
    }

    /// The address actually listened on.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// The address the operator's listener actually listens on, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener.as_ref().map(|l| l.local_addr().expect("bound listener has an address"))
    }

    /// Serves until `shutdown` completes, then gives open connections a moment and stops
    /// the background tasks.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        // Our own accept loop (not axum::serve): timeouts and caps on connections. The
        // operator's listener serves the same routes, its requests marked as the
        // operator's network's (operational data without a token).
        let admin = self.admin_listener.map(|listener| {
            let router = self.router.clone().layer(axum::Extension(runtime::http::AdminListener));
            crate::server::serve(listener, router, self.connections.clone(), stop_rx.clone())
        });
        let public = crate::server::serve(self.listener, self.router, self.connections, stop_rx.clone());
        let server = async move {
            match admin {
                Some(admin) => {
                    tokio::join!(public, admin);
                }
                None => public.await,
            }
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut tasks = self.tasks;
        tokio::select! {
            () = server => {}
            // Streams that never end must not hold the process up.
            _ = async { let _ = stop_rx.wait_for(|s| *s).await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {}
        }
        tasks.shutdown().await;
        tracing::info!("boxoffice stopped");
        Ok(())
    }
}
