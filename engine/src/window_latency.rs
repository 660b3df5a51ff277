//! Window-close latency: the wall time from the watermark passing the point where a window
//! closes to its final value being visible, which is when the checkpoint holding it commits.
//!
//! A window operator reports each close with the instant the watermark first reached the
//! window's close point (its end, plus any grace) and the epoch the final value travels in.
//! The coordinator's commit of a checkpoint makes every epoch it takes visible at once, in
//! the views and, under exactly-once output, in Kafka; the time since each close is observed
//! then.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::checkpoint::Checkpoint;

/// Closed windows awaiting their checkpoint, and the latency of those already visible.
#[derive(Debug)]
pub struct WindowCloseLatency {
    /// `(epoch, when the watermark reached the close point, windows)`, in report order.
    pending: Mutex<Vec<(u64, Instant, u64)>>,
    /// Seconds from close point to visibility, one observation per window.
    pub histogram: Histogram,
    /// How many windows the histogram has observed.
    visible: AtomicU64,
}

impl Default for WindowCloseLatency {
    fn default() -> Self {
        WindowCloseLatency {
            pending: Mutex::new(Vec::new()),
            // From 1 ms to about 33 s, doubling.
            histogram: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            visible: AtomicU64::new(0),
        }
    }
}

impl WindowCloseLatency {
    /// Notes `windows` final values of `epoch` whose close point the watermark reached at
    /// `reached`.
    pub fn closed(&self, epoch: u64, reached: Instant, windows: u64) {
        if windows == 0 {
            return;
        }
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pending.last_mut() {
            Some((last_epoch, last_reached, count))
                if *last_epoch == epoch && *last_reached == reached =>
            {
                *count += windows;
            }
            _ => pending.push((epoch, reached, windows)),
        }
    }

    /// Observes the latency of every window the committed `checkpoint` made visible at
    /// `visible`.
    pub fn committed(&self, checkpoint: &Checkpoint, visible: Instant) {
        let taken = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (taken, kept) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(epoch, _, _)| checkpoint.is_final || *epoch < checkpoint.epoch);
            *pending = kept;
            taken
        };
        for (_, reached, windows) in taken {
            let seconds = visible.saturating_duration_since(reached).as_secs_f64();
            for _ in 0..windows {
                self.histogram.observe(seconds);
            }
            self.visible.fetch_add(windows, Ordering::Relaxed);
        }
    }

    /// How many closed windows have become visible.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Relaxed)
    }

    /// How many closed windows are not visible yet.
    pub fn pending(&self) -> u64 {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, _, windows)| windows)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn checkpoint(epoch: u64, is_final: bool) -> Checkpoint {
        Checkpoint {
            id: 1,
            epoch,
            is_final,
            positions: Vec::new(),
            watermark: 0,
            committed_at: 0,
            duration_ms: 0,
            fingerprint: String::new(),
        }
    }

    /// The histogram's count and sum, read through its OpenMetrics encoding.
    fn count_and_sum(latency: &WindowCloseLatency) -> (u64, f64) {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("latency", "", latency.histogram.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap()
                .to_string()
        };
        let (count, sum) = (value("latency_count"), value("latency_sum"));
        assert_eq!(count.parse::<u64>().unwrap(), latency.visible());
        (count.parse().unwrap(), sum.parse().unwrap())
    }

    #[test]
    fn a_checkpoint_makes_the_windows_of_its_epochs_visible() {
        let latency = WindowCloseLatency::default();
        let start = Instant::now();
        latency.closed(3, start, 2);
        latency.closed(3, start, 1);
        latency.closed(4, start + Duration::from_millis(100), 5);
        latency.closed(5, start, 0);
        assert_eq!(latency.pending(), 8);
        // A checkpoint of epoch 4 takes epochs before 4.
        latency.committed(&checkpoint(4, false), start + Duration::from_millis(250));
        assert_eq!(latency.pending(), 5);
        let (count, sum) = count_and_sum(&latency);
        assert_eq!(count, 3);
        assert!((sum - 0.75).abs() < 1e-9, "{sum}");
        // The final checkpoint takes everything.
        latency.committed(&checkpoint(4, true), start + Duration::from_millis(300));
        assert_eq!(latency.pending(), 0);
        let (count, sum) = count_and_sum(&latency);
        assert_eq!(count, 8);
        assert!((sum - (0.75 + 5.0 * 0.2)).abs() < 1e-9, "{sum}");
    }
}
