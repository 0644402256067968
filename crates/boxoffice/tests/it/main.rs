//! Integration tests: the real application on port 0 with a fresh data directory each,
//! driven over HTTP like any client.

mod abuse;
mod admission;
mod api_errors;
mod browser;
mod common;
mod concurrency;
mod connections;
mod crash;
mod cross_site;
mod distributed;
mod exposure;
mod faults;
mod load;
mod migrate;
mod observability;
mod operations;
mod original_clients;
mod outage;
mod payments;
mod plans;
mod purchase;
mod queue;
mod replay;
mod spinning;
mod stream;
mod telemetry;
mod tickets;
mod upgrade;
mod venues;
