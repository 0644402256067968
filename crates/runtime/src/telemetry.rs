//! Logs, traces and metrics.
//!
//! Logs are structured: JSON when stderr is not a terminal, readable text when it is;
//! every line inside a request or an event carries its `trace_id` and `span_id`. When
//! the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over
//! OTLP/HTTP (protobuf) to Jaeger or any OpenTelemetry collector; the other `OTEL_*`
//! variables (headers, batch delay, …) apply as usual. Metrics go to a Prometheus
//! recorder rendered at `/actuator/prometheus`.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static OTEL: OnceLock<bool> = OnceLock::new();

/// True when spans are exported over OTLP (and so carry OpenTelemetry ids).
pub fn otel_enabled() -> bool {
    OTEL.get().copied().unwrap_or(false)
}

/// Flushes exported spans when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber; `service` names this process in exported traces.
pub fn init(service: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if std::io::stderr().is_terminal() {
        fmt.boxed()
    } else {
        fmt.json().with_current_span(true).with_span_list(false).boxed()
    };
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.trim().is_empty());
    let provider = endpoint.and_then(|_| match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
                .build(),
        ),
        Err(error) => {
            eprintln!("OTLP export disabled: {error}");
            None
        }
    });
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("boxoffice")));
    let installed = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init().is_ok();
    let _ = OTEL.set(installed && provider.is_some());
    TelemetryGuard { provider }
}

/// Histogram buckets in seconds, from a fast API answer to a slow saga. A p99 read from
/// them is known only to its bucket, so every target the SLAs name (25, 50, 100 and
/// 300 ms) is a bound, and the buckets up to 2 s are close enough to tell a miss by a
/// little from a miss by far.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        let upkeep = handle.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
        handle
    })
}
