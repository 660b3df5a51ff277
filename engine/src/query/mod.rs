//! The HTTP query API (axum): views, status and health, all JSON.
//!
//! - [`dashboard`]: `/`, the live dashboard, and its scripts.
//! - [`error`]: [`ApiError`], which answers 400, 404 and 500 as JSON with a clear message.
//! - [`views`]: `/views`, `/views/{view}` and `/views/{view}/{key}`: lookups, window
//!   ranges, and key-range and prefix scans with a cursor.
//! - [`stream`]: `/views/{view}/stream`, `/views/{view}/{key}/stream` and `/stream`, live updates as
//!   Server-Sent Events from the change feed.
//! - [`freshness`]: every view answer reads one RocksDB snapshot and reports the
//!   checkpoint (offsets and watermark) that snapshot holds.
//! - [`params`]: query-string parameters, each mistake a 400 that names it.
//! - [`events`]: `POST /events/{topic}`, the event producer API.
//! - [`status`]: `/status`, `/healthz` and `/readyz`.
//! - [`gate`]: the front door that answers while the engine starts; [`server`]: the
//!   server, bound first and stopped last.
//! - [`access`]: the API token, for writes or for everything; [`admission`]: limits on
//!   bodies, connections ([`connections`]) and live streams, each with a clear answer.
//! - [`metrics`]: `/metrics`, in the Prometheus text format.
//! - [`topology`]: `/topology`, as text, Graphviz DOT or JSON.
//! - [`answers`]: every JSON answer as a type, which is also its OpenAPI schema.
//! - `/openapi.json` is generated from the handlers' `#[utoipa::path]` annotations as they
//!   are routed, so the document lists exactly the routes the router serves.

pub mod access;
pub mod admission;
pub mod answers;
pub mod connections;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod freshness;
pub mod gate;
pub mod metrics;
pub mod params;
pub mod server;
pub mod status;
pub mod stream;
pub mod topology;
pub mod views;

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router};
use sluice_state::StateDb;
use utoipa::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::kafka::event_producer::EventPublisher;
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
    /// The OpenAPI document of this topology's API.
    pub(crate) openapi: Arc<utoipa::openapi::OpenApi>,
    /// Publishes `POST /events`; absent when the engine runs without a broker.
    pub(crate) publisher: Option<Arc<dyn EventPublisher>>,
    /// The server's limits, and what they refused.
    pub(crate) admission: Arc<admission::Admission>,
}

impl QueryState {
    /// State for the handlers.
    pub fn new(plan: Arc<Plan>, db: Arc<StateDb>, status: Arc<EngineStatus>) -> Self {
        let openapi = Arc::new(document_for(&plan));
        QueryState {
            plan,
            db,
            status,
            http: metrics::HttpMetrics::default(),
            openapi,
            publisher: None,
            admission: admission::Admission::open(),
        }
    }

    /// Serves under `admission`'s limits (the gate checks its token).
    pub fn with_admission(mut self, admission: Arc<admission::Admission>) -> Self {
        self.admission = admission;
        self
    }

    /// Serves `POST /events` through `publisher`.
    pub fn with_publisher(mut self, publisher: Arc<dyn EventPublisher>) -> Self {
        self.publisher = Some(publisher);
        self
    }
}

/// The document's title, version and tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice query API",
        description = "The materialized views of a Sluice topology, its progress and its metrics."
    ),
    components(schemas(answers::Timestamp, topology::TopologyFormat)),
    tags(
        (name = "views", description = "Materialized views: lookups, window ranges and scans"),
        (name = "events", description = "The event producer API"),
        (name = "dashboard", description = "The dashboard page and its scripts"),
        (name = "engine", description = "Progress, health, metrics and the topology"),
    )
)]
struct ApiDoc;

/// The routes and the OpenAPI document that describes them, built together.
fn routes() -> (Router<QueryState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(views::list_views))
        .routes(routes!(views::scan_view))
        .routes(routes!(views::get_key))
        .routes(routes!(stream::view_stream))
        .routes(routes!(stream::views_stream))
        .routes(routes!(stream::key_stream))
        .routes(routes!(events::publish_event))
        .routes(routes!(status::status))
        .routes(routes!(status::healthz))
        .routes(routes!(status::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(topology::topology))
        .routes(routes!(openapi_json))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::script))
        .routes(routes!(dashboard::chart_js))
        .split_for_parts()
}

/// The OpenAPI 3 document of the API, for any topology.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The document as `/openapi.json` serves it for `plan`: the `view` and `topic` parameters
/// list the topology's views and source topics, so that clients and contract tests know
/// the names that exist.
fn document_for(plan: &Plan) -> utoipa::openapi::OpenApi {
    let mut document = openapi();
    let views: Vec<String> = plan.views.iter().map(|view| view.name.clone()).collect();
    let topics: Vec<String> = plan.event_types.topics().map(str::to_string).collect();
    let one_of = |names: Vec<String>| -> Option<RefOr<Schema>> {
        (!names.is_empty()).then(|| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names))
                .into()
        })
    };
    let (views, topics) = (one_of(views), one_of(topics));
    let parameters = document
        .paths
        .paths
        .values_mut()
        .flat_map(|item| [item.get.as_mut(), item.post.as_mut()])
        .flatten()
        .filter_map(|operation| operation.parameters.as_mut())
        .flatten();
    for parameter in parameters {
        let names = match parameter.name.as_str() {
            "view" => &views,
            "topic" => &topics,
            _ => continue,
        };
        if let Some(names) = names {
            parameter.schema = Some(names.clone());
        }
    }
    document
}

/// This document: every route with its parameters, answers and errors.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "engine",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object))
)]
async fn openapi_json(State(state): State<QueryState>) -> Json<utoipa::openapi::OpenApi> {
    Json(state.openapi.as_ref().clone())
}

/// The whole API as a router, testable in process with `tower::ServiceExt::oneshot`.
pub fn router(state: QueryState) -> Router {
    let max_body_bytes = state.admission.limits.max_body_bytes;
    routes()
        .0
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .fallback(|| async {
            ApiError::NotFound(
                "no such route; try GET /views, GET /status or GET /openapi.json".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::time_requests,
        ))
        .with_state(state)
}

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
