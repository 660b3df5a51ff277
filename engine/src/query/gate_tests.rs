//! The front door while the engine starts: what answers in each phase.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::admission::Admission;
use super::gate::Gate;
use super::router;
use super::tests::fixture;
use crate::readiness::Phase;
use crate::status::EngineStatus;

async fn get(gate: &Arc<Gate>, uri: &str) -> (StatusCode, Option<String>, Value) {
    let response = gate
        .service()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_string());
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, retry_after, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn before_the_state_is_open_only_health_and_readiness_answer() {
    let status = Arc::new(EngineStatus::new());
    status.readiness.starting();
    let gate = Gate::new(Arc::clone(&status), Admission::open());
    let (code, _, health) = get(&gate, "/healthz").await;
    assert_eq!(code, StatusCode::OK, "{health}");
    let (code, _, ready) = get(&gate, "/readyz").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["status"], "starting");
    assert_eq!(ready["phase"], "opening_state");
    for path in ["/status", "/views/counts/all", "/views"] {
        let (code, retry_after, body) = get(&gate, path).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{path}");
        assert_eq!(body["phase"], "opening_state", "{path}");
        assert_eq!(body["status"], 503, "{path}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("opening the state"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn views_wait_for_the_restore_and_then_answer_while_the_engine_catches_up() {
    let (_dir, state) = fixture();
    let status = Arc::clone(&state.status);
    status.readiness.starting();
    let gate = Gate::new(Arc::clone(&status), Admission::open());
    gate.open(router(state));
    status.readiness.enter(Phase::Restoring);
    let (code, _, body) = get(&gate, "/status").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["phase"], "restoring");
    let (code, retry_after, body) = get(&gate, "/views/counts/all").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["phase"], "restoring");

    status.readiness.enter(Phase::CatchingUp);
    let (code, _, body) = get(&gate, "/views/counts/all").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["windows"].as_array().map(Vec::len), Some(3), "{body}");
    let (code, _, ready) = get(&gate, "/readyz").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["status"], "starting");

    status.readiness.enter(Phase::Running);
    let (code, _, ready) = get(&gate, "/readyz").await;
    assert_eq!(code, StatusCode::OK, "{ready}");
    let (code, _, missing) = get(&gate, "/nope").await;
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "the API's own answers pass: {missing}"
    );
    let status_body = get(&gate, "/status").await.2;
    assert_eq!(
        body_phases(&status_body),
        ["opening_state", "restoring", "catching_up", "running"]
    );
}

fn body_phases(status: &Value) -> Vec<&str> {
    status["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entered| entered["phase"].as_str().unwrap())
        .collect()
}
