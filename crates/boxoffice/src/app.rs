//! The application: the modules this process runs (all of [`MODULES`], or the one of
//! `--module`), their databases, the bus between them, their background tasks, and one
//! HTTP router.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use runtime::bus::Bus;
use runtime::bus::embedded::EmbeddedBus;
use runtime::bus::kafka::KafkaBus;
use runtime::db::{Backend, Db, Durability};
use runtime::http::Auth;
use runtime::limits::{RateLimitConfig, RateLimits};
use runtime::module::{Module, RouteOwners, Spec};
use runtime::readiness::Readiness;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::cli::{self, ServeArgs};
pub use crate::modules::Modules;
use crate::modules::{Build, MODULES, Setup};

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
            for module in &self.running {
                module.gauges();
            }
            if let Some(bytes) = runtime::metrics::resident_memory() {
                metrics::gauge!(runtime::metrics::RESIDENT_MEMORY).set(bytes as f64);
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

/// The API, which answers 503 while a database or the bus does not (the actuator and the
/// page do not).
fn api(path: &str) -> bool {
    path.starts_with("/ticketing/api/")
}

/// The buyers' API, which is rate limited: operators, module-to-module calls, scanners at
/// the door (many gates behind one address), the actuator and the page's files are not.
fn buyers_api(path: &str) -> bool {
    path.strip_prefix("/ticketing/api/").is_some_and(|rest| {
        !rest.starts_with("admin/") && !rest.starts_with("internal/") && !rest.starts_with("checkin")
    })
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
    let signer = Auth::token_signer(key.as_bytes());
    let ttl = Duration::from_secs(args.ttl_secs);
    Ok(match args.role {
        Some(cli::Role::Scanner) => signer.issue_scanner(&args.sub, args.event, ttl),
        Some(cli::Role::Admin) => {
            anyhow::ensure!(args.event.is_none(), "--event is for a scanner's token");
            signer.issue(&args.sub, true, ttl)
        }
        None => signer.issue(&args.sub, args.admin, ttl),
    })
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
            let topics: Vec<&str> = MODULES.iter().map(|(spec, _)| spec.produces).collect();
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

/// Opens a module's database; on the embedded bus, a SQLite outbox becomes the log of the
/// topic the module produces (`EmbeddedBus::read_outbox`).
async fn open_module(args: &ServeArgs, embedded: Option<&EmbeddedBus>, spec: &Spec) -> anyhow::Result<Db> {
    let db = open_database(args, spec.name, spec.migrations).await?;
    match embedded {
        Some(bus) if db.backend() == Backend::Sqlite => bus.read_outbox(spec.name, spec.produces, db).await,
        _ => Ok(db),
    }
}

/// The modules this process runs: all but those of `--without`, or the one `--module`
/// names.
fn chosen(args: &ServeArgs) -> impl Iterator<Item = &'static (&'static Spec, Build)> {
    MODULES.iter().filter(|(spec, _)| {
        args.module.as_deref().is_none_or(|only| only == spec.name) && !args.without.iter().any(|w| w == spec.name)
    })
}

/// `boxoffice replay`: rewinds the chosen modules' consumer groups; returns each group,
/// topic and how many messages it will read again.
pub async fn replay(args: &ServeArgs) -> anyhow::Result<Vec<(&'static str, &'static str, i64)>> {
    let (bus, embedded) = open_bus(args).await?;
    if let Some(embedded) = &embedded {
        // Which topics are read from an outbox, and where their offsets are.
        for (spec, _) in &MODULES {
            open_module(args, Some(embedded), spec).await?;
        }
    }
    let mut done = Vec::new();
    for (spec, _) in chosen(args) {
        for topic in spec.consumes {
            done.push((spec.group, *topic, bus.rewind(topic, spec.group).await?));
        }
    }
    Ok(done)
}

/// `boxoffice migrate`: brings the databases of the chosen modules (all without
/// `--module`) up to date and returns their names.
pub async fn migrate(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    for (spec, _) in chosen(args) {
        open_database(args, spec.name, spec.migrations).await?;
        done.push(match &args.postgres {
            Some(_) => format!("{}_{}", args.database_prefix, spec.name),
            None => args.data_dir.join(format!("{}.db", spec.name)).display().to_string(),
        });
    }
    Ok(done)
}

/// The operator's token (the configured one, or the data directory's) and the keys of
/// buyers' cookies and tokens.
fn auth(args: &ServeArgs) -> anyhow::Result<(Arc<Auth>, String)> {
    let dir = &args.data_dir;
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
    if args.module.is_some() && args.auth_secret.is_none() {
        // Each process would sign with the key of its own data directory.
        tracing::warn!(
            "--module without --auth-secret: buyer cookies and waiting-room admission tokens of one process are \
             refused by the others; give every process the same --auth-secret"
        );
    }
    if args.open_bearer {
        tracing::warn!("--open-bearer: any bearer token names a user; for trusted load tests only");
    }
    if args.allow_test_reset {
        tracing::warn!("--allow-test-reset: anyone may reset a show with POST /admin/test-reset; for tests only");
    }
    Ok((auth, admin_token))
}

/// Builds the modules this process runs, each on its own database, in the list's order.
async fn build_modules(
    args: &ServeArgs,
    (bus, embedded): (&Arc<dyn Bus>, Option<&EmbeddedBus>),
    admin_token: &str,
) -> anyhow::Result<Modules> {
    anyhow::ensure!(
        args.module.is_none() || args.kafka.is_some(),
        "--module needs --kafka: modules in separate processes talk through Kafka"
    );
    let mut running: Vec<Arc<dyn Module>> = Vec::new();
    for (spec, build) in chosen(args) {
        let db = open_module(args, embedded, spec).await?;
        running.push(build(Setup { args, db, bus: bus.clone(), admin_token, built: &running })?);
    }
    Ok(Modules { running, bus: bus.clone(), subscriptions: Arc::default() })
}

/// Starts the modules: what each recovers first, then their relays, consumers and tasks,
/// then what each does once running (demo data); returns their routes.
async fn start_modules(modules: &mut Modules, args: &ServeArgs, tasks: &mut JoinSet<()>) -> anyhow::Result<Router> {
    for module in &modules.running {
        module.prepare().await?;
    }
    // A commit wakes its own process's relay; on PostgreSQL another replica's commit may
    // wake none, so shared databases are polled more often.
    let idle = Duration::from_millis(if args.postgres.is_some() { 50 } else { 250 });
    let mut router = Router::new();
    let mut subscriptions = Vec::new();
    for module in &modules.running {
        tasks.spawn(module.relay().clone().run(idle));
        for consumer in module.consumers(modules.bus.clone()) {
            subscriptions.push((consumer.topic, consumer.group));
            tasks.spawn(consumer.run());
        }
        for task in module.tasks() {
            tasks.spawn(task);
        }
        router = router.merge(module.router());
    }
    modules.subscriptions = Arc::new(subscriptions);
    tasks.spawn(modules.clone().run_gauges());
    tasks.spawn(modules.clone().run_retention(Duration::from_secs(args.retention_hours * 3600)));
    for module in &modules.running {
        module.started().await?;
    }
    Ok(router)
}

/// The middleware, outermost first: trace; the Host check; CORS (pre-flights answered
/// before anything else); readiness; the Auth extension; the client's address (behind a
/// trusted proxy, the one it forwards), before the rate limits count it; the rate limits;
/// the refusal of cross-site browser writes; the body limit. One stack, applied once:
/// each `Router::layer` boxes the routes again, and every layer clones the stack inside
/// it on each request, so ten separate layers cost each request dozens of allocations
/// (bench/ab.sh: 10% more CPU a purchase).
fn with_middleware(
    router: Router,
    args: &ServeArgs,
    modules: &Modules,
    auth: Arc<Auth>,
    trusted: &crate::proxy::TrustedProxies,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Router> {
    let readiness = Readiness::new(api);
    let probed = modules.clone();
    tasks.spawn(readiness.clone().run(move || {
        let m = probed.clone();
        async move {
            let (databases, bus) = tokio::join!(m.databases_up(), m.bus.ping());
            databases && bus
        }
    }));
    let limits = RateLimits::new(RateLimitConfig {
        per_buyer: args.rate_limit_buyer,
        per_address: args.rate_limit_address,
        applies_to: buyers_api,
    });
    tasks.spawn(limits.clone().run_cleanup());
    let middleware = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            RouteOwners::new(MODULES.iter().map(|(spec, _)| *spec)),
            runtime::http::trace_middleware,
        ))
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
    Ok(router.layer(middleware))
}

impl Application {
    /// Opens the databases, starts the modules and their background tasks, seeds the demo
    /// data on a first start, and binds the listeners (port 0 picks a free one).
    pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
        // Before the modules, so that what they record as they start is kept.
        runtime::telemetry::prometheus();
        for describe in [runtime::metrics::describe, crate::server::describe_metrics] {
            describe();
        }
        for (spec, _) in &MODULES {
            (spec.describe_metrics)();
        }
        // Connections and databases both take file descriptors: as many as allowed.
        let files = crate::server::raise_file_limit();
        // 0700 if made now; refused when others may write to it, warned about when read.
        crate::secure::check_dir(&args.data_dir)?;
        let (auth, admin_token) = auth(&args)?;

        let (bus, embedded) = open_bus(&args).await?;
        let mut modules = build_modules(&args, (&bus, embedded.as_ref()), &admin_token).await?;
        let mut tasks = JoinSet::new();
        let routes = start_modules(&mut modules, &args, &mut tasks).await?;

        let trusted = crate::proxy::TrustedProxies::new(args.trusted_proxies.clone());
        let routes = routes
            .merge(crate::actuator::router(modules.clone()))
            .merge(crate::web::router())
            .fallback(runtime::http::not_found);
        let router = with_middleware(routes, &args, &modules, auth, &trusted, &mut tasks)?;

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

#[cfg(test)]
mod tests {
    use super::{api, buyers_api};

    #[test]
    fn operators_and_the_actuator_are_not_limited() {
        assert!(buyers_api("/ticketing/api/reservations"));
        assert!(buyers_api("/ticketing/api/orders/x"));
        assert!(!buyers_api("/ticketing/api/admin/events"));
        assert!(!buyers_api("/ticketing/api/internal/pins"));
        assert!(!buyers_api("/ticketing/api/checkin/batch"));
        assert!(!buyers_api("/actuator/health"));
        assert!(!buyers_api("/"));
    }

    #[test]
    fn only_the_api_waits_for_its_dependencies() {
        assert!(api("/ticketing/api/events"));
        assert!(!api("/actuator/health"));
        assert!(!api("/index.html"));
    }
}
