//! How long a checkpoint waits for the broker to acknowledge its output: for as long as it
//! takes while the engine runs, shown on `/readyz` and in the log; a bounded time once a
//! stop was asked for, so that Ctrl-C during a broker outage still stops the engine.
//!
//! A broker away for minutes is a fault to wait out, as Kafka Streams and Flink do: the
//! records stay in librdkafka's queue, retried until the broker takes them, and no
//! checkpoint moves past them meanwhile. Giving up would either lose them or stop the
//! engine for a fault that passes.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::warn;

use crate::output::Patience;
use crate::readiness::{HOLD_AFTER, Hold};
use crate::status::EngineStatus;

/// How long a wait may go on once a stop was asked for (or the checkpoint is the final
/// one): the output that is still unacknowledged then is written again by the next run,
/// from the last checkpoint written.
pub const STOPPING_WAIT: Duration = Duration::from_secs(30);

/// How often a long wait is logged.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The patience of one checkpoint's wait. Dropping it clears the hold it set.
pub struct OutputWait<'a> {
    status: &'a EngineStatus,
    stopping: &'a AtomicBool,
    is_final: bool,
    /// When (into the wait) the stop was first seen.
    stop_seen: Cell<Option<Duration>>,
    logged: Cell<Duration>,
    gave_up: Cell<Option<u64>>,
}

impl<'a> OutputWait<'a> {
    /// The wait of a checkpoint; `stopping` is set when the engine is asked to stop.
    pub fn new(status: &'a EngineStatus, stopping: &'a AtomicBool, is_final: bool) -> Self {
        OutputWait {
            status,
            stopping,
            is_final,
            stop_seen: Cell::new(None),
            logged: Cell::new(Duration::ZERO),
            gave_up: Cell::new(None),
        }
    }

    /// The records still unacknowledged when the wait gave up, if it did.
    pub fn gave_up_with(&self) -> Option<u64> {
        self.gave_up.get()
    }
}

impl Patience for OutputWait<'_> {
    fn keep_waiting(&self, waited: Duration, unacknowledged: u64) -> bool {
        if waited >= HOLD_AFTER {
            self.status.readiness.hold(
                Hold::Output,
                format!(
                    "a checkpoint has waited {} s for the broker to acknowledge {unacknowledged} output records; views show the last checkpoint",
                    waited.as_secs()
                ),
            );
            if waited >= self.logged.get() + LOG_EVERY {
                self.logged.set(waited);
                warn!(
                    waited_s = waited.as_secs(),
                    unacknowledged, "output waits for the broker; retrying"
                );
            }
        }
        if self.is_final || self.stopping.load(Ordering::Relaxed) {
            let since = *self.stop_seen.get().get_or_insert(waited);
            self.stop_seen.set(Some(since));
            if waited.saturating_sub(since) >= STOPPING_WAIT {
                self.gave_up.set(Some(unacknowledged));
                return false;
            }
        }
        true
    }
}

impl Drop for OutputWait<'_> {
    fn drop(&mut self) {
        self.status.readiness.release(Hold::Output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_running_engine_waits_without_end_and_says_so() {
        let status = EngineStatus::new();
        let stopping = AtomicBool::new(false);
        let wait = OutputWait::new(&status, &stopping, false);
        assert!(wait.keep_waiting(SECOND, 10));
        assert!(status.readiness.is_ready(), "a second is ordinary latency");
        assert!(wait.keep_waiting(3600 * SECOND, 10));
        let holds = status.readiness.holds();
        assert_eq!(holds.len(), 1);
        assert!(holds[0].1.contains("waited 3600 s"), "{holds:?}");
        assert!(holds[0].1.contains("10 output records"), "{holds:?}");
        drop(wait);
        assert!(status.readiness.is_ready());
    }

    #[test]
    fn a_stop_bounds_the_wait_from_when_it_was_asked_for() {
        let status = EngineStatus::new();
        let stopping = AtomicBool::new(false);
        let wait = OutputWait::new(&status, &stopping, false);
        assert!(wait.keep_waiting(100 * SECOND, 5));
        stopping.store(true, Ordering::Relaxed);
        assert!(wait.keep_waiting(101 * SECOND, 5));
        assert!(wait.keep_waiting(101 * SECOND + STOPPING_WAIT - SECOND, 5));
        assert_eq!(wait.gave_up_with(), None);
        assert!(!wait.keep_waiting(101 * SECOND + STOPPING_WAIT, 4));
        assert_eq!(wait.gave_up_with(), Some(4));
    }

    #[test]
    fn the_final_checkpoint_waits_a_bounded_time() {
        let status = EngineStatus::new();
        let stopping = AtomicBool::new(false);
        let wait = OutputWait::new(&status, &stopping, true);
        assert!(wait.keep_waiting(SECOND, 1));
        assert!(!wait.keep_waiting(SECOND + STOPPING_WAIT, 1));
    }
}
