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
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::ser::{SerializeMap, Serializer as _};
use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_serde::fields::AsMap;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
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

/// One JSON log line, as tracing-subscriber's JSON format writes it with the current
/// span (`timestamp`, `level`, `fields`, `target`, `span`), except that the span's fields
/// — already JSON, written once when the span was made — are copied into the line as
/// they are. The library's format parses them into a `serde_json::Value` and writes them
/// out again for every line: 4.3% of the embedded server's samples under load
/// (docs/BENCHMARKS.md, session 10).
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Vec::with_capacity(256);
        event_entries(&mut line, &timestamp, event).map_err(|_| std::fmt::Error)?;
        let span = event.parent().and_then(|id| ctx.span(id)).or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            line.pop(); // the map's closing brace: the span goes in before it
            line.extend_from_slice(b",\"span\":{");
            let extensions = span.extensions();
            let fields = extensions.get::<FormattedFields<N>>().map_or("", |f| f.fields.as_str());
            let fields = fields.trim();
            let fields = fields.strip_prefix('{').and_then(|f| f.strip_suffix('}')).unwrap_or(fields);
            if !fields.is_empty() {
                line.extend_from_slice(fields.as_bytes());
                line.push(b',');
            }
            line.extend_from_slice(b"\"name\":");
            serde_json::to_writer(&mut line, span.name()).map_err(|_| std::fmt::Error)?;
            line.extend_from_slice(b"}}");
        }
        writer.write_str(std::str::from_utf8(&line).map_err(|_| std::fmt::Error)?)?;
        writeln!(writer)
    }
}

/// `{"timestamp":…,"level":…,"fields":{…},"target":…}`
fn event_entries(line: &mut Vec<u8>, timestamp: &str, event: &Event<'_>) -> serde_json::Result<()> {
    // A record of the `log` crate (a dependency's) under its own target and level.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let mut serializer = serde_json::Serializer::new(line);
    let mut map = serializer.serialize_map(None)?;
    map.serialize_entry("timestamp", timestamp)?;
    map.serialize_entry("level", meta.level().as_str())?;
    map.serialize_entry("fields", &event.field_map())?;
    map.serialize_entry("target", meta.target())?;
    map.end()
}

/// A span's fields as one JSON object, formatted once as the span opens, for `JsonLine`
/// to copy into the lines logged inside it. Each field is written as it is recorded;
/// tracing-subscriber's `JsonFields` first collects them into a map of
/// `serde_json::Value`s (2.1% of the embedded server's samples under load, for spans
/// that mostly log nothing: docs/BENCHMARKS.md, session 11).
struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut object = JsonObject::default();
        fields.record(&mut object);
        writer.write_str(&object.finish())
    }

    /// A field recorded after the span opened replaces or joins the ones it has.
    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &Record<'_>) -> std::fmt::Result {
        let mut added = JsonObject::default();
        fields.record(&mut added);
        let parse = |json: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json);
        let mut merged = if current.fields.is_empty() {
            Default::default()
        } else {
            parse(&current.fields).map_err(|_| std::fmt::Error)?
        };
        merged.extend(parse(&added.finish()).map_err(|_| std::fmt::Error)?);
        current.fields = serde_json::to_string(&merged).map_err(|_| std::fmt::Error)?;
        Ok(())
    }
}

/// `{"name":value,…}`, built a field at a time.
#[derive(Default)]
struct JsonObject(Vec<u8>);

impl JsonObject {
    fn entry<T: serde::Serialize + ?Sized>(&mut self, field: &Field, value: &T) {
        self.0.push(if self.0.is_empty() { b'{' } else { b',' });
        let name = field.name();
        // Writing to a Vec fails only on a value that cannot be serialized; ours all can.
        let _ = serde_json::to_writer(&mut self.0, name.strip_prefix("r#").unwrap_or(name));
        self.0.push(b':');
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push(b'{');
        }
        self.0.push(b'}');
        String::from_utf8(self.0).expect("serde_json writes UTF-8")
    }
}

impl Visit for JsonObject {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, &value)
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, &value)
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, &value)
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, &value)
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, value)
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.entry(field, value)
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.entry(field, &format!("{value:?}"))
    }
}

/// Installs the global subscriber; `service` names this process in exported traces.
pub fn init(service: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if std::io::stderr().is_terminal() {
        fmt.boxed()
    } else {
        fmt.event_format(JsonLine).fmt_fields(JsonSpanFields).boxed()
    };
    let provider = otlp_provider(service);
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("boxoffice")));
    let installed = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init().is_ok();
    let _ = OTEL.set(installed && provider.is_some());
    TelemetryGuard { provider }
}

/// Span export over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
#[cfg(feature = "otlp")]
fn otlp_provider(service: &str) -> Option<SdkTracerProvider> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.trim().is_empty())?;
    match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build())
                .build(),
        ),
        Err(error) => {
            eprintln!("OTLP export disabled: {error}");
            None
        }
    }
}

#[cfg(not(feature = "otlp"))]
fn otlp_provider(_service: &str) -> Option<SdkTracerProvider> {
    if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|e| !e.trim().is_empty()) {
        eprintln!("OTLP export disabled: built without runtime's `otlp` feature");
    }
    None
}

/// Histogram buckets in seconds, from a fast API answer to a slow saga. A p99 read from
/// them is known only to its bucket, so every target the SLAs name (25, 50, 100 and
/// 300 ms) is a bound, and the buckets up to 2 s are close enough to tell a miss by a
/// little from a miss by far.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Buckets of waits counted in minutes (a waiting room's queue), for histograms whose
/// name ends in `_wait_seconds_long`.
const LONG_WAIT_BUCKETS: &[f64] =
    &[0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("buckets are valid")
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_wait_seconds_long".into()),
                LONG_WAIT_BUCKETS,
            )
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// The lines logged by `log`, each parsed.
    fn logged(log: impl FnOnce()) -> Vec<Value> {
        logged_with(JsonSpanFields, log)
    }

    /// The same, with the spans' fields formatted by `fields`.
    fn logged_with(fields: impl for<'w> FormatFields<'w> + Send + Sync + 'static, log: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let layer =
            tracing_subscriber::fmt::layer().with_writer(lines.clone()).event_format(JsonLine).fmt_fields(fields);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    #[test]
    fn a_line_carries_its_fields_and_its_span_as_the_json_format_does() {
        let lines = logged(|| {
            tracing::info!(outside = 1, "before any span");
            let span = tracing::info_span!("POST /orders", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", n = 3);
            span.in_scope(|| tracing::info!(order_id = "o-1", seats = 2, "order \"created\""));
            tracing::info_span!("bare").in_scope(|| tracing::warn!("no fields"));
            let record = log::Record::builder()
                .args(format_args!("from a dependency"))
                .level(log::Level::Error)
                .target("librdkafka")
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[3]["target"], "librdkafka");
        assert_eq!(lines[3]["level"], "ERROR");
        assert_eq!(lines[3]["fields"]["message"], "from a dependency");
        assert_eq!(lines[0]["fields"]["message"], "before any span");
        assert_eq!(lines[0]["fields"]["outside"], 1);
        assert!(lines[0].get("span").is_none(), "{}", lines[0]);
        let line = &lines[1];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert!(line["timestamp"].as_str().is_some_and(|t| t.contains('T')), "{line}");
        assert_eq!(line["fields"]["message"], "order \"created\"");
        assert_eq!(line["fields"]["order_id"], "o-1");
        assert_eq!(line["fields"]["seats"], 2);
        assert_eq!(line["span"]["name"], "POST /orders");
        assert_eq!(line["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["span"]["n"], 3);
        assert_eq!(lines[2]["level"], "WARN");
        assert_eq!(lines[2]["span"], serde_json::json!({ "name": "bare" }));
    }

    #[test]
    fn a_spans_fields_are_those_of_the_json_format_recorded_late_ones_included() {
        let log = || {
            let span = tracing::info_span!(
                "http",
                r#type = "a \"quoted\"\nvalue",
                method = %"POST",
                n = -3,
                big = u64::MAX,
                ok = true,
                ratio = 0.5,
                status = tracing::field::Empty,
                route = "/x",
            );
            span.in_scope(|| tracing::info!("before"));
            span.record("status", "201");
            span.record("route", "/y");
            span.in_scope(|| tracing::info!("after"));
        };
        let without_time = |mut lines: Vec<Value>| {
            lines.iter_mut().for_each(|l| drop(l.as_object_mut().unwrap().remove("timestamp")));
            lines
        };
        let ours = without_time(logged(log));
        assert_eq!(ours, without_time(logged_with(tracing_subscriber::fmt::format::JsonFields::new(), log)));
        assert_eq!(ours.len(), 2);
        assert_eq!(ours[0]["span"]["type"], "a \"quoted\"\nvalue");
        assert_eq!(ours[0]["span"]["method"], "POST");
        assert_eq!(ours[0]["span"]["big"], u64::MAX);
        assert!(ours[0]["span"].get("status").is_none(), "{}", ours[0]);
        assert_eq!(ours[1]["span"]["status"], "201");
        assert_eq!(ours[1]["span"]["route"], "/y");
        assert_eq!(ours[1]["span"]["n"], -3);
    }
}
