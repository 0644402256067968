//! HTTP plumbing shared by every module's routes: the contract's error body, extractors
//! whose rejections are contract errors, the caller's identity, and the trace middleware.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, COOKIE, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::api::{BUYER_COOKIE, TRACE_ID};
use contract::holds::PinError;
use contract::{ErrorBody, ErrorCode};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;
use tracing::Instrument;

use crate::trace::{self, TraceContext};

/// An error answered with the contract's body `{ code, message, traceId }`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub status: StatusCode,
    pub message: String,
    /// Seconds for the `Retry-After` header (every 503 has 1 at least).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.status()).expect("contract statuses are valid");
        ApiError { code, status, message: message.into(), retry_after: None }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// Tells the client when to ask again (`Retry-After`, in seconds).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The same code sent with another status (413 for an oversized body, 405, …).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

/// A dependency (a database, another module) that could not be reached: answered 503.
#[derive(Debug, thiserror::Error)]
#[error("{0} is unreachable")]
pub struct Unreachable(pub &'static str);

/// Whether a failure is a dependency out of reach rather than a fault of ours.
fn unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<Unreachable>()
            || matches!(
                cause.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_))
            )
    })
}

/// Infrastructure failures: logged with their cause chain, answered without detail —
/// 503 when a dependency is out of reach (the client may retry), else 500.
impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "request failed");
        if unreachable(&error) {
            return ApiError::new(ErrorCode::Unavailable, "a dependency is unreachable; retry shortly");
        }
        ApiError::new(ErrorCode::InternalError, "internal error")
    }
}

/// A refusal is answered with its code and message; a failure as any other.
impl From<PinError> for ApiError {
    fn from(error: PinError) -> Self {
        match error {
            PinError::Refused(refused) => ApiError::new(refused.code, refused.message),
            PinError::Failed(error) => error.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Whatever is unavailable (a dependency, a place to settle an order), a client may
        // try again in a second.
        let retry = self.retry_after.or((self.code == ErrorCode::Unavailable).then_some(1));
        let body = ErrorBody { code: self.code, message: self.message, trace_id: trace::current_trace_id() };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body. Unlike `axum::Json` it does not insist on a content type (curl's `-d`
/// sends a form type), and every failure is a contract error naming what was wrong.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: `None` for no body (or only whitespace), else as
/// [`ApiJson`] — a body that is sent must be valid JSON of the expected shape.
pub struct OptionalApiJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalApiJson(None));
        }
        parse_json(&bytes).map(|value| OptionalApiJson(Some(value)))
    }
}

/// The whole body; too large is 413, a body that stops arriving (the server's body-read
/// timeout, `tower_http::timeout::TimeoutBody`) 408, any other failure 422.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        if timed_out(&rejection) {
            return ApiError::validation("the request body stopped arriving").with_status(StatusCode::REQUEST_TIMEOUT);
        }
        let error = ApiError::validation(rejection.body_text());
        if status == StatusCode::PAYLOAD_TOO_LARGE { error.with_status(status) } else { error }
    })
}

/// Whether a failure to read the body was the body-read timeout.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::validation(format!("invalid request body: {e}")))
}

/// Query parameters; a value of the wrong type or out of range is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::validation(e.body_text()))
    }
}

/// Path parameters; a segment of the wrong type names no resource, so it is a 404.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::not_found(format!("no such resource: {}", e.body_text())))
    }
}

/// Who may do what: the operator's token, the key that signs buyer cookies, and the key
/// that signs bearer tokens. Installed as a request extension by the binary.
#[derive(Default)]
pub struct Auth {
    pub admin_token: Option<String>,
    pub cookie_key: Vec<u8>,
    /// Key of the bearer tokens: JWTs signed with HS256, with a subject and an expiry.
    pub token_key: Vec<u8>,
    /// Take any bearer token that is not a signed one as the name of its user, as the
    /// original did (its load-test clients); for trusted test set-ups only.
    pub open_bearer: bool,
    /// Buyer cookies only over https (`Secure`); also set for requests a trusted proxy
    /// says came over https.
    pub secure_cookies: bool,
    /// Wrong operator tokens, counted per address.
    pub admin_failures: AdminFailures,
    /// What bearer tokens' expiry is read against, when issued and when verified.
    pub clock: crate::clock::Clock,
}

/// Wrong operator tokens counted per client address: past [`AdminFailures::ALLOWED`] in
/// a window, every operator request from that address is refused (429) until the window
/// ends — guessing the token takes forever, and other addresses are not affected.
#[derive(Default)]
pub struct AdminFailures {
    seen: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (std::time::Instant, u32)>>,
}

impl AdminFailures {
    pub const ALLOWED: u32 = 10;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    /// Addresses remembered at most (a flood of addresses forgets the oldest windows).
    const REMEMBERED: usize = 100_000;

    /// How long `ip` must wait, if it used up its failures.
    fn blocked(&self, ip: std::net::IpAddr) -> Option<std::time::Duration> {
        let seen = self.seen.lock().expect("admin failures lock");
        let (since, count) = seen.get(&ip)?;
        let left = Self::WINDOW.checked_sub(since.elapsed())?;
        (*count >= Self::ALLOWED).then_some(left)
    }

    fn failed(&self, ip: std::net::IpAddr) {
        let mut seen = self.seen.lock().expect("admin failures lock");
        if seen.len() >= Self::REMEMBERED {
            seen.retain(|_, (since, _)| since.elapsed() < Self::WINDOW);
        }
        let entry = seen.entry(ip).or_insert((std::time::Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (std::time::Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// What a bearer token says: who (`sub`), until when (`exp`, seconds since the epoch),
/// whether it is an operator's (`role: "admin"`) or a scanner's at the door (`role:
/// "scanner"`, for one show — `event` — or for all).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<i64>,
}

pub const ADMIN_ROLE: &str = "admin";
pub const SCANNER_ROLE: &str = "scanner";

/// Who a request's credentials name.
enum Caller {
    Operator,
    User {
        id: String,
        admin: bool,
    },
    /// A scanner at the door: neither a buyer nor an operator.
    Scanner {
        sub: String,
        event: Option<i64>,
    },
}

impl Auth {
    /// How long past its `exp` a bearer token is still taken (clocks of issuers differ).
    pub const LEEWAY_SECS: u64 = 5;

    /// Only the bearer-token key: for issuing tokens (`boxoffice token`, the load tool).
    pub fn token_signer(token_key: &[u8]) -> Auth {
        Auth { token_key: token_key.to_vec(), ..Auth::default() }
    }

    /// A signed bearer token for `sub`, valid for `ttl`.
    pub fn issue(&self, sub: &str, admin: bool, ttl: std::time::Duration) -> String {
        let exp = self.clock.now_secs().saturating_add(ttl.as_secs());
        self.sign_claims(&Claims { sub: sub.to_owned(), exp, role: admin.then(|| ADMIN_ROLE.to_owned()), event: None })
    }

    /// A signed token of a scanner at the door, for one show or (`None`) all, valid for
    /// `ttl`.
    pub fn issue_scanner(&self, sub: &str, event: Option<i64>, ttl: std::time::Duration) -> String {
        let exp = self.clock.now_secs().saturating_add(ttl.as_secs());
        self.sign_claims(&Claims { sub: sub.to_owned(), exp, role: Some(SCANNER_ROLE.to_owned()), event })
    }

    fn sign_claims(&self, claims: &Claims) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(&self.token_key);
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("HS256 signs any claims")
    }

    /// The claims of a genuine, unexpired token: expired once `exp` is more than
    /// [`Auth::LEEWAY_SECS`] behind the clock (jsonwebtoken's rule, read against
    /// [`Auth::clock`] instead of the system's).
    pub fn verify_token(&self, token: &str) -> Option<Claims> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub"].into_iter().map(str::to_owned).collect();
        let key = jsonwebtoken::DecodingKey::from_secret(&self.token_key);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation).ok()?.claims;
        (claims.exp >= self.clock.now_secs().saturating_sub(Self::LEEWAY_SECS)).then_some(claims)
    }

    /// Who the bearer token names: the operator's token, a signed token, or — with
    /// `open_bearer` — any other token as a user's name; else 401.
    fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        if self.admin_token.as_deref().is_some_and(|admin| constant_time_eq(admin.as_bytes(), token.as_bytes())) {
            return Ok(Caller::Operator);
        }
        if let Some(claims) = self.verify_token(token) {
            if claims.role.as_deref() == Some(SCANNER_ROLE) {
                return Ok(Caller::Scanner { sub: claims.sub, event: claims.event });
            }
            let admin = claims.role.as_deref() == Some(ADMIN_ROLE);
            return Ok(Caller::User { id: format!("user:{}", claims.sub), admin });
        }
        if self.open_bearer {
            return Ok(Caller::User { id: format!("user:{token}"), admin: false });
        }
        Err(ApiError::new(ErrorCode::Unauthorized, "invalid or expired bearer token"))
    }

    fn sign(&self, id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cookie_key).expect("hmac takes any key");
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The buyer id of a signed cookie value `<uuid>.<signature>`, if genuine.
    fn verify(&self, value: &str) -> Option<String> {
        let (id, signature) = value.rsplit_once('.')?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cookie_key).expect("hmac takes any key");
        mac.update(id.as_bytes());
        mac.verify_slice(&hex::decode(signature).ok()?).ok()?;
        Some(format!("anon:{id}"))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then_some(token)
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn auth(parts: &Parts) -> Arc<Auth> {
    parts.extensions.get::<Arc<Auth>>().cloned().expect("the Auth extension is installed")
}

/// The buyer the request's credentials name, if any; a bearer token that names no one
/// is refused rather than ignored.
fn known_buyer(headers: &HeaderMap, auth: &Auth) -> Result<Option<String>, ApiError> {
    if let Some(token) = bearer(headers) {
        return match auth.caller(token)? {
            Caller::User { id, .. } => Ok(Some(id)),
            // The operator's token used as a buyer's (the load tool's probe does so).
            Caller::Operator => Ok(Some("user:operator".to_owned())),
            Caller::Scanner { .. } => Err(ApiError::new(ErrorCode::Forbidden, "a scanner's token names no buyer")),
        };
    }
    Ok(cookie(headers, BUYER_COOKIE).and_then(|v| auth.verify(v)))
}

/// The identity a request is counted under for rate limits: its buyer, if it names one.
pub fn buyer_of(headers: &HeaderMap, auth: &Auth) -> Option<String> {
    known_buyer(headers, auth).ok().flatten()
}

/// Who is at the other end of a request: the client's address (the peer's, or — from a
/// trusted reverse proxy — the one it forwards) and whether the client reached us over
/// https. Installed as a request extension by the binary's client-address layer; without
/// it, the peer address of the connection (or 0.0.0.0 when there is none, as in tests
/// that call a router directly) and plain http.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    pub ip: std::net::IpAddr,
    pub https: bool,
}

impl ClientAddr {
    /// The request's client, from its extensions.
    pub fn of(extensions: &axum::http::Extensions) -> ClientAddr {
        if let Some(client) = extensions.get::<ClientAddr>() {
            return *client;
        }
        let ip = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        ClientAddr { ip, https: false }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}

/// The buyer making the request: a bearer token's user, the anonymous buyer of a signed
/// cookie, or — on a first visit — a new anonymous buyer whose cookie the handler sets
/// with [`Buyer::set_cookie`].
pub struct Buyer {
    pub id: String,
    new_cookie: Option<String>,
    /// The cookie goes only over https.
    secure: bool,
}

impl Buyer {
    /// The `Set-Cookie` header for a new anonymous buyer, if this is one.
    pub fn set_cookie(&self) -> Option<[(axum::http::HeaderName, HeaderValue); 1]> {
        let value = self.new_cookie.as_ref()?;
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!("{BUYER_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000{secure}");
        Some([(SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ascii"))])
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = auth(parts);
        if let Some(id) = known_buyer(&parts.headers, &auth)? {
            return Ok(Buyer { id, new_cookie: None, secure: false });
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let value = format!("{id}.{}", auth.sign(&id));
        let secure = auth.secure_cookies || ClientAddr::of(&parts.extensions).https;
        Ok(Buyer { id: format!("anon:{id}"), new_cookie: Some(value), secure })
    }
}

/// A buyer who must already be known (bearer token or signed cookie), else 401.
pub struct KnownBuyer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for KnownBuyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        known_buyer(&parts.headers, &auth(parts))?
            .map(KnownBuyer)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "no buyer: send a bearer token or the buyer cookie"))
    }
}

/// An operator: the admin token or a signed token with the admin role; 401 without a
/// token or with a forged or expired one, 403 with a buyer's.
pub struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = auth(parts);
        let ip = ClientAddr::of(&parts.extensions).ip;
        if let Some(wait) = auth.admin_failures.blocked(ip) {
            metrics::counter!(crate::metrics::ADMIN_AUTH_FAILED, "throttled" => "true").increment(1);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(ApiError::new(ErrorCode::RateLimited, "too many wrong operator tokens from this address")
                .retry_after(secs));
        }
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::new(ErrorCode::Unauthorized, "admin token required"));
        };
        match auth.caller(token) {
            Ok(Caller::Operator | Caller::User { admin: true, .. }) => Ok(Admin),
            Ok(Caller::User { admin: false, .. } | Caller::Scanner { .. }) => {
                Err(ApiError::new(ErrorCode::Forbidden, "not an admin token"))
            }
            Err(refused) => {
                metrics::counter!(crate::metrics::ADMIN_AUTH_FAILED, "throttled" => "false").increment(1);
                auth.admin_failures.failed(ip);
                Err(refused)
            }
        }
    }
}

/// A scanner at the door: a signed token with the scanner role, for one show (`event`)
/// or all; the operator's token counts as a scanner of every show. 401 without a token
/// or with a forged or expired one, 403 with a buyer's.
pub struct Scanner {
    pub sub: String,
    pub event: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Scanner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = auth(parts);
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::new(ErrorCode::Unauthorized, "a scanner's token is required"));
        };
        match auth.caller(token)? {
            Caller::Scanner { sub, event } => Ok(Scanner { sub, event }),
            Caller::Operator | Caller::User { admin: true, .. } => Ok(Scanner { sub: "operator".into(), event: None }),
            Caller::User { admin: false, .. } => Err(ApiError::new(ErrorCode::Forbidden, "not a scanner's token")),
        }
    }
}

/// Marks a request that came in on the operator's own listener (`--admin-addr`), which
/// only the operator's network reaches.
#[derive(Debug, Clone, Copy)]
pub struct AdminListener;

/// Who may read operational data (metrics, consistency, backlog): a request on the
/// operator's listener, or else one with the operator's token ([`Admin`]).
pub struct Operations;

impl<S: Send + Sync> FromRequestParts<S> for Operations {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<AdminListener>().is_some() {
            return Ok(Operations);
        }
        Admin::from_request_parts(parts, state).await.map(|_| Operations)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts or continues the request's trace, runs the request inside it (logs, error
/// bodies and outgoing events see it), answers with the `Trace-Id` header, and counts
/// the request by its route — never its raw path. Empty framework errors (405, …) get
/// the contract's body here.
pub async fn trace_middleware(
    axum::extract::State(owners): axum::extract::State<crate::module::RouteOwners>,
    req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let headers = req.headers();
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::from_traceparent)
        .or_else(|| headers.get(TRACE_ID).and_then(|v| v.to_str().ok()).and_then(TraceContext::from_trace_id));
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let (ctx, span) = TraceContext::start(parent, |ctx| {
        tracing::info_span!(
            "http",
            otel.name = format!("{method} {route}"),
            module = owners.of(&route),
            method = %method,
            route,
            status = tracing::field::Empty,
            trace_id = ctx.trace_id.as_str(),
            span_id = ctx.span_id.as_str(),
        )
    });
    let trace_id = ctx.trace_id.clone();
    let mut response = ctx
        .scope(async move {
            let response = next.run(req).await;
            if response.status() == StatusCode::METHOD_NOT_ALLOWED && response.headers().get("content-type").is_none() {
                return ApiError::validation("method not allowed")
                    .with_status(StatusCode::METHOD_NOT_ALLOWED)
                    .into_response();
            }
            response
        })
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16().to_string();
    if crate::telemetry::otel_enabled() {
        // For the exported span; no log line follows in this span (recording costs the
        // JSON log layer a parse of the span's fields).
        span.record("status", status.as_str());
    }
    let labels = [("method", method.to_string()), ("route", route), ("status", status)];
    metrics::counter!(crate::metrics::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(crate::metrics::HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID, v);
    }
    response
}

/// The answer to a path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such resource")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_auth(key: &[u8]) -> Auth {
        Auth { admin_token: Some("op".into()), cookie_key: key.to_vec(), token_key: key.to_vec(), ..Auth::default() }
    }

    #[test]
    fn tokens_name_their_subject_until_they_expire() {
        let auth = test_auth(b"k");
        let token = auth.issue("alice", false, std::time::Duration::from_secs(60));
        assert!(matches!(auth.caller(&token), Ok(Caller::User { ref id, admin: false }) if id == "user:alice"));
        let admin = auth.issue("ops", true, std::time::Duration::from_secs(60));
        assert!(matches!(auth.caller(&admin), Ok(Caller::User { admin: true, .. })));
        assert!(matches!(auth.caller("op"), Ok(Caller::Operator)));
        // Signed with another key, tampered with, expired, or not a token at all: refused.
        assert!(test_auth(b"other").caller(&token).is_err());
        let (head, _) = token.rsplit_once('.').unwrap();
        assert!(auth.caller(&format!("{head}.AAAA")).is_err());
        let expired = Claims { sub: "alice".into(), exp: 1_000, role: None, event: None };
        let key = jsonwebtoken::EncodingKey::from_secret(b"k");
        let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &expired, &key).unwrap();
        assert!(auth.caller(&expired).is_err());
        assert!(auth.caller("alice").is_err());
        let open = Auth { open_bearer: true, ..test_auth(b"k") };
        assert!(matches!(open.caller("alice"), Ok(Caller::User { ref id, .. }) if id == "user:alice"));
    }

    #[test]
    fn a_scanners_token_opens_the_door_only() {
        let auth = test_auth(b"k");
        let token = auth.issue_scanner("gate-3", Some(2), std::time::Duration::from_secs(60));
        assert!(matches!(auth.caller(&token), Ok(Caller::Scanner { ref sub, event: Some(2) }) if sub == "gate-3"));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        let refused = known_buyer(&headers, &auth).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Forbidden);
    }

    #[test]
    fn tokens_expire_by_the_injected_clock_with_its_leeway() {
        let auth = Auth { clock: crate::clock::Clock::manual(), ..test_auth(b"k") };
        let token = auth.issue("alice", false, std::time::Duration::from_secs(60));
        auth.clock.advance(std::time::Duration::from_secs(60 + Auth::LEEWAY_SECS - 1));
        assert!(auth.verify_token(&token).is_some(), "within the leeway");
        auth.clock.advance(std::time::Duration::from_secs(2));
        assert!(auth.verify_token(&token).is_none(), "past the leeway");
        assert!(test_auth(b"k").verify_token(&token).is_some(), "the system clock has not got there");
    }

    #[test]
    fn cookies_verify_only_with_their_signature() {
        let auth = test_auth(b"k");
        let value = format!("abc.{}", auth.sign("abc"));
        assert_eq!(auth.verify(&value).as_deref(), Some("anon:abc"));
        assert!(auth.verify("abc.00").is_none());
        assert!(auth.verify(&format!("abd.{}", auth.sign("abc"))).is_none());
        let other = test_auth(b"other");
        assert!(other.verify(&value).is_none());
    }
}
