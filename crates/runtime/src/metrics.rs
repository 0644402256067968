//! Metrics every module shares: HTTP, outbox, consumers, consistency.

/// Requests by method, matched route and status.
pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Seconds from an outbox row's commit to its publication, by module.
pub const OUTBOX_LAG: &str = "outbox_publish_lag_seconds";
/// Seconds from a relay's sending a batch to the broker's acknowledging all of it, by
/// module: the part of the outbox lag that is the broker's.
pub const OUTBOX_ACK: &str = "outbox_broker_ack_seconds";
/// Unpublished outbox rows, and the age of the oldest, by module.
pub const OUTBOX_BACKLOG: &str = "outbox_backlog";
pub const OUTBOX_OLDEST: &str = "outbox_oldest_unpublished_seconds";
/// Messages a consumer group has yet to apply, by topic and group.
pub const CONSUMER_LAG: &str = "consumer_lag_messages";
/// Seconds from an event's occurrence to its effect in a consumer, by topic, group and
/// event type: the steps of the saga.
pub const EVENT_LAG: &str = "consumer_event_lag_seconds";
/// 1 while a module's consistency check fails, by module and check.
pub const CONSISTENCY_FAILED: &str = "consistency_check_failed";
/// Requests refused with 429 by the rate limits.
pub const RATE_LIMITED: &str = "http_rate_limited_total";
/// 1 while the process cannot reach its databases or its bus and answers 503.
pub const READY: &str = "ready";
/// Browser writes refused as cross-site (415 not JSON, 403 foreign Origin), by reason.
pub const CROSS_SITE_REFUSED: &str = "http_cross_site_refused_total";
/// Requests with a wrong operator token, refused (429) for the address's repeated failures.
pub const ADMIN_AUTH_FAILED: &str = "http_admin_auth_failed_total";

/// The process's resident memory (Prometheus's standard name), from `/proc/self/status`.
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";

/// The resident memory of this process, in bytes (Linux; `None` elsewhere).
pub fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub fn describe() {
    metrics::describe_gauge!(RESIDENT_MEMORY, metrics::Unit::Bytes, "Resident memory of the process");
    metrics::describe_counter!(CROSS_SITE_REFUSED, "Browser writes refused as cross-site, by reason");
    metrics::describe_counter!(
        ADMIN_AUTH_FAILED,
        "Requests with a wrong operator token, by whether they were throttled"
    );
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status");
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP response time by method, route and status"
    );
    metrics::describe_histogram!(
        OUTBOX_LAG,
        metrics::Unit::Seconds,
        "Outbox row created to published (embedded: to read by each consumer group)"
    );
    metrics::describe_histogram!(
        OUTBOX_ACK,
        metrics::Unit::Seconds,
        "Outbox batch sent to acknowledged by the broker (distributed mode)"
    );
    metrics::describe_gauge!(OUTBOX_BACKLOG, "Unpublished outbox rows");
    metrics::describe_gauge!(OUTBOX_OLDEST, metrics::Unit::Seconds, "Age of the oldest unpublished outbox row");
    metrics::describe_gauge!(CONSUMER_LAG, "Messages a consumer group has not applied yet");
    metrics::describe_histogram!(EVENT_LAG, metrics::Unit::Seconds, "Event occurred to applied by a consumer");
    metrics::describe_gauge!(CONSISTENCY_FAILED, "1 while a consistency check fails");
    metrics::describe_gauge!(READY, "1 while the databases and the bus answer");
    counters_from_zero(&[(RATE_LIMITED, "Requests refused by the rate limits")]);
}

/// Describes counters and exports them at zero from the start, so dashboards and alerts
/// see them before the first increment.
pub fn counters_from_zero(counters: &[(&'static str, &'static str)]) {
    for (name, help) in counters {
        metrics::describe_counter!(*name, *help);
        metrics::counter!(*name).absolute(0);
    }
}
