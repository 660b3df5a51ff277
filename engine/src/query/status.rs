//! `/status`, `/healthz` and `/readyz`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering};

use super::QueryState;
use super::admission::Admission;
use super::answers::{
    CheckpointInfo, Health, HttpAdmission, LateCount, MissingOffsets, PartitionStatus,
    PhaseEntered, Ready, ReadyHold, StateBytes, StatusAnswer, Transactions,
};
use crate::readiness::Phase;
use crate::status::EngineStatus;
use crate::time::format_millis;

/// Per-partition progress and lag, the watermark, the last checkpoint, and the late and
/// dead-letter counts. A caller can wait here until the lag reaches 0.
#[utoipa::path(
    get,
    path = "/status",
    tag = "engine",
    responses((status = 200, description = "The engine's live progress", body = StatusAnswer))
)]
pub async fn status(State(state): State<QueryState>) -> Json<StatusAnswer> {
    let status = &state.status;
    // The error first: whatever the engine did before it failed (an aborted transaction,
    // the last records counted) then shows in the counters read after it. Read last, an
    // answer could carry the error beside counters from before the failure.
    let error = status.fatal();
    let checkpoint = status.checkpoint();
    let partitions = status
        .partitions()
        .into_iter()
        .map(|(topic, partition, progress)| {
            let lag = (progress.high_watermark >= 0)
                .then(|| (progress.high_watermark - progress.offset).max(0));
            let checkpointed_offset = checkpoint
                .as_ref()
                .and_then(|checkpoint| checkpoint.position(&topic, partition))
                .map_or(0, |position| position.offset);
            PartitionStatus {
                topic,
                partition,
                offset: progress.offset,
                checkpointed_offset,
                high_watermark: progress.high_watermark,
                lag,
                processed: progress.records_in,
                emitted: progress.emitted,
                failed: progress.failed,
                watermark: progress
                    .watermark
                    .map(|watermark| format_millis(watermark as i64)),
                idle: progress.idle,
            }
        })
        .collect();
    Json(StatusAnswer {
        partitions,
        watermark: status.watermark().map(format_millis),
        checkpoint: checkpoint.as_ref().map(CheckpointInfo::of),
        processed: EngineStatus::count(&status.processed),
        emitted: EngineStatus::count(&status.emitted),
        late: EngineStatus::count(&status.late),
        late_by: status
            .late_by()
            .into_iter()
            .map(|((view, topic, partition), count)| LateCount {
                view,
                topic,
                partition,
                count,
            })
            .collect(),
        dlq: EngineStatus::count(&status.dead_lettered),
        delivery_failures: EngineStatus::count(&status.delivery_failures),
        suppressed: EngineStatus::count(&status.suppressed),
        transactions: Transactions {
            committed: EngineStatus::count(&status.transactions_committed),
            aborted: EngineStatus::count(&status.transactions_aborted),
            resent: EngineStatus::count(&status.outbox_resent),
        },
        state_bytes: state_bytes(&state),
        phase: status.readiness.phase(),
        phases: status
            .readiness
            .phases()
            .into_iter()
            .map(|(phase, since)| PhaseEntered {
                phase,
                since: format_millis(since),
            })
            .collect(),
        http: http_admission(&state.admission),
        missing_offsets: {
            let (policy, moved) = status.missing_offsets();
            MissingOffsets { policy, moved }
        },
        error,
    })
}

fn http_admission(admission: &Admission) -> HttpAdmission {
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    HttpAdmission {
        token_required_for: admission.access.describe().to_string(),
        max_body_bytes: admission.limits.max_body_bytes,
        max_connections: admission.limits.max_connections,
        open_connections: admission.open_connections(),
        idle_timeout_secs: admission.limits.idle_timeout.as_secs(),
        refused_connections: count(&admission.refused_connections),
        max_streams: admission.limits.max_streams,
        open_streams: admission.open_streams(),
        refused_streams: count(&admission.refused_streams),
        refused_bodies: count(&admission.refused_bodies),
        unauthorized: count(&admission.unauthorized),
    }
}

/// RocksDB's estimate of the size of every store (views and operator state), in bytes.
fn state_bytes(state: &QueryState) -> StateBytes {
    let mut stores: Vec<String> = state.plan.stores();
    stores.push(sluice_state::db::META_STORE.to_string());
    let mut sizes = StateBytes {
        total: 0,
        stores: Default::default(),
    };
    for store in stores {
        // A store that cannot be measured is left out rather than failing the status.
        if let Ok(size) = state.db.store_size(&store) {
            sizes.total += size;
            sizes.stores.insert(store, size);
        }
    }
    sizes
}

/// 200 while the engine runs, 503 once a fatal error stopped it.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "engine",
    responses(
        (status = 200, description = "The engine runs", body = Health),
        (status = 503, description = "A fatal error stopped the engine", body = Health),
    )
)]
pub async fn healthz(State(state): State<QueryState>) -> (StatusCode, Json<Health>) {
    health_answer(&state.status)
}

/// `/healthz`'s answer, also given while the engine starts.
pub(crate) fn health_answer(status: &EngineStatus) -> (StatusCode, Json<Health>) {
    match status.fatal() {
        None => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                error: None,
            }),
        ),
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "failed".into(),
                error: Some(error),
            }),
        ),
    }
}

/// 200 once the engine has started and nothing holds it back; 503 with the start-up's
/// phase while it starts, with the holds (a broker away, output waiting for
/// acknowledgement) while it waits them out, or with the error once a fatal one stopped
/// it. A load balancer or an orchestrator's readiness probe reads this;
/// `/healthz` stays 200 through a wait, so a probe of liveness does not restart an
/// engine that only waits for its broker.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "engine",
    responses(
        (status = 200, description = "Nothing holds the engine back", body = Ready),
        (status = 503, description = "The engine waits for a fault to pass, or stopped", body = Ready),
    )
)]
pub async fn readyz(State(state): State<QueryState>) -> (StatusCode, Json<Ready>) {
    ready_answer(&state.status)
}

/// `/readyz`'s answer, also given while the engine starts and has no state to serve yet.
pub(crate) fn ready_answer(status: &EngineStatus) -> (StatusCode, Json<Ready>) {
    let error = status.fatal();
    let phase = status.readiness.phase();
    let holds: Vec<ReadyHold> = status
        .readiness
        .holds()
        .into_iter()
        .map(|(hold, reason)| ReadyHold { hold, reason })
        .collect();
    let (code, word) = match (&error, phase, holds.is_empty()) {
        (Some(_), _, _) => (StatusCode::SERVICE_UNAVAILABLE, "failed"),
        (None, Phase::Running, true) => (StatusCode::OK, "ready"),
        (None, Phase::Running, false) => (StatusCode::SERVICE_UNAVAILABLE, "unready"),
        (None, _, _) => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
    };
    (
        code,
        Json(Ready {
            status: word.into(),
            phase,
            holds,
            error,
        }),
    )
}
