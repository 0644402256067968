//! A module's database: its own file (or, distributed, its own PostgreSQL database).
//!
//! SQLite allows one writer at a time; a pool of writers only trades the wait for
//! `SQLITE_BUSY` errors. So writes go through a pool of one connection and reads through
//! a pool of several (WAL lets them run beside the writer).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor};

/// Creates the database unless it exists (several replicas may race to do it).
async fn create_database(server: &str, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "database name {name:?} must be letters, digits and underscores"
    );
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("failed to connect to PostgreSQL at {server}"))?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&admin)
        .await
        .context("failed to look for the database")?;
    if exists.is_none()
        && let Err(error) = admin.execute(format!("CREATE DATABASE {name}").as_str()).await
    {
        // Another replica created it meanwhile.
        let duplicate = error.as_database_error().and_then(|e| e.code()).is_some_and(|c| c == "42P04" || c == "23505");
        if !duplicate {
            return Err(error).with_context(|| format!("failed to create database {name}"));
        }
    }
    admin.close().await;
    Ok(())
}

pub type Tx = sqlx::Transaction<'static, Any>;

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: an answered request survives a power cut.
    Full,
    /// fsync at checkpoints: survives a process crash, may lose the last commits on a
    /// power cut; several times faster.
    Normal,
}

/// A module's migrations, one set per database engine (the SQL differs in types only).
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// Outbox and inbox tables, common to every module's database.
static RUNTIME_MIGRATIONS: Migrations =
    Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    write: AnyPool,
    read: AnyPool,
    /// PostgreSQL: connections of the saga's background work, apart from the requests'.
    background: Option<AnyPool>,
    backend: Backend,
}

/// PostgreSQL connections kept for a process's consumers and relay (see `Db::background`),
/// at most (and at most half as many as its requests get): a module runs up to three
/// consumers and a relay.
const BACKGROUND_POOL: u32 = 4;

impl Db {
    /// Opens (creating if needed) the SQLite database at `path` and applies the runtime's
    /// and then the module's migrations.
    pub async fn open_sqlite(path: &Path, durability: Durability, migrations: &Migrations) -> anyhow::Result<Db> {
        install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        let connect = move |readers: u32| {
            AnyPoolOptions::new()
                .max_connections(readers)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute(format!("PRAGMA synchronous = {sync}").as_str()).await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                })
        };
        let write = connect(1).connect(&url).await.with_context(|| format!("failed to open {}", path.display()))?;
        let read = connect(4).connect(&url).await.context("failed to open readers")?;
        let db = Db { write, read, background: None, backend: Backend::Sqlite };
        db.migrate(&migrations.sqlite, &RUNTIME_MIGRATIONS.sqlite).await?;
        Ok(db)
    }

    /// Opens the PostgreSQL database `name` on the server at `server` (a URL without a
    /// database), creating it if it does not exist, and applies the migrations.
    /// PostgreSQL has real row locks, so reads and writes share one pool.
    pub async fn open_postgres(server: &str, name: &str, pool: u32, migrations: &Migrations) -> anyhow::Result<Db> {
        install_default_drivers();
        let server = server.trim_end_matches('/');
        create_database(server, name).await?;
        let url = format!("{server}/{name}");
        let connect = |size: u32| {
            AnyPoolOptions::new()
                .max_connections(size)
                .idle_timeout(Duration::from_secs(30))
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
        };
        let size = pool.max(2);
        let pool = connect(size).await.with_context(|| format!("failed to connect to database {name}"))?;
        let background = connect(BACKGROUND_POOL.min(size.div_ceil(2)))
            .await
            .with_context(|| format!("failed to connect to database {name}"))?;
        let db = Db { write: pool.clone(), read: pool, background: Some(background), backend: Backend::Postgres };
        db.migrate(&migrations.postgres, &RUNTIME_MIGRATIONS.postgres).await?;
        Ok(db)
    }

    async fn migrate(&self, module: &Migrator, runtime: &Migrator) -> anyhow::Result<()> {
        // Both sets share one `_sqlx_migrations` table, so each must ignore the other's
        // versions (the runtime's are 1–99, a module's 100 and up).
        for (set, what) in [(runtime, "runtime"), (module, "module")] {
            let migrator = Migrator { migrations: set.migrations.clone(), ignore_missing: true, ..Migrator::DEFAULT };
            migrator.run(&self.write).await.with_context(|| format!("failed to apply {what} migrations"))?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same database, through the connections kept for the saga's background work
    /// (consumers, relays): on PostgreSQL a pool of its own, so that an event never
    /// queues for a connection behind a rush of buyers' requests. On SQLite, the same
    /// single writer (giving the saga its turn there first was measured: final state p99
    /// 0.38 s instead of 0.6–0.74 s, but 257 purchases/s instead of 405–479, as its
    /// batches got smaller).
    pub fn background(&self) -> Db {
        match &self.background {
            Some(pool) => Db { write: pool.clone(), read: pool.clone(), background: None, backend: self.backend },
            None => self.clone(),
        }
    }

    /// Begins a write transaction.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        self.write.begin().await.context("failed to begin a transaction")
    }

    /// The pool for reads, which never wait for the writer.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// The pool of the single writer, for one-statement writes outside a transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Whether the database answers within the readiness probe's time (a pool waiting
    /// for a dead server would otherwise take its whole acquire timeout).
    pub async fn ping(&self) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.read);
        matches!(tokio::time::timeout(crate::readiness::PROBE_TIMEOUT, query).await, Ok(Ok(_)))
    }
}
