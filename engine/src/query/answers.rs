//! The API's JSON answers as types: what the handlers return is what `/openapi.json`
//! describes, because both come from these definitions.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::checkpoint::Checkpoint;
use crate::plan::ViewSpec;
use crate::time::format_millis;

/// A time in a query parameter: RFC 3339, or milliseconds since the epoch.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // A parameter's schema: handlers parse the text with `time::parse_timestamp`.
pub enum Timestamp {
    #[schema(format = DateTime)]
    Rfc3339(String),
    EpochMillis(i64),
}

/// `GET /views`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewList {
    /// Every view of the topology.
    pub views: Vec<ViewSpec>,
}

/// How fresh an answer is: the checkpoint its values are the results of.
#[derive(Debug, Serialize, ToSchema)]
pub struct Freshness {
    /// The watermark the values reflect (RFC 3339): the least over the partitions of the
    /// view's source topics that have read a record, as of the checkpoint (the epoch while
    /// none has); null before the first checkpoint.
    #[schema(required = true)]
    pub watermark: Option<String>,
    /// The checkpoint the values are the results of, or null before the first one.
    #[schema(required = true)]
    pub checkpoint: Option<CheckpointInfo>,
}

/// A committed checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointInfo {
    /// Counts the checkpoints of this state directory, from 1.
    pub id: u64,
    /// When it committed (RFC 3339).
    pub committed_at: String,
    /// The least watermark it holds over every partition that has read a record (RFC 3339).
    pub watermark: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Every source partition's next offset: each record before it is in the checkpoint.
    pub offsets: Vec<SourceOffset>,
}

/// Where a source partition stood.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl CheckpointInfo {
    /// The answer's form of a checkpoint.
    pub fn of(checkpoint: &Checkpoint) -> Self {
        CheckpointInfo {
            id: checkpoint.id,
            committed_at: format_millis(checkpoint.committed_at),
            watermark: format_millis(checkpoint.watermark as i64),
            duration_ms: checkpoint.duration_ms,
            offsets: checkpoint
                .positions
                .iter()
                .map(|position| SourceOffset {
                    topic: position.topic.clone(),
                    partition: position.partition,
                    offset: position.offset,
                })
                .collect(),
        }
    }
}

impl Freshness {
    /// The freshness of the values, read with `checkpoint`, of a view that reads `sources`.
    pub fn of(checkpoint: Option<&Checkpoint>, sources: &[String]) -> Self {
        Freshness {
            watermark: checkpoint
                .map(|checkpoint| format_millis(checkpoint.watermark_of(sources) as i64)),
            checkpoint: checkpoint.map(CheckpointInfo::of),
        }
    }
}

/// One window of a key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Window {
    /// The window's start (RFC 3339), inclusive.
    pub start: String,
    /// The window's end (RFC 3339), exclusive.
    pub end: String,
    /// The aggregate, as the view's value shape says.
    pub value: Value,
    /// Whether the watermark has passed the window: the value will not change again
    /// (unless an allowed-lateness correction comes).
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// `GET /views/{view}/{key}`: a key's windows or its value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum KeyAnswer {
    /// A window view's windows of the key.
    Windows(KeyWindows),
    /// A table view's value of the key.
    Value(KeyValue),
}

/// A window view's windows of one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyWindows {
    pub view: String,
    pub key: String,
    /// Ordered by start.
    pub windows: Vec<Window>,
    #[serde(flatten)]
    pub freshness: Freshness,
}

/// A table view's value of one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyValue {
    pub view: String,
    pub key: String,
    pub value: Value,
    #[serde(flatten)]
    pub freshness: Freshness,
}

/// `GET /views/{view}`: one page of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub view: String,
    /// In key order.
    pub entries: Vec<PageEntry>,
    /// The key to pass as `after` for the next page, or null on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
    #[serde(flatten)]
    pub freshness: Freshness,
}

/// A key of a page, with its windows (a window view) or its value (a table view).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PageEntry {
    /// A window view's key.
    Windows { key: String, windows: Vec<Window> },
    /// A table view's key.
    Value { key: String, value: Value },
}

impl PageEntry {
    /// The entry's key.
    pub fn key(&self) -> &str {
        match self {
            PageEntry::Windows { key, .. } | PageEntry::Value { key, .. } => key,
        }
    }
}

/// `GET /status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    /// Every source partition, in `(topic, partition)` order.
    pub partitions: Vec<PartitionStatus>,
    /// The least watermark over the partitions that have read a record and are not idle
    /// (over all of them when every one is idle), RFC 3339; null before any has read one.
    #[schema(required = true)]
    pub watermark: Option<String>,
    /// The last committed checkpoint, which the views reflect.
    #[schema(required = true)]
    pub checkpoint: Option<CheckpointInfo>,
    /// Records read and decoded.
    pub processed: u64,
    /// Records handed to the producer.
    pub emitted: u64,
    /// Input records too late for the windows of one or more views, each counted once
    /// (and written once to its late topic); derived records a window found late count too.
    pub late: u64,
    /// Late records per view and source partition: a record late for three views counts
    /// once in each.
    pub late_by: Vec<LateCount>,
    /// Records sent to a dead-letter topic.
    pub dlq: u64,
    /// Output records the broker refused.
    pub delivery_failures: u64,
    /// Window updates held back by `emit_final` on a table.
    pub suppressed: u64,
    /// Output transactions (exactly-once output only).
    pub transactions: Transactions,
    /// RocksDB's estimate of each store's size.
    pub state_bytes: StateBytes,
    /// Where the start-up is (`running` once caught up).
    pub phase: crate::readiness::Phase,
    /// Each phase of the start-up, and when it began.
    pub phases: Vec<PhaseEntered>,
    /// Who may use the API, and how much of it at once.
    pub http: HttpAdmission,
    /// What the engine does with source offsets the log no longer holds, and every
    /// partition this run moved past such a gap.
    pub missing_offsets: MissingOffsets,
    /// The error that stopped the engine, if one did.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// A source partition's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// The next offset the engine will read.
    pub offset: i64,
    /// The offset the last checkpoint holds.
    pub checkpointed_offset: i64,
    /// The broker's high watermark as last fetched, or -1 before the first fetch.
    pub high_watermark: i64,
    /// Records between the offset and the high watermark, or null before the first fetch.
    #[schema(required = true)]
    pub lag: Option<i64>,
    /// Records this run read and decoded from the partition.
    pub processed: u64,
    /// Output records this run derived from them.
    pub emitted: u64,
    /// Records of the partition this run dead-lettered.
    pub failed: u64,
    /// The partition's watermark (RFC 3339), or null before it has read a record.
    #[schema(required = true)]
    pub watermark: Option<String>,
    /// Silent and caught up past its source's idle timeout: it holds back neither the
    /// windows (it follows the source's other partitions) nor the status `watermark`.
    pub idle: bool,
}

/// Late records of one view and partition: the input records whose windows in the view
/// had closed when they were read.
#[derive(Debug, Serialize, ToSchema)]
pub struct LateCount {
    /// The view (an aggregation that is not materialized is named as `describe` shows its
    /// node, `window #n`).
    pub view: String,
    pub topic: String,
    pub partition: i32,
    pub count: u64,
}

/// Output transaction counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transactions {
    pub committed: u64,
    pub aborted: u64,
    /// Transactions written again from the outbox after a restart.
    pub resent: u64,
}

/// The HTTP server's admission: what needs the API token, its limits, and what is open
/// and what was refused so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpAdmission {
    /// What needs the API token: `none`, `writes` or `all` (every route but the probes and
    /// the dashboard's files).
    pub token_required_for: String,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub open_connections: usize,
    /// Seconds a silent connection is kept.
    pub idle_timeout_secs: u64,
    /// Connections answered 503 because `max_connections` were open.
    pub refused_connections: u64,
    pub max_streams: usize,
    pub open_streams: usize,
    /// Live streams answered 503 because `max_streams` were open.
    pub refused_streams: u64,
    /// Requests answered 413.
    pub refused_bodies: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
}

/// `--on-missing-offsets` and what it did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingOffsets {
    pub policy: crate::kafka::missing_offsets::OnMissingOffsets,
    pub moved: Vec<crate::kafka::missing_offsets::OffsetReset>,
}

/// State size in bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateBytes {
    pub total: u64,
    pub stores: BTreeMap<String, u64>,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `failed` once a fatal error stopped the engine.
    pub status: String,
    /// The fatal error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`; `starting` until the engine has started (see `phase`); `unready` while
    /// something holds it back (it still runs, and views answer with what the last
    /// checkpoint holds); `failed` once a fatal error stopped it.
    pub status: String,
    /// Where the start-up is.
    pub phase: crate::readiness::Phase,
    /// What holds the engine back, each with a reason for people.
    pub holds: Vec<ReadyHold>,
    /// The fatal error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A phase of the start-up, and when it began.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseEntered {
    pub phase: crate::readiness::Phase,
    /// RFC 3339.
    pub since: String,
}

/// The answer to a read while the engine starts: 503, with `Retry-After`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Starting {
    /// What the engine is doing, and that the read should be tried again.
    pub error: String,
    /// 503.
    pub status: u16,
    /// Where the start-up is.
    pub phase: crate::readiness::Phase,
}

/// One reason the engine is not ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyHold {
    /// What holds it back.
    pub hold: crate::readiness::Hold,
    /// Why, for people.
    pub reason: String,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to do instead.
    pub error: String,
    /// The HTTP status code.
    pub status: u16,
}
