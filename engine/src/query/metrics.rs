//! `/metrics`: the engine's counters and gauges in the Prometheus text format (OpenMetrics
//! 1.0, which Prometheus scrapes natively), built from the live status at each scrape.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{ApiError, QueryState};
use crate::status::EngineStatus;

/// The content type of OpenMetrics text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LateLabels {
    view: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route as declared (`/views/{view}/{key}`), so that keys make no new series.
    route: String,
    status: u16,
}

/// How long the API takes to answer, per route: kept across scrapes.
#[derive(Clone)]
pub struct HttpMetrics {
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        // From 100 µs to about 3.3 s, doubling.
        fn histogram() -> Histogram {
            Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
        }
        HttpMetrics {
            latency: Family::new_with_constructor(histogram),
        }
    }
}

/// Middleware that times every request into [`HttpMetrics`].
pub async fn time_requests(
    State(state): State<QueryState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state
        .http
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A counter that shows `value`.
fn counter(value: u64) -> Counter {
    let counter = Counter::default();
    counter.inc_by(value);
    counter
}

/// A gauge that shows `value`.
fn gauge(value: i64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(value);
    gauge
}

/// The wall clock in epoch milliseconds (0 for a clock set before 1970).
fn wall_clock_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Every metric of the engine, as one scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "engine",
    responses((status = 200, description = "OpenMetrics 1.0 text, which Prometheus scrapes",
        body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"))
)]
pub async fn metrics(State(state): State<QueryState>) -> Result<Response, ApiError> {
    let registry = registry(&state);
    let mut text = String::new();
    encode(&mut text, &registry)
        .map_err(|error| ApiError::Internal(format!("cannot encode the metrics: {error}")))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

fn registry(state: &QueryState) -> Registry {
    let status = &state.status;
    let mut registry = Registry::with_prefix("sluice");
    let totals = [
        (
            "records_processed",
            "Records read from sources and decoded",
            &status.processed,
        ),
        (
            "records_emitted",
            "Records handed to the producer for output topics",
            &status.emitted,
        ),
        (
            "dead_lettered",
            "Records sent to a dead-letter topic",
            &status.dead_lettered,
        ),
        (
            "delivery_failures",
            "Output records the broker did not acknowledge",
            &status.delivery_failures,
        ),
    ];
    for (name, help, value) in totals {
        registry.register(name, help, counter(EngineStatus::count(value)));
    }

    let late = Family::<LateLabels, Counter>::default();
    for ((view, topic, partition), count) in status.late_by() {
        late.get_or_create(&LateLabels {
            view,
            topic,
            partition,
        })
        .inc_by(count);
    }
    registry.register(
        "late_records",
        "Records that arrived after their window closed, per aggregation and partition",
        late,
    );

    let transactions = Family::<OutcomeLabels, Counter>::default();
    for (outcome, value) in [
        ("committed", &status.transactions_committed),
        ("aborted", &status.transactions_aborted),
    ] {
        transactions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc_by(EngineStatus::count(value));
    }
    registry.register(
        "transactions",
        "Output transactions (exactly-once output only)",
        transactions,
    );

    let admission = &state.admission;
    let refused = Family::<ReasonLabels, Counter>::default();
    for (reason, value) in [
        ("connections", &admission.refused_connections),
        ("streams", &admission.refused_streams),
        ("body_size", &admission.refused_bodies),
        ("unauthorized", &admission.unauthorized),
    ] {
        refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc_by(EngineStatus::count(value));
    }
    registry.register(
        "http_refused",
        "Requests and connections the HTTP server refused, per reason (a limit reached, or no valid token)",
        refused,
    );
    let open = |count: usize| gauge(i64::try_from(count).unwrap_or(i64::MAX));
    registry.register(
        "http_open_connections",
        "Open HTTP connections",
        open(admission.open_connections()),
    );
    registry.register(
        "http_open_streams",
        "Open live streams (Server-Sent Events)",
        open(admission.open_streams()),
    );

    let records_out = Family::<TopicLabels, Counter>::default();
    for (topic, count) in status.records_out() {
        records_out
            .get_or_create(&TopicLabels { topic })
            .inc_by(count);
    }
    registry.register(
        "records_out",
        "Records handed to the producer, per output topic",
        records_out,
    );

    let delivered = Family::<PartitionLabels, Counter>::default();
    for (topic, partition, count) in status.records_delivered() {
        delivered
            .get_or_create(&PartitionLabels { topic, partition })
            .inc_by(count);
    }
    registry.register(
        "records_delivered",
        "Output records the broker acknowledged, per topic and partition (dead letters and late records included)",
        delivered,
    );

    let records_in = Family::<PartitionLabels, Counter>::default();
    let offsets = Family::<PartitionLabels, Gauge>::default();
    let lag = Family::<PartitionLabels, Gauge>::default();
    let watermarks = Family::<PartitionLabels, Gauge>::default();
    for (topic, partition, progress) in status.partitions() {
        let labels = PartitionLabels { topic, partition };
        records_in
            .get_or_create(&labels)
            .inc_by(progress.records_in);
        offsets.get_or_create(&labels).set(progress.offset);
        // Before the first fetch the broker's end is unknown, and so is the lag.
        if progress.high_watermark >= 0 {
            lag.get_or_create(&labels)
                .set((progress.high_watermark - progress.offset).max(0));
        }
        if let Some(watermark) = progress.watermark {
            watermarks
                .get_or_create(&labels)
                .set(i64::try_from(watermark).unwrap_or(i64::MAX));
        }
    }
    registry.register(
        "records_in",
        "Records read and decoded, per source partition",
        records_in,
    );
    registry.register(
        "partition_offset",
        "The next offset the engine will read, per source partition",
        offsets,
    );
    registry.register(
        "partition_watermark_milliseconds",
        "The partition's watermark (greatest event time read minus the grace), once it has read a record",
        watermarks,
    );
    registry.register(
        "consumer_lag",
        "Records between the engine's offset and the broker's end, per source partition",
        lag,
    );

    if let Some(watermark) = status.watermark() {
        registry.register(
            "watermark_milliseconds",
            "The least watermark over the source partitions that have read a record, in epoch milliseconds",
            gauge(watermark),
        );
        registry.register(
            "watermark_lag_milliseconds",
            "Wall time minus the watermark: how far event time trails the clock",
            gauge(wall_clock_millis().saturating_sub(watermark)),
        );
    }
    if let Some(checkpoint) = status.checkpoint() {
        registry.register(
            "checkpoint_id",
            "The id of the last completed checkpoint",
            gauge(i64::try_from(checkpoint.id).unwrap_or(i64::MAX)),
        );
        registry.register(
            "checkpoint_duration_milliseconds",
            "How long the last completed checkpoint took, from its request to its commit",
            gauge(i64::try_from(checkpoint.duration_ms).unwrap_or(i64::MAX)),
        );
    }
    registry.register(
        "checkpoint_duration_seconds",
        "How long each checkpoint this run committed took, from its request to its commit",
        status.checkpoint_seconds.0.clone(),
    );
    registry.register(
        "window_close_latency_seconds",
        "Wall time from the watermark reaching a window's close point to the commit of the \
         checkpoint that makes its final value visible",
        status.window_close.histogram.clone(),
    );

    let sizes = Family::<StoreLabels, Gauge>::default();
    let mut stores = state.plan.stores();
    stores.push(sluice_state::db::META_STORE.to_string());
    for store in stores {
        // A store that cannot be measured is left out rather than failing the scrape.
        if let Ok(size) = state.db.store_size(&store) {
            sizes
                .get_or_create(&StoreLabels { store })
                .set(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }
    registry.register(
        "state_bytes",
        "RocksDB's estimate of the size of each store (views and operator state)",
        sizes,
    );
    registry.register(
        "http_request_duration_seconds",
        "How long the query API took to answer, per method, route and status",
        state.http.latency.clone(),
    );
    registry.register(
        "failed",
        "1 once the engine has stopped on an error (see /status)",
        gauge(i64::from(status.fatal().is_some())),
    );
    registry
}
