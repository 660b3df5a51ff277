//! Per-partition watermarks, the timely times records travel at.
//!
//! A partition's watermark is the maximum event time seen on it minus the source's grace,
//! floored to a tick so that many records share one timely time (unique times would turn
//! every record into its own bundle). The watermark depends only on the partition's own
//! prefix, which is what makes replays decide lateness exactly as the first run did.

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

    /// Takes a record's event time into account and returns the timely time the record
    /// travels at: the partition's watermark after the record.
    pub fn observe(&mut self, event_time: i64) -> u64 {
        self.max_event_time = Some(
            self.max_event_time
                .map_or(event_time, |max| max.max(event_time)),
        );
        self.watermark()
    }

    /// The partition's watermark: 0 before any record.
    pub fn watermark(&self) -> u64 {
        match self.max_event_time {
            None => 0,
            Some(max) => {
                let raw = max.saturating_sub(self.grace_ms).max(0);
                (raw - raw % self.tick_ms) as u64
            }
        }
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
    fn watermark_is_max_event_time_minus_grace_floored_to_the_tick() {
        let mut clock = PartitionClock::new(5_000, 1_000);
        assert_eq!(clock.watermark(), 0);
        assert_eq!(clock.observe(20_500), 15_000);
        // An out-of-order record never moves the watermark back.
        assert_eq!(clock.observe(10_000), 15_000);
        assert_eq!(clock.observe(26_999), 21_000);
        assert_eq!(clock.max_event_time(), Some(26_999));
    }

    #[test]
    fn early_event_times_clamp_to_zero() {
        let mut clock = PartitionClock::new(5_000, 1_000);
        assert_eq!(clock.observe(3_000), 0);
        assert_eq!(clock.observe(-50_000), 0);
    }
}
