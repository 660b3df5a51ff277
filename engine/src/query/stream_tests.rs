//! In-process tests of the live streams: the first event is the current state, then each
//! committed change in order, and a subscriber that falls behind gets the state again.

use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sluice_state::{WindowEntry, WriteBatch};
use tower::ServiceExt;

use super::router;
use super::tests::{MINUTE, fixture, get};
use crate::checkpoint::Checkpoint;
use crate::feed::{CAPACITY, Change, ViewChange};
use crate::status::EngineStatus;
use crate::time::format_millis;

/// Reads Server-Sent Events off a response body.
struct Events {
    body: BodyDataStream,
    buffer: String,
}

impl Events {
    async fn open(state: &super::QueryState, uri: &str) -> Events {
        let response = router(state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event as `(event, id, data)`, within a deadline.
    async fn next(&mut self) -> (String, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut fields = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        fields.0 = name.to_string();
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        fields.1 = id.to_string();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        fields.2.push_str(data);
                    }
                }
                if fields.0.is_empty() {
                    continue; // a keep-alive comment
                }
                return (fields.0, fields.1, serde_json::from_str(&fields.2).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("an event within the deadline")
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Fails if an event is ready now.
    async fn assert_quiet(&mut self) {
        assert!(!self.buffer.contains("\n\n"), "{}", self.buffer);
        let more = tokio::time::timeout(Duration::from_millis(100), self.body.next()).await;
        assert!(more.is_err(), "unexpected event: {more:?}");
    }
}

/// Commits a checkpoint the way the engine does: its values and record in one batch, then
/// the staged changes published.
fn commit(status: &EngineStatus, db: &sluice_state::StateDb, id: u64, changes: Vec<ViewChange>) {
    let mut checkpoint = status.checkpoint().unwrap();
    checkpoint.id = id;
    checkpoint.epoch = id + 1;
    let mut batch = WriteBatch::default();
    for change in &changes {
        match &change.change {
            Change::Value { value_json } => db.table_store(&change.view).unwrap().put_into(
                &mut batch,
                change.key.as_bytes(),
                value_json,
            ),
            Change::Window {
                start,
                end,
                is_final,
                value_json,
            } => db.window_store(&change.view).unwrap().put_into(
                &mut batch,
                change.key.as_bytes(),
                &WindowEntry {
                    start: *start,
                    end: *end,
                    is_final: *is_final,
                    value_json: value_json.clone(),
                },
            ),
            Change::WindowRemoved { start } => db.window_store(&change.view).unwrap().delete_into(
                &mut batch,
                change.key.as_bytes(),
                *start,
            ),
            Change::Deleted => db
                .table_store(&change.view)
                .unwrap()
                .delete_into(&mut batch, change.key.as_bytes()),
        }
    }
    db.meta().unwrap().put_into(
        &mut batch,
        Checkpoint::KEY,
        &serde_json::to_vec(&checkpoint).unwrap(),
    );
    db.write(batch).unwrap();
    // Handed in to the checkpoint's own request, as the view operators do.
    status.changes.stage(checkpoint.epoch, changes);
    status.checkpoint_committed(checkpoint);
}

fn value(view: &str, key: &str, json: &str) -> ViewChange {
    ViewChange {
        view: view.into(),
        key: key.into(),
        change: Change::Value {
            value_json: json.as_bytes().to_vec(),
        },
    }
}

#[tokio::test]
async fn a_key_stream_starts_with_the_value_and_follows_each_commit() {
    let (_dir, state) = fixture();
    let mut events = Events::open(&state, "/views/totals/b/stream").await;
    let (name, id, data) = events.next().await;
    assert_eq!((name.as_str(), id.as_str()), ("snapshot", "4"));
    assert_eq!(data["value"], json!({"key": "b"}));
    assert_eq!(data["checkpoint"]["id"], 4);

    commit(
        &state.status,
        &state.db,
        5,
        vec![
            value("totals", "c", r#"{"n":1}"#),
            value("totals", "b", r#"{"n":1}"#),
        ],
    );
    commit(
        &state.status,
        &state.db,
        6,
        vec![value("totals", "b", r#"{"n":2}"#)],
    );
    commit(
        &state.status,
        &state.db,
        7,
        vec![value("totals", "a", r#"{"n":3}"#)],
    );
    let mut deleted = value("totals", "b", "");
    deleted.change = Change::Deleted;
    commit(&state.status, &state.db, 8, vec![deleted]);
    // Only key b's changes, each once, in commit order.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (name, id, data) = events.next().await;
        assert_eq!(name, "change");
        assert_eq!(data["key"], "b");
        assert_eq!(data["checkpoint"].to_string(), id);
        seen.push((id, data["value"].clone(), data["deleted"].clone()));
    }
    assert_eq!(
        seen,
        vec![
            ("5".into(), json!({"n": 1}), Value::Null),
            ("6".into(), json!({"n": 2}), Value::Null),
            ("8".into(), Value::Null, json!(true)),
        ]
    );
    events.assert_quiet().await;
    // A key with no value yet can be followed too: it starts empty.
    let mut events = Events::open(&state, "/views/totals/new/stream").await;
    let (name, _, data) = events.next().await;
    assert_eq!(name, "snapshot");
    assert_eq!(data["value"], Value::Null);
}

#[tokio::test]
async fn a_view_stream_starts_with_every_key_and_follows_windows() {
    let (_dir, state) = fixture();
    let mut events = Events::open(&state, "/views/demand/stream").await;
    let mut keys = Vec::new();
    loop {
        let (name, id, data) = events.next().await;
        assert_eq!(id, "4");
        if name == "ready" {
            assert_eq!(data["checkpoint"]["id"], 4);
            break;
        }
        assert_eq!(name, "entry");
        keys.push((
            data["key"].as_str().unwrap().to_string(),
            data["windows"].as_array().unwrap().len(),
        ));
    }
    assert_eq!(
        keys,
        vec![
            ("burger".into(), 2),
            ("burrito".into(), 1),
            ("fries".into(), 1),
            ("juice".into(), 1)
        ]
    );
    commit(
        &state.status,
        &state.db,
        5,
        vec![
            ViewChange {
                view: "demand".into(),
                key: "fries".into(),
                change: Change::WindowRemoved { start: 0 },
            },
            ViewChange {
                view: "demand".into(),
                key: "burger".into(),
                change: Change::Window {
                    start: MINUTE,
                    end: 2 * MINUTE,
                    is_final: true,
                    value_json: b"7".to_vec(),
                },
            },
            value("totals", "a", "{}"),
        ],
    );
    let (name, _, burger) = events.next().await;
    assert_eq!(name, "change");
    assert_eq!(
        burger["window"],
        json!({"start": format_millis(MINUTE), "end": format_millis(2 * MINUTE), "value": 7, "final": true})
    );
    let (_, _, fries) = events.next().await;
    assert_eq!(fries["key"], "fries");
    assert_eq!(fries["removed"], json!({"start": format_millis(0)}));
    events.assert_quiet().await;
    // What the stream said is what a read says now.
    let (_, read) = get(&state, "/views/demand/burger").await;
    assert_eq!(read["windows"][1]["value"], 7);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_gets_the_current_state_again() {
    let (_dir, state) = fixture();
    let mut events = Events::open(&state, "/views/totals/b/stream").await;
    assert_eq!(events.next().await.0, "snapshot");
    // More commits than the feed buffers, none read: the server holds no more than its
    // buffer for this client.
    let last = 5 + CAPACITY as u64 + 10;
    for id in 5..=last {
        commit(
            &state.status,
            &state.db,
            id,
            vec![value("totals", "b", &format!("{{\"n\":{id}}}"))],
        );
    }
    let (name, id, data) = events.next().await;
    assert_eq!(name, "snapshot");
    assert_eq!(id, last.to_string());
    assert_eq!(data["value"], json!({"n": last}));
    // The commits still buffered are all in that snapshot already.
    events.assert_quiet().await;
}

#[tokio::test]
async fn one_stream_follows_several_views_each_named() {
    let (_dir, state) = fixture();
    let mut events = Events::open(&state, "/stream?views=totals,demand").await;
    // Each view's keys, then its `ready`, all of one snapshot.
    let mut current: Vec<(String, String)> = Vec::new();
    let mut ready = Vec::new();
    while ready.len() < 2 {
        let (name, id, data) = events.next().await;
        assert_eq!(id, "4");
        let view = data["view"].as_str().unwrap().to_string();
        match name.as_str() {
            "entry" => current.push((view, data["key"].as_str().unwrap().to_string())),
            "ready" => ready.push(view),
            other => panic!("unexpected {other}: {data}"),
        }
    }
    assert_eq!(ready, ["totals", "demand"]);
    let keys = |view: &str| -> Vec<&str> {
        current
            .iter()
            .filter(|(of, _)| of == view)
            .map(|(_, key)| key.as_str())
            .collect()
    };
    assert_eq!(keys("totals"), ["a", "b", "c"]);
    assert_eq!(keys("demand"), ["burger", "burrito", "fries", "juice"]);
    commit(
        &state.status,
        &state.db,
        5,
        vec![
            // A view the stream does not follow.
            value("catalog", "x", "{}"),
            value("totals", "a", r#"{"n":1}"#),
        ],
    );
    let (name, _, change) = events.next().await;
    assert_eq!(name, "change");
    assert_eq!(
        (change["view"].as_str(), change["key"].as_str()),
        (Some("totals"), Some("a"))
    );
    events.assert_quiet().await;

    // Every view when none is named.
    let mut events = Events::open(&state, "/stream").await;
    let mut ready = Vec::new();
    while ready.len() < state.plan.views.len() {
        let (name, _, data) = events.next().await;
        if name == "ready" {
            ready.push(data["view"].as_str().unwrap().to_string());
        }
    }
    let all: Vec<&str> = state.plan.views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(ready, all);
    for (uri, code) in [
        ("/stream?views=totals,nope", StatusCode::NOT_FOUND),
        ("/stream?views=", StatusCode::BAD_REQUEST),
        ("/stream?view=totals", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = get(&state, uri).await;
        assert_eq!(status, code, "{uri}: {body}");
    }
}

#[tokio::test]
async fn streams_of_unknown_views_are_a_json_404() {
    let (_dir, state) = fixture();
    for uri in ["/views/nope/stream", "/views/nope/k/stream"] {
        let (status, body) = get(&state, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body["error"].as_str().unwrap().contains("no view named"));
    }
}
