//! The tickets module's metrics.

/// Tickets issued (one per seat or standing place of a confirmed order).
pub const ISSUED: &str = "tickets_issued_total";
/// Tickets revoked (a cancelled order, a refund, a reset show).
pub const REVOKED: &str = "tickets_revoked_total";
/// Scans answered, by result and gate (each scan id counted once).
pub const CHECKINS: &str = "tickets_checkins_total";
/// Seconds a scan took to answer, from its request to its recorded answer.
pub const SCAN_SECONDS: &str = "tickets_scan_seconds";

pub fn describe() {
    runtime::metrics::counters_from_zero(&[
        (ISSUED, "Tickets issued, one per seat or standing place of a confirmed order"),
        (REVOKED, "Tickets revoked: cancelled or refunded orders, reset shows"),
    ]);
    metrics::describe_counter!(CHECKINS, "Scans at the door by result and gate, each scan id once");
    metrics::describe_histogram!(SCAN_SECONDS, metrics::Unit::Seconds, "Time to answer a scan at the door");
}
