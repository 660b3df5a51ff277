//! Monitoring events: the processing reports every engine, and the HTTP event producer,
//! publish to `monitoring-events`, as the product systems' monitoring consumer expects.
//!
//! An engine reports every interval, for each source partition, what it processed (records
//! read and decoded), emitted (output records derived from them) and failed on (records
//! dead-lettered) in that interval. The reports are operational data in wall-clock time:
//! they are published at least once, outside any output transaction.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::kafka::event_producer::{EventPublisher, OutgoingEvent};
use crate::status::EngineStatus;
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

/// The figures of one partition at the last report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counted {
    processed: u64,
    emitted: u64,
    failed: u64,
}

/// Makes the reports of each interval from the engine's live counts: what each source
/// partition processed, emitted and failed on since the last report.
#[derive(Debug)]
pub struct Reporter {
    component: String,
    last: BTreeMap<(String, i32), Counted>,
    last_at: i64,
}

impl Reporter {
    /// A reporter for `component` whose first interval starts at `now` (epoch ms).
    pub fn new(component: impl Into<String>, now: i64) -> Self {
        Reporter {
            component: component.into(),
            last: BTreeMap::new(),
            last_at: now,
        }
    }

    /// The reports of the interval that ends at `now`, one per partition (also those with
    /// nothing to report: a report says the component is alive).
    pub fn reports(&mut self, status: &EngineStatus, now: i64) -> Vec<ProcessingReport> {
        let interval = (self.last_at, now);
        self.last_at = now;
        status
            .partitions()
            .into_iter()
            .map(|(topic, partition, progress)| {
                let counted = Counted {
                    processed: progress.records_in,
                    emitted: progress.emitted,
                    failed: progress.failed,
                };
                let before = self
                    .last
                    .insert((topic.clone(), partition), counted)
                    .unwrap_or_default();
                ProcessingReport::new(
                    &self.component,
                    topic,
                    partition,
                    interval,
                    (
                        counted.processed.saturating_sub(before.processed),
                        counted.emitted.saturating_sub(before.emitted),
                        counted.failed.saturating_sub(before.failed),
                    ),
                )
            })
            .collect()
    }
}

/// Publishes the reports of `reporter` every `interval` until `shutdown`, and then those
/// of the last, shorter interval, so that the reports of a run add up to its counts.
pub async fn report_until_shutdown(
    mut reporter: Reporter,
    status: Arc<EngineStatus>,
    publisher: Arc<dyn EventPublisher>,
    interval: Duration,
    shutdown: Arc<AtomicBool>,
) {
    let mut next = tokio::time::Instant::now() + interval;
    loop {
        // Checked often, so that a stopping engine does not wait out an interval.
        tokio::time::sleep_until(next.min(tokio::time::Instant::now() + SHUTDOWN_CHECK)).await;
        let stopping = shutdown.load(Ordering::Relaxed);
        if !stopping && tokio::time::Instant::now() < next {
            continue;
        }
        next += interval;
        let now = chrono::Utc::now().timestamp_millis();
        for report in reporter.reports(&status, now) {
            let Ok(payload) = serde_json::to_vec(&report) else {
                continue;
            };
            let outcome = publisher
                .publish(OutgoingEvent {
                    topic: MONITORING_TOPIC,
                    key: Some(&report.component),
                    payload: &payload,
                    timestamp: Some(now),
                })
                .await;
            if let Err(error) = outcome {
                warn!(%error, topic = %report.topic, "cannot publish a processing report");
            }
        }
        if stopping {
            return;
        }
    }
}

/// How often the reporter looks at the shutdown flag between reports.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_what_each_partition_did_since_the_last_one() {
        let status = EngineStatus::new();
        status.register_partition("orders", 0);
        status.register_partition("orders", 1);
        let mut reporter = Reporter::new("shop", 1_000);
        status.count_in("orders", 0, 5);
        status.count_emitted_from("orders", 0, 7);
        status.count_failed("orders", 1);
        let first = reporter.reports(&status, 2_000);
        let figures: Vec<_> = first
            .iter()
            .map(|r| (r.partition, r.processed, r.emitted, r.failed))
            .collect();
        assert_eq!(figures, vec![(0, 5, 7, 0), (1, 0, 0, 1)]);
        assert_eq!(first[0].interval_start, format_millis(1_000));
        assert_eq!(first[0].interval_end, format_millis(2_000));
        assert_eq!(first[0].component, "shop");
        status.count_in("orders", 0, 2);
        let second = reporter.reports(&status, 3_000);
        assert_eq!((second[0].processed, second[0].emitted), (2, 0));
        assert_eq!(second[1].failed, 0);
        assert_eq!(second[0].interval_start, format_millis(2_000));
    }
}
