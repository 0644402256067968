//! Readiness: whether this process can reach its databases and its bus. While it cannot,
//! the API answers `503 UNAVAILABLE` at once (with `Retry-After`) instead of letting
//! requests hang on a dead connection, and it comes back by itself when they answer.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::ErrorCode;

use crate::http::ApiError;

/// How often the dependencies are probed, and how long a probe may take.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed probes in a row that make the process not ready: one slow answer under a
/// rush must not turn every buyer away.
pub const FAILURES_TO_GO_DOWN: u32 = 3;

#[derive(Debug)]
pub struct Readiness {
    ready: AtomicBool,
    /// The paths answered 503 while not ready (the binary's: the API, not the actuator).
    gates: fn(&str) -> bool,
}

impl Readiness {
    /// Ready: the process has just opened its databases and its bus.
    pub fn new(gates: fn(&str) -> bool) -> Arc<Readiness> {
        Arc::new(Readiness { ready: AtomicBool::new(true), gates })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Probes the dependencies every second (a probe that takes too long failed): not
    /// ready after `FAILURES_TO_GO_DOWN` failures in a row, ready again at the first
    /// success; logs each change.
    pub async fn run<F, Fut>(self: Arc<Self>, probe: F)
    where
        F: Fn() -> Fut + Send,
        Fut: Future<Output = bool> + Send,
    {
        let mut tick = tokio::time::interval(PROBE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0;
        loop {
            tick.tick().await;
            let answered = tokio::time::timeout(PROBE_TIMEOUT, probe()).await.unwrap_or(false);
            failures = if answered { 0 } else { failures + 1 };
            let up = failures < FAILURES_TO_GO_DOWN;
            let was = self.ready.swap(up, Ordering::Relaxed);
            if was != up {
                if up {
                    tracing::info!("dependencies answer again: ready");
                } else {
                    tracing::error!("a database or the bus does not answer: not ready, answering 503");
                }
            }
            metrics::gauge!(crate::metrics::READY).set(if up { 1.0 } else { 0.0 });
        }
    }
}

/// The error for a request that cannot be served while a dependency is down.
pub fn unavailable() -> Response {
    ApiError::new(ErrorCode::Unavailable, "a database or the message bus is unreachable; retry shortly").into_response()
}

/// The middleware: the paths it gates get 503 while not ready.
pub async fn gate(State(readiness): State<Arc<Readiness>>, req: Request, next: Next) -> Response {
    if !readiness.is_ready() && (readiness.gates)(req.uri().path()) {
        return unavailable();
    }
    next.run(req).await
}
