//! W3C trace context: the id that follows a purchase through every module.
//!
//! A request's context comes from its `traceparent` header, else its `Trace-Id` header,
//! else a new one; an event's from its envelope. It is kept in a task-local while the
//! request or event is handled, so error bodies, log spans and the envelopes of the
//! events it causes all carry the same trace id.

use std::fmt;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use rand::Rng;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::otel_enabled;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits: the span of this hop.
    pub span_id: String,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

/// `bytes` (at most 16) random bytes as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut hex = format!("{:032x}", rand::rng().random::<u128>());
    hex.truncate(bytes * 2);
    hex
}

impl TraceContext {
    /// A new trace.
    pub fn new_root() -> Self {
        TraceContext { trace_id: random_hex(16), span_id: random_hex(8) }
    }

    /// The context a `traceparent` (`00-<trace>-<span>-<flags>`) names — its span is the
    /// parent of ours — or `None` when it is malformed.
    pub fn from_traceparent(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || !is_hex(trace, 32) || !is_hex(parent, 16) || flags.len() != 2 {
            return None;
        }
        Some(TraceContext { trace_id: trace.to_owned(), span_id: parent.to_owned() })
    }

    /// Starts this process's hop of a trace: a child of `parent` (from a `traceparent`, a
    /// `Trace-Id` header or an event envelope) or a new trace. `make_span` makes the hop's
    /// span with the context's `trace_id` and `span_id` among its fields: given when the
    /// span is made, the JSON logs format them once, where recording them later would
    /// make the log layer parse and rewrite the span's fields. When spans are exported,
    /// the exported span takes the same ids. Returns the context, to run the work in with
    /// [`TraceContext::scope`], and the span.
    pub fn start(
        parent: Option<TraceContext>,
        make_span: impl FnOnce(&TraceContext) -> tracing::Span,
    ) -> (TraceContext, tracing::Span) {
        let mut ctx = match &parent {
            Some(p) => TraceContext { trace_id: p.trace_id.clone(), span_id: random_hex(8) },
            None => TraceContext::new_root(),
        };
        let span = make_span(&ctx);
        if otel_enabled() {
            if let Some(p) = &parent {
                let remote = SpanContext::new(
                    TraceId::from_hex(&p.w3c_trace_id()).unwrap_or(TraceId::INVALID),
                    SpanId::from_hex(&p.span_id).unwrap_or(SpanId::INVALID),
                    TraceFlags::SAMPLED,
                    true,
                    TraceState::default(),
                );
                let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
            }
            let otel = span.context().span().span_context().clone();
            if otel.is_valid() {
                if parent.is_none() {
                    ctx.trace_id = otel.trace_id().to_string();
                }
                ctx.span_id = otel.span_id().to_string();
                span.record("trace_id", ctx.trace_id.as_str());
                span.record("span_id", ctx.span_id.as_str());
            }
        }
        (ctx, span)
    }

    /// The trace id as 32 hex digits; a client's own non-W3C id is hashed into one.
    fn w3c_trace_id(&self) -> String {
        if is_hex(&self.trace_id, 32) {
            self.trace_id.clone()
        } else {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(self.trace_id.as_bytes())[..16])
        }
    }

    /// A trace id given by a client in the `Trace-Id` header: a 32-hex id is used as it is;
    /// anything else printable (up to 64 characters) is kept as the id too, so a client
    /// can find its own id in the logs.
    pub fn from_trace_id(id: &str) -> Option<Self> {
        let id = id.trim();
        let ok =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| TraceContext { trace_id: id.to_ascii_lowercase(), span_id: random_hex(8) })
    }

    /// The `traceparent` to pass on to what this span causes.
    pub fn traceparent(&self) -> String {
        let span = if is_hex(&self.span_id, 16) { self.span_id.clone() } else { random_hex(8) };
        format!("00-{}-{span}-01", self.w3c_trace_id())
    }

    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// The current context, if any.
    pub fn current() -> Option<TraceContext> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.trace_id)
    }
}

/// The current trace id, or an empty string outside any request or event.
pub fn current_trace_id() -> String {
    TraceContext::current().map(|c| c.trace_id).unwrap_or_default()
}

/// The `traceparent` to put on an event caused by the current request or event.
pub fn current_traceparent() -> Option<String> {
    TraceContext::current().map(|c| c.traceparent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_traceparent() {
        let parent = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(parent.span_id, "00f067aa0ba902b7");
        let (ctx, _) = TraceContext::start(Some(parent), |_| tracing::Span::none());
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert!(ctx.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn rejects_malformed_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::from_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_custom_trace_id_still_yields_a_valid_traceparent() {
        let ctx = TraceContext::from_trace_id("k6-run-42").unwrap();
        assert_eq!(ctx.trace_id, "k6-run-42");
        assert!(TraceContext::from_traceparent(&ctx.traceparent()).is_some());
        assert!(TraceContext::from_trace_id("bad id with spaces").is_none());
    }
}
