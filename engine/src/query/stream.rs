//! Live updates as Server-Sent Events, like ksqlDB push queries: `GET
//! /views/{view}/{key}/stream`, `GET /views/{view}/stream`, and `GET /stream` for several
//! views (all of them by default) on one connection. A browser opens at most six
//! connections to a server, so a page that followed twelve views a stream each saw half of
//! them stay empty; one stream for all is what the dashboard uses.
//!
//! A stream starts with the current state, read from one snapshot, then sends every change
//! of each checkpoint that commits after that snapshot, in commit order:
//! - `snapshot`: a key's current windows or value (a key stream), or `entry` events, one
//!   per key, then `ready`, per view (a view stream). Everything a client held of that
//!   view before is replaced.
//! - `change`: a window's new value, a removed window, a table value or a deletion.
//!
//! Every event names its `view`.
//!
//! Each event's `id` is the checkpoint it reflects. The server holds at most the change
//! feed's bounded buffer for a subscriber; one that falls further behind (a slow client) is
//! sent the current state again instead of the changes it missed. A client that goes away
//! drops its stream, and nothing is kept for it. At most `--max-streams` streams are
//! open at once; one more is answered 503.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::{Value, json};
use sluice_state::KeyRange;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::{self, error::RecvError};

use super::QueryState;
use super::answers::{ErrorBody, Freshness};
use super::error::ApiError;
use super::freshness::Reading;
use super::views::{find_view, parse_json, read_page, window};
use crate::feed::{Change, Committed, ViewChange};
use crate::time::format_millis;

/// Keys read per page while sending a view's current state.
const SNAPSHOT_PAGE: usize = 1000;

/// A view a stream follows.
#[derive(Clone)]
struct Followed {
    view: String,
    windowed: bool,
    /// The view's source topics, whose watermark its changes report.
    sources: Vec<String>,
}

/// What a stream follows: one key of one view, or whole views.
#[derive(Clone)]
struct Subject {
    views: Vec<Followed>,
    key: Option<String>,
}

impl Subject {
    fn followed(&self, change: &ViewChange) -> Option<&Followed> {
        if self.key.as_ref().is_some_and(|key| *key != change.key) {
            return None;
        }
        self.views
            .iter()
            .find(|followed| followed.view == change.view)
    }
}

/// `GET /stream`'s parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// The views to follow, comma-separated; every view when absent.
    views: Option<String>,
}

/// Every change of several views (all of them unless `views` names some), on one
/// connection, starting with their current keys.
#[utoipa::path(
    get,
    path = "/stream",
    tag = "views",
    params(StreamParams),
    responses(
        (status = 200, description = "Server-Sent Events: per view, an `entry` per key and `ready`; then a `change` per committed change. Each names its `view`",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 503, description = "`--max-streams` streams are open already", body = ErrorBody),
    )
)]
pub async fn views_stream(
    State(state): State<QueryState>,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let names: Vec<String> = match &params.views {
        Some(list) => list
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect(),
        None => state
            .plan
            .views
            .iter()
            .map(|spec| spec.name.clone())
            .collect(),
    };
    if names.is_empty() {
        return Err(ApiError::BadRequest(
            "`views` names no view; leave it out to follow every view".into(),
        ));
    }
    let views = names
        .into_iter()
        .map(|name| followed(&state, name))
        .collect::<Result<_, _>>()?;
    follow(state, Subject { views, key: None })
}

fn followed(state: &QueryState, view: String) -> Result<Followed, ApiError> {
    let spec = find_view(state, &view)?;
    Ok(Followed {
        windowed: spec.is_windowed(),
        sources: spec.sources.clone(),
        view,
    })
}

/// A key's windows or value as they change, starting with the current ones.
#[utoipa::path(
    get,
    path = "/views/{view}/{key}/stream",
    tag = "views",
    params(
        ("view" = String, Path, description = "The view's name"),
        ("key" = String, Path, description = "The key; it need not exist yet"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `snapshot`, then a `change` per committed change",
            content_type = "text/event-stream", body = String),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 503, description = "`--max-streams` streams are open already", body = ErrorBody),
    )
)]
pub async fn key_stream(
    State(state): State<QueryState>,
    Path((view, key)): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    follow_subject(state, view, Some(key))
}

/// Every change of a view, starting with its current keys.
#[utoipa::path(
    get,
    path = "/views/{view}/stream",
    tag = "views",
    params(("view" = String, Path, description = "The view's name")),
    responses(
        (status = 200, description = "Server-Sent Events: an `entry` per key and `ready`, then a `change` per committed change",
            content_type = "text/event-stream", body = String),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 503, description = "`--max-streams` streams are open already", body = ErrorBody),
    )
)]
pub async fn view_stream(
    State(state): State<QueryState>,
    Path(view): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    follow_subject(state, view, None)
}

/// Follows `key` of `view`, or all of it, once the view is known to exist.
fn follow_subject(
    state: QueryState,
    view: String,
    key: Option<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let views = vec![followed(&state, view)?];
    follow(state, Subject { views, key })
}

/// The stream's state between events.
struct Follower {
    state: QueryState,
    subject: Subject,
    receiver: broadcast::Receiver<Arc<Committed>>,
    /// Commits up to this checkpoint id are in what was sent already.
    sent_up_to: u64,
    queued: VecDeque<Event>,
    /// The stream's place under `--max-streams`, given back when the client goes away.
    _place: OwnedSemaphorePermit,
}

fn follow(
    state: QueryState,
    subject: Subject,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let place = state.admission.stream()?;
    // Subscribed before the snapshot is read, so no commit falls between the two; commits
    // the snapshot already holds are skipped by id.
    let receiver = state.status.changes.subscribe();
    let mut follower = Follower {
        state,
        subject,
        receiver,
        sent_up_to: 0,
        queued: VecDeque::new(),
        _place: place,
    };
    follower.queue_current_state()?;
    let events = stream::unfold(follower, |mut follower| async move {
        loop {
            if let Some(event) = follower.queued.pop_front() {
                return Some((Ok(event), follower));
            }
            match follower.receiver.recv().await {
                Ok(committed) => follower.queue_changes(&committed),
                Err(RecvError::Lagged(_)) => {
                    // The buffer moved on without this client: the current state replaces
                    // the changes it missed.
                    if follower.queue_current_state().is_err() {
                        return None;
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

impl Follower {
    /// Queues the subject's state as of a new snapshot.
    fn queue_current_state(&mut self) -> Result<(), ApiError> {
        let reading = Reading::take(&self.state.db)?;
        let mut sent_up_to = 0;
        for followed in &self.subject.views {
            let freshness = reading.freshness(&followed.sources);
            let id = freshness
                .checkpoint
                .as_ref()
                .map_or(0, |checkpoint| checkpoint.id);
            sent_up_to = id;
            let view = &followed.view;
            match &self.subject.key {
                Some(key) => {
                    let current = if followed.windowed {
                        let windows = reading.state.window_store(view)?.windows(
                            key.as_bytes(),
                            i64::MIN,
                            i64::MAX,
                        )?;
                        let windows: Vec<_> =
                            windows.iter().map(window).collect::<Result<_, _>>()?;
                        json!({ "view": view, "key": key, "windows": windows })
                    } else {
                        let value = reading.state.table_store(view)?.get(key.as_bytes())?;
                        let value = value.map(|json| parse_json(&json)).transpose()?;
                        json!({ "view": view, "key": key, "value": value })
                    };
                    self.queued.push_back(event(
                        "snapshot",
                        id,
                        with_freshness(current, &freshness),
                    ));
                }
                None => {
                    let mut after: Option<Vec<u8>> = None;
                    loop {
                        let range = KeyRange {
                            after: after.as_deref(),
                            ..KeyRange::default()
                        };
                        let times = followed.windowed.then_some((i64::MIN, i64::MAX));
                        let (entries, more) =
                            read_page(&reading, view, &range, times, SNAPSHOT_PAGE)?;
                        for entry in &entries {
                            let mut data = serde_json::to_value(entry)
                                .map_err(|error| ApiError::Internal(error.to_string()))?;
                            data["view"] = json!(view);
                            self.queued.push_back(event("entry", id, data));
                        }
                        after = match entries.last() {
                            Some(entry) if more => Some(entry.key().as_bytes().to_vec()),
                            _ => break,
                        };
                    }
                    self.queued.push_back(event(
                        "ready",
                        id,
                        with_freshness(json!({ "view": view }), &freshness),
                    ));
                }
            }
        }
        // One snapshot: every view's state is of the same checkpoint.
        self.sent_up_to = sent_up_to;
        Ok(())
    }

    /// Queues the changes of a commit that the subject follows.
    fn queue_changes(&mut self, committed: &Committed) {
        let checkpoint = &committed.checkpoint;
        if checkpoint.id <= self.sent_up_to {
            return;
        }
        self.sent_up_to = checkpoint.id;
        for change in &committed.changes {
            let Some(followed) = self.subject.followed(change) else {
                continue;
            };
            let watermark = format_millis(checkpoint.watermark_of(&followed.sources) as i64);
            let mut data = json!({ "view": change.view, "key": change.key });
            match &change.change {
                Change::Window {
                    start,
                    end,
                    is_final,
                    value_json,
                } => {
                    data["window"] = json!({
                        "start": format_millis(*start),
                        "end": format_millis(*end),
                        "value": serde_json::from_slice::<Value>(value_json).unwrap_or(Value::Null),
                        "final": is_final,
                    });
                }
                Change::WindowRemoved { start } => {
                    data["removed"] = json!({ "start": format_millis(*start) });
                }
                Change::Value { value_json } => {
                    data["value"] =
                        serde_json::from_slice::<Value>(value_json).unwrap_or(Value::Null);
                }
                Change::Deleted => data["deleted"] = json!(true),
            }
            data["checkpoint"] = json!(checkpoint.id);
            data["watermark"] = json!(watermark);
            self.queued.push_back(event("change", checkpoint.id, data));
        }
    }
}

fn with_freshness(mut data: Value, freshness: &Freshness) -> Value {
    if let (Some(fields), Ok(Value::Object(fresh))) =
        (data.as_object_mut(), serde_json::to_value(freshness))
    {
        fields.extend(fresh);
    }
    data
}

fn event(name: &str, checkpoint: u64, data: Value) -> Event {
    Event::default()
        .event(name)
        .id(checkpoint.to_string())
        .data(data.to_string())
}
