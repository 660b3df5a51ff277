//! `POST /events/{topic}`: the event producer API. The body is checked as the topic's
//! source will read it, published with the idempotent producer, and acknowledged only once
//! the broker has it durably; then a processing report goes to `monitoring-events`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use tracing::warn;
use utoipa::ToSchema;

use super::QueryState;
use super::answers::ErrorBody;
use super::error::ApiError;
use super::params::Params;
use crate::kafka::event_producer::{OutgoingEvent, PublishError};
use crate::monitoring::{MONITORING_TOPIC, ProcessingReport};

/// Seconds a caller is asked to wait before retrying when the broker is unavailable.
pub const RETRY_AFTER_SECONDS: u64 = 5;
/// The component name of the HTTP producer's processing reports.
pub const COMPONENT: &str = "http-producer";

/// A published event.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedEvent {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record key it was published with, if any.
    pub key: Option<String>,
}

/// Publishes one event to a topic the topology reads.
#[utoipa::path(
    post,
    path = "/events/{topic}",
    tag = "events",
    params(
        ("topic" = String, Path, description = "A topic the topology reads"),
        ("key" = Option<String>, Query,
            description = "The record key; by default the one the topic's source declares"),
    ),
    request_body(content = Object, description = "The event, as JSON of the topic's event type",
        content_type = "application/json"),
    responses(
        (status = 200, description = "Published and acknowledged by the broker", body = PublishedEvent),
        (status = 400, description = "Not an event of the topic's type, or a bad parameter", body = ErrorBody),
        (status = 401, description = "The API token is missing or wrong (with `--api-token`)", body = ErrorBody),
        (status = 404, description = "No source reads the topic", body = ErrorBody),
        (status = 413, description = "The body is over `--max-body-bytes`", body = ErrorBody),
        (status = 503, description = "The broker is unavailable; retry after the `Retry-After` seconds",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn publish_event(
    State(state): State<QueryState>,
    Path(topic): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PublishedEvent>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            state.admission.body_too_large()
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let params = Params::new(raw, &["key"])?;
    let Some(event_type) = state.plan.event_types.get(&topic) else {
        let topics: Vec<&str> = state.plan.event_types.topics().collect();
        return Err(ApiError::NotFound(format!(
            "no source reads topic `{topic}`; events can be posted to {}",
            topics.join(", ")
        )));
    };
    let checked = event_type.check(&body).map_err(|reason| {
        ApiError::BadRequest(format!(
            "not an event of topic {topic} ({}): {reason}",
            event_type.type_name
        ))
    })?;
    let Some(publisher) = &state.publisher else {
        return Err(unavailable("this engine runs without a broker".into()));
    };
    let key = params.text("key").map(str::to_string).or(checked.key);
    let event = OutgoingEvent {
        topic: &topic,
        key: key.as_deref(),
        payload: &body,
        timestamp: checked.event_time,
    };
    let published = publisher
        .publish(event)
        .await
        .map_err(|error| match error {
            PublishError::Unavailable(_) => unavailable(error.to_string()),
            PublishError::Refused(_) => ApiError::BadRequest(error.to_string()),
        })?;
    let now = chrono::Utc::now().timestamp_millis();
    let report = ProcessingReport::new(
        COMPONENT,
        &topic,
        published.partition,
        (now, now),
        (1, 1, 0),
    );
    // The event is durable already; a report that cannot be sent is only logged.
    match serde_json::to_vec(&report) {
        Ok(payload) => {
            let outcome = publisher
                .publish(OutgoingEvent {
                    topic: MONITORING_TOPIC,
                    key: Some(COMPONENT),
                    payload: &payload,
                    timestamp: Some(now),
                })
                .await;
            if let Err(error) = outcome {
                warn!(%error, "cannot publish the HTTP producer's processing report");
            }
        }
        Err(error) => warn!(%error, "cannot encode the HTTP producer's processing report"),
    }
    Ok(Json(PublishedEvent {
        topic,
        partition: published.partition,
        offset: published.offset,
        key,
    }))
}

fn unavailable(message: String) -> ApiError {
    ApiError::Unavailable {
        message,
        retry_after_seconds: RETRY_AFTER_SECONDS,
    }
}
