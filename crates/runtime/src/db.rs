//! A module's database: its own file (or, distributed, its own PostgreSQL database).
//!
//! SQLite allows one writer at a time; a pool of writers only trades the wait for
//! `SQLITE_BUSY` errors. So writes go through one connection, called in place (see
//! `sqlite`), and reads through a pool of several (WAL lets them run beside the writer).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor};
use tokio::sync::watch;
use tracing::Instrument;

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

/// Listens on `channel` until the connection fails.
async fn listen_once(
    url: &str,
    channel: &str,
    deliver: &impl Fn(Option<&str>),
    failures: &mut u32,
) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(channel).await?;
    // Listening (again): what was sent before now is not coming.
    deliver(None);
    loop {
        let notification = listener.recv().await?;
        *failures = 0;
        deliver(Some(notification.payload()));
    }
}

async fn migrate(pool: &AnyPool, module: &Migrator, runtime: &Migrator) -> anyhow::Result<()> {
    // Both sets share one `_sqlx_migrations` table, so each must ignore the other's
    // versions (the runtime's are 1–99, a module's 100 and up).
    for (set, what) in [(runtime, "runtime"), (module, "module")] {
        let migrator = Migrator { migrations: set.migrations.clone(), ignore_missing: true, ..Migrator::DEFAULT };
        migrator.run(pool).await.with_context(|| format!("failed to apply {what} migrations"))?;
    }
    Ok(())
}

mod sqlite;
mod wal_sync;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::any::{AnyQueryResult, AnyRow, AnyTypeInfo};
use sqlx::{Either, Execute};
use wal_sync::WalSync;

/// A write transaction, and on SQLite with full durability the wait after its commit
/// for the write-ahead log's fsync (see `wal_sync`). Statements take `&mut *tx`.
pub struct Tx {
    conn: Conn,
    wal: Option<Arc<WalSync>>,
    /// Where this database's outbox is the embedded bus's log (see `Db::outbox_as_log`),
    /// its durable end, and the last outbox row this transaction added.
    pub(crate) outbox_log: Option<(Arc<watch::Sender<i64>>, i64)>,
}

/// A write transaction's connection: sqlx's on PostgreSQL, the embedded writer on SQLite
/// (see `sqlite`). Queries run on either through sqlx's `Executor`.
#[derive(Debug)]
pub enum Conn {
    Sqlx(sqlx::Transaction<'static, Any>),
    Sqlite(sqlite::Transaction),
}

impl Tx {
    /// Commits; returns once the commit is as durable as the database was opened for.
    pub async fn commit(self) -> anyhow::Result<()> {
        let Tx { conn, wal, outbox_log } = self;
        match conn {
            Conn::Sqlx(tx) => tx.commit().await,
            Conn::Sqlite(tx) => tx.commit().await,
        }
        .context("failed to commit")?;
        if let Some(wal) = wal {
            wal.durable().await?;
        }
        if let Some((log, last)) = outbox_log {
            // The outbox rows are as durable as the database was opened for: readers of
            // the log may have them now, and not before — a consumer must not act on an
            // event a power cut could still take back.
            log.send_if_modified(|durable| {
                let grew = last > *durable;
                *durable = (*durable).max(last);
                grew
            });
        }
        Ok(())
    }

    /// The engine this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlx(_) => Backend::Postgres,
            Conn::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub async fn rollback(self) -> anyhow::Result<()> {
        match self.conn {
            Conn::Sqlx(tx) => tx.rollback().await,
            Conn::Sqlite(tx) => tx.rollback().await,
        }
        .context("failed to roll back")
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// Implements sqlx's `Executor` for an enum of connections by handing each call to the
/// variant's own executor.
macro_rules! dispatch_executor {
    ($lt:lifetime, $target:ty, $($variant:pat => $executor:expr),+ $(,)?) => {
        impl<$lt> sqlx::Executor<$lt> for $target {
            type Database = Any;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
            where
                $lt: 'e,
                E: 'q + Execute<'q, Any>,
            {
                match self { $($variant => $executor.fetch_many(query)),+ }
            }

            fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
            where
                $lt: 'e,
                E: 'q + Execute<'q, Any>,
            {
                match self { $($variant => $executor.fetch_optional(query)),+ }
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                sql: &'q str,
                parameters: &'e [AnyTypeInfo],
            ) -> BoxFuture<'e, Result<sqlx::any::AnyStatement<'q>, sqlx::Error>>
            where
                $lt: 'e,
            {
                match self { $($variant => $executor.prepare_with(sql, parameters)),+ }
            }

            fn describe<'e, 'q: 'e>(
                self,
                sql: &'q str,
            ) -> BoxFuture<'e, Result<sqlx_core::describe::Describe<Any>, sqlx::Error>>
            where
                $lt: 'e,
            {
                match self { $($variant => $executor.describe(sql)),+ }
            }
        }
    };
}

dispatch_executor!('c, &'c mut Conn, Conn::Sqlx(tx) => &mut **tx, Conn::Sqlite(tx) => tx);
/// Where one-statement writes go: the pool on PostgreSQL, the embedded writer on SQLite.
#[derive(Debug, Clone)]
pub enum Writer {
    Pool(AnyPool),
    Sqlite(sqlite::Writer),
}

dispatch_executor!('c, &'c Writer, Writer::Pool(pool) => pool, Writer::Sqlite(writer) => writer);

/// Where reads go: the pool on PostgreSQL, the embedded readers on SQLite.
#[derive(Debug, Clone)]
pub enum Reader {
    Pool(AnyPool),
    Sqlite(sqlite::Readers),
}

dispatch_executor!('c, &'c Reader, Reader::Pool(pool) => pool, Reader::Sqlite(readers) => readers);

impl Reader {
    /// Begins a transaction for reads that must see one state of the database.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        let conn = match self {
            Reader::Pool(pool) => Conn::Sqlx(pool.begin().await.context("failed to begin a transaction")?),
            Reader::Sqlite(readers) => Conn::Sqlite(readers.begin().context("failed to begin a transaction")?),
        };
        Ok(Tx { conn, wal: None, outbox_log: None })
    }
}

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the answer: an answered request survives a power cut. Commits
    /// that finish together share one fsync (group commit, see `wal_sync`).
    Full,
    /// fsync at checkpoints: survives a process crash, may lose the last commits on a
    /// power cut.
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
    write: Writer,
    read: Reader,
    /// PostgreSQL: connections of the saga's background work, apart from the requests'.
    background: Option<AnyPool>,
    /// SQLite: the thread its write transactions run on (see `Db::on_writer`).
    writer_thread: Option<WriterThread>,
    /// SQLite with full durability: the log's shared fsync.
    wal: Option<Arc<WalSync>>,
    /// PostgreSQL: the database's URL, for listening to notifications.
    url: Option<Arc<str>>,
    /// SQLite with the embedded bus: the outbox is the log its consumers read, and this
    /// is the `seq` of its last durable row, which they may read up to and wait on (see
    /// `Db::outbox_as_log`).
    outbox_log: Option<Arc<watch::Sender<i64>>>,
}

/// A thread with a runtime of its own for one SQLite database's write transactions.
///
/// sqlx runs a SQLite connection on a thread of its own and hands it each statement;
/// the answer wakes the waiting task from outside the server's runtime, which queues it
/// behind every request in flight. A write transaction holds the single writer through
/// all of its statements, so under load most of its time was spent in that queue while
/// every other write waited for it. On a runtime that has nothing else to do, the
/// answer is taken up at once. The thread ends when the last handle to it is dropped.
#[derive(Clone)]
struct WriterThread {
    handle: tokio::runtime::Handle,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl WriterThread {
    fn start(name: &str) -> anyhow::Result<WriterThread> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name(format!("db-{name}")).spawn(move || {
            let _ = runtime.block_on(stopped);
        })?;
        Ok(WriterThread { handle, _stop: Arc::new(stop) })
    }
}

/// Aborts the task when whoever waits for it gives up, as if it had run in place.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        // Migrations through sqlx, which keeps its own table of them; then our connections.
        let migrator = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| Box::pin(async move { conn.execute("PRAGMA journal_mode = WAL").await.map(drop) }))
            .connect(&url)
            .await
            .with_context(|| format!("failed to open {}", path.display()))?;
        migrate(&migrator, &migrations.sqlite, &RUNTIME_MIGRATIONS.sqlite).await?;
        migrator.close().await;
        let write = Writer::Sqlite(
            sqlite::Writer::open(path).with_context(|| format!("failed to open {} for writing", path.display()))?,
        );
        let read = Reader::Sqlite(sqlite::Readers::open(path).context("failed to open readers")?);
        let name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let writer_thread = Some(WriterThread::start(&name).context("failed to start the writer's thread")?);
        let wal = (durability == Durability::Full).then(|| Arc::new(WalSync::new(path)));
        Ok(Db { write, read, background: None, writer_thread, wal, url: None, outbox_log: None })
    }

    /// Opens the PostgreSQL database `name` on the server at `server` (a URL without a
    /// database), creating it if it does not exist, and applies the migrations.
    /// PostgreSQL has real row locks, so reads and writes share one pool.
    pub async fn open_postgres(server: &str, name: &str, pool: u32, migrations: &Migrations) -> anyhow::Result<Db> {
        install_default_drivers();
        let server = server.trim_end_matches('/');
        create_database(server, name).await?;
        let url = format!("{server}/{name}");
        let options = |size: u32| {
            AnyPoolOptions::new()
                .max_connections(size)
                .idle_timeout(Duration::from_secs(30))
                .acquire_timeout(Duration::from_secs(10))
        };
        let size = pool.max(2);
        let pool =
            options(size).connect(&url).await.with_context(|| format!("failed to connect to database {name}"))?;
        // The background work reads queues — unpublished outbox rows, a pin's seats — by
        // partial indexes whose entries die as fast as they are added. A bitmap scan reads
        // every dead entry each time (it never marks them dead), and PostgreSQL chose one
        // whenever its statistics said the queue was short: before the first ANALYZE of a
        // new database, and during an on-sale. A plain index scan marks the dead entries
        // it passes, so the next one skips them. (Measured: 4,845 index entries read per
        // outbox read in a 20 s run, 1,054 reads.)
        let background = options(BACKGROUND_POOL.min(size.div_ceil(2)))
            .after_connect(|conn, _| {
                Box::pin(async move { conn.execute("SET enable_bitmapscan = off").await.map(drop) })
            })
            .connect(&url)
            .await
            .with_context(|| format!("failed to connect to database {name}"))?;
        migrate(&pool, &migrations.postgres, &RUNTIME_MIGRATIONS.postgres).await?;
        Ok(Db {
            write: Writer::Pool(pool.clone()),
            read: Reader::Pool(pool),
            background: Some(background),
            writer_thread: None,
            wal: None,
            url: Some(url.into()),
            outbox_log: None,
        })
    }

    pub fn backend(&self) -> Backend {
        match self.write {
            Writer::Pool(_) => Backend::Postgres,
            Writer::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The same database, through the connections kept for the saga's background work
    /// (consumers, relays, the payment workers' claims): on PostgreSQL a pool of its own,
    /// so that an event never queues for a connection behind a rush of buyers' requests,
    /// and which plans no bitmap scans (see `open_postgres`). On SQLite, the same
    /// single writer (giving the saga its turn there first was measured: final state p99
    /// 0.38 s instead of 0.6–0.74 s, but 257 purchases/s instead of 405–479, as its
    /// batches got smaller).
    pub fn background(&self) -> Db {
        match &self.background {
            Some(pool) => Db {
                write: Writer::Pool(pool.clone()),
                read: Reader::Pool(pool.clone()),
                background: None,
                writer_thread: None,
                wal: None,
                url: self.url.clone(),
                outbox_log: None,
            },
            None => self.clone(),
        }
    }

    /// Runs `work` — a write transaction and what it needs around it — where this
    /// database's writes are quickest: on SQLite, on the writer's own thread (see
    /// `WriterThread`), carrying the caller's span and trace context; on PostgreSQL, in
    /// place. Dropping the returned future stops the work, as it would in place.
    pub async fn on_writer<T, F>(&self, work: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let Some(thread) = &self.writer_thread else { return work.await };
        let context = crate::trace::TraceContext::current();
        let work = async move {
            match context {
                Some(context) => context.scope(work).await,
                None => work.await,
            }
        };
        let mut task = AbortOnDrop(thread.handle.spawn(work.instrument(tracing::Span::current())));
        match (&mut task.0).await {
            Ok(value) => value,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("the writer's thread stopped: {error}"),
        }
    }

    /// The same database with its outbox as the embedded bus's log, durable up to `seq`
    /// `durable`: consumers read the outbox itself, so a row is published when it
    /// commits (`outbox::append` says so) and there is nothing to relay. Saves copying
    /// every event into a log of its own, marking it, and the commits of both.
    pub fn outbox_as_log(self, durable: i64) -> Db {
        Db { outbox_log: Some(Arc::new(watch::channel(durable).0)), ..self }
    }

    /// The durable end of this database's outbox, when it is a bus's log: moves when a
    /// transaction that added to it has committed (and, with full durability, is on disk).
    pub fn outbox_log(&self) -> Option<watch::Receiver<i64>> {
        self.outbox_log.as_ref().map(|log| log.subscribe())
    }

    /// Begins a write transaction.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        let conn = match &self.write {
            Writer::Pool(pool) => Conn::Sqlx(pool.begin().await.context("failed to begin a transaction")?),
            Writer::Sqlite(writer) => Conn::Sqlite(writer.begin().await.context("failed to begin a transaction")?),
        };
        Ok(Tx { conn, wal: self.wal.clone(), outbox_log: self.outbox_log.clone().map(|log| (log, 0)) })
    }

    /// Returns once what this database committed before the call would survive a power
    /// cut, for a write made through `writer()` rather than a `Tx` (at once where commits
    /// are durable by themselves, or need not be).
    pub async fn durable(&self) -> anyhow::Result<()> {
        match &self.wal {
            Some(wal) => wal.durable().await,
            None => Ok(()),
        }
    }

    /// The steps of SQLite's plan for `sql` (`EXPLAIN QUERY PLAN`, its `$N` parameters
    /// NULL), for tests that pin down which index a statement searches.
    pub async fn sqlite_plan(&self, sql: &str) -> anyhow::Result<Vec<String>> {
        use sqlx::Row;
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let digits = |s: &str| s.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse::<usize>().ok());
        let parameters = sql.split('$').skip(1).filter_map(digits).max().unwrap_or(0);
        let query = (0..parameters).fold(sqlx::query(&explain), |q, _| q.bind(None::<i64>));
        let rows = query.fetch_all(self.reader()).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>("detail")).collect())
    }

    /// Where reads go, which never wait for the writer.
    pub fn reader(&self) -> &Reader {
        &self.read
    }

    /// The writer, for one-statement writes outside a transaction.
    pub fn writer(&self) -> &Writer {
        &self.write
    }

    /// Tells every process listening on `channel` (see `listen`) each of `payloads`, when
    /// `tx` commits — PostgreSQL's NOTIFY, one statement for all of them (a payload must
    /// not contain a newline). Nothing on SQLite, where one process is all.
    pub async fn notify(&self, tx: &mut Tx, channel: &str, payloads: &[String]) -> anyhow::Result<()> {
        if self.backend() == Backend::Postgres && !payloads.is_empty() {
            anyhow::ensure!(!payloads.iter().any(|p| p.contains('\n')), "a notification's payload has a newline");
            sqlx::query("SELECT pg_notify($1, payload) FROM unnest(string_to_array($2, E'\\n')) AS payload")
                .bind(channel)
                .bind(payloads.join("\n"))
                .execute(&mut **tx)
                .await
                .context("failed to notify")?;
        }
        Ok(())
    }

    /// On PostgreSQL, a task that hands `deliver` the payload of every notification on
    /// `channel` (see `notify`) until it is dropped, reconnecting when the connection
    /// drops. Notifications sent while it is away are lost, so it also hands `deliver`
    /// `None` each time it begins to listen, the first time included: whoever waits for
    /// a notification must look again for themselves then.
    pub fn listen(
        &self,
        channel: &'static str,
        deliver: impl Fn(Option<&str>) + Send + Sync + 'static,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let url = self.url.clone()?;
        Some(async move {
            let mut failures = 0;
            loop {
                let Err(error) = listen_once(&url, channel, &deliver, &mut failures).await;
                tracing::warn!(channel, %error, "listening for notifications failed; reconnecting");
                crate::backoff_sleep(failures).await;
                failures += 1;
            }
        })
    }

    /// Whether the database can still make commits durable and answers within the
    /// readiness probe's time (a pool waiting for a dead server would otherwise take its
    /// whole acquire timeout).
    pub async fn ping(&self) -> bool {
        if self.wal.as_ref().is_some_and(|wal| wal.failed()) {
            return false;
        }
        let query = sqlx::query("SELECT 1").execute(&self.read);
        matches!(tokio::time::timeout(crate::readiness::PROBE_TIMEOUT, query).await, Ok(Ok(_)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::trace::TraceContext;

    /// An outbox that is the bus's log shows its readers a row only once the row's
    /// commit is durable: a commit whose fsync failed moves the log's end nowhere.
    #[tokio::test]
    async fn the_outbox_log_ends_at_the_last_durable_commit() {
        let dir = tempfile::tempdir().unwrap();
        let migrations = Migrations { sqlite: Migrator::DEFAULT, postgres: Migrator::DEFAULT };
        let db =
            Db::open_sqlite(&dir.path().join("m.db"), Durability::Full, &migrations).await.unwrap().outbox_as_log(0);
        let end = db.outbox_log().unwrap();
        let append = |show: i64| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.unwrap();
                let event = contract::events::EventReset { event_id: show, reset_at: 0 };
                crate::outbox::append(&mut tx, &event).await.unwrap();
                tx.commit().await
            }
        };
        append(1).await.unwrap();
        let first = *end.borrow();
        assert!(first > 0, "a durable commit moves the end");

        // Every fsync fails from now on (a log that cannot be opened: a link to itself).
        let broken = dir.path().join("broken");
        std::fs::create_dir(&broken).unwrap();
        std::os::unix::fs::symlink(broken.join("m.db-wal"), broken.join("m.db-wal")).unwrap();
        let db = Db { wal: Some(Arc::new(WalSync::new(&broken.join("m.db")))), ..db };
        let mut tx = db.begin().await.unwrap();
        crate::outbox::append(&mut tx, &contract::events::EventReset { event_id: 2, reset_at: 0 }).await.unwrap();
        assert!(tx.commit().await.is_err(), "the fsync failed");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(db.reader()).await.unwrap();
        assert_eq!(rows, 2, "committed, but not durable");
        assert_eq!(*end.borrow(), first, "the log still ends at the durable row");
    }

    #[tokio::test]
    async fn writes_run_on_the_writers_thread_with_the_callers_trace() {
        let dir = tempfile::tempdir().unwrap();
        let migrations = Migrations { sqlite: Migrator::DEFAULT, postgres: Migrator::DEFAULT };
        let db = Db::open_sqlite(&dir.path().join("m.db"), Durability::Normal, &migrations).await.unwrap();
        let caller = TraceContext::from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        let (thread, trace) = caller
            .clone()
            .scope(db.on_writer(async {
                let thread = std::thread::current().name().map(str::to_owned);
                (thread, TraceContext::current().map(|c| c.trace_id))
            }))
            .await;
        assert_eq!(thread.as_deref(), Some("db-m"));
        assert_eq!(trace, Some(caller.trace_id));
    }

    #[tokio::test]
    async fn a_write_given_up_by_its_caller_stops() {
        let dir = tempfile::tempdir().unwrap();
        let migrations = Migrations { sqlite: Migrator::DEFAULT, postgres: Migrator::DEFAULT };
        let db = Db::open_sqlite(&dir.path().join("m.db"), Durability::Normal, &migrations).await.unwrap();
        let (started, ran) = (Arc::new(tokio::sync::Notify::new()), Arc::new(AtomicBool::new(false)));
        let work = {
            let (started, ran) = (started.clone(), ran.clone());
            db.on_writer(async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(200)).await;
                ran.store(true, Ordering::SeqCst);
            })
        };
        let given_up = tokio::time::timeout(Duration::from_millis(50), async {
            tokio::join!(work, started.notified());
        });
        assert!(given_up.await.is_err());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!ran.load(Ordering::SeqCst), "the work went on after its caller dropped it");
    }
}
