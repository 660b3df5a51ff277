//! The monitoring topology: the processing reports on `monitoring-events` (from every
//! engine and the HTTP event producer) as views, like the product systems' monitoring
//! consumer. Its views:
//! - `component_throughput`: 1-minute tumbling windows per component of what it processed,
//!   emitted and failed on, summed over its partitions;
//! - `component_health`: a table per component: totals over every window, the error rate,
//!   and when it last reported.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice::dsl::{Source, Topology, TumblingWindows};
use sluice::monitoring::{MONITORING_TOPIC, ProcessingReport};
use sluice::time::parse_timestamp;
use sluice::window::WindowBounds;

use crate::orders::MINUTE;

/// Reports of one component arrive from several engines and partitions, each in its own
/// wall-clock order: a few seconds of grace covers their interleaving.
const GRACE: Duration = Duration::from_secs(5);

/// What a component did in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub processed: u64,
    pub emitted: u64,
    pub failed: u64,
    /// Reports received.
    pub reports: u64,
    /// The end of the latest report's interval, epoch milliseconds.
    pub last_report_ms: i64,
}

impl Throughput {
    /// Adds one report.
    pub fn add(&mut self, report: &ProcessingReport) {
        self.processed += report.processed;
        self.emitted += report.emitted;
        self.failed += report.failed;
        self.reports += 1;
        let end = parse_timestamp(&report.interval_end).unwrap_or(i64::MIN);
        self.last_report_ms = self.last_report_ms.max(end);
    }
}

/// A component's health over every window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentHealth {
    pub processed: u64,
    pub emitted: u64,
    pub failed: u64,
    /// `100 * failed / processed`, or 0 before anything was processed.
    pub error_rate_pct: f64,
    /// When the component last reported (RFC 3339), if it has.
    pub last_seen: Option<String>,
    /// The same, in epoch milliseconds.
    pub last_seen_ms: i64,
}

impl ComponentHealth {
    /// Adds one window's figures.
    pub fn add_window(&mut self, _window: WindowBounds, window: &Throughput) {
        self.processed += window.processed;
        self.emitted += window.emitted;
        self.failed += window.failed;
        // A window's later value never reports earlier, so the latest time only grows.
        if window.reports > 0 && window.last_report_ms > self.last_seen_ms {
            self.last_seen_ms = window.last_report_ms;
            self.last_seen = Some(sluice::time::format_millis(window.last_report_ms));
        }
        self.derive();
    }

    /// Takes a window's previous figures out, before its new ones are added.
    pub fn subtract_window(&mut self, _window: WindowBounds, window: &Throughput) {
        self.processed = self.processed.saturating_sub(window.processed);
        self.emitted = self.emitted.saturating_sub(window.emitted);
        self.failed = self.failed.saturating_sub(window.failed);
        self.derive();
    }

    fn derive(&mut self) {
        self.error_rate_pct = if self.processed == 0 {
            0.0
        } else {
            100.0 * self.failed as f64 / self.processed as f64
        };
    }
}

/// Declares the monitoring topology.
pub fn monitoring(topology: &mut Topology<'_>) {
    let reports = topology.source(
        Source::<ProcessingReport>::topic(MONITORING_TOPIC)
            .try_event_time(|report| parse_timestamp(&report.interval_end).ok())
            .record_key(|report| report.component.clone())
            .grace(GRACE),
    );
    let throughput = reports
        .key_by("component", |report| report.component.clone())
        .window(TumblingWindows::of(MINUTE))
        .aggregate(Throughput::default, Throughput::add);
    throughput.materialize("component_throughput");
    throughput
        .summarize(
            ComponentHealth::default,
            ComponentHealth::add_window,
            ComponentHealth::subtract_window,
        )
        .materialize("component_health");
}
