//! What every module stands on.
//!
//! - `clock`: the time that decides holds, expiries, idempotency keys and tokens; a
//!   manual one in tests.
//! - `db`: a module's own database (SQLite file in embedded mode), its migrations, the
//!   split between the single writer and the readers that SQLite wants, and the thread
//!   each SQLite database's write transactions run on.
//! - `outbox`: appending events in the state change's transaction, and the relay that
//!   publishes them to the bus and marks them published only once the bus has them.
//! - `bus`: the topic log between modules; `bus::embedded` is a durable log in SQLite
//!   with consumer-group offsets, the same semantics the Kafka bus gives.
//! - `consumer`: a module's event loop — each event applied once (inbox) in the same
//!   transaction as its effect by the handler the module registered for its type, the
//!   offset committed only after that.
//! - `trace`, `http`, `telemetry`: W3C trace context, the contract's error body,
//!   extractors and middleware, and the log subscriber.
//! - `limits`: request rate limits per buyer and per client address (429).
//! - `readiness`: whether the databases and the bus answer; 503 for the API while not.
//! - `testing`: a test that cannot run here says so, and fails under `CI=true`.
//! - `same_site`: browser writes from other sites refused (415, 403).
//! - `door`: what the modules that hold seats and take orders know of each show's
//!   on-sale time and waiting room, and the admission tokens they check.
//! - `module`: the one trait a module implements, and its [`module::Spec`], which the
//!   binary's list of modules is made of.

pub mod bus;
pub mod clock;
pub mod consumer;
pub mod db;
pub mod door;
pub mod health;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod module;
pub mod outbox;
pub mod readiness;
pub mod same_site;
pub mod telemetry;
pub mod testing;
pub mod trace;

pub use db::{Db, Tx};

/// Sleeps before retry number `attempt` of a background loop whose failures are
/// transient (a locked database, an unreachable broker): 50 ms, doubling, at most 2 s.
pub async fn backoff_sleep(attempt: u32) {
    let ms = (50u64 << attempt.min(6)).min(2_000);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
