//! In-process tests of `POST /events/{topic}` with a publisher that records what it is
//! given, or fails as a broker would.

use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::access::ApiAccess;
use super::admission::{Admission, HttpLimits};
use super::tests::fixture;
use super::{QueryState, router};
use crate::dsl::{Source, Topology, TopologyFn};
use crate::kafka::event_producer::{
    EventPublisher, OutgoingEvent, Publication, PublishError, Published,
};
use crate::monitoring::{MONITORING_TOPIC, ProcessingReport};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Click {
    user: String,
    at: i64,
}

/// How the fake broker answers.
#[derive(Clone, Copy)]
enum Broker {
    Up,
    Down,
    Refusing,
}

/// What was published: topic, key, payload and timestamp.
type Sent = (String, Option<String>, Value, Option<i64>);

struct FakePublisher {
    broker: Broker,
    sent: Mutex<Vec<Sent>>,
}

impl EventPublisher for FakePublisher {
    fn publish<'a>(&'a self, event: OutgoingEvent<'a>) -> Publication<'a> {
        Box::pin(async move {
            match self.broker {
                Broker::Down => return Err(PublishError::Unavailable("timed out".into())),
                Broker::Refusing => return Err(PublishError::Refused("too large".into())),
                Broker::Up => {}
            }
            let mut sent = self.sent.lock().unwrap();
            sent.push((
                event.topic.to_string(),
                event.key.map(str::to_string),
                serde_json::from_slice(event.payload).unwrap(),
                event.timestamp,
            ));
            Ok(Published {
                partition: 1,
                offset: sent.len() as i64 - 1,
            })
        })
    }
}

/// The fixture's views, with the event types of a topology that reads `clicks`.
fn with_clicks(state: QueryState, broker: Option<Broker>) -> (QueryState, Arc<FakePublisher>) {
    let topology: TopologyFn = Arc::new(|topology: &mut Topology<'_>| {
        topology.source(
            Source::<Click>::topic("clicks")
                .event_time(|click| click.at)
                .record_key(|click| click.user.clone()),
        );
    });
    let mut plan = state.plan.as_ref().clone();
    plan.event_types = crate::runtime::plan_of(&topology).event_types;
    let publisher = Arc::new(FakePublisher {
        broker: broker.unwrap_or(Broker::Up),
        sent: Mutex::new(Vec::new()),
    });
    let mut state = QueryState::new(Arc::new(plan), state.db.clone(), state.status.clone());
    if broker.is_some() {
        state = state.with_publisher(publisher.clone());
    }
    (state, publisher)
}

async fn post(state: &QueryState, uri: &str, body: &str) -> (StatusCode, Option<String>, Value) {
    let response = router(state.clone())
        .oneshot(
            Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
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
async fn a_valid_event_is_published_keyed_and_reported() {
    let (_dir, state) = fixture();
    let (state, publisher) = with_clicks(state, Some(Broker::Up));
    let (status, _, body) = post(&state, "/events/clicks", r#"{"user":"ann","at":1000}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"topic": "clicks", "partition": 1, "offset": 0, "key": "ann"})
    );
    let (status, _, body) = post(
        &state,
        "/events/clicks?key=other",
        r#"{"user":"bob","at":2000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["key"], "other");
    let sent = publisher.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 4, "two events and their two reports: {sent:?}");
    // The event with the key its source declares and the event time it carries.
    assert_eq!(
        sent[0],
        (
            "clicks".into(),
            Some("ann".into()),
            json!({"user": "ann", "at": 1000}),
            Some(1000)
        )
    );
    assert_eq!(sent[2].1.as_deref(), Some("other"));
    // Then a processing report of the HTTP producer on monitoring-events.
    let (topic, key, report, _) = &sent[1];
    assert_eq!(topic, MONITORING_TOPIC);
    assert_eq!(key.as_deref(), Some("http-producer"));
    let report: ProcessingReport = serde_json::from_value(report.clone()).unwrap();
    assert_eq!(
        (
            report.component.as_str(),
            report.topic.as_str(),
            report.partition
        ),
        ("http-producer", "clicks", 1)
    );
    assert_eq!((report.processed, report.emitted, report.failed), (1, 1, 0));
}

#[tokio::test]
async fn bad_events_are_a_400_and_publish_nothing() {
    let (_dir, state) = fixture();
    let (state, publisher) = with_clicks(state, Some(Broker::Up));
    for (body, needle) in [
        ("not json", "not an event of topic clicks"),
        (r#"{"user":"ann"}"#, "at"),
        (r#"{"user":7,"at":1}"#, "not an event"),
    ] {
        let (status, _, answer) = post(&state, "/events/clicks", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{answer}"
        );
        assert_eq!(answer["status"], 400);
    }
    let (status, _, answer) = post(&state, "/events/clicks?colour=red", "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("colour"));
    let (status, _, answer) = post(&state, "/events/views", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        answer["error"].as_str().unwrap().contains("clicks"),
        "{answer}"
    );
    assert!(publisher.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_broker_that_is_down_is_a_503_with_retry_advice() {
    let (_dir, state) = fixture();
    let (state, _) = with_clicks(state, Some(Broker::Down));
    let (status, retry_after, answer) =
        post(&state, "/events/clicks", r#"{"user":"ann","at":1}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(answer["status"], 503);
    assert!(answer["error"].as_str().unwrap().contains("retry in 5 s"));
    // No broker at all is the same answer.
    let (_dir, state) = fixture();
    let (state, _) = with_clicks(state, None);
    let (status, retry_after, _) = post(&state, "/events/clicks", r#"{"user":"a","at":1}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("5"));
    // A record the broker refuses is the caller's to fix.
    let (_dir, state) = fixture();
    let (state, _) = with_clicks(state, Some(Broker::Refusing));
    let (status, _, _) = post(&state, "/events/clicks", r#"{"user":"a","at":1}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_and_publishes_nothing() {
    let (_dir, state) = fixture();
    let (state, publisher) = with_clicks(state, Some(Broker::Up));
    let limits = HttpLimits {
        max_body_bytes: 64,
        ..HttpLimits::default()
    };
    let state = state.with_admission(Admission::new(ApiAccess::default(), limits));
    let padding = "x".repeat(100);
    let large = format!(r#"{{"user":"{padding}","at":1}}"#);
    let (status, _, answer) = post(&state, "/events/clicks", &large).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["status"], 413);
    assert!(
        answer["error"].as_str().unwrap().contains("over 64 bytes"),
        "{answer}"
    );
    assert!(publisher.sent.lock().unwrap().is_empty());
    let (status, _, _) = post(&state, "/events/clicks", r#"{"user":"ann","at":1}"#).await;
    assert_eq!(status, StatusCode::OK, "a body within the limit passes");
    assert_eq!(
        state
            .admission
            .refused_bodies
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
