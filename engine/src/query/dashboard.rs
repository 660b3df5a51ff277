//! `GET /`: the dashboard, a page that shows every view live (Chart.js charts and tables
//! fed by the Server-Sent Events streams) beside the engine's lag, late and dead-letter
//! counts. Its files are built into the binary, so it works wherever the API does, with no
//! network beyond the engine.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
/// Chart.js 4.6.1 (MIT), vendored from the npm package's `dist/chart.umd.min.js`; see
/// `engine/assets/vendor/`.
const CHART_JS: &str = include_str!("../../assets/vendor/chart.umd.min.js");

/// The dashboard page.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard page", body = String, content_type = "text/html"))
)]
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The dashboard's script.
#[utoipa::path(
    get,
    path = "/assets/dashboard.js",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard's script", body = String, content_type = "text/javascript"))
)]
pub async fn script() -> Response {
    javascript(SCRIPT)
}

/// The charting library the dashboard draws with.
#[utoipa::path(
    get,
    path = "/assets/chart.umd.min.js",
    tag = "dashboard",
    responses((status = 200, description = "Chart.js", body = String, content_type = "text/javascript"))
)]
pub async fn chart_js() -> Response {
    javascript(CHART_JS)
}

fn javascript(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // The files change only with the binary.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}
