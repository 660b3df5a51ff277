//! Per-partition watermarks: the exact one every decision uses, and the coarse one the
//! partition's timely capability follows.
//!
//! A partition's watermark is the maximum event time seen on it minus the source's grace.
//! It depends only on the partition's own prefix, which is what makes replays decide
//! lateness exactly as the first run did. Records carry this exact watermark; the timely
//! time they travel at is only a lower bound of it, floored to a tick, so that everything
//! one read takes from a partition shares one timely time (unique times would turn every
//! record into its own bundle). The tick therefore changes how soon a window closes, never
//! what it holds.

/// The event-time clock of one source partition.
#[derive(Debug, Clone)]
pub struct PartitionClock {
    grace_ms: i64,
    tick_ms: i64,
    max_event_time: Option<i64>,
}

impl PartitionClock {
    /// A clock with the given grace (allowed out-of-orderness) and tick, in milliseconds.
    pub fn new(grace_ms: i64, tick_ms: i64) -> Self {
        PartitionClock {
            grace_ms: grace_ms.max(0),
            tick_ms: tick_ms.max(1),
            max_event_time: None,
        }
    }

    /// Takes a record's event time into account and returns the partition's exact
    /// watermark after the record: the watermark the record carries.
    pub fn observe(&mut self, event_time: i64) -> u64 {
        self.max_event_time = Some(
            self.max_event_time
                .map_or(event_time, |max| max.max(event_time)),
        );
        self.watermark()
    }

    /// The partition's exact watermark: 0 before any record.
    pub fn watermark(&self) -> u64 {
        match self.max_event_time {
            None => 0,
            Some(max) => max.saturating_sub(self.grace_ms).max(0) as u64,
        }
    }

    /// The watermark floored to the tick: how far the partition's timely capability may
    /// follow it.
    pub fn capability_watermark(&self) -> u64 {
        let exact = self.watermark();
        exact - exact % self.tick_ms as u64
    }

    /// A clock that continues from a checkpoint, where `max_event_time` had been seen.
    pub fn restored(grace_ms: i64, tick_ms: i64, max_event_time: Option<i64>) -> Self {
        PartitionClock {
            max_event_time,
            ..PartitionClock::new(grace_ms, tick_ms)
        }
    }

    /// The largest event time seen, if any.
    pub fn max_event_time(&self) -> Option<i64> {
        self.max_event_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_max_event_time_minus_grace() {
        let mut clock = PartitionClock::new(5_000, 1_000);
        assert_eq!(clock.watermark(), 0);
        assert_eq!(clock.observe(20_500), 15_500);
        // An out-of-order record never moves the watermark back.
        assert_eq!(clock.observe(10_000), 15_500);
        assert_eq!(clock.observe(26_999), 21_999);
        assert_eq!(clock.max_event_time(), Some(26_999));
    }

    #[test]
    fn the_capability_follows_the_watermark_floored_to_the_tick() {
        let mut clock = PartitionClock::new(5_000, 1_000);
        clock.observe(26_999);
        assert_eq!(clock.capability_watermark(), 21_000);
        assert!(clock.capability_watermark() <= clock.watermark());
    }

    #[test]
    fn early_event_times_clamp_to_zero() {
        let mut clock = PartitionClock::new(5_000, 1_000);
        assert_eq!(clock.observe(3_000), 0);
        assert_eq!(clock.observe(-50_000), 0);
    }
}
