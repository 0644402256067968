//! The web page: a buyer's seat map and checkout, "my tickets", and the operator's view.
//! Plain HTML, CSS and JavaScript compiled into the binary — no separate build.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../../web/static/index.html");
const SCRIPT: &str = include_str!("../../../web/static/app.js");
const STYLE: &str = include_str!("../../../web/static/app.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}
