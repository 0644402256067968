//! The embedded mode's connections: SQLite called in place, behind sqlx's API.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it every statement
//! over a channel; the answer wakes the waiting task. A purchase is some forty write
//! statements and a few reads, so under load the server spent more of its CPU switching
//! and waking threads than in SQLite (docs/BENCHMARKS.md, "where the time goes"). Here
//! the single writer and the readers are `rusqlite` connections that run a statement on
//! the thread that asks — the database's writer thread, for the saga's writes — and hand
//! back sqlx's own `Any` rows and results, so the modules' queries are the same on
//! SQLite and PostgreSQL. The modules' statements touch an indexed row or a few, so
//! running them where they are asked for costs less than a hand-off to another thread
//! (docs/BENCHMARKS.md, session 5: twice the purchases per second).
//!
//! The writer's transactions that are ready at once share one SQLite commit (see
//! `Transaction::commit`; docs/BENCHMARKS.md, session 6).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, BoxStream, StreamExt};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::{Any, Either, Error, Execute};
use sqlx_core::any::{AnyColumn, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

/// How long a write waits for the connection before giving up, as sqlx's pool would.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most transactions one SQLite commit carries (see `Transaction::commit`).
const MAX_GROUP: usize = 128;

/// The one connection that writes to a SQLite database, shared by whoever writes.
#[derive(Clone)]
pub struct Writer(Arc<Mutex<State>>);

/// The writer's connection and the group of transactions it has open.
struct State {
    conn: Connection,
    /// Transactions committed into the open SQLite transaction, waiting for its COMMIT.
    group: Option<Group>,
    /// Groups begun so far: the id of the latest, so that a member can tell whether its
    /// group is still the open one.
    groups: u64,
}

struct Group {
    id: u64,
    members: usize,
    /// The outcome of the group's COMMIT, for every member.
    done: watch::Sender<Option<Result<(), String>>>,
}

impl State {
    /// Commits the open group, if any, and tells its members how that went.
    fn close_group(&mut self) -> Result<(), Error> {
        let Some(group) = self.group.take() else { return Ok(()) };
        let result = if self.conn.is_autocommit() {
            // An error (a full disk, say) made SQLite roll the whole transaction back.
            Err("the group's transaction was rolled back by an error before its commit".to_owned())
        } else {
            self.conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        };
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        group.done.send_replace(Some(result.clone()));
        result.map_err(group_failed)
    }

    /// Undoes the current transaction's part of the group. A group with members waiting
    /// for its commit is committed now; an empty one is rolled back.
    fn undo(&mut self) {
        if self.conn.execute_batch("ROLLBACK TO tx; RELEASE tx").is_err() {
            // Its part cannot be undone alone (an error took the whole transaction, or
            // the savepoint): nothing of the group may commit, and its members hear so.
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            let _ = self.close_group();
            return;
        }
        match &self.group {
            Some(group) if group.members > 0 => {
                let _ = self.close_group();
            }
            _ => {
                self.group = None;
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
    }
}

fn group_failed(message: String) -> Error {
    Error::Io(std::io::Error::other(message))
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sqlite::Writer")
    }
}

fn open(path: &Path, pragmas: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(pragmas)?;
    // The modules' statements, and the batch statements' few shapes (by batch size).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

impl Writer {
    pub fn open(path: &Path) -> anyhow::Result<Writer> {
        // Full durability is the group commit's fsync after the commit (see `wal_sync`).
        // Each transaction of a group is a savepoint, and a savepoint keeps the pages it
        // changes in a statement journal: in memory (temp_store), not in a temporary file
        // that a large group spilled to with a write per page. The log is copied back
        // into the database every 12,000 pages (48 MB), not SQLite's 1,000: a hot page
        // is then copied (and the database synced) once where it was twelve times.
        // Measured: 4,000 gave 10% over 1,000, 12,000 9–10% over 4,000 (docs/BENCHMARKS.md);
        // the price is a longer log for readers to look pages up in and for a restart
        // to read.
        let conn = open(
            path,
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 12000;",
        )?;
        Ok(Writer(Arc::new(Mutex::new(State { conn, group: None, groups: 0 }))))
    }

    async fn lock(&self) -> Result<OwnedMutexGuard<State>, Error> {
        tokio::time::timeout(ACQUIRE_TIMEOUT, self.0.clone().lock_owned()).await.map_err(|_| Error::PoolTimedOut)
    }

    /// Begins a transaction, which holds the connection until it ends: a savepoint in
    /// the open group's SQLite transaction, or in a new one.
    pub async fn begin(&self) -> Result<Transaction, Error> {
        let mut state = self.lock().await?;
        if state.group.is_some() && state.conn.is_autocommit() {
            let _ = state.close_group(); // lost to an error: its members hear so
        }
        if state.group.is_none() {
            state.conn.execute_batch("BEGIN IMMEDIATE").map_err(error)?;
            state.groups += 1;
            state.group = Some(Group { id: state.groups, members: 0, done: watch::channel(None).0 });
        }
        if let Err(e) = state.conn.execute_batch("SAVEPOINT tx") {
            state.undo();
            return Err(error(e));
        }
        Ok(Transaction(Some(Held::Writer(state, self.clone()))))
    }
}

/// Closes the group of a commit that was dropped while it waited for it, if the writer is
/// free; otherwise whoever holds the writer closes it or waits to (see `commit`).
struct CloseIfDropped {
    writer: Writer,
    group: u64,
    armed: bool,
}

impl Drop for CloseIfDropped {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(mut state) = self.writer.0.try_lock()
            && state.group.as_ref().is_some_and(|g| g.id == self.group)
        {
            let _ = state.close_group();
        }
    }
}

/// Connections for reads, beside the writer (WAL lets them run while it writes). Each is
/// taken for one statement or one read transaction and then kept for the next.
#[derive(Clone)]
pub struct Readers(Arc<ReadersInner>);

struct ReadersInner {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Connection>>,
}

/// Idle readers kept: about one per thread that reads at once.
const IDLE_READERS: usize = 16;

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sqlite::Readers")
    }
}

impl Readers {
    pub fn open(path: &Path) -> anyhow::Result<Readers> {
        let readers = Readers(Arc::new(ReadersInner { path: path.to_owned(), idle: Default::default() }));
        drop(readers.take()?); // fail here, not at the first read, if it cannot be opened
        Ok(readers)
    }

    fn take(&self) -> Result<Reader, Error> {
        let idle = self.0.idle.lock().expect("readers lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open(&self.0.path, "PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;").map_err(error)?,
        };
        Ok(Reader { conn: Some(conn), readers: self.clone() })
    }

    /// Begins a read transaction: its statements see one snapshot of the database.
    pub fn begin(&self) -> Result<Transaction, Error> {
        let reader = self.take()?;
        reader.execute_batch("BEGIN").map_err(error)?;
        Ok(Transaction(Some(Held::Reader(reader))))
    }
}

/// A reader taken from `Readers`, given back when dropped.
struct Reader {
    conn: Option<Connection>,
    readers: Readers,
}

impl std::ops::Deref for Reader {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("a reader until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut idle = self.readers.0.idle.lock().expect("readers lock");
        if idle.len() < IDLE_READERS {
            idle.extend(self.conn.take());
        }
    }
}

/// The connection a transaction holds: the writer, or a reader for a read transaction.
enum Held {
    Writer(OwnedMutexGuard<State>, Writer),
    Reader(Reader),
}

impl std::ops::Deref for Held {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Held::Writer(state, _) => &state.conn,
            Held::Reader(conn) => conn,
        }
    }
}

/// A transaction on one connection; dropped without a commit, it rolls back.
pub struct Transaction(Option<Held>);

impl Transaction {
    fn conn(&self) -> &Connection {
        self.0.as_ref().expect("a transaction until it ends")
    }

    /// Commits. A write transaction is committed together with the others that are
    /// ready to run at that moment: its savepoint is released into the group's SQLite
    /// transaction, the writer is let go for one turn of the scheduler, and then the
    /// first member back commits the group. A commit is SQLite's costliest step (the
    /// write-ahead log's frames, its index, the locks); shared, it is paid once.
    pub async fn commit(mut self) -> Result<(), Error> {
        match self.0.take().expect("a transaction until it ends") {
            Held::Reader(reader) => reader.execute_batch("COMMIT").map_err(error),
            Held::Writer(mut state, writer) => {
                if let Err(e) = state.conn.execute_batch("RELEASE tx") {
                    state.undo();
                    return Err(error(e));
                }
                let group = state.group.as_mut().expect("a write transaction is in a group");
                group.members += 1;
                if group.members >= MAX_GROUP {
                    return state.close_group();
                }
                let (id, mut done) = (group.id, group.done.subscribe());
                drop(state);
                let mut closer = CloseIfDropped { writer: writer.clone(), group: id, armed: true };
                // Let the transactions ready to run join this one's commit.
                tokio::task::yield_now().await;
                let mut state = writer.lock().await?;
                closer.armed = false;
                if state.group.as_ref().is_some_and(|g| g.id == id) {
                    return state.close_group();
                }
                drop(state);
                let outcome = done.wait_for(Option::is_some).await.map_err(|_| group_failed("writer gone".into()))?;
                outcome.clone().expect("waited for the outcome").map_err(group_failed)
            }
        }
    }

    pub async fn rollback(mut self) -> Result<(), Error> {
        match self.0.take().expect("a transaction until it ends") {
            Held::Reader(reader) => reader.execute_batch("ROLLBACK").map_err(error),
            Held::Writer(mut state, _) => {
                state.undo();
                Ok(())
            }
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        match self.0.take() {
            Some(Held::Writer(mut state, _)) => state.undo(),
            Some(Held::Reader(reader)) if !reader.is_autocommit() => {
                let _ = reader.execute_batch("ROLLBACK");
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sqlite::Transaction")
    }
}

/// Implements sqlx's `Executor` for `$target` from how it gets a statement's results
/// (`$this` the executor, `$query` the query).
macro_rules! executor {
    ($lt:lifetime, $target:ty, |$this:ident, $query:ident| $results:expr) => {
        impl<$lt> sqlx::Executor<$lt> for $target {
            type Database = Any;

            fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
            where
                $lt: 'e,
                E: 'q + Execute<'q, Any>,
            {
                let ($this, $query) = (self, query);
                stream::once($results)
                    .flat_map(|results| match results {
                        Ok(results) => stream::iter(results.into_iter().map(Ok).collect::<Vec<_>>()),
                        Err(error) => stream::iter(vec![Err(error)]),
                    })
                    .boxed()
            }

            fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
            where
                $lt: 'e,
                E: 'q + Execute<'q, Any>,
            {
                let ($this, $query) = (self, query);
                $results.map(|results| results.map(first_row)).boxed()
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                _sql: &'q str,
                _parameters: &'e [AnyTypeInfo],
            ) -> BoxFuture<'e, Result<sqlx::any::AnyStatement<'q>, Error>>
            where
                $lt: 'e,
            {
                Box::pin(async { Err(unsupported()) })
            }

            fn describe<'e, 'q: 'e>(
                self,
                _sql: &'q str,
            ) -> BoxFuture<'e, Result<sqlx_core::describe::Describe<Any>, Error>>
            where
                $lt: 'e,
            {
                Box::pin(async { Err(unsupported()) })
            }
        }
    };
}

// One statement outside a transaction, once the writer is free.
executor!('c, &'c Writer, |writer, query| async move {
    let mut state = writer.lock().await?;
    // Its own commit: the open group's transactions are committed first.
    let _ = state.close_group();
    run(&state.conn, query)
});
// One read, on any idle reader.
executor!('c, &'c Readers, |readers, query| std::future::ready(readers.take().and_then(|conn| run(&conn, query))));
// A statement in the transaction, in place.
executor!('c, &'c mut Transaction, |tx, query| std::future::ready(run(tx.conn(), query)));

fn unsupported() -> Error {
    Error::Protocol("prepared statements are not kept on the embedded writer; run the query instead".into())
}

fn first_row(results: Vec<Either<AnyQueryResult, AnyRow>>) -> Option<AnyRow> {
    results.into_iter().find_map(|r| r.right())
}

/// A result's column names, in order and by name.
type Columns = (Vec<UStr>, Arc<sqlx_core::HashMap<UStr, usize>>);

/// Runs one statement: binds sqlx's arguments (`$N` by number, `?` in order), steps it
/// to the end, and returns its rows and then its result, as sqlx's SQLite driver does.
fn run<'q>(conn: &Connection, mut query: impl Execute<'q, Any>) -> Result<Vec<Either<AnyQueryResult, AnyRow>>, Error> {
    let sql = query.sql();
    let arguments = query.take_arguments().map_err(Error::Encode)?;
    let values = arguments.map(|a: AnyArguments<'q>| a.values.0).unwrap_or_default();
    let mut statement = conn.prepare_cached(sql).map_err(error)?;
    for index in 1..=statement.parameter_count() {
        let position = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix(['$', '?']))
            .and_then(|number| number.parse::<usize>().ok())
            .unwrap_or(index);
        let value = values.get(position - 1).ok_or_else(|| {
            Error::Protocol(format!("statement wants argument {position}, {} were bound: {sql}", values.len()))
        })?;
        statement.raw_bind_parameter(index, ToSqlOutput::Borrowed(bind(value)?)).map_err(error)?;
    }
    let read_only = statement.readonly();
    let mut results = Vec::new();
    let mut rows = statement.raw_query();
    let mut named: Option<Columns> = None;
    while let Some(row) = rows.next().map_err(error)? {
        // The columns as the first step left the statement: a step recompiles a statement
        // whose tables changed since it was prepared (a `SELECT *` after a migration).
        // Named once per statement that returns rows, not for every write.
        let (columns, names) = named.get_or_insert_with(|| {
            let columns: Vec<UStr> = row.as_ref().column_names().into_iter().map(UStr::new).collect();
            let names = Arc::new(columns.iter().enumerate().map(|(i, name)| (name.clone(), i)).collect());
            (columns, names)
        });
        let mut out = AnyRow {
            column_names: names.clone(),
            columns: Vec::with_capacity(columns.len()),
            values: Vec::with_capacity(columns.len()),
        };
        for (ordinal, name) in columns.iter().enumerate() {
            let kind = value(row.get_ref(ordinal).map_err(error)?)?;
            let type_info = AnyTypeInfo { kind: kind_of(&kind) };
            out.columns.push(AnyColumn { ordinal, name: name.clone(), type_info });
            out.values.push(AnyValue { kind });
        }
        results.push(Either::Right(out));
    }
    drop(rows);
    let rows_affected = if read_only { 0 } else { conn.changes() };
    results.push(Either::Left(AnyQueryResult { rows_affected, last_insert_id: None }));
    Ok(results)
}

fn bind<'a>(value: &'a AnyValueKind<'_>) -> Result<ValueRef<'a>, Error> {
    Ok(match value {
        AnyValueKind::Null(_) => ValueRef::Null,
        AnyValueKind::Bool(b) => ValueRef::Integer(i64::from(*b)),
        AnyValueKind::SmallInt(i) => ValueRef::Integer(i64::from(*i)),
        AnyValueKind::Integer(i) => ValueRef::Integer(i64::from(*i)),
        AnyValueKind::BigInt(i) => ValueRef::Integer(*i),
        AnyValueKind::Real(r) => ValueRef::Real(f64::from(*r)),
        AnyValueKind::Double(d) => ValueRef::Real(*d),
        AnyValueKind::Text(t) => ValueRef::Text(t.as_bytes()),
        AnyValueKind::Blob(b) => ValueRef::Blob(b),
        other => return Err(Error::Protocol(format!("no SQLite value for argument {other:?}"))),
    })
}

/// A column's value by its storage class, as sqlx's SQLite driver maps it for `Any`.
fn value(value: ValueRef<'_>) -> Result<AnyValueKind<'static>, Error> {
    Ok(match value {
        ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
        ValueRef::Integer(i) => AnyValueKind::BigInt(i),
        ValueRef::Real(r) => AnyValueKind::Double(r),
        ValueRef::Text(t) => {
            AnyValueKind::Text(Cow::Owned(String::from_utf8(t.to_vec()).map_err(|e| Error::Decode(Box::new(e)))?))
        }
        ValueRef::Blob(b) => AnyValueKind::Blob(Cow::Owned(b.to_vec())),
    })
}

fn kind_of(value: &AnyValueKind<'_>) -> AnyTypeInfoKind {
    match value {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

/// A SQLite error as sqlx reports database errors, with its constraint kind.
#[derive(Debug, thiserror::Error)]
#[error("(code: {code}) {message}")]
pub struct SqliteError {
    code: i32,
    message: String,
}

fn error(error: rusqlite::Error) -> Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => Error::Database(Box::new(SqliteError {
            code: failure.extended_code,
            message: message.unwrap_or_else(|| failure.to_string()),
        })),
        other => Error::Protocol(other.to_string()),
    }
}

impl DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => ErrorKind::UniqueViolation,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    async fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::open(&dir.path().join("w.db")).unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, data BLOB)")
            .execute(&writer)
            .await
            .unwrap();
        (dir, writer)
    }

    /// A prepared statement is kept by its text; a `SELECT *` whose table gained a column
    /// since (a migration) is read with the new column.
    #[tokio::test]
    async fn a_kept_statement_reads_the_columns_of_a_changed_table() {
        let (_dir, writer) = writer().await;
        sqlx::query("INSERT INTO t (id, name) VALUES ($1, $2)").bind(1_i64).bind("a").execute(&writer).await.unwrap();
        let before = sqlx::query("SELECT * FROM t").fetch_one(&writer).await.unwrap();
        assert_eq!(before.columns().len(), 4);
        sqlx::query("ALTER TABLE t ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'").execute(&writer).await.unwrap();
        let after = sqlx::query("SELECT * FROM t").fetch_one(&writer).await.unwrap();
        assert_eq!(after.columns().len(), 5);
        assert_eq!(after.get::<String, _>("extra"), "x");
        assert_eq!(after.get::<String, _>("name"), "a");
    }

    #[tokio::test]
    async fn arguments_bind_by_number_and_values_read_back_as_sqlx_reads_them() {
        let (_dir, writer) = writer().await;
        // `$2` before `$1`, and `$1` twice: numbers, not positions, pick the argument.
        let inserted =
            sqlx::query("INSERT INTO t (id, name, score, data) VALUES ($2, $1, $3, $4), ($2 + 1, $1, NULL, NULL)")
                .bind("ann")
                .bind(7_i64)
                .bind(1.5_f64)
                .bind(vec![1_u8, 2])
                .execute(&writer)
                .await
                .unwrap();
        assert_eq!(inserted.rows_affected(), 2);
        let rows = sqlx::query("SELECT id, name, score, data, COUNT(*) OVER () AS n FROM t ORDER BY id")
            .fetch_all(&writer)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<i64, _>("id"), 7);
        assert_eq!(rows[0].get::<String, _>("name"), "ann");
        assert_eq!(rows[0].get::<f64, _>("score"), 1.5);
        assert_eq!(rows[0].get::<Vec<u8>, _>("data"), vec![1, 2]);
        assert_eq!(rows[1].get::<i64, _>(0), 8);
        assert_eq!(rows[1].get::<Option<f64>, _>("score"), None);
        assert_eq!(rows[1].get::<i64, _>("n"), 2);
        let missing = sqlx::query("SELECT $2").bind(1_i64).execute(&writer).await.unwrap_err();
        assert!(missing.to_string().contains("argument 2"), "{missing}");
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_commit_rolls_back_and_frees_the_writer() {
        let (_dir, writer) = writer().await;
        let mut tx = writer.begin().await.unwrap();
        let returned = sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a') RETURNING id").fetch_one(&mut tx).await;
        assert_eq!(returned.unwrap().get::<i64, _>("id"), 1);
        drop(tx);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&writer).await.unwrap();
        assert_eq!(n, 0);
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a')").execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&writer).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn constraint_failures_are_database_errors_of_their_kind() {
        let (_dir, writer) = writer().await;
        sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a')").execute(&writer).await.unwrap();
        let duplicate = sqlx::query("INSERT INTO t (id, name) VALUES (1, 'b')").execute(&writer).await.unwrap_err();
        assert!(duplicate.as_database_error().is_some_and(|e| e.is_unique_violation()), "{duplicate}");
        let null = sqlx::query("INSERT INTO t (id, name) VALUES (2, NULL)").execute(&writer).await.unwrap_err();
        assert_eq!(null.as_database_error().map(|e| e.kind()), Some(ErrorKind::NotNullViolation), "{null}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&writer).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_write_waits_for_the_transaction_that_holds_the_writer() {
        let (_dir, writer) = writer().await;
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a')").execute(&mut tx).await.unwrap();
        let waiting = tokio::spawn({
            let writer = writer.clone();
            async move { sqlx::query("UPDATE t SET name = 'b' WHERE id = 1").execute(&writer).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a write ran inside another's transaction");
        tx.commit().await.unwrap();
        assert_eq!(waiting.await.unwrap().rows_affected(), 1);
    }

    /// Ten transactions ready at once: one SQLite commit, each sees its row committed
    /// once its commit returns, and the one that rolls back leaves the others' rows.
    #[tokio::test]
    async fn transactions_ready_together_share_one_commit() {
        let (dir, writer) = writer().await;
        let readers = Readers::open(&dir.path().join("w.db")).unwrap();
        let groups_before = writer.0.lock().await.groups;
        let tasks: Vec<_> = (1..=10_i64)
            .map(|id| {
                let (writer, readers) = (writer.clone(), readers.clone());
                tokio::spawn(async move {
                    let mut tx = writer.begin().await.unwrap();
                    sqlx::query("INSERT INTO t (id, name) VALUES ($1, 'x')").bind(id).execute(&mut tx).await.unwrap();
                    if id == 10 {
                        return tx.rollback().await.unwrap();
                    }
                    tx.commit().await.unwrap();
                    let seen: Option<i64> = sqlx::query_scalar("SELECT id FROM t WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&readers)
                        .await
                        .unwrap();
                    assert_eq!(seen, Some(id), "committed before its commit returned");
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM t ORDER BY id").fetch_all(&readers).await.unwrap();
        assert_eq!(ids, (1..=9).collect::<Vec<_>>());
        let groups = writer.0.lock().await.groups - groups_before;
        assert!(groups <= 2, "ten transactions ready together took {groups} commits");
    }

    #[tokio::test]
    async fn a_commit_dropped_while_it_waits_for_its_group_still_commits() {
        let (dir, writer) = writer().await;
        let readers = Readers::open(&dir.path().join("w.db")).unwrap();
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a')").execute(&mut tx).await.unwrap();
        let mut commit = Box::pin(tx.commit());
        // Its first step releases its savepoint into the group and waits a turn.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(commit.as_mut().poll(&mut cx).is_pending());
        drop(commit);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&readers).await.unwrap();
        assert_eq!(n, 1, "the group was left open");
        // The writer is free and begins a group of its own again.
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, name) VALUES (2, 'b')").execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&readers).await.unwrap();
        assert_eq!(n, 2);
    }

    /// A failed statement undoes only itself; a transaction that rolls back after
    /// others joined its group leaves theirs.
    #[tokio::test]
    async fn a_member_that_fails_leaves_the_group_intact() {
        let (dir, writer) = writer().await;
        let readers = Readers::open(&dir.path().join("w.db")).unwrap();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut tx = writer.begin().await.unwrap();
                sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a')").execute(&mut tx).await.unwrap();
                tx.commit().await
            }
        });
        let second = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut tx = writer.begin().await.unwrap();
                sqlx::query("INSERT INTO t (id, name) VALUES (2, 'b')").execute(&mut tx).await.unwrap();
                let duplicate = sqlx::query("INSERT INTO t (id, name) VALUES (1, 'c')").execute(&mut tx).await;
                assert!(duplicate.is_err(), "the first's row is seen in the group");
                drop(tx);
            }
        });
        second.await.unwrap();
        first.await.unwrap().unwrap();
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM t ORDER BY id").fetch_all(&readers).await.unwrap();
        assert_eq!(ids, vec![1]);
    }

    #[tokio::test]
    async fn a_read_transaction_sees_one_snapshot_while_the_writer_commits() {
        let (dir, writer) = writer().await;
        let readers = Readers::open(&dir.path().join("w.db")).unwrap();
        sqlx::query("INSERT INTO t (id, name) VALUES (1, 'a')").execute(&writer).await.unwrap();
        let count = "SELECT COUNT(*) FROM t";
        let mut snapshot = readers.begin().unwrap();
        assert_eq!(sqlx::query_scalar::<_, i64>(count).fetch_one(&mut snapshot).await.unwrap(), 1);
        sqlx::query("INSERT INTO t (id, name) VALUES (2, 'b')").execute(&writer).await.unwrap();
        // Outside the transaction a reader sees the commit; inside, the snapshot holds.
        assert_eq!(sqlx::query_scalar::<_, i64>(count).fetch_one(&readers).await.unwrap(), 2);
        assert_eq!(sqlx::query_scalar::<_, i64>(count).fetch_one(&mut snapshot).await.unwrap(), 1);
        snapshot.commit().await.unwrap();
        let refused = sqlx::query("DELETE FROM t").execute(&readers).await.unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");
        assert_eq!(sqlx::query_scalar::<_, i64>(count).fetch_one(&writer).await.unwrap(), 2);
    }
}
