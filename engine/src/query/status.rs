//! `/status` and `/healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::QueryState;
use crate::status::EngineStatus;
use crate::time::format_millis;

/// Per-partition progress and lag, the watermark, and the late and dead-letter counts.
pub async fn status(State(state): State<QueryState>) -> Json<Value> {
    let status = &state.status;
    let partitions: Vec<Value> = status
        .partitions()
        .into_iter()
        .map(|(topic, partition, progress)| {
            let lag = if progress.high_watermark < 0 {
                Value::Null
            } else {
                json!((progress.high_watermark - progress.offset).max(0))
            };
            json!({
                "topic": topic,
                "partition": partition,
                "offset": progress.offset,
                "high_watermark": progress.high_watermark,
                "lag": lag,
            })
        })
        .collect();
    Json(json!({
        "partitions": partitions,
        "watermark": watermark_json(status),
        "checkpoint": Value::Null,
        "processed": EngineStatus::count(&status.processed),
        "emitted": EngineStatus::count(&status.emitted),
        "late": EngineStatus::count(&status.late),
        "dlq": EngineStatus::count(&status.dead_lettered),
        "delivery_failures": EngineStatus::count(&status.delivery_failures),
        "error": status.fatal(),
    }))
}

/// 200 while the engine runs, 503 once a fatal error stopped it.
pub async fn healthz(State(state): State<QueryState>) -> (StatusCode, Json<Value>) {
    match state.status.fatal() {
        None => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "failed", "error": error })),
        ),
    }
}

/// The watermark as RFC 3339, or null before the first one.
pub(crate) fn watermark_json(status: &EngineStatus) -> Value {
    match status.watermark() {
        Some(millis) => json!(format_millis(millis)),
        None => Value::Null,
    }
}
