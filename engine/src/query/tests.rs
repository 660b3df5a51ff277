//! In-process tests of every route, including the errors.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sluice_state::{StateDb, WindowEntry};
use tower::ServiceExt;

use super::{QueryState, router};
use crate::checkpoint::{Checkpoint, SourcePosition};
use crate::plan::{Plan, ViewKind, ViewSpec};
use crate::readiness::Hold;
use crate::status::EngineStatus;

pub(super) const MINUTE: i64 = 60_000;

/// The windows of the `demand` view: `(item, start)`.
const DEMAND: [(&str, i64); 5] = [
    ("burger", 0),
    ("burger", MINUTE),
    ("burrito", 2 * MINUTE),
    ("fries", 0),
    ("juice", 3 * MINUTE),
];
/// The keys of the `catalog` view.
const CATALOG: [&str; 5] = ["burger", "burrito", "fries", "juice", "tea"];

pub(super) fn fixture() -> (tempfile::TempDir, QueryState) {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path(), ["counts", "totals", "demand", "catalog"]).unwrap();
    let windows = db.window_store("counts").unwrap();
    for (index, start) in [0, MINUTE, 2 * MINUTE].into_iter().enumerate() {
        let entry = WindowEntry {
            start,
            end: start + MINUTE,
            is_final: index < 2,
            value_json: format!("{{\"count\":{index}}}").into_bytes(),
        };
        windows.put(b"all", &entry).unwrap();
    }
    let totals = db.table_store("totals").unwrap();
    for key in ["a", "b", "c"] {
        totals
            .put(key.as_bytes(), format!("{{\"key\":\"{key}\"}}").as_bytes())
            .unwrap();
    }
    let demand = db.window_store("demand").unwrap();
    for (key, start) in DEMAND {
        let entry = WindowEntry {
            start,
            end: start + MINUTE,
            is_final: false,
            value_json: format!("{{\"start\":{start}}}").into_bytes(),
        };
        demand.put(key.as_bytes(), &entry).unwrap();
    }
    let catalog = db.table_store("catalog").unwrap();
    for key in CATALOG {
        catalog.put(key.as_bytes(), b"{}").unwrap();
    }
    let mut plan = Plan::default();
    plan.views.push(ViewSpec {
        name: "counts".into(),
        kind: ViewKind::Tumbling { size_ms: MINUTE },
        key: "all".into(),
        value: json!({"count": "number"}),
        sources: vec!["orders".into()],
    });
    plan.views.push(ViewSpec {
        name: "totals".into(),
        kind: ViewKind::Table,
        key: "id".into(),
        value: json!({}),
        sources: vec!["orders".into()],
    });
    plan.views.push(ViewSpec {
        name: "demand".into(),
        kind: ViewKind::Tumbling { size_ms: MINUTE },
        key: "item_id".into(),
        value: json!({}),
        sources: vec!["orders".into()],
    });
    plan.views.push(ViewSpec {
        name: "catalog".into(),
        kind: ViewKind::Table,
        key: "product_id".into(),
        value: json!({}),
        sources: vec!["orders".into()],
    });
    let status = Arc::new(EngineStatus::new());
    status.register_partition("orders", 0);
    status.set_offset("orders", 0, 7);
    status.set_high_watermark("orders", 0, 10);
    status.set_partition_watermark("orders", 0, Some(3 * MINUTE as u64), false);
    // The views reflect the last checkpoint, which is behind the live progress.
    let checkpoint = Checkpoint {
        id: 4,
        epoch: 5,
        is_final: false,
        positions: vec![SourcePosition {
            topic: "orders".into(),
            partition: 0,
            offset: 6,
            max_event_time: Some(2 * MINUTE + 5_000),
            watermark: 2 * MINUTE as u64,
            unread: false,
        }],
        watermark: 2 * MINUTE as u64,
        committed_at: 0,
        duration_ms: 3,
        fingerprint: "f".into(),
    };
    // A checkpoint's record lands in the same batch as its views; answers read it there.
    db.meta()
        .unwrap()
        .put(Checkpoint::KEY, &serde_json::to_vec(&checkpoint).unwrap())
        .unwrap();
    status.set_checkpoint(checkpoint);
    let state = QueryState::new(Arc::new(plan), Arc::new(db), status);
    (dir, state)
}

pub(super) async fn get(state: &QueryState, uri: &str) -> (StatusCode, Value) {
    let response = router(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn lists_views_with_their_shapes() {
    let (_dir, state) = fixture();
    let (status, body) = get(&state, "/views").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["views"][0],
        json!({"name": "counts", "kind": "tumbling", "size_ms": 60000, "key": "all",
            "value": {"count": "number"}, "sources": ["orders"]})
    );
    assert_eq!(body["views"][1]["kind"], "table");
}

#[tokio::test]
async fn window_lookups_narrow_by_time_and_say_how_fresh_they_are() {
    let (_dir, state) = fixture();
    let (status, body) = get(&state, "/views/counts/all").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["windows"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["windows"][0],
        json!({"start": "1970-01-01T00:00:00.000Z", "end": "1970-01-01T00:01:00.000Z", "value": {"count": 0}, "final": true})
    );
    assert_eq!(body["watermark"], "1970-01-01T00:02:00.000Z");
    assert_eq!(body["checkpoint"]["id"], 4);
    assert_eq!(
        body["checkpoint"]["offsets"],
        json!([{"topic": "orders", "partition": 0, "offset": 6}])
    );
    let (_, narrowed) = get(
        &state,
        "/views/counts/all?from=1970-01-01T00:01:30Z&to=120001",
    )
    .await;
    let starts: Vec<&Value> = narrowed["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["start"])
        .collect();
    assert_eq!(
        starts,
        vec!["1970-01-01T00:01:00.000Z", "1970-01-01T00:02:00.000Z"]
    );
}

#[tokio::test]
async fn table_lookups_and_pages() {
    let (_dir, state) = fixture();
    let (status, body) = get(&state, "/views/totals/b").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"], json!({"key": "b"}));
    let (_, first) = get(&state, "/views/totals?limit=2").await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    assert_eq!(first["next"], "b");
    let (_, rest) = get(&state, "/views/totals?limit=2&after=b").await;
    assert_eq!(
        rest["entries"],
        json!([{"key": "c", "value": {"key": "c"}}])
    );
    assert_eq!(rest["next"], Value::Null);
    let (_, windows) = get(&state, "/views/counts").await;
    assert_eq!(windows["entries"][0]["key"], "all");
}

/// The keys of a scan's answer, following `next` from page to page.
async fn scanned_keys(state: &QueryState, uri: &str) -> Vec<(String, Vec<i64>)> {
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page_uri = match &next {
            Some(after) => format!("{uri}&after={after}"),
            None => uri.to_string(),
        };
        let (status, body) = get(state, &page_uri).await;
        assert_eq!(status, StatusCode::OK, "{page_uri}: {body}");
        for entry in body["entries"].as_array().unwrap() {
            let starts = entry["windows"]
                .as_array()
                .map(|windows| {
                    windows
                        .iter()
                        .map(|w| w["value"]["start"].as_i64().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            found.push((entry["key"].as_str().unwrap().to_string(), starts));
        }
        match body["next"].as_str() {
            Some(after) => next = Some(after.to_string()),
            None => return found,
        }
    }
}

#[tokio::test]
async fn scans_take_key_ranges_prefixes_and_time_ranges_across_keys() {
    let (_dir, state) = fixture();
    // Every combination, one key per page so that the cursor is exercised, against the
    // same selection made directly from the fixture's data.
    let prefixes = [None, Some("bur"), Some("f"), Some("x")];
    let key_ranges = [
        (None, None),
        (Some("burrito"), Some("juice")),
        (Some("c"), None),
    ];
    let time_ranges = [
        (None, None),
        (Some(MINUTE), Some(3 * MINUTE)),
        (Some(MINUTE + 1), None),
    ];
    for prefix in prefixes {
        for (key_from, key_to) in key_ranges {
            let keeps = |key: &str| {
                prefix.is_none_or(|p| key.starts_with(p))
                    && key_from.is_none_or(|from| key >= from)
                    && key_to.is_none_or(|to| key < to)
            };
            let mut query = String::from("?limit=1");
            for (name, value) in [
                ("prefix", prefix),
                ("key_from", key_from),
                ("key_to", key_to),
            ] {
                if let Some(value) = value {
                    query.push_str(&format!("&{name}={value}"));
                }
            }
            let expected: Vec<(String, Vec<i64>)> = CATALOG
                .iter()
                .filter(|key| keeps(key))
                .map(|key| (key.to_string(), vec![]))
                .collect();
            assert_eq!(
                scanned_keys(&state, &format!("/views/catalog{query}")).await,
                expected,
                "{query}"
            );
            for (from, to) in time_ranges {
                let mut windowed = query.clone();
                for (name, value) in [("from", from), ("to", to)] {
                    if let Some(value) = value {
                        windowed.push_str(&format!("&{name}={value}"));
                    }
                }
                let mut expected: Vec<(String, Vec<i64>)> = Vec::new();
                for (key, start) in DEMAND {
                    let overlaps = from.is_none_or(|from| start + MINUTE > from)
                        && to.is_none_or(|to| start < to);
                    if !keeps(key) || !overlaps {
                        continue;
                    }
                    match expected.last_mut() {
                        Some((last, starts)) if last == key => starts.push(start),
                        _ => expected.push((key.to_string(), vec![start])),
                    }
                }
                assert_eq!(
                    scanned_keys(&state, &format!("/views/demand{windowed}")).await,
                    expected,
                    "{windowed}"
                );
            }
        }
    }
}

#[tokio::test]
async fn answers_carry_the_checkpoint_their_snapshot_holds() {
    let (_dir, state) = fixture();
    // A later checkpoint lands: its views and its record in one batch. Answers read both
    // from one snapshot, so they report the new checkpoint with the new values, even
    // before the engine's live status hears of it.
    let mut checkpoint = state.status.checkpoint().unwrap();
    checkpoint.id = 5;
    checkpoint.positions[0].offset = 7;
    checkpoint.positions[0].max_event_time = Some(3 * MINUTE + 5_000);
    checkpoint.positions[0].watermark = 3 * MINUTE as u64;
    // Another source of the topology, behind this one, with a partition still empty: it
    // holds back the checkpoint's watermark, not that of views it does not feed.
    for (partition, max_event_time) in [(0, Some(MINUTE)), (1, None)] {
        checkpoint.positions.push(SourcePosition {
            topic: "products".into(),
            partition,
            offset: 1,
            max_event_time,
            watermark: max_event_time.map_or(0, |time| time as u64),
            unread: false,
        });
    }
    checkpoint.watermark = MINUTE as u64;
    let mut batch = sluice_state::WriteBatch::default();
    state
        .db
        .table_store("totals")
        .unwrap()
        .put_into(&mut batch, b"b", b"{\"key\":\"b2\"}");
    state.db.meta().unwrap().put_into(
        &mut batch,
        Checkpoint::KEY,
        &serde_json::to_vec(&checkpoint).unwrap(),
    );
    state.db.write(batch).unwrap();
    let (_, body) = get(&state, "/views/totals/b").await;
    assert_eq!(body["value"], json!({"key": "b2"}));
    assert_eq!(body["checkpoint"]["id"], 5);
    assert_eq!(body["watermark"], "1970-01-01T00:03:00.000Z");
    assert_eq!(body["checkpoint"]["watermark"], "1970-01-01T00:01:00.000Z");
    assert_eq!(body["checkpoint"]["offsets"][0]["offset"], 7);
    let (_, page) = get(&state, "/views/totals").await;
    assert_eq!(page["checkpoint"]["id"], 5);
    assert_eq!(state.status.checkpoint().unwrap().id, 4);
}

#[tokio::test]
async fn errors_are_json_with_a_clear_message() {
    let (_dir, state) = fixture();
    for (uri, code, needle) in [
        ("/views/nope", StatusCode::NOT_FOUND, "no view named `nope`"),
        ("/views/nope/k", StatusCode::NOT_FOUND, "no view named"),
        ("/views/totals/zzz", StatusCode::NOT_FOUND, "no key `zzz`"),
        ("/views/counts/other", StatusCode::NOT_FOUND, "no windows"),
        (
            "/views/counts/all?from=yesterday",
            StatusCode::BAD_REQUEST,
            "parameter `from`",
        ),
        (
            "/views/counts/all?from=10&to=5",
            StatusCode::BAD_REQUEST,
            "before",
        ),
        (
            "/views/counts/all?colour=red",
            StatusCode::BAD_REQUEST,
            "unknown parameter `colour`",
        ),
        ("/views/totals?limit=0", StatusCode::BAD_REQUEST, "limit"),
        ("/views/totals?limit=many", StatusCode::BAD_REQUEST, "limit"),
        (
            "/views/totals?key_from=b&key_to=a",
            StatusCode::BAD_REQUEST,
            "`key_from` must sort before `key_to`",
        ),
        (
            "/views/totals?from=0",
            StatusCode::BAD_REQUEST,
            "unknown parameter `from`",
        ),
        (
            "/views/demand?from=5&to=5",
            StatusCode::BAD_REQUEST,
            "before",
        ),
        ("/nowhere", StatusCode::NOT_FOUND, "no such route"),
    ] {
        let (status, body) = get(&state, uri).await;
        assert_eq!(status, code, "{uri}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{uri}: {body}"
        );
        assert_eq!(body["status"], code.as_u16());
    }
}

#[tokio::test]
async fn status_reports_lag_and_health() {
    let (_dir, state) = fixture();
    // A partition that has read nothing yet has no watermark, and holds back none; nor
    // does an idle one, however far behind.
    state.status.register_partition("products", 0);
    state.status.set_offset("products", 0, 0);
    state.status.register_partition("products", 1);
    state
        .status
        .set_partition_watermark("products", 1, Some(MINUTE as u64), true);
    let (status, body) = get(&state, "/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["partitions"],
        json!([{"topic": "orders", "partition": 0, "offset": 7, "checkpointed_offset": 6,
                "high_watermark": 10, "lag": 3, "processed": 0, "emitted": 0, "failed": 0,
                "watermark": "1970-01-01T00:03:00.000Z", "idle": false},
               {"topic": "products", "partition": 0, "offset": 0, "checkpointed_offset": 0,
                "high_watermark": -1, "lag": null, "processed": 0, "emitted": 0, "failed": 0,
                "watermark": null, "idle": false},
               {"topic": "products", "partition": 1, "offset": 0, "checkpointed_offset": 0,
                "high_watermark": -1, "lag": null, "processed": 0, "emitted": 0, "failed": 0,
                "watermark": "1970-01-01T00:01:00.000Z", "idle": true}])
    );
    assert_eq!(body["watermark"], "1970-01-01T00:03:00.000Z");
    assert_eq!(body["checkpoint"]["watermark"], "1970-01-01T00:02:00.000Z");
    // Both views hold data, so both have a size, and the total is their sum.
    let sizes = &body["state_bytes"]["stores"];
    let counts = sizes["counts"].as_u64().unwrap();
    let totals = sizes["totals"].as_u64().unwrap();
    assert!(counts > 0 && totals > 0, "{sizes}");
    assert!(body["state_bytes"]["total"].as_u64().unwrap() >= counts + totals);
    assert_eq!(body["late"], 0);
    let (health, _) = get(&state, "/healthz").await;
    assert_eq!(health, StatusCode::OK);
    let (ready, body) = get(&state, "/readyz").await;
    assert_eq!(ready, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "phase": "running", "holds": []})
    );
    // A broker away: not ready, but alive.
    state
        .status
        .readiness
        .hold(Hold::Brokers, "no broker answered for 12 s");
    let (ready, body) = get(&state, "/readyz").await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body,
        json!({"status": "unready", "phase": "running",
               "holds": [{"hold": "brokers", "reason": "no broker answered for 12 s"}]})
    );
    assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK);
    state.status.readiness.release(Hold::Brokers);
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
    state.status.set_fatal("disk full");
    let (health, body) = get(&state, "/healthz").await;
    assert_eq!(health, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "disk full");
    let (ready, body) = get(&state, "/readyz").await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"], "disk full");
}

#[tokio::test]
async fn metrics_are_prometheus_text_of_the_live_status() {
    let (_dir, state) = fixture();
    EngineStatus::add(&state.status.processed, 42);
    state.status.count_in("orders", 0, 5);
    state.status.count_in("orders", 0, 2);
    state.status.count_out("inventory-events", 9);
    for partition in [1, 1, 0] {
        state.status.count_delivered("inventory-events", partition);
    }
    // Two windows closed in epoch 4, which the fixture's checkpoint (epoch 5) takes, and one
    // in epoch 5, which it does not.
    let reached = std::time::Instant::now();
    state.status.window_close.closed(4, reached, 2);
    state.status.window_close.closed(5, reached, 1);
    // A committed checkpoint of 3 ms lands in the histogram's 4 ms bucket and above.
    if let Some(checkpoint) = state.status.checkpoint() {
        state.status.checkpoint_committed(checkpoint);
    }
    // Two answered requests and one refused, timed by route rather than by key.
    get(&state, "/views/counts/all").await;
    get(&state, "/views/counts/other").await;
    get(&state, "/views/counts/all?from=nonsense").await;
    state.status.count_late("window #3", "orders", 0);
    state.status.count_late("window #3", "orders", 0);
    let response = router(state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The fixture's partition is at offset 7 of 10, its watermark at 3 minutes.
    for expected in [
        "sluice_records_processed_total 42",
        "sluice_records_in_total{topic=\"orders\",partition=\"0\"} 7",
        "sluice_records_out_total{topic=\"inventory-events\"} 9",
        "sluice_records_delivered_total{topic=\"inventory-events\",partition=\"0\"} 1",
        "sluice_records_delivered_total{topic=\"inventory-events\",partition=\"1\"} 2",
        "sluice_late_records_total{view=\"window #3\",topic=\"orders\",partition=\"0\"} 2",
        "sluice_partition_offset{topic=\"orders\",partition=\"0\"} 7",
        "sluice_consumer_lag{topic=\"orders\",partition=\"0\"} 3",
        "sluice_partition_watermark_milliseconds{topic=\"orders\",partition=\"0\"} 180000",
        "sluice_watermark_milliseconds 180000",
        "sluice_checkpoint_id 4",
        "sluice_checkpoint_duration_milliseconds 3",
        "sluice_failed 0",
        "sluice_checkpoint_duration_seconds_count 1",
        "sluice_checkpoint_duration_seconds_bucket{le=\"0.002\"} 0",
        "sluice_checkpoint_duration_seconds_bucket{le=\"0.004\"} 1",
        "sluice_window_close_latency_seconds_count 2",
        "sluice_http_request_duration_seconds_count{method=\"GET\",route=\"/views/{view}/{key}\",status=\"200\"} 1",
        "sluice_http_request_duration_seconds_count{method=\"GET\",route=\"/views/{view}/{key}\",status=\"404\"} 1",
        "sluice_http_request_duration_seconds_count{method=\"GET\",route=\"/views/{view}/{key}\",status=\"400\"} 1",
    ] {
        assert!(lines.contains(&expected), "no `{expected}` in\n{text}");
    }
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("sluice_state_bytes{store=\"counts\"}")),
        "{text}"
    );
    assert_eq!(lines.last(), Some(&"# EOF"));
}

#[tokio::test]
async fn the_topology_is_served_as_describe_prints_it() {
    let (_dir, state) = fixture();
    let text_of = |uri: &'static str| {
        let state = state.clone();
        async move {
            let response = router(state)
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (
                status,
                content_type,
                String::from_utf8(bytes.to_vec()).unwrap(),
            )
        }
    };
    let (status, content_type, text) = text_of("/topology").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(text, crate::plan::describe(&state.plan));
    assert!(text.contains("counts"), "{text}");
    let (status, content_type, dot) = text_of("/topology?format=dot").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/vnd.graphviz"));
    assert_eq!(dot, crate::plan::to_dot(&state.plan));
    let (status, body) = get(&state, "/topology?format=json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["views"][0]["name"], "counts");
    let (status, body) = get(&state, "/topology?format=svg").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("format"), "{body}");
    let (status, _) = get(&state, "/topology?fromat=dot").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_it_serves() {
    let (_dir, state) = fixture();
    let (status, document) = get(&state, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "/",
            "/assets/chart.umd.min.js",
            "/assets/dashboard.js",
            "/events/{topic}",
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/readyz",
            "/status",
            "/stream",
            "/topology",
            "/views",
            "/views/{view}",
            "/views/{view}/stream",
            "/views/{view}/{key}",
            "/views/{view}/{key}/stream"
        ]
    );
    // Every documented route answers (the fallback would say "no such route"), with a
    // status the document lists for it.
    for (path, item) in paths.iter().filter(|(_, item)| item.get("get").is_some()) {
        let uri = path.replace("{view}", "counts").replace("{key}", "all");
        let response = router(state.clone())
            .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let code = response.status().as_u16().to_string();
        assert!(
            item["get"]["responses"].get(&code).is_some(),
            "{path}: {code}"
        );
        assert_ne!(code, "404", "{path}");
    }
    // The schemas carry the fields the answers have.
    let schemas = &document["components"]["schemas"];
    for (schema, fields) in [
        ("Window", vec!["start", "end", "value", "final"]),
        ("Freshness", vec!["watermark", "checkpoint"]),
        ("ErrorBody", vec!["error", "status"]),
    ] {
        let required: Vec<&str> = schemas[schema]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}: {}", schemas[schema]))
            .iter()
            .map(|field| field.as_str().unwrap())
            .collect();
        for field in fields {
            assert!(required.contains(&field), "{schema} lacks {field}");
        }
    }
    let scan = &paths["/views/{view}"]["get"]["parameters"];
    // The `view` parameter names this topology's views.
    assert_eq!(
        scan[0]["schema"]["enum"],
        json!(["counts", "totals", "demand", "catalog"])
    );
    let names: Vec<&str> = scan
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    for name in [
        "view", "limit", "after", "prefix", "key_from", "key_to", "from", "to",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}
