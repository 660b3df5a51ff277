//! Why an engine is not ready to be relied on: what `/readyz` answers 503 with while the
//! engine starts ([`Phase`]: opening its state, reaching the brokers, restoring, catching
//! up) or waits out a fault it expects to pass ([`Hold`]: a broker away, output not yet
//! acknowledged), as opposed to a fatal error, which `/healthz` reports.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

/// How long a fault lasts before it holds the engine back: shorter is a broker's ordinary
/// latency, a leader election or a rolling restart, not a fault to report.
pub const HOLD_AFTER: Duration = Duration::from_secs(2);

/// What holds the engine back. Each is set and cleared by the part that knows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// The brokers do not answer the watermark monitor: lag and progress are unknown.
    Brokers,
    /// A checkpoint waits for the broker to acknowledge its output, so views stop moving.
    Output,
}

/// Where a starting engine is. Each phase follows the one before; an engine made outside
/// `runtime::start` (the in-process test kit, a benchmark) is `Running` from the outset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Phase {
    /// Opening RocksDB and reading the last checkpoint.
    OpeningState,
    /// Making and measuring topics, and the output producer (its transactions).
    Connecting,
    /// The workers build the dataflow, each operator loading its state.
    Restoring,
    /// Reading what the partitions held at start; views answer with the last checkpoint.
    CatchingUp,
    /// Caught up once: from here on a lag is a load, not a start-up.
    Running,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::OpeningState,
        Phase::Connecting,
        Phase::Restoring,
        Phase::CatchingUp,
        Phase::Running,
    ];

    /// Whether views may be read: once their state is open and restored, their answers
    /// are those of a checkpoint, stamped; before, a read would wait on the restore.
    pub fn serves_views(self) -> bool {
        self >= Phase::CatchingUp
    }

    /// The phase for people.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::OpeningState => "opening the state",
            Phase::Connecting => "reaching the brokers",
            Phase::Restoring => "restoring the operators' state",
            Phase::CatchingUp => "catching up with the input",
            Phase::Running => "running",
        }
    }
}

/// The holds in force, each with a reason for people, and the start-up's phases.
#[derive(Debug)]
pub struct Readiness {
    holds: Mutex<BTreeMap<Hold, String>>,
    /// Each phase entered, with when (epoch milliseconds); the last is the current one.
    phases: Mutex<Vec<(Phase, i64)>>,
    /// The current phase, read on every HTTP request without a lock.
    current: AtomicU8,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            holds: Mutex::default(),
            phases: Mutex::new(vec![(Phase::Running, now_millis())]),
            current: AtomicU8::new(Phase::Running as u8),
        }
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Readiness {
    /// A start begins: the phases start again from [`Phase::OpeningState`].
    pub fn starting(&self) {
        let mut phases = self.lock_phases();
        *phases = vec![(Phase::OpeningState, now_millis())];
        self.current
            .store(Phase::OpeningState as u8, Ordering::Relaxed);
    }

    /// Moves on to `phase`; a phase already passed stays passed.
    pub fn enter(&self, phase: Phase) {
        let mut phases = self.lock_phases();
        if phases.last().is_none_or(|(current, _)| *current < phase) {
            phases.push((phase, now_millis()));
            self.current.store(phase as u8, Ordering::Relaxed);
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        let current = usize::from(self.current.load(Ordering::Relaxed));
        Phase::ALL.get(current).copied().unwrap_or(Phase::Running)
    }

    /// Every phase entered, with when, in order.
    pub fn phases(&self) -> Vec<(Phase, i64)> {
        self.lock_phases().clone()
    }

    fn lock_phases(&self) -> std::sync::MutexGuard<'_, Vec<(Phase, i64)>> {
        self.phases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets `hold` with `reason`, replacing the reason it had.
    pub fn hold(&self, hold: Hold, reason: impl Into<String>) {
        self.lock().insert(hold, reason.into());
    }

    /// Clears `hold`, if it was set.
    pub fn release(&self, hold: Hold) {
        self.lock().remove(&hold);
    }

    /// Every hold in force, with its reason.
    pub fn holds(&self) -> Vec<(Hold, String)> {
        self.lock()
            .iter()
            .map(|(hold, reason)| (*hold, reason.clone()))
            .collect()
    }

    /// Whether the engine runs and nothing holds it back.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Running && self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Hold, String>> {
        // A holder that panicked leaves a map that is still a fair account of the holds.
        self.holds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_kept_apart_and_released_one_by_one() {
        let readiness = Readiness::default();
        assert!(readiness.is_ready());
        readiness.hold(Hold::Output, "waiting 3 s");
        readiness.hold(Hold::Brokers, "no answer");
        readiness.hold(Hold::Output, "waiting 4 s");
        assert_eq!(
            readiness.holds(),
            vec![
                (Hold::Brokers, "no answer".to_string()),
                (Hold::Output, "waiting 4 s".to_string())
            ]
        );
        readiness.release(Hold::Brokers);
        assert!(!readiness.is_ready());
        readiness.release(Hold::Output);
        readiness.release(Hold::Output);
        assert!(readiness.is_ready());
    }

    #[test]
    fn phases_only_move_forward_and_a_start_begins_them_again() {
        let readiness = Readiness::default();
        assert_eq!(readiness.phase(), Phase::Running);
        readiness.starting();
        assert_eq!(readiness.phase(), Phase::OpeningState);
        assert!(!readiness.is_ready());
        assert!(!readiness.phase().serves_views());
        readiness.enter(Phase::Restoring);
        readiness.enter(Phase::Connecting);
        assert_eq!(readiness.phase(), Phase::Restoring);
        readiness.enter(Phase::CatchingUp);
        assert!(readiness.phase().serves_views());
        readiness.enter(Phase::Running);
        let entered: Vec<Phase> = readiness.phases().iter().map(|(phase, _)| *phase).collect();
        assert_eq!(
            entered,
            [
                Phase::OpeningState,
                Phase::Restoring,
                Phase::CatchingUp,
                Phase::Running
            ]
        );
        assert!(readiness.is_ready());
    }
}
