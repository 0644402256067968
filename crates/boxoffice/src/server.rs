//! The HTTP server's connections: an accept loop of our own instead of `axum::serve`, so
//! that a slow or idle client cannot hold the server's file descriptors.
//!
//! Like nginx's defaults: a client has `--header-timeout-ms` to send a request's head
//! (from its first byte, or from connecting for the first request); a kept-alive
//! connection may wait `--idle-timeout-ms` for its next request, and a client may leave
//! a response unread as long; a request body may pause `--body-timeout-ms` (then 408).
//! Open connections are capped, in total and per client address; beyond the cap a new
//! connection is closed at once, so accept never stalls. A response being sent (an SSE
//! stream) is never cut by the idle timeout.
//!
//! hyper answers a request it cannot parse (400, 414, 431) before any service runs, with
//! an empty body; [`Watched`] gives that answer the contract's error body and a `Trace-Id`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::{ErrorBody, ErrorCode};
use runtime::http::ApiError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::cli::ServeArgs;
use crate::proxy::TrustedProxies;

/// File descriptors kept back from connections, for the databases, the bus and logs.
pub const FD_RESERVE: u64 = 256;

/// Gauge: connections open now.
pub const OPEN_CONNECTIONS: &str = "http_connections_open";
/// Counter: connections closed at once for the cap, by `reason` (`total`, `address`).
pub const REFUSED_CONNECTIONS: &str = "http_connections_refused_total";
/// Counter: connections closed by a timeout, by `reason` (`header`, `idle`, `send`).
pub const TIMED_OUT_CONNECTIONS: &str = "http_connections_timed_out_total";

pub fn describe_metrics() {
    metrics::describe_gauge!(OPEN_CONNECTIONS, "HTTP connections open now");
    metrics::describe_counter!(REFUSED_CONNECTIONS, "Connections closed at once for a cap, by reason (total, address)");
    metrics::describe_counter!(
        TIMED_OUT_CONNECTIONS,
        "Connections closed by a timeout, by reason (header, idle, send)"
    );
}

/// How connections are kept in check (see the module's documentation).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    /// Peers not held to the per-address cap: reverse proxies carry many clients.
    pub trusted: TrustedProxies,
}

impl ConnectionLimits {
    /// The configured limits; the caps default to what the open-file limit `files` allows:
    /// all of it but [`FD_RESERVE`] in total, a quarter of that per address.
    pub fn new(args: &ServeArgs, files: Option<u64>, trusted: TrustedProxies) -> ConnectionLimits {
        let derived = files.map_or(usize::MAX, |n| n.saturating_sub(FD_RESERVE).max(32) as usize);
        let max_connections = args.max_connections.unwrap_or(derived).max(1);
        let max_per_address = args.max_connections_per_address.unwrap_or(max_connections / 4).max(1);
        ConnectionLimits {
            max_connections,
            max_per_address,
            header_timeout: Duration::from_millis(args.header_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(args.body_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(args.idle_timeout_ms.max(1)),
            max_header_bytes: args.max_header_bytes.max(1024),
            trusted,
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit and returns the limit
/// now in force (`None`: unlimited).
pub fn raise_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (before.current, before.maximum)
        && soft < hard
        && let Err(error) = setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) })
    {
        tracing::warn!(%error, soft, hard, "could not raise the open-file limit");
    }
    let after = getrlimit(Resource::Nofile);
    tracing::info!(
        soft_before = ?before.current,
        soft = ?after.current,
        hard = ?after.maximum,
        "open-file limit (None: unlimited)"
    );
    after.current
}

/// Open connections, in total and per address.
struct Gate {
    limits: Arc<ConnectionLimits>,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection let in; counted until dropped.
struct Admitted {
    gate: Arc<Gate>,
    ip: Option<IpAddr>,
}

impl Gate {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, &'static str> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().expect("connection gate lock");
        if open.0 >= self.limits.max_connections {
            return Err("total");
        }
        let counted = !self.limits.trusted.trusts(ip);
        if counted {
            let n = open.1.entry(ip).or_insert(0);
            if *n >= self.limits.max_per_address {
                return Err("address");
            }
            *n += 1;
        }
        open.0 += 1;
        metrics::gauge!(OPEN_CONNECTIONS).set(open.0 as f64);
        Ok(Admitted { gate: self.clone(), ip: counted.then_some(ip) })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().expect("connection gate lock");
        open.0 -= 1;
        metrics::gauge!(OPEN_CONNECTIONS).set(open.0 as f64);
        if let Some(ip) = self.ip
            && let Some(n) = open.1.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&ip);
            }
        }
    }
}

/// Accepts and serves connections on `listener` until `stop` turns true; then stops
/// accepting, lets each connection finish its request, and returns once all are closed.
/// Dropping the future (after the shutdown grace) cuts the connections still open, such
/// as SSE streams.
pub async fn serve(listener: TcpListener, router: Router, limits: Arc<ConnectionLimits>, stop: watch::Receiver<bool>) {
    let gate = Arc::new(Gate { limits: limits.clone(), open: Mutex::new((0, HashMap::new())) });
    let mut connections = JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            () = async { let _ = stopping.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match gate.admit(peer.ip()) {
                    Ok(admitted) => {
                        let router = router.clone();
                        connections.spawn(connection(tcp, peer, router, limits.clone(), admitted, stop.clone()));
                    }
                    Err(reason) => {
                        // Closed at once: a flood of connections costs us no descriptor.
                        metrics::counter!(REFUSED_CONNECTIONS, "reason" => reason).increment(1);
                        tracing::debug!(%peer, reason, "connection refused: too many open");
                    }
                },
                Err(error) => accept_error(error).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// A failed accept: a connection reset before we took it is nothing; out of descriptors,
/// wait a little for some to be closed rather than spin.
async fn accept_error(error: io::Error) {
    if matches!(error.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
        return;
    }
    tracing::warn!(%error, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// What a connection is doing, shared by its socket, its requests and its watchdog.
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    /// Requests being answered (until their response body is dropped).
    in_flight: usize,
    /// Whether the connection has had a request (the first one gets the header timeout
    /// from connecting; later ones the idle timeout between requests).
    served: bool,
    /// When the connection last became idle (or was accepted).
    idle_since: Instant,
    /// When the first byte of the next request's head arrived.
    head_started: Option<Instant>,
    /// Since when a write has been waiting for the client to read.
    write_blocked_since: Option<Instant>,
    /// A request was handed to the service and its response head is not written yet.
    awaiting_head_write: bool,
}

enum Expiry {
    Header,
    Idle,
    Send,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(State {
                in_flight: 0,
                served: false,
                idle_since: Instant::now(),
                head_started: None,
                write_blocked_since: None,
                awaiting_head_write: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("connection state lock")
    }

    /// When the connection is to be closed if nothing changes, and why.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Expiry)> {
        let state = self.lock();
        if let Some(since) = state.write_blocked_since {
            return Some((since + limits.idle_timeout, Expiry::Send));
        }
        if state.in_flight > 0 {
            return None;
        }
        Some(match state.head_started {
            Some(started) => (started + limits.header_timeout, Expiry::Header),
            None if !state.served => (state.idle_since + limits.header_timeout, Expiry::Header),
            None => (state.idle_since + limits.idle_timeout, Expiry::Idle),
        })
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.served = true;
        state.head_started = None;
        state.awaiting_head_write = true;
        InFlight(self.clone())
    }

    fn read_some(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let mut state = self.lock();
        match (blocked, state.write_blocked_since.is_some()) {
            (true, false) => {
                state.write_blocked_since = Some(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
            (false, true) => state.write_blocked_since = None,
            _ => {}
        }
    }

    /// Whether bytes about to be written are hyper's own answer to a request it could not
    /// parse: a status line written while no request of ours is being answered.
    fn automatic_response(&self, bytes: &[u8]) -> Option<StatusCode> {
        let mut state = self.lock();
        if state.awaiting_head_write {
            state.awaiting_head_write = false;
            return None;
        }
        if state.in_flight > 0 {
            return None;
        }
        let status = bytes.strip_prefix(b"HTTP/1.1 ").or_else(|| bytes.strip_prefix(b"HTTP/1.0 "))?;
        let status = StatusCode::from_bytes(status.get(..3)?).ok()?;
        [StatusCode::BAD_REQUEST, StatusCode::URI_TOO_LONG, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE]
            .contains(&status)
            .then_some(status)
    }
}

/// A request being answered: counted until its response body is dropped (sent, or the
/// connection gone).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
        drop(state);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in flight.
struct Counted {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves one connection until it closes, times out, or (on shutdown) has finished its
/// request.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<ConnectionLimits>,
    _admitted: Admitted,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Watched { inner: tcp, activity: activity.clone(), replacement: None });
    let body_timeout = limits.body_timeout;
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = requests.request_started();
        let mut req = req.map(|body| Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, body)));
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await.unwrap_or_else(|never| match never {});
            Ok::<_, Infallible>(response.map(|body| Counted { body, _in_flight: in_flight }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timeout is ours (hyper's would also bound the wait between requests).
    builder.header_read_timeout(None).max_header_size(limits.max_header_bytes);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        let deadline = activity.deadline(&limits);
        let expired = async {
            match &deadline {
                Some((at, _)) => tokio::time::sleep_until((*at).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = async { let _ = stop.wait_for(|s| *s).await; }, if !shutting_down => {
                // Closes an idle connection now, a busy one once its response is sent.
                conn.as_mut().graceful_shutdown();
                shutting_down = true;
            }
            _ = activity.changed.notified() => {}
            _ = expired => {
                if let Some((at, why)) = activity.deadline(&limits)
                    && at <= Instant::now()
                {
                    let reason = match why {
                        Expiry::Header => "header",
                        Expiry::Idle => "idle",
                        Expiry::Send => "send",
                    };
                    metrics::counter!(TIMED_OUT_CONNECTIONS, "reason" => reason).increment(1);
                    tracing::debug!(%peer, reason, "connection timed out");
                    return;
                }
            }
        }
    }
}

/// A connection's socket, watched: reads start the header timeout, blocked writes the
/// send timeout, and hyper's bare answers to unparsable requests are replaced by the
/// contract's error.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// The answer written instead of hyper's, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl Watched {
    /// Writes what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement
            && *written < bytes.len()
        {
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Swallows hyper's bytes once its answer is being replaced (or starts replacing it).
    fn intercept(&mut self, cx: &mut Context<'_>, first: &[u8], len: usize) -> Option<Poll<io::Result<usize>>> {
        if self.replacement.is_none() {
            let status = self.activity.automatic_response(first)?;
            self.replacement = Some((shaped_error(status), 0));
        }
        Some(match self.poll_replacement(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // hyper flushes next, which finishes the replacement.
            _ => Poll::Ready(Ok(len)),
        })
    }

    fn track<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.activity.write_blocked(result.is_pending());
        result
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read_some();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(done) = this.intercept(cx, buf, buf.len()) {
            return done;
        }
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        let len = bufs.iter().map(|b| b.len()).sum();
        if let Some(done) = this.intercept(cx, first, len) {
            return done;
        }
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.track(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_replacement(cx))?;
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.track(result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The whole answer, in place of hyper's empty one: the contract's error body, a
/// `Trace-Id`, and the connection closed.
fn shaped_error(status: StatusCode) -> Vec<u8> {
    let message = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "request headers too large",
        StatusCode::URI_TOO_LONG => "request target too long",
        _ => "malformed request",
    };
    let trace_id = runtime::trace::TraceContext::new_root().trace_id;
    let body = ErrorBody { code: ErrorCode::ValidationFailed, message: message.to_owned(), trace_id: trace_id.clone() };
    let body = serde_json::to_vec(&body).expect("the error body serializes");
    tracing::debug!(status = status.as_u16(), trace_id, "unparsable request answered");
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ntrace-id: {trace_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// An HTTP/1.1 request must name its host (RFC 9112 §3.2): without a `Host` header (and
/// without an absolute URI), or with several, it is 400.
pub async fn require_host(req: Request, next: Next) -> Response {
    let hosts = req.headers().get_all(header::HOST).iter().count();
    let missing = hosts == 0 && req.version() == Version::HTTP_11 && req.uri().authority().is_none();
    if missing || hosts > 1 {
        let message = if missing { "the Host header is required" } else { "more than one Host header" };
        return ApiError::validation(message).with_status(StatusCode::BAD_REQUEST).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_answers_are_recognized_only_between_requests() {
        let activity = Arc::new(Activity::new());
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(activity.automatic_response(bare), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
        assert_eq!(activity.automatic_response(b"HTTP/1.1 400 Bad Request\r\n"), Some(StatusCode::BAD_REQUEST));
        assert_eq!(activity.automatic_response(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(activity.automatic_response(b"0\r\n\r\n"), None);
        // Our own answer, even an empty 400 whose body hyper dropped before its head.
        let in_flight = activity.request_started();
        drop(in_flight);
        assert_eq!(activity.automatic_response(b"HTTP/1.1 400 Bad Request\r\n"), None);
        let _streaming = activity.request_started();
        assert_eq!(activity.automatic_response(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(activity.automatic_response(b"HTTP/1.1 400 Bad Request\r\n"), None);
    }

    #[test]
    fn deadlines_follow_what_the_connection_is_doing() {
        let limits = ConnectionLimits {
            max_connections: 10,
            max_per_address: 2,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_header_bytes: 32 * 1024,
            trusted: TrustedProxies::default(),
        };
        let activity = Arc::new(Activity::new());
        assert!(matches!(activity.deadline(&limits), Some((_, Expiry::Header))), "first request: header timeout");
        let request = activity.request_started();
        assert!(activity.deadline(&limits).is_none(), "a request being answered is never cut");
        drop(request);
        assert!(matches!(activity.deadline(&limits), Some((_, Expiry::Idle))));
        activity.read_some();
        assert!(matches!(activity.deadline(&limits), Some((_, Expiry::Header))));
        let _stream = activity.request_started();
        activity.write_blocked(true);
        assert!(matches!(activity.deadline(&limits), Some((_, Expiry::Send))), "an unread response");
        activity.write_blocked(false);
        assert!(activity.deadline(&limits).is_none());
    }

    #[test]
    fn the_gate_caps_in_total_and_per_address() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let limits = ConnectionLimits {
            max_connections: 4,
            max_per_address: 2,
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_header_bytes: 1024,
            trusted,
        };
        let gate = Arc::new(Gate { limits: Arc::new(limits), open: Mutex::new((0, HashMap::new())) });
        let bot = IpAddr::from([192, 0, 2, 1]);
        let a = gate.admit(bot).unwrap();
        let _b = gate.admit(bot).unwrap();
        assert_eq!(gate.admit(bot).err(), Some("address"));
        // A proxy carries many clients: only the total holds it.
        let _p1 = gate.admit(IpAddr::from([10, 0, 0, 1])).unwrap();
        let _p2 = gate.admit(IpAddr::from([10, 0, 0, 1])).unwrap();
        assert_eq!(gate.admit(IpAddr::from([192, 0, 2, 2])).err(), Some("total"));
        drop(a);
        assert!(gate.admit(bot).is_ok(), "a closed connection frees its place");
    }

    #[test]
    fn shaped_errors_carry_the_contract_body() {
        let bytes = shaped_error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "VALIDATION_FAILED");
        let trace = head.lines().find_map(|l| l.strip_prefix("trace-id: ")).unwrap();
        assert_eq!(body["traceId"], trace);
        assert!(head.contains(&format!("content-length: {}", text.len() - head.len() - 4)));
    }
}
