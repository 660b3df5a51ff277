//! `/topology`: the running topology as `shop describe` prints it, as text, Graphviz DOT or
//! JSON.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::params::Params;
use super::{ApiError, QueryState};
use crate::plan::{describe, to_dot};

/// The forms `/topology` serves.
#[derive(utoipa::ToSchema)]
pub enum TopologyFormat {
    #[schema(rename = "text")]
    Text,
    #[schema(rename = "dot")]
    Dot,
    #[schema(rename = "json")]
    Json,
}

impl TopologyFormat {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(TopologyFormat::Text),
            "dot" => Some(TopologyFormat::Dot),
            "json" => Some(TopologyFormat::Json),
            _ => None,
        }
    }
}

/// The topology in the `format` asked for: `text` (the default), `dot` or `json`.
#[utoipa::path(
    get,
    path = "/topology",
    tag = "engine",
    params(("format" = Option<TopologyFormat>, Query, description = "`text` (the default), `dot` or `json`")),
    responses(
        (status = 200, description = "The topology, as `shop describe` prints it", content(
            (String = "text/plain"),
            (String = "text/vnd.graphviz"),
            (Object = "application/json"),
        )),
        (status = 400, description = "An unknown format or parameter", body = super::answers::ErrorBody),
    )
)]
pub async fn topology(
    State(state): State<QueryState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &["format"])?;
    let plan = &state.plan;
    let text = params.text("format").unwrap_or("text");
    let Some(format) = TopologyFormat::parse(text) else {
        return Err(ApiError::BadRequest(format!(
            "parameter `format` must be text, dot or json, not `{text}`"
        )));
    };
    Ok(match format {
        TopologyFormat::Text => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            describe(plan),
        )
            .into_response(),
        TopologyFormat::Dot => (
            [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
            to_dot(plan),
        )
            .into_response(),
        TopologyFormat::Json => Json(plan.as_ref()).into_response(),
    })
}
