//! `/status` and `/healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::QueryState;
use crate::checkpoint::Checkpoint;
use crate::status::EngineStatus;
use crate::time::format_millis;

/// Per-partition progress and lag, the watermark, and the late and dead-letter counts.
pub async fn status(State(state): State<QueryState>) -> Json<Value> {
    let status = &state.status;
    let checkpoint = status.checkpoint();
    let partitions: Vec<Value> = status
        .partitions()
        .into_iter()
        .map(|(topic, partition, progress)| {
            let lag = if progress.high_watermark < 0 {
                Value::Null
            } else {
                json!((progress.high_watermark - progress.offset).max(0))
            };
            let checkpointed = checkpoint
                .as_ref()
                .and_then(|checkpoint| checkpoint.position(&topic, partition))
                .map_or(0, |position| position.offset);
            json!({
                "topic": topic,
                "partition": partition,
                "offset": progress.offset,
                "checkpointed_offset": checkpointed,
                "high_watermark": progress.high_watermark,
                "lag": lag,
            })
        })
        .collect();
    Json(json!({
        "partitions": partitions,
        "watermark": watermark_json(status),
        "checkpoint": checkpoint_json(checkpoint.as_ref()),
        "processed": EngineStatus::count(&status.processed),
        "emitted": EngineStatus::count(&status.emitted),
        "late": EngineStatus::count(&status.late),
        "late_by": status
            .late_by()
            .into_iter()
            .map(|((view, topic, partition), count)| {
                json!({"view": view, "topic": topic, "partition": partition, "count": count})
            })
            .collect::<Vec<_>>(),
        "dlq": EngineStatus::count(&status.dead_lettered),
        "delivery_failures": EngineStatus::count(&status.delivery_failures),
        "suppressed": EngineStatus::count(&status.suppressed),
        "transactions": {
            "committed": EngineStatus::count(&status.transactions_committed),
            "aborted": EngineStatus::count(&status.transactions_aborted),
            "resent": EngineStatus::count(&status.outbox_resent),
        },
        "state_bytes": state_bytes(&state),
        "error": status.fatal(),
    }))
}

/// RocksDB's estimate of the size of every store (views and operator state), in bytes.
fn state_bytes(state: &QueryState) -> Value {
    let mut stores: Vec<String> = state.plan.stores();
    stores.push(sluice_state::db::META_STORE.to_string());
    let mut per_store = serde_json::Map::new();
    let mut total = 0;
    for store in stores {
        // A store that cannot be measured is left out rather than failing the status.
        if let Ok(size) = state.db.store_size(&store) {
            total += size;
            per_store.insert(store, json!(size));
        }
    }
    json!({ "total": total, "stores": per_store })
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

/// The last checkpoint, which is what the views reflect: its id, commit time, watermark and
/// source offsets; null before the first one.
pub(crate) fn checkpoint_json(checkpoint: Option<&Checkpoint>) -> Value {
    let Some(checkpoint) = checkpoint else {
        return Value::Null;
    };
    let offsets: Vec<Value> = checkpoint
        .positions
        .iter()
        .map(|position| {
            json!({
                "topic": position.topic,
                "partition": position.partition,
                "offset": position.offset,
            })
        })
        .collect();
    json!({
        "id": checkpoint.id,
        "committed_at": format_millis(checkpoint.committed_at),
        "watermark": format_millis(checkpoint.watermark as i64),
        "duration_ms": checkpoint.duration_ms,
        "offsets": offsets,
    })
}

/// The watermark the views reflect: the checkpoint's, or null before the first one.
pub(crate) fn view_watermark_json(checkpoint: Option<&Checkpoint>) -> Value {
    match checkpoint {
        Some(checkpoint) => json!(format_millis(checkpoint.watermark as i64)),
        None => Value::Null,
    }
}
