//! The catalog module's metrics.

/// Browsers streaming seat maps right now.
pub const STREAM_CLIENTS: &str = "seat_stream_clients";
pub const SEAT_UPDATES: &str = "seat_updates_total";

pub fn describe() {
    metrics::describe_gauge!(STREAM_CLIENTS, "Open SSE seat-map streams");
    runtime::metrics::counters_from_zero(&[(SEAT_UPDATES, "Seat changes applied to the seat map")]);
    metrics::gauge!(STREAM_CLIENTS).set(0.0);
}
