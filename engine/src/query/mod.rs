//! The HTTP query API (axum): views, status and health, all JSON.
//!
//! - [`error`]: [`ApiError`], which answers 400, 404 and 500 as JSON with a clear message.
//! - [`views`]: `/views`, `/views/{view}` and `/views/{view}/{key}`: lookups, window
//!   ranges, and key-range and prefix scans with a cursor.
//! - [`freshness`]: every view answer reads one RocksDB snapshot and reports the
//!   checkpoint (offsets and watermark) that snapshot holds.
//! - [`params`]: query-string parameters, each mistake a 400 that names it.
//! - [`status`]: `/status` and `/healthz`.
//! - [`metrics`]: `/metrics`, in the Prometheus text format.
//! - [`topology`]: `/topology`, as text, Graphviz DOT or JSON.

pub mod error;
pub mod freshness;
pub mod metrics;
pub mod params;
pub mod status;
pub mod topology;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sluice_state::StateDb;

use crate::plan::Plan;
use crate::status::EngineStatus;

pub use error::ApiError;

/// What the handlers read: the plan's views, the state and the live status.
#[derive(Clone)]
pub struct QueryState {
    pub(crate) plan: Arc<Plan>,
    pub(crate) db: Arc<StateDb>,
    pub(crate) status: Arc<EngineStatus>,
    pub(crate) http: metrics::HttpMetrics,
}

impl QueryState {
    /// State for the handlers.
    pub fn new(plan: Arc<Plan>, db: Arc<StateDb>, status: Arc<EngineStatus>) -> Self {
        QueryState {
            plan,
            db,
            status,
            http: metrics::HttpMetrics::default(),
        }
    }
}

/// The whole API as a router, testable in process with `tower::ServiceExt::oneshot`.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/views", get(views::list_views))
        .route("/views/{view}", get(views::scan_view))
        .route("/views/{view}/{key}", get(views::get_key))
        .route("/status", get(status::status))
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/topology", get(topology::topology))
        .fallback(|| async {
            ApiError::NotFound("no such route; try GET /views or GET /status".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::time_requests,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests;
