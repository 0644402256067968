//! Cross-site writes refused: a page on another site can make its visitors' browsers send
//! requests that carry their buyer cookie (or make them a new anonymous buyer), but only
//! "simple" ones — a form's content types, no custom headers — unless the API allows the
//! page's origin by CORS. So a write that a browser could send on its own (no bearer
//! token, which a page cannot add without a CORS pre-flight) must carry a JSON body as
//! `application/json` (else 415) and, when the browser names its `Origin`, come from this
//! site or an allowed origin (else 403). Writes without a body (a release, an extend
//! with no body) need no content type. Requests with a bearer token are API clients'.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::ErrorCode;

use crate::http::ApiError;

/// The origins, besides the API's own, that may write from a browser (`--cors-origins`).
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(pub Arc<Vec<String>>);

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn has_bearer(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer ")))
}

/// True when `origin` (scheme://host[:port]) names the host the request was sent to, or
/// one of the allowed origins.
fn origin_allowed(origin: &str, headers: &HeaderMap, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The middleware (see the module's comment).
pub async fn guard(State(allowed): State<AllowedOrigins>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if !is_write(req.method()) || has_bearer(headers) {
        return next.run(req).await;
    }
    if let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok())
        && !origin_allowed(origin, headers, &allowed.0)
    {
        metrics::counter!(crate::metrics::CROSS_SITE_REFUSED, "reason" => "origin").increment(1);
        return ApiError::new(ErrorCode::Forbidden, format!("a write from the origin {origin} is not allowed"))
            .into_response();
    }
    if has_body(headers) && !is_json(headers) {
        metrics::counter!(crate::metrics::CROSS_SITE_REFUSED, "reason" => "content_type").increment(1);
        return ApiError::validation("a request body must be sent as Content-Type: application/json")
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn json_with_parameters_is_json_and_a_form_type_is_not() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[("content-type", "Application/JSON; charset=utf-8")])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[("content-type", "application/x-www-form-urlencoded")])));
        assert!(!is_json(&headers(&[])));
    }

    #[test]
    fn an_empty_body_is_no_body() {
        assert!(!has_body(&headers(&[("content-length", "0")])));
        assert!(!has_body(&headers(&[])));
        assert!(has_body(&headers(&[("content-length", "12")])));
        assert!(has_body(&headers(&[("transfer-encoding", "chunked")])));
    }

    #[test]
    fn the_sites_own_origin_and_allowed_ones_pass() {
        let h = headers(&[("host", "tickets.example:8080")]);
        assert!(origin_allowed("http://tickets.example:8080", &h, &[]));
        assert!(origin_allowed("https://tickets.example:8080", &h, &[]));
        assert!(!origin_allowed("https://evil.example", &h, &[]));
        assert!(!origin_allowed("null", &h, &[]));
        assert!(origin_allowed("https://shop.example", &h, &["https://shop.example/".to_owned()]));
        assert!(!origin_allowed("http://tickets.example:8080", &headers(&[]), &[]));
    }
}
