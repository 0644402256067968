//! The web page: a buyer's seat map and checkout, "my tickets", and the operator's view;
//! and the door's scanner page (`/scanner`).
//! Plain HTML, CSS and JavaScript compiled into the binary — no separate build.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../../web/static/index.html");
const SCRIPT: &str = include_str!("../../../web/static/app.js");
const STYLE: &str = include_str!("../../../web/static/app.css");
const SCANNER: &str = include_str!("../../../web/static/scanner.html");
const SCANNER_SCRIPT: &str = include_str!("../../../web/static/scanner.js");
/// jsQR 1.4.0 (Apache-2.0, `web/static/vendor/jsQR.LICENSE`): QR codes from the camera.
const JSQR: &str = include_str!("../../../web/static/vendor/jsQR.js");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/scanner", get(|| async { asset("text/html; charset=utf-8", SCANNER) }))
        .route("/scanner.js", get(|| async { asset("text/javascript; charset=utf-8", SCANNER_SCRIPT) }))
        .route("/vendor/jsQR.js", get(|| async { asset("text/javascript; charset=utf-8", JSQR) }))
}
