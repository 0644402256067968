//! The frozen public contract of boxoffice (v1) and the contract between its modules.
//!
//! Everything a client or another module can see lives here: the JSON bodies of the
//! HTTP API (`api`), the error codes and their statuses (`error`), the event envelope
//! and the payload of every event on every topic (`events`) with the reasons they give
//! (`reasons`), and the one synchronous call between modules, pinning holds to an order
//! (`holds`). The modules depend on this crate and never on each other, so each one can
//! run in its own process. Values written as fixed texts are enums (`text`).

pub mod api;
pub mod error;
pub mod events;
pub mod holds;
pub mod reasons;
pub mod room;
pub mod text;
pub mod venue;

pub use error::{ErrorBody, ErrorCode};

/// Milliseconds since the Unix epoch, the one clock type stored and sent between modules.
pub type Millis = i64;

/// Current wall-clock time in milliseconds.
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Renders milliseconds as an RFC 3339 timestamp, as the API shows times.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
