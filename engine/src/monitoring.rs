//! Monitoring events: the processing reports every engine, and the HTTP event producer,
//! publish to `monitoring-events`, as the product systems' monitoring consumer expects.

use serde::{Deserialize, Serialize};

use crate::time::format_millis;

/// The topic of every processing report.
pub const MONITORING_TOPIC: &str = "monitoring-events";

/// What a component processed, emitted and failed on, for one source partition (or output
/// partition, for a producer) over one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessingReport {
    /// Always `ProcessingReport`.
    pub event_type: String,
    /// Who reports: a topology's name, or `http-producer`.
    pub component: String,
    /// The topic the figures are about.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// The interval's start, RFC 3339.
    pub interval_start: String,
    /// The interval's end, RFC 3339.
    pub interval_end: String,
    /// Records read (or, for a producer, received).
    pub processed: u64,
    /// Records written.
    pub emitted: u64,
    /// Records that could not be handled: dead-lettered, or refused.
    pub failed: u64,
    /// When the report was made, RFC 3339.
    pub timestamp: String,
}

impl ProcessingReport {
    /// A report of `component` on `topic`/`partition` for `[start, end)` (epoch ms).
    pub fn new(
        component: impl Into<String>,
        topic: impl Into<String>,
        partition: i32,
        (start, end): (i64, i64),
        (processed, emitted, failed): (u64, u64, u64),
    ) -> Self {
        ProcessingReport {
            event_type: "ProcessingReport".into(),
            component: component.into(),
            topic: topic.into(),
            partition,
            interval_start: format_millis(start),
            interval_end: format_millis(end),
            processed,
            emitted,
            failed,
            timestamp: format_millis(end),
        }
    }
}
